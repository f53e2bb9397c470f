//! The IAM policy a run needs, computed from the runbooks themselves: each built-in action's
//! declared calls (`Action::CALLS`) and each call by name, mapped to IAM actions by
//! `runbook_plugins::permissions` (signing name + operation, with AWS's exceptions). Read by
//! `runbook permissions` and by the site's cards, so it lives with neither.

use std::collections::{BTreeMap, BTreeSet};

use runbook_plugins::{Registry, permissions};
use serde_json::{Value, json};

use crate::model::{Runbook, Step};

/// What one step needs.
pub(crate) struct Need {
    pub file: String,
    pub step: String,
    pub line: usize,
    pub what: String,
    /// IAM actions the caller's own credentials need.
    pub actions: BTreeSet<String>,
    /// Calls made under a role assumed in another account (`account=`): that role's policy, not
    /// the caller's, authorises them; the caller needs only sts:AssumeRole on it.
    pub role: Option<(String, BTreeSet<String>)>,
}

/// The IAM actions a step's calls need (none for a person's or a script's step): its built-in
/// action's declared calls, or its one call by name. For this command and the site's cards.
pub fn step_actions(step: &Step, registry: &Registry) -> Result<BTreeSet<String>, String> {
    let Some(name) = step.executor.action() else {
        return Ok(BTreeSet::new());
    };
    let calls: Vec<&str> = match step.executor.call() {
        Some(c) => vec![c],
        None => registry.get(name).map(|a| a.info().calls.to_vec()).unwrap_or_default(),
    };
    permissions::iam_actions_of(&calls).map_err(|e| e.to_string())
}

/// What each AWS step of these runbooks needs, in runbook order; `Err` names a step whose calls
/// map to no IAM action.
pub(crate) fn needs(books: &[Runbook]) -> Result<Vec<Need>, String> {
    let registry = Registry::shared();
    let mut out = Vec::new();
    for b in books {
        let start = out.len();
        for s in &b.steps {
            let Some(name) = s.executor.action() else { continue };
            let actions = step_actions(s, registry).map_err(|e| format!("{}: step `{}`: {e}", b.path, s.id))?;
            let mut need = Need {
                file: b.path.clone(),
                step: s.id.clone(),
                line: s.line,
                what: s.executor.written().unwrap_or(name).to_string(),
                actions,
                role: None,
            };
            if let Some(account) = &s.attrs.account {
                let role = s
                    .attrs
                    .role
                    .as_ref()
                    .map_or(runbook_plugins::DEFAULT_ROLE, |r| r.value.as_str());
                let arn = if role.contains("${") {
                    // Known only at run time; `${...}` in a policy is IAM's own variable syntax,
                    // which would match nothing.
                    "arn:aws:iam::*:role/*".to_string()
                } else if role.starts_with("arn:") {
                    role.to_string()
                } else {
                    // A literal account narrows the resource; `${...}` is known only at run time.
                    let acct = if account.value.chars().all(|c| c.is_ascii_digit()) {
                        account.value.as_str()
                    } else {
                        "*"
                    };
                    format!("arn:aws:iam::{acct}:role/{}", role.trim_start_matches('/'))
                };
                let theirs = std::mem::take(&mut need.actions);
                need.actions.insert("sts:AssumeRole".into());
                need.role = Some((arn, theirs));
            }
            out.push(need);
        }
        if let Some(g) = guard_need(b, registry) {
            // Before the first step it is checked for, in runbook order.
            let at = out[start..]
                .iter()
                .position(|n| n.line >= g.line)
                .map_or(out.len(), |i| start + i);
            out.insert(at, g);
        }
    }
    Ok(out)
}

