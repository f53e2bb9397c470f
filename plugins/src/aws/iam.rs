//! iam: account-level checks (root MFA, role quota).

use aws_sdk_iam::types::SummaryKeyType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::action::{Action, Preview, Verdict};
use crate::aws::sts::caller;
use crate::context::{Context, Event};
use crate::error::{PluginError, aws};

async fn account_summary(ctx: &Context) -> Result<std::collections::HashMap<SummaryKeyType, i32>, PluginError> {
    let out = ctx
        .iam()
        .await?
        .get_account_summary()
        .send()
        .await
        .map_err(|e| aws("iam:GetAccountSummary", e))?;
    Ok(out.summary_map().cloned().unwrap_or_default())
}

pub struct CheckRootMfa;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootMfaParams {
    /// The 12-digit account the operator means. When given, the check refuses to report on any
    /// other account (the credentials' account is compared first).
    #[serde(default)]
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MfaOutputs {
    /// Whether the root user has an MFA device.
    pub mfa_enabled: bool,
    /// The account whose root user was checked.
    pub account_id: String,
    /// Whether the root user has access keys (AccountAccessKeysPresent); it should have none.
    pub root_access_keys: bool,
}

impl Action for CheckRootMfa {
    type Params = RootMfaParams;
    type Outputs = MfaOutputs;
    const NAME: &'static str = "iam.check-root-mfa";
    const SUMMARY: &'static str = "Checks that the root user of the account (the one named, when `account_id` is given) has MFA (GetAccountSummary AccountMFAEnabled) and warns when it has access keys.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["sts:GetCallerIdentity", "iam:GetAccountSummary"];

    fn cli(_: &serde_json::Value) -> Vec<String> {
        vec![
            "aws sts get-caller-identity --query Account".into(),
            "aws iam get-account-summary --query 'SummaryMap.[AccountMFAEnabled,AccountAccessKeysPresent]'".into(),
        ]
    }

    async fn plan(_ctx: &Context, p: &RootMfaParams) -> Result<Preview, PluginError> {
        Ok(Preview::one(
            Verdict::Check,
            match &p.account_id {
                Some(a) => format!("root user MFA of account {a}"),
                None => "root user MFA".into(),
            },
        ))
    }

    async fn apply(ctx: &Context, p: RootMfaParams) -> Result<MfaOutputs, PluginError> {
        let me = caller(ctx).await?;
        if let Some(want) = p.account_id.as_deref().map(str::trim)
            && want != me.account_id
        {
            return Err(PluginError::Check {
                message: format!(
                    "the credentials are for account {}, not for account {want} that you named: this check would report on the wrong account",
                    me.account_id
                ),
                hint: Some(format!(
                    "run it in account {want}: open AWS CloudShell signed in to the console as its root user (or pick that account's --profile); if {want} is a typo, answer the account ID again"
                )),
            });
        }
        let map = account_summary(ctx).await?;
        let on = map.get(&SummaryKeyType::AccountMfaEnabled).copied().unwrap_or(0) == 1;
        let keys = map
            .get(&SummaryKeyType::from("AccountAccessKeysPresent"))
            .copied()
            .unwrap_or(0)
            == 1;
        if keys {
            ctx.emit(Event::Warning {
                message: format!(
                    "the root user of {} has access keys: delete them (Security credentials > Access keys); use AWS CloudShell or an administrative user instead",
                    me.account_id
                ),
            })?;
        }
        if !on {
            return Err(PluginError::Check {
                message: format!(
                    "MFA is not active for the root user of {} (AccountMFAEnabled = 0)",
                    me.account_id
                ),
                hint: Some(
                    "sign in as root, open Security credentials, and assign an MFA device; then confirm again".into(),
                ),
            });
        }
        Ok(MfaOutputs {
            mfa_enabled: true,
            account_id: me.account_id,
            root_access_keys: keys,
        })
    }
}

pub struct CheckRoleQuota;

fn ten() -> i64 {
    10
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleQuotaParams {
    /// Fail when fewer roles than this can still be created (Identity Center makes one per permission set and account).
    #[serde(default = "ten")]
    pub min_free: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RoleQuota {
    /// IAM roles in the account.
    pub roles: i64,
    /// The account's IAM role quota.
    pub quota: i64,
    /// Roles that can still be created.
    pub free: i64,
}

impl Action for CheckRoleQuota {
    type Params = RoleQuotaParams;
    type Outputs = RoleQuota;
    const NAME: &'static str = "iam.check-role-quota";
    const SUMMARY: &'static str =
        "Checks that the account can create more IAM roles (GetAccountSummary Roles and RolesQuota).";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["iam:GetAccountSummary"];

    fn cli(_: &serde_json::Value) -> Vec<String> {
        vec!["aws iam get-account-summary --query 'SummaryMap.[Roles,RolesQuota]'".into()]
    }

    async fn plan(_ctx: &Context, _p: &RoleQuotaParams) -> Result<Preview, PluginError> {
        Ok(Preview::one(Verdict::Check, "IAM role quota headroom"))
    }

    async fn apply(ctx: &Context, p: RoleQuotaParams) -> Result<RoleQuota, PluginError> {
        let map = account_summary(ctx).await?;
        let roles = i64::from(map.get(&SummaryKeyType::from("Roles")).copied().unwrap_or(0));
        let quota = i64::from(map.get(&SummaryKeyType::from("RolesQuota")).copied().unwrap_or(0));
        let free = quota - roles;
        if free < p.min_free {
            return Err(PluginError::Check {
                message: format!(
                    "only {free} IAM roles left ({roles} of {quota}); the runbook needs {}",
                    p.min_free
                ),
                hint: Some("delete unused roles or request a quota increase (Service Quotas, IAM, L-FE177D64)".into()),
            });
        }
        Ok(RoleQuota { roles, quota, free })
    }
}
