//! How a command ends when it does not simply succeed: the one place an exit code is chosen
//! (the table in `book/src/ci.md`), and the one place a command's closing message is printed,
//! a run's ending included (the executor returns a [`RunError`] and prints none).

use crate::exec::ending::{Interruption, Next, RunError, Waiting};
use crate::exit::Exit;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command line, a file or the state directory is wrong; nothing was done.
    #[error("{0}")]
    Usage(String),
    /// Diagnostics, already printed, said what is wrong with the runbooks; nothing was done.
    #[error("")]
    Diagnosed,
    /// Something failed while the command worked.
    #[error("{0}")]
    Failed(String),
    /// A step failed; the screen said so (`plan`, `verify`).
    #[error("")]
    StepFailed,
    /// How a run ended when it did not finish.
    #[error(transparent)]
    Run(#[from] RunError),
    /// `plan --detailed-exitcode`: a run would change something.
    #[error("")]
    ChangesPending,
}

impl CommandError {
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Usage(_) | CommandError::Diagnosed => Exit::Usage,
            CommandError::Failed(_) | CommandError::StepFailed => Exit::StepFailed,
            CommandError::ChangesPending => Exit::ChangesPending,
            CommandError::Run(e) => run_exit(e),
        }
    }

    /// The message to print, for the variants that carry one.
    pub fn message(&self) -> Option<&str> {
        match self {
            CommandError::Usage(m) | CommandError::Failed(m) => Some(m),
            _ => None,
        }
    }
}

/// The exit code of each way a run ends.
fn run_exit(e: &RunError) -> Exit {
    match e {
        RunError::Usage(_) | RunError::EventsFile { .. } | RunError::NotContinued { .. } => Exit::Usage,
        RunError::StepFailed(_)
        | RunError::CallerUnknown(_)
        | RunError::Identity(_)
        | RunError::Failed(_)
        | RunError::Journal { .. }
        | RunError::Events { .. }
        | RunError::Unclosed { ended: None, .. } => Exit::StepFailed,
        RunError::Unclosed { ended: Some(e), .. } | RunError::Continued { then: e, .. } => run_exit(e),
        RunError::Waiting(_) => Exit::WaitingForPerson,
        RunError::Interrupted(_) => Exit::Interrupted,
    }
}

/// How a run ended, as the person reads it: a step's failure through the one renderer of
/// located messages (the same form and caret as `check`), the rest as `runbook: ...` with what
/// to do next. Redacted (a message can quote a value AWS echoed back) and sanitized.
pub fn render(e: &RunError, color: bool) -> String {
    let mut out = String::new();
    write_run(&mut out, e, color);
    crate::redact::Redactor::global().text(out.trim_end())
}

fn write_run(out: &mut String, e: &RunError, color: bool) {
    let clean = crate::text::sanitize;
    match e {
        RunError::StepFailed(f) => {
            out.push_str(&f.diagnostic.render(color));
            match &f.next {
                Some(Next::Anchor { anchor, runbook }) => {
                    out.push_str(&clean(&format!("  = next: see #{anchor} in {runbook}\n")));
                }
                Some(Next::Runbook(path)) => {
                    out.push_str(&clean(&format!("  = next: read {path}, or run: runbook run {path}\n")));
                }
                None => {}
            }
        }
        RunError::CallerUnknown(_) => say(
            out,
            format!(
                "runbook: {e}\n  = help: AWS did not answer; run again when it does (nothing was run, and the journal is as it was)"
            ),
        ),
        RunError::Identity(_) => say(
            out,
            format!(
                "runbook: {e}\n  = help: check the credentials (`aws sts get-caller-identity --profile ...`), then run again; the journal is unchanged"
            ),
        ),
        RunError::Journal { journal, .. } => say(
            out,
            format!(
                "runbook: {e}\n  the run stopped before its next call; journal: {journal}\n  free space or fix the state directory, then run the same command again to resume"
            ),
        ),
        RunError::Events { journal, .. } => say(
            out,
            format!(
                "runbook: {e}\n  the run stopped before its next call; the journal has every step: {journal}\n  free space or fix the --events path, then run the same command again to resume"
            ),
        ),
        RunError::Unclosed { ended, .. } => {
            if let Some(ended) = ended {
                write_run(out, ended, color);
            }
            out.push_str(&clean(&format!("runbook: {e}\n")));
        }
        RunError::Waiting(Waiting::Step { rehearsal, .. }) => say(
            out,
            format!(
                "runbook: {e}\nrunbook: {}",
                if *rehearsal {
                    "a rehearsal starts over each time (its emulator starts empty): give the answer in the answers file and rehearse again"
                } else {
                    "the journal is saved; run the same command again to continue"
                }
            ),
        ),
        // Said as the run's own lines say where it stopped, not as an error.
        RunError::Waiting(Waiting::Quit) | RunError::Interrupted(Interruption::Step(_)) => say(out, e.to_string()),
        RunError::Continued { runs, then } => {
            for r in runs {
                write_run(out, r, color);
            }
            write_run(out, then, color);
        }
        RunError::NotContinued { diagnostics, .. } => {
            for d in diagnostics {
                out.push_str(&d.render(color));
            }
            out.push_str(&clean(&format!("runbook: {e}\n")));
        }
        RunError::Usage(_)
        | RunError::EventsFile { .. }
        | RunError::Failed(_)
        | RunError::Waiting(Waiting::Resend(_) | Waiting::Input(_))
        | RunError::Interrupted(Interruption::Input(_)) => say(out, format!("runbook: {e}")),
    }
}

