//! `runbook export --ssm`: every bundled runbook exports and validates against AWS's published
//! schema for Automation documents (with our overlay), or fails with located diagnostics; an
//! export is deterministic; each construct that cannot be exported is an error at its position.
//! Running the exports in cdk-ssm-documents' simulator is `ssm_simulated.rs`; the tools are
//! `common/ssm.rs`.

use std::process::Command;

use serde_json::Value;

use crate::common::ssm::{export, node, node_tools};
use crate::common::{Test, moto_server, repo};

/// The bundled runbooks, each with the `--skip`s the design gives it, or the located error it
/// must fail with.
const BUNDLED: &[(&str, &[&str], Option<&str>)] = &[
    ("part-1-new-account.md", &[], None),
    ("part-2-identity-center.md", &[], None),
    ("users-and-credentials.md", &[], None),
    ("prerequisites.md", &["firewall"], None),
    ("offboard-admin.md", &[], None),
    (
        "multiple-accounts.md",
        &[],
        Some(
            "multiple-accounts.md:125:19: error: cannot export `steps.member_accounts.results.map(|r| r.account_id)`: a reference to the outputs of `member_accounts`: it is a for-each step, and aws:loop keeps no per-item outputs",
        ),
    ),
    ("troubleshooting/failed-attempts.md", &[], None),
    ("troubleshooting/no-verification-call.md", &[], None),
    ("troubleshooting/not-activated.md", &[], None),
];

#[test]
fn every_bundled_runbook_exports_and_validates_or_says_where_it_cannot() {
    let tools = node_tools();
    let t = Test::new();
    let mut written = Vec::new();
    for (runbook, skips, error) in BUNDLED {
        let out = t.path(&format!("{}.ssm.yaml", runbook.replace('/', "_")));
        let o = export(&t, runbook, skips, &out, &[]);
        match error {
            None => {
                o.code_is(0).stderr_has("exported ");
                written.push(out);
            }
            Some(e) => {
                o.code_is(2)
                    .stderr_has(e)
                    .stderr_has("= help: ")
                    .stderr_has("nothing written");
                assert!(!out.exists(), "{runbook}: a failed export wrote {}", out.display());
            }
        }
    }
    let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["validate.js"];
    args.extend(files.iter().map(String::as_str));
    let (code, stdout, stderr) = node(&tools, &args, &[]);
    assert_eq!(
        code, 0,
        "an export is invalid against the schema with the overlay:\n{stdout}{stderr}"
    );
    // Against the schema as published, only what the overlay adds may fail: python3.11 (the
    // snapshot stops at 3.7, which AWS no longer runs) and aws:loop.
    let mut raw = vec!["validate.js", "--raw"];
    raw.extend(files.iter().map(String::as_str));
    let (_, stdout, _) = node(&tools, &raw, &[]);
    let report: Value = serde_json::from_str(&stdout).expect("validate.js prints JSON");
    for (file, errors) in report.as_object().expect("object") {
        for e in errors.as_array().expect("array") {
            let at = e["schemaPath"].as_str().unwrap_or("");
            let why = format!("{file}: {e}");
            let runtime = e["instancePath"]
                .as_str()
                .is_some_and(|p| p.ends_with("/inputs/Runtime"))
                || at.contains("/allOf/12/");
            let loop_ = at.contains("/action/enum") || at.contains("/allOf/");
            assert!(
                runtime || (file.contains("offboard") && loop_),
                "the published schema refuses more than the runtime: {why}"
            );
        }
    }
}

#[test]
fn an_export_is_deterministic_and_its_yaml_and_json_are_one_document() {
    let t = Test::new();
    let (a, b, j) = (t.path("a.yaml"), t.path("b.yaml"), t.path("a.json"));
    export(&t, "part-2-identity-center.md", &[], &a, &[]).code_is(0);
    export(&t, "part-2-identity-center.md", &[], &b, &[]).code_is(0);
    export(&t, "part-2-identity-center.md", &[], &j, &["--format", "json"]).code_is(0);
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "two exports differ"
    );
    // PyYAML (moto's dependency, in the suite's virtualenv) reads the YAML as JSON reads the JSON.
    let python = moto_server().parent().expect("bin").join("python3");
    let same = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; sys.exit(0 if yaml.safe_load(open(sys.argv[1])) == json.load(open(sys.argv[2])) else 1)",
        ])
        .arg(&a)
        .arg(&j)
        .status()
        .expect("python");
    assert!(same.success(), "the YAML and the JSON export differ");
}

