//! Fan-out at AWS's own limits, through the quota model (`common/quota.rs`): a token bucket per
//! API family, a cap on creations in progress, creations that settle after a while. Counts, not
//! wall times: every assignment or account exactly once, none refused, few calls per item, and
//! the limits the operator gives are the ones kept.

use std::time::Duration;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::quota::QuotaModel;
use crate::common::{Moto, Test, identity_center};

/// Identity Center, a user, a permission set, then one assignment step over `n` accounts.
fn assignments(n: usize) -> String {
    wide_assignments(n, 16)
}

/// The same with `max_in_flight` items at once in the assignment step.
pub(crate) fn wide_assignments(n: usize, wide: usize) -> String {
    format!(
        r#"# Assign

```rhai id=accounts
let v = [];
for i in 0..{n} {{ v.push(`${{100000000000 + i}}`); }}
#{{ ids: v }}
```

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=user
identity_store_id = "${{steps.ic.identity_store_id}}"
user_name = "ops"
display_name = "Ops"
given_name = "O"
family_name = "Ps"
email = "ops@example.com"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${{steps.ic.instance_arn}}"
name = "AdministratorAccess"
managed_policies = ["AdministratorAccess"]
```

```aws sso-admin.ensure-assignment id=assign timeout=5m
instance_arn = "${{steps.ic.instance_arn}}"
permission_set_arn = "${{steps.ps.arn}}"
principal_id = "${{steps.user.user_id}}"
account_ids = "${{steps.accounts.ids}}"
max_in_flight = {wide}
```
"#
    )
}

fn model(settle_ms: u64) -> Rules {
    Rules {
        quota: Some(QuotaModel::aws(Duration::from_millis(settle_ms))),
        ..Rules::default()
    }
}

/// sso-admin calls made for the assignments (refused and throttled ones included).
fn assignment_calls(proxy: &FaultProxy) -> usize {
    [
        "CreateAccountAssignment",
        "DescribeAccountAssignmentCreationStatus",
        "ListAccountAssignmentCreationStatus",
        "ListAccountAssignmentsForPrincipal",
    ]
    .iter()
    .map(|op| proxy.calls(op))
    .sum()
}

fn assert_each_assigned_once(moto: &Moto, n: usize) {
    let assigned = identity_center(&moto.endpoint).assigned;
    let distinct: std::collections::BTreeSet<&String> = assigned.iter().collect();
    assert_eq!((assigned.len(), distinct.len()), (n, n), "every assignment, none twice");
}

#[test]
fn assignments_at_the_quota_model_each_once_in_about_two_calls() {
    let n = 150;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, model(250));
    let out = Test::new()
        .file("r.md", assignments(n))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_each_assigned_once(&moto, n);
    let upstream = proxy.calls("CreateAccountAssignment") - proxy.injected_on("CreateAccountAssignment");
    assert_eq!(upstream, n, "each created once");
    let per_item = assignment_calls(&proxy) as f64 / n as f64;
    let (refused, max_in_progress, throttled) = proxy.quota(|q| {
        (
            q.refused.values().sum::<usize>(),
            q.max_in_progress.get("CreateAccountAssignment").copied().unwrap_or(0),
            q.throttled.values().sum::<usize>(),
        )
    });
    eprintln!(
        "calls per assignment {per_item:.2}, throttled {throttled}, most in progress {max_in_progress}, {:?}",
        proxy.operations()
    );
    assert!(
        per_item <= 2.5,
        "{per_item:.2} calls per assignment: {:?}",
        proxy.operations()
    );
    assert_eq!(refused, 0, "never over the in-progress cap");
    assert!(max_in_progress <= 15, "{max_in_progress}");
}

#[test]
fn the_in_progress_cap_is_kept_and_can_be_lifted() {
    let n = 60;
    let moto = Moto::start();
    // Requests are not the bottleneck here (a fast bucket on both sides): the cap is.
    let mut rules = model(400);
    if let Some(q) = rules.quota.as_mut() {
        q.rates = vec![("sso-admin".into(), 1000.0), ("identitystore".into(), 1000.0)];
    }
    let proxy = FaultProxy::start(&moto.endpoint, rules.clone());
    // Forty items at once: only the cap holds them back.
    let t = Test::new().file("r.md", wide_assignments(n, 40)).aws(&proxy.endpoint);
    let out = t.run_args(&["run".into(), "r.md".into(), "--rate".into(), "sso-admin=500".into()]);
    out.code_is(0);
    assert_each_assigned_once(&moto, n);
    let (refused, most) = proxy.quota(|q| {
        (
            q.refused.get("CreateAccountAssignment").copied().unwrap_or(0),
            q.max_in_progress.get("CreateAccountAssignment").copied().unwrap_or(0),
        )
    });
    assert_eq!(refused, 0, "never one over the cap");
    assert!((10..=15).contains(&most), "the cap was reached, not passed: {most}");

    // Lifted (`off`): the same work presses past AWS's cap, AWS refuses, the plugin retries.
    moto.reset();
    let proxy = FaultProxy::start(&moto.endpoint, rules);
    let t = Test::new().file("r.md", wide_assignments(n, 40)).aws(&proxy.endpoint);
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--rate".into(),
        "sso-admin=500".into(),
        "--in-progress".into(),
        "CreateAccountAssignment=off".into(),
    ]);
    out.code_is(0);
    assert!(
        proxy.quota(|q| q.refused.get("CreateAccountAssignment").copied().unwrap_or(0)) > 0,
        "without the cap AWS refuses some: {:?} {:?}",
        proxy.operations(),
        proxy.quota(|q| q.json())
    );
}

#[test]
fn a_rate_given_on_the_command_line_is_the_rate_kept() {
    let n = 20;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, model(200));
    let out = Test::new()
        .file("r.md", assignments(n))
        .aws(&proxy.endpoint)
        .args(["run", "r.md", "--rate", "sso-admin=5"])
        .run();
    out.code_is(0);
    let (most, total) = proxy.quota(|q| {
        (
            q.max_per_window("sso-admin", Duration::from_secs(1)),
            q.admitted.get("sso-admin").map_or(0, Vec::len),
        )
    });
    assert!(total > n, "enough requests to see the pace: {total}");
    assert!(most <= 6, "at most 5 a second (one of slack): {most} in one second");

    let bad = Test::new()
        .file("r.md", assignments(1))
        .aws(&proxy.endpoint)
        .args(["run", "r.md", "--rate", "ec2=5"])
        .run();
    bad.code_is(2);
    assert!(
        bad.stderr.contains("--rate `ec2`: unknown API family (known: "),
        "{bad:?}"
    );
}

#[test]
fn throttles_halve_the_pace_and_it_recovers() {
    let n = 80;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, model(200));
    // Twice what AWS allows: AWS throttles, the bucket halves, and climbs back.
    let out = Test::new()
        .file("r.md", assignments(n))
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "10")
        .args(["run", "r.md", "--rate", "sso-admin=40"])
        .run();
    out.code_is(0);
    assert_each_assigned_once(&moto, n);
    let throttled = proxy.quota(|q| q.throttled.get("sso-admin").copied().unwrap_or(0));
    let calls = assignment_calls(&proxy);
    eprintln!("throttled {throttled} of {calls}");
    assert!(throttled > 0, "AWS pushed back");
    assert!(
        throttled * 5 < calls,
        "halving keeps throttles rare: {throttled} of {calls}"
    );
}

#[test]
fn accounts_at_the_quota_model_each_once_within_the_cap() {
    let n = 40;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, model(150));
    let names: Vec<String> = (0..n).map(|i| format!("\"acme-q{i}-prod\"")).collect();
    let text = format!(
        r#"# Accounts

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each='[{}]' timeout=2m
name = "${{item}}"
email = "aws+${{item}}@example.com"
```
"#,
        names.join(", ")
    );
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_eq!(
        proxy.calls("CreateAccount") - proxy.injected_on("CreateAccount"),
        n,
        "each created once"
    );
    let per_item: f64 = [
        "CreateAccount",
        "DescribeCreateAccountStatus",
        "ListAccounts",
        "ListCreateAccountStatus",
    ]
    .iter()
    .map(|op| proxy.calls(op))
    .sum::<usize>() as f64
        / n as f64;
    let (refused, most) = proxy.quota(|q| {
        (
            q.refused.get("CreateAccount").copied().unwrap_or(0),
            q.max_in_progress.get("CreateAccount").copied().unwrap_or(0),
        )
    });
    eprintln!(
        "calls per account {per_item:.2}, most in progress {most}, {:?}",
        proxy.operations()
    );
    assert_eq!(refused, 0, "never over Organizations' five");
    assert!(most <= 5, "{most}");
    assert!(
        per_item <= 2.5,
        "{per_item:.2} calls per account: {:?}",
        proxy.operations()
    );
}

