//! How a run ends, as the person reads it (issue 32): one place renders every ending (a step's
//! failure through the same located form and caret as `check`), no SDK debug dump reaches the
//! screen, and the executor prints no error and chooses no exit code itself.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, repo};

/// A failing script is located where it failed, once, with the line and a caret (it used to
/// say `r.md:5:1: error: step `bad` failed: script at r.md:7:11: ...`: two places, no caret).
#[test]
fn a_failing_script_is_located_once_with_a_caret() {
    let text = r#"# T

Intro.

```rhai id=bad
let x = 1;
  let y = foo(x);
```
"#;
    let out = Test::new().file("r.md", text).args(["run", "r.md"]).run();
    out.code_is(1);
    assert_eq!(
        out.stderr,
        r#"r.md:7:11: error: step `bad` failed: script: Function not found: foo (i64)
  |
7 |   let y = foo(x);
  |           ^
"#,
        "{out:?}"
    );
}

/// A script that reads a secret fails with neither its message nor its place: only the step's.
#[test]
fn a_failing_script_that_reads_a_secret_names_only_its_step() {
    let text = r#"# T

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```rhai id=bad
let n = inputs.pw.len();
if n > 3 { throw "too long: " + inputs.pw }
```
"#;
    let out = Test::new()
        .file("r.md", text)
        .args(["run", "r.md", "--input", "pw=hunter2"])
        .run();
    out.code_is(1);
    assert_eq!(
        out.stderr,
        r#"r.md:9:1: error: step `bad` failed: the script failed; its message and where it failed are withheld because it reads a secret
  |
9 | ```rhai id=bad
  | ^
"#,
        "{out:?}"
    );
}

/// A fan-out whose items' scripts fail is located where the first failing item stopped.
#[test]
fn a_fan_out_of_failing_scripts_is_located_where_they_failed() {
    let text = r#"# T

```rhai id=each for-each='["a", "b"]'
if item == "b" { throw "no b" }
#{ ok: true }
```
"#;
    let out = Test::new().file("r.md", text).args(["run", "r.md"]).run();
    out.code_is(1);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first, "r.md:4:18: error: step `each` failed: 1 of 2 items failed: b: script: no b",
        "{out:?}"
    );
}

/// A manual step with nobody to ask waits: exit 3, why, and how to go on.
#[test]
fn waiting_for_a_person_says_why_and_how_to_go_on() {
    let text = r#"# T

Do it.

```manual id=m
```
"#;
    let out = Test::new().file("r.md", text).args(["run", "r.md"]).run();
    out.code_is(3);
    assert_eq!(
        out.stderr,
        r#"runbook: waiting for a person at step `m`: answer in the answers file under [steps.m]: confirm = true
runbook: the journal is saved; run the same command again to continue
"#,
        "{out:?}"
    );
}

/// One runbook with a built-in action and a call by name, each against an answer the SDK
/// cannot read.
const TWO_READS: &str = r#"# Reads

```aws organizations.list-accounts id=org
```

```aws organizations:ListRoots id=roots
```
"#;

fn run_with_answer(op: &str, status: &'static str, content_type: &'static str, body: &str) -> crate::common::Output {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            answer_op: Some((op.into(), status, content_type, body.into())),
            ..Rules::default()
        },
    );
    Test::new()
        .file("r.md", TWO_READS)
        .aws(&proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "1")
        .args(["run", "r.md", "--from", if op == "ListRoots" { "roots" } else { "org" }])
        .run()
}

fn no_dump(out: &crate::common::Output) {
    for dump in ["Response {", "SdkBody", "HeaderValue", "unhandled", "Extensions", " { "] {
        assert!(!out.all().contains(dump), "no debug dump ({dump}): {out:?}");
    }
}

/// A proxy's HTML 502 page in place of AWS's answer: one line, the call, the status, the start
/// of the body.
#[test]
fn an_html_502_is_one_line_naming_the_call() {
    let page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center></body>\r\n</html>";
    let out = run_with_answer("ListAccounts", "502 Bad Gateway", "text/html", page);
    out.code_is(1);
    no_dump(&out);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "r.md:3:1: error: step `org` failed: organizations:ListAccounts failed: HttpStatus502: HTTP 502, an answer the SDK could not read: <html> <head><title>502 Bad Gateway</title></head> <body><center><h1>502 Bad Gateway</h1></center></body> </html>",
        "{out:?}"
    );
}

/// A JSON error without a code, to a call by name: one line as well.
#[test]
fn a_json_error_without_a_code_is_one_line_naming_the_call() {
    let out = run_with_answer(
        "ListRoots",
        "400 Bad Request",
        "application/x-amz-json-1.1",
        r#"{"message":"something went wrong"}"#,
    );
    out.code_is(1);
    no_dump(&out);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        r#"r.md:6:1: error: step `roots` failed: organizations:ListRoots failed: BadRequest: HTTP 400, an answer with no AWS error code: {"message":"something went wrong"}"#,
        "{out:?}"
    );
}

/// A credential source that cannot be reached (a container endpoint nobody listens on): one
/// line that says so, and no dump.
#[test]
fn an_unreachable_credential_source_is_one_line() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/creds", closed.local_addr().expect("addr"));
    drop(closed);
    let out = Test::new()
        .file("r.md", TWO_READS)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .unset("AWS_ACCESS_KEY_ID")
        .unset("AWS_SECRET_ACCESS_KEY")
        .unset("AWS_SESSION_TOKEN")
        .unset("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url)
        .args(["run", "r.md"])
        .run();
    out.code_is(1);
    no_dump(&out);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("r.md:3:1: error: step `org` failed: the AWS credentials could not be loaded: "),
        "{out:?}"
    );
    assert!(!first.contains("  "), "one line, no layout of a dump: {out:?}");
}

/// The executor returns how a run ended and prints no error itself: nothing in `exec/` prints
/// to stderr, reports diagnostics or names an exit code; `commands/error.rs` does both.
#[test]
fn the_executor_prints_no_error_and_chooses_no_exit_code() {
    let dir = repo().join("runner/src/exec");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("exec/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for banned in [
                "ui.error(",
                ".error(&",
                "eprintln!",
                "eprint!",
                "Exit::",
                "crate::exit",
                "diagnostic::report",
            ] {
                if code.contains(banned) {
                    found.push(format!("{}:{}: {banned}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the executor prints or chooses an exit:\n{}",
        found.join("\n")
    );
}
