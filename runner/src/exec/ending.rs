//! How a run ends when it does not finish: one typed value per way, returned by the executor
//! and never printed by it. The command layer renders each (`commands/error.rs`, through the one
//! renderer of located messages for a step's failure) and chooses its exit code, both in one
//! place.

use crate::diagnostic::Diagnostic;

/// Why a run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// What was given (flags, the answers file, `--events`, `--run`, the state directory) is
    /// wrong; nothing was run.
    #[error("{0}")]
    Usage(String),
    /// `--events FILE` cannot be opened; nothing was run.
    #[error("--events {path}: {error}")]
    EventsFile { path: String, error: String },
    /// A step failed; located at the step (or, for a script, where it failed).
    #[error("{}", .0.diagnostic.message)]
    StepFailed(Box<StepFailure>),
    /// Who is calling could not be told because AWS did not answer; nothing was run.
    #[error("cannot tell which account the credentials are for: {0}")]
    CallerUnknown(String),
    /// The caller's identity failed while a step was prepared; the journal is unchanged.
    #[error("{0}")]
    Identity(String),
    /// Something failed that is no step's own failure (the run's first journal entries).
    #[error("{0}")]
    Failed(String),
    /// The journal could not record something: the run stopped before its next call.
    #[error("cannot write the journal ({message})")]
    Journal { message: String, journal: String },
    /// `--events` could not be written: the run stopped before its next call.
    #[error("{message}")]
    Events { message: String, journal: String },
    /// The run ended, but its last journal entry could not be written.
    #[error("the journal's last entry could not be written: {message}")]
    Unclosed {
        message: String,
        /// How the run ended before that, when it did not finish.
        ended: Option<Box<RunError>>,
    },
    /// A person has to act before the run can go on.
    #[error("{0}")]
    Waiting(Waiting),
    /// Ctrl-C (or SIGTERM, SIGHUP, a closed stdout).
    #[error("{0}")]
    Interrupted(Interruption),
    /// Runs `on-failure=` continued into ended this way, then the run itself as `then`.
    #[error("{then}")]
    Continued { runs: Vec<RunError>, then: Box<RunError> },
    /// A runbook `on-failure=` leads into has errors: its diagnostics, and that it was not run.
    #[error("cannot continue into {path}: it has errors")]
    NotContinued { path: String, diagnostics: Vec<Diagnostic> },
}

/// A step's failure, as the one renderer shows it: `path:line:col: error: step `x` failed: ...`,
/// the line, a caret, the help; then where `on-failure=` leads.
#[derive(Debug)]
pub struct StepFailure {
    pub diagnostic: Diagnostic,
    pub next: Option<Next>,
}

/// Where a failed step's `on-failure=` leads.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// `#anchor` in the same runbook.
    Anchor { anchor: String, runbook: String },
    /// Another runbook.
    Runbook(String),
}

/// Why a run waits for a person.
#[derive(Debug, thiserror::Error)]
pub enum Waiting {
    /// A step needs a person: to act and confirm, to answer a question, to say no.
    #[error("waiting for a person at step `{step}`: {reason}")]
    Step {
        step: String,
        reason: Wait,
        /// A rehearsal never resumes: the answer goes in the answers file.
        rehearsal: bool,
    },
    /// Before a step runs: whether to send a call again that cannot be told to be the same.
    #[error("waiting for a person: {0}")]
    Resend(String),
    /// An input has no value and nobody can be asked.
    #[error("{}", crate::inputs::ResolveError::Waiting(.0.clone()))]
    Input(String),
    /// `--step`: the operator quit.
    #[error("stopped; run the same command again to continue here")]
    Quit,
}

/// What a step waits for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Wait {
    /// A person has to act, confirm or answer; the message says how.
    #[error("{0}")]
    Person(String),
    /// A person answered no.
    #[error("{0}")]
    Refused(String),
    /// A call's outcome is unknown: a person checks AWS and says whether to send it again.
    #[error("{0}")]
    UnknownOutcome(String),
}

impl Wait {
    /// Whether the step's `on-failure=` runbook follows: a person's "no" leads into it (as a
    /// failure does); a person still to act, or an outcome nobody knows, does not.
    pub fn leads_on(&self) -> bool {
        matches!(self, Wait::Refused(_))
    }
}

/// Where an interruption stopped the run.
#[derive(Debug, thiserror::Error)]
pub enum Interruption {
    #[error("interrupted at {0}; the journal is saved, run again to resume")]
    Step(String),
    /// Ctrl-C at the prompt for an input.
    #[error("interrupted at input `{0}`")]
    Input(String),
}

