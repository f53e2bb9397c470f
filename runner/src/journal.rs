//! The journal of a runbook's runs: a state file replaced atomically (temp file, fsync, rename)
//! and an append-only JSON-lines transcript of typed [`Entry`]s, one directory per run, guarded by
//! a lock file.
//!
//! Layout: `STATE/<runbook-stem>-<hash of path>/` holds `key` (the random key of the step
//! digests) and `runs/<NAME>/` per run instance (`state.json`, `transcript.jsonl`, `lock`,
//! hand-over files). Nothing here follows a symlink: the directories are refused when they are
//! one, and every file is opened with `O_NOFOLLOW` or replaced by rename.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Running,
    Done,
    Skipped,
    Failed,
    Waiting,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepState {
    pub status: StepStatus,
    /// The step's identity (a keyed digest of what it resolved to) when it last ran.
    pub hash: String,
    #[serde(default)]
    pub outputs: Value,
    pub started: Option<String>,
    pub finished: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// The outputs hold secrets, stored masked: the step runs (or asks) again on resume, since
    /// a mask is never a value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// The `on-failure=` runbook this step continued into: `path (run NAME): outcome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_into: Option<String>,
}

impl StepState {
    pub fn new(status: StepStatus, hash: impl Into<String>) -> StepState {
        StepState {
            status,
            hash: hash.into(),
            outputs: Value::Null,
            started: None,
            finished: None,
            error: None,
            waiting_for: None,
            secret: false,
            continued_into: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub runbook: String,
    /// The run instance's name (`--run`, a key input's value, or `default`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub rehearsal: bool,
    pub run_id: String,
    pub started: String,
    pub updated: String,
    /// Input values; secrets are never stored (see `secret_inputs`).
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// Keyed digests of secret inputs, so that a change can be reported without the value.
    #[serde(default)]
    pub secret_inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub steps: BTreeMap<String, StepState>,
    /// Set when the run ended: done, failed, waiting, interrupted.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// One line of the transcript. Every write and every read goes through this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    RunStarted {
        runbook: String,
        name: String,
        user: String,
        rehearsal: bool,
    },
    /// Inputs that differ from the previous run (secrets as "changed", never a value).
    InputsChanged {
        changes: Vec<String>,
    },
    StepStarted {
        step: String,
        hash: String,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    StepFinished {
        step: String,
        hash: String,
        outputs: Value,
    },
    StepFailed {
        step: String,
        error: String,
    },
    Waiting {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
        for_: Option<String>,
    },
    Confirmed {
        step: String,
        question: String,
        who: Value,
        via: String,
        answers: Value,
    },
    /// About to make a mutating call: fsynced before the call is sent.
    Intent {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        call: String,
        target: String,
    },
    Requested {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        call: String,
        target: String,
        request_id: Option<String>,
    },
    /// AWS refused a mutating call: nothing was done, so the intent before it is settled.
    Rejected {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        call: String,
        target: String,
        code: String,
    },
    Note {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        message: String,
    },
    Warning {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_key: Option<String>,
        message: String,
    },
    ItemFinished {
        step: String,
        hash: String,
        item_key: String,
        outputs: Value,
    },
    ItemFailed {
        step: String,
        item_key: String,
        error: String,
    },
    FanoutSummary {
        step: String,
        summary: Value,
    },
    Log {
        step: String,
        message: String,
    },
    Interrupted {
        step: String,
    },
    /// A failed (or refused) step's `on-failure=` runbook was run next, as its own run.
    ContinuedInto {
        step: String,
        runbook: String,
        run: String,
        outcome: String,
    },
    RunFinished {
        outcome: String,
    },
}

impl Entry {
    /// Whether the line must be on disk before the tool goes on (intents before their call,
    /// results before the next step relies on them).
    fn durable(&self) -> bool {
        !matches!(
            self,
            Entry::StepStarted { .. }
                | Entry::StepSkipped { .. }
                | Entry::Note { .. }
                | Entry::Warning { .. }
                | Entry::Log { .. }
                | Entry::FanoutSummary { .. }
        )
    }
}

/// A call whose outcome the journal does not know (see [`Journal::unsettled`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    pub item_key: Option<String>,
    pub call: String,
    pub target: String,
    /// When the intent was journaled.
    pub at: String,
    pub answered: bool,
}

/// A transcript line: when, which run, and the entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub ts: String,
    pub run: String,
    #[serde(flatten)]
    pub entry: Entry,
}

pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The directory that holds one runbook's runs: the file stem and a hash of its path.
pub fn dir_for(state_dir: &Path, runbook: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(runbook).unwrap_or_else(|_| runbook.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    let stem = runbook
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

/// Creates `dir` and its parents (new ones owner-only, 0700). The last `owned` components are
/// the journal's own directories and must not be symbolic links; links above them are the
/// operator's own layout.
fn make_private_dir(dir: &Path, owned: usize) -> Result<(), JournalError> {
    let ours: Vec<&Path> = dir.ancestors().take(owned).collect();
    let mut built = PathBuf::new();
    for c in dir.components() {
        built.push(c);
        match std::fs::symlink_metadata(&built) {
            Ok(m) if m.file_type().is_symlink() => {
                if ours.contains(&built.as_path()) {
                    return Err(JournalError::Symlink { path: built });
                }
            }
            Ok(m) if ours.contains(&built.as_path()) => {
                use std::os::unix::fs::MetadataExt;
                if my_uid().is_some_and(|me| me != m.uid()) {
                    return Err(JournalError::Io {
                        path: built,
                        message: "belongs to another user; choose another --state-dir".into(),
                    });
                }
                if m.mode() & 0o077 != 0 {
                    std::fs::set_permissions(&built, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| io(&built, e))?;
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&built)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| io(&built, e))?;
            }
            Err(e) => return Err(io(&built, e)),
        }
    }
    Ok(())
}

fn open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    // No link is followed; a FIFO planted at a file's name does not block the open.
    o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).mode(0o600);
    o
}

/// The user this process runs as (the owner of `/proc/self`).
fn my_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A file of the journal must be a regular file of ours; its mode is made owner-only.
fn check_private(f: &File, path: &Path) -> Result<(), JournalError> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata().map_err(|e| io(path, e))?;
    if !m.is_file() {
        return Err(JournalError::Io {
            path: path.to_path_buf(),
            message: "is not a regular file; remove it".into(),
        });
    }
    if my_uid().is_some_and(|me| me != m.uid()) {
        return Err(JournalError::Io {
            path: path.to_path_buf(),
            message: "belongs to another user; remove it or choose another --state-dir".into(),
        });
    }
    if m.mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(path, e))?;
    }
    Ok(())
}

/// Reads the runbook's digest key, creating it (32 random bytes, 0600) on first use.
pub fn digest_key(runbook_dir: &Path) -> Result<Vec<u8>, JournalError> {
    make_private_dir(runbook_dir, 1)?;
    let path = runbook_dir.join("key");
    match open_options().read(true).open(&path) {
        Ok(f) => return read_key(f, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&path, e)),
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| JournalError::Io {
        path: path.clone(),
        message: format!("no randomness for the key: {e}"),
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".key")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(runbook_dir)
        .map_err(|e| io(runbook_dir, e))?;
    tmp.write_all(&key).map_err(|e| io(&path, e))?;
    tmp.as_file().sync_all().map_err(|e| io(&path, e))?;
    // Another run may have made one meanwhile: keep the first.
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(key),
        Err(_) => read_key(open_options().read(true).open(&path).map_err(|e| io(&path, e))?, &path),
    }
}

/// The key must be ours, private, and exactly 32 bytes: a planted or truncated key would make
/// the digests of secrets guessable.
fn read_key(f: File, path: &Path) -> Result<Vec<u8>, JournalError> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata().map_err(|e| io(path, e))?;
    let bad = |why: &str| JournalError::Io {
        path: path.to_path_buf(),
        message: format!("{why}; remove it (completed steps will run again) or choose another --state-dir"),
    };
    if !m.is_file() || m.len() != 32 {
        return Err(bad("is not a 32-byte key file"));
    }
    if m.mode() & 0o077 != 0 || my_uid().is_some_and(|me| me != m.uid()) {
        return Err(bad("is readable or owned by someone else"));
    }
    // One byte more than a key at most: a file that grew since it was looked at is refused
    // without being read whole.
    let mut key = Vec::with_capacity(33);
    f.take(33).read_to_end(&mut key).map_err(|e| io(path, e))?;
    if key.len() != 32 {
        return Err(bad("is not a 32-byte key file"));
    }
    Ok(key)
}

