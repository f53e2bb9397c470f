//! The journal's files on disk: owner-only directories, files opened without following links
//! and checked to be ours and private, the digest key, the headroom probe, torn-line repair,
//! reading transcripts and state back.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::entry::{Line, State};
use super::{HEADROOM, JournalError, STATE_VERSION, io};

/// Creates `dir` and its parents (new ones owner-only, 0700). The last `owned` components are
/// the journal's own directories and must not be symbolic links; links above them are the
/// operator's own layout.
pub(super) fn make_private_dir(dir: &Path, owned: usize) -> Result<(), JournalError> {
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

/// The state directory itself must not be a symbolic link: a `.runbook` link planted in a
/// checkout (a pull request can hold one) would move the journal, its key and the pending marks
/// to wherever it points. Links above it are the operator's own layout; its mode and owner are
/// left alone (`--state-dir` may name any directory the operator chose).
pub(super) fn state_dir_not_a_link(state_dir: &Path) -> Result<(), JournalError> {
    match std::fs::symlink_metadata(state_dir) {
        Ok(m) if m.file_type().is_symlink() => Err(JournalError::Symlink {
            path: state_dir.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

pub(super) fn open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    // No link is followed; a FIFO planted at a file's name does not block the open.
    o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).mode(0o600);
    o
}

/// Opens a file named on the command line for writing (`--events`, a hand-over), created 0600 or
/// truncated, never through a symbolic link, at its name or on the way to it: a link planted
/// there cannot point the write at another file.
pub fn create_nofollow(path: &Path) -> std::io::Result<File> {
    if let Some(link) = crate::paths::first_link(path.parent().unwrap_or(Path::new(""))) {
        return Err(std::io::Error::other(format!(
            "passes through {}, a symbolic link; the tool never writes through one (name the real directory)",
            link.display()
        )));
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
}

/// The user this process runs as (the owner of `/proc/self`).
pub(super) fn my_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A file of the journal must be a regular file of ours; its mode is made owner-only.
pub(super) fn check_private(f: &File, path: &Path) -> Result<(), JournalError> {
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

/// The digest key earlier versions kept in a runbook's state directory, when there is one: only
/// read, to recognise what they recorded, and never made any more.
pub fn legacy_key(runbook_dir: &Path) -> Result<Option<Vec<u8>>, JournalError> {
    let path = runbook_dir.join("key");
    match open_options().read(true).open(&path) {
        Ok(f) => read_key(f, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path, e)),
    }
}

/// Where the operator's own key lives: `RUNBOOK_KEY_FILE`, else `$XDG_CONFIG_HOME/runbook/key`,
/// else `~/.config/runbook/key`. Never in a state directory: whoever has a state directory must
/// not be able to test guesses of a secret against its digests.
pub fn own_key_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RUNBOOK_KEY_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|p| !p.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(config.join("runbook").join("key"))
}

/// The operator's key for digests of secrets (32 random bytes, 0600), made on first use.
pub fn own_key() -> Result<Vec<u8>, JournalError> {
    let path = own_key_path().ok_or_else(|| JournalError::Io {
        path: PathBuf::from("~/.config/runbook/key"),
        message: "no home directory for the key of secret digests; set RUNBOOK_KEY_FILE".into(),
    })?;
    make_key(&path)
}

/// Reads the key at `path`, making it (32 random bytes, 0600, in a private directory) when there
/// is none.
pub fn make_key(path: &Path) -> Result<Vec<u8>, JournalError> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    make_private_dir(&dir, 1)?;
    match open_options().read(true).open(path) {
        Ok(f) => return read_key(f, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path, e)),
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| JournalError::Io {
        path: path.to_path_buf(),
        message: format!("no randomness for the key: {e}"),
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".key")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| io(&dir, e))?;
    tmp.write_all(&key).map_err(|e| io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| io(path, e))?;
    // Another run may have made one meanwhile: keep the first.
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(key),
        Err(_) => read_key(open_options().read(true).open(path).map_err(|e| io(path, e))?, path),
    }
}

/// The key must be ours, private, and exactly 32 bytes: a planted or truncated key would make
/// the digests of secrets guessable.
pub(super) fn read_key(f: File, path: &Path) -> Result<Vec<u8>, JournalError> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata().map_err(|e| io(path, e))?;
    let bad = |why: &str| JournalError::Io {
        path: path.to_path_buf(),
        message: format!(
            "{why}; fix it (chmod 600, owned by you) or remove it: steps that read a secret will be checked or asked again, nothing else runs again"
        ),
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
pub(super) fn probe_space(dir: &Path) -> Result<(), JournalError> {
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

/// Whether a file's last byte is something other than a newline.
pub(super) fn ends_torn(f: &mut File) -> std::io::Result<bool> {
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

pub(super) fn read_state(path: &Path) -> Result<Option<State>, JournalError> {
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

pub(super) fn new_run_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        let t = jiff::Timestamp::now().as_nanosecond();
        let d = Sha256::digest(format!("{t}-{}", std::process::id()).as_bytes());
        b.copy_from_slice(&d[..6]);
    }
    hex::encode(b)
}

/// Who is at the keyboard, for the transcript: the OS's name for the process's user (its passwd
/// entry, which setting `$USER` does not change), else the environment's (a uid without an
/// entry, as in some containers).
pub fn os_user() -> String {
    user_named(uzers::get_current_username(), |k| std::env::var(k).ok())
}

fn user_named(os: Option<std::ffi::OsString>, var: impl Fn(&str) -> Option<String>) -> String {
    os.and_then(|n| n.into_string().ok())
        .or_else(|| ["USER", "USERNAME", "LOGNAME"].into_iter().find_map(var))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod user_tests {
    use super::user_named;

    #[test]
    fn the_passwd_name_wins_and_the_environment_is_the_fallback() {
        let env = |k: &str| (k == "LOGNAME").then(|| "from-env".to_string());
        assert_eq!(user_named(Some("pat".into()), env), "pat");
        assert_eq!(user_named(None, env), "from-env");
        assert_eq!(user_named(None, |_| None), "unknown");
    }
}