/// A line (or lines) of ours around outside text, made safe for a terminal.
fn say(out: &mut String, s: String) {
    out.push_str(&crate::text::sanitize(&s));
    out.push('\n');
}

/// The exit of a command's result, its message printed once to stderr.
pub fn finish(result: Result<(), CommandError>, color: bool) -> Exit {
    match result {
        Ok(()) => Exit::Done,
        Err(e) => {
            if let CommandError::Run(run) = &e {
                eprintln!("{}", render(run, color));
            } else if let Some(m) = e.message() {
                eprintln!("runbook: {}", crate::text::sanitize(m));
            }
            e.exit()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::ending::{StepFailure, Wait};

    fn step_failed() -> RunError {
        let src = crate::source::Source::new("r.md", "# T\n\n```rhai id=bad\nlet x = nope;\n```\n");
        let diagnostic = crate::diagnostic::Diagnostic::error(
            &src,
            crate::source::Span::new(28, 32),
            "step `bad` failed: script: Variable not found: nope",
        );
        RunError::StepFailed(Box::new(StepFailure {
            diagnostic,
            next: Some(Next::Runbook("fix.md".into())),
        }))
    }

    #[test]
    fn each_ending_has_the_exit_code_the_ci_page_lists() {
        let waiting = RunError::Waiting(Waiting::Step {
            step: "s".into(),
            reason: Wait::UnknownOutcome("x".into()),
            rehearsal: false,
        });
        let codes = [
            (CommandError::Usage("x".into()), 2),
            (CommandError::Diagnosed, 2),
            (CommandError::Failed("x".into()), 1),
            (CommandError::StepFailed, 1),
            (CommandError::ChangesPending, 2),
            (RunError::Usage("x".into()).into(), 2),
            (step_failed().into(), 1),
            (waiting.into(), 3),
            (RunError::Waiting(Waiting::Input("x".into())).into(), 3),
            (RunError::Interrupted(Interruption::Step("s".into())).into(), 130),
            (RunError::Interrupted(Interruption::Input("s".into())).into(), 130),
            (
                RunError::Unclosed {
                    message: "x".into(),
                    ended: None,
                }
                .into(),
                1,
            ),
            (
                RunError::Unclosed {
                    message: "x".into(),
                    ended: Some(Box::new(RunError::Waiting(Waiting::Quit))),
                }
                .into(),
                3,
            ),
            (
                RunError::Continued {
                    runs: vec![step_failed()],
                    then: Box::new(RunError::Interrupted(Interruption::Step("s".into()))),
                }
                .into(),
                130,
            ),
        ];
        for (e, code) in codes {
            assert_eq!(e.exit().code(), code, "{e:?}");
        }
        assert_eq!(finish(Ok(()), false).code(), 0);
    }

    #[test]
    fn a_step_failure_is_located_with_its_caret_then_where_on_failure_leads() {
        assert_eq!(
            render(&step_failed(), false),
            r"r.md:4:9: error: step `bad` failed: script: Variable not found: nope
  |
4 | let x = nope;
  |         ^^^^
  = next: read fix.md, or run: runbook run fix.md"
        );
    }
}
