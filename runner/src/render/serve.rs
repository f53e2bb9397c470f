//! `runbook render --serve`: the built site over HTTP on loopback, for a preview or a browser, on
//! hyper (the HTTP stack the AWS SDK already brings; no HTTP of our own). GET and HEAD only; paths
//! stay inside the site directory.
//!
//! Bounded, whatever clients do: hyper reads a request head of at most [`MAX_HEAD`] bytes; a file
//! is sent in [`CHUNK`]-byte pieces read only as the client takes them (hyper buffers at most
//! [`MAX_HEAD`] more), so a connection holds tens of KiB however large the file and however slow
//! the reader (and the kernel holds at most about [`SEND_BUFFER`] of it); at most
//! [`MAX_CONNECTIONS`] are served at once (the next are told 503), and a
//! connection that moves no byte for the idle time is closed. One thread runs it all.

use std::convert::Infallible;
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Most bytes of a request head read, and of a response buffered beyond the piece being sent.
pub const MAX_HEAD: usize = 16 << 10;
/// A file is read and sent in pieces of this many bytes.
pub const CHUNK: usize = 32 << 10;
/// The kernel's send buffer of a connection (Linux doubles it): what a reader that stops holds
/// outside this process is bounded too.
pub const SEND_BUFFER: usize = 64 << 10;
/// Connections served at once; more are told 503 and closed.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a connection may go without moving a byte either way (`RUNBOOK_SERVE_TIMEOUT_MS`
/// changes it, for tests).
pub const IDLE: Duration = Duration::from_secs(10);

fn idle() -> Duration {
    std::env::var("RUNBOOK_SERVE_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(IDLE, Duration::from_millis)
}

type Body = BoxBody<Bytes, std::io::Error>;

/// Serves `root` on `listener` until the process ends.
pub fn serve(listener: TcpListener, root: PathBuf) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()?;
    listener.set_nonblocking(true)?;
    runtime.block_on(accept(listener, Arc::new(root), idle()))
}

async fn accept(listener: TcpListener, root: Arc<PathBuf>, idle: Duration) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, a reset before accept: wait a little and go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                let root = Arc::clone(&root);
                tokio::spawn(async move {
                    connection(stream, root, idle).await;
                    drop(slot);
                });
            }
            Err(_) => {
                tokio::spawn(busy(stream));
            }
        }
    }
}

/// Tells a connection over the limit to come back later (without reading its request).
async fn busy(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let answer = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer)).await;
}

/// One connection, closed when it has moved no byte for `idle`.
async fn connection(stream: TcpStream, root: Arc<PathBuf>, idle: Duration) {
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
    let started = Instant::now();
    let moved = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: stream,
        started,
        moved: Arc::clone(&moved),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(MAX_HEAD)
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    let service = hyper::service::service_fn(move |req| answer(req, Arc::clone(&root)));
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep(idle / 4) => {
                let last = started + Duration::from_millis(moved.load(Ordering::Relaxed));
                if last.elapsed() > idle {
                    return; // dropping the connection closes it
                }
            }
        }
    }
}

/// A stream that notes when it last moved a byte.
struct Watched {
    inner: TcpStream,
    started: Instant,
    /// Milliseconds from `started` to the last byte moved.
    moved: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        self.moved
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
    r
}

async fn answer(req: Request<Incoming>, root: Arc<PathBuf>) -> Result<Response<Body>, Infallible> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n")),
    };
    let Some(path) = file_for(&root, req.uri().path()) else {
        return Ok(text(StatusCode::NOT_FOUND, "not found\n"));
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return Ok(text(StatusCode::NOT_FOUND, "not found\n")),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body: Body = if head {
        Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
    } else {
        // Each piece is read when hyper asks for it, that is when the client has taken the last.
        let pieces = futures::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buf = BytesMut::with_capacity(CHUNK);
            match file.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(Frame::data(buf.freeze())), Some(file))),
                Err(e) => Some((Err(e), None)),
            }
        });
        BodyExt::boxed(StreamBody::new(pieces))
    };
    let mut r = Response::new(body);
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type(&path)),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}

/// The file a request path names: percent-decoded, `..` refused, `/` is index.html.
fn file_for(root: &Path, path: &str) -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cannot_leave_the_site() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "x").expect("write");
        assert!(file_for(dir.path(), "/").is_some());
        assert!(file_for(dir.path(), "/index.html").is_some());
        assert!(file_for(dir.path(), "/../etc/passwd").is_none());
        assert!(file_for(dir.path(), "/%2e%2e/etc/passwd").is_none());
        assert!(file_for(dir.path(), "/missing.html").is_none());
    }
}
