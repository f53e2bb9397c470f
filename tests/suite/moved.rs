//! A runbook's journal follows the runbook: a file renamed, moved to another directory or run
//! through a symbolic link still finds the unknown outcome its last run left, so the call is not
//! sent again. Two candidates for one moved runbook are refused, never guessed between. Each
//! against moto behind the fault proxy, which counts what reached AWS.

use crate::calls::{delete_user, left, seed};
use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test};

/// A DeleteUser whose answer is lost: the run ends with an unknown outcome (exit 1) and AWS
/// has acted once.
fn lost_delete(name: &str) -> (Moto, FaultProxy, Test) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            lose_answer_once: Some("DeleteUser".into()),
            ..Rules::default()
        },
    );
    let s = seed(&moto.endpoint, "leaving.admin");
    let t = Test::new().file(name, delete_user(&s, "")).aws(&proxy.endpoint);
    let out = t.run_args(&["run".into(), name.into()]);
    out.code_is(1).stderr_has("outcome is unknown");
    assert_eq!(proxy.calls("DeleteUser"), 1);
    assert_eq!(left(&moto.endpoint, &s).0, 0, "AWS acted");
    (moto, proxy, t)
}

fn run(t: &Test, file: &str) -> crate::common::Output {
    t.run_args(&["run".into(), file.into(), "--yes".into()])
}

#[test]
fn a_renamed_runbook_keeps_its_unknown_outcome() {
    let (_moto, proxy, t) = lost_delete("offboard.md");
    std::fs::rename(t.path("offboard.md"), t.path("offboard-alice.md")).expect("rename");
    let again = run(&t, "offboard-alice.md");
    assert_eq!(again.code, 3, "the re-run stops and asks: {again:?}");
    again.stderr_has("outcome");
    assert!(
        again.all().contains("moved from") && again.all().contains("/offboard.md"),
        "it says where the journal came from: {again:?}"
    );
    assert_eq!(proxy.calls("DeleteUser"), 1, "not sent again under the new name");
    // The journal moved with it: the next run finds it under the new name straight away.
    let third = run(&t, "offboard-alice.md");
    third.code_is(3);
    assert!(!third.all().contains("moved from"), "adopted once: {third:?}");
    assert_eq!(proxy.calls("DeleteUser"), 1);
}

#[test]
fn a_runbook_moved_to_another_directory_keeps_its_unknown_outcome() {
    let (_moto, proxy, t) = lost_delete("offboard.md");
    std::fs::create_dir(t.path("ops")).expect("mkdir");
    std::fs::rename(t.path("offboard.md"), t.path("ops/offboard.md")).expect("move");
    // `status` reads the journal where it was left, and moves nothing.
    let status = t.run_args(&["status".into(), "ops/offboard.md".into()]);
    status.code_is(0);
    assert!(
        status.all().contains("moved from") && status.stdout.contains("del"),
        "{status:?}"
    );
    let again = run(&t, "ops/offboard.md");
    again.code_is(3);
    assert_eq!(proxy.calls("DeleteUser"), 1, "not sent again from the new place");
}

#[test]
fn a_runbook_run_through_a_symlink_keeps_its_unknown_outcome() {
    let (_moto, proxy, t) = lost_delete("offboard.md");
    std::os::unix::fs::symlink("offboard.md", t.path("today.md")).expect("symlink");
    let again = run(&t, "today.md");
    again.code_is(3);
    assert_eq!(proxy.calls("DeleteUser"), 1, "not sent again through the link");
}

#[test]
fn two_journals_that_could_be_a_moved_runbook_are_refused_not_guessed() {
    let (_moto, proxy, t) = lost_delete("a/offboard.md");
    // The same runbook, run from a second place, then both places gone.
    std::fs::create_dir(t.path("b")).expect("mkdir");
    std::fs::copy(t.path("a/offboard.md"), t.path("b/offboard.md")).expect("copy");
    // A copy is another runbook with a journal of its own, but the same request with an
    // unknown outcome is asked about from any journal; a person says to send it.
    run(&t, "b/offboard.md").code_is(3);
    assert_eq!(proxy.calls("DeleteUser"), 1);
    std::fs::write(
        t.path("a.toml"),
        r#"[steps.del]
resend = true
"#,
    )
    .expect("answers");
    let b = t.run_args(&[
        "run".into(),
        "b/offboard.md".into(),
        "--answers".into(),
        "a.toml".into(),
    ]);
    b.code_is(0);
    assert_eq!(proxy.calls("DeleteUser"), 2);
    std::fs::create_dir(t.path("c")).expect("mkdir");
    std::fs::rename(t.path("a/offboard.md"), t.path("c/offboard.md")).expect("move");
    std::fs::remove_file(t.path("b/offboard.md")).expect("rm");
    let c = run(&t, "c/offboard.md");
    c.code_is(2);
    assert!(
        c.stderr.contains("a/offboard.md") && c.stderr.contains("b/offboard.md"),
        "{c:?}"
    );
    assert_eq!(proxy.calls("DeleteUser"), 2, "nothing sent while it is unclear");
}

/// Copies a directory tree (files and directories only).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().expect("type").is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

