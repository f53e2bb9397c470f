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

/// One operation being polled: what to call it, its request, and when to give up.
struct Polled<'a> {
    ctx: &'a Context,
    what: &'a str,
    request_id: Option<&'a str>,
    started: Instant,
    deadline: Instant,
}

/// What one look came to.
enum Looked<T> {
    /// Done or failed: the poll's result.
    Final(Result<T, PluginError>),
    /// Still in progress, named by its status.
    Pending(String),
    /// Throttling or a server fault during the look: the operation itself is not affected.
    Retrying(String),
}

impl<'a> Polled<'a> {
    fn new(ctx: &'a Context, what: &'a str, request_id: Option<&'a str>) -> Self {
        let started = Instant::now();
        Polled {
            ctx,
            what,
            request_id,
            started,
            deadline: ctx.deadline.unwrap_or(started + ctx.poll_settings().default_deadline),
        }
    }

    fn judge<T>(&self, looked: Result<Status<T>, PluginError>) -> Looked<T> {
        match looked {
            Ok(Status::Done(t)) => Looked::Final(Ok(t)),
            Ok(Status::Failed(reason)) => Looked::Final(Err(PluginError::Failed {
                what: self.what.to_string(),
                reason,
                request_id: self.request_id.map(String::from),
                hint: None,
            })),
            Ok(Status::Pending(status)) => Looked::Pending(status),
            Err(e) if e.is_transient() => Looked::Retrying(format!("retrying after {}", e.code().unwrap_or("error"))),
            Err(e) => Looked::Final(Err(e)),
        }
    }

    /// Reports a look that found it not done yet; past the deadline, the timeout. Returns now.
    fn not_yet(&self, status: String) -> Result<Instant, PluginError> {
        self.ctx.emit(Event::Polling {
            what: self.what.to_string(),
            status: status.clone(),
            request_id: self.request_id.map(String::from),
        })?;
        let now = Instant::now();
        if now >= self.deadline {
            return Err(PluginError::Timeout {
                what: self.what.to_string(),
                status,
                waited_secs: self.started.elapsed().as_secs(),
                request_id: self.request_id.map(String::from),
            });
        }
        Ok(now)
    }
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
    let polled = Polled::new(ctx, what, request_id);
    let mut delay = settings.initial;
    loop {
        let status = match polled.judge(look().await) {
            Looked::Final(r) => return r,
            Looked::Pending(s) | Looked::Retrying(s) => s,
        };
        let now = polled.not_yet(status)?;
        tokio::time::sleep(delay.min(polled.deadline - now)).await;
        delay = (delay * 2).min(settings.cap).max(Duration::from_millis(1));
    }
}

/// Polls an operation of `kind` (`sso-admin:CreateAccountAssignment`) made at `since` until it
/// says done or failed, spending as few looks as it can: the first look is sent when operations of
/// this kind have been seen to settle in this run (with up to 3% jitter, so that items made
/// together do not look together), later ones in short steps that double. Until the run has seen
/// one in progress, looks back off as in [`until_done`]. Each look that finds the operation still
/// in progress teaches the next ones. `since` None (an operation made by an earlier run): no
/// learning, backoff only.
pub async fn until_settled<T, F, Fut>(
    ctx: &Context,
    kind: &str,
    since: Option<Instant>,
    what: &str,
    request_id: Option<&str>,
    mut look: F,
) -> Result<T, PluginError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Status<T>, PluginError>>,
{
    let settings = ctx.poll_settings();
    let polled = Polled::new(ctx, what, request_id);
    let made = since.unwrap_or(polled.started);
    let budget = ctx.budget();
    let learned = since.and_then(|_| budget.expected_settle(kind));
    let mut at = made + learned.map_or(settings.initial, |e| e.mul_f64(1.0 + jitter() * 0.03));
    let mut step = learned.map_or(settings.initial, |e| (e / 10).max(settings.initial));
    loop {
        let now = Instant::now();
        if at > now {
            tokio::time::sleep(at.min(polled.deadline) - now).await;
        }
        let status = match polled.judge(look().await) {
            Looked::Final(r) => return r,
            Looked::Pending(s) => {
                if since.is_some() {
                    budget.still_pending(kind, made.elapsed());
                }
                s
            }
            Looked::Retrying(s) => s,
        };
        let now = polled.not_yet(status)?;
        // What this and the other items' looks have taught so far.
        let learned = since.and_then(|_| budget.expected_settle(kind));
        at = (now + step).max(made + learned.unwrap_or_default());
        step = (step * 2).min(settings.cap).max(Duration::from_millis(1));
    }
}

/// A number in [0, 1), different at each call (no generator needed for spreading polls).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
