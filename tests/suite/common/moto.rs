//! The AWS emulator: a moto server of the test's own on a loopback port, installed into
//! `<repo>/.venv` on first use, and moto's own API (reset, state transitions).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runbook::emulator::wire::Upstream;

use super::repo;

/// The moto server binary, installing it into `<repo>/.venv` on first use (under a lock, since
/// test binaries run in parallel).
pub fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("RUNBOOK_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv");
    let bin = venv.join("bin").join("moto_server");
    if bin.exists() {
        return bin;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(repo().join(".venv.lock"))
        .expect("lock file");
    fs4::fs_std::FileExt::lock_exclusive(&lock).expect("lock");
    if !bin.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3")
            .success();
        assert!(ok, "python3 -m venv failed");
        let ok = Command::new(venv.join("bin").join("pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "moto[server]==5.2.5",
            ])
            .status()
            .expect("pip")
            .success();
        assert!(ok, "pip install moto failed");
    }
    bin
}

/// A moto server of the test's own on a free loopback port; killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// With these environment variables: `INITIAL_NO_AUTH_ACTION_COUNT=N` makes moto authorise
    /// every request after the first N against the caller's IAM policies.
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let bin = moto_server();
        Moto::start_program(|| Command::new(&bin), env)
    }

    /// `program()` started as moto_server is (`-H 127.0.0.1 -p PORT`), with `env`.
    pub(super) fn start_program(program: impl Fn() -> Command, env: &[(&str, &str)]) -> Moto {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let mut child = program()
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto");
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if super::block_on(Upstream::new(port).ready()) {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        port,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto server did not start");
    }
}

impl Moto {
    /// Forgets every resource: the emulator as if just started.
    pub fn reset(&self) {
        let (status, body) = self.api_post("/moto-api/reset", "text/plain", "");
        assert_eq!(status, 200, "reset: {body}");
    }

    /// POSTs `body` to moto's own API at `path` (through the emulator's client); the status and
    /// the body.
    pub fn api_post(&self, path: &str, content_type: &str, body: &str) -> (u16, String) {
        self.try_api_post(path, content_type, body)
            .unwrap_or_else(|e| panic!("POST {path} to moto: {e}"))
    }

    /// As `api_post`, with the failure to reach moto as an error.
    pub fn try_api_post(&self, path: &str, content_type: &str, body: &str) -> Result<(u16, String), String> {
        let moto = Upstream::new(self.port);
        let answer = super::block_on(async {
            tokio::time::timeout(Duration::from_secs(10), moto.post(path, content_type, body.to_string())).await
        });
        match answer {
            Ok(Ok(a)) => Ok((a.status, String::from_utf8_lossy(&a.body).into_owned())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in 10s".into()),
        }
    }
}

impl Moto {
    /// moto moves every support case one status further (opened, pending-customer-action,
    /// reopened, resolved, ...) each time DescribeCases shows it, so that merely looking resolves
    /// a case. This makes a case keep its status, as at AWS, until `looks` more looks.
    pub fn support_case_status_every(&self, looks: u64) {
        let body = format!(
            r#"{{"model_name": "support::case", "transition": {{"progression": "manual", "times": {looks}}}}}"#
        );
        let (status, answer) = self.api_post("/moto-api/state-manager/set-transition", "application/json", &body);
        assert!((200..300).contains(&status), "set-transition: {status} {answer}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
