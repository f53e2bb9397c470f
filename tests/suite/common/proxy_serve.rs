//! What the fault proxy does with each request: it is counted, faulted as the rules say (before it
//! reaches moto, or after moto acted), answered for what moto leaves out, or passed on; and the
//! bench's controls. The wire (`runbook::emulator::wire`) reads the request and writes the reply.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runbook::emulator::wire::{Answer, Call, Handler, Reply, Upstream};
use serde_json::Value;

use super::super::quota::{QuotaState, Verdict, family};
use super::State;
use super::rules::{
    credentials_quoted, is_mutating, provisioning, quota_answer, quota_listing, rewrite, rewrite_request, signed_for,
    track_assignment,
};

/// The proxy's handler: its state (shared with the test's [`super::FaultProxy`]) and moto.
pub(super) struct Proxy {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) moto: Upstream,
}

/// Counts one request in flight while it is served, whichever way it ends.
struct Flight<'a>(&'a Mutex<State>);

impl<'a> Flight<'a> {
    fn start(state: &'a Mutex<State>) -> Flight<'a> {
        if let Ok(mut s) = state.lock() {
            s.in_flight += 1;
            let since = s.first_throttle_at.map(|at| s.completed - at);
            let now = s.in_flight;
            s.arrivals.push((now, since));
        }
        Flight(state)
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.in_flight -= 1;
            s.completed += 1;
        }
    }
}

/// SIGKILLs the process under test: the kill points.
async fn kill(pid: u32) {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await;
}

/// An error as AWS's JSON protocols send it, from the proxy.
fn fault(status: u16, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    Answer::new(status, "application/x-amz-json-1.1", body)
        .header("x-amzn-errortype", code)
        .header("x-amzn-requestid", "fault-proxy")
        .into()
}

/// The status of a status line (`502 Bad Gateway`).
fn status_of(line: &str) -> u16 {
    line.split(' ').next().and_then(|s| s.parse().ok()).unwrap_or(502)
}

