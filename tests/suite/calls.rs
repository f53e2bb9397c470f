//! Any AWS API by its own name (`aws SERVICE:Operation`), and the way back (offboarding):
//! calls in both protocols answered as maps, `plan` sending no change, intents journaled before
//! the send, no blind repeat after a kill or a lost answer, located `check` errors, the removal
//! actions, and the bundled offboarding runbook, each against moto on loopback (through the
//! fault proxy where a count or a fault is needed), checked through the SDK.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, block_on, sdk};
use serde_json::Value;

/// What the tests take away: a user with an assignment in two accounts.
pub(crate) struct Seeded {
    pub(crate) instance: String,
    pub(crate) store: String,
    pub(crate) user_id: String,
    pub(crate) ps: String,
    pub(crate) accounts: Vec<String>,
}

pub(crate) fn seed(endpoint: &str, user: &str) -> Seeded {
    block_on(async {
        let ctx = sdk(endpoint);
        let crate::common::Instance { arn: instance, store } = crate::common::instance(&ctx).await;
        let sso = ctx.sso_admin(None).await.expect("client");
        let made = runbook_plugins::Registry::builtin()
            .get("identitystore.ensure-user")
            .expect("action")
            .apply(
                &ctx,
                serde_json::json!({
                    "identity_store_id": store, "user_name": user, "display_name": "Leaving Admin",
                    "given_name": "Leaving", "family_name": "Admin", "email": "leaving@example.com",
                }),
            )
            .await
            .expect("user");
        let user_id = made["user_id"].as_str().expect("user id").to_string();
        let ps = sso
            .create_permission_set()
            .instance_arn(&instance)
            .name("AdministratorAccess")
            .session_duration("PT1H")
            .send()
            .await
            .expect("permission set")
            .permission_set()
            .and_then(|p| p.permission_set_arn())
            .expect("ps arn")
            .to_string();
        let accounts = vec!["111111111111".to_string(), "222222222222".to_string()];
        for a in &accounts {
            sso.create_account_assignment()
                .instance_arn(&instance)
                .permission_set_arn(&ps)
                .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
                .principal_id(&user_id)
                .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
                .target_id(a)
                .send()
                .await
                .expect("assignment");
        }
        Seeded {
            instance,
            store,
            user_id,
            ps,
            accounts,
        }
    })
}

/// Users in the store, and the assignments of the permission set in each seeded account.
pub(crate) fn left(endpoint: &str, s: &Seeded) -> (usize, usize) {
    block_on(async {
        let ctx = sdk(endpoint);
        let users = ctx
            .identitystore(None)
            .await
            .expect("client")
            .list_users()
            .identity_store_id(&s.store)
            .send()
            .await
            .expect("users")
            .users()
            .len();
        let sso = ctx.sso_admin(None).await.expect("client");
        let mut assignments = 0;
        for a in &s.accounts {
            assignments += sso
                .list_account_assignments()
                .instance_arn(&s.instance)
                .account_id(a)
                .permission_set_arn(&s.ps)
                .send()
                .await
                .expect("assignments")
                .account_assignments()
                .len();
        }
        (users, assignments)
    })
}

fn outputs(dir: &Path, step: &str) -> Value {
    let runs = crate::common::run_dirs(&dir.join(".runbook"));
    let state = std::fs::read_to_string(runs.first().expect("a run").join("state.json")).expect("state");
    let v: Value = serde_json::from_str(&state).expect("json");
    v["steps"][step]["outputs"].clone()
}

