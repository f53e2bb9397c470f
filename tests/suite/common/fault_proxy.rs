//! Our fault proxy: a loopback HTTP proxy in front of moto that injects what moto never does:
//! throttling, 500/503, IN_PROGRESS statuses before SUCCEEDED or FAILED, operations that never
//! finish, SubscriptionRequiredException (or another refusal) from Support, ConflictException for
//! a duplicate permission set name, the root user as the caller, and a fixed delay per request (a
//! model of real round trips).
//!
//! It also answers what moto leaves out of permission set provisioning, as AWS does:
//! DescribePermissionSetProvisioningStatus (moto: HTTP 500) and ListAccountsForProvisionedPermissionSet
//! filtered to LATEST_PERMISSION_SET_NOT_PROVISIONED (moto ignores the filter): a set changed since
//! it was last provisioned lists the accounts it is assigned in.
//!
//! Faults that stop a request are injected before it reaches moto, so the request never
//! happened upstream, exactly as a throttled request does not happen at AWS.
//!
//! It stands on the rehearsal emulator's wire (`runbook::emulator::wire`, hyper) and calls the
//! emulator's rules where both play the same account (the root caller, root MFA, provisioning
//! status): one HTTP stack, no copied rule. Tests are synchronous, so the proxy runs on a tokio
//! runtime of its own thread. Here: the rules and the proxy's handle; what it does with each
//! request is `proxy_serve.rs`, the answers it rewrites `proxy_rules.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runbook::emulator::wire::{self, Upstream};

use super::quota::{QuotaModel, QuotaState};

#[path = "proxy_rules.rs"]
mod rules;

#[path = "proxy_serve.rs"]
mod serve;

#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Percent of JSON-protocol requests answered with ThrottlingException.
    pub throttle_pct: u32,
    /// Percent answered with HTTP 500 or 503 (alternating).
    pub server_error_pct: u32,
    /// Async operations (account creation, assignment creation) read as IN_PROGRESS this many times.
    pub in_progress_reads: u32,
    /// Then they end FAILED with this reason instead of SUCCEEDED.
    pub fail_with: Option<String>,
    /// They stay IN_PROGRESS for ever.
    pub never_finish: bool,
    /// Every Support API call answers SubscriptionRequiredException (the Basic plan).
    pub subscription_required: bool,
    /// CreatePermissionSet with a name already created answers ConflictException, as AWS does
    /// (decided when the request reaches moto, after any hold).
    pub conflict_on_duplicate_permission_set: bool,
    /// The next ListPermissionSets answers an empty list (another creator racing ours).
    pub hide_permission_sets_once: bool,
    /// Percent of JSON-protocol requests whose connection is closed without an answer (before
    /// they reach moto).
    pub reset_pct: u32,
    /// This many answers (after moto acted) are held back by `slow_by`: past the client's
    /// attempt timeout, the call happened and the caller gave up on it.
    pub slow_answers: u32,
    pub slow_by: Duration,
    /// Only answers of this operation are held back (all JSON answers when unset).
    pub slow_op: Option<String>,
    /// The first request of this operation reaches moto, but its answer is replaced by a 500:
    /// the call happened and the client cannot know.
    pub lose_answer_once: Option<String>,
    /// What the lost answer is replaced by (status line, error code): default a 500
    /// InternalServerException; some services say a server fault with a 4xx (`InternalError`).
    /// An empty code answers a proxy's HTML page with that status instead.
    pub lost_answer_as: Option<(&'static str, &'static str)>,
    /// GetAccountSummary reports root MFA as active (moto always says 0).
    pub root_mfa: bool,
    /// ListAccounts leaves out the accounts the tests create (emails `aws+…`): an account
    /// AWS is still creating is not listed yet.
    pub hide_accounts: bool,
    /// ListCreateAccountStatus reports every request as IN_PROGRESS (moto has none).
    pub list_in_progress: bool,
    /// GetCallerIdentity answers as the account's root user (moto says `user/moto`).
    pub root_caller: bool,
    /// ListAccountsForProvisionedPermissionSet lags behind a change (eventual consistency): it
    /// lists no account on an older version of the set.
    pub provisioning_listing_lags: bool,
    /// Every Support API call answers this error code (e.g. `OptInRequired` for an account not
    /// activated yet, `AccessDeniedException` for missing permissions).
    pub support_error: Option<String>,
    /// The nth request (1-based) of this operation is throttled, once.
    pub throttle_nth: Option<(String, usize)>,
    /// The nth request (1-based) of this operation is answered with a 500 before it reaches
    /// moto, once: nothing happened, and the client cannot know.
    pub server_error_nth: Option<(String, usize)>,
    /// AWS's limits: a token bucket per API family, a cap on creations in progress, and
    /// creations that settle after a while (see `quota.rs`).
    pub quota: Option<QuotaModel>,
    /// Every request of this operation is throttled (AWS keeps refusing it).
    pub throttle_op: Option<String>,
    /// Every request of this operation is refused with this error code (AWS did nothing).
    pub refuse_op: Option<(String, String)>,
    /// Every request of this operation is answered with this status line, content type and body
    /// (a proxy's HTML 502 page, a JSON error without a code): what the SDK cannot read.
    pub answer_op: Option<(String, &'static str, &'static str, String)>,
    /// Every JSON-protocol request is refused (AccessDeniedException) with a message that quotes
    /// the credentials it carried: the access key id of its `Authorization: ... Credential=`
    /// and its `X-Amz-Security-Token`, as some AWS errors quote what a request carried (S3's
    /// InvalidAccessKeyId names the key).
    pub echo_credentials: bool,
    /// Added before each request is forwarded.
    pub delay: Duration,
    /// The first request of this operation is held this long before it is forwarded: it
    /// reaches AWS after its sender gave up on it.
    pub hold_first: Option<(String, Duration)>,
    pub seed: u64,
}

