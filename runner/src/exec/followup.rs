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
    let declared: Vec<&str> = runbook.settings.inputs.keys().map(String::as_str).collect();
    let inputs = carried(&declared, env, &shared.opts.inputs);
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

/// The inputs a continued run is given: those both runbooks declare, with this run's values
/// (never secrets: they are asked again), then the `--input`s given for them.
fn carried(declared: &[&str], env: &Env, flags: &[String]) -> Vec<String> {
    let mut inputs: Vec<String> = declared
        .iter()
        .filter(|k| !env.secret_inputs.contains(**k))
        .filter_map(|k| env.inputs.get(*k).and_then(|v| v.as_str()).map(|v| format!("{k}={v}")))
        .collect();
    inputs.extend(
        flags
            .iter()
            .filter(|f| f.split_once('=').is_some_and(|(k, _)| declared.contains(&k.trim())))
            .cloned(),
    );
    inputs
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::exec::testing::Builder;
    use crate::journal::{StepState, StepStatus};

    #[test]
    fn a_continued_run_gets_the_inputs_both_declare_and_never_a_secret() {
        let mut env = Env::default();
        env.inputs.insert("user".into(), json!("alice"));
        env.inputs.insert("pin".into(), json!("1234"));
        env.inputs.insert("only_here".into(), json!("x"));
        env.inputs.insert("count".into(), json!(3));
        env.secret_inputs.insert("pin".into());
        let flags = vec!["user=bob".to_string(), " region =eu-west-1".into(), "other=1".into()];
        assert_eq!(
            carried(&["count", "pin", "region", "user"], &env, &flags),
            ["user=alice", "user=bob", " region =eu-west-1"]
        );
        assert_eq!(carried(&[], &env, &flags), Vec::<String>::new());
    }

    const PARENT: &str = "# T\n\n```rhai id=a on-failure=other.md\nthrow \"boom\";\n```\n\n\
```rhai id=b on-failure=#a\n1\n```\n";
    const OTHER: &str = "# Other\n\n```rhai id=s\n#{ why: run.failed.error, step: run.failed.step }\n```\n";

    /// An anchor in the same runbook, or a follow-up nested too deep, runs nothing.
    #[tokio::test]
    async fn an_anchor_or_a_deep_follow_up_is_not_run() {
        let f = Builder::new(PARENT)
            .beside("other.md", OTHER)
            .opts(|o| o.yes = true)
            .build();
        continue_into(&f.shared, f.step("b"), &Env::default(), "x").await;
        assert_eq!(f.recorded(), Vec::<String>::new());
        let f = Builder::new(PARENT)
            .beside("other.md", OTHER)
            .opts(|o| {
                o.yes = true;
                o.depth = MAX_DEPTH;
            })
            .build();
        continue_into(&f.shared, f.step("a"), &Env::default(), "x").await;
        assert_eq!(f.recorded(), Vec::<String>::new());
    }

    /// With `--yes` the failed step continues into its runbook as a run of its own, on the same
    /// event stream, which reads what failed (redacted) as `run.failed`; the step records where
    /// it continued and stays as it was.
    #[tokio::test]
    async fn a_failed_step_continues_into_its_runbook() {
        let f = Builder::new(PARENT)
            .beside("other.md", OTHER)
            .opts(|o| o.yes = true)
            .build();
        f.shared.redactor.add("hunter2");
        f.shared
            .set_step_state("a", StepState::new(StepStatus::Failed, "h"))
            .expect("state");
        continue_into(&f.shared, f.step("a"), &Env::default(), "boom hunter2").await;
        assert_eq!(
            f.recorded(),
            [
                "run-started",
                "step-started s",
                "step-finished s",
                "run-finished",
                "continued-into a"
            ]
        );
        let finished = f.events().into_iter().find(|e| e["event"] == "step-finished");
        assert_eq!(
            finished.map(|e| e["outputs"].clone()),
            Some(json!({"why": "boom ********", "step": "a"}))
        );
        let other = f.dir.path().join("runbooks/other.md").display().to_string();
        let st = f.state("a").expect("state");
        assert_eq!(st.status, StepStatus::Failed);
        assert_eq!(st.continued_into, Some(format!("{other} (run after-default-a): done")));
        assert!(f.shared.continued.lock().map(|c| c.is_empty()).unwrap_or(false));
        let continued = f.events().into_iter().find(|e| e["event"] == "continued-into");
        assert_eq!(
            continued.map(|e| (e["runbook"].clone(), e["run"].clone(), e["outcome"].clone())),
            Some((Value::from(other), json!("after-default-a"), json!("done")))
        );
    }

    /// A follow-up with errors is not run: its diagnostics are shown with the run's end.
    #[tokio::test]
    async fn a_follow_up_with_errors_is_not_run() {
        let f = Builder::new(PARENT)
            .beside("other.md", "# Other\n\n```rhai id=s\nsteps.nope.x\n```\n")
            .opts(|o| o.yes = true)
            .build();
        continue_into(&f.shared, f.step("a"), &Env::default(), "boom").await;
        assert_eq!(f.recorded(), Vec::<String>::new());
        let continued = f
            .shared
            .continued
            .lock()
            .map(|c| c.iter().map(|e| e.outcome()).collect::<Vec<_>>());
        assert_eq!(continued.ok(), Some(vec!["stopped"]));
    }
}
