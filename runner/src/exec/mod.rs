//! The executor: walks a runbook's steps in order, dispatching each to a plugin, the Rhai sandbox
//! or a person; journals everything so that a run can stop, crash or hand over and resume with
//! nothing lost and nothing done twice.
//!
//! One file per job: this one is the step loop; `step` runs one step (retries, dispatch),
//! `fanout` runs a step per item, `events` journals what plugins report, `guard` checks who is
//! calling, `person` asks a person, `script` runs Rhai, `identity` decides whether a step must
//! run again.

mod assemble;
mod call;
mod drive;
pub mod ending;
mod events;
mod fanout;
mod followup;
mod gate;
mod guard;
pub mod identity;
mod person;
pub mod planning;
mod script;
mod setup;
mod signals;
mod step;
#[cfg(test)]
mod testing;
mod verdict;
pub mod verifying;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use runbook_plugins::aws::sts::Identity;
use runbook_plugins::{Context, PluginError, Registry};
use serde_json::{Value, json};
use tokio::sync::{Notify, OnceCell};

use crate::inputs::{self, Answers};
use crate::journal::{self, Entry, Journal, JournalError, StepState};
use crate::model::Runbook;
use crate::redact::Redactor;
use crate::sandbox::{self, ScriptLimits};
use crate::source::Source;
use crate::ui::Ui;

pub(crate) use assemble::Parts;
use ending::{Interruption, Wait};
pub use ending::{RunError, Waiting};
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

/// Where `--events` go: each journal entry as it is written, plus polling progress. One sink
/// per run tree: a follow-up run (`on-failure=`) writes to its parent's.
pub struct EventSink {
    out: Mutex<Option<Box<dyn std::io::Write + Send>>>,
    /// What `--events` named, for messages.
    name: String,
    /// The first write that failed: the run stops at its next record, naming it.
    failed: Mutex<Option<String>>,
}

impl EventSink {
    fn open(path: Option<&Path>) -> std::io::Result<EventSink> {
        let out: Option<Box<dyn std::io::Write + Send>> = match path {
            None => None,
            Some(p) if p == Path::new("-") => Some(Box::new(std::io::stdout())),
            Some(p) => Some(Box::new(crate::journal::create_nofollow(p)?)),
        };
        Ok(EventSink {
            out: Mutex::new(out),
            name: path
                .map(|p| crate::text::sanitize(&p.display().to_string()))
                .unwrap_or_default(),
            failed: Mutex::new(None),
        })
    }

    /// Writes one event: a journal line (already redacted) with the schema version first. A
    /// failed write (a full disk, a reader that went away) is kept: the stream promised every
    /// entry, so the run stops rather than go on with a stream that silently ends.
    fn line(&self, journal_line: &str) {
        let Ok(mut guard) = self.out.lock() else { return };
        let Some(out) = guard.as_mut() else { return };
        let body = journal_line.strip_prefix('{').unwrap_or(journal_line);
        let written = writeln!(out, "{{\"v\":{EVENTS_VERSION},{body}").and_then(|()| out.flush());
        if let Err(e) = written {
            *guard = None;
            if let Ok(mut f) = self.failed.lock() {
                f.get_or_insert_with(|| format!("cannot write --events {}: {e}", self.name));
            }
        }
    }

    /// The write that failed, if one did.
    fn failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }
}

/// Why a step did not finish.
#[derive(Debug)]
pub enum StepError {
    Failed {
        message: String,
        hint: Option<String>,
        /// Where in the file it failed, when that is more than the step (a script's line).
        at: Option<crate::source::Span>,
    },
    /// A person has to act; the message says how to answer.
    Waiting(String),
    /// A call's outcome is unknown: a person checks AWS and says whether to send it again.
    Unknown(String),
    /// A person answered no (at the terminal, or `confirm = false`): waiting as above, and a step
    /// with `on-failure=` leads into that runbook.
    Refused(String),
    Interrupted,
    /// The journal could not record something: the run stops before its next call.
    Journal(String),
    /// `--events` could not be written: the run stops before its next call.
    Events(String),
}

impl StepError {
    fn failed(message: impl Into<String>) -> Self {
        StepError::Failed {
            message: message.into(),
            hint: None,
            at: None,
        }
    }

