//! What an action runs with: AWS settings and clients, where to put hand-over files, how long to
//! poll, and where to report progress.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::BoxFuture;
use crate::budget::{Budget, PaceWatch, Paced};
use crate::error::PluginError;
use crate::limits::AwsLimits;
use crate::place::{Place, Refreshing};
use crate::pressure::{Pressure, ThrottleWatch};

mod claim;
pub use claim::{Claim, Duplicates};

/// The AWS options of the command line (`--profile`, `--region`, `--endpoint-url`, retries).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Total attempts per call, first included (the SDK's standard retry).
    pub max_attempts: Option<u32>,
    /// How long one attempt of a call may take before it is abandoned and retried.
    pub attempt_timeout: Option<Duration>,
    /// Fixed credentials (access key, secret) instead of the default chain: the rehearsal's.
    pub static_credentials: Option<(String, String)>,
}

/// How asynchronous AWS operations are polled.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    pub initial: Duration,
    pub cap: Duration,
    /// Used when the step has no `timeout=`.
    pub default_deadline: Duration,
    /// How long a request sent and then abandoned (its answer lost, its attempt timed out) may
    /// still reach AWS and act: AWS refuses a request signed more than 5 minutes ago (SigV4),
    /// with a minute for clocks. A look made sooner can miss it.
    pub landing: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            initial: Duration::from_millis(250),
            cap: Duration::from_secs(5),
            default_deadline: Duration::from_secs(15 * 60),
            landing: Duration::from_secs(6 * 60),
        }
    }
}

/// What an action tells the runner while it works. The runner journals the ones that matter
/// for resuming (intents and request ids) and shows the rest.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// About to make a mutating call.
    Intent {
        call: String,
        target: String,
    },
    /// A mutating call answered; `request_id` identifies the asynchronous operation, if any.
    Requested {
        call: String,
        target: String,
        request_id: Option<String>,
    },
    /// AWS refused a mutating call with an error: nothing was done.
    Rejected {
        call: String,
        target: String,
        code: String,
    },
    /// Still waiting on an asynchronous operation.
    Polling {
        what: String,
        status: String,
        request_id: Option<String>,
    },
    /// Something the operator should read (a hand-over, a link).
    Note {
        message: String,
    },
    Warning {
        message: String,
    },
}

/// Where events go. Recording can fail (a full disk): an [`Event::Intent`] that could not be made
/// durable is an error, and the action must not make the call it announces.
pub trait Events: Send + Sync {
    fn event(&self, event: Event) -> Result<(), PluginError>;

    /// Claims a target for a look-then-act (see [`Context::claim`]). Without a runner (plans of
    /// old, tests) nothing is claimed.
    fn claim<'a>(
        &'a self,
        _call: &'a str,
        _target: &'a str,
        _duplicates: Duplicates,
    ) -> BoxFuture<'a, Result<Claim, PluginError>> {
        Box::pin(async { Ok(Claim::none()) })
    }
}

/// Discards events; for plans and tests.
pub struct NoEvents;

