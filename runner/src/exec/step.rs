//! One step: dispatch by kind, retries with backoff (`retries=`), the step's deadline
//! (`timeout=`), and `run --step`'s gate.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use runbook_plugins::{Context, Memo};
use serde_json::Value;

use super::events::StepEvents;
use super::identity::Prepared;
use super::{Outcome, Shared, StepError};
use crate::eval::Env;
use crate::model::{Executor, Step};

pub(super) fn describe(step: &Step) -> String {
    match &step.executor {
        Executor::Action { .. } => format!("{} {}", step.executor.word(), step.executor.written().unwrap_or("")),
        Executor::Manual => "manual".into(),
        Executor::Rhai => "rhai".into(),
    }
}

impl Shared {
    /// The plugin context for one step (or one item): its events, deadline and shared reads.
    pub(super) fn context_for(self: &Arc<Self>, step: &Step, item: Option<String>, memo: Option<Arc<Memo>>) -> Context {
        self.context_until(step, item, memo, step.timeout().map(|d| Instant::now() + d))
    }

    /// [`Shared::context_for`] with the step's deadline as it was fixed when the step started:
    /// every item and attempt of a step shares one `timeout=`.
    pub(super) fn context_until(
        self: &Arc<Self>,
        step: &Step,
        item: Option<String>,
        memo: Option<Arc<Memo>>,
        deadline: Option<Instant>,
    ) -> Context {
        self.ctx
            .with_events(Arc::new(StepEvents {
                shared: self.clone(),
                step: step.id.clone(),
                item,
                secret: false,
            }))
            .with_deadline(deadline)
            .with_memo(memo)
    }

    /// [`Shared::context_for`] in the step's `account=` and `region=`, resolved for this item:
    /// the role there is assumed (once per run and account) and its identity checked.
    pub(super) async fn context_in(
        self: &Arc<Self>,
        step: &Step,
        env: &Env,
        item: Option<(&Value, String)>,
        memo: Option<Arc<Memo>>,
        deadline: Option<Instant>,
    ) -> Result<Context, StepError> {
        let (value, key) = item.map_or((None, None), |(v, k)| (Some(v), Some(k)));
        let deadline = deadline.or_else(|| step.timeout().map(|d| Instant::now() + d));
        let mut ctx = self.context_until(step, key.clone(), memo, deadline);
        if env.reads_secret(&crate::eval::step_code(step)) || (key.is_some() && env.secret_item) {
            ctx = ctx.with_events(Arc::new(StepEvents {
                shared: self.clone(),
                step: step.id.clone(),
                item: key,
                secret: true,
            }));
        }
        let place = crate::placement::resolve(step, env, &self.engine(), value)
            .map_err(|e| StepError::failed(format!("account/region: {e}")))?;
        match place {
            Some(p) => Ok(ctx.elsewhere(&p).await?),
            None => Ok(ctx),
        }
    }
}

pub(super) enum Gate {
    Run,
    Skip,
    Quit,
}

/// `run --step`: shows what the step will do, then asks.
pub(super) async fn gate(shared: &Arc<Shared>, step: &Step, prepared: &Prepared) -> Gate {
    shared.ui.line(&format!("next: {}  {}", step.id, describe(step)));
    if let (Some(action), Some(params)) = (step.executor.action(), &prepared.params) {
        shared
            .ui
            .block(&format!("  parameters: {}", shared.redactor.value(params)));
        if let Some(a) = shared.registry.get(action) {
            match a.plan(&shared.context_for(step, None, None), params.clone()).await {
                Ok(preview) => {
                    for i in preview.items {
                        shared.ui.block(&format!("  {:?}: {}", i.verdict, i.what));
                    }
                }
                Err(e) => shared.ui.block(&format!("  plan: {e}")),
            }
        }
    }
    match shared.ui.suspend(|| crate::prompt::run_skip_quit(&step.id)) {
        Ok(0) => Gate::Run,
        Ok(1) => Gate::Skip,
        _ => Gate::Quit,
    }
}

