//! Secrets by construction (issue 28): what code derives from a secret is one opaque value, its
//! failures and prints tell nothing, a follow-up run masks what its parent knew, short test
//! credentials do not mask ordinary words, and nothing stored lets anyone test guesses.

use std::collections::BTreeMap;

use crate::common::{Moto, Test, files};

/// A script that reads a secret cannot spell it in the shape of its outputs: a map whose members
/// are `()` or `0` by the secret's bits, a list as long as the secret. Stored, streamed and shown,
/// the outputs are one mask (attacker finding: the mask kept member names, nulls and lengths, and
/// a decoder printed the secret from `--events`, `state.json` and the transcript).
#[test]
fn a_script_cannot_encode_a_secret_in_the_shape_of_its_outputs() {
    let text = r#"# Shape

```runbook
[inputs.pw]
prompt = "pw"
secret = true
```

```rhai id=encode
let m = #{};
let i = 0;
for c in inputs.pw.to_chars() {
    m["bit" + i] = if c.to_int() % 2 == 0 { () } else { 0 };
    i += 1;
}
m["len"] = inputs.pw.to_chars();
m
```
"#;
    let t = Test::new().file("r.md", text);
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "pw=hunter2".into(),
        "--events".into(),
        "events.ndjson".into(),
    ]);
    out.code_is(0);
    let mut all = out.all();
    for (_, text) in files(&t.path(".runbook")) {
        all.push_str(&text);
    }
    all.push_str(&std::fs::read_to_string(t.path("events.ndjson")).unwrap_or_default());
    for shape in ["bit0", "bit6", "null", "\"len\"", "hunter2"] {
        assert!(!all.contains(shape), "`{shape}` shows:\n{all}");
    }
    let events = std::fs::read_to_string(t.path("events.ndjson")).expect("events");
    assert!(
        events.contains(r#""outputs":"********""#),
        "the outputs are one mask: {events}"
    );
}

/// With test credentials as short as `x`, ordinary words are not masked (attacker finding: a
/// runbook titled "syntax probe" showed as `synta******** probe`). Real credentials are long.
#[test]
fn short_test_credentials_do_not_mask_ordinary_words() {
    let out = Test::new()
        .file(
            "r.md",
            r#"# syntax probe

```rhai id=a
#{ word: "xylophone" }
```
"#,
        )
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .args(["run", "r.md"])
        .run();
    out.code_is(0).stdout_has("syntax probe").stdout_has("word=xylophone");
}

