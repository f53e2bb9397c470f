//! Where a step acts when it is not the caller's own account and region: `account=` (by
//! assuming a role there, `OrganizationAccountAccessRole` unless `role=` says otherwise, the
//! role AWS Organizations creates in the accounts it makes) and `region=`.
//!
//! The role's credentials are cached per account and role for the run, and refreshed five
//! minutes before they expire (a session lasts an hour), so a long fan-out never signs with
//! expired credentials and a hundred steps in one account assume its role once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use serde::Serialize;
use tokio::sync::Mutex;

/// The role AWS Organizations creates in an account it makes, trusted by the management account.
pub const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";

/// Refreshed this long before AWS says the credentials expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// Another account (and role) and/or another region for a step or an item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Place {
    /// A 12-digit account id.
    pub account: Option<String>,
    /// A role name (or path and name), or a whole role ARN.
    pub role: Option<String>,
    pub region: Option<String>,
}

impl Place {
    /// Whether the step acts anywhere but the caller's own account and region.
    pub fn is_elsewhere(&self) -> bool {
        self.account.is_some() || self.region.is_some()
    }

    pub fn role_name(&self) -> &str {
        self.role.as_deref().unwrap_or(DEFAULT_ROLE)
    }

    /// `arn:aws:iam::111122223333:role/OrganizationAccountAccessRole`, in the partition of the
    /// region (China and GovCloud have their own).
    pub fn role_arn(&self, account: &str, region: &str) -> String {
        let role = self.role_name();
        if role.starts_with("arn:") {
            return role.to_string();
        }
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        format!("arn:{partition}:iam::{account}:role/{}", role.trim_start_matches('/'))
    }

    /// `account 111122223333 (OrganizationAccountAccessRole), region eu-west-1`, for the journal,
    /// the plan and the operator.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.account {
            parts.push(format!("account {a} ({})", self.role_name()));
        }
        if let Some(r) = &self.region {
            parts.push(format!("region {r}"));
        }
        parts.join(", ")
    }

    /// The values a step wrote are what AWS will be asked for: say now when they cannot be.
    pub fn check(&self) -> Result<(), String> {
        if let Some(a) = &self.account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("account `{a}` is not an AWS account id (12 digits)"));
            }
        }
        if let Some(r) = &self.region {
            if !is_region(r) {
                return Err(format!("region `{r}` is not an AWS region name (like eu-west-1)"));
            }
        }
        if let Some(role) = &self.role {
            let ok = !role.is_empty()
                && role
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/:".contains(&b));
            if !ok {
                return Err(format!("role `{role}` is not an IAM role name"));
            }
        }
        Ok(())
    }
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-5`: letters and dashes, a number last.
pub fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// The assumed role's credentials, kept until five minutes before they expire.
#[derive(Debug)]
pub(crate) struct Refreshing<P = aws_config::sts::AssumeRoleProvider> {
    inner: P,
    held: Arc<Mutex<Option<Credentials>>>,
}

impl<P: ProvideCredentials> Refreshing<P> {
    pub(crate) fn new(inner: P) -> Self {
        Refreshing {
            inner,
            held: Arc::default(),
        }
    }

    pub(crate) async fn get(&self) -> provider::Result {
        let mut held = self.held.lock().await;
        if let Some(c) = held.as_ref() {
            let fresh = match c.expiry() {
                Some(e) => e > SystemTime::now() + REFRESH_BEFORE,
                None => true,
            };
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self.inner.provide_credentials().await?;
        *held = Some(c.clone());
        Ok(c)
    }
}

impl<P: ProvideCredentials> ProvideCredentials for Refreshing<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hands out credentials that expire `lasting` from now, counting how often it is asked.
    #[derive(Debug)]
    struct Counting {
        asked: Arc<AtomicUsize>,
        lasting: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.asked.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "ASIA",
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.lasting),
                "test",
            )))
        }
    }

    #[tokio::test]
    async fn credentials_are_kept_until_five_minutes_before_they_expire() {
        let asked = Arc::new(AtomicUsize::new(0));
        let hour = Refreshing::new(Counting {
            asked: asked.clone(),
            lasting: Duration::from_secs(3600),
        });
        for _ in 0..5 {
            hour.provide_credentials().await.expect("credentials");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1, "an hour's session is asked for once");
        let asked = Arc::new(AtomicUsize::new(0));
        let nearly_gone = Refreshing::new(Counting {
            asked: asked.clone(),
            lasting: Duration::from_secs(4 * 60),
        });
        for _ in 0..3 {
            nearly_gone.provide_credentials().await.expect("credentials");
        }
        assert_eq!(
            asked.load(Ordering::SeqCst),
            3,
            "credentials within five minutes of expiry are renewed"
        );
    }

    #[test]
    fn places_are_checked_and_described() {
        let p = Place {
            account: Some("111122223333".into()),
            role: None,
            region: Some("eu-west-1".into()),
        };
        assert!(p.check().is_ok());
        assert_eq!(
            p.role_arn("111122223333", "eu-west-1"),
            "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"
        );
        assert_eq!(
            p.describe(),
            "account 111122223333 (OrganizationAccountAccessRole), region eu-west-1"
        );
        let cn = Place {
            role: Some("ops/Baseline".into()),
            ..p.clone()
        };
        assert_eq!(
            cn.role_arn("111122223333", "cn-north-1"),
            "arn:aws-cn:iam::111122223333:role/ops/Baseline"
        );
        for bad in ["11112222333", "1111222233334", "acct-1", ""] {
            let p = Place {
                account: Some(bad.into()),
                ..Place::default()
            };
            assert!(p.check().is_err(), "{bad}");
        }
        assert!(is_region("us-gov-west-1") && is_region("ap-southeast-5"));
        assert!(!is_region("eu-west") && !is_region("EU-west-1") && !is_region("eu--1"));
    }
}