/// Where AWS refuses the listing of creations in progress (a permission missing from the role),
/// the first refusal turns the shared listing off and each assignment reads its own status. With
/// the request budget out of the way (nothing queues), only the settle times learned in the
/// run keep those reads down to about one per assignment.
#[test]
fn status_reads_are_sent_when_assignments_have_been_seen_to_settle() {
    let n = 150;
    let moto = Moto::start();
    let mut rules = model(300);
    if let Some(q) = rules.quota.as_mut() {
        q.rates = vec![("sso-admin".into(), 1000.0), ("identitystore".into(), 1000.0)];
    }
    rules.refuse_op = Some((
        "ListAccountAssignmentCreationStatus".into(),
        "AccessDeniedException".into(),
    ));
    let proxy = FaultProxy::start(&moto.endpoint, rules);
    let out = Test::new()
        .file("r.md", assignments(n))
        .aws(&proxy.endpoint)
        .args(["run", "r.md", "--rate", "sso-admin=500"])
        .run();
    out.code_is(0);
    assert_each_assigned_once(&moto, n);
    let reads = proxy.calls("DescribeAccountAssignmentCreationStatus") as f64 / n as f64;
    eprintln!("status reads per assignment {reads:.2}");
    assert!(reads >= 1.0, "each assignment read its own status: {reads:.2}");
    assert!(reads <= 1.5, "{reads:.2} status reads per assignment");
    assert_eq!(
        proxy.calls("ListAccountAssignmentCreationStatus"),
        1,
        "one refusal turns the listing off"
    );
}