/// Writes and syncs [`HEADROOM`] bytes, then removes them.
fn probe_space(dir: &Path) -> Result<(), JournalError> {
    let path = dir.join(".space-probe");
    // A planted file or link at the probe's name is removed, never written through.
    let _ = std::fs::remove_file(&path);
    let result = (|| {
        let mut f = open_options().write(true).create_new(true).open(&path)?;
        f.write_all(&vec![0u8; HEADROOM])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| io(&path, e))
}

/// An open journal: holds the lock for as long as it lives.
pub struct Journal {
    pub dir: PathBuf,
    pub state: State,
    transcript: File,
    _lock: File,
    redactor: Redactor,
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
                    crate::ui::sanitize(holder.trim())
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
        let mut j = Journal {
            dir: dir.to_path_buf(),
            state,
            transcript,
            _lock: lock,
            redactor,
        };
        // Prove the directory is writable, with room for the journal, before anything acts: a
        // run that cannot journal must stop before its first call, not after.
        j.save()?;
        probe_space(dir)?;
        Ok(j)
    }

    /// Replaces the state file atomically: a crash leaves the old state or the new, never half.
    pub fn save(&mut self) -> Result<(), JournalError> {
        self.state.version = STATE_VERSION;
        self.state.updated = now();
        let path = self.dir.join("state.json");
        // The free text of each step is redacted, never the record's own fields (a secret "one"
        // must not turn `done` into `d********`). Outputs that held a secret are stored masked
        // and marked secret: a mask is never read back as a value.
        for st in self.state.steps.values_mut() {
            let masked = self.redactor.value(&st.outputs);
            if masked != st.outputs {
                st.outputs = masked;
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
        self.transcript.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
        if durable {
            self.transcript.sync_data().map_err(|e| io(&path, e))?;
        }
        text.pop();
        Ok(text)
    }

    /// Every transcript line that parses, in order.
    pub fn lines(&self) -> Result<Vec<Line>, JournalError> {
        read_lines(&self.dir.join("transcript.jsonl"))
    }

    /// Items of a fan-out step already finished, by item key, with the identity each had.
    pub fn finished_items(&self, step: &str) -> Result<BTreeMap<String, (String, Value)>, JournalError> {
        let mut out = BTreeMap::new();
        for l in self.lines()? {
            if let Entry::ItemFinished {
                step: s,
                hash,
                item_key,
                outputs,
            } = l.entry
            {
                if s == step {
                    out.insert(item_key, (hash, outputs));
                }
            }
        }
        Ok(out)
    }

    /// Calls of a step (by item) whose intent was journaled and whose outcome was not: no
    /// finished step or item after it, and no refusal by AWS. `answered` when AWS's answer was
    /// journaled but the step never finished with it.
    pub fn unsettled(&self, step: &str) -> Result<Vec<Unsettled>, JournalError> {
        let mut open: BTreeMap<Option<String>, Unsettled> = BTreeMap::new();
        for l in self.lines()? {
            match l.entry {
                Entry::Intent {
                    step: s,
                    item_key,
                    call,
                    target,
                } if s == step => {
                    open.insert(
                        item_key.clone(),
                        Unsettled {
                            item_key,
                            call,
                            target,
                            at: l.ts,
                            answered: false,
                        },
                    );
                }
                Entry::Requested { step: s, item_key, .. } if s == step => {
                    if let Some(u) = open.get_mut(&item_key) {
                        u.answered = true;
                    }
                }
                Entry::Rejected { step: s, item_key, .. } if s == step => {
                    open.remove(&item_key);
                }
                Entry::ItemFinished { step: s, item_key, .. } if s == step => {
                    open.remove(&Some(item_key));
                }
                Entry::StepFinished { step: s, .. } if s == step => open.clear(),
                _ => {}
            }
        }
        Ok(open.into_values().collect())
    }

    /// The state file is written after the transcript's `step-finished` line; a crash between
    /// the two leaves the step `running` in the state while the transcript holds its result. The
    /// transcript is the record: such a step is done again, with the hash and outputs it finished
    /// with (outputs that hold a mask stay secret, so the step runs or asks again as any secret
    /// step does). Without this, a resume would send a call by API name a second time. Returns
    /// the steps recovered.
    pub fn recover_finished(&mut self) -> Result<Vec<String>, JournalError> {
        let mut finished: BTreeMap<String, (String, Value, String)> = BTreeMap::new();
        for l in self.lines()? {
            match l.entry {
                Entry::StepStarted { step, .. } => {
                    finished.remove(&step);
                }
                Entry::StepFinished { step, hash, outputs } => {
                    finished.insert(step, (hash, outputs, l.ts));
                }
                _ => {}
            }
        }
        let mut recovered = Vec::new();
        for (step, (hash, outputs, ts)) in finished {
            let Some(st) = self.state.steps.get_mut(&step) else {
                continue;
            };
            if st.status != StepStatus::Running {
                continue;
            }
            st.secret = outputs.to_string().contains(crate::redact::MASK);
            st.status = StepStatus::Done;
            st.hash = hash;
            st.outputs = outputs;
            st.finished = Some(ts);
            st.error = None;
            st.waiting_for = None;
            recovered.push(step);
        }
        if !recovered.is_empty() {
            self.save()?;
        }
        Ok(recovered)
    }

    /// Starts a fresh run id for a run after a finished one; keeps completed steps.
    pub fn begin_run(&mut self) {
        if self.state.outcome.as_deref() == Some("done") {
            self.state.run_id = new_run_id();
            self.state.started = now();
        }
        self.state.outcome = None;
    }
}

/// Whether a file's last byte is something other than a newline.
fn ends_torn(f: &mut File) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Reads a transcript; a torn last line (a crash mid-write) is skipped.
pub fn read_lines(path: &Path) -> Result<Vec<Line>, JournalError> {
    let f = match open_options().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path, e)),
    };
    if !f.metadata().map_err(|e| io(path, e))?.is_file() {
        return Err(JournalError::Io {
            path: path.to_path_buf(),
            message: "is not a regular file; remove it".into(),
        });
    }
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| io(path, e))?;
        if let Ok(l) = serde_json::from_str::<Line>(&line) {
            out.push(l);
        }
    }
    Ok(out)
}

