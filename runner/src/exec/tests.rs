//! The step error's own decisions (which are retried, how long a message may be, what a
//! plugin's error becomes), what a step's outputs are stored as, and the `--events` stream's
//! failure, which stops the run at its next record.

use serde_json::json;

use super::testing::Fixture;
use super::*;

#[test]
fn a_message_past_the_cap_is_cut_at_a_character_and_says_how_much() {
    assert_eq!(clip("short".into()), "short");
    let at_cap = "a".repeat(MESSAGE_CAP);
    assert_eq!(clip(at_cap.clone()), at_cap);
    let over = format!("{}é{}", "a".repeat(MESSAGE_CAP - 1), "b".repeat(10));
    assert_eq!(
        clip(over),
        format!("{}… (12 more bytes not shown)", "a".repeat(MESSAGE_CAP - 1))
    );
    let long = "x".repeat(MESSAGE_CAP + 1);
    let StepError::Failed { message, hint, at } = StepError::Failed {
        message: long.clone(),
        hint: Some(long.clone()),
        at: Some(crate::source::Span::new(1, 2)),
    }
    .clipped() else {
        panic!("not a failure")
    };
    let cut = format!("{}… (1 more bytes not shown)", "x".repeat(MESSAGE_CAP));
    assert_eq!(
        (message, hint, at),
        (cut.clone(), Some(cut), Some(crate::source::Span::new(1, 2)))
    );
    // Only a failure's text is cut: a person's question is whole.
    assert!(matches!(StepError::Waiting(long.clone()).clipped(), StepError::Waiting(m) if m == long));
}

#[test]
fn a_plugins_journal_error_stops_the_run_and_every_other_is_the_steps_failure() {
    assert!(matches!(
        StepError::from(PluginError::Journal("full".into())),
        StepError::Journal(m) if m == "full"
    ));
    let e = PluginError::Other("nope".into());
    let (text, hint) = (e.to_string(), e.hint());
    assert!(matches!(
        StepError::from(e),
        StepError::Failed { message, hint: h, at: None } if message == text && h == hint
    ));
    assert!(matches!(
        StepError::from(crate::journal::JournalError::TooDeep { path: "t".into() }),
        StepError::Journal(_)
    ));
}

#[test]
fn secret_outputs_are_stored_opaque_but_for_what_the_author_made_public() {
    let outputs = json!({"AccessKeyId": "AKIA1", "SecretAccessKey": "s"});
    assert_eq!(Outcome::public(outputs.clone()).stored(), outputs);
    let secret = Outcome {
        outputs: outputs.clone(),
        secrecy: Secrecy::AllBut(vec!["AccessKeyId".into()]),
    };
    assert_eq!(secret.stored(), json!({"AccessKeyId": "AKIA1", "********": "********"}));
    let all = Outcome {
        outputs,
        secrecy: Secrecy::AllBut(Vec::new()),
    };
    assert_eq!(all.stored(), json!("********"));
}

struct Broken;

impl std::io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("reader went away"))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A stream that promised every entry and lost one stops the run at its next record, naming it.
#[test]
fn an_events_write_that_fails_stops_the_run_at_its_next_record() {
    let sink = EventSink {
        out: std::sync::Mutex::new(Some(Box::new(Broken))),
        name: "ev.ndjson".into(),
        failed: std::sync::Mutex::new(None),
    };
    assert_eq!(sink.failure(), None);
    sink.line("{\"event\":\"x\"}");
    let first = Some("cannot write --events ev.ndjson: reader went away".to_string());
    assert_eq!(sink.failure(), first);
    // The stream is closed: later lines are not tried, the first failure is kept.
    sink.line("{\"event\":\"y\"}");
    assert_eq!(sink.failure(), first);
}

#[test]
fn every_event_carries_the_schema_version_first() {
    let f = Fixture::run("# T\n\n```rhai id=a\n1\n```\n");
    f.shared
        .record(crate::journal::Entry::Interrupted { step: "a".into() })
        .expect("recorded");
    let events = f.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["v"], json!(EVENTS_VERSION));
    assert_eq!(events[0]["event"], json!("interrupted"));
    assert_eq!(f.recorded(), ["interrupted a"]);
}
