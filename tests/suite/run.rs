//! `runbook run` end to end against the moto server: the bundled runbooks create exactly what
//! they should, once; runs stop for a person and resume; edits re-run only what changed; secrets
//! stay out of everything written. Rhai's sandbox is `rhai_sandbox.rs`.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, PART2_ANSWERS, Test, block_on, cases_with, part2_counts, repo, sdk};

/// The account as Part 1 leaves it: its root user has MFA (moto always reports none), which Part
/// 2 checks before anything else.
fn after_part_1(moto: &Moto) -> FaultProxy {
    FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    )
}

fn runbook(name: &str) -> String {
    repo().join("runbooks").join(name).display().to_string()
}

#[test]
fn part_2_creates_one_of_each_and_a_second_run_creates_nothing() {
    let moto = Moto::shared();
    let proxy = after_part_1(&moto);
    let t = Test::new()
        .file("answers.toml", PART2_ANSWERS)
        .aws(&proxy.endpoint)
        .args([
            "run",
            &runbook("part-2-identity-center.md"),
            "--answers",
            "answers.toml",
        ]);
    let first = t.run();
    first.code_is(0);
    assert!(first.stdout.contains("https://d-"), "portal URL shown: {first:?}");
    first
        .stdout_has(".awsapps.com/start")
        .stdout_has("AdministratorAccess/cloud.admin");
    assert_eq!(
        part2_counts(&moto.endpoint),
        (1, vec!["PT1H".into(), "AdministratorAccess".into()], 1, 1)
    );

    // A new run of the finished record converges: it looks at AWS again (reads, ensure actions)
    // and finds everything as asked; the person's steps are kept.
    let second = t.run();
    second.code_is(0).stdout_has("already done").stdout_has("created=false");
    for call in ["CreateUser", "CreatePermissionSet", "CreateAccountAssignment"] {
        assert!(!second.all().contains(call), "{call}: {second:?}");
    }
    assert_eq!(
        part2_counts(&moto.endpoint),
        (1, vec!["PT1H".into(), "AdministratorAccess".into()], 1, 1)
    );
    // Even with the journal forgotten, every step looks before it acts.
    let third = t.run_args(&[
        "run".into(),
        runbook("part-2-identity-center.md"),
        "--answers".into(),
        "answers.toml".into(),
        "--restart".into(),
    ]);
    third.code_is(0).stdout_has("created=false");
    assert!(!third.all().contains("CreateUser"), "{third:?}");
    assert_eq!(
        part2_counts(&moto.endpoint),
        (1, vec!["PT1H".into(), "AdministratorAccess".into()], 1, 1)
    );
    assert!(!t.written().contains("testing-secret-key-never-printed"));
    assert!(!first.all().contains("testing-secret-key-never-printed"));
}

