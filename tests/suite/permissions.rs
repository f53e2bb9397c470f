//! Least privilege, computed (issue #35): `runbook permissions` against what the runs really send
//! (a proxy that sees every request and the service it is signed for), and against a real
//! authorizer (moto with INITIAL_NO_AUTH_ACTION_COUNT, which refuses what the caller's IAM
//! policies do not allow).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::emulator::Emulator;
use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test, block_on, repo, sdk};

pub(crate) fn path(rel: &str) -> String {
    repo().join(rel).display().to_string()
}

pub(crate) fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The policy `runbook permissions --json` prints for these runbooks.
pub(crate) fn printed_policy(runbooks: &[&str]) -> Value {
    let mut a = vec!["permissions".to_string(), "--json".into()];
    a.extend(runbooks.iter().map(|r| path(r)));
    let out = Test::new().run_args(&a);
    out.code_is(0);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

pub(crate) fn actions_of(policy: &Value) -> BTreeSet<String> {
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect()
}

/// AWS authorises every call but this one ("No permissions are required", STS API reference).
pub(crate) const NEEDS_NO_PERMISSION: &str = "sts:GetCallerIdentity";

/// The IAM name of a REST request the proxy saw as `service:METHOD /path`: the operation of the
/// service signed for whose model has that method and path (labels match any segment).
pub(crate) fn rest_operation(call: &str) -> String {
    let Some((svc, rest)) = call.split_once(':') else {
        return call.to_string();
    };
    let Some((method, path)) = rest.split_once(' ') else {
        return call.to_string();
    };
    let path = path.split('?').next().unwrap_or(path);
    let matches = |uri: &str| {
        let uri = uri.split('?').next().unwrap_or(uri);
        let (a, b): (Vec<&str>, Vec<&str>) = (uri.split('/').collect(), path.split('/').collect());
        a.len() == b.len() && a.iter().zip(&b).all(|(u, p)| u.starts_with('{') || u == p)
    };
    for name in runbook_plugins::call::service_names() {
        let Some(m) = runbook_plugins::call::service(name) else {
            continue;
        };
        if m.signing_name() != svc {
            continue;
        }
        for (op, o) in &m.operations {
            if o.http.method == method && matches(&o.http.request_uri) {
                return format!("{svc}:{op}");
            }
        }
    }
    call.to_string()
}

/// The lines `runbook permissions` prints for calls made under a role in another account.
pub(crate) fn role_actions(runbooks: &[&str]) -> BTreeSet<String> {
    let mut a = vec!["permissions".to_string()];
    a.extend(runbooks.iter().map(|r| path(r)));
    let out = Test::new().run_args(&a);
    out.code_is(0);
    out.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("as "))
        .filter_map(|l| l.split_once(": "))
        .flat_map(|(_, acts)| {
            acts.split(" (")
                .next()
                .unwrap_or("")
                .split(", ")
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Each bundled runbook that calls AWS, run (not rehearsed: a run sends what a real one sends) in
/// the guide's order against one emulated account (Identity Center enabled, so that every path
/// that needs it is taken), through a proxy that names each request by who signed it, the service
/// it is signed for and its operation, as IAM does. Every call signed with the operator's key must
/// be an action of the policy `runbook permissions` prints for that runbook; every call signed
/// with an assumed role's key, an action it lists for that role. An action that makes a call it
/// did not declare fails here, whatever its source says.
#[test]
fn every_call_the_bundled_runbooks_make_is_in_the_policy_permissions_prints() {
    let chain: &[(&str, &str, &[&str])] = &[
        ("runbooks/part-1-new-account.md", "part-1-new-account.toml", &[]),
        ("runbooks/prerequisites.md", "prerequisites.toml", &[]),
        ("runbooks/part-2-identity-center.md", "part-2-identity-center.toml", &[]),
        (
            "runbooks/multiple-accounts.md",
            "multiple-accounts.existing-organization.toml",
            &[],
        ),
        ("runbooks/users-and-credentials.md", "users-and-credentials.toml", &[]),
        ("runbooks/account-baseline.md", "account-baseline.toml", &[]),
        // The administrator Part 2 made, with the accounts Multiple accounts gave them.
        (
            "runbooks/offboard-admin.md",
            "offboard-admin.toml",
            &["--input", "admin_user=cloud.admin"],
        ),
    ];
    let emu = Emulator::start(&["--with-identity-center"]);
    let proxy = FaultProxy::start(&emu.endpoint, Rules::default());
    let mut missing = Vec::new();
    let mut seen_total = BTreeSet::new();
    let mut check = |rb: &str, proxy: &FaultProxy, out: &Output| {
        let ours = actions_of(&printed_policy(&[rb]));
        let roles = role_actions(&[rb]);
        let seen = proxy.take_signed();
        assert!(!seen.is_empty(), "{rb}: no call seen: {out:?}");
        for (key, call) in seen {
            let call = rest_operation(&call);
            let declared = if key == "testing" { &ours } else { &roles };
            if call != NEEDS_NO_PERMISSION && !declared.contains(&call) {
                missing.push(format!("{rb}: {call} (signed by {key})"));
            }
            seen_total.insert(call);
        }
    };
    for (rb, answers, extra) in chain {
        let mut a = args(&[
            "run",
            &path(rb),
            "--answers",
            &path(&format!("runbooks/rehearsal/{answers}")),
            "--yes",
        ]);
        a.extend(args(extra));
        let out = Test::new().aws(&proxy.endpoint).run_args(&a);
        // This machine has no internet: the firewall probe (the last step of Prerequisites) fails.
        let offline = out.stderr.contains("step `firewall` failed");
        assert!(
            out.code == 0 || offline,
            "{rb}: the run must finish to count its calls: {out:?}"
        );
        check(rb, &proxy, &out);
    }
    // Support cases, on a plan that has the Support API.
    let emu = Emulator::start(&["--support-plan", "business"]);
    let proxy = FaultProxy::start(&emu.endpoint, Rules::default());
    let rb = "runbooks/troubleshooting/not-activated.md";
    let out = Test::new().aws(&proxy.endpoint).run_args(&args(&[
        "run",
        &path(rb),
        "--answers",
        &path("runbooks/rehearsal/not-activated.business-plan.toml"),
        "--yes",
    ]));
    out.code_is(0);
    check(rb, &proxy, &out);

    eprintln!("calls seen: {seen_total:?}");
    assert!(missing.is_empty(), "calls made but not declared: {missing:#?}");
    // The runs reached every service the built-in actions use, and a role's calls.
    for s in [
        "organizations:",
        "sso:",
        "identitystore:",
        "iam:",
        "support:",
        "account:",
    ] {
        assert!(
            seen_total.iter().any(|c| c.starts_with(s)),
            "no {s} call: {seen_total:?}"
        );
    }
}

/// A user of moto's account whose only permissions are `policy` (an inline policy), made while
/// moto does not yet authorise (its first `setup_calls` requests); the access key and secret.
fn user_with(endpoint: &str, policy: &Value) -> (String, String) {
    block_on(async {
        let ctx = sdk(endpoint);
        let iam = ctx.iam().await.expect("iam client");
        iam.create_user()
            .user_name("operator")
            .send()
            .await
            .expect("create user");
        let key = iam
            .create_access_key()
            .user_name("operator")
            .send()
            .await
            .expect("access key")
            .access_key()
            .cloned()
            .expect("key");
        iam.put_user_policy()
            .user_name("operator")
            .policy_name("runbook")
            .policy_document(policy.to_string())
            .send()
            .await
            .expect("put policy");
        (key.access_key_id().to_string(), key.secret_access_key().to_string())
    })
}

/// The three requests `user_with` makes before moto starts authorising.
const SETUP_CALLS: &str = "3";

/// Part 2 with the user's keys, through a proxy that reports the root user's MFA as active (moto's
/// account has none) and records the calls; then, when asked and Part 2 finished, "Multiple
/// accounts" for three new accounts. The last run's output, and every call seen.
fn guide_as(policy: &Value, then: Then) -> (Output, BTreeSet<String>) {
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_CALLS)]);
    let (key, secret) = user_with(&moto.endpoint, policy);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("answers.toml", crate::common::PART2_ANSWERS)
        .aws(&proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret);
    let mut out = t.run_args(&args(&[
        "run",
        &path("runbooks/part-2-identity-center.md"),
        "--answers",
        "answers.toml",
    ]));
    if then == Then::Again && out.code == 0 {
        // Every step looks before it acts, and finds what the first run made: the reads of
        // existing things (DescribeUser, DescribePermissionSet, ListAccountAssignments).
        out = t.run_args(&args(&[
            "run",
            &path("runbooks/part-2-identity-center.md"),
            "--answers",
            "answers.toml",
            "--restart",
        ]));
    }
    if then == Then::MultipleAccounts && out.code == 0 {
        out = t.run_args(&args(&[
            "run",
            &path("runbooks/multiple-accounts.md"),
            "--input",
            "account_names=acme-pay-prod, acme-pay-dev,acme-log-audit",
            "--input",
            "admin_user=cloud.admin",
        ]));
    }
    (out, proxy.take_signed().into_iter().map(|(_, c)| c).collect())
}

