//! The step loop's decisions, called directly: whether a step runs, whether a finished one is
//! reused, how a step's ending is told, where `on-failure=` leads; and the loop itself over
//! scripts, whose journal is read back from the events it streamed.

use std::collections::BTreeMap;

use serde_json::json;

use super::super::ending::Wait;
use super::super::testing::{Builder, Fixture};
use super::*;

/// An Env with step `a`'s outputs, public or secret.
fn env_with_a(secret: bool) -> Env {
    let mut env = Env::default();
    if secret {
        env.set_secret_step("a", json!({"x": 1, "list": [1, 2]}));
    } else {
        env.set_step("a", json!({"x": 1, "list": [1, 2]}));
    }
    env
}

const CONDITIONS: &str = "# T\n\n```rhai id=a\n#{ x: 1, list: [1, 2] }\n```\n\n\
```rhai id=plain\n1\n```\n\n```rhai id=yes if='steps.a.x == 1'\n1\n```\n\n\
```rhai id=no if='steps.a.x == 2'\n1\n```\n\n```rhai id=notbool if='steps.a.x'\n1\n```\n\n\
```rhai id=each for-each='steps.a.list'\nitem\n```\n";

fn decided(f: &Fixture, id: &str, env: &Env) -> String {
    match condition(f.step(id), env, &f.shared.engine()) {
        Condition::Run => "run".into(),
        Condition::Skip(c) => format!("skip: {c}"),
        Condition::Refused(why) => format!("refused: {why}"),
    }
}

#[test]
fn if_decides_run_skip_or_refuse() {
    let f = Fixture::run(CONDITIONS);
    let env = env_with_a(false);
    assert_eq!(decided(&f, "plain", &env), "run");
    assert_eq!(decided(&f, "yes", &env), "run");
    assert_eq!(decided(&f, "no", &env), "skip: steps.a.x == 2");
    assert_eq!(
        decided(&f, "notbool", &env),
        format!("refused: `if` condition: {}", eval::EvalError::NotBool("i64".into()))
    );
    assert_eq!(decided(&f, "each", &env), "run");
    assert!(items_env(f.step("each"), &env).is_none());
}

/// A secret known only at run time (an answer AWS marked sensitive) decides nothing: neither
/// whether a step runs nor its items.
#[test]
fn if_and_for_each_over_a_secret_are_refused() {
    let f = Fixture::run(CONDITIONS);
    let env = env_with_a(true);
    let why = |w: &str| format!("refused: `{w}=` reads a secret: whether the step runs, and its items, would tell it");
    assert_eq!(decided(&f, "yes", &env), why("if"));
    assert_eq!(decided(&f, "no", &env), why("if"));
    assert_eq!(decided(&f, "each", &env), why("for-each"));
    assert_eq!(decided(&f, "plain", &env), "run");
    // Its items, once allowed to run (the plan's and run's scope), are secret.
    assert!(items_env(f.step("each"), &env).is_some_and(|e| e.secret_item));
    assert!(items_env(f.step("plain"), &env).is_none());
}

const TWO: &str = "# T\n\n```rhai id=a\n#{ x: 1 }\n```\n\n```manual id=m\nconfirm = \"ok?\"\n```\n";

#[tokio::test]
async fn a_finished_step_is_reused_only_when_done_public_the_same_and_not_rechecked() {
    let f = Fixture::run(TWO);
    let step = f.step("a");
    let plan = identity::prepare(&f.shared, step, &Env::default(), None)
        .await
        .expect("prepared");
    let done = |hash: &str| StepState::new(StepStatus::Done, hash);
    assert!(reusable(&f.shared, step, &done(&plan.hash), &plan));
    assert!(!reusable(&f.shared, step, &done("v3:other"), &plan));
    for status in [
        StepStatus::Failed,
        StepStatus::Running,
        StepStatus::Waiting,
        StepStatus::Skipped,
    ] {
        assert!(
            !reusable(&f.shared, step, &StepState::new(status, plan.hash.clone()), &plan),
            "{status:?}"
        );
    }
    let mut secret = done(&plan.hash);
    secret.secret = true;
    assert!(!reusable(&f.shared, step, &secret, &plan));
    // A new run of a finished record looks at a script again.
    f.shared.converging.store(true, Ordering::SeqCst);
    assert!(!reusable(&f.shared, step, &done(&plan.hash), &plan));
}