/// What cannot be exported, each at its position, with a help line; nothing is written.
const REFUSED: &[(&str, &str, &[&str])] = &[
    (
        r#"# Net

```net check-reachable id=probe
urls = ["https://example.com"]
```
"#,
        "r.md:3:4: error: cannot export `net check-reachable`: it probes the network of the machine it runs on",
        &[
            "= help: leave it out with `--skip probe`, and run it where the operator is: `runbook run r.md --only probe`",
        ],
    ),
    (
        r#"# Fan-out

```rhai id=names
#{ list: ["a", "b"] }
```

```rhai id=each for-each='steps.names.list'
#{ upper: item.to_upper() }
```

```rhai id=after
#{ n: steps.each.results.len() }
```
"#,
        "r.md:12:7: error: cannot export a reference to the outputs of `each`: it is a for-each step, and aws:loop keeps no per-item outputs",
        &["= help: read the items again in a later step that is not a fan-out"],
    ),
    (
        r#"# While

```rhai id=loops
let i = 0;
while i < 3 { i += 1; }
#{ n: i }
```
"#,
        "r.md:5:1: error: cannot export a `while`/`loop`/`do` loop",
        &["= help: rewrite it with the exportable Rhai subset"],
    ),
    (
        r#"# Closure

```rhai id=closures
let xs = [1, 2].map(|x| x + 1);
#{ xs: xs }
```
"#,
        "r.md:4:17: error: cannot export `.map(...)` with a closure: closures are outside the exportable Rhai subset",
        &[],
    ),
    (
        r#"# Division

```rhai id=half
#{ half: 7 / 2 }
```
"#,
        "r.md:4:12: error: cannot export the operator `/`",
        &[],
    ),
    (
        r#"# Return

```rhai id=early
return #{ a: 1 };
```
"#,
        "r.md:4:1: error: cannot export `return`: end the script with the map of its outputs instead",
        &[],
    ),
    (
        r#"# Fn

```rhai id=f
fn twice(x) { x + x }
#{ a: twice(1) }
```
"#,
        "error: cannot export the function `twice`",
        &[],
    ),
    (
        r#"# Secret

```runbook
[inputs.token]
prompt = "Token"
secret = true
```

```manual id=show
instructions = "Paste ${inputs.token} into the console."
```
"#,
        "r.md:9:4: error: cannot export `show`: its message would show a secret to every approver",
        &["= help: keep secrets to scripts"],
    ),
    (
        r#"# Secret

```runbook
[inputs.token]
secret = true
```

```aws identitystore.find-user id=who
identity_store_id = "d-1234567890"
user_name = "${inputs.token}"
```
"#,
        "r.md:8:4: error: cannot export `who`: it passes a secret to `identitystore.find-user`, whose parameters an execution records",
        &[],
    ),
    (
        r#"# Secret

```runbook
[inputs.token]
secret = true
```

```rhai id=derive
#{ len: inputs.token.len() }
```
"#,
        "r.md:8:4: error: cannot export `derive`: it reads a secret and returns outputs, which an execution shows to whoever can read it",
        &["= help: mark the outputs that hold no secret with `public=NAME,...`"],
    ),
    (
        r#"# Run user

```rhai id=who
#{ by: run.user }
```
"#,
        "r.md:4:8: error: cannot export `run.user`: an Automation execution has no operator at a terminal",
        &["= help: make it an input of the runbook"],
    ),
    (
        r#"# Case

```aws support.case-status id=status
case_id = "case-123"
```
"#,
        "r.md:3:4: error: cannot export `aws support.case-status`: the export has no lowering for it yet",
        &["= help: leave it out with `--skip status`"],
    ),
];

#[test]
fn each_construct_that_cannot_be_exported_is_an_error_at_its_position() {
    for (runbook, error, more) in REFUSED {
        let t = Test::new()
            .file("r.md", runbook)
            .args(["export", "--ssm", "r.md", "-o", "out.yaml"]);
        let o = t.run();
        o.code_is(2).stderr_has(error).stderr_has("nothing written");
        for m in *more {
            o.stderr_has(m);
        }
        assert!(!t.path("out.yaml").exists(), "a refused export was written:\n{o:?}");
    }
    // Automation's own limits: 100 loop items, 4,096 characters in an approval's message.
    let items: Vec<String> = (0..101).map(|n| format!("\"i{n}\"")).collect();
    let many = format!(
        r#"# Many

```rhai id=each for-each='[{}]'
#{{ x: item }}
```
"#,
        items.join(", ")
    );
    Test::new()
        .file("r.md", many)
        .args(["export", "--ssm", "r.md"])
        .run()
        .code_is(2)
        .stderr_has("r.md:3:27: error: cannot export a for-each of 101 items: aws:loop takes at most 100");
    let long = format!(
        r#"# Long

```manual id=read
instructions = "{}"
```
"#,
        "x".repeat(4100)
    );
    Test::new()
        .file("r.md", long)
        .args(["export", "--ssm", "r.md"])
        .run()
        .code_is(2)
        .stderr_has("r.md:3:1: error: cannot export `read`: its message is 4136 characters, and an approval's message holds at most 4096");
}

