//! An answer lost after AWS acted: the fault proxy forwards the request to moto, moto creates the
//! resource, and the caller gets a 500 instead of the answer. A client that retries blindly
//! creates a second one (moto, like AWS for calls without an idempotency token, does what it is
//! asked twice). Every mutating call the bundled runbooks make is lost once here, and the
//! emulator must hold exactly one of each afterwards, checked through the SDK.

use std::time::Duration;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::fixtures::{ASSIGNMENT, ONE_ACCOUNT, accounts, seed_account};
use crate::common::{Moto, PART2_ANSWERS, Test, block_on, cases_with, part2_counts, repo, sdk};
use crate::provisioning::outputs;

fn runbook(name: &str) -> String {
    repo().join("runbooks").join(name).display().to_string()
}

/// Runs Part 2 from a new account with the first answer of `op` lost, and checks that the call
/// reached moto, its answer was lost, and the emulator holds one organization member set-up:
/// one AdministratorAccess set (one hour, the managed policy once), one user, one assignment.
fn part_2_losing(op: &str) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            lose_answer_once: Some(op.into()),
            // As AWS does: a second set with the same name is refused.
            conflict_on_duplicate_permission_set: true,
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("answers.toml", PART2_ANSWERS)
        .aws(&proxy.endpoint)
        .args([
            "run",
            &runbook("part-2-identity-center.md"),
            "--answers",
            "answers.toml",
        ])
        .run();
    assert_eq!(
        proxy.injected("lost-answer"),
        1,
        "{op}: the answer was lost: {:?}",
        proxy.operations()
    );
    assert_eq!(out.code, 0, "{op}: {out:?}");
    assert_eq!(
        part2_counts(&moto.endpoint),
        (1, vec!["PT1H".to_string(), "AdministratorAccess".to_string()], 1, 1),
        "{op}: exactly one of each: {:?}",
        proxy.operations()
    );
}

#[test]
fn a_lost_create_organization_answer_leaves_one_organization() {
    part_2_losing("CreateOrganization");
}

#[test]
fn a_lost_create_user_answer_leaves_one_user() {
    part_2_losing("CreateUser");
}

#[test]
fn a_lost_create_permission_set_answer_leaves_one_set() {
    part_2_losing("CreatePermissionSet");
}

#[test]
fn a_lost_attach_managed_policy_answer_attaches_it_once() {
    part_2_losing("AttachManagedPolicyToPermissionSet");
}

#[test]
fn a_lost_create_account_assignment_answer_leaves_one_assignment() {
    part_2_losing("CreateAccountAssignment");
}

const NOT_ACTIVATED_ANSWERS: &str = r#"
[inputs]
account_email = "it.admins@example.com"
[steps.email-and-browser]
confirm = true
reachable = "tomorrow morning UTC"
[steps.case]
confirm = true
[steps.root-sign-in]
confirm = true
account_id = "123456789012"
"#;

/// CreateCase is retried by the plugin, not the SDK. Throttled on every attempt, it is asked at
/// most `AWS_MAX_ATTEMPTS` times, each time after a longer pause, then the step fails saying AWS
/// is throttling, and no case was filed.
#[test]
fn a_create_case_throttled_on_every_attempt_is_given_up_after_the_attempts() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_op: Some("CreateCase".into()),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("a.toml", NOT_ACTIVATED_ANSWERS)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "3")
        .args([
            "run",
            &runbook("troubleshooting/not-activated.md"),
            "--answers",
            "a.toml",
            "--yes",
        ])
        .run();
    out.code_is(1);
    assert_eq!(proxy.calls("CreateCase"), 3, "one request per attempt: {out:?}");
    out.stderr_has("AWS is throttling requests");
    // The pause before each new attempt doubles (400 ms, then 800 ms).
    let gaps = proxy.gaps("CreateCase");
    assert!(
        gaps.len() == 2 && gaps[0] >= Duration::from_millis(400) && gaps[1] >= Duration::from_millis(800),
        "{gaps:?}"
    );
    assert!(cases_with(&moto.endpoint, "not activated after 24 hours").is_empty());
}

/// CreateCase has no idempotency token either: a second case would reach a person at AWS
/// Support twice.
#[test]
fn a_lost_create_case_answer_files_one_case() {
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("CreateCase".into()),
            ..Rules::default()
        },
    );
    let answers = r#"