/// The binary, run in the test's directory against `endpoint`, as a child the proxy can kill.
pub(crate) fn spawn(t: &Test, endpoint: &str, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .env("RUNBOOK_LANDING_MS", "0")
        .args(args)
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("HOME", t.dir.path())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("RUNBOOK_STATE_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

const BOTH_PROTOCOLS: &str = r#"# Calls by name

```aws sts:GetCallerIdentity id=who
```

```aws iam:CreateUser id=mk
UserName = "alice"
Tags = [{ Key = "team", Value = "platform" }]
```

```aws iam:ListUsers id=users
```

```aws organizations:CreateOrganization id=org
FeatureSet = "ALL"
```

```aws organizations:ListAccounts id=accts
```

```rhai id=seen
#{
  account: steps.who.Account,
  user: steps.users.Users[0].UserName,
  created: steps.mk.User.UserName,
  first: steps.accts.Accounts[0].Id,
  management: steps.org.Organization.MasterAccountId,
}
```
"#;

#[test]
fn calls_by_name_in_both_protocols_answer_as_maps() {
    let moto = Moto::shared();
    let t = Test::new()
        .file("r.md", BOTH_PROTOCOLS)
        .aws(&moto.endpoint)
        .args(["run", "r.md"]);
    let out = t.run();
    out.code_is(0);
    let seen = outputs(t.dir.path(), "seen");
    assert_eq!(seen["user"], "alice", "{seen}");
    assert_eq!(seen["created"], "alice", "{seen}");
    assert_eq!(seen["first"], seen["account"], "{seen}");
    assert_eq!(seen["management"], seen["account"], "{seen}");
    // The query protocol's list arrived as a list, and the tag reached IAM.
    let tags = block_on(async {
        let iam = sdk(&moto.endpoint).iam().await.expect("client");
        iam.list_user_tags()
            .user_name("alice")
            .send()
            .await
            .expect("tags")
            .tags()
            .to_vec()
    });
    assert_eq!(tags.len(), 1);
    assert_eq!((tags[0].key(), tags[0].value()), ("team", "platform"));
    // Changes were journaled; reads were not.
    let journal = crate::common::transcripts(&t.path(".runbook"));
    for call in ["iam:CreateUser", "organizations:CreateOrganization"] {
        assert!(
            journal
                .lines()
                .any(|l| l.contains(r#""event":"intent""#) && l.contains(call)),
            "{call}: {journal}"
        );
    }
    assert!(
        !journal
            .lines()
            .any(|l| l.contains(r#""event":"intent""#) && l.contains("ListUsers"))
    );
}

#[test]
fn plan_sends_no_mutating_call() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let text = r#"# Plan

```aws iam:ListUsers id=users
```

```aws iam:CreateUser id=mk
UserName = "bob"
```

```aws identitystore:DeleteUser id=del
IdentityStoreId = "d-1234567890"
UserId = "u-1"
```

```aws iam:GetAccountSummary id=summary mutates=true
```
"#;
    let t = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["plan", "r.md"]);
    let out = t.run();
    out.code_is(0)
        .stdout_has("would call iam:CreateUser")
        .stdout_has("would call identitystore:DeleteUser");
    assert_eq!(
        proxy.calls("ListUsers"),
        1,
        "the read was made: {:?}",
        proxy.operations()
    );
    assert_eq!(proxy.mutating(), 0, "no change was sent: {:?}", proxy.operations());
    assert_eq!(
        proxy.calls("GetAccountSummary"),
        0,
        "mutates=true is a change: not sent"
    );
}

fn delete_assignment(s: &Seeded, account: &str) -> String {
    format!(
        "# Remove\n\n```aws sso-admin:DeleteAccountAssignment id=del\nInstanceArn = \"{}\"\nPermissionSetArn = \"{}\"\nPrincipalType = \"USER\"\nPrincipalId = \"{}\"\nTargetType = \"AWS_ACCOUNT\"\nTargetId = \"{account}\"\n```\n",
        s.instance, s.ps, s.user_id
    )
}

pub(crate) fn delete_user(s: &Seeded, attrs: &str) -> String {
    format!(
        "# Remove\n\n```aws identitystore:DeleteUser id=del{attrs}\nIdentityStoreId = \"{}\"\nUserId = \"{}\"\n```\n",
        s.store, s.user_id
    )
}

#[test]
fn delete_user_and_delete_account_assignment_are_journaled_before_they_are_sent() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let s = seed(&moto.endpoint, "leaving.admin");
    for (text, call) in [
        (
            delete_assignment(&s, &s.accounts[0]),
            "sso-admin:DeleteAccountAssignment",
        ),
        (delete_user(&s, ""), "identitystore:DeleteUser"),
    ] {
        let t = Test::new().file("r.md", &text);
        let mut child = spawn(&t, &proxy.endpoint, &["run", "r.md"]);
        // Killed when the call reaches the proxy, before it is forwarded: the intent must
        // already be on disk.
        proxy.arm_kill_before_call(child.id(), 1);
        let status = child.wait().expect("wait");
        assert!(proxy.killed(), "{call}: the kill point was reached: {status:?}");
        proxy.disarm_kill();
        let journal = crate::common::transcripts(&t.path(".runbook"));
        assert!(
            journal
                .lines()
                .any(|l| l.contains(r#""event":"intent""#) && l.contains(call)),
            "{call}: no intent on disk before the send: {journal}"
        );
    }
    assert_eq!(left(&moto.endpoint, &s), (1, 2), "neither call reached AWS");
}

#[test]
fn a_kill_between_intent_and_answer_does_not_repeat_the_call_blindly() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let s = seed(&moto.endpoint, "leaving.admin");
    let t = Test::new().file("r.md", delete_user(&s, "")).aws(&proxy.endpoint);
    let mut child = spawn(&t, &proxy.endpoint, &["run", "r.md"]);
    // AWS deletes the user; the answer never reaches the run.
    proxy.arm_kill_after(child.id(), "DeleteUser");
    let status = child.wait().expect("wait");
    assert!(proxy.killed(), "the kill point was reached: {status:?}");
    proxy.disarm_kill();
    assert_eq!(proxy.calls("DeleteUser"), 1);
    assert_eq!(left(&moto.endpoint, &s).0, 0, "AWS acted");
    // The re-run stops and asks; it does not send the call again.
    let again = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    again.code_is(3).stderr_has("outcome").stderr_has("resend = true");
    assert_eq!(proxy.calls("DeleteUser"), 1, "not repeated blindly");
    // A person who checked answers: it is sent again (and AWS says the user is gone).
    std::fs::write(t.path("a.toml"), "[steps.del]\nresend = true\n").expect("answers");
    let resent = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "a.toml".into()]);
    assert_eq!(proxy.calls("DeleteUser"), 2, "{resent:?}");
    // (moto answers a second DeleteUser with success; AWS would say ResourceNotFoundException.)
    resent.code_is(0);
}

#[test]
fn a_lost_answer_is_an_unknown_outcome_and_on_unknown_retry_sends_again() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("DeleteUser".into()),
            ..Rules::default()
        },
    );
    let s = seed(&moto.endpoint, "leaving.admin");
    let t = Test::new()
        .file("r.md", delete_user(&s, ""))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    let out = t.run();
    out.code_is(1).stderr_has("outcome is unknown");
    assert_eq!(
        proxy.calls("DeleteUser"),
        1,
        "a 5xx after the send is not retried blindly"
    );
    assert_eq!(t.run().code, 3, "the re-run stops and asks");
    assert_eq!(proxy.calls("DeleteUser"), 1);
    // The author says a second send is harmless.
    std::fs::write(t.path("r.md"), delete_user(&s, " on-unknown=retry")).expect("write");
    let retried = t.run();
    assert_eq!(proxy.calls("DeleteUser"), 2, "{retried:?}");
}

