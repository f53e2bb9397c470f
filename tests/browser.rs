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

/// `runbook render --serve` of `book` and `runbooks` into `site`, and headless Chromium driven by
/// chromedriver; both stopped when dropped.
struct Browser {
    port: u16,
    sid: String,
    base: String,
    _driver: Killed,
    _server: Killed,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let (port, sid) = (self.port, self.sid.clone());
        let _ = std::panic::catch_unwind(|| call(port, "DELETE", &format!("/session/{sid}"), None));
    }
}

impl Browser {
    fn start(book: &std::path::Path, runbooks: &std::path::Path, work: &std::path::Path) -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            std::path::Path::new(&chromium).exists() && std::path::Path::new(&chromedriver).exists(),
            "this test needs {chromium} and {chromedriver}: apt-get install chromium chromium-driver (.ci/run does)"
        );
        // The real command builds and serves the site; it prints the address it bound.
        let mut server = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["render", "--out"])
            .arg(work.join("site"))
            .arg("--book")
            .arg(book)
            .arg("--runbooks")
            .arg(runbooks)
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
        let profile = work.join("chromium-profile");
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
        Browser {
            port,
            sid,
            base,
            _driver: driver,
            _server: server,
        }
    }

    fn open(&self, page: &str) {
        call(
            self.port,
            "POST",
            &format!("/session/{}/url", self.sid),
            Some(json!({"url": format!("{}{page}", self.base)})),
        );
    }

    fn run(&self, script: &str) -> Value {
        call(
            self.port,
            "POST",
            &format!("/session/{}/execute/sync", self.sid),
            Some(json!({"script": script, "args": []})),
        )
    }

    fn elements(&self, css: &str) -> Vec<String> {
        elements(self.port, &self.sid, css)
    }

    fn text_of(&self, element: &str) -> String {
        text_of(self.port, &self.sid, element)
    }

    fn screenshot(&self, path: &std::path::Path) {
        let png = call(self.port, "GET", &format!("/session/{}/screenshot", self.sid), None);
        save_png(path, png.as_str().expect("base64"));
    }

    /// Opens mdBook's search, types `words`, and returns the results' texts.
    fn search(&self, words: &str) -> Vec<String> {
        let toggle = self.elements("#mdbook-search-toggle");
        call(
            self.port,
            "POST",
            &format!("/session/{}/element/{}/click", self.sid, toggle[0]),
            Some(json!({})),
        );
        let bar = self.elements("#mdbook-searchbar");
        call(
            self.port,
            "POST",
            &format!("/session/{}/element/{}/value", self.sid, bar[0]),
            Some(json!({"text": words})),
        );
        let hits = wait_for("search results", || {
            let hits = self.elements("#mdbook-searchresults li");
            (!hits.is_empty()).then_some(hits)
        });
        hits.iter().map(|h| self.text_of(h)).collect()
    }
}

fn shots() -> std::path::PathBuf {
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    shots
}

#[test]
fn part_2_page_has_cards_and_search_finds_a_word() {
    let shots = shots();
    let work = tempfile::tempdir().expect("tempdir");
    let b = Browser::start(&repo().join("book"), &repo().join("runbooks"), work.path());
    let base = b.base.clone();
    b.open("runbooks/part-2-identity-center.html");
    let title = call(b.port, "GET", &format!("/session/{}/title", b.sid), None);
    assert!(title.as_str().unwrap_or("").contains("Part 2"), "title {title}");

    // The site loads nothing from another host (the Rhai cards are no Rust playground).
    let loaded = b.run("return performance.getEntriesByType('resource').map(e => e.name)");
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
    assert!(b.elements(".playground").is_empty(), "no playground blocks");

    let cards = b.elements(".rb-step");
    let part2 = runbook::load::read(&repo().join("runbooks/part-2-identity-center.md")).expect("read");
    let steps = runbook::analyzer::check(&part2, &runbook_plugins::Registry::builtin())
        .0
        .steps
        .len();
    assert_eq!(cards.len(), steps, "one card per Part 2 step");
    let first = b.text_of(&cards[0]);
    assert!(first.contains("sts.whoami"), "first card: {first}");
    let badges: Vec<String> = b
        .elements(".rb-badge")
        .iter()
        .map(|e| b.text_of(e).to_lowercase())
        .collect();
    for bd in ["aws", "check", "person"] {
        assert!(badges.iter().any(|x| x == bd), "badge {bd} in {badges:?}");
    }
    b.screenshot(&shots.join("part-2-cards.png"));

    // mdBook's search: open it, type, see results.
    let texts = b.search("permission");
    assert!(
        texts.iter().any(|t| t.to_lowercase().contains("permission")),
        "results mention the word: {texts:?}"
    );
    b.screenshot(&shots.join("part-2-search.png"));
    eprintln!("screenshots in {}", shots.display());
}

/// What a script that ran would leave: any hostile page below sets `data-pwned` on the root
/// element (or `window.__pwned`), so the test sees a script run whatever the way in.
const CANARY: &str = "return [window.__pwned || null, document.documentElement.getAttribute('data-pwned')]";

/// A mark any script of these pages would set.
fn mark(how: &str) -> String {
    format!("document.documentElement.setAttribute('data-pwned','{how}')")
}

