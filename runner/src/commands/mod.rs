//! The subcommands, one file each: `run`/`rehearse` (run.rs), `emulator`, `plan`, `status`/`runs`,
//! `verify`, `check`, `list`, `answers`, `actions`, `permissions`, `render`, `export`. Here: dispatch from the parsed command line,
//! the async runtime, colour, the diagnostics report, and what several commands share (loading a
//! runbook to run it, the AWS options, picking a run).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use runbook_plugins::{AwsLimits, AwsOptions, PollSettings, Registry};

use crate::cli::{AwsArgs, Cli, ColorChoice, Command};
use crate::diagnostic::{self, Diagnostic};
use crate::exit::Exit;
use crate::journal::{self, Journal};
use crate::model::Runbook;
use crate::source::Source;
use crate::{analyzer, load};

mod actions;
mod answers;
mod check;
mod emulator;
mod error;
mod export;
mod list;
mod permissions;
mod plan;
mod preflight;
mod render;
mod run;
mod status;
mod verify;

pub use error::CommandError;

/// Runs one subcommand; its exit code is chosen, and its closing message printed, in one place
/// ([`error::finish`]).
pub fn dispatch(cli: Cli) -> Exit {
    let color = use_color(cli.color);
    error::finish(execute(cli, color), color)
}

fn execute(cli: Cli, color: bool) -> Result<(), CommandError> {
    match cli.command {
        Command::Check { paths, json } => check::check(&paths, json, color),
        Command::Actions { name } => actions::run(name.as_deref()),
        Command::List { paths, json } => list::list(&paths, json, color),
        Command::Completions { shell } => {
            // Into a buffer first: a closed pipe (`| head`) is not a panic.
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "runbook", &mut buf);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf).and_then(|()| out.flush());
            Ok(())
        }
        Command::Run(args) => runtime(|| run::run(args, color, None)),
        Command::Rehearse(args) => runtime(|| async move {
            let account = run::rehearsed_account(&args)?;
            run::run(args.run, color, Some(account)).await
        }),
        Command::Emulator(args) => runtime(|| emulator::serve(args)),
        Command::Plan(args) => runtime(|| plan::plan(args, color)),
        Command::Verify(args) => runtime(|| verify::verify(args, color)),
        Command::Status {
            file,
            state_dir,
            run,
            json,
        } => status::status(&file, &state_dir, run.as_deref(), json, color),
        Command::Runs { file, state_dir, json } => status::runs(&file, &state_dir, json, color),
        Command::Permissions { paths, json } => permissions::permissions(&paths, json, color),
        Command::Answers { file } => answers::answers_template(&file, color),
        Command::Export(args) => export::export(&args, color),
        Command::Render {
            book,
            runbooks,
            out,
            serve,
        } => render::render(&book, &runbooks, &out, serve.as_deref(), color),
    }
}

fn runtime<F, Fut>(f: F) -> Result<(), CommandError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), CommandError>>,
{
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => {
            let exit = rt.block_on(f());
            // A prompt interrupted by Ctrl-C can leave its thread blocked on the terminal; dropping
            // the runtime would wait for it for ever. The run is over and its journal closed.
            rt.shutdown_background();
            exit
        }
        Err(e) => Err(CommandError::Failed(format!("cannot start the async runtime: {e}"))),
    }
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && console::Term::stderr().is_term()
        }
    }
}

pub use diagnostic::report;

/// Loads and checks every runbook under the given paths. A directory given is the runbooks root
/// of the runbooks found in it (`on-failure=` and includes stay inside it); a file given alone
/// has the root [`crate::paths::runbooks_root`] finds.
pub fn analyse(paths: &[PathBuf]) -> (Vec<Runbook>, Vec<Diagnostic>) {
    let registry = Registry::shared();
    let mut books = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        let (files, d) = load::collect(std::slice::from_ref(p));
        diags.extend(d);
        let root = if p.is_dir() {
            p.clone()
        } else {
            crate::paths::runbooks_root(p)
        };
        for f in files {
            match load::read(&f) {
                Ok(src) => {
                    let (rb, d) = analyzer::check_in(&src, registry, &root);
                    diags.extend(d);
                    books.push(rb);
                }
                Err(d) => diags.push(d),
            }
        }
    }
    diagnostic::sort(&mut diags);
    (books, diags)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// AWS's published limits, changed by the operator's limits file, then by `--rate` and
/// `--in-progress`.
fn limits(a: &AwsArgs, color: bool) -> Result<AwsLimits, CommandError> {
    let mut l = runbook_plugins::aws::published_limits();
    if let Some(file) = &a.limits_file {
        crate::limits_file::apply(file, &mut l).map_err(|diags| {
            report(&diags, color);
            CommandError::Diagnosed
        })?;
    }
    for spec in &a.rates {
        l.set_rate(spec)
            .map_err(|e| CommandError::Usage(format!("--rate {e}")))?;
    }
    for spec in &a.in_progress {
        l.set_in_progress(spec)
            .map_err(|e| CommandError::Usage(format!("--in-progress {e}")))?;
    }
    Ok(l)
}

/// Loads a runbook and refuses to run one that `check` would reject.
fn load_checked(file: &Path, color: bool) -> Result<(Source, Runbook), CommandError> {
    let analyzer::Checked { source, runbook, diags } = analyzer::checked(file).map_err(|d| {
        report(&[d], color);
        CommandError::Diagnosed
    })?;
    if report(&diags, color) {
        return Err(CommandError::Usage(format!(
            "{} has errors; fix them before running (see `runbook check`)",
            file.display()
        )));
    }
    Ok((source, runbook))
}

/// The journal directory of a runbook, wherever it was left (it may have moved); changes
/// nothing.
fn located(state_dir: &Path, runbook: &Runbook) -> Result<PathBuf, CommandError> {
    let steps: Vec<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
    match journal::locate(state_dir, Path::new(&runbook.path), &runbook.title, &steps) {
        Ok(found) => {
            if let Some(from) = found.moved_from {
                eprintln!(
                    "note: this runbook moved from {}; its journal is read from there",
                    crate::text::sanitize(&from.display().to_string())
                );
            }
            Ok(found.dir)
        }
        Err(e) => Err(CommandError::Usage(e.to_string())),
    }
}

fn load_unchecked(file: &Path, color: bool) -> Result<Runbook, CommandError> {
    match load::read(file) {
        Ok(s) => Ok(analyzer::check(&s, Registry::shared()).0),
        Err(d) => {
            report(&[d], color);
            Err(CommandError::Diagnosed)
        }
    }
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
        landing: ms("RUNBOOK_LANDING_MS").unwrap_or(d.landing),
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

/// Prints to stdout; a closed pipe is not an error.
fn out(s: &str) {
    let _ = crate::ui::print_out(&crate::text::sanitize(s));
}
