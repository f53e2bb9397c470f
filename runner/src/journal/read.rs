//! Reading a run's transcript: its lines, finished fan-out items, calls whose outcome is not
//! settled, steps that finished before the state file was saved.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Journal {
    pub fn lines(&self) -> Result<Vec<Line>, JournalError> {
        read_lines(&self.dir.join("transcript.jsonl"))
    }

    /// Items of a fan-out step already finished, by item key, with the identity each had.
    pub fn finished_items(&self, step: &str) -> Result<BTreeMap<String, (String, Value)>, JournalError> {
        let mut out = BTreeMap::new();
        for l in self.lines()? {
            if let Entry::ItemFinished {
                step: s,
                hash,
                item_key,
                outputs,
            } = l.entry
            {
                if s == step {
                    out.insert(item_key, (hash, outputs));
                }
            }
        }
        Ok(out)
    }

    /// Calls of a step (by item, API name and target: one action may make several, one per
    /// account) whose intent was journaled and whose outcome was not: no finished step or item
    /// after it, and no refusal by AWS. `answered` when AWS's answer was journaled but the step
    /// never finished with it.
    pub fn unsettled(&self, step: &str) -> Result<Vec<Unsettled>, JournalError> {
        self.open_calls(Some(step))
    }

    /// The open calls of every step, also of steps the runbook no longer has (a renamed id).
    pub fn unsettled_anywhere(&self) -> Result<Vec<Unsettled>, JournalError> {
        self.open_calls(None)
    }

    fn open_calls(&self, only: Option<&str>) -> Result<Vec<Unsettled>, JournalError> {
        type Key = (String, Option<String>, String, String);
        let mut open: BTreeMap<Key, Unsettled> = BTreeMap::new();
        let wanted = |s: &str| only.is_none_or(|w| w == s);
        for l in self.lines()? {
            match l.entry {
                Entry::Intent {
                    step,
                    item_key,
                    call,
                    target,
                } if wanted(&step) => {
                    open.insert(
                        (step, item_key.clone(), call.clone(), target.clone()),
                        Unsettled {
                            item_key,
                            call,
                            target,
                            at: l.ts,
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
                } if wanted(&step) => {
                    if let Some(u) = open.get_mut(&(step, item_key, call, target)) {
                        u.answered = true;
                    }
                }
                Entry::Rejected {
                    step,
                    item_key,
                    call,
                    target,
                    ..
                } if wanted(&step) => {
                    open.remove(&(step, item_key, call, target));
                }
                Entry::ItemFinished { step, item_key, .. } if wanted(&step) => {
                    let item = Some(item_key);
                    open.retain(|(s, k, _, _), _| *s != step || *k != item);
                }
                Entry::StepFinished { step, .. } if wanted(&step) => open.retain(|(s, _, _, _), _| *s != step),
                _ => {}
            }
        }
        Ok(open.into_values().collect())
    }

    /// The state file is written after the transcript's `step-finished` line; a crash between
    /// the two leaves the step `running` in the state while the transcript holds its result. The
    /// transcript is the record: such a step is done again, with the hash and outputs it finished
    /// with (outputs that hold a mask stay secret, so the step runs or asks again as any secret
    /// step does). Without this, a resume would send a call by API name a second time. Returns
    /// the steps recovered.
    pub fn recover_finished(&mut self) -> Result<Vec<String>, JournalError> {
        let mut finished: BTreeMap<String, (String, Value, String)> = BTreeMap::new();
        for l in self.lines()? {
            match l.entry {
                Entry::StepStarted { step, .. } => {
                    finished.remove(&step);
                }
                Entry::StepFinished { step, hash, outputs } => {
                    finished.insert(step, (hash, outputs, l.ts));
                }
                _ => {}
            }
        }
        let mut recovered = Vec::new();
        for (step, (hash, outputs, ts)) in finished {
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