#[test]
fn a_waiting_step_waits_for_what_stopped_it_and_only_a_no_leads_on() {
    assert_eq!(
        StepError::Waiting("act".into()).wait().ok(),
        Some(Wait::Person("act".into()))
    );
    assert_eq!(
        StepError::Refused("no".into()).wait().ok(),
        Some(Wait::Refused("no".into()))
    );
    assert_eq!(
        StepError::Unknown("lost".into()).wait().ok(),
        Some(Wait::UnknownOutcome("lost".into()))
    );
    for other in [
        StepError::failed("x"),
        StepError::Interrupted,
        StepError::Journal("j".into()),
        StepError::Events("e".into()),
    ] {
        assert!(other.wait().is_err());
    }
    assert!(Wait::Refused("no".into()).leads_on());
    assert!(!Wait::Person("act".into()).leads_on());
    assert!(!Wait::UnknownOutcome("lost".into()).leads_on());
}

const LEADS: &str = "# T\n\n```rhai id=a on-failure=#b\nthrow \"x\";\n```\n\n```rhai id=b\n1\n```\n\n\
```rhai id=c on-failure=other.md#s\n1\n```\n\n```rhai id=d on-failure=other.md\n1\n```\n\n```rhai id=e\n1\n```\n";
const OTHER: &str = "# Other\n\n```rhai id=s\n1\n```\n";

#[test]
fn on_failure_leads_to_an_anchor_here_or_a_runbook_beside() {
    let f = Builder::new(LEADS).beside("other.md", OTHER).build();
    let path = f.shared.runbook.path.clone();
    let other = f.dir.path().join("runbooks/other.md").display().to_string();
    assert_eq!(
        next(f.step("a"), &path),
        Some(ending::Next::Anchor {
            anchor: "b".into(),
            runbook: path.clone()
        })
    );
    assert_eq!(next(f.step("c"), &path), Some(ending::Next::Runbook(other.clone())));
    assert_eq!(next(f.step("d"), &path), Some(ending::Next::Runbook(other)));
    assert_eq!(next(f.step("e"), &path), None);
}

#[test]
fn a_failure_is_located_at_the_step_with_its_help_and_where_it_leads() {
    let f = Builder::new(LEADS).beside("other.md", OTHER).build();
    let e = fail(&f.shared, f.step("a"), "boom", Some("try again".into()), None);
    let RunError::StepFailed(failure) = e else {
        panic!("{e:?}")
    };
    assert_eq!(failure.diagnostic.message, "step `a` failed: boom");
    assert_eq!(failure.diagnostic.help.as_deref(), Some("try again"));
    let (line, col) = f.shared.source.line_col(f.step("a").span.start);
    assert_eq!((failure.diagnostic.line, failure.diagnostic.col), (line, col));
    assert_eq!(
        failure.next,
        Some(ending::Next::Anchor {
            anchor: "b".into(),
            runbook: f.shared.runbook.path.clone()
        })
    );
    assert_eq!(f.recorded(), ["step-failed a"]);
}

/// What is not a step's own failure ends the run its own way.
#[test]
fn errors_that_are_not_the_steps_own_end_the_run_their_way() {
    let f = Fixture::run(TWO);
    assert!(matches!(
        step_error(&f.shared, None, StepError::failed("no journal")),
        RunError::Failed(m) if m == "no journal"
    ));
    assert!(matches!(
        step_error(&f.shared, None, StepError::Unknown("lost".into())),
        RunError::Waiting(Waiting::Resend(m)) if m == "lost"
    ));
    assert!(matches!(
        step_error(&f.shared, None, StepError::Refused("no".into())),
        RunError::Waiting(Waiting::Resend(m)) if m == "no"
    ));
    assert!(matches!(
        step_error(&f.shared, None, StepError::Journal("disk full".into())),
        RunError::Journal { message, .. } if message == "disk full"
    ));
    assert!(matches!(
        step_error(&f.shared, Some(f.step("a")), StepError::Interrupted),
        RunError::Interrupted(ending::Interruption::Step(s)) if s == "a"
    ));
    assert!(matches!(
        step_error(&f.shared, None, StepError::Interrupted),
        RunError::Interrupted(ending::Interruption::Step(s)) if s == "the start"
    ));
    assert!(matches!(
        step_error(&f.shared, Some(f.step("a")), StepError::failed("x")),
        RunError::StepFailed(_)
    ));
    assert_eq!(
        f.recorded(),
        ["interrupted a", "interrupted the start", "step-failed a"]
    );
}

