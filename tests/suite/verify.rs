//! `runbook verify` (issue 30): whether AWS still holds what a finished run left, for a nightly
//! job. Exit 0 as recorded, 2 drifted, 1 error; nothing changes AWS.

use crate::calls::{left, seed};
use crate::common::{Moto, Output, Test, block_on, repo, sdk};

fn verify(t: &Test, file: &str) -> Output {
    t.run_args(&["verify".into(), file.into(), "--json".into()])
}

fn findings(out: &Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["step"].as_str().unwrap_or("").to_string(), s["finding"].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The bundled offboarding runbook: 0 after its run, 2 once the user is back with access (an
/// out-of-band re-creation), 0 again after the run that removes it; verify itself removes
/// nothing.
#[test]
fn offboarding_verifies_clean_then_drifted_then_clean_after_the_repair() {
    let moto = Moto::shared();
    let first = seed(&moto.endpoint, "leaving.admin");
    let t = Test::new().aws(&moto.endpoint);
    let file = repo().join("runbooks/offboard-admin.md").display().to_string();
    let answers = repo()
        .join("runbooks/rehearsal/offboard-admin.toml")
        .display()
        .to_string();
    let offboard = || t.run_args(&["run".into(), file.clone(), "--answers".into(), answers.clone()]);
    let check = || {
        t.run_args(&[
            "verify".into(),
            file.clone(),
            "--answers".into(),
            answers.clone(),
            "--json".into(),
        ])
    };
    // Never run: nothing to verify, and that is an error, not drift.
    check().code_is(1).stderr_has("never been run");
    offboard().code_is(0);
    assert_eq!(left(&moto.endpoint, &first), (0, 0));
    let clean = check();
    clean.code_is(0);
    let again = seed(&moto.endpoint, "leaving.admin");
    let drifted = check();
    drifted.code_is(2);
    let f = findings(&drifted);
    assert!(
        f.as_object().expect("map").values().any(|v| v == "drifted"),
        "no step drifted: {f}"
    );
    assert_eq!(left(&moto.endpoint, &again), (1, 2), "verify changed AWS");
    offboard().code_is(0);
    assert_eq!(left(&moto.endpoint, &again), (0, 0));
    check().code_is(0);
}

/// A read that feeds no change answers otherwise (an account joined out of band); then an
/// ensure action would create again and a person's `verify` check fails (the organization was
/// deleted): each is named as drifted, and verify changes nothing.
#[test]
fn verify_names_each_kind_of_drift() {
    let moto = Moto::shared();
    let org = r#"```aws organizations.ensure-organization id=org
```

```manual id=checked
instructions = "Look at the organization in the console."
verify = "aws organizations.check-management-account"
```
"#;
    let t = Test::new().aws(&moto.endpoint).file(
        "r.md",
        format!(
            r#"# Org

{org}
```aws organizations:ListAccounts id=accounts
```
"#
        ),
    );
    t.run_args(&["run".into(), "r.md".into(), "--yes".into()]).code_is(0);
    let clean = verify(&t, "r.md");
    clean.code_is(0);
    assert_eq!(
        findings(&clean),
        serde_json::json!({ "org": "as-recorded", "checked": "as-recorded", "accounts": "as-recorded" })
    );
    // Out of band: an account joins.
    block_on(async {
        sdk(&moto.endpoint)
            .organizations()
            .await
            .expect("client")
            .create_account()
            .account_name("late")
            .email("late@example.com")
            .send()
            .await
            .expect("account")
    });
    let out = verify(&t, "r.md");
    out.code_is(2);
    assert_eq!(
        findings(&out),
        serde_json::json!({ "org": "as-recorded", "checked": "as-recorded", "accounts": "drifted" }),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("answers otherwise than in the run"),
        "{}",
        out.stdout
    );

    // Out of band: the organization is deleted (in a moto of its own, with no member account).
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint).file(
        "o.md",
        format!(
            r#"# Org only

{org}"#
        ),
    );
    t.run_args(&["run".into(), "o.md".into(), "--yes".into()]).code_is(0);
    verify(&t, "o.md").code_is(0);
    block_on(async {
        sdk(&moto.endpoint)
            .organizations()
            .await
            .expect("client")
            .delete_organization()
            .send()
            .await
            .expect("delete")
    });
    let out = verify(&t, "o.md");
    out.code_is(2);
    assert_eq!(
        findings(&out),
        serde_json::json!({ "org": "drifted", "checked": "drifted" }),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("check-management-account"), "{}", out.stdout);
    let org_back = block_on(async {
        sdk(&moto.endpoint)
            .organizations()
            .await
            .expect("client")
            .describe_organization()
            .send()
            .await
            .is_ok()
    });
    assert!(!org_back, "verify re-created the organization");
    t.run_args(&["verify".into(), "o.md".into()])
        .code_is(2)
        .stdout_has("drifted: 2 of 2 steps (org, checked)");
}

/// A run that did not finish is not an end state: verify says so and exits 1, not 2.
#[test]
fn verify_of_a_run_that_did_not_finish_is_an_error() {
    let t = Test::new().file(
        "r.md",
        r#"# R

```rhai id=boom
throw "no";
```
"#,
    );
    t.run_args(&["run".into(), "r.md".into()]).code_is(1);
    t.run_args(&["verify".into(), "r.md".into()])
        .code_is(1)
        .stderr_has("did not finish");
}

/// Verify without the run's secret input, or with another value, is an error (1) naming the
/// input, never drift (attacker finding: 2, "m drifted", with nothing changed in AWS).
#[test]
fn verify_with_other_inputs_than_the_run_is_an_error_not_drift() {
    let text = r#"# S

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```manual id=m
instructions = "Check ${inputs.pw}"
```
"#;
    let t = Test::new().file("s.md", text).file(
        "a.toml",
        r#"[inputs]
pw = "hunter2-canary"
"#,
    );
    t.run_args(&[
        "run".into(),
        "s.md".into(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
    ])
    .code_is(0);
    t.run_args(&["verify".into(), "s.md".into(), "--answers".into(), "a.toml".into()])
        .code_is(0);
    let missing = t.run_args(&["verify".into(), "s.md".into()]);
    missing.code_is(1).stderr_has("pw: not given");
    let other = t.run_args(&["verify".into(), "s.md".into(), "--input".into(), "pw=WRONG".into()]);
    other.code_is(1).stderr_has("pw: changed (secret)");
    assert!(
        !other.all().contains("WRONG") && !other.all().contains("hunter2"),
        "{other:?}"
    );
}

/// A finished call by name whose request held a secret (so its answer is kept secret) is
/// trusted by verify like any other finished change by name: 0 right after the run (attacker
/// finding: 2, "drifted", with nothing changed).
#[test]
fn a_finished_change_by_name_with_a_secret_answer_is_trusted_not_drift() {
    let moto = Moto::shared();
    let text = r#"# U

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```aws iam:CreateUser id=u
UserName = "tagged"
Tags = [{ Key = "k", Value = "${inputs.pw}" }]
```
"#;
    let t = Test::new().aws(&moto.endpoint).file("u.md", text).file(
        "a.toml",
        r#"[inputs]
pw = "Zq9canaryX"
"#,
    );
    t.run_args(&["run".into(), "u.md".into(), "--answers".into(), "a.toml".into()])
        .code_is(0);
    let out = t.run_args(&["verify".into(), "u.md".into(), "--answers".into(), "a.toml".into()]);
    out.code_is(0).stdout_has("trusted");
    assert!(!out.all().contains("Zq9canaryX"), "{out:?}");
}
