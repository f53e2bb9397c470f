//! The promise × path table's last cells (book/src/safety.md, issue 27): a secret through the
//! retry path, nothing believed on a follow-up run, and two runs of one state directory at once,
//! each attacked through the binary, moto and the fault proxy.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test, block_on, cases_with, run_dirs, sdk};

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn run(t: &Test, a: &[&str]) -> Output {
    t.run_args(&args(a))
}

/// The forms a secret takes on its way: as given, in either case, URL-encoded (a query-protocol
/// request, a URL in an error), base64 and hex.
fn encodings(secret: &str) -> Vec<String> {
    let url: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    vec![
        secret.to_string(),
        secret.to_uppercase(),
        secret.to_lowercase(),
        url,
        base64::engine::general_purpose::STANDARD.encode(secret),
        hex::encode(secret),
    ]
}

#[track_caller]
fn absent(written: &str, secrets: &[&str]) {
    for s in secrets {
        for form in encodings(s) {
            let at = written.find(&form);
            assert!(
                at.is_none(),
                "`{form}` (a form of `{s}`) was written: …{}…",
                at.map(|i| &written[i.saturating_sub(200)..(i + 200).min(written.len())])
                    .unwrap_or_default()
            );
        }
    }
}

/// The `steps` of the state file of the run whose directory ends in `run`.
fn steps_of(t: &Test, run: &str) -> serde_json::Value {
    let dir = run_dirs(&t.path(".runbook"))
        .into_iter()
        .find(|d| d.file_name().is_some_and(|n| n.to_string_lossy() == run))
        .unwrap_or_else(|| panic!("no run `{run}` in {:?}", run_dirs(&t.path(".runbook"))));
    let text = std::fs::read_to_string(dir.join("state.json")).expect("state.json");
    serde_json::from_str::<serde_json::Value>(&text).expect("json")["steps"].clone()
}

fn status(steps: &serde_json::Value, step: &str) -> String {
    steps[step]["status"].as_str().unwrap_or("none").to_string()
}

fn users_named(endpoint: &str, name: &str) -> usize {
    block_on(async {
        let iam = sdk(endpoint).iam().await.expect("client");
        let out = iam.list_users().send().await.expect("list");
        out.users().iter().filter(|u| u.user_name() == name).count()
    })
}

// ---------------------------------------------------------------------------------------------
// retry × a secret never appears

const SECRET_INPUT: &str = "```runbook\n[inputs.name]\nprompt = \"name\"\nsecret = true\n```\n";

/// Canary credentials: a refusal that quotes what the request carried names them.
const ACCESS_KEY: &str = "AKIAZQ7XK3RETRY00001";
const SECRET_KEY: &str = "zq7xk3-retry-secret-key-canary";
const SESSION_TOKEN: &str = "zq7xk3-retry-session-token-canary";

