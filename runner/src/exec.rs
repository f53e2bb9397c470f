//! The executor: walks a runbook's steps in order, dispatching each to a plugin, the Rhai sandbox
//! or a person; journals everything so that a run can stop, crash or hand over and resume with
//! nothing lost and nothing done twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rhai::{Dynamic, EvalAltResult};
use runbook_plugins::aws::sts::Identity;
use runbook_plugins::{Context, Event, Events, PluginError, Registry};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, OnceCell};

use crate::eval::{self, Env};
use crate::exit::Exit;
use crate::inputs::{self, Answers};
use crate::journal::{self, Journal, StepState, StepStatus};
use crate::manual::{self, Manual};
use crate::model::{Executor, Runbook, Step};
use crate::redact::Redactor;
use crate::sandbox::{self, Limits};
use crate::source::Source;
use crate::ui::Ui;

/// How a run was asked for on the command line.
pub struct RunOptions {
    pub inputs: Vec<String>,
    pub answers: Option<PathBuf>,
    pub yes: bool,
    pub step_mode: bool,
    pub from: Option<String>,
    pub only: Option<String>,
    pub restart: bool,
    pub max_in_flight: usize,
    pub state_dir: PathBuf,
    pub color: bool,
    pub rehearsal: bool,
}

/// Why a step did not finish.
#[derive(Debug)]
pub enum StepError {
    Failed {
        message: String,
        hint: Option<String>,
    },
    /// A person has to act; the message says how to answer.
    Waiting(String),
    Interrupted,
}

impl StepError {
    fn failed(message: impl Into<String>) -> Self {
        StepError::Failed {
            message: message.into(),
            hint: None,
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, StepError::Failed { .. })
    }
}

impl From<PluginError> for StepError {
    fn from(e: PluginError) -> Self {
        StepError::Failed {
            hint: e.hint(),
            message: e.to_string(),
        }
    }
}

/// What every task of a run shares.
pub struct Shared {
    pub registry: Registry,
    pub ctx: Context,
    pub journal: Mutex<Journal>,
    pub ui: Ui,
    pub redactor: Redactor,
    pub interrupted: Arc<AtomicBool>,
    pub interrupt: Notify,
    identity: OnceCell<Result<Identity, String>>,
    management: OnceCell<Result<String, String>>,
    pub source: Source,
    pub runbook: Runbook,
    pub answers: Answers,
    pub opts: RunOptions,
}

/// Journals a plugin's events and shows them.
struct StepEvents {
    shared: Arc<Shared>,
    step: String,
    item: Option<String>,
}

impl Events for StepEvents {
    fn event(&self, event: Event) {
        let ui = &self.shared.ui;
        let (name, durable) = match &event {
            Event::Intent { call, target } => {
                ui.status(&format!("{}  {call} {target}", self.step));
                ("intent", true)
            }
            Event::Requested { .. } => ("requested", true),
            Event::Polling { what, status, .. } => {
                ui.status(&format!("{}  waiting for {what}: {status}", self.step));
                return;
            }
            Event::Note { message } => {
                ui.note(message);
                ("note", false)
            }
            Event::Warning { message } => {
                ui.warn(message);
                ("warning", false)
            }
        };
        let mut fields = serde_json::to_value(&event).unwrap_or(Value::Null);
        if let Value::Object(o) = &mut fields {
            o.remove("event");
            o.insert("step".into(), json!(self.step));
            if let Some(i) = &self.item {
                o.insert("item_key".into(), json!(i));
            }
        }
        if let Ok(mut j) = self.shared.journal.lock() {
            if let Err(e) = j.record(name, fields, durable) {
                ui.warn(&format!("journal: {e}"));
            }
        }
    }
}

impl Shared {
    fn record(&self, event: &str, fields: Value, durable: bool) -> Result<(), StepError> {
        let mut j = self
            .journal
            .lock()
            .map_err(|_| StepError::failed("journal lock poisoned"))?;
        j.record(event, fields, durable)
            .map_err(|e| StepError::failed(e.to_string()))
    }

    fn save(&self) -> Result<(), StepError> {
        let mut j = self
            .journal
            .lock()
            .map_err(|_| StepError::failed("journal lock poisoned"))?;
        j.save().map_err(|e| StepError::failed(e.to_string()))
    }

    fn set_step_state(&self, id: &str, st: StepState) -> Result<(), StepError> {
        {
            let mut j = self
                .journal
                .lock()
                .map_err(|_| StepError::failed("journal lock poisoned"))?;
            j.state.steps.insert(id.to_string(), st);
        }
        self.save()
    }

    fn step_state(&self, id: &str) -> Option<StepState> {
        self.journal.lock().ok().and_then(|j| j.state.steps.get(id).cloned())
    }

    fn context_for(self: &Arc<Self>, step: &Step, item: Option<String>) -> Context {
        self.context_with(step, item, None)
    }

    fn context_with(
        self: &Arc<Self>,
        step: &Step,
        item: Option<String>,
        memo: Option<Arc<runbook_plugins::Memo>>,
    ) -> Context {
        let deadline = step
            .attrs
            .timeout
            .as_ref()
            .and_then(|t| runbook_plugins::aws::parse_duration(&t.value))
            .map(|d| Instant::now() + d);
        self.ctx
            .with_events(Arc::new(StepEvents {
                shared: self.clone(),
                step: step.id.clone(),
                item,
            }))
            .with_deadline(deadline)
            .with_memo(memo)
    }

