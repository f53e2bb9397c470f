//! The executor: walks a runbook's steps in order, dispatching each to a plugin, the Rhai sandbox
//! or a person; journals everything so that a run can stop, crash or hand over and resume with
//! nothing lost and nothing done twice.
//!
//! One file per job: this one is the step loop; `step` runs one step (retries, dispatch),
//! `fanout` runs a step per item, `events` journals what plugins report, `guard` checks who is
//! calling, `person` asks a person, `script` runs Rhai, `identity` decides whether a step must
//! run again.

mod call;
mod events;
mod fanout;
mod followup;
mod guard;
pub mod identity;
mod person;
mod script;
mod step;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use runbook_plugins::aws::sts::Identity;
use runbook_plugins::{Context, PluginError, Registry};
use serde_json::{Value, json};
use tokio::sync::{Notify, OnceCell};

use crate::eval::{self, Env};
use crate::exit::Exit;
use crate::inputs::{self, Answers};
use crate::journal::{self, Entry, Journal, JournalError, StepState, StepStatus};
use crate::model::{Runbook, Step};
use crate::redact::Redactor;
use crate::sandbox::{self, Limits};
use crate::source::Source;
use crate::ui::Ui;

pub use identity::Digester;

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
    /// `--run NAME`: which instance of the runbook this run is.
    pub run_name: Option<String>,
    /// `--events FILE|-`: NDJSON events for machines.
    pub events: Option<PathBuf>,
    /// Set for a run that continues another's failed step (`on-failure=`): what failed, read as
    /// `run.failed` (`step`, `error`, `runbook`); how deep such runs nest.
    pub failed: Option<Value>,
    pub depth: usize,
}

/// The version of the event stream's schema (`"v"` in every event).
pub const EVENTS_VERSION: u32 = 1;

/// Where `--events` go: each journal entry as it is written, plus polling progress.
pub struct EventSink {
    out: Mutex<Option<Box<dyn std::io::Write + Send>>>,
}

impl EventSink {
    fn open(path: Option<&Path>) -> std::io::Result<EventSink> {
        let out: Option<Box<dyn std::io::Write + Send>> = match path {
            None => None,
            Some(p) if p == Path::new("-") => Some(Box::new(std::io::stdout())),
            Some(p) => Some(Box::new(std::fs::File::create(p)?)),
        };
        Ok(EventSink { out: Mutex::new(out) })
    }

    /// Writes one event: a journal line (already redacted) with the schema version first.
    fn line(&self, journal_line: &str) {
        let Ok(mut guard) = self.out.lock() else { return };
        let Some(out) = guard.as_mut() else { return };
        let body = journal_line.strip_prefix('{').unwrap_or(journal_line);
        let written = writeln!(out, "{{\"v\":{EVENTS_VERSION},{body}").and_then(|()| out.flush());
        if written.is_err() {
            // The reader went away: the run goes on, without events.
            *guard = None;
        }
    }
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
    /// The journal could not record something: the run stops before its next call.
    Journal(String),
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
        match e {
            PluginError::Journal(m) => StepError::Journal(m),
            e => StepError::Failed {
                hint: e.hint(),
                message: e.to_string(),
            },
        }
    }
}

impl From<JournalError> for StepError {
    fn from(e: JournalError) -> Self {
        StepError::Journal(e.to_string())
    }
}

/// What a step produced, and which of it is secret.
pub struct Outcome {
    pub outputs: Value,
    pub secrecy: Secrecy,
}

/// Which outputs of a step hold secrets. Secret outputs are stored masked and the step runs
/// (or asks) again on resume: a mask is never used as a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Secrecy {
    None,
    /// All outputs, except those the author declared public.
    AllBut(Vec<String>),
}

impl Outcome {
    fn public(outputs: Value) -> Outcome {
        Outcome {
            outputs,
            secrecy: Secrecy::None,
        }
    }

    /// The outputs as the journal may keep them.
    fn stored(&self) -> Value {
        match &self.secrecy {
            Secrecy::None => self.outputs.clone(),
            Secrecy::AllBut(public) => Redactor::mask_all(&self.outputs, public),
        }
    }
}

