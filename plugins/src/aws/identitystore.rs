//! identitystore: users in the Identity Center directory.

use aws_sdk_identitystore::types::{AlternateIdentifier, AttributeOperation, Email, Name, UniqueAttribute};
use aws_smithy_types::Document;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mutation::{Mutation, Sent};
use crate::action::{Action, Preview, Verdict};
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
    /// Work email address. It tells this step's user from another person's of the same user name.
    pub email: String,
    /// Emails of a user of this name that is this step's all the same: the person's old address
    /// (the step's `email` was edited), or a user someone made by hand for them. Such a user is
    /// taken, and its email changed to `email`. A user of this name with any other email is
    /// refused.
    #[serde(default)]
    pub adopt: Vec<String>,
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
    /// The attributes this run changed on an existing user (`email`, `display_name`,
    /// `given_name`, `family_name`).
    pub updated: Vec<String>,
}

/// A user as DescribeUser gives it: what the step compares.
struct Existing {
    id: String,
    emails: Vec<String>,
    primary_email: Option<String>,
    display_name: String,
    given_name: String,
    family_name: String,
}

async fn describe_user(ctx: &Context, p: &EnsureUserParams, id: &str) -> Result<Existing, PluginError> {
    let out = ctx
        .identitystore(p.region.as_deref())
        .await?
        .describe_user()
        .identity_store_id(&p.identity_store_id)
        .user_id(id)
        .send()
        .await
        .map_err(|e| aws("identitystore:DescribeUser", e))?;
    let emails: Vec<String> = out
        .emails()
        .iter()
        .filter_map(|e| e.value().map(String::from))
        .collect();
    let primary_email = out
        .emails()
        .iter()
        .find(|e| e.primary())
        .or(out.emails().first())
        .and_then(|e| e.value().map(String::from));
    Ok(Existing {
        id: id.to_string(),
        emails,
        primary_email,
        display_name: out.display_name().unwrap_or_default().to_string(),
        given_name: out.name().and_then(|n| n.given_name()).unwrap_or_default().to_string(),
        family_name: out.name().and_then(|n| n.family_name()).unwrap_or_default().to_string(),
    })
}

/// Whether an existing user of the step's user name is the step's: one of its emails is the
/// step's email (or the step adopts it). Another person's user is refused, as an account with
/// another name is.
fn whose(u: &Existing, p: &EnsureUserParams) -> Result<(), PluginError> {
    let ours = |e: &String| e.eq_ignore_ascii_case(&p.email) || p.adopt.iter().any(|a| a.eq_ignore_ascii_case(e));
    if u.emails.iter().any(ours) {
        return Ok(());
    }
    Err(PluginError::Check {
        message: format!(
            "the identity store already has a user `{}` ({}) with {}, not {}: it is not this step's user",
            p.user_name,
            u.id,
            if u.emails.is_empty() {
                "no email".to_string()
            } else {
                format!("email {}", u.emails.join(", "))
            },
            p.email
        ),
        hint: Some(format!(
            "if it is the same person (an old address), add `adopt = [\"{}\"]` to the step and run again: its email becomes {}; otherwise choose another user name",
            u.emails.first().map_or("OLD-EMAIL", String::as_str),
            p.email
        )),
    })
}

/// The attribute operations that bring the user to what the step says, by attribute name.
fn user_changes(u: &Existing, p: &EnsureUserParams) -> Result<Vec<(&'static str, AttributeOperation)>, PluginError> {
    let op = |path: &str, value: Document| {
        AttributeOperation::builder()
            .attribute_path(path)
            .attribute_value(value)
            .build()
            .map_err(|e| PluginError::Other(format!("identitystore:UpdateUser: {e}")))
    };
    let text = |v: &str| Document::String(v.to_string());
    let mut out = Vec::new();
    if !u
        .primary_email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(&p.email))
    {
        let email = Document::Object(
            [
                ("value".to_string(), text(&p.email)),
                ("type".to_string(), text("work")),
                ("primary".to_string(), Document::Bool(true)),
            ]
            .into_iter()
            .collect(),
        );
        out.push(("email", op("emails", Document::Array(vec![email]))?));
    }
    if u.display_name != p.display_name {
        out.push(("display_name", op("displayName", text(&p.display_name))?));
    }
    if u.given_name != p.given_name {
        out.push(("given_name", op("name.givenName", text(&p.given_name))?));
    }
    if u.family_name != p.family_name {
        out.push(("family_name", op("name.familyName", text(&p.family_name))?));
    }
    Ok(out)
}

pub struct EnsureUser;

