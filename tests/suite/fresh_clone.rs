//! The README's two commands in one checkout: what the first (a rehearsal) leaves behind never
//! changes what a real run sees (issue 26: its journal in the clone's `.runbook/` refused every
//! later real run of the same runbook from another state directory, twelve tests with it).

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, PART2_ANSWERS, Test, moto_server, repo};

/// A checkout of its own: the bundled runbooks under `runbooks/`, as a clone has them.
fn checkout() -> Test {
    let mut t = Test::new();
    for e in walk(&repo().join("runbooks")) {
        let rel = e.strip_prefix(repo()).expect("inside").display().to_string();
        t = t.file(&rel, std::fs::read(&e).expect("bundled file"));
    }
    t
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_rehearsal_in_the_checkout_never_refuses_a_real_run_from_elsewhere() {
    let t = checkout().env("RUNBOOK_MOTO_SERVER", &moto_server().display().to_string());
    // The README's first command, as a newcomer types it: the default state directory.
    t.run_args(&[
        "rehearse".into(),
        "runbooks/part-2-identity-center.md".into(),
        "--answers".into(),
        "runbooks/rehearsal/part-2-identity-center.toml".into(),
    ])
    .code_is(0);
    assert!(
        t.path(".runbook").is_dir(),
        "the rehearsal keeps its journal in the checkout"
    );

    // Then a real run of the same file, from another state directory (as the suite's tests do).
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    );
    let other = tempfile::tempdir().expect("tempdir");
    let t = t.file("answers.toml", PART2_ANSWERS).aws(&proxy.endpoint);
    let real = t.run_args(&[
        "run".into(),
        t.path("runbooks/part-2-identity-center.md").display().to_string(),
        "--answers".into(),
        "answers.toml".into(),
        "--state-dir".into(),
        other.path().display().to_string(),
    ]);
    real.code_is(0).stderr_lacks("nothing was run");
}

#[test]
fn a_real_run_in_the_checkout_still_keeps_its_record_from_elsewhere() {
    // The guard the fix must not lose: a real run's journal is one record, found from anywhere.
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    );
    let t = checkout().file("answers.toml", PART2_ANSWERS).aws(&proxy.endpoint);
    t.run_args(&[
        "run".into(),
        "runbooks/part-2-identity-center.md".into(),
        "--answers".into(),
        "answers.toml".into(),
    ])
    .code_is(0);
    let other = tempfile::tempdir().expect("tempdir");
    t.run_args(&[
        "run".into(),
        "runbooks/part-2-identity-center.md".into(),
        "--answers".into(),
        "answers.toml".into(),
        "--state-dir".into(),
        other.path().display().to_string(),
    ])
    .code_is(2)
    .stderr_has("nothing was run");
}
