//! What the layer answers instead of moto, or changes in moto's answer, so that a rehearsal
//! meets AWS and not moto. Each rule names what AWS does that moto does not; the rest of the
//! emulated account's behaviour (Identity Center, Organizations) is in the files beside this one.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::account::Account;
use super::wire::{Answer, Call, Handler, Reply, Upstream, UpstreamError};
use super::xml;

/// The emulated account's state that moto does not keep.
#[derive(Default)]
pub(super) struct State {
    /// CreateAccount answers FinalizingOrganizationException this many more times: a new
    /// organization is still being set up.
    pub finalizing: u32,
    /// The region IAM Identity Center is enabled in.
    pub identity_center: Option<String>,
    /// CreateAccount requests the layer failed itself (the email is taken), by request id.
    pub failed_creations: HashMap<String, Value>,
    /// Synced users looked for once and not found: they are there at the next look.
    pub sync_started: HashSet<String>,
    /// Permission sets changed since they were last provisioned.
    pub changed_sets: HashSet<String>,
    /// User attributes changed by UpdateUser (moto has none), by user id: (path, value).
    pub user_updates: HashMap<String, Vec<(String, Value)>>,
}

pub(super) struct World {
    pub account: Account,
    pub moto: Upstream,
    pub state: Mutex<State>,
}

impl World {
    pub fn new(account: Account, moto: Upstream) -> World {
        World {
            account,
            moto,
            state: Mutex::default(),
        }
    }

    /// The state, also after a panic in another connection's task (it holds plain data).
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the account what it is before the rehearsal starts: an organization that finished
    /// setting up long ago, Identity Center already enabled.
    pub async fn prepare(&self) -> Result<(), UpstreamError> {
        if self.account.has_organization() {
            self.moto
                .call(
                    "organizations",
                    "us-east-1",
                    "AWSOrganizationsV20161128.CreateOrganization",
                    &json!({ "FeatureSet": "ALL" }),
                )
                .await?;
        }
        if self.account.identity_center == super::IdentityCenter::Enabled {
            self.state().identity_center = Some(self.account.identity_center_region.clone());
        }
        Ok(())
    }

    async fn answer(&self, call: &Call) -> Result<Answer, UpstreamError> {
        match (call.service.as_str(), call.op.as_str()) {
            ("support", _) => self.support(call).await,
            ("sts", "GetCallerIdentity") => {
                let a = self.moto.forward(call).await?;
                Ok(root_caller(a))
            }
            ("iam", "GetAccountSummary") => {
                let a = self.moto.forward(call).await?;
                Ok(root_mfa(a, self.account.root_mfa))
            }
            ("organizations", _) => self.organizations(call).await,
            ("sso", _) => self.sso_admin(call).await,
            ("identitystore", _) => self.identity_store(call).await,
            _ => self.moto.forward(call).await,
        }
    }

    /// AWS refuses the Support API until the account is activated, and then on the plans
    /// without it; moto answers it on every account.
    async fn support(&self, call: &Call) -> Result<Answer, UpstreamError> {
        if !self.account.activated {
            return Ok(Answer::error(
                403,
                "PendingVerification",
                "Your account is currently being verified. Until your account is verified, you may not be able to use some services.",
                Value::Null,
            ));
        }
        if !self.account.support_plan.has_api() {
            return Ok(Answer::error(
                400,
                "SubscriptionRequiredException",
                "AWS Premium Support Subscription is required to use this service.",
                Value::Null,
            ));
        }
        self.moto.forward(call).await
    }
}

/// The rules answer the SDK's calls; what moto cannot be asked is a 502, as a gateway says.
impl Handler for World {
    async fn handle(&self, call: Call) -> Reply {
        match self.answer(&call).await {
            Ok(a) => a.into(),
            Err(e) => Answer::error(502, "BadGateway", &e.to_string(), Value::Null).into(),
        }
    }
}

/// GetCallerIdentity as the account's root user: moto says `user/moto` for any credentials, a
/// new account has only its root user. (The fault proxy of the tests plays the same caller.)
pub fn root_caller(a: Answer) -> Answer {
    let text = String::from_utf8_lossy(&a.body).into_owned();
    let Some(account) = xml::text(&text, "Account") else {
        return a;
    };
    // A role assumed in a member account is that role, not the root user.
    if xml::text(&text, "Arn").is_some_and(|arn| arn.contains(":assumed-role/")) {
        return a;
    }
    let text = xml::set_text(&text, "Arn", &format!("arn:aws:iam::{account}:root"));
    let text = xml::set_text(&text, "UserId", &account);
    a.with_body(text)
}

/// GetAccountSummary with root MFA `active` or not: moto always says 0.
pub fn root_mfa(a: Answer, active: bool) -> Answer {
    let body = xml::set_entry(
        &String::from_utf8_lossy(&a.body),
        "AccountMFAEnabled",
        if active { "1" } else { "0" },
    );
    a.with_body(body)
}

/// A validation error as the Identity Center APIs send it.
pub(super) fn invalid(message: String) -> Answer {
    Answer::error(400, "ValidationException", &message, Value::Null)
}

/// Whether `value` is 1 to `max` characters.
pub(super) fn length_ok(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_becomes_the_root_user() {
        let xml = "<GetCallerIdentityResponse><GetCallerIdentityResult><UserId>AKIAIOSFODNN7EXAMPLE</UserId><Account>123456789012</Account><Arn>arn:aws:sts::123456789012:user/moto</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>";
        let a = Answer {
            status: 200,
            headers: Vec::new(),
            body: xml.into(),
        };
        let out = String::from_utf8(root_caller(a).body.to_vec()).expect("utf8");
        assert!(out.contains("<Arn>arn:aws:iam::123456789012:root</Arn>"), "{out}");
        assert!(out.contains("<UserId>123456789012</UserId>"), "{out}");
    }
}