/// What follows Part 2 in [`guide_as`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    /// Part 2 again from the start, the journal forgotten.
    Again,
    MultipleAccounts,
}

fn part_2_as(policy: &Value) -> (Output, BTreeSet<String>) {
    guide_as(policy, Then::Again)
}

/// Calls the fault proxy answers itself, as AWS does where moto does not (provisioning): they never
/// reach moto's authorizer, so taking their action away cannot fail a run here.
const ANSWERED_BY_THE_PROXY: &[&str] = &[
    "sso:DescribePermissionSetProvisioningStatus",
    "sso:ListAccountsForProvisionedPermissionSet",
];

pub(crate) fn without(policy: &Value, action: &str) -> Value {
    let mut p = policy.clone();
    if let Some(st) = p["Statement"].as_array_mut() {
        for s in st.iter_mut() {
            if let Some(a) = s["Action"].as_array_mut() {
                a.retain(|x| x.as_str() != Some(action));
            }
        }
        st.retain(|s| s["Action"].as_array().is_some_and(|a| !a.is_empty()));
    }
    p
}

/// The proof against a real authorizer. moto enforces IAM for every service Part 2 uses (checked:
/// iam, organizations, sso, identitystore and support answer 403 without an Allow; sts
/// GetCallerIdentity is allowed to anyone, as at AWS). A user with exactly the printed policy runs
/// Part 2 to the end; with any one action the run made taken away, the run fails and names that
/// action. An action the run did not make (a path not taken this time: an update, an inline
/// policy, a synced user) cannot be shown needed this way, and is listed as such.
#[test]
fn a_user_with_exactly_the_printed_policy_runs_part_2_and_fails_without_any_action_it_used() {
    let policy = printed_policy(&["runbooks/part-2-identity-center.md"]);
    let (out, used) = part_2_as(&policy);
    // The second run, from the start: it found everything the first made.
    out.code_is(0).stdout_has("created=false");

    // Without any policy, the first call that needs a permission is refused: moto authorises.
    let (denied, _) = guide_as(
        &serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]
        }),
        Then::Nothing,
    );
    assert_ne!(denied.code, 0, "{denied:?}");

    let declared = actions_of(&policy);
    let mut not_exercised = Vec::new();
    for action in &declared {
        if !used.contains(action) || ANSWERED_BY_THE_PROXY.contains(&action.as_str()) {
            not_exercised.push(action.clone());
            continue;
        }
        let (out, _) = part_2_as(&without(&policy, action));
        assert_ne!(out.code, 0, "without {action} the run succeeded: {out:?}");
        assert!(
            out.all().contains(action.as_str()),
            "without {action}, the failure does not name it: {out:?}"
        );
    }
    // What this path does not exercise is declared for the paths it does not take; say which, so
    // a change in coverage is seen.
    eprintln!("declared but not proven here (not made on this path, or answered by the proxy): {not_exercised:?}");
    assert!(
        used.iter().filter(|c| *c != NEEDS_NO_PERMISSION).count() >= 10,
        "too few calls exercised: {used:?}"
    );
}

