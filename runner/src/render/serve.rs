//! `runbook render --serve`: the built site over HTTP on loopback, for a preview or a browser.
//! GET and HEAD only; paths stay inside the site directory. Bounded: a request line of at most
//! 8 KiB, headers of at most 16 KiB, a few dozen connections at once, and a deadline per
//! connection, so no client can make it hold memory, threads or time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longest request line read.
pub const MAX_REQUEST_LINE: usize = 8 << 10;
/// Most header bytes (all lines together) and header lines read.
pub const MAX_HEADER_BYTES: usize = 16 << 10;
pub const MAX_HEADERS: usize = 100;
/// Connections answered at once; more are told 503 and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a connection may take, from accept to the end of the answer (`RUNBOOK_SERVE_TIMEOUT_MS`
/// changes it, for tests).
pub const DEADLINE: Duration = Duration::from_secs(10);

fn deadline() -> Duration {
    std::env::var("RUNBOOK_SERVE_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEADLINE, Duration::from_millis)
}

/// Serves `root` on `listener` until the process ends; one thread per connection, at most
/// [`MAX_CONNECTIONS`] of them.
pub fn serve(listener: TcpListener, root: PathBuf) -> std::io::Result<()> {
    let busy = Arc::new(AtomicUsize::new(0));
    let limit = deadline();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = respond(&mut stream, "503 Service Unavailable", "text/plain", b"busy\n", true);
            continue;
        }
        let root = root.clone();
        let slot = Slot(busy.clone());
        std::thread::spawn(move || {
            let _slot = slot;
            let _ = answer(stream, &root, Instant::now() + limit);
        });
    }
    Ok(())
}

/// A connection's place among the [`MAX_CONNECTIONS`]; given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a request was not read.
enum Refused {
    TooLong,
    Closed,
}

/// Reads one line of at most `max` bytes before `deadline`.
fn read_line(r: &mut BufReader<TcpStream>, max: usize, deadline: Instant) -> Result<String, Refused> {
    let mut line = Vec::new();
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Refused::Closed)?;
        r.get_ref().set_read_timeout(Some(left)).map_err(|_| Refused::Closed)?;
        let buf = r.fill_buf().map_err(|_| Refused::Closed)?;
        if buf.is_empty() {
            return Err(Refused::Closed);
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let n = n.min(max + 1 - line.len());
        line.extend_from_slice(&buf[..n]);
        r.consume(n);
        if line.len() > max {
            return Err(Refused::TooLong);
        }
        if done {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

fn answer(mut stream: TcpStream, root: &Path, deadline: Instant) -> std::io::Result<()> {
    stream.set_write_timeout(Some(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    ))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = match read_line(&mut reader, MAX_REQUEST_LINE, deadline) {
        Ok(r) => r,
        Err(Refused::TooLong) => {
            return respond(
                &mut stream,
                "414 URI Too Long",
                "text/plain",
                b"request line too long\n",
                true,
            );
        }
        Err(Refused::Closed) => return Ok(()),
    };
    // Drain the headers, within their bounds.
    let mut bytes = 0;
    for n in 0.. {
        let line = match read_line(&mut reader, MAX_HEADER_BYTES, deadline) {
            Ok(l) => l,
            Err(Refused::Closed) => return Ok(()),
            Err(Refused::TooLong) => {
                return respond(
                    &mut stream,
                    "431 Request Header Fields Too Large",
                    "text/plain",
                    b"headers too large\n",
                    true,
                );
            }
        };
        if line == "\r\n" || line == "\n" {
            break;
        }
        bytes += line.len();
        if bytes > MAX_HEADER_BYTES || n >= MAX_HEADERS {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"headers too large\n",
                true,
            );
        }
    }
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"GET only\n", true);
    }
    let Some(path) = file_for(root, target) else {
        return respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            method == "GET",
        );
    };
    match std::fs::read(&path) {
        Ok(body) => respond(&mut stream, "200 OK", content_type(&path), &body, method == "GET"),
        Err(_) => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            method == "GET",
        ),
    }
}

/// The file a request path names: percent-decoded, query dropped, `..` refused, `/` is index.html.
fn file_for(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path)?;
    let mut out = root.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    out.is_file().then_some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn respond(s: &mut TcpStream, status: &str, ty: &str, body: &[u8], with_body: bool) -> std::io::Result<()> {
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if with_body {
        s.write_all(body)?;
    }
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cannot_leave_the_site() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "x").expect("write");
        assert!(file_for(dir.path(), "/").is_some());
        assert!(file_for(dir.path(), "/index.html?q=1").is_some());
        assert!(file_for(dir.path(), "/../etc/passwd").is_none());
        assert!(file_for(dir.path(), "/%2e%2e/etc/passwd").is_none());
        assert!(file_for(dir.path(), "/missing.html").is_none());
    }
}