/// Hostile content in every place a pull request can put it: a runbook, a book page, the 404 page.
fn hostile(work: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let book = work.join("book");
    let runbooks = work.join("runbooks");
    std::fs::create_dir_all(book.join("src")).expect("mkdir");
    std::fs::create_dir_all(&runbooks).expect("mkdir");
    let write = |p: std::path::PathBuf, text: String| std::fs::write(p, text).expect("write");
    write(book.join("book.toml"), "[book]\ntitle = \"Hostile\"\n".into());
    write(
        book.join("src/SUMMARY.md"),
        "# Summary\n\n[Page](page.md)\n\n<!-- runbooks -->\n".into(),
    );
    let body = format!(
        r#"<script>window.__pwned = 'script'; {script}</script>

Inline <img src=x onerror="{img}"> and <svg onload="{svg}"><circle r=1></circle></svg> and
<details open ontoggle="{details}"><summary>s</summary>d</details>
<input autofocus onfocus="{focus}"> <iframe srcdoc="<script>parent.{iframe}</script>"></iframe>
<object data="data:text/html,<script>parent.{object}</script>"></object>
<a href="jav&#x09;ascript:{entity}">entity link</a> [md link](javascript:{md}) <javascript:{auto}>
![image](data:image/svg+xml,<svg onload="{dataimg}"/>)

<div><style>@import url(x)</style><img src=y onerror="{blockimg}"></div>

[x]<foo>(javascript:{glued})

## &lt;img src=x onerror="{crumb}"&gt; zebracrumb

## `<img src=x onerror="{code}">` quaggacode

## Attr {{onmouseover="{attr}" tabindex=1}}
"#,
        script = mark("script"),
        img = mark("img"),
        svg = mark("svg"),
        details = mark("details"),
        focus = mark("focus"),
        iframe = mark("iframe"),
        object = mark("object"),
        entity = mark("entity"),
        md = mark("md"),
        auto = mark("auto"),
        dataimg = mark("dataimg"),
        blockimg = mark("blockimg"),
        glued = mark("glued"),
        crumb = mark("crumb"),
        code = mark("code"),
        attr = mark("attr"),
    );
    write(
        runbooks.join("r.md"),
        format!("# Hostile runbook\n\n{body}\n```manual id=a\nconfirm = \"ok?\"\n```\n"),
    );
    write(book.join("src/page.md"), format!("# Hostile page\n\n{body}"));
    write(book.join("src/404.md"), format!("# Lost\n\n{body}"));
    (book, runbooks)
}

#[test]
fn hostile_pages_run_no_script_not_even_when_searched() {
    let shots = shots();
    let work = tempfile::tempdir().expect("tempdir");
    let (book, runbooks) = hostile(work.path());
    let b = Browser::start(&book, &runbooks, work.path());
    for page in ["runbooks/r.html", "page.html", "404.html", "print.html", "index.html"] {
        b.open(page);
        std::thread::sleep(Duration::from_millis(500));
        // mdBook's own scripts (inline ones too, by their hashes) ran: the theme class is set and
        // the sidebar is filled...
        let ours = b.run("return [document.documentElement.classList.contains('js'), document.querySelectorAll('#mdbook-sidebar a').length]");
        assert_eq!(ours[0], json!(true), "{page}: mdBook's inline scripts did not run");
        assert!(
            ours[1].as_u64().unwrap_or(0) > 0,
            "{page}: the sidebar is empty ({ours})"
        );
        // ...and none of the page's.
        assert_eq!(
            b.run(CANARY),
            json!([null, null]),
            "{page}: a script from the content ran"
        );
        // Each layer on its own. The sanitizer: the content as the browser read it has no
        // handler, script, frame, object or javascript: link...
        let left = b.run(
            "return Array.from(document.querySelectorAll('main *')).filter(e => \
               Array.from(e.attributes).some(a => a.name.startsWith('on')) || \
               ['SCRIPT','IFRAME','OBJECT','EMBED','SVG','STYLE'].includes(e.tagName.toUpperCase()) || \
               /^\\s*(javascript|data|vbscript):/i.test(e.getAttribute('href') || e.getAttribute('src') || '')\
             ).map(e => e.outerHTML)",
        );
        assert_eq!(left, json!([]), "{page}: hostile markup reached the page");
        // ...and the policy: a handler added now (as injected markup would be) does not run.
        b.run(&format!(
            "const i = document.createElement('img'); i.setAttribute('onerror', \"{}\"); i.src = 'missing.png'; document.body.append(i); return 0",
            mark("probe")
        ));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            b.run(CANARY),
            json!([null, null]),
            "{page}: the policy let an inline handler run"
        );
    }
    b.open("runbooks/r.html");
    for words in ["zebracrumb", "quaggacode"] {
        let texts = b.search(words);
        assert!(texts.iter().any(|t| t.contains(words)), "{words}: {texts:?}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            b.run(CANARY),
            json!([null, null]),
            "searching {words} ran a script: {texts:?}"
        );
        // The breadcrumb shows the heading as text, tag and all.
        assert!(texts.iter().any(|t| t.contains("<img src=x")), "{words}: {texts:?}");
        b.run("document.getElementById('mdbook-searchbar').value = ''; return 0");
        b.open("runbooks/r.html");
    }
    b.screenshot(&shots.join("hostile.png"));
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
