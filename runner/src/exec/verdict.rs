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

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [StepVerdict; 11] = [
        StepVerdict::Done,
        StepVerdict::Exists,
        StepVerdict::WouldCreate,
        StepVerdict::WouldChange,
        StepVerdict::Check,
        StepVerdict::Computed,
        StepVerdict::Person,
        StepVerdict::Skipped,
        StepVerdict::Unknown,
        StepVerdict::Error,
        StepVerdict::Fails,
    ];

    #[test]
    fn a_plugins_verdict_is_the_plans_of_the_same_name() {
        let mapped = [
            Verdict::Exists,
            Verdict::WouldCreate,
            Verdict::WouldChange,
            Verdict::Check,
            Verdict::Unknown,
        ]
        .map(StepVerdict::from_plugin);
        assert_eq!(
            mapped,
            [
                StepVerdict::Exists,
                StepVerdict::WouldCreate,
                StepVerdict::WouldChange,
                StepVerdict::Check,
                StepVerdict::Unknown,
            ]
        );
    }

    /// A fan-out keeps its strongest item: a change or a person over "unknown" over a read over
    /// everything that does nothing.
    #[test]
    fn rank_orders_what_a_run_would_do() {
        let ranks: Vec<(StepVerdict, u8)> = ALL.iter().map(|v| (*v, v.rank())).collect();
        assert_eq!(
            ranks,
            vec![
                (StepVerdict::Done, 0),
                (StepVerdict::Exists, 0),
                (StepVerdict::WouldCreate, 3),
                (StepVerdict::WouldChange, 3),
                (StepVerdict::Check, 1),
                (StepVerdict::Computed, 0),
                (StepVerdict::Person, 3),
                (StepVerdict::Skipped, 0),
                (StepVerdict::Unknown, 2),
                (StepVerdict::Error, 0),
                (StepVerdict::Fails, 0),
            ]
        );
    }

    /// `--detailed-exitcode`'s "something would change": a change, a person, a read AWS refused;
    /// "unknown" only where the step acts.
    #[test]
    fn pending_is_a_change_a_person_or_a_failure_and_unknown_only_where_the_step_acts() {
        let pending: Vec<StepVerdict> = ALL.iter().copied().filter(|v| v.pending(false)).collect();
        assert_eq!(
            pending,
            vec![
                StepVerdict::WouldCreate,
                StepVerdict::WouldChange,
                StepVerdict::Person,
                StepVerdict::Fails
            ]
        );
        let acting: Vec<StepVerdict> = ALL.iter().copied().filter(|v| v.pending(true)).collect();
        assert_eq!(
            acting,
            vec![
                StepVerdict::WouldCreate,
                StepVerdict::WouldChange,
                StepVerdict::Person,
                StepVerdict::Unknown,
                StepVerdict::Fails
            ]
        );
    }

    #[test]
    fn json_words_are_kebab_case() {
        let words: Vec<String> = ALL.iter().map(|v| word(*v)).collect();
        assert_eq!(
            words,
            [
                "done",
                "exists",
                "would-create",
                "would-change",
                "check",
                "computed",
                "person",
                "skipped",
                "unknown",
                "error",
                "fails"
            ]
        );
    }
}
