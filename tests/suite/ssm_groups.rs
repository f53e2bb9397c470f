//! Exported to SSM Automation, the identity actions converge as the actions do (issue 30): group
//! memberships, whose user it is, a permission set brought to exactly what is asked.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::ssm::{node_tools, simulate, simulation};
use crate::common::{Moto, Test};

/// `identitystore.ensure-group-membership` exported: the simulation makes the membership once,
/// a second simulation changes nothing, and one deleted in between is made again.
#[test]
fn a_group_membership_exported_is_made_once_and_again_after_it_was_removed() {
    let tools = node_tools();
    let text = r#"# Team

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=bob
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "bob"
display_name = "Bob"
given_name = "Bob"
family_name = "Ops"
email = "bob@example.com"
```

```aws identitystore.ensure-group-membership id=member
identity_store_id = "${steps.ic.identity_store_id}"
group = "Operators"
user_name = "bob"
```
"#;
    let t = Test::new().file("team.md", text);
    let doc = exported(&t, "team.md", "team.ssm.yaml");
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let ctx = crate::common::sdk(&moto.endpoint);
    let (store, group) = crate::common::block_on(async {
        let store = crate::common::instance(&ctx).await.store;
        let group = ctx
            .identitystore(None)
            .await
            .expect("client")
            .create_group()
            .identity_store_id(&store)
            .display_name("Operators")
            .send()
            .await
            .expect("group")
            .group_id()
            .to_string();
        (store, group)
    });
    let members = || -> Vec<String> {
        crate::common::block_on(async {
            ctx.identitystore(None)
                .await
                .expect("client")
                .list_group_memberships()
                .identity_store_id(&store)
                .group_id(&group)
                .send()
                .await
                .expect("list")
                .group_memberships()
                .iter()
                .filter_map(|m| m.membership_id().map(String::from))
                .collect()
        })
    };
    simulate(&tools, &doc, &proxy.endpoint, &serde_json::json!({}));
    assert_eq!(members().len(), 1);
    let made = proxy.mutating();
    simulate(&tools, &doc, &proxy.endpoint, &serde_json::json!({}));
    assert_eq!(
        proxy.mutating(),
        made,
        "the second run changed something: {:?}",
        proxy.operations()
    );
    let id = members().remove(0);
    crate::common::block_on(async {
        ctx.identitystore(None)
            .await
            .expect("client")
            .delete_group_membership()
            .identity_store_id(&store)
            .membership_id(id)
            .send()
            .await
            .expect("delete")
    });
    simulate(&tools, &doc, &proxy.endpoint, &serde_json::json!({}));
    assert_eq!(members().len(), 1, "the membership was not made again");
}

/// The exported `ensure-user` refuses a user of the same name with another person's email, as
/// the action does (the export took it, and the membership and the access after it went to that
/// user).
#[test]
fn an_exported_ensure_user_refuses_someone_elses_user_of_the_same_name() {
    let tools = node_tools();
    let text = r#"# Team

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=bob
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "bob"
display_name = "Bob"
given_name = "Bob"
family_name = "Ops"
email = "bob@example.com"
```
"#;
    let t = Test::new().file("team.md", text);
    let doc = exported(&t, "team.md", "team.ssm.yaml");
    let moto = Moto::start();
    let ctx = crate::common::sdk(&moto.endpoint);
    crate::common::block_on(async {
        let store = crate::common::instance(&ctx).await.store;
        ctx.identitystore(None)
            .await
            .expect("client")
            .create_user()
            .identity_store_id(&store)
            .user_name("bob")
            .display_name("Mallory")
            .name(
                aws_sdk_identitystore::types::Name::builder()
                    .given_name("Mallory")
                    .family_name("M")
                    .build(),
            )
            .emails(
                aws_sdk_identitystore::types::Email::builder()
                    .value("mallory@example.com")
                    .primary(true)
                    .build(),
            )
            .send()
            .await
            .expect("user")
    });
    let (code, stdout, stderr) = simulation(&tools, &doc, &moto.endpoint, &serde_json::json!({}));
    assert_ne!(
        code, 0,
        r#"the export took someone else's user:
{stdout}
{stderr}"#
    );
    assert!(
        format!("{stdout}{stderr}").contains("mallory@example.com"),
        r#"the refusal does not say whose it is:
{stdout}
{stderr}"#
    );
}