[inputs]
account_email = "it.admins@example.com"
[steps.email-and-browser]
confirm = true
reachable = "tomorrow morning UTC"
[steps.case]
confirm = true
[steps.root-sign-in]
confirm = true
account_id = "123456789012"
"#;
    let out = Test::new()
        .file("a.toml", answers)
        .aws(&proxy.endpoint)
        .args([
            "run",
            &runbook("troubleshooting/not-activated.md"),
            "--answers",
            "a.toml",
            "--yes",
        ])
        .run();
    assert_eq!(proxy.injected("lost-answer"), 1, "{:?}", proxy.operations());
    out.code_is(0);
    assert_eq!(
        cases_with(&moto.endpoint, "not activated after 24 hours").len(),
        1,
        "one case: {:?}",
        proxy.operations()
    );
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
    out.code_is(0);
    assert_eq!(proxy.calls("CreateAccount"), 1, "not asked twice");
    assert_eq!(accounts(&moto.endpoint), 1, "exactly one account");
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
    let text = crate::common::fixtures::FIVE_ACCOUNTS;
    let started = std::time::Instant::now();
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "12")
        .args(["run", "r.md", "--attempt-timeout", "500ms"])
        .run();
    out.code_is(0);
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
    out.code_is(1);
    assert_eq!(proxy.calls("CreateAccount"), 3, "one request per attempt: {out:?}");
    // The pause before each new attempt doubles (100 ms, then 200 ms): a sleep is never shorter.
    let gaps = proxy.gaps("CreateAccount");
    assert!(
        gaps.len() == 2 && gaps[0] >= Duration::from_millis(100) && gaps[1] >= Duration::from_millis(200),
        "{gaps:?}"
    );
    out.stderr_has("AWS is throttling requests");
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
    out.code_is(0);
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

const ONE_SET: &str = r#"# One set

```aws sso-admin.find-instance id=ic
```

```aws sso-admin.ensure-permission-set id=ps timeout=2s
instance_arn = "${steps.ic.instance_arn}"
name = "ReadOnly"
```
"#;

/// Permission sets named `ReadOnly` in the emulator.
fn read_only_sets(endpoint: &str) -> usize {
    block_on(async {
        let sso = sdk(endpoint).sso_admin(None).await.expect("client");
        let instance = sso.list_instances().send().await.expect("instances").instances()[0]
            .instance_arn()
            .expect("arn")
            .to_string();
        let mut n = 0;
        for arn in sso
            .list_permission_sets()
            .instance_arn(&instance)
            .send()
            .await
            .expect("sets")
            .permission_sets()
        {
            let d = sso
                .describe_permission_set()
                .instance_arn(&instance)
                .permission_set_arn(arn)
                .send()
                .await
                .expect("describe");
            n += usize::from(d.permission_set().and_then(|p| p.name()) == Some("ReadOnly"));
        }
        n
    })
}

/// A run whose CreatePermissionSet reaches AWS 5 s after it was sent, while the step gives up at
/// 2 s (+2 s): the run fails with the create on its way. AWS refuses a second set of one name
/// (the proxy plays that, decided when a request lands).
fn a_set_create_abandoned_on_its_way() -> (Moto, FaultProxy, Test) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            hold_first: Some(("CreatePermissionSet".into(), Duration::from_secs(5))),
            conflict_on_duplicate_permission_set: true,
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", ONE_SET)
        .aws(&proxy.endpoint)
        .env("RUNBOOK_LANDING_MS", "60000");
    t.run_args(&["run".into(), "r.md".into()])
        .code_is(1)
        .stderr_has("timeout=2s ran out");
    (moto, proxy, t)
}

/// AWS refuses a second permission set of one name, so a create abandoned on its way is settled
/// by looking, at once: the re-run makes the set (the first request, landing later, is refused)
/// and never waits the landing time (attacker finding: a kill while a set was being created cost
/// the next run six minutes).
#[test]
fn a_set_create_abandoned_at_the_timeout_is_settled_by_looking_without_a_wait() {
    let (moto, proxy, t) = a_set_create_abandoned_on_its_way();
    let t0 = std::time::Instant::now();
    let again = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    again.code_is(0).stdout_lacks("may still reach AWS");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "no landing wait: {:?}",
        t0.elapsed()
    );
    std::thread::sleep(Duration::from_secs(5)); // the held request has landed (and been refused)
    assert_eq!(read_only_sets(&moto.endpoint), 1, "{again:?}\n{:?}", proxy.operations());
}

/// A call AWS answered has landed: a step that failed after the answer (the assignment ended
/// FAILED) is run again at once, without waiting for calls that might still be on their way.
#[test]
fn a_rerun_after_an_answered_call_failed_does_not_wait_for_it_to_land() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            in_progress_reads: 1,
            fail_with: Some("Received a 404 status error: No such principal".into()),
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", ASSIGNMENT)
        .aws(&proxy.endpoint)
        .env("RUNBOOK_LANDING_MS", "60000");
    t.run_args(&["run".into(), "r.md".into()])
        .code_is(1)
        .stderr_has("No such principal");
    // (The assignment exists at moto: the proxy played the FAILED status.)
    t.run_args(&["run".into(), "r.md".into()])
        .code_is(0)
        .stdout_lacks("may still reach AWS");
}

