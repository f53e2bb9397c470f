//! What `plan` says of each step, decided by calling the plan's own walk on a `Shared` assembled
//! for a plan: no binary and no AWS (the steps here are scripts, people and changes by name,
//! which a plan shows and never sends).

use serde_json::json;

use super::*;
use crate::exec::testing::Fixture;
use crate::journal::{StepState, StepStatus};

/// Each step's row as the plan's loop makes it: (step, verdict, details, items).
async fn rows(f: &Fixture) -> (Vec<(String, StepVerdict, Vec<String>, Option<usize>)>, bool, bool) {
    let mut env = Env::default();
    let mut report = Report {
        rows: Vec::new(),
        pending: false,
        errors: false,
    };
    for step in &f.shared.runbook.steps {
        let row = plan_step(&f.shared, step, &mut env, false).await.expect("planned");
        report.add(row);
    }
    let rows = report
        .rows
        .into_iter()
        .map(|r| (r.step, r.verdict, r.details, r.items))
        .collect();
    (rows, report.pending, report.errors)
}

fn row(step: &str, verdict: StepVerdict, details: &[&str]) -> (String, StepVerdict, Vec<String>, Option<usize>) {
    (
        step.into(),
        verdict,
        details.iter().map(|d| d.to_string()).collect(),
        None,
    )
}

const SCRIPTS: &str = "# T\n\n```rhai id=a\n#{ x: 1, name: \"n\" }\n```\n\n\
```rhai id=b if='steps.a.x == 2'\n1\n```\n\n```rhai id=each for-each='[1, 2]'\nitem * 2\n```\n\n\
```rhai id=none for-each='[]'\nitem\n```\n\n```manual id=m\nconfirm = \"is ${steps.a.name} right?\"\n```\n\n\
```rhai id=later\nsteps.m.confirmed\n```\n";

#[tokio::test]
async fn scripts_compute_conditions_skip_and_people_are_asked() {
    let f = Fixture::plan(SCRIPTS);
    let (rows, pending, errors) = rows(&f).await;
    assert_eq!(
        rows,
        vec![
            row("a", StepVerdict::Computed, &["name=n x=1"]),
            row("b", StepVerdict::Skipped, &["condition `steps.a.x == 2` is false"]),
            ("each".into(), StepVerdict::Computed, Vec::new(), Some(2)),
            (
                "none".into(),
                StepVerdict::Skipped,
                vec!["`for-each` gives no items".into()],
                Some(0)
            ),
            row("m", StepVerdict::Person, &["a person is asked: is n right?"]),
            row(
                "later",
                StepVerdict::Unknown,
                &["depends on `m` (known only after a run)"]
            ),
        ]
    );
    // A person would be asked: pending; nothing is an error.
    assert!(pending);
    assert!(!errors);
}

#[tokio::test]
async fn a_script_that_fails_is_an_error_of_the_runbook() {
    let f = Fixture::plan("# T\n\n```rhai id=a\nthrow \"boom\";\n```\n");
    let (rows, pending, errors) = rows(&f).await;
    assert_eq!(rows, vec![row("a", StepVerdict::Error, &["script: boom"])]);
    assert!(!pending);
    assert!(errors);
}

const CHANGES: &str = "# T\n\n```aws iam:CreateUser id=make\nUserName = \"u\"\n```\n\n\
```aws iam:CreateGroup id=told mutates=false\nGroupName = \"g\"\n```\n\n```rhai id=after\nthrow \"gone\";\n```\n";

