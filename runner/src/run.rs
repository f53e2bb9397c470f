//! `run`, `rehearse`, `plan` and `status`: loading a runbook for execution and reporting on it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use runbook_plugins::{AwsOptions, Context, Limits, PollSettings, Registry};
use serde_json::{Value, json};

use crate::cli::{AwsArgs, PlanArgs, RunArgs};
use crate::exec::{self, RunOptions};
use crate::exit::Exit;
use crate::journal::{self, Journal};
use crate::model::Runbook;
use crate::source::Source;
use crate::{analyzer, commands, eval, inputs, load};

/// Loads a runbook and refuses to run one that `check` would reject.
pub(crate) fn load_checked(file: &Path, color: bool) -> Result<(Source, Runbook), Exit> {
    let source = load::read(file).map_err(|d| {
        commands::report(&[d], color);
        Exit::Usage
    })?;
    let (runbook, diags) = analyzer::check(&source, &Registry::builtin());
    if commands::report(&diags, color) {
        eprintln!(
            "runbook: {} has errors; fix them before running (see `runbook check`)",
            file.display()
        );
        return Err(Exit::Usage);
    }
    Ok((source, runbook))
}

fn poll_settings() -> PollSettings {
    let ms = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
    };
    let d = PollSettings::default();
    PollSettings {
        initial: ms("RUNBOOK_POLL_INITIAL_MS").unwrap_or(d.initial),
        cap: ms("RUNBOOK_POLL_CAP_MS").unwrap_or(d.cap),
        default_deadline: d.default_deadline,
    }
}

fn aws_options(a: &AwsArgs) -> AwsOptions {
    AwsOptions {
        profile: a.profile.clone(),
        region: a.region.clone(),
        endpoint_url: a.endpoint_url.clone(),
        max_attempts: a.max_attempts,
        attempt_timeout: Some(a.attempt_timeout),
        static_credentials: None,
    }
}

/// AWS's published limits with the operator's `--rate` and `--in-progress` overrides.
fn limits(a: &AwsArgs) -> Result<Limits, Exit> {
    let mut l = Limits::published();
    for spec in &a.rates {
        l.set_rate(spec).map_err(|e| usage(&format!("--rate {e}")))?;
    }
    for spec in &a.in_progress {
        l.set_in_progress(spec)
            .map_err(|e| usage(&format!("--in-progress {e}")))?;
    }
    Ok(l)
}

fn usage(message: &str) -> Exit {
    eprintln!("runbook: {message}");
    Exit::Usage
}

/// `run`, or with `rehearsal` the account to emulate, `rehearse`.
pub async fn run(args: RunArgs, color: bool, rehearsal: Option<crate::emulator::Account>) -> Exit {
    let (source, runbook) = match load_checked(&args.file, color) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let limits = match limits(&args.aws) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let state_dir = args.state_dir.clone();
    let mut aws = aws_options(&args.aws);
    let mut emulator = None;
    if let Some(account) = rehearsal {
        // Each rehearsal is a run instance of its own (`rehearsal-<time>`), tied to its own
        // emulator, which starts empty: a rehearsal always starts over.
        eprintln!("rehearse: a rehearsal starts over with an empty emulator; it never resumes another run");
        let say = |s: &str| eprintln!("rehearse: {s}");
        match crate::emulator::start(&args.state_dir, account, &say).await {
            Ok(e) => {
                say(&format!("AWS emulator (moto) listening on {}", e.endpoint));
                say(&account.describe());
                aws = AwsOptions {
                    profile: None,
                    region: Some(args.aws.region.clone().unwrap_or_else(|| "us-east-1".into())),
                    endpoint_url: Some(e.endpoint.clone()),
                    max_attempts: Some(args.aws.max_attempts.unwrap_or(2)),
                    attempt_timeout: Some(args.aws.attempt_timeout),
                    static_credentials: Some((crate::emulator::ACCESS_KEY.into(), "rehearsal".into())),
                };
                emulator = Some(e);
            }
            Err(e) => {
                eprintln!("rehearse: cannot start the AWS emulator: {e}");
                return Exit::StepFailed;
            }
        }
    }
    // Hand-over files go beside the journal of the runbook (the run's own directory is named
    // when its inputs are known).
    let journal_dir = journal::dir_for(&state_dir, Path::new(&runbook.path));
    let ctx = Context::with_limits(aws, &journal_dir, poll_settings(), limits);
    // A new account manages no organization; `--with-organization` rehearses one that does.
    if rehearsal.is_some_and(|a| a.organization) {
        match Registry::builtin().get("organizations.ensure-organization") {
            Some(a) => {
                if let Err(e) = a.apply(&ctx, json!({})).await {
                    eprintln!("rehearse: creating the emulated organization failed: {e}");
                    if let Some(e) = emulator {
                        e.stop().await;
                    }
                    return Exit::StepFailed;
                }
            }
            None => {
                eprintln!("rehearse: no organizations action to create the emulated organization");
                return Exit::StepFailed;
            }
        }
    }
    let opts = RunOptions {
        inputs: args.inputs,
        answers: args.answers,
        yes: args.yes,
        step_mode: args.step,
        from: args.from,
        only: args.only,
        restart: args.restart,
        max_in_flight: args.max_in_flight,
        state_dir,
        color,
        rehearsal: rehearsal.is_some(),
        run_name: args.run.clone(),
        events: args.events.clone(),
        failed: None,
        depth: 0,
    };
    let exit = exec::run(source, runbook, ctx, opts).await;
    if let Some(e) = emulator {
        e.stop().await;
    }
    exit
}

