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
    let b = run(&t, "b/offboard.md");
    assert_eq!(b.code, 0, "a copy at another place is another runbook: {b:?}");
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
