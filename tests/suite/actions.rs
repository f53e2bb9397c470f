//! Each built-in action against moto through the real binary, and `plan`, which reads but never
//! changes anything.

use std::io::{Read, Write};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, block_on, sdk};

fn run(t: &Test, text: &str) -> crate::common::Output {
    std::fs::write(t.path("r.md"), text).expect("write");
    t.run_args(&["run".into(), "r.md".into(), "--restart".into()])
}

#[test]
fn iam_checks() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint);
    // moto reports AccountMFAEnabled = 0: the check must fail and say why.
    let out = run(&t, "# MFA\n\n```aws iam.check-root-mfa id=mfa\n```\n");
    out.code_is(1);
    assert!(
        out.stderr
            .contains("MFA is not active for the root user of 123456789012 (AccountMFAEnabled = 0)"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("help: sign in as root, open Security credentials"),
        "{out:?}"
    );
    let out = run(&t, "# Quota\n\n```aws iam.check-role-quota id=q\nmin_free = 10\n```\n");
    out.code_is(0).stdout_has("quota=1000");
    let out = run(
        &t,
        "# Quota\n\n```aws iam.check-role-quota id=q\nmin_free = 5000\n```\n",
    );
    out.code_is(1).stderr_has("IAM roles left");
}

#[test]
fn organization_checks_and_listing() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint);
    let out = run(&t, "# M\n\n```aws organizations.check-management-account id=m\n```\n");
    assert_eq!(out.code, 1, "no organization yet: {out:?}");
    out.stderr_has("is not in an organization");
    let text = r#"# Org

```aws organizations.ensure-organization id=org
```

```aws organizations.check-management-account id=m
```

```aws organizations.ensure-account id=a
name = "acme-audit-prod"
email = "aws+audit@example.com"
```

```aws organizations.list-accounts id=l
name_pattern = "acme-.*"
```

```rhai id=show
print("ids: " + steps.l.ids.len());
#{ n: steps.l.ids.len() }
```
"#;
    let out = run(&t, text);
    out.code_is(0)
        .stdout_has("management_account_id=123456789012")
        .stdout_has("n=1");
}

#[test]
fn identity_store_wait_times_out_with_a_clear_message() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint);
    let text = r#"# Wait

```aws sso-admin.find-instance id=ic
```

```aws identitystore.wait-for-user id=w
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "nobody"
timeout = "1s"
```
"#;
    let out = run(&t, text);
    out.code_is(1);
    assert!(
        out.stderr
            .contains("timed out after 1s waiting for user nobody to be synced"),
        "{out:?}"
    );
}

#[test]
fn support_case_status_reads_the_case() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint);
    let text = r#"# Case

```aws support.ensure-case id=c
subject = "Activation help"
body = "Please activate."
```

```aws support.case-status id=s
case_id = "${steps.c.case_id}"
```
"#;
    // Without a confirmation the case text is shown and nothing is sent.
    let out = run(&t, text);
    out.code_is(3);
    assert!(
        out.stdout.contains("c sends this to AWS:") && out.stdout.contains("body: Please activate."),
        "{out:?}"
    );
    out.stderr_has("confirm = true under [steps.c]");
    let out = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    out.code_is(0).stdout_has("✓ s");
}

#[test]
fn net_reachability_reports_each_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let t = Test::new();
    let text = format!(
        "# Net\n\n```net check-reachable id=n\nurls = [\"http://127.0.0.1:{port}/start\", \"http://127.0.0.1:{closed}/login\"]\ntimeout = \"3s\"\n```\n"
    );
    let out = run(&t, &text);
    out.code_is(1).stderr_has("1 of 2 URLs unreachable");
    assert!(
        out.stderr.contains(&format!(
            "http://127.0.0.1:{closed}/login: connecting to 127.0.0.1:{closed} failed"
        )),
        "{out:?}"
    );
    let out = run(
        &t,
        &text.replace("timeout = \"3s\"", "timeout = \"3s\"\nrequire_all = false"),
    );
    out.code_is(0).stdout_has("failed=1");
}

#[test]
fn plan_reads_and_changes_nothing() {
    let moto = Moto::start();
    // Every request goes through the proxy, which records what was asked.
    let proxy = crate::common::fault_proxy::FaultProxy::start(&moto.endpoint, Default::default());
    let t = Test::new().aws(&proxy.endpoint);
    let text = r#"# Plan

```aws organizations.ensure-organization id=org
```

```aws sso-admin.find-instance id=ic
```

```manual id=person
confirm = "ok?"
```
"#;
    std::fs::write(t.path("r.md"), text).expect("write");
    let out = t.run_args(&["plan".into(), "r.md".into(), "--json".into()]);
    out.code_is(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let rows = &plan["steps"];
    assert_eq!(rows[0]["verdict"], "would-create", "{rows}");
    assert_eq!(rows[1]["verdict"], "check", "a read-only step is read");
    assert_eq!(rows[2]["verdict"], "person");
    let ops = proxy.operations();
    assert!(!ops.is_empty(), "plan read something");
    for (op, _) in &ops {
        assert!(
            ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)),
            "plan called {op}: {ops:?}"
        );
    }
    let org = block_on(async {
        runbook_plugins::aws::organizations::describe(&sdk(&moto.endpoint))
            .await
            .expect("describe")
    });
    assert!(org.is_none(), "plan created an organization");
}

