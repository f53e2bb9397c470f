//! identitystore: users in the Identity Center directory.

use aws_sdk_identitystore::types::{AlternateIdentifier, Email, Name, UniqueAttribute};
use aws_smithy_types::Document;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mutation::Mutation;
use crate::action::{Action, Plan, Verdict};
use crate::context::{Context, Event};
use crate::duration::Wait;
use crate::error::{PluginError, aws};
use crate::poll::{Status, until_done};

/// The identity store answers on Identity Center's endpoint family; no separate request rate is
/// published for it, so it is paced as Identity Center's admin API is (20 requests/s).
pub const QUOTAS: crate::limits::Quotas = crate::limits::Quotas {
    family: "identitystore",
    rate: Some(20.0),
    in_progress: &[],
    source: "assumed equal to IAM Identity Center's 20 TPS (no identity store rate published)",
};

/// The user's id, or None when no user has this name.
pub async fn user_id(
    ctx: &Context,
    region: Option<&str>,
    store: &str,
    user_name: &str,
) -> Result<Option<String>, PluginError> {
    let attr = UniqueAttribute::builder()
        .attribute_path("userName")
        .attribute_value(Document::String(user_name.to_string()))
        .build()
        .map_err(|e| PluginError::Other(e.to_string()))?;
    let res = ctx
        .identitystore(region)
        .await?
        .get_user_id()
        .identity_store_id(store)
        .alternate_identifier(AlternateIdentifier::UniqueAttribute(attr))
        .send()
        .await;
    match res {
        Ok(out) => Ok(Some(out.user_id().to_string())),
        Err(e) => {
            let e = aws("identitystore:GetUserId", e);
            if e.code() == Some("ResourceNotFoundException") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnsureUserParams {
    /// The identity store id (`d-xxxxxxxxxx`, from `sso-admin.find-instance`).
    pub identity_store_id: String,
    /// Sign-in name of the user.
    pub user_name: String,
    /// Name shown in the portal.
    pub display_name: String,
    /// First name.
    pub given_name: String,
    /// Last name.
    pub family_name: String,
    /// Work email address.
    pub email: String,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct User {
    /// The user's id in the identity store.
    pub user_id: String,
    /// True when this run created the user.
    pub created: bool,
}

pub struct EnsureUser;

impl Action for EnsureUser {
    type Params = EnsureUserParams;
    type Outputs = User;
    const NAME: &'static str = "identitystore.ensure-user";
    const SUMMARY: &'static str =
        "Creates a user in the Identity Center directory unless one with this user name exists.";
    const MUTATES: bool = true;

    fn cli(p: &Value) -> Vec<String> {
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        // Structured values as JSON (the AWS CLI takes it for any structure), each one word.
        let name = serde_json::json!({"GivenName": s("given_name"), "FamilyName": s("family_name")});
        let emails = serde_json::json!([{"Value": s("email"), "Type": "work", "Primary": true}]);
        vec![
            crate::command([
                "aws",
                "identitystore",
                "get-user-id",
                "--identity-store-id",
                "STORE_ID",
                "--alternate-identifier",
                &user_name_identifier(&s("user_name")),
            ]),
            crate::command([
                "aws",
                "identitystore",
                "create-user",
                "--identity-store-id",
                "STORE_ID",
                "--user-name",
                &s("user_name"),
                "--display-name",
                &s("display_name"),
                "--name",
                &name.to_string(),
                "--emails",
                &emails.to_string(),
            ]),
        ]
    }

    async fn plan(ctx: &Context, p: &EnsureUserParams) -> Result<Plan, PluginError> {
        Ok(
            match user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? {
                Some(id) => Plan::one(Verdict::Exists, format!("user {} ({id})", p.user_name)),
                None => Plan::one(Verdict::WouldCreate, format!("user {} <{}>", p.user_name, p.email)),
            },
        )
    }

    async fn apply(ctx: &Context, p: EnsureUserParams) -> Result<User, PluginError> {
        let region = p.region.as_deref();
        if let Some(id) = user_id(ctx, region, &p.identity_store_id, &p.user_name).await? {
            return Ok(User {
                user_id: id,
                created: false,
            });
        }
        let create = ctx
            .identitystore(region)
            .await?
            .create_user()
            .identity_store_id(&p.identity_store_id)
            .user_name(&p.user_name)
            .display_name(&p.display_name)
            .name(
                Name::builder()
                    .given_name(&p.given_name)
                    .family_name(&p.family_name)
                    .build(),
            )
            .emails(Email::builder().value(&p.email).r#type("work").primary(true).build())
            .send();
        match Mutation::new(ctx, "identitystore:CreateUser", &p.user_name)
            .send(create, |_| None)
            .await
        {
            Ok(out) => Ok(User {
                user_id: out.user_id().to_string(),
                created: true,
            }),
            // Made between our look and our create: take it.
            Err(e) if e.code() == Some("ConflictException") => {
                let id = user_id(ctx, region, &p.identity_store_id, &p.user_name)
                    .await?
                    .ok_or(e)?;
                Ok(User {
                    user_id: id,
                    created: false,
                })
            }
            Err(e) => Err(e),
        }
    }
}

fn thirty_minutes() -> Wait {
    Wait::of("30m")
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitForUserParams {
    /// The identity store id (`d-xxxxxxxxxx`).
    pub identity_store_id: String,
    /// The user name as it will appear after the sync.
    pub user_name: String,
    /// How long to wait for the sync, e.g. `30m`.
    #[serde(default = "thirty_minutes")]
    pub timeout: Wait,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncedUser {
    /// The user's id in the identity store.
    pub user_id: String,
}

pub struct WaitForUser;

impl Action for WaitForUser {
    type Params = WaitForUserParams;
    type Outputs = SyncedUser;
    const NAME: &'static str = "identitystore.wait-for-user";
    const SUMMARY: &'static str =
        "Waits until a user synced from Active Directory or an external IdP appears in the identity store.";
    const MUTATES: bool = false;

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws identitystore get-user-id --identity-store-id STORE_ID --alternate-identifier ...".into()]
    }

    async fn plan(ctx: &Context, p: &WaitForUserParams) -> Result<Plan, PluginError> {
        Ok(
            match user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? {
                Some(id) => Plan::one(Verdict::Exists, format!("user {} ({id})", p.user_name)),
                None => Plan::one(Verdict::Check, format!("wait for {} to be synced", p.user_name)),
            },
        )
    }

    async fn apply(ctx: &Context, p: WaitForUserParams) -> Result<SyncedUser, PluginError> {
        let limit = p.timeout.duration;
        let deadline = std::time::Instant::now() + limit;
        let ctx = ctx.with_deadline(Some(ctx.deadline.map_or(deadline, |d| d.min(deadline))));
        let what = format!("user {} to be synced", p.user_name);
        let user_id = until_done(&ctx, &what, None, || async {
            Ok(
                match user_id(&ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? {
                    Some(id) => Status::Done(id),
                    None => Status::Pending("not synced yet".into()),
                },
            )
        })
        .await?;
        Ok(SyncedUser { user_id })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindUserParams {
    /// The identity store id (`d-xxxxxxxxxx`).
    pub identity_store_id: String,
    /// The user name to look for.
    pub user_name: String,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FoundUser {
    /// True when the identity store has a user of this name.
    pub found: bool,
    /// The user's id (empty when not found).
    pub user_id: String,
}

pub struct FindUser;

impl Action for FindUser {
    type Params = FindUserParams;
    type Outputs = FoundUser;
    const NAME: &'static str = "identitystore.find-user";
    const SUMMARY: &'static str = "Looks a user up by user name, once and without waiting; says whether it exists (a missing user is not an error).";
    const MUTATES: bool = false;

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws identitystore get-user-id --identity-store-id STORE_ID --alternate-identifier ...".into()]
    }

    async fn plan(ctx: &Context, p: &FindUserParams) -> Result<Plan, PluginError> {
        Ok(
            match user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? {
                Some(id) => Plan::one(Verdict::Exists, format!("user {} ({id})", p.user_name)),
                None => Plan::one(Verdict::Check, format!("no user {} yet", p.user_name)),
            },
        )
    }

    async fn apply(ctx: &Context, p: FindUserParams) -> Result<FoundUser, PluginError> {
        let id = user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await?;
        if id.is_none() {
            ctx.emit(Event::Warning {
                message: format!("IAM Identity Center has no user {} (yet)", p.user_name),
            })?;
        }
        Ok(FoundUser {
            found: id.is_some(),
            user_id: id.unwrap_or_default(),
        })
    }
}

/// `--alternate-identifier` of GetUserId by user name, as the AWS CLI's JSON.
pub(crate) fn user_name_identifier(user_name: &str) -> String {
    serde_json::json!({"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": user_name}}).to_string()
}