#[test]
fn stops_for_a_person_with_exit_3_then_resumes_with_answers() {
    let moto = Moto::shared();
    let proxy = after_part_1(&moto);
    let t = Test::new().aws(&proxy.endpoint).file("answers.toml", PART2_ANSWERS);
    let args = |extra: &[&str]| {
        let mut v = vec!["run".to_string(), runbook("part-2-identity-center.md")];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let stopped = t.run_args(&args(&[
        "--input",
        "admin_user=cloud.admin",
        "--input",
        "admin_email=cloud-admins@example.com",
    ]));
    stopped.code_is(3);
    assert!(
        stopped.stderr.contains(
            "waiting for a person at step `enable-identity-center`: answer in the answers file under [steps.enable-identity-center]: confirm = true"
        ),
        "{stopped:?}"
    );
    let status = t.run_args(&["status".into(), runbook("part-2-identity-center.md")]);
    assert!(
        status.stdout.contains("enable-identity-center           waiting"),
        "{status:?}"
    );

    let resumed = t.run_args(&args(&["--answers", "answers.toml"]));
    resumed
        .code_is(0)
        .stdout_has("✓ organization  already done")
        .stdout_has("finished in");
    let transcript = t.written();
    assert!(transcript.contains(r#""event":"confirmed""#), "confirmation journaled");
    assert!(transcript.contains(r#""via":"answers-file""#));
    assert_eq!(part2_counts(&moto.endpoint).0, 1);
}

const THREE_STEPS: &str = "# Edits\n\n```rhai id=one\n#{ n: 1 }\n```\n\n```rhai id=two\n#{ n: steps.one.n + 1 }\n```\n\n```rhai id=three\n#{ n: 3 }\n```\n\n```manual id=later\nconfirm = \"Done?\"\n```\n";

/// A resume (the last run is waiting for a person): the edited step runs again, the others are
/// reused. (A new run of a finished record runs its scripts again: see convergence.rs.)
#[test]
fn an_edited_step_runs_again_and_the_others_do_not() {
    let t = Test::new().file("r.md", THREE_STEPS).args(["run", "r.md"]);
    let out = t.run();
    out.code_is(3);
    assert!(out.stdout.contains("✓ three"), "{out:?}");
    std::fs::write(
        t.path("r.md"),
        THREE_STEPS.replace("steps.one.n + 1", "steps.one.n + 10"),
    )
    .expect("edit");
    let out = t.run();
    out.code_is(3)
        .stdout_has("two changed since it last ran")
        .stdout_has("already done")
        .stdout_has("n=11");
}

#[test]
fn a_secret_input_never_reaches_output_state_or_transcript() {
    let secret = "Sup3r-S3cret-Value-42";
    let text = "# Secret\n\n```runbook\n[inputs.token]\nsecret = true\n```\n\n## Use it\n\n```rhai id=use\nprint(\"token is \" + inputs.token);\n#{ echoed: inputs.token, len: inputs.token.len() }\n```\n\n```manual id=show\ninstructions = \"Paste ${inputs.token} into the console\"\n```\n";
    let t = Test::new().file("r.md", text);
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        format!("token={secret}"),
        "--yes".into(),
    ]);
    out.code_is(0);
    // The script read a secret: nothing it prints is shown, not even masks (their number
    // could carry the secret).
    out.stdout_lacks("use: ").stdout_lacks("token is");
    assert!(!out.all().contains(secret), "{out:?}");
    let written = t.written();
    assert!(
        written.contains("transcript") || written.contains("\"event\""),
        "something was journaled"
    );
    assert!(!written.contains(secret), "secret found in the state directory");
}

#[test]
fn multiple_accounts_creates_n_accounts_and_n_assignments_once() {
    let moto = Moto::start();
    let proxy = after_part_1(&moto);
    let t = Test::new().file("answers.toml", PART2_ANSWERS).aws(&proxy.endpoint);
    let p2 = t.run_args(&[
        "run".into(),
        runbook("part-2-identity-center.md"),
        "--answers".into(),
        "answers.toml".into(),
    ]);
    p2.code_is(0);
    let args: Vec<String> = [
        "run",
        &runbook("multiple-accounts.md"),
        "--input",
        "account_names=acme-pay-prod, acme-pay-dev,acme-log-audit",
        "--input",
        "admin_user=cloud.admin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = t.run_args(&args);
    out.code_is(0);
    let count = || {
        block_on(async {
            let ctx = sdk(&moto.endpoint);
            let accounts = runbook_plugins::aws::organizations::all_accounts(&ctx)
                .await
                .expect("accounts");
            let named: Vec<String> = accounts
                .iter()
                .filter(|a| a.name.starts_with("acme-"))
                .map(|a| a.email.clone())
                .collect();
            named
        })
    };
    let mut emails = count();
    emails.sort();
    assert_eq!(
        emails,
        [
            "aws+acme-log-audit@example.com",
            "aws+acme-pay-dev@example.com",
            "aws+acme-pay-prod@example.com"
        ]
    );
    out.stdout_has("created=3");
    // The emulator, not the tool's own summary: each new account holds the permission set for
    // the administrative user exactly once.
    let admin_id = block_on(async {
        let ctx = sdk(&moto.endpoint);
        let store = crate::common::instance(&ctx).await.store;
        ctx.identitystore(None)
            .await
            .expect("client")
            .list_users()
            .identity_store_id(&store)
            .send()
            .await
            .expect("users")
            .users()
            .iter()
            .find(|u| u.user_name() == Some("cloud.admin"))
            .map(|u| u.user_id().to_string())
            .expect("the administrative user")
    });
    let new_accounts = block_on(async {
        runbook_plugins::aws::organizations::all_accounts(&sdk(&moto.endpoint))
            .await
            .expect("accounts")
            .into_iter()
            .filter(|a| a.name.starts_with("acme-"))
            .map(|a| a.id)
            .collect::<Vec<_>>()
    });
    assert_eq!(new_accounts.len(), 3);
    for id in &new_accounts {
        assert_eq!(
            crate::common::assignments_in(&moto.endpoint, id, "AdministratorAccess"),
            std::slice::from_ref(&admin_id),
            "account {id}: one assignment, to the administrative user"
        );
    }
    let again = t.run_args(&[args.clone(), vec!["--restart".into()]].concat());
    again.code_is(0);
    assert!(!again.all().contains("CreateAccount "), "{again:?}");
    again.stdout_has("created=0");
    assert_eq!(count().len(), 3);
    // A name off the standard is refused before anything is created.
    let bad = t.run_args(&[
        "run".into(),
        runbook("multiple-accounts.md"),
        "--input".into(),
        "account_names=Payments".into(),
        "--input".into(),
        "admin_user=cloud.admin".into(),
        "--restart".into(),
    ]);
    bad.code_is(1).stderr_has("does not follow the naming standard");
    assert_eq!(count().len(), 3);
}

#[test]
fn each_troubleshooting_runbook_opens_exactly_one_activation_case() {
    let moto = Moto::start();
    // A case stays open while we look at it (moto would resolve it after three looks, and a
    // resolved case gets a follow-up).
    moto.support_case_status_every(1_000_000);
    // Each case is filed from the account it is about (moto's 123456789012).
    let answers = r#"
[inputs]
account_email = "it.admins@example.com"
[steps.checks]
confirm = true
phone = "+1 206 555 0100"
[steps.root-sign-in]
confirm = true
account_id = "123456789012"
[steps.availability]
confirm = true
reachable = "weekdays 09:00-17:00 UTC"
[steps.case]
confirm = true
"#;
    let failed = r#"
[inputs]
account_email = "it.admins@example.com"
[steps.root-sign-in]
confirm = true
account_id = "123456789012"
[steps.availability]
confirm = true
phone = "+1 206 555 0100"
reachable = "today 14:00 UTC"
[steps.case]
confirm = true
"#;
    let stuck = r#"
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
    for (file, ans, subject) in [
        (
            "troubleshooting/no-verification-call.md",
            answers,
            "verification call not received",
        ),
        ("troubleshooting/failed-attempts.md", failed, "maximum number of failed"),
        (
            "troubleshooting/not-activated.md",
            stuck,
            "not activated after 24 hours",
        ),
    ] {
        let t = Test::new().file("a.toml", ans).aws(&moto.endpoint);
        let args = vec![
            "run".to_string(),
            runbook(file),
            "--answers".into(),
            "a.toml".into(),
            "--yes".into(),
        ];
        let out = t.run_args(&args);
        assert_eq!(out.code, 0, "{file}: {out:?}");
        assert_eq!(
            cases_with(&moto.endpoint, subject),
            [("customer-account".to_string(), "activation".to_string())]
        );
        let again = t.run_args(&[args.clone(), vec!["--restart".into()]].concat());
        assert_eq!(again.code, 0, "{file}: {again:?}");
        again.stdout_has("created=false");
        assert_eq!(cases_with(&moto.endpoint, subject).len(), 1, "{file}: no second case");
    }
}

#[test]
fn bad_answers_and_inputs_are_usage_errors() {
    let t = Test::new()
        .file("r.md", THREE_STEPS)
        .file("bad.toml", "[steps.nope]\nconfirm = true\n");
    let out = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "bad.toml".into()]);
    out.code_is(2).stderr_has("answers file names step `nope`");
    let out = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "who=me".into()]);
    out.code_is(2);
    assert!(
        out.stderr.contains("unknown input `who` (this runbook takes none)"),
        "{out:?}"
    );
    std::fs::write(t.path("bad.toml"), "[inputz]\n").expect("write");
    let out = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "bad.toml".into()]);
    out.code_is(2).stderr_has("bad.toml:1:2: unknown field `inputz`");
    // A manual step's answers are checked before the first step runs, not when it is reached.
    let asks = "# Ask\n\n```rhai id=first\n#{ ran: true }\n```\n\n```manual id=ticket\nconfirm = \"Filed?\"\n[ask.ticket]\nprompt = \"Ticket\"\n```\n";
    let t = Test::new()
        .file("a.md", asks)
        .file("typo.toml", "[steps.ticket]\nconfirm = true\ntiket = \"T-1\"\n")
        .file("table.toml", "[steps.ticket]\nconfirm = true\nticket = { a = 1 }\n");
    let typo = t.run_args(&["run".into(), "a.md".into(), "--answers".into(), "typo.toml".into()]);
    typo.code_is(2)
        .stderr_has("[steps.ticket]: the step asks no `tiket` (it asks: ticket)")
        .stdout_lacks("first");
    let table = t.run_args(&["run".into(), "a.md".into(), "--answers".into(), "table.toml".into()]);
    table.code_is(2).stderr_has("`ticket` must be a value, not a table");
}

