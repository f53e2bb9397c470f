//! `runbook emulator` as a test's AWS: the rehearsal's emulator (moto behind the layer that plays
//! AWS and the emulated account), kept running so that a test can prepare it, run the binary
//! against it, and look at what came of it. Stopped (SIGTERM, which stops its moto) when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Emulator {
    child: Child,
    /// Where the binary and the SDK send their calls.
    pub endpoint: String,
    _state: tempfile::TempDir,
}

impl Emulator {
    /// Starts it with these options of `runbook emulator` (`--with-identity-center`, ...).
    pub fn start(args: &[&str]) -> Emulator {
        let state = tempfile::tempdir().expect("tempdir");
        // RUNBOOK_TEST_EMULATOR: another binary's emulator, so that the runs of this build can be
        // replaced by an older one (checking that a test fails on the code before a fix).
        let bin = std::env::var_os("RUNBOOK_TEST_EMULATOR")
            .map_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_runbook")), Into::into);
        let mut child = Command::new(bin)
            .arg("emulator")
            .args(args)
            .arg("--state-dir")
            .arg(state.path())
            .env("RUNBOOK_MOTO_SERVER", super::moto_server())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start runbook emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read endpoint");
        let endpoint = line
            .trim()
            .strip_prefix("AWS_ENDPOINT_URL=")
            .unwrap_or_else(|| panic!("runbook emulator printed {line:?}"))
            .to_string();
        Emulator {
            child,
            endpoint,
            _state: state,
        }
    }
}

impl Emulator {
    /// A test whose runs call as a member account of the emulated organization (created here,
    /// named `name`), through its OrganizationAccountAccessRole.
    pub fn as_member(&self, name: &str) -> super::Test {
        let (key, secret, token) = super::block_on(async {
            let ctx = super::sdk(&self.endpoint);
            let member = ctx
                .organizations()
                .await
                .expect("client")
                .create_account()
                .account_name(name)
                .email(format!("aws+{name}@example.com"))
                .send()
                .await
                .expect("account")
                .create_account_status()
                .and_then(|s| s.account_id())
                .map(String::from)
                .expect("id");
            let creds = ctx
                .sts()
                .await
                .expect("client")
                .assume_role()
                .role_arn(format!("arn:aws:iam::{member}:role/OrganizationAccountAccessRole"))
                .role_session_name("member")
                .send()
                .await
                .expect("assume")
                .credentials()
                .cloned()
                .expect("credentials");
            (
                creds.access_key_id().to_string(),
                creds.secret_access_key().to_string(),
                creds.session_token().to_string(),
            )
        });
        super::Test::new()
            .aws(&self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_SESSION_TOKEN", &token)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM: the emulator stops its moto before it exits.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
