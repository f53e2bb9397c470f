//! The fault proxy's loop: each request is counted, faulted as the rules say (before it reaches
//! moto, or after moto acted), answered for what moto leaves out, or passed on; and the bench's
//! controls.

use std::io::BufReader;
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::quota::{QuotaState, Verdict, family};
use super::State;
use super::wire::{
    Request, credentials_quoted, forward, header, is_mutating, json_error, operation, provisioning, quota_answer,
    quota_listing, read_request, respond, rewrite, rewrite_request, signed_for, track_assignment,
};

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

pub(super) fn serve(conn: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    while let Some(req) = read_request(&mut reader)? {
        let _flight = Flight::start(state);
        if let Some(body) = control(&req, state) {
            respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                &body,
            )?;
            continue;
        }
        let (op, json) = operation(&req);
        let target = header(&req.head, "x-amz-target").unwrap_or("").to_string();
        let (fault, delay) = {
            let mut s = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            *s.calls.entry(op.clone()).or_default() += 1;
            s.signed.push(signed_for(&req, &op));
            s.arrived.entry(op.clone()).or_default().push(Instant::now());
            if is_mutating(&op) {
                s.mutating += 1;
                if let Some((pid, at)) = s.kill_before {
                    if s.mutating == at {
                        s.kill_before = None;
                        s.killed = true;
                        drop(s);
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                        return Ok(());
                    }
                }
            }
            let delay = match &s.rules.hold_first {
                Some((o, d)) if *o == op && s.calls.get(&op) == Some(&1) => *d,
                _ => s.rules.delay,
            };
            let (throttle, server_error, reset) = (s.rules.throttle_pct, s.rules.server_error_pct, s.rules.reset_pct);
            let mut fault = None;
            if s.rules.subscription_required && target.starts_with("AWSSupport_") {
                fault = Some("subscription");
            } else if s.rules.support_error.is_some() && target.starts_with("AWSSupport_") {
                fault = Some("support-error");
            } else if (json && s.roll(throttle))
                || s.rules
                    .throttle_nth
                    .as_ref()
                    .is_some_and(|(o, n)| *o == op && s.calls.get(&op) == Some(n))
                || s.rules.throttle_op.as_deref() == Some(op.as_str())
            {
                fault = Some("throttle");
            } else if s
                .rules
                .server_error_nth
                .as_ref()
                .is_some_and(|(o, n)| *o == op && s.calls.get(&op) == Some(n))
            {
                fault = Some("500");
            } else if s.rules.refuse_op.as_ref().is_some_and(|(o, _)| *o == op) {
                fault = Some("refuse");
            } else if s.rules.answer_op.as_ref().is_some_and(|(o, ..)| *o == op) {
                fault = Some("answer");
            } else if json && s.rules.echo_credentials {
                fault = Some("echo-credentials");
            } else if json && s.roll(reset) {
                fault = Some("reset");
            } else if json && s.roll(server_error) {
                s.alternate = !s.alternate;
                fault = Some(if s.alternate { "500" } else { "503" });
            } else if let (Some(model), Some(fam)) = (s.rules.quota.clone(), family(&target))
                && let Verdict::Refuse(code, message) = s.quota.admit(&model, fam, &op, std::time::Instant::now())
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
            (fault, delay)
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        // AWS's uniqueness is decided when a request lands (after a hold), not when it leaves.
        let fault = match fault {
            None if op == "CreatePermissionSet" => {
                let mut s = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
                let name = serde_json::from_slice::<Value>(&req.body)
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
        // The code of a refusal: Support's, or the refused operation's.
        let support_error = state
            .lock()
            .map(|s| {
                s.rules
                    .support_error
                    .clone()
                    .or_else(|| s.rules.refuse_op.clone().map(|r| r.1))
            })
            .unwrap_or_default()
            .unwrap_or_default();
        match fault {
            Some("reset") => return Ok(()),
            Some("quota") => {
                let (code, message) = state
                    .lock()
                    .ok()
                    .and_then(|s| s.quota_refusal)
                    .unwrap_or(("ThrottlingException", "Rate exceeded"));
                json_error(&mut conn, "400 Bad Request", code, message)?;
                continue;
            }
            Some("support-error" | "refuse") => {
                json_error(
                    &mut conn,
                    "400 Bad Request",
                    &support_error,
                    "refused by the fault proxy",
                )?;
                continue;
            }
            Some("answer") => {
                let (_, status, content_type, body) = state
                    .lock()
                    .ok()
                    .and_then(|s| s.rules.answer_op.clone())
                    .unwrap_or_default();
                respond(
                    &mut conn,
                    status,
                    &[("Content-Type", content_type.into())],
                    body.as_bytes(),
                )?;
                continue;
            }
            Some("echo-credentials") => {
                json_error(
                    &mut conn,
                    "400 Bad Request",
                    "AccessDeniedException",
                    &credentials_quoted(&req),
                )?;
                continue;
            }
            Some("subscription") => {
                json_error(
                    &mut conn,
                    "400 Bad Request",
                    "SubscriptionRequiredException",
                    "AWS Premium Support Subscription is required to use this service.",
                )?;
                continue;
            }
            Some("throttle") => {
                json_error(&mut conn, "400 Bad Request", "ThrottlingException", "Rate exceeded")?;
                continue;
            }
            Some("500") => {
                json_error(
                    &mut conn,
                    "500 Internal Server Error",
                    "InternalServerException",
                    "injected by the fault proxy",
                )?;
                continue;
            }
            Some("503") => {
                json_error(
                    &mut conn,
                    "503 Service Unavailable",
                    "ServiceUnavailableException",
                    "injected by the fault proxy",
                )?;
                continue;
            }
            Some("conflict") => {
                json_error(
                    &mut conn,
                    "400 Bad Request",
                    "ConflictException",
                    "A permission set with this name already exists",
                )?;
                continue;
            }
            _ => {}
        }
        if let Some(answer) = provisioning(&op, &req, state).or_else(|| quota_answer(&op, &req, state)) {
            let body = rewrite(&op, answer, state);
            respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/x-amz-json-1.1".into())],
                &body,
            )?;
            continue;
        }
        let req = rewrite_request(&op, req, state);
        let (status, headers, body) = forward(upstream, &req)?;
        let (kill, lose, slow) = {
            let mut s = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            s.forwarded += 1;
            let mut kill = match s.kill {
                Some((pid, at)) if s.forwarded == at => {
                    s.kill = None;
                    s.killed = true;
                    Some(pid)
                }
                _ => None,
            };
            if let Some((pid, o)) = s.kill_after_op.clone() {
                if o == op {
                    s.kill_after_op = None;
                    s.killed = true;
                    kill = Some(pid);
                }
            }
            let slow_this = s.rules.slow_op.as_deref().is_none_or(|o| o == op);
            let slow = if json && slow_this && s.slowed < s.rules.slow_answers {
                s.slowed += 1;
                *s.injected.entry("slow".into()).or_default() += 1;
                s.rules.slow_by
            } else {
                Duration::ZERO
            };
            let lose = s.rules.lose_answer_once.as_deref() == Some(op.as_str());
            if lose {
                s.rules.lose_answer_once = None;
                *s.injected.entry("lost-answer".into()).or_default() += 1;
            }
            (kill, lose, slow)
        };
        if !slow.is_zero() {
            std::thread::sleep(slow);
        }
        // Moto made it, whether or not its answer gets through.
        track_assignment(&op, &req, &body, state);
        if let Some(pid) = kill {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            return Ok(());
        }
        if lose {
            let (status, code) = state
                .lock()
                .ok()
                .and_then(|s| s.rules.lost_answer_as)
                .unwrap_or(("500 Internal Server Error", "InternalServerException"));
            if code.is_empty() {
                // Not AWS's answer at all: a proxy's page, after AWS acted.
                respond(
                    &mut conn,
                    status,
                    &[("Content-Type", "text/html".into())],
                    b"<html><body>Access denied by proxy</body></html>",
                )?;
            } else {
                json_error(
                    &mut conn,
                    status,
                    code,
                    "the answer was lost after the request was served",
                )?;
            }
            continue;
        }
        let body = quota_listing(&op, rewrite(&op, body, state), state);
        let headers: Vec<(&str, String)> = headers
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("content-length")
                    && !k.eq_ignore_ascii_case("transfer-encoding")
                    && !k.eq_ignore_ascii_case("connection")
            })
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        respond(&mut conn, &status, &headers, &body)?;
    }
    Ok(())
}

/// The bench's controls: `GET /quota-proxy/stats` (calls per operation, faults, what the quota
/// model counted) and `POST /quota-proxy/reset` (counts back to zero).
fn control(req: &Request, state: &Mutex<State>) -> Option<Vec<u8>> {
    let line = req.head.first()?;
    let mut s = state.lock().ok()?;
    if line.starts_with("POST /quota-proxy/reset") {
        s.calls.clear();
        s.injected.clear();
        s.quota = QuotaState::default();
        return Some(b"{}".to_vec());
    }
    if !line.starts_with("GET /quota-proxy/stats") {
        return None;
    }
    let body = serde_json::json!({
        "calls": s.calls,
        "injected": s.injected,
        "quota": s.quota.json(),
    });
    Some(body.to_string().into_bytes())
}