/// `retries=` sends a failed step again, and each failure is shown ("retry 1 of 1"), journaled
/// and streamed: a request that held a secret input (quoted back by AWS's "cannot be found"), a
/// script that read one, a refusal that quotes the credentials (with the SDK's own resends of
/// server errors), and a create whose answer was lost, then its re-run. No form of any of them is
/// in any byte written.
#[test]
fn a_retry_never_shows_the_secret_its_request_held() {
    let secret = "Hunter2+Retry@x";
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let look = format!(
        "# Look\n\n{SECRET_INPUT}\n```aws iam:GetUser id=look retries=1\nUserName = \"${{inputs.name}}\"\n```\n"
    );
    let script =
        format!("# Script\n\n{SECRET_INPUT}\n```rhai id=script retries=1\nfail(\"bad: \" + inputs.name)\n```\n");
    let org = "# Org\n\n```aws organizations:DescribeOrganization id=org retries=1\n```\n";
    let make = format!(
        "# Make\n\n{SECRET_INPUT}\n```aws iam:CreateUser id=mk retries=1\nUserName = \"${{inputs.name}}\"\n```\n"
    );
    let t = Test::new()
        .file("look.md", look)
        .file("script.md", script)
        .file("org.md", org)
        .file("make.md", make)
        .aws(&proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let with = |file: &str, events: &str| {
        let input = format!("name={secret}");
        run(&t, &["run", file, "--yes", "--input", &input, "--events", events])
    };
    let mut outputs = String::new();

    let out = with("look.md", "look.ndjson");
    out.code_is(1).stdout_has("retry 1 of 1").stdout_has("withheld");
    outputs.push_str(&out.all());

    let out = with("script.md", "script.ndjson");
    out.code_is(1).stdout_has("retry 1 of 1").stdout_has("withheld");
    outputs.push_str(&out.all());

    proxy.set_rules(Rules {
        echo_credentials: true,
        server_error_pct: 50,
        seed: 7,
        ..Rules::default()
    });
    let out = run(&t, &["run", "org.md", "--events", "org.ndjson"]);
    out.code_is(1).stdout_has("retry 1 of 1");
    assert!(
        proxy.injected("echo-credentials") > 0,
        "no refusal quoted the credentials: {out:?}"
    );
    outputs.push_str(&out.all());

    proxy.set_rules(Rules {
        lose_answer_once: Some("CreateUser".into()),
        ..Rules::default()
    });
    let out = with("make.md", "make.ndjson");
    assert_ne!(out.code, 0, "{out:?}");
    outputs.push_str(&out.all());
    let again = with("make.md", "make-again.ndjson");
    again.code_is(3);
    outputs.push_str(&again.all());
    assert_eq!(proxy.calls("CreateUser"), 1, "{out:?}\n{again:?}");

    absent(
        &(outputs + t.written().as_str()),
        &[secret, ACCESS_KEY, SECRET_KEY, SESSION_TOKEN],
    );
}

// ---------------------------------------------------------------------------------------------
// follow-up run × nothing believed that AWS did not answer

const PARENT: &str = "# Parent\n\n```rhai id=go on-failure=child.md\nfail(\"x\")\n```\n";
const CHILD: &str = "# Child\n\n```aws iam:CreateUser id=mk\nUserName = \"followup-probe\"\n```\n";
/// The follow-up's run name: `after-<parent run>-<step>`.
const CHILD_RUN: &str = "after-default-go";

/// A follow-up whose create by name loses its answer (moto made the user, the answer is a 500)
/// ends unknown, never done; the parent's re-run continues into it again, and it stops and asks
/// instead of sending the create a second time.
#[test]
fn a_follow_up_whose_create_lost_its_answer_is_never_done_nor_sent_again() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("CreateUser".into()),
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("parent.md", PARENT)
        .file("child.md", CHILD)
        .aws(&proxy.endpoint);
    let first = run(&t, &["run", "parent.md", "--yes"]);
    assert_ne!(first.code, 0, "{first:?}");
    first.stdout_has("continuing into");
    assert!(first.all().contains("outcome is unknown"), "{first:?}");
    assert!(!first.all().contains(&format!("(run {CHILD_RUN}): done")), "{first:?}");
    assert_ne!(status(&steps_of(&t, CHILD_RUN), "mk"), "done", "{first:?}");

    let second = run(&t, &["run", "parent.md", "--yes"]);
    assert_ne!(second.code, 0, "{second:?}");
    second.stdout_has("continuing into");
    assert!(second.all().contains("resend = true"), "the follow-up asks: {second:?}");
    assert!(
        !second.all().contains(&format!("(run {CHILD_RUN}): done")),
        "{second:?}"
    );
    assert_ne!(status(&steps_of(&t, CHILD_RUN), "mk"), "done", "{second:?}");
    assert_eq!(proxy.calls("CreateUser"), 1, "{second:?}\n{:?}", proxy.operations());
    assert_eq!(users_named(&moto.endpoint, "followup-probe"), 1);
}

/// A follow-up whose identity look-up fails (STS answers 500) is an error that names STS: nothing
/// is sent, no step of the follow-up is believed done or waiting, and the parent is not done. The
/// next clean run makes the user once.
#[test]
fn a_follow_up_whose_identity_look_up_fails_believes_nothing() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file("parent.md", PARENT)
        .file("child.md", CHILD)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "1");
    // The parent's step is a script: the first look-up of the caller is the follow-up's.
    proxy.set_rules(Rules {
        server_error_nth: Some(("GetCallerIdentity".into(), 1)),
        ..Rules::default()
    });
    let out = run(&t, &["run", "parent.md", "--yes"]);
    assert_ne!(out.code, 0, "{out:?}");
    out.stdout_has("continuing into");
    assert_eq!(
        proxy.injected_on("GetCallerIdentity"),
        1,
        "{out:?}\n{:?}",
        proxy.operations()
    );
    assert!(out.all().contains("sts:GetCallerIdentity"), "STS is named: {out:?}");
    assert!(!out.all().contains("outcome is unknown"), "{out:?}");
    assert!(!out.all().contains(&format!("(run {CHILD_RUN}): done")), "{out:?}");
    assert_eq!(proxy.calls("CreateUser"), 0, "{out:?}");
    if let Some(dir) = run_dirs(&t.path(".runbook"))
        .into_iter()
        .find(|d| d.ends_with(CHILD_RUN))
    {
        let steps = steps_of(&t, CHILD_RUN);
        let mk = status(&steps, "mk");
        assert!(
            mk != "done" && mk != "waiting",
            "mk is {mk} in {}: {steps}",
            dir.display()
        );
    }
    assert_ne!(status(&steps_of(&t, "default"), "go"), "done");

    let clean = run(&t, &["run", "parent.md", "--yes"]);
    assert!(clean.all().contains(&format!("(run {CHILD_RUN}): done")), "{clean:?}");
    assert_eq!(proxy.calls("CreateUser"), 1, "{clean:?}");
    assert_eq!(users_named(&moto.endpoint, "followup-probe"), 1);
}

