//! The rehearsal's emulator plays AWS's rules that moto leaves out (issues #31 and #27: tests see
//! what AWS does), checked through the SDK against `runbook emulator`.

use crate::common::emulator::Emulator;
use crate::common::{block_on, sdk};

/// The emulator plays AWS's rules where moto does not: one permission set per name in an
/// instance, names and emails within AWS's lengths, an account email used once, one Identity
/// Center instance in one region, the Support API refused before activation.
#[test]
fn the_emulator_plays_aws_rules_that_moto_leaves_out() {
    use aws_sdk_ssoadmin::error::ProvideErrorMetadata;
    let emu = Emulator::start(&[
        "--with-identity-center",
        "--not-activated",
        "--support-plan",
        "business",
    ]);
    block_on(async {
        let ctx = sdk(&emu.endpoint);
        let crate::common::Instance { arn, store } = crate::common::instance(&ctx).await;
        let sso = ctx.sso_admin(None).await.expect("client");
        let other = ctx.sso_admin(Some("eu-west-1")).await.expect("client");
        assert!(
            other
                .list_instances()
                .send()
                .await
                .expect("instances")
                .instances()
                .is_empty(),
            "one instance, in one region"
        );

        let create = |name: &str| sso.create_permission_set().instance_arn(&arn).name(name).send();
        create("Operators").await.expect("first");
        let twice = create("Operators").await.expect_err("a second set of one name");
        assert_eq!(twice.code(), Some("ConflictException"), "{twice:?}");
        let long = create(&"x".repeat(33)).await.expect_err("33 characters");
        assert_eq!(long.code(), Some("ValidationException"), "{long:?}");

        let ids = ctx.identitystore(None).await.expect("client");
        let user = |name: String| {
            ids.create_user()
                .identity_store_id(&store)
                .user_name(name)
                .display_name("D")
                .name(
                    aws_sdk_identitystore::types::Name::builder()
                        .given_name("G")
                        .family_name("F")
                        .build(),
                )
                .send()
        };
        user("ada".into()).await.expect("first user");
        assert_eq!(
            user("ada".into()).await.expect_err("same name").code(),
            Some("ConflictException")
        );
        assert_eq!(
            user("a".repeat(129)).await.expect_err("129 characters").code(),
            Some("ValidationException")
        );
        // One membership per user and group.
        let ada = ids
            .list_users()
            .identity_store_id(&store)
            .send()
            .await
            .expect("users")
            .users()
            .iter()
            .find(|u| u.user_name() == Some("ada"))
            .map(|u| u.user_id().to_string())
            .expect("ada");
        let group = ids
            .create_group()
            .identity_store_id(&store)
            .display_name("Operators")
            .send()
            .await
            .expect("group")
            .group_id()
            .to_string();
        let member = || {
            ids.create_group_membership()
                .identity_store_id(&store)
                .group_id(&group)
                .member_id(aws_sdk_identitystore::types::MemberId::UserId(ada.clone()))
                .send()
        };
        member().await.expect("first membership");
        assert_eq!(
            member().await.expect_err("a second membership").code(),
            Some("ConflictException")
        );

        let org = ctx.organizations().await.expect("client");
        let made = |email: &str| org.create_account().account_name("acme-dup-prod").email(email).send();
        made("aws+dup@example.com").await.expect("first account");
        let second = made("AWS+DUP@example.com").await.expect("taken, and failed later");
        let id = second
            .create_account_status()
            .and_then(|s| s.id())
            .expect("id")
            .to_string();
        let status = org
            .describe_create_account_status()
            .create_account_request_id(&id)
            .send()
            .await
            .expect("status");
        let st = status.create_account_status().expect("status");
        assert_eq!(st.state().map(|s| s.as_str()), Some("FAILED"));
        assert_eq!(st.failure_reason().map(|r| r.as_str()), Some("EMAIL_ALREADY_EXISTS"));

        let support = ctx.support().await.expect("client");
        let refused = support.describe_cases().send().await.expect_err("not activated");
        assert_eq!(refused.code(), Some("PendingVerification"), "{refused:?}");
    });
}
