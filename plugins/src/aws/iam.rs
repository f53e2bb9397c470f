//! iam: account-level checks (root MFA, role quota).

use aws_sdk_iam::types::SummaryKeyType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::action::{Action, Plan, Verdict};
use crate::aws::sts::NoParams;
use crate::context::Context;
use crate::error::{PluginError, aws};

async fn summary(ctx: &Context) -> Result<std::collections::HashMap<SummaryKeyType, i32>, PluginError> {
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

#[derive(Debug, Serialize, JsonSchema)]
pub struct MfaOutputs {
    /// Whether the root user has an MFA device.
    pub mfa_enabled: bool,
}

impl Action for CheckRootMfa {
    type Params = NoParams;
    type Outputs = MfaOutputs;
    const NAME: &'static str = "iam.check-root-mfa";
    const SUMMARY: &'static str =
        "Checks that the root user has MFA (GetAccountSummary AccountMFAEnabled); fails when it is off.";
    const MUTATES: bool = false;

    fn cli(_: &serde_json::Value) -> Vec<String> {
        vec!["aws iam get-account-summary --query SummaryMap.AccountMFAEnabled".into()]
    }

    async fn plan(_ctx: &Context, _p: &NoParams) -> Result<Plan, PluginError> {
        Ok(Plan::one(Verdict::Check, "root user MFA"))
    }

    async fn apply(ctx: &Context, _p: NoParams) -> Result<MfaOutputs, PluginError> {
        let on = summary(ctx)
            .await?
            .get(&SummaryKeyType::AccountMfaEnabled)
            .copied()
            .unwrap_or(0)
            == 1;
        if !on {
            return Err(PluginError::Check {
                message: "MFA is not active for the root user (AccountMFAEnabled = 0)".into(),
                hint: Some(
                    "sign in as root, open Security credentials, and assign an MFA device; then confirm again".into(),
                ),
            });
        }
        Ok(MfaOutputs { mfa_enabled: true })
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

    fn cli(_: &serde_json::Value) -> Vec<String> {
        vec!["aws iam get-account-summary --query 'SummaryMap.[Roles,RolesQuota]'".into()]
    }

    async fn plan(_ctx: &Context, _p: &RoleQuotaParams) -> Result<Plan, PluginError> {
        Ok(Plan::one(Verdict::Check, "IAM role quota headroom"))
    }

    async fn apply(ctx: &Context, p: RoleQuotaParams) -> Result<RoleQuota, PluginError> {
        let map = summary(ctx).await?;
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