/// The site shows, on each bundled runbook's page, each AWS step's IAM permissions on its card (as
/// `runbook permissions` lists them for that step) and the runbook's policy.
#[test]
fn the_site_lists_each_steps_permissions_and_each_runbooks_policy() {
    let t = Test::new();
    let site = t.path("site");
    let out = t.run_args(&args(&[
        "render",
        "--book",
        &path("book"),
        "--runbooks",
        &path("runbooks"),
        "--out",
        &site.display().to_string(),
    ]));
    out.code_is(0);
    let listed = Test::new().run_args(&args(&["permissions", &path("runbooks")]));
    listed.code_is(0);
    let mut cards = 0;
    for line in listed
        .stdout
        .lines()
        .filter(|l| l.starts_with('/') || l.contains(".md:"))
    {
        // `FILE:LINE  STEP  ACTION  iam:A, iam:B` (or `(needs no permission)`).
        let mut words = line.split("  ");
        let (Some(at), Some(step), Some(_), Some(actions)) = (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if step == "[guard]" {
            // The guard is no step and has no card; the runbook's policy on the page holds it.
            continue;
        }
        let file = at.rsplit_once(':').map_or(at, |(f, _)| f);
        let rel = file.split("runbooks/").last().unwrap_or(file).replace(".md", ".html");
        let page = std::fs::read_to_string(site.join("runbooks").join(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let card = page
            .split(&format!("id=\"step-{step}\""))
            .nth(1)
            .and_then(|c| c.split("class=\"rb-step ").next())
            .unwrap_or_else(|| panic!("{rel}: no card for {step}"));
        let shown = card
            .split("IAM permissions: ")
            .nth(1)
            .and_then(|c| c.split("</p>").next())
            .unwrap_or_else(|| panic!("{rel}: card {step} lists no IAM permissions"));
        if actions.starts_with('(') {
            assert!(shown.starts_with("none"), "{rel} {step}: {shown}");
        } else {
            for a in actions.split(", ") {
                assert!(
                    shown.contains(&format!("<code>{a}</code>")),
                    "{rel} {step}: {a} not in {shown}"
                );
            }
        }
        assert!(page.contains("class=\"rb-policy\""), "{rel}: no policy");
        cards += 1;
    }
    assert!(cards >= 30, "only {cards} cards checked: {}", listed.stdout);
}

/// Calls by name, written here (not a bundled runbook: a check the declarations were not written
/// for), across four protocols: query (iam), json (logs), rest-xml (s3), and two of AWS's
/// exceptions (s3 ListBuckets is authorised as s3:ListAllMyBuckets, ListObjectsV2 as
/// s3:ListBucket), which moto's S3 authorizer applies as AWS does.
const CALLS_BY_NAME: &str = r#"# Calls by name

```aws iam:CreateUser id=user
UserName = "deploy-bot"
```

```aws iam:ListUsers id=users
```

```aws logs:CreateLogGroup id=log-group
logGroupName = "/runbook/held-out"
```

```aws s3:CreateBucket id=bucket
Bucket = "runbook-held-out"
```

```aws s3:ListBuckets id=buckets
```

```aws s3:ListObjectsV2 id=objects
Bucket = "runbook-held-out"
```
"#;

fn calls_as(policy: &Value) -> Output {
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_CALLS)]);
    let (key, secret) = user_with(&moto.endpoint, policy);
    let t = Test::new()
        .file("calls.md", CALLS_BY_NAME)
        .aws(&moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret);
    let out = t.run_args(&args(&["run", "calls.md", "--yes"]));
    drop(moto);
    out
}

