//! Issue 27, exit codes that gate CI: `plan --detailed-exitcode` exits 0 when a run would do
//! nothing, 2 when it would change AWS or ask a person, 1 on any error (usage errors too). A
//! manual step already confirmed with the same text is done, not pending; a fan-out over an empty
//! list is not a change.

use crate::common::{Output, Test};

const RUNBOOK: &str = r#"# Gate

```runbook
[inputs.team]
prompt = "Team"
```

## Before you start

Read the checklist.

```manual id=checklist
confirm = "Have you read the checklist for ${inputs.team}?"
```

```rhai id=nobody
#{ names: [] }
```

```rhai id=each for-each='steps.nobody.names'
#{ seen: item }
```
"#;

fn plan(t: &Test, extra: &[&str]) -> Output {
    let mut args: Vec<String> = ["plan", "r.md", "--detailed-exitcode", "--input", "team=ops"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    t.run_args(&args)
}

#[test]
fn a_confirmed_manual_step_and_an_empty_fan_out_let_the_gate_pass() {
    let t = Test::new().file("r.md", RUNBOOK).file(
        "answers.toml",
        r#"[steps.checklist]
confirm = true
"#,
    );
    // Never run: the person would be asked.
    plan(&t, &[]).code_is(2).stdout_has("changes pending");
    t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "team=ops".into(),
        "--answers".into(),
        "answers.toml".into(),
    ])
    .code_is(0);
    // Confirmed with this text: nothing to do, and the empty fan-out is no change.
    let out = plan(&t, &["--json"]);
    out.code_is(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let verdict = |id: &str| {
        v["steps"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["step"] == id))
            .map(|r| r["verdict"].clone())
            .unwrap_or_default()
    };
    assert_eq!(verdict("checklist"), "done", "{v}");
    assert_eq!(verdict("each"), "skipped", "{v}");
    plan(&t, &[]).code_is(0).stdout_has("nothing to do");
    // What the person is shown changed (the input it names): asked again, so pending.
    let other = t.run_args(&[
        "plan".into(),
        "r.md".into(),
        "--detailed-exitcode".into(),
        "--input".into(),
        "team=platform".into(),
    ]);
    other.code_is(2);
    // So did the section's prose.
    let t = t.file(
        "r.md",
        RUNBOOK.replace("Read the checklist.", "Read the new checklist."),
    );
    plan(&t, &[]).code_is(2);
}

/// A usage error is an error, never "changes pending": a CI gate that reads 2 as "a run would
/// change something" must not pass a typo, nor fail it as a change.
#[test]
fn a_usage_error_exits_one_under_the_detailed_exit_code() {
    let t = Test::new().file("r.md", RUNBOOK).file(
        "bad.md",
        r#"# Bad

```rhai id=x if='(('
#{}
```
"#,
    );
    plan(&t, &["--input", "nosuch=1"]).code_is(1).stderr_has("nosuch");
    t.run_args(&["plan".into(), "bad.md".into(), "--detailed-exitcode".into()])
        .code_is(1);
    // Without the flag, the documented usage exit stays 2.
    t.run_args(&["plan".into(), "bad.md".into()]).code_is(2);
}
