//! The AWS Setup guide as a person with a brand-new account meets it (issue #16): only the root
//! user, no organization, the Basic support plan. Each bundled runbook rehearses on its own from
//! such an account; each finding of the review is pinned through the binary, against moto and,
//! where moto is too kind, our fault proxy.

use std::path::PathBuf;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test, block_on, repo, sdk};

fn runbook(name: &str) -> String {
    repo().join("runbooks").join(name).display().to_string()
}

fn rehearsal() -> Test {
    Test::new().env(
        "RUNBOOK_MOTO_SERVER",
        &crate::common::moto_server().display().to_string(),
    )
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The bundled runbooks that have steps, as paths under runbooks/ (from `runbook list`).
fn runbooks_with_steps() -> Vec<String> {
    let out = Test::new()
        .args(["list", "--json", &repo().join("runbooks").display().to_string()])
        .run();
    out.code_is(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .filter(|b| b["steps"].as_array().is_some_and(|s| !s.is_empty()))
        .filter_map(|b| b["path"].as_str())
        .map(|p| p.split("runbooks/").last().unwrap_or(p).to_string())
        .collect()
}

/// runbooks/rehearsal/NAME.toml for runbooks/[dir/]NAME.md.
fn answers_for(rb: &str) -> PathBuf {
    let stem = std::path::Path::new(rb)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    repo().join("runbooks/rehearsal").join(format!("{stem}.toml"))
}

fn rehearse(t: &Test, rb: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "rehearse".to_string(),
        runbook(rb),
        "--answers".into(),
        answers_for(rb).display().to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    t.run_args(&a)
}

#[test]
fn every_bundled_runbook_rehearses_on_its_own_from_a_new_account() {
    let books = runbooks_with_steps();
    assert!(books.len() >= 8, "{books:?}");
    let mut failed = Vec::new();
    for rb in &books {
        assert!(
            answers_for(rb).exists(),
            "{rb} has steps but no answers file {}",
            answers_for(rb).display()
        );
        // A fresh state directory and a fresh emulator for each: nothing carries over.
        let t = rehearsal();
        let started = std::time::Instant::now();
        let out = rehearse(&t, rb, &[]);
        if out.code != 0 {
            failed.push(format!("{rb}: {out:?}"));
            continue;
        }
        assert!(
            out.stderr
                .contains("rehearse: the emulated account: its root user (session credentials, as in AWS CloudShell)"),
            "{rb}: the rehearsal says what account it plays: {out:?}"
        );
        assert!(
            out.stdout.contains(" skipped\n") || out.stdout.contains("finished"),
            "{rb}: {out:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{rb}: a rehearsal does not wait for what cannot come"
        );
    }
    assert!(
        failed.is_empty(),
        "rehearsals that did not finish:\n{}",
        failed.join("\n")
    );
}

#[test]
fn the_rehearsed_account_can_have_a_support_plan_with_the_api_and_an_organization() {
    let rb = "troubleshooting/no-verification-call.md";
    // Its answers file plays the only account that meets this runbook: not activated, so the
    // Support API is refused whatever the plan.
    let bundled = rehearse(&rehearsal(), rb, &["--support-plan", "business"]);
    bundled.code_is(0);
    assert!(
        bundled.stdout.contains("handed_over=true reason=not-activated"),
        "{bundled:?}"
    );
    // An activated account (the same answers without their [rehearsal] table): the plan decides.
    let answers = std::fs::read_to_string(answers_for(rb)).expect("answers");
    let activated = answers.replace(
        r#"[rehearsal]
activated = false
"#,
        "",
    );
    assert_ne!(activated, answers);
    let with_plan = |plan: &str| {
        let t = rehearsal().file("a.toml", &activated);
        t.run_args(&args(&[
            "rehearse",
            &runbook(rb),
            "--answers",
            "a.toml",
            "--support-plan",
            plan,
        ]))
    };
    let basic = with_plan("basic");
    basic.code_is(0);
    assert!(
        basic.stdout.contains("handed_over=true reason=support-plan"),
        "{basic:?}"
    );
    let developer = with_plan("developer");
    developer.code_is(0);
    assert!(
        developer.stdout.contains("handed_over=true reason=support-plan"),
        "{developer:?}"
    );
    let business = with_plan("business");
    business
        .code_is(0)
        .stdout_has("created=true")
        .stdout_has("handed_over=false");

    let fresh = rehearse(&rehearsal(), "prerequisites.md", &[]);
    fresh.code_is(0).stdout_has("in_organization=false");
    let org = rehearse(&rehearsal(), "prerequisites.md", &["--with-organization"]);
    org.code_is(0).stdout_has("feature_set=ALL in_organization=true");

    // The root user, on session credentials (as CloudShell gives), not moto's default IAM user.
    let who = rehearse(&rehearsal(), "users-and-credentials.md", &[]);
    who.code_is(0);
    assert!(
        who.stdout
            .contains("arn=arn:aws:iam::123456789012:root credentials=temporary is_root=true"),
        "{who:?}"
    );

    let no_mfa = rehearse(&rehearsal(), "part-2-identity-center.md", &["--without-root-mfa"]);
    no_mfa.code_is(1);
    assert!(
        no_mfa.stderr.contains("MFA is not active for the root user"),
        "{no_mfa:?}"
    );
}

// Item 1: Part 1 checks root MFA of the account the operator named, not of whatever account the
// credentials happen to belong to.
#[test]
fn part_1_checks_the_account_the_operator_named() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            root_caller: true,
            ..Rules::default()
        },
    );
    let answers = |account: &str| {
        format!(
            r#"[inputs]
account_name = "AnyCompany-audit-prod"
account_email = "it.admins@example.com"
[steps.support-plan]
confirm = true
support_plan = "basic"
[steps.root-sign-in]
confirm = true
account_id = "{account}"
"#
        )
    };
    let t = Test::new()
        .file("other.toml", answers("111122223333"))
        .file("same.toml", answers("123456789012"))
        .aws(&proxy.endpoint);
    let other = t.run_args(&args(&[
        "run",
        &runbook("part-1-new-account.md"),
        "--answers",
        "other.toml",
        "--yes",
    ]));
    other.code_is(1);
    assert!(
        other
            .stderr
            .contains("the credentials are for account 123456789012, not for account 111122223333 that you named"),
        "{other:?}"
    );
    assert!(
        other.stderr.contains("AWS CloudShell"),
        "the way out is named: {other:?}"
    );
    let same = t.run_args(&args(&[
        "run",
        &runbook("part-1-new-account.md"),
        "--answers",
        "same.toml",
        "--yes",
        "--restart",
    ]));
    same.code_is(0);
    assert!(
        same.stdout.contains("account_id=123456789012 mfa_enabled=true"),
        "{same:?}"
    );
}

