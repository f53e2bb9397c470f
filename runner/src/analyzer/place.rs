//! `check` for where an aws step acts: `account=`, `role=`, `region=`.

use runbook_plugins::Place;

use super::Checker;
use crate::diagnostic::Diagnostic;
use crate::model::{Executor, Family, Step};

impl Checker<'_> {
    pub(super) fn check_place(&mut self, index: usize, step: &Step) {
        let a = &step.attrs;
        let aws = matches!(
            step.executor,
            Executor::Action {
                family: Family::Aws,
                ..
            }
        );
        let item = a.for_each.is_some();
        for (name, attr) in [("account", &a.account), ("role", &a.role), ("region", &a.region)] {
            let Some(attr) = attr else { continue };
            if !aws {
                self.diags.push(
                    Diagnostic::error(self.source, attr.span, format!("`{name}=` is for aws steps"))
                        .with_help("only a step that calls AWS acts in an account or a region"),
                );
                continue;
            }
            if attr.value.contains("${") {
                // Resolved per item at run time: its references are checked like a body's.
                self.check_string(&attr.value, attr.span, Some(attr.span.start), index, item);
                continue;
            }
            let place = match name {
                "account" => Place {
                    account: Some(attr.value.clone()),
                    ..Place::default()
                },
                "role" => Place {
                    role: Some(attr.value.clone()),
                    ..Place::default()
                },
                _ => Place {
                    region: Some(attr.value.clone()),
                    ..Place::default()
                },
            };
            if let Err(e) = place.check() {
                self.error(attr.span, e);
            }
        }
        if let (Some(role), None) = (&a.role, &a.account) {
            self.diags.push(
                Diagnostic::error(self.source, role.span, "`role=` without `account=`").with_help(
                    "a role is assumed in another account: write account=ID (or account=${item.Id} with for-each=)",
                ),
            );
        }
    }
}