/// `runbook answers` writes a template that, filled in, runs the runbook to its end.
#[test]
fn the_answers_template_round_trips_generated_filled_and_run() {
    let moto = Moto::start();
    // Part 2 checks root MFA first; moto always says it is off.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    );
    let t = Test::new().aws(&proxy.endpoint);
    let out = t.run_args(&["answers".into(), runbook("part-2-identity-center.md")]);
    out.code_is(0);
    let template = out.stdout.clone();
    assert!(
        template.contains("[inputs]") && template.contains("[steps.enable-identity-center]"),
        "{template}"
    );
    assert!(
        template.contains("# admin_user = \"\""),
        "values without a default wait to be filled: {template}"
    );
    // As written, it is a valid answers file that gives no values and confirms nothing.
    std::fs::write(t.path("empty.toml"), &template).expect("write");
    let waits = t.run_args(&[
        "run".into(),
        runbook("part-2-identity-center.md"),
        "--answers".into(),
        "empty.toml".into(),
    ]);
    waits.code_is(3).stderr_has("admin_user");
    let filled = template
        .replace("# admin_user = \"\"", "admin_user = \"cloud.admin\"")
        .replace("# admin_email = \"\"", "admin_email = \"cloud-admins@example.com\"")
        .replace("confirm = false", "confirm = true");
    std::fs::write(t.path("filled.toml"), filled).expect("write");
    let done = t.run_args(&[
        "run".into(),
        runbook("part-2-identity-center.md"),
        "--answers".into(),
        "filled.toml".into(),
    ]);
    done.code_is(0);
    assert_eq!(part2_counts(&moto.endpoint).2, 1, "the user exists");
}

