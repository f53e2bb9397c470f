//! What moto is too kind to do, through our fault proxy: asynchronous operations that take time,
//! fail, or never finish; throttling and server errors; the Basic support plan.

mod common;

use std::time::Duration;

use common::fault_proxy::{FaultProxy, Rules};
use common::{Moto, Test, block_on, sdk};

const ONE_ACCOUNT: &str = r#"# One account

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=acct timeout=20s
name = "acme-payments-prod"
email = "aws+payments-prod@example.com"
```
"#;

fn accounts(endpoint: &str) -> usize {
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
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(proxy.calls("CreateAccount"), 1);
    assert!(
        proxy.calls("DescribeCreateAccountStatus") >= 3,
        "polled {}",
        proxy.calls("DescribeCreateAccountStatus")
    );
    assert!(out.stdout.contains("created=true"), "{out:?}");
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
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("r.md:6:1: error: step `acct` failed: creation of account acme-payments-prod failed: EMAIL_ALREADY_EXISTS (request car-"), "{out:?}");
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
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("timed out after"), "{out:?}");
    assert!(out.stderr.contains("request car-"), "the request id is named: {out:?}");
    assert!(out.stderr.contains("run the step again to resume polling"), "{out:?}");
    proxy.set_rules(Rules::default());
    let again = t.run();
    assert_eq!(again.code, 0, "{again:?}");
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
    assert_eq!(out.code, 1, "{out:?}");
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
    assert_eq!(again.code, 0, "{again:?}");
    assert!(proxy.reads_of(&request) > polled_before, "the re-run polled {request}");
    assert_eq!(proxy.calls("CreateAccount"), 1, "no second CreateAccount");
    assert_eq!(accounts(&moto.endpoint), 1);
}

const ASSIGNMENT: &str = r#"# Assign

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
    assert_eq!(out.code, 0, "{out:?}");
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
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("No such principal"), "{out:?}");
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
    assert_eq!(out.code, 0, "{out:?}");
    assert!(proxy.injected("throttle") > 0, "throttling was injected");
    assert!(proxy.injected("500") + proxy.injected("503") > 0, "5xx was injected");
    assert_eq!(accounts(&moto.endpoint), 5, "exactly one of each");
    assert_eq!(proxy.calls("CreateAccount") - proxy.injected_on("CreateAccount"), 5);
    assert!(out.stdout.contains("accts summary"), "{out:?}");
    assert!(out.stdout.contains("    done now               5\n"), "{out:?}");
    assert!(out.stdout.contains("    failed                 0\n"), "{out:?}");
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
        common::repo()
            .join("runbooks/troubleshooting/not-activated.md")
            .display()
            .to_string(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let link = "https://console.aws.amazon.com/support/home#/case/create?issueType=customer-service&serviceCode=customer-account&categoryCode=activation";
    assert!(out.stdout.contains(link), "{out:?}");
    assert!(out.stdout.contains("handed_over=true"), "{out:?}");
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
    assert_eq!(again.code, 0, "{again:?}");
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

fn find(dir: &std::path::Path, prefix: &str) -> Option<std::path::PathBuf> {
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
        + &ASSIGNMENT
            .replace("# Assign\n", "")
            .replace(
                "```aws sso-admin.ensure-assignment id=assign timeout=20s",
                "```aws sso-admin.ensure-assignment id=assign for-each='steps.accts.results.map(|r| r.account_id)' timeout=120s",
            )
            .replace("account_id = \"123456789012\"", "account_id = \"${item}\"");
    let out = Test::new()
        .file("r.md", &text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "15")
        .args(["run", "r.md"])
        .run();
    assert_eq!(out.code, 0, "{out:?}");
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
    let assigned = common::identity_center(&moto.endpoint).assigned;
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

/// CreateAccount has no idempotency token. When AWS created the account but the answer was lost
/// (a 5xx after the fact), retrying blindly would create a second account: look first.
#[test]
fn a_lost_create_account_answer_does_not_create_twice() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("CreateAccount".into()),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ONE_ACCOUNT)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    assert_eq!(proxy.injected("lost-answer"), 1);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(proxy.calls("CreateAccount"), 1, "not asked twice");
    assert_eq!(accounts(&moto.endpoint), 1, "exactly one account");
}