    /// The same failure with its message and hint cut to [`MESSAGE_CAP`] bytes: a message is
    /// journaled, streamed and shown for every item and attempt, so one that quotes a huge value
    /// (a script's `throw`, an AWS error quoting a request) must not multiply.
    fn clipped(self) -> StepError {
        match self {
            StepError::Failed { message, hint, at } => StepError::Failed {
                message: clip(message),
                hint: hint.map(clip),
                at,
            },
            other => other,
        }
    }

    /// `retries=` tries again only what failed: a person to ask, a journal that cannot write, an
    /// interruption or an unknown outcome is never sent again by a retry.
    fn retryable(&self) -> bool {
        matches!(self, StepError::Failed { .. })
    }

    /// What a step that stopped for a person waits for; every other error as it was.
    fn wait(self) -> Result<Wait, StepError> {
        match self {
            StepError::Waiting(m) => Ok(Wait::Person(m)),
            StepError::Refused(m) => Ok(Wait::Refused(m)),
            StepError::Unknown(m) => Ok(Wait::UnknownOutcome(m)),
            other => Err(other),
        }
    }
}

/// How long one failure's message may be, wherever it goes.
pub const MESSAGE_CAP: usize = 4 << 10;

fn clip(s: String) -> String {
    if s.len() <= MESSAGE_CAP {
        return s;
    }
    let end = crate::text::floor_boundary(&s, MESSAGE_CAP);
    format!("{}… ({} more bytes not shown)", &s[..end], s.len() - end)
}

impl From<PluginError> for StepError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::Journal(m) => StepError::Journal(m),
            e => StepError::Failed {
                hint: e.hint(),
                message: e.to_string(),
                at: None,
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
            Secrecy::AllBut(public) => Redactor::opaque(&self.outputs, public),
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
    /// The state directory's marks of calls whose outcome is unknown, and their digests' key.
    pub pending: (journal::Pending, Digester),
    pub interrupted: Arc<AtomicBool>,
    pub interrupt: Notify,
    identity: OnceCell<Result<Identity, guard::IdentityError>>,
    management: OnceCell<Result<String, String>>,
    pub source: Source,
    pub runbook: Runbook,
    pub answers: Answers,
    pub opts: RunOptions,
    pub events: Arc<EventSink>,
    /// `plan`: the same interpreter, a journal that is read and never written, and a gate that
    /// sends reads and refuses every change.
    pub planning: bool,
    /// A new run of a record whose last run finished: what can be looked at again is
    /// ([`Shared::rechecks`]); a resume continues.
    pub converging: AtomicBool,
    /// Steps read again in any run, a resume too: the reads and scripts whose outputs feed a
    /// change ([`feeds_changes`]), so no change acts on what AWS held before the run stopped.
    pub fresh: std::collections::HashSet<String>,
    /// What each step printed so far: a step's printed output is capped across its retries and
    /// items.
    pub printed: script::Printed,
    /// How the runs `on-failure=` continued into ended, when they did not finish: shown with
    /// this run's end.
    pub continued: Mutex<Vec<RunError>>,
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
        match self.events.failure() {
            Some(e) => Err(StepError::Events(e)),
            None => Ok(()),
        }
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
        let limits = ScriptLimits {
            until,
            ..ScriptLimits::default()
        };
        sandbox::engine(limits, None, Some(self.interrupted.clone()))
    }
}

/// Runs a runbook. `ctx` carries the AWS settings (real, or the rehearsal emulator). How it
/// ended, when it did not finish, is returned and never printed here.
pub async fn run(source: Source, runbook: Runbook, ctx: Context, opts: RunOptions) -> Result<(), RunError> {
    run_with(source, runbook, ctx, opts, None).await
}

