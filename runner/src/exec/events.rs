//! What plugins report while they work: shown to the operator and journaled. An intent is
//! durable before the plugin may send the call it announces; when the journal cannot take it, the
//! plugin gets an error and sends nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use runbook_plugins::{BoxFuture, Claim, Duplicates, Event, Events, PluginError};

use super::{Shared, StepError};
use crate::journal::Entry;

pub(super) struct StepEvents {
    pub shared: Arc<Shared>,
    pub step: String,
    pub item: Option<String>,
    /// The step's request is made of a secret: what it targets is not shown, whole or in part (a
    /// substring of two characters is no text a mask finds).
    pub secret: bool,
}

impl Events for StepEvents {
    fn event(&self, event: Event) -> Result<(), PluginError> {
        let ui = &self.shared.ui;
        let (step, item_key) = (self.step.clone(), self.item.clone());
        let entry = match event {
            Event::Intent { call, target } => {
                // `plan` is a run whose gate sends reads and refuses every change.
                if self.shared.planning {
                    return Err(PluginError::Other(format!("plan sends no change: {call} was not sent")));
                }
                // Once any journal write failed, no further call is announced (or made).
                if self.shared.journal_broken.load(Ordering::SeqCst) {
                    return Err(PluginError::Journal(
                        "an earlier journal write failed; no further call is made".into(),
                    ));
                }
                // The state directory's mark first: from here until the answer is journaled,
                // any journal that sees this target knows a request to it is out.
                let mark = crate::journal::PendingCall {
                    runbook: self.shared.runbook.path.clone(),
                    run: self
                        .shared
                        .journal
                        .lock()
                        .map(|j| j.state.name.clone())
                        .unwrap_or_default(),
                    step: step.clone(),
                    call: call.clone(),
                    at: crate::journal::now(),
                };
                self.shared
                    .pending
                    .0
                    .mark(&super::gate::digest(&self.shared, &call, &target), &mark)
                    .map_err(|e| PluginError::Journal(format!("nothing was sent: {e}")))?;
                let shown = if self.secret {
                    crate::redact::MASK
                } else {
                    target.as_str()
                };
                ui.status(&format!("{step}  {call} {shown}"));
                Entry::Intent {
                    step,
                    item_key,
                    call,
                    target,
                }
            }
            Event::Requested {
                call,
                target,
                request_id,
            } => Entry::Requested {
                step,
                item_key,
                call,
                target,
                request_id,
            },
            Event::Rejected { call, target, code } => Entry::Rejected {
                step,
                item_key,
                call,
                target,
                code,
            },
            Event::Polling {
                what,
                status,
                request_id,
            } => {
                ui.status(&format!("{step}  waiting for {what}: {status}"));
                self.shared.event(serde_json::json!({
                    "event": "polling", "step": step, "item_key": item_key,
                    "what": what, "status": status, "request_id": request_id,
                }));
                return Ok(());
            }
            Event::Note { message } => {
                ui.note(&message);
                Entry::Note {
                    step,
                    item_key,
                    message,
                }
            }
            Event::Warning { message } => {
                ui.warn(&message);
                Entry::Warning {
                    step,
                    item_key,
                    message,
                }
            }
        };
        let settled = match &entry {
            Entry::Requested { call, target, .. } | Entry::Rejected { call, target, .. } => {
                Some(super::gate::digest(&self.shared, call, target))
            }
            _ => None,
        };
        let recorded = self.shared.record(entry);
        // The answer is on disk (even when `--events` then failed): the request is no longer
        // unknown to anyone.
        if let (Some(d), false) = (settled, matches!(recorded, Err(StepError::Journal(_)))) {
            self.shared.pending.0.clear(&d);
        }
        recorded.map_err(|e| match e {
            StepError::Journal(m) | StepError::Events(m) => PluginError::Journal(m),
            other => PluginError::Journal(format!("{other:?}")),
        })?;
        Ok(())
    }

