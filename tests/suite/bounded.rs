//! No step outgrows its bounds (issue 29): `timeout=` bounds the whole step, its retries and
//! their backoff included; a stop request during a backoff is seen at once; what a step prints
//! is capped on the screen, in the journal and in `--events`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// `timeout=1s retries=5` on a script that never ends: the first attempt uses the whole second,
/// so no retry starts (attacker finding: 64 s, the backoff slept past the deadline).
#[test]
fn timeout_leaves_no_retry_once_it_has_run_out() {
    let t = Test::new().file(
        "r.md",
        r#"# Busy

```rhai id=busy timeout=1s retries=5
let x = 0; loop { x += 1; }
```
"#,
    );
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(1);
    assert!(
        !out.all().contains("retry 1 of 5"),
        "a retry started after timeout=: {out:?}"
    );
    assert!(out.all().contains("timeout=1s"), "{out:?}");
}

/// A step that fails fast is retried while its `timeout=` leaves room for the wait and stops,
/// saying why, when the next wait would outlast it.
#[test]
fn retries_stop_where_the_timeout_would_end_inside_the_backoff() {
    let t = Test::new().file(
        "r.md",
        r#"# Flaky

```rhai id=flaky timeout=4s retries=5
throw "not yet";
```
"#,
    );
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(1);
    // Waits are 2 s, 4 s, …: after the first (2 s of 4 s used) the second would end past 4 s.
    assert!(out.all().contains("retry 1 of 5"), "{out:?}");
    assert!(
        !out.all().contains("retry 2 of 5"),
        "a wait outlasted timeout=: {out:?}"
    );
    assert!(
        out.all().contains("timeout=4s leaves no time for retry 2"),
        "the stop does not say why: {out:?}"
    );
}

/// SIGTERM while a retry waits: the run stops at once, journaled as interrupted (attacker
/// finding: the backoff ran to its end before the signal was seen).
#[test]
fn a_stop_request_during_a_retry_wait_is_seen_at_once() {
    let t = Test::new().file(
        "r.md",
        r#"# Flaky

```rhai id=flaky retries=5
throw "not yet";
```
"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", "r.md"])
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("HOME", t.dir.path())
        .env_remove("RUNBOOK_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    // The third wait is 8 s long; the first two take 6 s.
    let started = Instant::now();
    let waiting = || seen.lock().map(|s| s.contains("retry 3 of 5")).unwrap_or(false);
    while !waiting() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        waiting(),
        "never reached the third wait: {:?}",
        seen.lock().map(|s| s.clone())
    );
    let signalled = Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("SIGTERM during an 8 s wait was not seen within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    assert_eq!(status.code(), Some(130), "{:?}", seen.lock().map(|s| s.clone()));
    assert!(
        t.written().contains("\"interrupted\""),
        "the journal does not say interrupted"
    );
}

/// A script that prints without end: the screen, the journal and `--events` each get at most
/// the cap, and the screen says where the rest went (attacker finding: 765 MB to stdout and to
/// the transcript in 5 s). The cap is the step's, across its fan-out items.
#[test]
fn what_a_step_prints_is_capped_on_screen_in_the_journal_and_in_events() {
    let flood = "let s = \"x\"; for i in 0..20 { s += s; } for i in 0..40 { print(s); }";
    let t = Test::new().file(
        "r.md",
        format!(
            r#"# Loud

```rhai id=loud timeout=20s
{flood}
```

```rhai id=items for-each='[1, 2, 3, 4]'
{flood}
```
"#
        ),
    );
    let out = t.run_args(&["run".into(), "r.md".into(), "--events".into(), "ev.ndjson".into()]);
    out.code_is(0);
    const CAP: usize = 64 << 10;
    // Two steps, each capped, plus the run's own lines.
    assert!(
        out.stdout.len() < 2 * CAP + 16_384,
        "stdout holds {} bytes",
        out.stdout.len()
    );
    assert!(
        out.stdout
            .contains("loud: printed more than 64 KiB; the rest of its output is dropped"),
        "the screen does not say where the rest went: {}",
        &out.stdout[out.stdout.len().saturating_sub(2000)..]
    );
    assert!(
        out.stdout.contains("items: printed more than 64 KiB"),
        "the fan-out's cap is not the step's"
    );
    let events = std::fs::metadata(t.path("ev.ndjson")).expect("events").len() as usize;
    assert!(events < 2 * CAP + 32_768, "--events holds {events} bytes");
    let state: usize = files(&t.path(".runbook")).values().map(|b| b.len()).sum();
    assert!(state < 2 * 2 * CAP + 65_536, "the state directory holds {state} bytes");
}