/// What every task of a run shares.
pub struct Shared {
    pub registry: &'static Registry,
    pub ctx: Context,
    pub journal: Mutex<Journal>,
    /// Set by the first journal write that failed: from then on no intent is accepted.
    pub journal_broken: AtomicBool,
    pub ui: Ui,
    pub redactor: Redactor,
    pub digester: Digester,
    pub interrupted: Arc<AtomicBool>,
    pub interrupt: Notify,
    identity: OnceCell<Result<Identity, String>>,
    management: OnceCell<Result<String, String>>,
    pub source: Source,
    pub runbook: Runbook,
    pub answers: Answers,
    pub opts: RunOptions,
    pub events: EventSink,
}

impl Shared {
    /// Journals one entry (and streams it to `--events`). A failure marks the journal broken
    /// and stops the run.
    fn record(&self, entry: Entry) -> Result<(), StepError> {
        let mut j = self
            .journal
            .lock()
            .map_err(|_| StepError::Journal("journal lock poisoned".into()))?;
        let line = j.record(entry).map_err(|e| {
            self.journal_broken.store(true, Ordering::SeqCst);
            StepError::from(e)
        })?;
        self.events.line(&line);
        Ok(())
    }

    /// An event that is not journaled (polling progress), redacted like the journal.
    fn event(&self, event: Value) {
        let run = self.journal.lock().map(|j| j.state.run_id.clone()).unwrap_or_default();
        let mut obj = serde_json::Map::new();
        obj.insert("ts".into(), json!(journal::now()));
        obj.insert("run".into(), json!(run));
        if let Value::Object(o) = self.redactor.value(&event) {
            obj.extend(o);
        }
        self.events.line(&Value::Object(obj).to_string());
    }

    fn save(&self) -> Result<(), StepError> {
        let mut j = self
            .journal
            .lock()
            .map_err(|_| StepError::Journal("journal lock poisoned".into()))?;
        j.save().map_err(|e| {
            self.journal_broken.store(true, Ordering::SeqCst);
            StepError::from(e)
        })
    }

    fn set_step_state(&self, id: &str, st: StepState) -> Result<(), StepError> {
        {
            let mut j = self
                .journal
                .lock()
                .map_err(|_| StepError::Journal("journal lock poisoned".into()))?;
            j.state.steps.insert(id.to_string(), st);
        }
        self.save()
    }

    fn step_state(&self, id: &str) -> Option<StepState> {
        self.journal.lock().ok().and_then(|j| j.state.steps.get(id).cloned())
    }

    fn journal_file(&self) -> String {
        self.journal
            .lock()
            .map(|j| j.dir.display().to_string())
            .unwrap_or_default()
    }

    /// The engine for conditions, lists and `${...}`.
    fn engine(&self) -> rhai::Engine {
        self.engine_until(None)
    }

    /// The same, stopping at a step's deadline.
    fn engine_until(&self, until: Option<Instant>) -> rhai::Engine {
        let limits = Limits {
            until,
            ..Limits::default()
        };
        sandbox::engine(limits, None, Some(self.interrupted.clone()))
    }
}

