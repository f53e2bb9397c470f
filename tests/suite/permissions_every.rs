//! Least privilege for every bundled runbook (issue #35), against moto's own authorizer: for each,
//! an operator with exactly the policy `runbook permissions` printed (and the preflight's
//! iam:SimulatePrincipalPolicy) runs it with `--check-permissions` to the end; each action the run
//! made with the operator's keys, taken away alone, is the one action `run --check-permissions`
//! names, and nothing but the preflight's questions reaches moto; each action the policy holds
//! that this run did not make (a rehearsal-only step, a path not taken) is the one action
//! `plan --check-permissions` names. Part 2 and "Multiple accounts" are proven in permissions.rs
//! and preflight.rs.
//!
//! What this does not prove:
//! - That an action the run did not make is needed: only that it is declared and asked about.
//! - That an action the run made is needed without the preflight (moto refusing the run itself):
//!   Part 2's proof in permissions.rs shows that; here the preflight names it first.
//! - A step in another account (account-baseline): the caller needs only sts:AssumeRole, which the
//!   preflight asks about; the role's own policy is that account's, and the preflight says it did
//!   not check it. Here the member accounts' `OrganizationAccountAccessRole` (which moto creates
//!   with no policy at all) holds exactly the actions `runbook permissions` lists for the role:
//!   the run finishes; with one of them taken away the preflight passes and the run fails in the
//!   member account naming it.
//! - The support cases: moto's Support API answers whatever the plan; at AWS a Basic plan or an
//!   account not yet activated refuses it and the case is handed over (support_cases.rs). moto
//!   words a refusal of its JSON and REST services (support, sso, identitystore, organizations,
//!   account) as a 403 whose XML body the SDK cannot read (`HttpStatus403`), so a refused
//!   support:CreateCase here fails the step instead of handing the case over as AWS's
//!   `AccessDeniedException` would; the preflight refuses it first either way.
//! - Part 1, the prerequisites and "AWS users and credentials" change nothing in AWS; their reads
//!   are proven all the same. Part 1's root MFA check is answered by the proxy (moto's account has
//!   no root MFA), after moto authorised the read. The prerequisites' last step probes the
//!   firewall over the internet, which this machine does not have: that step fails, after every
//!   AWS step finished.

use std::collections::BTreeSet;

use crate::common::{Output, repo};
use crate::permissions::{
    NEEDS_NO_PERMISSION, actions_of, args, path, printed_policy, rest_operation, role_actions, without,
};
use crate::preflight::{Account, refused, with_preflight};

/// What the preflight itself sends: who the caller is, and its question.
const PREFLIGHT_ASKS: &[&str] = &[NEEDS_NO_PERMISSION, "iam:SimulatePrincipalPolicy"];

/// What reached moto since the last look: whether the operator's key signed it, and the IAM name.
fn signed(acct: &Account) -> Vec<(bool, String)> {
    acct.proxy
        .take_signed()
        .into_iter()
        .map(|(key, call)| (key == acct.operator.0, rest_operation(&call)))
        .collect()
}

/// `plan` or `run` of one bundled runbook with `--check-permissions`, as the operator, in a
/// directory of its own (a new run each time: every step remains).
fn attempt(acct: &Account, cmd: &str, rb: &str, extra: &[&str]) -> Output {
    let mut a = args(&[cmd, &path(rb), "--check-permissions"]);
    if cmd == "run" {
        a.push("--yes".into());
    }
    a.extend(args(extra));
    acct.test().run_args(&a)
}

/// The answers the guide's rehearsal uses, as `--answers FILE`.
fn answers(name: &str) -> String {
    repo().join("runbooks/rehearsal").join(name).display().to_string()
}

/// The proof for one bundled runbook in an account made ready for it (see the module's comment).
/// The actions its run made with the operator's keys, and under a role in another account.
fn prove(
    acct: &Account,
    rb: &str,
    extra: &[&str],
    finished: impl Fn(&Output) -> bool,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let policy = printed_policy(&[rb]);
    let declared = actions_of(&policy);
    acct.allow(&with_preflight(&policy));
    signed(acct);
    let out = attempt(acct, "run", rb, extra);
    assert!(
        finished(&out),
        "{rb}: with exactly the printed policy the run did not finish: {out:?}"
    );
    assert!(
        out.stderr
            .contains("check-permissions: IAM allows arn:aws:iam::123456789012:user/operator every action")
            || (declared.is_empty() && out.stderr.contains("the remaining steps need no IAM permission")),
        "{rb}: the preflight did not pass: {out:?}"
    );
    let (mine, theirs): (Vec<_>, Vec<_>) = signed(acct).into_iter().partition(|(m, _)| *m);
    let used: BTreeSet<String> = mine
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| !PREFLIGHT_ASKS.contains(&c.as_str()))
        .collect();
    let by_role: BTreeSet<String> = theirs
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c != NEEDS_NO_PERMISSION)
        .collect();
    let undeclared: Vec<_> = used.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "{rb}: made but not in the policy: {undeclared:?}"
    );

    // Each action, taken away alone, is the one the preflight names: a run's, before anything
    // changes; one this run did not make (another path, a rehearsal-only step), a plan's.
    for action in &declared {
        let cmd = if used.contains(action) { "run" } else { "plan" };
        acct.allow(&with_preflight(&without(&policy, action)));
        let out = attempt(acct, cmd, rb, extra);
        out.code_is(1);
        assert_eq!(
            refused(&out),
            BTreeSet::from([action.clone()]),
            "{cmd} {rb} without {action}: {out:?}"
        );
        only_the_preflight_asked(acct, &format!("{cmd} {rb} without {action}"));
    }
    acct.allow(&with_preflight(&policy));
    (used, by_role)
}

