//! support: cases for account activation problems, with a console hand-over whenever the account
//! cannot use the Support API (its plan, an account not activated yet, missing permissions, or
//! credentials of another account than the one the case is about).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mutation::Mutation;
use crate::action::{Action, Preview, Verdict};
use crate::aws::sts::caller;
use crate::context::Duplicates;
use crate::context::{Context, Event};
use crate::error::{PluginError, aws};

mod hand_over;
use hand_over::hand_over;

/// AWS publishes no request rate for the Support API (it answers `ThrottlingException` when one
/// is exceeded); the runbooks make a handful of calls, so none is kept client-side.
pub const QUOTAS: crate::limits::Quotas = crate::limits::Quotas {
    family: "support",
    rate: None,
    in_progress: &[],
    source: "none published; not paced",
};

/// The console's prefilled "create case" page for account activation.
pub const CONSOLE_LINK: &str = "https://console.aws.amazon.com/support/home#/case/create?issueType=customer-service&serviceCode=customer-account&categoryCode=activation";

fn s(v: &str) -> String {
    v.to_string()
}
fn customer_account() -> String {
    s("customer-account")
}
fn activation() -> String {
    s("activation")
}
fn low() -> String {
    s("low")
}
fn en() -> String {
    s("en")
}
fn customer_service() -> String {
    s("customer-service")
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnsureCaseParams {
    /// Case subject. An open case with this subject is reused, never duplicated; when every case
    /// with it is resolved, a new case is opened that names the last one (a follow-up).
    pub subject: String,
    /// The case text.
    pub body: String,
    /// The 12-digit account the case is about. When given, the case is filed through the API only
    /// from that account; from any other account (or with no usable credentials) it is handed
    /// over to the console instead.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Support service code.
    #[serde(default = "customer_account")]
    pub service_code: String,
    /// Support category code.
    #[serde(default = "activation")]
    pub category_code: String,
    /// `low`, `normal`, `high`, `urgent` or `critical`.
    #[serde(default = "low")]
    pub severity: String,
    /// Email addresses copied on the case.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Language of the case.
    #[serde(default = "en")]
    pub language: String,
    /// `customer-service` (account and billing) or `technical`.
    #[serde(default = "customer_service")]
    pub issue_type: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Case {
    /// The case id (empty when handed over).
    pub case_id: String,
    /// The number shown in the console.
    pub display_id: String,
    /// The case status, or `handed-over`.
    pub status: String,
    /// True when this run opened the case.
    pub created: bool,
    /// The resolved case with the same subject that this new case follows up (empty otherwise).
    pub follows_up: String,
    /// True when the case cannot be filed through the API and the operator opens it in the console.
    pub handed_over: bool,
    /// Why it was handed over: `support-plan`, `not-activated`, `access-denied`, `no-credentials`
    /// or `other-account` (empty otherwise).
    pub reason: String,
    /// The console link to open the case by hand (on hand-over).
    pub console_link: String,
    /// The file holding the case text to paste (on hand-over).
    pub handover_file: String,
}

pub struct EnsureCase;

/// Why this account cannot file the case through the Support API: each leads to the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Basic or Developer plan: the Support API needs Business, Enterprise On-Ramp or Enterprise.
    SupportPlan,
    /// The account is not activated yet (sign-up, payment or phone verification unfinished).
    NotActivated(String),
    /// The credentials may not call the Support API.
    AccessDenied(String),
    /// No credentials, or credentials AWS does not accept.
    NoCredentials(String),
    /// The credentials belong to another account than the one the case is about.
    OtherAccount { have: String, want: String },
}

impl Refusal {
    fn word(&self) -> &'static str {
        match self {
            Refusal::SupportPlan => "support-plan",
            Refusal::NotActivated(_) => "not-activated",
            Refusal::AccessDenied(_) => "access-denied",
            Refusal::NoCredentials(_) => "no-credentials",
            Refusal::OtherAccount { .. } => "other-account",
        }
    }

    /// One paragraph for the operator: why the API is out, and that the console is the way.
    fn explain(&self) -> String {
        match self {
            Refusal::SupportPlan => "This account's support plan (Basic or Developer) does not include the AWS Support API, which needs Business, Enterprise On-Ramp or Enterprise. Account and billing cases are open to every plan in the Support console.".into(),
            Refusal::NotActivated(why) => format!("AWS refused the Support API because the account is not activated yet ({why}). You can create a case with AWS Support in the console even before the account is activated."),
            Refusal::AccessDenied(why) => format!("These credentials may not use the Support API ({why}). Open the case in the console signed in as the account's root user, or grant support:DescribeCases and support:CreateCase and run the step again."),
            Refusal::NoCredentials(why) => format!("There are no usable AWS credentials for this account ({why}). Open the case in the console: sign in with the account's email address and password."),
            Refusal::OtherAccount { have, want } => format!("The credentials are for account {have}, but the case is about account {want}: a case filed from {have} would be about the wrong account. Sign in to {want} and open the case in the console (or run this step again with {want}'s credentials)."),
        }
    }
}

