//! The step loop: each step in order, skipped when done and unchanged, else run (with retries,
//! its deadline, the guard), journaled, and ended as done, waiting, failed or interrupted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use super::ending::{RunError, Waiting};
use super::identity::{Digester, Sameness};
use super::{Secrecy, Shared, StepError, ending, followup, identity, journal_failed, resolve_failed, step};
use crate::eval::Env;
use crate::journal::{Entry, StepState, StepStatus};
use crate::model::{Runbook, Step};
use crate::source::Source;
use crate::{eval, inputs, journal};

/// Whether a step runs, decided the same way for `run` and `plan`.
pub(super) enum Condition {
    Run,
    /// `if=` is false (its text).
    Skip(String),
    /// The step cannot be decided: why (an `if=` that fails, or reads a secret).
    Refused(String),
}

/// `if=` and `for-each=` never read a secret (`check` refuses it; a secret known only at run
/// time, an answer AWS marked sensitive, is refused here): whether a step ran, and its items,
/// are shown to all. Then the condition.
pub(super) fn condition(step: &Step, env: &Env, engine: &rhai::Engine) -> Condition {
    for (word, attr) in [("if", &step.attrs.if_), ("for-each", &step.attrs.for_each)] {
        if attr.as_ref().is_some_and(|a| env.reads_secret(&a.value)) {
            return Condition::Refused(format!(
                "`{word}=` reads a secret: whether the step runs, and its items, would tell it"
            ));
        }
    }
    match &step.attrs.if_ {
        None => Condition::Run,
        Some(cond) => match env.eval(engine, &cond.value, None).and_then(|d| eval::truthy(&d)) {
            Ok(true) => Condition::Run,
            Ok(false) => Condition::Skip(cond.value.clone()),
            Err(e) => Condition::Refused(format!("`if` condition: {e}")),
        },
    }
}

/// The scope a fan-out's items run in when they come from a secret (each `item` is secret).
pub(super) fn items_env(step: &Step, env: &Env) -> Option<Env> {
    step.attrs
        .for_each
        .as_ref()
        .is_some_and(|l| env.reads_secret(&l.value))
        .then(|| Env {
            secret_item: true,
            ..env.clone()
        })
}

/// A finished step that would do the same now, whose outputs were kept, and that this run does
/// not look at again ([`Shared::rechecks`]): not run again.
pub(super) fn reusable(shared: &Shared, step: &Step, st: &StepState, prepared: &identity::Prepared) -> bool {
    !shared.rechecks(step)
        && st.status == StepStatus::Done
        && !st.secret
        && Digester::compare(&st.hash, &prepared.hash, prepared.legacy_hash.as_deref()) == Sameness::Same
}

