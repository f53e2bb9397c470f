//! `runbook render`: the site built from book/ and runbooks/, checked file by file.

use std::path::Path;

use crate::common::site::{Served, project};
use crate::common::{Test, repo};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir`, as (path, bytes).
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                continue; // what a test links to is not what runbook wrote
            }
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.push((p, bytes));
            }
        }
    }
    out
}

fn render_bundled() -> (Test, std::path::PathBuf) {
    let t = Test::new();
    let out = t.path("site");
    let r = Test::new()
        .args([
            "render",
            "--book",
            &repo().join("book").display().to_string(),
            "--runbooks",
            &repo().join("runbooks").display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .run();
    r.code_is(0);
    assert!(r.stderr.contains("rendered 11 runbooks"), "{}", r.stderr);
    (t, out)
}

#[test]
fn a_page_per_runbook_and_a_card_per_step() {
    let (_t, site) = render_bundled();
    let list = Test::new()
        .args(["list", "--json", &repo().join("runbooks").display().to_string()])
        .run();
    list.code_is(0);
    let books: serde_json::Value = serde_json::from_str(&list.stdout).expect("list --json");
    let books = books.as_array().expect("array");
    assert_eq!(books.len(), 11);
    for b in books {
        let path = b["path"].as_str().expect("path");
        let rel = Path::new(path)
            .strip_prefix(repo().join("runbooks"))
            .expect("under runbooks/");
        let page = if rel.file_name().is_some_and(|n| n == "README.md") {
            rel.with_file_name("index.html")
        } else {
            rel.with_extension("html")
        };
        let html = read(&site.join("runbooks").join(&page));
        let steps = b["steps"].as_array().expect("steps");
        assert_eq!(
            html.matches("class=\"rb-step ").count(),
            steps.len(),
            "{}: one card per step",
            page.display()
        );
        for s in steps {
            let id = s["id"].as_str().expect("id");
            assert!(
                html.contains(&format!("id=\"step-{id}\"")),
                "{}: no card for {id}",
                page.display()
            );
        }
        if !steps.is_empty() {
            let run = format!("runbook run {}", Path::new("runbooks").join(rel).display());
            assert!(html.contains(&run), "{}: no run-this box with `{run}`", page.display());
        }
        // Step blocks became cards; no raw step fence is left on the page.
        assert!(!html.contains("language-aws"), "{}", page.display());
    }

    // Cards carry what the issue asks for, on the Part 2 page.
    let p2 = read(&site.join("runbooks/part-2-identity-center.html"));
    assert!(p2.contains("rb-badge-person"), "manual steps have the person badge");
    assert!(p2.contains("rb-badge-check"), "read-only actions have the check badge");
    assert!(p2.contains("rb-badge-aws"), "mutating actions have the AWS badge");
    assert!(p2.contains("aws sso-admin create-permission-set"), "AWS CLI equivalent");
    assert!(p2.contains("Runs only if"), "the if= condition");
    assert!(p2.contains("class=\"rb-inputs\""), "the inputs table");
    assert!(p2.contains("rb-checklist"), "manual steps are checklist items");
    // Ordinary code blocks stay code blocks.
    let p1 = read(&site.join("runbooks/users-and-credentials.html"));
    assert!(p1.contains("<pre><code"), "code blocks kept");
    // The troubleshooting runbooks are linked from on-failure= where a runbook names them.
    let all: String = files(&site.join("runbooks"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "html"))
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .collect();
    assert!(all.contains("rb-on-failure"), "an on-failure= link is rendered");
}

#[test]
fn references_are_generated_from_the_code() {
    let (_t, site) = render_bundled();
    let plugins = read(&site.join("reference/plugins.html"));
    let registry = runbook_plugins::Registry::builtin();
    for a in registry.iter() {
        let info = a.info();
        assert!(plugins.contains(info.name), "plugin reference lacks {}", info.name);
        for p in &info.params {
            assert!(plugins.contains(&p.name), "{}: parameter {} missing", info.name, p.name);
        }
    }
    let cli = read(&site.join("reference/cli.html"));
    for sub in [
        "check",
        "list",
        "plan",
        "run",
        "rehearse",
        "status",
        "render",
        "completions",
    ] {
        assert!(cli.contains(&format!("runbook {sub}")), "CLI reference lacks {sub}");
    }
    assert!(cli.contains("--max-in-flight"), "flags come from clap");
}

#[test]
fn search_index_covers_runbooks_and_cards() {
    let (_t, site) = render_bundled();
    let index = files(&site)
        .into_iter()
        .find(|(p, _)| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("searchindex") && n.to_string_lossy().ends_with(".js"))
        })
        .expect("a search index");
    let text = String::from_utf8_lossy(&index.1);
    // Prose of a runbook, and text that only a card contains.
    assert!(text.contains("organization"), "runbook prose is indexed");
    assert!(text.contains("create-permission-set"), "card text is indexed");
}

#[test]
fn secrets_never_reach_the_site() {
    let secret_input = "SeKr1t-input-default-4471";
    let secret_answer = "SeKr1t-ask-default-9902";
    let rb = format!(
        "# Secret things\n\n```runbook\n[inputs.token]\nprompt = \"API token\"\nsecret = true\ndefault = \"{secret_input}\"\n```\n\n\
## Do it\n\n```manual id=paste\nconfirm = \"Pasted?\"\n[ask.otp]\nprompt = \"One-time code\"\nsecret = true\ndefault = \"{secret_answer}\"\n```\n\n\
```aws sts.whoami id=who\n```\n"
    );
    let t = Test::new()
        .file("book/book.toml", "[book]\ntitle = \"t\"\n")
        .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n")
        .file("runbooks/README.md", "# Index\n\n- [Secret](secret.md)\n")
        .file("runbooks/secret.md", rb)
        .args(["render"]);
    let out = t.run();
    out.code_is(0);
    let site = files(&t.path("site"));
    assert!(site.len() > 10, "a site was written");
    for (p, bytes) in site {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(secret_input), "{} shows a secret default", p.display());
        assert!(!text.contains(secret_answer), "{} shows a secret default", p.display());
    }
    let page = read(&t.path("site/runbooks/secret.html"));
    assert!(
        page.contains("secret, never shown"),
        "the table says a secret is hidden"
    );
}

