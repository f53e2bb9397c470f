//! Issue 28's table, the last gap cells: a support case's hand-over file (written when the
//! account's plan has no Support API) made of a member AWS marks sensitive or of a value a script
//! derived from a secret input, and the site's cards when a step's parameter is an expression over
//! a secret input with a default. Every byte the tool wrote is searched, with the fixtures removed.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test, files};

/// A Basic-plan account: the Support API refuses (SubscriptionRequiredException) and the case is
/// handed over as a file.
fn basic_plan(moto: &Moto) -> FaultProxy {
    FaultProxy::start(
        &moto.endpoint,
        Rules {
            subscription_required: true,
            ..Rules::default()
        },
    )
}

/// Runs `r.md`, then removes it: what is left is what the tool wrote.
fn run_and_drop_the_runbook(t: &Test, extra: &[&str]) -> (Output, String) {
    let mut a = vec!["run".to_string(), "r.md".into(), "--yes".into()];
    a.extend(extra.iter().map(|s| s.to_string()));
    let out = t.run_args(&a);
    std::fs::remove_file(t.path("r.md")).expect("runbook");
    let written = out.all() + t.written().as_str();
    (out, written)
}

fn forms(secret: &str) -> [String; 4] {
    [
        secret.to_string(),
        secret.to_uppercase(),
        secret.to_lowercase(),
        secret.chars().rev().collect(),
    ]
}

#[test]
fn a_hand_over_made_of_a_sensitive_member_keeps_it_out_of_the_file_and_its_name() {
    let moto = Moto::shared();
    let proxy = basic_plan(&moto);
    let t = Test::new().aws(&proxy.endpoint).env("AWS_MAX_ATTEMPTS", "1").file(
        "r.md",
        "# R\n\n```aws secretsmanager:CreateSecret id=make\nName = \"db\"\nSecretString = \"hoZq7Xk3value\"\n```\n\n\
         ```aws secretsmanager:GetSecretValue id=got\nSecretId = \"db\"\n```\n\n\
         ```aws support.ensure-case id=case\nsubject = \"Reset ${steps.got.SecretString}\"\nbody = \"The value is ${steps.got.SecretString}.\"\n```\n",
    );
    let (out, written) = run_and_drop_the_runbook(&t, &[]);
    out.code_is(0).stdout_has("handed_over=true");
    assert!(
        written.contains("Support case to open by hand"),
        "no hand-over file: {out:?}"
    );
    for f in forms("hoZq7Xk3value") {
        assert!(!written.contains(&f), "`{f}` was written:\n{written}");
    }
}

#[test]
fn a_hand_over_made_of_a_value_derived_from_a_secret_keeps_it_out_of_the_file_and_its_name() {
    let moto = Moto::shared();
    let proxy = basic_plan(&moto);
    let t = Test::new().aws(&proxy.endpoint).env("AWS_MAX_ATTEMPTS", "1").file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n\
         ```rhai id=d\nlet r = \"\"; for c in inputs.pw.to_chars() { r = c + r; }\n#{ up: inputs.pw.to_upper(), rev: r }\n```\n\n\
         ```aws support.ensure-case id=case\nsubject = \"Reset ${steps.d.up}\"\nbody = \"Reversed: ${steps.d.rev}\"\n```\n",
    );
    let (out, written) = run_and_drop_the_runbook(&t, &["--input", "pw=dvZq7Xk3pw"]);
    out.code_is(0).stdout_has("handed_over=true");
    assert!(
        written.contains("Support case to open by hand"),
        "no hand-over file: {out:?}"
    );
    for f in forms("dvZq7Xk3pw") {
        assert!(!written.contains(&f), "`{f}` was written:\n{written}");
    }
}

#[test]
fn the_site_never_shows_a_parameter_evaluated_from_a_secret_default() {
    let secret = "SeKr1t-derived-5521";
    let rb = format!(
        "# Derived\n\n```runbook\n[inputs.token]\nprompt = \"API token\"\nsecret = true\ndefault = \"{secret}\"\n```\n\n\
         ```aws identitystore.ensure-user id=user\nidentity_store_id = \"d-1234567890\"\nuser_name = \"${{inputs.token.to_upper()}}\"\n\
         display_name = \"${{inputs.token.sub_string(0, 6)}}\"\ngiven_name = \"A\"\nfamily_name = \"B\"\nemail = \"a@example.com\"\n```\n"
    );
    let t = Test::new()
        .file(
            "book/book.toml",
            r#"[book]
title = "t"
"#,
        )
        .file(
            "book/src/SUMMARY.md",
            r#"# Summary

<!-- runbooks -->
"#,
        )
        .file(
            "runbooks/README.md",
            r#"# Index

- [Derived](derived.md)
"#,
        )
        .file("runbooks/derived.md", rb);
    let out = t.run_args(&["render".into()]);
    out.code_is(0);
    let site = files(&t.path("site"));
    assert!(site.len() > 10, "a site was written");
    let mut shown = forms(secret).to_vec();
    shown.push("SeKr1t".into());
    for (p, text) in site {
        for f in &shown {
            assert!(!text.contains(f.as_str()), "{p} shows `{f}`");
        }
    }
}
