//! The published site's bounds (issue 29): book.toml by allow-list with paths that stay inside,
//! includes and sizes that cannot amplify, a server that stays small, outputs that never follow
//! links, any file name. What reaches a page is `site.rs`.

use crate::common::Test;
use crate::common::site::{files, project, read, serve};

#[test]
fn book_toml_honours_only_documented_keys_and_paths_stay_inside() {
    // The redirect of the issue: a key that climbs out of --out and the project.
    let t = project("# R\n").file(
        "book/book.toml",
        "[book]\ntitle = \"t\"\n\n[output.html.redirect]\n\"/../../escaped/pwned.html\" = \"index.html\"\n",
    );
    let out = t.run_args(&["render".into(), "--out".into(), "deep/er/site".into()]);
    out.code_is(2);
    out.stderr_has("book/book.toml:5:1: error: redirect `/../../escaped/pwned.html` must be a path inside the site");
    assert!(
        !t.path("escaped").exists() && !t.path("deep/escaped").exists(),
        "a file was written outside"
    );
    assert!(!t.path("deep/er/site").exists(), "nothing rendered");

    // Keys that load script or are not documented: each an error at its place.
    let t = project("# R\n").file(
        "book/book.toml",
        "[book]\ntitle = \"t\"\nmultilingual = false\n\n[output.html]\nadditional-js = [\"x.js\"]\ngoogle-analytics = \"UA-1\"\ndefault-theme = \"</script>\"\n",
    );
    std::fs::write(t.path("book/x.js"), "window.__pwned = 1").expect("write");
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 4, "{}", out.stderr);
    assert!(
        errors[0].starts_with("book/book.toml:3:1: error: `book.multilingual` is not honoured"),
        "{errors:?}"
    );
    assert!(
        errors[1]
            .starts_with("book/book.toml:6:1: error: `output.html.additional-js` is not honoured: it loads a script"),
        "{errors:?}"
    );
    assert!(
        errors[2].starts_with("book/book.toml:7:1: error: `output.html.google-analytics` is not honoured"),
        "{errors:?}"
    );
    assert!(
        errors[3].starts_with("book/book.toml:8:17: error: `default-theme` must be one of"),
        "{errors:?}"
    );
    assert!(!t.path("site").exists());

    // A linked stylesheet that points outside the book is not a file of the book.
    let t = project("# R\n").file(
        "book/book.toml",
        "[book]\ntitle = \"t\"\n\n[output.html]\nadditional-css = [\"style.css\"]\n",
    );
    std::os::unix::fs::symlink("/etc/passwd", t.path("book/style.css")).expect("symlink");
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    out.stderr_has("book/book.toml:5:19: error: additional-css `style.css` is not a .css file inside the book");

    // What is documented works: a redirect inside the site, normalised, and a stylesheet.
    let t = project("# R\n")
        .file(
            "book/book.toml",
            "[book]\ntitle = \"t\"\n\n[output.html]\nadditional-css = [\"./style.css\"]\n\n[output.html.redirect]\n\"/a/../old/page.html\" = \"../runbooks/r.html\"\n",
        )
        .file("book/style.css", "body { color: black }\n");
    t.run_args(&["render".into()]).code_is(0);
    assert!(read(&t.path("site/old/page.html")).contains("../runbooks/r.html"));
    assert!(
        t.path("site/style.css").is_file()
            || files(&t.path("site"))
                .iter()
                .any(|(p, _)| p.to_string_lossy().contains("style"))
    );
}

/// A runbooks directory whose includes nest to ~14 MB per page under the old per-page limits
/// (each page reads 931 files of 16 KiB): `pages` runbooks of it.
pub fn amplifying(t: Test, pages: usize) -> Test {
    let mut t = t
        .file("runbooks/l0.txt", "x".repeat(16 << 10) + "\n")
        .file("runbooks/l1.txt", "{{#include l0.txt}}\n".repeat(30))
        .file("runbooks/l2.txt", "{{#include l1.txt}}\n".repeat(30));
    for n in 0..pages {
        t = t.file(
            &format!("runbooks/r{n}.md"),
            format!("# R{n}\n\n{{{{#include l2.txt}}}}\n"),
        );
    }
    t
}