pub(super) async fn drive(shared: Arc<Shared>, flags: &BTreeMap<String, String>) -> Result<(), RunError> {
    let rb = &shared.runbook;
    let opts = &shared.opts;
    let (stored, stored_secrets) = shared
        .journal
        .lock()
        .map(|j| (j.state.inputs.clone(), j.state.secret_inputs.clone()))
        .unwrap_or_default();
    let src = inputs::Sources {
        flags,
        answers: &shared.answers,
        stored: &stored,
    };
    let when_missing = inputs::WhenMissing::ask_if(crate::prompt::interactive());
    let resolved = match inputs::resolve(&rb.settings.inputs, None, &src, when_missing, &|n, i| {
        shared.ui.suspend(|| crate::prompt::ask(n, i))
    }) {
        Ok(r) => r,
        Err(e) => {
            if let inputs::ResolveError::Waiting(name) = &e {
                if let Err(StepError::Journal(m)) = shared.record(Entry::Waiting {
                    step: None,
                    input: Some(name.clone()),
                    for_: None,
                }) {
                    return Err(journal_failed(&shared, &m));
                }
            }
            return Err(resolve_failed(e));
        }
    };
    let mut env = Env {
        redactor: shared.redactor.clone(),
        ..Env::default()
    };
    for (k, v) in &resolved.values {
        env.inputs.insert(k.clone(), json!(v));
    }
    let mut secret_digests = BTreeMap::new();
    for (k, v) in &resolved.secrets {
        shared.redactor.add(v.expose());
        env.inputs.insert(k.clone(), json!(v.expose()));
        env.secret_inputs.insert(k.clone());
        secret_digests.insert(k.clone(), shared.digester.value(k, v.expose()));
    }
    let changes = identity::input_changes(&stored, &stored_secrets, &resolved.values, &secret_digests);
    let begun = shared.journal.lock().map(|mut j| {
        // A new run of a finished record converges on AWS; a stopped one is resumed.
        shared
            .converging
            .store(j.state.outcome.as_deref() == Some("done"), Ordering::SeqCst);
        j.begin_run();
        env.run.insert("id".into(), json!(j.state.run_id));
        env.run.insert("started".into(), json!(j.state.started));
        env.run.insert("name".into(), json!(j.state.name));
        j.state.inputs = resolved.values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        j.state.secret_inputs = secret_digests;
        j.state.name.clone()
    });
    let name = begun.unwrap_or_default();
    let started_entry = shared
        .record(Entry::RunStarted {
            runbook: rb.path.clone(),
            name: name.clone(),
            user: journal::os_user(),
            rehearsal: opts.rehearsal,
        })
        .and_then(|()| {
            if changes.is_empty() {
                Ok(())
            } else {
                shared.record(Entry::InputsChanged {
                    changes: changes.clone(),
                })
            }
        })
        .and_then(|()| shared.save());
    if let Err(e) = started_entry {
        return Err(step_error(&shared, None, e));
    }
    if let Some(f) = &opts.failed {
        env.run.insert("failed".into(), f.clone());
    }
    env.run.insert("user".into(), json!(journal::os_user()));
    env.run.insert("rehearsal".into(), json!(opts.rehearsal));
    env.run
        .insert("state_dir".into(), json!(shared.ctx.state_dir().display().to_string()));

    let instance = if name == journal::DEFAULT_RUN {
        String::new()
    } else {
        format!(" (run {name})")
    };
    shared.ui.line(&format!(
        "{} — {} step{}{instance}",
        rb.title,
        rb.steps.len(),
        if rb.steps.len() == 1 { "" } else { "s" }
    ));
    for c in &changes {
        shared.ui.note(&format!("changed since the last run: {c}"));
    }
    let from_index = opts
        .from
        .as_ref()
        .and_then(|f| rb.steps.iter().position(|s| &s.id == f))
        .unwrap_or(0);
    // The runbook's introduction, once, before anything runs.
    show_prose(&shared, title_end(rb, &shared.source), intro_end(rb, &shared.source));
    let (mut ran, mut reused, mut skipped) = (0usize, 0usize, 0usize);
    let started = Instant::now();

    for (index, step) in rb.steps.iter().enumerate() {
        if shared.ui.closed() {
            // stdout went away (`| head`): stop here, cleanly, with the journal closed.
            shared.interrupted.store(true, Ordering::SeqCst);
        }
        if shared.interrupted.load(Ordering::SeqCst) {
            return Err(interrupted(&shared, &step.id));
        }
        let recorded = shared.step_state(&step.id);
        let forced = opts.only.as_deref() == Some(step.id.as_str()) || (opts.from.is_some() && index >= from_index);
        let out_of_scope = opts.only.as_ref().is_some_and(|o| o != &step.id) || index < from_index;
        if out_of_scope {
            // Steps outside --from/--only keep their recorded outputs; secret ones were stored
            // masked and are left out rather than read back as masks.
            if let Some(st) =
                recorded.filter(|s| (s.status == StepStatus::Done || s.status == StepStatus::Skipped) && !s.secret)
            {
                env.set_step(&step.id, st.outputs);
            }
            continue;
        }
        let engine = shared.engine();
        match condition(step, &env, &engine) {
            Condition::Run => {}
            Condition::Refused(why) => return Err(fail(&shared, step, &why, None, None)),
            Condition::Skip(cond) => {
                skipped += 1;
                shared
                    .ui
                    .step_finished(&step.id, "skipped", &format!("condition `{cond}` is false"));
                let mut st = StepState::new(StepStatus::Skipped, "");
                st.outputs = json!({ "skipped": true });
                st.finished = Some(journal::now());
                env.set_step(&step.id, st.outputs.clone());
                let done = shared
                    .record(Entry::StepSkipped {
                        step: step.id.clone(),
                        reason: "condition false".into(),
                    })
                    .and_then(|()| shared.set_step_state(&step.id, st));
                if let Err(e) = done {
                    return Err(step_error(&shared, Some(step), e));
                }
                continue;
            }
        }
        let item_env = items_env(step, &env);
        let env_for_step = item_env.as_ref().unwrap_or(&env);
        // What the step will do, resolved: its identity decides whether it must run again. The
        // step's timeout= bounds everything it evaluates from here on.
        let deadline = step.timeout().map(|t| Instant::now() + t);
        let prepared = match identity::prepare(&shared, step, env_for_step, deadline).await {
            Ok(p) => p,
            // Not the step's failure: nothing is recorded of it, and it stays as it was.
            Err(e @ identity::PrepareError::Identity(_)) => return Err(RunError::Identity(e.to_string())),
            Err(e) => return Err(fail(&shared, step, &e.to_string(), None, None)),
        };
        if let Some(st) = &recorded {
            if st.status == StepStatus::Done && !forced {
                let same = Digester::compare(&st.hash, &prepared.hash, prepared.legacy_hash.as_deref());
                if reusable(&shared, step, st, &prepared) {
                    reused += 1;
                    shared.ui.step_finished(
                        &step.id,
                        "done",
                        &format!("already done ({})", st.finished.as_deref().unwrap_or("earlier")),
                    );
                    env.set_step(&step.id, st.outputs.clone());
                    continue;
                }
                // A call that changed AWS and answered with secrets (CreateAccessKey) cannot be
                // run again for its outputs: that would make another.
                if st.secret && same == Sameness::Same && step.executor.call().is_some() {
                    if let Err(e) = super::call::resend_after_secret_answer(&shared, step) {
                        return Err(step_error(&shared, Some(step), e));
                    }
                }
                // A call by name that changes AWS is never sent again on a guess: whether the
                // secret it sends changed cannot be told without the key that digested it.
                if same == Sameness::Unverifiable && super::call::sends_again(step) {
                    if let Err(e) = super::call::resend_unverifiable(&shared, step) {
                        return Err(step_error(&shared, Some(step), e));
                    }
                }
                // A new run looks again at what it can check, quietly: it is how a run converges.
                let rechecked = same == Sameness::Same && !st.secret && shared.rechecks(step);
                if !rechecked {
                    shared.ui.note(&if st.secret {
                    format!(
                        "{}: its outputs hold secrets, which are never kept: running it again",
                        step.id
                    )
                } else if same == Sameness::Unverifiable {
                    format!(
                        "{}: it read a secret, and whether that changed cannot be told (its digest was made with another key than {}): running it again",
                        step.id,
                        crate::journal::own_key_path().map(|p| p.display().to_string()).unwrap_or_default()
                    )
                } else {
                    format!("{} changed since it last ran: running it again", step.id)
                });
                }
            }
        }
        if opts.step_mode {
            match step::gate(&shared, step, &prepared).await {
                step::Gate::Run => {}
                step::Gate::Skip => {
                    shared.ui.step_finished(&step.id, "skipped", "skipped by the operator");
                    if let Err(e) = shared.record(Entry::StepSkipped {
                        step: step.id.clone(),
                        reason: "operator".into(),
                    }) {
                        return Err(step_error(&shared, Some(step), e));
                    }
                    continue;
                }
                step::Gate::Quit => {
                    return Err(RunError::Waiting(Waiting::Quit));
                }
            }
        }
        // Before a person's step: the prose since the previous step (not the whole section,
        // which may speak of later steps).
        if matches!(step.executor, crate::model::Executor::Manual) {
            let from = match index {
                0 => intro_end(rb, &shared.source),
                i => rb.steps[i - 1].span.end,
            };
            show_prose(&shared, from, step.span.start);
        }

        let begun = journal::now();
        shared.ui.step_started(&step.id, &step::describe(step));
        let mut running = StepState::new(StepStatus::Running, prepared.hash.clone());
        running.started = Some(begun.clone());
        if let Err(e) = shared
            .record(Entry::StepStarted {
                step: step.id.clone(),
                hash: prepared.hash.clone(),
            })
            .and_then(|()| shared.set_step_state(&step.id, running))
        {
            return Err(step_error(&shared, Some(step), e));
        }
        let t0 = Instant::now();
        let result = step::run_with_retries(&shared, step, env_for_step, &prepared).await;
        match result {
            Ok(outcome) => {
                ran += 1;
                let stored = outcome.stored();
                let secret = outcome.secrecy != Secrecy::None;
                shared.ui.step_finished(
                    &step.id,
                    "done",
                    &format!("{:.1}s{}", t0.elapsed().as_secs_f64(), outputs_line(&stored)),
                );
                let mut st = StepState::new(StepStatus::Done, prepared.hash.clone());
                st.outputs = stored.clone();
                st.started = Some(begun);
                st.finished = Some(journal::now());
                st.secret = secret;
                let written = shared
                    .record(Entry::StepFinished {
                        step: step.id.clone(),
                        hash: prepared.hash.clone(),
                        outputs: stored,
                    })
                    .and_then(|()| shared.set_step_state(&step.id, st));
                if let Err(e) = written {
                    return Err(step_error(&shared, Some(step), e));
                }
                if secret {
                    env.set_secret_step(&step.id, outcome.outputs);
                } else {
                    env.set_step(&step.id, outcome.outputs);
                }
            }
            Err(e @ (StepError::Waiting(_) | StepError::Refused(_) | StepError::Unknown(_))) => {
                let reason = match e.wait() {
                    Ok(reason) => reason,
                    Err(e) => return Err(step_error(&shared, Some(step), e)),
                };
                let msg = reason.to_string();
                shared.ui.step_finished(&step.id, "waiting", "waiting for a person");
                let mut st = StepState::new(StepStatus::Waiting, prepared.hash.clone());
                st.started = Some(begun);
                st.waiting_for = Some(msg.clone());
                let written = shared
                    .record(Entry::Waiting {
                        step: Some(step.id.clone()),
                        input: None,
                        for_: Some(msg.clone()),
                    })
                    .and_then(|()| shared.set_step_state(&step.id, st));
                if let Err(e) = written {
                    return Err(step_error(&shared, Some(step), e));
                }
                if reason.leads_on() {
                    followup::continue_into(&shared, step, &env, &msg).await;
                    if signalled(&shared) {
                        return Err(interrupted(&shared, &step.id));
                    }
                }
                return Err(RunError::Waiting(Waiting::Step {
                    step: step.id.clone(),
                    reason,
                    rehearsal: opts.rehearsal,
                }));
            }
            Err(e @ (StepError::Interrupted | StepError::Journal(_) | StepError::Events(_))) => {
                return Err(step_error(&shared, Some(step), e));
            }
            Err(StepError::Failed { message, hint, at }) => {
                let mut st = StepState::new(StepStatus::Failed, prepared.hash.clone());
                st.started = Some(begun);
                st.finished = Some(journal::now());
                st.error = Some(message.clone());
                if let Err(e) = shared.set_step_state(&step.id, st) {
                    return Err(step_error(&shared, Some(step), e));
                }
                let failed = fail(&shared, step, &message, hint, at);
                followup::continue_into(&shared, step, &env, &message).await;
                if signalled(&shared) {
                    return Err(interrupted(&shared, &step.id));
                }
                return Err(failed);
            }
        }
    }
    // Only the counts that say something: "3 ran", "1 ran, 2 already done".
    let counts: Vec<String> = [(ran, "ran"), (reused, "already done"), (skipped, "skipped")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    shared.ui.line(&format!(
        "finished in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        if counts.is_empty() {
            "nothing to do".to_string()
        } else {
            counts.join(", ")
        }
    ));
    Ok(())
}