/// `plan` walks the steps as a run would: scripts run, read-only steps read, so later steps
/// resolve; conditions are respected; fan-outs are planned per item; `--detailed-exitcode`
/// says 2 while something would change and 0 once nothing would.
#[test]
fn plan_resolves_past_reads_and_scripts_and_gates_ci_with_its_exit_code() {
    let moto = Moto::start();
    let proxy = crate::common::fault_proxy::FaultProxy::start(&moto.endpoint, Default::default());
    let t = Test::new().aws(&proxy.endpoint);
    let text = r#"# Plan deeper

```aws sso-admin.find-instance id=ic
```

```rhai id=names
#{ user: "ops", accounts: ["111111111111", "222222222222"] }
```

```aws identitystore.ensure-user id=user
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "${steps.names.user}"
display_name = "Ops"
given_name = "O"
family_name = "Ps"
email = "ops@example.com"
```

```rhai id=never if='steps.names.user == "nobody"'
#{}
```
"#;
    std::fs::write(t.path("r.md"), text).expect("write");
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan".to_string(), "r.md".into(), "--detailed-exitcode".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        t.run_args(&args)
    };
    let out = plan(&["--json"]);
    assert_eq!(out.code, 2, "changes pending: {out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let rows = v["steps"].as_array().expect("rows");
    let by = |id: &str| rows.iter().find(|r| r["step"] == id).cloned().unwrap_or_default();
    assert_eq!(by("ic")["verdict"], "check", "{v}");
    assert_eq!(by("ic")["kind"], "aws (reads)");
    assert_eq!(by("names")["verdict"], "computed");
    assert_eq!(by("names")["kind"], "script");
    assert_eq!(
        by("user")["verdict"],
        "would-create",
        "resolved past the read and the script: {v}"
    );
    assert!(by("user")["details"].to_string().contains("user ops"), "{v}");
    assert_eq!(by("never")["verdict"], "skipped", "{v}");
    let text_plan = plan(&[]);
    text_plan.stdout_has("changes pending");
    // Nothing was changed by planning.
    for (op, _) in proxy.operations() {
        assert!(
            ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)),
            "plan called {op}"
        );
    }
    let run = t.run_args(&["run".into(), "r.md".into()]);
    run.code_is(0);
    let after = plan(&[]);
    assert_eq!(after.code, 0, "nothing to do after the run: {after:?}");
    after.stdout_has("nothing to do");
}

/// `run --events -`: NDJSON on stdout, one event per line, each with the schema version, and the
/// lines for people on stderr.
#[test]
fn run_streams_ndjson_events_that_follow_the_schema() {
    let moto = Moto::start();
    let proxy = crate::common::fault_proxy::FaultProxy::start(
        &moto.endpoint,
        crate::common::fault_proxy::Rules {
            in_progress_reads: 2,
            ..Default::default()
        },
    );
    let t = Test::new().aws(&proxy.endpoint).file(
        "r.md",
        "# Events\n\n```aws organizations.ensure-organization id=org\n```\n\n```aws organizations.ensure-account id=acct for-each='[\"ev-a-prod\", \"ev-b-prod\"]'\nname = \"${item}\"\nemail = \"${item}@example.com\"\n```\n\n```manual id=ok\nconfirm = \"ok?\"\n```\n",
    );
    let out = t.run_args(&["run".into(), "r.md".into(), "--events".into(), "-".into()]);
    assert_eq!(out.code, 3, "waits at the manual step: {out:?}");
    assert!(
        out.stderr.contains("▶ org"),
        "the lines for people are on stderr: {out:?}"
    );
    const KNOWN: &[&str] = &[
        "run-started",
        "inputs-changed",
        "step-started",
        "intent",
        "requested",
        "polling",
        "note",
        "warning",
        "log",
        "confirmed",
        "item-finished",
        "item-failed",
        "fanout-summary",
        "step-finished",
        "step-skipped",
        "step-failed",
        "waiting",
        "interrupted",
        "run-finished",
    ];
    let mut seen = Vec::new();
    for line in out.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["v"], 1, "{line}");
        assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
        assert!(v["run"].as_str().is_some_and(|r| !r.is_empty()), "{line}");
        let event = v["event"].as_str().unwrap_or_default().to_string();
        assert!(KNOWN.contains(&event.as_str()), "undocumented event `{event}`: {line}");
        if event == "intent" || event == "requested" {
            assert!(v["call"].as_str().is_some() && v["step"].as_str().is_some(), "{line}");
        }
        seen.push(event);
    }
    let order = |e: &str| {
        seen.iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("no {e}: {seen:?}"))
    };
    assert!(order("run-started") < order("step-started"));
    assert!(order("intent") < order("requested"));
    assert!(seen.contains(&"polling".to_string()), "{seen:?}");
    assert_eq!(seen.iter().filter(|e| *e == "item-finished").count(), 2, "{seen:?}");
    assert!(order("waiting") < order("run-finished"));
    assert_eq!(seen.last().map(String::as_str), Some("run-finished"));
}

