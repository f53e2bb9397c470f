//! Issue 27/28: `plan` is the run's own interpreter with a gate that sends reads and refuses
//! changes. What it decides is what a run decides (a finished call is done, not "would change"),
//! what a read answers is as secret as in a run, and nothing a runbook says makes it send a
//! change.

use crate::common::{Moto, Test, files};

const CANARY: &str = "hunter2-plan-canary-7d1e";

fn create(name: &str) -> String {
    format!(
        "# Create\n\n```aws secretsmanager:CreateSecret id=make\nName = \"{name}\"\nSecretString = \"{CANARY}\"\n```\n"
    )
}

/// A read whose answer the model marks sensitive (GetSecretValue's SecretString) is made by
/// `plan` through the run's call path: its outputs are secret, in the text and in `--json`, and
/// nothing of it reaches the state directory (the old plan printed the answer's members).
#[test]
fn a_secret_a_read_answers_never_reaches_the_plan() {
    let moto = Moto::start();
    let t = Test::new()
        .aws(&moto.endpoint)
        .file("make.md", create("db"))
        .file(
            "read.md",
            "# Read\n\n```aws secretsmanager:GetSecretValue id=got\nSecretId = \"db\"\n```\n\n```rhai id=len\n#{ n: steps.got.SecretString.len() }\n```\n",
        );
    t.run_args(&["run".into(), "make.md".into()])
        .code_is(0)
        .stdout_lacks(CANARY);
    for extra in [None, Some("--json")] {
        let mut args = vec!["plan".to_string(), "read.md".into()];
        args.extend(extra.map(String::from));
        let out = t.run_args(&args);
        out.code_is(0);
        assert!(!out.all().contains(CANARY), "{out:?}");
        assert!(!out.all().contains("hunter2"), "{out:?}");
    }
    for (path, text) in files(&t.path(".runbook")) {
        assert!(!text.contains(CANARY), "{path}");
    }
}

/// `mutates=false` on a call the model says changes AWS (a pull request's runbook, planned in CI
/// with real credentials): `plan` shows it and never sends it.
#[test]
fn no_attribute_makes_plan_send_a_change() {
    let moto = Moto::start();
    let t = Test::new().aws(&moto.endpoint).file(
        "pr.md",
        "# PR\n\n```aws iam:CreateUser id=sneak mutates=false\nUserName = \"pr-user\"\n```\n",
    );
    let out = t.run_args(&["plan".into(), "pr.md".into(), "--detailed-exitcode".into()]);
    out.code_is(2).stdout_has("would call iam:CreateUser");
    let users = crate::common::block_on(async {
        let iam = crate::common::sdk(&moto.endpoint).iam().await.expect("client");
        iam.list_users().send().await.expect("list").users().len()
    });
    assert_eq!(users, 0, "plan created a user");
}

/// A call by name that changes AWS and finished in the last run, unchanged: a run would not send
/// it again, so the plan says done and the CI gate passes (the old plan said "would change"
/// forever).
#[test]
fn a_finished_change_is_done_in_the_plan_as_in_the_run() {
    let moto = Moto::start();
    let t = Test::new().aws(&moto.endpoint).file("make.md", create("app"));
    let plan = || {
        t.run_args(&[
            "plan".into(),
            "make.md".into(),
            "--detailed-exitcode".into(),
            "--json".into(),
        ])
    };
    plan().code_is(2);
    t.run_args(&["run".into(), "make.md".into()]).code_is(0);
    let out = plan();
    out.code_is(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["steps"][0]["verdict"], "done", "{v}");
    // And a run agrees: nothing is sent.
    t.run_args(&["run".into(), "make.md".into()])
        .code_is(0)
        .stdout_has("already done");
}