/// Where the title heading ends (0 without one).
fn title_end(rb: &Runbook, source: &Source) -> usize {
    rb.sections
        .iter()
        .find(|s| s.level == 1)
        .map(|s| line_end(source, s.span.end))
        .unwrap_or(0)
}

/// Where the introduction ends: at the first step or the first heading below the title.
fn intro_end(rb: &Runbook, source: &Source) -> usize {
    let first_step = rb.steps.first().map_or(source.text.len(), |s| s.span.start);
    let first_heading = rb
        .sections
        .iter()
        .filter(|s| s.level > 1)
        .map(|s| s.span.start)
        .find(|&at| at >= title_end(rb, source))
        .unwrap_or(source.text.len());
    first_step.min(first_heading).max(title_end(rb, source))
}

fn line_end(source: &Source, at: usize) -> usize {
    source.text[at.min(source.text.len())..]
        .find('\n')
        .map_or(source.text.len(), |n| at + n)
}

/// Shows the Markdown between two offsets, rendered for the terminal, without the runbook block.
fn show_prose(shared: &Shared, from: usize, to: usize) {
    let text = &shared.source.text;
    if from >= to || to > text.len() || !text.is_char_boundary(from) || !text.is_char_boundary(to) {
        return;
    }
    let mut md = String::new();
    let mut at = from;
    if let Some(block) = shared.runbook.settings.span.filter(|b| b.start < to && b.end > from) {
        md.push_str(&text[at..block.start.max(at)]);
        at = block.end.min(to);
    }
    md.push_str(&text[at..to]);
    if md.trim().is_empty() {
        return;
    }
    let width = console::Term::stdout().size().1 as usize;
    shared.ui.block_styled(&format!(
        "\n{}",
        crate::prose::render(&crate::text::sanitize(md.trim()), width, shared.ui.color())
    ));
}

