//! The one way a built-in action changes AWS. Before each send the intent is journaled (durably:
//! when that fails, nothing is sent); after it, an answer is journaled as `Requested`, a refusal
//! (AWS answered with an error that means it did nothing, see [`PluginError::is_refusal`]) as
//! `Rejected`, and anything else (a 5xx, a timeout, a reset) leaves the intent open: the outcome
//! is unknown, and a re-run lets such a call land before it looks.
//!
//! What to do on a refusal (look again after a conflict, take "not found" as done, wait and send
//! again) stays with the action: the refusal comes back as the error, with its code.
//!
//! Who may resend a call whose answer was lost is decided per call, in [`RESENDS`]: the SDK's
//! standard retries where a second send changes nothing more, else [`Mutation::send_looking`].

use std::future::Future;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

use crate::context::{Context, Event};
use crate::error::{PluginError, aws};

/// A mutating call, named once: its API name and what it acts on, as the journal shows them.
pub(crate) struct Mutation<'a> {
    ctx: &'a Context,
    call: &'static str,
    target: String,
}

impl<'a> Mutation<'a> {
    pub(crate) fn new(ctx: &'a Context, call: &'static str, target: impl Into<String>) -> Self {
        Mutation {
            ctx,
            call,
            target: target.into(),
        }
    }

    /// Journals the intent, then awaits `send` (an SDK call, built but not yet sent), and
    /// journals what came of it. `request_id` reads the asynchronous operation's id from the
    /// answer, when it has one. May be called again after a refusal: each send has its intent.
    pub(crate) async fn send<O, E>(
        &self,
        send: impl Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        request_id: fn(&O) -> Option<&str>,
    ) -> Result<O, PluginError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        SdkError<E, HttpResponse>: ProvideErrorMetadata + RequestId,
    {
        if resend(self.call) != Some(Resend::Sdk) {
            // A programming error, caught before anything is sent: this call is not to be resent
            // by the SDK after a lost answer (see RESENDS).
            return Err(PluginError::Other(format!(
                "{} is not sent with the SDK's retries (it is not in RESENDS as Resend::Sdk)",
                self.call
            )));
        }
        self.intent()?;
        match send.await {
            Ok(out) => {
                let id = request_id(&out).map(String::from);
                self.answered(id)?;
                Ok(out)
            }
            Err(e) => Err(self.failed(aws(self.call, e))?),
        }
    }

    /// Sends a call that AWS would act on twice ([`Resend::AfterLooking`]) and that is never
    /// resent blindly. `send` builds and sends the request with the SDK's retries off
    /// (`.customize().config_override(..retry_config(RetryConfig::disabled()))`): each call of it
    /// is one request. A throttle or another
    /// transient refusal (AWS did nothing) is sent again after a pause, as the SDK would; any
    /// other transient error (a 5xx, a reset, a timeout: AWS may have acted) is followed by
    /// `look`, and what it finds is taken as what the call made; nothing found, it is sent again.
    /// A look that fails, or attempts that run out after such an error, leave the intent open:
    /// the outcome is unknown, and the next run looks before it sends. Where AWS refuses a
    /// duplicate (a user name, a permission set's name, a membership), the look needs no wait:
    /// a request still on its way is refused when it lands.
    pub(crate) async fn send_looking<O, E, F, S, L>(
        &self,
        mut send: impl FnMut() -> S,
        mut look: impl FnMut() -> L,
        request_id: fn(&O) -> Option<&str>,
    ) -> Result<Sent<O, F>, PluginError>
    where
        S: Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        L: Future<Output = Result<Option<F>, PluginError>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        SdkError<E, HttpResponse>: ProvideErrorMetadata + RequestId,
    {
        let attempts = self.ctx.aws_options().max_attempts.unwrap_or(5).max(1);
        // An attempt whose outcome is unknown keeps the intent open, whatever later ones say.
        let mut uncertain = false;
        self.intent()?;
        let mut attempt = 1;
        loop {
            let e = match send().await {
                Ok(out) => {
                    self.answered(request_id(&out).map(String::from))?;
                    return Ok(Sent::Answer(out));
                }
                Err(e) => aws(self.call, e),
            };
            if !e.is_transient() || attempt >= attempts {
                return Err(if uncertain { e } else { self.failed(e)? });
            }
            if !e.is_refusal() {
                uncertain = true;
                match look().await {
                    Ok(Some(found)) => {
                        self.ctx.emit(Event::Warning {
                            message: format!(
                                "{} {} answered {}, but it was done: following what it made",
                                self.call,
                                self.target,
                                e.code().unwrap_or("an error")
                            ),
                        })?;
                        self.answered(None)?;
                        return Ok(Sent::Found(found));
                    }
                    Ok(None) => {}
                    // Not knowing is not sending again: it may have been done.
                    Err(look) => return Err(look),
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt.min(6))).await;
            attempt += 1;
        }
    }

