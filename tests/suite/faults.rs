//! What moto is too kind to do, through our fault proxy: asynchronous operations that take time,
//! fail, or never finish; throttling and server errors; the Basic support plan.

use std::time::Duration;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, block_on, sdk};
use crate::support_cases::not_activated_answers;

pub(crate) const ONE_ACCOUNT: &str = r#"# One account

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=acct timeout=20s
name = "acme-payments-prod"
email = "aws+payments-prod@example.com"
```
"#;

pub(crate) fn accounts(endpoint: &str) -> usize {
    block_on(async {
        let ctx = sdk(endpoint);
        runbook_plugins::aws::organizations::all_accounts(&ctx)
            .await
            .expect("accounts")
            .iter()
            .filter(|a| a.name.starts_with("acme-"))
            .count()
    })
}

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

pub(crate) const ASSIGNMENT: &str = r#"# Assign

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=user
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "ops"
display_name = "Ops"
given_name = "O"
family_name = "Ps"
email = "ops@example.com"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${steps.ic.instance_arn}"
name = "AdministratorAccess"
managed_policies = ["AdministratorAccess"]
```

```aws sso-admin.ensure-assignment id=assign timeout=20s
instance_arn = "${steps.ic.instance_arn}"
permission_set_arn = "${steps.ps.arn}"
principal_id = "${steps.user.user_id}"
account_id = "123456789012"
```
"#;

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
fn throttling_and_server_errors_still_complete_without_duplicates() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_pct: 20,
            server_error_pct: 10,
            in_progress_reads: 1,
            seed: 7,
            ..Rules::default()
        },
    );
    let text = r#"# Many

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each='["acme-a-prod", "acme-b-prod", "acme-c-prod", "acme-d-prod", "acme-e-prod"]' timeout=60s
name = "${item}"
email = "aws+${item}@example.com"
```
"#;
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "12")
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert!(proxy.injected("throttle") > 0, "throttling was injected");
    assert!(proxy.injected("500") + proxy.injected("503") > 0, "5xx was injected");
    assert_eq!(accounts(&moto.endpoint), 5, "exactly one of each");
    assert_eq!(proxy.calls("CreateAccount") - proxy.injected_on("CreateAccount"), 5);
    out.stdout_has("accts summary")
        .stdout_has("    done now               5\n")
        .stdout_has("    failed                 0\n");
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

pub(crate) fn find(dir: &std::path::Path, prefix: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, prefix) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
            return Some(p);
        }
    }
    None
}

/// Issue 7: 50 accounts, then an assignment in each, with 20% of all requests throttled.
#[test]
fn fifty_assignments_under_throttling_each_once_and_the_summary_adds_up() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_pct: 20,
            seed: 50,
            ..Rules::default()
        },
    );
    let text = r#"# Fifty

```rhai id=names
let v = [];
for i in 0..50 { v.push(`acme-n${i}-prod`); }
#{ names: v }
```

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each="steps.names.names" timeout=120s
name = "${item}"
email = "aws+${item}@example.com"
```
"#
    .to_string()
        + ASSIGNMENT
            .replace("# Assign\n", "")
            .replace(
                "```aws sso-admin.ensure-assignment id=assign timeout=20s",
                "```aws sso-admin.ensure-assignment id=assign for-each='steps.accts.results.map(|r| r.account_id)' timeout=120s",
            )
            .replace("account_id = \"123456789012\"", "account_id = \"${item}\"")
            .as_str();
    let out = Test::new()
        .file("r.md", &text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "15")
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_eq!(accounts(&moto.endpoint), 50);

    let upstream = |op: &str| proxy.calls(op) - proxy.injected_on(op);
    assert!(
        proxy.injected_on("CreateAccountAssignment") > 0,
        "assignments were throttled"
    );
    assert_eq!(upstream("CreateAccountAssignment"), 50, "each assignment made once");
    assert_eq!(
        upstream("ListAccountAssignmentsForPrincipal"),
        1,
        "existing read once per fan-out"
    );
    let assigned = crate::common::identity_center(&moto.endpoint).assigned;
    let distinct: std::collections::BTreeSet<&String> = assigned.iter().collect();
    assert_eq!(
        (assigned.len(), distinct.len()),
        (50, 50),
        "all 50 assigned, none twice"
    );

    // The summary table counts right, throttles included: every throttle the proxy injected on
    // the assignment calls was seen by the fan-out.
    let summary = out
        .stdout
        .split("assign summary")
        .nth(1)
        .unwrap_or_else(|| panic!("{out:?}"));
    let row = |name: &str| -> String {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.trim_start()[name.len()..].trim().to_string())
            .unwrap_or_else(|| panic!("no {name} row in {summary}"))
    };
    assert_eq!(row("items"), "50");
    assert_eq!(row("done now"), "50");
    assert_eq!(row("failed"), "0");
    assert_eq!(row("waiting"), "0");
    let throttled: usize = row("throttled responses").parse().expect("a number");
    let injected = proxy.injected_on("CreateAccountAssignment")
        + proxy.injected_on("DescribeAccountAssignmentCreationStatus")
        + proxy.injected_on("ListAccountAssignmentsForPrincipal");
    assert_eq!(throttled, injected, "{summary}");
    assert!(row("concurrency").contains("halved"), "concurrency shrank: {summary}");
}

