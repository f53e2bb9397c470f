//! Member accounts: CreateAccount (no idempotency token: never resent blindly, a lost answer is
//! looked for), polled to SUCCEEDED under the cap on creations in progress.

use aws_sdk_organizations::types::CreateAccountState;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AccountSummary, all_accounts, create_statuses, email_problem, in_progress};
use crate::action::{Action, Preview, Verdict};
use crate::aws::mutation::Mutation;
use crate::context::{Context, Event};
use crate::error::{PluginError, aws};
use crate::poll::{Status, until_settled};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnsureAccountParams {
    /// Account name (at most 50 characters), e.g. `acme-payments-prod`.
    pub name: String,
    /// Root user email of the new account; must be unused in AWS.
    pub email: String,
    /// A regular expression the whole name must match (the naming standard).
    #[serde(default)]
    pub naming_pattern: Option<String>,
    /// Role created in the new account for the management account (default OrganizationAccountAccessRole).
    #[serde(default)]
    pub role_name: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EnsuredAccount {
    /// The member account's id.
    pub account_id: String,
    /// The CreateAccount request id, when this run (or an interrupted one) created it.
    pub create_request_id: Option<String>,
    /// True when this run created the account.
    pub created: bool,
}

pub struct EnsureAccount;

fn check_name(p: &EnsureAccountParams) -> Result<(), PluginError> {
    if p.name.is_empty() || p.name.chars().count() > 50 || p.name.chars().any(|c| c.is_control()) {
        return Err(PluginError::Check {
            message: format!("account name `{}` must be 1 to 50 printable characters", p.name),
            hint: None,
        });
    }
    if let Some(pat) = &p.naming_pattern {
        let re = regex::Regex::new(&format!("^(?:{pat})$")).map_err(|e| PluginError::Params {
            action: EnsureAccount::NAME,
            message: format!("naming_pattern: {e}"),
        })?;
        if !re.is_match(&p.name) {
            return Err(PluginError::Check {
                message: format!("account name `{}` does not follow the naming standard `{pat}`", p.name),
                hint: Some("use organization-purpose-environment, e.g. acme-payments-prod".into()),
            });
        }
    }
    if let Err(why) = email_problem(&p.email) {
        return Err(PluginError::Check {
            message: format!("the root email `{}` {why}", p.email),
            hint: Some("shorten the name or the email template (the local part before @ is the usual place)".into()),
        });
    }
    Ok(())
}

/// The account that holds this email, if any. Email is an account's identity in AWS, but an
/// account found under another name is not the one the step asks for: taking it would hand the
/// step's outputs (and every later step) another account, so it is an error that names both.
fn by_email<'a>(
    accounts: &'a [AccountSummary],
    p: &EnsureAccountParams,
) -> Result<Option<&'a AccountSummary>, PluginError> {
    let Some(a) = accounts.iter().find(|a| a.email.eq_ignore_ascii_case(&p.email)) else {
        return Ok(None);
    };
    // A closed account keeps its email for 90 days and cannot be used: not done.
    if matches!(a.status.as_str(), "SUSPENDED" | "PENDING_CLOSURE") {
        return Err(PluginError::Check {
            message: format!(
                "the account for {} is {} `{}`, and it is closed ({})",
                p.email, a.id, a.name, a.status
            ),
            hint: Some("reopen it through AWS Support within 90 days of closing, or use another email".into()),
        });
    }
    if a.name != p.name {
        return Err(PluginError::Check {
            message: format!("the account for {} is {} `{}`, not `{}`", p.email, a.id, a.name, p.name),
            hint: Some(format!(
                "every account needs its own root email; if {} is the account meant, name it `{}` in the runbook",
                a.id, a.name
            )),
        });
    }
    Ok(Some(a))
}

fn failure_hint(reason: &str) -> Option<String> {
    Some(
        match reason {
            "EMAIL_ALREADY_EXISTS" => {
                "another AWS account uses this email; choose a new address (a distribution list alias works)"
            }
            "ACCOUNT_LIMIT_EXCEEDED" => {
                "the organization reached its account quota; request an increase in Service Quotas"
            }
            "CONCURRENT_ACCOUNT_MODIFICATION" => "another account operation was running; run the step again",
            "INVALID_EMAIL" => "the email address was refused; check it",
            _ => return None,
        }
        .to_string(),
    )
}

