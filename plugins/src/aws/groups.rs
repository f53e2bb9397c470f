//! identitystore: a user's membership of a group, ensured. A membership made by a call by name
//! (`identitystore:CreateGroupMembership`) cannot be looked up by the tool and is trusted on a
//! new run; this action looks every time, so a membership deleted out of band comes back.

use aws_sdk_identitystore::types::{AlternateIdentifier, MemberId, UniqueAttribute};
use aws_smithy_types::Document;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::identitystore::user_id;
use super::mutation::{Mutation, Sent};
use crate::action::{Action, Preview, Verdict};
use crate::context::Context;
use crate::error::{PluginError, aws};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnsureGroupMembershipParams {
    /// The identity store id (`d-xxxxxxxxxx`, from `sso-admin.find-instance`).
    pub identity_store_id: String,
    /// The group's display name (unique in the identity store).
    pub group: String,
    /// The member's sign-in name.
    pub user_name: String,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Membership {
    /// The membership's id in the identity store.
    pub membership_id: String,
    /// The group's id in the identity store.
    pub group_id: String,
    /// The member's user id.
    pub user_id: String,
    /// True when this run made the membership.
    pub created: bool,
}

/// The group's id by its display name; an error naming it when there is none (a membership of
/// a group that does not exist is a mistake in the runbook or a group someone deleted).
async fn group_id(ctx: &Context, p: &EnsureGroupMembershipParams) -> Result<String, PluginError> {
    let attr = UniqueAttribute::builder()
        .attribute_path("displayName")
        .attribute_value(Document::String(p.group.clone()))
        .build()
        .map_err(|e| PluginError::Other(e.to_string()))?;
    let res = ctx
        .identitystore(p.region.as_deref())
        .await?
        .get_group_id()
        .identity_store_id(&p.identity_store_id)
        .alternate_identifier(AlternateIdentifier::UniqueAttribute(attr))
        .send()
        .await;
    match res {
        Ok(out) => Ok(out.group_id().to_string()),
        Err(e) => {
            let e = aws("identitystore:GetGroupId", e);
            if e.code() == Some("ResourceNotFoundException") {
                Err(PluginError::Other(format!(
                    "no group named `{}` in identity store {}",
                    p.group, p.identity_store_id
                )))
            } else {
                Err(e)
            }
        }
    }
}

async fn user(ctx: &Context, p: &EnsureGroupMembershipParams) -> Result<String, PluginError> {
    user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name)
        .await?
        .ok_or_else(|| {
            PluginError::Other(format!(
                "no user named `{}` in identity store {}",
                p.user_name, p.identity_store_id
            ))
        })
}

/// The membership's id, or None when the user is not a member.
async fn membership(
    ctx: &Context,
    p: &EnsureGroupMembershipParams,
    group: &str,
    user: &str,
) -> Result<Option<String>, PluginError> {
    let res = ctx
        .identitystore(p.region.as_deref())
        .await?
        .get_group_membership_id()
        .identity_store_id(&p.identity_store_id)
        .group_id(group)
        .member_id(MemberId::UserId(user.to_string()))
        .send()
        .await;
    match res {
        Ok(out) => Ok(Some(out.membership_id().to_string())),
        Err(e) => {
            let e = aws("identitystore:GetGroupMembershipId", e);
            if e.code() == Some("ResourceNotFoundException") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

pub struct EnsureGroupMembership;

impl Action for EnsureGroupMembership {
    type Params = EnsureGroupMembershipParams;
    type Outputs = Membership;
    const NAME: &'static str = "identitystore.ensure-group-membership";
    const SUMMARY: &'static str = "Makes a user a member of a group in the Identity Center directory unless it is one; a new run of a finished runbook looks again, so a membership removed out of band is made again (a resume keeps what it finished).";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "identitystore:GetGroupId",
        "identitystore:GetUserId",
        "identitystore:GetGroupMembershipId",
        "identitystore:CreateGroupMembership",
    ];
    const CONVERGES: &'static str = "The membership is the user's in the group, both named (display name and user name are unique in an identity store); AWS holds one membership per user and group, so there is nothing else to be. A missing group or user is an error naming it, not something the step creates. Other members of the group are left as they are.";

    fn cli(p: &Value) -> Vec<String> {
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        vec![
            crate::command([
                "aws",
                "identitystore",
                "get-group-id",
                "--identity-store-id",
                "STORE_ID",
                "--alternate-identifier",
                &serde_json::json!({"UniqueAttribute": {"AttributePath": "displayName", "AttributeValue": s("group")}})
                    .to_string(),
            ]),
            "aws identitystore get-group-membership-id --identity-store-id STORE_ID --group-id GROUP_ID --member-id UserId=USER_ID".into(),
            "aws identitystore create-group-membership --identity-store-id STORE_ID --group-id GROUP_ID --member-id UserId=USER_ID   # when it is not a member".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &EnsureGroupMembershipParams) -> Result<Preview, PluginError> {
        let group = group_id(ctx, p).await?;
        let Some(user) = user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? else {
            // Made by an earlier step of the same run, perhaps: the run will know.
            return Ok(Preview::one(
                Verdict::WouldCreate,
                format!("{} in group {} (the user does not exist yet)", p.user_name, p.group),
            ));
        };
        Ok(match membership(ctx, p, &group, &user).await? {
            Some(id) => Preview::one(Verdict::Exists, format!("{} in group {} ({id})", p.user_name, p.group)),
            None => Preview::one(Verdict::WouldCreate, format!("{} in group {}", p.user_name, p.group)),
        })
    }

    async fn apply(ctx: &Context, p: EnsureGroupMembershipParams) -> Result<Membership, PluginError> {
        let group = group_id(ctx, &p).await?;
        let user = user(ctx, &p).await?;
        let done = |membership_id: String, created: bool| Membership {
            membership_id,
            group_id: group.clone(),
            user_id: user.clone(),
            created,
        };
        if let Some(id) = membership(ctx, &p, &group, &user).await? {
            return Ok(done(id, false));
        }
        let client = ctx.identitystore(p.region.as_deref()).await?;
        let send = || {
            client
                .create_group_membership()
                .identity_store_id(&p.identity_store_id)
                .group_id(&group)
                .member_id(MemberId::UserId(user.clone()))
                .customize()
                .config_override(
                    aws_sdk_identitystore::config::Builder::default()
                        .retry_config(aws_config::retry::RetryConfig::disabled()),
                )
                .send()
        };
        let look = || membership(ctx, &p, &group, &user);
        match Mutation::new(
            ctx,
            "identitystore:CreateGroupMembership",
            format!("{} in {}", p.user_name, p.group),
        )
        .send_looking(send, look, |_| None)
        .await
        {
            Ok(Sent::Answer(out)) => Ok(done(out.membership_id().to_string(), true)),
            // Our create's answer was lost, and the membership is there.
            Ok(Sent::Found(id)) => Ok(done(id, true)),
            // AWS holds one membership per user and group: made meanwhile (or by our own
            // request whose answer was lost), it is the one asked for.
            Err(e) if e.code() == Some("ConflictException") => match membership(ctx, &p, &group, &user).await? {
                Some(id) => Ok(done(id, false)),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }
}
