//! `on-failure=`: when a step fails, or a person answers "no" to it, the run can go on into the
//! runbook the step names (a troubleshooting runbook), as a run of its own beside the parent's:
//! offered at a terminal, taken with `--yes` or an answers file. The parent stays failed or
//! waiting; its step records where it continued, and the continued run can read what failed as
//! `run.failed` (`step`, `error`, `runbook`).

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::{RunError, RunOptions, Shared, StepError};
use crate::eval::Env;
use crate::journal::{self, Entry};
use crate::model::Step;

/// How deep continued runs may nest (a troubleshooting runbook may have its own).
const MAX_DEPTH: usize = 3;

/// The runbooks a runbook's `on-failure=` attributes name, loaded: their steps and inputs may
/// be answered in the parent's answers file.
pub fn linked(runbook: &crate::model::Runbook) -> Vec<crate::model::Runbook> {
    let mut out: Vec<crate::model::Runbook> = Vec::new();
    for step in &runbook.steps {
        let Some(t) = &step.attrs.on_failure else { continue };
        if t.value.starts_with('#') {
            continue;
        }
        let Ok(path) = crate::paths::resolve_within(Path::new(&runbook.path), t.value.split('#').next().unwrap_or(""))
        else {
            continue;
        };
        if out.iter().any(|r| Path::new(&r.path) == path) {
            continue;
        }
        if let Ok(source) = crate::load::read(&path) {
            out.push(crate::analyzer::check(&source, runbook_plugins::Registry::shared()).0);
        }
    }
    out
}

/// Runs the step's `on-failure=` runbook, when it names one and the operator wants it.
pub(super) async fn continue_into(shared: &Arc<Shared>, step: &Step, env: &Env, error: &str) {
    let Some(target) = &step.attrs.on_failure else { return };
    if target.value.starts_with('#') || shared.opts.depth >= MAX_DEPTH {
        return;
    }
    let Ok(path) = crate::paths::resolve_within(
        Path::new(&shared.runbook.path),
        target.value.split('#').next().unwrap_or(""),
    ) else {
        return;
    };
    let shown = path.display().to_string();
    let go = if shared.opts.yes || shared.opts.answers.is_some() {
        true
    } else if crate::prompt::interactive() {
        shared
            .ui
            .suspend(|| crate::prompt::confirm(&format!("Continue with {shown} now?")))
            .unwrap_or(false)
    } else {
        false
    };
    if !go {
        return;
    }
    let checked = match crate::analyzer::checked(&path) {
        Ok(c) if !c.diags.iter().any(crate::diagnostic::Diagnostic::is_error) => Ok(c),
        Ok(c) => Err(c.diags),
        Err(d) => Err(vec![d]),
    };
    let crate::analyzer::Checked {
        source,
        runbook,
        diags: warnings,
        ..
    } = match checked {
        Ok(c) => c,
        Err(diagnostics) => {
            // Shown with how the run ends, before it.
            let not = RunError::NotContinued {
                path: shown,
                diagnostics,
            };
            shared.continued.lock().unwrap_or_else(|p| p.into_inner()).push(not);
            return;
        }
    };
    // Its warnings, as `check` words them, before it runs: they are not why anything stops.
    for w in &warnings {
        shared.ui.block(w.render(false).trim_end());
    }
    // The inputs both runbooks declare carry over (never secrets: they are asked again).
    let mut inputs: Vec<String> = runbook
        .settings
        .inputs
        .keys()
        .filter(|k| !env.secret_inputs.contains(*k))
        .filter_map(|k| env.inputs.get(k).and_then(|v| v.as_str()).map(|v| format!("{k}={v}")))
        .collect();
    inputs.extend(
        shared
            .opts
            .inputs
            .iter()
            .filter(|f| {
                f.split_once('=')
                    .is_some_and(|(k, _)| runbook.settings.inputs.contains_key(k.trim()))
            })
            .cloned(),
    );
    let parent_run = shared.journal.lock().map(|j| j.state.name.clone()).unwrap_or_default();
    let name = journal::run_name(&format!("after-{parent_run}-{}", step.id));
    let opts = RunOptions {
        inputs,
        answers: shared.opts.answers.clone(),
        yes: shared.opts.yes,
        step_mode: false,
        // `other.md#step-id`: from that step (`check` made sure it is one).
        from: target.value.split_once('#').map(|(_, step)| step.to_string()),
        only: None,
        restart: false,
        max_in_flight: shared.opts.max_in_flight,
        state_dir: shared.opts.state_dir.clone(),
        color: shared.opts.color,
        rehearsal: shared.opts.rehearsal,
        run_name: Some(name.clone()),
        // The same stream as the run it continues (`run_with` is given the open sink).
        events: shared.opts.events.clone(),
        // Redacted before the continued run sees it (it could quote a secret AWS echoed back).
        failed: Some(json!({ "step": step.id, "error": shared.redactor.text(error), "runbook": shared.runbook.path })),
        depth: shared.opts.depth + 1,
    };
    shared
        .ui
        .line(&format!("continuing into {shown} (run {name}), as `on-failure=` says"));
    let ended = Box::pin(super::run_with(
        source,
        runbook,
        shared.ctx.clone(),
        opts,
        Some(shared.events.clone()),
    ))
    .await;
    let outcome = super::ending::outcome(&ended);
    let said = format!("{shown} (run {name}): {outcome}");
    shared
        .ui
        .line(&format!("back from {said}; `{}` stays as it was", step.id));
    let recorded = shared
        .record(Entry::ContinuedInto {
            step: step.id.clone(),
            runbook: shown,
            run: name,
            outcome: outcome.into(),
        })
        .and_then(|()| {
            let mut st = shared
                .step_state(&step.id)
                .ok_or_else(|| StepError::failed("no state"))?;
            st.continued_into = Some(said);
            shared.set_step_state(&step.id, st)
        });
    if let Err(e) = ended {
        shared.continued.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }
    if let Err(StepError::Journal(m)) = recorded {
        shared.ui.warn(&format!("journal: {m}"));
    }
}