// ---------------------------------------------------------------------------------------------
// concurrent run × nothing believed that AWS did not answer

const RACE: &str = "# Race\n\n```aws iam:CreateUser id=mk\nUserName = \"race-probe\"\n```\n";

/// Polls `f` every 20 ms for up to 20 s.
fn until(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run B starts while run A's CreateUser is on its way (held by the proxy, then its answer is
/// lost): B stops on the unknown outcome (exit 3) and never reports the step done nor sends it.
#[test]
fn a_run_started_while_another_runs_create_is_in_flight_stops_on_its_unknown_outcome() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("CreateUser".into()),
            hold_first: Some(("CreateUser".into(), Duration::from_millis(1500))),
            ..Rules::default()
        },
    );
    let t = Test::new().file("r.md", RACE).aws(&proxy.endpoint);
    let a = t.spawn(&args(&["run", "r.md", "--yes", "--run", "a"]));
    until("run a's CreateUser", || proxy.calls("CreateUser") == 1);
    let b = t.spawn(&args(&["run", "r.md", "--yes", "--run", "b"]));
    let (a, b) = (Test::wait(a), Test::wait(b));
    a.code_is(1).stderr_has("outcome is unknown");
    b.code_is(3);
    assert!(b.all().contains("outcome is unknown"), "{b:?}");
    assert!(!b.stdout.contains("✓ mk"), "{b:?}");
    assert_ne!(status(&steps_of(&t, "b"), "mk"), "done", "{b:?}");
    assert_eq!(proxy.calls("CreateUser"), 1, "{a:?}\n{b:?}");
    assert_eq!(users_named(&moto.endpoint, "race-probe"), 1);
}

/// The claim file of a call by name's target, as `runner/src/exec/gate.rs` names it.
fn claim_path(state: &Path, call: &str, target: &str, endpoint: &str) -> std::path::PathBuf {
    // The gate writes an endpoint one way however it is spelled: every loopback name as one.
    let endpoint = endpoint.trim_end_matches('/').replace("://127.0.0.1", "://loopback");
    let mut h = Sha256::new();
    for part in ["target-v1", call, target, &endpoint, "123456789012"] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    state
        .join("claims")
        .join(format!("{}.lock", hex::encode(&h.finalize()[..16])))
}

