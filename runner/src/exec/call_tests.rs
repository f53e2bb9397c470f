//! The decisions around a call by name that changes AWS: whether it is one, whether an answer
//! holds secrets, and what an unknown outcome or an answer with secrets asks before it is sent
//! again. The journal here is read from memory: intents are recorded, never sent.

use serde_json::json;

use super::*;
use crate::exec::testing::{Builder, Fixture};
use crate::journal::Entry;

const CALLS: &str = "# T\n\n```aws iam:CreateUser id=make\nUserName = \"u\"\n```\n\n\
```aws iam:CreateUser id=retried on-unknown=retry\nUserName = \"v\"\n```\n\n\
```aws iam:CreateGroup id=told mutates=false\nGroupName = \"g\"\n```\n\n\
```aws iam:ListUsers id=list\n```\n\n```aws sts.whoami id=builtin\n```\n\n```rhai id=script\n1\n```\n";

#[test]
fn a_change_by_name_is_sent_again_only_where_the_author_did_not_say_it_is_harmless() {
    let f = Fixture::run(CALLS);
    let opts: Vec<(&str, bool, bool)> = ["make", "retried", "told", "list"]
        .iter()
        .map(|id| {
            let o = options(f.step(id));
            (*id, o.mutates, o.retry_unknown)
        })
        .collect();
    assert_eq!(
        opts,
        [
            ("make", true, false),
            ("retried", true, true),
            ("told", false, false),
            ("list", false, false)
        ]
    );
    let again: Vec<&str> = f
        .shared
        .runbook
        .steps
        .iter()
        .filter(|s| sends_again(s))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(again, ["make"]);
}

#[test]
fn credentials_the_models_leave_unmarked_are_found_anywhere() {
    let mut found = Vec::new();
    unmarked_secrets(
        &json!({
            "Credentials": {"AccessKeyId": "ASIA1", "SecretAccessKey": "s1", "SessionToken": "t1"},
            "List": [{"SessionToken": "t2"}, {"SecretAccessKey": ""}, {"SecretAccessKey": 5}],
            "SessionTokenish": "no"
        }),
        &mut found,
    );
    assert_eq!(found, ["s1", "t1", "t2"]);
}

/// Records an intent of `make` without an answer, sent at `at`.
fn lost(f: &Fixture, at_item: Option<&str>) -> String {
    f.shared
        .record(Entry::Intent {
            step: "make".into(),
            item_key: at_item.map(String::from),
            call: "iam:CreateUser".into(),
            target: "u".into(),
        })
        .expect("recorded");
    let open = f
        .shared
        .journal
        .lock()
        .map(|j| j.unsettled("make").unwrap_or_default())
        .unwrap_or_default();
    open.last().map(|u| u.at.clone()).unwrap_or_default()
}

fn unknown(e: Result<(), StepError>) -> String {
    match e {
        Err(StepError::Unknown(m)) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_outcome_stops_the_step_until_a_person_answers() {
    let f = Builder::new(CALLS).opts(|o| o.yes = true).build();
    // Nothing open: nothing to ask.
    assert!(settle_unknown(&f.shared, f.step("make")).is_ok());
    lost(&f, None);
    assert_eq!(
        unknown(settle_unknown(&f.shared, f.step("make"))),
        "the outcome of iam:CreateUser is unknown; check in AWS whether it took effect (e.g. with a Describe/List/Get call), then answer resend = true under [steps.make] to send it again, or write on-unknown=retry on the step if sending it twice is harmless"
    );
    // The author said a second send is harmless; a call that changes nothing is never asked.
    assert!(settle_unknown(&f.shared, f.step("retried")).is_ok());
    assert!(settle_unknown(&f.shared, f.step("told")).is_ok());
}

#[test]
fn resend_false_is_a_no_and_resend_true_answers_once() {
    let f = Builder::new(CALLS).answers("[steps.make]\nresend = false\n").build();
    lost(&f, None);
    assert_eq!(
        unknown(settle_unknown(&f.shared, f.step("make"))),
        "not sent again ([steps.make] resend = false); check whether iam:CreateUser took effect"
    );
    let f = Builder::new(CALLS).answers("[steps.make]\nresend = true\n").build();
    let first = lost(&f, None);
    assert!(settle_unknown(&f.shared, f.step("make")).is_ok());
    assert_eq!(f.recorded(), ["intent make", "confirmed make"]);
    let confirmed = f.events().pop().expect("confirmed");
    assert_eq!(confirmed["answers"], json!({"resend": true, "resend_for": [first]}));
}

/// `resend = "TIME"` answers the call sent at that time and no other.
#[test]
fn resend_at_a_time_answers_only_that_call() {
    let f = Builder::new(CALLS)
        .answers("[steps.make]\nresend = \"2020-01-01T00:00:00Z\"\n")
        .opts(|o| o.yes = true)
        .build();
    lost(&f, None);
    assert!(unknown(settle_unknown(&f.shared, f.step("make"))).starts_with("the outcome of iam:CreateUser is unknown"));
    assert_eq!(
        resend_for(&f.shared, f.step("make"), &["2020-01-01T00:00:00Z".into()]).ok(),
        Some(Some(true))
    );
    assert_eq!(
        resend_for(&f.shared, f.step("make"), &["2021-01-01T00:00:00Z".into()]).ok(),
        Some(None)
    );
    // No answer for the step: not answered.
    assert_eq!(
        resend_for(&f.shared, f.step("retried"), &["2020-01-01T00:00:00Z".into()]).ok(),
        Some(None)
    );
}

fn waiting(e: Result<(), StepError>) -> String {
    match e {
        Err(StepError::Waiting(m)) => m,
        other => panic!("{other:?}"),
    }
}

/// A change that answered with secrets (never kept) is not sent again for its outputs unless
/// someone said so: a second CreateAccessKey is a second key.
#[test]
fn an_answer_with_secrets_is_not_fetched_again_by_sending_again() {
    let f = Builder::new(CALLS).opts(|o| o.yes = true).build();
    assert_eq!(
        waiting(resend_after_secret_answer(&f.shared, f.step("make"))),
        "make: AWS answered this call with secrets, which are never kept; sending it again would make another; answer resend = true under [steps.make] to send it again, or run from a later step with --from"
    );
    assert!(resend_after_secret_answer(&f.shared, f.step("retried")).is_ok());
    assert!(resend_after_secret_answer(&f.shared, f.step("told")).is_ok());
    let f = Builder::new(CALLS).answers("[steps.make]\nresend = true\n").build();
    assert!(resend_after_secret_answer(&f.shared, f.step("make")).is_ok());
    let f = Builder::new(CALLS).answers("[steps.make]\nresend = false\n").build();
    assert!(waiting(resend_after_secret_answer(&f.shared, f.step("make"))).starts_with("make: AWS answered"));
}

#[test]
fn a_secret_that_cannot_be_compared_is_sent_again_only_on_a_yes() {
    let f = Fixture::run(CALLS);
    assert_eq!(
        waiting(resend_unverifiable(&f.shared, f.step("make"))),
        "make: it finished before, and whether the secret it sends has changed cannot be told (the key that digested it is not this one); check in AWS, then answer resend = true under [steps.make] to send it again, or run from a later step with --from"
    );
    let f = Builder::new(CALLS).answers("[steps.make]\nresend = true\n").build();
    assert!(resend_unverifiable(&f.shared, f.step("make")).is_ok());
    let f = Builder::new(CALLS).answers("[steps.make]\nresend = \"yes\"\n").build();
    assert!(resend_unverifiable(&f.shared, f.step("make")).is_err());
}
