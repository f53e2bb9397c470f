//! Secrets never leave the process: every bundled runbook is run (against the emulator, through
//! the fault proxy) with its inputs and answers marked secret and set to recognisable values, and
//! with recognisable AWS credentials loaded by the SDK; each run reaches its last step (the Basic
//! plan's hand-over included), and every byte the tool wrote (stdout, stderr, state file,
//! transcript, hand-over files, the rendered site) is searched for them.

use std::path::Path;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, block_on, repo, sdk};

/// A token that appears in every secret value below (where the value's pattern allows letters).
const CANARY: &str = "Zq7Xk3";
const ACCESS_KEY: &str = "AKIAZQ7XK3CANARY0001";
const SECRET_KEY: &str = "zq7xk3-secret-access-key-canary";
const SESSION_TOKEN: &str = "zq7xk3-session-token-canary";

/// Inputs that are not secrets: the names "Multiple accounts" fans out over (a fan-out over
/// secret values is refused: whether it runs, and its items, would tell them).
const PLAIN_INPUTS: &[(&str, &str, &str)] = &[("multiple-accounts.md", "account_names", "acme-app-prod")];

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
        ("multiple-accounts.md", vec![("admin_user", "Zq7Xk3.admin")], vec![]),
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
                ("availability", "phone", "+1 555 017 3992"),
                ("availability", "reachable", "weekdays Zq7Xk3 9-17 UTC"),
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
fn no_secret_or_credential_in_anything_a_run_writes() {
    // `run`, not `rehearse`: the canary credentials are loaded by the SDK's default chain and sign
    // every call. The proxy makes the account a Basic-plan one (the Support API refuses, so the
    // troubleshooting runbooks write their hand-over files) with root MFA active.
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            subscription_required: true,
            root_mfa: true,
            ..Rules::default()
        },
    );
    block_on(async {
        runbook_plugins::Registry::builtin()
            .get("organizations.ensure-organization")
            .expect("action")
            .apply(&sdk(&moto.endpoint), serde_json::json!({}))
            .await
            .expect("organization");
    });
    let mut checked = Vec::new();
    for (runbook, inputs, answers) in cases() {
        let t = Test::new()
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("RUNBOOK_POLL_INITIAL_MS", "20")
            .env("RUNBOOK_POLL_CAP_MS", "100")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
        let dir = t.path("runbooks");
        copy_runbooks(&dir);
        let path = dir.join(runbook);
        let text = std::fs::read_to_string(&path).expect("runbook");
        let input_names: Vec<&str> = inputs.iter().map(|(k, _)| *k).collect();
        let ask_names: Vec<&str> = answers.iter().map(|(_, k, _)| *k).collect();
        std::fs::write(&path, mark_secret(&text, &input_names, &ask_names)).expect("write");

        // Answers outside the scratch directory: everything in it is searched.
        let answers_dir = tempfile::tempdir().expect("tempdir");
        let mut toml = String::from("[inputs]\n");
        let plain = PLAIN_INPUTS.iter().filter(|p| p.0 == runbook).map(|p| (p.1, p.2));
        for (k, v) in inputs.iter().copied().chain(plain) {
            toml.push_str(&format!("{k} = \"{v}\"\n"));
        }
        let rb = runbook::load::read(&path).expect("read");
        let (model, _) = runbook::analyzer::check(&rb, &runbook_plugins::Registry::builtin());
        for s in model.steps.iter().filter(|s| s.executor.word() == "manual") {
            toml.push_str(&format!(
                r#"[steps.{}]
confirm = true
"#,
                s.id
            ));
            for (step, k, v) in answers.iter().chain(PLAIN_ANSWERS) {
                if *step == s.id {
                    toml.push_str(&format!("{k} = \"{v}\"\n"));
                }
            }
        }
        let answers_file = answers_dir.path().join("answers.toml");
        std::fs::write(&answers_file, toml).expect("answers");

        let out = t.run_args(&[
            "run".into(),
            format!("runbooks/{runbook}"),
            "--answers".into(),
            answers_file.display().to_string(),
            "--yes".into(),
        ]);
        // Every runbook reaches its last step, except where the last step needs the internet
        // (the firewall allow-list probe): there it must be that step that failed.
        let last = model.steps.last().map(|s| s.id.clone()).unwrap_or_default();
        if OFFLINE_LAST_STEP.contains(&runbook) {
            assert_eq!(out.code, 1, "{runbook}: {out:?}");
            assert!(
                out.stderr.contains(&format!("step `{last}` failed")),
                "{runbook}: only the network step may fail: {out:?}"
            );
        } else {
            assert_eq!(out.code, 0, "{runbook}: {out:?}");
            assert!(
                out.stdout.contains(&format!("✓ {last} ")),
                "{runbook}: the last step ran: {out:?}"
            );
        }
        if runbook.starts_with("troubleshooting/") {
            assert!(
                out.stdout.contains("open the case at"),
                "{runbook}: the Basic-plan hand-over was reached: {out:?}"
            );
        }
        // The site built from the same runbooks, too.
        let site = t.run_args(&[
            "render".into(),
            "--book".into(),
            repo().join("book").display().to_string(),
            "--runbooks".into(),
            "runbooks".into(),
            "--out".into(),
            "site".into(),
        ]);
        assert_eq!(site.code, 0, "{runbook}: {site:?}");
        // Every byte the tool wrote: stdout, stderr, and every file in the scratch directory
        // except the runbooks we put there.
        let mut written = out.all() + site.all().as_str();
        let before = written.len();
        collect(t.dir.path(), &dir, &mut written);
        assert!(written.len() > before + 1000, "{runbook}: little was written");
        let secrets: Vec<&str> = inputs
            .iter()
            .map(|(_, v)| *v)
            .chain(answers.iter().map(|(_, _, v)| *v))
            .chain([ACCESS_KEY, SECRET_KEY, SESSION_TOKEN])
            .collect();
        for s in &secrets {
            assert!(!written.contains(s), "{runbook}: `{s}` was written");
        }
        assert!(
            !written.to_lowercase().contains(&CANARY.to_lowercase()),
            "{runbook}: part of a secret was written"
        );
        let masked = written.matches("********").count();
        checked.push((runbook, secrets.len(), written.len(), masked));
    }
    for (r, n, bytes, masked) in &checked {
        eprintln!("{r}: {n} secrets, {bytes} bytes searched, 0 found, {masked} masked");
    }
}

