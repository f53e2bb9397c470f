//! Account assignments: a permission set for a user or group in one or many accounts, each made
//! once (a lost answer is looked for, not resent) and waited for until it settles: through one
//! shared listing of the creations in progress ([`in_progress`]), or its own status reads where
//! that listing is refused.

use std::collections::HashSet;

use aws_sdk_ssoadmin::types::{PrincipalType as SdkPrincipal, StatusValues, TargetType};
use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::in_progress::{InProgress, until_not_listed};
use crate::action::{Action, Preview, Verdict};
use crate::aws::mutation::Mutation;
use crate::context::{Context, Event};
use crate::error::{PluginError, aws};
use crate::poll::{Status, until_settled};

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum PrincipalType {
    #[serde(rename = "USER")]
    User,
    #[serde(rename = "GROUP")]
    Group,
}

impl PrincipalType {
    pub(crate) fn sdk(self) -> SdkPrincipal {
        match self {
            PrincipalType::User => SdkPrincipal::User,
            PrincipalType::Group => SdkPrincipal::Group,
        }
    }
}

/// One more than AWS's cap on assignment creations in progress: the cap and the request budget,
/// not this, set the pace.
fn sixteen() -> usize {
    16
}

fn user() -> PrincipalType {
    PrincipalType::User
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentParams {
    /// The Identity Center instance ARN.
    pub instance_arn: String,
    /// The permission set to assign.
    pub permission_set_arn: String,
    /// `USER` or `GROUP`.
    #[serde(default = "user")]
    pub principal_type: PrincipalType,
    /// The user or group id in the identity store.
    pub principal_id: String,
    /// One account to assign in.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Many accounts to assign in; created concurrently.
    #[serde(default)]
    pub account_ids: Option<Vec<String>>,
    /// At most this many assignments are in flight at once.
    #[serde(default = "sixteen")]
    pub max_in_flight: usize,
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AssignmentResult {
    /// The account.
    pub account_id: String,
    /// `exists`, `created` or `failed: REASON`.
    pub status: String,
    /// The creation request id, when one was made.
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Assignments {
    /// One entry per account.
    pub assignments: Vec<AssignmentResult>,
    /// How many this run created.
    pub created: usize,
}

pub struct EnsureAssignment;

pub(crate) fn accounts_of(p: &AssignmentParams) -> Result<Vec<String>, PluginError> {
    let mut v: Vec<String> = p.account_id.iter().cloned().collect();
    v.extend(p.account_ids.iter().flatten().cloned());
    let mut seen = HashSet::new();
    v.retain(|a| seen.insert(a.clone()));
    if v.is_empty() {
        return Err(PluginError::Params {
            action: EnsureAssignment::NAME,
            message: "give `account_id` or `account_ids`".into(),
        });
    }
    // A mistyped id must not read as "nothing to do" (a removal of `""` or `*` found nothing).
    if let Some(bad) = v
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(PluginError::Params {
            action: EnsureAssignment::NAME,
            message: format!("`{bad}` is not an AWS account id (12 digits)"),
        });
    }
    Ok(v)
}

/// Accounts in which the principal already holds the permission set: one paginated read.
pub(crate) async fn assigned_accounts(
    client: &aws_sdk_ssoadmin::Client,
    p: &AssignmentParams,
) -> Result<HashSet<String>, PluginError> {
    let mut out = HashSet::new();
    let mut pages = client
        .list_account_assignments_for_principal()
        .instance_arn(&p.instance_arn)
        .principal_id(&p.principal_id)
        .principal_type(p.principal_type.sdk())
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListAccountAssignmentsForPrincipal", e))?;
        last = page.next_token().map(String::from);
        out.extend(
            page.account_assignments()
                .iter()
                .filter(|a| a.permission_set_arn() == Some(p.permission_set_arn.as_str()))
                .filter_map(|a| a.account_id().map(String::from)),
        );
    }
    crate::error::whole_list("sso-admin:ListAccountAssignmentsForPrincipal", last.as_deref())?;
    Ok(out)
}

/// How one account's assignment ended in [`assign_one`].
enum Outcome {
    /// Final: exists, created or failed.
    Done(AssignmentResult),
    /// Its creation left the listing of creations in progress: SUCCEEDED or FAILED, to be told
    /// by the principal's assignments or its status.
    Settled { account: String, request_id: String },
}

async fn assign_one(
    ctx: &Context,
    client: &aws_sdk_ssoadmin::Client,
    p: &AssignmentParams,
    lister: &InProgress,
    account: String,
) -> Result<Outcome, PluginError> {
    let target = format!("{} {} in {account}", p.principal_type.sdk().as_str(), p.principal_id);
    // AWS keeps at most so many assignment creations in progress and refuses one more: hold a
    // place from before the call until this one is seen settled.
    let _place = match ctx.budget().in_progress("CreateAccountAssignment") {
        Some(cap) => cap.acquire_owned().await.ok(),
        None => None,
    };
    let assigning = Mutation::new(ctx, "sso-admin:CreateAccountAssignment", target);
    assigning.intent()?;
    let created = match create_assignment(ctx, &assigning, client, p, &account).await? {
        Ok(out) => out,
        Err(e) => {
            return Ok(Outcome::Done(AssignmentResult {
                account_id: account,
                status: format!("failed: {}", e.with_permission()),
                request_id: None,
            }));
        }
    };
    let since = std::time::Instant::now();
    let (req, first) = match created {
        Sent::Answer(out) => {
            let st = out.account_assignment_creation_status();
            (
                st.and_then(|s| s.request_id()).map(String::from),
                st.map(|s| (s.status().cloned(), s.failure_reason().map(String::from))),
            )
        }
        Sent::Found(Landed::Assigned) => (None, Some((Some(StatusValues::Succeeded), None))),
        Sent::Found(Landed::Request(id)) => (Some(id), None),
    };
    assigning.answered(req.clone())?;
    let outcome = match first {
        Some((Some(StatusValues::Succeeded), _)) => Ok(()),
        Some((Some(StatusValues::Failed), reason)) => Err(reason.unwrap_or_else(|| "no reason given".into())),
        _ => match &req {
            Some(r) => {
                // One listing of the creations in progress serves every waiting assignment; its
                // own status reads only where the listing is refused.
                if until_not_listed(ctx, lister, client, r, &account, since).await? {
                    return Ok(Outcome::Settled {
                        account,
                        request_id: r.clone(),
                    });
                }
                wait_for_assignment(ctx, client, &p.instance_arn, r, &account, Some(since))
                    .await
                    .map_err(|e| match e {
                        PluginError::Failed { reason, .. } => reason,
                        e => e.to_string(),
                    })
            }
            None => Err("AWS returned no request id to follow".into()),
        },
    };
    Ok(Outcome::Done(finished(account, req, outcome)))
}

fn finished(account: String, request_id: Option<String>, outcome: Result<(), String>) -> AssignmentResult {
    AssignmentResult {
        account_id: account,
        status: match outcome {
            Ok(()) => "created".into(),
            Err(reason) => format!("failed: {reason}"),
        },
        request_id,
    }
}

/// The assignments whose creations settled out of sight (no longer listed in progress):
/// created if the principal's assignments list them, which costs a page per hundred assignments
/// where a status read costs one per assignment; the rest (a failure, a listing that lags) by
/// their own status, FAILED with AWS's reason.
async fn confirm(
    ctx: &Context,
    client: &aws_sdk_ssoadmin::Client,
    p: &AssignmentParams,
    settled: Vec<(String, String)>,
    assigned_before: usize,
) -> Result<Vec<AssignmentResult>, PluginError> {
    let pages = (assigned_before + settled.len()) / 100 + 1;
    let listed = if settled.len() > pages {
        assigned_accounts(client, p).await?
    } else {
        HashSet::new()
    };
    let (made, unsure): (Vec<_>, Vec<_>) = settled.into_iter().partition(|(a, _)| listed.contains(a));
    let mut out: Vec<AssignmentResult> = made.into_iter().map(|(a, r)| finished(a, Some(r), Ok(()))).collect();
    let looked = per_account(ctx, p.max_in_flight, unsure, |pair| async move {
        let (account, request_id) = pair;
        let outcome = wait_for_assignment(ctx, client, &p.instance_arn, &request_id, &account, None)
            .await
            .map_err(|e| match e {
                PluginError::Failed { reason, .. } => reason,
                e => e.to_string(),
            });
        Ok(finished(account, Some(request_id), outcome))
    })
    .await?;
    out.extend(looked);
    Ok(out)
}

/// What sending CreateAccountAssignment came to.
enum Sent {
    /// AWS answered.
    Answer(Box<aws_sdk_ssoadmin::operation::create_account_assignment::CreateAccountAssignmentOutput>),
    /// The answer was lost, and looking showed the call had landed.
    Found(Landed),
}

enum Landed {
    /// The assignment exists.
    Assigned,
    /// A creation request for it is in progress.
    Request(String),
}

/// CreateAccountAssignment has no idempotency token, so the SDK must not retry it blindly: a 5xx,
/// a reset connection or a timeout may come after AWS acted. A throttle or a conflict (another
/// operation on the permission set is running) means AWS did nothing, so it is asked again after a
/// pause; any other transient error is followed by a look (the account's assignments, the creation
/// requests in progress) before asking again. The outer error is the journal's; the inner one is
/// this account's failure.
async fn create_assignment(
    ctx: &Context,
    assigning: &Mutation<'_>,
    client: &aws_sdk_ssoadmin::Client,
    p: &AssignmentParams,
    account: &str,
) -> Result<Result<Sent, PluginError>, PluginError> {
    let mut attempt = 0u32;
    // An attempt whose outcome is unknown keeps the intent open, whatever the later ones say.
    let mut uncertain = false;
    loop {
        let res = client
            .create_account_assignment()
            .instance_arn(&p.instance_arn)
            .permission_set_arn(&p.permission_set_arn)
            .principal_type(p.principal_type.sdk())
            .principal_id(&p.principal_id)
            .target_type(TargetType::AwsAccount)
            .target_id(account)
            .customize()
            .config_override(
                aws_sdk_ssoadmin::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        let e = match res {
            Ok(out) => return Ok(Ok(Sent::Answer(Box::new(out)))),
            Err(e) => aws("sso-admin:CreateAccountAssignment", e),
        };
        let conflict = e.code() == Some("ConflictException");
        if !(conflict || e.is_transient()) || attempt >= 8 {
            return Ok(Err(if uncertain { e } else { assigning.failed(e)? }));
        }
        if !e.is_refusal() {
            uncertain = true;
        }
        if !conflict && !e.is_throttling() {
            match assignment_landed(client, p, account).await {
                Ok(Some(found)) => {
                    ctx.emit(Event::Warning {
                        message: format!(
                            "CreateAccountAssignment in {account} answered {}, but the assignment was made: following it",
                            e.code().unwrap_or("an error")
                        ),
                    })?;
                    return Ok(Ok(Sent::Found(found)));
                }
                Ok(None) => {}
                // Not knowing is not asking again: the assignment may exist.
                Err(look) => return Ok(Err(look)),
            }
        }
        attempt += 1;
        tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
    }
}

/// Whether a CreateAccountAssignment for this account already landed: the assignment is listed, or
/// a creation request for it is in progress.
async fn assignment_landed(
    client: &aws_sdk_ssoadmin::Client,
    p: &AssignmentParams,
    account: &str,
) -> Result<Option<Landed>, PluginError> {
    let mut pages = client
        .list_account_assignments()
        .instance_arn(&p.instance_arn)
        .account_id(account)
        .permission_set_arn(&p.permission_set_arn)
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListAccountAssignments", e))?;
        last = page.next_token().map(String::from);
        if page
            .account_assignments()
            .iter()
            .any(|a| a.principal_id() == Some(p.principal_id.as_str()))
        {
            return Ok(Some(Landed::Assigned));
        }
    }
    crate::error::whole_list("sso-admin:ListAccountAssignments", last.as_deref())?;
    let mut pages = client
        .list_account_assignment_creation_status()
        .instance_arn(&p.instance_arn)
        .filter(
            aws_sdk_ssoadmin::types::OperationStatusFilter::builder()
                .status(StatusValues::InProgress)
                .build(),
        )
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListAccountAssignmentCreationStatus", e))?;
        last = page.next_token().map(String::from);
        for meta in page.account_assignments_creation_status() {
            let Some(id) = meta.request_id() else { continue };
            let out = client
                .describe_account_assignment_creation_status()
                .instance_arn(&p.instance_arn)
                .account_assignment_creation_request_id(id)
                .send()
                .await
                .map_err(|e| aws("sso-admin:DescribeAccountAssignmentCreationStatus", e))?;
            let Some(st) = out.account_assignment_creation_status() else {
                continue;
            };
            if st.target_id() == Some(account)
                && st.permission_set_arn() == Some(p.permission_set_arn.as_str())
                && st.principal_id() == Some(p.principal_id.as_str())
            {
                return Ok(Some(Landed::Request(id.to_string())));
            }
        }
    }
    crate::error::whole_list("sso-admin:ListAccountAssignmentCreationStatus", last.as_deref())?;
    Ok(None)
}