/// AWS refused the create (nothing done): the re-run has nothing to wait for.
#[test]
fn a_rerun_after_aws_refused_the_create_does_not_wait_for_it_to_land() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            refuse_op: Some(("CreatePermissionSet".into(), "AccessDeniedException".into())),
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", ONE_SET)
        .aws(&proxy.endpoint)
        .env("RUNBOOK_LANDING_MS", "60000");
    t.run_args(&["run".into(), "r.md".into()])
        .code_is(1)
        .stderr_has("AccessDeniedException");
    t.run_args(&["run".into(), "r.md".into()])
        .code_is(1)
        .stderr_has("AccessDeniedException")
        .stdout_lacks("may still reach AWS");
    assert_eq!(proxy.calls("CreatePermissionSet"), 2);
}

/// Another team's account of the same name, and this step's CreateAccount answered with a server
/// error: the creation requests AWS lists by name are not this step's unless the account has
/// this step's email. It used to be taken, and the step said `created=true` for it (attacker
/// finding, session 6: the bundled multiple-accounts runbook then gave the admin user
/// AdministratorAccess in the other team's account).
#[test]
fn an_account_of_the_same_name_with_another_email_is_never_taken() {
    let moto = Moto::start();
    let theirs = seed_account(&moto.endpoint, "acme-payments-prod", "payments-team@example.com");
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            refuse_op: Some(("CreateAccount".into(), "InternalServerException".into())),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ONE_ACCOUNT)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "2")
        .args(["run", "r.md"])
        .run();
    out.code_is(1).stdout_lacks("created=true").stdout_lacks(&theirs);
}

/// A CreateAccount whose attempt timed out may still reach AWS: the plugin waits until it can
/// no longer land before it looks, and finds it, instead of asking again at once (attacker
/// finding, session 6: four accounts from one step).
#[test]
fn a_create_account_past_its_attempt_timeout_is_let_land_before_the_look() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            hold_first: Some(("CreateAccount".into(), Duration::from_secs(3))),
            ..Rules::default()
        },
    );
    let out = Test::new()
        .file("r.md", ONE_ACCOUNT)
        .aws(&proxy.endpoint)
        .env("RUNBOOK_LANDING_MS", "5000")
        .args(["run", "r.md", "--attempt-timeout", "1s"])
        .run();
    std::thread::sleep(Duration::from_secs(3)); // a held request has landed by now
    assert_eq!(accounts(&moto.endpoint), 1, "one account: {out:?}");
    out.code_is(0).stdout_has("may still reach AWS");
}

/// A step renamed after its CreateCase was abandoned keeps the re-run's wait: the claim is on the
/// target, whatever step sent it (attacker finding, session 6: a renamed id, or a heading the id
/// came from, made a second one at once).
#[test]
fn a_renamed_step_still_lets_its_abandoned_create_land() {
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            hold_first: Some(("CreateCase".into(), Duration::from_secs(4))),
            ..Rules::default()
        },
    );
    let case = r#"# Case

```aws support.ensure-case id=case
subject = "Renamed probe"
body = "Not activated."
```
"#;
    let t = Test::new()
        .file("r.md", case)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("RUNBOOK_LANDING_MS", "6000");
    t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--yes".into(),
        "--attempt-timeout".into(),
        "1s".into(),
    ])
    .code_is(1);
    std::fs::write(t.path("r.md"), case.replace("id=case", "id=renamed")).expect("rename");
    let again = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    std::thread::sleep(Duration::from_secs(2)); // the held request has landed by now
    assert_eq!(
        cases_with(&moto.endpoint, "Renamed probe").len(),
        1,
        "made once: {again:?}"
    );
    again.code_is(0).stdout_has("may still reach AWS");
}

/// `resend = true` after an unknown outcome sends again only once the first request can no
/// longer land: a person who checked AWS at once may not have seen it yet (attacker finding,
/// session 6: two cases).
#[test]
fn resend_waits_for_the_first_request_to_land() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("CreateUser".into()),
            ..Rules::default()
        },
    );
    let text = r#"# Resend

```aws sso-admin.find-instance id=ic
```

```aws identitystore:CreateUser id=mk
IdentityStoreId = "${steps.ic.identity_store_id}"
UserName = "resent"
DisplayName = "R"
Name = { GivenName = "R", FamilyName = "S" }
```
"#;
    let t = Test::new()
        .file("r.md", text)
        .file(
            "a.toml",
            r#"[steps.mk]
resend = true
"#,
        )
        .aws(&proxy.endpoint)
        .env("RUNBOOK_LANDING_MS", "3000");
    t.run_args(&["run".into(), "r.md".into()]).code_is(1);
    let again = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "a.toml".into()]);
    again.stdout_has("may still reach AWS");
    assert_eq!(
        proxy.calls("CreateUser"),
        2,
        "sent again when a person said so: {again:?}"
    );
}
