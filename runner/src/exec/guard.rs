//! Who is calling: the caller identity (sts GetCallerIdentity) checked against the runbook's
//! `[guard]` before every mutating step, and shown in prompts.

use runbook_plugins::aws::sts::Identity;
use serde_json::Value;

use super::{Shared, StepError};
use crate::eval::Env;

/// Why the caller's identity is not known.
#[derive(Debug, Clone)]
pub struct IdentityError {
    /// AWS never answered (a 5xx, a timeout, the network): nothing may be believed about where a
    /// step acts. Otherwise the answer was definite: no credentials, or credentials AWS refused.
    pub outage: bool,
    pub message: String,
    /// What to do about it, when the plugin knows (a credentials failure names the ways to get
    /// credentials).
    pub hint: Option<String>,
}

/// Whether STS's failure means AWS never answered (a 5xx, a timeout, the network), so nothing may
/// be believed about where a step acts; no credentials, or credentials AWS refused, is a definite
/// answer.
fn outage(e: &runbook_plugins::PluginError) -> bool {
    !matches!(e, runbook_plugins::PluginError::Config(_)) && !e.is_refusal()
}

impl Shared {
    /// The caller, asked once per run.
    pub(crate) async fn identity(&self) -> Result<&Identity, StepError> {
        self.caller().await.map_err(|e| StepError::Failed {
            message: format!("sts:GetCallerIdentity: {}", e.message),
            hint: e.hint,
            at: None,
        })
    }