const LOOP: &str = "# T\n\n```rhai id=a\n#{ x: 1 }\n```\n\n```rhai id=b if='steps.a.x == 2'\n1\n```\n\n\
```rhai id=c\n#{ y: steps.a.x + 1 }\n```\n";

/// The loop over scripts: run, skipped, finished; and the same record again, resumed (reused) or
/// converging (looked at again).
#[tokio::test]
async fn the_loop_runs_skips_and_reuses_as_recorded() {
    let f = Fixture::run(LOOP);
    let flags = BTreeMap::new();
    assert!(drive(f.shared.clone(), &flags).await.is_ok());
    assert_eq!(
        f.recorded(),
        [
            "run-started",
            "step-started a",
            "step-finished a",
            "step-skipped b",
            "step-started c",
            "step-finished c"
        ]
    );
    assert_eq!(f.state("a").map(|s| s.status), Some(StepStatus::Done));
    assert_eq!(f.state("b").map(|s| s.outputs), Some(json!({"skipped": true})));
    assert_eq!(f.state("c").map(|s| s.outputs), Some(json!({"y": 2})));
    // Resumed (the record did not finish): the finished scripts are reused.
    assert!(drive(f.shared.clone(), &flags).await.is_ok());
    assert_eq!(f.recorded()[6..], ["run-started", "step-skipped b"]);
    // A new run of a finished record looks at every script again.
    if let Ok(mut j) = f.shared.journal.lock() {
        j.state.outcome = Some("done".into());
    }
    assert!(drive(f.shared.clone(), &flags).await.is_ok());
    assert_eq!(
        f.recorded()[8..],
        [
            "run-started",
            "step-started a",
            "step-finished a",
            "step-skipped b",
            "step-started c",
            "step-finished c"
        ]
    );
}

#[tokio::test]
async fn only_and_from_choose_the_steps_that_run() {
    let flags = BTreeMap::new();
    let f = Builder::new(LOOP).opts(|o| o.only = Some("c".into())).build();
    // `c` reads `a`, which never ran: its failure is the script's.
    let ended = drive(f.shared.clone(), &flags).await;
    assert!(matches!(ended, Err(RunError::StepFailed(_))), "{ended:?}");
    assert_eq!(f.recorded(), ["run-started", "step-started c", "step-failed c"]);
    // `b`'s condition reads `a`, which never ran: it cannot be decided, and `b` fails unstarted.
    let f = Builder::new(LOOP).opts(|o| o.from = Some("b".into())).build();
    assert!(drive(f.shared.clone(), &flags).await.is_err());
    assert_eq!(f.recorded(), ["run-started", "step-failed b"]);
}

#[tokio::test]
async fn a_failed_script_ends_the_run_at_the_step() {
    let f = Fixture::run("# T\n\n```rhai id=a\nthrow \"boom\";\n```\n\n```rhai id=b\n1\n```\n");
    let ended = drive(f.shared.clone(), &BTreeMap::new()).await;
    let Err(RunError::StepFailed(failure)) = ended else {
        panic!("{ended:?}")
    };
    assert_eq!(failure.diagnostic.message, "step `a` failed: script: boom");
    assert_eq!(f.recorded(), ["run-started", "step-started a", "step-failed a"]);
    let st = f.state("a").expect("state");
    assert_eq!(
        (st.status, st.error.as_deref()),
        (StepStatus::Failed, Some("script: boom"))
    );
    assert!(f.state("b").is_none());
}