/// One listing of the creations in progress per round serves every waiting assignment, and one
/// listing of the principal's assignments confirms them: far fewer reads than one status read per
/// assignment, and still each assignment once, none over the cap.
#[test]
fn one_listing_per_round_serves_every_waiting_assignment() {
    let n = 150;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, model(250));
    let out = Test::new()
        .file("r.md", assignments(n))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_each_assigned_once(&moto, n);
    let per_item = assignment_calls(&proxy) as f64 / n as f64;
    let listings = proxy.calls("ListAccountAssignmentCreationStatus");
    let reads = proxy.calls("DescribeAccountAssignmentCreationStatus");
    eprintln!("calls per assignment {per_item:.2}: {:?}", proxy.operations());
    assert!(listings >= 1, "{:?}", proxy.operations());
    assert!(
        reads * 10 < n,
        "status reads only where the listing cannot tell: {reads}"
    );
    // Rounds are spaced (a fifth of the 20 requests a second at most): not one listing per item.
    let mut gaps = proxy.gaps("ListAccountAssignmentCreationStatus");
    gaps.sort();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or_default();
    assert!(
        median >= std::time::Duration::from_millis(200),
        "listings {median:?} apart (median of {gaps:?})"
    );
    assert!(
        per_item <= 1.6,
        "{per_item:.2} calls per assignment: {:?}",
        proxy.operations()
    );
    assert_eq!(
        proxy.quota(|q| q.refused.values().sum::<usize>()),
        0,
        "never over the cap"
    );
}

/// A creation that AWS fails leaves the listing like one that succeeded: its own status read
/// tells them apart, and the step fails naming the account and AWS's reason; the others are made.
#[test]
fn a_failed_creation_found_through_the_listing_is_reported_with_aws_reason() {
    let n = 12;
    let moto = Moto::start();
    let mut rules = model(250);
    let failing = "100000000007".to_string();
    if let Some(q) = rules.quota.as_mut() {
        q.fail = vec![(
            failing.clone(),
            "The permission set is not provisioned (quota model)".into(),
        )];
    }
    let proxy = FaultProxy::start(&moto.endpoint, rules);
    let out = Test::new()
        .file("r.md", assignments(n))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(1).stderr_has("1 of 12 assignments").stderr_has(&format!(
        "{failing}: failed: The permission set is not provisioned (quota model)"
    ));
    assert!(proxy.calls("ListAccountAssignmentCreationStatus") >= 1);
    let listed = crate::common::identity_center(&proxy.endpoint).assigned;
    assert_eq!(listed.len(), n - 1, "the failed one is not listed: {listed:?}");
}

/// AWS's limits with requests to spare, creations settling in `settle_ms`: what is in progress
/// when an answer is lost is what the test says.
fn slow_settling(settle_ms: u64) -> Rules {
    let mut rules = model(settle_ms);
    if let Some(q) = rules.quota.as_mut() {
        q.rates = vec![("sso-admin".into(), 1000.0), ("identitystore".into(), 1000.0)];
    }
    rules
}

fn runs_with(rules: Rules, n: usize) -> (Moto, FaultProxy) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, rules);
    let t = Test::new().file("r.md", assignments(n)).aws(&proxy.endpoint);
    t.run_args(&["run".into(), "r.md".into(), "--rate".into(), "sso-admin=200".into()])
        .code_is(0);
    (moto, proxy)
}

