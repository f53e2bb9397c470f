//! `runbook permissions FILE...`: the IAM policy a run of these runbooks needs, as
//! [`crate::policy`] computes it, with the steps that need each action. Nothing is sent to AWS.

use std::path::PathBuf;

use super::analyse;
use super::error::CommandError;
use crate::diagnostic::report;
use crate::policy::{needs, policy};

pub(super) fn permissions(paths: &[PathBuf], json: bool, color: bool) -> Result<(), CommandError> {
    if paths.is_empty() {
        return Err(CommandError::Usage(
            "name the runbooks: runbook permissions FILE... (e.g. runbooks/part-2-identity-center.md)".into(),
        ));
    }
    let (books, diags) = analyse(paths);
    if report(&diags, color) {
        return Err(CommandError::Diagnosed);
    }
    let needs = needs(&books).map_err(CommandError::Failed)?;
    let policy = policy(&needs);
    let doc = serde_json::to_string_pretty(&policy).map_err(|e| CommandError::Failed(e.to_string()))?;
    if policy.statement.is_empty() {
        // IAM refuses a policy without statements: say so rather than print one to attach.
        eprintln!("note: a run of these runbooks needs no IAM permission (its AWS steps only ask who the caller is)");
    }
    if json {
        let _ = crate::ui::print_out(&doc);
        return Ok(());
    }
    let mut out = String::new();
    for n in &needs {
        let said = if n.actions.is_empty() && n.role.is_none() {
            "(needs no permission)".to_string()
        } else {
            n.actions.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!(
            "{}:{}  {}  {}  {}\n",
            crate::text::sanitize(&n.file),
            n.line,
            crate::text::sanitize(&n.step),
            crate::text::sanitize(&n.what),
            said
        ));
        if let Some((role, acts)) = &n.role {
            out.push_str(&format!(
                "    as {}: {} (that role's policy, not yours)\n",
                crate::text::sanitize(role),
                acts.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    out.push_str("\nThe IAM policy for the caller (`--json` prints it alone):\n");
    out.push_str(&doc);
    let _ = crate::ui::print_out(&out);
    Ok(())
}
