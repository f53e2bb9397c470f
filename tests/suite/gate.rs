//! The gate every mutating call passes (issue 27): a claim on the target per look-then-act, a
//! landing wait on every attempt where AWS makes duplicates, marks cleared when AWS answers, a
//! clock that went back waits the whole time, an STS outage changes nothing.

use std::time::{Duration, Instant};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, cases_with, run_dirs};

/// One support case, filed by a step that may try twice.
const CASE: &str = r#"# Case

```aws support.ensure-case id=case retries=1
subject = "Gate probe: account not activated"
body = "The account is not activated."
```
"#;

fn run(t: &Test, args: &[&str]) -> crate::common::Output {
    t.run_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// `retries=` on a step whose last attempt lost CreateCase's answer: the retry claims the target
/// again and waits for the first request to land before it looks (attacker finding: "retry 1 of
/// 1", a second CreateCase, two cases, exit 0).
#[test]
fn a_retry_waits_for_a_lost_create_case_to_land_before_it_looks() {
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            hold_first: Some(("CreateCase".into(), Duration::from_secs(5))),
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", CASE)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("RUNBOOK_LANDING_MS", "7000");
    let out = run(&t, &["run", "r.md", "--yes", "--attempt-timeout", "1s"]);
    std::thread::sleep(Duration::from_secs(2)); // the held request has landed by now
    assert_eq!(
        cases_with(&moto.endpoint, "Gate probe").len(),
        1,
        "one case: {out:?}\n{:?}",
        proxy.operations()
    );
    out.code_is(0).stdout_has("may still reach AWS");
    assert_eq!(proxy.calls("CreateCase"), 1, "{:?}", proxy.operations());
}

/// Two items of one fan-out that file the same case: the second waits for the first's claim,
/// then finds its case (attacker finding: two cases).
#[test]
fn two_items_with_one_subject_file_one_case() {
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: Duration::from_millis(150),
            ..Rules::default()
        },
    );
    let text = r#"# Twice

```aws support.ensure-case id=case for-each='["first", "second"]'
subject = "Gate probe: one subject"
body = "Filed by ${item}."
```
"#;
    let t = Test::new().file("r.md", text).aws(&proxy.endpoint);
    let out = run(&t, &["run", "r.md", "--yes", "--max-in-flight", "2"]);
    out.code_is(0);
    assert_eq!(
        cases_with(&moto.endpoint, "Gate probe").len(),
        1,
        "one case: {out:?}\n{:?}",
        proxy.operations()
    );
}

/// Two runs of one runbook started together (`--run x`, `--run y`): one files the case, the
/// other finds it (attacker finding: runs share a state directory but not a lock; two cases).
#[test]
fn two_runs_started_together_file_one_case() {
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: Duration::from_millis(300),
            ..Rules::default()
        },
    );
    let t = Test::new().file("r.md", CASE).aws(&proxy.endpoint);
    let args = |name: &str| -> Vec<String> {
        ["run", "r.md", "--yes", "--run", name]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let x = t.spawn(&args("x"));
    let y = t.spawn(&args("y"));
    let (x, y) = (Test::wait(x), Test::wait(y));
    x.code_is(0);
    y.code_is(0);
    assert_eq!(
        cases_with(&moto.endpoint, "Gate probe").len(),
        1,
        r#"one case:
{x:?}
{y:?}
{:?}"#,
        proxy.operations()
    );
}

/// A call AWS answered leaves no mark: another journal sending the same request is not stopped
/// as an unknown outcome (attacker finding: marks were never cleared, and a later run stopped
/// with exit 3 for a call AWS had answered, which trains people to answer `resend = true`).
#[test]
fn an_answered_call_leaves_no_mark_behind() {
    let moto = Moto::shared();
    let first = r#"# Tag

```aws iam:CreateUser id=user
UserName = "gate-probe"
```

```aws iam:TagUser id=tag
UserName = "gate-probe"
Tags = [{ Key = "team", Value = "ops" }]
```
"#;
    let second = r#"# Tag again

```aws iam:TagUser id=tag-again
UserName = "gate-probe"
Tags = [{ Key = "team", Value = "ops" }]
```
"#;
    let t = Test::new()
        .file("first.md", first)
        .file("second.md", second)
        .aws(&moto.endpoint);
    run(&t, &["run", "first.md"]).code_is(0);
    let pending = t.path(".runbook/pending");
    let marks: Vec<_> = std::fs::read_dir(&pending)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| e.file_name())
        .collect();
    assert!(marks.is_empty(), "marks left behind: {marks:?}");
    run(&t, &["run", "second.md"])
        .code_is(0)
        .stderr_lacks("outcome is unknown");
}

