//! What moto is too kind to do, through our fault proxy: asynchronous operations that take time,
//! fail, or never finish; the Basic support plan; a set made meanwhile by someone else.
//! Throttling and server errors are `throttling.rs`.

use std::time::Duration;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::fixtures::{ASSIGNMENT, ONE_ACCOUNT, accounts, seed_account};
use crate::common::{Moto, Test, block_on, find, sdk};
use crate::support_cases::not_activated_answers;

#[test]
fn account_creation_is_polled_through_in_progress_to_succeeded() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            in_progress_reads: 3,
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ONE_ACCOUNT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_eq!(proxy.calls("CreateAccount"), 1);
    assert!(
        proxy.calls("DescribeCreateAccountStatus") >= 3,
        "polled {}",
        proxy.calls("DescribeCreateAccountStatus")
    );
    out.stdout_has("created=true");
    assert_eq!(accounts(&moto.endpoint), 1);
}

#[test]
fn a_failed_creation_surfaces_aws_reason_and_what_to_do() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            in_progress_reads: 1,
            fail_with: Some("EMAIL_ALREADY_EXISTS".into()),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ONE_ACCOUNT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(1).stderr_has("r.md:6:1: error: step `acct` failed: creation of account acme-payments-prod failed: EMAIL_ALREADY_EXISTS (request car-");
    assert!(
        out.stderr.contains("help: another AWS account uses this email"),
        "{out:?}"
    );
}

#[test]
fn a_creation_past_the_deadline_times_out_and_a_rerun_does_not_create_again() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            never_finish: true,
            ..Rules::default()
        },
    );
    let text = ONE_ACCOUNT.replace("timeout=20s", "timeout=2s");
    let t = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    let out = t.run();
    out.code_is(1).stderr_has("timed out after");
    assert!(out.stderr.contains("request car-"), "the request id is named: {out:?}");
    out.stderr_has("run the step again to resume polling");
    proxy.set_rules(Rules::default());
    let again = t.run();
    again.code_is(0);
    assert_eq!(proxy.calls("CreateAccount"), 1, "no second CreateAccount");
    assert_eq!(accounts(&moto.endpoint), 1);
}

/// A creation still in progress when its step timed out: the account is not listed yet and its
/// request is IN_PROGRESS. The re-run must follow that same request, never ask again.
#[test]
fn a_rerun_follows_the_request_still_in_progress_and_never_creates_again() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            never_finish: true,
            hide_accounts: true,
            list_in_progress: true,
            ..Rules::default()
        },
    );
    let text = ONE_ACCOUNT.replace("timeout=20s", "timeout=2s");
    let t = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    let out = t.run();
    out.code_is(1);
    let request = out
        .stderr
        .split("request ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).next())
        .filter(|r| r.starts_with("car-"))
        .unwrap_or_else(|| panic!("the request id is named: {out:?}"))
        .to_string();
    let polled_before = proxy.reads_of(&request);
    // AWS finishes it now; the account is still not listed.
    proxy.set_rules(Rules {
        hide_accounts: true,
        list_in_progress: true,
        ..Rules::default()
    });
    let again = t.run();
    again.code_is(0);
    assert!(proxy.reads_of(&request) > polled_before, "the re-run polled {request}");
    assert_eq!(proxy.calls("CreateAccount"), 1, "no second CreateAccount");
    assert_eq!(accounts(&moto.endpoint), 1);
}

#[test]
fn an_assignment_is_polled_to_succeeded() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            in_progress_reads: 2,
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ASSIGNMENT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_eq!(proxy.calls("CreateAccountAssignment"), 1);
    assert!(proxy.calls("DescribeAccountAssignmentCreationStatus") >= 2);
}

#[test]
fn a_failed_assignment_says_why_and_exits_1() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            in_progress_reads: 1,
            fail_with: Some("Received a 404 status error: No such principal".into()),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ASSIGNMENT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(1).stderr_has("No such principal");
}