#[test]
fn a_wrong_member_name_is_a_located_check_error_with_a_suggestion() {
    let text = "# Remove\n\n```aws identitystore:DeleteUser id=del\nIdentityStoreId = \"d-1\"\nUserID = \"u\"\n```\n\n```aws identitystore:DeleteUsers\n```\n\n```aws sso-admin:ListAccountAssignmentsForPrincipal id=l\nInstanceArn = \"arn\"\nPrincipalId = \"u\"\nPrincipalType = \"USERS\"\nMaxResults = \"ten\"\nFilter = { AccountId = 1 }\n```\n\n```rhai\nsteps.l.AccountAssignment\n```\n\n```aws organizations:ListAccounts id=huge\nMaxResults = 100000\n```\n\n```aws iam:CreateUser id=long\nUserName = '${\"x\"}-this-name-is-far-longer-than-the-sixty-four-characters-iam-allows'\nPath = \"/this/path/is/fine/\"\nTags = []\n```\n\n```aws iam:CreateUser id=toolong\nUserName = \"a-user-name-that-is-far-longer-than-the-sixty-four-characters-iam-allows\"\n```\n";
    let out = Test::new().file("r.md", text).args(["check", "r.md"]).run();
    out.code_is(2);
    let e = &out.stderr;
    for want in [
        "r.md:5:1: error: `identitystore:DeleteUser` has no request member `UserID`",
        "= help: did you mean `UserId`?",
        "r.md:3:4: error: `identitystore:DeleteUser` needs request member `UserId`",
        "r.md:8:8: error: identitystore has no operation `DeleteUsers`",
        "= help: did you mean `DeleteUser`?",
        "r.md:14:17: error: `PrincipalType` must be one of USER, GROUP, not `USERS`",
        "r.md:15:14: error: `MaxResults` must be integer, not a string",
        "r.md:16:24: error: `Filter.AccountId` must be string, not an integer",
        "error: step `l` has no output `AccountAssignment`",
        "r.md:24:14: error: `MaxResults` must be from 1 to 20, not 100000",
        "r.md:34:12: error: `UserName` must be from 1 to 64 characters long, not 72",
    ] {
        assert!(e.contains(want), "missing `{want}` in:\n{e}");
    }
    // A length only known at run time is checked then, before the call is sent.
    assert!(!e.contains("r.md:28:"), "{e}");
}

