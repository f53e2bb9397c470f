//! sso-admin: the Identity Center instance (`instance.rs`), permission sets
//! (`permission_sets.rs`), account assignments (`assignments.rs`).

mod assignments;
mod in_progress;
mod instance;
mod permission_sets;
pub use assignments::*;
pub use instance::*;
pub use permission_sets::*;

/// IAM Identity Center User Guide, "IAM Identity Center quotas", throttle limits: the admin APIs
/// have a collective limit of 20 transactions per second, and account assignment writes at most
/// 15 outstanding asynchronous calls, which cannot be raised (the IAM User Guide's account access
/// quotas say the same; the older AWS SSO page said 10). Past the cap AWS answers
/// `ConflictException`.
pub const QUOTAS: crate::limits::Quotas = crate::limits::Quotas {
    family: "sso-admin",
    rate: Some(20.0),
    in_progress: &[("CreateAccountAssignment", 15)],
    source: "IAM Identity Center User Guide, Quotas: 20 TPS collective; 15 outstanding asynchronous assignment calls",
};