#[track_caller]
fn only_the_preflight_asked(acct: &Account, what: &str) {
    let sent: Vec<String> = signed(acct).into_iter().map(|(_, c)| c).collect();
    assert!(
        sent.iter().all(|c| PREFLIGHT_ASKS.contains(&c.as_str())),
        "{what}: more than the preflight's questions reached moto: {sent:?}"
    );
    assert!(
        sent.iter().any(|c| c == "iam:SimulatePrincipalPolicy"),
        "{what}: {sent:?}"
    );
}

/// Offboarding, of an administrator with assignments in two accounts (as Part 2 and "Multiple
/// accounts" leave one): the user and both assignments are removed.
#[test]
fn offboarding_runs_with_exactly_its_printed_policy_and_names_any_action_taken_away() {
    let seeded = std::cell::OnceCell::new();
    let acct = Account::after(|endpoint| {
        let _ = seeded.set(crate::calls::seed(endpoint, "leaving.admin"));
    });
    let seeded = seeded.get().expect("seeded");
    let rb = "runbooks/offboard-admin.md";
    let (used, _) = prove(&acct, rb, &["--answers", &answers("offboard-admin.toml")], |o| {
        o.code == 0 && o.stdout.contains("removed_assignments=2")
    });
    acct.moto.authorise(false);
    assert_eq!(
        crate::calls::left(&acct.moto.endpoint, seeded),
        (0, 0),
        "the admin and its access are gone"
    );
    acct.moto.authorise(true);
    for a in [
        "organizations:DescribeOrganization",
        "identitystore:GetUserId",
        "sso:ListAccountAssignmentsForPrincipal",
        "sso:DeleteAccountAssignment",
        "identitystore:DeleteUser",
    ] {
        assert!(used.contains(a), "{a} not made: {used:?}");
    }
}

/// The baseline, in an organization of two member accounts whose `OrganizationAccountAccessRole`
/// may do exactly what `runbook permissions` lists for the role.
#[test]
fn the_account_baseline_runs_with_exactly_its_printed_policies_and_names_any_action_taken_away() {
    let rb = "runbooks/account-baseline.md";
    let for_role = role_actions(&[rb]);
    let members = std::cell::OnceCell::new();
    let acct = Account::after(|endpoint| {
        let ids = crate::services::boto(
            endpoint,
            r#"o = c('organizations')
o.create_organization(FeatureSet='ALL')
ids = [o.create_account(AccountName=n, Email=n + '@example.com')['CreateAccountStatus']['AccountId'] for n in ['dev', 'prod']]
print(' '.join(ids))"#,
        );
        let ids: Vec<String> = ids.split(' ').map(String::from).collect();
        role_may(endpoint, &ids, &for_role);
        let _ = members.set(ids);
    });
    let members = members.get().expect("members");
    let extra = ["--answers", &answers("account-baseline.toml")];
    let finished = |o: &Output| o.code == 0 && o.stdout.contains("baseline set in 2 member account(s)");
    let (used, by_role) = prove(&acct, rb, &extra, finished);
    assert!(used.contains("sts:AssumeRole"), "{used:?}");
    assert_eq!(by_role, for_role, "the calls made as the role are those listed for it");

    // The role's own policy: the preflight cannot see it, says so, and the run fails there.
    for action in &for_role {
        let fewer: BTreeSet<String> = for_role.iter().filter(|a| *a != action).cloned().collect();
        acct.moto.authorise(false);
        role_may(&acct.moto.endpoint, members, &fewer);
        acct.moto.authorise(true);
        let out = attempt(&acct, "run", rb, &extra);
        assert_ne!(out.code, 0, "the role without {action}: {out:?}");
        assert!(
            out.stderr.contains("check-permissions: IAM allows")
                && out.stderr.contains("check-permissions: not checked: step `")
                && out.all().contains(action.as_str()),
            "the role without {action}: the preflight should pass, saying it did not check the role, and the run name {action}: {out:?}"
        );
    }
}

