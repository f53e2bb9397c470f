//! The one way a built-in action changes AWS. Before each send the intent is journaled (durably:
//! when that fails, nothing is sent); after it, an answer is journaled as `Requested`, a refusal
//! (AWS answered with an error that means it did nothing, see [`PluginError::is_refusal`]) as
//! `Rejected`, and anything else (a 5xx, a timeout, a reset) leaves the intent open: the outcome
//! is unknown, and a re-run lets such a call land before it looks.
//!
//! What to do on a refusal (look again after a conflict, take "not found" as done, wait and send
//! again) stays with the action: the refusal comes back as the error, with its code.

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