    async fn identity(&self) -> Result<&Identity, StepError> {
        self.identity
            .get_or_init(|| async {
                runbook_plugins::aws::sts::caller(&self.ctx)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map_err(|e| StepError::failed(format!("cannot tell who is calling: {e}")))
    }

    /// Who is acting, for prompts and the transcript ("123456789012 as AdministratorAccess/alice").
    fn who(&self) -> Option<String> {
        match self.identity.get() {
            Some(Ok(id)) => Some(format!(
                "{} as {}",
                id.account_id,
                if id.is_root { "root" } else { &id.name }
            )),
            _ => None,
        }
    }

    /// Checks the runbook's guard before a mutating step.
    async fn guard(&self, env: &Env) -> Result<(), StepError> {
        let Some(guard) = self.runbook.settings.guard.clone() else {
            return Ok(());
        };
        let engine = sandbox::engine(Limits::default(), None, None);
        let text = |v: &Option<String>| -> Result<Option<String>, StepError> {
            match v {
                Some(s) => match env.interpolate(&engine, s, None).map_err(StepError::failed)? {
                    Value::String(s) => Ok(Some(s)),
                    other => Ok(Some(other.to_string())),
                },
                None => Ok(None),
            }
        };
        let account = text(&guard.account)?;
        let region = text(&guard.region)?;
        let id = self.identity().await?;
        match account.as_deref() {
            None | Some("any") => {}
            Some("management") => {
                let mgmt = self
                    .management
                    .get_or_init(|| async {
                        match runbook_plugins::aws::organizations::describe(&self.ctx).await {
                            Ok(Some(o)) => Ok(o.management_account_id),
                            Ok(None) => Ok(id.account_id.clone()), // no organization yet: this account will manage it
                            Err(e) => Err(e.to_string()),
                        }
                    })
                    .await
                    .clone()
                    .map_err(|e| StepError::failed(format!("guard: {e}")))?;
                if mgmt != id.account_id {
                    return Err(StepError::Failed {
                        message: format!(
                            "guard: this runbook must run as the management account {mgmt}, but the credentials are for {}",
                            id.account_id
                        ),
                        hint: Some("sign in to the management account (or pick its --profile) and run again".into()),
                    });
                }
            }
            Some(want) => {
                if want != id.account_id {
                    return Err(StepError::Failed {
                        message: format!(
                            "guard: this runbook must run in account {want}, but the credentials are for {}",
                            id.account_id
                        ),
                        hint: Some("pick the right --profile and run again".into()),
                    });
                }
            }
        }
        if let Some(want) = region {
            let have = self.ctx.region().await.map_err(StepError::from)?;
            if want != have {
                return Err(StepError::Failed {
                    message: format!("guard: this runbook must run in region {want}, but the region is {have}"),
                    hint: Some(format!("run with --region {want}")),
                });
            }
        }
        Ok(())
    }
}

fn describe_step(step: &Step) -> String {
    match &step.executor {
        Executor::Aws { action } => format!("aws {action}"),
        Executor::Net { action } => format!("net {action}"),
        Executor::Manual => "manual".into(),
        Executor::Rhai => "rhai".into(),
    }
}

/// The hash that decides whether a completed step must run again: its source and the values
/// it reads. Secret inputs count as `<secret>`, so they are never written down, even hashed.
pub fn step_hash(step: &Step, source: &Source, env: &Env, secrets: &[String]) -> String {
    let info = &source.text[step.info_span.start..step.info_span.end];
    let mut referenced = env.referenced(&format!("{info}\n{}", step.body));
    if let Value::Object(o) = &mut referenced {
        for s in secrets {
            if let Some(v) = o.get_mut(&format!("inputs.{s}")) {
                *v = json!("<secret>");
            }
        }
    }
    let mut h = Sha256::new();
    h.update(info.as_bytes());
    h.update(b"\n");
    h.update(step.body.as_bytes());
    h.update(b"\n");
    h.update(referenced.to_string().as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// Runs a runbook. `ctx` carries the AWS settings (real, or the rehearsal emulator).
pub async fn run(source: Source, runbook: Runbook, ctx: Context, opts: RunOptions) -> Exit {
    let redactor = Redactor::default();
    let ui = Ui::new(opts.color, redactor.clone());
    let answers = match &opts.answers {
        Some(p) => match Answers::load(p) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("runbook: {e}");
                return Exit::Usage;
            }
        },
        None => Answers::default(),
    };
    let dir = journal::dir_for(&opts.state_dir, Path::new(&runbook.path));
    let journal = match Journal::open(&dir, &runbook.path, opts.restart, redactor.clone()) {
        Ok(j) => j,
        Err(e @ journal::JournalError::Io { .. }) => {
            eprintln!(
                "runbook: cannot keep the journal in {}: {e}\n  nothing was run; free some space or choose another --state-dir (RUNBOOK_STATE_DIR)",
                dir.display()
            );
            return Exit::Usage;
        }
        Err(e) => {
            eprintln!("runbook: {e}");
            return Exit::Usage;
        }
    };
    let shared = Arc::new(Shared {
        registry: Registry::builtin(),
        ctx,
        journal: Mutex::new(journal),
        ui,
        redactor,
        interrupted: Arc::new(AtomicBool::new(false)),
        interrupt: Notify::new(),
        identity: OnceCell::new(),
        management: OnceCell::new(),
        source,
        runbook,
        answers,
        opts,
    });
    {
        let s = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                s.interrupted.store(true, Ordering::SeqCst);
                s.interrupt.notify_waiters();
            }
        });
    }
    let exit = drive(shared.clone()).await;
    let outcome = match exit {
        Exit::Done => "done",
        Exit::StepFailed => "failed",
        Exit::WaitingForPerson => "waiting",
        Exit::Interrupted => "interrupted",
        Exit::Usage => "stopped",
    };
    if let Ok(mut j) = shared.journal.lock() {
        j.state.outcome = Some(outcome.into());
        let _ = j.record("run-finished", json!({ "outcome": outcome }), true);
        if let Err(e) = j.save() {
            eprintln!("runbook: {e}");
        }
    }
    exit
}

