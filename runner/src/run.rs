//! `run`, `rehearse`, `plan` and `status`: loading a runbook for execution and reporting on it.

use std::path::Path;
use std::time::Duration;

use runbook_plugins::{AwsOptions, Context, PollSettings, Registry, Verdict};
use serde_json::{Value, json};

use crate::cli::{AwsArgs, PlanArgs, RunArgs};
use crate::exec::{self, RunOptions};
use crate::exit::Exit;
use crate::journal::{self, Journal};
use crate::model::Runbook;
use crate::source::Source;
use crate::{analyzer, commands, eval, inputs, load, sandbox};

/// Loads a runbook and refuses to run one that `check` would reject.
fn load_checked(file: &Path, color: bool) -> Result<(Source, Runbook), Exit> {
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

pub async fn run(args: RunArgs, color: bool, rehearsal: bool) -> Exit {
    let (source, runbook) = match load_checked(&args.file, color) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let mut state_dir = args.state_dir.clone();
    let mut aws = aws_options(&args.aws);
    let mut emulator = None;
    if rehearsal {
        // A rehearsal has its own journal, and starts over: its emulator starts empty.
        state_dir = state_dir.join("rehearsal");
        let say = |s: &str| eprintln!("rehearse: {s}");
        match crate::emulator::start(&args.state_dir, &say).await {
            Ok(e) => {
                say(&format!("AWS emulator (moto) listening on {}", e.endpoint));
                aws = AwsOptions {
                    profile: None,
                    region: Some(args.aws.region.clone().unwrap_or_else(|| "us-east-1".into())),
                    endpoint_url: Some(e.endpoint.clone()),
                    max_attempts: Some(args.aws.max_attempts.unwrap_or(2)),
                    attempt_timeout: Some(args.aws.attempt_timeout),
                    static_credentials: Some(("testing".into(), "testing".into())),
                };
                emulator = Some(e);
            }
            Err(e) => {
                eprintln!("rehearse: cannot start the AWS emulator: {e}");
                return Exit::StepFailed;
            }
        }
    }
    let journal_dir = journal::dir_for(&state_dir, Path::new(&runbook.path));
    let ctx = Context::new(aws, &journal_dir, poll_settings());
    if rehearsal {
        // The emulated account manages an organization, as the runbooks expect.
        if let Some(a) = Registry::builtin().get("organizations.ensure-organization") {
            if let Err(e) = a.apply(&ctx, json!({})).await {
                eprintln!("rehearse: seeding the emulator failed: {e}");
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
        restart: args.restart || rehearsal,
        max_in_flight: args.max_in_flight,
        state_dir,
        color,
        rehearsal,
    };
    let exit = exec::run(source, runbook, ctx, opts).await;
    if let Some(e) = emulator {
        e.stop().await;
    }
    exit
}

pub async fn plan(args: PlanArgs, color: bool) -> Exit {
    let (_source, runbook) = match load_checked(&args.file, color) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let dir = journal::dir_for(&args.state_dir, Path::new(&runbook.path));
    let state = Journal::peek(&dir).ok().flatten();
    let ctx = Context::new(aws_options(&args.aws), &dir, poll_settings());
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
    let flags = match inputs::flags(&args.inputs) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("runbook: {e}");
            return Exit::Usage;
        }
    };
    let mut env = eval::Env::default();
    for (name, input) in &runbook.settings.inputs {
        let v = flags
            .get(name)
            .cloned()
            .or_else(|| answers.inputs.get(name).and_then(inputs::Answers::text))
            .or_else(|| {
                state
                    .as_ref()
                    .and_then(|s| s.inputs.get(name))
                    .and_then(|v| v.as_str().map(String::from))
            })
            .or_else(|| input.default.clone());
        if let Some(v) = v {
            env.inputs.insert(name.clone(), json!(v));
        }
    }
    if let Some(s) = &state {
        for (id, st) in &s.steps {
            if st.status == journal::StepStatus::Done {
                env.set_step(id, st.outputs.clone());
            }
        }
    }
    let registry = Registry::builtin();
    let engine = sandbox::engine(sandbox::Limits::default(), None, None);
    let mut rows = Vec::new();
    for step in &runbook.steps {
        let (verdict, what): (String, Vec<String>) = match step.executor.action() {
            None => (
                "person".into(),
                vec![if step.executor.word() == "manual" {
                    "a person acts and confirms".into()
                } else {
                    "script".into()
                }],
            ),
            Some(action) => {
                let a = registry.get(&action);
                let resolved = eval::toml_body(&step.body).and_then(|b| env.resolve(&engine, &b, None));
                match (a, resolved) {
                    (Some(_), Err(e))
                        if step.attrs.for_each.is_some()
                            || e.contains("not found")
                            || e.contains("Unknown property")
                            || e.contains("null") =>
                    {
                        (
                            "unknown".into(),
                            vec!["depends on earlier steps that have not run".into()],
                        )
                    }
                    (Some(_), Err(e)) => ("unknown".into(), vec![e]),
                    (Some(_), Ok(_)) if step.attrs.for_each.is_some() => {
                        ("unknown".into(), vec!["fan-out: planned per item at run time".into()])
                    }
                    (Some(a), Ok(params)) => match a.plan(&ctx, params).await {
                        Ok(p) => {
                            let v = p.items.iter().map(|i| i.verdict).max_by_key(|v| match v {
                                Verdict::WouldCreate | Verdict::WouldChange => 3,
                                Verdict::Unknown => 2,
                                Verdict::Check => 1,
                                Verdict::Exists => 0,
                            });
                            (
                                v.map(|v| {
                                    serde_json::to_value(v)
                                        .ok()
                                        .and_then(|x| x.as_str().map(String::from))
                                        .unwrap_or_default()
                                })
                                .unwrap_or_else(|| "check".into()),
                                p.items
                                    .iter()
                                    .map(|i| {
                                        format!(
                                            "{}: {}",
                                            serde_json::to_value(i.verdict)
                                                .ok()
                                                .and_then(|x| x.as_str().map(String::from))
                                                .unwrap_or_default(),
                                            i.what
                                        )
                                    })
                                    .collect(),
                            )
                        }
                        Err(e) => ("error".into(), vec![e.to_string()]),
                    },
                    (None, _) => ("error".into(), vec![format!("unknown action {action}")]),
                }
            }
        };
        rows.push(json!({ "step": step.id, "executor": step.executor.word(), "action": step.executor.action(), "verdict": verdict, "details": what }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        println!("plan for {} ({})", runbook.title, runbook.path);
        for r in &rows {
            println!(
                "  {:<32} {:<13} {}",
                r["step"].as_str().unwrap_or(""),
                r["verdict"].as_str().unwrap_or(""),
                r["action"].as_str().unwrap_or(r["executor"].as_str().unwrap_or(""))
            );
            for d in r["details"].as_array().into_iter().flatten() {
                println!("  {:<32} {:<13}   {}", "", "", d.as_str().unwrap_or(""));
            }
        }
    }
    Exit::Done
}

pub fn status(file: &Path, state_dir: &Path, json_out: bool, color: bool) -> Exit {
    let (_source, runbook) = match load::read(file) {
        Ok(s) => {
            let (rb, _) = analyzer::check(&s, &Registry::builtin());
            (s, rb)
        }
        Err(d) => {
            commands::report(&[d], color);
            return Exit::Usage;
        }
    };
    let dir = journal::dir_for(state_dir, Path::new(&runbook.path));
    let state = match Journal::peek(&dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("runbook: {e}");
            return Exit::Usage;
        }
    };
    let Some(state) = state else {
        if json_out {
            println!("{}", json!({ "runbook": runbook.path, "runs": 0 }));
        } else {
            println!("{}: never run (no journal in {})", runbook.path, dir.display());
        }
        return Exit::Done;
    };
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
            })
        })
        .collect();
    if json_out {
        let v = json!({ "runbook": runbook.path, "run_id": state.run_id, "started": state.started, "updated": state.updated, "outcome": state.outcome, "steps": steps });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "{} — run {} started {}, last update {}, {}",
            runbook.path,
            state.run_id,
            state.started,
            state.updated,
            state.outcome.as_deref().unwrap_or("in progress or stopped")
        );
        for s in &steps {
            let extra = s["error"].as_str().or(s["waiting_for"].as_str()).unwrap_or("");
            println!(
                "  {:<32} {:<8} {}  {}",
                s["step"].as_str().unwrap_or(""),
                s["status"].as_str().unwrap_or(""),
                s["finished"].as_str().or(s["started"].as_str()).unwrap_or(""),
                extra
            );
        }
    }
    Exit::Done
}