// Item 3: the prerequisites pass on a brand-new account (no organization) without creating
// anything, and every check after the organization's runs.
#[test]
fn prerequisites_pass_on_a_new_account_read_only_and_run_every_check() {
    let out = rehearse(&rehearsal(), "prerequisites.md", &[]);
    out.code_is(0);
    for ran in [
        "✓ management-account",
        "✓ role-quota",
        "free=1000 quota=1000",
        "✓ firewall-urls",
    ] {
        assert!(out.stdout.contains(ran), "{ran}: {out:?}");
    }
    assert!(
        out.stdout.contains("is in no organization yet: Part 2 creates one"),
        "{out:?}"
    );
    // The network probe is skipped in a rehearsal (no internet to try), and says why.
    assert!(
        out.stdout.contains("↷ firewall  condition `!run.rehearsal` is false"),
        "{out:?}"
    );
    assert!(
        !out.all().contains("CreateOrganization"),
        "prerequisites change nothing: {out:?}"
    );

    // A real run on a fresh account, through the proxy that counts mutating calls.
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file(
            "a.toml",
            r#"[inputs]
account_name = "AnyCompany-audit-prod"
account_email = "it.admins@example.com"
account_phone = "+1 206 555 0100"
"#,
        )
        .aws(&proxy.endpoint);
    for step in ["management-account", "role-quota"] {
        let out = t.run_args(&args(&[
            "run",
            &runbook("prerequisites.md"),
            "--answers",
            "a.toml",
            "--only",
            step,
        ]));
        assert_eq!(out.code, 0, "{step}: {out:?}");
    }
    assert_eq!(proxy.mutating(), 0, "{:?}", proxy.operations());
    let org = block_on(async {
        runbook_plugins::aws::organizations::describe(&sdk(&moto.endpoint))
            .await
            .expect("describe")
    });
    assert!(org.is_none(), "no organization was created");
}

// Item 5: Part 2 checks root MFA before it touches anything, and sends the person back to Part 1.
#[test]
fn part_2_stops_before_identity_center_when_root_mfa_is_off() {
    let moto = Moto::start();
    // moto reports AccountMFAEnabled = 0, as a new account's root user without MFA.
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file(
            "a.toml",
            std::fs::read_to_string(answers_for("part-2-identity-center.md")).expect("answers"),
        )
        .aws(&proxy.endpoint);
    let out = t.run_args(&args(&[
        "run",
        &runbook("part-2-identity-center.md"),
        "--answers",
        "a.toml",
    ]));
    out.code_is(1);
    assert!(
        out.stderr
            .contains("step `root-mfa-check` failed: MFA is not active for the root user"),
        "{out:?}"
    );
    out.stderr_has("runbook run ").stderr_has("part-1-new-account.md");
    assert_eq!(proxy.mutating(), 0, "nothing was created: {:?}", proxy.operations());
    out.stdout_lacks("enable-identity-center");
}

