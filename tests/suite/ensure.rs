//! Ensure means the whole state (issue #30, the plugin half): a permission set is brought to
//! exactly the policies asked (what is not listed is detached, and `plan` says so), a user of the
//! step's name with another person's email is refused unless the step adopts it, and an edited
//! attribute reaches the step's own user. Through the binary, against the rehearsal's emulator
//! (moto behind the layer that plays AWS).

use crate::common::emulator::Emulator;
use crate::common::{Output, Test, block_on, sdk};

const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

/// A runbook of one permission set step, with these extra lines in its body.
fn set_runbook(body: &str) -> String {
    format!(
        r#"# Set

```aws sso-admin.find-instance id=ic
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${{steps.ic.instance_arn}}"
name = "Operators"
session_duration = "PT1H"
{body}
```
"#
    )
}

fn run(t: &Test, file: &str, extra: &[&str]) -> Output {
    let mut a = vec!["run".to_string(), file.to_string()];
    a.extend(extra.iter().map(|s| s.to_string()));
    t.run_args(&a)
}

fn line<'a>(out: &'a Output, step: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.contains(&format!("✓ {step} ")))
        .unwrap_or("")
}

/// (managed policy ARNs, inline policy) of the set named Operators.
fn set_state(endpoint: &str) -> (Vec<String>, String) {
    block_on(async {
        let sso = sdk(endpoint).sso_admin(None).await.expect("client");
        let arn = sso.list_instances().send().await.expect("instances").instances()[0]
            .instance_arn()
            .expect("arn")
            .to_string();
        for ps in sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets")
            .permission_sets()
        {
            let d = sso
                .describe_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("describe");
            if d.permission_set().and_then(|p| p.name()) != Some("Operators") {
                continue;
            }
            let mut policies: Vec<String> = sso
                .list_managed_policies_in_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("policies")
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.arn().map(String::from))
                .collect();
            policies.sort();
            let inline = sso
                .get_inline_policy_for_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("inline")
                .inline_policy()
                .unwrap_or_default()
                .to_string();
            return (policies, inline);
        }
        panic!("no permission set Operators");
    })
}

#[test]
fn a_permission_set_is_brought_to_exactly_the_policies_asked() {
    let emu = Emulator::start(&["--with-identity-center"]);
    let t = Test::new()
        .aws(&emu.endpoint)
        .file("r.md", set_runbook("managed_policies = [\"AdministratorAccess\"]"));
    run(&t, "r.md", &[]).code_is(0);
    assert_eq!(set_state(&emu.endpoint).0, vec![ADMIN.to_string()]);

    // Asked for ReadOnlyAccess instead: the plan names the detach, the run does it.
    let t = t.file("r.md", set_runbook("managed_policies = [\"ReadOnlyAccess\"]"));
    let plan = t.run_args(&["plan".into(), "r.md".into()]);
    plan.code_is(0);
    assert!(
        plan.stdout
            .contains(&format!("detach managed policy {ADMIN} (not listed)")),
        "{plan:?}"
    );
    let out = run(&t, "r.md", &[]);
    out.code_is(0);
    assert!(
        line(&out, "ps").contains("provision_request_id="),
        "provisioned again: {out:?}"
    );
    assert_eq!(set_state(&emu.endpoint).0, vec![READ_ONLY.to_string()], "{out:?}");

    // An inline policy: put when given, deleted when no longer given, and one added by hand
    // is deleted by the next new run.
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
    let with_inline = set_runbook(&format!(
        "managed_policies = [\"ReadOnlyAccess\"]\ninline_policy = '{doc}'"
    ));
    let t = t.file("r.md", with_inline);
    run(&t, "r.md", &[]).code_is(0);
    let inline = set_state(&emu.endpoint).1;
    assert!(inline.contains("s3:*"), "{inline}");
    let t = t.file("r.md", set_runbook("managed_policies = [\"ReadOnlyAccess\"]"));
    let plan = t.run_args(&["plan".into(), "r.md".into()]);
    plan.stdout_has("delete the inline policy (none is given)");
    run(&t, "r.md", &[]).code_is(0);
    assert_eq!(set_state(&emu.endpoint).1, "", "deleted");

    // Drift made by hand (an extra policy, an inline one) is undone by a new run.
    block_on(async {
        let sso = sdk(&emu.endpoint).sso_admin(None).await.expect("client");
        let arn = sso.list_instances().send().await.expect("instances").instances()[0]
            .instance_arn()
            .expect("arn")
            .to_string();
        let sets = sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets");
        for ps in sets.permission_sets() {
            sso.attach_managed_policy_to_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .managed_policy_arn(ADMIN)
                .send()
                .await
                .expect("attach");
            sso.put_inline_policy_to_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .inline_policy(doc)
                .send()
                .await
                .expect("put");
        }
    });
    let out = run(&t, "r.md", &["--restart"]);
    out.code_is(0);
    assert!(
        out.stdout
            .contains("sso-admin:DeleteInlinePolicyFromPermissionSet Operators"),
        "{out:?}"
    );
    assert_eq!(
        set_state(&emu.endpoint),
        (vec![READ_ONLY.to_string()], String::new()),
        "{out:?}"
    );
}