    /// Claims this call's target for the look before it and the send (see [`Context::claim`]).
    pub(crate) async fn claim(&self, duplicates: crate::Duplicates) -> Result<crate::Claim, PluginError> {
        self.ctx.claim(self.call, &self.target, duplicates).await
    }

    /// The intent alone, for a call sent in a way of its own (CreateAccount and
    /// CreateAccountAssignment look before they send again); see [`Mutation::answered`] and
    /// [`Mutation::failed`].
    pub(crate) fn intent(&self) -> Result<(), PluginError> {
        self.ctx.emit(Event::Intent {
            call: self.call.into(),
            target: self.target.clone(),
        })
    }

    /// AWS answered (or the call was found to have landed): the intent is settled.
    pub(crate) fn answered(&self, request_id: Option<String>) -> Result<(), PluginError> {
        self.ctx.emit(Event::Requested {
            call: self.call.into(),
            target: self.target.clone(),
            request_id,
        })
    }

    /// After an answer that leaves the outcome unknown (a 5xx, a timeout, a reset), waits until
    /// the request, sent at `sent`, can no longer reach AWS ([`crate::PollSettings::landing`]):
    /// only then does a look for what it made see everything it could have made.
    pub(crate) async fn let_land(&self, sent: std::time::Instant, why: &PluginError) -> Result<(), PluginError> {
        let left = self.ctx.poll_settings().landing.saturating_sub(sent.elapsed());
        if left.is_zero() {
            return Ok(());
        }
        self.ctx.emit(Event::Note {
            message: format!(
                "{} {} answered {}: it may still reach AWS; waiting {}s before looking, so that it is not made twice",
                self.call,
                self.target,
                why.code().unwrap_or("an error"),
                left.as_secs().max(1)
            ),
        })?;
        tokio::time::sleep(left).await;
        Ok(())
    }

    /// Journals a refusal as `Rejected` and hands the error back; any other error leaves the
    /// intent open. The outer error is the journal's.
    pub(crate) fn failed(&self, e: PluginError) -> Result<PluginError, PluginError> {
        if e.is_refusal() {
            self.ctx.emit(Event::Rejected {
                call: self.call.into(),
                target: self.target.clone(),
                code: e.code().unwrap_or("error").to_string(),
            })?;
        }
        Ok(e)
    }
}

/// What [`Mutation::send_looking`] came to.
pub(crate) enum Sent<O, F> {
    /// AWS answered.
    Answer(O),
    /// The answer was lost, and the look found what the call makes.
    Found(F),
}

/// Who may resend a mutating call after an answer that leaves its outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// The SDK's standard retries: a second send changes nothing more than the first.
    Sdk,
    /// Never the SDK: throttles are asked again, anything else is looked for first
    /// ([`Mutation::send_looking`], or the action's own loop that does the same).
    AfterLooking,
}