pub(super) async fn run_with_retries(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    prepared: &Prepared,
) -> Result<Outcome, StepError> {
    let retries = retries(step);
    let mut attempt = 0;
    loop {
        if step.executor.call().is_some() {
            super::call::settle_unknown(shared, step)?;
        }
        let fut = async {
            match &prepared.items {
                Some(items) => super::fanout::fan_out(shared, step, env, prepared, items).await,
                None => {
                    run_once(
                        shared,
                        step,
                        env,
                        None,
                        prepared.params.clone(),
                        None,
                        prepared.deadline,
                    )
                    .await
                }
            }
        };
        let res = tokio::select! {
            r = fut => r,
            _ = shared.interrupt.notified() => Err(StepError::Interrupted),
        };
        let e = match res {
            Err(e) => e,
            ok => return ok,
        };
        let left = prepared.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match retry(&e, attempt, retries, shared.interrupted.load(Ordering::SeqCst), left) {
            Retry::Stop => return Err(e),
            Retry::OutOfTime { attempt } => return Err(out_of_time(step, e, attempt)),
            Retry::Again { attempt: next, wait } => {
                attempt = next;
                if let StepError::Failed { message, .. } = &e {
                    shared.ui.warn(&format!(
                        "{} failed ({message}); retry {attempt} of {retries} in {}s",
                        step.id,
                        wait.as_secs()
                    ));
                }
                backoff(shared, wait).await?;
            }
        }
    }
}

/// `retries=` as written; none when it is not a count (`check` says so).
fn retries(step: &Step) -> u32 {
    step.attrs
        .retries
        .as_ref()
        .and_then(|r| r.value.parse().ok())
        .unwrap_or(0)
}

/// What `retries=` does after an attempt that ended in an error.
#[derive(Debug, PartialEq, Eq)]
enum Retry {
    /// The error is the step's: not retryable, no retries left, or the run was stopped.
    Stop,
    /// Attempt `attempt` (1 for the first retry) after `wait`.
    Again { attempt: u32, wait: Duration },
    /// `timeout=` would end during the wait: retry `attempt` is never made.
    OutOfTime { attempt: u32 },
}

/// Whether to try again after `attempt` retries of `retries`, with `left` until the step's
/// deadline: only a failure is retried (a person to ask, an unknown outcome, the journal, an
/// interruption never are), after 2, 4, 8, 16, then 32 seconds.
fn retry(e: &StepError, attempt: u32, retries: u32, interrupted: bool, left: Option<Duration>) -> Retry {
    if !e.retryable() || attempt >= retries || interrupted {
        return Retry::Stop;
    }
    let attempt = attempt + 1;
    let wait = Duration::from_secs(1 << attempt.min(5));
    // `timeout=` bounds the whole step: no wait that would end past it, and no attempt after it
    // (each would only time out at once).
    if left.is_some_and(|left| wait >= left) {
        return Retry::OutOfTime { attempt };
    }
    Retry::Again { attempt, wait }
}

/// Waits `wait` before a retry, or until a stop request (Ctrl-C, SIGTERM, SIGHUP) comes.
async fn backoff(shared: &Arc<Shared>, wait: Duration) -> Result<(), StepError> {
    let stop = shared.interrupt.notified();
    tokio::pin!(stop);
    // Registered before the flag is read: a signal between the two still wakes the wait.
    stop.as_mut().enable();
    if shared.interrupted.load(Ordering::SeqCst) {
        return Err(StepError::Interrupted);
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => Ok(()),
        _ = stop => Err(StepError::Interrupted),
    }
}

/// The last attempt's failure, saying that `timeout=` left no room for the next retry.
fn out_of_time(step: &Step, e: StepError, attempt: u32) -> StepError {
    let given = timeout_given(step);
    let why = format!("timeout={given} leaves no time for retry {attempt}");
    match e {
        StepError::Failed { message, hint, at } => StepError::Failed {
            message: format!("{message} ({why})"),
            hint,
            at,
        },
        other => other,
    }
}

