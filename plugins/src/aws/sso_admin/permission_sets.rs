//! Permission sets: made once by name in their instance, brought to what the runbook asks, and
//! provisioned again to the accounts they are assigned in after a change.

use aws_sdk_ssoadmin::operation::provision_permission_set::ProvisionPermissionSetOutput;
use aws_sdk_ssoadmin::types::{ProvisionTargetType, ProvisioningStatus, StatusValues};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::poll_status;
use crate::action::{Action, Preview, Verdict};
use crate::aws::mutation::{Mutation, Sent};
use crate::context::{Context, Event};
use crate::duration::SessionDuration;
use crate::error::{PluginError, aws};
use crate::poll::until_done;

mod drift;
use drift::{Inline, drift, wanted_inline};

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
    /// AWS managed policies, by name (`AdministratorAccess`) or ARN: exactly these are attached
    /// (one attached that is not listed is detached).
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// The inline policy, a JSON policy document; without it the set has none (one it has is
    /// deleted).
    #[serde(default)]
    pub inline_policy: Option<String>,
    /// Shown in the console; left as it is when not given.
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
    /// True when this run changed its session duration, description or inline policy.
    pub updated: bool,
    /// Policy ARNs this run attached.
    pub attached: Vec<String>,
    /// Policy ARNs this run detached (attached, not asked for), and customer managed policy
    /// references it detached, as `customer-managed:PATHNAME`.
    pub detached: Vec<String>,
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