impl Events for NoEvents {
    fn event(&self, _event: Event) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Masks secret values in text an action writes outside the journal (a hand-over file).
pub type Redact = Arc<dyn Fn(&str) -> String + Send + Sync>;

struct Shared {
    aws: AwsOptions,
    sdk: OnceCell<SdkConfig>,
    state_dir: PathBuf,
    poll: PollSettings,
    pressure: Arc<Pressure>,
    budget: Budget,
    /// The HTTP client under every paced client (one connection pool).
    http: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient>,
    /// Other accounts and regions steps act in: each one's configuration (an assumed role's
    /// cached credentials, a region) made once per run.
    places: Mutex<HashMap<Place, Arc<OnceCell<Arc<Placed>>>>>,
}

/// The configuration of a step that acts in another account or region.
struct Placed {
    place: Place,
    sdk: SdkConfig,
}

type Cell = Arc<OnceCell<Arc<dyn Any + Send + Sync>>>;

/// Reads shared by the items of one fan-out: what exists is listed once, not once per item.
#[derive(Default)]
pub struct Memo {
    cells: Mutex<HashMap<String, Cell>>,
}

impl Memo {
    fn cell(&self, key: &str) -> Cell {
        match self.cells.lock() {
            Ok(mut m) => m.entry(key.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }
}

/// Cheap to clone; per-call settings (deadline, events, memo) are set on the clone.
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
    pub events: Arc<dyn Events>,
    pub deadline: Option<Instant>,
    memo: Option<Arc<Memo>>,
    redact: Option<Redact>,
    /// Where this run keeps its files (hand-overs), when it is not the shared directory.
    run_dir: Option<Arc<PathBuf>>,
    /// Another account or region than the caller's (`account=`, `region=`).
    placed: Option<Arc<Placed>>,
}

/// The one client factory: an SDK client of `$sdk` from the shared configuration, with the
/// throttle watch every client reports to, the family's request pace when the family has one
/// (`AwsLimits`), and a region when the service needs its own. The SDK's config builders share no
/// trait, hence a macro.
macro_rules! client {
    ($ctx:expr, $sdk:ident, $family:literal, $region:expr) => {{
        let sdk = $ctx.sdk().await?;
        let mut b = $sdk::config::Builder::from(sdk).interceptor($ctx.watch());
        if let Some((http, watch)) = $ctx.paced(sdk, $family) {
            b = b.http_client(http).interceptor(watch);
        }
        if let Some(r) = $region {
            b = b.region(Region::new(r.to_string()));
        }
        Ok($sdk::Client::from_conf(b.build()))
    }};
}

impl Context {
    /// A context that keeps these limits (`aws::published_limits`, with the operator's overrides).
    pub fn with_limits(aws: AwsOptions, state_dir: impl Into<PathBuf>, poll: PollSettings, limits: AwsLimits) -> Self {
        Context {
            shared: Arc::new(Shared {
                aws,
                sdk: OnceCell::new(),
                state_dir: state_dir.into(),
                poll,
                pressure: Arc::default(),
                budget: Budget::new(limits),
                http: std::sync::OnceLock::new(),
                places: Mutex::default(),
            }),
            events: Arc::new(NoEvents),
            deadline: None,
            memo: None,
            redact: None,
            run_dir: None,
            placed: None,
        }
    }

    /// Where this context acts, when it is not the caller's own account and region.
    pub fn place(&self) -> Option<&Place> {
        self.placed.as_ref().map(|p| &p.place)
    }

    /// The account this context acts in by an assumed role, if another than the caller's.
    pub fn account(&self) -> Option<&str> {
        self.place().and_then(|p| p.account.as_deref())
    }

    /// This context in another account (by assuming `place.role` there) and/or region. The
    /// role is assumed once per run and account, and its identity checked: the credentials
    /// must be the account's that was asked for. Every use is reported (a note: the journal
    /// and the events say where the step acted).
    pub async fn elsewhere(&self, place: &Place) -> Result<Context, PluginError> {
        if !place.is_elsewhere() {
            return Ok(Context {
                placed: None,
                ..self.clone()
            });
        }
        place.check().map_err(PluginError::Other)?;
        let cell = self
            .shared
            .places
            .lock()
            .map_err(|_| PluginError::Other("places lock poisoned".into()))?
            .entry(place.clone())
            .or_default()
            .clone();
        let placed = cell
            .get_or_try_init(|| async { self.assume(place).await.map(Arc::new) })
            .await?
            .clone();
        self.emit(Event::Note {
            message: format!("acting in {}", place.describe()),
        })?;
        Ok(Context {
            placed: Some(placed),
            ..self.clone()
        })
    }