/// The environment's AWS credentials are secrets from the start of a run. Some AWS errors quote
/// what a request carried; here every Organizations call is refused with a message that quotes
/// the access key id and the session token the request was signed with. The refusal reaches
/// the person, the transcript and the state file with both masked, and no byte written holds
/// a credential.
#[test]
fn credentials_quoted_by_an_aws_error_are_masked_wherever_the_error_goes() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            echo_credentials: true,
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file(
            "r.md",
            r#"# Org

```aws organizations.ensure-organization id=org
```
"#,
        )
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(1);
    assert!(proxy.injected("echo-credentials") > 0, "no call was refused: {out:?}");
    let quoted = "The access key id ******** (session token ********) is not allowed";
    assert!(
        out.stderr.contains(quoted),
        "the refusal reaches the person, masked: {out:?}"
    );
    let runs = crate::common::run_dirs(&t.path(".runbook"));
    assert_eq!(runs.len(), 1, "{runs:?}");
    for f in ["transcript.jsonl", "state.json"] {
        let text = std::fs::read_to_string(runs[0].join(f)).expect("journal file");
        assert!(text.contains(quoted), "{f} records the refusal, masked: {text}");
    }
    let written = out.all() + t.written().as_str();
    for s in [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN] {
        assert!(!written.contains(s), "`{s}` was written");
    }
}

/// Runbooks whose last step probes the internet, which no test reaches.
const OFFLINE_LAST_STEP: &[&str] = &["prerequisites.md"];

fn collect(dir: &Path, skip: &Path, out: &mut String) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            // The runbooks we put there are input, not output.
            if p == skip {
                continue;
            }
            collect(&p, skip, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&b));
        }
    }
}
