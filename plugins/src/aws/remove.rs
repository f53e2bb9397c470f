//! The way back: removing what the guide's runbooks create. Each action looks first and treats
//! "already absent" as success, so a re-run (or a resume after a lost answer) is harmless.

use std::collections::BTreeSet;

use aws_sdk_ssoadmin::types::{StatusValues, TargetType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use aws_sdk_ssoadmin::operation::delete_account_assignment::DeleteAccountAssignmentOutput;

use super::identitystore::user_id;
use super::mutation::Mutation;
use super::sso_admin::{
    AssignmentParams, accounts_of, assigned_accounts, find_permission_set, per_account, poll_status,
};
use crate::action::{Action, Preview, Verdict};
use crate::context::Context;
use crate::error::{PluginError, aws};
use crate::poll::until_done;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RemovedAssignment {
    /// The account.
    pub account_id: String,
    /// `absent` (nothing to remove), `removed`, or `failed: REASON`.
    pub status: String,
    /// The deletion request id, when one was made.
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RemovedAssignments {
    /// One entry per account.
    pub assignments: Vec<RemovedAssignment>,
    /// How many this run removed.
    pub removed: usize,
}

pub struct RemoveAssignment;

async fn remove_one(
    ctx: &Context,
    client: &aws_sdk_ssoadmin::Client,
    p: &AssignmentParams,
    account: String,
) -> Result<RemovedAssignment, PluginError> {
    let removing = Mutation::new(
        ctx,
        "sso-admin:DeleteAccountAssignment",
        format!(
            "{} {} {} in {account}",
            p.principal_type.sdk().as_str(),
            p.principal_id,
            p.permission_set_arn
        ),
    );
    let mut attempt = 0u32;
    let out = loop {
        let delete = client
            .delete_account_assignment()
            .instance_arn(&p.instance_arn)
            .permission_set_arn(&p.permission_set_arn)
            .principal_type(p.principal_type.sdk())
            .principal_id(&p.principal_id)
            .target_type(TargetType::AwsAccount)
            .target_id(&account)
            .send();
        let request_id: fn(&DeleteAccountAssignmentOutput) -> Option<&str> =
            |o| o.account_assignment_deletion_status().and_then(|s| s.request_id());
        match removing.send(delete, request_id).await {
            Ok(out) => break out,
            Err(e) => match e.code() {
                // Removed meanwhile (or by the answer we lost): what we wanted.
                Some("ResourceNotFoundException") => {
                    return Ok(RemovedAssignment {
                        account_id: account,
                        status: "absent".into(),
                        request_id: None,
                    });
                }
                Some("ConflictException") if attempt < 8 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
                }
                // The journal's own error stops the fan-out.
                _ if matches!(e, PluginError::Journal(_)) => return Err(e),
                _ => {
                    return Ok(RemovedAssignment {
                        account_id: account,
                        status: format!("failed: {}", e.with_permission()),
                        request_id: None,
                    });
                }
            },
        }
    };
    let st = out.account_assignment_deletion_status();
    let req = st.and_then(|s| s.request_id()).map(String::from);
    let outcome = match st.and_then(|s| s.status()) {
        Some(StatusValues::Succeeded) => Ok(()),
        Some(StatusValues::Failed) => Err(st
            .and_then(|s| s.failure_reason())
            .unwrap_or("no reason given")
            .to_string()),
        _ => match &req {
            Some(r) => until_done(
                ctx,
                &format!("removal of the assignment in {account}"),
                Some(r),
                || async {
                    let out = client
                        .describe_account_assignment_deletion_status()
                        .instance_arn(&p.instance_arn)
                        .account_assignment_deletion_request_id(r)
                        .send()
                        .await
                        .map_err(|e| aws("sso-admin:DescribeAccountAssignmentDeletionStatus", e))?;
                    let st = out.account_assignment_deletion_status();
                    Ok(poll_status(
                        st.and_then(|s| s.status()),
                        st.and_then(|s| s.failure_reason()),
                    ))
                },
            )
            .await
            .map_err(|e| match e {
                PluginError::Failed { reason, .. } => reason,
                e => e.to_string(),
            }),
            None => Err("AWS returned no request id to follow".into()),
        },
    };
    Ok(RemovedAssignment {
        account_id: account,
        status: match outcome {
            Ok(()) => "removed".into(),
            Err(reason) => format!("failed: {reason}"),
        },
        request_id: req,
    })
}

impl Action for RemoveAssignment {
    type Params = AssignmentParams;
    type Outputs = RemovedAssignments;
    const NAME: &'static str = "sso-admin.remove-assignment";
    const SUMMARY: &'static str = "Removes a user's or group's assignment of a permission set in one or many accounts, and waits for each removal; an assignment already absent is success.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "sso-admin:ListAccountAssignmentsForPrincipal",
        "sso-admin:DeleteAccountAssignment",
        "sso-admin:DescribeAccountAssignmentDeletionStatus",
    ];

    fn cli(p: &Value) -> Vec<String> {
        vec![
            "aws sso-admin list-account-assignments-for-principal --instance-arn INSTANCE_ARN --principal-id PRINCIPAL_ID --principal-type USER".into(),
            crate::command([
                "aws",
                "sso-admin",
                "delete-account-assignment",
                "--instance-arn",
                "INSTANCE_ARN",
                "--permission-set-arn",
                "PS_ARN",
                "--principal-type",
                p.get("principal_type").and_then(Value::as_str).unwrap_or("USER"),
                "--principal-id",
                "PRINCIPAL_ID",
                "--target-type",
                "AWS_ACCOUNT",
                "--target-id",
                "ACCOUNT_ID",
            ]),
            "aws sso-admin describe-account-assignment-deletion-status --instance-arn INSTANCE_ARN --account-assignment-deletion-request-id REQUEST_ID".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &AssignmentParams) -> Result<Preview, PluginError> {
        let accounts = accounts_of(p)?;
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let have = assigned_accounts(&client, p).await?;
        let mut preview = Preview::default();
        for a in accounts {
            if have.contains(&a) {
                preview.push(Verdict::WouldChange, format!("remove the assignment in account {a}"));
            } else {
                preview.push(
                    Verdict::Exists,
                    format!("no assignment in account {a} (already absent)"),
                );
            }
        }
        Ok(preview)
    }

    async fn apply(ctx: &Context, p: AssignmentParams) -> Result<RemovedAssignments, PluginError> {
        let accounts = accounts_of(&p)?;
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let have = assigned_accounts(&client, &p).await?;
        let (present, absent): (Vec<String>, Vec<String>) = accounts.into_iter().partition(|a| have.contains(a));
        let mut results: Vec<RemovedAssignment> = absent
            .into_iter()
            .map(|a| RemovedAssignment {
                account_id: a,
                status: "absent".into(),
                request_id: None,
            })
            .collect();
        let made = per_account(ctx, p.max_in_flight, present, |a| remove_one(ctx, &client, &p, a)).await?;
        let removed = made.iter().filter(|r| r.status == "removed").count();
        results.extend(made);
        let failed: Vec<String> = results
            .iter()
            .filter(|r| r.status.starts_with("failed"))
            .map(|r| format!("{}: {}", r.account_id, r.status))
            .collect();
        if !failed.is_empty() {
            return Err(PluginError::Failed {
                what: format!("{} of {} assignment removals", failed.len(), results.len()),
                reason: failed.join("; "),
                request_id: None,
                hint: Some("the others are done; run the step again to retry only the failed ones".into()),
            });
        }
        Ok(RemovedAssignments {
            assignments: results,
            removed,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveUserParams {
    /// The identity store id (`d-xxxxxxxxxx`, from `sso-admin.find-instance`).
    pub identity_store_id: String,
    /// Sign-in name of the user to delete.
    pub user_name: String,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RemovedUser {
    /// The user's id (empty when there was no such user).
    pub user_id: String,
    /// True when this run deleted the user.
    pub removed: bool,
}

pub struct RemoveUser;

impl Action for RemoveUser {
    type Params = RemoveUserParams;
    type Outputs = RemovedUser;
    const NAME: &'static str = "identitystore.remove-user";
    const SUMMARY: &'static str =
        "Deletes a user from the Identity Center directory by user name; a user already absent is success.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &["identitystore:GetUserId", "identitystore:DeleteUser"];

    fn cli(p: &Value) -> Vec<String> {
        let name = p.get("user_name").and_then(Value::as_str).unwrap_or("USER_NAME");
        vec![
            crate::command([
                "aws",
                "identitystore",
                "get-user-id",
                "--identity-store-id",
                "STORE_ID",
                "--alternate-identifier",
                &super::identitystore::user_name_identifier(name),
            ]),
            "aws identitystore delete-user --identity-store-id STORE_ID --user-id USER_ID".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &RemoveUserParams) -> Result<Preview, PluginError> {
        Ok(
            match user_id(ctx, p.region.as_deref(), &p.identity_store_id, &p.user_name).await? {
                Some(id) => Preview::one(Verdict::WouldChange, format!("delete user {} ({id})", p.user_name)),
                None => Preview::one(Verdict::Exists, format!("no user {} (already absent)", p.user_name)),
            },
        )
    }

    async fn apply(ctx: &Context, p: RemoveUserParams) -> Result<RemovedUser, PluginError> {
        let region = p.region.as_deref();
        let Some(id) = user_id(ctx, region, &p.identity_store_id, &p.user_name).await? else {
            return Ok(RemovedUser {
                user_id: String::new(),
                removed: false,
            });
        };
        let delete = ctx
            .identitystore(region)
            .await?
            .delete_user()
            .identity_store_id(&p.identity_store_id)
            .user_id(&id)
            .send();
        let removed = match Mutation::new(ctx, "identitystore:DeleteUser", format!("{} ({id})", p.user_name))
            .send(delete, |_| None)
            .await
        {
            Ok(_) => true,
            // Removed meanwhile: what we wanted.
            Err(e) if e.code() == Some("ResourceNotFoundException") => false,
            Err(e) => return Err(e),
        };
        Ok(RemovedUser { user_id: id, removed })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemovePermissionSetParams {
    /// The Identity Center instance ARN (from `sso-admin.find-instance`).
    pub instance_arn: String,
    /// Name of the permission set to delete.
    pub name: String,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RemovedPermissionSet {
    /// The permission set ARN (empty when there was none of that name).
    pub arn: String,
    /// True when this run deleted it.
    pub removed: bool,
}

pub struct RemovePermissionSet;

/// Accounts in which the permission set is assigned to anyone: the accounts it is provisioned
/// to, and the organization's accounts (an assignment can exist only in those), each asked.
async fn assigned_in(
    ctx: &Context,
    client: &aws_sdk_ssoadmin::Client,
    instance: &str,
    ps: &str,
) -> Result<Vec<String>, PluginError> {
    let mut accounts = BTreeSet::new();
    let mut pages = client
        .list_accounts_for_provisioned_permission_set()
        .instance_arn(instance)
        .permission_set_arn(ps)
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListAccountsForProvisionedPermissionSet", e))?;
        last = page.next_token().map(String::from);
        accounts.extend(page.account_ids().iter().cloned());
    }
    crate::error::whole_list("sso-admin:ListAccountsForProvisionedPermissionSet", last.as_deref())?;
    match super::organizations::all_accounts(ctx).await {
        Ok(all) => accounts.extend(all.into_iter().map(|a| a.id)),
        Err(e)
            if matches!(
                e.code(),
                Some("AWSOrganizationsNotInUseException" | "AccessDeniedException")
            ) => {}
        Err(e) => return Err(e),
    }
    let mut assigned = Vec::new();
    for account in accounts {
        let page = client
            .list_account_assignments()
            .instance_arn(instance)
            .account_id(&account)
            .permission_set_arn(ps)
            .max_results(1)
            .send()
            .await
            .map_err(|e| aws("sso-admin:ListAccountAssignments", e))?;
        if !page.account_assignments().is_empty() {
            assigned.push(account);
        }
    }
    Ok(assigned)
}

fn still_assigned(name: &str, accounts: &[String]) -> PluginError {
    PluginError::Check {
        message: format!(
            "permission set {name} is still assigned in account{} {}",
            if accounts.len() == 1 { "" } else { "s" },
            accounts.join(", ")
        ),
        hint: Some("remove those assignments first (sso-admin.remove-assignment), then run this step again".into()),
    }
}

impl Action for RemovePermissionSet {
    type Params = RemovePermissionSetParams;
    type Outputs = RemovedPermissionSet;
    const NAME: &'static str = "sso-admin.remove-permission-set";
    const SUMMARY: &'static str = "Deletes a permission set by name; refused while it is assigned in any account; a set already absent is success.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "sso-admin:ListPermissionSets",
        "sso-admin:DescribePermissionSet",
        "sso-admin:ListAccountsForProvisionedPermissionSet",
        "sso-admin:ListAccountAssignments",
        "sso-admin:DeletePermissionSet",
    ];

    fn cli(_: &Value) -> Vec<String> {
        vec![
            "aws sso-admin list-accounts-for-provisioned-permission-set --instance-arn INSTANCE_ARN --permission-set-arn PS_ARN".into(),
            "aws sso-admin list-account-assignments --instance-arn INSTANCE_ARN --account-id ACCOUNT_ID --permission-set-arn PS_ARN".into(),
            "aws sso-admin delete-permission-set --instance-arn INSTANCE_ARN --permission-set-arn PS_ARN".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &RemovePermissionSetParams) -> Result<Preview, PluginError> {
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        Ok(match find_permission_set(&client, &p.instance_arn, &p.name).await? {
            None => Preview::one(
                Verdict::Exists,
                format!("no permission set {} (already absent)", p.name),
            ),
            Some(found) => {
                let assigned = assigned_in(ctx, &client, &p.instance_arn, &found.arn).await?;
                if assigned.is_empty() {
                    Preview::one(
                        Verdict::WouldChange,
                        format!("delete permission set {} ({})", p.name, found.arn),
                    )
                } else {
                    Preview::one(Verdict::Check, still_assigned(&p.name, &assigned).to_string())
                }
            }
        })
    }

    async fn apply(ctx: &Context, p: RemovePermissionSetParams) -> Result<RemovedPermissionSet, PluginError> {
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let Some(found) = find_permission_set(&client, &p.instance_arn, &p.name).await? else {
            return Ok(RemovedPermissionSet {
                arn: String::new(),
                removed: false,
            });
        };
        let assigned = assigned_in(ctx, &client, &p.instance_arn, &found.arn).await?;
        if !assigned.is_empty() {
            return Err(still_assigned(&p.name, &assigned));
        }
        let delete = client
            .delete_permission_set()
            .instance_arn(&p.instance_arn)
            .permission_set_arn(&found.arn)
            .send();
        let removed = match Mutation::new(
            ctx,
            "sso-admin:DeletePermissionSet",
            format!("{} ({})", p.name, found.arn),
        )
        .send(delete, |_| None)
        .await
        {
            Ok(_) => true,
            // Removed meanwhile: what we wanted.
            Err(e) if e.code() == Some("ResourceNotFoundException") => false,
            Err(e) => return Err(e),
        };
        Ok(RemovedPermissionSet {
            arn: found.arn,
            removed,
        })
    }
}