    async fn assume(&self, place: &Place) -> Result<Placed, PluginError> {
        use aws_credential_types::provider::SharedCredentialsProvider;
        let base = self.base_sdk().await?;
        let mut b = base.to_builder();
        let region = match &place.region {
            Some(r) => r.clone(),
            None => self.base_region().await?,
        };
        b.set_region(Some(Region::new(region.clone())));
        let Some(account) = &place.account else {
            return Ok(Placed {
                place: place.clone(),
                sdk: b.build(),
            });
        };
        let role = place.role_name().to_string();
        let arn = place.role_arn(account, &region);
        let provider = aws_config::sts::AssumeRoleProvider::builder(arn.clone())
            .session_name("runbook")
            .configure(base)
            .build()
            .await;
        let refreshing = Refreshing::new(provider);
        let failed = |reason: String| PluginError::Failed {
            what: format!("assuming role {role} in account {account}"),
            reason,
            request_id: None,
            hint: Some(format!(
                "check that account {account} has the role {role} (AWS Organizations creates OrganizationAccountAccessRole in the accounts it makes; an invited account needs one made), that the role's trust policy trusts the account you are signed in to, and that your credentials may call sts:AssumeRole on {arn}; `role=` on the step names another role"
            )),
        };
        refreshing
            .get()
            .await
            .map_err(|e| failed(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string()))?;
        b.set_credentials_provider(Some(SharedCredentialsProvider::new(refreshing)));
        let placed = Placed {
            place: place.clone(),
            sdk: b.build(),
        };
        // The guard of a step elsewhere: the assumed identity is the account asked for.
        let probe = Context {
            placed: Some(Arc::new(Placed {
                place: placed.place.clone(),
                sdk: placed.sdk.clone(),
            })),
            events: Arc::new(NoEvents),
            ..self.clone()
        };
        // Not `aws::sts::caller`: the actions depend on the context, never the other way.
        let id = probe
            .sts()
            .await
            .map_err(|e| failed(e.to_string()))?
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| failed(crate::error::aws("sts:GetCallerIdentity", e).to_string()))?;
        let got = id.account().unwrap_or_default();
        if got != account {
            return Err(failed(format!(
                "the role's credentials are for account {got}, not {account}"
            )));
        }
        Ok(placed)
    }

    /// The directory of one run: hand-over files are written there.
    pub fn with_state_dir(&self, dir: PathBuf) -> Self {
        Context {
            run_dir: Some(Arc::new(dir)),
            ..self.clone()
        }
    }

    /// Secrets known to the runner are masked in what [`Context::redact`] returns.
    pub fn with_redact(&self, redact: Redact) -> Self {
        Context {
            redact: Some(redact),
            ..self.clone()
        }
    }

    /// `text` with every secret the runner knows masked: for anything an action writes itself.
    pub fn redact(&self, text: &str) -> String {
        match &self.redact {
            Some(r) => r(text),
            None => text.to_string(),
        }
    }

    /// Shares reads between the calls made with this memo (the items of one fan-out).
    pub fn with_memo(&self, memo: Option<Arc<Memo>>) -> Self {
        Context { memo, ..self.clone() }
    }

    /// `read()` once per memo; without a memo, every call reads.
    pub async fn memo<T, F, Fut>(&self, key: &str, read: F) -> Result<Arc<T>, PluginError>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, PluginError>>,
    {
        let Some(memo) = &self.memo else {
            return Ok(Arc::new(read().await?));
        };
        let cell = memo.cell(key);
        let value = cell
            .get_or_try_init(|| async { Ok::<_, PluginError>(Arc::new(read().await?) as Arc<dyn Any + Send + Sync>) })
            .await?
            .clone();
        value
            .downcast::<T>()
            .map_err(|_| PluginError::Other(format!("memo `{key}` holds another type")))
    }

    pub fn with_events(&self, events: Arc<dyn Events>) -> Self {
        Context { events, ..self.clone() }
    }

    pub fn with_deadline(&self, deadline: Option<Instant>) -> Self {
        Context {
            deadline,
            ..self.clone()
        }
    }

    /// Claims `call` on `target` for the look that decides whether to send it and the send: two
    /// items of a fan-out, two runs or two processes sharing the state directory never act on one
    /// target at once, and where AWS makes duplicates ([`Duplicates::Made`]) a request to it whose
    /// answer was lost (this run's, an earlier run's, another journal's) is let land first, so that
    /// the look sees everything it could have made. Every attempt of a step claims again.
    pub async fn claim(&self, call: &str, target: &str, duplicates: Duplicates) -> Result<Claim, PluginError> {
        self.events.claim(call, target, duplicates).await
    }

    /// Reports an event. An intent is durable when this returns `Ok`; on `Err` the action stops
    /// before the call.
    pub fn emit(&self, event: Event) -> Result<(), PluginError> {
        self.events.event(event)
    }

    pub fn state_dir(&self) -> &std::path::Path {
        match &self.run_dir {
            Some(d) => d,
            None => &self.shared.state_dir,
        }
    }

    pub fn poll_settings(&self) -> PollSettings {
        self.shared.poll
    }

    pub fn aws_options(&self) -> &AwsOptions {
        &self.shared.aws
    }

    /// Throttling seen by every client of this context, and the fan-out limit it shrinks.
    pub fn pressure(&self) -> &Arc<Pressure> {
        &self.shared.pressure
    }

    fn watch(&self) -> ThrottleWatch {
        ThrottleWatch(self.shared.pressure.clone())
    }

