//! `plan`: the run's own interpreter, with a journal that is read and never written and a gate
//! that sends reads and refuses every change. Each step is decided as `run` decides it (the same
//! `condition`, `identity::prepare` and `reusable`); what differs is only what is done with a
//! step that would run: a script computes, a read reads (within [`READ_BUDGET`]), a built-in
//! change is asked for its plan, a call by name that changes AWS is shown, and a person's step
//! says what would be asked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use runbook_plugins::Context;
use serde_json::{Value, json};

use super::drive::{Condition, condition, items_env, reusable};
use super::identity::{self, PrepareError, Prepared};
use super::verdict::READ_BUDGET;
pub use super::verdict::{Row, StepVerdict, word};
use super::{EventSink, Outcome, Parts, RunOptions, Secrecy, Shared, StepError};
use crate::eval::Env;
use crate::inputs::{self, Answers};
use crate::journal::{self, Journal, State};
use crate::model::{Executor, Family, Runbook, Step};
use crate::redact::Redactor;
use crate::source::Source;
use crate::ui::Ui;

/// Items of one fan-out planned one by one; the rest are counted.
const PLANNED_ITEMS: usize = 50;

/// The plan, and what it means for `--detailed-exitcode`.
pub struct Report {
    pub rows: Vec<Row>,
    /// Something would change (or a person would be asked).
    pub pending: bool,
    /// A step could not be planned.
    pub errors: bool,
}

/// Why there is no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Usage(String),
    /// STS did not answer: which account a step acts in is unknown.
    #[error("cannot tell which account the credentials are for: {0}")]
    Identity(String),
}

/// What `plan` is given: the runbook, where its journal is, and the run it continues.
pub struct PlanOptions {
    pub state_dir: PathBuf,
    /// The journal directory and record of the run a new run would continue, if any.
    pub last: Option<(PathBuf, State)>,
    pub answers: Answers,
    pub flags: BTreeMap<String, String>,
    pub color: bool,
    /// `verify`: only a finished record is walked, its reads compared and its people's checks run.
    pub verify: bool,
}

/// Walks the runbook as a run would, changing nothing.
pub async fn plan(source: Source, runbook: Runbook, ctx: Context, o: PlanOptions) -> Result<Report, PlanError> {
    let redactor = Redactor::global();
    // A run after a finished one converges: the plan looks again where that run would.
    let converging = o
        .last
        .as_ref()
        .is_some_and(|(_, s)| s.outcome.as_deref() == Some("done"));
    if o.verify && !converging {
        return Err(PlanError::Usage(match &o.last {
            Some((_, s)) => format!(
                "its last run did not finish ({}); verify checks what a finished run left (run it to the end first)",
                s.outcome.as_deref().unwrap_or("still going or stopped")
            ),
            None => "it has never been run here; verify checks what a finished run left".into(),
        }));
    }
    let (dir, state) = match o.last {
        Some((dir, state)) => (dir, state),
        None => (o.state_dir.join(".plan"), Journal::fresh_state(&runbook.path)),
    };
    let journal = Journal::detached(&dir, state, redactor.clone()).map_err(|e| PlanError::Usage(e.to_string()))?;
    let pending = journal::Pending::read_only(&o.state_dir)
        .map(|(p, key)| (p, super::Digester::new(key)))
        .map_err(|e| PlanError::Usage(e.to_string()))?;
    let opts = RunOptions {
        inputs: Vec::new(),
        answers: None,
        yes: false,
        step_mode: false,
        from: None,
        only: None,
        restart: false,
        max_in_flight: 8,
        state_dir: o.state_dir.clone(),
        color: o.color,
        rehearsal: false,
        run_name: None,
        events: None,
        failed: None,
        depth: 0,
    };
    let events = Arc::new(EventSink::open(None).map_err(|e| PlanError::Usage(e.to_string()))?);
    let shared = Shared::assemble(Parts {
        source,
        runbook,
        ctx,
        opts,
        answers: o.answers,
        ui: Ui::silent(redactor.clone()),
        redactor: redactor.clone(),
        journal,
        digester: super::Digester::new(None),
        pending,
        events,
        planning: true,
    });
    shared.converging.store(converging, std::sync::atomic::Ordering::SeqCst);
    let mut env = inputs_env(&shared, &o.flags)?;
    let mut report = Report {
        rows: Vec::new(),
        pending: false,
        errors: false,
    };
    for step in &shared.runbook.steps {
        let row = plan_step(&shared, step, &mut env, o.verify).await?;
        report.add(row);
    }
    Ok(report)
}

