//! What a runbook step can do. Each action has a name (`sso-admin.ensure-permission-set`), a typed
//! parameter struct, typed outputs, a read-only `plan` and an idempotent `apply`. The [`Registry`]
//! is the single list that dispatch, `runbook check` and the book's plugin reference all read.
//!
//! Plugins know nothing of Markdown, prompts or state files: they take parameters and a
//! [`Context`], report what they are doing through [`Events`], and return outputs.

mod action;
pub mod aws;
mod budget;
pub mod call;
mod context;
pub mod duration;
mod error;
mod fanout;
mod limits;
mod net;
pub mod permissions;
mod place;
mod poll;
mod pressure;
mod registry;

pub use action::{Action, ActionInfo, DynAction, FieldSpec, Preview, PreviewItem, Verdict, command};
pub use context::{AwsOptions, Claim, Context, Duplicates, Event, Events, Memo, PollSettings};
pub use error::PluginError;
pub use fanout::{Fanout, Finished};
pub use limits::{AwsLimits, LimitError};
pub use place::{DEFAULT_ROLE, Place, is_region};
pub use pressure::{AdaptiveLimit, Pressure};
pub use registry::Registry;

/// The future an action's `plan` and `apply` (and a context's claims) return. Here at the root
/// because both `action` and `context` use it, and `action` depends on `context`.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
