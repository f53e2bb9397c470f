//! Attacks on the run's central promises, through the binary and the emulator: a step whose
//! resolved values changed runs again; no call goes out without its intent on disk; runs are
//! instances; output cannot be hijacked; secrets stay secret; scripts stay bounded and pure; the
//! state directory cannot be redirected.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, PART2_ANSWERS, Test, block_on, repo, sdk};
use crate::trust_secrets::walk;

pub(crate) fn runbook(name: &str) -> String {
    repo().join("runbooks").join(name).display().to_string()
}

/// User names in the emulator's Identity Store.
fn user_names(endpoint: &str) -> Vec<String> {
    block_on(async {
        let ctx = sdk(endpoint);
        let store = crate::common::instance(&ctx).await.store;
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        let mut names: Vec<String> = users
            .users()
            .iter()
            .filter_map(|u| u.user_name().map(String::from))
            .collect();
        names.sort();
        names
    })
}

pub(crate) fn account_names(endpoint: &str) -> Vec<String> {
    block_on(async {
        let ctx = sdk(endpoint);
        let org = ctx.organizations().await.expect("client");
        let mut names = Vec::new();
        let mut pages = org.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.expect("accounts");
            names.extend(page.accounts().iter().filter_map(|a| a.name().map(String::from)));
        }
        names.sort();
        names
    })
}

#[test]
fn a_changed_input_runs_the_aws_step_again_and_creates_the_new_user() {
    let moto = Moto::start();
    // Part 2 checks root MFA first; moto always reports none, the proxy reports Part 1 done.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    );
    let t = Test::new().file("answers.toml", PART2_ANSWERS).aws(&proxy.endpoint);
    let run = |user: &str| {
        t.run_args(&[
            "run".into(),
            runbook("part-2-identity-center.md"),
            "--answers".into(),
            "answers.toml".into(),
            "--input".into(),
            format!("admin_user={user}"),
        ])
    };
    let first = run("alice");
    first.code_is(0);
    assert_eq!(user_names(&moto.endpoint), vec!["alice".to_string()]);
    let second = run("bob");
    second.code_is(0);
    assert!(
        second
            .stdout
            .contains("changed since the last run: admin_user: alice → bob"),
        "{second:?}"
    );
    second.stdout_lacks("admin-user  already done");
    assert_eq!(
        user_names(&moto.endpoint),
        vec!["alice".to_string(), "bob".to_string()],
        "the user of the new input exists"
    );
}

#[test]
fn a_manual_step_whose_resolved_text_changed_is_asked_again() {
    let t = Test::new()
        .file(
            "r.md",
            "# R\n\n```runbook\n[inputs.x]\nprompt = \"x\"\n```\n\n```manual id=greet\ninstructions = \"hello ${inputs.x}\"\n```\n",
        )
        .file("yes.toml", "[steps.greet]\nconfirm = true\n");
    let first = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "x=a".into(),
        "--answers".into(),
        "yes.toml".into(),
    ]);
    first.code_is(0);
    let same = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "x=a".into()]);
    assert_eq!(same.code, 0, "unchanged: already done, nothing asked: {same:?}");
    same.stdout_has("greet  already done");
    let changed = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "x=b".into()]);
    assert_eq!(changed.code, 3, "the person is asked again: {changed:?}");
    changed.stdout_has("hello b");
    assert!(
        changed.stderr.contains("waiting for a person at step `greet`"),
        "{changed:?}"
    );
}

#[test]
fn two_runs_with_different_inputs_are_both_kept_and_listed() {
    let t = Test::new()
        .file(
            "r.md",
            "# R\n\n```runbook\n[inputs.user]\nprompt = \"user\"\nkey = true\n```\n\n```manual id=greet\ninstructions = \"onboard ${inputs.user}\"\n```\n",
        )
        .file("yes.toml", "[steps.greet]\nconfirm = true\n");
    for user in ["alice", "bob"] {
        let out = t.run_args(&[
            "run".into(),
            "r.md".into(),
            "--input".into(),
            format!("user={user}"),
            "--answers".into(),
            "yes.toml".into(),
        ]);
        out.code_is(0);
        assert!(out.stdout.contains(&format!("(run user={user})")), "{out:?}");
    }
    let named = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--run".into(),
        "carol-onboarding".into(),
        "--input".into(),
        "user=carol".into(),
    ]);
    named.code_is(3);
    let runs = t.run_args(&["runs".into(), "r.md".into()]);
    runs.code_is(0);
    for name in ["user=alice", "user=bob", "carol-onboarding"] {
        assert!(runs.stdout.contains(name), "{name} listed: {runs:?}");
    }
    let alice = t.run_args(&["status".into(), "r.md".into(), "--run".into(), "user=alice".into()]);
    assert!(
        alice.stdout.contains("run user=alice") && alice.stdout.contains("done"),
        "{alice:?}"
    );
    // Resuming one run sees its own record: alice is already done.
    let again = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "user=alice".into()]);
    again.code_is(0).stdout_has("greet  already done");
}