#[test]
fn a_runbook_with_errors_is_not_rendered() {
    let t = Test::new()
        .file("book/book.toml", "[book]\ntitle = \"t\"\n")
        .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n")
        .file("runbooks/bad.md", "# Bad\n\n```aws sts.whoami\nbogus = 1\n```\n")
        .args(["render"]);
    let out = t.run();
    out.code_is(2);
    assert!(
        out.stderr.contains("bad.md:4:1: error: unknown parameter `bogus`"),
        "{}",
        out.stderr
    );
    assert!(!t.path("site/index.html").exists(), "nothing half-built");
}

// ---------------------------------------------------------------------------------------------
// Hostile runbooks, book pages and command lines (issue 14). Each attack runs through the binary.

/// Names in `dir` that a render may have left behind (`.NAME.building-PID` and the like).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Every file under the scratch directory with its text, for "did it leak" greps.
fn all_text(dir: &Path) -> String {
    files(dir)
        .into_iter()
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

const RB: &str = "# R\n\n## Do it\n\n```manual id=a\nconfirm = \"ok?\"\n```\n";

#[test]
fn render_out_refuses_a_directory_it_did_not_make() {
    let t = project(RB).file("important/data.txt", "precious");
    let out = t.run_args(&["render".into(), "--out".into(), "important".into()]);
    out.code_is(2);
    assert!(out.stderr.contains("important"), "names the directory: {}", out.stderr);
    assert!(
        out.stderr.contains("not made by `runbook render`"),
        "says why: {}",
        out.stderr
    );
    assert_eq!(read(&t.path("important/data.txt")), "precious");
    assert_eq!(std::fs::read_dir(t.path("important")).expect("dir").count(), 1);
    assert!(leftovers(t.dir.path()).is_empty(), "{:?}", leftovers(t.dir.path()));
    // A file is no directory to replace either.
    let t = project(RB).file("notes.txt", "keep");
    let out = t.run_args(&["render".into(), "--out".into(), "notes.txt".into()]);
    out.code_is(2);
    assert_eq!(read(&t.path("notes.txt")), "keep");
}

#[test]
fn render_out_is_never_a_source_directory_or_an_ancestor_of_one() {
    for target in [".", "runbooks", "book", "./runbooks/", "book/.."] {
        let t = project(RB).file("notes.txt", "keep");
        let before: Vec<_> = files(t.dir.path()).into_iter().map(|(p, _)| p).collect();
        let out = t.run_args(&["render".into(), "--out".into(), target.into()]);
        assert_eq!(out.code, 2, "--out {target}: {out:?}");
        assert!(
            out.stderr.contains("source") || out.stderr.contains("not made by"),
            "--out {target}: {}",
            out.stderr
        );
        let after: Vec<_> = files(t.dir.path()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(before, after, "--out {target} changed the tree");
        assert_eq!(read(&t.path("runbooks/r.md")), RB);
        assert!(
            leftovers(t.dir.path()).is_empty(),
            "--out {target}: {:?}",
            leftovers(t.dir.path())
        );
        let name = t.dir.path().file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            leftovers(t.dir.path().parent().expect("parent"))
                .iter()
                .all(|n| *n == name || !n.contains(&name)),
            "--out {target} left a building directory beside the project"
        );
    }
    // Absolute paths to an ancestor of the sources are refused too.
    let t = project(RB);
    let out = t.run_args(&["render".into(), "--out".into(), t.dir.path().display().to_string()]);
    out.code_is(2);
    assert_eq!(read(&t.path("runbooks/r.md")), RB);
}

#[test]
fn render_out_replaces_its_own_site_and_takes_empty_or_missing_directories() {
    let t = project(RB).file("empty/.keep-me-not", "");
    std::fs::remove_file(t.path("empty/.keep-me-not")).expect("rm");
    for target in ["empty", "missing", "missing"] {
        let out = t.run_args(&["render".into(), "--out".into(), target.into()]);
        assert_eq!(out.code, 0, "--out {target}: {out:?}");
        assert!(t.path(target).join("index.html").is_file(), "--out {target}");
    }
    assert!(leftovers(t.dir.path()).is_empty(), "{:?}", leftovers(t.dir.path()));
}

#[test]
fn a_failed_render_leaves_nothing_behind_and_keeps_the_previous_site() {
    let t = project(RB);
    assert_eq!(t.run_args(&["render".into()]).code, 0);
    let index = read(&t.path("site/index.html"));
    std::fs::write(t.path("runbooks/r.md"), "# R\n\n```aws sts.whoami\nbogus = 1\n```\n").expect("write");
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    assert_eq!(read(&t.path("site/index.html")), index, "the previous site stays");
    assert!(leftovers(t.dir.path()).is_empty(), "{:?}", leftovers(t.dir.path()));
}

#[test]
fn step_bodies_are_never_preprocessed() {
    let canary = "CANARY-env-7731-do-not-publish";
    let rb = "# R\n\n```rhai id=x\n// {{#include /proc/self/environ}}\n#{}\n```\n\n\
```aws sso-admin.ensure-permission-set id=ps\ninstance_arn = \"arn\"\nname = \"n\"\ndescription = \"{{#include /proc/self/environ}}\"\n```\n";
    let t = project(rb).env("RUNBOOK_TEST_CANARY", canary);
    let out = t.run_args(&["check".into(), "runbooks".into()]);
    out.code_is(0);
    let out = t.run_args(&["render".into()]);
    out.code_is(0);
    let text = all_text(&t.path("site"));
    assert!(!text.contains(canary), "the environment reached the site");
    let page = read(&t.path("site/runbooks/r.html"));
    assert!(
        page.contains("#include /proc/self/environ"),
        "the body is shown as written"
    );
}

#[test]
fn prose_includes_stay_inside_the_book_and_runbooks_roots() {
    let rb = "# R\n\nFirst {{#include /etc/passwd}}\n\n\
Second {{#include ../../../../../../../../../../etc/passwd}}\n\n\
Third {{ #rustdoc_include link.md }}\n\n{{#playground /etc/hostname}}\n\n{{#include inside.txt}}\n";
    let t = project(rb).file("runbooks/inside.txt", "INSIDE-THE-ROOT-4411");
    std::os::unix::fs::symlink("/etc/passwd", t.path("runbooks/link.md")).expect("symlink");
    let out = t.run_args(&["check".into(), "runbooks".into()]);
    out.code_is(2);
    let located: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("runbooks/r.md:") && l.contains(": error: "))
        .collect();
    assert_eq!(located.len(), 4, "{}", out.stderr);
    assert!(located[0].starts_with("runbooks/r.md:3:7: error: "), "{located:?}");
    assert!(located[1].starts_with("runbooks/r.md:5:8: error: "), "{located:?}");
    assert!(located[2].starts_with("runbooks/r.md:7:7: error: "), "{located:?}");
    assert!(located[3].starts_with("runbooks/r.md:9:1: error: "), "{located:?}");
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    assert!(!t.path("site").exists(), "nothing rendered");
    assert!(!all_text(t.dir.path()).contains("root:x:0:0"), "/etc/passwd was copied");

    // Inside the roots, includes keep working.
    let t = project("# R\n\n{{#include inside.txt}}\n").file("runbooks/inside.txt", "INSIDE-THE-ROOT-4411");
    let out = t.run_args(&["render".into()]);
    out.code_is(0);
    assert!(read(&t.path("site/runbooks/r.html")).contains("INSIDE-THE-ROOT-4411"));
}

