//! Group memberships exported to SSM Automation (issue 30): the exported document converges as
//! the action does.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test};
use crate::ssm_export::{node_tools, simulate};

/// `identitystore.ensure-group-membership` exported: the simulation makes the membership once,
/// a second simulation changes nothing, and one deleted in between is made again.
#[test]
fn a_group_membership_exported_is_made_once_and_again_after_it_was_removed() {
    let tools = node_tools();
    let text = "# Team\n\n```aws sso-admin.find-instance id=ic\n```\n\n```aws identitystore.ensure-user id=bob\nidentity_store_id = \"${steps.ic.identity_store_id}\"\nuser_name = \"bob\"\ndisplay_name = \"Bob\"\ngiven_name = \"Bob\"\nfamily_name = \"Ops\"\nemail = \"bob@example.com\"\n```\n\n```aws identitystore.ensure-group-membership id=member\nidentity_store_id = \"${steps.ic.identity_store_id}\"\ngroup = \"Operators\"\nuser_name = \"bob\"\n```\n";
    let t = Test::new().file("team.md", text);
    let doc = t.path("team.ssm.yaml");
    t.run_args(&[
        "export".into(),
        "--ssm".into(),
        "team.md".into(),
        "-o".into(),
        doc.display().to_string(),
    ])
    .code_is(0);
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let ctx = crate::common::sdk(&moto.endpoint);
    let (store, group) = crate::common::block_on(async {
        let store = ctx
            .sso_admin(None)
            .await
            .expect("client")
            .list_instances()
            .send()
            .await
            .expect("instances")
            .instances()[0]
            .identity_store_id()
            .expect("store")
            .to_string();
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
    let text = "# Team\n\n```aws sso-admin.find-instance id=ic\n```\n\n```aws identitystore.ensure-user id=bob\nidentity_store_id = \"${steps.ic.identity_store_id}\"\nuser_name = \"bob\"\ndisplay_name = \"Bob\"\ngiven_name = \"Bob\"\nfamily_name = \"Ops\"\nemail = \"bob@example.com\"\n```\n";
    let t = Test::new().file("team.md", text);
    let doc = t.path("team.ssm.yaml");
    t.run_args(&[
        "export".into(),
        "--ssm".into(),
        "team.md".into(),
        "-o".into(),
        doc.display().to_string(),
    ])
    .code_is(0);
    let moto = Moto::start();
    let ctx = crate::common::sdk(&moto.endpoint);
    crate::common::block_on(async {
        let store = ctx
            .sso_admin(None)
            .await
            .expect("client")
            .list_instances()
            .send()
            .await
            .expect("instances")
            .instances()[0]
            .identity_store_id()
            .expect("store")
            .to_string();
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
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_SESSION_TOKEN", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
    ];
    let docs = doc.display().to_string();
    let (code, stdout, stderr) = crate::ssm_export::node(&tools, &["simulate.js", &docs, "{}"], &env);
    assert_ne!(code, 0, "the export took someone else's user:\n{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("mallory@example.com"),
        "the refusal does not say whose it is:\n{stdout}\n{stderr}"
    );
}