/// Two items of one fan-out naming the same email: one account, and the other item fails saying
/// why (the listing of existing accounts is a snapshot, so both would otherwise create).
#[test]
fn two_items_with_one_email_create_one_account_and_say_why() {
    let moto = Moto::start();
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

/// A throttle halves what is in flight, measured where AWS would see it: the proxy counts the
/// requests in flight as each one arrives. Before the throttle the fan-out fills its
/// `max_in_flight`; once the requests that were in flight then have been answered, no more than
/// half of it (and the one it has grown back by) arrive together.
#[test]
fn a_throttle_halves_the_requests_in_flight() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_nth: Some(("CreateAccountAssignment".into(), 17)),
            delay: Duration::from_millis(40),
            ..Rules::default()
        },
    );
    let ids: Vec<String> = (0..48).map(|i| format!("\"{:012}\"", 200_000_000_000u64 + i)).collect();
    let text = ASSIGNMENT
        .replace(
            "account_id = \"123456789012\"",
            &format!("account_ids = [{}]\nmax_in_flight = 8", ids.join(", ")),
        )
        .replace("timeout=20s", "timeout=120s");
    let out = Test::new()
        .file("r.md", &text)
        .aws(&proxy.endpoint)
        // The request budget (20/s for sso-admin) would set the pace first: this test is about
        // what a throttle does to concurrency, so the budget is lifted.
        .args(["run", "r.md", "--rate", "sso-admin=off"])
        .run();
    out.code_is(0);
    assert_eq!(proxy.injected("throttle"), 1, "one throttle");
    assert_eq!(
        proxy.calls("CreateAccountAssignment") - proxy.injected_on("CreateAccountAssignment"),
        48,
        "each assignment made once"
    );
    let arrivals = proxy.arrivals();
    let before = arrivals
        .iter()
        .filter(|(_, since)| since.is_none())
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    assert_eq!(
        before, 8,
        "the fan-out filled max_in_flight before the throttle: {arrivals:?}"
    );
    // The requests in flight at the throttle (at most 8) have all been answered once 8 have been
    // answered since; the first requests to arrive then come under the halved limit (4, plus the
    // throttled item's own retry). Every later success grows it back by 1/limit (4 to 8 takes 22
    // items, and the last items are too few to fill it, so "grows back" is checked as past 5).
    let first_after = arrivals
        .iter()
        .filter_map(|(_, since)| *since)
        .filter(|s| *s >= 8)
        .min()
        .unwrap_or_else(|| panic!("requests arrived after the throttle: {arrivals:?}"));
    let peak_first_after = arrivals
        .iter()
        .filter(|(_, since)| *since == Some(first_after))
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    assert!(
        peak_first_after <= 5,
        "after the throttle at most half of 8 (+1 retrying) in flight, saw {peak_first_after}: {arrivals:?}"
    );
    let recovered = arrivals
        .iter()
        .filter(|(_, since)| since.is_some_and(|s| s > first_after))
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    assert!(recovered >= 6, "the limit grows back after the throttle: {arrivals:?}");
}

/// A closed account keeps its email for 90 days: ensure-account says so instead of calling it
/// done (attacker finding, session 6: `created=false`, exit 0, for a SUSPENDED account).
#[test]
fn a_closed_account_is_not_done() {
    let moto = Moto::start();
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

/// An organization (all features) and one member account made straight at moto, as another
/// team would have made it; its id.
pub(crate) fn seed_account(endpoint: &str, name: &str, email: &str) -> String {
    block_on(async {
        let org = sdk(endpoint).organizations().await.expect("client");
        org.create_organization()
            .feature_set("ALL".into())
            .send()
            .await
            .expect("organization");
        org.create_account()
            .account_name(name)
            .email(email)
            .send()
            .await
            .expect("account")
            .create_account_status()
            .and_then(|s| s.account_id())
            .map(String::from)
            .expect("id")
    })
}