#[derive(Default)]
struct State {
    rules: Rules,
    rng: u64,
    /// Requests seen per operation (`CreateAccount`, `DescribeCreateAccountStatus`, ...).
    calls: HashMap<String, usize>,
    /// Each request as (access key id, `signing-name:Operation`), as IAM authorises it.
    signed: Vec<(String, String)>,
    /// When each request of an operation arrived.
    arrived: HashMap<String, Vec<Instant>>,
    /// Faults injected per kind.
    injected: HashMap<String, usize>,
    /// Reads of each async request id.
    reads: HashMap<String, u32>,
    permission_sets: HashSet<String>,
    /// Permission sets changed since they were last provisioned.
    changed_sets: HashSet<String>,
    /// Accounts each permission set was assigned in (CreateAccountAssignment requests).
    assigned: HashMap<String, HashSet<String>>,
    alternate: bool,
    /// Requests moto answered.
    forwarded: usize,
    /// SIGKILL this process once moto has answered this many requests, before the answer is
    /// passed on: the call happened and the caller never journaled it.
    kill: Option<(u32, usize)>,
    /// SIGKILL this process when this many mutating requests have arrived, before the last is
    /// forwarded: runbook journaled its intent, the call never happened.
    kill_before: Option<(u32, usize)>,
    /// SIGKILL this process once moto has answered the first request of this operation, before
    /// the answer is passed on.
    kill_after_op: Option<(u32, String)>,
    /// Mutating requests (Create*, Attach*, Update*, ...) that reached the proxy.
    mutating: usize,
    killed: bool,
    slowed: u32,
    /// Requests being served right now.
    in_flight: usize,
    /// Requests answered so far (faults included).
    completed: usize,
    /// `completed` when the first throttle was injected.
    first_throttle_at: Option<usize>,
    /// One per request: (requests in flight on its arrival, itself included; requests answered
    /// since the first throttle, or None before it).
    arrivals: Vec<(usize, Option<usize>)>,
    quota: QuotaState,
    /// The error the quota model answers the current request with.
    quota_refusal: Option<(&'static str, &'static str)>,
}

impl State {
    fn roll(&mut self, pct: u32) -> bool {
        if pct == 0 {
            return false;
        }
        // xorshift64*: deterministic from the seed.
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % 100 < u64::from(pct)
    }
}

