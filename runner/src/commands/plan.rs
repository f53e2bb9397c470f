//! `runbook plan`: what a run would do, from reads and scripts, never a change.

use std::collections::BTreeMap;

use runbook_plugins::Context;
use serde_json::json;

use super::error::CommandError;
use super::{aws_options, limits, load_checked, located, pick_run, poll_settings};
use crate::cli::PlanArgs;
use crate::journal::Journal;
use crate::{inputs, journal};

pub async fn plan(args: PlanArgs, color: bool) -> Result<(), CommandError> {
    let detailed = args.detailed_exitcode;
    match planned(args, color).await {
        // A CI gate reads 2 as "changes pending": nothing else may exit 2 then (as terraform).
        Err(CommandError::Usage(m)) if detailed => Err(CommandError::Failed(m)),
        Err(CommandError::Diagnosed) if detailed => Err(CommandError::StepFailed),
        r => r,
    }
}

/// A plan walked: the report, what changed in the inputs, and the runbook's names.
pub(super) struct Walked {
    pub report: crate::exec::planning::Report,
    pub changes: Vec<String>,
    pub title: String,
    pub path: String,
    /// When the record walked (the run a new run would continue) last finished a run.
    pub finished: Option<String>,
}

/// Walks the runbook as a run would, changing nothing (`plan`; with `verify`, a finished
/// record's end state checked).
pub(super) async fn walk(args: &PlanArgs, color: bool, verify: bool) -> Result<Walked, CommandError> {
    let (source, runbook) = load_checked(&args.file, color)?;
    let runbook_dir = located(&args.state_dir, &runbook)?;
    let last = pick_run(&runbook_dir, args.run.as_deref(), false).map_err(|e| CommandError::Usage(e.to_string()))?;
    let state = last.as_ref().map(|r| r.state.clone());
    if last.is_none()
        && args.run.is_none()
        && Journal::runs(&runbook_dir).is_ok_and(|runs| runs.iter().any(|r| r.state.rehearsal))
    {
        // Not quietly: the operator last saw this runbook against the emulator.
        eprintln!(
            "plan: this runbook has only been rehearsed (against an emulator, gone since); this plan reads real AWS, {}",
            match (&args.aws.profile, &args.aws.endpoint_url) {
                (_, Some(e)) => format!("at {e}"),
                (Some(p), None) => format!("with profile {p}"),
                (None, None) => "with the default credentials".to_string(),
            }
        );
    }
    let limits = limits(&args.aws, color)?;
    let ctx = Context::with_limits(aws_options(&args.aws), &runbook_dir, poll_settings(), limits);
    if args.check_permissions {
        super::preflight::check(&ctx, &super::preflight::remaining(&runbook, state.as_ref(), false)).await?;
    }
    let answers = match &args.answers {
        Some(p) => inputs::Answers::load(p).map_err(|e| CommandError::Usage(e.to_string()))?,
        None => inputs::Answers::default(),
    };
    let flags = inputs::flags(&args.inputs)
        .and_then(|f| inputs::check_known(&runbook.settings.inputs, &f, &answers).map(|()| f))
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let changes = input_changes(&runbook, state.as_ref(), &flags, &answers)?;
    let title = runbook.title.clone();
    let path = runbook.path.clone();
    let finished = last.as_ref().map(|r| r.state.updated.clone());
    let last = last.map(|r| (r.dir, r.state));
    let walked = crate::exec::planning::plan(
        source,
        runbook,
        ctx,
        crate::exec::planning::PlanOptions {
            state_dir: args.state_dir.clone(),
            last,
            answers,
            flags,
            color,
            verify,
        },
    )
    .await
    .map_err(|e| match e {
        crate::exec::planning::PlanError::Usage(m) => CommandError::Usage(m),
        e @ crate::exec::planning::PlanError::Identity(_) => CommandError::Failed(format!(
            "{e}\n  = help: AWS did not answer; run the plan again when it does"
        )),
    })?;
    Ok(Walked {
        report: walked,
        changes,
        title,
        path,
        finished,
    })
}

async fn planned(args: PlanArgs, color: bool) -> Result<(), CommandError> {
    let redactor = crate::redact::Redactor::global();
    let say = |s: &str| {
        let _ = crate::ui::print_out(&redactor.text(&crate::text::sanitize(s)));
    };
    let Walked {
        report: walked,
        changes,
        title,
        path,
        ..
    } = walk(&args, color, false).await?;
    if args.json {
        let v = json!({ "runbook": path, "changes": changes, "pending": walked.pending, "steps": walked.rows });
        say(&serde_json::to_string_pretty(&redactor.value(&v)).unwrap_or_default());
    } else {
        say(&format!("plan for {title} ({path})"));
        for c in &changes {
            say(&format!("  changed since the last run: {c}"));
        }
        for r in &walked.rows {
            let what = match (&r.action, r.items) {
                (Some(a), Some(n)) => format!("{} {a} × {n}", r.kind),
                (Some(a), None) => format!("{} {a}", r.kind),
                (None, Some(n)) => format!("{} × {n}", r.kind),
                (None, None) => r.kind.clone(),
            };
            say(&format!(
                "  {:<32} {:<13} {what}",
                r.step,
                crate::exec::planning::word(r.verdict)
            ));
            for d in &r.details {
                say(&format!("  {:<32} {:<13}   {d}", "", ""));
            }
        }
        say(&if walked.errors {
            "some steps could not be planned (see above)".to_string()
        } else if walked.pending {
            "changes pending: a run would change AWS or ask a person".to_string()
        } else {
            "nothing to do".to_string()
        });
    }
    if walked.errors {
        Err(CommandError::StepFailed)
    } else if walked.pending && args.detailed_exitcode {
        Err(CommandError::ChangesPending)
    } else {
        Ok(())
    }
}

/// What changed in the inputs since the run a new run would continue (secrets as "changed").
fn input_changes(
    runbook: &crate::model::Runbook,
    state: Option<&journal::State>,
    flags: &BTreeMap<String, String>,
    answers: &inputs::Answers,
) -> Result<Vec<String>, CommandError> {
    let Some(s) = state else { return Ok(Vec::new()) };
    let src = inputs::Sources {
        flags,
        answers,
        stored: &s.inputs,
    };
    let resolved = inputs::resolve(
        &runbook.settings.inputs,
        None,
        &src,
        inputs::WhenMissing::Leave,
        &|_, _| Err(std::io::Error::other("plan asks nothing")),
    )
    .map_err(|e| CommandError::Usage(crate::text::sanitize(&e.to_string())))?;
    let mut changes =
        crate::exec::identity::input_changes(&s.inputs, &BTreeMap::new(), &resolved.values, &BTreeMap::new());
    let d = crate::exec::Digester::new(None);
    for (k, v) in &resolved.secrets {
        crate::redact::Redactor::global().add(v.expose());
        if s.secret_inputs
            .get(k)
            .is_some_and(|old| crate::exec::Digester::value_changed(old, &d.value(k, v.expose())) == Some(true))
        {
            changes.push(format!("{k}: changed (secret)"));
        }
    }
    for k in s.secret_inputs.keys() {
        if !resolved.secrets.contains_key(k) && runbook.settings.inputs.contains_key(k) {
            changes.push(format!(
                "{k}: not given (a secret: the journal never keeps it; give it with --answers or the environment)"
            ));
        }
    }
    Ok(changes)
}
