//! `--check-permissions` (plan and run): before anything changes, ask IAM whether the caller may do
//! every action the remaining steps need, as [`crate::policy`] computes them for `runbook
//! permissions`, and stop naming each denied action and the steps that need it.

use std::collections::BTreeMap;

use runbook_plugins::Context;
use runbook_plugins::aws::simulate::{Decision, Simulated, simulate};

use super::error::CommandError;
use crate::journal;
use crate::model::Runbook;
use crate::policy::{Need, needs};

/// The steps a run would still run: all with `restart`, else those the run it continues has not
/// finished (a finished step runs again only when its inputs changed: then `--restart` checks it).
pub(super) fn remaining(runbook: &Runbook, state: Option<&journal::State>, restart: bool) -> Runbook {
    let mut rb = runbook.clone();
    if let (Some(state), false) = (state, restart) {
        rb.steps.retain(|s| {
            !state
                .steps
                .get(&s.id)
                .is_some_and(|st| matches!(st.status, journal::StepStatus::Done | journal::StepStatus::Skipped))
        });
    }
    rb
}

/// Asks IAM; `Ok` when every action is allowed or the caller cannot be simulated (said on stderr),
/// `Err` naming what is denied. Nothing is changed either way.
pub(super) async fn check(ctx: &Context, runbook: &Runbook) -> Result<(), CommandError> {
    let needs = needs(std::slice::from_ref(runbook)).map_err(CommandError::Failed)?;
    let wanted = wanted(&needs);
    let note = |s: &str| eprintln!("check-permissions: {}", crate::text::sanitize(s));
    if wanted.is_empty() {
        note("the remaining steps need no IAM permission");
        return Ok(());
    }
    let simulated = simulate(ctx, &wanted.keys().cloned().collect::<Vec<_>>())
        .await
        .map_err(|e| CommandError::Failed(format!("check-permissions: {e}")))?;
    let (source, decisions) = match simulated {
        Simulated::NotPossible { caller, why } => {
            note(&format!("not checked for {caller}: {why}; going on"));
            return Ok(());
        }
        Simulated::Decided { source, decisions } => (source, decisions),
    };
    let denied: Vec<_> = decisions.iter().filter(|(_, _, d)| *d != Decision::Allowed).collect();
    for n in &needs {
        if let Some((role, acts)) = &n.role {
            note(&format!(
                "not checked: step `{}` acts as {role}, whose own policy must allow {}",
                n.step,
                acts.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if denied.is_empty() {
        note(&format!(
            "IAM allows {source} every action the remaining steps need ({})",
            decisions.len()
        ));
        return Ok(());
    }
    let mut msg = format!(
        "check-permissions: IAM says {source} may not do {} action{} the remaining steps need; nothing was changed",
        denied.len(),
        if denied.len() == 1 { "" } else { "s" }
    );
    for (action, resource, decision) in &denied {
        let on = if resource == "*" {
            String::new()
        } else {
            format!(" on {resource}")
        };
        let steps = wanted
            .get(&(action.clone(), resource.clone()))
            .map(|s| s.join(", "))
            .unwrap_or_default();
        msg.push_str(&format!("\n  {action}{on} ({}), needed by {steps}", decision.word()));
    }
    msg.push_str(&format!(
        "\n  = help: add them to the caller's policy (`runbook permissions {}` prints the policy a run needs)",
        runbook.path
    ));
    Err(CommandError::Failed(msg))
}

/// Each (action, resource) the caller's own credentials need, with the steps that need it
/// (`step` at `file:line`).
fn wanted(needs: &[Need]) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for n in needs {
        for a in &n.actions {
            let resource = match &n.role {
                // A wildcard ARN as the policy writes it: IAM matches the statement's pattern.
                Some((arn, _)) if a == "sts:AssumeRole" => arn.clone(),
                _ => "*".to_string(),
            };
            out.entry((a.clone(), resource))
                .or_default()
                .push(format!("step `{}` ({}:{})", n.step, n.file, n.line));
        }
    }
    out
}
