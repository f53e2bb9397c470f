//! A state directory that cannot hold the journal (read-only, full, not a directory) stops the
//! run with a clear error before it makes a single AWS call.
//!
//! Read-only and full file systems are real: small tmpfs mounts (root ignores permission bits, so a
//! chmod would prove nothing). As root (CI) the tests mount directly; otherwise each re-runs itself
//! inside an unprivileged user and mount namespace (`unshare -rm`) where the kernel allows one;
//! where neither works it is skipped loudly, counted in the file `$RUNBOOK_SKIPPED` names (which
//! `.ci/run` requires to stay empty), and under `CI` it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test};

const ONE_ACCOUNT: &str = "# One\n\n```aws organizations.ensure-organization id=org\n```\n\n\
```aws organizations.ensure-account id=acct\nname = \"acme-one-prod\"\nemail = \"aws+one@example.com\"\n```\n";

/// Whether a tmpfs can be mounted here (tried, then undone).
fn can_mount() -> bool {
    if std::env::var_os("RUNBOOK_TEST_FORCE_USERNS").is_some() && std::env::var_os("RUNBOOK_IN_USERNS").is_none() {
        return false;
    }
    let probe = tempfile::tempdir().expect("tempdir");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(probe.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        let _ = Command::new("umount").arg(probe.path()).status();
    }
    ok
}

/// True when `test` should run its body in this process (it may mount). Otherwise the test has
/// already been run in a user and mount namespace (and its result asserted), or skipped loudly.
fn with_mount_rights(test: &str) -> bool {
    if can_mount() {
        return true;
    }
    let namespaces = std::env::var_os("RUNBOOK_IN_USERNS").is_none()
        && Command::new("unshare")
            .args(["-rm", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if namespaces {
        let exe = std::env::current_exe().expect("the test binary");
        // libtest names a test by its module path below the crate: `statedir::NAME`.
        let exact = match module_path!().split_once("::") {
            Some((_, module)) => format!("{module}::{test}"),
            None => test.to_string(),
        };
        let out = Command::new("unshare")
            .args(["-rm", "--"])
            .arg(exe)
            .args([exact.as_str(), "--exact", "--nocapture", "--test-threads", "1"])
            .env("RUNBOOK_IN_USERNS", "1")
            .output()
            .expect("run unshare");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{test} in a user namespace: {all}");
        assert!(all.contains("1 passed"), "{test} ran in the namespace: {all}");
        return false;
    }
    let why = format!("SKIPPED {test}: no mount rights here and no unprivileged user namespaces (`unshare -rm`)");
    assert!(std::env::var_os("CI").is_none(), "{why}; CI must run it");
    eprintln!(
        r#"
{why}
"#
    );
    if let Some(f) = std::env::var_os("RUNBOOK_SKIPPED") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(f) {
            let _ = writeln!(f, "{why}");
        }
    }
    false
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root with mount rights (CI has them): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn run_with_state_dir(state: &Path) -> (crate::common::Output, usize) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new().file("r.md", ONE_ACCOUNT).aws(&proxy.endpoint);
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--state-dir".into(),
        state.display().to_string(),
    ]);
    (out, proxy.forwarded())
}