#[test]
fn includes_cannot_amplify_a_small_book_into_a_large_site() {
    let t = amplifying(
        Test::new()
            .file("book/book.toml", "[book]\ntitle = \"t\"\n")
            .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n"),
        3,
    );
    let started = std::time::Instant::now();
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    let budget = out
        .stderr
        .lines()
        .find(|l| l.contains("than its budget"))
        .unwrap_or_else(|| panic!("no budget error: {}", out.stderr));
    assert!(
        budget.starts_with("runbooks/l1.txt:")
            && budget.contains(
                ": error: `{{#include l0.txt}}` makes includes add more to the site than its budget (1 MiB plus 2 times"
            ),
        "{budget}"
    );
    assert!(!t.path("site").exists(), "nothing published");
    let written: usize = files(t.dir.path()).iter().map(|(_, b)| b.len()).sum();
    assert!(written < 1 << 20, "{written} bytes on disk");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // `check` finds it in one runbook too, at the same place.
    let out = t.run_args(&["check".into(), "runbooks/r0.md".into()]);
    out.code_is(2);
    out.stderr_has("than its budget");
}

fn kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field")
}

/// The whole answer to `GET path`.
fn get(port: u16, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn serve_memory_stays_bounded_under_clients_that_never_read_and_others_are_served() {
    use std::io::Write;
    // A 2.5 MB runbook: its page and print.html are over 2 MB each.
    let prose: String = (0..40_000)
        .map(|i| format!("Line {i} of prose, with words enough to be a paragraph.\n\n"))
        .collect();
    let t = project(&format!("# Big\n\n{prose}"));
    let server = serve(&t, 60_000);
    let pid = server.child.id();
    let page = get(server.port, "/print.html");
    assert!(
        page.starts_with(b"HTTP/1.1 200") && page.len() > 2_000_000,
        "{}",
        page.len()
    );
    let before = kib(pid, "VmRSS:");

    // 32 clients ask for the big page and never read a byte of it.
    let slow: Vec<std::net::TcpStream> = (0..32)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            write!(s, "GET /print.html HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
            s
        })
        .collect();
    // And 64 more that connect and say nothing.
    let silent: Vec<std::net::TcpStream> = (0..64)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let held = kib(pid, "VmRSS:").saturating_sub(before);
    // Others are still served, whole.
    for _ in 0..8 {
        let other = get(server.port, "/print.html");
        assert!(
            other.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&other[..other.len().min(80)])
        );
        assert_eq!(other.len(), page.len(), "a whole answer");
    }
    let peak = kib(pid, "VmHWM:");
    eprintln!("32 clients that never read hold {held} KiB (peak RSS {peak} KiB)");
    assert!(held < 16 << 10, "32 clients that never read hold {held} KiB");
    drop((slow, silent));
}

#[test]
fn render_never_writes_through_a_symbolic_link_in_out() {
    for (link, out) in [
        ("build", "build/site"),
        ("build", "build/deeper/site"),
        ("site", "site"),
    ] {
        let t = project("# R\n").file("outside/keep.txt", "keep");
        std::os::unix::fs::symlink(t.path("outside"), t.path(link)).expect("symlink");
        let absolute = t.path(out).display().to_string();
        for given in [out.to_string(), format!("./{out}"), absolute] {
            let r = t.run_args(&["render".into(), "--out".into(), given.clone()]);
            assert_eq!(r.code, 2, "--out {given}: {r:?}");
            assert!(r.stderr.contains("a symbolic link"), "--out {given}: {}", r.stderr);
            let mut left: Vec<String> = std::fs::read_dir(t.path("outside"))
                .expect("outside")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(left, ["keep.txt"], "--out {given} wrote outside");
        }
    }
}

