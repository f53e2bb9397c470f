//! The list of every action: dispatch, `check` and the book's plugin reference all read it.

use crate::action::{Action, DynAction, Erased};
use crate::aws::{groups, iam, identitystore, organizations, remove, sso_admin, sts, support};
use crate::net;

pub struct Registry {
    actions: Vec<Box<dyn DynAction>>,
}

fn erased<A: Action>() -> Box<dyn DynAction> {
    Box::new(Erased::<A>::new())
}

impl Registry {
    /// The one registry of this process, built on first use.
    pub fn shared() -> &'static Registry {
        static SHARED: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
        SHARED.get_or_init(Registry::builtin)
    }

    /// Every built-in action, in the order the reference lists them.
    pub fn builtin() -> Self {
        Registry {
            actions: vec![
                erased::<sts::WhoAmI>(),
                erased::<iam::CheckRootMfa>(),
                erased::<iam::CheckRoleQuota>(),
                erased::<organizations::EnsureOrganization>(),
                erased::<organizations::CheckManagementAccount>(),
                erased::<organizations::CheckAccountNames>(),
                erased::<organizations::EnsureAccount>(),
                erased::<organizations::ListAccounts>(),
                erased::<sso_admin::FindInstance>(),
                erased::<sso_admin::EnsurePermissionSet>(),
                erased::<sso_admin::EnsureAssignment>(),
                erased::<remove::RemoveAssignment>(),
                erased::<remove::RemovePermissionSet>(),
                erased::<identitystore::EnsureUser>(),
                erased::<groups::EnsureGroupMembership>(),
                erased::<identitystore::WaitForUser>(),
                erased::<identitystore::FindUser>(),
                erased::<remove::RemoveUser>(),
                erased::<support::EnsureCase>(),
                erased::<support::CaseStatus>(),
                erased::<net::CheckReachable>(),
            ],
        }
    }

    pub fn get(&self, name: &str) -> Option<&dyn DynAction> {
        self.actions.iter().find(|a| a.info().name == name).map(|a| a.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn DynAction> {
        self.actions.iter().map(|a| a.as_ref())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.actions.iter().map(|a| a.info().name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_documents_every_field() {
        let r = Registry::builtin();
        for a in r.iter() {
            let info = a.info();
            assert!(!info.summary.is_empty(), "{}", info.name);
            for f in info.params.iter().chain(&info.outputs) {
                assert!(!f.doc.is_empty(), "{}: field `{}` has no doc line", info.name, f.name);
            }
        }
    }

    #[test]
    fn schemas_give_types_defaults_and_choices() {
        let r = Registry::builtin();
        let ps = r.get("sso-admin.ensure-permission-set").expect("registered").info();
        let sd = ps.param("session_duration").expect("field");
        assert!(!sd.required);
        assert_eq!(sd.default, Some(serde_json::json!("PT1H")));
        assert!(ps.param("name").expect("field").required);
        assert_eq!(ps.param("managed_policies").expect("field").ty, "list of string");
        let asg = r.get("sso-admin.ensure-assignment").expect("registered").info();
        assert_eq!(asg.param("principal_type").expect("field").choices, ["USER", "GROUP"]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let r = Registry::builtin();
        let a = r.get("sts.whoami").expect("registered");
        assert!(a.validate(&serde_json::json!({})).is_ok());
        let e = a.validate(&serde_json::json!({"bogus": 1})).expect_err("refused");
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
