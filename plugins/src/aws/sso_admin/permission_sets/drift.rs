//! How an existing permission set differs from what a step asks, computed once for `plan` and
//! `apply`.

use std::collections::HashSet;

use serde_json::Value;

use super::{EnsurePermissionSet, Found, PermissionSetParams, description_differs, policy_arn};
use crate::action::Action;
use crate::error::{PluginError, aws};

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

/// How an existing permission set differs from what the step asks: what `plan` says and `apply`
/// changes, computed once for both.
pub(super) struct Drift {
    pub(super) duration: bool,
    pub(super) description: bool,
    pub(super) attach: Vec<String>,
    pub(super) detach: Vec<String>,
    /// Customer managed policy references (`path` + `name`): none is asked, so each is detached.
    pub(super) customer: Vec<(String, String)>,
    pub(super) inline: Inline,
}

#[derive(PartialEq)]
pub(super) enum Inline {
    Same,
    Put(String),
    Delete,
}

impl Drift {
    pub(super) fn changes_roles(&self) -> bool {
        self.duration
            || !self.attach.is_empty()
            || !self.detach.is_empty()
            || !self.customer.is_empty()
            || self.inline != Inline::Same
    }
}

/// The inline policy asked for, checked to be a JSON document.
pub(super) fn wanted_inline(p: &PermissionSetParams) -> Result<Option<Value>, PluginError> {
    match p.inline_policy.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .map(Some)
            .ok_or_else(|| PluginError::Params {
                action: EnsurePermissionSet::NAME,
                message: "inline_policy must be a JSON policy document (an object)".into(),
            }),
    }
}

pub(super) async fn drift(
    client: &aws_sdk_ssoadmin::Client,
    p: &PermissionSetParams,
    found: &Found,
) -> Result<Drift, PluginError> {
    let want: Vec<String> = p.managed_policies.iter().map(|x| policy_arn(x)).collect();
    let have = attached_policies(client, &p.instance_arn, &found.arn).await?;
    let mut detach: Vec<String> = have.iter().filter(|a| !want.contains(a)).cloned().collect();
    detach.sort();
    let mut attach = Vec::new();
    for a in want {
        if !have.contains(&a) && !attach.contains(&a) {
            attach.push(a);
        }
    }
    let now = client
        .get_inline_policy_for_permission_set()
        .instance_arn(&p.instance_arn)
        .permission_set_arn(&found.arn)
        .send()
        .await
        .map_err(|e| aws("sso-admin:GetInlinePolicyForPermissionSet", e))?
        .inline_policy()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from);
    let inline = match (wanted_inline(p)?, now) {
        (None, None) => Inline::Same,
        (None, Some(_)) => Inline::Delete,
        (Some(w), None) => Inline::Put(w.to_string()),
        // Compared as documents: AWS may give back other spacing or key order.
        (Some(w), Some(n)) if serde_json::from_str::<Value>(&n).ok().as_ref() == Some(&w) => Inline::Same,
        (Some(w), Some(_)) => Inline::Put(w.to_string()),
    };
    let customer = customer_references(client, &p.instance_arn, &found.arn).await?;
    Ok(Drift {
        customer,
        duration: found.session_duration.as_deref() != Some(p.session_duration.as_str()),
        description: description_differs(found, p),
        attach,
        detach,
        inline,
    })
}

/// The customer managed policies a set references, as (path, name).
async fn customer_references(
    client: &aws_sdk_ssoadmin::Client,
    instance_arn: &str,
    ps: &str,
) -> Result<Vec<(String, String)>, PluginError> {
    let mut out = Vec::new();
    let mut pages = client
        .list_customer_managed_policy_references_in_permission_set()
        .instance_arn(instance_arn)
        .permission_set_arn(ps)
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("sso-admin:ListCustomerManagedPolicyReferencesInPermissionSet", e))?;
        last = page.next_token().map(String::from);
        out.extend(
            page.customer_managed_policy_references()
                .iter()
                .map(|r| (r.path().unwrap_or("/").to_string(), r.name().to_string())),
        );
    }
    crate::error::whole_list(
        "sso-admin:ListCustomerManagedPolicyReferencesInPermissionSet",
        last.as_deref(),
    )?;
    out.sort();
    Ok(out)
}