#[tokio::test]
async fn an_interrupted_run_stops_before_its_next_step() {
    let f = Fixture::run(LOOP);
    f.shared.interrupted.store(true, Ordering::SeqCst);
    let ended = drive(f.shared.clone(), &BTreeMap::new()).await;
    assert!(
        matches!(&ended, Err(RunError::Interrupted(ending::Interruption::Step(s))) if s == "a"),
        "{ended:?}"
    );
    assert_eq!(f.recorded(), ["run-started", "interrupted a"]);
}

/// Seeds a finished record of step `id` as the run would have left it (its identity now).
async fn finished(f: &Fixture, id: &str, status: StepStatus, outputs: Value, secret: bool) {
    let plan = identity::prepare(&f.shared, f.step(id), &Env::default(), None)
        .await
        .expect("prepared");
    let mut st = StepState::new(status, plan.hash);
    st.outputs = outputs;
    st.secret = secret;
    f.shared.set_step_state(id, st).expect("state");
}

/// `--only` and `--from` run their steps again even when done and the same; the steps before
/// `--from` hand on what they recorded, unless it was secret (stored masked) or never finished.
#[tokio::test]
async fn only_and_from_force_their_steps_and_keep_the_others_outputs() {
    let flags = BTreeMap::new();
    let f = Builder::new(LOOP).opts(|o| o.only = Some("a".into())).build();
    finished(&f, "a", StepStatus::Done, json!({"x": 1}), false).await;
    assert!(drive(f.shared.clone(), &flags).await.is_ok());
    assert_eq!(f.recorded(), ["run-started", "step-started a", "step-finished a"]);
    for (status, secret, ran) in [
        (StepStatus::Done, false, true),
        (StepStatus::Skipped, false, true),
        (StepStatus::Done, true, false),
        (StepStatus::Failed, false, false),
    ] {
        let f = Builder::new(LOOP).opts(|o| o.from = Some("c".into())).build();
        finished(&f, "a", status, json!({"x": 1}), secret).await;
        finished(&f, "c", StepStatus::Done, json!({"y": 2}), false).await;
        let ended = drive(f.shared.clone(), &flags).await;
        assert_eq!(ended.is_ok(), ran, "{status:?} secret={secret}: {ended:?}");
        let last = if ran { "step-finished c" } else { "step-failed c" };
        assert_eq!(f.recorded(), ["run-started", "step-started c", last]);
    }
}

const KEY: &str = "# T\n\n```aws iam:CreateAccessKey id=key\nUserName = \"u\"\n```\n";

/// A change by name that answered with secrets is not sent again for the outputs it never kept:
/// the run asks first. The same change with public outputs is reused.
#[tokio::test]
async fn a_change_that_answered_with_secrets_asks_before_it_is_sent_again() {
    let flags = BTreeMap::new();
    let f = Builder::new(KEY).opts(|o| o.yes = true).build();
    finished(&f, "key", StepStatus::Done, json!("********"), true).await;
    let ended = drive(f.shared.clone(), &flags).await;
    assert!(
        matches!(&ended, Err(RunError::Waiting(Waiting::Resend(m))) if m.starts_with("key: AWS answered this call with secrets, which are never kept")),
        "{ended:?}"
    );
    assert_eq!(f.recorded(), ["run-started"]);
    let f = Builder::new(KEY).opts(|o| o.yes = true).build();
    finished(&f, "key", StepStatus::Done, json!({"id": "k"}), false).await;
    assert!(drive(f.shared.clone(), &flags).await.is_ok());
    assert_eq!(f.recorded(), ["run-started"]);
    assert_eq!(f.state("key").map(|s| s.outputs), Some(json!({"id": "k"})));
}

/// `timeout=` is a deadline ahead of the step: a script well within it finishes.
#[tokio::test]
async fn a_step_within_its_timeout_finishes() {
    let f = Fixture::run("# T\n\n```rhai id=t timeout=60s\nlet s = 0; for i in 0..1000 { s += i; } #{ s: s }\n```\n");
    let ended = drive(f.shared.clone(), &BTreeMap::new()).await;
    assert!(ended.is_ok(), "{ended:?}");
    assert_eq!(f.state("t").map(|s| s.outputs), Some(json!({"s": 499500})));
}