#[test]
fn calls_by_name_pass_moto_s_authorizer_with_the_printed_policy_and_each_action_is_needed() {
    let t = Test::new().file("calls.md", CALLS_BY_NAME);
    let out = t.run_args(&args(&["permissions", "--json", "calls.md"]));
    out.code_is(0);
    let policy: Value = serde_json::from_str(&out.stdout).expect("policy JSON");
    let declared = actions_of(&policy);
    assert_eq!(
        declared,
        [
            "iam:CreateUser",
            "iam:ListUsers",
            "logs:CreateLogGroup",
            "s3:CreateBucket",
            "s3:ListAllMyBuckets",
            "s3:ListBucket"
        ]
        .map(String::from)
        .into(),
    );
    calls_as(&policy).code_is(0);
    for action in &declared {
        let out = calls_as(&without(&policy, action));
        assert_ne!(out.code, 0, "without {action} the run succeeded: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("the caller lacks IAM permission {action}")),
            "without {action}, the failure does not name it: {out:?}"
        );
    }
}

/// The policy's shape: a step in another account needs only sts:AssumeRole on its role (the
/// account narrowed when written literally), its own calls listed for the role; Sids are letters
/// and digits as IAM requires; a call AWS does not authorise adds nothing.
#[test]
fn a_step_in_another_account_needs_only_to_assume_its_role() {
    let t = Test::new().file(
        "r.md",
        r#"# Elsewhere

```aws sts.whoami id=who-am-i
```

```aws iam:GetAccountPasswordPolicy id=policy-read account=111122223333
```

```aws iam:GetAccountPasswordPolicy id=there role=Auditor account=${steps.who_am_i.account_id}
```

```aws iam:GetAccountPasswordPolicy id=chosen role=${steps.who_am_i.name} account=111122223333
```
"#,
    );
    let out = t.run_args(&args(&["permissions", "--json", "r.md"]));
    out.code_is(0);
    let policy: Value = serde_json::from_str(&out.stdout).expect("policy JSON");
    let st = policy["Statement"].as_array().expect("statements");
    assert_eq!(st.len(), 1, "{policy:#}");
    assert_eq!(st[0]["Action"], serde_json::json!(["sts:AssumeRole"]));
    assert_eq!(
        st[0]["Resource"],
        serde_json::json!([
            // A role named by an expression is known only at run time; `${...}` in a policy is
            // IAM's variable syntax and would match nothing.
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::*:role/Auditor",
            "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"
        ])
    );
    let baseline = printed_policy(&["runbooks/account-baseline.md"]).to_string();
    assert!(
        !baseline.contains("${"),
        "an expression in the printed policy: {baseline}"
    );
    let sid = st[0]["Sid"].as_str().unwrap_or("");
    assert!(
        sid.chars().all(|c| c.is_ascii_alphanumeric()) && sid.starts_with("StsFor"),
        "{sid}"
    );
    let text = t.run_args(&args(&["permissions", "r.md"]));
    text.code_is(0)
        .stdout_has("who-am-i  sts.whoami  (needs no permission)")
        .stdout_has("as arn:aws:iam::111122223333:role/OrganizationAccountAccessRole: iam:GetAccountPasswordPolicy");
    t.run_args(&args(&["permissions", "missing.md"])).code_is(2);
}

