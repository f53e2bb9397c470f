//! `runbook permissions FILE...`: the IAM policy a run of these runbooks needs, computed from the
//! runbooks themselves: each built-in action's declared calls (`Action::CALLS`) and each call by
//! name, mapped to IAM actions by `runbook_plugins::permissions` (signing name + operation, with
//! AWS's exceptions). Nothing is sent to AWS.

use std::collections::{BTreeMap, BTreeSet};

use runbook_plugins::permissions;

use super::*;

/// What one step needs.
struct Need {
    file: String,
    step: String,
    line: usize,
    what: String,
    /// IAM actions the caller's own credentials need.
    actions: BTreeSet<String>,
    /// Calls made under a role assumed in another account (`account=`): that role's policy, not
    /// the caller's, authorises them; the caller needs only sts:AssumeRole on it.
    role: Option<(String, BTreeSet<String>)>,
}

pub(super) fn permissions(paths: &[PathBuf], json: bool, color: bool) -> Result<(), CommandError> {
    if paths.is_empty() {
        return Err(CommandError::Usage(
            "name the runbooks: runbook permissions FILE... (e.g. runbooks/part-2-identity-center.md)".into(),
        ));
    }
    let (books, diags) = analyse(paths);
    if report(&diags, color) {
        return Err(CommandError::Diagnosed);
    }
    let needs = needs(&books)?;
    let policy = policy(&needs);
    let doc = serde_json::to_string_pretty(&policy).map_err(|e| CommandError::Failed(e.to_string()))?;
    if policy.statement.is_empty() {
        // IAM refuses a policy without statements: say so rather than print one to attach.
        eprintln!("note: a run of these runbooks needs no IAM permission (its AWS steps only ask who the caller is)");
    }
    if json {
        let _ = crate::ui::print_out(&doc);
        return Ok(());
    }
    let mut out = String::new();
    for n in &needs {
        let said = if n.actions.is_empty() && n.role.is_none() {
            "(needs no permission)".to_string()
        } else {
            n.actions.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!(
            "{}:{}  {}  {}  {}\n",
            crate::ui::sanitize(&n.file),
            n.line,
            crate::ui::sanitize(&n.step),
            crate::ui::sanitize(&n.what),
            said
        ));
        if let Some((role, acts)) = &n.role {
            out.push_str(&format!(
                "    as {}: {} (that role's policy, not yours)\n",
                crate::ui::sanitize(role),
                acts.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    out.push_str("\nThe IAM policy for the caller (`--json` prints it alone):\n");
    out.push_str(&doc);
    let _ = crate::ui::print_out(&out);
    Ok(())
}

/// The IAM actions a step's calls need (none for a person's or a script's step): its built-in
/// action's declared calls, or its one call by name. For this command and the site's cards.
pub fn step_actions(step: &crate::model::Step, registry: &Registry) -> Result<BTreeSet<String>, String> {
    let Some(name) = step.executor.action() else {
        return Ok(BTreeSet::new());
    };
    let calls: Vec<&str> = match step.executor.call() {
        Some(c) => vec![c],
        None => registry.get(name).map(|a| a.info().calls.to_vec()).unwrap_or_default(),
    };
    permissions::iam_actions_of(&calls).map_err(|e| e.to_string())
}

fn needs(books: &[Runbook]) -> Result<Vec<Need>, CommandError> {
    let registry = Registry::shared();
    let mut out = Vec::new();
    for b in books {
        for s in &b.steps {
            let Some(name) = s.executor.action() else { continue };
            let actions = step_actions(s, registry)
                .map_err(|e| CommandError::Failed(format!("{}: step `{}`: {e}", b.path, s.id)))?;
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
                let arn = if role.starts_with("arn:") {
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
    }
    Ok(out)
}

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
struct Policy {
    version: &'static str,
    statement: Vec<Allow>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Allow {
    sid: String,
    effect: &'static str,
    action: BTreeSet<String>,
    resource: Value,
}

fn policy(needs: &[Need]) -> Policy {
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
