//! SIGKILL in the middle of a 100-account fan-out, then resume: every account exists exactly
//! once, and the journal the kill left behind still parses.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, block_on, sdk};

#[test]
fn a_fan_out_killed_halfway_resumes_and_creates_each_account_once() {
    let moto = Moto::start();
    // 15 ms per request models a round trip, so the kill lands mid-way.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: Duration::from_millis(15),
            ..Rules::default()
        },
    );
    let names: Vec<String> = (0..100).map(|i| format!("\"acme-app{i:03}-prod\"")).collect();
    let text = format!(
        r#"# Hundred

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each='[{}]' timeout=5m
name = "${{item}}"
email = "aws+${{item}}@example.com"
```
"#,
        names.join(", ")
    );
    let t = Test::new().file("r.md", text).aws(&proxy.endpoint);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    // No wait for abandoned calls to land: these tests re-run at once on purpose.
    cmd.env("RUNBOOK_LANDING_MS", "0");
    cmd.args(["run", "r.md", "--max-in-flight", "4"])
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("RUNBOOK_STATE_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    // Kill once a good part of the items are journaled.
    let start = Instant::now();
    let transcript = || crate::common::transcripts(&t.path(".runbook"));
    while transcript().matches("item-finished").count() < 30 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before = transcript();
    let done_before = before.matches("\"item-finished\"").count();
    assert!((30..100).contains(&done_before), "killed after {done_before} items");
    // Whatever the kill cut, every complete line is JSON; at most the last is partial.
    let lines: Vec<&str> = before.lines().collect();
    for l in &lines[..lines.len().saturating_sub(1)] {
        serde_json::from_str::<serde_json::Value>(l).expect("transcript line parses");
    }
    let out = t.run_args(&["run".into(), "r.md".into(), "--max-in-flight".into(), "4".into()]);
    out.code_is(0);
    assert!(
        out.stdout
            .contains(&format!("{done_before} of 100 items were already done")),
        "{out:?}"
    );
    let emails: Vec<String> = block_on(async {
        runbook_plugins::aws::organizations::all_accounts(&sdk(&moto.endpoint))
            .await
            .expect("accounts")
            .into_iter()
            .filter(|a| a.name.starts_with("acme-"))
            .map(|a| a.email)
            .collect()
    });
    let unique: std::collections::BTreeSet<&String> = emails.iter().collect();
    assert_eq!(emails.len(), 100, "one account per item");
    assert_eq!(unique.len(), 100, "no account twice");
    assert_eq!(proxy.calls("CreateAccount"), 100, "CreateAccount once per account");
}

#[test]
fn ctrl_c_journals_the_interruption_and_exits_130() {
    interrupted_by("-INT");
}

/// A terminal closed (SIGHUP) or a service manager stopping the run (SIGTERM) is an
/// interruption too, journaled as one (attacker finding, session 6: exit 143 and 129, no
/// "interrupted" in the journal).
#[test]
fn sigterm_and_sighup_are_interruptions_too() {
    interrupted_by("-TERM");
    interrupted_by("-HUP");
}

/// Interrupted while a follow-up runbook (`on-failure=`) runs: the run exits 130, not 3
/// (attacker finding, session 6: the parent said "waiting").
#[test]
fn an_interruption_in_a_follow_up_runbook_exits_130() {
    interrupted_in(
        "-TERM",
        Some(
            r#"# Parent

```rhai id=boom on-failure=busy.md
throw "no";
```
"#,
        ),
    );
}

fn interrupted_by(signal: &str) {
    interrupted_in(signal, None);
}

/// Sends `signal` while a step waits on a server that never answers; with `parent`, that step
/// is in `busy.md`, reached through the parent's `on-failure=`.
fn interrupted_in(signal: &str, parent: Option<&str>) {
    // A server that accepts and never answers keeps the step busy.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _hold = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().flatten() {
            conns.push(c);
        }
    });
    let text = format!(
        r#"# Busy

```net check-reachable id=busy
urls = ["http://127.0.0.1:{port}/"]
timeout = "60s"
```
"#
    );
    let t = match parent {
        Some(p) => Test::new().file("busy.md", text).file("r.md", p),
        None => Test::new().file("r.md", text),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .env("RUNBOOK_LANDING_MS", "0")
        .args(["run", "r.md", "--yes"])
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env_remove("RUNBOOK_STATE_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    let busy = |w: &str| w.contains("\"step-started\"") && w.contains("\"step\":\"busy\"");
    while !busy(&t.written()) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{signal}");
    assert!(started.elapsed() < Duration::from_secs(30), "stopped promptly");
    let written = t.written();
    assert!(written.contains("\"event\":\"interrupted\""), "interruption journaled");
    assert!(
        written.contains("\"outcome\": \"interrupted\""),
        "state says interrupted"
    );
}