    pub(crate) async fn caller(&self) -> Result<&Identity, IdentityError> {
        self.identity
            .get_or_init(|| async {
                runbook_plugins::aws::sts::caller(&self.ctx)
                    .await
                    .map_err(|e| IdentityError {
                        outage: outage(&e),
                        message: e.to_string(),
                        // A credentials failure says how to get credentials.
                        hint: e.hint(),
                    })
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Who is acting, for prompts and the transcript ("123456789012 as AdministratorAccess/alice").
    pub(super) fn who(&self) -> Option<String> {
        match self.identity.get() {
            Some(Ok(id)) => Some(format!(
                "{} as {}",
                id.account_id,
                if id.is_root { "root" } else { &id.name }
            )),
            _ => None,
        }
    }

    /// Checks the runbook's guard before a mutating step.
    pub(super) async fn guard(&self, env: &Env) -> Result<(), StepError> {
        let Some(guard) = self.runbook.settings.guard.clone() else {
            return Ok(());
        };
        let engine = self.engine();
        let text = |v: &Option<String>| -> Result<Option<String>, StepError> {
            match v {
                Some(s) => match env
                    .interpolate(&engine, s, None)
                    .map_err(|e| StepError::failed(e.to_string()))?
                {
                    Value::String(s) => Ok(Some(s)),
                    other => Ok(Some(other.to_string())),
                },
                None => Ok(None),
            }
        };
        let account = text(&guard.account)?;
        let region = text(&guard.region)?;
        let id = self.identity().await?;
        match account.as_deref() {
            None | Some("any") => {}
            Some("management") => {
                let mgmt = self
                    .management
                    .get_or_init(|| async {
                        match runbook_plugins::aws::organizations::describe(&self.ctx).await {
                            Ok(Some(o)) => Ok(o.management_account_id),
                            Ok(None) => Ok(id.account_id.clone()), // no organization yet: this account will manage it
                            Err(e) => Err(e.to_string()),
                        }
                    })
                    .await
                    .clone()
                    .map_err(|e| StepError::failed(format!("guard: {e}")))?;
                if mgmt != id.account_id {
                    return Err(StepError::Failed {
                        message: format!(
                            "guard: this runbook must run as the management account {mgmt}, but the credentials are for {}",
                            id.account_id
                        ),
                        hint: Some("sign in to the management account (or pick its --profile) and run again".into()),
                        at: None,
                    });
                }
            }
            Some(want) => {
                if want != id.account_id {
                    return Err(StepError::Failed {
                        message: format!(
                            "guard: this runbook must run in account {want}, but the credentials are for {}",
                            id.account_id
                        ),
                        hint: Some("pick the right --profile and run again".into()),
                        at: None,
                    });
                }
            }
        }
        if let Some(want) = region {
            let have = self.ctx.region().await.map_err(StepError::from)?;
            if want != have {
                return Err(StepError::Failed {
                    message: format!("guard: this runbook must run in region {want}, but the region is {have}"),
                    hint: Some(format!("run with --region {want}")),
                    at: None,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{Builder, identity};

    fn guarded(guard: &str) -> Builder {
        Builder::new(&format!(
            "# T\n\n```runbook\n[guard]\n{guard}\n```\n\n```rhai id=a\n1\n```\n"
        ))
    }

    /// What the guard says, for a caller in account 111111111111 and region eu-west-1.
    async fn says(b: Builder) -> Result<(), (String, Option<String>)> {
        let f = b.build();
        f.shared.guard(&Env::default()).await.map_err(|e| match e {
            StepError::Failed { message, hint, .. } => (message, hint),
            other => (format!("{other:?}"), None),
        })
    }

    #[tokio::test]
    async fn the_guard_lets_through_only_the_account_it_names() {
        assert_eq!(says(guarded("account = \"111111111111\"")).await, Ok(()));
        assert_eq!(says(guarded("account = \"any\"")).await, Ok(()));
        assert_eq!(
            says(guarded("account = \"222222222222\"")).await,
            Err((
                "guard: this runbook must run in account 222222222222, but the credentials are for 111111111111".into(),
                Some("pick the right --profile and run again".into())
            ))
        );
        // No guard: nothing is asked, not even who is calling.
        assert_eq!(
            says(Builder::new("# T\n\n```rhai id=a\n1\n```\n").account(None)).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn the_management_guard_compares_with_the_organizations_management_account() {
        let f = guarded("account = \"management\"").build();
        let _ = f.shared.management.set(Ok("999999999999".into()));
        let e = f.shared.guard(&Env::default()).await;
        assert!(
            matches!(&e, Err(StepError::Failed { message, hint: Some(h), .. })
                if message == "guard: this runbook must run as the management account 999999999999, but the credentials are for 111111111111"
                && h == "sign in to the management account (or pick its --profile) and run again"),
            "{e:?}"
        );
        let f = guarded("account = \"management\"").build();
        let _ = f.shared.management.set(Ok("111111111111".into()));
        assert!(f.shared.guard(&Env::default()).await.is_ok());
        let f = guarded("account = \"management\"").build();
        let _ = f.shared.management.set(Err("AccessDenied".into()));
        assert!(matches!(
            f.shared.guard(&Env::default()).await,
            Err(StepError::Failed { message, .. }) if message == "guard: AccessDenied"
        ));
    }

    #[tokio::test]
    async fn the_guard_lets_through_only_the_region_it_names() {
        assert_eq!(says(guarded("region = \"eu-west-1\"")).await, Ok(()));
        assert_eq!(
            says(guarded("account = \"111111111111\"\nregion = \"us-east-2\"")).await,
            Err((
                "guard: this runbook must run in region us-east-2, but the region is eu-west-1".into(),
                Some("run with --region us-east-2".into())
            ))
        );
    }

    #[test]
    fn only_no_answer_from_sts_is_an_outage() {
        use runbook_plugins::PluginError;
        let aws = |code: &str, status: Option<u16>| PluginError::Aws {
            call: "sts:GetCallerIdentity",
            code: code.into(),
            message: "m".into(),
            request_id: None,
            status,
        };
        assert!(!outage(&PluginError::Config("no region".into())));
        assert!(!outage(&aws("ExpiredToken", Some(403))));
        assert!(!outage(&aws("Throttling", Some(400))));
        assert!(outage(&aws("InternalFailure", Some(500))));
        assert!(outage(&aws("InternalError", Some(400))));
        assert!(outage(&aws("dispatch failure", None)));
        assert!(outage(&PluginError::Other("connection reset".into())));
    }

    #[test]
    fn who_is_acting_names_the_account_and_the_caller() {
        let f = Builder::new("# T\n\n```rhai id=a\n1\n```\n").build();
        assert_eq!(
            f.shared.who().as_deref(),
            Some("111111111111 as AdministratorAccess/alice")
        );
        let f = Builder::new("# T\n\n```rhai id=a\n1\n```\n").account(None).build();
        assert_eq!(f.shared.who(), None);
        let _ = f.shared.identity.set(Ok(runbook_plugins::aws::sts::Identity {
            is_root: true,
            ..identity("333333333333")
        }));
        assert_eq!(f.shared.who().as_deref(), Some("333333333333 as root"));
    }
}