#[test]
fn a_closed_pipe_is_no_panic() {
    use std::process::{Command, Stdio};
    for args in [vec!["list", "--json"], vec!["check"], vec!["list"]] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        // No wait for abandoned calls to land: these tests re-run at once on purpose.
        cmd.env("RUNBOOK_LANDING_MS", "0");
        cmd.args(&args)
            .arg(repo().join("runbooks"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        // Close the reading end at once, as `| head -0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
    // A run whose stdout closes stops cleanly with its journal closed.
    let t = Test::new().file(
        "r.md",
        "# R\n\n```rhai id=a\n#{ a: 1 }\n```\n\n```rhai id=b\n#{ b: 2 }\n```\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", "r.md"])
        .current_dir(t.dir.path())
        .env("RUNBOOK_STATE_DIR", t.path(".runbook"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    let written = t.written();
    assert!(
        written.contains(r#""event":"run-finished""#),
        "journal closed: {written}"
    );
}

#[test]
fn escape_sequences_from_runbooks_answers_and_aws_never_reach_the_terminal() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            fail_with: Some("EMAIL_ALREADY_EXISTS \u{1b}]0;pwned\u{7}\u{1b}[2K✓ all steps done".into()),
            ..Rules::default()
        },
    );
    let t = Test::new()
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "1")
        .file(
            "r.md",
            "# R \u{1b}]0;title\u{7}\n\n## Do it \u{1b}[2K\n\nProse with \u{1b}[31mred\u{1b}[0m and \u{9b}31m.\n\n```manual id=m\ninstructions = \"look \\u001b[1A\\u001b[2K✓ fake\"\n```\n\n```aws organizations.ensure-organization id=org\n```\n\n```aws organizations.ensure-account id=acct\nname = \"x-prod\"\nemail = \"x@example.com\"\n```\n",
        )
        .file("a.toml", "[steps.m]\nconfirm = true\n");
    let out = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "a.toml".into()]);
    out.code_is(1);
    assert!(out.all().contains("EMAIL_ALREADY_EXISTS"), "{out:?}");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{9b}'),
        "raw escape on stdout: {:?}",
        out.stdout
    );
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{9b}'),
        "raw escape on stderr: {:?}",
        out.stderr
    );
    assert!(out.all().contains("\\u{1b}"), "shown, neutralised: {out:?}");
}

#[test]
fn two_fresh_rehearsals_of_a_fan_out_each_create_their_own_items() {
    let t = Test::new()
        .env("RUNBOOK_MOTO_SERVER", &crate::common::moto_server().display().to_string())
        .file(
            "r.md",
            "# R\n\n```aws organizations.ensure-account id=acct for-each='[\"a-prod\", \"b-prod\", \"c-prod\"]'\nname = \"${item}\"\nemail = \"${item}@example.com\"\n```\n",
        );
    for n in 0..2 {
        // Member accounts need an organization; a rehearsal's new account has none.
        let out = t.run_args(&["rehearse".into(), "r.md".into(), "--with-organization".into()]);
        assert_eq!(out.code, 0, "rehearsal {n}: {out:?}");
        assert!(!out.all().contains("items were already done"), "rehearsal {n}: {out:?}");
        assert!(out.stdout.contains("acct: 3 items done in"), "rehearsal {n}: {out:?}");
    }
    let runs = t.run_args(&["runs".into(), "r.md".into()]);
    assert_eq!(runs.stdout.matches("rehearsal-").count(), 2, "{runs:?}");
}

#[test]
fn links_planted_in_the_state_directory_are_never_followed() {
    for name in ["lock", "transcript.jsonl", ".space-probe", "state.json"] {
        let t = Test::new().file("r.md", "# R\n\n```rhai id=a\n#{ a: 1 }\n```\n");
        let first = t.run_args(&["run".into(), "r.md".into()]);
        first.code_is(0);
        let run_dir = walk(t.path(".runbook"))
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == "state.json"))
            .and_then(|p| p.parent().map(|d| d.to_path_buf()))
            .expect("run dir");
        let victim = t.path("victim.txt");
        std::fs::write(&victim, "precious").expect("write");
        let link = run_dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).expect("link");
        let out = t.run_args(&["run".into(), "r.md".into(), "--restart".into()]);
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read"),
            "precious",
            "{name}: followed: {out:?}"
        );
        if name != ".space-probe" && name != "state.json" {
            assert_eq!(out.code, 2, "{name}: {out:?}");
            assert!(out.stderr.contains("symbolic link"), "{name}: {out:?}");
        }
    }
    // Files are the owner's alone.
    let t = Test::new().file("r.md", "# R\n\n```rhai id=a\n#{ a: 1 }\n```\n");
    assert_eq!(t.run_args(&["run".into(), "r.md".into()]).code, 0);
    use std::os::unix::fs::PermissionsExt;
    for p in walk(t.path(".runbook")) {
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
        let dir = p.parent().expect("parent");
        let dmode = std::fs::metadata(dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700, "{} is {dmode:o}", dir.display());
    }
}

