//! The gate every mutating AWS call passes, built-in actions and calls by name alike, on every
//! path (a retry, a fan-out item, a follow-up, a concurrent run, a resume).
//!
//! - **Claims.** An action claims its target (the call and what it acts on) before the look that
//!   decides whether to send it, and holds the claim until the send is answered: two items, two
//!   runs or two processes of one state directory never look-then-create the same thing at once
//!   (`STATE/claims/<digest>.lock`, an advisory lock the OS gives back when the process dies).
//! - **Landing.** Where AWS makes a second one of what a second request asks for (CreateCase,
//!   calls by name), a claim first waits until any earlier request to the same target whose answer
//!   was lost can no longer land (`PollSettings::landing`), whichever journal sent it; a clock that
//!   went back counts as no time passed. Where AWS refuses duplicates, a lost answer is settled by
//!   looking, at once.
//! - **Marks.** Before a mutating call is sent, `STATE/pending/<digest>` says so (synced), then the
//!   intent is journaled (synced); the answer (or AWS's refusal) is journaled and the mark removed.
//!   A mark left behind is an outcome nobody knows: what the landing wait and the calls-by-name
//!   stop read.
//!
//! The digest names a target without a key and without a secret: the call, the target with every
//! secret masked, the endpoint and the account. Two requests that differ only in a secret share
//! a digest, which errs on the side of waiting; nothing stored lets anyone test a guess.

use std::sync::Arc;
use std::time::Duration;

use runbook_plugins::{Claim, Duplicates, PluginError};
use sha2::{Digest, Sha256};

use super::Shared;

/// The digest of a target, the same from every journal of the state directory.
pub(super) fn digest(shared: &Shared, call: &str, target: &str) -> String {
    let masked = shared.redactor.text(target);
    let endpoint = shared
        .ctx
        .aws_options()
        .endpoint_url
        .as_deref()
        .map(same_endpoint)
        .unwrap_or_default();
    let account = match shared.identity.get() {
        Some(Ok(id)) => id.account_id.clone(),
        _ => String::new(),
    };
    let mut h = Sha256::new();
    for part in ["target-v1", call, &masked, &endpoint, &account] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// One spelling of an endpoint (attacker finding: a copy of a runbook run with
/// `http://127.0.0.1:5752/` or `http://localhost:5752` did not see the lost call the first run
/// left at `http://127.0.0.1:5752`, and sent it again): lower case, no trailing slash, no default
/// port, and every loopback name as one.
fn same_endpoint(url: &str) -> String {
    let url = url.trim().to_ascii_lowercase();
    // A query or a fragment names no other server.
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = match authority.strip_prefix('[') {
        // [v6]:port
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (&authority[..h.len() + 2], rest.strip_prefix(':')),
            None => (authority, None),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    // `05862` is port 5862.
    let port = port
        .map(|p| p.parse::<u16>().map_or_else(|_| p.to_string(), |n| n.to_string()))
        .filter(|p| !matches!((scheme, p.as_str()), ("http", "80") | ("https", "443")));
    let host = if loopback(host) { "loopback" } else { host };
    let mut out = format!("{scheme}://{host}");
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p);
    }
    // `/.`, `//` and a trailing `/` name the same root.
    let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if !path.is_empty() {
        out.push('/');
        out.push_str(&path.join("/"));
    }
    out
}

/// Every way to write this machine: `localhost`, IPv6's `::1` and `::ffff:127.x`, and the IPv4
/// forms a resolver accepts (`127.1`, `0x7f000001`, `2130706433`, octal parts).
fn loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
    }
    let part = |p: &str| -> Option<u32> {
        if let Some(h) = p.strip_prefix("0x") {
            u32::from_str_radix(h, 16).ok()
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(&p[1..], 8).ok()
        } else {
            p.parse().ok()
        }
    };
    let parts: Option<Vec<u32>> = host.split('.').map(part).collect();
    let Some(parts) = parts.filter(|p| (1..=4).contains(&p.len())) else {
        return false;
    };
    // a, a.b (b: 24 bits), a.b.c (c: 16 bits), a.b.c.d
    let (last, head) = parts.split_last().unwrap_or((&0, &[]));
    let mut n: u64 = u64::from(*last);
    for (i, p) in head.iter().enumerate() {
        n |= u64::from(*p) << (24 - 8 * i);
    }
    n >> 24 == 127 && n <= u64::from(u32::MAX)
}

