//! Issue 27/28: `plan` is the run's own interpreter with a gate that sends reads and refuses
//! changes. What it decides is what a run decides (a finished call is done, not "would change"),
//! what a read answers is as secret as in a run, and nothing a runbook says makes it send a
//! change.

use crate::common::{Moto, Test, files};

const CANARY: &str = "hunter2-plan-canary-7d1e";

fn create(name: &str) -> String {
    format!(
        r#"# Create

```aws secretsmanager:CreateSecret id=make
Name = "{name}"
SecretString = "{CANARY}"
```
"#
    )
}

/// A read whose answer the model marks sensitive (GetSecretValue's SecretString) is made by
/// `plan` through the run's call path: its outputs are secret, in the text and in `--json`, and
/// nothing of it reaches the state directory (the old plan printed the answer's members).
#[test]
fn a_secret_a_read_answers_never_reaches_the_plan() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint).file("make.md", create("db")).file(
        "read.md",
        r#"# Read

```aws secretsmanager:GetSecretValue id=got
SecretId = "db"
```

```rhai id=len
#{ n: steps.got.SecretString.len() }
```
"#,
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
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint).file(
        "pr.md",
        r#"# PR

```aws iam:CreateUser id=sneak mutates=false
UserName = "pr-user"
```
"#,
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
    let moto = Moto::shared();
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

/// A pull request's runbook that mints session credentials with CI's own and feeds each part
/// into a read whose error quotes it (kms:DescribeKey's "Invalid keyId ..."): `plan` prints none
/// of them (the old plan printed all three; `run` already withheld the messages).
#[test]
fn plan_never_prints_credentials_minted_from_ci() {
    let moto = Moto::shared();
    let text = r#"# Docs only

```aws sts:GetSessionToken id=s
```

```aws kms:DescribeKey id=a
KeyId = "${steps.s.Credentials.AccessKeyId}"
```

```aws kms:DescribeKey id=k
KeyId = "${steps.s.Credentials.SecretAccessKey}"
```

```aws kms:DescribeKey id=t
KeyId = "${steps.s.Credentials.SessionToken}"
```
"#;
    let t = Test::new().aws(&moto.endpoint).file("ci.md", text);
    // What moto mints (its fixed example credentials).
    let minted = block_on_minted(&moto.endpoint);
    for extra in [None, Some("--json")] {
        let mut args = vec!["plan".to_string(), "ci.md".into()];
        args.extend(extra.map(String::from));
        let out = t.run_args(&args);
        for part in &minted {
            assert!(!out.all().contains(part.as_str()), "{part}: {out:?}");
        }
    }
}

fn block_on_minted(endpoint: &str) -> Vec<String> {
    crate::common::block_on(async {
        let out = crate::common::sdk(endpoint)
            .sts()
            .await
            .expect("client")
            .get_session_token()
            .send()
            .await
            .expect("token");
        let c = out.credentials().expect("credentials");
        vec![
            c.access_key_id().to_string(),
            c.secret_access_key().to_string(),
            c.session_token().to_string(),
        ]
    })
}

/// A read named like one that makes something (cognito-identity:GetId makes an identity) is a
/// change: `plan` shows it and sends nothing. And a read whose request is made of a secret is not
/// sent by `plan` (a bucket in another account would log the prefix it was asked for).
#[test]
fn plan_sends_neither_a_get_that_makes_nor_a_read_made_of_a_secret() {
    let moto = Moto::start();
    let proxy = crate::common::fault_proxy::FaultProxy::start(&moto.endpoint, Default::default());
    let text = r#"# PR

```runbook
[inputs.pw]
secret = true
```

```aws cognito-identity:GetId id=id
IdentityPoolId = "us-east-1:00000000-0000-0000-0000-000000000000"
```

```aws s3:ListObjectsV2 id=ls
Bucket = "someone-elses-bucket"
Prefix = "${inputs.pw}"
```
"#;
    let t = Test::new().aws(&proxy.endpoint).file("pr.md", text);
    let out = t.run_args(&[
        "plan".into(),
        "pr.md".into(),
        "--input".into(),
        "pw=Exfil-Me-42".into(),
        "--json".into(),
    ]);
    out.code_is(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["steps"][0]["verdict"], "would-change", "{v}");
    assert_eq!(v["steps"][1]["verdict"], "unknown", "{v}");
    assert!(
        v["steps"][1]["details"].to_string().contains("a plan does not send it"),
        "{v}"
    );
    let sent: Vec<String> = proxy.operations().into_iter().map(|(op, _)| op).collect();
    assert!(
        !sent.iter().any(|op| op == "GetId" || op.contains("ListObjects")),
        "plan sent {sent:?}"
    );
}

/// A change by name whose answer held secrets (CreateAccessKey) finished: the run asks before it
/// sends it again (exit 3), and the plan says a person is asked, not that it would call it.
/// And a read whose answer the model marks sensitive is not asked for by a plan at all.
#[test]
fn plan_says_what_the_run_does_with_a_secret_answer() {
    let moto = Moto::start();
    let proxy = crate::common::fault_proxy::FaultProxy::start(&moto.endpoint, Default::default());
    let t = Test::new().aws(&proxy.endpoint).file(
        "ak.md",
        r#"# AK

```aws iam:CreateUser id=u
UserName = "svc-ak"
```

```aws iam:CreateAccessKey id=k
UserName = "svc-ak"
```
"#,
    );
    t.run_args(&["run".into(), "ak.md".into()]).code_is(0);
    let out = t.run_args(&[
        "plan".into(),
        "ak.md".into(),
        "--json".into(),
        "--detailed-exitcode".into(),
    ]);
    out.code_is(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["steps"][1]["verdict"], "person", "{v}");
    t.run_args(&["run".into(), "ak.md".into()]).code_is(3);
    assert_eq!(proxy.calls("CreateAccessKey"), 1);

    let before = proxy.operations().len();
    let t = t.file(
        "read.md",
        r#"# Read

```aws secretsmanager:GetSecretValue id=got
SecretId = "db"
```

```aws connect:GetFederationToken id=fed
InstanceId = "11111111-2222-3333-4444-555555555555"
```
"#,
    );
    t.run_args(&["plan".into(), "read.md".into()]).code_is(0);
    let sent: Vec<String> = proxy.operations().into_iter().skip(before).map(|(op, _)| op).collect();
    assert!(
        !sent
            .iter()
            .any(|op| op.contains("GetSecretValue") || op.contains("Federation")),
        "plan sent {sent:?}"
    );
}