// Found by an attacker with the binary and the promises (no tests): each pins one finding.

fn org_and_account(name_expr: &str) -> String {
    format!(
        "# Acct\n\n```runbook\n[inputs.name]\nprompt = \"account name\"\n```\n\n```aws organizations.ensure-organization id=org\n```\n\n```aws organizations.ensure-account id=acct\nname = \"{name_expr}\"\nemail = \"{name_expr}@example.com\"\n```\n"
    )
}

#[test]
fn a_rehearsal_never_shares_a_journal_with_a_real_run() {
    let moto = Moto::shared();
    let t = Test::new()
        .aws(&moto.endpoint)
        .env(
            "RUNBOOK_MOTO_SERVER",
            &crate::common::moto_server().display().to_string(),
        )
        .file("acct.md", org_and_account("${inputs.name}"));
    let rehearsed = t.run_args(&[
        "rehearse".into(),
        "acct.md".into(),
        "--input".into(),
        "name=beta-prod".into(),
        "--run".into(),
        "prod".into(),
    ]);
    rehearsed.code_is(0);
    let real = t.run_args(&[
        "run".into(),
        "acct.md".into(),
        "--input".into(),
        "name=beta-prod".into(),
        "--run".into(),
        "prod".into(),
    ]);
    real.code_is(0).stdout_lacks("acct  already done");
    assert_eq!(
        account_names(&moto.endpoint)
            .iter()
            .filter(|n| *n == "beta-prod")
            .count(),
        1
    );
    // And the other way round: a rehearsal after the real run starts over in its emulator.
    let again = t.run_args(&[
        "rehearse".into(),
        "acct.md".into(),
        "--input".into(),
        "name=beta-prod".into(),
        "--run".into(),
        "prod".into(),
    ]);
    again.code_is(0).stdout_lacks("acct  already done");
    let status = t.run_args(&["status".into(), "acct.md".into(), "--run".into(), "prod".into()]);
    assert!(
        status.stdout.contains("run prod"),
        "the real run is still a real run: {status:?}"
    );
}

#[test]
fn step_ids_that_expressions_cannot_tell_apart_are_an_error() {
    let t = Test::new().file(
        "r.md",
        "# R\n\n```rhai id=acct-name\n#{v: 1}\n```\n\n```rhai id=acct_name\n#{v: 2}\n```\n",
    );
    let out = t.run_args(&["check".into(), "r.md".into()]);
    out.code_is(2)
        .stderr_has("r.md:7:")
        .stderr_has("is the same as `acct-name`");
}

#[test]
fn list_and_completions_never_print_raw_escapes_nor_panic_on_a_closed_pipe() {
    let t = Test::new().file(
        "e.md",
        "# Title \u{1b}]0;pwned\u{7}\u{9b}31m\n\n```rhai id=a\n#{}\n```\n",
    );
    let out = t.run_args(&["list".into(), "e.md".into()]);
    out.code_is(0);
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{9b}'),
        "{:?}",
        out.stdout
    );
    use std::process::{Command, Stdio};
    for shell in ["bash", "fish"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["completions", shell])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_ne!(out.status.code(), Some(101), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_planted_or_empty_key_and_lax_modes_are_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new().file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pin]\nprompt = \"pin\"\nsecret = true\n```\n\n```rhai id=a\nlet p = inputs.pin;\n#{ a: 1 }\n```\n",
    );
    let run = |t: &Test| t.run_args(&["run".into(), "r.md".into(), "--input".into(), "pin=4821".into()]);
    assert_eq!(run(&t).code, 0);
    // The key of secret digests is the operator's, outside the state directory.
    let key = t.path(".config/runbook/key");
    assert!(key.is_file(), "the operator's key");
    assert!(
        !walk(t.path(".runbook"))
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == "key")),
        "no key in the state directory"
    );
    for (bytes, mode) in [(vec![b'A'; 32], 0o644), (Vec::new(), 0o600)] {
        std::fs::write(&key, &bytes).expect("plant");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let out = run(&t);
        assert_eq!(
            out.code,
            2,
            "a planted key ({} bytes, {mode:o}) was used: {out:?}",
            bytes.len()
        );
        out.stderr_has("key");
    }
    std::fs::remove_file(&key).expect("rm");
    let key = walk(t.path(".runbook"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "origin.json"))
        .expect("the runbook's journal")
        .with_file_name("key");
    // A run directory and files left group- and world-writable are made private again.
    let run_dir = key.parent().expect("dir").join("runs").join("default");
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::set_permissions(run_dir.join("transcript.jsonl"), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    assert_eq!(run(&t).code, 0);
    let dmode = std::fs::metadata(&run_dir).expect("meta").permissions().mode() & 0o777;
    let fmode = std::fs::metadata(run_dir.join("transcript.jsonl"))
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!((dmode, fmode), (0o700, 0o600));
}

