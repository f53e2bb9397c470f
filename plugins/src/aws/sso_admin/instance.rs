//! The Identity Center instance: found in the home region, waited for while a person enables it,
//! and looked for in the other regions when the home region given is not where it is.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::{Action, Preview, Verdict};
use crate::context::{Context, Event};
use crate::error::{PluginError, aws};
use crate::poll::{Status, until_done};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindInstanceParams {
    /// The Identity Center home region (default: the configured region).
    #[serde(default)]
    pub region: Option<String>,
    /// Keep polling until a person has enabled Identity Center in the console (up to the step's timeout).
    #[serde(default)]
    pub wait: bool,
    /// Not enabled yet is an answer (`found = false`), not an error: for runbooks that can do
    /// part of their work without Identity Center.
    #[serde(default)]
    pub optional: bool,
    /// The access portal URL when a custom alias replaced the default `d-xxxxxxxxxx` one.
    #[serde(default)]
    pub portal_url: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Instance {
    /// True when Identity Center is enabled in the region (false only with `optional`).
    pub found: bool,
    /// The Identity Center instance ARN (empty when not found).
    pub instance_arn: String,
    /// The identity store id (`d-xxxxxxxxxx`; empty when not found).
    pub identity_store_id: String,
    /// The home region looked in.
    pub region: String,
    /// The AWS access portal sign-in URL (empty when not found).
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

/// The regions where IAM Identity Center can be enabled (its organization instance), where a
/// home region given wrong is looked for.
const IDENTITY_CENTER_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "sa-east-1",
    "mx-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "ap-east-1",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
];

/// Another region where the account's Identity Center is, when it is not in `home`. An account
/// has one organization instance; a region that cannot be asked (opt-in, not enabled) has none.
async fn enabled_elsewhere(ctx: &Context, home: &str) -> Option<String> {
    let looks = IDENTITY_CENTER_REGIONS
        .iter()
        .filter(|r| **r != home)
        .map(|r| async move { matches!(first_instance(ctx, Some(r)).await, Ok(Some(_))).then(|| r.to_string()) });
    futures::future::join_all(looks).await.into_iter().flatten().next()
}

fn wrong_region(home: &str, there: &str) -> PluginError {
    PluginError::Check {
        message: format!(
            "IAM Identity Center is enabled in {there}, not in {home}, the home region this runbook was given"
        ),
        hint: Some(format!(
            "{there} is the account's Identity Center home region: give it as the home region (e.g. `--input home_region={there}`) and run again"
        )),
    }
}

impl Action for FindInstance {
    type Params = FindInstanceParams;
    type Outputs = Instance;
    const NAME: &'static str = "sso-admin.find-instance";
    const SUMMARY: &'static str = "Finds the IAM Identity Center instance and its access portal URL; can wait while a person enables it, and says so when it is enabled in another region than the one given.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &["sso-admin:ListInstances"];

    fn cli(_: &Value) -> Vec<String> {
        vec!["aws sso-admin list-instances --region HOME_REGION".into()]
    }

    async fn plan(ctx: &Context, p: &FindInstanceParams) -> Result<Preview, PluginError> {
        let region = match &p.region {
            Some(r) => r.clone(),
            None => ctx.region().await?,
        };
        Ok(match first_instance(ctx, Some(&region)).await? {
            Some((arn, _)) => Preview::one(Verdict::Exists, format!("Identity Center instance {arn} in {region}")),
            None => match enabled_elsewhere(ctx, &region).await {
                Some(there) => return Err(wrong_region(&region, &there)),
                None if p.wait => Preview::one(
                    Verdict::Check,
                    format!("Identity Center is not enabled in {region} yet; a person enables it in the console"),
                ),
                None if p.optional => Preview::one(
                    Verdict::Check,
                    format!("Identity Center is not enabled in {region} yet (found = false)"),
                ),
                None => Preview::one(
                    Verdict::Check,
                    format!("Identity Center is not enabled in {region}: the step will fail"),
                ),
            },
        })
    }

    async fn apply(ctx: &Context, p: FindInstanceParams) -> Result<Instance, PluginError> {
        let region = match &p.region {
            Some(r) => r.clone(),
            None => ctx.region().await?,
        };
        let found = if p.wait {
            let looks = std::sync::atomic::AtomicU32::new(0);
            let what = format!("IAM Identity Center to be enabled in {region}");
            until_done(ctx, &what, None, || async {
                if let Some(x) = first_instance(ctx, Some(&region)).await? {
                    return Ok(Status::Done(Some(x)));
                }
                // Now and then, every other region: enabled elsewhere, it never comes here.
                if looks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10 == 0
                    && let Some(there) = enabled_elsewhere(ctx, &region).await
                {
                    return Err(wrong_region(&region, &there));
                }
                Ok(Status::Pending(format!("not enabled in {region} yet")))
            })
            .await?
        } else {
            match first_instance(ctx, Some(&region)).await? {
                Some(x) => Some(x),
                None => match enabled_elsewhere(ctx, &region).await {
                    Some(there) => return Err(wrong_region(&region, &there)),
                    None if p.optional => None,
                    None => {
                        return Err(PluginError::Check {
                            message: format!("IAM Identity Center is not enabled in {region}"),
                            hint: Some(format!(
                                "open the IAM Identity Center console in {region} (your home region) and choose Enable (organization instance)"
                            )),
                        });
                    }
                },
            }
        };
        let Some((instance_arn, identity_store_id)) = found else {
            ctx.emit(Event::Warning {
                message: format!("IAM Identity Center is not enabled in {region} (yet)"),
            })?;
            return Ok(Instance {
                found: false,
                instance_arn: String::new(),
                identity_store_id: String::new(),
                region,
                portal_url: String::new(),
            });
        };
        Ok(Instance {
            found: true,
            portal_url: p
                .portal_url
                .unwrap_or_else(|| format!("https://{identity_store_id}.awsapps.com/start")),
            instance_arn,
            identity_store_id,
            region,
        })
    }
}
