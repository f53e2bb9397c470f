//! Waiting for many assignment creations at once: one listing of the instance's creations in
//! progress (ListAccountAssignmentCreationStatus, filter IN_PROGRESS) per round serves every
//! assignment of a fan-out that waits, where a status read per assignment costs one call each.
//! A creation the listing no longer shows has settled, SUCCEEDED or FAILED: the caller learns
//! which from the principal's assignments or from its own status read (with AWS's reason).
//!
//! Rounds are spaced so that listing takes a fifth of the family's request budget at most, and
//! at least a fifth of the learned settle time apart. A listing AWS refuses (an older endpoint,
//! missing permission, an emulator without it) turns the lister off for the run: every waiter
//! goes back to its own status reads. A throttled listing is a round without news.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ssoadmin::types::{OperationStatusFilter, StatusValues};

use crate::context::{Context, Event};
use crate::error::{PluginError, aws};

/// The kind the run learns settle times for (shared with the per-item reads).
pub(crate) const KIND: &str = "sso-admin:CreateAccountAssignment";

/// Pages a listing follows at most (AWS keeps at most 15 creations in progress per instance:
/// one page; more pages mean the listing is not what it should be).
const MAX_PAGES: usize = 50;

/// One listing's answer.
#[derive(Debug, Clone)]
struct Round {
    started: Instant,
    answered: Instant,
    /// None: the listing was throttled. Every waiter it would have served hears "no news" from
    /// it, rather than each sending a listing of its own into the throttle.
    ids: Option<Arc<HashSet<String>>>,
}

/// The shared lister of one instance's creations in progress.
#[derive(Debug)]
pub struct InProgress {
    instance_arn: String,
    /// Held by the waiter that lists (others queue, then read its answer).
    gate: tokio::sync::Mutex<()>,
    last: Mutex<Option<Round>>,
    refused: AtomicBool,
}

/// What a round says about one creation.
enum Look {
    /// Listed as in progress by a listing answered at this time.
    Pending { started: Instant, answered: Instant },
    /// Not listed: it has settled.
    Settled,
    /// The listing was throttled: no news this round.
    NoNews,
    /// The listing is refused: read the status yourself.
    Unavailable,
}

impl InProgress {
    pub fn new(instance_arn: &str) -> InProgress {
        InProgress {
            instance_arn: instance_arn.to_string(),
            gate: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            refused: AtomicBool::new(false),
        }
    }

    fn latest(&self) -> Option<Round> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn answer(round: &Round, id: &str) -> Look {
        let Some(ids) = &round.ids else {
            return Look::NoNews;
        };
        if ids.contains(id) {
            Look::Pending {
                started: round.started,
                answered: round.answered,
            }
        } else {
            Look::Settled
        }
    }

    /// What the first listing started at or after `after` says about `id`; a listing is started
    /// when none has been since `after`, no sooner than `spacing` after the one before.
    async fn look(&self, client: &aws_sdk_ssoadmin::Client, id: &str, after: Instant, spacing: Duration) -> Look {
        if self.refused.load(Ordering::Relaxed) {
            return Look::Unavailable;
        }
        if let Some(r) = self.latest().filter(|r| r.started >= after) {
            return Self::answer(&r, id);
        }
        let _lead = self.gate.lock().await;
        if self.refused.load(Ordering::Relaxed) {
            return Look::Unavailable;
        }
        let previous = self.latest();
        if let Some(r) = previous.as_ref().filter(|r| r.started >= after) {
            return Self::answer(r, id);
        }
        let start = previous.map_or(after, |r| after.max(r.started + spacing));
        tokio::time::sleep_until(start.into()).await;
        let started = Instant::now();
        let ids = match list(client, &self.instance_arn).await {
            Ok(ids) => Some(Arc::new(ids)),
            Err(e) if e.is_throttling() => None,
            Err(_) => {
                self.refused.store(true, Ordering::Relaxed);
                return Look::Unavailable;
            }
        };
        let round = Round {
            started,
            answered: Instant::now(),
            ids,
        };
        let look = Self::answer(&round, id);
        if let Ok(mut l) = self.last.lock() {
            *l = Some(round);
        }
        look
    }
}

/// The request ids of every creation in progress on the instance. Sent once, without the SDK's
/// retries: a throttle is a round without news, anything else turns the lister off.
async fn list(client: &aws_sdk_ssoadmin::Client, instance_arn: &str) -> Result<HashSet<String>, PluginError> {
    let mut ids = HashSet::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .list_account_assignment_creation_status()
            .instance_arn(instance_arn)
            .filter(
                OperationStatusFilter::builder()
                    .status(StatusValues::InProgress)
                    .build(),
            )
            .max_results(100)
            .set_next_token(token.clone())
            .customize()
            .config_override(
                aws_sdk_ssoadmin::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| aws("sso-admin:ListAccountAssignmentCreationStatus", e))?;
        ids.extend(
            out.account_assignments_creation_status()
                .iter()
                .filter_map(|m| m.request_id().map(String::from)),
        );
        match out.next_token() {
            Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_string()),
            _ => return Ok(ids),
        }
    }
    Err(PluginError::Other(format!(
        "ListAccountAssignmentCreationStatus: more than {MAX_PAGES} pages of creations in progress"
    )))
}

/// Waits, through the shared listing, until the creation `request_id` (made at `since`) is no
/// longer in progress: Ok(true). Ok(false): the listing is refused; read its status yourself.
pub(crate) async fn until_not_listed(
    ctx: &Context,
    lister: &InProgress,
    client: &aws_sdk_ssoadmin::Client,
    request_id: &str,
    account: &str,
    since: Instant,
) -> Result<bool, PluginError> {
    let settings = ctx.poll_settings();
    let budget = ctx.budget();
    let deadline = ctx.deadline.unwrap_or(since + settings.default_deadline);
    let rate = budget.limits().rate("sso-admin");
    let mut after = since + budget.expected_settle(KIND).unwrap_or(settings.initial);
    loop {
        let learned = budget.expected_settle(KIND).unwrap_or(settings.initial);
        let spacing = (learned / 5)
            .max(rate.map_or(Duration::ZERO, |r| Duration::from_secs_f64(5.0 / r)))
            .max(Duration::from_millis(50));
        let now = Instant::now();
        if after > now {
            tokio::time::sleep_until(after.min(deadline).into()).await;
        }
        let status = match lister.look(client, request_id, after, spacing).await {
            Look::Settled => return Ok(true),
            Look::Unavailable => return Ok(false),
            Look::Pending { started, answered } => {
                budget.still_pending(KIND, answered.saturating_duration_since(since));
                let learned = budget.expected_settle(KIND).unwrap_or_default();
                // The next round, or later if this kind is not expected to settle before.
                after = (started + Duration::from_nanos(1)).max(since + learned);
                "IN_PROGRESS".to_string()
            }
            Look::NoNews => {
                after = Instant::now() + spacing;
                "retrying after a throttled listing".to_string()
            }
        };
        ctx.emit(Event::Polling {
            what: format!("assignment in account {account}"),
            status: status.clone(),
            request_id: Some(request_id.to_string()),
        })?;
        if Instant::now() >= deadline {
            return Err(PluginError::Timeout {
                what: format!("assignment in account {account}"),
                status,
                waited_secs: since.elapsed().as_secs(),
                request_id: Some(request_id.to_string()),
            });
        }
    }
}