/// CreateAccount is retried by the plugin, not the SDK. Throttled on every attempt, it is asked
/// at most `AWS_MAX_ATTEMPTS` times, each time after a longer pause, then the step fails saying
/// AWS is throttling, with nothing created.
#[test]
fn a_create_account_throttled_on_every_attempt_is_given_up_after_the_attempts() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_op: Some("CreateAccount".into()),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ONE_ACCOUNT)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "3")
        .args(["run", "r.md"])
        .run();
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(proxy.calls("CreateAccount"), 3, "one request per attempt: {out:?}");
    // The pause before each new attempt doubles (100 ms, then 200 ms): a sleep is never shorter.
    let gaps = proxy.gaps("CreateAccount");
    assert!(
        gaps.len() == 2 && gaps[0] >= Duration::from_millis(100) && gaps[1] >= Duration::from_millis(200),
        "{gaps:?}"
    );
    assert!(out.stderr.contains("AWS is throttling requests"), "{out:?}");
    assert_eq!(accounts(&moto.endpoint), 0);
}

/// The answer to CreateAccount is lost while AWS does not list the new account yet: the look
/// before asking again finds the creation request by the account's name and follows it.
#[test]
fn a_lost_create_account_answer_is_followed_by_its_request_before_the_account_is_listed() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("CreateAccount".into()),
            hide_accounts: true,
            ..Rules::default()
        },
    );
    let t = Test::new().file("r.md", ONE_ACCOUNT).aws(&proxy.endpoint);
    let out = t.run_args(&["run".into(), "r.md".into()]);
    assert_eq!(proxy.injected("lost-answer"), 1);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(proxy.calls("CreateAccount"), 1, "not asked twice: {out:?}");
    assert!(
        out.all().contains("but the account was being created: following it"),
        "{out:?}"
    );
    assert_eq!(accounts(&moto.endpoint), 1, "exactly one account");
    // The request followed is this account's, not another creation (the organization's own).
    let created = block_on(async {
        runbook_plugins::aws::organizations::all_accounts(&sdk(&moto.endpoint))
            .await
            .expect("accounts")
            .into_iter()
            .find(|a| a.name == "acme-payments-prod")
            .map(|a| a.id)
            .expect("created")
    });
    assert_eq!(outputs(t.dir.path(), "acct")["account_id"], created.as_str(), "{out:?}");
}

/// Connections closed without an answer, and answers slower than the attempt timeout (after
/// moto acted): the SDK gives up on the attempt and retries, the non-idempotent CreateAccount
/// looks before asking again, and nothing exists twice.
#[test]
fn resets_and_answers_past_the_attempt_timeout_still_give_one_of_each() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            reset_pct: 20,
            // CreateAccount's own answers, after moto created the account: the client gives up
            // on them, so it must look before asking again.
            slow_answers: 2,
            slow_by: Duration::from_secs(30),
            slow_op: Some("CreateAccount".into()),
            seed: 5,
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
    let started = std::time::Instant::now();
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "12")
        .args(["run", "r.md", "--attempt-timeout", "500ms"])
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(proxy.injected("reset") > 0, "connections were reset");
    assert_eq!(proxy.injected("slow"), 2, "two CreateAccount answers were held back");
    // Each account was asked for once at moto: the held answers were followed by a look, not
    // by a second CreateAccount.
    assert_eq!(
        proxy.calls("CreateAccount") - proxy.injected_on("CreateAccount"),
        5,
        "CreateAccount reached moto once per account"
    );
    // Not a speed target: a held answer comes after 30 s, so a run that waited for one instead of
    // abandoning the attempt could not have finished sooner.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "attempts were abandoned at the timeout"
    );
    assert_eq!(accounts(&moto.endpoint), 5, "exactly one of each");
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
    let out = Test::new()
        .file("r.md", text)
        .aws(&moto.endpoint)
        .args(["run", "r.md"])
        .run();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("another item of this fan-out creates an account for aws+twins@example.com"),
        "{out:?}"
    );
    assert_eq!(accounts(&moto.endpoint), 1);
}

// Item 6 of issue #16: a permission set lives on as an IAM role in each account it is assigned
// in; changing the set changes nothing there until it is provisioned again.

/// ASSIGNMENT with the permission set's session duration and policies as given.
fn assignment_with(duration: &str, policies: &str) -> String {
    ASSIGNMENT.replace(
        "managed_policies = [\"AdministratorAccess\"]",
        &format!("session_duration = \"{duration}\"\nmanaged_policies = [{policies}]"),
    )
}

/// The outputs the last run recorded for `step` (the one-line summary shows only a few).
fn outputs(dir: &std::path::Path, step: &str) -> serde_json::Value {
    let runs = common::run_dirs(&dir.join(".runbook"));
    let state = std::fs::read_to_string(runs.first().expect("a run").join("state.json")).expect("state");
    let v: serde_json::Value = serde_json::from_str(&state).expect("json");
    v["steps"][step]["outputs"].clone()
}