#[test]
fn a_renamed_step_keeps_its_unknown_outcome() {
    let (_moto, proxy, t) = lost_delete("offboard.md");
    let text = std::fs::read_to_string(t.path("offboard.md")).expect("read");
    std::fs::write(t.path("offboard.md"), text.replace("id=del", "id=remove-user")).expect("write");
    let again = run(&t, "offboard.md");
    again
        .code_is(3)
        .stderr_has("the same identitystore:DeleteUser request was sent");
    assert_eq!(proxy.calls("DeleteUser"), 1, "not sent again under the step's new id");
    // A person who checked says to send it again.
    std::fs::write(
        t.path("a.toml"),
        r#"[steps.remove-user]
resend = true
"#,
    )
    .expect("answers");
    let resent = t.run_args(&["run".into(), "offboard.md".into(), "--answers".into(), "a.toml".into()]);
    resent.code_is(0);
    assert_eq!(proxy.calls("DeleteUser"), 2);
}

#[test]
fn a_retitled_copy_elsewhere_with_the_journal_does_not_send_again() {
    let (_moto, proxy, t) = lost_delete("offboard.md");
    // The project copied with its state directory, the copy retitled: a journal of its own.
    copy_tree(&t.path(".runbook"), &t.path("copy/.runbook"));
    let text = std::fs::read_to_string(t.path("offboard.md")).expect("read");
    std::fs::write(t.path("copy/offboard.md"), text.replace("# Remove", "# Remove, again")).expect("write");
    let again = t.run_args(&[
        "run".into(),
        "copy/offboard.md".into(),
        "--state-dir".into(),
        "copy/.runbook".into(),
        "--yes".into(),
    ]);
    again.code_is(3).stderr_has("outcome is unknown");
    assert_eq!(proxy.calls("DeleteUser"), 1, "not sent again from the copy");
}

#[test]
fn a_link_left_at_the_old_name_keeps_the_unknown_outcome() {
    let (_moto, proxy, t) = lost_delete("offboard.md");
    std::fs::rename(t.path("offboard.md"), t.path("offboard-v2.md")).expect("rename");
    std::os::unix::fs::symlink("offboard-v2.md", t.path("offboard.md")).expect("symlink");
    // The journal follows it (the old name now leads here), not only the request's mark.
    run(&t, "offboard-v2.md").code_is(3).stdout_has("moved from");
    run(&t, "offboard.md").code_is(3);
    assert_eq!(proxy.calls("DeleteUser"), 1);
}

#[test]
fn another_runbook_that_only_shares_the_title_does_not_take_the_journal() {
    let (_moto, proxy, t) = lost_delete("offboard.md");
    std::fs::rename(t.path("offboard.md"), t.path("offboard-alice.md")).expect("rename");
    // Same title, none of its steps: not the runbook that moved.
    std::fs::write(
        t.path("checklist.md"),
        r#"# Remove

```rhai id=look
#{ ok: true }
```
"#,
    )
    .expect("write");
    let other = run(&t, "checklist.md");
    other.code_is(0);
    assert!(!other.all().contains("moved from"), "{other:?}");
    run(&t, "offboard-alice.md").code_is(3);
    assert_eq!(proxy.calls("DeleteUser"), 1);
}

#[test]
fn a_run_still_going_at_the_old_place_keeps_its_journal() {
    let moto = Moto::start();
    // The answer to DeleteUser is held 4 s: the first run is still going when the file moves.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            slow_answers: 1,
            slow_by: std::time::Duration::from_secs(4),
            slow_op: Some("DeleteUser".into()),
            ..Rules::default()
        },
    );
    let s = seed(&moto.endpoint, "leaving.admin");
    let t = Test::new()
        .file("offboard.md", delete_user(&s, ""))
        .aws(&proxy.endpoint);
    let mut first = crate::calls::spawn(&t, &proxy.endpoint, &["run", "offboard.md"]);
    let start = std::time::Instant::now();
    while proxy.calls("DeleteUser") == 0 && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::rename(t.path("offboard.md"), t.path("offboard-alice.md")).expect("rename");
    run(&t, "offboard-alice.md")
        .code_is(2)
        .stderr_has("another run of this runbook is in progress");
    let status = first.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "the first run kept its journal and finished");
    assert_eq!(proxy.calls("DeleteUser"), 1);
}

#[test]
fn a_run_from_another_working_directory_finds_the_journal_beside_the_runbook() {
    let (_moto, proxy, t) = lost_delete("ops/offboard.md");
    // The first run was started in ops/ (its journal is ops/.runbook); the second from above.
    std::fs::rename(t.path(".runbook"), t.path("ops/.runbook")).expect("move the journal");
    let again = run(&t, "ops/offboard.md");
    again.code_is(2).stderr_has("ops/.runbook (a run started from");
    assert_eq!(proxy.calls("DeleteUser"), 1, "nothing sent from the second place");
    // Pointed at it, the run finds the unknown outcome and asks.
    let there = t.run_args(&[
        "run".into(),
        "ops/offboard.md".into(),
        "--state-dir".into(),
        "ops/.runbook".into(),
        "--yes".into(),
    ]);
    there.code_is(3);
    assert_eq!(proxy.calls("DeleteUser"), 1);
}
