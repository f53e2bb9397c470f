//! What `plan` (and `verify`) says of each step: the typed verdict and the row it is shown in.

use std::time::Duration;

use runbook_plugins::Verdict;

/// How long a read may read during a plan (a wait-for action would otherwise wait).
pub(super) const READ_BUDGET: Duration = Duration::from_secs(5);

/// What `plan` says of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepVerdict {
    /// Finished before and would do the same: a run reuses it.
    Done,
    Exists,
    WouldCreate,
    WouldChange,
    /// A read: done now, nothing changes.
    Check,
    /// A script: computed now.
    Computed,
    /// A person would be asked.
    Person,
    Skipped,
    /// Depends on what only a run knows.
    Unknown,
    /// The runbook cannot be planned here (a bad parameter, an unknown action).
    Error,
    /// AWS said no to a read: a run would fail here too.
    Fails,
}

impl StepVerdict {
    pub(super) fn from_plugin(v: Verdict) -> StepVerdict {
        match v {
            Verdict::Exists => StepVerdict::Exists,
            Verdict::WouldCreate => StepVerdict::WouldCreate,
            Verdict::WouldChange => StepVerdict::WouldChange,
            Verdict::Check => StepVerdict::Check,
            Verdict::Unknown => StepVerdict::Unknown,
        }
    }

    /// How much it says a run would do, to keep the strongest of a fan-out's items.
    pub(super) fn rank(self) -> u8 {
        match self {
            StepVerdict::WouldCreate | StepVerdict::WouldChange | StepVerdict::Person => 3,
            StepVerdict::Unknown => 2,
            StepVerdict::Check => 1,
            _ => 0,
        }
    }

    /// Whether a run would change AWS or ask a person here; `acts` is whether the step would
    /// (changes AWS, or is a person's) when what it would do is unknown.
    pub(super) fn pending(self, acts: bool) -> bool {
        match self {
            StepVerdict::WouldCreate | StepVerdict::WouldChange | StepVerdict::Person | StepVerdict::Fails => true,
            StepVerdict::Unknown => acts,
            _ => false,
        }
    }
}

/// One step of the plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub step: String,
    /// `aws (reads)`, `aws (changes)`, `net (checks)`, `script`, `person`.
    pub kind: String,
    pub action: Option<String>,
    pub verdict: StepVerdict,
    pub details: Vec<String>,
    /// Items of a fan-out, when it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
    /// The step changes AWS or asks a person (decides whether `unknown` is pending).
    #[serde(skip)]
    pub(super) acts: bool,
    /// Its script or read failed when the plan ran it (not a fault found before running it).
    #[serde(skip)]
    pub(super) failed_running: bool,
    /// `verify`: AWS differs from what the recorded run left here.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drifted: bool,
}

/// A verdict as `--json` writes it.
pub fn word(v: StepVerdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|x| x.as_str().map(String::from))
        .unwrap_or_default()
}
