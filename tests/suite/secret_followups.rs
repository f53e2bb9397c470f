//! Issue 28's table, the cells that were gaps for follow-ups, events, plan and `--json`: a parent
//! whose failure carries a secret (a manual step's secret answer, the environment's credentials
//! quoted by AWS, a member AWS marks sensitive, a value a script derived from a secret input)
//! continues into a runbook that shows `run.failed.error` every way it can (prints it, returns
//! it, sends it to AWS). Nothing of the secret may reach the child's output, journal or events,
//! nor the parent's; every byte the tool wrote is searched.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test};

/// A runbook that shows its parent's error in every sink it has.
const CHILD: &str = r#"# Child

```rhai id=show
print("parent said: " + run.failed.error);
print("upper: " + run.failed.error.to_upper());
let rev = ""; for c in run.failed.error.to_chars() { rev = c + rev; }
print("reversed: " + rev);
#{ e: run.failed.error, rev: rev, n: run.failed.error.len() }
```

```aws iam:GetUser id=echo
UserName = "${run.failed.error}"
```
"#;

/// Runs `parent.md` (with `child.md` beside it) into its follow-up; every byte written by the
/// tool (output, state directory, events) with the fixtures removed.
fn through_the_child(t: &Test, extra: &[&str]) -> (Output, String) {
    let mut a: Vec<String> = ["run", "parent.md", "--yes", "--events", "events.ndjson"]
        .map(String::from)
        .to_vec();
    a.extend(extra.iter().map(|s| s.to_string()));
    let out = t.run_args(&a);
    for f in ["parent.md", "child.md", "a.toml"] {
        let _ = std::fs::remove_file(t.path(f));
    }
    let written = out.all() + t.written().as_str();
    (out, written)
}

/// The child ran and showed what it was given: its `show` step printed the parent's error.
fn the_child_ran(out: &Output) {
    assert_ne!(out.code, 0, "{out:?}");
    out.stdout_has("continuing into child.md")
        .stdout_has("show: parent said: ");
}

fn no_piece_of(written: &str, secret: &str) {
    let upper = secret.to_uppercase();
    let reversed: String = secret.chars().rev().collect();
    for form in [secret, upper.as_str(), reversed.as_str()] {
        assert!(!written.contains(form), "`{form}` was written:\n{written}");
    }
}

#[test]
fn a_follow_up_never_shows_a_manual_answer_its_parent_sent() {
    let moto = Moto::shared();
    let t = Test::new()
        .file(
            "parent.md",
            r#"# Parent

```manual id=ask
[ask.pin]
prompt = "PIN"
secret = true
```

```aws iam:GetUser id=mk on-failure=child.md
UserName = "no-${steps.ask.pin}"
```
"#,
        )
        .file("child.md", CHILD)
        .file(
            "a.toml",
            r#"[steps.ask]
confirm = true
pin = "pinZq7Xk3"
"#,
        )
        .aws(&moto.endpoint);
    // The plan is given the answer too, and a later step names it.
    let plan = t.run_args(&["plan".into(), "parent.md".into(), "--answers".into(), "a.toml".into()]);
    let (out, written) = through_the_child(&t, &["--answers", "a.toml"]);
    the_child_ran(&out);
    no_piece_of(&(written + plan.all().as_str()), "pinZq7Xk3");
}

#[test]
fn a_follow_up_never_shows_a_sensitive_member_its_parent_sent() {
    let moto = Moto::shared();
    let t = Test::new()
        .file(
            "parent.md",
            r#"# Parent

```aws secretsmanager:CreateSecret id=make
Name = "db"
SecretString = "valueZq7Xk3"
```

```aws secretsmanager:GetSecretValue id=got
SecretId = "db"
```

```aws iam:GetUser id=mk on-failure=child.md
UserName = "no-${steps.got.SecretString}"
```
"#,
        )
        .file("child.md", CHILD)
        .aws(&moto.endpoint);
    let (out, written) = through_the_child(&t, &[]);
    the_child_ran(&out);
    no_piece_of(&written, "valueZq7Xk3");
}

#[test]
fn a_follow_up_never_shows_a_value_its_parent_derived_from_a_secret() {
    let t = Test::new()
        .file(
            "parent.md",
            r#"# Parent

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```rhai id=f on-failure=child.md
fail("bad: " + inputs.pw.to_upper() + " / " + inputs.pw.to_chars().reverse())
```
"#,
        )
        .file(
            "child.md",
            CHILD.replace(
                r#"```aws iam:GetUser id=echo
UserName = "${run.failed.error}"
```
"#,
                "",
            ),
        );
    let (out, written) = through_the_child(&t, &["--input", "pw=pwZq7Xk3"]);
    the_child_ran(&out);
    no_piece_of(&written, "pwZq7Xk3");
}

/// The environment's credentials, quoted by AWS's refusal (the echo proxy): masked in the parent,
/// the child, the events, and in `plan`, `plan --json`, `status --json` and `verify --json`
/// afterwards.
#[test]
fn a_follow_up_plan_and_json_never_show_credentials_aws_quoted() {
    const ACCESS_KEY: &str = "AKIAZQ7XK3CANARY0002";
    const SECRET_KEY: &str = "zq7xk3-secret-access-key-canary2";
    const SESSION_TOKEN: &str = "zq7xk3-session-token-canary2";
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            echo_credentials: true,
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file(
            "parent.md",
            r#"# Parent

```aws organizations.ensure-organization id=org on-failure=child.md
```
"#,
        )
        .file("child.md", CHILD)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let parent = std::fs::read_to_string(t.path("parent.md")).expect("parent");
    let child = std::fs::read_to_string(t.path("child.md")).expect("child");
    let (out, mut written) = through_the_child(&t, &[]);
    the_child_ran(&out);
    assert!(proxy.injected("echo-credentials") > 0, "no call was refused: {out:?}");
    out.stdout_has("The access key id ******** (session token ********) is not allowed");
    std::fs::write(t.path("parent.md"), parent).expect("parent");
    std::fs::write(t.path("child.md"), child).expect("child");
    for cmd in [
        &["plan", "parent.md"][..],
        &["plan", "--json", "parent.md"],
        &["status", "--json", "parent.md"],
        &["verify", "--json", "parent.md"],
        &["plan", "child.md"],
        &["status", "--json", "child.md"],
    ] {
        let o = t.run_args(&cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        written.push_str(&o.all());
    }
    assert!(
        written.contains("********"),
        "nothing was quoted, so nothing was masked:\n{written}"
    );
    for s in [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN] {
        no_piece_of(&written, s);
    }
    // The forms the proxy's refusal also quotes them in (attacker finding: base64, hex,
    // upper-cased and reversed forms of the session token were printed and journaled).
    use base64::Engine as _;
    let signed = base64::engine::general_purpose::STANDARD
        .encode(format!("x-amz-security-token:{SESSION_TOKEN}\nkey:{ACCESS_KEY}"));
    for form in [&signed[32..48], &hex::encode(SESSION_TOKEN)[8..40]] {
        assert!(!written.contains(form), "`{form}` was written:\n{written}");
    }
}