/// Never, without a deadline.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// `timeout=` as the author wrote it, for messages.
fn timeout_given(step: &Step) -> &str {
    step.attrs.timeout.as_ref().map_or("?", |t| t.value.as_str())
}

/// An item (or attempt) that would start after the step's `timeout=` ran out: nothing is sent.
fn not_started(step: &Step) -> StepError {
    let given = timeout_given(step);
    StepError::failed(format!(
        "not started: the step's timeout={given} ran out before it (nothing was sent)"
    ))
}

fn timed_out(step: &Step) -> StepError {
    let given = timeout_given(step);
    StepError::Failed {
        message: format!("timed out: the step's timeout={given} ran out while it waited for AWS"),
        hint: Some(
            "a call in flight may have taken effect; running again looks (or asks) before anything is sent again"
                .into(),
        ),
        at: None,
    }
}

/// Text that goes to AWS (a support case) is shown, then confirmed: by `--yes`, by
/// `[steps.ID] confirm = true` in the answers file, or by the person at the terminal.
fn confirm_text(shared: &Arc<Shared>, step: &Step, params: &Value) -> Result<(), StepError> {
    let mut shown = format!("\n{} sends this to AWS:\n", step.id);
    if let Value::Object(o) = params {
        for (k, v) in o {
            let v = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
            shown.push_str(&format!("  {k}: {}\n", v.replace('\n', "\n    ")));
        }
    }
    shared.ui.block(&shown);
    if shared.opts.yes {
        return Ok(());
    }
    let confirmed = shared
        .answers
        .steps
        .get(&step.id)
        .and_then(|s| s.get("confirm"))
        .and_then(toml::Value::as_bool);
    match confirmed {
        Some(true) => Ok(()),
        Some(false) => Err(StepError::Waiting(format!(
            "not confirmed; set confirm = true under [steps.{}] to send it",
            step.id
        ))),
        None if crate::prompt::interactive() => {
            let yes = shared
                .ui
                .suspend(|| crate::prompt::confirm("Send it?"))
                .map_err(|e| StepError::failed(format!("prompt: {e}")))?;
            if yes {
                Ok(())
            } else {
                Err(StepError::Waiting(
                    "the person did not send it; run again to send it".into(),
                ))
            }
        }
        None => Err(StepError::Waiting(format!(
            "this step sends text to AWS: confirm with --yes, or confirm = true under [steps.{}] in the answers file",
            step.id
        ))),
    }
}

/// Runs a step once (for one item of a fan-out, when `item` is given).
pub(super) async fn run_once(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<(&Value, String)>,
    params: Option<Value>,
    memo: Option<Arc<Memo>>,
    deadline: Option<Instant>,
) -> Result<Outcome, StepError> {
    run_by_kind(shared, step, env, item, params, memo, deadline)
        .await
        .map_err(StepError::clipped)
}