#[test]
fn removals_are_idempotent_and_a_permission_set_still_assigned_is_refused() {
    let moto = Moto::start();
    // Through the proxy, which lists the accounts an assignment provisioned the set to, as AWS.
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let s = seed(&proxy.endpoint, "leaving.admin");
    let remove_ps = format!(
        "# PS\n\n```aws sso-admin.remove-permission-set id=ps\ninstance_arn = \"{}\"\nname = \"AdministratorAccess\"\n```\n",
        s.instance
    );
    let t = Test::new()
        .file("ps.md", &remove_ps)
        .aws(&proxy.endpoint)
        .args(["run", "ps.md"]);
    let refused = t.run();
    refused.code_is(1);
    assert!(
        refused
            .stderr
            .contains("still assigned in accounts 111111111111, 222222222222"),
        "{refused:?}"
    );
    let all = format!(
        "# All\n\n```aws sso-admin.remove-assignment id=a\ninstance_arn = \"{i}\"\npermission_set_arn = \"{p}\"\nprincipal_id = \"{u}\"\naccount_ids = [\"111111111111\", \"222222222222\", \"333333333333\"]\n```\n\n```aws identitystore.remove-user id=u\nidentity_store_id = \"{st}\"\nuser_name = \"leaving.admin\"\n```\n\n```aws sso-admin.remove-permission-set id=ps\ninstance_arn = \"{i}\"\nname = \"AdministratorAccess\"\n```\n",
        i = s.instance,
        p = s.ps,
        u = s.user_id,
        st = s.store
    );
    let t = Test::new().file("all.md", &all).aws(&proxy.endpoint);
    let out = t.run_args(&["run".into(), "all.md".into()]);
    out.code_is(0);
    assert_eq!(outputs(t.dir.path(), "a")["removed"], 2);
    assert_eq!(outputs(t.dir.path(), "a")["assignments"][0]["status"], "absent");
    assert_eq!(outputs(t.dir.path(), "u")["removed"], true);
    assert_eq!(outputs(t.dir.path(), "ps")["removed"], true);
    assert_eq!(left(&moto.endpoint, &s), (0, 0));
    // Everything already absent: success, nothing removed.
    let again = t.run_args(&["run".into(), "all.md".into(), "--restart".into()]);
    again.code_is(0);
    assert_eq!(outputs(t.dir.path(), "a")["removed"], 0);
    assert_eq!(outputs(t.dir.path(), "u")["removed"], false);
    assert_eq!(outputs(t.dir.path(), "ps")["removed"], false);
}

