//! The rendered site in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! the site served by `runbook render --serve` on loopback. Needs Debian's `chromium` and
//! `chromium-driver` (.ci/run installs them); set CHROMIUM / CHROMEDRIVER to use others.

#[path = "suite/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::repo;
use serde_json::{Value, json};

/// Kills a child process when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One WebDriver call: plain HTTP/1.1 on loopback, JSON in and out.
fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut reader = BufReader::new(s);
    let mut head = String::new();
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read head");
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let mut payload = vec![0; length.expect("chromedriver sends Content-Length")];
    reader.read_exact(&mut payload).expect("read body");
    let json = String::from_utf8_lossy(&payload);
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{method} {path}: {e}: {json}"));
    if !head.starts_with("HTTP/1.1 200") {
        panic!("{method} {path}: {head}\n{v}");
    }
    v["value"].clone()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn elements(port: u16, session: &str, css: &str) -> Vec<String> {
    let v = call(
        port,
        "POST",
        &format!("/session/{session}/elements"),
        Some(json!({"using": "css selector", "value": css})),
    );
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_object()?.values().next()?.as_str().map(String::from))
        .collect()
}

fn text_of(port: u16, session: &str, element: &str) -> String {
    call(port, "GET", &format!("/session/{session}/element/{element}/text"), None)
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn part_2_page_has_cards_and_search_finds_a_word() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        std::path::Path::new(&chromium).exists() && std::path::Path::new(&chromedriver).exists(),
        "this test needs {chromium} and {chromedriver}: apt-get install chromium chromium-driver (.ci/run does)"
    );
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let work = tempfile::tempdir().expect("tempdir");
    let site = work.path().join("site");

    // The real command builds and serves the site; it prints the address it bound.
    let mut server = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["render", "--out"])
        .arg(&site)
        .arg("--book")
        .arg(repo().join("book"))
        .arg("--runbooks")
        .arg(repo().join("runbooks"))
        .args(["--serve", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn runbook render --serve");
    let stdout = server.stdout.take().expect("stdout");
    let server = Killed(server);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("serve line");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    let port = free_port();
    let driver = Killed(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver"),
    );
    wait_for("chromedriver", || TcpStream::connect(("127.0.0.1", port)).ok());

    let profile = work.path().join("chromium-profile");
    let session = call(
        port,
        "POST",
        "/session",
        Some(json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1600", format!("--user-data-dir={}", profile.display())]
        }}}})),
    );
    let sid = session["sessionId"].as_str().expect("session id").to_string();
    let end = |sid: &str| {
        let _ = std::panic::catch_unwind(|| call(port, "DELETE", &format!("/session/{sid}"), None));
    };

    let result = std::panic::catch_unwind(|| {
        call(
            port,
            "POST",
            &format!("/session/{sid}/url"),
            Some(json!({"url": format!("{base}runbooks/part-2-identity-center.html")})),
        );
        let title = call(port, "GET", &format!("/session/{sid}/title"), None);
        assert!(title.as_str().unwrap_or("").contains("Part 2"), "title {title}");

        // The site loads nothing from another host (the Rhai cards are no Rust playground).
        let loaded = call(
            port,
            "POST",
            &format!("/session/{sid}/execute/sync"),
            Some(json!({"script": "return performance.getEntriesByType('resource').map(e => e.name)", "args": []})),
        );
        let loaded: Vec<String> = loaded
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        assert!(!loaded.is_empty(), "resources were loaded");
        for url in &loaded {
            assert!(url.starts_with(&base), "{url} is not on the site's host {base}");
        }
        assert!(elements(port, &sid, ".playground").is_empty(), "no playground blocks");

        let cards = elements(port, &sid, ".rb-step");
        let part2 = runbook::load::read(&repo().join("runbooks/part-2-identity-center.md")).expect("read");
        let steps = runbook::analyzer::check(&part2, &runbook_plugins::Registry::builtin())
            .0
            .steps
            .len();
        assert_eq!(cards.len(), steps, "one card per Part 2 step");
        let first = text_of(port, &sid, &cards[0]);
        assert!(first.contains("sts.whoami"), "first card: {first}");
        let badges: Vec<String> = elements(port, &sid, ".rb-badge")
            .iter()
            .map(|e| text_of(port, &sid, e).to_lowercase())
            .collect();
        for b in ["aws", "check", "person"] {
            assert!(badges.iter().any(|x| x == b), "badge {b} in {badges:?}");
        }
        let png = call(port, "GET", &format!("/session/{sid}/screenshot"), None);
        save_png(&shots.join("part-2-cards.png"), png.as_str().expect("base64"));

        // mdBook's search: open it, type, see results.
        let toggle = elements(port, &sid, "#mdbook-search-toggle");
        call(
            port,
            "POST",
            &format!("/session/{sid}/element/{}/click", toggle[0]),
            Some(json!({})),
        );
        let bar = elements(port, &sid, "#mdbook-searchbar");
        call(
            port,
            "POST",
            &format!("/session/{sid}/element/{}/value", bar[0]),
            Some(json!({"text": "permission"})),
        );
        let hits = wait_for("search results", || {
            let hits = elements(port, &sid, "#mdbook-searchresults li");
            (!hits.is_empty()).then_some(hits)
        });
        let texts: Vec<String> = hits.iter().map(|h| text_of(port, &sid, h)).collect();
        assert!(
            texts.iter().any(|t| t.to_lowercase().contains("permission")),
            "results mention the word: {texts:?}"
        );
        let png = call(port, "GET", &format!("/session/{sid}/screenshot"), None);
        save_png(&shots.join("part-2-search.png"), png.as_str().expect("base64"));
        eprintln!("screenshots in {}", shots.display());
    });
    end(&sid);
    drop(driver);
    drop(server);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn save_png(path: &std::path::Path, b64: &str) {
    let bytes = decode_base64(b64);
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .expect("write screenshot");
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