/// Error codes that mean "this account cannot use the Support API", as opposed to a fault worth
/// retrying.
pub fn refusal(e: &PluginError) -> Option<Refusal> {
    let detail = || e.to_string();
    match e {
        PluginError::Config(m) => Some(Refusal::NoCredentials(m.clone())),
        PluginError::Credentials { message, .. } => Some(Refusal::NoCredentials(message.clone())),
        _ => match e.code()? {
            "SubscriptionRequiredException" => Some(Refusal::SupportPlan),
            "OptInRequired" | "NotSignedUp" | "PendingVerification" | "AccountNotActivated" => {
                Some(Refusal::NotActivated(detail()))
            }
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => Some(Refusal::AccessDenied(detail())),
            "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException" => Some(Refusal::NoCredentials(detail())),
            _ => None,
        },
    }
}

/// A case as DescribeCases reports it.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    display_id: String,
    status: String,
    created: String,
}

/// Every case (open or resolved) with this subject, all pages.
async fn cases_with_subject(ctx: &Context, p: &EnsureCaseParams) -> Result<Vec<Found>, PluginError> {
    let client = ctx.support().await?;
    let mut out = Vec::new();
    let mut pages = client
        .describe_cases()
        .include_resolved_cases(true)
        .language(&p.language)
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("support:DescribeCases", e))?;
        // An empty page ends the listing even if it carries a token (moto's does).
        if page.cases().is_empty() {
            last = None;
            break;
        }
        last = page.next_token().map(String::from);
        out.extend(
            page.cases()
                .iter()
                .filter(|c| c.subject() == Some(p.subject.as_str()))
                .map(|c| Found {
                    id: c.case_id().unwrap_or_default().to_string(),
                    display_id: c.display_id().unwrap_or_default().to_string(),
                    status: c.status().unwrap_or_default().to_string(),
                    created: c.time_created().unwrap_or_default().to_string(),
                }),
        );
    }
    crate::error::whole_list("support:DescribeCases", last.as_deref())?;
    Ok(out)
}

/// What exists for this subject: an open case to reuse, or the last resolved one to follow up.
enum Existing {
    Open(Found),
    Resolved(Found),
    None,
}

fn existing(mut cases: Vec<Found>) -> Existing {
    // Newest first (ISO-8601 times sort as text).
    cases.sort_by(|a, b| b.created.cmp(&a.created));
    if let Some(open) = cases.iter().find(|c| c.status != "resolved") {
        return Existing::Open(open.clone());
    }
    match cases.into_iter().next() {
        Some(c) => Existing::Resolved(c),
        None => Existing::None,
    }
}

/// The text sent: a follow-up names the resolved case it continues.
fn case_body(p: &EnsureCaseParams, follows: Option<&Found>) -> String {
    match follows {
        Some(f) => format!(
            "This follows up on case {} ({}), which was resolved; the problem is not solved.\n\n{}",
            f.display_id, f.id, p.body
        ),
        None => p.body.clone(),
    }
}

/// Whether these credentials may file a case about `p.account_id`: None when they may.
async fn account_guard(ctx: &Context, p: &EnsureCaseParams) -> Result<Option<Refusal>, PluginError> {
    let Some(want) = p.account_id.as_deref().map(str::trim) else {
        return Ok(None);
    };
    match caller(ctx).await {
        Ok(me) if me.account_id == want => Ok(None),
        Ok(me) => Ok(Some(Refusal::OtherAccount {
            have: me.account_id,
            want: want.to_string(),
        })),
        Err(e) => refusal(&e).map(Some).ok_or(e),
    }
}

