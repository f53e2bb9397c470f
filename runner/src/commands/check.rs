//! `runbook check`: every diagnostic, located, and a count.

use std::path::PathBuf;

use super::error::CommandError;
use super::{analyse, plural};
use crate::diagnostic::report;

pub(super) fn check(paths: &[PathBuf], json: bool, color: bool) -> Result<(), CommandError> {
    let (books, diags) = analyse(paths);
    // A capped file's closing note counts what it left out.
    let errors: usize = diags
        .iter()
        .map(|d| {
            if d.is_note() {
                d.hidden_errors
            } else {
                usize::from(d.is_error())
            }
        })
        .sum();
    let warnings: usize = diags
        .iter()
        .map(|d| {
            if d.is_note() {
                d.hidden_warnings
            } else {
                usize::from(!d.is_error())
            }
        })
        .sum();
    if json {
        // A closed pipe is not an error (`runbook check --json | head`).
        let _ = crate::ui::print_out(&serde_json::to_string_pretty(&diags).unwrap_or_else(|_| "[]".into()));
    } else {
        report(&diags, color);
        let steps: usize = books.iter().map(|b| b.steps.len()).sum();
        eprintln!(
            "checked {} runbook{} ({} step{}): {} error{}, {} warning{}",
            books.len(),
            plural(books.len()),
            steps,
            plural(steps),
            errors,
            plural(errors),
            warnings,
            plural(warnings)
        );
    }
    if errors > 0 {
        Err(CommandError::Diagnosed)
    } else {
        Ok(())
    }
}
