//! support: cases for account activation problems, with a console hand-over on the Basic plan.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::{Action, Plan, Verdict};
use crate::context::{Context, Event};
use crate::error::{PluginError, aws};

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
    /// Case subject; a case with the same subject (open or resolved) is reused, never duplicated.
    pub subject: String,
    /// The case text.
    pub body: String,
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
    /// True when the plan has no Support API and the operator must open the case in the console.
    pub handed_over: bool,
    /// The console link to open the case by hand (on hand-over).
    pub console_link: String,
    /// The file holding the case text to paste (on hand-over).
    pub handover_file: String,
}

pub struct EnsureCase;

async fn find_case(ctx: &Context, p: &EnsureCaseParams) -> Result<Option<(String, String, String)>, PluginError> {
    let client = ctx.support().await?;
    let mut token = None;
    loop {
        let page = client
            .describe_cases()
            // A resolved case with the same subject still counts: a re-run must not reopen it.
            .include_resolved_cases(true)
            .language(&p.language)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws("support:DescribeCases", e))?;
        if let Some(c) = page.cases().iter().find(|c| c.subject() == Some(p.subject.as_str())) {
            return Ok(Some((
                c.case_id().unwrap_or_default().to_string(),
                c.display_id().unwrap_or_default().to_string(),
                c.status().unwrap_or_default().to_string(),
            )));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(60).collect()
}

/// Writes `text` to `path` readable by the owner only (0600), replacing it atomically and never
/// following a symlink planted at the temporary name.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".support-case")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes the case text where the operator can copy it into the console form.
fn hand_over(ctx: &Context, p: &EnsureCaseParams) -> Result<Case, PluginError> {
    let dir = ctx.state_dir();
    std::fs::create_dir_all(dir).map_err(|e| PluginError::Other(format!("{}: {e}", dir.display())))?;
    // Secrets stay out of the file's text and of its name (which is printed and journaled).
    let name = match slug(&ctx.redact(&p.subject)) {
        s if s.is_empty() => "case".to_string(),
        s => s,
    };
    let path = dir.join(format!("support-case-{name}.md"));
    let text = ctx.redact(&format!(
        "# Support case to open by hand\n\nThis account's support plan has no Support API. Open the case in the console:\n\n{CONSOLE_LINK}\n\n- Type: Account and billing\n- Service: Account ({})\n- Category: Activation ({})\n- Severity: {}\n- Contact method: Chat (or Web)\n- CC: {}\n\n## Subject\n\n{}\n\n## Description\n\n{}\n",
        p.service_code,
        p.category_code,
        p.severity,
        if p.cc.is_empty() {
            "-".to_string()
        } else {
            p.cc.join(", ")
        },
        p.subject,
        p.body
    ));
    write_private(&path, &text).map_err(|e| PluginError::Other(format!("{}: {e}", path.display())))?;
    ctx.emit(Event::Note {
        message: format!(
            "this account's support plan has no Support API: open the case at {CONSOLE_LINK}\n  the case text is in {}",
            path.display()
        ),
    })?;
    Ok(Case {
        case_id: String::new(),
        display_id: String::new(),
        status: "handed-over".into(),
        created: false,
        handed_over: true,
        console_link: CONSOLE_LINK.into(),
        handover_file: path.display().to_string(),
    })
}

fn subscription_required(e: &PluginError) -> bool {
    e.code() == Some("SubscriptionRequiredException")
}

impl Action for EnsureCase {
    type Params = EnsureCaseParams;
    type Outputs = Case;
    const NAME: &'static str = "support.ensure-case";
    const SUMMARY: &'static str = "Opens an AWS Support case unless an open one has the same subject; on the Basic plan, hands over a prefilled console link and the case text.";
    const MUTATES: bool = true;
    const SENDS_TEXT: bool = true;

    fn cli(p: &Value) -> Vec<String> {
        let g = |k: &str, d: &str| p.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
        vec![
            "aws support describe-cases --region us-east-1".into(),
            format!(
                "aws support create-case --region us-east-1 --issue-type {} --service-code {} --category-code {} --severity-code {} --subject '{}' --communication-body file://case.txt",
                g("issue_type", "customer-service"),
                g("service_code", "customer-account"),
                g("category_code", "activation"),
                g("severity", "low"),
                g("subject", "SUBJECT")
            ),
        ]
    }

    async fn plan(ctx: &Context, p: &EnsureCaseParams) -> Result<Plan, PluginError> {
        match find_case(ctx, p).await {
            Ok(Some((id, display, status))) => {
                Ok(Plan::one(Verdict::Exists, format!("case {display} ({id}, {status})")))
            }
            Ok(None) => Ok(Plan::one(
                Verdict::WouldCreate,
                format!("support case \"{}\"", p.subject),
            )),
            Err(e) if subscription_required(&e) => Ok(Plan::one(
                Verdict::Check,
                "no Support API on this plan: the case text and a console link will be handed over",
            )),
            Err(e) => Err(e),
        }
    }

    async fn apply(ctx: &Context, p: EnsureCaseParams) -> Result<Case, PluginError> {
        match find_case(ctx, &p).await {
            Ok(Some((case_id, display_id, status))) => {
                return Ok(Case {
                    case_id,
                    display_id,
                    status,
                    created: false,
                    handed_over: false,
                    console_link: String::new(),
                    handover_file: String::new(),
                });
            }
            Ok(None) => {}
            Err(e) if subscription_required(&e) => return hand_over(ctx, &p),
            Err(e) => return Err(e),
        }
        let client = ctx.support().await?;
        ctx.emit(Event::Intent {
            call: "support:CreateCase".into(),
            target: p.subject.clone(),
        })?;
        let res = client
            .create_case()
            .subject(&p.subject)
            .communication_body(&p.body)
            .service_code(&p.service_code)
            .category_code(&p.category_code)
            .severity_code(&p.severity)
            .language(&p.language)
            .issue_type(&p.issue_type)
            .set_cc_email_addresses((!p.cc.is_empty()).then(|| p.cc.clone()))
            .send()
            .await;
        let case_id = match res {
            Ok(out) => out.case_id().unwrap_or_default().to_string(),
            Err(e) => {
                let e = aws("support:CreateCase", e);
                if subscription_required(&e) {
                    return hand_over(ctx, &p);
                }
                return Err(e);
            }
        };
        ctx.emit(Event::Requested {
            call: "support:CreateCase".into(),
            target: p.subject.clone(),
            request_id: Some(case_id.clone()),
        })?;
        let (display_id, status) = match find_case(ctx, &p).await {
            Ok(Some((_, d, s))) => (d, s),
            _ => (String::new(), "opened".into()),
        };
        ctx.emit(Event::Note {
            message: format!("support case {display_id} opened ({case_id})"),
        })?;
        Ok(Case {
            case_id,
            display_id,
            status,
            created: true,
            handed_over: false,
            console_link: String::new(),
            handover_file: String::new(),
        })
    }
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

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws support describe-cases --region us-east-1 --case-id-list CASE_ID".into()]
    }

    async fn plan(_ctx: &Context, _p: &CaseStatusParams) -> Result<Plan, PluginError> {
        Ok(Plan::one(Verdict::Check, "support case status"))
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
