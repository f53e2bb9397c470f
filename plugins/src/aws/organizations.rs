//! organizations: the organization itself, the management account, member accounts.

use aws_sdk_organizations::types::{CreateAccountState, CreateAccountStatus, OrganizationFeatureSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mutation::{Mutation, Sent};
use crate::action::{Action, Preview, Verdict};
use crate::aws::sts::caller;
use crate::context::{Context, Event};
use crate::error::{PluginError, aws, whole_list};

mod accounts;
pub use accounts::*;

/// Organizations User Guide, "Quotas for AWS Organizations": member accounts are created at most
/// five at a time (CreateAccount requests in progress). AWS publishes no request rate for the
/// Organizations API, only `TooManyRequestsException` when it is exceeded: 10 requests/s is our
/// assumption, to be overridden (`--rate organizations=N`) where AWS is known to allow another.
pub const QUOTAS: crate::limits::Quotas = crate::limits::Quotas {
    family: "organizations",
    rate: Some(10.0),
    in_progress: &[("CreateAccount", 5)],
    source: "Organizations User Guide, Quotas: 5 concurrent account creations; the 10 requests/s is assumed (none published)",
};

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Organization {
    /// The organization id (`o-...`).
    pub id: String,
    /// The management account's id.
    pub management_account_id: String,
    /// `ALL` or `CONSOLIDATED_BILLING`.
    pub feature_set: String,
    /// True when this run created the organization.
    pub created: bool,
}

/// The organization the caller belongs to, or None when it is in none.
pub async fn describe(ctx: &Context) -> Result<Option<Organization>, PluginError> {
    match ctx.organizations().await?.describe_organization().send().await {
        Ok(out) => Ok(out.organization().map(|o| Organization {
            id: o.id().unwrap_or_default().to_string(),
            management_account_id: o.master_account_id().unwrap_or_default().to_string(),
            feature_set: o.feature_set().map(|f| f.as_str().to_string()).unwrap_or_default(),
            created: false,
        })),
        Err(e) => {
            let e = aws("organizations:DescribeOrganization", e);
            if e.code() == Some("AWSOrganizationsNotInUseException") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum FeatureSet {
    #[serde(rename = "ALL")]
    All,
    #[serde(rename = "CONSOLIDATED_BILLING")]
    ConsolidatedBilling,
}

impl FeatureSet {
    fn as_str(self) -> &'static str {
        match self {
            FeatureSet::All => "ALL",
            FeatureSet::ConsolidatedBilling => "CONSOLIDATED_BILLING",
        }
    }
}

fn all() -> FeatureSet {
    FeatureSet::All
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnsureOrganizationParams {
    /// `ALL` (needed for IAM Identity Center) or `CONSOLIDATED_BILLING`.
    #[serde(default = "all")]
    pub feature_set: FeatureSet,
}

pub struct EnsureOrganization;

/// The organization an account belongs to is this step's only when the account manages it: a
/// member account's organization is another's (its management account's), and taking it as
/// "already there" would send every later step into an organization this account cannot manage.
async fn member_of_another(ctx: &Context, o: &Organization) -> Result<(), PluginError> {
    let me = caller(ctx).await?;
    if o.management_account_id == me.account_id {
        return Ok(());
    }
    Err(PluginError::Check {
        message: format!(
            "account {} is a member of organization {}, whose management account is {}: it cannot manage that organization or create another",
            me.account_id, o.id, o.management_account_id
        ),
        hint: Some(format!(
            "sign in to the management account {} and run again",
            o.management_account_id
        )),
    })
}

impl Action for EnsureOrganization {
    type Params = EnsureOrganizationParams;
    type Outputs = Organization;
    const NAME: &'static str = "organizations.ensure-organization";
    const SUMMARY: &'static str = "Creates the AWS organization (all features) unless the account already manages one; refuses from a member account of another's organization.";
    const MUTATES: bool = true;
    const CALLS: &'static [&'static str] = &[
        "organizations:DescribeOrganization",
        "organizations:CreateOrganization",
        "sts:GetCallerIdentity",
    ];
    const CONVERGES: &'static str = "The organization is this step's when the calling account is its management account; from a member account (the organization is another account's) the step fails and names the management account. All of it: the feature set. An organization with consolidated billing only is not changed by API (every member must accept the handshake): the step fails and says how to enable all features in the console. Organizational units, policies and delegated administrators are not among its parameters.";

    fn cli(_: &Value) -> Vec<String> {
        vec![
            "aws organizations describe-organization".into(),
            "aws organizations create-organization --feature-set ALL".into(),
        ]
    }

    async fn plan(ctx: &Context, p: &EnsureOrganizationParams) -> Result<Preview, PluginError> {
        if let Some(o) = describe(ctx).await? {
            member_of_another(ctx, &o).await?;
        }
        Ok(match describe(ctx).await? {
            Some(o) if p.feature_set == FeatureSet::All && o.feature_set != "ALL" => Preview::one(
                Verdict::WouldChange,
                format!("organization {} needs all features enabled", o.id),
            ),
            Some(o) => Preview::one(Verdict::Exists, format!("organization {} ({})", o.id, o.feature_set)),
            None => Preview::one(
                Verdict::WouldCreate,
                format!("organization with feature set {}", p.feature_set.as_str()),
            ),
        })
    }

    async fn apply(ctx: &Context, p: EnsureOrganizationParams) -> Result<Organization, PluginError> {
        if let Some(o) = describe(ctx).await? {
            member_of_another(ctx, &o).await?;
            if p.feature_set == FeatureSet::All && o.feature_set != "ALL" {
                return Err(PluginError::Check {
                    message: format!("organization {} has only consolidated billing; IAM Identity Center needs all features", o.id),
                    hint: Some("in the Organizations console choose Settings > Enable all features; every member account must accept the handshake".into()),
                });
            }
            return Ok(o);
        }
        let client = ctx.organizations().await?;
        let send = || {
            client
                .create_organization()
                .feature_set(OrganizationFeatureSet::from(p.feature_set.as_str()))
                .customize()
                .config_override(
                    aws_sdk_organizations::config::Builder::default()
                        .retry_config(aws_config::retry::RetryConfig::disabled()),
                )
                .send()
        };
        match Mutation::new(ctx, "organizations:CreateOrganization", p.feature_set.as_str())
            .send_looking(send, || describe(ctx), |_| None)
            .await
        {
            // Our create's answer was lost, and the organization is there.
            Ok(Sent::Found(o)) => Ok(Organization { created: true, ..o }),
            Ok(Sent::Answer(out)) => {
                let o = out.organization();
                Ok(Organization {
                    id: o.and_then(|o| o.id()).unwrap_or_default().to_string(),
                    management_account_id: o.and_then(|o| o.master_account_id()).unwrap_or_default().to_string(),
                    feature_set: o
                        .and_then(|o| o.feature_set())
                        .map(|f| f.as_str().to_string())
                        .unwrap_or_default(),
                    created: true,
                })
            }
            // Someone made it between our look and our create: take theirs.
            Err(e) if e.code() == Some("AlreadyInOrganizationException") => describe(ctx).await?.ok_or(e),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagementCheckParams {
    /// Pass when the account is in no organization yet (a new account: Part 2 creates it).
    #[serde(default)]
    pub organization_optional: bool,
    /// Fail when the organization has only consolidated billing (IAM Identity Center needs all features).
    #[serde(default)]
    pub require_all_features: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ManagementCheck {
    /// The caller's account.
    pub account_id: String,
    /// The organization's management account (empty when there is no organization).
    pub management_account_id: String,
    /// True when the account is in an organization.
    pub in_organization: bool,
    /// The organization id (empty when there is none).
    pub organization_id: String,
    /// `ALL`, `CONSOLIDATED_BILLING`, or empty when there is no organization.
    pub feature_set: String,
}

pub struct CheckManagementAccount;

impl Action for CheckManagementAccount {
    type Params = ManagementCheckParams;
    type Outputs = ManagementCheck;
    const NAME: &'static str = "organizations.check-management-account";
    const SUMMARY: &'static str = "Checks that the caller is the organization's management account (fails from a member account); can accept a new account with no organization yet.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["sts:GetCallerIdentity", "organizations:DescribeOrganization"];

    fn cli(_: &Value) -> Vec<String> {
        vec![
            "aws sts get-caller-identity --query Account".into(),
            "aws organizations describe-organization --query 'Organization.[MasterAccountId,FeatureSet]'".into(),
        ]
    }

    async fn plan(_ctx: &Context, _p: &ManagementCheckParams) -> Result<Preview, PluginError> {
        Ok(Preview::one(Verdict::Check, "caller is the management account"))
    }

    async fn apply(ctx: &Context, p: ManagementCheckParams) -> Result<ManagementCheck, PluginError> {
        let me = caller(ctx).await?;
        let Some(org) = describe(ctx).await? else {
            if p.organization_optional {
                ctx.emit(Event::Note {
                    message: format!(
                        "account {} is in no organization yet: Part 2 creates one (all features) and makes this account its management account",
                        me.account_id
                    ),
                })?;
                return Ok(ManagementCheck {
                    account_id: me.account_id,
                    management_account_id: String::new(),
                    in_organization: false,
                    organization_id: String::new(),
                    feature_set: String::new(),
                });
            }
            return Err(PluginError::Check {
                message: format!("account {} is not in an organization", me.account_id),
                hint: Some("create the organization first (Part 2), or sign in to the management account".into()),
            });
        };
        if org.management_account_id != me.account_id {
            return Err(PluginError::Check {
                message: format!(
                    "account {} is a member of organization {}; its management account is {}",
                    me.account_id, org.id, org.management_account_id
                ),
                hint: Some("sign in to the management account and run again".into()),
            });
        }
        if p.require_all_features && org.feature_set != "ALL" {
            return Err(PluginError::Check {
                message: format!(
                    "organization {} has only consolidated billing; IAM Identity Center needs all features",
                    org.id
                ),
                hint: Some("in the Organizations console choose Settings > Enable all features; every member account must accept the handshake".into()),
            });
        }
        Ok(ManagementCheck {
            account_id: me.account_id,
            management_account_id: org.management_account_id,
            in_organization: true,
            organization_id: org.id,
            feature_set: org.feature_set,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckNamesParams {
    /// The new accounts' names (blank entries and surrounding spaces are ignored).
    pub names: Vec<String>,
    /// Each account's root email; `{name}` is replaced by the account name.
    pub email_template: String,
    /// A regular expression every whole name must match (the naming standard).
    #[serde(default)]
    pub naming_pattern: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlannedAccount {
    /// The account name.
    pub name: String,
    /// Its root email.
    pub email: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckedNames {
    /// Every account to create, name and email, in the order given.
    pub accounts: Vec<PlannedAccount>,
    /// How many.
    pub count: usize,
}

pub struct CheckAccountNames;

/// Why AWS would refuse this as an account's root email, if it would: CreateAccount's `Email` is
/// 6 to 64 characters of `[^\s@]+@[^\s@]+\.[^\s@]+` (the service model). Checked before
/// anything is created: at AWS the accounts before it in a list would be made first.
pub(crate) fn email_problem(email: &str) -> Result<(), String> {
    let n = email.chars().count();
    if n > 64 {
        return Err(format!("is {n} characters long; AWS takes at most 64"));
    }
    let word = |w: &str| !w.is_empty() && !w.contains(char::is_whitespace) && !w.contains('@');
    let shaped = email
        .split_once('@')
        .is_some_and(|(l, d)| word(l) && d.split_once('.').is_some_and(|(a, b)| word(a) && word(b)));
    if n < 6 || !shaped {
        return Err("is not an email address".into());
    }
    Ok(())
}

/// Every problem with a list of new accounts, so that all are reported at once and nothing is
/// created while any remains.
fn name_problems(p: &CheckNamesParams) -> Result<(Vec<PlannedAccount>, Vec<String>), PluginError> {
    let re = match &p.naming_pattern {
        Some(pat) if !pat.is_empty() => {
            Some(
                regex::Regex::new(&format!("^(?:{pat})$")).map_err(|e| PluginError::Params {
                    action: CheckAccountNames::NAME,
                    message: format!("naming_pattern: {e}"),
                })?,
            )
        }
        _ => None,
    };
    let mut problems = Vec::new();
    let mut accounts = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut emails = std::collections::HashSet::new();
    if !p.email_template.contains("{name}") {
        problems.push(format!(
            "the email template `{}` has no {{name}}: every account needs its own root email",
            p.email_template
        ));
    }
    for raw in &p.names {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        let email = p.email_template.replace("{name}", name);
        if name.chars().count() > 50 || name.chars().any(char::is_control) {
            problems.push(format!("`{name}` must be 1 to 50 printable characters"));
        } else if let Some(re) = &re
            && !re.is_match(name)
        {
            problems.push(format!("`{name}` does not follow the naming standard"));
        }
        if !names.insert(name.to_lowercase()) {
            problems.push(format!("`{name}` is given twice"));
        } else if !emails.insert(email.to_lowercase()) {
            problems.push(format!(
                "`{name}` would share the root email {email} with another account"
            ));
        }
        if let Err(why) = email_problem(&email) {
            problems.push(format!("the root email `{email}` (for `{name}`) {why}"));
        }
        accounts.push(PlannedAccount {
            name: name.to_string(),
            email,
        });
    }
    if accounts.is_empty() {
        problems.push("no account names given".into());
    }
    Ok((accounts, problems))
}

impl Action for CheckAccountNames {
    type Params = CheckNamesParams;
    type Outputs = CheckedNames;
    const NAME: &'static str = "organizations.check-account-names";
    const SUMMARY: &'static str = "Checks every new account name against the naming standard and every root email for uniqueness, all before anything is created; fails naming each problem.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["organizations:ListAccounts"];

    async fn plan(_ctx: &Context, p: &CheckNamesParams) -> Result<Preview, PluginError> {
        let (accounts, problems) = name_problems(p)?;
        let mut preview = Preview::default();
        for a in &accounts {
            preview.push(Verdict::Check, format!("account name {} <{}>", a.name, a.email));
        }
        for pr in problems {
            preview.push(Verdict::Check, format!("refused: {pr}"));
        }
        Ok(preview)
    }

    async fn apply(_ctx: &Context, p: CheckNamesParams) -> Result<CheckedNames, PluginError> {
        let (accounts, problems) = name_problems(&p)?;
        if !problems.is_empty() {
            return Err(PluginError::Check {
                message: format!(
                    "{} problem(s) with the account list, nothing was created: {}",
                    problems.len(),
                    problems.join("; ")
                ),
                hint: Some(match &p.naming_pattern {
                    Some(pat) if !pat.is_empty() => format!(
                        "names must match `{pat}` (e.g. AnyCompany-audit-prod, or paulo-santos-testaccount for a personal account); fix the list and run again"
                    ),
                    _ => "fix the list and run again".into(),
                }),
            });
        }
        Ok(CheckedNames {
            count: accounts.len(),
            accounts,
        })
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountSummary {
    /// Account id.
    pub id: String,
    /// Account name.
    pub name: String,
    /// Root user email.
    pub email: String,
    /// ACTIVE, SUSPENDED or PENDING_CLOSURE.
    pub status: String,
}

/// Every account of the organization, all pages.
pub async fn all_accounts(ctx: &Context) -> Result<Vec<AccountSummary>, PluginError> {
    let client = ctx.organizations().await?;
    let mut out = Vec::new();
    let mut pages = client.list_accounts().into_paginator().send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("organizations:ListAccounts", e))?;
        last = page.next_token().map(String::from);
        for a in page.accounts() {
            #[allow(deprecated)]
            let status = a.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            out.push(AccountSummary {
                id: a.id().unwrap_or_default().to_string(),
                name: a.name().unwrap_or_default().to_string(),
                email: a.email().unwrap_or_default().to_string(),
                status,
            });
        }
    }
    whole_list("organizations:ListAccounts", last.as_deref())?;
    Ok(out)
}

/// Account creation requests in the given states, all pages.
async fn create_statuses(
    ctx: &Context,
    states: &[CreateAccountState],
) -> Result<Vec<CreateAccountStatus>, PluginError> {
    let client = ctx.organizations().await?;
    let mut out = Vec::new();
    let mut pages = client
        .list_create_account_status()
        .set_states(Some(states.to_vec()))
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("organizations:ListCreateAccountStatus", e))?;
        last = page.next_token().map(String::from);
        out.extend(page.create_account_statuses().iter().cloned());
    }
    whole_list("organizations:ListCreateAccountStatus", last.as_deref())?;
    Ok(out)
}

async fn in_progress(ctx: &Context) -> Result<Vec<CreateAccountStatus>, PluginError> {
    create_statuses(ctx, &[CreateAccountState::InProgress]).await
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAccountsParams {
    /// Keep only accounts whose whole name matches this regular expression.
    #[serde(default)]
    pub name_pattern: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AccountList {
    /// The accounts: id, name, email, status.
    pub accounts: Vec<AccountSummary>,
    /// Their ids, for `account_ids` of an assignment.
    pub ids: Vec<String>,
}

pub struct ListAccounts;

impl Action for ListAccounts {
    type Params = ListAccountsParams;
    type Outputs = AccountList;
    const NAME: &'static str = "organizations.list-accounts";
    const SUMMARY: &'static str = "Lists the organization's accounts (all pages), optionally filtered by name.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["organizations:ListAccounts"];

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws organizations list-accounts".into()]
    }

    async fn plan(_ctx: &Context, _p: &ListAccountsParams) -> Result<Preview, PluginError> {
        Ok(Preview::one(Verdict::Check, "list accounts"))
    }

    async fn apply(ctx: &Context, p: ListAccountsParams) -> Result<AccountList, PluginError> {
        let re = match &p.name_pattern {
            Some(pat) => Some(
                regex::Regex::new(&format!("^(?:{pat})$")).map_err(|e| PluginError::Params {
                    action: Self::NAME,
                    message: format!("name_pattern: {e}"),
                })?,
            ),
            None => None,
        };
        let accounts: Vec<AccountSummary> = all_accounts(ctx)
            .await?
            .into_iter()
            .filter(|a| re.as_ref().is_none_or(|r| r.is_match(&a.name)))
            .collect();
        let ids = accounts.iter().map(|a| a.id.clone()).collect();
        Ok(AccountList { accounts, ids })
    }
}
