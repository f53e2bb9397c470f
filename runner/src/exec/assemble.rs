//! How a [`Shared`] is put together, for a run and for a plan alike, and what it decides once
//! for the whole run: which finished steps are looked at again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use runbook_plugins::{Context, Registry};
use tokio::sync::{Notify, OnceCell};

use super::{Digester, EventSink, RunOptions, Shared};
use crate::eval;
use crate::inputs::Answers;
use crate::journal::{self, Journal};
use crate::model::Runbook;
use crate::redact::Redactor;
use crate::source::Source;
use crate::ui::Ui;

/// What a [`Shared`] is made of: the run's (or the plan's) parts, opened.
pub(crate) struct Parts {
    pub source: Source,
    pub runbook: Runbook,
    pub ctx: Context,
    pub opts: RunOptions,
    pub answers: Answers,
    pub ui: Ui,
    pub redactor: Redactor,
    pub journal: Journal,
    pub digester: Digester,
    pub pending: (journal::Pending, Digester),
    pub events: Arc<EventSink>,
    pub planning: bool,
}

impl Shared {
    /// Whether a finished step is looked at again in this run: in a new run of a finished record,
    /// every step whose outcome can be checked against AWS (reads, scripts, built-in actions,
    /// which look before they act and repair what drifted), items included. A person's
    /// confirmation and a call by name that changes AWS cannot be re-checked: they keep their
    /// record unless what they resolve to changed.
    pub(crate) fn rechecks(&self, step: &crate::model::Step) -> bool {
        if self.fresh.contains(&step.id) {
            return true;
        }
        if !self.converging.load(Ordering::SeqCst) {
            return false;
        }
        let trusted = match &step.executor {
            crate::model::Executor::Manual => true,
            crate::model::Executor::Action { .. } if step.executor.call().is_some() => {
                step.call_mutates() == Some(true)
            }
            _ => false,
        };
        !trusted
    }

    pub(super) fn assemble(p: Parts) -> Arc<Shared> {
        let dir = p.journal.dir.clone();
        let ctx = {
            let r = p.redactor.clone();
            p.ctx
                .with_redact(Arc::new(move |s: &str| r.text(s)))
                .with_state_dir(dir)
        };
        Arc::new(Shared {
            registry: Registry::shared(),
            ctx,
            journal: Mutex::new(p.journal),
            journal_broken: AtomicBool::new(false),
            ui: p.ui,
            redactor: p.redactor,
            digester: p.digester,
            pending: p.pending,
            interrupted: Arc::new(AtomicBool::new(false)),
            interrupt: Notify::new(),
            identity: OnceCell::new(),
            management: OnceCell::new(),
            source: p.source,
            answers: p.answers,
            opts: p.opts,
            events: p.events,
            planning: p.planning,
            converging: AtomicBool::new(false),
            printed: super::script::Printed::default(),
            continued: std::sync::Mutex::new(Vec::new()),
            fresh: feeds_changes(&p.runbook, Registry::shared()),
            runbook: p.runbook,
        })
    }
}

/// The reads and scripts whose outputs feed a step that changes AWS, directly or through other
/// reads and scripts: read again before any change uses them (offboarding must see today's
/// assignments before it removes the user, in a resume too).
fn feeds_changes(runbook: &Runbook, registry: &Registry) -> std::collections::HashSet<String> {
    use crate::model::Executor;
    let changes = |s: &crate::model::Step| match &s.executor {
        Executor::Action { .. } if s.executor.call().is_some() => s.call_mutates() == Some(true),
        Executor::Action { name, .. } => registry.get(name).is_some_and(|a| a.info().mutates),
        _ => false,
    };
    let reads = |s: &crate::model::Step| !changes(s) && !matches!(s.executor, Executor::Manual);
    let refs = |s: &crate::model::Step| -> Vec<String> {
        let mut code = eval::step_code(s);
        for a in [
            &s.attrs.if_,
            &s.attrs.for_each,
            &s.attrs.account,
            &s.attrs.region,
            &s.attrs.role,
        ]
        .into_iter()
        .flatten()
        {
            code.push('\n');
            code.push_str(&a.value);
        }
        crate::interp::refs(&code)
            .into_iter()
            .filter_map(|r| match r {
                crate::interp::Ref::Step { id, .. } => Some(crate::interp::step_key(&id)),
                _ => None,
            })
            .collect()
    };
    let by_key: BTreeMap<String, &crate::model::Step> = runbook
        .steps
        .iter()
        .map(|s| (crate::interp::step_key(&s.id), s))
        .collect();
    let mut fresh = std::collections::HashSet::new();
    let mut todo: Vec<String> = runbook.steps.iter().filter(|s| changes(s)).flat_map(refs).collect();
    while let Some(key) = todo.pop() {
        let Some(s) = by_key.get(&key) else { continue };
        if reads(s) && fresh.insert(s.id.clone()) {
            todo.extend(refs(s));
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;

    /// Reads feed a change directly (`list` → `pick` → `make`), through a condition (`roles`) or
    /// a built-in action's parameters (`alias`); a read nothing changes with, a script beside, a
    /// person and the changes themselves are not read again.
    const FEEDS: &str = "# T\n\n```aws iam:ListUsers id=list\n```\n\n\
```rhai id=pick\n#{ name: steps.list.Users[0].UserName }\n```\n\n\
```aws iam:ListRoles id=roles\n```\n\n```aws iam:ListGroups id=groups\n```\n\n\
```rhai id=unrelated\nsteps.groups\n```\n\n```manual id=person\nconfirm = \"ok?\"\n```\n\n\
```aws iam:ListAccountAliases id=alias\n```\n\n\
```aws iam:CreateUser id=make if='steps.roles.IsTruncated == false && steps.person.confirmed'\nUserName = \"${steps.pick.name}\"\n```\n\n\
```aws iam:CreateGroup id=told mutates=false\nGroupName = \"${steps.groups.Groups}\"\n```\n\n\
```aws organizations.ensure-account id=acct\nname = \"${steps.alias.AccountAliases}\"\nemail = \"a@example.com\"\n```\n";

    fn sorted(set: &std::collections::HashSet<String>) -> Vec<&str> {
        let mut v: Vec<&str> = set.iter().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn the_reads_that_feed_a_change_are_read_again_transitively() {
        let f = Fixture::run(FEEDS);
        assert_eq!(sorted(&f.shared.fresh), ["alias", "list", "pick", "roles"]);
    }

    #[test]
    fn a_resume_looks_again_only_at_what_feeds_a_change() {
        let f = Fixture::run(FEEDS);
        let again: Vec<&str> = f
            .shared
            .runbook
            .steps
            .iter()
            .filter(|s| f.shared.rechecks(s))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(again, ["list", "pick", "roles", "alias"]);
    }

    /// A new run of a finished record looks again at everything it can check; it keeps a
    /// person's confirmation and a call by name that changes AWS (a second send is a second thing).
    #[test]
    fn a_converging_run_trusts_only_people_and_changes_by_name() {
        let f = Fixture::run(FEEDS);
        f.shared.converging.store(true, std::sync::atomic::Ordering::SeqCst);
        let kept: Vec<&str> = f
            .shared
            .runbook
            .steps
            .iter()
            .filter(|s| !f.shared.rechecks(s))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(kept, ["person", "make"]);
    }
}
