//! Fan-outs: a step run once per item (`for-each=`), each item journaled with its own identity,
//! so a re-run runs again exactly the items that now resolve differently; and sso-admin's
//! per-account fan-out (`account_ids`): its default width, its account ids, its retries.

use std::time::Duration;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::fixtures::ASSIGNMENT;
use crate::common::{Moto, Test, assignments_in};
use crate::provisioning::outputs;
use crate::trust::account_names;

/// Two items whose names come from a script: `a`'s name follows the input `env`, `b`'s does not.
const TWO_ITEMS: &str = r#"# Two

```runbook
[inputs.env]
prompt = "env"
```

```aws organizations.ensure-organization id=org
```

```rhai id=n
#{ a: "acme-a-" + inputs.env, b: "acme-b-prod" }
```

```aws organizations.ensure-account id=accts for-each='["a", "b"]' timeout=60s
name = "${steps.n[item]}"
email = "aws+${steps.n[item]}@example.com"
```
"#;

#[test]
fn a_changed_item_runs_again_and_the_unchanged_one_does_not() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new().file("r.md", TWO_ITEMS).aws(&proxy.endpoint);
    let run = |env: &str| t.run_args(&["run".into(), "r.md".into(), "--input".into(), format!("env={env}")]);
    let first = run("one");
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(proxy.calls("CreateAccount"), 2, "{first:?}");
    // Item `a` resolves to another account now (same item, same key, another identity); `b` is
    // what it was.
    let second = run("two");
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(
        proxy.calls("CreateAccount"),
        3,
        "only the changed item created: {second:?}"
    );
    let names: Vec<String> = account_names(&moto.endpoint)
        .into_iter()
        .filter(|n| n.starts_with("acme-"))
        .collect();
    assert_eq!(names, ["acme-a-one", "acme-a-two", "acme-b-prod"], "{second:?}");
    // A new run looks at every item again (the unchanged one is found, not created).
}

/// `account_ids` many: `n` account ids from `first` on, in the assignment step of `ASSIGNMENT`.
fn assignment_over(n: u64, first: u64) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("\"{:012}\"", first + i)).collect();
    ASSIGNMENT
        .replace(
            "account_id = \"123456789012\"",
            &format!("account_ids = [{}]", ids.join(", ")),
        )
        .replace("timeout=20s", "timeout=120s")
}

/// Without `max_in_flight`, sixteen accounts are assigned at once (one more than AWS's cap on
/// creations in progress, which is lifted here, as is the request budget, so only the fan-out's
/// own limit holds them back), never more, and each account once.
#[test]
fn many_accounts_are_assigned_sixteen_at_a_time_by_default() {
    let moto = Moto::start();
    // 100 ms per request: the requests of one wave overlap at the proxy.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: Duration::from_millis(100),
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", assignment_over(24, 300_000_000_000))
        .aws(&proxy.endpoint)
        .args([
            "run",
            "r.md",
            "--rate",
            "sso-admin=off",
            "--in-progress",
            "CreateAccountAssignment=off",
        ]);
    let out = t.run();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(proxy.calls("CreateAccountAssignment"), 24, "each account once: {out:?}");
    let peak = proxy.arrivals().iter().map(|(n, _)| *n).max().unwrap_or(0);
    // Sixteen at once (here 16 every time); a slow disk under the intents' fsyncs may let the
    // first answers come before the last requests go, so the floor is lower than the ceiling.
    assert!(
        (12..=16).contains(&peak),
        "requests in flight at most: {peak}: {:?}",
        proxy.arrivals()
    );
    assert_eq!(outputs(t.dir.path(), "assign")["created"], 24, "{out:?}");
}

/// An account id that is not 12 digits is refused before anything is sent, for the whole step,
/// in an assignment and in a removal (where it would otherwise find nothing to remove and pass).
#[test]
fn an_account_id_that_is_not_twelve_digits_is_refused_before_any_call() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    for (action, bad) in [
        ("ensure-assignment", "12345678901x"),
        ("ensure-assignment", "1234"),
        ("remove-assignment", ""),
    ] {
        let text = ASSIGNMENT
            .replace("sso-admin.ensure-assignment", &format!("sso-admin.{action}"))
            .replace(
                "account_id = \"123456789012\"",
                &format!("account_ids = [\"123456789012\", \"{bad}\"]"),
            );
        let out = Test::new()
            .file("r.md", text)
            .aws(&proxy.endpoint)
            .args(["run", "r.md"])
            .run();
        assert_eq!(out.code, 1, "{action} `{bad}`: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("`{bad}` is not an AWS account id (12 digits)")),
            "{action} `{bad}`: {out:?}"
        );
        for op in [
            "ListAccountAssignmentsForPrincipal",
            "CreateAccountAssignment",
            "DeleteAccountAssignment",
        ] {
            assert_eq!(proxy.calls(op), 0, "{action} `{bad}`: {op}: {:?}", proxy.operations());
        }
    }
}

/// A creation AWS refuses (not a throttle, not a conflict, not a fault: AWS did nothing and
/// will say the same again) is asked once per account, and each account's failure says why.
#[test]
fn a_refused_assignment_is_asked_once_per_account() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            refuse_op: Some(("CreateAccountAssignment".into(), "AccessDeniedException".into())),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", assignment_over(3, 400_000_000_000))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(proxy.calls("CreateAccountAssignment"), 3, "once per account: {out:?}");
    assert!(out.stderr.contains("3 of 3 assignments"), "{out:?}");
    assert!(out.stderr.contains("AccessDeniedException"), "{out:?}");
}

/// A creation AWS answers FAILED at once is reported with AWS's reason, without a status read
/// (the answer already is the status; under the request budget a read is not free).
#[test]
fn an_assignment_answered_failed_is_reported_without_a_status_read() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            fail_with: Some("Received a 404 status error: No such principal".into()),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ASSIGNMENT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("No such principal"), "{out:?}");
    assert_eq!(proxy.calls("CreateAccountAssignment"), 1, "{:?}", proxy.operations());
    assert_eq!(
        proxy.calls("DescribeAccountAssignmentCreationStatus"),
        0,
        "{:?}",
        proxy.operations()
    );
}

/// Throttled on every attempt, one account's creation is asked nine times, each time after a
/// longer pause (200 ms more each time), then given up saying AWS is throttling; nothing made.
#[test]
fn an_assignment_throttled_on_every_attempt_is_given_up_after_nine() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_op: Some("CreateAccountAssignment".into()),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ASSIGNMENT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(proxy.calls("CreateAccountAssignment"), 9, "{out:?}");
    let gaps = proxy.gaps("CreateAccountAssignment");
    assert_eq!(gaps.len(), 8, "{gaps:?}");
    for (i, g) in gaps.iter().enumerate() {
        assert!(*g >= Duration::from_millis(200 * (i as u64 + 1)), "pause {i}: {gaps:?}");
    }
    assert!(assignments_in(&moto.endpoint, "123456789012", "AdministratorAccess").is_empty());
}
