//! The account a rehearsal emulates, as an answers file's `[rehearsal]` table says it (and the
//! `rehearse` options override): its support plan, whether sign-up finished, the organization,
//! IAM Identity Center, the identity source and root MFA.

use serde::Deserialize;

/// An account's AWS Support plan, as chosen at sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupportPlan {
    Basic,
    Developer,
    Business,
    EnterpriseOnRamp,
    Enterprise,
}

impl SupportPlan {
    /// Whether the plan includes the AWS Support API.
    pub fn has_api(self) -> bool {
        matches!(
            self,
            SupportPlan::Business | SupportPlan::EnterpriseOnRamp | SupportPlan::Enterprise
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SupportPlan::Basic => "Basic",
            SupportPlan::Developer => "Developer",
            SupportPlan::Business => "Business",
            SupportPlan::EnterpriseOnRamp => "Enterprise On-Ramp",
            SupportPlan::Enterprise => "Enterprise",
        }
    }
}

/// Whether IAM Identity Center is enabled. There is no API for enabling the organization
/// instance: a person does it in the console. The emulator plays that person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityCenter {
    /// Not enabled. The operator enables it, in `identity_center_region`, when a runbook looks for
    /// it in an account that manages an organization and finds none (the runbook has asked them
    /// to): from the next look on, the instance is there.
    WhenAsked,
    /// Enabled before the rehearsal starts (implies the organization), as after Part 2.
    Enabled,
    /// Never enabled: every look finds none.
    Never,
}

/// Where the users of IAM Identity Center come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentitySource {
    IdentityCenterDirectory,
    ActiveDirectory,
    ExternalIdp,
}

impl IdentitySource {
    fn name(self) -> &'static str {
        match self {
            IdentitySource::IdentityCenterDirectory => "the Identity Center directory",
            IdentitySource::ActiveDirectory => "Active Directory",
            IdentitySource::ExternalIdp => "an external IdP",
        }
    }
}

/// The account a rehearsal emulates. The default is a brand-new account: its root user, signed
/// up and activated, no organization, the Basic support plan, root MFA active (Part 1 done), IAM
/// Identity Center not enabled until the operator enables it in us-east-1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Account {
    pub support_plan: SupportPlan,
    /// Sign-up finished and AWS activated the account. Until then AWS refuses the Support API
    /// whatever the plan (the plan is chosen at the end of sign-up).
    pub activated: bool,
    /// The account already manages an AWS organization with all features, finished long ago.
    pub organization: bool,
    pub root_mfa: bool,
    pub identity_center: IdentityCenter,
    /// The region the operator enables IAM Identity Center in (its home region).
    pub identity_center_region: String,
    pub identity_source: IdentitySource,
    /// Users Active Directory or the external IdP synchronizes into the identity store (the ones
    /// the operator put in sync scope). Each appears after the first look for it found nothing.
    pub synced_users: Vec<String>,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            support_plan: SupportPlan::Basic,
            activated: true,
            organization: false,
            root_mfa: true,
            identity_center: IdentityCenter::WhenAsked,
            identity_center_region: "us-east-1".into(),
            identity_source: IdentitySource::IdentityCenterDirectory,
            synced_users: Vec::new(),
        }
    }
}

impl Account {
    /// Whether the account manages an organization from the start.
    pub fn has_organization(&self) -> bool {
        self.organization || self.identity_center == IdentityCenter::Enabled
    }

    /// One line for the operator: what the emulated account is.
    pub fn describe(&self) -> String {
        let support = if !self.activated {
            "the Support API refuses: the account is not activated yet"
        } else if self.support_plan.has_api() {
            "the Support API answers"
        } else {
            "the Support API refuses"
        };
        let ic = match self.identity_center {
            IdentityCenter::Enabled => format!("IAM Identity Center enabled in {}", self.identity_center_region),
            IdentityCenter::WhenAsked => format!(
                "IAM Identity Center not enabled (the operator enables it in {} when asked)",
                self.identity_center_region
            ),
            IdentityCenter::Never => "IAM Identity Center never enabled".into(),
        };
        format!(
            "the emulated account: its root user (session credentials, as in AWS CloudShell), {}, {}, the {} support plan ({support}), root MFA {}, {ic}, users from {}",
            if self.activated {
                "activated"
            } else {
                "signed up, not activated yet"
            },
            if self.has_organization() {
                "managing an organization with all features"
            } else {
                "no organization yet"
            },
            self.support_plan.name(),
            if self.root_mfa { "active" } else { "not set up" },
            self.identity_source.name(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_table_names_the_account() {
        let a: Account = toml::from_str(
            "support_plan = \"business\"\nactivated = false\nidentity_center = \"enabled\"\nidentity_center_region = \"eu-west-1\"\nidentity_source = \"external-idp\"\nsynced_users = [\"ada\"]\n",
        )
        .expect("account");
        assert_eq!(a.support_plan, SupportPlan::Business);
        assert!(!a.activated && a.has_organization());
        assert_eq!(a.identity_source, IdentitySource::ExternalIdp);
        assert_eq!(toml::from_str::<Account>("").expect("empty"), Account::default());
        let typo = toml::from_str::<Account>("organisation = true").expect_err("unknown key");
        assert!(typo.to_string().contains("organisation"), "{typo}");
    }
}
