//! Calls whose outcome is unknown, seen from every journal of a state directory. A journal
//! belongs to one runbook at one place; the same request can come back from a copy of the
//! runbook, a version moved over it, a renamed step or a step that now has another id, and
//! each of those reads a journal that never saw the first send. Before a call by API name that
//! changes AWS is sent, `STATE/pending/<digest>` is written (and synced); it is removed when
//! the answer is journaled. A mark left by a lost answer, a kill or a timeout stops the same
//! request from any journal until a person says to send it again. The digest holds no secret and
//! needs no key (`exec/gate.rs`); marks of earlier versions were keyed with `STATE/pending/key`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{check_private, legacy_key, make_private_dir, open_options};
use super::{JournalError, io};

/// Largest mark read: a few names and a time.
const MARK_MAX: u64 = 16 * 1024;

/// Who sent a request whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCall {
    pub runbook: String,
    pub run: String,
    pub step: String,
    pub call: String,
    pub at: String,
}

/// The marks of one state directory.
#[derive(Debug)]
pub struct Pending {
    dir: PathBuf,
}

impl Pending {
    /// Opens (creating) `STATE/pending/` and returns it with the key earlier versions digested
    /// their marks with, when it is there.
    pub fn open(state_dir: &Path) -> Result<(Pending, Option<Vec<u8>>), JournalError> {
        super::files::state_dir_not_a_link(state_dir)?;
        let dir = state_dir.join("pending");
        make_private_dir(&dir, 1)?;
        let key = legacy_key(&dir)?;
        Ok((Pending { dir }, key))
    }

    /// The marks of a state directory, read only (`plan` writes none, and makes no directory).
    pub fn read_only(state_dir: &Path) -> Result<(Pending, Option<Vec<u8>>), JournalError> {
        let dir = state_dir.join("pending");
        let key = legacy_key(&dir)?;
        Ok((Pending { dir }, key))
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.json"))
    }

    /// The mark of a request, when one is left.
    pub fn get(&self, digest: &str) -> Option<PendingCall> {
        let f = open_options().read(true).open(self.path(digest)).ok()?;
        if !f.metadata().ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        f.take(MARK_MAX).read_to_string(&mut text).ok()?;
        // A mark that cannot be read still says that something was sent.
        Some(serde_json::from_str(&text).unwrap_or(PendingCall {
            runbook: "(unreadable mark)".into(),
            run: String::new(),
            step: String::new(),
            call: String::new(),
            at: String::new(),
        }))
    }

    /// Marks a request as about to be sent: on disk before the send.
    pub fn mark(&self, digest: &str, call: &PendingCall) -> Result<(), JournalError> {
        let path = self.path(digest);
        let text = serde_json::to_vec(call).map_err(|e| JournalError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".mark")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(|e| io(&self.dir, e))?;
        tmp.write_all(&text).map_err(|e| io(&path, e))?;
        tmp.as_file().sync_all().map_err(|e| io(&path, e))?;
        tmp.persist(&path).map_err(|e| io(&path, e.error))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&self.dir, e))
    }

    /// The answer is journaled: the request is no longer unknown.
    pub fn clear(&self, digest: &str) {
        let _ = std::fs::remove_file(self.path(digest));
    }

    /// The lock file of a target being acted on (`STATE/claims/<digest>.lock`), opened without
    /// following a link; the caller locks it.
    pub fn claim_file(&self, digest: &str) -> Result<File, JournalError> {
        let dir = self.dir.with_file_name("claims");
        make_private_dir(&dir, 1)?;
        let path = dir.join(format!("{digest}.lock"));
        let f = open_options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        check_private(&f, &path)?;
        Ok(f)
    }
}