#[test]
fn a_book_page_cannot_include_outside_the_book() {
    let t = project(RB)
        .file(
            "book/src/SUMMARY.md",
            "# Summary\n\n[Page](page.md)\n\n<!-- runbooks -->\n",
        )
        .file(
            "book/src/page.md",
            "# Page\n\n{{#include ../../../../../../../../etc/passwd}}\n",
        );
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    assert!(out.stderr.contains("book/src/page.md:3:1"), "{}", out.stderr);
    assert!(!all_text(t.dir.path()).contains("root:x:0:0"), "/etc/passwd was copied");
    // Nor can SUMMARY.md name a chapter outside it (mdBook reads one, and writes its page there).
    let t = project(RB).file(
        "book/src/SUMMARY.md",
        "[Leak](../../../../../../../../etc/passwd)
",
    );
    let out = t.run_args(&["render".into()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("failed to read chapter"), "{}", out.stderr);
    assert!(!all_text(t.dir.path()).contains("root:x:0:0"), "/etc/passwd was copied");
    // A linked file among the book's assets is not published.
    let t = project(RB);
    std::os::unix::fs::symlink("/etc/passwd", t.path("book/src/leak.txt")).expect("symlink");
    assert_eq!(t.run_args(&["render".into()]).code, 0);
    assert!(!t.path("site/leak.txt").exists() && !all_text(&t.path("site")).contains("root:x:0:0"));
}

#[test]
fn book_toml_cannot_run_commands_or_copy_outside_files() {
    let t = project(RB).file(
        "book/book.toml",
        "[book]\ntitle = \"t\"\n\n[preprocessor.evil]\ncommand = \"touch PWNED-pre\"\n\n[output.evil]\ncommand = \"touch PWNED-out\"\n",
    );
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    assert!(out.stderr.contains("preprocessor.evil"), "{}", out.stderr);
    assert!(!t.path("PWNED-pre").exists() && !t.path("book/PWNED-pre").exists());
    assert!(!t.path("PWNED-out").exists() && !t.path("book/PWNED-out").exists());
    let t = project(RB).file(
        "book/book.toml",
        "[book]\ntitle = \"t\"\n\n[output.html]\nadditional-js = [\"../../../../../../../../etc/passwd\"]\n",
    );
    let out = t.run_args(&["render".into()]);
    out.code_is(2);
    assert!(!all_text(t.dir.path()).contains("root:x:0:0"), "/etc/passwd was copied");
}

#[test]
fn on_failure_links_on_cards_are_relative_paths_only() {
    let rb = "# R\n\n```manual id=a on-failure=javascript:alert(1).md\n```\n";
    let t = project(rb).file("runbooks/javascript:alert(1).md", "# Evil\n");
    let out = t.run_args(&["render".into()]);
    out.code_is(0);
    let page = read(&t.path("site/runbooks/r.html"));
    assert!(page.contains("rb-on-failure"), "the link is there");
    for (p, b) in files(&t.path("site")) {
        let text = String::from_utf8_lossy(&b).to_lowercase();
        assert!(
            !text.contains("href=\"javascript:"),
            "{} links to a javascript: URL",
            p.display()
        );
    }
}

#[test]
fn rhai_cards_are_rhai_not_a_rust_playground() {
    let rb = "# R\n\n```rhai id=a\nlet s = `\n# a line mdBook would hide\n`;\n#{ x: s }\n```\n";
    let t = project(rb);
    let out = t.run_args(&["render".into()]);
    out.code_is(0);
    let page = read(&t.path("site/runbooks/r.html"));
    assert!(page.contains("language-rhai"), "{page}");
    assert!(page.contains("# a line mdBook would hide"), "no hidden lines");
    for (p, b) in files(&t.path("site")) {
        if p.extension().is_some_and(|e| e == "html") {
            let text = String::from_utf8_lossy(&b);
            for bad in ["class=\"playground\"", "fn main()", "class=\"boring\"", "language-rust"] {
                assert!(!text.contains(bad), "{} has {bad}", p.display());
            }
        }
    }
}

#[test]
fn every_page_forbids_loading_from_other_hosts() {
    let rb = "# R\n\nA tracker: <img src=\"https://tracker.example/p.png\">\n\n```rhai id=a\n#{}\n```\n";
    let t = project(rb);
    let out = t.run_args(&["render".into()]);
    out.code_is(0);
    let mut pages = 0;
    for (p, b) in files(&t.path("site")) {
        if p.extension().is_some_and(|e| e == "html") && !p.ends_with("toc.html") {
            let text = String::from_utf8_lossy(&b);
            let head = text.split("</head>").next().unwrap_or("");
            assert!(
                head.contains("http-equiv=\"Content-Security-Policy\"") && head.contains("default-src 'self'"),
                "{} has no Content-Security-Policy",
                p.display()
            );
            assert!(!head.contains("mathjax"), "{}", p.display());
            pages += 1;
        }
    }
    assert!(pages >= 3, "{pages} pages");
}

/// `render --serve` on a scratch project, which lives as long as the server.
fn serve(timeout_ms: u64) -> (Served, Test) {
    let t = project(RB);
    (crate::common::site::serve(&t, timeout_ms), t)
}

fn status_field(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field")
}

fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn serve_bounds_request_size_connections_and_time() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (server, _t) = serve(1000);
    let pid = server.child.id();
    assert!(get(server.port, "/").starts_with("HTTP/1.1 200"));

    // A request line that never ends: cut off long before 64 MiB.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.write_all(b"GET /").expect("send");
    let chunk = vec![b'a'; 1 << 20];
    let sent = (0..64).take_while(|_| s.write_all(&chunk).is_ok()).count();
    assert!(sent < 64, "the server read a 64 MiB request line");
    drop(s);

    // Endless headers: the same.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\n").expect("send");
    let header = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(1 << 14);
    let sent = (0..64).take_while(|_| s.write_all(&header).is_ok()).count();
    assert!(sent < 64, "the server read 64 MiB of headers");
    drop(s);
    assert!(status_field(pid, "VmHWM:") < 200_000, "memory grew with the request");

    // Connections that say nothing are closed after the read timeout.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    let _ = idle.read(&mut buf);
    assert!(t0.elapsed() < Duration::from_secs(10), "an idle connection was kept");

    // Many connections at once do not make many threads.
    let many: Vec<_> = (0..200)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let threads = status_field(pid, "Threads:");
    assert!(threads <= 40, "{threads} threads for {} connections", many.len());
    drop(many);
    // And once they are gone the site is served again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if get(server.port, "/").starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
}
