//! Polling an asynchronous AWS operation to a final state, with backoff and a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::context::{Context, Event};
use crate::error::PluginError;

/// One look at an asynchronous operation.
pub enum Status<T> {
    Pending(String),
    Done(T),
    Failed(String),
}

/// Polls `look` until it says done or failed, or the context's deadline passes. Throttling and
/// server faults during a poll count as "still pending": the operation itself is not affected.
pub async fn until_done<T, F, Fut>(
    ctx: &Context,
    what: &str,
    request_id: Option<&str>,
    mut look: F,
) -> Result<T, PluginError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Status<T>, PluginError>>,
{
    let settings = ctx.poll_settings();
    let started = Instant::now();
    let deadline = ctx.deadline.unwrap_or(started + settings.default_deadline);
    let mut delay = settings.initial;
    let mut last;
    loop {
        match look().await {
            Ok(Status::Done(t)) => return Ok(t),
            Ok(Status::Failed(reason)) => {
                return Err(PluginError::Failed {
                    what: what.to_string(),
                    reason,
                    request_id: request_id.map(String::from),
                    hint: None,
                });
            }
            Ok(Status::Pending(status)) => last = status,
            Err(e) if e.is_transient() => last = format!("retrying after {}", e.code().unwrap_or("error")),
            Err(e) => return Err(e),
        }
        ctx.emit(Event::Polling {
            what: what.to_string(),
            status: last.clone(),
            request_id: request_id.map(String::from),
        })?;
        let now = Instant::now();
        if now >= deadline {
            return Err(PluginError::Timeout {
                what: what.to_string(),
                status: last,
                waited_secs: started.elapsed().as_secs(),
                request_id: request_id.map(String::from),
            });
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(settings.cap).max(Duration::from_millis(1));
    }
}