/// Polls one CreateAccount request, made at `since` (None: by an earlier run), to its end; first
/// when account creations have been seen to settle in this run.
pub async fn wait_for_account(
    ctx: &Context,
    request_id: &str,
    name: &str,
    since: Option<std::time::Instant>,
) -> Result<String, PluginError> {
    let client = ctx.organizations().await?;
    let what = format!("creation of account {name}");
    until_settled(
        ctx,
        "organizations:CreateAccount",
        since,
        &what,
        Some(request_id),
        || {
            let client = client.clone();
            async move {
                let out = client
                    .describe_create_account_status()
                    .create_account_request_id(request_id)
                    .send()
                    .await
                    .map_err(|e| aws("organizations:DescribeCreateAccountStatus", e))?;
                let st = out.create_account_status();
                Ok(match st.and_then(|s| s.state()) {
                    Some(CreateAccountState::Succeeded) => {
                        Status::Done(st.and_then(|s| s.account_id()).unwrap_or_default().to_string())
                    }
                    Some(CreateAccountState::Failed) => Status::Failed(
                        st.and_then(|s| s.failure_reason())
                            .map(|r| r.as_str().to_string())
                            .unwrap_or_else(|| "no reason given".into()),
                    ),
                    other => Status::Pending(
                        other
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "unknown".into()),
                    ),
                })
            }
        },
    )
    .await
    .map_err(|e| match e {
        PluginError::Failed {
            what,
            reason,
            request_id,
            ..
        } => PluginError::Failed {
            hint: failure_hint(&reason),
            what,
            reason,
            request_id,
        },
        e => e,
    })
}