impl RunError {
    /// The word the journal records for how the run ended (`run-finished`).
    pub fn outcome(&self) -> &'static str {
        match self {
            RunError::StepFailed(_)
            | RunError::CallerUnknown(_)
            | RunError::Identity(_)
            | RunError::Failed(_)
            | RunError::Journal { .. }
            | RunError::Events { .. }
            | RunError::Unclosed { .. } => "failed",
            RunError::Waiting(_) => "waiting",
            RunError::Interrupted(_) => "interrupted",
            RunError::Continued { then, .. } => then.outcome(),
            RunError::Usage(_) | RunError::EventsFile { .. } | RunError::NotContinued { .. } => "stopped",
        }
    }
}

/// The journal's word for a run's result.
pub fn outcome(result: &Result<(), RunError>) -> &'static str {
    match result {
        Ok(()) => "done",
        Err(e) => e.outcome(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Source, Span};

    fn failed_step() -> RunError {
        let source = Source::new("t.md", "# T\n\n```rhai id=a\n1\n```\n");
        RunError::StepFailed(Box::new(StepFailure {
            diagnostic: Diagnostic::error(&source, Span::new(5, 18), "step `a` failed: x"),
            next: None,
        }))
    }

    /// The journal's `run-finished` word for every way a run ends: what `runs` and a resume read.
    #[test]
    fn every_ending_has_its_journal_word() {
        let waiting = |w: Waiting| RunError::Waiting(w);
        let cases: Vec<(RunError, &str)> = vec![
            (RunError::Usage("bad flag".into()), "stopped"),
            (
                RunError::EventsFile {
                    path: "e".into(),
                    error: "denied".into(),
                },
                "stopped",
            ),
            (failed_step(), "failed"),
            (RunError::CallerUnknown("timeout".into()), "failed"),
            (RunError::Identity("sts".into()), "failed"),
            (RunError::Failed("x".into()), "failed"),
            (
                RunError::Journal {
                    message: "full".into(),
                    journal: "j".into(),
                },
                "failed",
            ),
            (
                RunError::Events {
                    message: "closed".into(),
                    journal: "j".into(),
                },
                "failed",
            ),
            (
                RunError::Unclosed {
                    message: "full".into(),
                    ended: None,
                },
                "failed",
            ),
            (
                waiting(Waiting::Step {
                    step: "a".into(),
                    reason: Wait::Person("confirm".into()),
                    rehearsal: false,
                }),
                "waiting",
            ),
            (waiting(Waiting::Resend("x".into())), "waiting"),
            (waiting(Waiting::Input("name".into())), "waiting"),
            (waiting(Waiting::Quit), "waiting"),
            (RunError::Interrupted(Interruption::Step("a".into())), "interrupted"),
            (RunError::Interrupted(Interruption::Input("n".into())), "interrupted"),
            (
                RunError::NotContinued {
                    path: "b.md".into(),
                    diagnostics: Vec::new(),
                },
                "stopped",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.outcome(), want, "{e:?}");
            assert_eq!(outcome(&Err(e)), want);
        }
        assert_eq!(outcome(&Ok(())), "done");
    }

    /// A run that continued into a follow-up ends as the run itself ended, whatever the
    /// follow-ups did.
    #[test]
    fn a_continued_run_ends_as_the_run_itself() {
        let continued = |then: RunError| RunError::Continued {
            runs: vec![failed_step(), RunError::Interrupted(Interruption::Step("x".into()))],
            then: Box::new(then),
        };
        assert_eq!(continued(failed_step()).outcome(), "failed");
        assert_eq!(continued(RunError::Waiting(Waiting::Quit)).outcome(), "waiting");
        assert_eq!(
            continued(RunError::Interrupted(Interruption::Step("a".into()))).outcome(),
            "interrupted"
        );
        assert_eq!(continued(RunError::Usage("u".into())).outcome(), "stopped");
    }

    #[test]
    fn a_step_that_waits_says_where_and_why() {
        let e = RunError::Waiting(Waiting::Step {
            step: "pin".into(),
            reason: Wait::Refused("the person answered no".into()),
            rehearsal: false,
        });
        assert_eq!(
            e.to_string(),
            "waiting for a person at step `pin`: the person answered no"
        );
        assert_eq!(
            RunError::Interrupted(Interruption::Step("pin".into())).to_string(),
            "interrupted at pin; the journal is saved, run again to resume"
        );
    }
}
