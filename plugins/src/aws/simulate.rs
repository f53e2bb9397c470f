//! Asks IAM whether the caller may do a list of actions (`iam:SimulatePrincipalPolicy`), for the
//! preflight of `plan --check-permissions` and `run --check-permissions`. Only reads: nothing here
//! changes AWS, so it needs no gate, as `sts.whoami` needs none.

use std::collections::BTreeMap;

use crate::context::Context;
use crate::error::{PluginError, aws};

/// IAM's verdict on one action for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows it.
    ImplicitDeny,
    /// A statement denies it.
    ExplicitDeny,
}

impl Decision {
    fn from_iam(s: &str) -> Decision {
        match s {
            "allowed" => Decision::Allowed,
            "explicitDeny" => Decision::ExplicitDeny,
            // IAM's third word is `implicitDeny`; anything new is not an allow either.
            _ => Decision::ImplicitDeny,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::ImplicitDeny => "no statement allows it",
            Decision::ExplicitDeny => "a statement denies it",
        }
    }
}

/// What the simulation found.
#[derive(Debug)]
pub enum Simulated {
    /// Each (action, resource) asked, with IAM's decision; `source` is the principal simulated.
    Decided {
        source: String,
        decisions: Vec<(String, String, Decision)>,
    },
    /// The caller cannot be simulated, and why (root, a federated user, no permission to simulate).
    NotPossible { caller: String, why: String },
}

/// The principal whose policies IAM simulates for this caller: an IAM user as it is, a role for an
/// assumed-role session. `Err(why)` for callers IAM cannot simulate.
fn policy_source(arn: &str) -> Result<Source, String> {
    let (kind, _) = super::sts::classify(arn);
    let mut fields = arn.splitn(6, ':');
    let partition = fields.nth(1).unwrap_or("aws");
    let account = fields.nth(2).unwrap_or("");
    let resource = fields.next().unwrap_or("");
    match kind {
        "root" => Err(
            "the caller is the account's root user, whom IAM policies do not limit (an organization's \
             service control policies still may)"
                .into(),
        ),
        "iam-user" => Ok(Source::Arn(arn.to_string())),
        "assumed-role" | "identity-center" => {
            let role = resource.split('/').nth(1).unwrap_or("");
            Ok(Source::Role {
                name: role.to_string(),
                guess: format!("arn:{partition}:iam::{account}:role/{role}"),
            })
        }
        _ => Err(format!("IAM cannot simulate a {kind} caller")),
    }
}

enum Source {
    Arn(String),
    /// A role known by name: its ARN (with its path) is read with iam:GetRole when allowed.
    Role {
        name: String,
        guess: String,
    },
}

/// IAM's codes for "you may not ask" and "no such principal": the preflight says so and the run
/// goes on, as the issue asks; any other error is an error.
/// A 403 whatever its body (moto words IAM's refusal in a shape the SDK cannot read).
fn cannot_simulate(e: &PluginError) -> bool {
    matches!(e, PluginError::Aws { code, status, .. }
        if *status == Some(403)
            || matches!(code.as_str(), "AccessDenied" | "AccessDeniedException" | "NoSuchEntity" | "NoSuchEntityException" | "InvalidInput"))
}

/// Asks IAM about each action, grouped by the resource it needs (`*` when unknown).
pub async fn simulate(ctx: &Context, wanted: &[(String, String)]) -> Result<Simulated, PluginError> {
    let me = super::sts::caller(ctx).await?;
    let source = match policy_source(&me.arn) {
        Ok(s) => s,
        Err(why) => return Ok(Simulated::NotPossible { caller: me.arn, why }),
    };
    let iam = ctx.iam().await?;
    let source = match source {
        Source::Arn(a) => a,
        // A role's ARN carries its path (Identity Center's roles live under
        // /aws-reserved/sso.amazonaws.com/), which the session ARN drops: read it when the caller
        // may, else try the role without a path.
        Source::Role { name, guess } => match iam.get_role().role_name(&name).send().await {
            Ok(out) => out.role().map_or(guess, |r| r.arn().to_string()),
            Err(_) => guess,
        },
    };
    let mut by_resource: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (action, resource) in wanted {
        by_resource.entry(resource).or_default().push(action);
    }
    let mut decisions = Vec::new();
    for (resource, actions) in by_resource {
        let mut marker: Option<String> = None;
        loop {
            let mut req = iam
                .simulate_principal_policy()
                .policy_source_arn(&source)
                .set_action_names(Some(actions.iter().map(|a| a.to_string()).collect()))
                .set_marker(marker.clone());
            if resource != "*" {
                req = req.resource_arns(resource);
            }
            let out = match req.send().await {
                Ok(o) => o,
                Err(e) => {
                    let e = aws("iam:SimulatePrincipalPolicy", e);
                    if cannot_simulate(&e) {
                        let why = match &e {
                            PluginError::Aws { code, .. } if code.starts_with("NoSuchEntity") => {
                                format!("IAM knows no principal {source}")
                            }
                            PluginError::Aws { status: Some(403), .. } => format!(
                                "IAM would not simulate {source}: the caller may not call \
                                 iam:SimulatePrincipalPolicy (allow it on the caller's own ARN to let the preflight ask)"
                            ),
                            _ => format!("IAM would not simulate {source}: {e}"),
                        };
                        return Ok(Simulated::NotPossible { caller: me.arn, why });
                    }
                    return Err(e);
                }
            };
            for r in out.evaluation_results() {
                decisions.push((
                    r.eval_action_name().to_string(),
                    resource.to_string(),
                    Decision::from_iam(r.eval_decision().as_str()),
                ));
            }
            marker = out.marker().map(str::to_string);
            if !out.is_truncated() || marker.is_none() {
                break;
            }
        }
    }
    Ok(Simulated::Decided { source, decisions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_kind_of_caller() {
        assert!(policy_source("arn:aws:iam::123456789012:root").is_err());
        assert!(matches!(
            policy_source("arn:aws:iam::123456789012:user/ops/pat"),
            Ok(Source::Arn(a)) if a == "arn:aws:iam::123456789012:user/ops/pat"
        ));
        assert!(matches!(
            policy_source("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/pat"),
            Ok(Source::Role { name, guess }) if name == "AWSReservedSSO_Admin_0123"
                && guess == "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123"
        ));
        assert!(policy_source("arn:aws:sts::123456789012:federated-user/pat").is_err());
    }

    #[test]
    fn iam_words() {
        assert_eq!(Decision::from_iam("allowed"), Decision::Allowed);
        assert_eq!(Decision::from_iam("explicitDeny"), Decision::ExplicitDeny);
        assert_eq!(Decision::from_iam("implicitDeny"), Decision::ImplicitDeny);
        assert_eq!(Decision::from_iam("somethingNew"), Decision::ImplicitDeny);
    }
}