#[test]
fn the_offboarding_runbook_leaves_the_user_and_its_assignments_gone() {
    let moto = Moto::shared();
    let s = seed(&moto.endpoint, "leaving.admin");
    let repo = crate::common::repo();
    let t = Test::new().aws(&moto.endpoint);
    let out = t.run_args(&[
        "run".into(),
        repo.join("runbooks/offboard-admin.md").display().to_string(),
        "--answers".into(),
        repo.join("runbooks/rehearsal/offboard-admin.toml")
            .display()
            .to_string(),
    ]);
    out.code_is(0).stdout_has("removed_assignments=2");
    assert_eq!(
        left(&moto.endpoint, &s),
        (0, 0),
        "the user and its assignments are gone"
    );
}

/// A crash after the transcript recorded a step's result but before the state file was saved:
/// the transcript is the record, so the resume takes the step as done with the outputs it
/// finished with and never sends the call again (found by an attacker: the state said
/// `running` and the re-run sent CreateUser twice).
#[test]
fn a_result_in_the_transcript_but_not_the_state_file_is_not_sent_again() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let s = seed(&moto.endpoint, "leaving.admin");
    let text = format!(
        "# Add\n\n```aws identitystore:CreateUser id=cu\nIdentityStoreId = \"{}\"\nUserName = \"crash.window\"\nDisplayName = \"C W\"\nName = {{ GivenName = \"C\", FamilyName = \"W\" }}\n```\n\n```rhai id=after\n#{{ id: steps.cu.UserId }}\n```\n",
        s.store
    );
    let t = Test::new().file("r.md", &text).aws(&proxy.endpoint);
    let first = t.run_args(&["run".into(), "r.md".into()]);
    first.code_is(0);
    assert_eq!(proxy.calls("CreateUser"), 1);
    let user_id = outputs(t.dir.path(), "cu")["UserId"].clone();
    assert!(user_id.is_string(), "{user_id}");
    // The crash window: state.json as it was before the step's end was saved.
    let run = crate::common::run_dirs(&t.path(".runbook")).remove(0);
    let state_path = run.join("state.json");
    let mut state: Value = serde_json::from_str(&std::fs::read_to_string(&state_path).expect("state")).expect("json");
    state["steps"]["cu"]["status"] = "running".into();
    state["steps"]["cu"]["outputs"] = Value::Null;
    state["steps"]["cu"]["finished"] = Value::Null;
    state["steps"].as_object_mut().expect("steps").remove("after");
    state["outcome"] = Value::Null;
    std::fs::write(&state_path, state.to_string()).expect("write state");
    let again = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    again.code_is(0);
    assert_eq!(proxy.calls("CreateUser"), 1, "not sent again: {again:?}");
    assert!(
        again.stdout.contains("finished before the last run stopped"),
        "{again:?}"
    );
    assert_eq!(outputs(t.dir.path(), "cu")["UserId"], user_id, "its outputs are back");
    assert_eq!(outputs(t.dir.path(), "after")["id"], user_id, "later steps read them");
}