/// Which run of a runbook `status` and `plan` look at: `--run`, else the most recently updated.
/// `plan` never takes a rehearsal's record (its outputs come from an emulator) unless named.
fn pick_run(
    runbook_dir: &Path,
    name: Option<&str>,
    rehearsals: bool,
) -> Result<Option<journal::RunSummary>, journal::JournalError> {
    let runs = Journal::runs(runbook_dir)?;
    Ok(match name {
        Some(n) => {
            let n = journal::run_name(n);
            runs.into_iter().find(|r| r.name == n)
        }
        // The latest run; a rehearsal only when there is nothing else.
        None => {
            let real = runs.iter().position(|r| !r.state.rehearsal);
            match real {
                Some(i) => runs.into_iter().nth(i),
                None if rehearsals => runs.into_iter().next(),
                None => None,
            }
        }
    })
}

pub async fn plan(args: PlanArgs, color: bool) -> Exit {
    let (source, runbook) = match load_checked(&args.file, color) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let redactor = crate::redact::Redactor::default();
    redactor.add_credentials_from_env();
    let say = |s: &str| {
        let _ = crate::ui::print_out(&redactor.text(&crate::ui::sanitize(s)));
    };
    let runbook_dir = journal::dir_for(&args.state_dir, Path::new(&runbook.path));
    let last = match pick_run(&runbook_dir, args.run.as_deref(), false) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runbook: {e}");
            return Exit::Usage;
        }
    };
    let state = last.as_ref().map(|r| r.state.clone());
    let limits = match limits(&args.aws) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let ctx = Context::with_limits(aws_options(&args.aws), &runbook_dir, poll_settings(), limits);
    let answers = match &args.answers {
        Some(p) => match inputs::Answers::load(p) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("runbook: {e}");
                return Exit::Usage;
            }
        },
        None => inputs::Answers::default(),
    };
    let flags = match inputs::flags(&args.inputs)
        .and_then(|f| inputs::check_known(&runbook.settings.inputs, &f, &answers).map(|()| f))
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("runbook: {e}");
            return Exit::Usage;
        }
    };
    let stored = state.as_ref().map(|s| s.inputs.clone()).unwrap_or_default();
    let src = inputs::Sources {
        flags: &flags,
        answers: &answers,
        stored: &stored,
    };
    let resolved = match inputs::resolve(
        &runbook.settings.inputs,
        None,
        &src,
        inputs::WhenMissing::Leave,
        &|_, _| Err(std::io::Error::other("plan asks nothing")),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runbook: {}", crate::ui::sanitize(&e.to_string()));
            return Exit::Usage;
        }
    };
    // Secrets are registered before anything is printed, and everything printed passes the
    // redactor: a plan shows what would happen, never a secret.
    let mut env = eval::Env {
        redactor: redactor.clone(),
        ..eval::Env::default()
    };
    for (k, v) in &resolved.values {
        env.inputs.insert(k.clone(), json!(v));
    }
    for (k, v) in &resolved.secrets {
        redactor.add(v.expose());
        env.inputs.insert(k.clone(), json!(v.expose()));
        env.secret_inputs.insert(k.clone());
    }
    let mut changes = Vec::new();
    if let Some(s) = &state {
        changes = crate::exec::identity::input_changes(&s.inputs, &BTreeMap::new(), &resolved.values, &BTreeMap::new());
        if let Ok(key) = std::fs::read(runbook_dir.join("key")) {
            let d = crate::exec::Digester::new(key);
            for (k, v) in &resolved.secrets {
                if s.secret_inputs.get(k).is_some_and(|old| *old != d.value(k, v.expose())) {
                    changes.push(format!("{k}: changed (secret)"));
                }
            }
        }
        for (id, st) in &s.steps {
            if st.status == journal::StepStatus::Done && !st.secret {
                env.set_step(id, st.outputs.clone());
            }
        }
    }
    let registry = Registry::builtin();
    let walked = crate::plan::walk(&runbook, &source, &mut env, &ctx, &registry).await;
    if args.json {
        let v = json!({ "runbook": runbook.path, "changes": changes, "pending": walked.pending, "steps": walked.rows });
        say(&serde_json::to_string_pretty(&redactor.value(&v)).unwrap_or_default());
    } else {
        say(&format!("plan for {} ({})", runbook.title, runbook.path));
        for c in &changes {
            say(&format!("  changed since the last run: {c}"));
        }
        for r in &walked.rows {
            let what = match (&r.action, r.items) {
                (Some(a), Some(n)) => format!("{} {a} × {n}", r.kind),
                (Some(a), None) => format!("{} {a}", r.kind),
                (None, Some(n)) => format!("{} × {n}", r.kind),
                (None, None) => r.kind.clone(),
            };
            say(&format!("  {:<32} {:<13} {what}", r.step, r.verdict));
            for d in &r.details {
                say(&format!("  {:<32} {:<13}   {d}", "", ""));
            }
        }
        say(&if walked.errors {
            "some steps could not be planned (see above)".to_string()
        } else if walked.pending {
            "changes pending: a run would change AWS or ask a person".to_string()
        } else {
            "nothing to do".to_string()
        });
    }
    if walked.errors {
        Exit::StepFailed
    } else if walked.pending && args.detailed_exitcode {
        Exit::ChangesPending
    } else {
        Exit::Done
    }
}

