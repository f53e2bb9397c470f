//! `verify`: a plan of a new run of a finished record, read as a check of the end state it
//! left. Reads read again and are compared with what the run read; built-in actions look and
//! say whether they would create or change; a person's step whose `verify` names a check runs
//! that check. Nothing changes AWS: the plan's gate refuses every change.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Shared;
use super::verdict::{READ_BUDGET, Row, StepVerdict};
use crate::journal::StepStatus;
use crate::model::{Executor, Family, Step};

/// What `verify` found of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// AWS holds what the run left (or the step's record is trusted: a person's confirmation
    /// without a check, a call by name that changed AWS).
    AsRecorded,
    /// AWS differs: an action would create or change, a read answers otherwise, a check fails.
    Drifted,
    /// Could not be looked at here (it depends on a value only a run knows, its answer is
    /// secret): listed, not counted.
    NotChecked,
    /// The runbook could not be walked here.
    Error,
}

impl Finding {
    pub fn of(row: &Row) -> Finding {
        if row.drifted {
            return Finding::Drifted;
        }
        match row.verdict {
            StepVerdict::Done
            | StepVerdict::Exists
            | StepVerdict::Check
            | StepVerdict::Computed
            | StepVerdict::Skipped => Finding::AsRecorded,
            StepVerdict::WouldCreate | StepVerdict::WouldChange | StepVerdict::Person | StepVerdict::Fails => {
                Finding::Drifted
            }
            StepVerdict::Unknown => Finding::NotChecked,
            StepVerdict::Error => Finding::Error,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Finding::AsRecorded => "as recorded",
            Finding::Drifted => "drifted",
            Finding::NotChecked => "not checked",
            Finding::Error => "error",
        }
    }
}

/// A read of AWS that finished in the recorded run and answers otherwise now. Only reads that
/// feed no change are compared: they check the end state (a read that feeds a change saw AWS
/// before the change, as offboarding's look-up of the user it then removes). Only AWS reads (a
/// network check's timings vary), and only answers that are not secret (a mask is never
/// compared).
pub(super) fn read_drift(shared: &Shared, step: &Step, now: &Value, row: &mut Row) {
    if shared.fresh.contains(&step.id) {
        return;
    }
    if !matches!(
        step.executor,
        Executor::Action {
            family: Family::Aws,
            ..
        }
    ) {
        return;
    }
    let Some(st) = shared.step_state(&step.id) else {
        return;
    };
    if st.status != StepStatus::Done || st.secret || &st.outputs == now {
        return;
    }
    row.drifted = true;
    row.details.push(format!(
        "answers otherwise than in the run: {}",
        difference(&st.outputs, now)
    ));
}

/// The first few members that differ, `name: was → now`.
fn difference(was: &Value, now: &Value) -> String {
    let (Value::Object(a), Value::Object(b)) = (was, now) else {
        return format!("{} → {}", short(was), short(now));
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let null = Value::Null;
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(3)
        .map(|k| {
            format!(
                "{k}: {} → {}",
                short(a.get(k).unwrap_or(&null)),
                short(b.get(k).unwrap_or(&null))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// A person's step that finished: its `verify` check (an `aws SERVICE.ACTION` or `net ACTION`
/// that fails when what the person did is not so) runs again, through the plan's gate.
pub(super) async fn person_check(shared: &Arc<Shared>, step: &Step, row: &mut Row) {
    let Some(m) = crate::manual::parse(&shared.source, step, &mut Vec::new()) else {
        return;
    };
    let Some(v) = &m.verify else {
        row.details
            .push("a person's confirmation: trusted (no `verify` check to run)".into());
        return;
    };
    let checked = match crate::manual::verify_action(v) {
        Err(bad) => Err(bad.to_string()),
        Ok(name) => match shared.registry.get(&name) {
            None => Err(format!("unknown action `{name}`")),
            Some(action) => {
                let ctx = shared.context_for(step, None, None);
                match tokio::time::timeout(READ_BUDGET, action.apply(&ctx, json!({}))).await {
                    Ok(Ok(_)) => Ok(name),
                    Ok(Err(e)) => Err(format!("`{name}` disagrees: {e}")),
                    Err(_) => Err(format!("`{name}` did not answer in time")),
                }
            }
        },
    };
    match checked {
        Ok(name) => row.details.push(format!("its check `{name}` agrees")),
        Err(why) => {
            row.drifted = true;
            row.details.push(format!("confirmed in the run, but its check {why}"));
        }
    }
}
