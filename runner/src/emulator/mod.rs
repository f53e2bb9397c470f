//! The local AWS emulator behind `runbook rehearse` (and `runbook emulator`): moto server from
//! PyPI, installed into a virtualenv under the state directory the first time, started on a free
//! loopback port and stopped when the rehearsal ends.
//!
//! In front of moto sits an answering layer of ours, because moto emulates AWS's APIs but not
//! the account a new operator has, nor AWS's rules. Where they differ the layer answers as AWS
//! does, on the wire, so that the plugins take the very path they take at AWS (a flag the plugins
//! honoured in rehearsals only would rehearse a branch no real run takes, and could be set by
//! mistake in a real one):
//!
//! - **the account** ([`Account`]): its support plan and activation (the Support API refused
//!   before activation and on plans without it), its root user as the caller on session
//!   credentials (`ASIA...`, as CloudShell gives), root MFA, an organization that exists before
//!   the rehearsal or is created by it.
//! - **what a person does in the console**: IAM Identity Center has no instance until the
//!   operator enables it (then one, in one home region); users synchronized from a directory or
//!   an IdP appear a while after the operator put them in sync scope.
//! - **AWS's rules that moto leaves out**: a new organization refuses CreateAccount while it is
//!   set up (`FinalizingOrganizationException`); an account's email is unique and at most 64
//!   characters, its name at most 50; a permission set's name is unique in its instance and at
//!   most 32 characters; a user name at most 128; UpdatePermissionSet changes only what it names.
//! - **what moto does not implement**: permission set provisioning status, the accounts a
//!   changed set has not reached, assignment creations in progress, UpdateUser.
//!
//! The rules are in `rules.rs`, `organizations.rs` and `identity_center.rs`, and answer through
//! the wire (`wire.rs`, on hyper), which knows no rule: it reads a call, asks a handler, writes
//! the answer. XML answers are read and changed with xmlparser (`xml.rs`). Everything else goes
//! to moto unchanged. The layer listens on loopback only.
//!
//! The test suite's fault proxy stands on the same wire and calls the same rules (the root
//! caller, root MFA, provisioning status), so they are public, and this module with them; it is
//! no API of the crate.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::process::{Child, Command};

mod account;
pub mod identity_center;
mod organizations;
pub mod rules;
pub mod wire;
mod xml;

pub use account::{Account, IdentityCenter, SupportPlan};

/// The moto release the rehearsal (and the test suite) is known to work with.
pub const MOTO: &str = "moto[server]==5.2.5";

/// The access key the rehearsal signs with: a session credential's (`ASIA`), as in CloudShell.
pub const ACCESS_KEY: &str = "ASIAREHEARSALROOT001";

pub struct Emulator {
    child: Child,
    layer: tokio::task::JoinHandle<()>,
    /// Where the SDK sends its calls: the answering layer in front of moto.
    pub endpoint: String,
}

impl Emulator {
    pub async fn stop(mut self) {
        self.layer.abort();
        let _ = self.child.kill().await;
    }
}

/// Why the emulator did not start; each says what to install or check.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot run {python} to create a virtualenv: {error}; install Python 3 with venv")]
    NoPython { python: String, error: std::io::Error },
    #[error("`{python} -m venv {}` failed; install Python 3 with venv (Debian: python3-venv)", venv.display())]
    Venv { python: String, venv: PathBuf },
    #[error("pip: {0}")]
    Pip(std::io::Error),
    #[error("pip install {MOTO} failed:\n{0}")]
    Install(String),
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
    #[error("cannot start {}: {error}", bin.display())]
    Spawn { bin: PathBuf, error: std::io::Error },
    #[error("moto_server exited with {0}")]
    Exited(std::process::ExitStatus),
    #[error("moto_server did not answer within 30s")]
    NoAnswer,
    #[error("setting up the emulated account: {0}")]
    Prepare(String),
}

/// Finds `moto_server`: `$RUNBOOK_MOTO_SERVER`, the state directory's virtualenv, or a new one.
async fn moto_server(state_dir: &Path, say: &dyn Fn(&str)) -> Result<PathBuf, EmulatorError> {
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
        .map_err(|error| EmulatorError::NoPython {
            python: python.clone(),
            error,
        })?;
    if !status.success() {
        return Err(EmulatorError::Venv { python, venv });
    }
    let out = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", MOTO])
        .output()
        .await
        .map_err(EmulatorError::Pip)?;
    if !out.status.success() {
        return Err(EmulatorError::Install(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(bin)
}

fn free_port() -> Result<u16, EmulatorError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(EmulatorError::Port)?;
    l.local_addr().map(|a| a.port()).map_err(EmulatorError::Port)
}

/// Starts moto on loopback, waits until it answers, puts the answering layer in front, and
/// makes the account what it is before the rehearsal (an organization, Identity Center).
pub async fn start(state_dir: &Path, account: Account, say: &dyn Fn(&str)) -> Result<Emulator, EmulatorError> {
    let bin = moto_server(state_dir, say).await?;
    let mut last = EmulatorError::NoAnswer;
    for _ in 0..3 {
        let port = free_port()?;
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| EmulatorError::Spawn {
                bin: bin.clone(),
                error,
            })?;
        let moto = wire::Upstream::new(port);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = child.try_wait() {
                last = EmulatorError::Exited(status);
                break;
            }
            if moto.ready().await {
                let world = rules::World::new(account, moto);
                world
                    .prepare()
                    .await
                    .map_err(|e| EmulatorError::Prepare(e.to_string()))?;
                let listener = TcpListener::bind("127.0.0.1:0").await.map_err(EmulatorError::Port)?;
                let endpoint = format!("http://{}", listener.local_addr().map_err(EmulatorError::Port)?);
                let layer = tokio::spawn(wire::serve(listener, Arc::new(world)));
                return Ok(Emulator { child, layer, endpoint });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill().await;
    }
    Err(last)
}
