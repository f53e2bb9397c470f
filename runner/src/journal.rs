//! The journal of a runbook's runs: a state file replaced atomically (temp file, fsync, rename)
//! and an append-only JSON-lines transcript of typed [`Entry`]s, one directory per run, guarded by
//! a lock file.
//!
//! Layout: `STATE/<runbook-stem>-<hash of path>/` holds `key` (the random key of the step
//! digests) and `runs/<NAME>/` per run instance (`state.json`, `transcript.jsonl`, `lock`,
//! hand-over files). Nothing here follows a symlink: the directories are refused when they are
//! one, and every file is opened with `O_NOFOLLOW` or replaced by rename.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::redact::Redactor;

/// Room a run must find in the state directory before it starts (a fan-out over a thousand
/// items journals a few hundred KiB).
const HEADROOM: usize = 1 << 20;

/// Deepest value the journal writes. serde_json reads back at most 128 levels; values are
/// bounded well below that at their source (scripts), this is the last line.
pub const MAX_DEPTH: usize = 64;

/// The state file format this build writes and reads.
pub const STATE_VERSION: u32 = 2;

/// The run name used when neither `--run` nor a key input names one.
pub const DEFAULT_RUN: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(
        "{path}: the state file is from a newer runbook (format {found}, this build reads {STATE_VERSION}); upgrade runbook or use another --state-dir"
    )]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("{path}: the state file is damaged ({message}); move it away or run with --restart")]
    Corrupt { path: PathBuf, message: String },
    #[error("another run of this runbook is in progress ({holder}); wait for it to finish or stop it")]
    Locked { holder: String },
    #[error("{path}: is a symbolic link; runbook never follows links in its state directory (remove it)")]
    Symlink { path: PathBuf },
    #[error("{path}: a value nested deeper than {MAX_DEPTH} levels cannot be journaled")]
    TooDeep { path: PathBuf },
    #[error(
        "{} may be a runbook that moved, and more than one journal left at an old place fits it:\n  {}\n  move the runbook back to the place whose journal is its own, or remove the others",
        runbook.display(),
        candidates.join("\n  ")
    )]
    MovedAmbiguous { runbook: PathBuf, candidates: Vec<String> },
}

fn io(path: &Path, e: std::io::Error) -> JournalError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return JournalError::Symlink {
            path: path.to_path_buf(),
        };
    }
    JournalError::Io {
        path: path.to_path_buf(),
        message: crate::load::io_message(&e),
    }
}

pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The directory that holds one runbook's runs: the stem and a hash of the file's real path (a
/// symbolic link to it names the same directory). [`locate`] finds it after a move.
pub fn dir_for(state_dir: &Path, runbook: &Path) -> PathBuf {
    let canonical = moved::real_path(runbook);
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    let stem = canonical
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runbook".into());
    state_dir.join(format!("{stem}-{}", &hex::encode(digest)[..8]))
}

/// The directory of one run instance of a runbook.
pub fn run_dir(runbook_dir: &Path, name: &str) -> PathBuf {
    runbook_dir.join("runs").join(name)
}

/// A run name that is safe as one path component: letters, digits, `.`, `_`, `-`, `=`, `@`,
/// `,`; anything else becomes `_`; at most 80 bytes; never `.` or `..`. A name changed on the way
/// gets a digest of the original, so that two different names never share a run.
pub fn run_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-=@,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        s = format!("run{s}");
    }
    if s != raw {
        s = format!("{s}-{}", &hex::encode(Sha256::digest(raw.as_bytes()))[..8]);
    }
    s
}

/// An open journal: holds the lock for as long as it lives.
pub struct Journal {
    pub dir: PathBuf,
    pub state: State,
    /// `None` for a journal that is never written ([`Journal::detached`]: `plan`, `verify`).
    transcript: Option<File>,
    _lock: Option<File>,
    redactor: Redactor,
    index: read::Index,
}

/// What a run instance looks like from outside, for `runbook runs` and `status`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub name: String,
    pub dir: PathBuf,
    pub state: State,
}

impl Journal {
    /// Reads the state of a run (if any) without taking the lock; for `status` and `plan`.
    pub fn peek(dir: &Path) -> Result<Option<State>, JournalError> {
        read_state(&dir.join("state.json"))
    }

