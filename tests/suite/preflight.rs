//! The permissions preflight (issue #35): `plan --check-permissions` and `run --check-permissions`
//! ask IAM (iam:SimulatePrincipalPolicy) whether the caller may do what the remaining steps need,
//! and stop before anything changes, naming each action IAM would refuse and the steps that need
//! it. IAM here is moto's own authorizer: moto_simulate.py answers the simulation with the
//! evaluator that, after INITIAL_NO_AUTH_ACTION_COUNT requests, refuses every request the caller's
//! policies do not allow; so a preflight that passed is followed by a run moto lets finish.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test, block_on, repo, sdk, sdk_as};
use crate::permissions::{actions_of, printed_policy, without};

const PART_2: &str = "runbooks/part-2-identity-center.md";

fn part_2() -> String {
    repo().join(PART_2).display().to_string()
}

/// The preflight's own needs, added to the printed policy (book/src/permissions.md says so).
pub(crate) fn with_preflight(policy: &Value) -> Value {
    let mut p = policy.clone();
    if let Some(st) = p["Statement"].as_array_mut() {
        st.push(
            json!({"Sid": "Preflight", "Effect": "Allow", "Action": ["iam:SimulatePrincipalPolicy"], "Resource": "*"}),
        );
    }
    p
}

/// A moto that authorises, an administrator (`admin`, allowed everything) to change the operator's
/// policy between attempts, and the operator (`operator`) whose keys the runs use.
pub(crate) struct Account {
    pub(crate) moto: Moto,
    pub(crate) proxy: FaultProxy,
    admin: runbook_plugins::Context,
    pub(crate) operator: (String, String),
}

impl Account {
    pub(crate) fn new() -> Account {
        Account::after(|_| {})
    }

    /// An account where `setup` (given moto's endpoint) made what a runbook starts from, before
    /// moto authorises anything.
    pub(crate) fn after(setup: impl FnOnce(&str)) -> Account {
        let moto = Moto::start_simulating(&[]);
        setup(&moto.endpoint);
        let (admin, operator) = block_on(async {
            let iam = sdk(&moto.endpoint).iam().await.expect("iam");
            let mut keys = Vec::new();
            for user in ["admin", "operator"] {
                iam.create_user().user_name(user).send().await.expect("user");
                let key = iam.create_access_key().user_name(user).send().await.expect("key");
                keys.push(key.access_key().cloned().expect("key"));
            }
            iam.put_user_policy()
                .user_name("admin")
                .policy_name("all")
                .policy_document(
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                )
                .send()
                .await
                .expect("admin policy");
            let [admin, operator] = [&keys[0], &keys[1]];
            (
                sdk_as(&moto.endpoint, admin.access_key_id(), admin.secret_access_key()),
                (
                    operator.access_key_id().to_string(),
                    operator.secret_access_key().to_string(),
                ),
            )
        });
        // From here moto authorises every request.
        moto.authorise(true);
        // Part 2's root MFA check reads an account summary moto has no MFA in: the proxy says the
        // root user has one, as the account the guide set up does.
        let proxy = FaultProxy::start(
            &moto.endpoint,
            Rules {
                root_mfa: true,
                ..Rules::default()
            },
        );
        Account {
            moto,
            proxy,
            admin,
            operator,
        }
    }

    /// The operator's only policy becomes `policy`.
    pub(crate) fn allow(&self, policy: &Value) {
        block_on(async {
            self.admin
                .iam()
                .await
                .expect("iam")
                .put_user_policy()
                .user_name("operator")
                .policy_name("runbook")
                .policy_document(policy.to_string())
                .send()
                .await
                .expect("operator policy");
        });
    }

    pub(crate) fn test(&self) -> Test {
        Test::new()
            .file("answers.toml", crate::common::PART2_ANSWERS)
            .aws(&self.proxy.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.operator.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.operator.1)
    }

    /// What reached moto since the last look, as `service:Operation`.
    pub(crate) fn sent(&self) -> Vec<String> {
        self.proxy.take_signed().into_iter().map(|(_, c)| c).collect()
    }
}

