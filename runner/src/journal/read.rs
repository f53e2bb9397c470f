//! What the transcript says, kept as an index beside it: the calls whose outcome is not settled,
//! the fan-out items finished since the run (re)started, the steps that finished before the state
//! file was saved. The transcript is read once, when the journal opens; every entry recorded after
//! that updates the index as it is written, so that asking costs the same whatever the
//! transcript's length (a fan-out of 4,000 calls by name re-read the whole transcript once per
//! item: 61 s of CPU).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::entry::{Entry, Line, StepStatus, Unsettled};
use super::files::read_lines;
use super::{Journal, JournalError};

type CallKey = (String, Option<String>, String, String);

/// The transcript, indexed.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// Calls whose intent was journaled and whose outcome was not: no finished step or item
    /// after it, and no refusal by AWS.
    open: BTreeMap<CallKey, Unsettled>,
    /// Finished items by step and item key, with the identity each had and its outputs; only
    /// those finished since the last `restarted`.
    items: BTreeMap<String, BTreeMap<String, (String, Value)>>,
    /// Steps whose `step-finished` line is the last word on them since the last `restarted`.
    finished: BTreeMap<String, (String, Value, String)>,
}

impl Index {
    pub(super) fn read(path: &Path) -> Result<Index, JournalError> {
        let mut index = Index::default();
        for l in read_lines(path)? {
            index.apply(&l);
        }
        Ok(index)
    }

    /// Takes one line into account, as it was written.
    pub(super) fn apply(&mut self, l: &Line) {
        match &l.entry {
            Entry::Intent {
                step,
                item_key,
                call,
                target,
            } => {
                self.open.insert(
                    (step.clone(), item_key.clone(), call.clone(), target.clone()),
                    Unsettled {
                        step: step.clone(),
                        item_key: item_key.clone(),
                        call: call.clone(),
                        target: target.clone(),
                        at: l.ts.clone(),
                        answered: false,
                    },
                );
            }
            Entry::Requested {
                step,
                item_key,
                call,
                target,
                ..
            } => {
                if let Some(u) = self
                    .open
                    .get_mut(&(step.clone(), item_key.clone(), call.clone(), target.clone()))
                {
                    u.answered = true;
                }
            }
            Entry::Rejected {
                step,
                item_key,
                call,
                target,
                ..
            } => {
                self.open
                    .remove(&(step.clone(), item_key.clone(), call.clone(), target.clone()));
            }
            Entry::ItemFinished {
                step,
                item_key,
                hash,
                outputs,
            } => {
                let item = Some(item_key.clone());
                self.open.retain(|(s, k, _, _), _| s != step || *k != item);
                self.items
                    .entry(step.clone())
                    .or_default()
                    .insert(item_key.clone(), (hash.clone(), outputs.clone()));
            }
            Entry::StepStarted { step, .. } => {
                self.finished.remove(step);
            }
            Entry::StepFinished { step, hash, outputs } => {
                self.open.retain(|(s, _, _, _), _| s != step);
                self.finished
                    .insert(step.clone(), (hash.clone(), outputs.clone(), l.ts.clone()));
            }
            // A restart starts every step and item over; calls still unsettled stay so: a
            // restart must not forget a call whose outcome is unknown.
            Entry::Restarted {} => {
                self.items.clear();
                self.finished.clear();
            }
            _ => {}
        }
    }
}

impl Journal {
    pub fn lines(&self) -> Result<Vec<Line>, JournalError> {
        read_lines(&self.dir.join("transcript.jsonl"))
    }

    /// Items of a fan-out step finished since the run (re)started, by item key, with the
    /// identity each had.
    pub fn finished_items(&self, step: &str) -> Result<BTreeMap<String, (String, Value)>, JournalError> {
        Ok(self.index.items.get(step).cloned().unwrap_or_default())
    }

    /// Calls of a step (by item, API name and target: one action may make several, one per
    /// account) whose intent was journaled and whose outcome was not: no finished step or item
    /// after it, and no refusal by AWS. `answered` when AWS's answer was journaled but the step
    /// never finished with it.
    pub fn unsettled(&self, step: &str) -> Result<Vec<Unsettled>, JournalError> {
        Ok(self.index.open.values().filter(|u| u.step == step).cloned().collect())
    }

    /// The open calls of every step, also of steps the runbook no longer has (a renamed id).
    pub fn unsettled_anywhere(&self) -> Result<Vec<Unsettled>, JournalError> {
        Ok(self.index.open.values().cloned().collect())
    }

    /// The state file is written after the transcript's `step-finished` line; a crash between
    /// the two leaves the step `running` in the state while the transcript holds its result. The
    /// transcript is the record: such a step is done again, with the hash and outputs it finished
    /// with (outputs that hold a mask stay secret, so the step runs or asks again as any secret
    /// step does). Without this, a resume would send a call by API name a second time. Returns
    /// the steps recovered.
    pub fn recover_finished(&mut self) -> Result<Vec<String>, JournalError> {
        let mut recovered = Vec::new();
        for (step, (hash, outputs, ts)) in self.index.finished.clone() {
            let Some(st) = self.state.steps.get_mut(&step) else {
                continue;
            };
            if st.status != StepStatus::Running {
                continue;
            }
            st.secret = outputs.to_string().contains(crate::redact::MASK);
            st.status = StepStatus::Done;
            st.hash = hash;
            st.outputs = outputs;
            st.finished = Some(ts);
            st.error = None;
            st.waiting_for = None;
            recovered.push(step);
        }
        if !recovered.is_empty() {
            self.save()?;
        }
        Ok(recovered)
    }
}