    fn claim<'a>(
        &'a self,
        call: &'a str,
        target: &'a str,
        duplicates: Duplicates,
    ) -> BoxFuture<'a, Result<Claim, PluginError>> {
        if self.shared.planning {
            let refused = PluginError::Other(format!("plan sends no change: {call} was not sent"));
            return Box::pin(async move { Err(refused) });
        }
        Box::pin(super::gate::claim(&self.shared, &self.step, call, target, duplicates))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use runbook_plugins::{Duplicates, Event, Events};

    use super::StepEvents;
    use crate::exec::testing::{Builder, Fixture};

    const ONE: &str = "# T\n\n```aws iam:CreateUser id=make\nUserName = \"u\"\n```\n";

    fn events(f: &Fixture) -> StepEvents {
        StepEvents {
            shared: f.shared.clone(),
            step: "make".into(),
            item: None,
            secret: false,
        }
    }

    fn intent() -> Event {
        Event::Intent {
            call: "iam:CreateUser".into(),
            target: "u".into(),
        }
    }

    /// `plan` is a run whose gate refuses every change: no intent is taken, no claim is given.
    #[tokio::test]
    async fn a_plans_gate_refuses_every_intent_and_claim() {
        let f = Fixture::plan(ONE);
        let gate = events(&f);
        let refused = "plan sends no change: iam:CreateUser was not sent";
        assert_eq!(
            gate.event(intent()).map_err(|e| e.to_string()),
            Err(refused.to_string())
        );
        let claimed = gate.claim("iam:CreateUser", "u", Duplicates::Made).await;
        assert_eq!(claimed.err().map(|e| e.to_string()), Some(refused.to_string()));
        let claimed = gate.claim("iam:CreateUser", "u", Duplicates::Refused).await;
        assert_eq!(claimed.err().map(|e| e.to_string()), Some(refused.to_string()));
        assert_eq!(f.recorded(), Vec::<String>::new());
        // What is no change passes: a note is journaled in a plan too.
        assert!(gate.event(Event::Note { message: "n".into() }).is_ok());
        assert_eq!(f.recorded(), ["note make"]);
    }

    #[test]
    fn after_a_journal_write_failed_no_intent_is_taken() {
        let f = Fixture::run(ONE);
        f.shared.journal_broken.store(true, Ordering::SeqCst);
        let e = events(&f).event(intent()).err();
        assert!(
            matches!(&e, Some(runbook_plugins::PluginError::Journal(m)) if m == "an earlier journal write failed; no further call is made"),
            "{e:?}"
        );
        assert_eq!(f.recorded(), Vec::<String>::new());
    }

    /// The state directory's mark is left before the intent is journaled, and cleared by the
    /// answer (or AWS's refusal): a mark left behind is an outcome nobody knows.
    #[test]
    fn an_intent_marks_the_target_until_its_answer_is_journaled() {
        let f = Builder::new(ONE).pending_dir().build();
        let gate = events(&f);
        let digest = crate::exec::gate::digest(&f.shared, "iam:CreateUser", "u");
        assert!(f.shared.pending.0.get(&digest).is_none());
        gate.event(intent()).expect("intent");
        let mark = f.shared.pending.0.get(&digest).expect("marked");
        assert_eq!((mark.step.as_str(), mark.call.as_str()), ("make", "iam:CreateUser"));
        gate.event(Event::Requested {
            call: "iam:CreateUser".into(),
            target: "u".into(),
            request_id: None,
        })
        .expect("answer");
        assert!(f.shared.pending.0.get(&digest).is_none());
        gate.event(intent()).expect("intent");
        gate.event(Event::Rejected {
            call: "iam:CreateUser".into(),
            target: "u".into(),
            code: "EntityAlreadyExists".into(),
        })
        .expect("refusal");
        assert!(f.shared.pending.0.get(&digest).is_none());
        assert_eq!(
            f.recorded(),
            ["intent make", "requested make", "intent make", "rejected make"]
        );
    }

    /// Without a state directory to mark, nothing is announced, so nothing is sent.
    #[test]
    fn an_intent_that_cannot_be_marked_is_refused() {
        let f = Fixture::run(ONE);
        let e = events(&f).event(intent()).err();
        assert!(
            matches!(&e, Some(runbook_plugins::PluginError::Journal(m)) if m.starts_with("nothing was sent: ")),
            "{e:?}"
        );
        assert_eq!(f.recorded(), Vec::<String>::new());
        let _ = Arc::strong_count(&f.shared);
    }
}