/// Decodes `%XX` in a link.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn any_file_name_that_passes_check_renders_and_no_name_reaches_the_terminal_raw() {
    let names = [
        "a b",
        "p)",
        "[x]",
        "q#1",
        "r%20",
        "x\" onmouseover=\"alert(1)",
        "ü ñ",
        "esc\u{1b}[31mred",
        "new\nline",
        "back\\slash",
    ];
    let mut t = Test::new()
        .file("book/book.toml", "[book]\ntitle = \"t\"\n")
        .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n")
        .file("runbooks/README.md", "# Index\n\n- [A](a%20b.md)\n");
    for n in names {
        t = t.file(
            &format!("runbooks/{n}.md"),
            format!("# Title [{n}] `x`\n\n```manual id=a on-failure=README.md\nconfirm = \"ok?\"\n```\n"),
        );
    }
    t.run_args(&["check".into(), "runbooks".into()]).code_is(0);
    let out = t.run_args(&["render".into(), "--out".into(), "site\u{1b}[2J".into()]);
    out.code_is(0);
    assert!(!out.all().contains('\u{1b}'), "an escape reached the terminal: {out:?}");
    let site = t.path("site\u{1b}[2J");
    // Every link of the table of contents leads to a page that exists, and none has attributes
    // of its own.
    let toc = read(&site.join("toc.html"));
    let hrefs: Vec<&str> = toc
        .split("href=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    assert!(hrefs.len() >= names.len(), "{toc}");
    for h in &hrefs {
        let file = site.join(percent_decoded(h.split('#').next().unwrap_or("")));
        assert!(file.is_file(), "the toc links to {h}, which is not a page of the site");
    }
    assert!(!toc.contains("onmouseover=\""), "a file name wrote an attribute: {toc}");
    // The command on the page pastes as one word.
    let pages: Vec<String> = files(&site.join("runbooks"))
        .into_iter()
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .collect();
    assert!(
        pages.iter().any(|p| p.contains("runbook run 'runbooks/a b.md'")),
        "the run-this command is not quoted"
    );

    // Names in errors are shown escaped too.
    let t = project("# R\n").file(
        "runbooks/bad\u{1b}]0;pwned\u{7}.md",
        "# Bad\n\n```aws sts.whoami\nbogus = 1\n```\n",
    );
    let bad = "runbooks/bad\u{1b}]0;pwned\u{7}.md".to_string();
    for args in [
        vec!["check".to_string(), "runbooks".into()],
        vec!["render".into()],
        vec!["run".into(), bad.clone()],
        vec!["plan".into(), bad.clone()],
        vec!["export".into(), "--ssm".into(), bad.clone()],
    ] {
        let out = t.run_args(&args);
        out.code_is(2);
        assert!(
            !out.all().contains('\u{1b}') && !out.all().contains('\u{7}'),
            "{args:?}: {out:?}"
        );
        assert!(
            out.stderr.contains("bad\\u{1b}]0;pwned\\u{7}.md"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// Headings of distinct made-up words: the text mdBook's search index grows most on (a
/// character tree of every word, per heading), `bytes` of it.
fn distinct_headings(bytes: usize) -> String {
    let mut seed: u64 = 29;
    let mut out = String::new();
    while out.len() < bytes {
        out.push_str("## ");
        for _ in 0..3 {
            for _ in 0..12 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                out.push((b'a' + (seed >> 59) as u8 % 26) as char);
            }
            out.push(' ');
        }
        out.push_str("\n\n");
    }
    out
}

#[test]
fn the_site_stays_within_its_stated_multiple_of_its_inputs() {
    // 16 KiB of distinct headings, included 20 times (within the include budget): before, a
    // site of 7 MB from 21 KB of input (336 times), now refused.
    let mut t = Test::new()
        .file("book/book.toml", "[book]\ntitle = \"t\"\n")
        .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n")
        .file("runbooks/h.txt", distinct_headings(16 << 10));
    for n in 0..4 {
        t = t.file(
            &format!("runbooks/r{n}.md"),
            format!("# R{n}\n\n") + "{{#include h.txt}}\n\n".repeat(5).as_str(),
        );
    }
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    out.stderr_has("runbook: render: the site would be ");
    out.stderr_has("(4 MiB, 64 KiB a page and 64 times its inputs)");
    assert!(!t.path("site").exists(), "nothing published");
    assert!(
        std::fs::read_dir(t.dir.path())
            .expect("dir")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with('.')),
        "the site built beside --out was removed"
    );
    // The same headings once, as a page of their own, are a site like any other.
    let t = project(&format!("# R\n\n{}", distinct_headings(16 << 10)));
    t.run_args(&["render".into()]).code_is(0);
}
