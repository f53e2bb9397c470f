//! AWS pushing back, and the fan-out easing off.
//!
//! [`ThrottleWatch`] is an SDK interceptor on every client: after each attempt it looks at the raw
//! response and counts throttling answers (HTTP 429, or an error code AWS uses for throttling),
//! including the ones the SDK retries by itself. [`AdaptiveLimit`] is the fan-out's concurrency:
//! additive increase (about +1 per limit's worth of finished items), multiplicative decrease
//! (halved on a throttle, at most once per `cooldown` so that one burst counts once).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::sync::Notify;

use crate::error::is_throttling_code;

/// Where throttles are reported: a counter for the summary, and every fan-out limit now active.
#[derive(Debug, Default)]
pub struct Pressure {
    throttled: AtomicU64,
    limits: Mutex<Vec<Arc<AdaptiveLimit>>>,
}

impl Pressure {
    /// Throttling answers seen so far (every attempt, retried or not).
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// A new limit of at most `max` that throttles shrink until the guard is dropped.
    pub fn adaptive(self: &Arc<Self>, max: usize) -> Registered {
        let limit = Arc::new(AdaptiveLimit::new(max, COOLDOWN));
        if let Ok(mut l) = self.limits.lock() {
            l.push(limit.clone());
        }
        Registered {
            pressure: self.clone(),
            limit,
        }
    }

    pub(crate) fn on_throttle(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        if let Ok(l) = self.limits.lock() {
            for limit in l.iter() {
                limit.throttled();
            }
        }
    }
}

/// One throttle burst halves a limit once within this window.
pub const COOLDOWN: Duration = Duration::from_millis(500);

/// An [`AdaptiveLimit`] that hears throttles while it lives.
pub struct Registered {
    pressure: Arc<Pressure>,
    limit: Arc<AdaptiveLimit>,
}

impl std::ops::Deref for Registered {
    type Target = AdaptiveLimit;
    fn deref(&self) -> &AdaptiveLimit {
        &self.limit
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut l) = self.pressure.limits.lock() {
            l.retain(|x| !Arc::ptr_eq(x, &self.limit));
        }
    }
}

/// The interceptor every client gets.
#[derive(Debug, Clone)]
pub struct ThrottleWatch(pub Arc<Pressure>);

impl Intercept for ThrottleWatch {
    fn name(&self) -> &'static str {
        "runbook-throttle-watch"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(resp) = context.response() else { return Ok(()) };
        if response_is_throttle(resp) {
            self.0.on_throttle();
        }
        Ok(())
    }
}

/// HTTP 429, or an error answer whose code AWS uses for throttling.
pub(crate) fn response_is_throttle(resp: &HttpResponse) -> bool {
    let status = resp.status().as_u16();
    status == 429
        || (status >= 400
            && (resp.headers().get("x-amzn-errortype").is_some_and(is_throttling_code)
                || resp.body().bytes().is_some_and(body_says_throttled)))
}

/// JSON (`"__type": "..."`) and XML (`<Code>...</Code>`) error bodies.
fn body_says_throttled(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        return ["__type", "code", "Code"]
            .iter()
            .filter_map(|k| v.get(k).and_then(|c| c.as_str()))
            .any(is_throttling_code);
    }
    text.split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .is_some_and(is_throttling_code)
}

/// AIMD concurrency for a fan-out, between 1 and `max`.
#[derive(Debug)]
pub struct AdaptiveLimit {
    state: Mutex<LimitState>,
    notify: Notify,
    max: usize,
    cooldown: Duration,
}

#[derive(Debug)]
struct LimitState {
    limit: f64,
    in_flight: usize,
    last_decrease: Option<Instant>,
    min_seen: usize,
    decreases: u32,
}

/// Held while an item runs; finishing it (drop) frees the slot.
pub struct Permit<'a> {
    limit: &'a AdaptiveLimit,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.limit.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.limit.notify.notify_waiters();
    }
}

impl AdaptiveLimit {
    pub fn new(max: usize, cooldown: Duration) -> Self {
        let max = max.max(1);
        AdaptiveLimit {
            state: Mutex::new(LimitState {
                limit: max as f64,
                in_flight: 0,
                last_decrease: None,
                min_seen: max,
                decreases: 0,
            }),
            notify: Notify::new(),
            max,
            cooldown,
        }
    }

    /// Waits for a free slot under the current limit.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let notified = self.notify.notified();
            {
                let Ok(mut s) = self.state.lock() else { break };
                if s.in_flight < s.limit.floor().max(1.0) as usize {
                    s.in_flight += 1;
                    return Permit { limit: self };
                }
            }
            notified.await;
        }
        Permit { limit: self }
    }

    /// An item finished without being pushed back: grow by 1/limit.
    pub fn succeeded(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.limit = (s.limit + 1.0 / s.limit).min(self.max as f64);
        }
        self.notify.notify_waiters();
    }

    /// AWS throttled a call: halve, unless we just did.
    pub fn throttled(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        if s.last_decrease.is_some_and(|t| now.duration_since(t) < self.cooldown) {
            return;
        }
        s.last_decrease = Some(now);
        s.limit = (s.limit / 2.0).max(1.0);
        s.decreases += 1;
        s.min_seen = s.min_seen.min(s.limit as usize);
    }

    /// (current limit, lowest it went, times it was halved)
    pub fn stats(&self) -> (usize, usize, u32) {
        self.state
            .lock()
            .map(|s| (s.limit as usize, s.min_seen, s.decreases))
            .unwrap_or((self.max, self.max, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert!(is_throttling_code("ThrottlingException"));
        assert!(is_throttling_code(
            "com.amazonaws.organizations#TooManyRequestsException"
        ));
        assert!(is_throttling_code("ThrottlingException:http://internal"));
        assert!(!is_throttling_code("ConflictException"));
        assert!(body_says_throttled(
            br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#
        ));
        assert!(body_says_throttled(
            b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>"
        ));
        assert!(!body_says_throttled(br#"{"__type":"AccessDeniedException"}"#));
    }

    #[test]
    fn halves_once_per_cooldown_and_grows_back() {
        let l = AdaptiveLimit::new(8, Duration::from_secs(3600));
        l.throttled();
        l.throttled(); // same burst
        assert_eq!(l.stats(), (4, 4, 1));
        for _ in 0..40 {
            l.succeeded();
        }
        assert_eq!(l.stats().0, 8, "back to the maximum, never above");
        let quick = AdaptiveLimit::new(8, Duration::ZERO);
        for _ in 0..10 {
            quick.throttled();
        }
        assert_eq!(quick.stats().0, 1, "never below one");
    }

    #[tokio::test]
    async fn permits_follow_the_limit() {
        let l = AdaptiveLimit::new(2, Duration::ZERO);
        let a = l.acquire().await;
        let _b = l.acquire().await;
        l.throttled(); // limit 1, two in flight
        drop(a);
        let third = tokio::time::timeout(Duration::from_millis(50), l.acquire()).await;
        assert!(third.is_err(), "one still in flight under a limit of one");
    }
}
