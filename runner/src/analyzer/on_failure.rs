//! `check` for `on-failure=`: where a failure continues, and that it never comes back.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Checker;
use crate::source::Span;

/// How many runbooks a chain of `on-failure=` is followed through before `check` gives up looking
/// for a way back (a longer chain is followed by no run either: follow-ups nest at most 3 deep).
const MAX_RUNBOOKS: usize = 256;

impl Checker<'_> {
    pub(super) fn check_on_failure(&mut self, target: &str, span: Span) {
        if let Some(id) = target.strip_prefix('#') {
            if !self.anchors.contains(id) {
                self.error(
                    span,
                    format!("on-failure names `#{id}`, which is no step or section of this runbook"),
                );
            }
            return;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
        match crate::paths::resolve_in(self.root, Path::new(&self.runbook.path), file) {
            // A runbook that continues into itself repeats what just failed, and a call whose
            // outcome is unknown would be sent again by each new run of it.
            Ok(p) if crate::paths::canonical(&p) == crate::paths::canonical(Path::new(&self.runbook.path)) => self
                .error(
                    span,
                    format!("on-failure names `{file}`, which is this runbook: a failure would run it again"),
                ),
            // `other.md#step-id` continues into that runbook from that step: it must be one.
            Ok(p) if !anchor.is_empty() => {
                self.check_cycle(&p, file, span);
                if let Ok(src) = crate::load::read(&p) {
                    let (linked, _) = crate::parser::parse(&src);
                    if linked.step(anchor).is_none() {
                        let ids: Vec<&str> = linked.steps.iter().map(|s| s.id.as_str()).collect();
                        self.error(
                            span,
                            format!(
                                "on-failure names `{file}#{anchor}`, but `{anchor}` is no step of {file} (steps: {})",
                                ids.join(", ")
                            ),
                        );
                    }
                }
            }
            Ok(p) => self.check_cycle(&p, file, span),
            Err(crate::paths::PathError::Missing(p)) => {
                self.error(span, format!("on-failure names `{file}`, but {p} does not exist"))
            }
            Err(why @ crate::paths::PathError::NotRunbook) => {
                self.error(span, format!("on-failure names `{file}`, which {why}"))
            }
            Err(why) => self.error(span, format!("on-failure path `{file}` {why}")),
        }
    }

    /// A failure here continues into `first`; if a chain of `on-failure=` from there leads back to
    /// this runbook, every failure would start it again as a new run (and re-send what the first
    /// one sent): an error naming the cycle.
    fn check_cycle(&mut self, first: &Path, file: &str, span: Span) {
        let me = crate::paths::canonical(Path::new(&self.runbook.path));
        if let Some(chain) = way_back(self.root, first, &me) {
            let names: Vec<String> = std::iter::once(shown(self.root, &me))
                .chain(chain.iter().map(|p| shown(self.root, p)))
                .collect();
            self.error(
                span,
                format!(
                    "on-failure names `{file}`, and failures lead back here: {}",
                    names.join(" → ")
                ),
            );
        }
    }
}

/// A path from `first` back to `me` through the `on-failure=` targets of each runbook on the
/// way, `first` included and `me` last; `None` when there is none.
fn way_back(root: &Path, first: &Path, me: &Path) -> Option<Vec<PathBuf>> {
    let mut seen = HashSet::new();
    // Depth-first, each path kept with the chain that reached it.
    let mut stack = vec![vec![crate::paths::canonical(first)]];
    while let Some(chain) = stack.pop() {
        let at = chain.last()?.clone();
        if at == *me {
            return Some(chain);
        }
        if !seen.insert(at.clone()) || seen.len() > MAX_RUNBOOKS {
            continue;
        }
        let Ok(src) = crate::load::read(&at) else { continue };
        let (linked, _) = crate::parser::parse(&src);
        for step in &linked.steps {
            let Some(target) = &step.attrs.on_failure else { continue };
            if target.value.starts_with('#') {
                continue;
            }
            let file = target.value.split_once('#').map_or(target.value.as_str(), |(f, _)| f);
            if let Ok(next) = crate::paths::resolve_in(root, &at, file) {
                let mut longer = chain.clone();
                longer.push(crate::paths::canonical(&next));
                stack.push(longer);
            }
        }
    }
    None
}

/// A runbook's path as `check` names it: under the runbooks root when it is there.
fn shown(root: &Path, p: &Path) -> String {
    let root = crate::paths::canonical(root);
    p.strip_prefix(&root).unwrap_or(p).display().to_string()
}