/// A change by name is shown, never sent (`mutates=false` cannot make a plan send what the
/// model says changes AWS); a script after it that fails is what a run would find out, not an
/// error of the runbook.
#[tokio::test]
async fn a_change_by_name_is_shown_and_what_follows_it_is_unknown() {
    let f = Fixture::plan(CHANGES);
    assert_eq!(kind(&f.shared, f.step("make")), ("aws (changes)".to_string(), true));
    assert_eq!(kind(&f.shared, f.step("told")), ("aws (changes)".to_string(), true));
    assert_eq!(kind(&f.shared, f.step("after")), ("script".to_string(), false));
    let (rows, pending, errors) = rows(&f).await;
    assert_eq!(
        rows,
        vec![
            row(
                "make",
                StepVerdict::WouldChange,
                &[r#"would call iam:CreateUser {"UserName":"u"}"#]
            ),
            row(
                "told",
                StepVerdict::WouldChange,
                &[r#"would call iam:CreateGroup {"GroupName":"g"}"#]
            ),
            row(
                "after",
                StepVerdict::Unknown,
                &[
                    "script: gone",
                    "it reads AWS after the changes above, which a run makes first"
                ]
            ),
        ]
    );
    assert!(pending);
    assert!(!errors);
    assert_eq!(f.recorded(), Vec::<String>::new());
}

/// A step finished before and the same now is what a run would reuse: `done`.
#[tokio::test]
async fn a_finished_step_the_same_now_is_done() {
    let f = Fixture::plan("# T\n\n```rhai id=a\n#{ x: 1 }\n```\n\n```rhai id=b\nsteps.a.x + 1\n```\n");
    let prepared = identity::prepare(&f.shared, f.step("a"), &Env::default(), None)
        .await
        .expect("prepared");
    let mut st = StepState::new(StepStatus::Done, prepared.hash);
    st.outputs = json!({"x": 41});
    st.finished = Some("2026-01-01T00:00:00Z".into());
    if let Ok(mut j) = f.shared.journal.lock() {
        j.state.steps.insert("a".into(), st);
    }
    let (rows, pending, _) = rows(&f).await;
    assert_eq!(
        rows,
        vec![
            row("a", StepVerdict::Done, &["done in the last run (2026-01-01T00:00:00Z)"]),
            // The recorded outputs are what later steps see.
            row("b", StepVerdict::Computed, &["value=42"]),
        ]
    );
    assert!(!pending);
}

fn made(verdict: StepVerdict, acts: bool, failed_running: bool) -> Row {
    Row {
        step: "s".into(),
        kind: "script".into(),
        action: None,
        verdict,
        details: Vec::new(),
        items: None,
        acts,
        failed_running,
        drifted: false,
    }
}

#[test]
fn the_report_is_pending_after_a_change_and_in_error_after_an_error() {
    let mut r = Report {
        rows: Vec::new(),
        pending: false,
        errors: false,
    };
    // A failure before any change is the runbook's.
    r.add(made(StepVerdict::Error, false, true));
    assert_eq!((r.pending, r.errors), (false, true));
    assert_eq!(r.rows[0].verdict, StepVerdict::Error);
    let mut r = Report {
        rows: Vec::new(),
        pending: false,
        errors: false,
    };
    r.add(made(StepVerdict::Unknown, false, false));
    assert_eq!((r.pending, r.errors), (false, false));
    r.add(made(StepVerdict::Unknown, true, false));
    assert_eq!((r.pending, r.errors), (true, false));
    r.add(made(StepVerdict::Fails, false, true));
    assert_eq!((r.pending, r.errors), (true, false));
    assert_eq!(r.rows[2].verdict, StepVerdict::Unknown);
    assert_eq!(
        r.rows[2].details,
        ["it reads AWS after the changes above, which a run makes first"]
    );
    // A failure found before running (not while running) stays an error.
    r.add(made(StepVerdict::Error, false, false));
    assert_eq!((r.pending, r.errors), (true, true));
}

#[test]
fn a_stopped_steps_reason_is_its_message() {
    assert_eq!(failure(StepError::failed("f")), "f");
    assert_eq!(failure(StepError::Waiting("w".into())), "w");
    assert_eq!(failure(StepError::Refused("r".into())), "r");
    assert_eq!(failure(StepError::Unknown("u".into())), "u");
    assert_eq!(failure(StepError::Journal("j".into())), "j");
    assert_eq!(failure(StepError::Events("e".into())), "e");
    assert_eq!(failure(StepError::Interrupted), "interrupted");
    assert_eq!(
        outputs_detail(&json!({"a": 1, "b": "x", "c": [1], "d": {"e": 1}, "f": true, "g": null, "h": 2})),
        "a=1 b=x f=true g=null"
    );
    assert_eq!(outputs_detail(&json!("plain")), "\"plain\"");
}

#[test]
fn each_step_is_shown_by_what_it_does() {
    let f = Fixture::plan(
        "# T\n\n```manual id=m\nconfirm = \"ok?\"\n```\n\n```net check-reachable id=n\nurls = [\"https://example.com\"]\n```\n\n\
```aws iam:ListUsers id=l\n```\n\n```aws iam:ListGroups id=g mutates=true\n```\n\n\
```aws organizations.ensure-organization id=o\n```\n\n```aws sts.whoami id=w\n```\n",
    );
    let kinds: Vec<(String, bool)> = ["m", "n", "l", "g", "o", "w"]
        .iter()
        .map(|id| kind(&f.shared, f.step(id)))
        .collect();
    let want: Vec<(String, bool)> = [
        ("person", false),
        ("net (checks)", false),
        ("aws (reads)", false),
        ("aws (changes)", true),
        ("aws (changes)", true),
        ("aws (reads)", false),
    ]
    .iter()
    .map(|(k, m)| (k.to_string(), *m))
    .collect();
    assert_eq!(kinds, want);
}