fn intents_and_answers(dir: &std::path::Path, call: &str) -> (usize, usize) {
    let t = common::transcripts(&dir.join(".runbook"));
    let lines: Vec<&str> = t.lines().filter(|l| l.contains(call)).collect();
    (
        lines.iter().filter(|l| l.contains(r#""event":"intent""#)).count(),
        lines.iter().filter(|l| l.contains(r#""event":"requested""#)).count(),
    )
}

#[test]
fn a_changed_assigned_permission_set_is_provisioned_again() {
    let moto = Moto::start();
    // Provisioning reads IN_PROGRESS twice before it succeeds: the step waits for it.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            in_progress_reads: 2,
            ..Rules::default()
        },
    );
    let admin = "\"AdministratorAccess\"";
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", admin))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    let first = t.run();
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(outputs(t.dir.path(), "ps")["created"], true);
    assert_eq!(
        proxy.calls("ProvisionPermissionSet"),
        0,
        "a new set is provisioned by its assignment"
    );

    // A longer session for the assigned set: updated, then provisioned again, and waited for.
    std::fs::write(t.path("r.md"), assignment_with("PT4H", admin)).expect("write");
    let longer = t.run();
    assert_eq!(longer.code, 0, "{longer:?}");
    assert_eq!(proxy.calls("UpdatePermissionSet"), 1);
    assert_eq!(
        proxy.calls("ProvisionPermissionSet"),
        1,
        "ProvisionPermissionSet reached the emulator"
    );
    assert!(longer.stdout.contains("provisioned=true"), "{longer:?}");
    assert_eq!(outputs(t.dir.path(), "ps")["updated"], true);
    assert_eq!(
        proxy.calls("DescribePermissionSetProvisioningStatus"),
        2,
        "polled to SUCCEEDED"
    );
    assert_eq!(
        intents_and_answers(t.dir.path(), "sso-admin:ProvisionPermissionSet"),
        (1, 1)
    );

    // Unchanged: nothing to provision.
    let same = t.run_args(&["run".into(), "r.md".into(), "--restart".into()]);
    assert_eq!(same.code, 0, "{same:?}");
    assert!(same.stdout.contains("provisioned=false"), "{same:?}");
    assert_eq!(proxy.calls("ProvisionPermissionSet"), 1);

    // Another managed policy is a change too.
    std::fs::write(
        t.path("r.md"),
        assignment_with("PT4H", &format!("{admin}, \"ReadOnlyAccess\"")),
    )
    .expect("write");
    let policy = t.run();
    assert_eq!(policy.code, 0, "{policy:?}");
    assert!(policy.stdout.contains("provisioned=true"), "{policy:?}");
    assert_eq!(proxy.calls("AttachManagedPolicyToPermissionSet"), 2);
    assert_eq!(proxy.calls("ProvisionPermissionSet"), 2);
}

#[test]
fn a_change_is_provisioned_even_before_aws_lists_the_accounts_as_behind() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            provisioning_listing_lags: true,
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", "\"AdministratorAccess\""))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    assert_eq!(t.run().code, 0);
    std::fs::write(t.path("r.md"), assignment_with("PT8H", "\"AdministratorAccess\"")).expect("write");
    let out = t.run();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        proxy.calls("ProvisionPermissionSet"),
        1,
        "the change itself calls for provisioning"
    );
}

#[test]
fn a_failed_provisioning_says_why() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", "\"AdministratorAccess\""))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    assert_eq!(t.run().code, 0);
    proxy.set_rules(Rules {
        in_progress_reads: 1,
        fail_with: Some("The IAM role quota of account 123456789012 is exceeded".into()),
        ..Rules::default()
    });
    std::fs::write(t.path("r.md"), assignment_with("PT2H", "\"AdministratorAccess\"")).expect("write");
    let out = t.run();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "provisioning of permission set AdministratorAccess failed: The IAM role quota of account 123456789012 is exceeded"
        ),
        "{out:?}"
    );
}