/// How long until none of the requests sent at `sent` (their times) can still land, `landing`
/// after each: a clock that went back (a time in the future) counts as no time passed, and a time
/// that cannot be read as the whole wait.
fn left_to_land(sent: &[String], now: jiff::Timestamp, landing: Duration) -> Duration {
    let mut left = Duration::ZERO;
    for at in sent {
        let wait = match at.parse::<jiff::Timestamp>() {
            Ok(t) => match Duration::try_from(now.duration_since(t)) {
                Ok(since) => landing.saturating_sub(since),
                Err(_) => landing,
            },
            Err(_) => landing,
        };
        left = left.max(wait);
    }
    left
}

/// How often a claim held elsewhere is tried again.
const RETRY: Duration = Duration::from_millis(50);

/// Claims a target for one step (or item); see the module's notes.
pub(super) async fn claim(
    shared: &Arc<Shared>,
    step: &str,
    call: &str,
    target: &str,
    duplicates: Duplicates,
) -> Result<Claim, PluginError> {
    let digest = digest(shared, call, target);
    let file = shared
        .pending
        .0
        .claim_file(&digest)
        .map_err(|e| PluginError::Journal(format!("nothing was sent: {e}")))?;
    let mut said = false;
    let started = std::time::Instant::now();
    loop {
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(PluginError::Journal(format!("nothing was sent: claiming {call}: {e}"))),
        }
        if !said && started.elapsed() > Duration::from_secs(1) {
            said = true;
            shared.ui.status(&format!(
                "{step}  waiting: another item or run is acting on {call} {}",
                shared.redactor.text(target)
            ));
        }
        tokio::time::sleep(RETRY).await;
    }
    if duplicates == Duplicates::Made {
        let_land(shared, step, call, target, &digest).await?;
    }
    Ok(Claim::holding(Box::new(file)))
}

