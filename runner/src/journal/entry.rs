//! What the journal holds: a step's status and record, a run's state, and the transcript's
//! lines (every write and every read goes through [`Entry`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Running,
    Done,
    Skipped,
    Failed,
    Waiting,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepState {
    pub status: StepStatus,
    /// The step's identity (a keyed digest of what it resolved to) when it last ran.
    pub hash: String,
    #[serde(default)]
    pub outputs: Value,
    pub started: Option<String>,
    pub finished: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// The outputs hold secrets, stored masked: the step runs (or asks) again on resume, since
    /// a mask is never a value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// The `on-failure=` runbook this step continued into: `path (run NAME): outcome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_into: Option<String>,
}

impl StepState {
    pub fn new(status: StepStatus, hash: impl Into<String>) -> StepState {
        StepState {
            status,
            hash: hash.into(),
            outputs: Value::Null,
            started: None,
            finished: None,
            error: None,
            waiting_for: None,
            secret: false,
            continued_into: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub runbook: String,
    /// The run instance's name (`--run`, a key input's value, or `default`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub rehearsal: bool,
    pub run_id: String,
    pub started: String,
    pub updated: String,
    /// Input values; secrets are never stored (see `secret_inputs`).
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// Keyed digests of secret inputs, so that a change can be reported without the value.
    #[serde(default)]
    pub secret_inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub steps: BTreeMap<String, StepState>,
    /// Set when the run ended: done, failed, waiting, interrupted.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// One line of the transcript. Every write and every read goes through this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    RunStarted {
        runbook: String,
        name: String,
        user: String,
        rehearsal: bool,
    },
    /// Inputs that differ from the previous run (secrets as "changed", never a value).
    InputsChanged {
        changes: Vec<String>,
    },
    StepStarted {
        step: String,
        hash: String,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    StepFinished {
        step: String,
        hash: String,
        outputs: Value,
    },
    StepFailed {
        step: String,
        error: String,
    },
    Waiting {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
        for_: Option<String>,
    },
    Confirmed {
        step: String,
        question: String,
        who: Value,
        via: String,
        answers: Value,
    },
    /// About to make a mutating call: fsynced before the call is sent.
    Intent {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        call: String,
        target: String,
    },
    Requested {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        call: String,
        target: String,
        request_id: Option<String>,
    },
    /// AWS refused a mutating call: nothing was done, so the intent before it is settled.
    Rejected {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        call: String,
        target: String,
        code: String,
    },
    Note {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        message: String,
    },
    Warning {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        message: String,
    },
    ItemFinished {
        step: String,
        hash: String,
        item_key: String,
        outputs: Value,
    },
    ItemFailed {
        step: String,
        item_key: String,
        error: String,
    },
    FanoutSummary {
        step: String,
        summary: Value,
    },
    Log {
        step: String,
        message: String,
    },
    Interrupted {
        step: String,
    },
    /// A failed (or refused) step's `on-failure=` runbook was run next, as its own run.
    ContinuedInto {
        step: String,
        runbook: String,
        run: String,
        outcome: String,
    },
    RunFinished {
        outcome: String,
    },
    /// `--restart`: every step and item starts over from here (calls whose outcome is unknown
    /// stay unknown).
    Restarted {},
}

impl Entry {
    /// Whether the line must be on disk before the tool goes on (intents before their call,
    /// results before the next step relies on them).
    pub(super) fn durable(&self) -> bool {
        !matches!(
            self,
            Entry::StepStarted { .. }
                | Entry::StepSkipped { .. }
                | Entry::Note { .. }
                | Entry::Warning { .. }
                | Entry::Log { .. }
                | Entry::FanoutSummary { .. }
        )
    }
}

/// A call whose outcome the journal does not know (see [`Journal::unsettled`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    pub step: String,
    pub item_key: Option<String>,
    pub call: String,
    pub target: String,
    /// When the intent was journaled.
    pub at: String,
    pub answered: bool,
}

/// A transcript line: when, which run, and the entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub ts: String,
    pub run: String,
    #[serde(flatten)]
    pub entry: Entry,
}
