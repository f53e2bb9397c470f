//! An answer lost after AWS acted: the fault proxy forwards the request to moto, moto creates the
//! resource, and the caller gets a 500 instead of the answer. A client that retries blindly
//! creates a second one (moto, like AWS for calls without an idempotency token, does what it is
//! asked twice). Every mutating call the bundled runbooks make is lost once here, and the
//! emulator must hold exactly one of each afterwards, checked through the SDK.

mod common;

use std::time::Duration;

use common::fault_proxy::{FaultProxy, Rules};
use common::{Moto, PART2_ANSWERS, Test, cases_with, part2_counts, repo};

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
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(proxy.calls("CreateCase"), 3, "one request per attempt: {out:?}");
    assert!(out.stderr.contains("AWS is throttling requests"), "{out:?}");
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
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        cases_with(&moto.endpoint, "not activated after 24 hours").len(),
        1,
        "one case: {:?}",
        proxy.operations()
    );
}
