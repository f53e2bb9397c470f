//! The local AWS emulator behind `runbook rehearse`: moto server from PyPI, installed into a
//! virtualenv under the state directory the first time, started on a free loopback port and
//! stopped when the rehearsal ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The moto release the rehearsal (and the test suite) is known to work with.
pub const MOTO: &str = "moto[server]==5.2.5";

pub struct Emulator {
    child: Child,
    pub endpoint: String,
}

impl Emulator {
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Finds `moto_server`: `$RUNBOOK_MOTO_SERVER`, the state directory's virtualenv, or a new one.
async fn moto_server(state_dir: &Path, say: &dyn Fn(&str)) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RUNBOOK_MOTO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let venv = state_dir.join("emulator").join("venv");
    let bin = venv.join("bin").join("moto_server");
    if bin.exists() {
        return Ok(bin);
    }
    say(&format!(
        "installing the AWS emulator ({MOTO}) into {} (once; about half a minute)",
        venv.display()
    ));
    let python = std::env::var("RUNBOOK_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await
        .map_err(|e| format!("cannot run {python} to create a virtualenv: {e}; install Python 3 with venv"))?;
    if !status.success() {
        return Err(format!(
            "`{python} -m venv {}` failed; install Python 3 with venv (Debian: python3-venv)",
            venv.display()
        ));
    }
    let out = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", MOTO])
        .output()
        .await
        .map_err(|e| format!("pip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pip install {MOTO} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bin)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free loopback port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Starts moto on loopback and waits until it answers.
pub async fn start(state_dir: &Path, say: &dyn Fn(&str)) -> Result<Emulator, String> {
    let bin = moto_server(state_dir, say).await?;
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = child.try_wait() {
                last = format!("moto_server exited with {status}");
                break;
            }
            if ready(port).await {
                return Ok(Emulator { child, endpoint });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill().await;
        if last.is_empty() {
            last = "moto_server did not answer within 30s".into();
        }
    }
    Err(last)
}

async fn ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let req = format!("GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf).await, Ok(n) if n >= 12 && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200")
}
