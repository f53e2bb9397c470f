//! The Support API where it can be used and the hand-over where it cannot: every refusal, the
//! account the case is about, follow-ups of resolved cases.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::find;
use crate::common::{Moto, Test, block_on, sdk};

pub(crate) fn not_activated_answers(account_id: &str) -> String {
    format!(
        r#"[inputs]
account_email = "it.admins@example.com"
[steps.email-and-browser]
confirm = true
reachable = "Monday 10:00 UTC"
[steps.root-sign-in]
confirm = true
account_id = "{account_id}"
"#
    )
}

fn run_not_activated(endpoint: &str, account_id: &str) -> (Test, crate::common::Output) {
    let t = Test::new()
        .file("a.toml", not_activated_answers(account_id))
        .aws(endpoint);
    let out = t.run_args(&[
        "run".into(),
        crate::common::repo()
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
        crate::common::repo()
            .join("runbooks/troubleshooting/not-activated.md")
            .display()
            .to_string(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
    ]);
    assert_eq!(out.code, 0, "no credentials: {out:?}");
    out.stdout_has("handed_over=true reason=no-credentials")
        .stdout_has("no AWS credentials found");
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
    out.code_is(0).stdout_has("handed_over=true reason=other-account");
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
    own.code_is(0).stdout_has("created=true");
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
    out.code_is(0);
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
        crate::common::repo()
            .join("runbooks/troubleshooting/not-activated.md")
            .display()
            .to_string(),
        "--answers".into(),
        "a.toml".into(),
        "--yes".into(),
        "--restart".into(),
    ]);
    again.code_is(0).stdout_has("created=false");
    assert!(again.stdout.contains(&format!("case_id={}", new.0)), "{again:?}");
    assert_eq!(super_cases(&moto.endpoint).len(), 2);
}

/// The addresses a runbook copies on a case reach AWS Support with it (read back from the
/// emulator, not from the tool's output), and an open case with another subject is not the case:
/// a new one is filed beside it.
#[test]
fn the_cc_addresses_reach_the_case_and_a_case_with_another_subject_is_not_adopted() {
    let moto = Moto::start();
    moto.support_case_status_every(1_000_000);
    let other = block_on(async {
        sdk(&moto.endpoint)
            .support()
            .await
            .expect("client")
            .create_case()
            .subject("Billing question")
            .communication_body("an unrelated open case")
            .send()
            .await
            .expect("case")
            .case_id()
            .unwrap_or("")
            .to_string()
    });
    let subject = "Account activation: copy the team";
    let text = format!(
        r#"# Case

```aws support.ensure-case id=c
subject = "{subject}"
body = "Please activate."
account_id = "123456789012"
cc = ["it.admins@example.com", "security@example.com"]
```
"#
    );
    let t = Test::new().file("r.md", text).aws(&moto.endpoint);
    let out = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("created=true"), "{out:?}");
    assert!(
        !out.stdout.contains(&other),
        "the other subject's case is not this one: {out:?}"
    );
    let cases = block_on(async {
        let out = sdk(&moto.endpoint)
            .support()
            .await
            .expect("client")
            .describe_cases()
            .include_resolved_cases(true)
            .send()
            .await
            .expect("cases");
        out.cases()
            .iter()
            .map(|c| {
                (
                    c.case_id().unwrap_or("").to_string(),
                    c.subject().unwrap_or("").to_string(),
                    c.cc_email_addresses().to_vec(),
                )
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(cases.len(), 2, "the other case and a new one: {cases:?}");
    let new = cases.iter().find(|c| c.1 == subject).expect("a case with the subject");
    assert_ne!(new.0, other, "{cases:?}");
    assert_eq!(
        new.2,
        vec!["it.admins@example.com".to_string(), "security@example.com".to_string()],
        "{cases:?}"
    );
}