/// The exported `ensure-permission-set` brings a set to exactly what is asked, as the action
/// does: a managed policy attached out of band and a customer managed policy reference are
/// detached (the export only attached what was missing).
#[test]
fn an_exported_permission_set_is_brought_to_exactly_what_is_asked() {
    let tools = node_tools();
    let text = r#"# Set

```aws sso-admin.find-instance id=ic
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${steps.ic.instance_arn}"
name = "ReadOnly"
session_duration = "PT1H"
managed_policies = ["ReadOnlyAccess"]
```
"#;
    let t = Test::new().file("set.md", text);
    let doc = exported(&t, "set.md", "set.ssm.yaml");
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    simulate(&tools, &doc, &proxy.endpoint, &serde_json::json!({}));
    let ctx = crate::common::sdk(&moto.endpoint);
    let state = || -> (Vec<String>, usize) {
        crate::common::block_on(async {
            let sso = ctx.sso_admin(None).await.expect("client");
            let instance = sso.list_instances().send().await.expect("instances").instances()[0]
                .instance_arn()
                .expect("arn")
                .to_string();
            let ps = sso
                .list_permission_sets()
                .instance_arn(&instance)
                .send()
                .await
                .expect("sets")
                .permission_sets()[0]
                .clone();
            let mut managed: Vec<String> = sso
                .list_managed_policies_in_permission_set()
                .instance_arn(&instance)
                .permission_set_arn(&ps)
                .send()
                .await
                .expect("managed")
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.name().map(String::from))
                .collect();
            managed.sort();
            let refs = sso
                .list_customer_managed_policy_references_in_permission_set()
                .instance_arn(&instance)
                .permission_set_arn(&ps)
                .send()
                .await
                .expect("references")
                .customer_managed_policy_references()
                .len();
            (managed, refs)
        })
    };
    assert_eq!(state(), (vec!["ReadOnlyAccess".to_string()], 0));
    crate::common::block_on(async {
        let sso = ctx.sso_admin(None).await.expect("client");
        let instance = sso.list_instances().send().await.expect("instances").instances()[0]
            .instance_arn()
            .expect("arn")
            .to_string();
        let ps = sso
            .list_permission_sets()
            .instance_arn(&instance)
            .send()
            .await
            .expect("sets")
            .permission_sets()[0]
            .clone();
        sso.attach_managed_policy_to_permission_set()
            .instance_arn(&instance)
            .permission_set_arn(&ps)
            .managed_policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await
            .expect("attach");
        sso.attach_customer_managed_policy_reference_to_permission_set()
            .instance_arn(&instance)
            .permission_set_arn(&ps)
            .customer_managed_policy_reference(
                aws_sdk_ssoadmin::types::CustomerManagedPolicyReference::builder()
                    .name("AdminEverything")
                    .build()
                    .expect("reference"),
            )
            .send()
            .await
            .expect("reference");
    });
    assert_eq!(state().0.len(), 2);
    simulate(&tools, &doc, &proxy.endpoint, &serde_json::json!({}));
    assert_eq!(
        state(),
        (vec!["ReadOnlyAccess".to_string()], 0),
        "the export left access it does not ask for"
    );
}

/// Exports `runbook` of `t` to `out` in it, which must succeed; the document's path.
fn exported(t: &Test, runbook: &str, out: &str) -> std::path::PathBuf {
    let doc = t.path(out);
    t.run_args(&[
        "export".into(),
        "--ssm".into(),
        runbook.into(),
        "-o".into(),
        doc.display().to_string(),
    ])
    .code_is(0);
    doc
}