impl Handler for Proxy {
    async fn handle(&self, call: Call) -> Reply {
        let state = self.state.as_ref();
        let _flight = Flight::start(state);
        if let Some(body) = control(&call, state) {
            return Answer::new(200, "application/json", body).into();
        }
        let op = match call.op.as_str() {
            "" => "unknown".to_string(),
            op => op.to_string(),
        };
        let json = call.is_json();
        let target = call.header("x-amz-target").to_string();
        let (fault_kind, delay) = match before(state, &call, &op, &target, json) {
            Ok(decided) => decided,
            Err(Some(pid)) => {
                kill(pid).await;
                return Reply::Close;
            }
            Err(None) => return Reply::Close,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // AWS's uniqueness is decided when a request lands (after a hold), not when it leaves.
        let fault_kind = match fault_kind {
            None if op == "CreatePermissionSet" => {
                let Ok(mut s) = state.lock() else { return Reply::Close };
                let name = serde_json::from_slice::<Value>(&call.body)
                    .ok()
                    .and_then(|v| v["Name"].as_str().map(String::from));
                match name {
                    Some(n) if s.rules.conflict_on_duplicate_permission_set && !s.permission_sets.insert(n.clone()) => {
                        *s.injected.entry("conflict".into()).or_default() += 1;
                        Some("conflict")
                    }
                    _ => None,
                }
            }
            other => other,
        };
        if let Some(kind) = fault_kind {
            return injected(kind, &call, state);
        }
        if let Some(answer) = provisioning(&op, &call, state).or_else(|| quota_answer(&op, &call, state)) {
            return rewrite(&op, answer, state).into();
        }
        let call = rewrite_request(&op, call, state);
        let Ok(answer) = self.moto.forward(&call).await else {
            return Reply::Close;
        };
        after(state, &call, &op, json, answer).await
    }
}

/// Counts the request, and decides the fault it meets before moto, with the delay before it goes
/// on; or the process to kill (the kill point before the call), and the connection closes.
fn before(
    state: &Mutex<State>,
    call: &Call,
    op: &str,
    target: &str,
    json: bool,
) -> Result<(Option<&'static str>, Duration), Option<u32>> {
    let mut s = state.lock().map_err(|_| None)?;
    *s.calls.entry(op.to_string()).or_default() += 1;
    let signed = signed_for(call, op);
    s.signed.push(signed);
    s.arrived.entry(op.to_string()).or_default().push(Instant::now());
    if is_mutating(op) {
        s.mutating += 1;
        if let Some((pid, at)) = s.kill_before
            && s.mutating == at
        {
            s.kill_before = None;
            s.killed = true;
            return Err(Some(pid));
        }
    }
    let delay = match &s.rules.hold_first {
        Some((o, d)) if o == op && s.calls.get(op) == Some(&1) => *d,
        _ => s.rules.delay,
    };
    let (throttle, server_error, reset) = (s.rules.throttle_pct, s.rules.server_error_pct, s.rules.reset_pct);
    let nth = |rule: &Option<(String, usize)>, s: &State| {
        rule.as_ref()
            .is_some_and(|(o, n)| o == op && s.calls.get(op) == Some(n))
    };
    let mut fault = None;
    if s.rules.subscription_required && target.starts_with("AWSSupport_") {
        fault = Some("subscription");
    } else if s.rules.support_error.is_some() && target.starts_with("AWSSupport_") {
        fault = Some("support-error");
    } else if (json && s.roll(throttle)) || nth(&s.rules.throttle_nth, &s) || s.rules.throttle_op.as_deref() == Some(op)
    {
        fault = Some("throttle");
    } else if nth(&s.rules.server_error_nth, &s) {
        fault = Some("500");
    } else if s.rules.refuse_op.as_ref().is_some_and(|(o, _)| o == op) {
        fault = Some("refuse");
    } else if s.rules.answer_op.as_ref().is_some_and(|(o, ..)| o == op) {
        fault = Some("answer");
    } else if json && s.rules.echo_credentials {
        fault = Some("echo-credentials");
    } else if json && s.roll(reset) {
        fault = Some("reset");
    } else if json && s.roll(server_error) {
        s.alternate = !s.alternate;
        fault = Some(if s.alternate { "500" } else { "503" });
    } else if let (Some(model), Some(fam)) = (s.rules.quota.clone(), family(target))
        && let Verdict::Refuse(code, message) = s.quota.admit(&model, fam, op, Instant::now())
    {
        s.quota_refusal = Some((code, message));
        fault = Some("quota");
    }
    if fault == Some("throttle") && s.first_throttle_at.is_none() {
        s.first_throttle_at = Some(s.completed);
    }
    if let Some(f) = fault {
        *s.injected.entry(f.to_string()).or_default() += 1;
        *s.injected.entry(format!("on:{op}")).or_default() += 1;
    }
    Ok((fault, delay))
}

/// The answer of a fault injected before moto: the request never happened upstream.
fn injected(kind: &str, call: &Call, state: &Mutex<State>) -> Reply {
    let Ok(s) = state.lock() else { return Reply::Close };
    match kind {
        "reset" => Reply::Close,
        "quota" => {
            let (code, message) = s.quota_refusal.unwrap_or(("ThrottlingException", "Rate exceeded"));
            fault(400, code, message)
        }
        "support-error" | "refuse" => {
            // The code of a refusal: Support's, or the refused operation's.
            let code = s
                .rules
                .support_error
                .clone()
                .or_else(|| s.rules.refuse_op.clone().map(|r| r.1))
                .unwrap_or_default();
            fault(400, &code, "refused by the fault proxy")
        }
        "answer" => {
            let (_, status, content_type, body) = s.rules.answer_op.clone().unwrap_or_default();
            Answer::new(status_of(status), content_type, body).into()
        }
        "echo-credentials" => fault(400, "AccessDeniedException", &credentials_quoted(call)),
        "subscription" => fault(
            400,
            "SubscriptionRequiredException",
            "AWS Premium Support Subscription is required to use this service.",
        ),
        "throttle" => fault(400, "ThrottlingException", "Rate exceeded"),
        "500" => fault(500, "InternalServerException", "injected by the fault proxy"),
        "503" => fault(503, "ServiceUnavailableException", "injected by the fault proxy"),
        _ => fault(
            400,
            "ConflictException",
            "A permission set with this name already exists",
        ),
    }
}

/// After moto acted: the kill points after the call, answers held back or lost, and moto's
/// answer as the rules rewrite it.
async fn after(state: &Mutex<State>, call: &Call, op: &str, json: bool, answer: Answer) -> Reply {
    let (kill_pid, lose, slow) = {
        let Ok(mut s) = state.lock() else { return Reply::Close };
        s.forwarded += 1;
        let mut kill_pid = match s.kill {
            Some((pid, at)) if s.forwarded == at => {
                s.kill = None;
                s.killed = true;
                Some(pid)
            }
            _ => None,
        };
        if let Some((pid, o)) = s.kill_after_op.clone()
            && o == op
        {
            s.kill_after_op = None;
            s.killed = true;
            kill_pid = Some(pid);
        }
        let slow_this = s.rules.slow_op.as_deref().is_none_or(|o| o == op);
        let slow = if json && slow_this && s.slowed < s.rules.slow_answers {
            s.slowed += 1;
            *s.injected.entry("slow".into()).or_default() += 1;
            s.rules.slow_by
        } else {
            Duration::ZERO
        };
        let lose = s.rules.lose_answer_once.as_deref() == Some(op);
        if lose {
            s.rules.lose_answer_once = None;
            *s.injected.entry("lost-answer".into()).or_default() += 1;
        }
        (kill_pid, lose, slow)
    };
    // Moto made it, whether or not its answer gets through (recorded before a hold, which the
    // caller may end by going away).
    track_assignment(op, call, &answer.body, state);
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    if let Some(pid) = kill_pid {
        kill(pid).await;
        return Reply::Close;
    }
    if lose {
        let (status, code) = state
            .lock()
            .ok()
            .and_then(|s| s.rules.lost_answer_as)
            .unwrap_or(("500 Internal Server Error", "InternalServerException"));
        if code.is_empty() {
            // Not AWS's answer at all: a proxy's page, after AWS acted.
            return Answer::new(
                status_of(status),
                "text/html",
                "<html><body>Access denied by proxy</body></html>",
            )
            .into();
        }
        return fault(
            status_of(status),
            code,
            "the answer was lost after the request was served",
        );
    }
    quota_listing(op, rewrite(op, answer, state), state).into()
}

/// The bench's controls: `GET /quota-proxy/stats` (calls per operation, faults, what the quota
/// model counted) and `POST /quota-proxy/reset` (counts back to zero).
fn control(call: &Call, state: &Mutex<State>) -> Option<Vec<u8>> {
    let path = call.uri.path();
    let mut s = state.lock().ok()?;
    if call.method == "POST" && path == "/quota-proxy/reset" {
        s.calls.clear();
        s.injected.clear();
        s.quota = QuotaState::default();
        return Some(b"{}".to_vec());
    }
    if call.method != "GET" || path != "/quota-proxy/stats" {
        return None;
    }
    let body = serde_json::json!({
        "calls": s.calls,
        "injected": s.injected,
        "quota": s.quota.json(),
    });
    Some(body.to_string().into_bytes())
}
