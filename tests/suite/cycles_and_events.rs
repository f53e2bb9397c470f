//! Issue 27, cycles and events: an `on-failure=` chain that leads back is a `check` error naming
//! the cycle; `--events` that cannot be written stops the run loudly; a follow-up run writes to
//! the same stream; `--events` never writes through a link planted at its name.

use crate::common::Test;

fn run(t: &Test, args: &[&str]) -> crate::common::Output {
    t.run_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// a → b → a (and a longer a → b → c → a, through `#step` targets): each failure would start the
/// first runbook again as a new run, re-sending what it sent. `check` names the cycle and `run`
/// refuses before anything runs; a chain that ends is fine.
#[test]
fn an_on_failure_chain_that_leads_back_is_a_check_error_naming_it() {
    let t = Test::new()
        .file(
            "runbooks/a.md",
            r#"# A

```rhai id=go on-failure=b.md
fail("x")
```
"#,
        )
        .file(
            "runbooks/b.md",
            r#"# B

```rhai id=back on-failure=a.md
fail("y")
```
"#,
        );
    run(&t, &["check", "runbooks/a.md"])
        .code_is(2)
        .stderr_has("runbooks/a.md:3:")
        .stderr_has("failures lead back here: a.md → b.md → a.md");
    run(&t, &["run", "runbooks/a.md", "--yes"])
        .code_is(2)
        .stdout_lacks("▶ go");
    assert!(!t.path(".runbook").exists(), "nothing was written");

    let t = Test::new()
        .file(
            "runbooks/a.md",
            r#"# A

```rhai id=go on-failure=sub/b.md#two
fail("x")
```
"#,
        )
        .file(
            "runbooks/sub/b.md",
            r#"# B

```rhai id=one
#{}
```

```rhai id=two on-failure=../c.md
fail("y")
```
"#,
        )
        .file(
            "runbooks/c.md",
            r#"# C

```rhai id=three on-failure=a.md#go
fail("z")
```
"#,
        );
    run(&t, &["check", "runbooks/"])
        .code_is(2)
        .stderr_has("a.md → sub/b.md → c.md → a.md")
        .stderr_has("c.md → a.md → sub/b.md → c.md");

    let t = Test::new()
        .file(
            "runbooks/a.md",
            r#"# A

```rhai id=go on-failure=b.md
fail("x")
```
"#,
        )
        .file(
            "runbooks/b.md",
            r#"# B

```rhai id=fix on-failure=c.md
#{}
```
"#,
        )
        .file(
            "runbooks/c.md",
            r#"# C

```rhai id=end
#{}
```
"#,
        );
    run(&t, &["check", "runbooks/"]).code_is(0);
}

/// A full disk under `--events` (here /dev/full): the run stops at the first event it cannot
/// write, exit 1, naming `--events` and why; the journal still has the step, so a run without the
/// broken stream resumes.
#[test]
fn events_that_cannot_be_written_stop_the_run_loudly() {
    if !std::path::Path::new("/dev/full").exists() {
        panic!("this test needs /dev/full");
    }
    let t = Test::new().file(
        "r.md",
        r#"# R

```rhai id=one
#{ a: 1 }
```

```rhai id=two
#{ b: 2 }
```
"#,
    );
    let out = run(&t, &["run", "r.md", "--events", "/dev/full"]);
    out.code_is(1)
        .stderr_has("cannot write --events /dev/full")
        .stderr_has("No space left on device")
        .stdout_lacks("✓ two");
    run(&t, &["run", "r.md"]).code_is(0).stdout_has("✓ two");
}

/// A step that fails and continues into another runbook (`on-failure=`): the follow-up run's
/// entries are in the same `--events` stream, after the parent's, not lost and not truncating it.
#[test]
fn a_follow_up_run_writes_to_the_same_event_stream() {
    let t = Test::new()
        .file(
            "runbooks/a.md",
            r#"# A

```rhai id=go on-failure=b.md
fail("x")
```
"#,
        )
        .file(
            "runbooks/b.md",
            r#"# B

```rhai id=fix
#{ fixed: true }
```
"#,
        );
    run(&t, &["run", "runbooks/a.md", "--yes", "--events", "ev.ndjson"]).code_is(1);
    let events = std::fs::read_to_string(t.path("ev.ndjson")).expect("events");
    let steps: Vec<String> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step-finished" || v["event"] == "step-failed")
        .filter_map(|v| v["step"].as_str().map(String::from))
        .collect();
    assert_eq!(steps, vec!["go", "fix"], "{events}");
}

/// A link planted as a directory on the way (`out` pointing elsewhere, `--events out/ev.ndjson`)
/// does not redirect the write either: the run is refused before it starts and nothing is
/// created where the link points (issue 27: O_NOFOLLOW guards only the last name).
#[test]
fn events_never_write_through_a_linked_directory_on_the_way() {
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
    std::os::unix::fs::symlink(t.path("elsewhere"), t.path("out")).expect("link");
    run(&t, &["run", "r.md", "--events", "out/ev.ndjson"])
        .code_is(2)
        .stderr_has("passes through out, a symbolic link")
        .stdout_lacks("▶ one");
    assert!(
        !t.path("elsewhere/ev.ndjson").exists(),
        "events were written through the link"
    );
}

/// `export -o` through a linked directory on the way is refused as `--events` is (attacker
/// finding: the document landed where the link pointed).
#[test]
fn export_never_writes_through_a_linked_directory_on_the_way() {
    let t = Test::new()
        .file(
            "e.md",
            r#"# E

```manual id=m
instructions = "Do it."
```
"#,
        )
        .file("real/keep.txt", "")
        .file("elsewhere/keep.txt", "keep me\n");
    std::os::unix::fs::symlink(t.path("elsewhere"), t.path("out")).expect("link");
    for to in ["out/x.yaml", "./real/../out/y.yaml"] {
        run(&t, &["export", "--ssm", "e.md", "-o", to])
            .code_is(2)
            .stderr_has("a symbolic link");
    }
    let written: Vec<String> = crate::common::files(&t.path("elsewhere")).into_keys().collect();
    assert_eq!(
        written,
        vec!["keep.txt".to_string()],
        "the export went through the link"
    );
}

/// A symbolic link planted at the `--events` name is not followed: the file it points at is
/// left as it was and the run is refused before it starts.
#[test]
fn events_never_write_through_a_planted_link() {
    let t = Test::new()
        .file(
            "r.md",
            r#"# R

```rhai id=one
#{ a: 1 }
```
"#,
        )
        .file("precious.txt", "keep me\n");
    std::os::unix::fs::symlink(t.path("precious.txt"), t.path("ev.ndjson")).expect("link");
    run(&t, &["run", "r.md", "--events", "ev.ndjson"])
        .code_is(2)
        .stderr_has("--events ev.ndjson")
        .stdout_lacks("▶ one");
    assert_eq!(
        std::fs::read_to_string(t.path("precious.txt")).expect("kept"),
        "keep me\n"
    );
}
