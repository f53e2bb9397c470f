//! The built-in AWS actions, one module per service.

pub mod iam;
pub mod identitystore;
pub mod organizations;
pub mod remove;
pub mod sso_admin;
pub mod sts;
pub mod support;

pub use crate::duration::parse as parse_duration;
