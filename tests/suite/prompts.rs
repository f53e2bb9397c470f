//! A person at a terminal: the real binary in a pseudo-terminal answers prompts, gets re-asked
//! after a value that does not match, confirms a manual step, and the transcript records it.

use std::process::Command;
use std::time::Duration;

use crate::common::Test;
use expectrl::{Eof, Session};

const RUNBOOK: &str = r#"# At the keyboard

```runbook
[inputs.user]
prompt = "User name"
pattern = "[a-z]+"
```

## Press the button

Find the **green** button on the console and press it.

```manual id=press
confirm = "Did you press it?"
[ask.code]
prompt = "Code shown on the screen"
pattern = "[0-9]{4}"
```
"#;

#[test]
fn a_person_answers_is_reasked_and_confirms() {
    let t = Test::new().file("r.md", RUNBOOK);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(["run", "r.md"])
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("USER", "pat")
        .env_remove("RUNBOOK_STATE_DIR");
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p.expect("User name").expect("asks for the input");
    p.send("Bad Name\r").expect("type");
    p.expect("does not match the pattern").expect("says why");
    p.send("alice\r").expect("type");
    p.expect("Find the green button").expect("shows the section's prose");
    p.expect("Did you press it?").expect("asks to confirm");
    p.send("y").expect("confirm");
    p.expect("Code shown on the screen").expect("asks the question");
    p.send("12\r").expect("type");
    p.expect("does not match the pattern").expect("re-asks");
    p.send("1234\r").expect("type");
    p.expect("finished in").expect("finishes");
    p.expect(Eof).expect("exits");

    let written = t.written();
    let confirmed = written
        .lines()
        .find(|l| l.contains(r#""event":"confirmed""#))
        .expect("the confirmation is in the transcript");
    let v: serde_json::Value = serde_json::from_str(confirmed).expect("json line");
    assert_eq!(v["step"], "press");
    assert_eq!(v["via"], "terminal");
    // The OS's name for the user, not what $USER claims.
    assert_eq!(v["who"]["os_user"].as_str(), Some(os_user_name().as_str()));
    assert_eq!(v["answers"]["code"], "1234");
    assert!(v["ts"].as_str().is_some_and(|s| s.ends_with('Z')));
}

/// Prompts, help and choices come from the runbook: their escape sequences are shown, not obeyed.
#[test]
fn prompts_never_send_a_runbooks_escape_sequences_to_the_terminal() {
    let t = Test::new().file(
        "r.md",
        r#"# R

```runbook
[inputs.u]
prompt = "user\u001b]0;pwned\u0007\u001b[2J"
help = "help\u001b[31mRED\u009b1m"
```

```rhai id=a
#{ u: inputs.u }
```
"#,
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(["--color", "never", "run", "r.md"])
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("RUNBOOK_STATE_DIR");
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    let seen = p.expect("pwned").expect("asks");
    let mut screen = String::from_utf8_lossy(seen.before()).into_owned();
    screen.push_str(&String::from_utf8_lossy(seen.as_bytes()));
    p.send("alice\r").expect("type");
    let rest = p.expect(Eof).expect("exits");
    screen.push_str(&String::from_utf8_lossy(rest.before()));
    for raw in ["\u{1b}]0;pwned", "\u{1b}[2J", "\u{1b}[31mRED", "\u{9b}1m"] {
        assert!(!screen.contains(raw), "{raw:?} reached the terminal: {screen:?}");
    }
    assert!(screen.contains("\\u{1b}]0;pwned"), "shown neutralised: {screen:?}");
}

fn spawn_in_pty(t: &Test, args: &[&str]) -> Session {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(args)
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("RUNBOOK_STATE_DIR");
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p
}

/// What reaches the terminal in `wait`, without answering anything.
fn drain(p: &mut Session, wait: Duration) -> String {
    let mut seen = Vec::new();
    let until = std::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < until {
        match p.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// While a person is asked, nothing else draws: the step's spinner ticks every 120 ms, and before
/// the fix its frames and elapsed time landed in the prompt's line (`› no⠁ press manual 0s`).
#[test]
fn the_spinner_never_draws_into_a_prompt() {
    let t = Test::new().file("r.md", RUNBOOK);
    let mut p = spawn_in_pty(&t, &["run", "r.md"]);
    p.expect("User name").expect("asks for the input");
    let at_input = drain(&mut p, Duration::from_millis(700));
    p.send("alice\r").expect("type");
    p.expect("Did you press it?").expect("asks to confirm");
    let at_confirm = drain(&mut p, Duration::from_millis(700));
    p.send("y").expect("confirm");
    p.expect("Code shown on the screen").expect("asks the question");
    let at_question = drain(&mut p, Duration::from_millis(700));
    p.send("1234\r").expect("type");
    p.expect("finished in").expect("finishes");
    for (when, screen) in [
        ("input", at_input),
        ("confirmation", at_confirm),
        ("question", at_question),
    ] {
        assert!(
            !screen.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)),
            "a spinner frame was drawn while the {when} prompt waited: {screen:?}"
        );
        assert!(
            !screen.contains("manual"),
            "the step line was drawn while the {when} prompt waited: {screen:?}"
        );
    }
}

/// Ctrl-C at a person's prompt is an interruption, like anywhere else: exit 130, "interrupted at
/// STEP", the journal saved; not an I/O error (`runbook: IO error: read interrupted`).
#[test]
fn ctrl_c_at_a_prompt_is_an_interruption() {
    let t = Test::new().file("r.md", RUNBOOK);
    let mut p = spawn_in_pty(&t, &["run", "r.md"]);
    p.expect("User name").expect("asks for the input");
    p.send("alice\r").expect("type");
    p.expect("Did you press it?").expect("asks to confirm");
    // The prompt is drawn before it reads the keyboard in raw mode; a person cannot type in
    // between, a test can (and would get the terminal's plain SIGINT).
    std::thread::sleep(Duration::from_millis(300));
    p.send("\x03").expect("Ctrl-C");
    let said = p.expect("interrupted at press").expect("says where it stopped");
    let rest = p.expect(Eof).expect("exits");
    let screen = format!(
        "{}{}",
        String::from_utf8_lossy(said.before()),
        String::from_utf8_lossy(rest.before())
    );
    assert!(!screen.contains("IO error"), "{screen:?}");
    let status = p.get_process().wait().expect("exit status");
    assert!(
        format!("{status:?}").contains(", 130)"),
        "exit 130: {status:?} {screen:?}"
    );
    assert!(
        t.written().contains(r#""event":"interrupted""#),
        "the interruption is journaled: {}",
        t.written()
    );
    // At an input prompt, before any step: the same.
    let t = Test::new().file("r.md", RUNBOOK);
    let mut p = spawn_in_pty(&t, &["run", "r.md"]);
    p.expect("User name").expect("asks for the input");
    std::thread::sleep(Duration::from_millis(300));
    p.send("\x03").expect("Ctrl-C");
    p.expect("interrupted at input `user`").expect("says where it stopped");
    let rest = p.expect(Eof).expect("exits");
    let screen = String::from_utf8_lossy(rest.before()).into_owned();
    let status = p.get_process().wait().expect("exit status");
    assert!(
        format!("{status:?}").contains(", 130)"),
        "exit 130: {status:?} {screen:?}"
    );
}

/// An answer a question's `choices` or `pattern` refuses stops the run before its first step,
/// as a bad `[inputs]` value does (attacker finding, session 6: it failed only when the manual
/// step was reached, after earlier steps had sent their calls).
#[test]
fn an_answer_its_question_refuses_stops_the_run_before_anything_runs() {
    let asks = r#"# Ask

```rhai id=first
#{ ran: true }
```

```manual id=plan
confirm = "Chosen?"
[ask.tier]
prompt = "Support plan"
choices = ["basic", "business"]
[ask.acct]
prompt = "Account"
pattern = "[0-9]{12}"
```
"#;
    let t = Test::new()
        .file("a.md", asks)
        .file(
            "choice.toml",
            r#"[steps.plan]
confirm = true
tier = "platinum"
acct = "123456789012"
"#,
        )
        .file(
            "pattern.toml",
            r#"[steps.plan]
confirm = true
tier = "basic"
acct = "12"
"#,
        )
        .file(
            "good.toml",
            r#"[steps.plan]
confirm = true
tier = "basic"
acct = "123456789012"
"#,
        );
    let run = |answers: &str| t.run_args(&["run".into(), "a.md".into(), "--answers".into(), answers.into()]);
    run("choice.toml")
        .code_is(2)
        .stderr_has("`tier` must be one of: basic, business")
        .stdout_lacks("first");
    run("pattern.toml")
        .code_is(2)
        .stderr_has("does not match the pattern [0-9]{12} for `acct`")
        .stdout_lacks("first");
    run("good.toml").code_is(0);
}

/// Choices are literal: a `${...}` in them would never be filled in, so `check` refuses it
/// (attacker finding, session 6: the answer had to be the expression's text).
#[test]
fn an_expression_in_choices_is_a_check_error() {
    let text = r#"# Ask

```manual id=plan
confirm = "Chosen?"
[ask.tier]
prompt = "Plan"
choices = ["${inputs.plans}", "none"]
```
"#;
    Test::new()
        .file("a.md", text)
        .args(["check", "a.md"])
        .run()
        .code_is(2)
        .stderr_has("`tier`: `${inputs.plans}` is not filled in");
}

/// Only a person's "no" leads into a step's `on-failure=` runbook: a step left unanswered waits
/// where it is. (The executor once told the two apart by the wording of the waiting message.)
#[test]
fn only_a_no_leads_into_on_failure_not_a_missing_answer() {
    let t = Test::new()
        .file(
            "runbooks/a.md",
            r#"# A

```manual id=call on-failure=b.md
confirm = "Did the call come?"
```
"#,
        )
        .file(
            "runbooks/b.md",
            r#"# B

```rhai id=fallback
#{}
```
"#,
        )
        .file("unanswered.toml", "[steps.call]\n")
        .file(
            "no.toml",
            r#"[steps.call]
confirm = false
"#,
        );
    let run = |answers: &str| t.run_args(&["run".into(), "runbooks/a.md".into(), "--answers".into(), answers.into()]);
    let waits = run("unanswered.toml");
    waits
        .code_is(3)
        .stdout_lacks("continuing into")
        .stdout_lacks("fallback");
    let no = run("no.toml");
    no.code_is(3).stdout_has("continuing into").stdout_has("✓ fallback");
}

/// The name the OS has for this process's user, as `id -un` prints it.
fn os_user_name() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