// Item 1 of issue #16: credentials. A new account has only its root user, and AWS says never to
// create access keys for it: runbook runs from CloudShell on session credentials, and says so
// loudly when the calls are signed with long-term root keys.
#[test]
fn long_term_root_keys_are_warned_about_and_session_credentials_are_not() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_caller: true,
            ..Rules::default()
        },
    );
    let text = "# Who\n\n```aws sts.whoami id=me\n```\n";
    let keys = Test::new()
        .aws(&proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIAROOTKEY000000001")
        .file("r.md", text);
    let out = run(&keys, text);
    assert_eq!(out.code, 0, "a warning, not a failure: {out:?}");
    out.stdout_has("credentials=long-term is_root=true");
    assert!(
        out.all()
            .contains("these are long-term access keys of the ROOT user of 123456789012"),
        "{out:?}"
    );
    assert!(out.all().contains("Run from AWS CloudShell"), "{out:?}");
    // CloudShell's credentials: a session (ASIA... with a token).
    let session = Test::new()
        .aws(&proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", "ASIAROOTSESSION00001")
        .env("AWS_SESSION_TOKEN", "session-token")
        .file("r.md", text);
    let out = run(&session, text);
    out.code_is(0).stdout_has("credentials=temporary is_root=true");
    assert!(!out.all().contains("long-term access keys"), "{out:?}");
    assert!(out.all().contains("you are signed in as the root user"), "{out:?}");
    // An IAM user's long-term keys are not the root's: no root-key warning.
    let user = Test::new()
        .aws(&moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIAUSERKEY000000001");
    let out = run(&user, text);
    out.code_is(0).stdout_has("credentials=long-term is_root=false");
    assert!(!out.all().contains("ROOT user"), "{out:?}");
}

// Item 1: the root MFA check answers only for the account it was asked about.
#[test]
fn the_root_mfa_check_refuses_to_report_on_another_account() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            root_mfa: true,
            ..Rules::default()
        },
    );
    let t = Test::new().aws(&proxy.endpoint);
    let check = |account: &str| {
        run(
            &t,
            &format!("# MFA\n\n```aws iam.check-root-mfa id=mfa\naccount_id = \"{account}\"\n```\n"),
        )
    };
    let other = check("111122223333");
    other.code_is(1);
    assert!(
        other
            .stderr
            .contains("the credentials are for account 123456789012, not for account 111122223333 that you named"),
        "{other:?}"
    );
    assert_eq!(
        proxy.calls("GetAccountSummary"),
        0,
        "nothing was read about the wrong account"
    );
    let same = check("123456789012");
    same.code_is(0);
    assert!(
        same.stdout.contains("account_id=123456789012 mfa_enabled=true"),
        "{same:?}"
    );
}

// Items 3 and 7 of issue #16: the checks a new account must pass, and a list of account names
// checked whole before anything is created.
#[test]
fn new_account_checks_and_account_names_checked_as_a_whole() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint);
    // No organization yet: a new account passes when the organization may come later.
    let out = run(
        &t,
        "# M\n\n```aws organizations.check-management-account id=m\norganization_optional = true\nrequire_all_features = true\n```\n",
    );
    out.code_is(0).stdout_has("in_organization=false");
    assert!(out.all().contains("is in no organization yet"), "{out:?}");
    // Every problem of a list is named at once.
    let out = run(
        &t,
        "# N\n\n```aws organizations.check-account-names id=n\nnames = [\"AnyCompany-audit-prod\", \" \", \"Payments\", \"anycompany-audit-PROD\", \"x\"]\nemail_template = \"aws+{name}@example.com\"\nnaming_pattern = \"[A-Za-z0-9]+(-[A-Za-z0-9]+){2,}\"\n```\n",
    );
    out.code_is(1);
    for says in [
        "3 problem(s) with the account list, nothing was created",
        "`Payments` does not follow the naming standard",
        "`anycompany-audit-PROD` is given twice",
        "`x` does not follow the naming standard",
    ] {
        assert!(out.stderr.contains(says), "{says}: {out:?}");
    }
    let out = run(
        &t,
        "# N\n\n```aws organizations.check-account-names id=n\nnames = [\"AnyCompany-audit-prod\", \"paulo-santos-testaccount\"]\nemail_template = \"aws+{name}@example.com\"\nnaming_pattern = \"[A-Za-z0-9]+(-[A-Za-z0-9]+){2,}\"\n```\n",
    );
    assert_eq!(out.code, 0, "the guide's own examples pass: {out:?}");
    out.stdout_has("count=2");
    // A user looked up once, not waited for.
    let out = run(
        &t,
        "# U\n\n```aws sso-admin.find-instance id=ic\n```\n\n```aws identitystore.find-user id=u\nidentity_store_id = \"${steps.ic.identity_store_id}\"\nuser_name = \"nobody\"\n```\n",
    );
    out.code_is(0).stdout_has("found=false");
    assert!(out.all().contains("IAM Identity Center has no user nobody"), "{out:?}");
}
