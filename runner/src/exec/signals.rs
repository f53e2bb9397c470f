//! Ctrl-C, a closed terminal (SIGHUP) and a stop request (SIGTERM) all interrupt a run: the
//! step in flight is journaled as interrupted and the run exits 130.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::signal::unix::{SignalKind, signal};

use super::Shared;

pub(super) fn interrupt_on_signals(shared: Arc<Shared>) {
    tokio::spawn(async move {
        let signalled = match (signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
            (Ok(mut term), Ok(mut hup)) => tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term.recv() => r.is_some(),
                r = hup.recv() => r.is_some(),
            },
            _ => tokio::signal::ctrl_c().await.is_ok(),
        };
        if signalled {
            shared.interrupted.store(true, Ordering::SeqCst);
            shared.interrupt.notify_waiters();
        }
    });
}