fn load_unchecked(file: &Path, color: bool) -> Result<Runbook, Exit> {
    match load::read(file) {
        Ok(s) => Ok(analyzer::check(&s, &Registry::builtin()).0),
        Err(d) => {
            commands::report(&[d], color);
            Err(Exit::Usage)
        }
    }
}

/// Prints to stdout; a closed pipe is not an error.
fn out(s: &str) {
    let _ = crate::ui::print_out(&crate::ui::sanitize(s));
}

pub fn status(file: &Path, state_dir: &Path, run: Option<&str>, json_out: bool, color: bool) -> Exit {
    let runbook = match load_unchecked(file, color) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let dir = journal::dir_for(state_dir, Path::new(&runbook.path));
    let picked = match pick_run(&dir, run, true) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("runbook: {e}");
            return Exit::Usage;
        }
    };
    let all_runs = Journal::runs(&dir).unwrap_or_default();
    let Some(picked) = picked else {
        if let Some(n) = run {
            eprintln!(
                "runbook: {} has no run named `{n}` (see `runbook runs {}`)",
                runbook.path,
                file.display()
            );
            return Exit::Usage;
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
        return Exit::Done;
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
    Exit::Done
}

pub fn runs(file: &Path, state_dir: &Path, json_out: bool, color: bool) -> Exit {
    let runbook = match load_unchecked(file, color) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let dir = journal::dir_for(state_dir, Path::new(&runbook.path));
    let runs = match Journal::runs(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runbook: {e}");
            return Exit::Usage;
        }
    };
    if json_out {
        let v: Vec<Value> = runs
            .iter()
            .map(|r| {
                json!({ "run": r.name, "rehearsal": r.state.rehearsal, "outcome": r.state.outcome, "started": r.state.started, "updated": r.state.updated, "inputs": r.state.inputs })
            })
            .collect();
        out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        return Exit::Done;
    }
    if runs.is_empty() {
        out(&format!("{}: never run", runbook.path));
        return Exit::Done;
    }
    out(&format!(
        "{:<40} {:<10} {:<12} {}",
        "RUN", "KIND", "OUTCOME", "LAST UPDATE"
    ));
    for r in &runs {
        out(&run_line(r));
    }
    Exit::Done
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