/// Part 2, then "Multiple accounts" (three new accounts, the administrator assigned in each), as
/// one user with exactly the policy `runbook permissions` prints for both: both finish. Each action
/// that "Multiple accounts" needs beyond Part 2 and used, taken away: it fails and names it.
#[test]
fn a_user_with_exactly_the_printed_policy_runs_part_2_then_multiple_accounts() {
    let both = ["runbooks/part-2-identity-center.md", "runbooks/multiple-accounts.md"];
    let policy = printed_policy(&both);
    let (out, used) = guide_as(&policy, Then::MultipleAccounts);
    out.code_is(0).stdout_has("accounts=3");
    let part2 = actions_of(&printed_policy(&both[..1]));
    let beyond: Vec<String> = actions_of(&policy)
        .into_iter()
        .filter(|a| !part2.contains(a) && used.contains(a))
        .collect();
    assert!(
        beyond.iter().any(|a| a == "organizations:CreateAccount"),
        "{beyond:?} of {used:?}"
    );
    for action in &beyond {
        let (out, _) = guide_as(&without(&policy, action), Then::MultipleAccounts);
        assert_ne!(out.code, 0, "without {action} the runs succeeded: {out:?}");
        // A for-each step's items are joined into one message and their hints dropped (in the
        // executor's fan-out), so the item's call names it here: organizations' calls and IAM
        // actions share their names.
        assert!(
            out.all().contains(action.as_str()),
            "without {action}, the failure does not name it: {out:?}"
        );
    }
}