/// Two runs that both found no unknown outcome and then wait for one claim on the same target
/// (held meanwhile by a third holder, as another run or item acting on it would): the first
/// sends and its answer is lost; the second, once it holds the claim, must see the mark the first
/// left and stop (exit 3), never send the create again nor report it done. CreateAccessKey is
/// one AWS makes twice. Found here: the check for an unknown outcome comes before the claim,
/// so the second sends a second key and says done. The window is real without a third holder:
/// two runs started together sent a lost CreateUser twice in 1 of 6 tries.
#[test]
fn two_runs_waiting_on_one_claim_never_send_a_lost_create_twice() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("CreateAccessKey".into()),
            ..Rules::default()
        },
    );
    let keys = || {
        block_on(async {
            let iam = sdk(&moto.endpoint).iam().await.expect("client");
            let out = iam
                .list_access_keys()
                .user_name("race-probe")
                .send()
                .await
                .expect("keys");
            out.access_key_metadata().len()
        })
    };
    block_on(async {
        let iam = sdk(&moto.endpoint).iam().await.expect("client");
        iam.create_user().user_name("race-probe").send().await.expect("user");
    });
    let text = "# Key\n\n```aws iam:CreateAccessKey id=key\nUserName = \"race-probe\"\n```\n";
    let t = Test::new().file("r.md", text).aws(&proxy.endpoint);
    let state = t.path(".runbook");
    std::fs::create_dir_all(state.join("claims")).expect("claims");
    for d in [state.clone(), state.join("claims")] {
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    }
    let claim = claim_path(
        &state,
        "iam:CreateAccessKey",
        r#"{"UserName":"race-probe"}"#,
        &proxy.endpoint,
    );
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&claim)
        .expect("claim file");
    std::fs::set_permissions(&claim, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    fs4::fs_std::FileExt::lock_exclusive(&held).expect("hold the claim");
    let a = t.spawn(&args(&["run", "r.md", "--yes", "--run", "a"]));
    let b = t.spawn(&args(&["run", "r.md", "--yes", "--run", "b"]));
    // Both have looked up who they are; past the wait message's second, both wait on the claim.
    until("both runs' identity", || proxy.calls("GetCallerIdentity") >= 2);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(proxy.calls("CreateAccessKey"), 0, "the claim is held");
    fs4::fs_std::FileExt::unlock(&held).expect("release");
    let (a, b) = (Test::wait(a), Test::wait(b));
    assert!(
        a.all().contains("waiting: another item or run") && b.all().contains("waiting: another item or run"),
        "both runs waited on the claim:\n{a:?}\n{b:?}"
    );
    assert_eq!(proxy.calls("CreateAccessKey"), 1, "sent twice:\n{a:?}\n{b:?}");
    assert_eq!(keys(), 1, "two keys:\n{a:?}\n{b:?}");
    assert!(a.code != 0 && b.code != 0, "one said done:\n{a:?}\n{b:?}");
    assert!(
        a.code == 3 || b.code == 3,
        "the second stops on the unknown outcome:\n{a:?}\n{b:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// concurrent run × a secret never appears

/// A support case whose subject holds a secret input (a key input in the second runbook).
fn case_runbook(key: bool) -> String {
    format!(
        "# Case\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n{}```\n\n```aws support.ensure-case id=case\nsubject = \"Reset for ${{inputs.pw}}\"\nbody = \"Please reset.\"\n```\n",
        if key { "key = true\n" } else { "" }
    )
}

/// Two runs at once whose target holds a secret: one case is filed, the other run waits on the
/// claim ("waiting: another item or run is acting on …"); with the secret a key input, the second
/// process is refused with the holder's name. Neither output, neither journal, neither events
/// stream, no claim file and no pending mark holds any form of the secret.
#[test]
fn two_runs_at_once_never_show_the_secret_their_target_holds() {
    let secret = "Conc3ntSecret";
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: Duration::from_millis(600),
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", case_runbook(false))
        .file("k.md", case_runbook(true))
        .aws(&proxy.endpoint);
    let input = format!("pw={secret}");
    let go = |file: &str, name: Option<&str>, events: &str| {
        let mut a = vec!["run", file, "--yes", "--input", &input, "--events", events];
        if let Some(n) = name {
            a.extend(["--run", n]);
        }
        t.spawn(&args(&a))
    };
    let a = go("r.md", Some("a"), "ev-a.ndjson");
    let b = go("r.md", Some("b"), "ev-b.ndjson");
    let (a, b) = (Test::wait(a), Test::wait(b));
    a.code_is(0);
    b.code_is(0);
    assert_eq!(
        cases_with(&moto.endpoint, "Reset for").len(),
        1,
        "one case:\n{a:?}\n{b:?}"
    );
    assert!(
        a.all().contains("waiting: another item or run is acting on")
            || b.all().contains("waiting: another item or run is acting on"),
        "one run waited on the other's claim:\n{a:?}\n{b:?}"
    );
    let mut outputs = a.all() + b.all().as_str();

    // The same secret as a key input: one run of `k.md`, and a second process refused.
    let looked = proxy.calls("DescribeCases");
    let first = go("k.md", None, "ev-k1.ndjson");
    // Once it looks for its case, the first run holds its journal.
    until("the first run's look", || proxy.calls("DescribeCases") > looked);
    let second = go("k.md", None, "ev-k2.ndjson");
    let (first, second) = (Test::wait(first), Test::wait(second));
    first.code_is(0);
    assert_ne!(second.code, 0, "{second:?}");
    assert!(
        second.all().contains("another run of this runbook is in progress"),
        "{second:?}"
    );
    outputs.push_str(&first.all());
    outputs.push_str(&second.all());

    let state = t.path(".runbook");
    assert!(
        state.join("claims").read_dir().is_ok_and(|mut d| d.next().is_some()),
        "no claim was taken"
    );
    for f in ["ev-a.ndjson", "ev-b.ndjson", "ev-k1.ndjson"] {
        let text = std::fs::read_to_string(t.path(f)).unwrap_or_default();
        assert!(text.contains("run-finished"), "{f} was written: {text}");
    }
    assert_eq!(run_dirs(&state).len(), 3, "{:?}", run_dirs(&state));
    absent(&(outputs + t.written().as_str()), &[secret]);
}
