//! `--out`: checked before anything is built, and replaced only by a finished site.

use std::path::{Component, Path, PathBuf};

use super::{RenderError, SITE_MARKER, absolute, io};
use crate::{load, paths};

/// `--out`, checked before anything is built: missing, empty, or a site we made; never a source
/// directory or one that contains a source.
pub(super) struct OutDir {
    /// Absolute, with symlinks of its parent resolved.
    pub(super) path: PathBuf,
    /// Parent directories this render created, deepest first (removed again if it fails).
    created: Vec<PathBuf>,
}

impl OutDir {
    pub(super) fn prepare(out: &Path, sources: &[&Path]) -> Result<OutDir, RenderError> {
        let shown = out.display().to_string();
        let refuse = |why: String| RenderError::Out {
            path: shown.clone(),
            why,
        };
        if let Some(link) = paths::first_link(out) {
            return Err(refuse(format!(
                "passes through {}, a symbolic link; a render never writes through one (name the real directory{})",
                link.display(),
                link.canonicalize()
                    .map(|r| format!(": {}", r.display()))
                    .unwrap_or_default()
            )));
        }
        let abs = normalize(&absolute(out));
        let Some(name) = abs.file_name().map(|n| n.to_os_string()) else {
            return Err(refuse("is the root directory".into()));
        };
        let parent = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut created = Vec::new();
        let mut p = parent.as_path();
        while !p.exists() {
            created.push(p.to_path_buf());
            p = match p.parent() {
                Some(q) => q,
                None => break,
            };
        }
        let real_parent = p
            .canonicalize()
            .map_err(|e| refuse(load::io_message(&e)))?
            .join(parent.strip_prefix(p).unwrap_or(Path::new("")));
        let path = real_parent.join(&name);
        for src in sources {
            let real = paths::canonical(src);
            if real.starts_with(&path) {
                return Err(refuse(format!(
                    "{} the source directory {}; the site must go elsewhere",
                    if real == path { "is" } else { "contains" },
                    src.display()
                )));
            }
        }
        match std::fs::symlink_metadata(&path) {
            Err(_) => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse("is a symbolic link; name the directory itself".into()));
            }
            Ok(m) if !m.is_dir() => return Err(refuse("is a file, not a directory".into())),
            Ok(_) => {
                let mut entries = std::fs::read_dir(&path).map_err(|e| refuse(load::io_message(&e)))?;
                let empty = entries.next().is_none();
                let ours = std::fs::symlink_metadata(path.join(SITE_MARKER)).is_ok_and(|m| m.is_file());
                if !empty && !ours {
                    return Err(refuse(format!(
                        "holds files not made by `runbook render` (it has no {SITE_MARKER}); \
name an empty or new directory, or one a render made"
                    )));
                }
            }
        }
        if !created.is_empty() {
            std::fs::create_dir_all(&parent).map_err(|e| refuse(load::io_message(&e)))?;
        }
        Ok(OutDir { path, created })
    }

    /// Moves the built site into place; a previous site is removed only once the new one is in.
    pub(super) fn replace_with(&self, building: tempfile::TempDir) -> Result<(), RenderError> {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        if self.path.exists() {
            let old = tempfile::Builder::new()
                .prefix(".runbook-old-site-")
                .tempdir_in(parent)
                .map_err(io(parent))?;
            let aside = old.path().join("site");
            std::fs::rename(&self.path, &aside).map_err(io(&self.path))?;
            if let Err(e) = std::fs::rename(building.path(), &self.path) {
                let _ = std::fs::rename(&aside, &self.path);
                return Err(io(&self.path)(e));
            }
            drop(old);
        } else {
            std::fs::rename(building.path(), &self.path).map_err(io(&self.path))?;
        }
        let _ = building.keep();
        Ok(())
    }

    /// After a failed render: removes the parent directories it created (when still empty).
    pub(super) fn undo(&self) {
        for d in &self.created {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `a/./b/../c` as `a/c`, without touching the file system (`..` of a symlink is taken
/// lexically; the sources are compared after canonicalizing, so nothing escapes the check).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
