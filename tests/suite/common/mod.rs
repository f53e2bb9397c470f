//! The test harness: a builder that runs the real `runbook` binary in a scratch directory, and a
//! moto server (the AWS emulator) on a loopback port per test, installed into `.venv` when missing.
#![allow(dead_code)]

pub mod emulator;
pub mod fault_proxy;
pub mod quota;
pub mod simulating;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    fn start_program(program: impl Fn() -> Command, env: &[(&str, &str)]) -> Moto {
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
                if http_get(port, "/moto-api/")
                    .is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"))
                {
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
        let buf = self.api_post("/moto-api/reset", "text/plain", "");
        assert!(
            buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200"),
            "reset: {buf}"
        );
    }

    /// POSTs `body` to moto's own API at `path`; the whole answer.
    pub fn api_post(&self, path: &str, content_type: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect moto");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("post");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
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
        let answer = self.api_post("/moto-api/state-manager/set-transition", "application/json", &body);
        assert!(
            answer.starts_with("HTTP/1.1 20") || answer.starts_with("HTTP/1.0 20"),
            "set-transition: {answer}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

/// An SDK context on the emulator, for counting what the runs created.
pub fn sdk(endpoint: &str) -> runbook_plugins::Context {
    runbook_plugins::Context::with_limits(
        runbook_plugins::AwsOptions {
            profile: None,
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.into()),
            max_attempts: Some(1),
            attempt_timeout: None,
            static_credentials: Some(("testing".into(), "testing".into())),
        },
        std::env::temp_dir(),
        Default::default(),
        runbook_plugins::aws::published_limits(),
    )
}

/// The emulator's Identity Center as a test counts it: its users, its permission sets, and the
/// accounts the first user is assigned in (one entry per assignment, all pages).
pub struct IdentityCenter {
    pub users: usize,
    pub permission_sets: usize,
    pub assigned: Vec<String>,
}

pub fn identity_center(endpoint: &str) -> IdentityCenter {
    block_on(async {
        let ctx = sdk(endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let ic = sso.list_instances().send().await.expect("instances");
        let arn = ic.instances()[0].instance_arn().expect("arn").to_string();
        let store = ic.instances()[0].identity_store_id().expect("store").to_string();
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        let sets = sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets");
        let mut assigned = Vec::new();
        if let Some(user) = users.users().first() {
            let mut pages = sso
                .list_account_assignments_for_principal()
                .instance_arn(&arn)
                .principal_id(user.user_id())
                .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.expect("assignments");
                assigned.extend(
                    page.account_assignments()
                        .iter()
                        .filter_map(|a| a.account_id().map(String::from)),
                );
            }
        }
        IdentityCenter {
            users: users.users().len(),
            permission_sets: sets.permission_sets().len(),
            assigned,
        }
    })
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
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

/// (permission sets named AdministratorAccess, their session durations and policies, users
/// named cloud.admin, assignments of the set in the management account)
pub fn part2_counts(endpoint: &str) -> (usize, Vec<String>, usize, usize) {
    block_on(async {
        let ctx = sdk(endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let inst = sso.list_instances().send().await.expect("instances");
        let i = &inst.instances()[0];
        let arn = i.instance_arn().expect("arn").to_string();
        let store = i.identity_store_id().expect("store").to_string();
        let sets = sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets");
        let mut admin_sets = 0;
        let mut details = Vec::new();
        let mut ps_arn = String::new();
        for ps in sets.permission_sets() {
            let d = sso
                .describe_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("describe");
            let d = d.permission_set().expect("ps");
            if d.name() == Some("AdministratorAccess") {
                admin_sets += 1;
                ps_arn = ps.clone();
                details.push(d.session_duration().unwrap_or_default().to_string());
                let pols = sso
                    .list_managed_policies_in_permission_set()
                    .instance_arn(&arn)
                    .permission_set_arn(ps)
                    .send()
                    .await
                    .expect("policies");
                for p in pols.attached_managed_policies() {
                    details.push(p.name().unwrap_or_default().to_string());
                }
            }
        }
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        let admins = users
            .users()
            .iter()
            .filter(|u| u.user_name() == Some("cloud.admin"))
            .count();
        let assignments = if ps_arn.is_empty() {
            0
        } else {
            sso.list_account_assignments()
                .instance_arn(&arn)
                .account_id("123456789012")
                .permission_set_arn(&ps_arn)
                .send()
                .await
                .expect("assignments")
                .account_assignments()
                .len()
        };
        (admin_sets, details, admins, assignments)
    })
}

/// Support cases whose subject holds `subject_part`: (service code, category code).
pub fn cases_with(endpoint: &str, subject_part: &str) -> Vec<(String, String)> {
    block_on(async {
        let ctx = sdk(endpoint);
        let s = ctx.support().await.expect("client");
        let out = s
            .describe_cases()
            .include_resolved_cases(true)
            .send()
            .await
            .expect("cases");
        out.cases()
            .iter()
            .filter(|c| c.subject().unwrap_or("").contains(subject_part))
            .map(|c| {
                (
                    c.service_code().unwrap_or("").to_string(),
                    c.category_code().unwrap_or("").to_string(),
                )
            })
            .collect()
    })
}

/// Assignments of the permission set named `set_name` in `account_id`, as the emulator holds
/// them (principal ids, one per assignment: a duplicate shows twice).
pub fn assignments_in(endpoint: &str, account_id: &str, set_name: &str) -> Vec<String> {
    block_on(async {
        let ctx = sdk(endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let inst = sso.list_instances().send().await.expect("instances");
        let arn = inst.instances()[0].instance_arn().expect("arn").to_string();
        let sets = sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets");
        let mut out = Vec::new();
        for ps in sets.permission_sets() {
            let d = sso
                .describe_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("describe");
            if d.permission_set().and_then(|p| p.name()) != Some(set_name) {
                continue;
            }
            let a = sso
                .list_account_assignments()
                .instance_arn(&arn)
                .account_id(account_id)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("assignments");
            out.extend(
                a.account_assignments()
                    .iter()
                    .map(|a| a.principal_id().unwrap_or_default().to_string()),
            );
        }
        out
    })
}
