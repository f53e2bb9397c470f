//! The journal's files: owner-only directories and files, links refused, the digest key.

use super::tests::{mode, open, run_dir_in, runs_of};
use super::*;
use std::os::unix::fs::MetadataExt;

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
    let e = make_key(&rb.join("key")).expect_err("refused");
    assert!(e.to_string().contains("owned by someone else"), "{e}");
}

#[test]
fn the_digest_key_is_made_once_as_32_private_random_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rb = tmp.path().join("rb-00000000");
    let key = make_key(&rb.join("key")).expect("made");
    assert_eq!(key.len(), 32);
    assert!(key.iter().any(|b| *b != 0), "random, not zeros");
    assert_eq!(std::fs::read(rb.join("key")).expect("read"), key);
    assert_eq!(mode(&rb.join("key")), 0o600);
    assert_eq!(mode(&rb), 0o700);
    assert_eq!(
        make_key(&rb.join("key")).expect("read back"),
        key,
        "the same key on every run"
    );
    let other = make_key(&tmp.path().join("rb-11111111").join("key")).expect("made");
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
        let e = make_key(&rb.join("key")).expect_err("refused");
        assert!(e.to_string().contains(why), "{bytes} bytes, {mode:o}: {e}");
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(make_key(&rb.join("key")).expect("a good key is read"), vec![7u8; 32]);
}
