//! `runbook check`: exact diagnostics for malformed runbooks (the whole of stderr, as just's tests
//! compare it; step bodies in `check_bodies.rs`), and clean runs over the bundled runbooks, the
//! book's and README's examples, and real-world Markdown.

use crate::common::{Output, Test, repo};

/// `runbook check r.md` over `text`: the whole output, for `stderr_is`.
pub(crate) fn check(text: &str) -> Output {
    Test::new().file("r.md", text).args(["check", "r.md"]).run()
}

#[test]
fn a_timeout_without_a_unit() {
    check(
        r#"# T

```aws sts.whoami timeout=15
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:27: error: timeout `15` has no unit
  |
3 | ```aws sts.whoami timeout=15
  |                           ^^
  = help: write `15s` or `15m`
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn duplicate_step_id() {
    check(
        r#"# T

```rhai id=x
1
```

```rhai id=x
2
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:7:12: error: duplicate step id `x` (first used at 3:12)
  |
7 | ```rhai id=x
  |            ^
checked 1 runbook (2 steps): 1 error, 0 warnings
"#,
    );
}

#[test]
fn second_runbook_block() {
    check(
        r#"# T

```runbook
[inputs.a]
```

```runbook
[inputs.b]
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:7:4: error: a second `runbook` block
  |
7 | ```runbook
  |    ^^^^^^^
  = help: a runbook has at most one settings block; merge them
checked 1 runbook (0 steps): 1 error, 0 warnings
"#,
    );
}

#[test]
fn invalid_input_pattern() {
    check(
        r#"# T

```runbook
[inputs.user]
prompt = "User"
pattern = "[a-z"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:6:11: error: invalid pattern for `user`: unclosed character class
  |
6 | pattern = "[a-z"
  |           ^^^^^^
checked 1 runbook (0 steps): 1 error, 0 warnings
"#,
    );
}

#[test]
fn quoted_attribute_left_open() {
    check(
        r#"# T

```aws sts.whoami if='inputs.a == 1
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:22: error: quoted value of `if` is never closed
  |
3 | ```aws sts.whoami if='inputs.a == 1
  |                      ^
  = help: close it with '
r.md:3:23: error: unknown input `a`
  |
3 | ```aws sts.whoami if='inputs.a == 1
  |                       ^^^^^^^^
  = help: declare it under [inputs.NAME] in the `runbook` block
checked 1 runbook (1 step): 2 errors, 0 warnings
"#,
    );
}

#[test]
fn non_utf8_file() {
    let out = Test::new()
        .file("r.md", b"# T\n\nok line\nbad \xff byte\n")
        .args(["check", "r.md"])
        .run();
    out.code_is(2).stderr_is(
        "r.md:4:5: error: not valid UTF-8 (byte 0xff at offset 17); runbooks must be UTF-8 text
checked 0 runbooks (0 steps): 1 error, 0 warnings
",
    );
}

#[test]
fn bad_timeout_and_retries() {
    check(
        r#"# T

```aws sts.whoami timeout=soon retries=-1
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:27: error: timeout `soon` is not a duration
  |
3 | ```aws sts.whoami timeout=soon retries=-1
  |                           ^^^^
  = help: write e.g. `90s`, `10m`, `1h30m`
r.md:3:40: error: retries `-1` must be a whole number from 0 to 100
  |
3 | ```aws sts.whoami timeout=soon retries=-1
  |                                        ^^
checked 1 runbook (1 step): 2 errors, 0 warnings
"#,
    );
}

#[test]
fn unknown_attribute() {
    check(r#"# T

```aws sts.whoami retry=3
```
"#)
        .code_is(2)
        .stderr_is(r#"r.md:3:19: error: unknown attribute `retry`
  |
3 | ```aws sts.whoami retry=3
  |                   ^^^^^^^
  = help: attributes are id, if, timeout, retries, on-failure, for-each, public, mutates, on-unknown, account, role, region
checked 1 runbook (1 step): 1 error, 0 warnings
"#);
}

#[test]
fn condition_that_does_not_compile() {
    check(
        r#"# T

```aws sts.whoami if='inputs.a =='
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:34: error: expression does not compile: Script is incomplete
  |
3 | ```aws sts.whoami if='inputs.a =='
  |                                  ^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn on_failure_path_that_is_missing_or_escapes() {
    // More `..` than the temporary directory is deep: the path it names is `/etc/passwd` wherever
    // the test runs.
    check(
        r#"# T

```manual on-failure=nope.md
```

```manual on-failure=../../../../../../../../etc/passwd
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:22: error: on-failure names `nope.md`, but nope.md does not exist
  |
3 | ```manual on-failure=nope.md
  |                      ^^^^^^^
r.md:6:22: error: on-failure path `../../../../../../../../etc/passwd` leaves the runbooks directory (/etc/passwd)
  |
6 | ```manual on-failure=../../../../../../../../etc/passwd
  |                      ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
checked 1 runbook (2 steps): 2 errors, 0 warnings
"#,
    );
}

/// A runbook that continues into itself on failure would repeat what failed, each time as a new
/// run with an empty journal (an attacker saw one lost CreateUser answer become four calls).
#[test]
fn on_failure_into_the_same_runbook_is_refused() {
    check(
        r#"# T

```manual id=m on-failure=r.md
```

```manual id=n on-failure=./r.md#m
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:27: error: on-failure names `r.md`, which is this runbook: a failure would run it again
  |
3 | ```manual id=m on-failure=r.md
  |                           ^^^^
r.md:6:27: error: on-failure names `./r.md`, which is this runbook: a failure would run it again
  |
6 | ```manual id=n on-failure=./r.md#m
  |                           ^^^^^^^^
checked 1 runbook (2 steps): 2 errors, 0 warnings
"#,
    );
}

#[test]
fn near_miss_executor_is_a_warning_only() {
    check(
        r#"# T

```mannual
confirm = "x"
```

```awk
{print}
```
"#,
    )
    .code_is(0)
    .stderr_is(
        r#"r.md:3:4: warning: `mannual` is not an executor; this block will not run
  |
3 | ```mannual
  |    ^^^^^^^
  = help: did you mean `manual`?
checked 1 runbook (0 steps): 0 errors, 1 warning
"#,
    );
}

#[test]
fn directory_without_runbooks_and_missing_paths() {
    let out = Test::new()
        .file("empty/notes.txt", "x")
        .args(["check", "empty", "missing.md"])
        .run();
    out.code_is(2).stderr_is(
        "empty: error: no runbooks here (no *.md files in this directory or below)
missing.md: error: no such file or directory
checked 0 runbooks (0 steps): 2 errors, 0 warnings
",
    );
}

#[test]
fn json_diagnostics_for_tools() {
    let out = Test::new()
        .file(
            "r.md",
            r#"# T

```aws sts.whoami retry=3
```
"#,
        )
        .args(["check", "--json", "r.md"])
        .run();
    out.code_is(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v[0]["line"], 3);
    assert_eq!(v[0]["col"], 19);
    assert_eq!(v[0]["severity"], "error");
}

#[test]
fn bundled_runbooks_are_clean_and_listed() {
    let out = Test::new()
        .args(["check", &repo().join("runbooks").display().to_string()])
        .run();
    out.code_is(0).stderr_has(" 0 errors, 0 warnings");
    let out = Test::new()
        .args(["list", "--json", &repo().join("runbooks").display().to_string()])
        .run();
    out.code_is(0);
    let books: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let titles: Vec<&str> = books
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    for t in [
        "Prerequisites and considerations",
        "Part 1: Set up a new AWS account",
        "Part 2: Create an administrative user in IAM Identity Center",
        "Multiple accounts",
        "AWS users and credentials",
        "I didn't receive the call from AWS to verify my new account",
        "It's been more than 24 hours and my account isn't activated",
    ] {
        assert!(titles.contains(&t), "{t} missing from {titles:?}");
    }
}

/// Fenced `markdown` examples in README.md and every page of book/ must pass `check`.
#[test]
fn examples_in_the_book_and_readme_check_clean() {
    let mut t = Test::new();
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let mut n = 0;
    for (i, block) in readme.split("````markdown\n").skip(1).enumerate() {
        let body = block.split("\n````").next().expect("closed");
        t = t.file(&format!("readme-{i}.md"), body);
        n += 1;
    }
    assert!(n >= 1, "README has a runbook example");
    let out = t.args(["check", "."]).run();
    out.code_is(0);
    let out = Test::new()
        .args(["check", &repo().join("book").display().to_string()])
        .run();
    out.code_is(0);
}

/// Real-world Markdown: 150 READMEs, guides and changelogs of crates this project builds with,
/// committed under `tests/corpus/markdown/` (where each came from, and its licence, in NOTICE.md;
/// `collect.py` regenerates them). No panic, no step found where none is written, exit 0.
#[test]
fn real_world_markdown_checks_without_panic() {
    let corpus = crate::common::repo().join("tests/corpus/markdown");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&corpus)
        .expect("the committed corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".md") && n.as_bytes()[0].is_ascii_digit())
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 150, "the corpus is complete: {}", corpus.display());
    let t = Test::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        std::fs::copy(f, t.path(name)).expect("copy");
    }
    let out = t.run_args(&["list".into(), "--json".into(), ".".into()]);
    out.code_is(0);
    let books: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let books = books.as_array().expect("array");
    assert_eq!(books.len(), 150, "every file was read as a runbook");
    let steps: usize = books.iter().map(|b| b["steps"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(steps, 0);
    let out = t.run_args(&["check".into(), ".".into()]);
    assert_eq!(
        out.code,
        0,
        "{}",
        out.stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
}

/// `mutates=false` on an operation whose name says it changes something is allowed (the author
/// may know better) but said aloud: `plan` will send it and no intent is journaled before it. On a
/// read it is no news.
#[test]
fn mutates_false_on_a_changing_operation_is_a_warning() {
    check(
        r#"# T

```aws identitystore:DeleteUser id=d mutates=false
IdentityStoreId = "d-1234567890"
UserId = "u"
```

```aws identitystore:ListUsers id=l mutates=false
IdentityStoreId = "d-1234567890"
```
"#,
    )
    .code_is(0)
    .stderr_is(
        r#"r.md:3:46: warning: `identitystore:DeleteUser` is treated as read-only: `plan` will send it, and no intent is journaled before it
  |
3 | ```aws identitystore:DeleteUser id=d mutates=false
  |                                              ^^^^^
  = help: only operations that change nothing should say mutates=false
checked 1 runbook (2 steps): 0 errors, 1 warning
"#,
    );
}

/// `on-failure=other.md#step` (Part 2's way back to Part 1, Step 2) must name a step of that
/// runbook: `check` says so at its place.
#[test]
fn on_failure_into_another_runbook_from_a_step_must_name_one_of_its_steps() {
    let t = Test::new()
        .file(
            "runbooks/a.md",
            r#"# A

```rhai id=go on-failure=b.md#nosuch
fail("x")
```
"#,
        )
        .file(
            "runbooks/b.md",
            r#"# B

```rhai id=first
#{}
```

```rhai id=second
#{}
```
"#,
        );
    let out = t.run_args(&["check".to_string(), "runbooks/".into()]);
    out.code_is(2).stderr_is(
        r#"runbooks/a.md:3:26: error: on-failure names `b.md#nosuch`, but `nosuch` is no step of b.md (steps: first, second)
  |
3 | ```rhai id=go on-failure=b.md#nosuch
  |                          ^^^^^^^^^^^
checked 2 runbooks (3 steps): 1 error, 0 warnings
"#,
    );
    let t = t.file(
        "runbooks/a.md",
        r#"# A

```rhai id=go on-failure=b.md#second
fail("x")
```
"#,
    );
    let out = t.run_args(&["run".to_string(), "runbooks/a.md".into(), "--yes".into()]);
    out.code_is(1).stdout_has("✓ second").stdout_lacks("first");
}
