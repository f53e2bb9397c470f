//! What plugins report while they work: shown to the operator and journaled. An intent is
//! durable before the plugin may send the call it announces; when the journal cannot take it, the
//! plugin gets an error and sends nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use runbook_plugins::{Event, Events, PluginError};

use super::{Shared, StepError};
use crate::journal::Entry;

pub(super) struct StepEvents {
    pub shared: Arc<Shared>,
    pub step: String,
    pub item: Option<String>,
}

impl Events for StepEvents {
    fn event(&self, event: Event) -> Result<(), PluginError> {
        let ui = &self.shared.ui;
        let (step, item_key) = (self.step.clone(), self.item.clone());
        let entry = match event {
            Event::Intent { call, target } => {
                // Once any journal write failed, no further call is announced (or made).
                if self.shared.journal_broken.load(Ordering::SeqCst) {
                    return Err(PluginError::Journal(
                        "an earlier journal write failed; no further call is made".into(),
                    ));
                }
                ui.status(&format!("{step}  {call} {target}"));
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
        self.shared.record(entry).map_err(|e| match e {
            StepError::Journal(m) => PluginError::Journal(m),
            other => PluginError::Journal(format!("{other:?}")),
        })
    }
}
