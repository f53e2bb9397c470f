//! `runbook status` and `runbook runs`: what the journal says.

use std::path::Path;

use serde_json::{Value, json};

use super::error::CommandError;
use super::{load_unchecked, located, out, pick_run};
use crate::journal;
use crate::journal::Journal;

pub fn status(
    file: &Path,
    state_dir: &Path,
    run: Option<&str>,
    json_out: bool,
    color: bool,
) -> Result<(), CommandError> {
    let runbook = load_unchecked(file, color)?;
    let dir = located(state_dir, &runbook)?;
    let picked = pick_run(&dir, run, true).map_err(|e| CommandError::Usage(e.to_string()))?;
    let all_runs = Journal::runs(&dir).unwrap_or_default();
    let Some(picked) = picked else {
        if let Some(n) = run {
            return Err(CommandError::Usage(format!(
                "{} has no run named `{n}` (see `runbook runs {}`)",
                runbook.path,
                file.display()
            )));
        }
        if json_out {
            out(&json!({ "runbook": runbook.path, "runs": 0 }).to_string());
        } else {
            out(&format!(
                "{}: never run (no journal in {})",
                runbook.path,
                dir.display()
            ));
        }
        return Ok(());
    };
    let state = picked.state;
    let steps: Vec<Value> = runbook
        .steps
        .iter()
        .map(|s| {
            let st = state.steps.get(&s.id);
            json!({
                "step": s.id,
                "status": st.map(|x| serde_json::to_value(x.status).unwrap_or(Value::Null)).unwrap_or(json!("pending")),
                "started": st.and_then(|x| x.started.clone()),
                "finished": st.and_then(|x| x.finished.clone()),
                "error": st.and_then(|x| x.error.clone()),
                "waiting_for": st.and_then(|x| x.waiting_for.clone()),
                "continued_into": st.and_then(|x| x.continued_into.clone()),
            })
        })
        .collect();
    if json_out {
        let v = json!({ "runbook": runbook.path, "run": picked.name, "rehearsal": state.rehearsal, "run_id": state.run_id, "started": state.started, "updated": state.updated, "outcome": state.outcome, "steps": steps });
        out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        out(&format!(
            "{} — {}{} {}, started {}, last update {}, {}",
            runbook.path,
            if state.rehearsal { "rehearsal " } else { "run " },
            picked.name,
            state.run_id,
            state.started,
            state.updated,
            state.outcome.as_deref().unwrap_or("in progress or stopped")
        ));
        for s in &steps {
            let mut extra = s["error"]
                .as_str()
                .or(s["waiting_for"].as_str())
                .unwrap_or("")
                .to_string();
            if let Some(c) = s["continued_into"].as_str() {
                extra.push_str(&format!("; continued into {c}"));
            }
            out(&format!(
                "  {:<32} {:<8} {}  {}",
                s["step"].as_str().unwrap_or(""),
                s["status"].as_str().unwrap_or(""),
                s["finished"].as_str().or(s["started"].as_str()).unwrap_or(""),
                extra
            ));
        }
        // The other runs and rehearsals of this runbook, newest first.
        let others: Vec<&journal::RunSummary> = all_runs.iter().filter(|r| r.name != picked.name).collect();
        if !others.is_empty() {
            out(&format!("other runs (`runbook status {} --run NAME`):", file.display()));
            for r in others {
                out(&format!("  {}", run_line(r)));
            }
        }
    }
    Ok(())
}

pub fn runs(file: &Path, state_dir: &Path, json_out: bool, color: bool) -> Result<(), CommandError> {
    let runbook = load_unchecked(file, color)?;
    let dir = located(state_dir, &runbook)?;
    let runs = Journal::runs(&dir).map_err(|e| CommandError::Usage(e.to_string()))?;
    if json_out {
        let v: Vec<Value> = runs
            .iter()
            .map(|r| {
                json!({ "run": r.name, "rehearsal": r.state.rehearsal, "outcome": r.state.outcome, "started": r.state.started, "updated": r.state.updated, "inputs": r.state.inputs })
            })
            .collect();
        out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    if runs.is_empty() {
        out(&format!("{}: never run", runbook.path));
        return Ok(());
    }
    out(&format!(
        "{:<40} {:<10} {:<12} {}",
        "RUN", "KIND", "OUTCOME", "LAST UPDATE"
    ));
    for r in &runs {
        out(&run_line(r));
    }
    Ok(())
}

/// One run in a listing: name, kind, outcome, last update.
fn run_line(r: &journal::RunSummary) -> String {
    format!(
        "{:<40} {:<10} {:<12} {}",
        r.name,
        if r.state.rehearsal { "rehearsal" } else { "run" },
        r.state.outcome.as_deref().unwrap_or("unfinished"),
        r.state.updated
    )
}
