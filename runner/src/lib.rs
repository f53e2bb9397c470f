//! runbook: literate runbooks. One Markdown file is both the documentation an operator reads and
//! the automation they run. This crate reads runbooks (parser, model, analyzer), runs them
//! (executor, journal, prompts, progress) and renders them; `runbook-plugins` does the AWS work.

pub mod analyzer;
mod cli;
mod commands;
pub mod diagnostic;
// Public for the test suite's fault proxy, which stands on the emulator's wire and rules.
#[doc(hidden)]
pub mod emulator;
mod eval;
mod exec;
mod exit;
mod export;
mod inputs;
pub mod interp;
pub mod journal;
mod limits_file;
pub mod links;
pub mod load;
pub mod manual;
mod markup;
pub mod model;
pub mod parser;
mod paths;
mod placement;
mod policy;
mod prompt;
mod prose;
pub mod redact;
pub mod render;
mod sandbox;
pub mod source;
mod suggest;
mod text;
mod ui;

use std::ffi::OsString;

use clap::Parser as _;

pub use exit::Exit;

/// Runs the command line and returns the process exit code. Callable more than once (tests).
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => Exit::Usage.code(),
            };
        }
    };
    commands::dispatch(cli).code()
}