async fn drive(shared: Arc<Shared>) -> Exit {
    let rb = &shared.runbook;
    let opts = &shared.opts;
    for id in [&opts.from, &opts.only].into_iter().flatten() {
        if rb.step(id).is_none() {
            let ids: Vec<&str> = rb.steps.iter().map(|s| s.id.as_str()).collect();
            eprintln!("runbook: no step `{id}` in {} (steps: {})", rb.path, ids.join(", "));
            return Exit::Usage;
        }
    }
    if opts.step_mode && !crate::prompt::interactive() {
        eprintln!("runbook: --step needs a terminal to ask in");
        return Exit::Usage;
    }
    for sid in shared.answers.steps.keys() {
        if rb.step(sid).is_none() {
            eprintln!(
                "runbook: answers file names step `{sid}`, which {} does not have",
                rb.path
            );
            return Exit::Usage;
        }
    }
    let (mut env, secrets) = match resolve_inputs(&shared) {
        Ok(x) => x,
        Err(exit) => return exit,
    };
    if let Ok(mut j) = shared.journal.lock() {
        j.begin_run();
        env.run.insert("id".into(), json!(j.state.run_id));
        env.run.insert("started".into(), json!(j.state.started));
        let stored: BTreeMap<String, Value> = env
            .inputs
            .iter()
            .filter(|(k, _)| !secrets.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        j.state.inputs = stored;
        let _ = j.record(
            "run-started",
            json!({ "runbook": rb.path, "user": journal::os_user(), "rehearsal": opts.rehearsal }),
            true,
        );
    }
    env.run.insert("user".into(), json!(journal::os_user()));
    env.run.insert("rehearsal".into(), json!(opts.rehearsal));
    env.run
        .insert("state_dir".into(), json!(shared.ctx.state_dir().display().to_string()));
    if let Err(StepError::Failed { message, .. }) = shared.save() {
        eprintln!("runbook: {message}");
        return Exit::Usage;
    }

    shared.ui.line(&format!(
        "{} — {} step{}",
        rb.title,
        rb.steps.len(),
        if rb.steps.len() == 1 { "" } else { "s" }
    ));
    let from_index = opts
        .from
        .as_ref()
        .and_then(|f| rb.steps.iter().position(|s| &s.id == f))
        .unwrap_or(0);
    let mut shown_sections = std::collections::HashSet::new();
    let (mut ran, mut reused, mut skipped) = (0usize, 0usize, 0usize);
    let started = Instant::now();

    for (index, step) in rb.steps.iter().enumerate() {
        if shared.interrupted.load(Ordering::SeqCst) {
            return interrupted(&shared, &step.id);
        }
        let recorded = shared.step_state(&step.id);
        let forced = opts.only.as_deref() == Some(step.id.as_str()) || (opts.from.is_some() && index >= from_index);
        let out_of_scope = opts.only.as_ref().is_some_and(|o| o != &step.id) || index < from_index;
        if out_of_scope {
            if let Some(st) = recorded.filter(|s| s.status == StepStatus::Done || s.status == StepStatus::Skipped) {
                env.set_step(&step.id, st.outputs);
            }
            continue;
        }
        let engine = sandbox::engine(Limits::default(), None, Some(shared.interrupted.clone()));
        if let Some(cond) = &step.attrs.if_ {
            match env.eval(&engine, &cond.value, None).and_then(|d| eval::truthy(&d)) {
                Ok(true) => {}
                Ok(false) => {
                    skipped += 1;
                    shared
                        .ui
                        .step_finished(&step.id, "skipped", &format!("condition `{}` is false", cond.value));
                    let st = StepState {
                        status: StepStatus::Skipped,
                        hash: String::new(),
                        outputs: json!({ "skipped": true }),
                        started: None,
                        finished: Some(journal::now()),
                        error: None,
                        waiting_for: None,
                    };
                    env.set_step(&step.id, st.outputs.clone());
                    let _ = shared.record(
                        "step-skipped",
                        json!({ "step": step.id, "reason": "condition false" }),
                        false,
                    );
                    if let Err(StepError::Failed { message, .. }) = shared.set_step_state(&step.id, st) {
                        eprintln!("runbook: {message}");
                        return Exit::Usage;
                    }
                    continue;
                }
                Err(e) => return fail(&shared, step, &format!("`if` condition: {e}"), None),
            }
        }
        let hash = step_hash(step, &shared.source, &env, &secrets);
        if let Some(st) = &recorded {
            if st.status == StepStatus::Done && st.hash == hash && !forced {
                reused += 1;
                shared.ui.step_finished(
                    &step.id,
                    "done",
                    &format!("already done ({})", st.finished.as_deref().unwrap_or("earlier")),
                );
                env.set_step(&step.id, st.outputs.clone());
                continue;
            }
            if st.status == StepStatus::Done && st.hash != hash && !forced {
                shared
                    .ui
                    .note(&format!("{} changed since it last ran: running it again", step.id));
            }
        }
        if opts.step_mode {
            match step_gate(&shared, step, &env).await {
                Gate::Run => {}
                Gate::Skip => {
                    shared.ui.step_finished(&step.id, "skipped", "skipped by the operator");
                    let _ = shared.record("step-skipped", json!({ "step": step.id, "reason": "operator" }), false);
                    continue;
                }
                Gate::Quit => {
                    shared.ui.line("stopped; run the same command again to continue here");
                    return Exit::WaitingForPerson;
                }
            }
        }
        if let Some(section) = rb.section_of(step) {
            if step.executor.word() == "manual" && shown_sections.insert(section.slug.clone()) {
                let width = console::Term::stdout().size().1 as usize;
                shared.ui.block(&format!(
                    "\n{}",
                    crate::prose::render(
                        &format!("## {}\n\n{}", section.title, section.prose),
                        width,
                        shared.ui.color()
                    )
                ));
            }
        }

        let begun = journal::now();
        shared.ui.step_started(&step.id, &describe_step(step));
        let _ = shared.record("step-started", json!({ "step": step.id, "hash": hash }), false);
        let _ = shared.set_step_state(
            &step.id,
            StepState {
                status: StepStatus::Running,
                hash: hash.clone(),
                outputs: Value::Null,
                started: Some(begun.clone()),
                finished: None,
                error: None,
                waiting_for: None,
            },
        );
        let t0 = Instant::now();
        let result = run_with_retries(&shared, step, &env, &hash).await;
        match result {
            Ok(outputs) => {
                ran += 1;
                shared.ui.step_finished(
                    &step.id,
                    "done",
                    &format!("{:.1}s{}", t0.elapsed().as_secs_f64(), summary(&outputs)),
                );
                let _ = shared.record(
                    "step-finished",
                    json!({ "step": step.id, "hash": hash, "outputs": outputs }),
                    true,
                );
                env.set_step(&step.id, outputs.clone());
                let st = StepState {
                    status: StepStatus::Done,
                    hash,
                    outputs,
                    started: Some(begun),
                    finished: Some(journal::now()),
                    error: None,
                    waiting_for: None,
                };
                if let Err(StepError::Failed { message, .. }) = shared.set_step_state(&step.id, st) {
                    eprintln!("runbook: {message}");
                    return Exit::StepFailed;
                }
            }
            Err(StepError::Waiting(msg)) => {
                shared.ui.step_finished(&step.id, "waiting", "waiting for a person");
                let _ = shared.record("waiting", json!({ "step": step.id, "for": msg }), true);
                let st = StepState {
                    status: StepStatus::Waiting,
                    hash,
                    outputs: Value::Null,
                    started: Some(begun),
                    finished: None,
                    error: None,
                    waiting_for: Some(msg.clone()),
                };
                let _ = shared.set_step_state(&step.id, st);
                eprintln!("runbook: waiting for a person at step `{}`: {msg}", step.id);
                eprintln!("runbook: the journal is saved; run the same command again to continue");
                return Exit::WaitingForPerson;
            }
            Err(StepError::Interrupted) => return interrupted(&shared, &step.id),
            Err(StepError::Failed { message, hint }) => {
                let _ = shared.set_step_state(
                    &step.id,
                    StepState {
                        status: StepStatus::Failed,
                        hash,
                        outputs: Value::Null,
                        started: Some(begun),
                        finished: Some(journal::now()),
                        error: Some(message.clone()),
                        waiting_for: None,
                    },
                );
                return fail(&shared, step, &message, hint);
            }
        }
    }
    shared.ui.line(&format!(
        "finished in {:.1}s: {ran} ran, {reused} already done, {skipped} skipped",
        started.elapsed().as_secs_f64()
    ));
    Exit::Done
}

fn summary(outputs: &Value) -> String {
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

fn interrupted(shared: &Shared, step: &str) -> Exit {
    let _ = shared.record("interrupted", json!({ "step": step }), true);
    let _ = shared.save();
    shared.ui.line(&format!(
        "interrupted at {step}; the journal is saved, run again to resume"
    ));
    Exit::Interrupted
}

fn fail(shared: &Shared, step: &Step, message: &str, hint: Option<String>) -> Exit {
    shared.ui.step_finished(&step.id, "failed", "");
    let _ = shared.record("step-failed", json!({ "step": step.id, "error": message }), true);
    let (line, col) = shared.source.line_col(step.span.start);
    let mut text = format!(
        "{}:{line}:{col}: error: step `{}` failed: {message}",
        shared.runbook.path, step.id
    );
    if let Some(h) = hint {
        text.push_str(&format!("\n  = help: {h}"));
    }
    if let Some(target) = &step.attrs.on_failure {
        let next = if let Some(anchor) = target.value.strip_prefix('#') {
            format!("see #{anchor} in {}", shared.runbook.path)
        } else {
            let path = crate::paths::resolve_within(
                Path::new(&shared.runbook.path),
                target.value.split('#').next().unwrap_or(""),
            )
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| target.value.clone());
            format!("read {path}, or run: runbook run {path}")
        };
        text.push_str(&format!("\n  = next: {next}"));
    }
    eprintln!("{}", shared.redactor.text(&text));
    Exit::StepFailed
}

enum Gate {
    Run,
    Skip,
    Quit,
}

/// `run --step`: shows what the step will do, then asks.
async fn step_gate(shared: &Arc<Shared>, step: &Step, env: &Env) -> Gate {
    shared.ui.line(&format!("next: {}  {}", step.id, describe_step(step)));
    if let Some(action) = step.executor.action() {
        let engine = sandbox::engine(Limits::default(), None, None);
        match eval::toml_body(&step.body).and_then(|b| env.resolve(&engine, &b, None)) {
            Ok(params) => {
                shared
                    .ui
                    .block(&format!("  parameters: {}", shared.redactor.value(&params)));
                if let Some(a) = shared.registry.get(&action) {
                    match a.plan(&shared.context_for(step, None), params).await {
                        Ok(plan) => {
                            for i in plan.items {
                                shared.ui.block(&format!("  {:?}: {}", i.verdict, i.what));
                            }
                        }
                        Err(e) => shared.ui.block(&format!("  plan: {e}")),
                    }
                }
            }
            Err(e) => shared.ui.block(&format!("  parameters: {e}")),
        }
    }
    match shared.ui.suspend(|| crate::prompt::run_skip_quit(&step.id)) {
        Ok(0) => Gate::Run,
        Ok(1) => Gate::Skip,
        _ => Gate::Quit,
    }
}

async fn run_with_retries(shared: &Arc<Shared>, step: &Step, env: &Env, hash: &str) -> Result<Value, StepError> {
    let retries: u32 = step
        .attrs
        .retries
        .as_ref()
        .and_then(|r| r.value.parse().ok())
        .unwrap_or(0);
    let mut attempt = 0;
    loop {
        let fut = run_step(shared, step, env, hash);
        let res = tokio::select! {
            r = fut => r,
            _ = shared.interrupt.notified() => Err(StepError::Interrupted),
        };
        match res {
            Err(e) if e.retryable() && attempt < retries && !shared.interrupted.load(Ordering::SeqCst) => {
                attempt += 1;
                let wait = Duration::from_secs(1 << attempt.min(5));
                if let StepError::Failed { message, .. } = &e {
                    shared.ui.warn(&format!(
                        "{} failed ({message}); retry {attempt} of {retries} in {}s",
                        step.id,
                        wait.as_secs()
                    ));
                }
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

async fn run_step(shared: &Arc<Shared>, step: &Step, env: &Env, hash: &str) -> Result<Value, StepError> {
    let Some(list) = &step.attrs.for_each else {
        return run_once(shared, step, env, None, None, None).await;
    };
    let engine = sandbox::engine(Limits::default(), None, Some(shared.interrupted.clone()));
    let items = match env.eval(&engine, &list.value, None).map(|d| eval::to_json(&d)) {
        Ok(Value::Array(a)) => a,
        Ok(other) => return Err(StepError::failed(format!("`for-each` must give a list, got {other}"))),
        Err(e) => return Err(StepError::failed(format!("`for-each`: {e}"))),
    };
    fan_out(shared, step, env, hash, items).await
}

fn item_key(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs a step once per item, at most `--max-in-flight` at a time. Each finished item is
/// journaled as it finishes, so a re-run retries only what failed or never finished.
/// What a fan-out did, printed as a table at its end and journaled.
struct FanoutSummary<'a> {
    step: &'a str,
    total: usize,
    already: usize,
    done_now: usize,
    failed: usize,
    throttled: u64,
    limit: usize,
    lowest: usize,
    now: usize,
    halved: u32,
    seconds: f64,
}

impl FanoutSummary<'_> {
    fn table(&self) -> String {
        let concurrency = if self.halved == 0 {
            format!("{} (never throttled down)", self.limit)
        } else {
            format!(
                "{} -> lowest {} -> {} (halved {} time{})",
                self.limit,
                self.lowest,
                self.now,
                self.halved,
                if self.halved == 1 { "" } else { "s" }
            )
        };
        let rows = [
            ("items", self.total.to_string()),
            ("done before this run", self.already.to_string()),
            ("done now", self.done_now.to_string()),
            ("failed", self.failed.to_string()),
            (
                "waiting",
                (self.total - self.already - self.done_now - self.failed).to_string(),
            ),
            ("throttled responses", self.throttled.to_string()),
            ("concurrency", concurrency),
            ("time", format!("{:.1}s", self.seconds)),
        ];
        let mut o = format!("  {} summary\n", self.step);
        for (k, v) in rows {
            o.push_str(&format!("    {k:<22} {v}\n"));
        }
        o
    }

    fn json(&self) -> Value {
        json!({
            "step": self.step, "items": self.total, "already": self.already, "done": self.done_now,
            "failed": self.failed, "throttled": self.throttled, "max_in_flight": self.limit,
            "lowest_in_flight": self.lowest, "halved": self.halved, "seconds": self.seconds,
        })
    }
}

async fn fan_out(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    hash: &str,
    items: Vec<Value>,
) -> Result<Value, StepError> {
    let done_before = shared
        .journal
        .lock()
        .map(|j| j.finished_items(&step.id, hash))
        .unwrap_or_default();
    let bar = shared.ui.fanout(&step.id, items.len() as u64);
    let mut results: Vec<Option<Value>> = vec![None; items.len()];
    let mut todo = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match done_before.get(&item_key(item)) {
            Some(out) => {
                results[i] = Some(out.clone());
                bar.item_finished(true, &shared.ui);
            }
            None => todo.push((i, item.clone())),
        }
    }
    if !done_before.is_empty() {
        shared.ui.note(&format!(
            "{}: {} of {} items were already done",
            step.id,
            items.len() - todo.len(),
            items.len()
        ));
    }
    let limit = shared.opts.max_in_flight.max(1);
    let memo = Some(Arc::new(runbook_plugins::Memo::default()));
    // AIMD under the --max-in-flight ceiling: throttles seen by any client halve it, finished
    // items grow it back.
    let pressure = shared.ctx.pressure().clone();
    let adaptive = pressure.adaptive(limit);
    let throttled_before = pressure.throttled();
    let started = Instant::now();
    let already = items.len() - todo.len();
    let mut failures = Vec::new();
    let mut stream = futures::stream::iter(todo)
        .map(|(i, item)| {
            let memo = memo.clone();
            let adaptive = &adaptive;
            async move {
                let _permit = adaptive.acquire().await;
                let key = item_key(&item);
                let r = run_once(shared, step, env, Some(&item), Some(key.clone()), memo).await;
                if r.is_ok() {
                    adaptive.succeeded();
                }
                (i, key, r)
            }
        })
        .buffer_unordered(limit);
    let outcome = async {
        while let Some((i, key, r)) = stream.next().await {
            match r {
                Ok(out) => {
                    shared.record(
                        "item-finished",
                        json!({ "step": step.id, "hash": hash, "item_key": key, "outputs": out }),
                        true,
                    )?;
                    bar.item_finished(true, &shared.ui);
                    results[i] = Some(out);
                }
                Err(StepError::Failed { message, .. }) => {
                    let _ = shared.record(
                        "item-failed",
                        json!({ "step": step.id, "item_key": key, "error": message }),
                        true,
                    );
                    bar.item_finished(false, &shared.ui);
                    failures.push(format!("{key}: {message}"));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
    .await;
    drop(stream);
    outcome?;
    let (ok, failed) = bar.finish();
    let (now, lowest, halved) = adaptive.stats();
    let summary = FanoutSummary {
        step: &step.id,
        total: items.len(),
        already,
        done_now: ok as usize - already.min(ok as usize),
        failed: failed as usize,
        throttled: pressure.throttled() - throttled_before,
        limit,
        lowest,
        now,
        halved,
        seconds: started.elapsed().as_secs_f64(),
    };
    shared.ui.block(&summary.table());
    let _ = shared.record("fanout-summary", summary.json(), false);
    if !failures.is_empty() {
        return Err(StepError::Failed {
            message: format!(
                "{} of {} items failed: {}",
                failures.len(),
                items.len(),
                failures.join("; ")
            ),
            hint: Some("the others are journaled; run again to retry only the failed ones".into()),
        });
    }
    Ok(json!({ "items": items, "results": results.into_iter().map(|r| r.unwrap_or(Value::Null)).collect::<Vec<_>>() }))
}

async fn run_once(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<&Value>,
    key: Option<String>,
    memo: Option<Arc<runbook_plugins::Memo>>,
) -> Result<Value, StepError> {
    match &step.executor {
        Executor::Aws { .. } | Executor::Net { .. } => {
            let name = step.executor.action().unwrap_or_default();
            let action = shared
                .registry
                .get(&name)
                .ok_or_else(|| StepError::failed(format!("unknown action `{name}`")))?;
            let engine = sandbox::engine(Limits::default(), None, Some(shared.interrupted.clone()));
            let params = eval::toml_body(&step.body)
                .and_then(|b| env.resolve(&engine, &b, item))
                .map_err(|e| StepError::failed(format!("parameters: {e}")))?;
            if action.info().mutates {
                shared.guard(env).await?;
            }
            let ctx = shared.context_with(step, key, memo);
            Ok(action.apply(&ctx, params).await?)
        }
        Executor::Manual => run_manual(shared, step, env, item).await,
        Executor::Rhai => run_rhai(shared, step, env, item, key).await,
    }
}

async fn run_manual(shared: &Arc<Shared>, step: &Step, env: &Env, item: Option<&Value>) -> Result<Value, StepError> {
    let mut sink = Vec::new();
    let Some(m) = manual::parse(&shared.source, step, &mut sink) else {
        return Err(StepError::failed(
            "the manual step's body does not parse; run `runbook check`",
        ));
    };
    let engine = sandbox::engine(Limits::default(), None, None);
    let text = |s: &Option<String>| -> Result<Option<String>, StepError> {
        s.as_ref()
            .map(|t| {
                env.interpolate(&engine, t, item)
                    .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
            })
            .transpose()
            .map_err(StepError::failed)
    };
    if let Some(instr) = text(&m.instructions)? {
        shared.ui.block(&format!("\n{}\n", instr.trim_end()));
    }
    let question = text(&m.confirm)?.unwrap_or_else(|| "Done?".to_string());
    let (answers, via) = collect_answers(shared, step, &m, &question)?;
    // A person confirmed: check what can be checked before calling it done.
    if let Some(v) = &m.verify {
        let name = manual::verify_action(v).map_err(StepError::failed)?;
        let action = shared
            .registry
            .get(&name)
            .ok_or_else(|| StepError::failed(format!("unknown action `{name}`")))?;
        shared.ui.status(&format!("{}  verifying with {name}", step.id));
        if let Err(e) = action.apply(&shared.context_for(step, None), json!({})).await {
            return Err(StepError::Failed {
                message: format!("confirmed, but the check `{name}` disagrees: {e}"),
                hint: e.hint().or_else(|| Some("finish the step, then run again".into())),
            });
        }
    }
    let mut shown = serde_json::Map::new();
    for (name, input) in &m.ask {
        if let Some(v) = answers.get(name) {
            shown.insert(
                name.clone(),
                if input.secret {
                    json!(crate::redact::MASK)
                } else {
                    json!(v)
                },
            );
        }
    }
    shared.record(
        "confirmed",
        json!({ "step": step.id, "question": question, "who": { "os_user": journal::os_user(), "caller": shared.who() }, "via": via, "answers": shown }),
        true,
    )?;
    let mut out = serde_json::Map::new();
    out.insert("confirmed".into(), json!(true));
    for (k, v) in answers {
        out.insert(k, json!(v));
    }
    Ok(Value::Object(out))
}

/// Gets the confirmation and the answers from the answers file, `--yes`, or a person.
fn collect_answers(
    shared: &Shared,
    step: &Step,
    m: &Manual,
    question: &str,
) -> Result<(BTreeMap<String, String>, &'static str), StepError> {
    let mut answers = BTreeMap::new();
    let need = || {
        let mut keys = vec!["confirm = true".to_string()];
        keys.extend(m.ask.iter().map(|(n, _)| format!("{n} = \"...\"")));
        format!(
            "answer in the answers file under [steps.{}]: {}",
            step.id,
            keys.join(", ")
        )
    };
    if let Some(given) = shared.answers.steps.get(&step.id) {
        for k in given.keys() {
            if k != "confirm" && !m.ask.iter().any(|(n, _)| n == k) {
                return Err(StepError::failed(format!(
                    "answers file: step `{}` asks no `{k}`",
                    step.id
                )));
            }
        }
        if given.get("confirm").and_then(toml::Value::as_bool) != Some(true) {
            return Err(StepError::Waiting(format!("not confirmed; {}", need())));
        }
        for (name, input) in &m.ask {
            let v = match given.get(name).and_then(Answers::text) {
                Some(v) => v,
                None if crate::prompt::interactive() => shared
                    .ui
                    .suspend(|| crate::prompt::ask(name, input))
                    .map_err(prompt_error)?,
                None => match &input.default {
                    Some(d) => d.clone(),
                    None => return Err(StepError::Waiting(need())),
                },
            };
            inputs::validate(name, input, &v).map_err(|e| StepError::failed(format!("answers file: {e}")))?;
            if input.secret {
                shared.redactor.add(&v);
            }
            answers.insert(name.clone(), v);
        }
        return Ok((answers, "answers-file"));
    }
    if crate::prompt::interactive() {
        let q = match shared.who() {
            Some(who) => format!("{question} ({who})"),
            None => question.to_string(),
        };
        let yes = shared.ui.suspend(|| crate::prompt::confirm(&q)).map_err(prompt_error)?;
        if !yes {
            return Err(StepError::Waiting(
                "the person did not confirm; run again when the step is done".into(),
            ));
        }
        for (name, input) in &m.ask {
            let v = shared
                .ui
                .suspend(|| crate::prompt::ask(name, input))
                .map_err(prompt_error)?;
            if input.secret {
                shared.redactor.add(&v);
            }
            answers.insert(name.clone(), v);
        }
        return Ok((answers, "terminal"));
    }
    if shared.opts.yes && m.ask.is_empty() {
        return Ok((answers, "--yes"));
    }
    Err(StepError::Waiting(need()))
}

fn prompt_error(e: std::io::Error) -> StepError {
    if e.kind() == std::io::ErrorKind::Interrupted || e.to_string().contains("interrupted") {
        StepError::Interrupted
    } else {
        StepError::failed(format!("prompt: {e}"))
    }
}

async fn run_rhai(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<&Value>,
    key: Option<String>,
) -> Result<Value, StepError> {
    let shared2 = shared.clone();
    let step2 = step.clone();
    let env2 = env.clone();
    let item2 = item.cloned();
    let handle = tokio::runtime::Handle::current();
    let limits = Limits::default();
    let res = tokio::task::spawn_blocking(move || {
        let log_shared = shared2.clone();
        let log_step = step2.id.clone();
        let log: sandbox::Log = Arc::new(move |s: &str| {
            log_shared.ui.line(&format!("  {log_step}: {s}"));
            let _ = log_shared.record("log", json!({ "step": log_step, "message": s }), false);
        });
        let mut engine = sandbox::engine(limits, Some(log), Some(shared2.interrupted.clone()));
        engine.register_fn("fail", |msg: &str| -> Result<(), Box<EvalAltResult>> {
            Err(msg.into())
        });
        let warn_shared = shared2.clone();
        engine.register_fn("warn", move |msg: &str| warn_shared.ui.warn(msg));
        let p_shared = shared2.clone();
        let p_step = step2.clone();
        let p_env = env2.clone();
        engine.register_fn(
            "plugin",
            move |action: &str, params: rhai::Map| -> Result<Dynamic, Box<EvalAltResult>> {
                let a = p_shared
                    .registry
                    .get(action)
                    .ok_or_else(|| format!("unknown action `{action}`"))?;
                let params = eval::to_json(&Dynamic::from_map(params));
                let ctx = p_shared.context_for(&p_step, key.clone());
                let out = handle.block_on(async {
                    if a.info().mutates {
                        p_shared.guard(&p_env).await.map_err(|e| match e {
                            StepError::Failed { message, .. } => message,
                            other => format!("{other:?}"),
                        })?;
                    }
                    a.apply(&ctx, params).await.map_err(|e| e.to_string())
                })?;
                Ok(rhai::serde::to_dynamic(out).unwrap_or(Dynamic::UNIT))
            },
        );
        let mut scope = env2.scope(item2.as_ref());
        engine.eval_with_scope::<Dynamic>(&mut scope, &step2.body)
    })
    .await
    .map_err(|e| StepError::failed(format!("script task: {e}")))?;
    match res {
        Ok(d) => Ok(match eval::to_json(&d) {
            Value::Object(o) => Value::Object(o),
            Value::Null => json!({}),
            other => json!({ "value": other }),
        }),
        Err(e) => {
            if shared.interrupted.load(Ordering::SeqCst) {
                return Err(StepError::Interrupted);
            }
            let pos = e.position();
            let at = match pos.line() {
                Some(l) => {
                    let span = step.body_line_col(l, pos.position().unwrap_or(1));
                    let (line, col) = shared.source.line_col(span.start);
                    format!(" at {}:{line}:{col}", shared.runbook.path)
                }
                None => String::new(),
            };
            Err(StepError::failed(format!(
                "script{at}: {}",
                sandbox::describe(&e, &limits)
            )))
        }
    }
}

/// Resolves every declared input, in the order the runbook declares them.
fn resolve_inputs(shared: &Shared) -> Result<(Env, Vec<String>), Exit> {
    let rb = &shared.runbook;
    let flags = inputs::flags(&shared.opts.inputs).map_err(|e| {
        eprintln!("runbook: {e}");
        Exit::Usage
    })?;
    let known: Vec<&str> = rb.settings.inputs.keys().map(String::as_str).collect();
    for (name, src) in flags
        .keys()
        .map(|k| (k, "--input"))
        .chain(shared.answers.inputs.keys().map(|k| (k, "answers file")))
    {
        if !rb.settings.inputs.contains_key(name) {
            eprintln!(
                "runbook: {}",
                inputs::InputError::Unknown {
                    source_: src.into(),
                    name: name.clone(),
                    known: known.join(", ")
                }
            );
            return Err(Exit::Usage);
        }
    }
    let stored = shared
        .journal
        .lock()
        .map(|j| j.state.inputs.clone())
        .unwrap_or_default();
    let mut ordered: Vec<(&String, &crate::model::Input)> = rb.settings.inputs.iter().collect();
    ordered.sort_by_key(|(_, i)| i.span.start);
    let mut env = Env::default();
    let mut secrets = Vec::new();
    for (name, input) in ordered {
        let (value, from) = if let Some(v) = flags.get(name) {
            (Some(v.clone()), "--input")
        } else if let Some(v) = shared.answers.inputs.get(name) {
            match Answers::text(v) {
                Some(t) => (Some(t), "answers file"),
                None => {
                    eprintln!("runbook: answers file: input `{name}` must be a string");
                    return Err(Exit::Usage);
                }
            }
        } else if let Some(Value::String(v)) = stored.get(name).filter(|_| !input.secret) {
            (Some(v.clone()), "the last run")
        } else {
            (None, "")
        };
        let value = match value {
            Some(v) => {
                if let Err(e) = inputs::validate(name, input, &v) {
                    eprintln!("runbook: {from}: {e}");
                    return Err(Exit::Usage);
                }
                v
            }
            None if crate::prompt::interactive() => match shared.ui.suspend(|| crate::prompt::ask(name, input)) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("runbook: {e}");
                    return Err(Exit::Interrupted);
                }
            },
            None => match &input.default {
                Some(d) => d.clone(),
                None => {
                    eprintln!(
                        "runbook: waiting for a person: input `{name}` has no value; give --input {name}=VALUE or [inputs] {name} = \"...\" in the answers file"
                    );
                    let _ = shared.record("waiting", json!({ "input": name }), true);
                    return Err(Exit::WaitingForPerson);
                }
            },
        };
        if input.secret {
            shared.redactor.add(&value);
            secrets.push(name.clone());
        }
        env.inputs.insert(name.clone(), json!(value));
    }
    Ok((env, secrets))
}
