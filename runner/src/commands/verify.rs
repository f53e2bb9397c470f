//! `runbook verify`: whether AWS still holds what a finished run left, for a nightly job.
//! Exit 0 as recorded, 2 drifted, 1 error (usage errors too: 2 means drift and nothing else).

use serde_json::{Value, json};

use super::error::CommandError;
use crate::cli::{PlanArgs, VerifyArgs};
use crate::exec::verifying::Finding;

pub async fn verify(args: VerifyArgs, color: bool) -> Result<(), CommandError> {
    match verified(args, color).await {
        Err(CommandError::Usage(m)) => Err(CommandError::Failed(m)),
        Err(CommandError::Diagnosed) => Err(CommandError::StepFailed),
        r => r,
    }
}

async fn verified(args: VerifyArgs, color: bool) -> Result<(), CommandError> {
    let json_out = args.json;
    let walked = super::plan::walk(&PlanArgs::from(args), color, true).await?;
    // Checked with other inputs than the run's, steps differ because the inputs do, not AWS:
    // that is an error to fix, never drift.
    if !walked.changes.is_empty() {
        return Err(CommandError::Failed(format!(
            "the inputs differ from the run's ({}); verify checks what that run left, with its inputs",
            walked.changes.join("; ")
        )));
    }
    let redactor = crate::redact::Redactor::global();
    let say = |s: &str| {
        let _ = crate::ui::print_out(&redactor.text(&crate::text::sanitize(s)));
    };
    let found: Vec<(Finding, &crate::exec::planning::Row)> =
        walked.report.rows.iter().map(|r| (Finding::of(r), r)).collect();
    let drifted: Vec<&str> = found
        .iter()
        .filter(|(f, _)| *f == Finding::Drifted)
        .map(|(_, r)| r.step.as_str())
        .collect();
    let errors = found.iter().any(|(f, _)| *f == Finding::Error);
    if json_out {
        let steps: Vec<Value> = found
            .iter()
            .map(|(f, r)| {
                json!({
                    "step": r.step,
                    "finding": f,
                    "verdict": r.verdict,
                    "action": r.action,
                    "details": r.details,
                })
            })
            .collect();
        let v = json!({
            "runbook": walked.path,
            "finished": walked.finished,
            "drifted": !drifted.is_empty(),
            "steps": steps,
        });
        say(&serde_json::to_string_pretty(&redactor.value(&v)).unwrap_or_default());
    } else {
        say(&format!(
            "verify {} ({}) against the run finished {}",
            walked.title,
            walked.path,
            walked.finished.as_deref().unwrap_or("earlier")
        ));
        for c in &walked.changes {
            say(&format!("  changed since the run: {c}"));
        }
        for (f, r) in &found {
            let mark = match f {
                Finding::AsRecorded => "✓",
                Finding::Drifted => "✗",
                Finding::NotChecked => "·",
                Finding::Error => "!",
            };
            say(&format!(
                "  {mark} {:<32} {:<12} {}",
                r.step,
                f.word(),
                crate::exec::planning::word(r.verdict)
            ));
            for d in &r.details {
                say(&format!("    {:<32} {:<12} {d}", "", ""));
            }
        }
        say(&if errors {
            "some steps could not be verified (see above)".to_string()
        } else if drifted.is_empty() {
            "as recorded: AWS holds what the run left".to_string()
        } else {
            format!(
                "drifted: {} of {} steps ({}); `runbook run {}` repairs what a run can",
                drifted.len(),
                found.len(),
                drifted.join(", "),
                walked.path
            )
        });
    }
    if errors {
        Err(CommandError::StepFailed)
    } else if !drifted.is_empty() {
        Err(CommandError::ChangesPending)
    } else {
        Ok(())
    }
}
