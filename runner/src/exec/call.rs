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
        claimed: false,
    }
}

pub(super) async fn run(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<(&Value, String)>,
    params: Value,
    memo: Option<Arc<runbook_plugins::Memo>>,
    deadline: Option<std::time::Instant>,
) -> Result<Outcome, StepError> {
    let name = step
        .executor
        .call()
        .ok_or_else(|| StepError::failed("not a call by name"))?;
    let c = call::resolve(name).map_err(|e| StepError::failed(e.to_string()))?;
    let opts = options(step);
    if opts.mutates {
        shared.guard(env).await?;
    }
    let key = item.as_ref().map(|(_, k)| k.clone());
    let value = item.as_ref().map(|(v, k)| ((*v).clone(), k.clone()));
    // In the step's account= and region=, when it names them.
    let ctx = shared.context_in(step, env, item, memo, deadline).await?;
    let item = key;
    if opts.mutates && !opts.retry_unknown {
        let value = value.as_ref().map(|(v, k)| (v, k.clone()));
        another_item_sends(shared, step, env, &ctx, value, c, &params).await?;
        refuse_unknown_elsewhere(shared, step, &ctx, c, item.as_deref(), &params).await?;
    }
    // One item, run or process at a time acts on the target; and once this one holds it, it
    // looks again: the holder it waited for may have sent the same request and lost the answer
    // (two runs queued on one claim sent a lost CreateAccessKey twice, and one said done).
    let _claim = if opts.mutates {
        let claim = ctx
            .claim(
                c.full_name(),
                &call::target(c, &ctx, &params),
                runbook_plugins::Duplicates::Made,
            )
            .await?;
        if !opts.retry_unknown {
            refuse_unknown_elsewhere(shared, step, &ctx, c, item.as_deref(), &params).await?;
        }
        Some(claim)
    } else {
        None
    };
    let opts = call::Options { claimed: true, ..opts };
    // What the model marks sensitive in the request (a Password) is masked everywhere from now.
    for v in c.sensitive_in_request(&params) {
        shared.redactor.add(&v);
    }
    let sent = call::invoke(&ctx, c, params, opts).await;
    let outputs = sent?;
    // An answer that carries a secret (what the service model marks sensitive: CreateAccessKey's
    // SecretAccessKey, CreateVirtualMFADevice's Base32StringSeed, GetSecretValue's SecretString;
    // and the credentials the models leave unmarked) is secret: never printed, stored opaque.
    let mut found = c.sensitive_in_response(&outputs);
    unmarked_secrets(&outputs, &mut found);
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

/// The memo under which a fan-out of a change by name keeps the first item of each request.
pub(super) const FIRST_ITEMS: &str = "calls-by-name: the first item of each request";

/// What makes two items' requests one: where they act and what they send.
fn request_key(shared: &Shared, step: &Step, env: &Env, value: Option<&Value>, params: &Value) -> String {
    let place = crate::placement::resolve(step, env, &shared.engine(), value)
        .ok()
        .flatten();
    format!("{place:?} {params}")
}

/// For a fan-out of a change by name: the first item, in the list's order, of each request.
pub(super) fn first_items(
    shared: &Shared,
    step: &Step,
    env: &Env,
    items: &[super::identity::Item],
) -> std::collections::HashMap<String, String> {
    let mut first = std::collections::HashMap::new();
    for item in items {
        if let Some(params) = &item.params {
            first
                .entry(request_key(shared, step, env, Some(&item.value), params))
                .or_insert_with(|| item.key.clone());
        }
    }
    first
}

/// Two items of one fan-out that send the same change by name: the first in the list sends it,
/// in this run or an earlier one; the other is not sent and says so. It used to read the first's
/// pending mark as an unknown outcome and stop the run, which dropped the first between its
/// intent and its send: "sent" for a call never sent. (`on-unknown=retry`: the author said
/// sending twice is harmless.)
async fn another_item_sends(
    shared: &Shared,
    step: &Step,
    env: &Env,
    ctx: &runbook_plugins::Context,
    item: Option<(&Value, String)>,
    c: call::Call,
    params: &Value,
) -> Result<(), StepError> {
    let Some((value, key)) = item else {
        return Ok(());
    };
    let firsts = ctx
        .memo(FIRST_ITEMS, || async {
            Ok(std::collections::HashMap::<String, String>::new())
        })
        .await?;
    match firsts.get(&request_key(shared, step, env, Some(value), params)) {
        Some(first) if *first != key => Err(StepError::Failed {
            message: format!(
                "not sent: item `{first}` of this fan-out sends the same {} request, and AWS would act on it twice",
                c.full_name()
            ),
            hint: Some("make each item's request differ (or drop the duplicate item); write on-unknown=retry on the step if sending it twice is harmless".into()),
            at: None,
        }),
        _ => Ok(()),
    }
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

/// The answer to "the outcome is unknown, send it again?" for the calls sent at `ats`. `resend =
/// "TIME"` answers the call sent at that time and no other; `resend = true` answers the first
/// question it meets and is then spent (journaled as a confirmation naming the calls it answered):
/// a later unknown outcome is asked about again, never answered by a stale `true`.
fn resend_for(shared: &Shared, step: &Step, ats: &[String]) -> Result<Option<bool>, StepError> {
    let answer = shared.answers.steps.get(&step.id).and_then(|s| s.get("resend"));
    match answer {
        Some(toml::Value::String(at)) => Ok(ats.contains(at).then_some(true)),
        Some(toml::Value::Boolean(true)) => {
            let spent = spent_on(shared, step)?;
            let stale = spent.iter().any(|a| !ats.contains(a));
            if stale {
                shared.ui.warn(&format!(
                    "{}: resend = true was given for the call sent at {}, not for this one: answer resend = \"{}\" to send this one again",
                    step.id,
                    spent.join(", "),
                    ats.first().map(String::as_str).unwrap_or("")
                ));
                return Ok(None);
            }
            Ok(Some(true))
        }
        Some(toml::Value::Boolean(false)) => Ok(Some(false)),
        _ => Ok(None),
    }
}

/// The sending times of the calls an earlier `resend = true` of this step answered.
fn spent_on(shared: &Shared, step: &Step) -> Result<Vec<String>, StepError> {
    let lines = shared
        .journal
        .lock()
        .map_err(|_| StepError::Journal("journal lock poisoned".into()))?
        .lines()?;
    Ok(lines
        .into_iter()
        .filter_map(|l| match l.entry {
            crate::journal::Entry::Confirmed { step: s, answers, .. } if s == step.id => {
                answers.get(RESEND_FOR).and_then(Value::as_array).cloned()
            }
            _ => None,
        })
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect())
}

/// The key under which a confirmation names the calls a resend answered.
const RESEND_FOR: &str = "resend_for";

/// Journals that a person's resend answered the calls sent at `ats` (and only them).
fn spend_resend(shared: &Shared, step: &Step, ats: &[String], what: &str) -> Result<(), StepError> {
    shared.record(crate::journal::Entry::Confirmed {
        step: step.id.clone(),
        question: format!("the outcome is unknown: {what}; send it again?"),
        who: serde_json::json!({ "os_user": crate::journal::os_user(), "caller": shared.who() }),
        via: "answers".into(),
        answers: serde_json::json!({ "resend": true, RESEND_FOR: ats }),
    })?;
    Ok(())
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
    c: call::Call,
    item: Option<&str>,
    params: &Value,
) -> Result<(), StepError> {
    let name = c.full_name();
    // The target the call's claim and mark name: where it acts included.
    let digest = super::gate::digest(shared, name, &call::target(c, ctx, params));
    // Marks an earlier version wrote, under the state directory's pending key.
    let legacy = serde_json::json!({
        "request": params,
        "endpoint": ctx.aws_options().endpoint_url,
        "region": ctx.region().await.ok(),
    });
    let legacy = shared.pending.1.legacy_request(name, &legacy);
    let earlier = shared
        .pending
        .0
        .get(&digest)
        .or_else(|| legacy.as_deref().and_then(|l| shared.pending.0.get(l)));
    if let Some(earlier) = earlier {
        // This journal's own unknown outcome was asked about already (settle_unknown).
        let ours = unsettled(shared, step, item, name)?;
        let at = [earlier.at.clone()];
        let resend = !ours && resend_for(shared, step, &at)? == Some(true);
        if resend {
            spend_resend(
                shared,
                step,
                &at,
                &format!("{name} sent by {} at {}", earlier.runbook, earlier.at),
            )?;
        }
        if !ours && !resend {
            return Err(StepError::Unknown(format!(
                "{}: the same {name} request was sent by {} (step `{}`, run `{}`, at {}) and its outcome is unknown; check in AWS whether it took effect, then answer resend = true under [steps.{}] to send it again",
                step.id, earlier.runbook, earlier.step, earlier.run, earlier.at, step.id
            )));
        }
        if let Some(l) = &legacy {
            shared.pending.0.clear(l);
        }
    }
    Ok(())
}

/// Whether running this step again sends a call by name that changes AWS.
pub(super) fn sends_again(step: &Step) -> bool {
    let opts = options(step);
    step.executor.call().is_some() && opts.mutates && !opts.retry_unknown
}

/// A finished call by name that changes AWS, whose secret input cannot be compared with what it
/// sent (its digest was made with another key): sent again only when a person says so.
pub(super) fn resend_unverifiable(shared: &Arc<Shared>, step: &Step) -> Result<(), StepError> {
    if resend_answer(shared, step) == Some(true) {
        return Ok(());
    }
    Err(StepError::Waiting(format!(
        "{}: it finished before, and whether the secret it sends has changed cannot be told (the key that digested it is not this one); check in AWS, then answer resend = true under [steps.{}] to send it again, or run from a later step with --from",
        step.id, step.id
    )))
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

/// Members that carry credentials where the published service models do not mark them
/// `sensitive` (sts's Credentials: GetSessionToken, AssumeRole, GetFederationToken; and the same
/// names anywhere else). Everything else comes from the models' own trait.
const UNMARKED: &[&str] = &["SecretAccessKey", "SessionToken"];

/// The string values of [`UNMARKED`] members anywhere in an answer.
fn unmarked_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match x {
                    Value::String(s) if UNMARKED.contains(&k.as_str()) && !s.is_empty() => out.push(s.clone()),
                    _ => unmarked_secrets(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| unmarked_secrets(x, out)),
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
    let ats: Vec<String> = open.iter().map(|u| u.at.clone()).collect();
    match resend_for(shared, step, &ats)? {
        Some(true) => {
            spend_resend(shared, step, &ats, &listed.join("; "))?;
            return Ok(());
        }
        Some(false) => {
            return Err(StepError::Unknown(format!(
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
    Err(StepError::Unknown(format!(
        "the outcome of {} is unknown; check in AWS whether it took effect (e.g. with a Describe/List/Get call), then answer resend = true under [steps.{}] to send it again, or write on-unknown=retry on the step if sending it twice is harmless",
        first.call, step.id
    )))
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;