#[derive(Clone)]
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, rules: Rules) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            rng: rules.seed ^ 0x9E37_79B9_7F4A_7C15,
            rules,
            ..State::default()
        }));
        let upstream = match upstream.starts_with("http://") {
            true => upstream.to_string(),
            false => format!("http://{upstream}"),
        };
        let st = state.clone();
        // Served for the life of the test process, as a test may hand on only the endpoint.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("proxy listener");
                let proxy = serve::Proxy {
                    state: st,
                    moto: Upstream::at(&upstream),
                };
                wire::serve(listener, Arc::new(proxy)).await;
            });
        });
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    pub fn set_rules(&self, rules: Rules) {
        if let Ok(mut s) = self.state.lock() {
            s.rules = rules;
        }
    }

    /// SIGKILLs `pid` right after moto answers the `nth` forwarded request (1-based), before the
    /// answer reaches the caller.
    pub fn arm_kill(&self, pid: u32, nth: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.kill = Some((pid, s.forwarded + nth));
            s.killed = false;
        }
    }

    /// SIGKILLs `pid` when the `nth` mutating request (1-based, from now) arrives, before it
    /// is forwarded: between the intent's write and the call.
    pub fn arm_kill_before_call(&self, pid: u32, nth: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.kill_before = Some((pid, s.mutating + nth));
            s.killed = false;
        }
    }

    /// SIGKILLs `pid` right after moto answers the first request of `op`, before the answer
    /// reaches the caller: the call happened, the caller cannot know.
    pub fn arm_kill_after(&self, pid: u32, op: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.kill_after_op = Some((pid, op.to_string()));
            s.killed = false;
        }
    }

    pub fn disarm_kill(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.kill_after_op = None;
            s.kill = None;
            s.kill_before = None;
        }
    }

    /// How many answers about an asynchronous request id the proxy passed on.
    pub fn reads_of(&self, id: &str) -> u32 {
        self.state
            .lock()
            .map(|s| s.reads.get(id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Every operation seen so far, with its count.
    pub fn operations(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .state
            .lock()
            .map(|s| s.calls.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Mutating requests that reached the proxy so far.
    pub fn mutating(&self) -> usize {
        self.state.lock().map(|s| s.mutating).unwrap_or(0)
    }

    /// Whether the armed kill happened.
    pub fn killed(&self) -> bool {
        self.state.lock().map(|s| s.killed).unwrap_or(false)
    }

    /// A look at what the quota model counted.
    pub fn quota<T>(&self, f: impl FnOnce(&QuotaState) -> T) -> T {
        let s = self.state.lock().expect("proxy state");
        f(&s.quota)
    }

    /// Requests moto has answered so far.
    pub fn forwarded(&self) -> usize {
        self.state.lock().map(|s| s.forwarded).unwrap_or(0)
    }

    /// The pauses between consecutive requests of `op`.
    pub fn gaps(&self, op: &str) -> Vec<Duration> {
        self.state
            .lock()
            .map(|s| {
                let t = s.arrived.get(op).cloned().unwrap_or_default();
                t.windows(2).map(|w| w[1] - w[0]).collect()
            })
            .unwrap_or_default()
    }

    pub fn calls(&self, op: &str) -> usize {
        self.state
            .lock()
            .map(|s| s.calls.get(op).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Requests of `op` that a fault stopped before they reached moto.
    pub fn injected_on(&self, op: &str) -> usize {
        self.injected(&format!("on:{op}"))
    }

    /// For each request: how many were in flight when it arrived (itself included), and how many
    /// had been answered since the first injected throttle (None before it).
    pub fn arrivals(&self) -> Vec<(usize, Option<usize>)> {
        self.state.lock().map(|s| s.arrivals.clone()).unwrap_or_default()
    }

    /// The requests seen since the last take, as (access key id, `signing-name:Operation`).
    pub fn take_signed(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.signed))
            .unwrap_or_default()
    }

    pub fn injected(&self, kind: &str) -> usize {
        self.state
            .lock()
            .map(|s| s.injected.get(kind).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}