impl Action for EnsureAccount {
    type Params = EnsureAccountParams;
    type Outputs = EnsuredAccount;
    const NAME: &'static str = "organizations.ensure-account";
    const SUMMARY: &'static str =
        "Creates a member account unless one with this email exists; waits for CreateAccount to finish.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "organizations:ListAccounts",
        "organizations:ListCreateAccountStatus",
        "organizations:CreateAccount",
        "organizations:DescribeCreateAccountStatus",
        "organizations:DescribeAccount",
    ];
    const CONVERGES: &'static str = "An account is this step's when it has the step's root email (unique across AWS) and its name; an account with that email under another name is refused, not taken, and so is a closed one. All of it: the name and email are what identify it; `role_name` applies only when the account is created, and the account's organizational unit, tags and contacts are not among its parameters.";

    fn cli(p: &Value) -> Vec<String> {
        vec![
            "aws organizations list-accounts".into(),
            crate::command([
                "aws",
                "organizations",
                "create-account",
                "--account-name",
                p.get("name").and_then(Value::as_str).unwrap_or("NAME"),
                "--email",
                p.get("email").and_then(Value::as_str).unwrap_or("EMAIL"),
            ]),
            "aws organizations describe-create-account-status --create-account-request-id CAR_ID".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &EnsureAccountParams) -> Result<Preview, PluginError> {
        check_name(p)?;
        let accounts = all_accounts(ctx).await?;
        Ok(match by_email(&accounts, p)? {
            Some(a) => Preview::one(
                Verdict::Exists,
                format!("account {} ({}) for {}", a.id, a.name, a.email),
            ),
            None => Preview::one(Verdict::WouldCreate, format!("account {} for {}", p.name, p.email)),
        })
    }

    async fn apply(ctx: &Context, p: EnsureAccountParams) -> Result<EnsuredAccount, PluginError> {
        check_name(&p)?;
        // In a fan-out the organization's accounts are listed once, for all items.
        let listed = ctx
            .memo("organizations:ListAccounts", || async {
                Ok((std::time::SystemTime::now(), all_accounts(ctx).await?))
            })
            .await?;
        let (listed_at, accounts) = (listed.0, &listed.1);
        if let Some(a) = by_email(accounts, &p)? {
            return Ok(EnsuredAccount {
                account_id: a.id.clone(),
                create_request_id: None,
                created: false,
            });
        }
        // Two items of one fan-out must not both create an account for the same email (the
        // listing above is a snapshot taken before either created it).
        let claimed = ctx
            .memo("organizations:emails-claimed-in-this-fan-out", || async {
                Ok(std::sync::Mutex::new(std::collections::HashSet::<String>::new()))
            })
            .await?;
        let first_claim = claimed
            .lock()
            .map(|mut set| set.insert(p.email.to_ascii_lowercase()))
            .unwrap_or(true);
        if !first_claim {
            return Err(PluginError::Failed {
                what: format!("account {}", p.name),
                reason: format!("another item of this fan-out creates an account for {}", p.email),
                request_id: None,
                hint: Some("every account needs its own root email; fix the list, then run again".into()),
            });
        }
        // Another run of this state directory (another `--run`, another runbook) may be creating
        // the account for this email right now: one at a time per email, held until the
        // creation settled; a holder that made it says so on the claim, and a later holder
        // looks again when that came after its own listing.
        let claim = ctx
            .claim(
                "organizations:CreateAccount",
                &format!("email {}", p.email.to_ascii_lowercase()),
                crate::Duplicates::Refused,
            )
            .await?;
        if claim.made_since(listed_at) {
            if let Some(a) = by_email(&all_accounts(ctx).await?, &p)? {
                return Ok(EnsuredAccount {
                    account_id: a.id.clone(),
                    create_request_id: None,
                    created: false,
                });
            }
        }
        // At most so many account creations are in progress at AWS: hold a place from before the
        // call (or the following of an earlier one) until this one is seen settled.
        let _place = match ctx.budget().in_progress("CreateAccount") {
            Some(cap) => cap.acquire_owned().await.ok(),
            None => None,
        };
        // An interrupted run may have asked already: follow that request instead of asking twice.
        let pending = ctx
            .memo("organizations:ListCreateAccountStatus", || in_progress(ctx))
            .await?;
        // AWS lists creation requests by account name only, and names are not unique: one is
        // this step's only if the account it made has this step's email.
        for req in pending
            .iter()
            .filter(|s| s.account_name() == Some(p.name.as_str()))
            .filter_map(|s| s.id())
        {
            match wait_for_account(ctx, req, &p.name, None).await {
                Ok(account_id) if ours(ctx, &account_id, &p).await? => {
                    claim.made();
                    return Ok(EnsuredAccount {
                        account_id,
                        create_request_id: Some(req.to_string()),
                        created: true,
                    });
                }
                // Another's account of the same name, or a request that failed (this step's
                // own, if it was, fails again the same way and says so).
                Ok(_) | Err(PluginError::Failed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let creating = Mutation::new(ctx, "organizations:CreateAccount", format!("{} <{}>", p.name, p.email));
        creating.intent()?;
        // From here an account for this email may exist: the next holder looks again.
        claim.made();
        let out = match create_account(ctx, &creating, &p).await? {
            Created::Answer(out) => out,
            Created::Found(found) => {
                let (account_id, request) = match found {
                    Landed::Account(id) => (id, None),
                    Landed::Request(req) => {
                        let id = wait_for_account(ctx, &req, &p.name, None).await?;
                        if !ours(ctx, &id, &p).await? {
                            // Not this step's: whether its own request was made is unknown. The
                            // intent stays open: a re-run lets it land, then looks by email.
                            return Err(PluginError::Failed {
                                what: format!("creation of account {}", p.name),
                                reason: format!(
                                    "the outcome of CreateAccount is unknown; the creation of an account named {} that was in progress made account {id}, which has another email",
                                    p.name
                                ),
                                request_id: Some(req),
                                hint: Some("run the step again: it waits for this step's request to land, then looks for the account by its email".into()),
                            });
                        }
                        (id, Some(req))
                    }
                };
                creating.answered(request.clone())?;
                // Settled: a holder after this one looks again.
                claim.made();
                return Ok(EnsuredAccount {
                    account_id,
                    create_request_id: request,
                    created: true,
                });
            }
        };
        let since = std::time::Instant::now();
        let st = out.create_account_status();
        let req = st.and_then(|s| s.id()).unwrap_or_default().to_string();
        creating.answered(Some(req.clone()))?;
        let account_id = match (st.and_then(|s| s.state()), st.and_then(|s| s.account_id())) {
            // Already final in the answer: no need to ask again.
            (Some(CreateAccountState::Succeeded), Some(id)) => id.to_string(),
            (Some(CreateAccountState::Failed), _) => {
                let reason = st
                    .and_then(|s| s.failure_reason())
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default();
                return Err(PluginError::Failed {
                    what: format!("creation of account {}", p.name),
                    hint: failure_hint(&reason),
                    reason,
                    request_id: Some(req),
                });
            }
            _ => wait_for_account(ctx, &req, &p.name, Some(since)).await?,
        };
        // Settled: a holder after this one looks again.
        claim.made();
        Ok(EnsuredAccount {
            account_id,
            create_request_id: Some(req),
            created: true,
        })
    }
}

enum Created {
    /// AWS answered CreateAccount.
    Answer(aws_sdk_organizations::operation::create_account::CreateAccountOutput),
    /// An answer was lost, and looking showed the call had landed.
    Found(Landed),
}

enum Landed {
    Account(String),
    Request(String),
}

/// CreateAccount has no idempotency token, so the SDK must not retry it blindly: an answer lost
/// after AWS acted (a 5xx, a reset connection, a timeout) would create a second account. Retries
/// happen here instead. A throttle means AWS did nothing, so it is simply retried; any other
/// transient error is followed by a look (ListAccounts, ListCreateAccountStatus) before asking again.
async fn create_account(
    ctx: &Context,
    creating: &Mutation<'_>,
    p: &EnsureAccountParams,
) -> Result<Created, PluginError> {
    let client = ctx.organizations().await?;
    let attempts = ctx.aws_options().max_attempts.unwrap_or(5).max(1);
    let mut backoff = std::time::Duration::from_millis(100);
    let mut attempt = 1;
    // An attempt whose outcome is unknown keeps the intent open, whatever the later ones say.
    let mut uncertain = false;
    // While the organization is being set up: since when, and the next pause.
    let mut finalizing_since: Option<std::time::Instant> = None;
    let mut finalizing_wait = ctx.poll_settings().initial;
    loop {
        let sent = std::time::Instant::now();
        let answer = client
            .create_account()
            .account_name(&p.name)
            .email(&p.email)
            .set_role_name(p.role_name.clone())
            .customize()
            .config_override(
                aws_sdk_organizations::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        let err = match answer {
            Ok(out) => return Ok(Created::Answer(out)),
            Err(e) => aws("organizations:CreateAccount", e),
        };
        // A new organization refuses account creations until it is set up ("up to an hour"):
        // AWS did nothing, so ask again, as long as the step's deadline allows.
        if err.code() == Some("FinalizingOrganizationException") {
            let poll = ctx.poll_settings();
            let first = finalizing_since.is_none();
            let since = *finalizing_since.get_or_insert_with(std::time::Instant::now);
            let deadline = ctx.deadline.unwrap_or(since + poll.default_deadline);
            if std::time::Instant::now() + finalizing_wait >= deadline {
                if !uncertain {
                    // Refused: AWS made nothing.
                    creating.failed(err)?;
                }
                return Err(PluginError::Failed {
                    what: format!("creation of account {}", p.name),
                    reason: "the new organization is still being set up (FinalizingOrganizationException)".into(),
                    request_id: None,
                    hint: Some("AWS says this can take up to an hour after the organization was created; run the step again later".into()),
                });
            }
            if first {
                ctx.emit(Event::Note {
                    message: format!(
                        "CreateAccount for {}: the organization is still being set up (AWS: up to an hour after it was created); asking again",
                        p.name
                    ),
                })?;
            }
            tokio::time::sleep(finalizing_wait).await;
            finalizing_wait = (finalizing_wait * 2).min(poll.cap.max(poll.initial));
            continue;
        }
        if !err.is_transient() || attempt >= attempts {
            return Err(if uncertain { err } else { creating.failed(err)? });
        }
        if !err.is_refusal() {
            uncertain = true;
            // The request may still be on its way to AWS: a look made now can miss it.
            creating.let_land(sent, &err).await?;
        }
        if !err.is_throttling()
            && let Some(found) = landed(ctx, p).await?
        {
            ctx.emit(Event::Warning {
                message: format!(
                    "CreateAccount for {} answered {}, but the account was being created: following it",
                    p.name,
                    err.code().unwrap_or("an error")
                ),
            })?;
            return Ok(Created::Found(found));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        attempt += 1;
    }
}

/// Whether a CreateAccount for this account already landed: the account exists (by email), or a
/// creation request for its name is in progress or just succeeded.
async fn landed(ctx: &Context, p: &EnsureAccountParams) -> Result<Option<Landed>, PluginError> {
    if let Some(a) = by_email(&all_accounts(ctx).await?, p)? {
        return Ok(Some(Landed::Account(a.id.clone())));
    }
    let statuses = create_statuses(ctx, &[CreateAccountState::InProgress, CreateAccountState::Succeeded]).await?;
    let mut in_progress = None;
    for s in statuses.iter().filter(|s| s.account_name() == Some(p.name.as_str())) {
        // Made, but not listed yet: this step's only if it has this step's email.
        if let (Some(CreateAccountState::Succeeded), Some(id)) = (s.state(), s.account_id())
            && ours(ctx, id, p).await?
        {
            return Ok(Some(Landed::Account(id.to_string())));
        }
        // Whose it is shows only once it is made: the caller follows it and checks.
        if s.state() == Some(&CreateAccountState::InProgress) {
            in_progress = in_progress.or(s.id());
        }
    }
    Ok(in_progress.map(|id| Landed::Request(id.to_string())))
}

/// Whether an account is the one this step asks for: its email and its name. AWS lists
/// creation requests by account name only, and names are not unique.
async fn ours(ctx: &Context, account_id: &str, p: &EnsureAccountParams) -> Result<bool, PluginError> {
    let out = ctx
        .organizations()
        .await?
        .describe_account()
        .account_id(account_id)
        .send()
        .await
        .map_err(|e| aws("organizations:DescribeAccount", e))?;
    Ok(out.account().is_some_and(|a| {
        a.email().is_some_and(|e| e.eq_ignore_ascii_case(&p.email)) && a.name() == Some(p.name.as_str())
    }))
}
