//! The limits file (`--limits FILE`, `RUNBOOK_LIMITS`): the example of the book's "AWS's limits"
//! section is the limits kept, the command line overrides it, and every mistake in a file is
//! reported at its `file:line:col` before anything runs.

use std::time::Duration;

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::quota::QuotaModel;
use crate::common::{Moto, Test, repo};

/// The ```toml block of book/src/ci.md that is a limits file.
fn book_example() -> String {
    let page = std::fs::read_to_string(repo().join("book/src/ci.md")).expect("book/src/ci.md");
    page.split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .find(|b| b.contains("[in-progress]"))
        .expect("a limits file example in the book")
        .to_string()
}

/// Identity Center, a user, a permission set, then one assignment step over `n` accounts, 40 at
/// once.
fn assignments(n: usize) -> String {
    crate::quota::wide_assignments(n, 40)
}

/// AWS's limits with room to spare, so that what is kept is the client's own.
fn roomy() -> Rules {
    let mut q = QuotaModel::aws(Duration::from_millis(400));
    q.rates = vec![("sso-admin".into(), 1000.0), ("identitystore".into(), 1000.0)];
    q.in_progress = vec![("CreateAccountAssignment".into(), 1000)];
    Rules {
        quota: Some(q),
        ..Rules::default()
    }
}

fn most_in_progress(proxy: &FaultProxy) -> usize {
    proxy.quota(|q| q.max_in_progress.get("CreateAccountAssignment").copied().unwrap_or(0))
}

#[test]
fn the_books_limits_file_is_kept_and_the_command_line_overrides_it() {
    let example = book_example();
    assert!(example.contains("CreateAccountAssignment = 3"), "{example}");
    let n = 30;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, roomy());
    let t = Test::new()
        .file("r.md", assignments(n))
        .file("limits.toml", &example)
        .aws(&proxy.endpoint);
    t.run_args(&["run".into(), "r.md".into(), "--limits".into(), "limits.toml".into()])
        .code_is(0);
    let most = most_in_progress(&proxy);
    assert!((1..=3).contains(&most), "the file's cap of 3 kept: {most}");

    // From the environment, as in CI; the command line's cap and rate win over the file's.
    moto.reset();
    let proxy = FaultProxy::start(&moto.endpoint, roomy());
    let t = Test::new()
        .file("r.md", assignments(n))
        .file("limits.toml", &example)
        .aws(&proxy.endpoint)
        .env("RUNBOOK_LIMITS", "limits.toml");
    t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--in-progress".into(),
        "CreateAccountAssignment=10".into(),
        "--rate".into(),
        "sso-admin=500".into(),
    ])
    .code_is(0);
    let most = most_in_progress(&proxy);
    assert!(
        (4..=10).contains(&most),
        "the command line's 10, not the file's 3: {most}"
    );
}

#[test]
fn a_limits_file_with_mistakes_is_refused_at_each_place_before_anything_runs() {
    let text = r#"[rate]
sso-admn = 5
organizations = 0

[in-progress]
CreateAccount = 2.5

[inprogress]
"#;
    let out = Test::new()
        .file(
            "r.md",
            r#"# R

```rhai id=greet
#{}
```
"#,
        )
        .file("limits.toml", text)
        .args(["run", "r.md", "--limits", "limits.toml"])
        .run();
    out.code_is(2)
        .stderr_has("limits.toml:2:1: error: unknown API family `sso-admn`")
        .stderr_has("= help: did you mean `sso-admin`?")
        .stderr_has("limits.toml:3:17: error: `organizations` must be requests per second")
        .stderr_has("limits.toml:6:17: error: `CreateAccount` must be how many at once (a whole number")
        .stderr_has("limits.toml:8:2: error: unknown key `inprogress` in a limits file")
        .stderr_has("= help: did you mean `[in-progress]`?")
        .stderr_lacks("greet")
        .stdout_lacks("greet");

    let missing = Test::new()
        .file(
            "r.md",
            r#"# R

```rhai id=hello
#{}
```
"#,
        )
        .args(["run", "r.md", "--limits", "nowhere.toml"])
        .run();
    missing
        .code_is(2)
        .stderr_has("nowhere.toml: error: no such file or directory");
}
