//! The journal follows its runbook. A runbook's directory is named by the file's real path, so a
//! file renamed, moved, or reached through a symbolic link would start a journal of its own and
//! forget an unknown outcome its last run left: the call would be sent again. Each runbook
//! directory records where its runbook was (`origin.json`); a runbook found at a new place adopts
//! the journal of one that is gone from its old place and had the same file name or title. Two
//! such journals are refused, never guessed between. Journals older than `origin.json` are found
//! only at their own path.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use super::files::{make_private_dir, open_options};
use super::{Journal, JournalError, dir_for, io};

const ORIGIN: &str = "origin.json";

/// Largest `origin.json` read: it holds one path and one title.
const ORIGIN_MAX: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Origin {
    path: PathBuf,
    title: String,
}

/// Where a runbook's journal is.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub dir: PathBuf,
    /// The runbook's old place, when the journal found is one it left there.
    pub moved_from: Option<PathBuf>,
}

/// Finds the journal of a runbook without changing anything (`plan`, `status`, `runs`).
pub fn locate(state_dir: &Path, runbook: &Path, title: &str, steps: &[&str]) -> Result<Located, JournalError> {
    let dir = dir_for(state_dir, runbook);
    if std::fs::symlink_metadata(&dir).is_ok() {
        return Ok(Located { dir, moved_from: None });
    }
    let real = real_path(runbook);
    let hash = hash_suffix(&dir);
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Ok(Located { dir, moved_from: None });
    };
    for e in entries.flatten() {
        let other = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) || !has_runs(&other) {
            continue;
        }
        // The same file under another name (a journal made before names came from the real path).
        if hash_suffix(&other) == hash {
            return Ok(Located {
                dir: other,
                moved_from: None,
            });
        }
        let Some(origin) = read_origin(&other) else { continue };
        // Gone from its old place: missing, or the name now leads elsewhere (a link left behind
        // at the old name leads here).
        let now = std::fs::canonicalize(&origin.path).ok();
        let here = now.as_deref() == Some(real.as_path());
        let gone = now.as_deref() != Some(origin.path.as_path());
        let same_name = origin.path.file_name() == real.file_name();
        let same_title = !title.is_empty() && origin.title == title;
        // A runbook that merely shares a title, with none of the journal's steps, is another.
        if here || (gone && (same_name || same_title) && shares_a_step(&other, steps)) {
            found.push((other, origin.path));
        }
    }
    match found.len() {
        0 => Ok(Located { dir, moved_from: None }),
        1 => {
            let (dir, from) = found.remove(0);
            Ok(Located {
                dir,
                moved_from: Some(from),
            })
        }
        _ => {
            found.sort();
            Err(JournalError::MovedAmbiguous {
                runbook: real,
                candidates: found
                    .into_iter()
                    .map(|(d, p)| format!("{} (journal {})", p.display(), d.display()))
                    .collect(),
            })
        }
    }
}

/// Finds the journal of a runbook about to run, brings one it left at its old place to the
/// directory of its new place, and records where the runbook is now.
pub fn adopt(state_dir: &Path, runbook: &Path, title: &str, steps: &[&str]) -> Result<Located, JournalError> {
    super::files::state_dir_not_a_link(state_dir)?;
    let found = locate(state_dir, runbook, title, steps)?;
    let dir = dir_for(state_dir, runbook);
    if found.dir != dir {
        // A run still going at the old place keeps its journal where it is.
        if let Some(holder) = in_use(&found.dir) {
            return Err(JournalError::Locked { holder });
        }
        if let Err(e) = std::fs::rename(&found.dir, &dir) {
            // Another run may have adopted it meanwhile.
            if std::fs::symlink_metadata(&dir).is_err() {
                return Err(io(&found.dir, e));
            }
        }
    }
    make_private_dir(&dir, 1)?;
    let origin = Origin {
        path: real_path(runbook),
        title: title.to_string(),
    };
    if read_origin(&dir).as_ref() != Some(&origin) {
        write_origin(&dir, &origin)?;
    }
    Ok(Located {
        dir,
        moved_from: found.moved_from,
    })
}