/// An AWS fan-out shares one `timeout=` across its items: ten items whose answers never come,
/// one at a time, stop when the step's three seconds (and the grace for a call in flight) are
/// over, the rest not started and saying so (attacker finding: each item had a deadline of its
/// own, 50 s in all).
#[test]
fn an_aws_fan_out_shares_one_timeout_across_its_items() {
    use crate::common::Moto;
    use crate::common::fault_proxy::{FaultProxy, Rules};
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            slow_op: Some("ListInstances".into()),
            slow_answers: 100,
            slow_by: Duration::from_secs(30),
            ..Default::default()
        },
    );
    let t = Test::new().aws(&proxy.endpoint).env("AWS_MAX_ATTEMPTS", "1").file(
        "r.md",
        r#"# Slow

```aws sso-admin:ListInstances id=slow timeout=3s for-each='[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]'
```
"#,
    );
    let out = t.run_args(&["run".into(), "r.md".into(), "--max-in-flight".into(), "1".into()]);
    out.code_is(1);
    assert!(
        proxy.calls("ListInstances") <= 2,
        "{} items were sent after the step's timeout ran out",
        proxy.calls("ListInstances")
    );
    let journal = t.written();
    assert!(
        journal.matches("not started: the step's timeout=3s ran out").count() >= 8,
        "the items left are not said to be not started: {out:?}"
    );
}

/// A failure that quotes a huge value, in every item and every attempt: each message is cut,
/// and the step's error names a few items, so the screen, `--events` and the journal stay small
/// (attacker finding: 10.5 MB of stdout and 15.8 MB of events from a 300-byte runbook).
#[test]
fn failure_messages_are_capped_across_items_and_retries() {
    let t = Test::new().file(
        "r.md",
        r#"# Loud failures

```rhai id=a retries=2 for-each='[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]'
let s = "y"; for i in 0..16 { s += s; }
throw s;
```
"#,
    );
    let out = t.run_args(&["run".into(), "r.md".into(), "--events".into(), "ev.ndjson".into()]);
    out.code_is(1);
    assert!(out.all().contains("more bytes not shown"), "the cut is not said");
    assert!(
        out.all().contains("and 15 more"),
        "{}",
        &out.stderr[..out.stderr.len().min(2000)]
    );
    assert!(out.all().len() < 200_000, "the screen got {} bytes", out.all().len());
    let events = std::fs::metadata(t.path("ev.ndjson")).expect("events").len();
    assert!(events < 600_000, "--events holds {events} bytes");
    let state: usize = files(&t.path(".runbook")).values().map(|b| b.len()).sum();
    assert!(state < 1_200_000, "the state directory holds {state} bytes");
}

/// A fan-out's items return, together, at most 4 MiB: past it an item's outputs are not kept
/// and the item fails saying so (attacker finding: 100 items of 500 KB each wrote 204 MB of
/// events and a 102 MB state file from a 580-byte runbook).
#[test]
fn a_fan_outs_outputs_are_bounded_together() {
    let t = Test::new().file(
        "r.md",
        r#"# Wide

```rhai id=o
let s = "z"; for i in 0..18 { s += s; }
#{ a: s }
```

```rhai id=p for-each='[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]'
#{ b: steps.o.a + item }
```
"#,
    );
    let out = t.run_args(&["run".into(), "r.md".into(), "--events".into(), "ev.ndjson".into()]);
    out.code_is(1);
    assert!(
        out.all().contains("past 4 MiB (not kept)"),
        "{}",
        &out.stderr[..out.stderr.len().min(3000)]
    );
    let events = std::fs::metadata(t.path("ev.ndjson")).expect("events").len();
    assert!(events < 6_000_000, "--events holds {events} bytes");
    let state: usize = files(&t.path(".runbook")).values().map(|b| b.len()).sum();
    assert!(state < 12_000_000, "the state directory holds {state} bytes");
}
