//! Paths a runbook names (`on-failure=`, includes): resolved with symlinks followed, and refused
//! unless they land inside the runbooks root.

use std::path::{Component, Path, PathBuf};

/// Why an `on-failure=` path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("must be a relative path to another runbook")]
    NotRelative,
    #[error("leaves the runbooks directory ({0})")]
    Outside(String),
    #[error("does not exist ({0})")]
    Missing(String),
    #[error("is not a runbook (a .md file)")]
    NotRunbook,
}

/// The runbooks root of a file checked or run on its own: the nearest enclosing directory named
/// `runbooks` (the project's convention and `render --runbooks`' default), else the file's own
/// directory. `check DIR` and `render --runbooks DIR` name the root instead.
pub fn runbooks_root(file: &Path) -> PathBuf {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let real = canonical(&dir);
    real.ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "runbooks"))
        .map(Path::to_path_buf)
        .unwrap_or(real)
}

/// The canonical form of a directory that exists, else the path as given (made absolute).
pub fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// Resolves an `on-failure=` runbook path against the directory of `runbook`: it must name an
/// existing `.md` file whose real path (symlinks followed) is inside `root`.
pub fn resolve_in(root: &Path, runbook: &Path, target: &str) -> Result<PathBuf, PathError> {
    let t = Path::new(target);
    if target.is_empty()
        || target.contains("://")
        || !t
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir | Component::ParentDir))
    {
        return Err(PathError::NotRelative);
    }
    let dir = runbook.parent().unwrap_or(Path::new("."));
    let joined = dir.join(t);
    let real = joined
        .canonicalize()
        .map_err(|_| PathError::Missing(joined.display().to_string()))?;
    if !real.starts_with(canonical(root)) {
        return Err(PathError::Outside(real.display().to_string()));
    }
    if !real.is_file() || !real.extension().is_some_and(|e| e.eq_ignore_ascii_case("md")) {
        return Err(PathError::NotRunbook);
    }
    Ok(joined)
}

/// [`resolve_in`] with the root found from the runbook's own location (see [`runbooks_root`]).
pub fn resolve_within(runbook: &Path, target: &str) -> Result<PathBuf, PathError> {
    resolve_in(&runbooks_root(runbook), runbook, target)
}

/// The first part of `path`, as given (from the current directory, or from `/`), that is a
/// symbolic link: a link planted in a checkout (`build` pointing elsewhere, `--out build/site`,
/// `--events build/ev.ndjson`) must not redirect where the tool writes.
pub fn first_link(path: &Path) -> Option<PathBuf> {
    let mut at = PathBuf::new();
    for c in path.components() {
        at.push(c);
        if matches!(c, Component::Normal(_)) && std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink())
        {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_inside_the_root_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("runbooks");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("a.md"), "# A").expect("write");
        std::fs::write(root.join("sub/b.md"), "# B").expect("write");
        std::fs::write(dir.path().join("out.md"), "# Out").expect("write");
        std::os::unix::fs::symlink("/etc", root.join("etc")).expect("symlink");
        let a = root.join("a.md");
        let b = root.join("sub/b.md");
        assert!(resolve_in(&root, &a, "sub/b.md").is_ok());
        assert!(resolve_in(&root, &b, "../a.md").is_ok());
        assert!(matches!(resolve_in(&root, &a, "../out.md"), Err(PathError::Outside(_))));
        assert!(matches!(
            resolve_in(&root, &a, "etc/passwd"),
            Err(PathError::Outside(_))
        ));
        assert!(matches!(
            resolve_in(&root, &a, "/etc/passwd"),
            Err(PathError::NotRelative)
        ));
        assert!(matches!(resolve_in(&root, &a, "nope.md"), Err(PathError::Missing(_))));
        assert_eq!(runbooks_root(&b), root.canonicalize().expect("canonical"));
        assert_eq!(
            resolve_within(&b, "../../out.md").map(|_| ()),
            Err(PathError::Outside(
                dir.path()
                    .canonicalize()
                    .expect("c")
                    .join("out.md")
                    .display()
                    .to_string()
            ))
        );
    }
}
