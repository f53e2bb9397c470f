//! `runbook run` and `rehearse`: load, resolve, execute.

use std::path::Path;

use runbook_plugins::{AwsOptions, Context};

use super::error::CommandError;
use super::{aws_options, limits, load_checked, located, pick_run, poll_settings};
use crate::cli::RunArgs;
use crate::exec::RunOptions;
use crate::{exec, inputs, journal};

/// The account a rehearsal plays: the answers file's `[rehearsal]` table, then the options.
pub fn rehearsed_account(args: &crate::cli::RehearseArgs) -> Result<crate::emulator::Account, CommandError> {
    let base = match &args.run.answers {
        Some(path) => inputs::Answers::load(path)
            .map_err(|e| CommandError::Usage(e.to_string()))?
            .rehearsal
            .unwrap_or_default(),
        None => crate::emulator::Account::default(),
    };
    Ok(args.account.account(base))
}

/// `run`, or with `rehearsal` the account to emulate, `rehearse`.
pub async fn run(args: RunArgs, color: bool, rehearsal: Option<crate::emulator::Account>) -> Result<(), CommandError> {
    let (source, runbook) = load_checked(&args.file, color)?;
    let limits = limits(&args.aws, color)?;
    let state_dir = args.state_dir.clone();
    let mut aws = aws_options(&args.aws);
    let mut emulator = None;
    if let Some(account) = &rehearsal {
        // Each rehearsal is a run instance of its own (`rehearsal-<time>`), tied to its own
        // emulator, which starts empty: a rehearsal always starts over.
        eprintln!("rehearse: a rehearsal starts over with an empty emulator; it never resumes another run");
        let say = |s: &str| eprintln!("rehearse: {s}");
        match crate::emulator::start(&args.state_dir, account.clone(), &say).await {
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
                return Err(CommandError::Failed(format!(
                    "rehearse: cannot start the AWS emulator: {e}"
                )));
            }
        }
    }
    // Hand-over files go beside the journal of the runbook (the run's own directory is named
    // when its inputs are known).
    let journal_dir = journal::dir_for(&state_dir, Path::new(&runbook.path));
    let ctx = Context::with_limits(aws, &journal_dir, poll_settings(), limits);
    if args.check_permissions {
        // Before the journal is opened and before the first step: a refusal changes nothing.
        let last = match rehearsal {
            Some(_) => None,
            None => pick_run(&located(&state_dir, &runbook)?, args.run.as_deref(), false)
                .map_err(|e| CommandError::Usage(e.to_string()))?,
        };
        let left = super::preflight::remaining(&runbook, last.as_ref().map(|r| &r.state), args.restart);
        if let Err(e) = super::preflight::check(&ctx, &left).await {
            if let Some(e) = emulator.take() {
                e.stop().await;
            }
            return Err(e);
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
    let ended = exec::run(source, runbook, ctx, opts).await;
    if let Some(e) = emulator {
        e.stop().await;
    }
    Ok(ended?)
}
