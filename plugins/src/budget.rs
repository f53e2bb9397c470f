//! Spending AWS's request budget well, shared by every step and fan-out item of a run.
//!
//! - [`TokenBucket`]: one per API family, paced at the family's rate (`limits`). It sits in the
//!   HTTP connector of every client of that family ([`Paced`]), so every attempt (the SDK's
//!   retries included) spends a token, and actions need do nothing to adopt it. A throttle halves
//!   the pace (once per burst); answers that are not throttles bring it back to the limit.
//! - In-progress caps: a semaphore per capped operation ([`Budget::in_progress`]), held by an
//!   action from before its create call until it has seen the operation settle.
//! - Settle times ([`SettleTimes`]): how long an asynchronous operation of a kind has been seen to
//!   stay in progress in this run, so that a poll is sent when the operation should be done.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::sync::Semaphore;

use crate::limits::AwsLimits;
use crate::pressure::response_is_throttle;

/// A throttle halves a bucket's pace at most once within this window (one burst, one halving).
const COOLDOWN: Duration = Duration::from_millis(500);

/// Requests of one API family, paced: each taker reserves the next free slot (first come, first
/// served), so a queue of items spends exactly the rate, never a burst above it.
#[derive(Debug)]
pub struct TokenBucket {
    max_rate: f64,
    state: Mutex<Pace>,
}

#[derive(Debug)]
struct Pace {
    rate: f64,
    next: Instant,
    last_decrease: Option<Instant>,
    halved: u32,
    lowest: f64,
}

impl TokenBucket {
    pub fn new(rate: f64) -> TokenBucket {
        let rate = rate.max(0.01);
        TokenBucket {
            max_rate: rate,
            state: Mutex::new(Pace {
                rate,
                next: Instant::now(),
                last_decrease: None,
                halved: 0,
                lowest: rate,
            }),
        }
    }

    /// Waits for this request's slot.
    pub async fn take(&self) {
        let at = {
            let Ok(mut p) = self.state.lock() else { return };
            let now = Instant::now();
            let at = p.next.max(now);
            p.next = at + Duration::from_secs_f64(1.0 / p.rate);
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }

    /// AWS throttled a request of this family: half the pace, unless a halving is this recent.
    pub fn throttled(&self) {
        let Ok(mut p) = self.state.lock() else { return };
        let now = Instant::now();
        if p.last_decrease.is_some_and(|t| now.duration_since(t) < COOLDOWN) {
            return;
        }
        p.last_decrease = Some(now);
        p.rate = (p.rate / 2.0).max(self.max_rate / 64.0);
        p.lowest = p.lowest.min(p.rate);
        p.halved += 1;
    }

    /// An answer that was not a throttle: back toward the limit by a twentieth of it.
    pub fn answered(&self) {
        if let Ok(mut p) = self.state.lock() {
            p.rate = (p.rate + self.max_rate / 20.0).min(self.max_rate);
        }
    }

    /// (pace now, lowest pace, times halved)
    pub fn stats(&self) -> (f64, f64, u32) {
        self.state
            .lock()
            .map(|p| (p.rate, p.lowest, p.halved))
            .unwrap_or((self.max_rate, self.max_rate, 0))
    }
}

/// An HTTP client whose every request first takes its slot from the family's bucket.
#[derive(Debug, Clone)]
pub struct Paced {
    inner: SharedHttpClient,
    bucket: Arc<TokenBucket>,
}

impl Paced {
    pub fn new(inner: SharedHttpClient, bucket: Arc<TokenBucket>) -> Paced {
        Paced { inner, bucket }
    }
}

impl HttpClient for Paced {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    bucket: Arc<TokenBucket>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, bucket) = (self.inner.clone(), self.bucket.clone());
        HttpConnectorFuture::new(async move {
            bucket.take().await;
            inner.call(request).await
        })
    }
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, proxy settings from the
/// environment), built as aws-smithy-runtime builds it, to put under [`Paced`].
pub fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// The interceptor that tells a bucket how its requests were answered.
#[derive(Debug, Clone)]
pub struct PaceWatch(pub Arc<TokenBucket>);

