//! Exit codes, as the book's CI page lists them (`book/src/ci.md`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done,
    StepFailed,
    Usage,
    WaitingForPerson,
    Interrupted,
    /// `plan --detailed-exitcode`: a run would change something (2, as Terraform's).
    ChangesPending,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Done => 0,
            Exit::StepFailed => 1,
            Exit::Usage => 2,
            Exit::WaitingForPerson => 3,
            Exit::Interrupted => 130,
            Exit::ChangesPending => 2,
        }
    }
}