#[test]
fn a_run_killed_between_the_change_and_the_provisioning_provisions_on_resume() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", "\"AdministratorAccess\""))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    assert_eq!(t.run().code, 0);
    std::fs::write(t.path("r.md"), assignment_with("PT2H", "\"AdministratorAccess\"")).expect("write");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(["run", "r.md"])
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("HOME", t.dir.path())
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("RUNBOOK_POLL_INITIAL_MS", "20")
        .env("RUNBOOK_POLL_CAP_MS", "100")
        .env_remove("AWS_PROFILE")
        .env_remove("RUNBOOK_STATE_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    // UpdatePermissionSet is the first mutating call, ProvisionPermissionSet the second: the
    // run dies after the change landed and before the provisioning left.
    proxy.arm_kill_before_call(child.id(), 2);
    let status = child.wait().expect("wait");
    assert!(proxy.killed(), "the kill point was reached: {status:?}");
    proxy.disarm_kill();
    assert_eq!(proxy.calls("UpdatePermissionSet"), 1);
    let resumed = t.run();
    assert_eq!(resumed.code, 0, "{resumed:?}");
    // Nothing differs from what the step asks any more, but AWS reports the account on an
    // older version of the set: provisioned.
    assert!(resumed.stdout.contains("provisioned=true"), "{resumed:?}");
    assert_eq!(outputs(t.dir.path(), "ps")["updated"], false);
    assert_eq!(proxy.calls("UpdatePermissionSet"), 1);
}

// Item 4: every refusal of the Support API that means "this account cannot use it" hands the
// case over to the console, with the link and the text on disk; none is a plain failure.

fn not_activated_answers(account_id: &str) -> String {
    format!(
        "[inputs]\naccount_email = \"it.admins@example.com\"\n[steps.email-and-browser]\nconfirm = true\nreachable = \"Monday 10:00 UTC\"\n[steps.root-sign-in]\nconfirm = true\naccount_id = \"{account_id}\"\n"
    )
}

