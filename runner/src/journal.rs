//! The journal of a runbook's runs: a state file replaced atomically (temp file, fsync, rename)
//! and an append-only JSON-lines transcript, one directory per runbook, guarded by a lock file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::redact::Redactor;

/// Room a run must find in the state directory before it starts (a fan-out over a thousand
/// items journals a few hundred KiB).
const HEADROOM: usize = 1 << 20;

/// Writes and syncs [`HEADROOM`] bytes, then removes them.
fn probe_space(dir: &Path) -> Result<(), JournalError> {
    let path = dir.join(".space-probe");
    let result = (|| {
        let mut f = File::create(&path)?;
        f.write_all(&vec![0u8; HEADROOM])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| io(&path, e))
}

/// The state file format this build writes and reads.
pub const STATE_VERSION: u32 = 1;

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
}

fn io(path: &Path, e: std::io::Error) -> JournalError {
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
    /// Hash of the step's source and resolved inputs when it last finished.
    pub hash: String,
    #[serde(default)]
    pub outputs: Value,
    pub started: Option<String>,
    pub finished: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub runbook: String,
    pub run_id: String,
    pub started: String,
    pub updated: String,
    /// Input values (secrets are never stored).
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub steps: BTreeMap<String, StepState>,
    /// Set when the run ended: done, failed, waiting, interrupted.
    #[serde(default)]
    pub outcome: Option<String>,
}

pub fn now() -> String {
    humantime_rfc3339(SystemTime::now())
}

fn humantime_rfc3339(t: SystemTime) -> String {
    // RFC 3339 in UTC with seconds, without a date crate.
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let millis = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The directory that holds one runbook's journal: the file stem and a hash of its path.
pub fn dir_for(state_dir: &Path, runbook: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(runbook).unwrap_or_else(|_| runbook.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    let stem = runbook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runbook".into());
    state_dir.join(format!("{stem}-{}", &hex::encode(digest)[..8]))
}

/// An open journal: holds the lock for as long as it lives.
pub struct Journal {
    pub dir: PathBuf,
    pub state: State,
    transcript: File,
    _lock: File,
    redactor: Redactor,
}

impl Journal {
    /// Reads the state of the last run (if any) without taking the lock; for `status`.
    pub fn peek(dir: &Path) -> Result<Option<State>, JournalError> {
        read_state(&dir.join("state.json"))
    }

    /// Opens (creating) the journal directory and takes the lock. With `restart`, the previous
    /// state is moved aside as `state.json.prev`.
    pub fn open(dir: &Path, runbook: &str, restart: bool, redactor: Redactor) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let lock_path = dir.join("lock");
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        if !FileExt::try_lock_exclusive(&lock).map_err(|e| io(&lock_path, e))? {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(JournalError::Locked {
                holder: if holder.trim().is_empty() {
                    "unknown holder".into()
                } else {
                    holder.trim().to_string()
                },
            });
        }
        lock.set_len(0).map_err(|e| io(&lock_path, e))?;
        let holder = format!("pid {} by {} since {}", std::process::id(), os_user(), now());
        lock.write_all(holder.as_bytes()).map_err(|e| io(&lock_path, e))?;
        lock.sync_all().map_err(|e| io(&lock_path, e))?;

        let state_path = dir.join("state.json");
        if restart && state_path.exists() {
            std::fs::rename(&state_path, dir.join("state.json.prev")).map_err(|e| io(&state_path, e))?;
        }
        let state = match read_state(&state_path)? {
            Some(s) => s,
            None => State {
                version: STATE_VERSION,
                runbook: runbook.to_string(),
                run_id: new_run_id(),
                started: now(),
                updated: now(),
                inputs: BTreeMap::new(),
                steps: BTreeMap::new(),
                outcome: None,
            },
        };
        let tpath = dir.join("transcript.jsonl");
        let transcript = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&tpath)
            .map_err(|e| io(&tpath, e))?;
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
        self.state.updated = now();
        let path = self.dir.join("state.json");
        let value = self
            .redactor
            .value(&serde_json::to_value(&self.state).unwrap_or(Value::Null));
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| io(&self.dir, e))?;
        tmp.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
        tmp.as_file().sync_all().map_err(|e| io(&path, e))?;
        tmp.persist(&path).map_err(|e| io(&path, e.error))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Appends one event to the transcript. `durable` events (intents) are fsynced before the
    /// call they announce is made.
    pub fn record(&mut self, event: &str, fields: Value, durable: bool) -> Result<(), JournalError> {
        let mut obj = serde_json::Map::new();
        obj.insert("ts".into(), json!(now()));
        obj.insert("run".into(), json!(self.state.run_id));
        obj.insert("event".into(), json!(event));
        if let Value::Object(f) = self.redactor.value(&fields) {
            obj.extend(f);
        }
        let mut line = serde_json::to_string(&Value::Object(obj)).unwrap_or_default();
        line.push('\n');
        let path = self.dir.join("transcript.jsonl");
        self.transcript.write_all(line.as_bytes()).map_err(|e| io(&path, e))?;
        if durable {
            self.transcript.sync_data().map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    /// Items of a fan-out step already finished with this hash, from the transcript.
    pub fn finished_items(&self, step: &str, hash: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let Ok(f) = File::open(self.dir.join("transcript.jsonl")) else {
            return out;
        };
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["event"] == "item-finished" && v["step"] == step && v["hash"] == hash {
                if let Some(key) = v["item_key"].as_str() {
                    out.insert(key.to_string(), v["outputs"].clone());
                }
            }
        }
        out
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

fn read_state(path: &Path) -> Result<Option<State>, JournalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, e)),
    };
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
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{t}-{}", std::process::id()).as_bytes());
    hex::encode(&digest[..6])
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

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
        assert!(now().ends_with('Z'));
    }

    #[test]
    fn second_open_reports_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Journal::open(dir.path(), "r.md", false, Redactor::default()).expect("first");
        match Journal::open(dir.path(), "r.md", false, Redactor::default()) {
            Err(JournalError::Locked { holder }) => assert!(holder.contains("pid"), "{holder}"),
            other => panic!("expected a lock error, got {:?}", other.err()),
        }
    }

    #[test]
    fn newer_state_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("state.json"), r#"{"version": 99}"#).expect("write");
        let e = Journal::open(dir.path(), "r.md", false, Redactor::default())
            .err()
            .expect("refused");
        assert!(e.to_string().contains("newer"), "{e}");
    }
}