/// How deep a value nests, without recursion (the value may be hostile).
pub fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

fn read_state(path: &Path) -> Result<Option<State>, JournalError> {
    let mut f = match open_options().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, e)),
    };
    if !f.metadata().map_err(|e| io(path, e))?.is_file() {
        return Err(JournalError::Io {
            path: path.to_path_buf(),
            message: "is not a regular file; remove it".into(),
        });
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(|e| io(path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| JournalError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let found = v.get("version").and_then(Value::as_u64).unwrap_or(0) as u32;
    if found > STATE_VERSION {
        return Err(JournalError::NewerVersion {
            path: path.to_path_buf(),
            found,
        });
    }
    serde_json::from_value(v).map(Some).map_err(|e| JournalError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn new_run_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        let t = jiff::Timestamp::now().as_nanosecond();
        let d = Sha256::digest(format!("{t}-{}", std::process::id()).as_bytes());
        b.copy_from_slice(&d[..6]);
    }
    hex::encode(b)
}

/// Who is at the keyboard, for the transcript.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::MetadataExt;

    /// A run directory at the depth the tool uses (`STATE/<runbook>-<hash>/runs/<name>`): `open`
    /// owns its last three components, and never the test's temporary directory or those above.
    /// Built here, not by the code under test, so that no mutant can move a test's files out of
    /// its temporary directory.
    fn run_dir_in(tmp: &tempfile::TempDir) -> PathBuf {
        runs_of(&tmp.path().join("rb-00000000"), "default")
    }

    fn runs_of(runbook_dir: &Path, name: &str) -> PathBuf {
        runbook_dir.join("runs").join(name)
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
    }

    fn open(dir: &Path) -> Journal {
        Journal::open(dir, "r.md", false, Redactor::default()).expect("open")
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let t = now();
        assert_eq!(t.len(), "2026-11-28T21:53:03.123Z".len(), "{t}");
        assert!(t.ends_with('Z'));
        let parsed: jiff::Timestamp = t.parse().expect("parses back");
        let drift = jiff::Timestamp::now().duration_since(parsed).as_secs();
        assert!((0..5).contains(&drift), "{t}");
    }

    #[test]
    fn second_open_reports_the_holder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        let _first = Journal::open(&dir, "r.md", false, Redactor::default()).expect("first");
        match Journal::open(&dir, "r.md", false, Redactor::default()) {
            Err(JournalError::Locked { holder }) => assert!(holder.contains("pid"), "{holder}"),
            other => panic!("expected a lock error, got {:?}", other.err()),
        }
    }

    #[test]
    fn newer_state_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("state.json"), r#"{"version": 99}"#).expect("write");
        let e = Journal::open(&dir, "r.md", false, Redactor::default())
            .err()
            .expect("refused");
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn entries_round_trip_and_items_are_found_by_step() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        let mut j = Journal::open(&dir, "r.md", false, Redactor::default()).expect("open");
        j.record(Entry::ItemFinished {
            step: "a".into(),
            hash: "h1".into(),
            item_key: "x".into(),
            outputs: json!({"id": 1}),
        })
        .expect("record");
        j.record(Entry::ItemFinished {
            step: "b".into(),
            hash: "h2".into(),
            item_key: "y".into(),
            outputs: json!({}),
        })
        .expect("record");
        let items = j.finished_items("a").expect("read");
        assert_eq!(items.len(), 1);
        assert_eq!(items["x"], ("h1".to_string(), json!({"id": 1})));
        let text = std::fs::read_to_string(dir.join("transcript.jsonl")).expect("read");
        assert!(text.contains(r#""event":"item-finished""#), "{text}");
    }

    #[test]
    fn values_deeper_than_the_limit_are_refused_not_written() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::open(&run_dir_in(&tmp), "r.md", false, Redactor::default()).expect("open");
        let mut v = json!(1);
        for _ in 0..MAX_DEPTH {
            v = json!([v]);
        }
        let e = j
            .record(Entry::StepFinished {
                step: "s".into(),
                hash: "h".into(),
                outputs: v,
            })
            .expect_err("too deep");
        assert!(matches!(e, JournalError::TooDeep { .. }), "{e}");
        assert!(j.lines().expect("read").is_empty());
    }

    #[test]
    fn a_torn_last_line_is_ended_before_the_next_entry() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("transcript.jsonl"),
            "{\"ts\":\"x\",\"run\":\"r\",\"event\":\"item-fin",
        )
        .expect("write");
        let mut j = Journal::open(&dir, "r.md", false, Redactor::default()).expect("open");
        j.record(Entry::ItemFinished {
            step: "a".into(),
            hash: "h".into(),
            item_key: "k".into(),
            outputs: json!({}),
        })
        .expect("record");
        assert_eq!(j.finished_items("a").expect("read").len(), 1);
    }

    #[test]
    fn planted_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").expect("write");
        let run = run_dir_in(&dir);
        std::fs::create_dir_all(&run).expect("mkdir");
        std::os::unix::fs::symlink(&target, run.join("transcript.jsonl")).expect("link");
        let e = Journal::open(&run, "r.md", false, Redactor::default())
            .err()
            .expect("refused");
        assert!(matches!(e, JournalError::Symlink { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    }

    #[test]
    fn run_names_stay_one_path_component() {
        assert_eq!(run_name("admin_user=bob"), "admin_user=bob");
        assert!(run_name("../../etc").starts_with(".._.._etc-"));
        assert!(run_name("..").starts_with("run..-"));
        assert!(run_name("").starts_with("run-"));
        assert!(!run_name("a/b").contains('/'));
        assert_ne!(run_name("a/b"), run_name("a?b"));
        assert_ne!(run_name("a/b"), run_name("a_b"));
        let long = "x".repeat(100);
        assert_ne!(run_name(&long), run_name(&"x".repeat(101)));
    }

    #[test]
    fn intents_and_results_are_fsynced_progress_lines_are_not() {
        let durable = [
            Entry::Intent {
                step: "s".into(),
                item_key: None,
                call: "CreateAccount".into(),
                target: "t".into(),
            },
            Entry::Requested {
                step: "s".into(),
                item_key: None,
                call: "CreateAccount".into(),
                target: "t".into(),
                request_id: None,
            },
            Entry::ItemFinished {
                step: "s".into(),
                hash: "h".into(),
                item_key: "k".into(),
                outputs: json!({}),
            },
            Entry::StepFinished {
                step: "s".into(),
                hash: "h".into(),
                outputs: json!({}),
            },
            Entry::RunFinished { outcome: "done".into() },
        ];
        let progress = [
            Entry::StepStarted {
                step: "s".into(),
                hash: "h".into(),
            },
            Entry::Log {
                step: "s".into(),
                message: "m".into(),
            },
            Entry::Note {
                step: "s".into(),
                item_key: None,
                message: "m".into(),
            },
        ];
        for e in &durable {
            assert!(e.durable(), "{e:?}");
        }
        for e in &progress {
            assert!(!e.durable(), "{e:?}");
        }
    }

    #[test]
    fn a_runbook_keeps_its_runs_under_its_name_and_a_digest_of_its_path() {
        let state = Path::new("/state");
        let one = dir_for(state, Path::new("/nowhere/one/setup.md"));
        let two = dir_for(state, Path::new("/nowhere/two/setup.md"));
        assert_eq!(one.parent(), Some(state));
        let name = one.file_name().and_then(|n| n.to_str()).expect("name");
        let digest = name.strip_prefix("setup-").expect("named by the stem");
        assert!(
            digest.len() == 8 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        assert_ne!(one, two, "two runbooks of one name keep apart");
        assert_eq!(run_dir(&one, "prod"), one.join("runs").join("prod"));
    }

    #[test]
    fn open_makes_the_journal_directories_owner_only_and_leaves_those_above_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outer = tmp.path().join("operators");
        std::fs::create_dir(&outer).expect("mkdir");
        std::fs::set_permissions(&outer, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let rb = outer.join("rb-00000000");
        let dir = runs_of(&rb, "prod");
        drop(open(&dir));
        for d in [&rb, &rb.join("runs"), &dir] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        assert_eq!(
            mode(&outer),
            0o755,
            "a directory above the journal's own keeps its mode"
        );
        for f in ["lock", "transcript.jsonl", "state.json"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
    }

    #[test]
    fn existing_journal_directories_and_files_open_to_others_are_made_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for f in ["lock", "transcript.jsonl"] {
            std::fs::write(dir.join(f), "").expect("write");
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        drop(open(&dir));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("lock")), 0o600);
        assert_eq!(mode(&dir.join("transcript.jsonl")), 0o600);
    }

    #[test]
    fn a_journal_directory_that_is_a_link_is_refused_a_link_above_it_is_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        let runs = tmp.path().join("rb-00000000").join("runs");
        std::fs::create_dir_all(&runs).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, runs.join("prod")).expect("link");
        let e = Journal::open(&runs.join("prod"), "r.md", false, Redactor::default())
            .err()
            .expect("refused");
        assert!(
            matches!(&e, JournalError::Symlink { path } if *path == runs.join("prod")),
            "{e}"
        );
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("read").count(),
            0,
            "nothing written through"
        );

        // The operator's own layout above the journal may hold links.
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).expect("mkdir");
        std::os::unix::fs::symlink(&real, tmp.path().join("state")).expect("link");
        let dir = runs_of(&tmp.path().join("state").join("rb-11111111"), "prod");
        drop(open(&dir));
        assert!(real.join("rb-11111111/runs/prod/state.json").is_file());
    }

    #[test]
    fn a_journal_directory_that_cannot_be_made_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(tmp.path().join("gone"), tmp.path().join("dangling")).expect("link");
        let rb = tmp.path().join("dangling").join("rb-00000000");
        let e = Journal::open(&runs_of(&rb, "prod"), "r.md", false, Redactor::default())
            .err()
            .expect("refused");
        assert!(matches!(&e, JournalError::Io { path, .. } if *path == rb), "{e}");
    }

    #[test]
    fn this_process_is_the_owner_of_the_files_it_creates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("mine");
        std::fs::write(&f, "").expect("write");
        let owner = std::fs::metadata(&f).expect("stat").uid();
        assert_eq!(my_uid(), Some(owner));
    }

    /// Files and directories of another user are refused, never adopted. Needs root (CI runs as
    /// root) to give a file away; elsewhere it says so and checks nothing.
    #[test]
    fn journal_files_and_keys_of_another_user_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let transcript = dir.join("transcript.jsonl");
        std::fs::write(&transcript, "").expect("write");
        if std::os::unix::fs::chown(&transcript, Some(4242), Some(4242)).is_err() {
            eprintln!("SKIPPED journal_files_and_keys_of_another_user_are_refused: not root");
            return;
        }
        let e = Journal::open(&dir, "r.md", false, Redactor::default())
            .err()
            .expect("refused");
        assert!(e.to_string().contains("belongs to another user"), "{e}");

        std::fs::remove_file(&transcript).expect("rm");
        std::os::unix::fs::chown(&dir, Some(4242), Some(4242)).expect("chown");
        let e = Journal::open(&dir, "r.md", false, Redactor::default())
            .err()
            .expect("refused");
        assert!(
            matches!(&e, JournalError::Io { path, message } if *path == dir && message.contains("another user")),
            "{e}"
        );

        let rb = tmp.path().join("rb-00000000");
        std::fs::write(rb.join("key"), [7u8; 32]).expect("write");
        std::fs::set_permissions(rb.join("key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(rb.join("key"), Some(4242), Some(4242)).expect("chown");
        let e = digest_key(&rb).expect_err("refused");
        assert!(e.to_string().contains("owned by someone else"), "{e}");
    }

    #[test]
    fn the_digest_key_is_made_once_as_32_private_random_bytes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rb = tmp.path().join("rb-00000000");
        let key = digest_key(&rb).expect("made");
        assert_eq!(key.len(), 32);
        assert!(key.iter().any(|b| *b != 0), "random, not zeros");
        assert_eq!(std::fs::read(rb.join("key")).expect("read"), key);
        assert_eq!(mode(&rb.join("key")), 0o600);
        assert_eq!(mode(&rb), 0o700);
        assert_eq!(digest_key(&rb).expect("read back"), key, "the same key on every run");
        let other = digest_key(&tmp.path().join("rb-11111111")).expect("made");
        assert_ne!(other, key, "each runbook has a key of its own");
    }

    #[test]
    fn a_key_of_the_wrong_size_or_open_to_others_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rb = tmp.path().join("rb-00000000");
        std::fs::create_dir(&rb).expect("mkdir");
        let key = rb.join("key");
        for (bytes, mode, why) in [
            (16, 0o600, "is not a 32-byte key file"),
            (33, 0o600, "is not a 32-byte key file"),
            (32, 0o640, "is readable or owned by someone else"),
            (32, 0o604, "is readable or owned by someone else"),
        ] {
            std::fs::write(&key, vec![7u8; bytes]).expect("write");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let e = digest_key(&rb).expect_err("refused");
            assert!(e.to_string().contains(why), "{bytes} bytes, {mode:o}: {e}");
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(digest_key(&rb).expect("a good key is read"), vec![7u8; 32]);
    }

    #[test]
    fn a_saved_state_is_read_back_by_peek_and_by_the_next_open() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        assert!(Journal::peek(&dir).expect("peek").is_none(), "no run yet");
        let mut j = open(&dir);
        let run_id = j.state.run_id.clone();
        j.state.steps.insert("a".into(), StepState::new(StepStatus::Done, "h1"));
        j.save().expect("save");
        drop(j);
        let peeked = Journal::peek(&dir).expect("peek").expect("a state");
        assert_eq!(peeked.version, STATE_VERSION);
        assert_eq!(peeked.steps["a"].status, StepStatus::Done);
        let j = open(&dir);
        assert_eq!(j.state.run_id, run_id, "the same run resumes");
        assert_eq!(j.state.steps["a"].hash, "h1");
        assert!(!dir.join("state.json.prev").exists());
    }

    #[test]
    fn restart_moves_the_previous_state_aside() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        let mut j = open(&dir);
        j.state.steps.insert("a".into(), StepState::new(StepStatus::Done, "h1"));
        j.save().expect("save");
        drop(j);
        let j = Journal::open(&dir, "r.md", true, Redactor::default()).expect("open");
        assert!(j.state.steps.is_empty());
        let prev = std::fs::read_to_string(dir.join("state.json.prev")).expect("kept aside");
        assert!(prev.contains("h1"), "{prev}");
    }

    #[test]
    fn a_linked_state_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(tmp.path().join("other.json"), "{}").expect("write");
        std::os::unix::fs::symlink(tmp.path().join("other.json"), dir.join("state.json")).expect("link");
        let e = Journal::peek(&dir).expect_err("refused");
        assert!(matches!(e, JournalError::Symlink { .. }), "{e}");
    }

    #[test]
    fn the_state_file_masks_secrets_in_outputs_and_text_and_marks_those_outputs_secret() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        let redactor = Redactor::default();
        redactor.add("hunter2");
        redactor.add("one");
        let mut j = Journal::open(&dir, "r.md", false, redactor).expect("open");
        let mut a = StepState::new(StepStatus::Done, "h");
        a.outputs = json!({"password": "hunter2"});
        let mut b = StepState::new(StepStatus::Done, "h");
        b.outputs = json!({"id": "i-1"});
        let mut c = StepState::new(StepStatus::Failed, "h");
        c.error = Some("refused hunter2".into());
        j.state
            .steps
            .extend([("a".into(), a), ("b".into(), b), ("c".into(), c)]);
        j.save().expect("save");
        let text = std::fs::read_to_string(dir.join("state.json")).expect("read");
        assert!(!text.contains("hunter2"), "{text}");
        let state = Journal::peek(&dir).expect("peek").expect("state");
        assert_eq!(state.steps["a"].outputs, json!({"password": crate::redact::MASK}));
        assert!(state.steps["a"].secret, "masked outputs are marked secret");
        assert_eq!(state.steps["b"].outputs, json!({"id": "i-1"}));
        assert!(!state.steps["b"].secret, "outputs without a secret are values");
        assert_eq!(state.steps["c"].error.as_deref(), Some("refused ********"));
        assert_eq!(
            state.steps["a"].status,
            StepStatus::Done,
            "a secret `one` leaves `done` alone"
        );
    }

    #[test]
    fn depth_counts_the_levels_of_arrays_and_objects() {
        assert_eq!(depth(&json!(1)), 1);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!([[1]])), 3);
        assert_eq!(depth(&json!({"a": {"b": 1}})), 3);
        assert_eq!(depth(&json!({"a": [{"b": []}], "c": 1})), 4);
    }

    /// `v` nested so that `depth(v) == levels`.
    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 1..levels {
            v = json!([v]);
        }
        v
    }

    #[test]
    fn the_journal_writes_values_up_to_the_depth_limit_and_no_deeper() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut j = open(&run_dir_in(&tmp));
        // A transcript line holds its outputs one level down.
        let line = |v| Entry::StepFinished {
            step: "s".into(),
            hash: "h".into(),
            outputs: v,
        };
        j.record(line(nested(MAX_DEPTH - 1))).expect("at the limit");
        let e = j.record(line(nested(MAX_DEPTH))).expect_err("one deeper");
        assert!(matches!(e, JournalError::TooDeep { .. }), "{e}");
        assert_eq!(j.lines().expect("read").len(), 1);
        // The state file holds outputs at `steps.ID.outputs`, three levels down.
        let mut st = StepState::new(StepStatus::Done, "h");
        st.outputs = nested(MAX_DEPTH - 3);
        j.state.steps.insert("s".into(), st.clone());
        j.save().expect("at the limit");
        st.outputs = nested(MAX_DEPTH - 2);
        j.state.steps.insert("s".into(), st);
        let e = j.save().expect_err("one deeper");
        assert!(matches!(e, JournalError::TooDeep { .. }), "{e}");
    }

    #[test]
    fn a_secret_in_an_entry_is_masked_and_the_line_still_reads_back_as_its_entry() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let redactor = Redactor::default();
        // A secret that happens to be part of an event's name.
        redactor.add("finished");
        let mut j = Journal::open(&run_dir_in(&tmp), "r.md", false, redactor).expect("open");
        let written = j
            .record(Entry::ItemFinished {
                step: "a".into(),
                hash: "h".into(),
                item_key: "k".into(),
                outputs: json!({"note": "finished"}),
            })
            .expect("record");
        assert!(written.contains(r#""event":"item-finished""#), "{written}");
        assert!(!written.contains(r#""finished""#), "{written}");
        let items = j.finished_items("a").expect("read");
        assert_eq!(items["k"], ("h".to_string(), json!({"note": crate::redact::MASK})));
    }

    #[test]
    fn reopening_a_whole_transcript_adds_nothing_to_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = run_dir_in(&tmp);
        let mut j = open(&dir);
        j.record(Entry::RunFinished { outcome: "done".into() }).expect("record");
        drop(j);
        let before = std::fs::read(dir.join("transcript.jsonl")).expect("read");
        drop(open(&dir));
        assert_eq!(std::fs::read(dir.join("transcript.jsonl")).expect("read"), before);
    }

    #[test]
    fn a_missing_transcript_reads_as_empty_and_a_linked_one_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert!(read_lines(&tmp.path().join("missing.jsonl")).expect("empty").is_empty());
        std::fs::write(tmp.path().join("real.jsonl"), "").expect("write");
        std::os::unix::fs::symlink(tmp.path().join("real.jsonl"), tmp.path().join("t.jsonl")).expect("link");
        let e = read_lines(&tmp.path().join("t.jsonl")).expect_err("refused");
        assert!(matches!(e, JournalError::Symlink { .. }), "{e}");
    }

    #[test]
    fn calls_stay_unsettled_until_the_step_or_item_settles_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut j = open(&run_dir_in(&tmp));
        let key = |k: Option<&str>| k.map(String::from);
        let intent = |step: &str, k: Option<&str>| Entry::Intent {
            step: step.into(),
            item_key: key(k),
            call: "CreateAccount".into(),
            target: "t".into(),
        };
        let requested = |step: &str, k: Option<&str>| Entry::Requested {
            step: step.into(),
            item_key: key(k),
            call: "CreateAccount".into(),
            target: "t".into(),
            request_id: None,
        };
        let rejected = |step: &str, k: Option<&str>| Entry::Rejected {
            step: step.into(),
            item_key: key(k),
            call: "CreateAccount".into(),
            target: "t".into(),
            code: "ValidationException".into(),
        };
        let item_finished = |step: &str, k: &str| Entry::ItemFinished {
            step: step.into(),
            hash: "h".into(),
            item_key: k.into(),
            outputs: json!({}),
        };
        let step_finished = |step: &str| Entry::StepFinished {
            step: step.into(),
            hash: "h".into(),
            outputs: json!({}),
        };
        for e in [
            intent("a", None),
            intent("a", Some("x")),
            requested("a", Some("x")),
            intent("a", Some("y")),
            rejected("a", Some("y")),
            intent("a", Some("z")),
            item_finished("a", "z"),
            intent("a", Some("w")),
            // Another step's entries settle nothing of step a.
            intent("b", Some("q")),
            requested("b", None),
            rejected("b", None),
            item_finished("b", "w"),
            step_finished("b"),
        ] {
            j.record(e).expect("record");
        }
        let open_calls: Vec<(Option<String>, bool)> = j
            .unsettled("a")
            .expect("read")
            .into_iter()
            .map(|u| (u.item_key, u.answered))
            .collect();
        assert_eq!(
            open_calls,
            vec![(None, false), (key(Some("w")), false), (key(Some("x")), true)]
        );
        j.record(step_finished("a")).expect("record");
        assert!(
            j.unsettled("a").expect("read").is_empty(),
            "a finished step settles its calls"
        );
    }

    #[test]
    fn a_finished_run_starts_a_new_run_id_and_an_unfinished_one_resumes_its_own() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut j = open(&run_dir_in(&tmp));
        let first = j.state.run_id.clone();
        assert!(
            first.len() == 12 && first.chars().all(|c| c.is_ascii_hexdigit()),
            "{first}"
        );
        j.state.outcome = Some("failed".into());
        j.begin_run();
        assert_eq!(j.state.run_id, first, "a failed run resumes under its id");
        assert_eq!(j.state.outcome, None);
        j.state.outcome = Some("done".into());
        j.begin_run();
        assert_ne!(j.state.run_id, first, "a run after a finished one is a new run");
        assert_eq!(j.state.run_id.len(), 12);
        assert_eq!(j.state.outcome, None);
    }

    #[test]
    fn runs_lists_each_instance_most_recently_updated_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rb = tmp.path().join("rb-00000000");
        assert!(Journal::runs(&rb).expect("none yet").is_empty());
        for name in ["older", "newer"] {
            drop(open(&runs_of(&rb, name)));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::write(rb.join("runs").join("stray-file"), "").expect("write");
        let names: Vec<String> = Journal::runs(&rb).expect("runs").into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["newer", "older"]);

        let broken = tmp.path().join("rb-11111111");
        std::fs::create_dir(&broken).expect("mkdir");
        std::fs::write(broken.join("runs"), "").expect("write");
        assert!(
            Journal::runs(&broken).is_err(),
            "a `runs` that is not a directory is an error"
        );
    }

    #[test]
    fn the_user_is_named_from_the_environment() {
        let expected = ["USER", "USERNAME", "LOGNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok())
            .unwrap_or_else(|| "unknown".into());
        assert_eq!(os_user(), expected);
    }
}