impl Report {
    /// The next step's row, and what it means for the plan as a whole.
    fn add(&mut self, mut row: Row) {
        // A read or script after a change the plan did not make sees AWS as it is now, not as
        // the run would leave it (offboarding's check that the user is gone): its failure is
        // what a run would find out, not an error of the runbook.
        if self.pending && row.failed_running {
            row.verdict = StepVerdict::Unknown;
            row.details
                .push("it reads AWS after the changes above, which a run makes first".into());
        }
        self.pending |= row.verdict.pending(row.acts);
        self.errors |= row.verdict == StepVerdict::Error;
        self.rows.push(row);
    }
}

/// The inputs as a run would resolve them, without asking anyone: what is not given stays
/// unknown, and the steps that read it say so.
fn inputs_env(shared: &Shared, flags: &BTreeMap<String, String>) -> Result<Env, PlanError> {
    let stored = shared
        .journal
        .lock()
        .map(|j| j.state.inputs.clone())
        .unwrap_or_default();
    let src = inputs::Sources {
        flags,
        answers: &shared.answers,
        stored: &stored,
    };
    let resolved = inputs::resolve(
        &shared.runbook.settings.inputs,
        None,
        &src,
        inputs::WhenMissing::Leave,
        &|_, _| Err(std::io::Error::other("plan asks nothing")),
    )
    .map_err(|e| PlanError::Usage(crate::text::sanitize(&e.to_string())))?;
    let mut env = Env {
        redactor: shared.redactor.clone(),
        ..Env::default()
    };
    for (k, v) in &resolved.values {
        env.inputs.insert(k.clone(), json!(v));
    }
    for (k, v) in &resolved.secrets {
        shared.redactor.add(v.expose());
        env.inputs.insert(k.clone(), json!(v.expose()));
        env.secret_inputs.insert(k.clone());
    }
    // `run.*` as a real run (not a rehearsal) would see it.
    if let Ok(j) = shared.journal.lock() {
        env.run.insert("id".into(), json!(j.state.run_id));
        env.run.insert("started".into(), json!(j.state.started));
        env.run.insert("name".into(), json!(j.state.name));
    }
    env.run.insert("user".into(), json!(journal::os_user()));
    env.run.insert("rehearsal".into(), json!(false));
    env.run
        .insert("state_dir".into(), json!(shared.ctx.state_dir().display().to_string()));
    Ok(env)
}

fn kind(shared: &Shared, step: &Step) -> (String, bool) {
    let k = match &step.executor {
        Executor::Manual => "person",
        Executor::Rhai => "script",
        Executor::Action {
            family: Family::Net, ..
        } => "net (checks)",
        _ if mutates(shared, step) => "aws (changes)",
        _ => "aws (reads)",
    };
    (k.to_string(), mutates(shared, step))
}

fn mutates(shared: &Shared, step: &Step) -> bool {
    match &step.executor {
        // `mutates=false` cannot make a plan send what the model says changes AWS: a pull
        // request's runbook would change AWS with CI's credentials.
        Executor::Action { .. } if step.executor.call().is_some() => {
            step.call_mutates() == Some(true) || step.executor.call().is_some_and(|c| !runbook_plugins::call::reads(c))
        }
        Executor::Action { name, .. } => shared.registry.get(name).is_some_and(|a| a.info().mutates),
        _ => false,
    }
}