fn run_not_activated(endpoint: &str, account_id: &str) -> (Test, common::Output) {
    let t = Test::new()
        .file("a.toml", not_activated_answers(account_id))
        .aws(endpoint);
    let out = t.run_args(&[
        "run".into(),
        common::repo()
            .join("runbooks/troubleshooting/not-activated.md")
            .display()
            .to_string(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
    ]);
    (t, out)
}

const CONSOLE: &str = "https://console.aws.amazon.com/support/home#/case/create?issueType=customer-service&serviceCode=customer-account&categoryCode=activation";

#[test]
fn every_refusal_of_the_support_api_hands_the_case_over() {
    let moto = Moto::start();
    for (code, reason, says) in [
        ("SubscriptionRequiredException", "support-plan", "(Basic or Developer)"),
        ("OptInRequired", "not-activated", "the account is not activated yet"),
        (
            "AccessDeniedException",
            "access-denied",
            "These credentials may not use the Support API",
        ),
    ] {
        let proxy = FaultProxy::start(
            &moto.endpoint,
            Rules {
                support_error: Some(code.into()),
                ..Rules::default()
            },
        );
        let (t, out) = run_not_activated(&proxy.endpoint, "123456789012");
        assert_eq!(out.code, 0, "{code}: {out:?}");
        assert!(out.stdout.contains(CONSOLE), "{code}: {out:?}");
        assert!(
            out.stdout.contains(&format!("handed_over=true reason={reason}")),
            "{code}: {out:?}"
        );
        assert!(out.stdout.contains(says), "{code}: {out:?}");
        let file = find(t.dir.path(), "support-case-").expect("hand-over file");
        let text = std::fs::read_to_string(file).expect("read");
        assert!(text.contains(CONSOLE) && text.contains(says), "{code}: {text}");
        assert!(text.contains("You can reach me at Monday 10:00 UTC."), "{text}");
        assert!(text.contains("The account: 123456789012"), "{text}");
        assert_eq!(proxy.calls("CreateCase") - proxy.injected_on("CreateCase"), 0, "{code}");
    }
    // No credentials at all (an account whose owner has only the console): handed over too.
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file("a.toml", not_activated_answers("123456789012"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = t.run_args(&[
        "run".into(),
        common::repo()
            .join("runbooks/troubleshooting/not-activated.md")
            .display()
            .to_string(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
    ]);
    assert_eq!(out.code, 0, "no credentials: {out:?}");
    assert!(out.stdout.contains("handed_over=true reason=no-credentials"), "{out:?}");
    assert!(out.stdout.contains("no AWS credentials found"), "{out:?}");
    assert_eq!(
        proxy.operations().len(),
        0,
        "nothing reached AWS: {:?}",
        proxy.operations()
    );
    assert!(super_cases(&moto.endpoint).is_empty(), "no case was filed");
}

/// Every support case in the emulator: (id, subject, status).
fn super_cases(endpoint: &str) -> Vec<(String, String, String)> {
    block_on(async {
        let out = sdk(endpoint)
            .support()
            .await
            .expect("client")
            .describe_cases()
            .include_resolved_cases(true)
            .include_communications(true)
            .send()
            .await
            .expect("cases");
        out.cases()
            .iter()
            .map(|c| {
                (
                    c.case_id().unwrap_or("").to_string(),
                    c.subject().unwrap_or("").to_string(),
                    c.recent_communications()
                        .and_then(|r| r.communications().first())
                        .and_then(|c| c.body())
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    })
}

#[test]
fn a_case_is_filed_only_from_the_account_it_is_about() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    // The credentials are 123456789012's; the case is about another account.
    let (t, out) = run_not_activated(&proxy.endpoint, "210987654321");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("handed_over=true reason=other-account"), "{out:?}");
    assert!(
        out.stdout
            .contains("The credentials are for account 123456789012, but the case is about account 210987654321"),
        "{out:?}"
    );
    assert_eq!(proxy.calls("CreateCase"), 0);
    assert_eq!(
        proxy.calls("DescribeCases"),
        0,
        "not even a look from the wrong account"
    );
    assert!(find(t.dir.path(), "support-case-").is_some());
    // From the account itself, the case is filed.
    let (_, own) = run_not_activated(&proxy.endpoint, "123456789012");
    assert_eq!(own.code, 0, "{own:?}");
    assert!(own.stdout.contains("created=true"), "{own:?}");
    assert_eq!(proxy.calls("CreateCase"), 1);
}

#[test]
fn a_resolved_case_with_the_same_subject_gets_a_follow_up_that_names_it() {
    let moto = Moto::start();
    let subject = "Account activation: not activated after 24 hours (it.admins@example.com)";
    // An earlier case with this subject, resolved.
    let old = block_on(async {
        let s = sdk(&moto.endpoint).support().await.expect("client");
        let id = s
            .create_case()
            .subject(subject)
            .communication_body("first time")
            .send()
            .await
            .expect("case")
            .case_id()
            .unwrap_or("")
            .to_string();
        // moto moves a case one status per look: opened, pending-customer-action, reopened,
        // resolved (the third look, below, sees it resolved).
        for _ in 0..2 {
            s.describe_cases().case_id_list(&id).send().await.expect("look");
        }
        let st = s
            .describe_cases()
            .case_id_list(&id)
            .include_resolved_cases(true)
            .send()
            .await
            .expect("look");
        (id, st.cases()[0].status().unwrap_or("").to_string())
    });
    moto.support_case_status_every(1_000_000);
    let (old_id, status) = old;
    assert_eq!(status, "resolved", "the earlier case is resolved");

    let (t, out) = run_not_activated(&moto.endpoint, "123456789012");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("created=true"), "a new case: {out:?}");
    assert!(out.stdout.contains(&format!("follows_up={old_id}")), "{out:?}");
    let cases = super_cases(&moto.endpoint);
    assert_eq!(cases.iter().filter(|c| c.1 == subject).count(), 2, "{cases:?}");
    let new = cases.iter().find(|c| c.0 != old_id).expect("the new case");
    assert!(
        new.2.starts_with(&format!(
            "This follows up on case foo_display_id ({old_id}), which was resolved"
        )),
        "{new:?}"
    );
    // Run again: the follow-up is open, so it is the case; nothing new.
    let again = t.run_args(&[
        "run".into(),
        common::repo()
            .join("runbooks/troubleshooting/not-activated.md")
            .display()
            .to_string(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
        "--restart".into(),
    ]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("created=false"), "{again:?}");
    assert!(again.stdout.contains(&format!("case_id={}", new.0)), "{again:?}");
    assert_eq!(super_cases(&moto.endpoint).len(), 2);
}

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
        .args(["run", "r.md"])
        .run();
    assert_eq!(out.code, 0, "{out:?}");
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
    // The requests in flight at the throttle (at most 8) have been answered once 8 more have been
    // answered; the next ones arrive under the halved limit, which grows by 1/limit per item.
    let after: Vec<usize> = arrivals
        .iter()
        .filter(|(_, since)| since.is_some_and(|s| (8..16).contains(&s)))
        .map(|(n, _)| *n)
        .collect();
    assert!(!after.is_empty(), "requests arrived after the throttle: {arrivals:?}");
    let peak_after = after.iter().copied().max().unwrap_or(0);
    assert!(
        peak_after <= 5,
        "after the throttle at most half of 8 (+1 grown back) in flight, saw {peak_after}: {arrivals:?}"
    );
}