impl Action for EnsureCase {
    type Params = EnsureCaseParams;
    type Outputs = Case;
    const NAME: &'static str = "support.ensure-case";
    const SUMMARY: &'static str = "Opens an AWS Support case unless an open one has the same subject (a resolved one gets a follow-up case naming it); when the account cannot use the Support API (plan, activation, permissions, another account), hands over a prefilled console link and the case text.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &["sts:GetCallerIdentity", "support:DescribeCases", "support:CreateCase"];
    const SENDS_TEXT: bool = true;
    const CONVERGES: &'static str = "A case is this step's when it is open in the account the step names and has the step's subject; a resolved one gets a follow-up case that names it. All of it: an open case's text, severity and copied addresses are not changed (AWS keeps a case's communications as sent): change the subject to open a new case.";

    fn cli(p: &Value) -> Vec<String> {
        let g = |k: &str, d: &str| p.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
        vec![
            "aws sts get-caller-identity --query Account".into(),
            "aws support describe-cases --region us-east-1 --include-resolved-cases".into(),
            crate::command([
                "aws",
                "support",
                "create-case",
                "--region",
                "us-east-1",
                "--issue-type",
                &g("issue_type", "customer-service"),
                "--service-code",
                &g("service_code", "customer-account"),
                "--category-code",
                &g("category_code", "activation"),
                "--severity-code",
                &g("severity", "low"),
                "--subject",
                &g("subject", "SUBJECT"),
                "--communication-body",
                "file://case.txt",
            ]),
        ]
    }

    async fn plan(ctx: &Context, p: &EnsureCaseParams) -> Result<Preview, PluginError> {
        let hand = |r: Refusal| {
            Ok(Preview::one(
                Verdict::Check,
                format!("hand-over ({}): the case text and a console link", r.word()),
            ))
        };
        if let Some(r) = account_guard(ctx, p).await? {
            return hand(r);
        }
        match cases_with_subject(ctx, p).await {
            Ok(cases) => Ok(match existing(cases) {
                Existing::Open(c) => Preview::one(
                    Verdict::Exists,
                    format!("case {} ({}, {})", c.display_id, c.id, c.status),
                ),
                Existing::Resolved(c) => Preview::one(
                    Verdict::WouldCreate,
                    format!(
                        "support case \"{}\", following up resolved case {}",
                        p.subject, c.display_id
                    ),
                ),
                Existing::None => Preview::one(Verdict::WouldCreate, format!("support case \"{}\"", p.subject)),
            }),
            Err(e) => match refusal(&e) {
                Some(r) => hand(r),
                None => Err(e),
            },
        }
    }

    async fn apply(ctx: &Context, p: EnsureCaseParams) -> Result<Case, PluginError> {
        if let Some(r) = account_guard(ctx, &p).await? {
            return hand_over(ctx, &p, &r, None);
        }
        // AWS files a second case for a second CreateCase: no other item or run looks or files
        // for this subject meanwhile, and a CreateCase whose answer was lost is let land before
        // the look (every attempt: a step's retries= too).
        let filing = Mutation::new(ctx, "support:CreateCase", &p.subject);
        let _claim = filing.claim(Duplicates::Made).await?;
        let follows = match cases_with_subject(ctx, &p).await {
            Ok(cases) => match existing(cases) {
                Existing::Open(c) => {
                    return Ok(Case {
                        case_id: c.id,
                        display_id: c.display_id,
                        status: c.status,
                        created: false,
                        follows_up: String::new(),
                        handed_over: false,
                        reason: String::new(),
                        console_link: String::new(),
                        handover_file: String::new(),
                    });
                }
                Existing::Resolved(c) => Some(c),
                Existing::None => None,
            },
            Err(e) => match refusal(&e) {
                Some(r) => return hand_over(ctx, &p, &r, None),
                None => return Err(e),
            },
        };
        let client = ctx.support().await?;
        filing.intent()?;
        let case_id = match create_case(ctx, &filing, &client, &p, follows.as_ref()).await? {
            Ok(id) => id,
            Err(e) => {
                return match refusal(&e) {
                    Some(r) => hand_over(ctx, &p, &r, follows.as_ref()),
                    None => Err(e),
                };
            }
        };
        filing.answered(Some(case_id.clone()))?;
        let (display_id, status) = match describe_one(ctx, &case_id).await {
            Ok(Some((d, s))) => (d, s),
            _ => (String::new(), "opened".into()),
        };
        ctx.emit(Event::Note {
            message: match &follows {
                Some(f) => format!(
                    "support case {display_id} opened ({case_id}), following up resolved case {} ({})",
                    f.display_id, f.id
                ),
                None => format!("support case {display_id} opened ({case_id})"),
            },
        })?;
        Ok(Case {
            case_id,
            display_id,
            status,
            created: true,
            follows_up: follows.map(|f| f.id).unwrap_or_default(),
            handed_over: false,
            reason: String::new(),
            console_link: String::new(),
            handover_file: String::new(),
        })
    }
}

/// CreateCase has no idempotency token: a second call files a second case, which reaches a person
/// at AWS Support twice. The SDK must not retry it blindly; a throttle (AWS did nothing) is asked
/// again after a pause, and any other transient error (a 5xx, a reset connection, a timeout: the
/// case may have been filed) is followed by a look for an open case with this subject first. The
/// outer error is the journal's; the inner one is the call's.
async fn create_case(
    ctx: &Context,
    filing: &Mutation<'_>,
    client: &aws_sdk_support::Client,
    p: &EnsureCaseParams,
    follows: Option<&Found>,
) -> Result<Result<String, PluginError>, PluginError> {
    let attempts = ctx.aws_options().max_attempts.unwrap_or(5).max(1);
    let mut attempt = 1;
    // An attempt whose outcome is unknown keeps the intent open, whatever the later ones say.
    let mut uncertain = false;
    loop {
        let sent = std::time::Instant::now();
        let res = client
            .create_case()
            .subject(&p.subject)
            .communication_body(case_body(p, follows))
            .service_code(&p.service_code)
            .category_code(&p.category_code)
            .severity_code(&p.severity)
            .language(&p.language)
            .issue_type(&p.issue_type)
            .set_cc_email_addresses((!p.cc.is_empty()).then(|| p.cc.clone()))
            .customize()
            .config_override(
                aws_sdk_support::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        let e = match res {
            Ok(out) => return Ok(Ok(out.case_id().unwrap_or_default().to_string())),
            Err(e) => aws("support:CreateCase", e),
        };
        if !e.is_transient() || attempt >= attempts {
            return Ok(Err(if uncertain { e } else { filing.failed(e)? }));
        }
        if !e.is_refusal() {
            uncertain = true;
            // The request may still be on its way to AWS: a look made now can miss it.
            filing.let_land(sent, &e).await?;
        }
        if !e.is_throttling() {
            match cases_with_subject(ctx, p).await.map(existing) {
                Ok(Existing::Open(c)) => {
                    ctx.emit(Event::Warning {
                        message: format!(
                            "CreateCase answered {}, but the case was filed: following case {}",
                            e.code().unwrap_or("an error"),
                            c.display_id
                        ),
                    })?;
                    return Ok(Ok(c.id));
                }
                Ok(_) => {}
                // Not knowing is not filing again: the case may exist.
                Err(look) => return Ok(Err(look)),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200 << attempt.min(5))).await;
        attempt += 1;
    }
}

/// One case's display id and status.
async fn describe_one(ctx: &Context, case_id: &str) -> Result<Option<(String, String)>, PluginError> {
    let out = ctx
        .support()
        .await?
        .describe_cases()
        .case_id_list(case_id)
        .include_resolved_cases(true)
        .send()
        .await
        .map_err(|e| aws("support:DescribeCases", e))?;
    Ok(out.cases().first().map(|c| {
        (
            c.display_id().unwrap_or_default().to_string(),
            c.status().unwrap_or_default().to_string(),
        )
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseStatusParams {
    /// The case id from `support.ensure-case`.
    pub case_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseState {
    /// The case status, e.g. `opened`, `pending-customer-action`, `resolved`.
    pub status: String,
    /// The newest message on the case.
    pub last_communication: String,
}

pub struct CaseStatus;

impl Action for CaseStatus {
    type Params = CaseStatusParams;
    type Outputs = CaseState;
    const NAME: &'static str = "support.case-status";
    const SUMMARY: &'static str = "Reads a support case's status and its newest message.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["support:DescribeCases"];

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws support describe-cases --region us-east-1 --case-id-list CASE_ID".into()]
    }

    async fn plan(_ctx: &Context, _p: &CaseStatusParams) -> Result<Preview, PluginError> {
        Ok(Preview::one(Verdict::Check, "support case status"))
    }

    async fn apply(ctx: &Context, p: CaseStatusParams) -> Result<CaseState, PluginError> {
        let out = ctx
            .support()
            .await?
            .describe_cases()
            .case_id_list(&p.case_id)
            .include_resolved_cases(true)
            .include_communications(true)
            .send()
            .await
            .map_err(|e| aws("support:DescribeCases", e))?;
        let case = out.cases().first().ok_or_else(|| PluginError::Check {
            message: format!("no support case {}", p.case_id),
            hint: None,
        })?;
        let last = case
            .recent_communications()
            .and_then(|r| r.communications().first())
            .and_then(|c| c.body())
            .unwrap_or_default()
            .to_string();
        Ok(CaseState {
            status: case.status().unwrap_or_default().to_string(),
            last_communication: last,
        })
    }
}
