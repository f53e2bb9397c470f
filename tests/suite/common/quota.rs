//! The quota model: AWS's published limits played in front of moto, which has none. One
//! implementation, used by the Rust tests (a rule of the fault proxy) and by the fan-out bench
//! (`examples/quota_proxy.rs` runs the fault proxy with it).
//!
//! - A token bucket per API family (sso-admin, organizations, identitystore, support): a request
//!   that finds it empty is answered as AWS answers a throttle (HTTP 400, JSON `__type`), and never
//!   reaches moto. The bucket holds one second's worth of tokens.
//! - A cap on asynchronous creations in progress (CreateAccountAssignment, CreateAccount): one
//!   more is refused (sso-admin: `ConflictException`, as AWS answers "too many operations";
//!   organizations: `TooManyRequestsException`) and never reaches moto.
//! - Settle times: a creation reads IN_PROGRESS (its Create answer and every Describe) until
//!   `settle` has passed since the proxy saw moto create it; moto's instant SUCCEEDED is rewritten.
//!   An assignment creation in an account of `fail` then reads FAILED with its reason.
//! - Listings that tell the truth about assignment creations (moto has none of this):
//!   ListAccountAssignmentCreationStatus is answered from the creations seen (filtered by status,
//!   in pages), and ListAccountAssignments(ForPrincipal) leave out an assignment whose creation is
//!   still in progress or failed, as AWS lists an assignment only once it is made.
//!
//! The limits themselves (20 requests/s and 15 in progress for Identity Center, ...) are in
//! `runbook_plugins::aws::QUOTAS`; [`QuotaModel::aws`] reads the same numbers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct QuotaModel {
    /// Requests per second per API family.
    pub rates: Vec<(String, f64)>,
    /// At most this many creations in progress, per creating operation.
    pub in_progress: Vec<(String, usize)>,
    /// How long a creation stays IN_PROGRESS.
    pub settle: Duration,
    /// Assignment creations in these accounts end FAILED with this reason.
    pub fail: Vec<(String, String)>,
    /// ListAccountAssignmentCreationStatus answers at most this many per page (AWS may answer
    /// fewer than MaxResults, with a NextToken).
    pub listing_page: usize,
}

impl QuotaModel {
    /// AWS's published limits, as the plugins declare them, with creations settling in `settle`.
    pub fn aws(settle: Duration) -> QuotaModel {
        let mut m = QuotaModel {
            rates: Vec::new(),
            in_progress: Vec::new(),
            settle,
            fail: Vec::new(),
            listing_page: 100,
        };
        for q in runbook_plugins::aws::QUOTAS {
            if let Some(r) = q.rate {
                m.rates.push((q.family.to_string(), r));
            }
            for (op, cap) in q.in_progress {
                m.in_progress.push((op.to_string(), *cap));
            }
        }
        m
    }

    fn rate(&self, family: &str) -> Option<f64> {
        self.rates.iter().find(|(f, _)| f == family).map(|(_, r)| *r)
    }

    fn cap(&self, op: &str) -> Option<usize> {
        self.in_progress.iter().find(|(o, _)| o == op).map(|(_, c)| *c)
    }
}

/// The API family of a JSON-protocol request, from its `X-Amz-Target`.
pub fn family(target: &str) -> Option<&'static str> {
    let prefix = target.split('.').next().unwrap_or("");
    Some(match prefix {
        "SWBExternalService" => "sso-admin",
        "AWSOrganizationsV20161128" => "organizations",
        "AWSIdentityStore" => "identitystore",
        "AWSSupport_20130415" => "support",
        _ => return None,
    })
}

/// What the quota model decided about one request.
pub enum Verdict {
    Pass,
    /// Answer this error code and message (HTTP 400).
    Refuse(&'static str, &'static str),
}

/// One CreateAccountAssignment moto answered.
#[derive(Debug, Clone)]
struct Creation {
    id: String,
    account: String,
    permission_set: String,
    principal: String,
    at: Instant,
    /// Seconds since the epoch, as AWS's `CreatedDate`.
    created_date: f64,
}

#[derive(Default, Debug)]
pub struct QuotaState {
    /// Assignment creations, in the order moto answered them.
    assignments: Vec<Creation>,
    /// (tokens, last refill) per family.
    buckets: HashMap<String, (f64, Instant)>,
    /// When moto created each asynchronous request, by request id.
    created: HashMap<String, Instant>,
    /// Creation times still in progress, per creating operation.
    pending: HashMap<String, Vec<Instant>>,
    /// Throttles answered, per family.
    pub throttled: HashMap<String, usize>,
    /// Creations refused over the in-progress cap, per operation.
    pub refused: HashMap<String, usize>,
    /// The most creations in progress at once, per operation.
    pub max_in_progress: HashMap<String, usize>,
    /// When each admitted request arrived, per family (for rates observed per window).
    pub admitted: HashMap<String, Vec<Instant>>,
}