/// Waits until a request to this target whose answer was lost can no longer land.
async fn let_land(shared: &Shared, step: &str, call: &str, target: &str, digest: &str) -> Result<(), PluginError> {
    let mut sent: Vec<String> = shared.pending.0.get(digest).map(|m| m.at).into_iter().collect();
    // This journal's own unanswered sends (marks came later than some journals).
    if let Ok(j) = shared.journal.lock() {
        sent.extend(
            j.unsettled_anywhere()
                .unwrap_or_default()
                .into_iter()
                .filter(|u| !u.answered && u.call == call && u.target == target)
                .map(|u| u.at),
        );
    }
    let left = left_to_land(&sent, jiff::Timestamp::now(), shared.ctx.poll_settings().landing);
    if left.is_zero() {
        return Ok(());
    }
    shared.ui.note(&format!(
        "{step}: an earlier {call} {} has no answer and may still reach AWS; waiting {}s before looking, so that it is not made twice",
        shared.redactor.text(target),
        left.as_secs().max(1)
    ));
    // An interruption drops the step's future, and this wait with it.
    tokio::time::sleep(left).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{left_to_land, loopback, same_endpoint};
    use crate::exec::testing::Builder;

    #[test]
    fn a_lost_request_is_let_land_from_its_latest_send() {
        let now: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        let landing = Duration::from_secs(120);
        let at = |s: &str| s.to_string();
        assert_eq!(left_to_land(&[], now, landing), Duration::ZERO);
        assert_eq!(
            left_to_land(&[at("2026-01-01T00:00:00Z")], now, landing),
            Duration::from_secs(60)
        );
        // The latest send decides.
        assert_eq!(
            left_to_land(&[at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:30Z")], now, landing),
            Duration::from_secs(90)
        );
        // Long enough ago: nothing to wait for.
        assert_eq!(
            left_to_land(&[at("2025-12-31T23:00:00Z")], now, landing),
            Duration::ZERO
        );
        assert_eq!(
            left_to_land(&[at("2025-12-31T23:59:00Z")], now, landing),
            Duration::ZERO
        );
        // A clock that went back, or a time that cannot be read: the whole wait.
        assert_eq!(left_to_land(&[at("2026-01-01T00:02:00Z")], now, landing), landing);
        assert_eq!(left_to_land(&[at("garbage")], now, landing), landing);
    }

    #[test]
    fn loopback_is_this_machine_and_nothing_else() {
        for yes in [
            "localhost",
            "127.0.0.1",
            "127.255.255.254",
            "127.1",
            "0x7f000001",
            "[::1]",
        ] {
            assert!(loopback(yes), "{yes}");
        }
        for no in [
            "128.0.0.1",
            "10.0.0.1",
            "126.255.255.255",
            "example.com",
            "[::2]",
            "[::ffff:10.0.0.1]",
            "127.0.0.1.5",
            "4294967296",
            "",
        ] {
            assert!(!loopback(no), "{no}");
        }
    }

    /// One target named the same from any journal; another call, target or account is another.
    #[test]
    fn the_digest_names_call_target_and_account() {
        let text = "# T\n\n```rhai id=a\n1\n```\n";
        let f = Builder::new(text).build();
        let g = Builder::new(text).build();
        let h = Builder::new(text).account(Some("222222222222")).build();
        let d = |f: &crate::exec::testing::Fixture, call: &str, target: &str| super::digest(&f.shared, call, target);
        assert_eq!(d(&f, "iam:CreateUser", "u"), d(&g, "iam:CreateUser", "u"));
        assert_ne!(d(&f, "iam:CreateUser", "u"), d(&f, "iam:CreateUser", "v"));
        assert_ne!(d(&f, "iam:CreateUser", "u"), d(&f, "iam:CreateGroup", "u"));
        assert_ne!(d(&f, "iam:CreateUser", "u"), d(&h, "iam:CreateUser", "u"));
        // Two requests that differ only in a secret share a digest: nothing stored tests a guess.
        f.shared.redactor.add("hunter2");
        f.shared.redactor.add("swordfish");
        assert_eq!(d(&f, "iam:CreateUser", "hunter2"), d(&f, "iam:CreateUser", "swordfish"));
        assert_eq!(d(&f, "iam:CreateUser", "u").len(), 32);
    }

    #[test]
    fn one_endpoint_spelled_many_ways_is_one() {
        let one = same_endpoint("http://127.0.0.1:5752");
        for other in [
            "http://127.0.0.1:5752/",
            "http://localhost:5752",
            "HTTP://LOCALHOST:5752/",
            "http://[::1]:5752",
            "http://127.1:5752",
            "http://0x7f000001:5752",
            "http://2130706433:5752",
            "http://0177.0.0.1:5752",
            "http://[::ffff:127.0.0.1]:5752",
            "http://127.0.0.1:05752",
            "http://127.0.0.1:5752/?",
            "http://127.0.0.1:5752/#x",
            "http://127.0.0.1:5752/.",
        ] {
            assert_eq!(same_endpoint(other), one, "{other}");
        }
        assert_eq!(
            same_endpoint("https://sso.us-east-1.amazonaws.com:443/"),
            "https://sso.us-east-1.amazonaws.com"
        );
        assert_ne!(same_endpoint("http://127.0.0.1:5753"), one);
        assert_ne!(same_endpoint("http://10.0.0.1:5752"), one);
    }
}
