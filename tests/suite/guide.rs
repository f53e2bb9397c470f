//! The guide against a real brand-new account (issue #31): each finding of the review, through
//! the binary, against the rehearsal's emulator, which plays AWS where moto does not (no Identity
//! Center until the operator enables it, in one region; a new organization still being set up;
//! the Support API refused before activation; AWS's uniqueness and length limits).

use std::path::PathBuf;

use crate::common::emulator::Emulator;
use crate::common::{Moto, Output, Test, block_on, repo, sdk};

fn runbook(name: &str) -> String {
    repo().join("runbooks").join(name).display().to_string()
}

fn answers(name: &str) -> String {
    repo().join("runbooks/rehearsal").join(name).display().to_string()
}

fn rehearsal() -> Test {
    Test::new().env(
        "RUNBOOK_MOTO_SERVER",
        &crate::common::moto_server().display().to_string(),
    )
}

fn rehearse(t: &Test, rb: &str, answers_file: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "rehearse".to_string(),
        runbook(rb),
        "--answers".into(),
        answers(answers_file),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    t.run_args(&a)
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Finding 1: "Multiple accounts" on a brand-new account (no Identity Center instance yet, as at
/// AWS) creates the accounts and skips the access, as its prose says; `plan` does not say it
/// fails.
#[test]
fn multiple_accounts_on_a_brand_new_account_creates_the_accounts_without_identity_center() {
    let out = rehearse(&rehearsal(), "multiple-accounts.md", "multiple-accounts.toml", &[]);
    out.code_is(0)
        .stdout_has("✓ identity-center")
        .stdout_has("found=false")
        .stdout_has("↷ admin ")
        .stdout_has("✓ member-accounts")
        .stdout_has("access_given=false accounts=3");
    assert!(
        out.all()
            .contains("no access given: IAM Identity Center is not enabled in us-east-1. Run Part 2, then: runbook run multiple-accounts.md --from identity-center"),
        "{out:?}"
    );

    let emu = Emulator::start(&[]);
    let plan = Test::new().aws(&emu.endpoint).run_args(&args(&[
        "plan",
        &runbook("multiple-accounts.md"),
        "--input",
        "account_names=AnyCompany-audit-prod",
        "--input",
        "admin_user=cloud.admin",
    ]));
    plan.code_is(0).stdout_lacks("fail");
    let row = plan.stdout.split("identity-center ").nth(1).unwrap_or("");
    assert!(row.contains("found=false"), "{plan:?}");
}

/// Finding 2: a valid 50-character name gives a 66-character `aws+{name}@example.com`; AWS
/// takes at most 64. The list is refused before anything (the organization included) is made,
/// and the emulator refuses such an email as AWS does.
#[test]
fn a_root_email_over_64_characters_is_refused_before_anything_is_created() {
    let long = "AnyCompany-payments-production-eu-west-europe-0001";
    assert_eq!(long.len(), 50);
    let t = rehearsal().file(
        "a.toml",
        format!(
            r#"[inputs]
account_names = "AnyCompany-audit-prod, {long}"
email_template = "aws+{{name}}@example.com"
admin_user = "cloud.admin"
"#
        ),
    );
    let out = t.run_args(&args(&[
        "rehearse",
        &runbook("multiple-accounts.md"),
        "--answers",
        "a.toml",
    ]));
    out.code_is(1);
    assert!(
        out.stderr.contains(&format!(
            "the root email `aws+{long}@example.com` (for `{long}`) is 66 characters long; AWS takes at most 64"
        )),
        "{out:?}"
    );
    out.stdout_lacks("✓ organization").stdout_lacks("member-accounts");

    // The emulator plays AWS's limit: CreateAccount by name with that email is refused.
    let emu = Emulator::start(&["--with-organization"]);
    // (Sent with the SDK: the plugins and calls by name refuse it before it leaves.)
    let refused = block_on(async {
        sdk(&emu.endpoint)
            .organizations()
            .await
            .expect("client")
            .create_account()
            .account_name("acme-audit-prod")
            .email(format!("aws+{long}@example.com"))
            .send()
            .await
    });
    let e = refused.expect_err("AWS refuses a 66-character email");
    let text = format!("{:?}", aws_sdk_ssoadmin::error::ProvideErrorMetadata::code(&e));
    assert!(text.contains("InvalidInputException"), "{e:?}");
}

/// Finding 3: a "no" in Part 1 (no activation email) walks the checks and files nothing before 24
/// hours have passed; after 24 hours the case is prepared, naming when the sign-up finished.
#[test]
fn a_no_in_part_1_files_no_case_before_24_hours() {
    let early = rehearse(
        &rehearsal(),
        "part-1-new-account.md",
        "part-1-new-account.not-activated.toml",
        &[],
    );
    early.code_is(3);
    assert!(
        early
            .stdout
            .contains("troubleshooting/not-activated.md (run after-rehearsal-"),
        "{early:?}"
    );
    early
        .stdout_has("⏸ waited-24-hours")
        .stdout_lacks("▶ case")
        .stdout_lacks("handed_over");
    assert!(
        !early.all().contains("CreateCase") && !early.all().contains("support-case-"),
        "nothing filed or prepared: {early:?}"
    );

    let t = rehearsal();
    let late = rehearse(&t, "troubleshooting/not-activated.md", "not-activated.toml", &[]);
    late.code_is(0).stdout_has("handed_over=true reason=not-activated");
    late.stdout_has("✓ waited-24-hours");
    assert!(
        t.written()
            .contains("still not activated more than 24 hours after sign-up"),
        "the case is prepared: {late:?}"
    );
}

/// Finding 4: a lockout (maximum number of failed attempts) continues into failed-attempts.md;
/// a call that never came, into no-verification-call.md.
#[test]
fn a_lockout_and_a_missing_call_each_continue_into_their_own_runbook() {
    let lockout = rehearse(
        &rehearsal(),
        "part-1-new-account.md",
        "part-1-new-account.lockout.toml",
        &[],
    );
    lockout.code_is(3);
    assert!(
        lockout.stdout.contains("continuing into ")
            && lockout
                .stdout
                .contains("troubleshooting/failed-attempts.md (run after-rehearsal-")
            && !lockout.stdout.contains("no-verification-call.md (run"),
        "{lockout:?}"
    );
    lockout.stdout_has("reason=not-activated");
    let no_call = rehearse(
        &rehearsal(),
        "part-1-new-account.md",
        "part-1-new-account.no-pin-call.toml",
        &[],
    );
    no_call.code_is(3);
    assert!(
        no_call
            .stdout
            .contains("troubleshooting/no-verification-call.md (run after-rehearsal-")
            && !no_call.stdout.contains("failed-attempts.md (run"),
        "{no_call:?}"
    );
    no_call.stdout_has("reason=not-activated");
}

/// Finding 5: a missing root MFA stops Part 2 before it changes anything and continues into
/// Part 1 at Step 2 (sign in as root, then MFA), not at the sign-up.
#[test]
fn missing_root_mfa_continues_into_part_1_at_step_2() {
    let out = rehearse(
        &rehearsal(),
        "part-2-identity-center.md",
        "part-2-identity-center.missing-root-mfa.toml",
        &[],
    );
    out.code_is(1);
    assert!(
        out.stdout.contains("continuing into ") && out.stdout.contains("part-1-new-account.md (run after-rehearsal-"),
        "{out:?}"
    );
    let part1 = out.stdout.split("continuing into").nth(1).unwrap_or("");
    for ran in ["✓ root-sign-in", "✓ root-mfa "] {
        assert!(part1.contains(ran), "{ran}: {out:?}");
    }
    for not in ["sign-up", "payment", "phone-call", "support-plan"] {
        assert!(!part1.contains(not), "Part 1 from Step 2, not {not}: {out:?}");
    }
    out.stdout_lacks("▶ organization").stdout_lacks("▶ admin-user");
}

/// Finding 5, in a member account: Part 2 names the management account to sign in to, before
/// it looks at root MFA (a member account's root user is not the one to sign up or secure).
#[test]
fn part_2_in_a_member_account_names_the_management_account() {
    let emu = Emulator::start(&["--with-organization"]);
    let t = emu.as_member("acme-team-dev").file(
        "a.toml",
        std::fs::read(answers("part-2-identity-center.toml")).expect("answers"),
    );
    let out = t.run_args(&args(&[
        "run",
        &runbook("part-2-identity-center.md"),
        "--answers",
        "a.toml",
    ]));
    out.code_is(1)
        .stderr_has("step `management` failed")
        .stderr_has("its management account is 123456789012")
        .stdout_lacks("▶ root-mfa-check")
        .stdout_lacks("continuing into");
}

/// Finding 6: Identity Center enabled in another region than `home_region` is named at once,
/// not waited for 30 minutes as "not enabled".
#[test]
fn identity_center_in_another_region_is_named_at_once() {
    let started = std::time::Instant::now();
    let out = rehearse(
        &rehearsal(),
        "part-2-identity-center.md",
        "part-2-identity-center.toml",
        &["--identity-center-region", "eu-west-1"],
    );
    out.code_is(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "no 30-minute wait: {out:?}"
    );
    out.stderr_has(
        "IAM Identity Center is enabled in eu-west-1, not in us-east-1, the home region this runbook was given",
    )
    .stderr_has("--input home_region=eu-west-1");
    out.stdout_lacks("▶ admin-user");
    // And the wait itself names the region it looks in.
    let waited = rehearse(
        &rehearsal(),
        "part-2-identity-center.md",
        "part-2-identity-center.toml",
        &[],
    );
    waited.code_is(0);
    assert!(
        waited
            .stdout
            .contains("waiting for IAM Identity Center to be enabled in us-east-1: not enabled in us-east-1 yet"),
        "{waited:?}"
    );
}

/// Finding 7: the phone-verification cases cannot use the Support API (the account is not
/// activated, whatever its plan), and the runbook says it prepares the case: Chat is chosen in the
/// console.
#[test]
fn the_support_api_is_refused_before_activation_whatever_the_plan() {
    for plan in ["basic", "business"] {
        let out = rehearse(
            &rehearsal(),
            "troubleshooting/no-verification-call.md",
            "no-verification-call.toml",
            &["--support-plan", plan],
        );
        out.code_is(0).stdout_has("handed_over=true reason=not-activated");
    }
    let text = std::fs::read_to_string(runbook("troubleshooting/no-verification-call.md")).expect("runbook");
    assert!(!text.contains("fills in steps 3 to 5"), "the API cannot choose Chat");
    assert!(text.contains("you choose **Chat** yourself"));
}

/// Finding 8: a permission set made in the console as the guide says (the predefined
/// AdministratorAccess, one hour, no description) is left exactly as it is.
#[test]
fn a_permission_set_made_as_the_guide_says_is_left_as_it_is() {
    let emu = Emulator::start(&["--with-identity-center"]);
    block_on(async {
        let ctx = sdk(&emu.endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let arn = sso.list_instances().send().await.expect("instances").instances()[0]
            .instance_arn()
            .expect("arn")
            .to_string();
        let ps = sso
            .create_permission_set()
            .instance_arn(&arn)
            .name("AdministratorAccess")
            .session_duration("PT1H")
            .send()
            .await
            .expect("create");
        sso.attach_managed_policy_to_permission_set()
            .instance_arn(&arn)
            .permission_set_arn(ps.permission_set().and_then(|p| p.permission_set_arn()).expect("arn"))
            .managed_policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await
            .expect("attach");
    });
    let t = Test::new().aws(&emu.endpoint).file(
        "a.toml",
        std::fs::read(answers("part-2-identity-center.toml")).expect("answers"),
    );
    let out = t.run_args(&args(&[
        "run",
        &runbook("part-2-identity-center.md"),
        "--answers",
        "a.toml",
    ]));
    out.code_is(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("✓ admin-permission-set"))
        .unwrap_or("");
    for want in ["created=false", "provisioned=false"] {
        assert!(line.contains(want), "{want}: {line}\n{out:?}");
    }
    for call in [
        "UpdatePermissionSet",
        "ProvisionPermissionSet",
        "Attach",
        "Detach",
        "InlinePolicy",
    ] {
        assert!(
            !out.stdout.contains(&format!("sso-admin:{call}")),
            "{call} sent: {out:?}"
        );
    }
}

/// Finding 9: the external-IdP path rehearses: the (emulated) IdP syncs the user put in scope
/// and the runbook waits for it instead of creating one.
#[test]
fn the_external_idp_path_rehearses() {
    let out = rehearse(
        &rehearsal(),
        "part-2-identity-center.md",
        "part-2-identity-center.external-idp.toml",
        &[],
    );
    out.code_is(0)
        .stdout_has("✓ synced-user")
        .stdout_has("↷ admin-user")
        .stdout_has("↷ identity-center-mfa")
        .stdout_has("✓ admin-assignment");
    assert!(out.stdout.contains("not synced yet"), "it waited: {out:?}");
}

/// Finding 10: right after CreateOrganization AWS refuses CreateAccount
/// (FinalizingOrganizationException); the accounts are created once it may.
#[test]
fn a_new_organization_is_waited_for_before_accounts_are_created() {
    let out = rehearse(&rehearsal(), "multiple-accounts.md", "multiple-accounts.toml", &[]);
    out.code_is(0)
        .stdout_has("✓ organization  ")
        .stdout_has("3/3  done 3 · waiting 0 · failed 0")
        .stdout_has("accounts=3");
    let organization = out.stdout.lines().find(|l| l.contains("✓ organization")).unwrap_or("");
    assert!(organization.contains("created=true"), "{out:?}");
    assert!(
        out.all()
            .contains("the organization is still being set up (AWS: up to an hour after it was created); asking again"),
        "{out:?}"
    );
}

/// Finding 12: a rehearsal's journal beside the runbooks does not keep a real run, started from
/// another directory with its own --state-dir, from running.
#[test]
fn a_rehearsal_does_not_block_a_real_run_from_elsewhere() {
    let book = std::fs::read_to_string(runbook("users-and-credentials.md")).expect("runbook");
    let t = rehearsal()
        .file("book/runbooks/who.md", &book)
        .file("elsewhere/.keep", "");
    let rehearsed = Test::new()
        .env(
            "RUNBOOK_MOTO_SERVER",
            &crate::common::moto_server().display().to_string(),
        )
        .run_args(&args(&[
            "rehearse",
            &t.path("book/runbooks/who.md").display().to_string(),
            "--state-dir",
            &t.path("book/.runbook").display().to_string(),
        ]));
    rehearsed.code_is(0);
    let moto = Moto::shared();
    let real = Test::new().aws(&moto.endpoint).run_args(&args(&[
        "run",
        &t.path("book/runbooks/who.md").display().to_string(),
        "--state-dir",
        &t.path("elsewhere/.runbook").display().to_string(),
    ]));
    real.code_is(0).stderr_lacks("the journal of");
}

fn answers_path(name: &str) -> PathBuf {
    repo().join("runbooks/rehearsal").join(name)
}

/// Every rehearsal answers file (a runbook's own and each path of the guide beside it) is
/// rehearsed, and each ends as its path should: the guide's alternative paths are exercised in CI.
#[test]
fn every_path_of_the_guide_rehearses() {
    // (answers file, runbook, exit code, what the output must show)
    let paths: &[(&str, &str, i32, &[&str])] = &[
        (
            "part-2-identity-center.existing-organization.toml",
            "part-2-identity-center.md",
            0,
            &["in_organization=true", "created=false feature_set=ALL"],
        ),
        (
            "multiple-accounts.existing-organization.toml",
            "multiple-accounts.md",
            0,
            &["found=true", "↷ admin-permission-set", "no user cloud.admin"],
        ),
        (
            "prerequisites.existing-organization.toml",
            "prerequisites.md",
            0,
            &["feature_set=ALL in_organization=true"],
        ),
        (
            "not-activated.business-plan.toml",
            "troubleshooting/not-activated.md",
            0,
            &["reason=not-activated"],
        ),
        (
            "failed-attempts.toml",
            "troubleshooting/failed-attempts.md",
            0,
            &["reason=not-activated"],
        ),
        (
            "part-1-new-account.toml",
            "part-1-new-account.md",
            0,
            &["mfa_enabled=true"],
        ),
        ("offboard-admin.toml", "offboard-admin.md", 0, &["✓ remove-user"]),
    ];
    let dir = repo().join("runbooks/rehearsal");
    let mut covered: Vec<&str> = paths.iter().map(|p| p.0).collect();
    // Rehearsed by the tests above.
    covered.extend([
        // accounts::the_account_baseline_runbook_sets_every_member_account, and
        // new_account::every_bundled_runbook_rehearses_on_its_own_from_a_new_account.
        "account-baseline.toml",
        "multiple-accounts.toml",
        "part-1-new-account.not-activated.toml",
        "not-activated.toml",
        "part-1-new-account.lockout.toml",
        "part-1-new-account.no-pin-call.toml",
        "part-2-identity-center.missing-root-mfa.toml",
        "part-2-identity-center.external-idp.toml",
        "no-verification-call.toml",
        "part-2-identity-center.toml",
        "prerequisites.toml",
        "users-and-credentials.toml",
    ]);
    for e in std::fs::read_dir(&dir).expect("rehearsal dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(covered.contains(&name.as_str()), "{name} is rehearsed by no test");
    }
    for (file, rb, code, shows) in paths {
        assert!(answers_path(file).exists(), "{file}");
        let out = rehearse(&rehearsal(), rb, file, &[]);
        assert_eq!(out.code, *code, "{file}: {out:?}");
        for s in *shows {
            assert!(out.all().contains(s), "{file}: {s}\n{out:?}");
        }
    }
}