    /// The run's request budget: a bucket per API family, in-progress caps, settle times.
    pub fn budget(&self) -> &Budget {
        &self.shared.budget
    }

    /// For a paced API family: the HTTP client that takes each request's slot from the family's
    /// bucket, and the interceptor that tells the bucket about throttles.
    fn paced(&self, sdk: &SdkConfig, family: &str) -> Option<(Paced, PaceWatch)> {
        let bucket = self.shared.budget.bucket(family)?;
        let inner = match sdk.http_client() {
            Some(c) => c,
            None => self
                .shared
                .http
                .get_or_init(crate::budget::default_https_client)
                .clone(),
        };
        Some((Paced::new(inner, bucket.clone()), PaceWatch(bucket)))
    }

    /// The SDK configuration this context acts with: the shared one, or another account's or
    /// region's ([`Context::elsewhere`]).
    pub async fn sdk(&self) -> Result<&SdkConfig, PluginError> {
        match &self.placed {
            Some(p) => Ok(&p.sdk),
            None => self.base_sdk().await,
        }
    }

    /// The caller's own region, whatever this context's place.
    async fn base_region(&self) -> Result<String, PluginError> {
        Ok(self
            .base_sdk()
            .await?
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string()))
    }

    /// The shared SDK configuration, loaded once (profile, region, endpoint, retries).
    async fn base_sdk(&self) -> Result<&SdkConfig, PluginError> {
        self.shared
            .sdk
            .get_or_try_init(|| async {
                let o = &self.shared.aws;
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(p) = &o.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(r) = &o.region {
                    loader = loader.region(Region::new(r.clone()));
                }
                if let Some(e) = &o.endpoint_url {
                    loader = loader.endpoint_url(e);
                }
                if let Some((key, secret)) = &o.static_credentials {
                    loader = loader.credentials_provider(aws_sdk_sts::config::Credentials::new(
                        key.clone(),
                        secret.clone(),
                        None,
                        None,
                        "runbook-rehearsal",
                    ));
                }
                let attempts = o.max_attempts.unwrap_or(5).max(1);
                // Standard mode. The SDK's adaptive mode was measured here: with 20% throttling
                // its client-side rate limiter took 5 account creations from 8 s to 120 s.
                loader = loader.retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(attempts)
                        .with_initial_backoff(Duration::from_millis(100)),
                );
                // Without a timeout a silent connection would hang the step until its deadline.
                loader = loader.timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .operation_attempt_timeout(o.attempt_timeout.unwrap_or(Duration::from_secs(60)))
                        .build(),
                );
                let cfg = loader.load().await;
                if cfg.credentials_provider().is_none() {
                    return Err(crate::error::no_credentials());
                }
                Ok(cfg)
            })
            .await
    }

    /// The step's `region=`, else the region from the profile or `--region`, or us-east-1.
    pub async fn region(&self) -> Result<String, PluginError> {
        Ok(self
            .sdk()
            .await?
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string()))
    }

    pub async fn sts(&self) -> Result<aws_sdk_sts::Client, PluginError> {
        client!(self, aws_sdk_sts, "sts", None::<&str>)
    }

    /// IAM is global and answers in us-east-1.
    pub async fn iam(&self) -> Result<aws_sdk_iam::Client, PluginError> {
        client!(self, aws_sdk_iam, "iam", Some("us-east-1"))
    }

    /// Organizations is global and answers in us-east-1.
    pub async fn organizations(&self) -> Result<aws_sdk_organizations::Client, PluginError> {
        client!(self, aws_sdk_organizations, "organizations", Some("us-east-1"))
    }

    /// The Support API answers in us-east-1 only.
    pub async fn support(&self) -> Result<aws_sdk_support::Client, PluginError> {
        client!(self, aws_sdk_support, "support", Some("us-east-1"))
    }

    /// sso-admin in the Identity Center home region (default: the configured region).
    pub async fn sso_admin(&self, region: Option<&str>) -> Result<aws_sdk_ssoadmin::Client, PluginError> {
        client!(self, aws_sdk_ssoadmin, "sso-admin", region)
    }

    /// identitystore in the Identity Center home region (default: the configured region).
    pub async fn identitystore(&self, region: Option<&str>) -> Result<aws_sdk_identitystore::Client, PluginError> {
        client!(self, aws_sdk_identitystore, "identitystore", region)
    }
}