/// The guard `account = "management"` (or an account known only at run time, which may say it)
/// reads the organization with the caller's own credentials before each step that changes AWS
/// (`exec/guard.rs`): organizations:DescribeOrganization, needed as soon as one step may change.
/// It is no step: it is listed as `[guard]` at the first step it is checked before.
fn guard_need(b: &Runbook, registry: &Registry) -> Option<Need> {
    let account = b.settings.guard.as_ref()?.account.as_deref()?;
    if account != "management" && !account.contains("${") {
        return None;
    }
    let first = b.steps.iter().find(|s| match s.executor.action() {
        None => false,
        Some(_) if s.executor.call().is_some() => s.call_mutates().unwrap_or(true),
        Some(name) => registry.get(name).is_some_and(|a| a.info().mutates),
    })?;
    Some(Need {
        file: b.path.clone(),
        step: GUARD.into(),
        line: first.line,
        what: format!("account = {account}"),
        actions: BTreeSet::from([GUARD_ACTION.to_string()]),
        role: None,
    })
}

/// How `runbook permissions` names the guard among the steps, and what it needs.
const GUARD: &str = "[guard]";
const GUARD_ACTION: &str = "organizations:DescribeOrganization";

/// The policy document of one runbook, for its page on the site: None when it has no AWS step,
/// an empty string when its AWS steps need no permission (`sts.whoami`).
pub fn policy_of(rb: &Runbook) -> Option<String> {
    let needs = needs(std::slice::from_ref(rb)).ok()?;
    if needs.is_empty() {
        return None;
    }
    if needs.iter().all(|n| n.actions.is_empty()) {
        return Some(String::new());
    }
    serde_json::to_string_pretty(&policy(&needs)).ok()
}

/// `sso-admin` -> `SsoAdmin`; IAM's Sid takes letters and digits only.
fn pascal(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// One service's actions, the steps that need them (in runbook order) and their resources.
type Statement = (BTreeSet<String>, Vec<String>, BTreeSet<String>);

/// One Allow statement per IAM service prefix, its Sid naming the steps that need it (or how many
/// they are, when the names would make the Sid long: an inline user policy holds 2,048 characters).
/// IAM's policy grammar, its keys in the order AWS's documents and console write them (a `Value`
/// would sort them: `Statement` before `Version`, `Action` before `Sid`).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Policy {
    version: &'static str,
    pub statement: Vec<Allow>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Allow {
    sid: String,
    effect: &'static str,
    action: BTreeSet<String>,
    resource: Value,
}

pub(crate) fn policy(needs: &[Need]) -> Policy {
    let mut by_service: BTreeMap<String, Statement> = BTreeMap::new();
    for n in needs {
        for a in &n.actions {
            let service = a.split(':').next().unwrap_or(a).to_string();
            let e = by_service.entry(service).or_default();
            e.0.insert(a.clone());
            if !e.1.contains(&n.step) {
                e.1.push(n.step.clone());
            }
            let resource = match (&n.role, a.as_str()) {
                (Some((arn, _)), "sts:AssumeRole") => arn.clone(),
                _ => "*".to_string(),
            };
            e.2.insert(resource);
        }
    }
    let statement = by_service
        .into_iter()
        .map(|(service, (actions, steps, resources))| {
            let named = format!(
                "{}For{}",
                pascal(&service),
                steps.iter().map(|s| pascal(s)).collect::<String>()
            );
            let sid = if named.len() <= 64 {
                named
            } else {
                format!("{}For{}Steps", pascal(&service), steps.len())
            };
            let resource = match resources.len() {
                _ if resources.contains("*") => json!("*"),
                1 => json!(resources.iter().next()),
                _ => json!(resources),
            };
            Allow {
                sid,
                effect: "Allow",
                action: actions,
                resource,
            }
        })
        .collect();
    Policy {
        version: "2012-10-17",
        statement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_letters_and_digits() {
        assert_eq!(pascal("sso-admin"), "SsoAdmin");
        assert_eq!(pascal("admin-permission-set"), "AdminPermissionSet");
        assert_eq!(pascal("root-mfa-check"), "RootMfaCheck");
    }
}
