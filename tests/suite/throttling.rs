//! Throttling and server errors through our fault proxy: a fan-out under throttles and 5xx
//! completes without duplicates, counts what it saw, and halves what it has in flight.

use std::time::Duration;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::fixtures::{ASSIGNMENT, accounts};
use crate::common::{Moto, Test};

#[test]
fn throttling_and_server_errors_still_complete_without_duplicates() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_pct: 20,
            server_error_pct: 10,
            in_progress_reads: 1,
            seed: 7,
            ..Rules::default()
        },
    );
    let text = crate::common::fixtures::FIVE_ACCOUNTS;
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "12")
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert!(proxy.injected("throttle") > 0, "throttling was injected");
    assert!(proxy.injected("500") + proxy.injected("503") > 0, "5xx was injected");
    assert_eq!(accounts(&moto.endpoint), 5, "exactly one of each");
    assert_eq!(proxy.calls("CreateAccount") - proxy.injected_on("CreateAccount"), 5);
    out.stdout_has("accts summary")
        .stdout_has("    done now               5\n")
        .stdout_has("    failed                 0\n");
}

/// Issue 7: 50 accounts, then an assignment in each, with 20% of all requests throttled.
#[test]
fn fifty_assignments_under_throttling_each_once_and_the_summary_adds_up() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_pct: 20,
            seed: 50,
            ..Rules::default()
        },
    );
    let text = r#"# Fifty

```rhai id=names
let v = [];
for i in 0..50 { v.push(`acme-n${i}-prod`); }
#{ names: v }
```

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each="steps.names.names" timeout=120s
name = "${item}"
email = "aws+${item}@example.com"
```
"#
    .to_string()
        + ASSIGNMENT
            .replace("# Assign\n", "")
            .replace(
                "```aws sso-admin.ensure-assignment id=assign timeout=20s",
                "```aws sso-admin.ensure-assignment id=assign for-each='steps.accts.results.map(|r| r.account_id)' timeout=120s",
            )
            .replace("account_id = \"123456789012\"", "account_id = \"${item}\"")
            .as_str();
    let out = Test::new()
        .file("r.md", &text)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "15")
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_eq!(accounts(&moto.endpoint), 50);

    let upstream = |op: &str| proxy.calls(op) - proxy.injected_on(op);
    assert!(
        proxy.injected_on("CreateAccountAssignment") > 0,
        "assignments were throttled"
    );
    assert_eq!(upstream("CreateAccountAssignment"), 50, "each assignment made once");
    assert_eq!(
        upstream("ListAccountAssignmentsForPrincipal"),
        1,
        "existing read once per fan-out"
    );
    let assigned = crate::common::identity_center(&moto.endpoint).assigned;
    let distinct: std::collections::BTreeSet<&String> = assigned.iter().collect();
    assert_eq!(
        (assigned.len(), distinct.len()),
        (50, 50),
        "all 50 assigned, none twice"
    );

    // The summary table counts right, throttles included: every throttle the proxy injected on
    // the assignment calls was seen by the fan-out.
    let summary = out
        .stdout
        .split("assign summary")
        .nth(1)
        .unwrap_or_else(|| panic!("{out:?}"));
    let row = |name: &str| -> String {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.trim_start()[name.len()..].trim().to_string())
            .unwrap_or_else(|| panic!("no {name} row in {summary}"))
    };
    assert_eq!(row("items"), "50");
    assert_eq!(row("done now"), "50");
    assert_eq!(row("failed"), "0");
    assert_eq!(row("waiting"), "0");
    let throttled: usize = row("throttled responses").parse().expect("a number");
    let injected = proxy.injected_on("CreateAccountAssignment")
        + proxy.injected_on("DescribeAccountAssignmentCreationStatus")
        + proxy.injected_on("ListAccountAssignmentsForPrincipal");
    assert_eq!(throttled, injected, "{summary}");
    assert!(row("concurrency").contains("halved"), "concurrency shrank: {summary}");
}

/// A throttle halves what is in flight, measured where AWS would see it: the proxy counts the
/// requests in flight as each one arrives. Before the throttle the fan-out fills its
/// `max_in_flight`; once the requests that were in flight then have been answered, no more than
/// half of it (and the one it has grown back by) arrive together.
#[test]
fn a_throttle_halves_the_requests_in_flight() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            throttle_nth: Some(("CreateAccountAssignment".into(), 17)),
            delay: Duration::from_millis(40),
            ..Rules::default()
        },
    );
    let ids: Vec<String> = (0..48).map(|i| format!("\"{:012}\"", 200_000_000_000u64 + i)).collect();
    let text = ASSIGNMENT
        .replace(
            "account_id = \"123456789012\"",
            &format!("account_ids = [{}]\nmax_in_flight = 8", ids.join(", ")),
        )
        .replace("timeout=20s", "timeout=120s");
    let out = Test::new()
        .file("r.md", &text)
        .aws(&proxy.endpoint)
        // The request budget (20/s for sso-admin) would set the pace first: this test is about
        // what a throttle does to concurrency, so the budget is lifted.
        .args(["run", "r.md", "--rate", "sso-admin=off"])
        .run();
    out.code_is(0);
    assert_eq!(proxy.injected("throttle"), 1, "one throttle");
    assert_eq!(
        proxy.calls("CreateAccountAssignment") - proxy.injected_on("CreateAccountAssignment"),
        48,
        "each assignment made once"
    );
    let arrivals = proxy.arrivals();
    let before = arrivals
        .iter()
        .filter(|(_, since)| since.is_none())
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    assert_eq!(
        before, 8,
        "the fan-out filled max_in_flight before the throttle: {arrivals:?}"
    );
    // The requests in flight at the throttle (at most 8) have all been answered once 8 have been
    // answered since; the first requests to arrive then come under the halved limit (4, plus the
    // throttled item's own retry). Every later success grows it back by 1/limit (4 to 8 takes 22
    // items, and the last items are too few to fill it, so "grows back" is checked as past 5).
    let first_after = arrivals
        .iter()
        .filter_map(|(_, since)| *since)
        .filter(|s| *s >= 8)
        .min()
        .unwrap_or_else(|| panic!("requests arrived after the throttle: {arrivals:?}"));
    let peak_first_after = arrivals
        .iter()
        .filter(|(_, since)| *since == Some(first_after))
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    assert!(
        peak_first_after <= 5,
        "after the throttle at most half of 8 (+1 retrying) in flight, saw {peak_first_after}: {arrivals:?}"
    );
    let recovered = arrivals
        .iter()
        .filter(|(_, since)| since.is_some_and(|s| s > first_after))
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    assert!(recovered >= 6, "the limit grows back after the throttle: {arrivals:?}");
}
