//! The built-in AWS actions, one module per service.

pub mod groups;
pub mod iam;
pub mod identitystore;
mod mutation;
pub mod organizations;
pub mod remove;
pub mod simulate;
pub mod sso_admin;
pub mod sts;
pub mod support;

pub use crate::duration::parse as parse_duration;
use crate::limits::{AwsLimits, Quotas};
pub use mutation::{RESENDS, Resend, resend};

/// The published limits of every API family the plugins call (see each module's `QUOTAS`).
pub const QUOTAS: &[&Quotas] = &[
    &sso_admin::QUOTAS,
    &identitystore::QUOTAS,
    &organizations::QUOTAS,
    &support::QUOTAS,
];

/// What the plugins declare: the limits a run keeps unless the operator overrides them.
pub fn published_limits() -> AwsLimits {
    AwsLimits::from_quotas(QUOTAS)
}