/// Every mutating call a built-in action sends, who may resend it after a lost answer, and why.
/// `Mutation::send` refuses a call that is not `Sdk` here. Calls by name (`aws SERVICE:Operation`)
/// are never resent after an unknown outcome (`call::wire`), unless the step says
/// `on-unknown=retry` or a person answers `resend = true`; throttles are.
pub const RESENDS: &[(&str, Resend, &str)] = &[
    (
        "identitystore:CreateUser",
        Resend::AfterLooking,
        "a second send is a second create: AWS refuses it (one user per name), but it is sent twice all the same; looked for with GetUserId",
    ),
    (
        "identitystore:CreateGroupMembership",
        Resend::AfterLooking,
        "a second send is a second create (AWS refuses it, moto makes another); looked for with GetGroupMembershipId",
    ),
    (
        "sso-admin:CreatePermissionSet",
        Resend::AfterLooking,
        "a second send is a second create (AWS refuses a second name, moto makes another); looked for with ListPermissionSets and DescribePermissionSet",
    ),
    (
        "organizations:CreateOrganization",
        Resend::AfterLooking,
        "a second send is a second create (AWS refuses it); looked for with DescribeOrganization",
    ),
    (
        "organizations:CreateAccount",
        Resend::AfterLooking,
        "no idempotency token: a second account; looked for by email and in ListCreateAccountStatus (its own loop)",
    ),
    (
        "sso-admin:CreateAccountAssignment",
        Resend::AfterLooking,
        "no idempotency token: a second creation request; looked for in the account's assignments and the requests in progress (its own loop)",
    ),
    (
        "support:CreateCase",
        Resend::AfterLooking,
        "no idempotency token: a second case reaches a person; let land, then looked for by subject (its own loop)",
    ),
    (
        "identitystore:UpdateUser",
        Resend::Sdk,
        "sets attributes to values: the same values twice are the same user",
    ),
    (
        "sso-admin:UpdatePermissionSet",
        Resend::Sdk,
        "sets the session duration and description to values",
    ),
    (
        "sso-admin:AttachManagedPolicyToPermissionSet",
        Resend::Sdk,
        "a policy is attached once; a second attach is a ConflictException the action reads as attached",
    ),
    (
        "sso-admin:DetachManagedPolicyFromPermissionSet",
        Resend::Sdk,
        "a second detach finds nothing to detach (ResourceNotFoundException, read as done)",
    ),
    (
        "sso-admin:DetachCustomerManagedPolicyReferenceFromPermissionSet",
        Resend::Sdk,
        "a second detach finds nothing to detach (read as done)",
    ),
    (
        "sso-admin:PutInlinePolicyToPermissionSet",
        Resend::Sdk,
        "a put: the same policy twice is the same policy",
    ),
    (
        "sso-admin:DeleteInlinePolicyFromPermissionSet",
        Resend::Sdk,
        "a second delete deletes nothing",
    ),
    (
        "sso-admin:ProvisionPermissionSet",
        Resend::Sdk,
        "provisioning twice leaves the accounts' roles as provisioning once does",
    ),
    (
        "sso-admin:DeleteAccountAssignment",
        Resend::Sdk,
        "a second delete finds nothing (ResourceNotFoundException, read as absent)",
    ),
    (
        "sso-admin:DeletePermissionSet",
        Resend::Sdk,
        "a second delete finds nothing (read as absent)",
    ),
    (
        "identitystore:DeleteUser",
        Resend::Sdk,
        "a second delete finds nothing (read as absent)",
    ),
];

/// How `call` may be resent, when it is in [`RESENDS`].
pub fn resend(call: &str) -> Option<Resend> {
    RESENDS.iter().find(|(c, _, _)| *c == call).map(|(_, r, _)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plugins' sources that send, each with its text.
    fn sources() -> Vec<(std::path::PathBuf, String)> {
        let mut out = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/aws")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).expect("source");
                    out.push((p, text));
                }
            }
        }
        out
    }

    /// Every mutating call is in RESENDS, and every one that is not resent by the SDK is built
    /// with the SDK's retries off, in the file that sends it.
    #[test]
    fn every_mutating_call_says_who_resends_it() {
        let named = regex::Regex::new(r#"Mutation::new\(\s*ctx,\s*"([a-z-]+:[A-Za-z]+)""#).expect("regex");
        let mut seen = std::collections::BTreeSet::new();
        for (path, text) in sources() {
            for c in named.captures_iter(&text) {
                let call = c[1].to_string();
                let how = resend(&call).unwrap_or_else(|| panic!("{call} ({}) is not in RESENDS", path.display()));
                if how == Resend::AfterLooking {
                    assert!(
                        text.contains("RetryConfig::disabled()"),
                        "{call} is sent without the SDK's retries, but {} never turns them off",
                        path.display()
                    );
                }
                seen.insert(call);
            }
        }
        for (call, _, why) in RESENDS {
            assert!(seen.contains(*call), "{call} in RESENDS is sent nowhere");
            assert!(!why.is_empty());
        }
        assert!(seen.len() >= 18, "{seen:?}");
    }
}
