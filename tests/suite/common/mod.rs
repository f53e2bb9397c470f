//! The test harness: a builder that runs the real `runbook` binary in a scratch directory, and a
//! moto server (the AWS emulator) on a loopback port for each test, installed into `.venv` when
//! missing (`moto.rs`); tests that need only moto's API take one reset from those earlier tests
//! gave back (`pool.rs`). Helpers two areas share live here too: counts of what the emulator holds
//! (`counts.rs`), shared runbooks and accounts (`fixtures.rs`), scratch books (`site.rs`), the SSM
//! export's tools (`ssm.rs`).
#![allow(dead_code)]

pub mod counts;
pub mod emulator;
pub mod fault_proxy;
pub mod fixtures;
pub mod moto;
pub mod pool;
pub mod quota;
pub mod simulating;
pub mod site;
pub mod ssm;

// The names every area imports from `crate::common`, wherever they live (tests/browser.rs mounts
// this module too and uses few of them).
#[allow(unused_imports)]
pub use counts::{
    Instance, assignments_in, block_on, cases_with, identity_center, instance, part2_counts, sdk, sdk_as,
};
#[allow(unused_imports)]
pub use moto::{Moto, moto_server};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Answers that run Part 2 to its end against the emulator (an `--input` overrides any of them).
pub const PART2_ANSWERS: &str = r#"
[inputs]
home_region = "us-east-1"
identity_source = "identity-center-directory"
admin_user = "cloud.admin"
admin_email = "cloud-admins@example.com"

[steps.enable-identity-center]
confirm = true
[steps.verify-organization-email]
confirm = true
[steps.set-password]
confirm = true
[steps.identity-center-mfa]
confirm = true
[steps.portal-sign-in]
confirm = true
[steps.sign-out-root]
confirm = true
"#;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Assertions on a run, each failing with the whole output (as just's test builder does):
/// `t.run().code_is(2).stderr_has("r.md:3:1: error")`.
impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Output {
        assert_eq!(self.code, code, "exit code\n{self:?}");
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, part: &str) -> &Output {
        assert!(self.stderr.contains(part), "stderr lacks {part:?}\n{self:?}");
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, part: &str) -> &Output {
        assert!(!self.stderr.contains(part), "stderr has {part:?}\n{self:?}");
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, part: &str) -> &Output {
        assert!(self.stdout.contains(part), "stdout lacks {part:?}\n{self:?}");
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, part: &str) -> &Output {
        assert!(!self.stdout.contains(part), "stdout has {part:?}\n{self:?}");
        self
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the real binary: `Test::new().file("r.md", TEXT).args(["check", "r.md"]).run()`.
pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    unset: Vec<String>,
    stdin: String,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            args: Vec::new(),
            env: Vec::new(),
            unset: Vec::new(),
            stdin: String::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Test {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, contents).expect("write fixture");
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Test {
        self.args = args.into_iter().map(|s| s.as_ref().to_string()).collect();
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Test {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Removes a variable from the binary's environment (an empty one is not absent: the SDK
    /// takes `AWS_WEB_IDENTITY_TOKEN_FILE=""` as set).
    pub fn unset(mut self, k: &str) -> Test {
        self.unset.push(k.into());
        self
    }

    /// Points every AWS call at an emulator (or a proxy in front of it).
    pub fn aws(self, endpoint: &str) -> Test {
        self.env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret-key-never-printed")
            .env("AWS_REGION", "us-east-1")
            .env("RUNBOOK_POLL_INITIAL_MS", "20")
            // No wait for abandoned calls to land, unless a test is about it.
            .env("RUNBOOK_LANDING_MS", "0")
            .env("RUNBOOK_POLL_CAP_MS", "100")
    }

    pub fn stdin(mut self, s: &str) -> Test {
        self.stdin = s.to_string();
        self
    }

    pub fn run(&self) -> Output {
        self.run_args(&self.args)
    }

    pub fn run_args(&self, args: &[String]) -> Output {
        let mut child = self.spawn(args);
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(self.stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("wait");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts the binary and returns at once (for runs side by side); `wait` collects it.
    pub fn spawn(&self, args: &[String]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("RUNBOOK_STATE_DIR")
            .env("NO_COLOR", "1")
            .env("HOME", self.dir.path())
            .env("USER", "tester")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in &self.unset {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn runbook")
    }

    /// The output of a run [`Test::spawn`] started.
    pub fn wait(child: Child) -> Output {
        let out = child.wait_with_output().expect("wait");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Every byte runbook wrote under the scratch directory, for secret greps.
    pub fn written(&self) -> String {
        fn walk(p: &Path, out: &mut String) {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    if p.file_name().is_some_and(|n| n == "venv") {
                        continue;
                    }
                    walk(&p, out);
                } else if let Ok(b) = std::fs::read(&p) {
                    out.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
        let mut s = String::new();
        walk(self.dir.path(), &mut s);
        s
    }
}

/// The run directories under a state directory (each holds `state.json` and `transcript.jsonl`:
/// `STATE/<runbook>-<hash>/runs/<name>/`).
pub fn run_dirs(state: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![state.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if p.join("state.json").exists() || p.join("transcript.jsonl").exists() {
                    out.push(p.clone());
                }
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every byte written under a directory, by path relative to it.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").display().to_string();
                out.insert(
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned(),
                );
            }
        }
    }
    out
}

/// Every transcript under a state directory, concatenated.
pub fn transcripts(state: &Path) -> String {
    run_dirs(state)
        .iter()
        .map(|d| std::fs::read_to_string(d.join("transcript.jsonl")).unwrap_or_default())
        .collect()
}

/// The first file under `dir`, at any depth, whose name starts with `prefix`.
pub fn find(dir: &std::path::Path, prefix: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, prefix) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
            return Some(p);
        }
    }
    None
}
