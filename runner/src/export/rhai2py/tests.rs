//! Differential tests: each script runs in Rhai (the sandbox the runner uses) and, translated,
//! in `python3`; both must give the same outputs, or both fail.

use serde_json::{Value, json};

use super::{Scope, Ty, script};

/// References read from the events the handler is given: `inputs.x`, `steps.a.b`.
struct Values;

impl Scope for Values {
    fn input(&mut self, name: &str) -> Result<(String, Ty), String> {
        Ok((format!("events[\"inputs\"][{:?}]", name), Ty::Str))
    }
    fn step(&mut self, id: &str, field: Option<&str>) -> Result<(String, Ty), String> {
        Ok(match field {
            Some(f) => (format!("events[\"steps\"][{id:?}][{f:?}]"), Ty::Unknown),
            None => (format!("events[\"steps\"][{id:?}]"), Ty::Map),
        })
    }
    fn item(&mut self) -> Result<(String, Ty), String> {
        Err("no item".into())
    }
    fn run(&mut self, _: &str) -> Result<(String, Ty), String> {
        Ok(("False".into(), Ty::Bool))
    }
}

fn rhai(code: &str, values: &Value) -> Result<Value, String> {
    let mut scope = rhai::Scope::new();
    for k in ["inputs", "steps"] {
        let d = rhai::serde::to_dynamic(&values[k]).map_err(|e| e.to_string())?;
        scope.push_constant(k, d);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(crate::sandbox::run_script(
        code.into(),
        scope,
        Default::default(),
        None,
        None,
    ))
    .map_err(|e| e.message)
}

fn python(code: &str, values: &Value) -> Result<Value, String> {
    let t = script(code, &mut Values).map_err(|r| format!("{r:?}"))?;
    let program = format!(
        "{}\n\ndef handler(events, context):\n{}\nimport json, sys\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))\n",
        super::super::script::PRELUDE,
        t.body
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &program, &values.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).map_err(|e| e.to_string())
}

/// Both agree; returns whether both succeeded (a test that only ever saw failures proves nothing).
#[track_caller]
fn same(code: &str, values: Value) -> bool {
    let (r, p) = (rhai(code, &values), python(code, &values));
    match (&r, &p) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{code}");
            true
        }
        (Err(_), Err(_)) => false,
        _ => panic!("Rhai and Python disagree on\n{code}\nRhai: {r:?}\nPython: {p:?}"),
    }
}

#[test]
fn the_bundled_runbooks_scripts_agree() {
    let part2 = include_str!("../../../../runbooks/part-2-identity-center.md");
    let password = part2
        .split("```rhai id=password-setup")
        .nth(1)
        .and_then(|s| s.split_once('\n'))
        .map(|(_, b)| b.split("```").next().unwrap_or(""))
        .unwrap_or("");
    assert!(password.contains("password_setup"));
    for option in ["one-time-password", "reset-email", "email-otp"] {
        assert!(same(
            password,
            json!({"inputs": {"admin_user": "cloud.admin", "admin_email": "a@example.com", "password_setup": option},
                   "steps": {"identity_center": {"portal_url": "https://d-1.awsapps.com/start"}}}),
        ));
    }
    let admin = "let id = if inputs.identity_source == \"identity-center-directory\" {\n    steps.admin_user.user_id\n} else {\n    steps.synced_user.user_id\n};\nif id == () || id == \"\" {\n    fail(\"no user id for \" + inputs.admin_user);\n}\n#{ user_id: id }";
    for (source, a, s, ok) in [
        ("identity-center-directory", "u-1", "", true),
        ("external-idp", "", "u-2", true),
        ("external-idp", "u-1", "", false),
    ] {
        let v = json!({"inputs": {"identity_source": source, "admin_user": "x"},
                       "steps": {"admin_user": {"user_id": a}, "synced_user": {"user_id": s}}});
        assert_eq!(same(admin, v), ok, "{source}");
    }
    let details = "let name = inputs.account_name;\nif name.len() > 50 { fail(\"too long\"); }\nlet local = inputs.account_email.split(\"@\")[0];\nif local.contains(\".\") && !local.contains(\"admin\") {\n    warn(inputs.account_email + \" looks like a person's\");\n}\n#{ name: name, email: inputs.account_email }";
    let long = "n".repeat(51);
    for (name, email, ok) in [
        ("a-b-c", "first.last@example.com", true),
        (long.as_str(), "it.admins@example.com", false),
    ] {
        let v = json!({"inputs": {"account_name": name, "account_email": email}, "steps": {}});
        assert_eq!(same(details, v), ok, "{name}");
    }
    let urls = "let urls = [\"https://\" + inputs.home_region + \".signin.aws/platform/login\"];\nif inputs.identity_store_id != \"\" {\n    urls.push(\"https://\" + inputs.identity_store_id + \".awsapps.com/start\");\n}\n#{ urls: urls }";
    for store in ["", "d-0123456789"] {
        assert!(same(
            urls,
            json!({"inputs": {"home_region": "eu-west-1", "identity_store_id": store}, "steps": {}})
        ));
    }
    let verdict = "let me = steps.whoami;\nlet kinds = #{ \"root\": \"the root user\", \"assumed-role\": \"an IAM role (\" + me.name + \")\" };\nlet kind = kinds[me.kind];\nif kind == () { kind = \"an identity of an unknown kind\"; }\n#{ kind: me.kind, summary: kind }";
    for k in ["root", "assumed-role", "federated"] {
        assert!(same(
            verdict,
            json!({"inputs": {}, "steps": {"whoami": {"kind": k, "name": "Deploy/ci"}}})
        ));
    }
}

#[test]
fn small_programs_agree() {
    let v = json!({"inputs": {"n": "3", "s": "a,b,,c"}, "steps": {"x": {"m": {"k": 1}, "l": [1, 2, 3]}}});
    for code in [
        "#{ a: \"n=\" + 3 + true + () }",
        "#{ a: 1 + 2 * 3 - 4 }",
        "let t = 0;\nfor i in 0..4 { t += i; }\n#{ t: t }",
        "let t = 0;\nfor i in 0..=4 { if i == 2 { continue; } if i == 4 { break; } t += i; }\n#{ t: t }",
        "let xs = inputs.s.split(\",\");\n#{ n: xs.len(), e: xs[2].is_empty(), last: xs[-1] }",
        "#{ a: steps.x.m.k, b: steps.x.m.nope, c: steps.x.l[1] }",
        "#{ a: steps.x.l[7] }",
        "let s = \"  Hi  \";\ns.trim();\ns.replace(\"H\", \"h\");\n#{ s: s.to_upper(), st: s.starts_with(\"h\"), en: s.ends_with(\"i\") }",
        "let v = if inputs.n == \"3\" { \"three\" } else { \"other\" };\n#{ v: v, w: `n is ${inputs.n}!`, c: () ?? \"dflt\" }",
        "#{ a: [1, 2].contains(2), m: #{ k: 1 }.contains(\"k\"), s: \"abc\".contains(\"bc\") }",
        "fail(\"stop \" + inputs.n);",
    ] {
        let fails = code.starts_with("fail") || code.contains("l[7]");
        assert_eq!(same(code, v.clone()), !fails, "{code}");
    }
}