impl Action for EnsureUser {
    type Params = EnsureUserParams;
    type Outputs = User;
    const NAME: &'static str = "identitystore.ensure-user";
    const SUMMARY: &'static str = "Creates a user in the Identity Center directory unless this step's user (same user name and email) exists, and brings its email, display name and names to what is asked; refuses a user of that name with another email unless the step adopts that email.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "identitystore:GetUserId",
        "identitystore:DescribeUser",
        "identitystore:CreateUser",
        "identitystore:UpdateUser",
    ];
    const CONVERGES: &'static str = "A user is this step's when it has the step's user name (unique in the identity store) and one of its emails is the step's email; a user of that name with another email is someone else's and is refused, unless the step lists that email in `adopt` (the person's old address after the step's email was edited, or a user made by hand). All of it: its primary email, display name, given name and family name are brought to what the step says. Other attributes (phone numbers, addresses, title, groups) are not among its parameters and are left as they are; its password is never touched.";

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
            "aws identitystore describe-user --identity-store-id STORE_ID --user-id USER_ID   # its emails say whose it is".into(),
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
            "aws identitystore update-user --identity-store-id STORE_ID --user-id USER_ID --operations AttributePath=displayName,AttributeValue=...   # for each attribute that differs".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &EnsureUserParams) -> Result<Preview, PluginError> {
        let Some(id) = user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? else {
            return Ok(Preview::one(
                Verdict::WouldCreate,
                format!("user {} <{}>", p.user_name, p.email),
            ));
        };
        let u = describe_user(ctx, p, &id).await?;
        whose(&u, p)?;
        let mut preview = Preview::one(Verdict::Exists, format!("user {} ({id})", p.user_name));
        for (what, _) in user_changes(&u, p)? {
            let to = match what {
                "email" => p.email.as_str(),
                "display_name" => p.display_name.as_str(),
                "given_name" => p.given_name.as_str(),
                _ => p.family_name.as_str(),
            };
            preview.push(Verdict::WouldChange, format!("{what} to {to}"));
        }
        Ok(preview)
    }

    async fn apply(ctx: &Context, p: EnsureUserParams) -> Result<User, PluginError> {
        let region = p.region.as_deref();
        let mut created = false;
        let id = match user_id(ctx, region, &p.identity_store_id, &p.user_name).await? {
            Some(id) => id,
            None => {
                let client = ctx.identitystore(region).await?;
                let send = || {
                    client
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
                        .customize()
                        .config_override(
                            aws_sdk_identitystore::config::Builder::default()
                                .retry_config(aws_config::retry::RetryConfig::disabled()),
                        )
                        .send()
                };
                let look = || user_id(ctx, region, &p.identity_store_id, &p.user_name);
                match Mutation::new(ctx, "identitystore:CreateUser", &p.user_name)
                    .send_looking(send, look, |_| None)
                    .await
                {
                    Ok(Sent::Answer(out)) => {
                        return Ok(User {
                            user_id: out.user_id().to_string(),
                            created: true,
                            updated: Vec::new(),
                        });
                    }
                    // Our create's answer was lost and a user of the name is there: looked at
                    // below like any existing user, whose it is included.
                    Ok(Sent::Found(id)) => {
                        created = true;
                        id
                    }
                    // Made between our look and our create (AWS allows one user per name):
                    // looked at below like any existing user, whose it is included.
                    Err(e) if e.code() == Some("ConflictException") => {
                        user_id(ctx, region, &p.identity_store_id, &p.user_name)
                            .await?
                            .ok_or(e)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let u = describe_user(ctx, &p, &id).await?;
        whose(&u, &p)?;
        let changes = user_changes(&u, &p)?;
        let mut updated = Vec::new();
        if !changes.is_empty() {
            let names: Vec<&str> = changes.iter().map(|(n, _)| *n).collect();
            let ops: Vec<AttributeOperation> = changes.into_iter().map(|(_, op)| op).collect();
            let update = ctx
                .identitystore(region)
                .await?
                .update_user()
                .identity_store_id(&p.identity_store_id)
                .user_id(&id)
                .set_operations(Some(ops))
                .send();
            Mutation::new(
                ctx,
                "identitystore:UpdateUser",
                format!("{} {}", p.user_name, names.join(", ")),
            )
            .send(update, |_| None)
            .await?;
            updated = names.into_iter().map(String::from).collect();
        }
        Ok(User {
            user_id: id,
            created,
            updated,
        })
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
    const CALLS: &'static [&'static str] = &["identitystore:GetUserId"];

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws identitystore get-user-id --identity-store-id STORE_ID --alternate-identifier ...".into()]
    }

    async fn plan(ctx: &Context, p: &WaitForUserParams) -> Result<Preview, PluginError> {
        Ok(
            match user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? {
                Some(id) => Preview::one(Verdict::Exists, format!("user {} ({id})", p.user_name)),
                None => Preview::one(Verdict::Check, format!("wait for {} to be synced", p.user_name)),
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
                    None => Status::Pending(format!(
                        "not synced yet (check that {} is in sync scope under exactly this user name)",
                        p.user_name
                    )),
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
    const CALLS: &'static [&'static str] = &["identitystore:GetUserId"];

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws identitystore get-user-id --identity-store-id STORE_ID --alternate-identifier ...".into()]
    }

    async fn plan(ctx: &Context, p: &FindUserParams) -> Result<Preview, PluginError> {
        Ok(
            match user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? {
                Some(id) => Preview::one(Verdict::Exists, format!("user {} ({id})", p.user_name)),
                None => Preview::one(Verdict::Check, format!("no user {} yet", p.user_name)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each word of the card's create-user line comes back exactly from a shell-words split, also
    /// a value with a quote, `$(...)`, backticks and double quotes in it.
    #[test]
    fn the_cli_line_splits_back_into_the_words_it_was_built_from() {
        let family = "O'Brien $(touch PWNED) `touch PWNED2` \"q\"";
        let p = serde_json::json!({
            "user_name": "pat", "display_name": "Pat O'Brien", "given_name": "Pat",
            "family_name": family, "email": "pat@example.com",
        });
        let lines = <EnsureUser as Action>::cli(&p);
        let create = lines
            .iter()
            .find(|l| l.contains("create-user"))
            .expect("a create-user line");
        let words = shell_words::split(create).expect("a shell reads it");
        let after = |flag: &str| words.iter().position(|w| w == flag).map(|i| words[i + 1].as_str());
        assert_eq!(after("--display-name"), Some("Pat O'Brien"), "{create}");
        let name: Value = serde_json::from_str(after("--name").expect("--name")).expect("JSON");
        assert_eq!(name["FamilyName"], family);
        assert_eq!(words.len(), 13, "{words:?}");
    }
}