async fn plan_step(shared: &Arc<Shared>, step: &Step, env: &mut Env, verify: bool) -> Result<Row, PlanError> {
    let (kind, changes) = kind(shared, step);
    let mut row = Row {
        step: step.id.clone(),
        kind,
        action: step.executor.action().map(String::from),
        verdict: StepVerdict::Unknown,
        details: Vec::new(),
        items: None,
        acts: changes || matches!(step.executor, Executor::Manual),
        failed_running: false,
        drifted: false,
    };
    let deps = env.missing_steps(step);
    if !deps.is_empty() {
        row.details.push(format!(
            "depends on {} (known only after a run)",
            deps.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
        ));
        return Ok(row);
    }
    let engine = shared.engine();
    match condition(step, env, &engine) {
        Condition::Run => {}
        Condition::Skip(cond) => {
            row.verdict = StepVerdict::Skipped;
            row.details.push(format!("condition `{cond}` is false"));
            env.set_step(&step.id, json!({ "skipped": true }));
            return Ok(row);
        }
        Condition::Refused(why) => {
            row.verdict = StepVerdict::Error;
            row.details.push(why);
            return Ok(row);
        }
    }
    let item_env = items_env(step, env);
    let step_env = item_env.as_ref().unwrap_or(env);
    let deadline = step.timeout().map(|t| std::time::Instant::now() + t);
    let prepared = match identity::prepare(shared, step, step_env, deadline).await {
        Ok(p) => p,
        Err(PrepareError::Identity(e)) => return Err(PlanError::Identity(e)),
        Err(e) => {
            row.verdict = StepVerdict::Error;
            row.details.push(e.to_string());
            return Ok(row);
        }
    };
    row.items = prepared.items.as_ref().map(Vec::len);
    if prepared.items.as_ref().is_some_and(Vec::is_empty) {
        row.verdict = StepVerdict::Skipped;
        row.details.push("`for-each` gives no items".into());
        env.set_step(&step.id, json!({ "items": [], "results": [] }));
        return Ok(row);
    }
    // Finished before and the same now: a run would reuse it, so does the plan.
    if let Some(st) = shared
        .step_state(&step.id)
        .filter(|st| reusable(shared, step, st, &prepared))
    {
        row.verdict = StepVerdict::Done;
        row.details.push(format!(
            "done in the last run ({})",
            st.finished.as_deref().unwrap_or("earlier")
        ));
        env.set_step(&step.id, st.outputs);
        if verify && matches!(step.executor, Executor::Manual) {
            super::verifying::person_check(shared, step, &mut row).await;
        }
        return Ok(row);
    }
    // A change by name that finished with secrets in its answer (CreateAccessKey): the run does
    // not send it again for outputs it never kept; it asks a person first, as the plan says.
    if let Some(st) = shared.step_state(&step.id).filter(|st| {
        st.status == crate::journal::StepStatus::Done
            && st.secret
            && changes
            && step.executor.call().is_some()
            && super::Digester::compare(&st.hash, &prepared.hash, prepared.legacy_hash.as_deref())
                == super::identity::Sameness::Same
    }) {
        if verify {
            // A finished change by name cannot be looked up: trusted, as any other.
            row.verdict = StepVerdict::Done;
            row.details.push(format!(
                "done in the last run ({}): a call by name that changed AWS is trusted (its answer held secrets, never kept)",
                st.finished.as_deref().unwrap_or("earlier")
            ));
            return Ok(row);
        }
        row.verdict = StepVerdict::Person;
        row.details.push(format!(
            "done in the last run ({}), and its answer held secrets that were never kept: a run asks before sending it again (resend = true under [steps.{}])",
            st.finished.as_deref().unwrap_or("earlier"),
            step.id
        ));
        return Ok(row);
    }
    match &step.executor {
        Executor::Manual => {
            row.verdict = StepVerdict::Person;
            row.details.push(asked(shared, step, step_env, &engine));
        }
        // A step whose request is made of a secret would carry it to AWS with CI's credentials (a
        // bucket's access log records the prefix it was asked for), and what a change's look-up
        // finds (exists, would create `hun`, would change the display name) tells the secret
        // back: a plan sends nothing derived from a secret, for a change as for a read.
        Executor::Action { .. }
            if step_env.reads_secret(&crate::eval::step_code(step))
                || (step.attrs.for_each.is_some() && step_env.secret_item) =>
        {
            row.details
                .push("its request is made of a secret: a plan does not send it".into());
        }
        Executor::Action { .. } if changes => would_change(shared, step, step_env, &prepared, &mut row).await,
        // A read whose answer the model marks sensitive (a secret's value, minted credentials, a
        // token): a list of operations named like reads that mint is never complete, so a plan
        // reads none of them. What a run would do with it is unknown here.
        Executor::Action { .. }
            if step
                .executor
                .call()
                .and_then(|n| runbook_plugins::call::resolve(n).ok())
                .is_some_and(|c| !c.sensitive_outputs().is_empty()) =>
        {
            row.details
                .push("its answer is secret (the service model says so): a plan does not ask for it".into());
        }
        // A script over a secret: whether it fails tells something of the secret, and a plan
        // reports every step, where a run stops at the first failure (a ladder of steps, each
        // failing on one character, spelled CI's access key id in one plan). A plan does not run
        // it; later steps that read it depend on a run, as on a person's answer.
        Executor::Rhai
            if step_env.reads_secret(&crate::eval::step_code(step))
                || (step.attrs.for_each.is_some() && step_env.secret_item) =>
        {
            row.details.push(
                "it reads a secret: a plan does not run it (whether it fails would tell something of the secret)"
                    .into(),
            );
        }
        // Scripts compute and reads read, through the run's own code; the gate refuses anything
        // else they might try.
        _ => {
            let ran = tokio::time::timeout(
                READ_BUDGET,
                super::step::run_with_retries(shared, step, step_env, &prepared),
            )
            .await;
            match ran {
                Ok(Ok(outcome)) => {
                    if verify && outcome.secrecy == Secrecy::None {
                        super::verifying::read_drift(shared, step, &outcome.outputs, &mut row);
                    }
                    computed(step, env, outcome, &mut row)
                }
                Ok(Err(e)) => {
                    row.failed_running = true;
                    row.verdict = match step.executor {
                        Executor::Rhai => StepVerdict::Error,
                        _ => StepVerdict::Fails,
                    };
                    row.details.push(failure(e));
                }
                Err(_) => {
                    row.verdict = StepVerdict::Unknown;
                    row.details.push(format!(
                        "still reading after {}s; a run waits for it",
                        READ_BUDGET.as_secs()
                    ));
                }
            }
        }
    }
    Ok(row)
}