#[test]
fn another_aws_target_is_another_step() {
    let (a, b) = (Moto::shared(), Moto::shared());
    let t = Test::new()
        .aws(&a.endpoint)
        .file("acct.md", org_and_account("${inputs.name}"));
    let first = t.run_args(&[
        "run".into(),
        "acct.md".into(),
        "--input".into(),
        "name=alpha-prod".into(),
    ]);
    first.code_is(0);
    let other = t.run_args(&[
        "run".into(),
        "acct.md".into(),
        "--input".into(),
        "name=alpha-prod".into(),
        "--endpoint-url".into(),
        b.endpoint.clone(),
    ]);
    other.code_is(0).stdout_lacks("acct  already done");
    assert_eq!(
        account_names(&b.endpoint).iter().filter(|n| *n == "alpha-prod").count(),
        1
    );
}

#[test]
fn a_manual_step_whose_prose_changed_is_asked_again() {
    let text = "# R\n\n## Rotate\n\nDelete access key AKIAOLD1.\n\n```manual id=rotate\nconfirm = \"Deleted?\"\n```\n";
    let t = Test::new()
        .file("r.md", text)
        .file("yes.toml", "[steps.rotate]\nconfirm = true\n");
    assert_eq!(
        t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "yes.toml".into()])
            .code,
        0
    );
    std::fs::write(t.path("r.md"), text.replace("AKIAOLD1", "AKIAOLD2")).expect("edit");
    let again = t.run_args(&["run".into(), "r.md".into()]);
    assert_eq!(again.code, 3, "asked again: {again:?}");
}

#[test]
fn different_key_values_are_different_runs() {
    let t = Test::new()
        .file(
            "r.md",
            "# R\n\n```runbook\n[inputs.token]\nprompt = \"t\"\nsecret = true\nkey = true\n[inputs.tenant]\nprompt = \"tenant\"\nkey = true\n```\n\n```manual id=m\nconfirm = \"ok?\"\n```\n",
        )
        .file("yes.toml", "[steps.m]\nconfirm = true\n");
    for (token, tenant) in [
        ("alphatoken", "a/b"),
        ("betatoken", "a/b"),
        ("alphatoken", "a_b"),
        ("alphatoken", "a?b"),
    ] {
        let out = t.run_args(&[
            "run".into(),
            "r.md".into(),
            "--input".into(),
            format!("token={token}"),
            "--input".into(),
            format!("tenant={tenant}"),
            "--answers".into(),
            "yes.toml".into(),
        ]);
        out.code_is(0);
        assert!(
            !out.stdout.contains("m  already done"),
            "{token} {tenant} shared a run: {out:?}"
        );
        assert!(!out.all().contains(token), "{out:?}");
    }
    let runs = t.run_args(&["runs".into(), "r.md".into()]);
    assert_eq!(runs.stdout.lines().count(), 5, "{runs:?}");
    assert!(!runs.all().contains("alphatoken"), "{runs:?}");
}

#[test]
fn status_follows_no_link_and_a_fifo_does_not_hang() {
    let t = Test::new().file("r.md", "# R\n\n```rhai id=a\n#{ a: 1 }\n```\n");
    assert_eq!(t.run_args(&["run".into(), "r.md".into()]).code, 0);
    let state = walk(t.path(".runbook"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "state.json"))
        .expect("state");
    let runs = state.parent().and_then(|p| p.parent()).expect("runs").to_path_buf();
    // A FIFO at state.json.
    std::fs::remove_file(&state).expect("rm");
    let ok = std::process::Command::new("mkfifo")
        .arg(&state)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok);
    let started = std::time::Instant::now();
    let out = t.run_args(&["status".into(), "r.md".into()]);
    assert!(started.elapsed().as_secs() < 10, "hung");
    out.code_is(2);
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(2);
    // A symlinked runs/ directory.
    let elsewhere = t.path("elsewhere");
    std::fs::rename(&runs, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &runs).expect("link");
    let out = t.run_args(&["status".into(), "r.md".into()]);
    out.code_is(2).stderr_has("symbolic link");
}