/// An answer that carries credentials is secret: stored masked, never printed; and since it was
/// never kept, a re-run does not send the call again for it (a second CreateAccessKey is a second
/// key) unless told to.
#[test]
fn credentials_in_an_answer_are_secret_and_not_made_twice() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let text = "# Key\n\n```aws iam:CreateUser id=u\nUserName = \"deploy\"\n```\n\n```aws iam:CreateAccessKey id=k\nUserName = \"deploy\"\n```\n";
    let t = Test::new().file("r.md", text).aws(&proxy.endpoint);
    let first = t.run_args(&["run".into(), "r.md".into()]);
    first.code_is(0);
    assert_eq!(proxy.calls("CreateAccessKey"), 1);
    let key = outputs(t.dir.path(), "k");
    assert!(
        key.to_string().contains("********") && !key.to_string().chars().any(|c| c.is_ascii_alphabetic()),
        "stored masked, keys and values: {key}"
    );
    let written = t.written();
    for line in first.all().lines().chain(written.lines()) {
        if let Some(at) = line.find("SecretAccessKey") {
            let rest = &line[at..];
            assert!(
                rest.contains("********") || !rest.chars().any(|c| c.is_ascii_alphanumeric() && c != 'S'),
                "a secret key in clear: {line}"
            );
        }
    }
    let again = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    again.code_is(3).stderr_has("resend = true");
    assert_eq!(proxy.calls("CreateAccessKey"), 1, "no second key");
    std::fs::write(t.path("a.toml"), "[steps.k]\nresend = true\n").expect("answers");
    let resent = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "a.toml".into()]);
    resent.code_is(0);
    assert_eq!(proxy.calls("CreateAccessKey"), 2, "sent when a person said so");
}

#[test]
fn an_answer_a_step_cannot_take_is_refused_before_anything_is_sent() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("DeleteUser".into()),
            ..Rules::default()
        },
    );
    let s = seed(&moto.endpoint, "leaving.admin");
    let t = Test::new().file("r.md", delete_user(&s, "")).aws(&proxy.endpoint);
    assert_eq!(t.run_args(&["run".into(), "r.md".into()]).code, 1);
    let with = |answers: &str| {
        std::fs::write(t.path("a.toml"), answers).expect("answers");
        t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "a.toml".into()])
    };
    // "yes" is not yes: it used to read as no answer, and the run asked for `resend = true`.
    let yes = with("[steps.del]\nresend = \"yes\"\n");
    yes.code_is(2).stderr_has("`resend` must be true or false");
    // A manual step's answer on a call is a mistake, named with what the step takes.
    let confirm = with("[steps.del]\nconfirm = true\n");
    confirm.code_is(2).stderr_has("takes only `resend`");
    assert_eq!(proxy.calls("DeleteUser"), 1, "nothing was sent");
}

/// A read has no unknown outcome to send again: `resend` on it is a mistake, said before the run.
#[test]
fn resend_on_a_read_call_is_refused() {
    let moto = Moto::shared();
    let t = Test::new()
        .file("r.md", "# Read\n\n```aws organizations:ListRoots id=roots\n```\n")
        .file("a.toml", "[steps.roots]\nresend = true\n")
        .aws(&moto.endpoint);
    t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "a.toml".into()])
        .code_is(2)
        .stderr_has("takes no answers (`resend` given)");
}

#[test]
fn a_step_timeout_bounds_the_call_itself_and_the_rerun_asks() {
    let moto = Moto::start();
    // AWS deletes the user; its answer is held for 30 s, well inside the attempt timeout.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            slow_answers: 1,
            slow_by: std::time::Duration::from_secs(30),
            slow_op: Some("DeleteUser".into()),
            ..Rules::default()
        },
    );
    let s = seed(&moto.endpoint, "leaving.admin");
    let t = Test::new()
        .file("r.md", delete_user(&s, " timeout=2s"))
        .aws(&proxy.endpoint);
    let out = t.run_args(&["run".into(), "r.md".into()]);
    assert_eq!(out.code, 1, "the step gave up at its timeout: {out:?}");
    assert!(out.all().contains("timeout=2s ran out"), "{out:?}");
    assert_eq!(left(&moto.endpoint, &s).0, 0, "AWS acted");
    let again = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    assert_eq!(again.code, 3, "the call in flight is an unknown outcome: {again:?}");
    assert_eq!(proxy.calls("DeleteUser"), 1, "not sent again");
}