/// Polls one CreateAccountAssignment request, made at `since`, to SUCCEEDED or FAILED, first when
/// assignments have been seen to settle in this run.
pub async fn wait_for_assignment(
    ctx: &Context,
    client: &aws_sdk_ssoadmin::Client,
    instance_arn: &str,
    request_id: &str,
    account: &str,
    since: Option<std::time::Instant>,
) -> Result<(), PluginError> {
    until_settled(
        ctx,
        "sso-admin:CreateAccountAssignment",
        since,
        &format!("assignment in account {account}"),
        Some(request_id),
        || async {
            let out = client
                .describe_account_assignment_creation_status()
                .instance_arn(instance_arn)
                .account_assignment_creation_request_id(request_id)
                .send()
                .await
                .map_err(|e| aws("sso-admin:DescribeAccountAssignmentCreationStatus", e))?;
            let st = out.account_assignment_creation_status();
            Ok(poll_status(
                st.and_then(|s| s.status()),
                st.and_then(|s| s.failure_reason()),
            ))
        },
    )
    .await
}

impl Action for EnsureAssignment {
    type Params = AssignmentParams;
    type Outputs = Assignments;
    const NAME: &'static str = "sso-admin.ensure-assignment";
    const SUMMARY: &'static str = "Assigns a permission set to a user or group in one or many accounts, skipping existing assignments, and waits for each.";
    const CONVERGES: &'static str = "An assignment is the triple of account, permission set and principal, nothing more: an existing one is this step's whoever made it, and there is nothing else in it to bring to what is asked. It adds what is missing and never removes: other principals' assignments of the set, and the principal's assignments of other sets, stay (take access away with `sso-admin.remove-assignment`, as the offboarding runbook does).";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "sso-admin:ListAccountAssignmentsForPrincipal",
        "sso-admin:CreateAccountAssignment",
        "sso-admin:ListAccountAssignments",
        "sso-admin:ListAccountAssignmentCreationStatus",
        "sso-admin:DescribeAccountAssignmentCreationStatus",
    ];

    fn cli(p: &Value) -> Vec<String> {
        vec![
            "aws sso-admin list-account-assignments-for-principal --instance-arn INSTANCE_ARN --principal-id PRINCIPAL_ID --principal-type USER".into(),
            crate::command([
                "aws",
                "sso-admin",
                "create-account-assignment",
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
            "aws sso-admin describe-account-assignment-creation-status --instance-arn INSTANCE_ARN --account-assignment-creation-request-id REQUEST_ID".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &AssignmentParams) -> Result<Preview, PluginError> {
        let accounts = accounts_of(p)?;
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        let have = assigned_accounts(&client, p).await?;
        let mut preview = Preview::default();
        for a in accounts {
            let v = if have.contains(&a) {
                Verdict::Exists
            } else {
                Verdict::WouldCreate
            };
            preview.push(v, format!("assignment in account {a}"));
        }
        Ok(preview)
    }

    async fn apply(ctx: &Context, p: AssignmentParams) -> Result<Assignments, PluginError> {
        let accounts = accounts_of(&p)?;
        let client = ctx.sso_admin(p.region.as_deref()).await?;
        // Read once per fan-out: the items of a `for-each=` share this listing.
        let key = format!(
            "sso-admin:ListAccountAssignmentsForPrincipal {} {} {}",
            p.instance_arn, p.principal_id, p.permission_set_arn
        );
        let have = ctx.memo(&key, || assigned_accounts(&client, &p)).await?;
        let (exists, missing): (Vec<String>, Vec<String>) = accounts.into_iter().partition(|a| have.contains(a));
        let mut results: Vec<AssignmentResult> = exists
            .into_iter()
            .map(|a| AssignmentResult {
                account_id: a,
                status: "exists".into(),
                request_id: None,
            })
            .collect();
        let lister = ctx
            .memo(
                &format!("sso-admin:ListAccountAssignmentCreationStatus {}", p.instance_arn),
                || async { Ok(InProgress::new(&p.instance_arn)) },
            )
            .await?;
        let outcomes = per_account(ctx, p.max_in_flight, missing, |a| {
            assign_one(ctx, &client, &p, &lister, a)
        })
        .await?;
        let mut made = Vec::new();
        let mut settled = Vec::new();
        for o in outcomes {
            match o {
                Outcome::Done(r) => made.push(r),
                Outcome::Settled { account, request_id } => settled.push((account, request_id)),
            }
        }
        if !settled.is_empty() {
            made.extend(confirm(ctx, &client, &p, settled, have.len()).await?);
        }
        let created = made.iter().filter(|r| r.status == "created").count();
        results.extend(made);
        let failed: Vec<&AssignmentResult> = results.iter().filter(|r| r.status.starts_with("failed")).collect();
        if !failed.is_empty() {
            let list: Vec<String> = failed
                .iter()
                .map(|r| format!("{}: {}", r.account_id, r.status))
                .collect();
            return Err(PluginError::Failed {
                what: format!("{} of {} assignments", failed.len(), results.len()),
                reason: list.join("; "),
                request_id: failed.first().and_then(|r| r.request_id.clone()),
                hint: Some("the others are done; run the step again to retry only the failed ones".into()),
            });
        }
        Ok(Assignments {
            assignments: results,
            created,
        })
    }
}

/// An sso-admin asynchronous status as the poller reads it: done, failed with AWS's reason, or
/// still pending (named by its status).
pub(crate) fn poll_status(status: Option<&StatusValues>, reason: Option<&str>) -> Status<()> {
    match status {
        Some(StatusValues::Succeeded) => Status::Done(()),
        Some(StatusValues::Failed) => Status::Failed(reason.unwrap_or("no reason given").to_string()),
        other => Status::Pending(
            other
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ),
    }
}

/// Runs `one` for each account through the one fan-out engine ([`crate::Fanout`]), at most `max`
/// at once. A journal that cannot record an intent (an `Err`) stops the fan-out before its next
/// call.
pub(crate) async fn per_account<A, T, F, Fut>(
    ctx: &Context,
    max: usize,
    accounts: Vec<A>,
    one: F,
) -> Result<Vec<T>, PluginError>
where
    F: Fn(A) -> Fut,
    Fut: std::future::Future<Output = Result<T, PluginError>>,
{
    let fanout = crate::Fanout::new(ctx.pressure(), max);
    fanout.run(accounts, one).try_collect().await
}