fn user_runbook(email: &str, display: &str, adopt: Option<&str>) -> String {
    format!(
        r#"# User

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=user
identity_store_id = "${{steps.ic.identity_store_id}}"
user_name = "cloud.admin"
display_name = "{display}"
given_name = "Ada"
family_name = "Lovelace"
email = "{email}"
{}```
"#,
        adopt.map(|a| format!("adopt = [\"{a}\"]\n")).unwrap_or_default()
    )
}

/// (display name, emails) of the user cloud.admin.
fn user_state(endpoint: &str) -> (String, Vec<String>) {
    block_on(async {
        let ctx = sdk(endpoint);
        let store = crate::common::instance(&ctx).await.store;
        let id = runbook_plugins::aws::identitystore::user_id(&ctx, None, &store, "cloud.admin")
            .await
            .expect("get")
            .expect("user");
        let u = ctx
            .identitystore(None)
            .await
            .expect("client")
            .describe_user()
            .identity_store_id(&store)
            .user_id(&id)
            .send()
            .await
            .expect("describe");
        (
            u.display_name().unwrap_or_default().to_string(),
            u.emails().iter().filter_map(|e| e.value().map(String::from)).collect(),
        )
    })
}

#[test]
fn a_user_of_the_same_name_with_another_email_is_refused_unless_adopted() {
    let emu = Emulator::start(&["--with-identity-center"]);
    // Mallory's user holds the name first.
    let t = Test::new()
        .aws(&emu.endpoint)
        .file("m.md", user_runbook("mallory@example.com", "Mallory", None));
    run(&t, "m.md", &[]).code_is(0);

    let t = t.file("r.md", user_runbook("ada@example.com", "Ada Lovelace", None));
    let plan = t.run_args(&["plan".into(), "r.md".into()]);
    assert!(plan.all().contains("it is not this step's user"), "{plan:?}");
    let out = run(&t, "r.md", &[]);
    out.code_is(1)
        .stderr_has("the identity store already has a user `cloud.admin`")
        .stderr_has("with email mallory@example.com, not ada@example.com")
        .stderr_has("adopt = [\"mallory@example.com\"]");
    assert_eq!(
        user_state(&emu.endpoint).1,
        vec!["mallory@example.com".to_string()],
        "untouched"
    );

    // Told to adopt it, the step makes it its own: the email too.
    let t = t.file(
        "r.md",
        user_runbook("ada@example.com", "Ada Lovelace", Some("mallory@example.com")),
    );
    let out = run(&t, "r.md", &[]);
    out.code_is(0);
    assert!(line(&out, "user").contains("created=false"), "{out:?}");
    assert_eq!(
        user_state(&emu.endpoint),
        ("Ada Lovelace".to_string(), vec!["ada@example.com".to_string()])
    );
}

#[test]
fn an_edited_email_and_display_name_reach_the_steps_own_user() {
    let emu = Emulator::start(&["--with-identity-center"]);
    let t = Test::new()
        .aws(&emu.endpoint)
        .file("r.md", user_runbook("ada@example.com", "Ada", None));
    let first = run(&t, "r.md", &[]);
    first.code_is(0);
    assert!(line(&first, "user").contains("created=true"), "{first:?}");

    // An edited display name reaches the step's user (its email says it is the step's).
    let t = t.file("r.md", user_runbook("ada@example.com", "Ada Lovelace", None));
    let plan = t.run_args(&["plan".into(), "r.md".into()]);
    plan.code_is(0);
    assert!(plan.stdout.contains("display_name to Ada Lovelace"), "{plan:?}");
    let out = run(&t, "r.md", &[]);
    out.code_is(0);
    assert!(line(&out, "user").contains("created=false"), "{out:?}");
    assert_eq!(
        user_state(&emu.endpoint),
        ("Ada Lovelace".to_string(), vec!["ada@example.com".to_string()]),
        "{out:?}"
    );

    // An edited email is a claim the step cannot check by itself: the old address is adopted.
    let t = t.file("r.md", user_runbook("ada.lovelace@example.com", "Ada Lovelace", None));
    run(&t, "r.md", &[]).code_is(1).stderr_has("not this step's user");
    let t = t.file(
        "r.md",
        user_runbook("ada.lovelace@example.com", "Ada Lovelace", Some("ada@example.com")),
    );
    let plan = t.run_args(&["plan".into(), "r.md".into()]);
    assert!(plan.stdout.contains("email to ada.lovelace@example.com"), "{plan:?}");
    let out = run(&t, "r.md", &[]);
    out.code_is(0);
    assert_eq!(
        user_state(&emu.endpoint),
        ("Ada Lovelace".to_string(), vec!["ada.lovelace@example.com".to_string()]),
        "{out:?}"
    );
}

/// Whose is the organization? From a member account, DescribeOrganization shows the management
/// account's organization: `ensure-organization` must not take it as "already there".
#[test]
fn an_organization_of_another_account_is_refused_from_a_member_account() {
    let emu = Emulator::start(&["--with-organization"]);
    let t = emu.as_member("acme-team-dev").file(
        "r.md",
        r#"# Org

```aws organizations.ensure-organization id=org
```
"#,
    );
    let out = run(&t, "r.md", &[]);
    out.code_is(1)
        .stderr_has("is a member of organization")
        .stderr_has("whose management account is 123456789012")
        .stdout_lacks("✓ org");
}
