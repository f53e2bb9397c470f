//! Issue 28's table, the cells that were gaps: each source of a secret (a manual step's secret
//! answer, the environment's credentials as AWS quotes them back, a member AWS marks sensitive)
//! carried by a script into the sinks that tell pieces of it: the place a script failed at (a
//! ladder of `if c == X { fail() }` spells a value one line per character) and a fan-out's item
//! keys (one item per character). Each runs through the binary, and every byte it wrote is
//! searched.

use crate::common::{Moto, Output, Test, block_on, sdk};

/// A ladder over the first character of `value`, one line per candidate: the line a failure is
/// reported at would name the character.
fn ladder(value: &str, alphabet: &str) -> String {
    alphabet
        .chars()
        .map(|c| format!("if {value}.sub_string(0, 1) == \"{c}\" {{ fail(\"x\") }}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const DIGITS: &str = "0123456789";
const KEY_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The failure names the step's own place and nothing of the script: one `r.md:` place, the
/// step's fence, and the message withheld.
fn only_the_steps_place(out: &Output, fence: &str) {
    assert_eq!(out.code, 1, "{out:?}");
    let places: Vec<&str> = out.stderr.matches("r.md:").collect();
    assert_eq!(places.len(), 1, "a place besides the step's: {out:?}");
    out.stderr_has(&format!("r.md:{fence}: error")).stderr_has("withheld");
}

/// A fan-out over the characters of the value is refused, and no item key was written.
fn no_item_keys(t: &Test, out: &Output, chars: &[&str]) {
    assert_ne!(out.code, 0, "{out:?}");
    out.stderr_has("reads");
    let events = std::fs::read_to_string(t.path("events.ndjson")).unwrap_or_default();
    assert!(!events.contains("\"item_key\""), "item keys written: {events}");
    let all = out.all() + t.written().as_str();
    for c in chars {
        assert!(!all.contains(&format!("\"item_key\":\"{c}\"")), "{all}");
    }
}

fn run(t: &Test, extra: &[&str]) -> Output {
    let mut a = vec![
        "run".to_string(),
        "r.md".into(),
        "--events".into(),
        "events.ndjson".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    t.run_args(&a)
}

#[test]
fn a_ladder_or_a_fan_out_over_a_manual_steps_secret_answer_tells_nothing() {
    let ask = r#"```manual id=ask
[ask.pin]
prompt = "PIN"
secret = true
```"#;
    let t = Test::new()
        .file(
            "r.md",
            format!(
                r#"# R

{ask}

```rhai id=ladder
{}
#{{}}
```
"#,
                ladder("steps.ask.pin", DIGITS)
            ),
        )
        .file(
            "a.toml",
            r#"[steps.ask]
confirm = true
pin = "4821"
"#,
        );
    let out = run(&t, &["--answers", "a.toml"]);
    only_the_steps_place(&out, "9:1");
    // The answers file is the test's, not the tool's.
    std::fs::remove_file(t.path("a.toml")).expect("answers");
    assert!(!(out.all() + t.written().as_str()).contains("4821"));

    let t = Test::new()
        .file(
            "r.md",
            format!(
                r#"# R

{ask}

```rhai id=fan for-each='steps.ask.pin.to_chars()'
#{{}}
```
"#
            ),
        )
        .file(
            "a.toml",
            r#"[steps.ask]
confirm = true
pin = "4821"
"#,
        );
    // `check` sees the secret answer: refused before anything runs (exit 2).
    let out = run(&t, &["--answers", "a.toml"]);
    out.code_is(2).stderr_has("`for-each=` reads the secret `steps.ask`");
    no_item_keys(&t, &out, &["4", "8", "2", "1"]);
}

/// The environment's own access key id, as iam:ListAccessKeys answers it: the redactor masks the
/// whole key, but one character of it (a ladder's line, a fan-out's item key) is no text a mask
/// finds. The answer is secret as a whole because it quotes a secret the process holds.
#[test]
fn a_ladder_or_a_fan_out_over_the_environments_access_key_id_as_aws_answers_it_tells_nothing() {
    let moto = Moto::start();
    let (id, secret) = block_on(async {
        let iam = sdk(&moto.endpoint).iam().await.expect("iam");
        iam.create_user().user_name("ci").send().await.expect("user");
        let k = iam.create_access_key().user_name("ci").send().await.expect("key");
        let k = k.access_key().cloned().expect("key");
        (k.access_key_id().to_string(), k.secret_access_key().to_string())
    });
    let keys = r#"```aws iam:ListAccessKeys id=keys
UserName = "ci"
```"#;
    let key = "steps.keys.AccessKeyMetadata[0].AccessKeyId";
    let as_ci = |body: String| {
        Test::new()
            .file("r.md", body)
            .aws(&moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", &id)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
    };
    // The fifth character onwards is the key's own (AKIA is every key's prefix).
    let t = as_ci(format!(
        r#"# R

{keys}

```rhai id=ladder
let k = {key}.sub_string(4);
{}
#{{}}
```
"#,
        ladder("k", KEY_CHARS)
    ));
    only_the_steps_place(&run(&t, &[]), "7:1");
    // plan reads the same answer, and does not run a script over it.
    let plan = t.run_args(&["plan".into(), "r.md".into()]);
    assert!(!plan.all().contains("r.md:"), "{plan:?}");
    plan.stdout_has("it reads a secret: a plan does not run it");

    let t = as_ci(format!(
        r#"# R

{keys}

```rhai id=fan for-each='{key}.to_chars()'
#{{}}
```
"#
    ));
    let out = run(&t, &[]);
    out.code_is(1).stderr_has("`for-each=` reads a secret");
    let chars: Vec<String> = id.chars().skip(4).map(String::from).collect();
    no_item_keys(&t, &out, &chars.iter().map(String::as_str).collect::<Vec<_>>());
    let all = out.all() + t.written().as_str();
    assert!(!all.contains(&id) && !all.contains(&secret), "{all}");
}

/// A member AWS marks sensitive (secretsmanager's SecretString).
#[test]
fn a_ladder_or_a_fan_out_over_a_sensitive_member_tells_nothing() {
    let moto = Moto::start();
    let make = r#"```aws secretsmanager:CreateSecret id=make
Name = "db"
SecretString = "7319"
```"#;
    let got = r#"```aws secretsmanager:GetSecretValue id=got
SecretId = "db"
```"#;
    let t = Test::new()
        .file(
            "r.md",
            format!(
                r#"# R

{make}

{got}

```rhai id=ladder
{}
#{{}}
```
"#,
                ladder("steps.got.SecretString", DIGITS)
            ),
        )
        .aws(&moto.endpoint);
    let out = run(&t, &[]);
    only_the_steps_place(&out, "12:1");
    // The runbook holds the value it stores; search what the tool wrote.
    std::fs::remove_file(t.path("r.md")).expect("runbook");
    assert!(!(out.all() + t.written().as_str()).contains("7319"));

    let t = Test::new()
        .file(
            "r.md",
            format!(
                r#"# R

{got}

```rhai id=fan for-each='steps.got.SecretString.to_chars()'
#{{}}
```
"#
            ),
        )
        .aws(&moto.endpoint);
    let out = run(&t, &[]);
    out.code_is(1).stderr_has("`for-each=` reads a secret");
    no_item_keys(&t, &out, &["7", "3", "1", "9"]);
}

/// A ladder of steps (one per candidate character, each failing on its own) told a plan's reader
/// one character per step: a plan reports every step, where a run stops at its first failure.
/// CI runs `plan` on a pull request's runbooks with its own credentials, so a plan's output must
/// not depend on a secret at all: the same for two secrets, whether a secret input or CI's own
/// access key id as iam:ListAccessKeys (the caller's own keys) answers it.
#[test]
fn a_plans_output_does_not_depend_on_a_secret_it_reads() {
    let moto = Moto::shared();
    let keys: Vec<(String, String)> = block_on(async {
        let iam = sdk(&moto.endpoint).iam().await.expect("iam");
        let mut keys = Vec::new();
        for user in ["ci-a", "ci-b"] {
            iam.create_user().user_name(user).send().await.expect("user");
            let k = iam.create_access_key().user_name(user).send().await.expect("key");
            let k = k.access_key().cloned().expect("key");
            keys.push((k.access_key_id().to_string(), k.secret_access_key().to_string()));
        }
        keys
    });
    // Where the two key ids differ (past AKIA): the ladder looks there.
    let at = (4..20)
        .find(|&i| keys[0].0.get(i..i + 1) != keys[1].0.get(i..i + 1))
        .expect("two keys that differ");
    let steps = |id: &str, value: &str, at: usize| {
        KEY_CHARS
            .chars()
            .map(|c| {
                format!(
                    r#"```rhai id={id}-{}
if {value}.sub_string({at}, 1) == "{c}" {{ fail("x") }}
#{{}}
```
"#,
                    c.to_ascii_lowercase()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let body = format!(
        r#"# R

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```aws iam:ListAccessKeys id=keys
```

{}
{}"#,
        steps("key", "steps.keys.AccessKeyMetadata[0].AccessKeyId", at),
        steps("pw", "inputs.pw", 4)
    );
    let plans: Vec<Output> = [("AKIAPW0A", &keys[0]), ("AKIAPW9Z", &keys[1])]
        .iter()
        .map(|(pw, (id, secret))| {
            let t = Test::new()
                .file("r.md", &body)
                .aws(&moto.endpoint)
                .env("AWS_ACCESS_KEY_ID", id)
                .env("AWS_SECRET_ACCESS_KEY", secret);
            t.run_args(&["plan".into(), "r.md".into(), "--input".into(), format!("pw={pw}")])
        })
        .collect();
    assert_eq!(plans[0].code, plans[1].code);
    assert_eq!(plans[0].stdout, plans[1].stdout, "the plan differs with the secret");
    assert_eq!(plans[0].stderr, plans[1].stderr);
    plans[0].stdout_has("it reads a secret: a plan does not run it");
}
