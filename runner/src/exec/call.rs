//! Generic call steps (`aws SERVICE:Operation`): the guard before a mutating one, and the stop
//! after an unknown outcome. A mutating call whose intent is in the journal without an answer
//! (the run was killed, the connection dropped, AWS answered 5xx) is never sent again blindly:
//! the run stops and asks, unless the step says `on-unknown=retry` or the person answers
//! `resend = true`.

use std::sync::Arc;

use runbook_plugins::call;
use serde_json::Value;

use super::{Outcome, Secrecy, Shared, StepError};
use crate::eval::Env;
use crate::model::Step;

pub(super) fn options(step: &Step) -> call::Options {
    call::Options {
        mutates: step.call_mutates().unwrap_or(true),
        retry_unknown: step.attrs.on_unknown.as_ref().is_some_and(|a| a.value == "retry"),
    }
}

pub(super) async fn run(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    name: &str,
    item: Option<String>,
    params: Value,
) -> Result<Outcome, StepError> {
    let c = call::resolve(name).map_err(|e| StepError::failed(e.to_string()))?;
    let opts = options(step);
    if opts.mutates {
        shared.guard(env).await?;
    }
    let ctx = shared.context_for(step, item.clone(), None);
    if opts.mutates && !opts.retry_unknown {
        refuse_unknown_elsewhere(shared, step, &ctx, name, item.as_deref(), &params).await?;
    }
    let sent = call::invoke(&ctx, c, params, opts).await;
    let outputs = sent?;
    // An answer that carries credentials (CreateAccessKey's SecretAccessKey, GetSessionToken's
    // SessionToken, a Password) is secret: never printed, stored masked.
    let mut found = Vec::new();
    secret_members(&outputs, &mut found);
    if found.is_empty() {
        return Ok(Outcome::public(outputs));
    }
    for v in &found {
        shared.redactor.add(v);
    }
    Ok(Outcome {
        outputs,
        secrecy: Secrecy::AllBut(step.attrs.public_outputs()),
    })
}

/// `resend = true|false` under `[steps.ID]` in the answers file.
fn resend_answer(shared: &Shared, step: &Step) -> Option<bool> {
    shared
        .answers
        .steps
        .get(&step.id)
        .and_then(|s| s.get("resend"))
        .and_then(toml::Value::as_bool)
}

/// Whether this run's journal holds `call` for this step (and item) without an answer.
fn unsettled(shared: &Shared, step: &Step, item: Option<&str>, call: &str) -> Result<bool, StepError> {
    Ok(shared
        .journal
        .lock()
        .map_err(|_| StepError::Journal("journal lock poisoned".into()))?
        .unsettled(&step.id)?
        .iter()
        .any(|u| u.item_key.as_deref() == item && u.call == call))
}

/// Refuses a request that another journal (a copy, a moved or edited version of this runbook)
/// sent with an unknown outcome, unless a person said to send it again. The gate marks it when
/// it is sent.
async fn refuse_unknown_elsewhere(
    shared: &Arc<Shared>,
    step: &Step,
    ctx: &runbook_plugins::Context,
    name: &str,
    item: Option<&str>,
    params: &Value,
) -> Result<(), StepError> {
    let digest = super::gate::digest(shared, name, &call::target_of(params));
    // Marks an earlier version wrote, under the state directory's pending key.
    let legacy = serde_json::json!({
        "request": params,
        "endpoint": ctx.aws_options().endpoint_url,
        "region": ctx.region().await.ok(),
    });
    let legacy = shared.pending.1.request(name, &legacy);
    let earlier = shared.pending.0.get(&digest).or_else(|| shared.pending.0.get(&legacy));
    if let Some(earlier) = earlier {
        // This journal's own unknown outcome was asked about already (settle_unknown).
        let ours = unsettled(shared, step, item, name)?;
        if !ours && resend_answer(shared, step) != Some(true) {
            return Err(StepError::Waiting(format!(
                "{}: the same {name} request was sent by {} (step `{}`, run `{}`, at {}) and its outcome is unknown; check in AWS whether it took effect, then answer resend = true under [steps.{}] to send it again",
                step.id, earlier.runbook, earlier.step, earlier.run, earlier.at, step.id
            )));
        }
        shared.pending.0.clear(&legacy);
    }
    Ok(())
}