/// A "no" at Part 1's verification-call step leads into the no-verification-call runbook (its
/// `on-failure=`), which opens the activation case; Part 1 stays waiting, and says where it went.
#[test]
fn a_no_at_the_phone_call_step_runs_the_no_verification_call_runbook() {
    let moto = Moto::shared();
    let answers = r#"
[inputs]
account_email = "root.acme@example.com"
account_name = "acme-payments-prod"
[steps.sign-up]
confirm = true
[steps.payment]
confirm = true
[steps.phone-call]
confirm = false
[steps.checks]
confirm = true
phone = "+1 206 555 0100"
[steps.root-sign-in]
confirm = true
account_id = "123456789012"
[steps.availability]
confirm = true
reachable = "weekdays 09:00-17:00 UTC"
[steps.case]
confirm = true
"#;
    let t = Test::new().file("a.toml", answers).aws(&moto.endpoint);
    let out = t.run_args(&[
        "run".into(),
        runbook("part-1-new-account.md"),
        "--answers".into(),
        "a.toml".into(),
    ]);
    assert_eq!(out.code, 3, "Part 1 stays waiting at the call: {out:?}");
    out.stdout_has("continuing into").stdout_has("no-verification-call.md");
    assert_eq!(
        cases_with(&moto.endpoint, "verification call not received").len(),
        1,
        "the troubleshooting runbook opened its case"
    );
    let status = t.run_args(&["status".into(), runbook("part-1-new-account.md")]);
    status.stdout_has("continued into");
    // Without answers and without a terminal nothing continues by itself: the pointer is printed.
    let t2 = Test::new().aws(&moto.endpoint);
    let failed = t2.run_args(&["run".into(), runbook("troubleshooting/no-verification-call.md")]);
    assert_ne!(failed.code, 0);
    failed.stdout_lacks("continuing into");
}