async fn run_by_kind(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<(&Value, String)>,
    params: Option<Value>,
    memo: Option<Arc<Memo>>,
    deadline: Option<Instant>,
) -> Result<Outcome, StepError> {
    match &step.executor {
        Executor::Action { .. } => {
            // `timeout=` bounds the call itself, not only the polling after it: an action's own
            // deadline (its polls say which request is still running) comes first, this is the
            // backstop for a call that does not come back.
            // The step's one deadline (fixed when it started), for each of its items: ten items
            // of `timeout=3s` took 50 s when each had a deadline of its own.
            let deadline = deadline.or_else(|| step.timeout().map(|t| Instant::now() + t));
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(not_started(step));
            }
            let bound = deadline.map(|d| d + GRACE);
            // A request that holds a secret may come back quoted in AWS's error ("The user with
            // name ... cannot be found"): such a step's failures say what failed, never what AWS
            // wrote.
            let tainted = env.reads_secret(&crate::eval::step_code(step)) || (item.is_some() && env.secret_item);
            let r = tokio::select! {
                r = run_action(shared, step, env, item, params, memo, deadline) => r,
                () = until(bound) => Err(timed_out(step)),
            };
            match r {
                // What AWS answers to a request that held a secret may carry it back transformed
                // (URL-encoded by `EncodingType=url`, a prefix stripped, a URL's password in a
                // parse error): a search for the secret's text cannot find it there, so the
                // answer is secret as a whole, like what a script derives from one. That is every
                // call by name (any operation of any service) and every `net` check; a built-in
                // AWS action answers in its own typed outputs (ids, ARNs, flags, counts), whose
                // echoes of its parameters are the values themselves, masked where they appear.
                Ok(mut outcome) if tainted && echoes(step) => {
                    if outcome.secrecy == super::Secrecy::None {
                        outcome.secrecy = super::Secrecy::AllBut(step.attrs.public_outputs());
                    }
                    Ok(outcome)
                }
                // An answer that quotes a secret this process already holds (iam:ListAccessKeys
                // answers the environment's own access key id) is secret as a whole too: a piece
                // of it (one character as a fan-out's item key, the line a script's ladder failed
                // at) is no text a mask can find.
                Ok(mut outcome)
                    if outcome.secrecy == super::Secrecy::None
                        && shared.redactor.value(&outcome.outputs) != outcome.outputs =>
                {
                    outcome.secrecy = super::Secrecy::AllBut(step.attrs.public_outputs());
                    Ok(outcome)
                }
                Ok(outcome) => Ok(outcome),
                Err(e) if tainted => Err(withheld(e)),
                Err(e) => Err(e),
            }
        }
        Executor::Manual => super::person::run_manual(shared, step, env, item.map(|(v, _)| v), deadline).await,
        Executor::Rhai => super::script::run_rhai(shared, step, env, item.map(|(v, _)| v), deadline).await,
    }
}

/// A failure of a step whose request held a secret: its kind and AWS's error code stay (they
/// come from AWS's vocabulary), the text does not.
fn withheld(e: StepError) -> StepError {
    match e {
        StepError::Failed { message, hint, .. } => {
            // `CALL failed: CODE: text`: keep what precedes the text.
            let head: Vec<&str> = message.splitn(3, ": ").collect();
            let code = match head.as_slice() {
                [call, code, _] if call.ends_with(" failed") && !code.contains(' ') => format!("{call}: {code}"),
                _ => "the step failed".to_string(),
            };
            StepError::Failed {
                message: format!("{code} (the rest of the message is withheld: the request holds a secret)"),
                hint,
                at: None,
            }
        }
        other => other,
    }
}

/// How long past `timeout=` an action has to report its own deadline before it is cut off.
const GRACE: Duration = Duration::from_secs(2);

async fn run_action(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<(&Value, String)>,
    params: Option<Value>,
    memo: Option<Arc<Memo>>,
    deadline: Option<Instant>,
) -> Result<Outcome, StepError> {
    if step.executor.call().is_some() {
        let params = params.ok_or_else(|| StepError::failed("parameters were not resolved"))?;
        return super::call::run(shared, step, env, item, params, memo, deadline).await;
    }
    match &step.executor {
        Executor::Action { name, .. } => {
            let action = shared
                .registry
                .get(name)
                .ok_or_else(|| StepError::failed(format!("unknown action `{name}`")))?;
            let params = params.ok_or_else(|| StepError::failed("parameters were not resolved"))?;
            if action.info().mutates {
                shared.guard(env).await?;
            }
            if action.info().sends_text {
                confirm_text(shared, step, &params)?;
            }
            let ctx = shared.context_in(step, env, item, memo, deadline).await?;
            Ok(Outcome::public(action.apply(&ctx, params).await?))
        }
        Executor::Manual | Executor::Rhai => Err(StepError::failed("not an action step")),
    }
}

/// Whether a step's outputs may carry its request back in a form no search finds: a call by
/// name, a `net` check.
fn echoes(step: &Step) -> bool {
    step.executor.call().is_some()
        || matches!(
            step.executor,
            Executor::Action {
                family: crate::model::Family::Net,
                ..
            }
        )
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