fn run_part_2(t: &Test, extra: &[&str]) -> Output {
    let mut a: Vec<String> = ["run", &part_2(), "--answers", "answers.toml"]
        .map(String::from)
        .to_vec();
    a.extend(extra.iter().map(|s| s.to_string()));
    t.run_args(&a)
}

/// The actions `out` names as refused, from the preflight's lines `  service:Action (why), needed by ...`.
pub(crate) fn refused(out: &Output) -> BTreeSet<String> {
    out.stderr
        .lines()
        .filter(|l| l.contains("), needed by step `"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// With one action missing, `run --check-permissions` stops before its first step, names that
/// action and the step that needs it, and sends nothing but the preflight's own questions; the
/// same run without the preflight changes AWS and then fails halfway, as the issue describes.
#[test]
fn a_run_missing_one_action_stops_before_anything_changes_and_names_it() {
    let acct = Account::new();
    let policy = printed_policy(&[PART_2]);
    acct.allow(&with_preflight(&without(&policy, "sso:CreatePermissionSet")));
    let t = acct.test();
    acct.sent();

    let out = run_part_2(&t, &["--check-permissions"]);
    out.code_is(1)
        .stderr_has("IAM says arn:aws:iam::123456789012:user/operator may not do 1 action the remaining steps need; nothing was changed")
        .stderr_has("sso:CreatePermissionSet (no statement allows it), needed by step `admin-permission-set`");
    assert_eq!(
        refused(&out),
        BTreeSet::from(["sso:CreatePermissionSet".to_string()]),
        "{out:?}"
    );
    let sent = acct.sent();
    assert_eq!(
        sent.iter()
            .filter(|c| !matches!(c.as_str(), "sts:GetCallerIdentity" | "iam:SimulatePrincipalPolicy"))
            .count(),
        0,
        "the preflight sent more than its questions: {sent:?}"
    );
    assert!(sent.iter().any(|c| c == "iam:SimulatePrincipalPolicy"), "{sent:?}");
    // No run was started: nothing to resume, nothing recorded as begun.
    let status = t.run_args(&["status".into(), part_2()]);
    assert!(
        !status.all().contains("admin-user"),
        "the refused run left a record: {status:?}"
    );

    // Without the preflight the same caller changes AWS first, then fails at the step.
    let out = run_part_2(&t, &[]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.all().contains("sso:CreatePermissionSet"), "{out:?}");
    assert!(
        acct.sent().iter().any(|c| c == "identitystore:CreateUser"),
        "the run without a preflight changed nothing before it failed: the test does not show what the preflight prevents"
    );
}

/// Each action the printed policy holds, taken away alone, is the one action the preflight names:
/// the preflight asks about every action the runbook declares, and about nothing it does not.
#[test]
fn plan_check_permissions_names_exactly_the_action_taken_away() {
    let acct = Account::new();
    let policy = printed_policy(&[PART_2]);
    let t = acct.test();
    let plan = |t: &Test| {
        t.run_args(&[
            "plan".into(),
            part_2(),
            "--answers".into(),
            "answers.toml".into(),
            "--check-permissions".into(),
            "--detailed-exitcode".into(),
        ])
    };
    for action in actions_of(&policy) {
        acct.allow(&with_preflight(&without(&policy, &action)));
        let out = plan(&t);
        // 1, not 2: a refusal is not "changes pending".
        out.code_is(1);
        assert_eq!(
            refused(&out),
            BTreeSet::from([action.clone()]),
            "without {action}: {out:?}"
        );
    }
    acct.allow(&with_preflight(&policy));
    let out = plan(&t);
    out.code_is(2).stderr_has(
        "check-permissions: IAM allows arn:aws:iam::123456789012:user/operator every action the remaining steps need",
    );
}

/// With exactly the printed policy (and the preflight's own action) the preflight passes and moto,
/// which authorises with the same evaluator, lets the whole run finish.
#[test]
fn a_preflight_that_passes_is_followed_by_a_run_that_finishes() {
    let acct = Account::new();
    acct.allow(&with_preflight(&printed_policy(&[PART_2])));
    let out = run_part_2(&acct.test(), &["--check-permissions"]);
    out.code_is(0).stderr_has("check-permissions: IAM allows");
}

/// A caller IAM cannot simulate (here: not allowed to ask) is told so, and the run goes on.
#[test]
fn a_caller_that_may_not_simulate_is_told_and_the_run_goes_on() {
    let acct = Account::new();
    acct.allow(&printed_policy(&[PART_2]));
    let out = run_part_2(&acct.test(), &["--check-permissions"]);
    out.code_is(0).stderr_has(
        "check-permissions: not checked for arn:aws:iam::123456789012:user/operator: IAM would not simulate \
             arn:aws:iam::123456789012:user/operator: the caller may not call iam:SimulatePrincipalPolicy (allow it \
             on the caller's own ARN to let the preflight ask); going on",
    );
}

/// On a resume the preflight asks only about the steps left: a step the run finished is not held
/// against it, and `--restart`, which runs every step again, asks about them all.
#[test]
fn a_resume_is_checked_for_the_steps_left_and_a_restart_for_all() {
    let acct = Account::new();
    let policy = printed_policy(&[PART_2]);
    let t = acct.test();
    // The first run creates the user, then fails for want of sso:CreatePermissionSet.
    acct.allow(&with_preflight(&without(&policy, "sso:CreatePermissionSet")));
    assert_ne!(run_part_2(&t, &[]).code, 0);
    assert!(acct.sent().iter().any(|c| c == "identitystore:CreateUser"));

    // Now the caller may create permission sets but no longer users: the user exists already.
    acct.allow(&with_preflight(&without(&policy, "identitystore:CreateUser")));
    let restart = run_part_2(&t, &["--check-permissions", "--restart"]);
    restart.code_is(1);
    assert_eq!(
        refused(&restart),
        BTreeSet::from(["identitystore:CreateUser".to_string()]),
        "{restart:?}"
    );
    let resume = run_part_2(&t, &["--check-permissions"]);
    resume.code_is(0).stderr_has("check-permissions: IAM allows");
}

/// A step in another account needs only sts:AssumeRole on its role from the caller: the preflight
/// asks about that role's ARN, and says that what the role itself may do is not checked.
#[test]
fn a_step_in_another_account_is_checked_for_assuming_its_role() {
    let acct = Account::new();
    let t = acct.test().file(
        "r.md",
        r#"# Elsewhere

```aws iam:GetAccountPasswordPolicy id=policy-read account=111122223333
```
"#,
    );
    let plan = || t.run_args(&["plan".into(), "r.md".into(), "--check-permissions".into()]);
    acct.allow(&with_preflight(&json!({"Version": "2012-10-17", "Statement": []})));
    let out = plan();
    out.code_is(1).stderr_has(
        "sts:AssumeRole on arn:aws:iam::111122223333:role/OrganizationAccountAccessRole (no statement allows it), \
         needed by step `policy-read` (r.md:3)",
    );
    // Allowed on another account's role only: still refused.
    acct.allow(&with_preflight(&json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::444455556666:role/OrganizationAccountAccessRole"}
    ]})));
    assert_eq!(refused(&plan()), BTreeSet::from(["sts:AssumeRole".to_string()]));
    let printed: Value = serde_json::from_str(
        &t.run_args(&["permissions".into(), "--json".into(), "r.md".into()])
            .stdout,
    )
    .expect("policy");
    acct.allow(&with_preflight(&printed));
    plan()
        .stderr_has("check-permissions: IAM allows arn:aws:iam::123456789012:user/operator every action")
        .stderr_has(
            "check-permissions: not checked: step `policy-read` acts as \
             arn:aws:iam::111122223333:role/OrganizationAccountAccessRole, whose own policy must allow \
             iam:GetAccountPasswordPolicy",
        );
}
