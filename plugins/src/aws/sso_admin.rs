//! sso-admin: the Identity Center instance, permission sets, account assignments.

use std::collections::HashSet;

use aws_sdk_ssoadmin::types::{
    PrincipalType as SdkPrincipal, ProvisionTargetType, ProvisioningStatus, StatusValues, TargetType,
};
use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use aws_sdk_ssoadmin::operation::provision_permission_set::ProvisionPermissionSetOutput;

use super::mutation::Mutation;
use crate::action::{Action, Plan, Verdict};
use crate::context::{Context, Event};
use crate::duration::SessionDuration;
use crate::error::{PluginError, aws};
use crate::poll::{Status, until_done, until_settled};

mod assignments;
mod in_progress;
pub use assignments::*;

/// IAM Identity Center User Guide, "IAM Identity Center quotas", throttle limits: the admin APIs
/// have a collective limit of 20 transactions per second, and account assignment writes at most
/// 15 outstanding asynchronous calls, which cannot be raised (the IAM User Guide's account access
/// quotas say the same; the older AWS SSO page said 10). Past the cap AWS answers
/// `ConflictException`.
pub const QUOTAS: crate::limits::Quotas = crate::limits::Quotas {
    family: "sso-admin",
    rate: Some(20.0),
    in_progress: &[("CreateAccountAssignment", 15)],
    source: "IAM Identity Center User Guide, Quotas: 20 TPS collective; 15 outstanding asynchronous assignment calls",
};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindInstanceParams {
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
    /// Keep polling until a person has enabled Identity Center in the console (up to the step's timeout).
    #[serde(default)]
    pub wait: bool,
    /// The access portal URL when a custom alias replaced the default `d-xxxxxxxxxx` one.
    #[serde(default)]
    pub portal_url: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Instance {
    /// The Identity Center instance ARN.
    pub instance_arn: String,
    /// The identity store id (`d-xxxxxxxxxx`).
    pub identity_store_id: String,
    /// The home region the instance was found in.
    pub region: String,
    /// The AWS access portal sign-in URL.
    pub portal_url: String,
}

pub struct FindInstance;

async fn first_instance(ctx: &Context, region: Option<&str>) -> Result<Option<(String, String)>, PluginError> {
    let out = ctx
        .sso_admin(region)
        .await?
        .list_instances()
        .send()
        .await
        .map_err(|e| aws("sso-admin:ListInstances", e))?;
    Ok(out.instances().iter().find_map(|i| {
        let active = i.status().is_none_or(|s| s.as_str() == "ACTIVE");
        match (i.instance_arn(), i.identity_store_id()) {
            (Some(a), Some(d)) if active => Some((a.to_string(), d.to_string())),
            _ => None,
        }
    }))
}

impl Action for FindInstance {
    type Params = FindInstanceParams;
    type Outputs = Instance;
    const NAME: &'static str = "sso-admin.find-instance";
    const SUMMARY: &'static str =
        "Finds the IAM Identity Center instance and its access portal URL; can wait while a person enables it.";
    const MUTATES: bool = false;

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws sso-admin list-instances".into()]
    }

    async fn plan(ctx: &Context, p: &FindInstanceParams) -> Result<Plan, PluginError> {
        Ok(match first_instance(ctx, p.region.as_deref()).await? {
            Some((arn, _)) => Plan::one(Verdict::Exists, format!("Identity Center instance {arn}")),
            None => Plan::one(
                Verdict::Check,
                "Identity Center is not enabled yet; a person enables it in the console",
            ),
        })
    }

    async fn apply(ctx: &Context, p: FindInstanceParams) -> Result<Instance, PluginError> {
        let region = match &p.region {
            Some(r) => r.clone(),
            None => ctx.region().await?,
        };
        let found = if p.wait {
            until_done(ctx, "IAM Identity Center to be enabled", None, || async {
                Ok(match first_instance(ctx, Some(&region)).await? {
                    Some(x) => Status::Done(x),
                    None => Status::Pending("not enabled".into()),
                })
            })
            .await?
        } else {
            first_instance(ctx, Some(&region)).await?.ok_or_else(|| PluginError::Check {
                message: format!("IAM Identity Center is not enabled in {region}"),
                hint: Some("open the IAM Identity Center console in your home region and choose Enable (organization instance)".into()),
            })?
        };
        let (instance_arn, identity_store_id) = found;
        Ok(Instance {
            portal_url: p
                .portal_url
                .unwrap_or_else(|| format!("https://{identity_store_id}.awsapps.com/start")),
            instance_arn,
            identity_store_id,
            region,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionSetParams {
    /// The Identity Center instance ARN (from `sso-admin.find-instance`).
    pub instance_arn: String,
    /// Permission set name, e.g. `AdministratorAccess`.
    pub name: String,
    /// Session length as an ISO-8601 duration, 1 to 12 hours: `PT1H`, `PT4H30M`.
    #[serde(default)]
    pub session_duration: SessionDuration,
    /// AWS managed policies to attach, by name (`AdministratorAccess`) or ARN.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// Shown in the console.
    #[serde(default)]
    pub description: Option<String>,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PermissionSet {
    /// The permission set ARN.
    pub arn: String,
    /// True when this run created it.
    pub created: bool,
    /// True when this run changed its session duration or description.
    pub updated: bool,
    /// Policy ARNs this run attached.
    pub attached: Vec<String>,
    /// True when this run provisioned it again to the accounts it is assigned in, so that their
    /// roles carry the change.
    pub provisioned: bool,
    /// The ProvisionPermissionSet request id, when one was made.
    pub provision_request_id: Option<String>,
}

/// What a permission set is now.
pub(crate) struct Found {
    pub(crate) arn: String,
    session_duration: Option<String>,
    description: Option<String>,
}

pub struct EnsurePermissionSet;

fn policy_arn(p: &str) -> String {
    if p.starts_with("arn:") {
        p.to_string()
    } else {
        format!("arn:aws:iam::aws:policy/{p}")
    }
}

pub(crate) async fn find_permission_set(
    client: &aws_sdk_ssoadmin::Client,
    instance_arn: &str,
    name: &str,
) -> Result<Option<Found>, PluginError> {
    let mut pages = client
        .list_permission_sets()
        .instance_arn(instance_arn)
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListPermissionSets", e))?;
        last = page.next_token().map(String::from);
        for arn in page.permission_sets() {
            let d = client
                .describe_permission_set()
                .instance_arn(instance_arn)
                .permission_set_arn(arn)
                .send()
                .await
                .map_err(|e| aws("sso-admin:DescribePermissionSet", e))?;
            if let Some(ps) = d.permission_set() {
                if ps.name() == Some(name) {
                    return Ok(Some(Found {
                        arn: arn.clone(),
                        session_duration: ps.session_duration().map(String::from),
                        description: ps.description().map(String::from),
                    }));
                }
            }
        }
    }
    crate::error::whole_list("sso-admin:ListPermissionSets", last.as_deref())?;
    Ok(None)
}

async fn attached_policies(
    client: &aws_sdk_ssoadmin::Client,
    instance_arn: &str,
    ps: &str,
) -> Result<HashSet<String>, PluginError> {
    let mut out = HashSet::new();
    let mut pages = client
        .list_managed_policies_in_permission_set()
        .instance_arn(instance_arn)
        .permission_set_arn(ps)
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListManagedPoliciesInPermissionSet", e))?;
        last = page.next_token().map(String::from);
        out.extend(
            page.attached_managed_policies()
                .iter()
                .filter_map(|p| p.arn().map(String::from)),
        );
    }
    crate::error::whole_list("sso-admin:ListManagedPoliciesInPermissionSet", last.as_deref())?;
    Ok(out)
}

impl Action for EnsurePermissionSet {
    type Params = PermissionSetParams;
    type Outputs = PermissionSet;
    const NAME: &'static str = "sso-admin.ensure-permission-set";
    const SUMMARY: &'static str = "Creates a permission set unless one of that name exists, brings its session duration, description and managed policies to what is asked, and provisions a changed set again to the accounts it is assigned in.";
    const MUTATES: bool = true;

    fn cli(p: &Value) -> Vec<String> {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("NAME");
        let mut v = vec![crate::command([
            "aws",
            "sso-admin",
            "create-permission-set",
            "--instance-arn",
            "INSTANCE_ARN",
            "--name",
            name,
            "--session-duration",
            p.get("session_duration").and_then(Value::as_str).unwrap_or("PT1H"),
        ])];
        for pol in p
            .get("managed_policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            v.push(crate::command([
                "aws",
                "sso-admin",
                "attach-managed-policy-to-permission-set",
                "--instance-arn",
                "INSTANCE_ARN",
                "--permission-set-arn",
                "PS_ARN",
                "--managed-policy-arn",
                &policy_arn(pol),
            ]));
        }
        v.push("aws sso-admin provision-permission-set --instance-arn INSTANCE_ARN --permission-set-arn PS_ARN --target-type ALL_PROVISIONED_ACCOUNTS   # after a change".into());
        v.push("aws sso-admin describe-permission-set-provisioning-status --instance-arn INSTANCE_ARN --provision-permission-set-request-id REQUEST_ID".into());
        v
    }

    async fn plan(ctx: &Context, p: &PermissionSetParams) -> Result<Plan, PluginError> {
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let mut plan = Plan::default();
        match find_permission_set(&client, &p.instance_arn, &p.name).await? {
            Some(found) => {
                plan.push(Verdict::Exists, format!("permission set {} ({})", p.name, found.arn));
                let mut changed = false;
                if found.session_duration.as_deref() != Some(p.session_duration.as_str()) {
                    changed = true;
                    plan.push(
                        Verdict::WouldChange,
                        format!("session duration to {}", p.session_duration.as_str()),
                    );
                }
                if description_differs(&found, p) {
                    changed = true;
                    plan.push(Verdict::WouldChange, "description");
                }
                let have = attached_policies(&client, &p.instance_arn, &found.arn).await?;
                for pol in &p.managed_policies {
                    let a = policy_arn(pol);
                    let v = if have.contains(&a) {
                        Verdict::Exists
                    } else {
                        changed = true;
                        Verdict::WouldCreate
                    };
                    plan.push(v, format!("managed policy {a}"));
                }
                if changed || !stale_accounts(&client, &p.instance_arn, &found.arn).await?.is_empty() {
                    plan.push(
                        Verdict::WouldChange,
                        "provision it again to the accounts it is assigned in (their roles get the change)",
                    );
                }
            }
            None => {
                plan.push(
                    Verdict::WouldCreate,
                    format!("permission set {} ({})", p.name, p.session_duration.as_str()),
                );
                for pol in &p.managed_policies {
                    plan.push(Verdict::WouldCreate, format!("managed policy {}", policy_arn(pol)));
                }
            }
        }
        Ok(plan)
    }

    async fn apply(ctx: &Context, p: PermissionSetParams) -> Result<PermissionSet, PluginError> {
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let mut created = false;
        let mut updated = false;
        let arn = match find_permission_set(&client, &p.instance_arn, &p.name).await? {
            Some(found) => {
                let duration_differs = found.session_duration.as_deref() != Some(p.session_duration.as_str());
                if duration_differs || description_differs(&found, &p) {
                    let target = format!("{} session {}", p.name, p.session_duration.as_str());
                    let update = client
                        .update_permission_set()
                        .instance_arn(&p.instance_arn)
                        .permission_set_arn(&found.arn)
                        .session_duration(p.session_duration.as_str())
                        .set_description(p.description.clone())
                        .send();
                    Mutation::new(ctx, "sso-admin:UpdatePermissionSet", target)
                        .send(update, |_| None)
                        .await?;
                    updated = true;
                }
                found.arn
            }
            None => {
                let create = client
                    .create_permission_set()
                    .instance_arn(&p.instance_arn)
                    .name(&p.name)
                    .session_duration(p.session_duration.as_str())
                    .set_description(p.description.clone())
                    .send();
                match Mutation::new(ctx, "sso-admin:CreatePermissionSet", &p.name)
                    .send(create, |_| None)
                    .await
                {
                    Ok(out) => {
                        created = true;
                        out.permission_set()
                            .and_then(|ps| ps.permission_set_arn())
                            .unwrap_or_default()
                            .to_string()
                    }
                    // A permission set of that name appeared meanwhile: use it.
                    Err(e) if e.code() == Some("ConflictException") => {
                        find_permission_set(&client, &p.instance_arn, &p.name)
                            .await?
                            .map(|f| f.arn)
                            .ok_or(e)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let have = attached_policies(&client, &p.instance_arn, &arn).await?;
        let mut attached = Vec::new();
        for pol in &p.managed_policies {
            let a = policy_arn(pol);
            if have.contains(&a) {
                continue;
            }
            let attach = client
                .attach_managed_policy_to_permission_set()
                .instance_arn(&p.instance_arn)
                .permission_set_arn(&arn)
                .managed_policy_arn(&a)
                .send();
            match Mutation::new(
                ctx,
                "sso-admin:AttachManagedPolicyToPermissionSet",
                format!("{} {a}", p.name),
            )
            .send(attach, |_| None)
            .await
            {
                Ok(_) => attached.push(a),
                // Attached meanwhile: as wanted.
                Err(e) if e.code() == Some("ConflictException") => {}
                Err(e) => return Err(e),
            }
        }
        // A permission set lives on in each account it is assigned in as an IAM role; a change
        // reaches those roles only when the set is provisioned again. A new set is provisioned
        // by its first assignment. An existing one is provisioned again when this run changed
        // it, or when AWS reports accounts still on an older version (a run that stopped
        // between the change and the provisioning).
        let mut provision_request_id = None;
        let changed = updated || !attached.is_empty();
        if !created && (changed || !stale_accounts(&client, &p.instance_arn, &arn).await?.is_empty()) {
            provision_request_id = Some(provision(ctx, &client, &p.instance_arn, &arn, &p.name).await?);
        }
        Ok(PermissionSet {
            arn,
            created,
            updated,
            attached,
            provisioned: provision_request_id.is_some(),
            provision_request_id,
        })
    }
}

fn description_differs(found: &Found, p: &PermissionSetParams) -> bool {
    p.description
        .as_deref()
        .is_some_and(|d| found.description.as_deref().unwrap_or("") != d)
}

/// Accounts whose role is not the latest version of the permission set, all pages.
async fn stale_accounts(
    client: &aws_sdk_ssoadmin::Client,
    instance_arn: &str,
    ps: &str,
) -> Result<Vec<String>, PluginError> {
    let mut out = Vec::new();
    let mut pages = client
        .list_accounts_for_provisioned_permission_set()
        .instance_arn(instance_arn)
        .permission_set_arn(ps)
        .provisioning_status(ProvisioningStatus::LatestPermissionSetNotProvisioned)
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListAccountsForProvisionedPermissionSet", e))?;
        last = page.next_token().map(String::from);
        out.extend(page.account_ids().iter().cloned());
    }
    crate::error::whole_list("sso-admin:ListAccountsForProvisionedPermissionSet", last.as_deref())?;
    Ok(out)
}

/// ProvisionPermissionSet to every account the set is provisioned in, polled to SUCCEEDED.
async fn provision(
    ctx: &Context,
    client: &aws_sdk_ssoadmin::Client,
    instance_arn: &str,
    ps: &str,
    name: &str,
) -> Result<String, PluginError> {
    let provisioning = Mutation::new(
        ctx,
        "sso-admin:ProvisionPermissionSet",
        format!("{name} to all provisioned accounts"),
    );
    let mut attempt = 0u32;
    let out = loop {
        let send = client
            .provision_permission_set()
            .instance_arn(instance_arn)
            .permission_set_arn(ps)
            .target_type(ProvisionTargetType::AllProvisionedAccounts)
            .send();
        let request_id: fn(&ProvisionPermissionSetOutput) -> Option<&str> =
            |o| o.permission_set_provisioning_status().and_then(|s| s.request_id());
        match provisioning.send(send, request_id).await {
            Ok(out) => break out,
            // Another operation on the set is running: wait and ask again (provisioning the
            // latest version twice is harmless).
            Err(e) if e.code() == Some("ConflictException") && attempt < 8 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    };
    let st = out.permission_set_provisioning_status();
    let req = st.and_then(|s| s.request_id()).unwrap_or_default().to_string();
    match st.and_then(|s| s.status()) {
        Some(StatusValues::Succeeded) => {}
        Some(StatusValues::Failed) => {
            return Err(PluginError::Failed {
                what: format!("provisioning of permission set {name}"),
                reason: st
                    .and_then(|s| s.failure_reason())
                    .unwrap_or("no reason given")
                    .to_string(),
                request_id: Some(req),
                hint: Some(
                    "fix the cause (for example the IAM role quota of an account), then run the step again".into(),
                ),
            });
        }
        _ => wait_for_provisioning(ctx, client, instance_arn, &req, name).await?,
    }
    ctx.emit(Event::Note {
        message: format!("permission set {name} provisioned again to the accounts it is assigned in"),
    })?;
    Ok(req)
}

/// Polls one ProvisionPermissionSet request to SUCCEEDED or FAILED.
pub async fn wait_for_provisioning(
    ctx: &Context,
    client: &aws_sdk_ssoadmin::Client,
    instance_arn: &str,
    request_id: &str,
    name: &str,
) -> Result<(), PluginError> {
    until_done(
        ctx,
        &format!("provisioning of permission set {name}"),
        Some(request_id),
        || async {
            let out = client
                .describe_permission_set_provisioning_status()
                .instance_arn(instance_arn)
                .provision_permission_set_request_id(request_id)
                .send()
                .await
                .map_err(|e| aws("sso-admin:DescribePermissionSetProvisioningStatus", e))?;
            let st = out.permission_set_provisioning_status();
            Ok(poll_status(
                st.and_then(|s| s.status()),
                st.and_then(|s| s.failure_reason()),
            ))
        },
    )
    .await
}
