//! `runbook render` and `render --serve` on hostile books at 1x and 10x (issue 29): the site's
//! bytes against the input's, render time and peak RSS of the real binary, and what 32 clients
//! that ask for the largest page and never read make the server hold. It prints measurements and
//! their 10x/1x ratios (linear is about 10); the bounds themselves are held by the suite
//! (`tests/suite/site_bounds.rs`), never by a timing here.
//!
//! Run: `cargo bench --bench site` (`SCALE=2` doubles the 1x sizes).

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A hostile book: its name, its 1x size, and how to write it for `n` into a directory.
type Case = (&'static str, usize, fn(&Path, usize));

fn book(dir: &Path) {
    write(&dir.join("book/book.toml"), "[book]\ntitle = \"bench\"\n");
    write(&dir.join("book/src/SUMMARY.md"), "# Summary\n\n<!-- runbooks -->\n");
}

fn write(p: &Path, text: &str) {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, text).expect("write");
}

fn cases() -> Vec<Case> {
    vec![
        (
            "nested includes, 931 reads a page (refused by the budget)",
            1,
            |dir, n| {
                book(dir);
                write(&dir.join("runbooks/l0.txt"), &("x".repeat(16 << 10) + "\n"));
                write(&dir.join("runbooks/l1.txt"), &"{{#include l0.txt}}\n".repeat(30));
                write(&dir.join("runbooks/l2.txt"), &"{{#include l1.txt}}\n".repeat(30));
                for i in 0..n {
                    write(
                        &dir.join(format!("runbooks/r{i}.md")),
                        &format!("# R{i}\n\n{{{{#include l2.txt}}}}\n"),
                    );
                }
            },
        ),
        ("includes up to the site's budget", 1, |dir, n| {
            book(dir);
            write(&dir.join("runbooks/l0.txt"), &("word ".repeat(3 << 10) + "\n"));
            for i in 0..n {
                // Each page includes the same 15 KiB file 20 times: ~300 KiB a page until the
                // budget (1 MiB plus twice the inputs) is spent.
                let body = format!("# R{i}\n\n") + &"{{#include l0.txt}}\n\n".repeat(20);
                write(&dir.join(format!("runbooks/r{i}.md")), &body);
            }
        }),
        ("raw HTML, unsafe links, heading injections", 400, |dir, n| {
            book(dir);
            let one = "<script>alert(1)</script>\n\nText <img src=x onerror=alert(2)> [x](javascript:alert(3)) <javascript:alert(4)> ![i](data:x)\n\n\
<div><iframe srcdoc=\"x\"></iframe><b>bold</b></div>\n\n## &lt;img src=x onerror=alert(5)&gt; {n}\n\n";
            let body: String = (0..n).map(|i| one.replace("{n}", &i.to_string())).collect();
            write(&dir.join("runbooks/r.md"), &format!("# Hostile\n\n{body}"));
        }),
        ("many tiny runbooks (odd names)", 30, |dir, n| {
            book(dir);
            for i in 0..n {
                write(
                    &dir.join(format!("runbooks/r{i} \"q\" #{i}.md")),
                    &format!("# R{i}\n\n```manual id=a\nconfirm = \"ok?\"\n```\n"),
                );
            }
        }),
        ("one large page of prose", 5_000, |dir, n| {
            book(dir);
            let prose: String = (0..n)
                .map(|i| format!("Line {i} of prose with enough words to count.\n\n"))
                .collect();
            write(&dir.join("runbooks/r.md"), &format!("# Big\n\n{prose}"));
        }),
    ]
}

fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Render {
    ok: bool,
    input: u64,
    site: u64,
    secs: f64,
    peak_kib: u64,
}

/// Renders the book in `dir` with the real binary, watching its peak RSS.
fn render(dir: &Path) -> Render {
    let input = bytes_under(&dir.join("book")) + bytes_under(&dir.join("runbooks"));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("render")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn runbook render");
    let mut peak = 0;
    let status = loop {
        // VmHWM only grows; the last reading before the process ends is its peak (within 5 ms).
        if let Some(kib) = status_kib(child.id(), "VmHWM:") {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Render {
        ok: status.success(),
        input,
        site: bytes_under(&dir.join("site")),
        secs: started.elapsed().as_secs_f64(),
        peak_kib: peak,
    }
}

/// Serves the site already rendered in `dir`; returns (KiB held by 32 clients that never read,
/// whether another client was served whole).
fn slow_clients(dir: &Path) -> (u64, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["render", "--serve", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUNBOOK_SERVE_TIMEOUT_MS", "60000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn runbook render --serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("serve line");
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    let get = |path: &str| -> Vec<u8> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("send");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    let whole = get("/print.html");
    let before = status_kib(child.id(), "VmRSS:").unwrap_or(0);
    let slow: Vec<_> = (0..32)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            write!(s, "GET /print.html HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let held = status_kib(child.id(), "VmRSS:").unwrap_or(0).saturating_sub(before);
    let served = get("/print.html").len() == whole.len();
    drop(slow);
    let _ = child.kill();
    let _ = child.wait();
    (held, served)
}

fn main() {
    let scale: usize = std::env::var("SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    println!("runbook render on hostile books, 1x and 10x (site/input: bytes of the site per byte of input)");
    let mut largest: Option<(u64, tempfile::TempDir)> = None;
    for (name, base, make) in cases() {
        let mut rows = Vec::new();
        for factor in [1, 10] {
            let dir = tempfile::tempdir().expect("tempdir");
            make(dir.path(), base * scale * factor);
            let r = render(dir.path());
            println!(
                "  {name} {factor:>2}x: {} input {:>9} B, site {:>10} B ({:>6.1}x), {:>6.2} s, peak RSS {:>6} MiB",
                if r.ok { "rendered" } else { "refused " },
                r.input,
                r.site,
                r.site as f64 / r.input.max(1) as f64,
                r.secs,
                r.peak_kib >> 10
            );
            if r.ok && largest.as_ref().is_none_or(|(b, _)| r.site > *b) {
                largest = Some((r.site, dir));
            }
            rows.push(r);
        }
        let (a, b) = (&rows[0], &rows[1]);
        println!(
            "  {name}: 10x/1x time {:.1}, site {:.1}, peak RSS {:.1}",
            b.secs / a.secs.max(1e-9),
            b.site as f64 / a.site.max(1) as f64,
            b.peak_kib as f64 / a.peak_kib.max(1) as f64
        );
    }
    if let Some((bytes, dir)) = largest {
        let (held, served) = slow_clients(dir.path());
        println!(
            "render --serve of the largest site ({bytes} B): 32 clients that never read hold {held} KiB; another client {}",
            if served { "is served whole" } else { "is NOT served" }
        );
    }
}
