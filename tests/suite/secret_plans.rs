//! Attacker findings (round 5) against threat 7, `plan` on a pull request with CI's credentials:
//! a built-in change whose parameters derive from a secret was looked up by `plan`, which sent
//! the secret to AWS (`GetUserId` with the upper-cased secret), printed what it would create
//! (`would-create: permission set hun`, three characters of the secret per step) and answered
//! `exists` or `would-change` as the secret matched a value in AWS (an oracle, through the exit
//! code). A plan sends nothing made of a secret, for a change as for a read; and a run's progress
//! line does not show the target of a step made of a secret (two characters are no text a mask
//! finds).

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test, block_on, sdk};

const SECRET: &str = "hunter2Canary";

/// Seven steps, each a permission set named by three characters of the secret; a user named by
/// it upper-cased; the existing user `alice` given the secret as display name.
fn runbook() -> String {
    let mut s = String::from(
        r#"# P

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```aws sso-admin.find-instance id=ic
```

"#,
    );
    for (i, at) in (0..13).step_by(3).enumerate() {
        s.push_str(&format!(
            r#"```aws sso-admin.ensure-permission-set id=p{i}
instance_arn = "${{steps.ic.instance_arn}}"
name = "${{inputs.pw.sub_string({at}, 3)}}"
```

"#
        ));
    }
    s.push_str(
        r#"```aws identitystore.ensure-user id=upper
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "${inputs.pw.to_upper()}"
display_name = "x"
given_name = "A"
family_name = "B"
email = "u@example.com"
```

"#,
    );
    s.push_str(
        r#"```aws identitystore.ensure-user id=alice
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "alice"
display_name = "${inputs.pw}"
given_name = "Alice"
family_name = "L"
email = "alice@example.com"
```
"#,
    );
    s
}

/// moto with the user `alice` whose display name is the secret.
fn account() -> Moto {
    let moto = Moto::start();
    block_on(async {
        let ctx = sdk(&moto.endpoint);
        let store = crate::common::instance(&ctx).await.store;
        ctx.identitystore(None)
            .await
            .expect("client")
            .create_user()
            .identity_store_id(&store)
            .user_name("alice")
            .display_name(SECRET)
            .name(
                aws_sdk_identitystore::types::Name::builder()
                    .given_name("Alice")
                    .family_name("L")
                    .build(),
            )
            .emails(
                aws_sdk_identitystore::types::Email::builder()
                    .value("alice@example.com")
                    .primary(true)
                    .build(),
            )
            .send()
            .await
            .expect("alice");
    });
    moto
}

#[test]
fn a_plan_sends_nothing_made_of_a_secret_and_says_the_same_whatever_it_is() {
    let moto = account();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new().file("r.md", runbook()).aws(&proxy.endpoint);
    let plan = |pw: &str, json: bool| -> Output {
        let mut a: Vec<String> = ["plan", "r.md", "--detailed-exitcode", "--input"]
            .map(String::from)
            .to_vec();
        a.push(format!("pw={pw}"));
        if json {
            a.push("--json".into());
        }
        t.run_args(&a)
    };
    for json in [false, true] {
        // The right secret (alice's display name) and a wrong one: the same plan, byte for byte.
        let right = plan(SECRET, json);
        let wrong = plan("zebra9Otherx", json);
        assert_eq!(
            (right.code, &right.stdout),
            (wrong.code, &wrong.stdout),
            "the plan depends on the secret"
        );
        right.stdout_has("its request is made of a secret: a plan does not send it");
        for piece in ["hun", "ter", "2Ca", "nar", "HUNTER2CANARY", SECRET] {
            assert!(!right.all().contains(piece), "`{piece}` shown: {right:?}");
        }
    }
    // Nothing made of the secret reached AWS: no look-up of a set, a user or alice at all.
    for op in ["ListPermissionSets", "GetUserId", "DescribeUser"] {
        assert_eq!(proxy.calls(op), 0, "{op} sent: {:?}", proxy.operations());
    }
}

/// In a run, the progress line of a change made of a secret names the call, not its target.
#[test]
fn a_runs_progress_shows_no_target_made_of_a_secret() {
    let moto = Moto::shared();
    let t = Test::new()
        .file(
            "r.md",
            "# P\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n```aws sso-admin.find-instance id=ic\n```\n\n\
             ```aws sso-admin.ensure-permission-set id=p0\ninstance_arn = \"${steps.ic.instance_arn}\"\nname = \"${inputs.pw.sub_string(0, 2)}\"\n```\n",
        )
        .aws(&moto.endpoint);
    let out = t.run_args(&["run".into(), "r.md".into(), "--input".into(), format!("pw={SECRET}")]);
    out.code_is(0).stdout_has("sso-admin:CreatePermissionSet ********");
    assert!(!out.all().contains("CreatePermissionSet hu"), "{out:?}");
}

/// Attacker finding (round 6): `region=` made of a secret was printed by `plan` (``region `hun` is
/// not an AWS region name``) and sent in every request's signature and host name; `account=` made
/// of one was sent as the AssumeRole's ARN. Where a step acts is refused over a secret by
/// `check`, as `if=` and `for-each=` are.
#[test]
fn a_place_made_of_a_secret_is_refused_by_check() {
    for (attr, at) in [
        ("region='xx-${inputs.pw.sub_string(0, 3)}-1'", "region"),
        ("account='${inputs.pw.sub_string(0, 12)}'", "account"),
        ("account=111122223333 role='${inputs.pw}'", "role"),
    ] {
        let t = Test::new().file(
            "r.md",
            format!(
                r#"# P

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```aws iam:ListUsers id=u {attr}
```
"#
            ),
        );
        let out = t.run_args(&["plan".into(), "r.md".into(), "--input".into(), format!("pw={SECRET}")]);
        out.code_is(2)
            .stderr_has(&format!("`{at}=` reads the secret `inputs.pw`"));
        assert!(!out.all().contains("hun"), "{out:?}");
    }
}

/// Attacker finding (round 6): an AWS error without a code is shown clipped, and the mask came
/// after the cut: 31 of the session token's 32 characters were printed before the `...`.
#[test]
fn a_credential_cut_short_by_a_clipped_error_is_masked() {
    const TOKEN: &str = "SessTokCanaryValue9876543210zyxw";
    let moto = Moto::start();
    // Wherever the clip falls: before, inside or after the token.
    let mut shown = 0;
    for pad in (40usize..=140).step_by(5) {
        let body = format!("{{\"message\":\"{} raw: {TOKEN}\"}}", "x".repeat(pad));
        let proxy = FaultProxy::start(
            &moto.endpoint,
            Rules {
                answer_op: Some(("ListUsers".into(), "400 Bad Request", "application/json", body)),
                ..Rules::default()
            },
        );
        let t = Test::new()
            .file(
                "r.md",
                r#"# R

```aws iam:ListUsers id=u
```
"#,
            )
            .aws(&proxy.endpoint)
            .env("AWS_SESSION_TOKEN", TOKEN);
        let out = t.run_args(&["run".into(), "r.md".into(), "--events".into(), "ev.ndjson".into()]);
        assert_ne!(out.code, 0, "{out:?}");
        let written = out.all() + t.written().as_str();
        shown += usize::from(written.contains("raw: "));
        assert!(
            !written.contains(&TOKEN[..8]),
            "{pad}: a piece of the token:\n{written}"
        );
    }
    assert!(shown > 0, "no message was shown as far as the token");
}

/// Attacker finding (round 6): a secret input's `pattern`, which a pull request's author writes,
/// made `plan` stop (exit 2, "does not match the pattern") or not as CI's secret matched it: an
/// oracle for guesses. A plan does not hold a secret against its pattern; a run still does.
#[test]
fn a_secret_inputs_pattern_is_no_oracle_in_a_plan() {
    let t = Test::new().file(
        "r.md",
        r#"# P

```runbook
[inputs.pw]
prompt = "pw"
secret = true
pattern = "[a-z]+Q[0-9]*"
```

```rhai id=use
#{ n: inputs.pw.len() }
```
"#,
    );
    let plan = |pw: &str| {
        t.run_args(&[
            "plan".into(),
            "r.md".into(),
            "--json".into(),
            "--input".into(),
            format!("pw={pw}"),
        ])
    };
    let (matches, not) = (plan("hunterQ12"), plan("hunterZZZ"));
    assert_eq!(
        (matches.code, &matches.stdout, &matches.stderr),
        (not.code, &not.stdout, &not.stderr)
    );
    matches.code_is(0);
    let run = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "pw=hunterZZZ".into()]);
    run.code_is(2).stderr_has("does not match the pattern");
    assert!(!run.all().contains("hunterZZZ"), "{run:?}");
}