/// How the run ends for an error that is not the step's own failure.
fn step_error(shared: &Shared, step: Option<&Step>, e: StepError) -> RunError {
    match e {
        StepError::Journal(m) | StepError::Events(m) => journal_failed(shared, &m),
        StepError::Interrupted => interrupted(shared, step.map_or("the start", |s| s.id.as_str())),
        StepError::Waiting(m) | StepError::Refused(m) | StepError::Unknown(m) => RunError::Waiting(Waiting::Resend(m)),
        StepError::Failed { message, hint, at } => match step {
            Some(s) => fail(shared, s, &message, hint, at),
            None => RunError::Failed(message),
        },
    }
}

/// The short scalar outputs shown after a step's `done` line.
fn outputs_line(outputs: &Value) -> String {
    let Value::Object(o) = outputs else {
        return String::new();
    };
    let parts: Vec<String> = o
        .iter()
        .filter(|(_, v)| {
            matches!(v, Value::String(s) if !s.is_empty() && s.len() < 80) || v.is_boolean() || v.is_number()
        })
        .take(4)
        .map(|(k, v)| format!("{k}={}", v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("  {}", parts.join(" "))
    }
}

fn interrupted(shared: &Shared, step: &str) -> RunError {
    let written = shared
        .record(Entry::Interrupted { step: step.to_string() })
        .and_then(|()| shared.save());
    if let Err(StepError::Journal(m)) = written {
        return journal_failed(shared, &m);
    }
    RunError::Interrupted(ending::Interruption::Step(step.to_string()))
}

/// Records a step's failure and says how the run ends: located at the step, or where in it the
/// failure was (a script's line), with the help and where `on-failure=` leads.
fn fail(
    shared: &Shared,
    step: &Step,
    message: &str,
    hint: Option<String>,
    at: Option<crate::source::Span>,
) -> RunError {
    shared.ui.step_finished(&step.id, "failed", "");
    if let Err(StepError::Journal(m)) = shared.record(Entry::StepFailed {
        step: step.id.clone(),
        error: message.to_string(),
    }) {
        return journal_failed(shared, &m);
    }
    let mut diagnostic = crate::diagnostic::Diagnostic::error(
        &shared.source,
        at.unwrap_or(step.span),
        format!("step `{}` failed: {message}", step.id),
    );
    if let Some(h) = hint {
        diagnostic = diagnostic.with_help(h);
    }
    let next = next(step, &shared.runbook.path);
    RunError::StepFailed(Box::new(ending::StepFailure { diagnostic, next }))
}

/// Where a failed step's `on-failure=` leads: an anchor of this runbook, or another runbook,
/// resolved beside this one (as written when it cannot be).
pub(super) fn next(step: &Step, runbook: &str) -> Option<ending::Next> {
    step.attrs.on_failure.as_ref().map(|target| {
        if let Some(anchor) = target.value.strip_prefix('#') {
            ending::Next::Anchor {
                anchor: anchor.to_string(),
                runbook: runbook.to_string(),
            }
        } else {
            ending::Next::Runbook(
                crate::paths::resolve_within(Path::new(runbook), target.value.split('#').next().unwrap_or(""))
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| target.value.clone()),
            )
        }
    })
}

/// Whether a signal interrupted the run (also while a follow-up runbook ran: its interruption
/// is the parent's, exit 130, not "waiting").
fn signalled(shared: &Shared) -> bool {
    shared.interrupted.load(std::sync::atomic::Ordering::SeqCst)
}

#[cfg(test)]
#[path = "drive_tests.rs"]
mod tests;
