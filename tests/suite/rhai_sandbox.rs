//! Rhai scripts and `${...}` stay in their sandbox: stopped by their limits, unable to import,
//! `eval` or touch files, and an interpolation is one expression and nothing more.

use crate::common::Test;

#[test]
fn rhai_scripts_are_stopped_by_their_limits() {
    // Located where the script was stopped, as `check` locates a script's errors.
    let cases = [
        ("loop { }", "operations", "r.md:4:6: error: step `bad` failed"),
        (
            "fn f(n) { f(n + 1) } f(0)",
            "recursed deeper",
            "r.md:4:22: error: step `bad` failed",
        ),
        (
            "let s = \"x\"; loop { s += s; }",
            "too large",
            "r.md:4:23: error: step `bad` failed",
        ),
    ];
    for (script, expect, located) in cases {
        let text = format!(
            r#"# Limits

```rhai id=bad
{script}
```
"#
        );
        let out = Test::new().file("r.md", text).args(["run", "r.md"]).run();
        assert_eq!(out.code, 1, "{script}: {out:?}");
        assert!(out.stderr.contains(expect), "{script}: {out:?}");
        out.stderr_has(located);
    }
}

/// Each way out of the sandbox is refused for its own reason, the step fails (exit 1) located
/// where the script stopped, and nothing after it runs: no module system, no `eval`, no files, no network, and
/// the step's `timeout=` stops a script that would otherwise run to the operations limit.
#[test]
fn rhai_cannot_import_eval_or_touch_files() {
    // Something that would notice a connection from a script.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    // (script, attributes, exit code, message, where): refused by `check` before anything runs
    // (2, at the keyword), or failing the step when it runs (1, where the script stopped).
    let cases: Vec<(String, &str, i32, &str, &str)> = vec![
        (
            "import \"os\" as os;".into(),
            "",
            2,
            "'import' is a reserved keyword",
            "r.md:4:1: error: Rhai:",
        ),
        (
            "eval(\"1\")".into(),
            "",
            2,
            "reserved keyword 'eval' is disabled",
            "r.md:4:1: error: Rhai:",
        ),
        (
            "open(\"/etc/passwd\")".into(),
            "",
            1,
            "Function not found: open",
            "r.md:4:1: error: step `bad` failed",
        ),
        (
            format!("http_get(\"{url}\")"),
            "",
            1,
            "Function not found: http_get",
            "r.md:4:1: error: step `bad` failed",
        ),
        (
            format!("fetch(\"{url}\")"),
            "",
            1,
            "Function not found: fetch",
            "r.md:4:1: error: step `bad` failed",
        ),
        (
            "sleep(10)".into(),
            " timeout=1s",
            1,
            "`sleep` is not available in runbook scripts",
            "r.md:4:1: error: step `bad` failed",
        ),
        (
            "let x = 0; loop { x += 1; }".into(),
            " timeout=50ms",
            1,
            "the step ran past its timeout=",
            // Where in the loop the deadline lands varies from run to run.
            "r.md:4:",
        ),
    ];
    for (script, attrs, code, expect, located) in cases {
        let text = format!(
            r#"# Sandbox

```rhai id=bad{attrs}
{script}
```

```rhai id=after
#{{ ran: true }}
```
"#
        );
        let out = Test::new().file("r.md", text).args(["run", "r.md"]).run();
        assert_eq!(out.code, code, "{script}: {out:?}");
        assert!(out.stderr.contains(expect), "{script}: {out:?}");
        assert!(out.stderr.contains(located), "{script}: located: {out:?}");
        assert!(
            !out.stdout.contains("ran=true"),
            "{script}: nothing after it ran: {out:?}"
        );
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no script reached the network"
    );
}

/// `${...}` is one Rhai expression under the same limits as scripts: statements, loops, closures
/// with bodies, `eval` and `import` are refused before the run starts (exit 2, located); what is an
/// expression still cannot open files or grow without bound (the step fails, exit 1).
#[test]
fn interpolation_is_an_expression_and_nothing_more() {
    let case = |expr: &str| {
        let text = format!(
            r#"# T

```manual id=m
instructions = "${{ {expr} }}"
```
"#
        );
        Test::new().file("r.md", text).args(["run", "r.md", "--yes"]).run()
    };
    for refused in [
        "loop { }",
        "eval(\\\"1\\\")",
        "import \\\"x\\\" as y; 1",
        "[1,2].map(|x| { let a = 0; while true { a += 1; } a })",
    ] {
        let out = case(refused);
        assert_eq!(out.code, 2, "{refused}: {out:?}");
        assert!(out.stderr.contains("r.md:4:"), "{refused}: located: {out:?}");
        assert!(!out.stdout.contains("▶ m"), "{refused}: nothing ran: {out:?}");
    }
    for (limited, why) in [
        ("open(\\\"/etc/passwd\\\")", "Function not found: open"),
        ("\\\"a\\\".pad(1000000000, \\\"b\\\")", "too large a value"),
        ("[1].pad(100000000, 0).len()", "too large a value"),
    ] {
        let out = case(limited);
        assert_eq!(out.code, 1, "{limited}: {out:?}");
        assert!(out.stderr.contains(why), "{limited}: {out:?}");
    }
}
