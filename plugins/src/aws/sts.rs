//! sts: who is calling.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::action::{Action, Preview, Verdict};
use crate::context::Context;
use crate::error::{PluginError, aws};

/// No parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Identity {
    /// The 12-digit account the credentials belong to.
    pub account_id: String,
    /// The caller's ARN.
    pub arn: String,
    /// The caller's unique id.
    pub user_id: String,
    /// True when these are the account's root user credentials.
    pub is_root: bool,
    /// `root`, `iam-user`, `identity-center`, `assumed-role` or `federated`.
    pub kind: String,
    /// For roles: the role (permission set) name; for users: the user name.
    pub name: String,
    /// `long-term` (an access key `AKIA...`: an IAM user's or the root user's), `temporary`
    /// (session credentials `ASIA...`, as CloudShell, Identity Center and roles give), or
    /// `unknown`.
    pub credentials: String,
}

/// What kind of credentials sign the calls, from the access key id: AWS gives long-term keys
/// ids starting `AKIA` and temporary (session) credentials ids starting `ASIA`.
pub fn credential_kind(access_key_id: &str, has_session_token: bool) -> &'static str {
    if access_key_id.starts_with("AKIA") {
        "long-term"
    } else if access_key_id.starts_with("ASIA") || has_session_token {
        "temporary"
    } else {
        "unknown"
    }
}

/// The kind of the credentials this context signs with (never their value).
async fn credentials_in_use(ctx: &Context) -> Result<&'static str, PluginError> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = ctx.sdk().await?.credentials_provider() else {
        return Err(crate::error::no_credentials());
    };
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| crate::error::credentials(&e, ctx.aws_options().profile.as_deref()))?;
    Ok(credential_kind(creds.access_key_id(), creds.session_token().is_some()))
}

pub struct WhoAmI;

/// Reads the caller identity; shared by the guard and the `whoami` action.
pub async fn caller(ctx: &Context) -> Result<Identity, PluginError> {
    let credentials = credentials_in_use(ctx).await?.to_string();
    let out = ctx
        .sts()
        .await?
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws("sts:GetCallerIdentity", e))?;
    let arn = out.arn().unwrap_or_default().to_string();
    let (kind, name) = classify(&arn);
    Ok(Identity {
        credentials,
        account_id: out.account().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
        is_root: kind == "root",
        kind: kind.to_string(),
        name,
        arn,
    })
}

/// Tells the kind of identity from its ARN.
pub fn classify(arn: &str) -> (&'static str, String) {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    let mut parts = resource.split('/');
    let head = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    match head {
        "root" => ("root", "root".into()),
        "user" => ("iam-user", rest.last().copied().unwrap_or("").into()),
        "federated-user" => ("federated", rest.join("/")),
        "assumed-role" => {
            let role = rest.first().copied().unwrap_or("");
            if let Some(ps) = role.strip_prefix("AWSReservedSSO_") {
                // AWSReservedSSO_<PermissionSet>_<hash>
                let ps = ps.rsplit_once('_').map_or(ps, |(n, _)| n);
                (
                    "identity-center",
                    format!("{ps}/{}", rest.get(1).copied().unwrap_or("")),
                )
            } else {
                ("assumed-role", rest.join("/"))
            }
        }
        _ => ("unknown", resource.into()),
    }
}

impl Action for WhoAmI {
    type Params = NoParams;
    type Outputs = Identity;
    const NAME: &'static str = "sts.whoami";
    const SUMMARY: &'static str = "Tells who the credentials belong to: account, ARN, and whether it is the root user.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["sts:GetCallerIdentity"];

    fn cli(_: &serde_json::Value) -> Vec<String> {
        vec!["aws sts get-caller-identity".into()]
    }

    async fn plan(_ctx: &Context, _p: &NoParams) -> Result<Preview, PluginError> {
        Ok(Preview::one(Verdict::Check, "caller identity"))
    }

    async fn apply(ctx: &Context, _p: NoParams) -> Result<Identity, PluginError> {
        let id = caller(ctx).await?;
        if id.is_root && id.credentials == "long-term" {
            ctx.emit(crate::context::Event::Warning {
                message: format!(
                    "these are long-term access keys of the ROOT user of {}: AWS advises never to create them. \
                     Run from AWS CloudShell, signed in to the console as the root user (it gives session \
                     credentials, no keys), and delete the root access keys under Security credentials > Access keys",
                    id.account_id
                ),
            })?;
        } else if id.is_root {
            ctx.emit(crate::context::Event::Warning {
                message: format!(
                    "you are signed in as the root user of {}; use it only for the tasks that need it",
                    id.account_id
                ),
            })?;
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, credential_kind};

    #[test]
    fn kinds_of_identity() {
        assert_eq!(classify("arn:aws:iam::123456789012:root").0, "root");
        assert_eq!(
            classify("arn:aws:iam::123456789012:user/ops/alice"),
            ("iam-user", "alice".into())
        );
        assert_eq!(
            classify("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_0123abcd/alice"),
            ("identity-center", "AdministratorAccess/alice".into())
        );
        assert_eq!(
            classify("arn:aws:sts::123456789012:assumed-role/Deploy/ci").0,
            "assumed-role"
        );
        assert_eq!(classify("arn:aws:sts::123456789012:federated-user/bob").0, "federated");
    }

    #[test]
    fn kinds_of_credentials() {
        assert_eq!(credential_kind("AKIAIOSFODNN7EXAMPLE", false), "long-term");
        assert_eq!(credential_kind("ASIAIOSFODNN7EXAMPLE", true), "temporary");
        assert_eq!(credential_kind("testing", true), "temporary");
        assert_eq!(credential_kind("testing", false), "unknown");
    }
}