/// Runs a runbook. `ctx` carries the AWS settings (real, or the rehearsal emulator).
pub async fn run(source: Source, runbook: Runbook, ctx: Context, opts: RunOptions) -> Exit {
    let redactor = Redactor::default();
    redactor.add_credentials_from_env();
    // With `--events -` stdout carries the events, and the lines for people go to stderr.
    let events_on_stdout = opts.events.as_deref() == Some(Path::new("-"));
    let ui = Ui::with_output(opts.color, redactor.clone(), events_on_stdout);
    let events = match EventSink::open(opts.events.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            ui.error(&format!(
                "runbook: --events {}: {e}",
                opts.events
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ));
            return Exit::Usage;
        }
    };
    let answers = match &opts.answers {
        Some(p) => match Answers::load(p) {
            Ok(a) => a,
            Err(e) => {
                ui.error(&format!("runbook: {e}"));
                return Exit::Usage;
            }
        },
        None => Answers::default(),
    };
    // A continued run shares its parent's answers file, which names the parent's inputs and
    // steps too.
    let nested = opts.failed.is_some();
    // The answers file may also answer the runbooks `on-failure=` leads into.
    let linked = followup::linked(&runbook);
    let mut known_inputs = runbook.settings.inputs.clone();
    for l in &linked {
        for (k, v) in &l.settings.inputs {
            known_inputs.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let flags = match inputs::flags(&opts.inputs).and_then(|f| {
        if nested {
            Ok(f)
        } else {
            // Flags name this runbook's inputs; the answers file may name the linked ones' too.
            inputs::check_known(&runbook.settings.inputs, &f, &Answers::default())?;
            inputs::check_known(&known_inputs, &f, &answers).map(|()| f)
        }
    }) {
        Ok(f) => f,
        Err(e) => {
            ui.error(&format!("runbook: {e}"));
            return Exit::Usage;
        }
    };
    let runbook_dir = journal::dir_for(&opts.state_dir, Path::new(&runbook.path));
    let key = match journal::digest_key(&runbook_dir) {
        Ok(k) => k,
        Err(e) => {
            ui.error(&format!(
                "runbook: cannot keep the journal in {}: {e}\n  nothing was run; fix it or choose another --state-dir (RUNBOOK_STATE_DIR)",
                runbook_dir.display()
            ));
            return Exit::Usage;
        }
    };
    let digester = Digester::new(key);
    // Which instance: --run, the key inputs' values, a fresh one per rehearsal, or the default.
    let name = match run_name(&runbook, &opts, &flags, &answers, &ui, &digester) {
        Ok(n) => n,
        Err(exit) => return exit,
    };
    let dir = journal::run_dir(&runbook_dir, &name);
    let mut journal = match Journal::open(&dir, &runbook.path, opts.restart, redactor.clone()) {
        Ok(x) => x,
        Err(e @ (JournalError::Io { .. } | JournalError::Symlink { .. })) => {
            ui.error(&format!(
                "runbook: cannot keep the journal in {}: {e}\n  nothing was run; free some space or choose another --state-dir (RUNBOOK_STATE_DIR)",
                dir.display()
            ));
            return Exit::Usage;
        }
        Err(e) => {
            ui.error(&format!("runbook: {e}"));
            return Exit::Usage;
        }
    };
    // A journal is a rehearsal's or a real run's, never both.
    if !journal.state.steps.is_empty() && journal.state.rehearsal != opts.rehearsal {
        ui.error(&format!(
            "runbook: the run `{name}` in {} is a {}; a {} never continues it",
            dir.display(),
            if journal.state.rehearsal {
                "rehearsal"
            } else {
                "real run"
            },
            if opts.rehearsal { "rehearsal" } else { "real run" }
        ));
        return Exit::Usage;
    }
    journal.state.rehearsal = opts.rehearsal;
    journal.state.name = name;
    let ctx = {
        let r = redactor.clone();
        ctx.with_redact(Arc::new(move |s: &str| r.text(s)))
            .with_state_dir(dir.clone())
    };
    let shared = Arc::new(Shared {
        registry: Registry::shared(),
        ctx,
        journal: Mutex::new(journal),
        journal_broken: AtomicBool::new(false),
        ui,
        redactor,
        digester,
        interrupted: Arc::new(AtomicBool::new(false)),
        interrupt: Notify::new(),
        identity: OnceCell::new(),
        management: OnceCell::new(),
        source,
        runbook,
        answers,
        opts,
        events,
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
    let exit = drive(shared.clone(), &flags).await;
    let outcome = match exit {
        Exit::Done => "done",
        Exit::StepFailed => "failed",
        Exit::WaitingForPerson => "waiting",
        Exit::Interrupted => "interrupted",
        Exit::Usage | Exit::ChangesPending => "stopped",
    };
    if shared.journal_broken.load(Ordering::SeqCst) {
        // The journal already failed once; the step that hit it said so and how to resume.
        return exit;
    }
    let closed = shared
        .journal
        .lock()
        .map_err(|_| "journal lock poisoned".to_string())
        .and_then(|mut j| {
            j.state.outcome = Some(outcome.into());
            let line = j.record(Entry::RunFinished {
                outcome: outcome.into(),
            });
            line.and_then(|l| j.save().map(|()| l)).map_err(|e| e.to_string())
        });
    if let Ok(line) = &closed {
        shared.events.line(line);
    }
    if let Err(e) = closed {
        shared
            .ui
            .error(&format!("runbook: the journal's last entry could not be written: {e}"));
        return if exit == Exit::Done { Exit::StepFailed } else { exit };
    }
    exit
}

/// Names the run instance: `--run`, else the runbook's key inputs (`key = true`), else a fresh
/// name per rehearsal, else `default`.
fn run_name(
    rb: &Runbook,
    opts: &RunOptions,
    flags: &BTreeMap<String, String>,
    answers: &Answers,
    ui: &Ui,
    digester: &Digester,
) -> Result<String, Exit> {
    // A rehearsal is always a fresh instance of its own, whatever --run says: its emulator
    // starts empty, and it must never share a journal with a real run.
    if opts.rehearsal {
        let ts = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
        let label = opts.run_name.as_deref().map(|n| format!("{n}-")).unwrap_or_default();
        return Ok(journal::run_name(&format!("rehearsal-{label}{ts}")));
    }
    if let Some(n) = &opts.run_name {
        if n.starts_with("rehearsal-") {
            ui.error("runbook: run names starting with `rehearsal-` belong to rehearsals; choose another --run");
            return Err(Exit::Usage);
        }
        return Ok(journal::run_name(n));
    }
    let keys: Vec<String> = rb
        .settings
        .inputs
        .iter()
        .filter(|(_, i)| i.key)
        .map(|(n, _)| n.clone())
        .collect();
    if keys.is_empty() {
        return Ok(journal::DEFAULT_RUN.into());
    }
    let empty = BTreeMap::new();
    let src = inputs::Sources {
        flags,
        answers,
        stored: &empty,
    };
    let resolved = inputs::resolve(
        &rb.settings.inputs,
        Some(&keys),
        &src,
        inputs::WhenMissing::Ask,
        &|n, i| ui.suspend(|| crate::prompt::ask(n, i)),
    )
    .map_err(|e| resolve_failed(ui, e))?;
    let parts: Vec<String> = keys
        .iter()
        .map(|k| match (resolved.values.get(k), resolved.secrets.get(k)) {
            (Some(v), _) => format!("{k}={v}"),
            // A secret key input names the run by its keyed digest, never by its value.
            (None, Some(v)) => format!("{k}=secret-{}", &digester.value(k, v.expose())[..12]),
            (None, None) => k.clone(),
        })
        .collect();
    Ok(journal::run_name(&parts.join(",")))
}

fn resolve_failed(ui: &Ui, e: inputs::ResolveError) -> Exit {
    match &e {
        // Ctrl-C at a prompt is an interruption, not an I/O error.
        inputs::ResolveError::Prompt(name, _) => ui.error(&format!("runbook: interrupted at input `{name}`")),
        _ => ui.error(&format!("runbook: {e}")),
    }
    match e {
        inputs::ResolveError::Waiting(_) => Exit::WaitingForPerson,
        inputs::ResolveError::Prompt(_, err) if err.kind() == std::io::ErrorKind::Interrupted => Exit::Interrupted,
        inputs::ResolveError::Prompt(..) => Exit::Interrupted,
        inputs::ResolveError::Input(_) => Exit::Usage,
    }
}

/// Reports a journal failure: which file, that nothing more was sent, how to resume.
fn journal_failed(shared: &Shared, message: &str) -> Exit {
    shared.ui.error(&format!(
        "runbook: cannot write the journal ({message})\n  the run stopped before its next call; journal: {}\n  free space or fix the state directory, then run the same command again to resume",
        shared.journal_file()
    ));
    Exit::StepFailed
}

async fn drive(shared: Arc<Shared>, flags: &BTreeMap<String, String>) -> Exit {
    let rb = &shared.runbook;
    let opts = &shared.opts;
    for id in [&opts.from, &opts.only].into_iter().flatten() {
        if rb.step(id).is_none() {
            let ids: Vec<&str> = rb.steps.iter().map(|s| s.id.as_str()).collect();
            shared.ui.error(&format!(
                "runbook: no step `{id}` in {} (steps: {})",
                rb.path,
                ids.join(", ")
            ));
            return Exit::Usage;
        }
    }
    if opts.step_mode && !crate::prompt::interactive() {
        shared.ui.error("runbook: --step needs a terminal to ask in");
        return Exit::Usage;
    }
    let linked = followup::linked(rb);
    for sid in shared.answers.steps.keys().filter(|_| opts.failed.is_none()) {
        if rb.step(sid).is_none() && !linked.iter().any(|l| l.step(sid).is_some()) {
            shared.ui.error(&format!(
                "runbook: answers file names step `{sid}`, which {} does not have",
                rb.path
            ));
            return Exit::Usage;
        }
    }
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
    let resolved = match inputs::resolve(&rb.settings.inputs, None, &src, inputs::WhenMissing::Ask, &|n, i| {
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
                    return journal_failed(&shared, &m);
                }
            }
            return resolve_failed(&shared.ui, e);
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
        return step_error_exit(&shared, None, e);
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
            return interrupted(&shared, &step.id);
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
        if let Some(cond) = &step.attrs.if_ {
            match env.eval(&engine, &cond.value, None).and_then(|d| eval::truthy(&d)) {
                Ok(true) => {}
                Ok(false) => {
                    skipped += 1;
                    shared
                        .ui
                        .step_finished(&step.id, "skipped", &format!("condition `{}` is false", cond.value));
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
                        return step_error_exit(&shared, Some(step), e);
                    }
                    continue;
                }
                Err(e) => return fail(&shared, step, &format!("`if` condition: {e}"), None),
            }
        }
        // A fan-out over a secret makes each `item` secret.
        let secret_items = step.attrs.for_each.as_ref().is_some_and(|l| env.reads_secret(&l.value));
        let item_env;
        let env_for_step = if secret_items {
            item_env = Env {
                secret_item: true,
                ..env.clone()
            };
            &item_env
        } else {
            &env
        };
        // What the step will do, resolved: its identity decides whether it must run again. The
        // step's timeout= bounds everything it evaluates from here on.
        let deadline = step::timeout(step).map(|t| Instant::now() + t);
        let plan = match identity::prepare(&shared, step, env_for_step, deadline).await {
            Ok(p) => p,
            Err(e) => return fail(&shared, step, &e, None),
        };
        if let Some(st) = &recorded {
            if st.status == StepStatus::Done && !forced {
                if st.hash == plan.hash && !st.secret {
                    reused += 1;
                    shared.ui.step_finished(
                        &step.id,
                        "done",
                        &format!("already done ({})", st.finished.as_deref().unwrap_or("earlier")),
                    );
                    env.set_step(&step.id, st.outputs.clone());
                    continue;
                }
                shared.ui.note(&if st.secret {
                    format!(
                        "{}: its outputs hold secrets, which are never kept: running it again",
                        step.id
                    )
                } else {
                    format!("{} changed since it last ran: running it again", step.id)
                });
            }
        }
        if opts.step_mode {
            match step::gate(&shared, step, &plan).await {
                step::Gate::Run => {}
                step::Gate::Skip => {
                    shared.ui.step_finished(&step.id, "skipped", "skipped by the operator");
                    if let Err(e) = shared.record(Entry::StepSkipped {
                        step: step.id.clone(),
                        reason: "operator".into(),
                    }) {
                        return step_error_exit(&shared, Some(step), e);
                    }
                    continue;
                }
                step::Gate::Quit => {
                    shared.ui.line("stopped; run the same command again to continue here");
                    return Exit::WaitingForPerson;
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
        let mut running = StepState::new(StepStatus::Running, plan.hash.clone());
        running.started = Some(begun.clone());
        if let Err(e) = shared
            .record(Entry::StepStarted {
                step: step.id.clone(),
                hash: plan.hash.clone(),
            })
            .and_then(|()| shared.set_step_state(&step.id, running))
        {
            return step_error_exit(&shared, Some(step), e);
        }
        let t0 = Instant::now();
        let result = step::run_with_retries(&shared, step, env_for_step, &plan).await;
        match result {
            Ok(outcome) => {
                ran += 1;
                let stored = outcome.stored();
                let secret = outcome.secrecy != Secrecy::None;
                shared.ui.step_finished(
                    &step.id,
                    "done",
                    &format!("{:.1}s{}", t0.elapsed().as_secs_f64(), summary(&stored)),
                );
                let mut st = StepState::new(StepStatus::Done, plan.hash.clone());
                st.outputs = stored.clone();
                st.started = Some(begun);
                st.finished = Some(journal::now());
                st.secret = secret;
                let written = shared
                    .record(Entry::StepFinished {
                        step: step.id.clone(),
                        hash: plan.hash.clone(),
                        outputs: stored,
                    })
                    .and_then(|()| shared.set_step_state(&step.id, st));
                if let Err(e) = written {
                    return step_error_exit(&shared, Some(step), e);
                }
                if secret {
                    env.set_secret_step(&step.id, outcome.outputs);
                } else {
                    env.set_step(&step.id, outcome.outputs);
                }
            }
            Err(StepError::Waiting(msg)) => {
                shared.ui.step_finished(&step.id, "waiting", "waiting for a person");
                let mut st = StepState::new(StepStatus::Waiting, plan.hash.clone());
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
                    return step_error_exit(&shared, Some(step), e);
                }
                shared
                    .ui
                    .error(&format!("runbook: waiting for a person at step `{}`: {msg}", step.id));
                // A person's "no" at a step with `on-failure=` leads into that runbook.
                if msg.starts_with(person::REFUSED) {
                    followup::continue_into(&shared, step, &env, &msg).await;
                }
                if opts.rehearsal {
                    shared.ui.error(
                        "runbook: a rehearsal starts over each time (its emulator starts empty): give the answer in the answers file and rehearse again",
                    );
                } else {
                    shared
                        .ui
                        .error("runbook: the journal is saved; run the same command again to continue");
                }
                return Exit::WaitingForPerson;
            }
            Err(e @ (StepError::Interrupted | StepError::Journal(_))) => {
                return step_error_exit(&shared, Some(step), e);
            }
            Err(StepError::Failed { message, hint }) => {
                let mut st = StepState::new(StepStatus::Failed, plan.hash.clone());
                st.started = Some(begun);
                st.finished = Some(journal::now());
                st.error = Some(message.clone());
                if let Err(e) = shared.set_step_state(&step.id, st) {
                    return step_error_exit(&shared, Some(step), e);
                }
                let exit = fail(&shared, step, &message, hint);
                followup::continue_into(&shared, step, &env, &message).await;
                return exit;
            }
        }
    }
    shared.ui.line(&format!(
        "finished in {:.1}s: {ran} ran, {reused} already done, {skipped} skipped",
        started.elapsed().as_secs_f64()
    ));
    Exit::Done
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
        crate::prose::render(&crate::ui::sanitize(md.trim()), width, shared.ui.color())
    ));
}

/// Ends the run for an error that is not the step's own failure.
fn step_error_exit(shared: &Shared, step: Option<&Step>, e: StepError) -> Exit {
    match e {
        StepError::Journal(m) => journal_failed(shared, &m),
        StepError::Interrupted => interrupted(shared, step.map_or("the start", |s| s.id.as_str())),
        StepError::Waiting(m) => {
            shared.ui.error(&format!("runbook: waiting for a person: {m}"));
            Exit::WaitingForPerson
        }
        StepError::Failed { message, hint } => match step {
            Some(s) => fail(shared, s, &message, hint),
            None => {
                shared.ui.error(&format!("runbook: {message}"));
                Exit::StepFailed
            }
        },
    }
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
    let written = shared
        .record(Entry::Interrupted { step: step.to_string() })
        .and_then(|()| shared.save());
    if let Err(StepError::Journal(m)) = written {
        return journal_failed(shared, &m);
    }
    shared.ui.line(&format!(
        "interrupted at {step}; the journal is saved, run again to resume"
    ));
    Exit::Interrupted
}

fn fail(shared: &Shared, step: &Step, message: &str, hint: Option<String>) -> Exit {
    shared.ui.step_finished(&step.id, "failed", "");
    if let Err(StepError::Journal(m)) = shared.record(Entry::StepFailed {
        step: step.id.clone(),
        error: message.to_string(),
    }) {
        return journal_failed(shared, &m);
    }
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
    shared.ui.error(&text);
    Exit::StepFailed
}