/// A state directory other than `state_dir` that keeps a journal of this runbook's real runs: a
/// `.runbook/` beside the runbook or in a directory above it (a run started from there). Looked
/// for when `state_dir` has none, so that a run from another working directory does not start a
/// second record and send again what the first left unknown. Rehearsals do not count: they ran
/// against an emulator that is gone, so nothing they sent can reach the operator's account (a
/// rehearsal in a fresh clone used to refuse every later real run from elsewhere).
pub fn elsewhere(state_dir: &Path, runbook: &Path, title: &str, steps: &[&str]) -> Option<PathBuf> {
    let ours = std::fs::canonicalize(state_dir).ok();
    let real = real_path(runbook);
    for a in real.parent()?.ancestors() {
        let candidate = a.join(".runbook");
        let Ok(m) = std::fs::symlink_metadata(&candidate) else {
            continue;
        };
        if !m.is_dir() || std::fs::canonicalize(&candidate).ok() == ours {
            continue;
        }
        if let Ok(found) = locate(&candidate, runbook, title, steps) {
            if has_real_runs(&found.dir) {
                return Some(candidate);
            }
        }
    }
    None
}

pub(super) fn real_path(runbook: &Path) -> PathBuf {
    std::fs::canonicalize(runbook).unwrap_or_else(|_| runbook.to_path_buf())
}

fn hash_suffix(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let (_, hash) = name.rsplit_once('-')?;
    (hash.len() == 8).then(|| hash.to_string())
}

/// Who holds a run of this journal, if a run is going (a lock taken and given back at once).
fn in_use(dir: &Path) -> Option<String> {
    let runs = std::fs::read_dir(dir.join("runs")).ok()?;
    for r in runs.flatten() {
        let path = r.path().join("lock");
        let Ok(mut f) = open_options().read(true).write(true).open(&path) else {
            continue;
        };
        match FileExt::try_lock_exclusive(&f) {
            Ok(true) => {
                let _ = FileExt::unlock(&f);
            }
            _ => {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                return Some(crate::text::sanitize(holder.trim()));
            }
        }
    }
    None
}

/// Whether a journal's runs know any of these step ids.
fn shares_a_step(dir: &Path, steps: &[&str]) -> bool {
    Journal::runs(dir).is_ok_and(|runs| {
        runs.iter()
            .any(|r| r.state.steps.keys().any(|k| steps.contains(&k.as_str())))
    })
}

/// A journal with at least one run in it that is not a rehearsal (a run whose state cannot be
/// read counts as real: it is never guessed away).
fn has_real_runs(dir: &Path) -> bool {
    let Ok(runs) = std::fs::read_dir(dir.join("runs")) else {
        return false;
    };
    runs.flatten().any(|r| match Journal::peek(&r.path()) {
        Ok(Some(state)) => !state.rehearsal,
        Ok(None) => false,
        Err(_) => true,
    })
}

/// A journal with at least one run in it.
fn has_runs(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("runs")).is_ok_and(|mut d| d.next().is_some())
}

fn read_origin(dir: &Path) -> Option<Origin> {
    let f = open_options().read(true).open(dir.join(ORIGIN)).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(ORIGIN_MAX).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_origin(dir: &Path, origin: &Origin) -> Result<(), JournalError> {
    let path = dir.join(ORIGIN);
    let text = serde_json::to_vec(origin).map_err(|e| JournalError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".origin")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| io(dir, e))?;
    tmp.write_all(&text).map_err(|e| io(&path, e))?;
    tmp.as_file().sync_all().map_err(|e| io(&path, e))?;
    tmp.persist(&path).map_err(|e| io(&path, e.error))?;
    Ok(())
}