impl Intercept for PaceWatch {
    fn name(&self) -> &'static str {
        "runbook-pace-watch"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match context.response() {
            Some(resp) if response_is_throttle(resp) => self.0.throttled(),
            Some(_) => self.0.answered(),
            None => {}
        }
        Ok(())
    }
}

/// How long operations of one kind stay in progress in this run: the ages at which a poll still
/// found one in progress (the latest 32; ages are taken when the answer arrived).
#[derive(Debug, Default)]
pub struct SettleTimes {
    pending: VecDeque<Duration>,
}

const KEEP: usize = 32;

impl SettleTimes {
    fn push(&mut self, d: Duration) {
        if self.pending.len() == KEEP {
            self.pending.pop_front();
        }
        self.pending.push_back(d);
    }

    /// When to look first: just past the oldest age at which one was still in progress; None
    /// until a poll has found one in progress.
    pub fn expected(&self) -> Option<Duration> {
        let p = self.pending.iter().max()?;
        Some(p.mul_f64(1.02) + Duration::from_millis(10))
    }
}

/// The run's budget: buckets per family, in-progress caps, settle times. Held by the context.
#[derive(Debug, Default)]
pub struct Budget {
    limits: AwsLimits,
    buckets: Mutex<HashMap<String, Arc<TokenBucket>>>,
    caps: Mutex<HashMap<String, Arc<Semaphore>>>,
    settle: Mutex<HashMap<String, SettleTimes>>,
}

impl Budget {
    pub fn new(limits: AwsLimits) -> Budget {
        Budget {
            limits,
            ..Budget::default()
        }
    }

    pub fn limits(&self) -> &AwsLimits {
        &self.limits
    }

    /// The bucket of an API family (the same for every client of it), if the family is paced.
    pub fn bucket(&self, family: &str) -> Option<Arc<TokenBucket>> {
        let rate = self.limits.rate(family)?;
        let mut m = self.buckets.lock().ok()?;
        Some(
            m.entry(family.to_string())
                .or_insert_with(|| Arc::new(TokenBucket::new(rate)))
                .clone(),
        )
    }

    /// The cap of an operation (`CreateAccountAssignment`), if AWS has one: take a permit before
    /// the call, and drop it when the operation is seen settled.
    pub fn in_progress(&self, op: &str) -> Option<Arc<Semaphore>> {
        let cap = self.limits.in_progress(op)?;
        let mut m = self.caps.lock().ok()?;
        Some(
            m.entry(op.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(cap)))
                .clone(),
        )
    }

    /// When to poll an operation of `kind` first (None: nothing learned yet).
    pub fn expected_settle(&self, kind: &str) -> Option<Duration> {
        self.settle.lock().ok()?.get(kind)?.expected()
    }

    /// A poll of an operation of `kind` answered `age` after the operation was made: still in
    /// progress.
    pub fn still_pending(&self, kind: &str, age: Duration) {
        if let Ok(mut m) = self.settle.lock() {
            m.entry(kind.to_string()).or_default().push(age);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_paces_at_its_rate_and_halves_on_throttles() {
        let b = TokenBucket::new(50.0);
        let t0 = Instant::now();
        for _ in 0..11 {
            b.take().await;
        }
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(199), "ten intervals of 20 ms: {took:?}");
        b.throttled();
        b.throttled(); // the same burst
        assert_eq!(b.stats().2, 1);
        assert!((b.stats().0 - 25.0).abs() < 1e-9);
        for _ in 0..20 {
            b.answered();
        }
        assert!((b.stats().0 - 50.0).abs() < 1e-9, "back to the limit, never above");
    }

    #[test]
    fn settle_times_are_learned_from_what_polls_saw() {
        let mut s = SettleTimes::default();
        assert_eq!(s.expected(), None, "nothing seen in progress yet");
        s.push(Duration::from_millis(900));
        s.push(Duration::from_millis(400));
        assert_eq!(s.expected(), Some(Duration::from_millis(928)));
        for _ in 0..40 {
            s.push(Duration::from_millis(100));
        }
        assert_eq!(s.pending.len(), KEEP, "the latest only");
        assert_eq!(s.expected(), Some(Duration::from_millis(112)));
    }
}
