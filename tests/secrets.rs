//! Secrets never leave the process: every bundled runbook is rehearsed with its inputs and
//! answers marked secret and set to recognisable values, with recognisable AWS credentials in the
//! environment, and every byte the tool wrote (stdout, stderr, state file, transcript, hand-over
//! files) is searched for them. The rendered site is searched too.

mod common;

use std::path::Path;

use common::{Test, moto_server, repo};

/// A token that appears in every secret value below (where the value's pattern allows letters).
const CANARY: &str = "Zq7Xk3";
const ACCESS_KEY: &str = "AKIAZQ7XK3CANARY0001";
const SECRET_KEY: &str = "zq7xk3-secret-access-key-canary";

/// Answers that are not secrets (they need no canary: choices and account ids).
const PLAIN_ANSWERS: &[(&str, &str, &str)] = &[
    ("support-plan", "support_plan", "basic"),
    ("root-sign-in", "account_id", "123456789012"),
];

/// (runbook, inputs, step answers): every value here is marked secret in the runbook's copy.
/// Inputs by name, and answers as (step, question, value).
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str, &'static str)>,
);

fn cases() -> Vec<Case> {
    let email = "root.Zq7Xk3@example.com";
    vec![
        ("users-and-credentials.md", vec![], vec![]),
        (
            "prerequisites.md",
            vec![
                ("account_email", email),
                ("account_name", "acme-Zq7Xk3-prod"),
                ("account_phone", "+1 555 017 3992"),
            ],
            vec![],
        ),
        (
            "part-1-new-account.md",
            vec![("account_email", email), ("account_name", "acme-Zq7Xk3-prod")],
            vec![],
        ),
        (
            "part-2-identity-center.md",
            vec![
                ("admin_user", "Zq7Xk3.admin"),
                ("admin_email", "admins.Zq7Xk3@example.com"),
                ("admin_given_name", "Zq7Xk3given"),
                ("admin_family_name", "Zq7Xk3family"),
            ],
            vec![],
        ),
        (
            "multiple-accounts.md",
            vec![("account_names", "zq7xk3-app-prod"), ("admin_user", "Zq7Xk3.admin")],
            vec![],
        ),
        (
            "troubleshooting/no-verification-call.md",
            vec![("account_email", email)],
            vec![
                ("checks", "phone", "+1 555 017 3992"),
                ("availability", "reachable", "weekdays Zq7Xk3 9-17 UTC"),
            ],
        ),
        (
            "troubleshooting/failed-attempts.md",
            vec![("account_email", email)],
            vec![
                ("sign-in", "phone", "+1 555 017 3992"),
                ("sign-in", "reachable", "weekdays Zq7Xk3 9-17 UTC"),
            ],
        ),
        (
            "troubleshooting/not-activated.md",
            vec![("account_email", email)],
            vec![
                ("email-and-browser", "tried", "cleared cache Zq7Xk3"),
                ("email-and-browser", "reachable", "weekdays Zq7Xk3 9-17 UTC"),
            ],
        ),
    ]
}

/// The runbook with `secret = true` under each named input and question.
fn mark_secret(text: &str, inputs: &[&str], asks: &[&str]) -> String {
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        let header = line.trim();
        let named = |prefix: &str, names: &[&str]| names.iter().any(|n| header == format!("[{prefix}.{n}]"));
        if named("inputs", inputs) || named("ask", asks) {
            out.push_str("secret = true\n");
        }
    }
    out
}

fn copy_runbooks(to: &Path) {
    let from = repo().join("runbooks");
    for sub in ["", "troubleshooting", "rehearsal"] {
        std::fs::create_dir_all(to.join(sub)).expect("mkdir");
        for e in std::fs::read_dir(from.join(sub)).expect("read_dir").flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(sub).join(e.file_name())).expect("copy");
            }
        }
    }
}

#[test]
fn no_secret_or_credential_in_anything_a_rehearsal_writes() {
    let moto = moto_server();
    let mut checked = Vec::new();
    for (runbook, inputs, answers) in cases() {
        let t = Test::new()
            .env("RUNBOOK_MOTO_SERVER", &moto.display().to_string())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_SESSION_TOKEN", SECRET_KEY);
        let dir = t.path("runbooks");
        copy_runbooks(&dir);
        let path = dir.join(runbook);
        let text = std::fs::read_to_string(&path).expect("runbook");
        let input_names: Vec<&str> = inputs.iter().map(|(k, _)| *k).collect();
        let ask_names: Vec<&str> = answers.iter().map(|(_, k, _)| *k).collect();
        std::fs::write(&path, mark_secret(&text, &input_names, &ask_names)).expect("write");

        // Answers outside the scratch directory: the grep below reads all of it.
        let answers_dir = tempfile::tempdir().expect("tempdir");
        let mut toml = String::from("[inputs]\n");
        for (k, v) in &inputs {
            toml.push_str(&format!("{k} = \"{v}\"\n"));
        }
        let rb = runbook::load::read(&path).expect("read");
        let (model, _) = runbook::analyzer::check(&rb, &runbook_plugins::Registry::builtin());
        for s in model.steps.iter().filter(|s| s.executor.word() == "manual") {
            toml.push_str(&format!("[steps.{}]\nconfirm = true\n", s.id));
            for (step, k, v) in answers.iter().chain(PLAIN_ANSWERS) {
                if *step == s.id {
                    toml.push_str(&format!("{k} = \"{v}\"\n"));
                }
            }
        }
        let answers_file = answers_dir.path().join("answers.toml");
        std::fs::write(&answers_file, toml).expect("answers");

        let out = t.run_args(&[
            "rehearse".into(),
            format!("runbooks/{runbook}"),
            "--answers".into(),
            answers_file.display().to_string(),
            "--yes".into(),
        ]);
        // Some runbooks end early in a rehearsal (moto has no root MFA, no internet for the
        // allow-list check); that is fine here: what was written up to there is searched.
        assert!(
            [0, 1].contains(&out.code),
            "{runbook}: exit {} (a usage error or a question left unanswered):\n{}",
            out.code,
            out.all()
        );
        let mut written = out.all();
        // Only what runbook wrote: its state directory, not the runbooks we put there.
        let state = t.path(".runbook");
        assert!(state.exists(), "{runbook}: no state directory");
        let before = written.len();
        collect(&state, &mut written);
        assert!(written.len() > before, "{runbook}: the journal is empty");
        let secrets: Vec<&str> = inputs
            .iter()
            .map(|(_, v)| *v)
            .chain(answers.iter().map(|(_, _, v)| *v))
            .chain([ACCESS_KEY, SECRET_KEY])
            .collect();
        for s in &secrets {
            assert!(!written.contains(s), "{runbook}: `{s}` was written:\n{written}");
        }
        assert!(
            !written.to_lowercase().contains(&CANARY.to_lowercase()),
            "{runbook}: part of a secret was written:\n{written}"
        );
        checked.push((
            runbook,
            secrets.len(),
            written.len(),
            written.matches("********").count(),
        ));
    }
    for (r, n, bytes, masked) in &checked {
        eprintln!("{r}: {n} secrets, {bytes} bytes searched, 0 found, {masked} masked");
    }
    // The secrets did flow (into prompts, AWS calls and outputs) and were masked on the way out.
    let masked: usize = checked.iter().map(|c| c.3).sum();
    assert!(masked > 10, "secrets were used and masked: {masked}");
}

fn collect(dir: &Path, out: &mut String) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            // The emulator's own virtualenv is not runbook's output.
            if p.file_name().is_some_and(|n| n == "emulator") {
                continue;
            }
            collect(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&b));
        }
    }
}