/// A script or a read that finished: its outputs are known to later steps, as in a run.
fn computed(step: &Step, env: &mut Env, outcome: Outcome, row: &mut Row) {
    row.verdict = match step.executor {
        Executor::Rhai => StepVerdict::Computed,
        _ => StepVerdict::Check,
    };
    if outcome.secrecy == Secrecy::None {
        if row.items.is_none() {
            row.details.push(outputs_detail(&outcome.outputs));
        }
        env.set_step(&step.id, outcome.outputs);
    } else {
        row.details.push("its outputs are secret".into());
        env.set_secret_step(&step.id, outcome.outputs);
    }
}

fn failure(e: StepError) -> String {
    match e {
        StepError::Failed { message, .. } => message,
        StepError::Waiting(m)
        | StepError::Refused(m)
        | StepError::Unknown(m)
        | StepError::Journal(m)
        | StepError::Events(m) => m,
        StepError::Interrupted => "interrupted".into(),
    }
}

/// What the person would be asked (the question, resolved), or that they act and confirm.
fn asked(shared: &Shared, step: &Step, env: &Env, engine: &rhai::Engine) -> String {
    let confirm = crate::manual::parse(&shared.source, step, &mut Vec::new())
        .and_then(|m| m.confirm)
        .and_then(|c| env.interpolate(engine, &c, None).ok())
        .and_then(|v| v.as_str().map(String::from));
    match confirm {
        Some(q) => format!("a person is asked: {q}"),
        None => "a person acts and confirms".into(),
    }
}

