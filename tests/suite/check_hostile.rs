//! `check` against hostile runbooks: paths that leave the runbooks root, floods of errors, regex
//! bombs, shell fences. It must stay linear, located and short.

use crate::common::Test;

/// Checks `text` as `r.md` and returns the first line of each diagnostic.
fn diagnose(text: &[u8]) -> (i32, Vec<String>) {
    let out = Test::new().file("r.md", text).args(["check", "r.md"]).run();
    assert_ne!(out.code, 101, "panicked: {out:?}");
    let lines = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("r.md"))
        .map(String::from)
        .collect();
    (out.code, lines)
}

#[track_caller]
fn error_is(text: &str, expected: &str) {
    let (code, lines) = diagnose(text.as_bytes());
    assert_eq!(code, 2, "{text}\n{lines:?}");
    assert_eq!(lines.first().map(String::as_str), Some(expected), "all: {lines:#?}");
}

#[test]
fn on_failure_cannot_leave_the_runbooks_root() {
    let t = Test::new()
        .file("x.md", "# Outside\n")
        .file("runbooks/javascript:alert(1)", "not a runbook")
        .file("runbooks/ok.md", "# Ok\n")
        .file(
            "runbooks/r.md",
            "# R\n\n```manual id=a on-failure=../x.md\n```\n\n```manual id=b on-failure=etc/passwd\n```\n\n\
```manual id=c on-failure=javascript:alert(1)\n```\n\n```manual id=d on-failure=ok.md\n```\n",
        );
    std::os::unix::fs::symlink("/etc", t.path("runbooks/etc")).expect("symlink");
    let out = t.run_args(&["check".into(), "runbooks".into()]);
    out.code_is(2);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("runbooks/r.md:") && l.contains(": error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{}", out.stderr);
    assert!(
        errors[0].starts_with("runbooks/r.md:3:27: error: on-failure "),
        "{errors:?}"
    );
    assert!(errors[0].contains("leaves the runbooks directory"), "{errors:?}");
    assert!(
        errors[1].starts_with("runbooks/r.md:6:27: error: on-failure "),
        "{errors:?}"
    );
    assert!(errors[1].contains("leaves the runbooks directory"), "{errors:?}");
    assert!(
        errors[2].starts_with("runbooks/r.md:9:27: error: on-failure "),
        "{errors:?}"
    );
    assert!(errors[2].contains("not a runbook"), "{errors:?}");
    // The same runbook checked on its own: its runbooks root is still `runbooks/`.
    let out = t.run_args(&["check".into(), "runbooks/r.md".into()]);
    out.code_is(2);
    let errors = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("runbooks/r.md:") && l.contains(": error: "));
    assert_eq!(errors.count(), 3, "{}", out.stderr);
}

/// `check` on `n` hostile items of one kind: the report stays short and says how many it left out.
#[track_caller]
fn capped(text: String, n: usize) {
    let out = Test::new().file("r.md", &text).args(["check", "r.md"]).run();
    assert_eq!(out.code, 2, "{}", &out.stderr[..out.stderr.len().min(2000)]);
    let located = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("r.md:") && !l.starts_with("r.md: "))
        .count();
    assert!(located <= 50, "{located} diagnostics printed");
    assert!(
        out.stderr.contains(&format!("and {} more", n - 50)),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(2000)..]
    );
    assert!(
        out.stderr.len() < 64 * 1024,
        "{} bytes of diagnostics",
        out.stderr.len()
    );
}

#[test]
fn thousands_of_bad_attributes_give_a_short_report() {
    let attrs = vec!["x=y"; 2000].join(" ");
    capped(
        format!(
            r#"# T

```aws sts.whoami {attrs}
```
"#
        ),
        2000,
    );
}

#[test]
fn thousands_of_unknown_keys_give_a_short_report() {
    let keys: String = (0..2000).map(|i| format!("k{i} = 1\n")).collect();
    capped(
        format!(
            r#"# T

```aws sts.whoami
{keys}```
"#
        ),
        2000,
    );
}

#[test]
fn shell_fences_warn_that_runbook_never_runs_shell() {
    let (code, lines) = diagnose(
        b"# T\n\n```sh id=del\nrm -rf /\n```\n\n```bash\necho hi\n```\n\n  ```console\n  $ ls\n  ```\n\n~~~powershell\nGet-Item\n~~~\n\n```zsh\nls\n```\n\n```text\nshown\n```\n",
    );
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        lines,
        [
            "r.md:3:4: warning: a `sh` block is shown, never run: `runbook` never runs shell",
            "r.md:7:4: warning: a `bash` block is shown, never run: `runbook` never runs shell",
            "r.md:11:6: warning: a `console` block is shown, never run: `runbook` never runs shell",
            "r.md:15:4: warning: a `powershell` block is shown, never run: `runbook` never runs shell",
            "r.md:19:4: warning: a `zsh` block is shown, never run: `runbook` never runs shell",
        ]
    );
    let out = Test::new()
        .file(
            "r.md",
            r#"# T

```bash id=x
ls
```
"#,
        )
        .args(["check", "r.md"])
        .run();
    assert!(out.stderr.contains("help: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("```text"),
        "says what to write instead: {}",
        out.stderr
    );
}

#[test]
fn regex_bombs_in_patterns_are_caught_at_check() {
    error_is(
        r#"# T

```runbook
[inputs.u]
pattern = "(?:a{1000}){1000}"
```
"#,
        "r.md:5:11: error: pattern for `u` is too big: it compiles to more than 1 MiB",
    );
    error_is(
        r#"# T

```manual
confirm = "ok?"
[ask.code]
pattern = "\\w{1000}\\w{1000}"
```
"#,
        "r.md:6:11: error: pattern for `code` is too big: it compiles to more than 1 MiB",
    );
}

#[test]
fn prose_includes_outside_the_runbooks_root_are_located_errors() {
    let (code, lines) = diagnose(b"# T\n\nSee {{#include /etc/passwd}} and {{#title ok}}.\n");
    assert_eq!(code, 2, "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("r.md:3:5: error: "), "{lines:?}");
}

#[test]
fn a_rhai_step_over_the_size_limit_is_refused_before_compiling() {
    let lets: String = (0..4000).map(|i| format!("let v{i} = inputs.u;\n")).collect();
    let (code, lines) = diagnose(
        format!(
            r#"# T

```runbook
[inputs.u]
```

```rhai id=big
{lets}#{{}}
```
"#
        )
        .as_bytes(),
    );
    assert_eq!(code, 2, "{lines:?}");
    assert_eq!(
        lines,
        ["r.md:7:4: error: this Rhai step is 84 KiB; a step holds at most 64 KiB of script"]
    );
}