/// A run, writing its events to `sink` when it continues another (`on-failure=`).
async fn run_with(
    source: Source,
    runbook: Runbook,
    ctx: Context,
    opts: RunOptions,
    sink: Option<Arc<EventSink>>,
) -> Result<(), RunError> {
    // One redaction authority for the whole process: this run, the runs it continues into, plan.
    let redactor = Redactor::global();
    // With `--events -` stdout carries the events, and the lines for people go to stderr.
    let events_on_stdout = opts.events.as_deref() == Some(Path::new("-"));
    let ui = Ui::with_output(opts.color, redactor.clone(), events_on_stdout);
    // Everything given is checked before the state directory is touched.
    let given = setup::preflight(&runbook, &source, &opts).map_err(RunError::Usage)?;
    let opened = match sink {
        Some(s) => Ok(s),
        None => EventSink::open(opts.events.as_deref()).map(Arc::new),
    };
    let events = opened.map_err(|e| RunError::EventsFile {
        path: opts
            .events
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        error: e.to_string(),
    })?;
    let (journal, digester, pending) = setup::open_journal(&runbook, &source, &opts, &given, &ui, &redactor)?;
    let setup::Given { answers, flags } = given;
    let shared = Shared::assemble(Parts {
        source,
        runbook,
        ctx,
        opts,
        answers,
        ui,
        redactor,
        journal,
        digester,
        pending,
        events,
        planning: false,
    });
    signals::interrupt_on_signals(shared.clone());
    // Who is calling is known before anything is journaled: a run that cannot tell changes
    // nothing (an STS outage once made every AWS step look changed and poisoned the journal).
    let acts_on_aws = shared.runbook.steps.iter().any(|s| {
        matches!(
            s.executor,
            crate::model::Executor::Action {
                family: crate::model::Family::Aws,
                ..
            }
        )
    });
    if acts_on_aws
        && let Err(e) = shared.caller().await
        && e.outage
    {
        return Err(RunError::CallerUnknown(
            if e.message.starts_with("sts:GetCallerIdentity") {
                e.message.clone()
            } else {
                format!("sts:GetCallerIdentity: {}", e.message)
            },
        ));
    }
    let ended = drive::drive(shared.clone(), &flags).await;
    let outcome = ending::outcome(&ended);
    // What the runs `on-failure=` continued into ended with is shown before this run's end.
    let continued = std::mem::take(&mut *shared.continued.lock().unwrap_or_else(|p| p.into_inner()));
    let ended = match ended {
        Err(then) if !continued.is_empty() => Err(RunError::Continued {
            runs: continued,
            then: Box::new(then),
        }),
        other => other,
    };
    if shared.journal_broken.load(Ordering::SeqCst) {
        // The journal already failed once; the step that hit it said so and how to resume.
        return ended;
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
    match closed {
        Ok(line) => {
            shared.events.line(&line);
            ended
        }
        Err(message) => Err(RunError::Unclosed {
            message,
            ended: ended.err().map(Box::new),
        }),
    }
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
) -> Result<String, RunError> {
    // A rehearsal is always a fresh instance of its own, whatever --run says: its emulator
    // starts empty, and it must never share a journal with a real run.
    if opts.rehearsal {
        let ts = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
        let label = opts.run_name.as_deref().map(|n| format!("{n}-")).unwrap_or_default();
        return Ok(journal::run_name(&format!("rehearsal-{label}{ts}")));
    }
    if let Some(n) = &opts.run_name {
        if n.starts_with("rehearsal-") {
            return Err(RunError::Usage(
                "run names starting with `rehearsal-` belong to rehearsals; choose another --run".into(),
            ));
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
        inputs::WhenMissing::ask_if(crate::prompt::interactive()),
        &|n, i| ui.suspend(|| crate::prompt::ask(n, i)),
    )
    .map_err(resolve_failed)?;
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

fn resolve_failed(e: inputs::ResolveError) -> RunError {
    match e {
        inputs::ResolveError::Waiting(name) => RunError::Waiting(Waiting::Input(name)),
        // Ctrl-C at a prompt is an interruption, not an I/O error; so is a prompt that failed.
        inputs::ResolveError::Prompt(name, _) => RunError::Interrupted(Interruption::Input(name)),
        e @ inputs::ResolveError::Input(_) => RunError::Usage(e.to_string()),
    }
}

/// A failure to write `--events` or the journal: which file, that nothing more was sent.
fn journal_failed(shared: &Shared, message: &str) -> RunError {
    let journal = shared.journal_file();
    match shared.events.failure() {
        // A plugin's record that reached the journal and not `--events` comes back as a
        // journal error: the sink knows which it was.
        Some(message) => RunError::Events { message, journal },
        None => RunError::Journal {
            message: message.to_string(),
            journal,
        },
    }
}

#[cfg(test)]
mod tests;