impl QuotaState {
    /// The token bucket and the in-progress cap, for one request of `op` in `family`.
    pub fn admit(&mut self, model: &QuotaModel, family: &str, op: &str, now: Instant) -> Verdict {
        if let Some(rate) = model.rate(family) {
            let burst = rate.max(1.0);
            let (tokens, last) = self.buckets.entry(family.to_string()).or_insert((burst, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
            *last = now;
            if *tokens < 1.0 {
                *self.throttled.entry(family.to_string()).or_default() += 1;
                return Verdict::Refuse(
                    if family == "organizations" {
                        "TooManyRequestsException"
                    } else {
                        "ThrottlingException"
                    },
                    "Rate exceeded (quota model)",
                );
            }
            *tokens -= 1.0;
        }
        self.admitted.entry(family.to_string()).or_default().push(now);
        if let Some(cap) = model.cap(op) {
            let settle = model.settle;
            let pending = self.pending.entry(op.to_string()).or_default();
            pending.retain(|t| now.duration_since(*t) < settle);
            if pending.len() >= cap {
                *self.refused.entry(op.to_string()).or_default() += 1;
                return Verdict::Refuse(
                    if family == "organizations" {
                        "TooManyRequestsException"
                    } else {
                        "ConflictException"
                    },
                    "Too many operations in progress (quota model)",
                );
            }
            // In progress from its admission: creations sent together count together.
            pending.push(now);
            let n = pending.len();
            let most = self.max_in_progress.entry(op.to_string()).or_default();
            *most = (*most).max(n);
        }
        Verdict::Pass
    }

    /// moto answered a creation with this request id: it settles `settle` from now.
    pub fn created(&mut self, id: &str, now: Instant) {
        self.created.insert(id.to_string(), now);
    }

    /// Whether the creation with this request id has settled (None: not one the model saw).
    pub fn settled(&self, model: &QuotaModel, id: &str, now: Instant) -> Option<bool> {
        self.created.get(id).map(|t| now.duration_since(*t) >= model.settle)
    }

    /// moto made this assignment (CreateAccountAssignment answered with request id `id`).
    pub fn assignment_created(&mut self, id: &str, account: &str, permission_set: &str, principal: &str, now: Instant) {
        let created_date = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.assignments.push(Creation {
            id: id.to_string(),
            account: account.to_string(),
            permission_set: permission_set.to_string(),
            principal: principal.to_string(),
            at: now,
            created_date,
        });
    }

    fn status_of(&self, model: &QuotaModel, c: &Creation, now: Instant) -> (&'static str, Option<String>) {
        if now.duration_since(c.at) < model.settle {
            return ("IN_PROGRESS", None);
        }
        match model.fail.iter().find(|(a, _)| *a == c.account) {
            Some((_, reason)) => ("FAILED", Some(reason.clone())),
            None => ("SUCCEEDED", None),
        }
    }

    /// An assignment creation's status and failure reason (None: not one the model saw).
    pub fn assignment_status(
        &self,
        model: &QuotaModel,
        id: &str,
        now: Instant,
    ) -> Option<(&'static str, Option<String>)> {
        let c = self.assignments.iter().find(|c| c.id == id)?;
        Some(self.status_of(model, c, now))
    }

    /// ListAccountAssignmentCreationStatus: (request id, status, created date) of every creation
    /// seen, those with `status` only when given.
    pub fn assignment_creations(
        &self,
        model: &QuotaModel,
        status: Option<&str>,
        now: Instant,
    ) -> Vec<(String, &'static str, f64)> {
        self.assignments
            .iter()
            .map(|c| (c.id.clone(), self.status_of(model, c, now).0, c.created_date))
            .filter(|(_, st, _)| status.is_none_or(|s| s == *st))
            .collect()
    }

    /// Whether a listing of assignments leaves this one out: it was made here, and no creation
    /// of it has succeeded (yet).
    pub fn assignment_hidden(
        &self,
        model: &QuotaModel,
        account: &str,
        permission_set: &str,
        principal: &str,
        now: Instant,
    ) -> bool {
        let mut made = self
            .assignments
            .iter()
            .filter(|c| c.account == account && c.permission_set == permission_set && c.principal == principal)
            .peekable();
        made.peek().is_some() && !made.any(|c| self.status_of(model, c, now).0 == "SUCCEEDED")
    }

    /// The most requests of `family` admitted within any `window`.
    pub fn max_per_window(&self, family: &str, window: Duration) -> usize {
        let Some(times) = self.admitted.get(family) else {
            return 0;
        };
        let mut best = 0;
        let mut start = 0;
        for (end, t) in times.iter().enumerate() {
            while t.duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end + 1 - start);
        }
        best
    }

    pub fn json(&self) -> Value {
        json!({
            "throttled": self.throttled,
            "refused": self.refused,
            "max_in_progress": self.max_in_progress,
            "admitted": self.admitted.iter().map(|(k, v)| (k.clone(), v.len())).collect::<HashMap<_, _>>(),
            "max_per_second": self.admitted.keys()
                .map(|k| (k.clone(), self.max_per_window(k, Duration::from_secs(1))))
                .collect::<HashMap<_, _>>(),
        })
    }
}