/// A step that would change AWS: a built-in action's own plan (its Describe/List/Get), per
/// item; a call by name is shown as it would be sent (its sensitive members masked).
async fn would_change(shared: &Arc<Shared>, step: &Step, env: &Env, prepared: &Prepared, row: &mut Row) {
    // Each item (its value and key) with its parameters; one with none for a single step.
    type Each<'a> = Vec<(Option<(&'a Value, String)>, Option<Value>)>;
    let each: Each = match &prepared.items {
        Some(items) => items
            .iter()
            .map(|i| (Some((&i.value, i.key.clone())), i.params.clone()))
            .collect(),
        None => vec![(None, prepared.params.clone())],
    };
    let planned = each.len().min(PLANNED_ITEMS);
    let mut worst = StepVerdict::Exists;
    for (item, params) in each.into_iter().take(planned) {
        let prefix = item.as_ref().map(|(_, k)| format!("{k}: ")).unwrap_or_default();
        let params = params.unwrap_or(Value::Null);
        let ctx = match shared.context_in(step, env, item, None, None).await {
            Ok(c) => c,
            Err(e) => {
                row.verdict = StepVerdict::Fails;
                row.details.push(format!("{prefix}{}", failure(e)));
                return;
            }
        };
        let where_ = ctx.place().map(|p| format!(" in {}", p.describe())).unwrap_or_default();
        if let Some(name) = step.executor.call() {
            let c = match runbook_plugins::call::resolve(name) {
                Ok(c) => c,
                Err(e) => {
                    row.verdict = StepVerdict::Error;
                    row.details.push(e.to_string());
                    return;
                }
            };
            if let Err(e) = c.validate(&params) {
                row.verdict = StepVerdict::Error;
                row.details.push(format!("{prefix}{e}"));
                return;
            }
            let target = runbook_plugins::call::target(c, &ctx, &params);
            row.details
                .push(format!("{prefix}would call {} {target}{where_}", c.full_name()));
            worst = StepVerdict::WouldChange;
            continue;
        }
        let Some(action) = step.executor.action().and_then(|a| shared.registry.get(a)) else {
            row.verdict = StepVerdict::Error;
            row.details.push("unknown action".into());
            return;
        };
        match action.plan(&ctx, params).await {
            Ok(p) => {
                if !where_.is_empty() {
                    row.details.push(format!("{prefix}acts{where_}"));
                }
                for i in p.items {
                    let v = StepVerdict::from_plugin(i.verdict);
                    if v.rank() > worst.rank() {
                        worst = v;
                    }
                    row.details.push(format!("{prefix}{}: {}", word(v), i.what));
                }
            }
            Err(e) => {
                row.verdict = StepVerdict::Error;
                row.details.push(format!("{prefix}{e}"));
                return;
            }
        }
    }
    if let Some(n) = row.items.filter(|n| *n > planned) {
        row.details
            .push(format!("and {} more items, planned at run time", n - planned));
        if worst.rank() < StepVerdict::Unknown.rank() {
            worst = StepVerdict::Unknown;
        }
        row.acts = true;
    }
    row.verdict = worst;
}

/// What a step computed in the plan, as its row's detail.
fn outputs_detail(v: &Value) -> String {
    let Value::Object(o) = v else {
        return v.to_string();
    };
    o.iter()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .take(4)
        .map(|(k, v)| format!("{k}={}", v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "planning_tests.rs"]
mod tests;
