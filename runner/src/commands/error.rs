//! How a command ends when it does not simply succeed: the one place an exit code is chosen
//! (the table in `book/src/ci.md`), and the one place a command's closing message is printed.

use crate::exit::Exit;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
    /// A step failed; the run's screen and journal said so.
    #[error("")]
    StepFailed,
    /// The run stopped to wait for a person (an unknown outcome to check, a manual step).
    #[error("")]
    WaitingForPerson,
    /// Ctrl-C; the run said where it stopped.
    #[error("")]
    Interrupted,
    /// `plan --detailed-exitcode`: a run would change something.
    #[error("")]
    ChangesPending,
}

impl CommandError {
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Usage(_) | CommandError::Diagnosed => Exit::Usage,
            CommandError::Failed(_) | CommandError::StepFailed => Exit::StepFailed,
            CommandError::WaitingForPerson => Exit::WaitingForPerson,
            CommandError::Interrupted => Exit::Interrupted,
            CommandError::ChangesPending => Exit::ChangesPending,
        }
    }

    /// The message to print, for the variants that carry one.
    pub fn message(&self) -> Option<&str> {
        match self {
            CommandError::Usage(m) | CommandError::Failed(m) => Some(m),
            _ => None,
        }
    }

    /// A run's outcome, as the executor's step loop decided it (and reported it).
    pub fn from_run(exit: Exit) -> Result<(), CommandError> {
        match exit {
            Exit::Done => Ok(()),
            Exit::StepFailed => Err(CommandError::StepFailed),
            Exit::Usage => Err(CommandError::Diagnosed),
            Exit::WaitingForPerson => Err(CommandError::WaitingForPerson),
            Exit::Interrupted => Err(CommandError::Interrupted),
            Exit::ChangesPending => Err(CommandError::ChangesPending),
        }
    }
}

/// The exit of a command's result, its message printed once to stderr.
pub fn finish(result: Result<(), CommandError>) -> Exit {
    match result {
        Ok(()) => Exit::Done,
        Err(e) => {
            if let Some(m) = e.message() {
                eprintln!("runbook: {}", crate::text::sanitize(m));
            }
            e.exit()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ending_has_the_exit_code_design_md_lists() {
        let codes = [
            (CommandError::Usage("x".into()), 2),
            (CommandError::Diagnosed, 2),
            (CommandError::Failed("x".into()), 1),
            (CommandError::StepFailed, 1),
            (CommandError::WaitingForPerson, 3),
            (CommandError::Interrupted, 130),
            (CommandError::ChangesPending, 2),
        ];
        for (e, code) in codes {
            assert_eq!(e.exit().code(), code, "{e:?}");
        }
        assert_eq!(finish(Ok(())).code(), 0);
    }

    #[test]
    fn a_run_outcome_maps_back_to_the_same_exit() {
        for exit in [
            Exit::Done,
            Exit::StepFailed,
            Exit::Usage,
            Exit::WaitingForPerson,
            Exit::Interrupted,
            Exit::ChangesPending,
        ] {
            let back = CommandError::from_run(exit).err().map_or(Exit::Done, |e| e.exit());
            assert_eq!(back, exit);
        }
    }
}