#[test]
fn strict_makes_a_note_an_error_and_skip_leaves_a_step_out() {
    let t = Test::new();
    let out = t.path("p1.yaml");
    export(&t, "part-1-new-account.md", &[], &out, &["--strict"])
        .code_is(2)
        .stderr_has("part-1-new-account.md:118:4: error: question `account_id` becomes the document parameter `AccountId`: it is answered when the execution starts, not at this step (--strict)");
    assert!(!out.exists());
    // Without --skip, prerequisites' network probe refuses the whole export; with it, the step
    // is gone and so is every reference to it.
    export(&t, "prerequisites.md", &[], &out, &[])
        .code_is(2)
        .stderr_has("= help: leave it out with `--skip firewall`");
    export(&t, "prerequisites.md", &["firewall"], &out, &[]).code_is(0);
    let text = std::fs::read_to_string(&out).expect("doc");
    assert!(!text.contains("name: firewall\n"), "{text}");
    export(&t, "prerequisites.md", &["firewall", "no-such-step"], &out, &[])
        .code_is(2)
        .stderr_has("--skip no-such-step: the runbook has no step `no-such-step`");
}

#[test]
fn the_site_links_each_runbooks_exported_document_or_says_why_there_is_none() {
    let t = Test::new();
    let site = t.path("site");
    t.run_args(&[
        "render".into(),
        "--book".into(),
        repo().join("book").display().to_string(),
        "--runbooks".into(),
        repo().join("runbooks").display().to_string(),
        "--out".into(),
        site.display().to_string(),
    ])
    .code_is(0);
    let page = |p: &str| std::fs::read_to_string(site.join("runbooks").join(p)).expect("page");
    let part2 = page("part-2-identity-center.html");
    assert!(
        part2.contains("<a href=\"part-2-identity-center.ssm.yaml\" download>"),
        "Part 2's page links no document"
    );
    // The document on the site is the one `export --ssm` writes.
    let mine = t.path("p2.yaml");
    export(&t, "part-2-identity-center.md", &[], &mine, &[]).code_is(0);
    let on_site = std::fs::read_to_string(site.join("runbooks/part-2-identity-center.ssm.yaml")).expect("on the site");
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("Exported by"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&on_site),
        strip(&std::fs::read_to_string(&mine).expect("exported"))
    );
    assert!(page("prerequisites.html").contains("Left out: <code>firewall</code>"));
    assert!(site.join("runbooks/troubleshooting/not-activated.ssm.yaml").exists());
    assert!(page("troubleshooting/not-activated.html").contains("href=\"../../ssm-automation.html\""));
    let multi = page("multiple-accounts.html");
    assert!(
        multi.contains("this runbook cannot be exported as it is: cannot export"),
        "{multi}"
    );
    assert!(!site.join("runbooks/multiple-accounts.ssm.yaml").exists());
    assert!(
        site.join("ssm-automation.html").exists(),
        "the book's SSM Automation page"
    );
}

#[test]
fn a_secret_is_a_parameter_store_name_and_never_its_value() {
    let rb = "# Secret things\n\n```runbook\n[inputs.token]\nprompt = \"API token\"\nsecret = true\ndefault = \"SeKr1t-input-4471\"\n```\n\n\
```manual id=paste\nconfirm = \"Pasted?\"\n[ask.otp]\nprompt = \"One-time code\"\nsecret = true\ndefault = \"SeKr1t-ask-9902\"\n```\n\n\
```rhai id=use public=n\nlet n = inputs.token.len() + steps.paste.otp.len();\n#{ n: n }\n```\n";
    let t = Test::new()
        .file("r.md", rb)
        .args(["export", "--ssm", "r.md", "-o", "out.yaml"]);
    t.run().code_is(0);
    let doc = std::fs::read_to_string(t.path("out.yaml")).expect("doc");
    assert!(!doc.contains("SeKr1t"), "a secret default reached the document:\n{doc}");
    for p in ["TokenParameterName:", "OtpParameterName:"] {
        assert!(doc.contains(p), "no parameter {p}\n{doc}");
    }
    // Only the script reads them, from Parameter Store, with decryption.
    assert!(
        doc.contains("_secret(events[\"TokenParameterName\"])")
            && doc.contains("_secret(events[\"OtpParameterName\"])"),
        "{doc}"
    );
    assert!(doc.contains("get_parameter(Name=name, WithDecryption=True)"), "{doc}");
}
