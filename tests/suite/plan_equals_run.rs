//! `plan` and `run` agree (issue 30), as a property over seeded drifts of the bundled Part 2's end
//! state: for each seed, a different set of out-of-band changes is made in moto; then every step
//! `plan` says would create or change is one the run changes, and every step the run changes is
//! one `plan` announced (or could not decide, because it depends on an announced change).

use std::collections::{BTreeMap, BTreeSet};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, PART2_ANSWERS, Test, block_on, repo, run_dirs, sdk};

/// What a test can change out of band in moto. (moto 5.2.5 answers UpdateUser with a 500, so a
/// user's attributes cannot drift here.)
const DRIFTS: [&str; 6] = [
    "assignment removed",
    "session duration changed",
    "a policy attached",
    "AdministratorAccess detached",
    "user deleted",
    "a customer managed policy referenced",
];

/// The ids Part 2 left, from its state file.
struct Left {
    instance: String,
    store: String,
    set: String,
    user: String,
    account: String,
}

fn left(t: &Test) -> Left {
    let state = run_dirs(&t.path(".runbook")).remove(0).join("state.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state).expect("state")).expect("json");
    let out = |step: &str, key: &str| {
        v["steps"][step]["outputs"][key]
            .as_str()
            .unwrap_or_else(|| panic!("{step}.{key} in {v}"))
            .to_string()
    };
    Left {
        instance: out("identity-center", "instance_arn"),
        store: out("identity-center", "identity_store_id"),
        set: out("admin-permission-set", "arn"),
        user: out("admin", "user_id"),
        account: out("whoami", "account_id"),
    }
}

fn drift(endpoint: &str, l: &Left, which: &str) {
    block_on(async {
        let ctx = sdk(endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let ids = ctx.identitystore(None).await.expect("client");
        match which {
            "assignment removed" => {
                sso.delete_account_assignment()
                    .instance_arn(&l.instance)
                    .target_id(&l.account)
                    .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
                    .permission_set_arn(&l.set)
                    .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
                    .principal_id(&l.user)
                    .send()
                    .await
                    .map(|_| ())
                    .expect("delete assignment");
            }
            "session duration changed" => {
                sso.update_permission_set()
                    .instance_arn(&l.instance)
                    .permission_set_arn(&l.set)
                    .session_duration("PT4H")
                    .send()
                    .await
                    .map(|_| ())
                    .expect("update");
            }
            "a policy attached" => {
                sso.attach_managed_policy_to_permission_set()
                    .instance_arn(&l.instance)
                    .permission_set_arn(&l.set)
                    .managed_policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
                    .send()
                    .await
                    .map(|_| ())
                    .expect("attach");
            }
            "AdministratorAccess detached" => {
                sso.detach_managed_policy_from_permission_set()
                    .instance_arn(&l.instance)
                    .permission_set_arn(&l.set)
                    .managed_policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
                    .send()
                    .await
                    .map(|_| ())
                    .expect("detach");
            }
            "a customer managed policy referenced" => {
                sso.attach_customer_managed_policy_reference_to_permission_set()
                    .instance_arn(&l.instance)
                    .permission_set_arn(&l.set)
                    .customer_managed_policy_reference(
                        aws_sdk_ssoadmin::types::CustomerManagedPolicyReference::builder()
                            .name("ExtraAccess")
                            .path("/team/")
                            .build()
                            .expect("reference"),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .expect("attach reference");
            }
            _ => {
                ids.delete_user()
                    .identity_store_id(&l.store)
                    .user_id(&l.user)
                    .send()
                    .await
                    .map(|_| ())
                    .expect("delete user");
            }
        }
    });
}

/// The steps this run changed AWS in: those with an intent among the transcript's new lines.
fn changed_since(t: &Test, lines_before: usize) -> BTreeSet<String> {
    let transcript = run_dirs(&t.path(".runbook")).remove(0).join("transcript.jsonl");
    std::fs::read_to_string(transcript)
        .expect("transcript")
        .lines()
        .skip(lines_before)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "intent")
        .filter_map(|v| v["step"].as_str().map(String::from))
        .collect()
}

fn transcript_lines(t: &Test) -> usize {
    let transcript = run_dirs(&t.path(".runbook")).remove(0).join("transcript.jsonl");
    std::fs::read_to_string(transcript)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn plan_announces_exactly_the_changes_the_run_makes_over_seeded_drifts() {
    let file = repo().join("runbooks/part-2-identity-center.md").display().to_string();
    // Each drift alone, then seeded mixtures of them.
    let mut cases: Vec<Vec<&str>> = DRIFTS.iter().map(|d| vec![*d]).collect();
    for seed in [5u64, 23, 42] {
        let mixed = seed.wrapping_mul(6_364_136_223_846_793_005).rotate_left(17) ^ seed;
        let picked: Vec<&str> = DRIFTS
            .iter()
            .enumerate()
            .filter(|(i, _)| mixed >> (i * 3) & 1 == 1)
            .map(|(_, d)| *d)
            .collect();
        if !picked.is_empty() {
            cases.push(picked);
        }
    }
    for picked in cases {
        let moto = Moto::start();
        let proxy = FaultProxy::start(
            &moto.endpoint,
            Rules {
                root_mfa: true,
                ..Rules::default()
            },
        );
        let t = Test::new().file("answers.toml", PART2_ANSWERS).aws(&proxy.endpoint);
        let run = || t.run_args(&["run".into(), file.clone(), "--answers".into(), "answers.toml".into()]);
        run().code_is(0);
        let l = left(&t);
        for d in &picked {
            drift(&moto.endpoint, &l, d);
        }
        agree(&t, &file, "answers.toml", &format!("drifts {picked:?}"));
    }
}

/// Plans, runs, and checks that the run changed exactly the steps the plan announced (or could
/// not decide because they depend on an announced change).
fn agree(t: &Test, file: &str, answers: &str, case: &str) {
    let plan = t.run_args(&[
        "plan".into(),
        file.into(),
        "--answers".into(),
        answers.into(),
        "--json".into(),
    ]);
    plan.code_is(0);
    let p: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan json");
    let verdicts: BTreeMap<String, String> = p["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or("").to_string(),
                s["verdict"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let announced: BTreeSet<String> = verdicts
        .iter()
        .filter(|(_, v)| *v == "would-create" || *v == "would-change")
        .map(|(s, _)| s.clone())
        .collect();
    let before = transcript_lines(t);
    t.run_args(&["run".into(), file.into(), "--answers".into(), answers.into()])
        .code_is(0);
    let changed = changed_since(t, before);
    let why = format!("{case}: plan {verdicts:?}, run changed {changed:?}");
    assert!(!changed.is_empty(), "no change repaired the drift: {why}");
    for s in &announced {
        assert!(
            changed.contains(s),
            "plan announced {s}, the run did not change it: {why}"
        );
    }
    for s in &changed {
        assert!(
            announced.contains(s) || verdicts.get(s).map(String::as_str) == Some("unknown"),
            "the run changed {s}, which plan did not announce: {why}"
        );
    }
}

/// The bundled offboarding runbook, after the user it removed came back with two assignments.
#[test]
fn offboarding_plan_announces_exactly_what_its_run_removes() {
    let moto = Moto::shared();
    crate::calls::seed(&moto.endpoint, "leaving.admin");
    let file = repo().join("runbooks/offboard-admin.md").display().to_string();
    let answers = repo()
        .join("runbooks/rehearsal/offboard-admin.toml")
        .display()
        .to_string();
    let t = Test::new().aws(&moto.endpoint);
    t.run_args(&["run".into(), file.clone(), "--answers".into(), answers.clone()])
        .code_is(0);
    crate::calls::seed(&moto.endpoint, "leaving.admin");
    agree(&t, &file, &answers, "the user came back with two assignments");
}