#[test]
fn a_read_only_state_dir_stops_the_run_before_any_call() {
    if !with_mount_rights("a_read_only_state_dir_stops_the_run_before_any_call") {
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let _m = Mount::tmpfs(&scratch.path().join("ro"), "ro,size=1m");
    let (out, calls) = run_with_state_dir(&scratch.path().join("ro"));
    out.code_is(2);
    assert!(out.stderr.contains("cannot keep the journal in"), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("read-only"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was run"), "{}", out.stderr);
    assert_eq!(calls, 0, "no AWS call was made");
}

#[test]
fn a_full_state_dir_stops_the_run_before_any_call() {
    if !with_mount_rights("a_full_state_dir_stops_the_run_before_any_call") {
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("full");
    let _m = Mount::tmpfs(&dir, "size=512k");
    // Leave some room, but less than a journal needs: the small state file fits, the run would
    // not.
    std::fs::write(dir.join("filler"), vec![0u8; 400 * 1024]).expect("fill");
    let (out, calls) = run_with_state_dir(&dir);
    out.code_is(2);
    assert!(out.stderr.contains("cannot keep the journal in"), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("no space"), "{}", out.stderr);
    assert_eq!(calls, 0, "no AWS call was made");
    // The run never started: no entry reached the transcript.
    assert_eq!(crate::common::transcripts(&dir), "", "the run journaled entries");
}

#[test]
fn a_state_dir_under_a_file_is_a_clear_usage_error() {
    let t = Test::new().file("r.md", ONE_ACCOUNT).file("not-a-dir", "x");
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--state-dir".into(),
        "not-a-dir/state".into(),
    ]);
    out.code_is(2);
    assert!(out.stderr.contains("not-a-dir/state"), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("not a directory"), "{}", out.stderr);
}

/// The state directory fills up in the middle of a fan-out: the run stops with exit 1 naming the
/// journal, every account that reached the emulator has its intent on disk, and once space is
/// freed the resume creates each account exactly once.
#[test]
fn a_state_dir_that_fills_mid_fan_out_stops_the_run_and_the_resume_creates_each_account_once() {
    if !with_mount_rights("a_state_dir_that_fills_mid_fan_out_stops_the_run_and_the_resume_creates_each_account_once") {
        return;
    }
    const N: usize = 16;
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("small");
    let _m = Mount::tmpfs(&dir, "size=1536k");
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: std::time::Duration::from_millis(60),
            ..Rules::default()
        },
    );
    let names: Vec<String> = (0..N).map(|i| format!("\"acme-f{i:02}-prod\"")).collect();
    let text = format!(
        r#"# Fill

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each='[{}]'
name = "${{item}}"
email = "aws+${{item}}@example.com"
```
"#,
        names.join(", ")
    );
    let t = Test::new().file("r.md", text).aws(&proxy.endpoint);
    let args = vec![
        "run".to_string(),
        "r.md".into(),
        "--state-dir".into(),
        dir.display().to_string(),
        "--max-in-flight".into(),
        "2".into(),
    ];
    let filler = dir.join("filler");
    let stopped = std::thread::scope(|s| {
        let run = s.spawn(|| t.run_args(&args));
        // Once a few accounts are under way, fill the disk.
        let t0 = std::time::Instant::now();
        while proxy.calls("CreateAccount") < 4 && t0.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
        run.join().expect("run thread")
    });
    stopped.code_is(1).stderr_has("cannot write the journal");
    assert!(
        stopped.stderr.contains("run the same command again to resume"),
        "{stopped:?}"
    );
    let created = proxy.calls("CreateAccount");
    assert!(
        created < N,
        "the run went on after the disk filled: {created} CreateAccount calls"
    );
    let transcript = crate::common::transcripts(&dir);
    let intents = transcript
        .lines()
        .filter(|l| l.contains(r#""event":"intent""#) && l.contains("organizations:CreateAccount"))
        .count();
    assert!(
        intents >= created,
        "{created} CreateAccount calls reached the emulator, {intents} intents on disk"
    );
    std::fs::remove_file(&filler).expect("free space");
    let resumed = t.run_args(&args);
    resumed.code_is(0);
    let accounts: Vec<String> = crate::common::block_on(async {
        runbook_plugins::aws::organizations::all_accounts(&crate::common::sdk(&moto.endpoint))
            .await
            .expect("accounts")
            .into_iter()
            .map(|a| a.email)
            .filter(|e| e.starts_with("aws+acme-f"))
            .collect()
    });
    let distinct: std::collections::BTreeSet<&String> = accounts.iter().collect();
    assert_eq!((accounts.len(), distinct.len()), (N, N), "{accounts:?}");
    assert_eq!(proxy.calls("CreateAccount"), N, "each account was created exactly once");
}

/// A `.runbook` planted as a symbolic link in a checkout (a pull request can hold one) does not
/// move the journal elsewhere: the run is refused before it starts, nothing is written where the
/// link points (issue 27). Links above the state directory stay the operator's own layout.
#[test]
fn a_state_dir_planted_as_a_link_is_refused() {
    let t = Test::new()
        .file(
            "r.md",
            r#"# R

```rhai id=one
#{ a: 1 }
```
"#,
        )
        .file("elsewhere/keep.txt", "keep me\n");
    std::os::unix::fs::symlink(t.path("elsewhere"), t.path(".runbook")).expect("link");
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(2);
    assert!(out.stderr.contains("is a symbolic link"), "{out:?}");
    assert!(!out.stdout.contains("▶ one"), "the step ran: {out:?}");
    let written: Vec<String> = crate::common::files(&t.path("elsewhere")).into_keys().collect();
    assert_eq!(
        written,
        vec!["keep.txt".to_string()],
        "the journal went through the link"
    );
    // A state directory below a linked directory is fine: that link is the operator's layout.
    std::fs::create_dir(t.path("real")).expect("mkdir");
    std::os::unix::fs::symlink(t.path("real"), t.path("linked")).expect("link");
    let out = t.run_args(&["run".into(), "r.md".into(), "--state-dir".into(), "linked/state".into()]);
    out.code_is(0);
}
