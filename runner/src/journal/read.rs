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
        type Key = (Option<String>, String, String);
        let mut open: BTreeMap<Key, Unsettled> = BTreeMap::new();
        for l in self.lines()? {
            match l.entry {
                Entry::Intent {
                    step: s,
                    item_key,
                    call,
                    target,
                } if s == step => {
                    open.insert(
                        (item_key.clone(), call.clone(), target.clone()),
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
                    step: s,
                    item_key,
                    call,
                    target,
                    ..
                } if s == step => {
                    if let Some(u) = open.get_mut(&(item_key, call, target)) {
                        u.answered = true;
                    }
                }
                Entry::Rejected {
                    step: s,
                    item_key,
                    call,
                    target,
                    ..
                } if s == step => {
                    open.remove(&(item_key, call, target));
                }
                Entry::ItemFinished { step: s, item_key, .. } if s == step => {
                    let item = Some(item_key);
                    open.retain(|(k, _, _), _| *k != item);
                }
                Entry::StepFinished { step: s, .. } if s == step => open.clear(),
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