/// A mutating call that finished with secrets in its answer is not sent again for its outputs
/// (they were never kept) unless the author or a person said so: a second CreateAccessKey is a
/// second key.
pub(super) fn resend_after_secret_answer(shared: &Arc<Shared>, step: &Step) -> Result<(), StepError> {
    let opts = options(step);
    if !opts.mutates || opts.retry_unknown {
        return Ok(());
    }
    let resend = resend_answer(shared, step);
    if resend == Some(true) {
        return Ok(());
    }
    let why = format!(
        "{}: AWS answered this call with secrets, which are never kept; sending it again would make another",
        step.id
    );
    shared.ui.warn(&why);
    if resend.is_none() && crate::prompt::interactive() && !shared.opts.yes {
        let yes = shared
            .ui
            .suspend(|| crate::prompt::confirm("Send it again?"))
            .map_err(|e| StepError::failed(format!("prompt: {e}")))?;
        if yes {
            return Ok(());
        }
    }
    Err(StepError::Waiting(format!(
        "{why}; answer resend = true under [steps.{}] to send it again, or run from a later step with --from",
        step.id
    )))
}

/// Members AWS uses for secrets in its answers.
const SECRET_MEMBERS: &[&str] = &[
    "SecretAccessKey",
    "SessionToken",
    "Password",
    "PrivateKey",
    "ClientSecret",
    "SecretString",
    "SecretBinary",
];

/// The string values of secret members anywhere in an answer.
fn secret_members(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match x {
                    Value::String(s) if SECRET_MEMBERS.contains(&k.as_str()) && !s.is_empty() => out.push(s.clone()),
                    _ => secret_members(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| secret_members(x, out)),
        _ => {}
    }
}

/// Before a mutating generic call step runs (again): stops when an earlier call of it has an
/// unknown outcome, unless the author or a person said to send it again.
pub(super) fn settle_unknown(shared: &Arc<Shared>, step: &Step) -> Result<(), StepError> {
    let opts = options(step);
    if !opts.mutates || opts.retry_unknown {
        return Ok(());
    }
    let open = shared
        .journal
        .lock()
        .map_err(|_| StepError::Journal("journal lock poisoned".into()))?
        .unsettled(&step.id)?;
    let Some(first) = open.first() else {
        return Ok(());
    };
    let what = |u: &crate::journal::Unsettled| {
        let item = u
            .item_key
            .as_deref()
            .map(|k| format!(" (item {k})"))
            .unwrap_or_default();
        let answer = if u.answered {
            "AWS answered, but the step never recorded the result"
        } else {
            "no answer was journaled"
        };
        format!("{} {}{item}, sent at {}: {answer}", u.call, u.target, u.at)
    };
    let listed: Vec<String> = open.iter().map(what).collect();
    let question = format!(
        "{}: the outcome of an earlier call is unknown: {}",
        step.id,
        listed.join("; ")
    );
    shared.ui.warn(&question);
    match resend_answer(shared, step) {
        Some(true) => return Ok(()),
        Some(false) => {
            return Err(StepError::Waiting(format!(
                "not sent again ([steps.{}] resend = false); check whether {} took effect",
                step.id, first.call
            )));
        }
        None => {}
    }
    if crate::prompt::interactive() && !shared.opts.yes {
        let yes = shared
            .ui
            .suspend(|| crate::prompt::confirm("Check in AWS whether it took effect. Send it again?"))
            .map_err(|e| StepError::failed(format!("prompt: {e}")))?;
        if yes {
            return Ok(());
        }
    }
    Err(StepError::Waiting(format!(
        "the outcome of {} is unknown; check in AWS whether it took effect (e.g. with a Describe/List/Get call), then answer resend = true under [steps.{}] to send it again, or write on-unknown=retry on the step if sending it twice is harmless",
        first.call, step.id
    )))
}