    /// Every run instance of a runbook, most recently updated first.
    pub fn runs(runbook_dir: &Path) -> Result<Vec<RunSummary>, JournalError> {
        let runs = runbook_dir.join("runs");
        for d in [runbook_dir, runs.as_path()] {
            if std::fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(JournalError::Symlink { path: d.to_path_buf() });
            }
        }
        let rd = match std::fs::read_dir(&runs) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&runs, e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let dir = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Some(state) = read_state(&dir.join("state.json"))? {
                out.push(RunSummary {
                    name: e.file_name().to_string_lossy().into_owned(),
                    dir,
                    state,
                });
            }
        }
        out.sort_by(|a, b| b.state.updated.cmp(&a.state.updated));
        Ok(out)
    }

    /// Opens (creating, 0700) a run's directory and takes its lock. With `restart`, the previous
    /// state is moved aside as `state.json.prev`.
    pub fn open(dir: &Path, runbook: &str, restart: bool, redactor: Redactor) -> Result<Journal, JournalError> {
        // The run's directory, `runs/` and the runbook's directory are ours: never links.
        make_private_dir(dir, 3)?;
        let lock_path = dir.join("lock");
        let mut lock = open_options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        check_private(&lock, &lock_path)?;
        if !FileExt::try_lock_exclusive(&lock).map_err(|e| io(&lock_path, e))? {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            return Err(JournalError::Locked {
                holder: if holder.trim().is_empty() {
                    "unknown holder".into()
                } else {
                    crate::text::sanitize(holder.trim())
                },
            });
        }
        lock.set_len(0).map_err(|e| io(&lock_path, e))?;
        let holder = format!("pid {} by {} since {}", std::process::id(), os_user(), now());
        lock.write_all(holder.as_bytes()).map_err(|e| io(&lock_path, e))?;
        lock.sync_all().map_err(|e| io(&lock_path, e))?;

        let state_path = dir.join("state.json");
        if restart && std::fs::symlink_metadata(&state_path).is_ok() {
            std::fs::rename(&state_path, dir.join("state.json.prev")).map_err(|e| io(&state_path, e))?;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let state = match read_state(&state_path)? {
            Some(s) => s,
            None => State {
                version: STATE_VERSION,
                runbook: runbook.to_string(),
                name,
                rehearsal: false,
                run_id: new_run_id(),
                started: now(),
                updated: now(),
                inputs: BTreeMap::new(),
                secret_inputs: BTreeMap::new(),
                steps: BTreeMap::new(),
                outcome: None,
            },
        };
        let tpath = dir.join("transcript.jsonl");
        let mut transcript = open_options()
            .create(true)
            .read(true)
            .append(true)
            .open(&tpath)
            .map_err(|e| io(&tpath, e))?;
        check_private(&transcript, &tpath)?;
        // A crash or a full disk can leave a torn last line: end it, so that the next entry
        // starts a line of its own and is read back.
        if ends_torn(&mut transcript).map_err(|e| io(&tpath, e))? {
            transcript.write_all(b"\n").map_err(|e| io(&tpath, e))?;
            transcript.sync_data().map_err(|e| io(&tpath, e))?;
        }
        let index = read::Index::read(&tpath)?;
        let mut j = Journal {
            dir: dir.to_path_buf(),
            state,
            transcript: Some(transcript),
            _lock: Some(lock),
            redactor,
            index,
        };
        if restart {
            j.record(Entry::Restarted {})?;
        }
        // Prove the directory is writable, with room for the journal, before anything acts: a
        // run that cannot journal must stop before its first call, not after.
        j.save()?;
        probe_space(dir)?;
        Ok(j)
    }

    /// A journal that is read, never written: a run's record as `plan` and `verify` walk it
    /// (the transcript of `dir` is read for its index; nothing is locked, made or changed).
    pub fn detached(dir: &Path, state: State, redactor: Redactor) -> Result<Journal, JournalError> {
        let index = read::Index::read(&dir.join("transcript.jsonl"))?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            state,
            transcript: None,
            _lock: None,
            redactor,
            index,
        })
    }

    /// A fresh record for a run that never ran.
    pub fn fresh_state(runbook: &str) -> State {
        State {
            version: STATE_VERSION,
            runbook: runbook.to_string(),
            name: DEFAULT_RUN.into(),
            rehearsal: false,
            run_id: new_run_id(),
            started: now(),
            updated: now(),
            inputs: BTreeMap::new(),
            secret_inputs: BTreeMap::new(),
            steps: BTreeMap::new(),
            outcome: None,
        }
    }

    /// Replaces the state file atomically: a crash leaves the old state or the new, never half.
    pub fn save(&mut self) -> Result<(), JournalError> {
        if self.transcript.is_none() {
            return Ok(());
        }
        self.state.version = STATE_VERSION;
        self.state.updated = now();
        let path = self.dir.join("state.json");
        // The free text of each step is redacted, never the record's own fields (a secret "one"
        // must not turn `done` into `d********`). Outputs that held a secret are stored masked
        // and marked secret: a mask is never read back as a value.
        for st in self.state.steps.values_mut() {
            // Outputs that hold a secret are kept as one opaque value: a mask in place would
            // keep their shape.
            if self.redactor.value(&st.outputs) != st.outputs {
                st.outputs = Value::String(crate::redact::MASK.into());
                st.secret = true;
            }
            for text in [&mut st.error, &mut st.waiting_for].into_iter().flatten() {
                *text = self.redactor.text(text);
            }
        }
        let value = serde_json::to_value(&self.state).map_err(|e| JournalError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if depth(&value) > MAX_DEPTH {
            return Err(JournalError::TooDeep { path });
        }
        let text = serde_json::to_string_pretty(&value).map_err(|e| JournalError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".state")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(|e| io(&self.dir, e))?;
        tmp.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
        tmp.as_file().sync_all().map_err(|e| io(&path, e))?;
        tmp.persist(&path).map_err(|e| io(&path, e.error))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&self.dir, e))?;
        Ok(())
    }

    /// Appends one entry to the transcript; durable entries (intents, results) are fsynced
    /// before this returns. Returns the line as written (redacted), for the event stream.
    pub fn record(&mut self, entry: Entry) -> Result<String, JournalError> {
        let path = self.dir.join("transcript.jsonl");
        let durable = entry.durable();
        let line = Line {
            ts: now(),
            run: self.state.run_id.clone(),
            entry,
        };
        let value = serde_json::to_value(&line).map_err(|e| JournalError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if depth(&value) > MAX_DEPTH {
            return Err(JournalError::TooDeep { path });
        }
        // Every field's content is redacted; the line's own keys and tag are left as they are,
        // so the line always reads back as the entry it is.
        let value = match value {
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| match k.as_str() {
                        "event" | "ts" | "run" | "hash" => (k, v),
                        // A step's or item's outputs that hold a secret: one opaque value.
                        "outputs" if self.redactor.value(&v) != v => (k, Value::String(crate::redact::MASK.into())),
                        _ => {
                            let v = self.redactor.value(&v);
                            (k, v)
                        }
                    })
                    .collect(),
            ),
            other => other,
        };
        let mut text = serde_json::to_string(&value).map_err(|e| JournalError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        text.push('\n');
        if let Some(transcript) = self.transcript.as_mut() {
            transcript.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
            if durable {
                transcript.sync_data().map_err(|e| io(&path, e))?;
            }
        }
        text.pop();
        // The index sees the line as it will be read back (redacted).
        if let Ok(written) = serde_json::from_str::<Line>(&text) {
            self.index.apply(&written);
        }
        Ok(text)
    }

    /// Every transcript line that parses, in order.
    /// Starts a fresh run id for a run after a finished one; keeps completed steps.
    pub fn begin_run(&mut self) {
        if self.state.outcome.as_deref() == Some("done") {
            self.state.run_id = new_run_id();
            self.state.started = now();
        }
        self.state.outcome = None;
    }
}

mod entry;
mod files;
mod moved;
mod pending;
mod read;

pub use entry::{Entry, Line, State, StepState, StepStatus, Unsettled};
use files::*;
pub use files::{create_nofollow, depth, legacy_key, make_key, os_user, own_key, own_key_path, read_lines};
pub use moved::{Located, adopt, elsewhere, locate};
pub use pending::{Pending, PendingCall};
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_files;