/// Each member account's OrganizationAccountAccessRole may do `actions` and nothing else (moto
/// authorising nothing meanwhile).
fn role_may(endpoint: &str, ids: &[String], actions: &BTreeSet<String>) {
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "*"}
    ]});
    crate::services::boto(
        endpoint,
        &format!(
            "{}for a in {ids:?}:\n    member('iam', a).put_role_policy(RoleName='OrganizationAccountAccessRole', PolicyName='runbook', PolicyDocument={:?})",
            crate::accounts::IN_ACCOUNT,
            doc.to_string()
        ),
    );
}

/// Part 1, the prerequisites and "AWS users and credentials": each reads, and needs just that.
#[test]
fn the_reading_runbooks_run_with_exactly_their_printed_policies() {
    let acct = Account::new();
    let (used, _) = prove(
        &acct,
        "runbooks/part-1-new-account.md",
        &["--answers", &answers("part-1-new-account.toml")],
        |o| o.code == 0,
    );
    assert_eq!(used, BTreeSet::from(["iam:GetAccountSummary".to_string()]));
    let (used, _) = prove(
        &acct,
        "runbooks/prerequisites.md",
        &["--answers", &answers("prerequisites.toml")],
        // Offline: the firewall probe, the last step, fails; every AWS step before it finished.
        |o| o.code == 0 || o.stderr.contains("step `firewall` failed"),
    );
    assert_eq!(
        used,
        BTreeSet::from(["iam:GetAccountSummary", "organizations:DescribeOrganization"].map(String::from))
    );
    let (used, _) = prove(
        &acct,
        "runbooks/users-and-credentials.md",
        &["--answers", &answers("users-and-credentials.toml")],
        |o| o.code == 0,
    );
    assert!(used.is_empty(), "{used:?}");
}

/// The three support cases of the troubleshooting pages, each opened through the Support API.
#[test]
fn the_support_cases_are_opened_with_exactly_their_printed_policies() {
    let acct = Account::new();
    for (rb, answers_file) in [
        ("runbooks/troubleshooting/not-activated.md", "not-activated.toml"),
        ("runbooks/troubleshooting/failed-attempts.md", "failed-attempts.toml"),
        (
            "runbooks/troubleshooting/no-verification-call.md",
            "no-verification-call.toml",
        ),
    ] {
        let (used, _) = prove(&acct, rb, &["--answers", &answers(answers_file)], |o| {
            o.code == 0 && o.stdout.contains("support case") && !o.stdout.contains("handed_over=true")
        });
        assert_eq!(
            used,
            BTreeSet::from(["support:CreateCase", "support:DescribeCases"].map(String::from)),
            "{rb}"
        );
    }
}

/// Held out: runbooks written here, not for the declarations: calls by name to iam, sso-admin,
/// identitystore and organizations, in for-each and behind if= (a step that never runs still
/// counts), one under the guard `account = "management"`, which reads the organization before the
/// first change. Each passes the preflight with its printed policy and finishes; each action, taken
/// away, is named.
const HELD_OUT: &[(&str, &str)] = &[
    (
        "groups.md",
        r#"# Groups, guarded

```runbook
[guard]
account = "management"
```

```aws iam:CreateGroup id=groups for-each='["auditors", "operators"]'
GroupName = "${item}"
```

```aws iam:ListGroups id=listed
```

```aws iam:DeleteGroup id=never if='steps.listed.Groups.len() == 0'
GroupName = "auditors"
```
"#,
    ),
    (
        "directory.md",
        r#"# Directory

```aws sso-admin:ListInstances id=ic
```

```aws identitystore:CreateGroup id=teams for-each='["platform", "security"]'
IdentityStoreId = "${steps.ic.Instances[0].IdentityStoreId}"
DisplayName = "${item}"
```

```aws sso-admin:CreatePermissionSet id=ps if='steps.ic.Instances.len() > 0'
InstanceArn = "${steps.ic.Instances[0].InstanceArn}"
Name = "ReadOnly"
```

```aws organizations:ListAccounts id=accounts
```
"#,
    ),
];

#[test]
fn runbooks_not_in_the_repo_run_under_their_printed_policies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acct = Account::after(|endpoint| {
        crate::services::boto(endpoint, "c('organizations').create_organization(FeatureSet='ALL')");
    });
    let mut all = BTreeSet::new();
    for (name, text) in HELD_OUT {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("write");
        let rb = file.display().to_string();
        let (used, _) = prove(&acct, &rb, &[], |o| o.code == 0);
        all.extend(used);
    }
    for a in [
        // The guard's read: no step of groups.md calls it.
        "organizations:DescribeOrganization",
        "iam:CreateGroup",
        "sso:CreatePermissionSet",
        "identitystore:CreateGroup",
        "organizations:ListAccounts",
    ] {
        assert!(all.contains(a), "{a} not made: {all:?}");
    }
}