impl Action for EnsurePermissionSet {
    type Params = PermissionSetParams;
    type Outputs = PermissionSet;
    const NAME: &'static str = "sso-admin.ensure-permission-set";
    const SUMMARY: &'static str = "Creates a permission set unless one of that name exists, brings its session duration, managed policies and inline policy to exactly what is asked (detaching what is not listed) and its description when given, and provisions a changed set again to the accounts it is assigned in.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "sso-admin:ListPermissionSets",
        "sso-admin:DescribePermissionSet",
        "sso-admin:ListManagedPoliciesInPermissionSet",
        "sso-admin:GetInlinePolicyForPermissionSet",
        "sso-admin:CreatePermissionSet",
        "sso-admin:UpdatePermissionSet",
        "sso-admin:AttachManagedPolicyToPermissionSet",
        "sso-admin:DetachManagedPolicyFromPermissionSet",
        "sso-admin:ListCustomerManagedPolicyReferencesInPermissionSet",
        "sso-admin:DetachCustomerManagedPolicyReferenceFromPermissionSet",
        "sso-admin:PutInlinePolicyToPermissionSet",
        "sso-admin:DeleteInlinePolicyFromPermissionSet",
        "sso-admin:ListAccountsForProvisionedPermissionSet",
        "sso-admin:ProvisionPermissionSet",
        "sso-admin:DescribePermissionSetProvisioningStatus",
    ];
    const CONVERGES: &'static str = "A permission set is known by its name in the instance (AWS allows one set per name), so the set of that name is this step's, whoever made it. All of it is brought to what the step says: the session duration, exactly the managed policies listed (others are detached), exactly the inline policy given (none when not given), and the description when one is given; a change is then provisioned to the accounts the set is assigned in. A customer managed policy reference is not among its parameters, so none is asked: one found is detached (it would grant what the step does not say). A permissions boundary, the relay state and tags are left as they are (the local emulator has no permissions-boundary API to test a repair against).";

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
        v.push("aws sso-admin list-managed-policies-in-permission-set --instance-arn INSTANCE_ARN --permission-set-arn PS_ARN   # detach-managed-policy-from-permission-set for each one not listed".into());
        v.push(if p.get("inline_policy").is_some() {
            "aws sso-admin put-inline-policy-to-permission-set --instance-arn INSTANCE_ARN --permission-set-arn PS_ARN --inline-policy file://policy.json".into()
        } else {
            "aws sso-admin delete-inline-policy-from-permission-set --instance-arn INSTANCE_ARN --permission-set-arn PS_ARN   # if it has one".into()
        });
        v.push("aws sso-admin provision-permission-set --instance-arn INSTANCE_ARN --permission-set-arn PS_ARN --target-type ALL_PROVISIONED_ACCOUNTS   # after a change".into());
        v.push("aws sso-admin describe-permission-set-provisioning-status --instance-arn INSTANCE_ARN --provision-permission-set-request-id REQUEST_ID".into());
        v
    }

    async fn plan(ctx: &Context, p: &PermissionSetParams) -> Result<Preview, PluginError> {
        wanted_inline(p)?;
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let mut preview = Preview::default();
        match find_permission_set(&client, &p.instance_arn, &p.name).await? {
            Some(found) => {
                preview.push(Verdict::Exists, format!("permission set {} ({})", p.name, found.arn));
                let d = drift(&client, p, &found).await?;
                if d.duration {
                    preview.push(
                        Verdict::WouldChange,
                        format!("session duration to {}", p.session_duration.as_str()),
                    );
                }
                if d.description {
                    preview.push(Verdict::WouldChange, "description");
                }
                for pol in &p.managed_policies {
                    let a = policy_arn(pol);
                    let v = if d.attach.contains(&a) {
                        Verdict::WouldCreate
                    } else {
                        Verdict::Exists
                    };
                    preview.push(v, format!("managed policy {a}"));
                }
                for a in &d.detach {
                    preview.push(Verdict::WouldChange, format!("detach managed policy {a} (not listed)"));
                }
                for (path, name) in &d.customer {
                    preview.push(
                        Verdict::WouldChange,
                        format!("detach customer managed policy reference {path}{name} (none is asked)"),
                    );
                }
                match &d.inline {
                    Inline::Same => {}
                    Inline::Put(_) => preview.push(Verdict::WouldChange, "inline policy to the one given"),
                    Inline::Delete => preview.push(Verdict::WouldChange, "delete the inline policy (none is given)"),
                }
                if d.changes_roles() || !stale_accounts(&client, &p.instance_arn, &found.arn).await?.is_empty() {
                    preview.push(
                        Verdict::WouldChange,
                        "provision it again to the accounts it is assigned in (their roles get the change)",
                    );
                }
            }
            None => {
                preview.push(
                    Verdict::WouldCreate,
                    format!("permission set {} ({})", p.name, p.session_duration.as_str()),
                );
                for pol in &p.managed_policies {
                    preview.push(Verdict::WouldCreate, format!("managed policy {}", policy_arn(pol)));
                }
                if p.inline_policy.is_some() {
                    preview.push(Verdict::WouldCreate, "inline policy");
                }
            }
        }
        Ok(preview)
    }

    async fn apply(ctx: &Context, p: PermissionSetParams) -> Result<PermissionSet, PluginError> {
        wanted_inline(&p)?;
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let mut created = false;
        let found = match find_permission_set(&client, &p.instance_arn, &p.name).await? {
            Some(found) => found,
            None => {
                let send = || {
                    client
                        .create_permission_set()
                        .instance_arn(&p.instance_arn)
                        .name(&p.name)
                        .session_duration(p.session_duration.as_str())
                        .set_description(p.description.clone())
                        .customize()
                        .config_override(
                            aws_sdk_ssoadmin::config::Builder::default()
                                .retry_config(aws_config::retry::RetryConfig::disabled()),
                        )
                        .send()
                };
                let look = || find_permission_set(&client, &p.instance_arn, &p.name);
                match Mutation::new(ctx, "sso-admin:CreatePermissionSet", &p.name)
                    .send_looking(send, look, |_| None)
                    .await
                {
                    // Our create's answer was lost and a set of the name is there (AWS allows
                    // one per name): brought to what the step says below.
                    Ok(Sent::Found(found)) => {
                        created = true;
                        found
                    }
                    Ok(Sent::Answer(out)) => {
                        created = true;
                        let ps = out.permission_set();
                        Found {
                            arn: ps
                                .and_then(|ps| ps.permission_set_arn())
                                .unwrap_or_default()
                                .to_string(),
                            session_duration: Some(p.session_duration.as_str().to_string()),
                            description: p.description.clone(),
                        }
                    }
                    // A permission set of that name exists after all (AWS allows one per name):
                    // it is this step's, and is brought to what the step says below.
                    Err(e) if e.code() == Some("ConflictException") => {
                        find_permission_set(&client, &p.instance_arn, &p.name).await?.ok_or(e)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let arn = found.arn.clone();
        let d = drift(&client, &p, &found).await?;
        let mut updated = false;
        if d.duration || d.description {
            let target = format!("{} session {}", p.name, p.session_duration.as_str());
            let update = client
                .update_permission_set()
                .instance_arn(&p.instance_arn)
                .permission_set_arn(&arn)
                .session_duration(p.session_duration.as_str())
                .set_description(p.description.clone())
                .send();
            Mutation::new(ctx, "sso-admin:UpdatePermissionSet", target)
                .send(update, |_| None)
                .await?;
            updated = true;
        }
        let mut attached = Vec::new();
        for a in &d.attach {
            let attach = client
                .attach_managed_policy_to_permission_set()
                .instance_arn(&p.instance_arn)
                .permission_set_arn(&arn)
                .managed_policy_arn(a)
                .send();
            match Mutation::new(
                ctx,
                "sso-admin:AttachManagedPolicyToPermissionSet",
                format!("{} {a}", p.name),
            )
            .send(attach, |_| None)
            .await
            {
                Ok(_) => attached.push(a.clone()),
                // Attached meanwhile: as wanted.
                Err(e) if e.code() == Some("ConflictException") => {}
                Err(e) => return Err(e),
            }
        }
        let mut detached = Vec::new();
        for a in &d.detach {
            let detach = client
                .detach_managed_policy_from_permission_set()
                .instance_arn(&p.instance_arn)
                .permission_set_arn(&arn)
                .managed_policy_arn(a)
                .send();
            match Mutation::new(
                ctx,
                "sso-admin:DetachManagedPolicyFromPermissionSet",
                format!("{} {a}", p.name),
            )
            .send(detach, |_| None)
            .await
            {
                Ok(_) => detached.push(a.clone()),
                // Detached meanwhile: as wanted.
                Err(e) if e.code() == Some("ResourceNotFoundException") => {}
                Err(e) => return Err(e),
            }
        }
        for (path, name) in &d.customer {
            let reference = aws_sdk_ssoadmin::types::CustomerManagedPolicyReference::builder()
                .name(name)
                .path(path)
                .build()
                .map_err(|e| PluginError::Other(e.to_string()))?;
            let detach = client
                .detach_customer_managed_policy_reference_from_permission_set()
                .instance_arn(&p.instance_arn)
                .permission_set_arn(&arn)
                .customer_managed_policy_reference(reference)
                .send();
            match Mutation::new(
                ctx,
                "sso-admin:DetachCustomerManagedPolicyReferenceFromPermissionSet",
                format!("{} {path}{name}", p.name),
            )
            .send(detach, |_| None)
            .await
            {
                Ok(_) => detached.push(format!("customer-managed:{path}{name}")),
                Err(e) if e.code() == Some("ResourceNotFoundException") => {}
                Err(e) => return Err(e),
            }
        }
        match &d.inline {
            Inline::Same => {}
            Inline::Put(doc) => {
                let put = client
                    .put_inline_policy_to_permission_set()
                    .instance_arn(&p.instance_arn)
                    .permission_set_arn(&arn)
                    .inline_policy(doc)
                    .send();
                Mutation::new(ctx, "sso-admin:PutInlinePolicyToPermissionSet", &p.name)
                    .send(put, |_| None)
                    .await?;
            }
            Inline::Delete => {
                let delete = client
                    .delete_inline_policy_from_permission_set()
                    .instance_arn(&p.instance_arn)
                    .permission_set_arn(&arn)
                    .send();
                match Mutation::new(ctx, "sso-admin:DeleteInlinePolicyFromPermissionSet", &p.name)
                    .send(delete, |_| None)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.code() == Some("ResourceNotFoundException") => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // A permission set lives on in each account it is assigned in as an IAM role; a change
        // reaches those roles only when the set is provisioned again. A new set is provisioned
        // by its first assignment. An existing one is provisioned again when this run changed
        // it, or when AWS reports accounts still on an older version (a run that stopped
        // between the change and the provisioning).
        let mut provision_request_id = None;
        if !created && (d.changes_roles() || !stale_accounts(&client, &p.instance_arn, &arn).await?.is_empty()) {
            provision_request_id = Some(provision(ctx, &client, &p.instance_arn, &arn, &p.name).await?);
        }
        Ok(PermissionSet {
            arn,
            created,
            updated: updated || d.inline != Inline::Same,
            attached,
            detached,
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