/// A clock that went back since a request was sent (or a mark dated in the future) waits the
/// whole landing time: no time is known to have passed (attacker finding: a negative interval
/// turned the wait off).
#[test]
fn a_clock_that_went_back_waits_the_whole_landing_time() {
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            hold_first: Some(("CreateCase".into(), Duration::from_secs(2))),
            ..Rules::default()
        },
    );
    let text = CASE.replace(" retries=1", "");
    let t = Test::new()
        .file("r.md", &text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("RUNBOOK_LANDING_MS", "3000");
    run(&t, &["run", "r.md", "--yes", "--attempt-timeout", "1s"]).code_is(1);
    std::thread::sleep(Duration::from_secs(2)); // landed at moto meanwhile
    // Every record of the send says it happened an hour from now.
    let future = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .expect("time")
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let stamp = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").expect("re");
    for dir in run_dirs(&t.path(".runbook")) {
        let path = dir.join("transcript.jsonl");
        let text = std::fs::read_to_string(&path).expect("transcript");
        std::fs::write(&path, stamp.replace_all(&text, future.as_str()).as_bytes()).expect("write");
    }
    for e in std::fs::read_dir(t.path(".runbook/pending")).expect("marks").flatten() {
        if e.file_name().to_string_lossy().ends_with(".json") {
            let text = std::fs::read_to_string(e.path()).expect("mark");
            std::fs::write(e.path(), stamp.replace_all(&text, future.as_str()).as_bytes()).expect("write");
        }
    }
    let t0 = Instant::now();
    let again = run(&t, &["run", "r.md", "--yes"]);
    again.code_is(0).stdout_has("may still reach AWS");
    assert!(t0.elapsed() >= Duration::from_millis(2900), "waited {:?}", t0.elapsed());
    assert_eq!(cases_with(&moto.endpoint, "Gate probe").len(), 1, "{again:?}");
}

/// STS answering 5xx: the run says so, names STS, runs nothing and leaves the record as it was;
/// the next clean run finds everything done (attacker finding: every AWS step read as changed, a
/// call by name stopped as "unknown", its `done` was overwritten, and clean runs kept exiting 3).
#[test]
fn an_sts_outage_changes_nothing() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let text = r#"# Made once

```aws iam:CreateUser id=user
UserName = "sts-outage-probe"
```
"#;
    let t = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "1");
    run(&t, &["run", "r.md"]).code_is(0);
    let state = |t: &Test| -> serde_json::Value {
        let dir = run_dirs(&t.path(".runbook")).pop().expect("a run");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).expect("state")).expect("json");
        v["steps"].clone()
    };
    let before = state(&t);
    let n = proxy.calls("GetCallerIdentity");
    proxy.set_rules(Rules {
        server_error_nth: Some(("GetCallerIdentity".into(), n + 1)),
        ..Rules::default()
    });
    let out = run(&t, &["run", "r.md"]);
    out.code_is(1)
        .stderr_has("sts:GetCallerIdentity")
        .stderr_has("InternalServerException")
        .stderr_lacks("outcome is unknown");
    assert_eq!(state(&t), before, "the steps' record is as it was\n{out:?}");
    run(&t, &["run", "r.md"]).code_is(0);
    assert_eq!(proxy.calls("CreateUser"), 1, "{:?}", proxy.operations());
}

/// Two runs of one runbook under different `--run` names, started together, each ensuring the
/// account for one email: one account (attacker finding: both listed none, both created, and the
/// organization had two accounts with one root email).
#[test]
fn two_runs_started_together_make_one_account_for_an_email() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: Duration::from_millis(300),
            ..Rules::default()
        },
    );
    let text = r#"# Race

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=acc
email = "race@example.com"
name = "race-acct"
```
"#;
    let t = Test::new().file("r.md", text).aws(&proxy.endpoint);
    t.run_args(&["run".into(), "r.md".into(), "--only".into(), "org".into()])
        .code_is(0);
    let args = |name: &str| -> Vec<String> {
        ["run", "r.md", "--yes", "--run", name]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let a = t.spawn(&args("a"));
    let b = t.spawn(&args("b"));
    let (a, b) = (Test::wait(a), Test::wait(b));
    a.code_is(0);
    b.code_is(0);
    assert_eq!(proxy.calls("CreateAccount"), 1, "{a:?}\n{b:?}");
}
