//! `runbook emulator`: the rehearsal's emulator, kept running, so that several runs (or a test)
//! meet one emulated account.

use std::io::Write;

use super::error::CommandError;
use super::out;
use crate::cli::EmulatorArgs;
use crate::inputs;

pub async fn serve(args: EmulatorArgs) -> Result<(), CommandError> {
    let base = match &args.answers {
        Some(path) => inputs::Answers::load(path)
            .map_err(|e| CommandError::Usage(e.to_string()))?
            .rehearsal
            .unwrap_or_default(),
        None => crate::emulator::Account::default(),
    };
    let account = args.account.account(base);
    let say = |s: &str| eprintln!("emulator: {s}");
    let emulator = crate::emulator::start(&args.state_dir, account.clone(), &say)
        .await
        .map_err(|e| CommandError::Failed(format!("emulator: cannot start: {e}")))?;
    say(&account.describe());
    // The one line a script (or a test) reads to find it.
    out(&format!("AWS_ENDPOINT_URL={}", emulator.endpoint));
    let _ = std::io::stdout().flush();
    // Until Ctrl-C or SIGTERM; moto is stopped with it.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CommandError::Failed(format!("emulator: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    emulator.stop().await;
    Ok(())
}