/// The state directory alone cannot tell one PIN from another: two runs that differ only in a
/// 4-digit secret leave journals that differ only in digests keyed with the operator's key, which
/// is not in the state directory (attacker finding: the PIN was recovered in milliseconds from a
/// keyed digest in `state.json` and the key file beside it).
#[test]
fn nothing_stored_lets_anyone_test_guesses_of_a_short_secret() {
    let home = tempfile::tempdir().expect("home");
    let text = r#"# Pin

```runbook
[inputs.pin]
prompt = "pin"
secret = true
pattern = "^[0-9]{4}$"
```

```manual id=show
instructions = "Type ${inputs.pin} into the device."
```

```rhai id=derive
#{ doubled: inputs.pin + inputs.pin }
```
"#;
    // The same runbook at the same place, run afresh with each PIN.
    let t = Test::new()
        .file("r.md", text)
        .env("HOME", &home.path().display().to_string());
    let run = |pin: &str| -> BTreeMap<String, String> {
        let _ = std::fs::remove_dir_all(t.path(".runbook"));
        t.run_args(&[
            "run".into(),
            "r.md".into(),
            "--input".into(),
            format!("pin={pin}"),
            "--yes".into(),
        ])
        .code_is(0);
        files(&t.path(".runbook"))
    };
    let (fa, fb) = (run("4821"), run("1379"));
    let normalize = |s: &str| {
        let s = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
            .expect("re")
            .replace_all(s, "TIME")
            .into_owned();
        let s = regex::Regex::new(r#""(run|run_id)":"[0-9a-f]{12}""#)
            .expect("re")
            .replace_all(&s, "\"$1\":\"ID\"")
            .into_owned();
        let s = regex::Regex::new(r#""run_id": "[0-9a-f]{12}""#)
            .expect("re")
            .replace_all(&s, "\"run_id\": \"ID\"")
            .into_owned();
        let s = regex::Regex::new(r"pid \d+")
            .expect("re")
            .replace_all(&s, "pid N")
            .into_owned();
        let s = regex::Regex::new(r"/tmp/\.tmp[A-Za-z0-9]+")
            .expect("re")
            .replace_all(&s, "/TMP")
            .into_owned();
        // Digests keyed with the operator's key: the only place the secret may enter.
        regex::Regex::new(r"k[0-9a-f]{8}:[0-9a-f]{32}")
            .expect("re")
            .replace_all(&s, "KEYED")
            .into_owned()
    };
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (name, text) in &fa {
        assert!(
            !name.ends_with("key") && text.len() != 32,
            "a key in the state directory: {name}"
        );
        assert_eq!(normalize(text), normalize(&fb[name]), "{name} tells the PINs apart");
    }
    assert!(
        fa.values()
            .any(|t| regex::Regex::new(r"k[0-9a-f]{8}:").expect("re").is_match(t)),
        "the secret's digest is keyed: {fa:?}"
    );
}

/// A follow-up (`on-failure=`) masks everything its parent knew: the error it is handed, which
/// quoted a secret AWS echoed back, never reaches its screen, its state or its transcript
/// (attacker finding: the child started with a fresh redactor and printed "The user with name
/// Hunter2Secret cannot be found").
#[test]
fn a_follow_up_never_shows_the_secret_its_parent_failed_with() {
    let moto = Moto::shared();
    let parent = r#"# Parent

```runbook
[inputs.name]
prompt = "name"
secret = true
```

```aws iam:GetUser id=look on-failure=child.md
UserName = "${inputs.name}"
```
"#;
    let child = r#"# Child

```manual id=explain
instructions = "The parent failed with: ${run.failed.error}"
```
"#;
    let t = Test::new()
        .file("parent.md", parent)
        .file("child.md", child)
        .aws(&moto.endpoint);
    let out = t.run_args(&[
        "run".into(),
        "parent.md".into(),
        "--input".into(),
        "name=Hunter2Secret".into(),
        "--yes".into(),
        "--events".into(),
        "events.ndjson".into(),
    ]);
    out.stdout_has("continuing into");
    let mut all = out.all();
    for (_, text) in files(&t.path(".runbook")) {
        all.push_str(&text);
    }
    all.push_str(&std::fs::read_to_string(t.path("events.ndjson")).unwrap_or_default());
    assert!(!all.contains("Hunter2Secret"), "{all}");
    assert!(all.contains("The parent failed with"), "the child ran: {all}");
}

/// What AWS marks sensitive in its answer is secret wherever it would go (attacker finding:
/// CreateVirtualMFADevice's `Base32StringSeed`, from which anyone computes the MFA codes, was
/// stored and streamed in clear: the trimmed models had dropped botocore's `sensitive` trait).
#[test]
fn an_mfa_seed_aws_answers_with_is_never_stored_or_shown() {
    let moto = Moto::shared();
    let text = r#"# MFA

```aws iam:CreateVirtualMFADevice id=mfa
VirtualMFADeviceName = "probe"
```
"#;
    let t = Test::new().file("r.md", text).aws(&moto.endpoint);
    let out = t.run_args(&["run".into(), "r.md".into(), "--events".into(), "events.ndjson".into()]);
    out.code_is(0);
    let mut all = out.all();
    for (_, text) in files(&t.path(".runbook")) {
        all.push_str(&text);
    }
    let events = std::fs::read_to_string(t.path("events.ndjson")).expect("events");
    all.push_str(&events);
    for shown in ["Base32StringSeed", "QRCodePNG", "SerialNumber"] {
        assert!(!all.contains(shown), "`{shown}` shows:\n{all}");
    }
    assert!(events.contains(r#""outputs":"********""#), "{events}");
}

/// AWS can answer a secret back transformed: s3's `EncodingType=url` returns the prefix it was
/// given URL-encoded (`Tr0ub4dor%263/x`), which no search for the secret's text finds. The answer
/// to a request that held a secret is secret as a whole: a script or a person's step that shows
/// it shows nothing of it, in the terminal, the events or the state directory.
#[test]
fn an_answer_to_a_request_that_held_a_secret_is_secret() {
    let moto = Moto::shared();
    let text = r#"# Echo

```runbook
[inputs.pw]
secret = true
```

```aws s3:CreateBucket id=b
Bucket = "bkt-one"
```

```aws s3:ListObjectsV2 id=ls
Bucket = "bkt-one"
Prefix = "${inputs.pw}"
EncodingType = "url"
```

```rhai id=p
#{ p: steps.ls.Prefix }
```

```manual id=show
instructions = "P ${steps.ls.Prefix}"
```
"#;
    let t = Test::new().aws(&moto.endpoint).file("r.md", text);
    for pw in ["Tr0ub4dor&3/x", "correct horse/battery", "a+b/c"] {
        let encoded: String = pw.replace('&', "%26").replace(' ', "%20").replace('+', "%2B");
        let out = t.run_args(&[
            "run".into(),
            "r.md".into(),
            "--input".into(),
            format!("pw={pw}"),
            "--yes".into(),
            "--restart".into(),
            "--events".into(),
            "-".into(),
        ]);
        out.code_is(0);
        assert!(!out.all().contains(&encoded), "{encoded}: {out:?}");
        for (path, text) in files(&t.path(".runbook")) {
            assert!(!text.contains(&encoded), "{encoded} in {path}");
        }
    }
}