// Item 7: every name is checked before any account is created; the guide's own example passes.
#[test]
fn multiple_accounts_with_one_bad_name_creates_nothing() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new().aws(&proxy.endpoint);
    let run = |names: &str| {
        t.run_args(&args(&[
            "run",
            &runbook("multiple-accounts.md"),
            "--input",
            &format!("account_names={names}"),
            "--input",
            "admin_user=cloud.admin",
            "--restart",
        ]))
    };
    // A brand-new account: not even the organization is created for a list with a bad name.
    let bad = run("AnyCompany-audit-prod, Payments, AnyCompany-log-prod");
    bad.code_is(1);
    assert!(
        bad.stderr.contains("`Payments` does not follow the naming standard"),
        "{bad:?}"
    );
    bad.stderr_has("nothing was created");
    assert_eq!(
        proxy.mutating(),
        0,
        "not even the organization: {:?}",
        proxy.operations()
    );
    // In an organization (after Part 2), the good names around the bad one are not created
    // first either.
    block_on(async {
        runbook_plugins::Registry::builtin()
            .get("organizations.ensure-organization")
            .expect("action")
            .apply(&sdk(&moto.endpoint), serde_json::json!({}))
            .await
            .expect("organization");
    });
    let bad = run("acme-audit-prod, Payments, acme-log-prod");
    bad.code_is(1);
    assert_eq!(proxy.calls("CreateAccount"), 0, "{:?}", proxy.operations());
    let count = || {
        block_on(async {
            runbook_plugins::aws::organizations::all_accounts(&sdk(&moto.endpoint))
                .await
                .map(|a| a.iter().filter(|a| a.email.starts_with("aws+")).count())
                .unwrap_or(0)
        })
    };
    let before = count();
    // Two names sharing a root email are caught as early.
    let twice = run("AnyCompany-audit-prod, anycompany-AUDIT-prod");
    twice.code_is(1);
    assert_eq!(proxy.calls("CreateAccount"), 0);
    // The guide's examples follow the default standard; without a user from Part 2 the accounts
    // are made and the access steps say why they were skipped, without waiting for anyone.
    let started = std::time::Instant::now();
    let good = run("AnyCompany-audit-prod, paulo-santos-testaccount");
    good.code_is(0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "no wait for a user"
    );
    assert_eq!(proxy.calls("CreateAccount"), 2);
    assert_eq!(count(), before + 2);
    assert!(
        good.all()
            .contains("no access given: IAM Identity Center has no user cloud.admin"),
        "{good:?}"
    );
    good.stdout_has("↷ member-assignments");
    // Once the user exists (Part 2), `--from identity-center`, as the warning says, gives the access.
    block_on(async {
        let ctx = sdk(&moto.endpoint);
        let store = crate::common::instance(&ctx).await.store;
        runbook_plugins::Registry::builtin()
            .get("identitystore.ensure-user")
            .expect("action")
            .apply(
                &ctx,
                serde_json::json!({
                    "identity_store_id": store, "user_name": "cloud.admin", "display_name": "Cloud Admin",
                    "given_name": "Cloud", "family_name": "Admin", "email": "cloud-admins@example.com"
                }),
            )
            .await
            .expect("user");
    });
    let access = t.run_args(&args(&[
        "run",
        &runbook("multiple-accounts.md"),
        "--input",
        "account_names=AnyCompany-audit-prod, paulo-santos-testaccount",
        "--input",
        "admin_user=cloud.admin",
        "--from",
        "identity-center",
    ]));
    access
        .code_is(0)
        .stdout_has("✓ member-assignments")
        .stdout_has("created=2");
    assert_eq!(proxy.calls("CreateAccount"), 2, "no account twice");
}

// Item 8: a user created through the API gets no invitation; the runbook offers the guide's ways
// to a first password, with the user's own email address.
#[test]
fn the_default_directory_user_is_shown_how_to_get_a_password() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    );
    let answers = std::fs::read_to_string(answers_for("part-2-identity-center.md")).expect("answers");
    for (option, says) in [
        ("email-otp", "turn on Send email OTP for users created from API"),
        (
            "one-time-password",
            "Generate a one-time password and share the password with the user",
        ),
        (
            "reset-email",
            "Send an email to the user with instructions to reset the password. The email goes to cloud-admins@example.com",
        ),
    ] {
        let t = Test::new()
            .file(
                "a.toml",
                answers.replace(
                    "password_setup = \"email-otp\"",
                    &format!("password_setup = \"{option}\""),
                ),
            )
            .aws(&proxy.endpoint);
        let out = t.run_args(&args(&[
            "run",
            &runbook("part-2-identity-center.md"),
            "--answers",
            "a.toml",
        ]));
        assert_eq!(out.code, 0, "{option}: {out:?}");
        let shown = out
            .stdout
            .split("▶ set-password")
            .nth(1)
            .and_then(|s| s.split("✓ set-password").next())
            .unwrap_or("");
        assert!(shown.contains(says), "{option}: {shown}");
        if option != "one-time-password" {
            assert!(shown.contains("cloud-admins@example.com"), "{option}: {shown}");
        }
        assert!(
            !shown.contains("Invitation to join"),
            "{option}: no invitation comes: {shown}"
        );
    }
}
