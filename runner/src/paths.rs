//! Paths a runbook names (`on-failure=`): relative to the runbook, never escaping its tree.

use std::path::{Component, Path, PathBuf};

/// Resolves `target` against the directory of `runbook`. The result must stay inside the
/// runbook's directory or its parent (the runbooks root, for runbooks kept in sub-folders).
pub fn resolve_within(runbook: &Path, target: &str) -> Result<PathBuf, String> {
    let t = Path::new(target);
    if target.contains("://") || t.is_absolute() {
        return Err("must be a relative path to another runbook".into());
    }
    let dir = runbook.parent().unwrap_or(Path::new("."));
    let mut depth: i32 = 0;
    let mut min_depth: i32 = 0;
    for c in t.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return Err("must be a relative path to another runbook".into()),
        }
        min_depth = min_depth.min(depth);
    }
    if min_depth < -1 {
        return Err("leaves the runbooks directory".into());
    }
    Ok(dir.join(t))
}
