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