/// The answer to a CreateAccountAssignment that AWS carried out is lost while other accounts'
/// creations are in progress (the quota model lists them, and does not list the assignment until
/// it is made): the look finds this account's own request among them and follows it, so nothing
/// is created twice (a look that missed it would send the create again).
#[test]
fn a_lost_assignment_answer_is_matched_to_its_own_request_among_others_in_progress() {
    let mut rules = slow_settling(1500);
    rules.lose_answer_once = Some("CreateAccountAssignment".into());
    let (moto, proxy) = runs_with(rules, 4);
    assert_eq!(proxy.injected("lost-answer"), 1);
    assert!(
        proxy.calls("ListAccountAssignmentCreationStatus") >= 1,
        "{:?}",
        proxy.operations()
    );
    assert_each_assigned_once(&moto, 4);
}

/// A CreateAccountAssignment answered with a 500 before AWS acted, while other accounts'
/// creations are in progress: none of theirs is taken for this one, which is created.
#[test]
fn an_assignment_that_did_not_land_is_not_taken_for_another_accounts_request_in_progress() {
    let mut rules = slow_settling(1500);
    rules.server_error_nth = Some(("CreateAccountAssignment".into(), 3));
    let (moto, proxy) = runs_with(rules, 4);
    assert_eq!(
        proxy.injected_on("CreateAccountAssignment"),
        1,
        "{:?}",
        proxy.operations()
    );
    assert!(
        proxy.calls("ListAccountAssignmentCreationStatus") >= 1,
        "{:?}",
        proxy.operations()
    );
    assert_each_assigned_once(&moto, 4);
}

/// A runbook of `n` assignments with no `timeout=`: the run's own default deadline.
fn assignments_without_timeout(n: usize) -> String {
    assignments(n).replace(" timeout=5m", "")
}

/// A throttled listing of the creations in progress is a round without news: the waiters try
/// the next round (they neither spin on the throttled round nor each send a listing of their
/// own), and the listing stays on (no status read per assignment).
#[test]
fn a_throttled_listing_is_a_round_without_news_and_the_listing_stays_on() {
    let n = 30;
    let moto = Moto::start();
    let mut rules = model(250);
    rules.throttle_nth = Some(("ListAccountAssignmentCreationStatus".into(), 1));
    let proxy = FaultProxy::start(&moto.endpoint, rules);
    let text = assignments_without_timeout(n);
    assert!(!text.contains("timeout="), "{text}");
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(0);
    assert_each_assigned_once(&moto, n);
    assert_eq!(proxy.injected_on("ListAccountAssignmentCreationStatus"), 1);
    assert!(proxy.calls("ListAccountAssignmentCreationStatus") >= 2);
    let reads = proxy.calls("DescribeAccountAssignmentCreationStatus");
    assert!(
        reads * 5 < n,
        "the listing stayed on: {reads} status reads, {:?}",
        proxy.operations()
    );
}

/// AWS may answer a listing in pages shorter than asked for: every page is read, so no creation
/// on a later page is taken for settled (and its place under the cap given up) too early.
#[test]
fn a_listing_in_many_pages_is_read_to_its_last() {
    let n = 60;
    let mut rules = slow_settling(400);
    if let Some(q) = rules.quota.as_mut() {
        q.listing_page = 2;
    }
    let (moto, proxy) = runs_with(rules, n);
    assert_each_assigned_once(&moto, n);
    let (refused, most) = proxy.quota(|q| {
        (
            q.refused.values().sum::<usize>(),
            q.max_in_progress.get("CreateAccountAssignment").copied().unwrap_or(0),
        )
    });
    let reads = proxy.calls("DescribeAccountAssignmentCreationStatus");
    eprintln!("most in progress {most}, {:?}", proxy.operations());
    assert!(most > 2, "more in progress than one page holds: {most}");
    assert_eq!(refused, 0, "no place under the cap given up early");
    assert!(reads * 10 < n, "{reads} status reads: {:?}", proxy.operations());
}

/// Assignments that come one by one (a slow pace: 10 requests a second) fall due one by one: the
/// rounds of the listing stay half a second apart (a fifth of the budget), each serving whoever
/// is due, rather than one listing per assignment.
#[test]
fn listing_rounds_stay_spaced_when_assignments_fall_due_one_by_one() {
    let n = 40;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, model(1000));
    let out = Test::new()
        .file("r.md", assignments(n))
        .aws(&proxy.endpoint)
        .args(["run", "r.md", "--rate", "sso-admin=10"])
        .run();
    out.code_is(0);
    assert_each_assigned_once(&moto, n);
    let listings = proxy.calls("ListAccountAssignmentCreationStatus");
    let mut gaps = proxy.gaps("ListAccountAssignmentCreationStatus");
    gaps.sort();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or_default();
    eprintln!("{listings} listings, median gap {median:?}: {:?}", proxy.operations());
    assert!(listings * 2 <= n, "{listings} listings for {n} assignments");
    assert!(
        median >= Duration::from_millis(400),
        "listings {median:?} apart (median of {gaps:?})"
    );
}