#[test]
fn on_the_basic_plan_the_support_case_is_handed_over() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            subscription_required: true,
            ..Rules::default()
        },
    );
    let answers = not_activated_answers("123456789012");
    let t = Test::new().file("a.toml", answers).aws(&proxy.endpoint);
    let out = t.run_args(&[
        "run".into(),
        crate::common::repo()
            .join("runbooks/troubleshooting/not-activated.md")
            .display()
            .to_string(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
    ]);
    out.code_is(0);
    let link = "https://console.aws.amazon.com/support/home#/case/create?issueType=customer-service&serviceCode=customer-account&categoryCode=activation";
    out.stdout_has(link).stdout_has("handed_over=true");
    let handover = find(t.dir.path(), "support-case-").expect("hand-over file");
    let text = std::fs::read_to_string(handover).expect("read");
    assert!(text.contains(link));
    assert!(text.contains("Account activation: not activated after 24 hours (it.admins@example.com)"));
    assert!(text.contains("You can reach me at Monday 10:00 UTC."));
    assert_eq!(proxy.calls("CreateCase"), 0);
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn a_permission_set_created_meanwhile_is_taken_not_duplicated() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            conflict_on_duplicate_permission_set: true,
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", ASSIGNMENT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    assert_eq!(t.run().code, 0);
    // The second run does not see the set when it looks (someone else's creation racing ours),
    // so it asks to create it, gets ConflictException, and takes the existing one.
    proxy.set_rules(Rules {
        conflict_on_duplicate_permission_set: true,
        hide_permission_sets_once: true,
        ..Rules::default()
    });
    let again = t.run_args(&["run".into(), "r.md".into(), "--restart".into()]);
    again.code_is(0);
    assert_eq!(proxy.injected("conflict"), 1);
    assert_eq!(proxy.calls("CreatePermissionSet"), 2);
    let sets = block_on(async {
        let ctx = sdk(&moto.endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let inst = sso.list_instances().send().await.expect("instances");
        let arn = inst.instances()[0].instance_arn().expect("arn").to_string();
        sso.list_permission_sets()
            .instance_arn(arn)
            .send()
            .await
            .expect("sets")
            .permission_sets()
            .len()
    });
    assert_eq!(sets, 1, "still one permission set");
}

/// Two items of one fan-out naming the same email: one account, and the other item fails saying
/// why (the listing of existing accounts is a snapshot, so both would otherwise create).
#[test]
fn two_items_with_one_email_create_one_account_and_say_why() {
    let moto = Moto::shared();
    let text = r#"# Twins

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each='["acme-twin-prod", "acme-twin-dev"]' timeout=60s
name = "${item}"
email = "aws+twins@example.com"
```
"#;
    let t = Test::new().file("r.md", text).aws(&moto.endpoint).args(["run", "r.md"]);
    let out = t.run();
    out.code_is(1);
    assert!(
        out.stderr
            .contains("another item of this fan-out creates an account for aws+twins@example.com"),
        "{out:?}"
    );
    assert_eq!(accounts(&moto.endpoint), 1);
    // The summary adds up with a failed item.
    let summary = out
        .stdout
        .split("accts summary")
        .nth(1)
        .unwrap_or_else(|| panic!("{out:?}"));
    let row = |name: &str| {
        summary
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .map(str::trim)
    };
    let rows = ["items", "done before this run", "done now", "failed", "waiting"].map(row);
    assert_eq!(rows, ["2", "0", "1", "1", "0"].map(Some), "{summary}");
    // Run again: the email now belongs to acme-twin-prod. The dev item must not take that account
    // as its own (its outputs would hand later steps the prod account) nor make another.
    t.run()
        .code_is(1)
        .stderr_has("the account for aws+twins@example.com is")
        .stderr_has("`acme-twin-prod`, not `acme-twin-dev`");
    assert_eq!(accounts(&moto.endpoint), 1);
}

// Item 6 of issue #16: a permission set lives on as an IAM role in each account it is assigned
// in; changing the set changes nothing there until it is provisioned again.

/// A closed account keeps its email for 90 days: ensure-account says so instead of calling it
/// done (attacker finding, session 6: `created=false`, exit 0, for a SUSPENDED account).
#[test]
fn a_closed_account_is_not_done() {
    let moto = Moto::shared();
    let id = seed_account(&moto.endpoint, "acme-payments-prod", "aws+payments-prod@example.com");
    block_on(async {
        let org = sdk(&moto.endpoint).organizations().await.expect("client");
        org.close_account().account_id(id).send().await.expect("closed");
    });
    Test::new()
        .file("r.md", ONE_ACCOUNT)
        .aws(&moto.endpoint)
        .args(["run", "r.md"])
        .run()
        .code_is(1)
        .stderr_has("it is closed (SUSPENDED)");
}
