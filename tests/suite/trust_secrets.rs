//! Attacks on secrets and the script sandbox: nothing prints, stores or quotes a secret (plan, list,
//! hand-over files, journal, errors, derived values, fan-out items), and scripts stay bounded.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, block_on, sdk};
use crate::trust::account_names;

#[test]
fn plan_never_prints_a_secret() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint).file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n```aws organizations.ensure-account id=acct\nname = \"acct-${inputs.pw}\"\nemail = \"x@example.com\"\n```\n\n```aws organizations.ensure-account id=upper\nname = \"u-${inputs.pw.to_upper()}\"\nemail = \"y@example.com\"\n```\n",
    );
    block_on(async {
        runbook_plugins::Registry::builtin()
            .get("organizations.ensure-organization")
            .expect("action")
            .apply(&sdk(&moto.endpoint), serde_json::json!({}))
            .await
            .expect("org");
    });
    for json in [false, true] {
        let mut args = vec![
            "plan".to_string(),
            "r.md".into(),
            "--input".into(),
            "pw=hunter2xyz".into(),
        ];
        if json {
            args.push("--json".into());
        }
        let out = t.run_args(&args);
        // A change made of a secret is not looked up: what the look-up finds would tell it.
        out.code_is(0)
            .stdout_has("its request is made of a secret: a plan does not send it");
        assert!(!out.all().contains("hunter2xyz"), "{out:?}");
        assert!(!out.all().contains("HUNTER2XYZ"), "a derived secret: {out:?}");
    }
}

#[test]
fn list_json_never_prints_a_secret_default() {
    let t = Test::new().file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\ndefault = \"s3cr3t-default\"\n```\n\n```rhai id=a\n#{}\n```\n",
    );
    let out = t.run_args(&["list".into(), "--json".into(), "r.md".into()]);
    out.code_is(0).stdout_has("\"secret\": true");
    assert!(!out.all().contains("s3cr3t-default"), "{out:?}");
    // A manual step's secret question with a default: its body is listed, the default is not.
    let t = Test::new().file(
        "sd.md",
        "# SD\n\n```manual id=m\n[ask.t]\nprompt = \"T\"\nsecret = true\ndefault = \"ASKDEFAULTSECRET2\"\n```\n",
    );
    let out = t.run_args(&["list".into(), "--json".into(), "sd.md".into()]);
    out.code_is(0).stdout_has("[ask.t]");
    assert!(!out.all().contains("ASKDEFAULTSECRET2"), "{out:?}");
}

#[test]
fn a_basic_plan_hand_over_keeps_secrets_out_of_the_file_and_its_name() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            subscription_required: true,
            ..Rules::default()
        },
    );
    let t = Test::new().aws(&proxy.endpoint).env("AWS_MAX_ATTEMPTS", "1").file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n```aws support.ensure-case id=case\nsubject = \"Reset for Tok3nSecret\"\nbody = \"The code is ${inputs.pw}, and again ${inputs.pw}\"\n```\n",
    );
    let text = std::fs::read_to_string(t.path("r.md"))
        .expect("read")
        .replace("Tok3nSecret", "${inputs.pw}");
    std::fs::write(t.path("r.md"), text).expect("write");
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "pw=Tok3nSecret".into(),
        "--yes".into(),
    ]);
    out.code_is(0);
    let written = t.written();
    assert!(
        written.contains("Support case to open by hand"),
        "the hand-over was written"
    );
    assert!(!written.to_lowercase().contains("tok3nsecret"), "{written}");
    assert!(!out.all().to_lowercase().contains("tok3nsecret"), "{out:?}");
    let mut found = Vec::new();
    for e in walk(t.path(".runbook")) {
        if e.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("support-case-"))
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&e).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", e.display());
            found.push(e);
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
}

pub(crate) fn walk(dir: std::path::PathBuf) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_secret_answer_is_asked_again_on_resume_never_replaced_by_the_mask() {
    let t = Test::new()
        .file(
            "r.md",
            "# R\n\n```manual id=ask\n[ask.pin]\nprompt = \"PIN\"\nsecret = true\npattern = \"[0-9]{4}\"\n```\n\n```manual id=later\nconfirm = \"later?\"\n```\n\n```rhai id=use public=ok\nif steps.ask.pin == \"********\" { fail(\"the mask was used as the PIN\") }\n#{ ok: steps.ask.pin.len() == 4 }\n```\n",
        )
        .file("first.toml", "[steps.ask]\nconfirm = true\npin = \"4821\"\n")
        .file("later.toml", "[steps.later]\nconfirm = true\n")
        .file("both.toml", "[steps.ask]\nconfirm = true\npin = \"4821\"\n[steps.later]\nconfirm = true\n");
    let first = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "first.toml".into()]);
    assert_eq!(first.code, 3, "stops at `later`: {first:?}");
    let resumed = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "later.toml".into()]);
    assert_eq!(
        resumed.code, 3,
        "the PIN is asked again, not taken from the journal: {resumed:?}"
    );
    resumed.stderr_has("step `ask`");
    let done = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "both.toml".into()]);
    done.code_is(0).stdout_has("ok=true");
    // The answers files sit beside the runbook: only what runbook wrote is searched.
    let written = crate::common::transcripts(&t.path(".runbook"))
        + crate::common::run_dirs(&t.path(".runbook"))
            .iter()
            .map(|d| std::fs::read_to_string(d.join("state.json")).unwrap_or_default())
            .collect::<String>()
            .as_str();
    assert!(written.contains("confirmed"), "{written}");
    assert!(!written.contains("\"4821\""), "the PIN was written: {written}");
    assert!(!done.all().contains("4821"), "{done:?}");
    // The step identity is keyed: no file holds an unkeyed digest a PIN could be guessed from.
    use sha2::Digest;
    let plain = hex::encode(sha2::Sha256::digest(b"4821"));
    assert!(!written.contains(&plain[..16]), "an unkeyed digest of the PIN");
}

#[test]
fn values_derived_from_a_secret_are_secret_too() {
    let t = Test::new().file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n```rhai id=derive public=n\nlet s = inputs.pw;\nprint(s.sub_string(1));\nprint(s.to_upper());\nlet chars = [];\nfor c in s.chars() { chars.push(c.to_string()); }\n#{ tail: s.sub_string(1), upper: s.to_upper(), chars: chars, n: 1 }\n```\n\n```rhai id=after\n#{ again: steps.derive.tail + \"!\" }\n```\n",
    );
    let out = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "pw=Hunter2Zq".into()]);
    out.code_is(0);
    let all = format!("{}{}", out.all(), t.written());
    for leak in ["Hunter2Zq", "unter2Zq", "HUNTER2ZQ", "unter2Zq!"] {
        assert!(!all.contains(leak), "`{leak}` leaked:\n{all}");
    }
    assert!(out.stdout.contains("n=1"), "a public output stays visible: {out:?}");
}

#[test]
fn scripts_cannot_reach_aws_or_the_network() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new().aws(&proxy.endpoint).file(
        "r.md",
        "# R\n\n```rhai id=sneaky\nplugin(\"organizations.ensure-account\", #{ name: \"x-prod\", email: \"x@example.com\" })\n```\n",
    );
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(1);
    assert!(out.stderr.contains("r.md:"), "located: {out:?}");
    out.stderr_has("plugin");
    assert_eq!(proxy.forwarded(), 0, "a script reached AWS");
    assert!(account_names(&moto.endpoint).is_empty());
}

#[test]
fn a_map_of_distinct_large_strings_is_stopped_by_the_memory_bound() {
    // Each string is its own 1 MB: Rhai bounds each one, not their sum.
    let t = Test::new().file(
        "r.md",
        "# R\n\n```rhai id=bomb\nlet m = #{};\nlet s = \"x\";\ns.pad(1000000, \"y\");\nfor i in 0..3000 { m[\"k\" + i] = s + i; }\nm\n```\n",
    );
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(1).stderr_has("MiB of memory");
}

#[test]
fn a_map_bomb_fails_the_step_with_a_located_error() {
    let t = Test::new().file(
        "r.md",
        "# R\n\n```rhai id=bomb\nlet m = #{};\nlet s = \"x\";\ns.pad(1000000, \"y\");\nfor i in 0..1500 { m[\"k\" + i] = s; }\nm\n```\n",
    );
    let started = std::time::Instant::now();
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(1).stderr_has("r.md:");
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
    let state = walk(t.path(".runbook"));
    let total: u64 = state
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    assert!(total < 1 << 20, "the journal grew to {total} bytes");
}

#[test]
fn deep_values_fail_the_step_and_the_journal_stays_readable() {
    for depth in [130, 50_000] {
        let t = Test::new().file(
            "r.md",
            format!("# R\n\n```rhai id=deep\nlet x = 1;\nfor i in 0..{depth} {{ x = [x]; }}\n#{{ v: x }}\n```\n"),
        );
        let out = t.run_args(&["run".into(), "r.md".into()]);
        assert_eq!(out.code, 1, "depth {depth}: {out:?}");
        // Deep values are refused where the script returns them; building one 50,000 deep costs
        // the script its deadline first. Either way the step fails, the process does not.
        let why = if depth == 130 {
            "nested deeper than 32"
        } else {
            "deadline"
        };
        assert!(out.stderr.contains(why), "depth {depth}: {out:?}");
        let status = t.run_args(&["status".into(), "r.md".into()]);
        assert_eq!(status.code, 0, "the journal reads back: {status:?}");
        let again = t.run_args(&["run".into(), "r.md".into()]);
        again.code_is(1);
    }
}

#[test]
fn a_script_honours_its_timeout() {
    let t = Test::new().file("r.md", "# R\n\n```rhai id=spin timeout=200ms\nloop { }\n```\n");
    let started = std::time::Instant::now();
    let out = t.run_args(&["run".into(), "r.md".into()]);
    let took = started.elapsed();
    out.code_is(1).stderr_has("timeout=");
    assert!(took.as_secs_f64() < 5.0, "ran {took:?}, past its timeout");
}

#[test]
fn a_short_secret_never_corrupts_the_journal_nor_comes_back_as_a_mask() {
    let moto = Moto::shared();
    // A secret that is part of the journal's own words.
    let t = Test::new().file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pin]\nprompt = \"pin\"\nsecret = true\n```\n\n```rhai id=a\n#{ ok: true }\n```\n",
    );
    for _ in 0..2 {
        let out = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "pin=one".into()]);
        out.code_is(0);
    }
    let status = t.run_args(&["status".into(), "r.md".into()]);
    status.code_is(0);
    // A plain value that happens to equal a secret is masked in the journal, and so is never
    // read back from it as a value.
    let t = Test::new().aws(&moto.endpoint).file(
        "r.md",
        "# R\n\n```runbook\n[inputs.year]\nprompt = \"year\"\n[inputs.pin]\nprompt = \"pin\"\nsecret = true\n```\n\n```aws organizations.ensure-organization id=org\n```\n\n```rhai id=names\n#{name: \"acct-\" + inputs.year}\n```\n\n```manual id=approve\nconfirm = \"Approve creating ${steps.names.name}?\"\n```\n\n```aws organizations.ensure-account id=acct\nname = \"${steps.names.name}\"\nemail = \"ops@example.com\"\n```\n",
    ).file("ans.toml", "[steps.approve]\nconfirm = true\n");
    let first = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "year=2024".into(),
        "--input".into(),
        "pin=2024".into(),
    ]);
    first.code_is(3);
    let second = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "pin=2024".into(),
        "--answers".into(),
        "ans.toml".into(),
    ]);
    second.code_is(0);
    let names = account_names(&moto.endpoint);
    assert!(names.contains(&"acct-2024".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains('*')),
        "a mask was used as a value: {names:?}"
    );
}

/// Items of a fan-out over a secret would be shown one by one (their keys, their count): `check`
/// refuses the list, located, and nothing leaks from the attempt (attacker finding: a fan-out
/// over `inputs.pw.to_chars()` printed its item keys).
#[test]
fn a_fan_out_over_a_secret_is_refused_and_tells_nothing() {
    let t = Test::new().file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n[inputs.pin]\nprompt = \"pin\"\nsecret = true\n```\n\n```rhai id=s for-each='[inputs.pw]'\nprint(\"item upper \" + item.to_upper());\n#{up: item.to_upper()}\n```\n\n```rhai id=n for-each='[parse_int(inputs.pin)]'\n#{v: item, w: item + 1}\n```\n\n```rhai id=c for-each='inputs.pw.to_chars()'\n#{}\n```\n\n```rhai id=keys\nlet m = #{}; m[inputs.pw] = 1; m[inputs.pw.to_upper()] = \"x\"; m\n```\n\n```rhai id=later for-each='steps.keys.values()'\n#{}\n```\n",
    );
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "pw=hunter2".into(),
        "--input".into(),
        "pin=987654".into(),
    ]);
    out.code_is(2)
        .stderr_has("r.md:12:24: error")
        .stderr_has("`for-each=` reads the secret `inputs.pw`")
        .stderr_has("`for-each=` reads the secret `inputs.pin`")
        .stderr_has("`for-each=` reads the secret `steps.keys`");
    let all = out.all() + t.written().as_str();
    for leak in ["hunter2", "HUNTER2", "987654", "987655", "\"h\",\"u\""] {
        assert!(!all.contains(leak), "`{leak}` leaked:\n{all}");
    }
}

/// A script that reads a secret and fails says so, and nothing else: not its message, not where
/// it failed (attacker finding: a ladder of `if c == N { fail() }` spelled the secret through the
/// line and column of each failure). A condition over a secret is refused by `check`.
#[test]
fn failures_of_code_that_reads_a_secret_never_quote_it() {
    let ladder = (0..10)
        .map(|d| format!("if inputs.pw.len() == {d} {{ fail(\"x\") }}"))
        .collect::<Vec<_>>()
        .join("\n");
    for (i, (step, code)) in [
        (
            "```rhai id=f\nfail(\"bad: \" + inputs.pw.to_upper())\n```".to_string(),
            1,
        ),
        (format!("```rhai id=ladder\n{ladder}\n#{{}}\n```"), 1),
        (
            "```rhai id=g if='Fn(inputs.pw.to_upper()).call()'\n#{}\n```".to_string(),
            2,
        ),
        (
            "```rhai id=h if='parse_int(inputs.pw.to_upper()) == 1'\n#{}\n```".to_string(),
            2,
        ),
    ]
    .iter()
    .enumerate()
    {
        let t = Test::new().file(
            "r.md",
            format!("# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n{step}\n"),
        );
        let out = t.run_args(&["run".into(), "r.md".into(), "--input".into(), "pw=hunter2".into()]);
        assert_eq!(out.code, *code, "case {i}: {out:?}");
        let all = out.all() + t.written().as_str();
        assert!(!all.contains("HUNTER2") && !all.contains("hunter2"), "case {i}:\n{all}");
        if *code == 1 {
            assert!(all.contains("withheld"), "case {i}: {out:?}");
            // Only the step's own place is named: no line of the script.
            let places: Vec<&str> = out.stderr.matches("r.md:").collect();
            assert_eq!(places.len(), 1, "case {i}: {out:?}");
            out.stderr_has("r.md:9:1: error");
        } else {
            out.stderr_has("reads the secret `inputs.pw`");
        }
    }
}

#[test]
fn short_pieces_of_a_secret_are_masked_as_a_whole() {
    let moto = Moto::shared();
    let t = Test::new().aws(&moto.endpoint).file(
        "r.md",
        "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n```manual id=m\ninstructions = \"chars: ${inputs.pw[0]}.${inputs.pw[1]}.${inputs.pw[2]}.${inputs.pw[3]}\"\n```\n\n```aws organizations.ensure-account id=acct\nname = \"x${inputs.pw[0]}.${inputs.pw[1]}.${inputs.pw[2]}\"\nemail = \"x@example.com\"\n```\n",
    );
    let out = t.run_args(&[
        "run".into(),
        "r.md".into(),
        "--input".into(),
        "pw=hunter2".into(),
        "--yes".into(),
    ]);
    assert!(!out.all().contains("h.u.n"), "{out:?}");
    let plan = t.run_args(&[
        "plan".into(),
        "r.md".into(),
        "--input".into(),
        "pw=hunter2".into(),
        "--json".into(),
    ]);
    assert!(!plan.all().contains("h.u.n"), "{plan:?}");
}

#[test]
fn a_secret_with_a_control_character_is_masked_on_the_terminal_too() {
    let t = Test::new()
        .file(
            "r.md",
            "# R\n\n```runbook\n[inputs.pw]\nprompt = \"pw\"\nsecret = true\n```\n\n```manual id=m\ninstructions = \"Use the password ${inputs.pw} to sign in.\"\n```\n\n```rhai id=f\nfail(\"login failed for \" + inputs.pw)\n```\n",
        )
        .file("a.toml", "[inputs]\npw = \"hunter2\\r\"\n[steps.m]\nconfirm = true\n");
    let out = t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "a.toml".into()]);
    out.code_is(1);
    assert!(!out.all().contains("hunter2"), "{out:?}");
}

#[test]
fn map_keys_count_against_the_memory_bound() {
    let t = Test::new().file(
        "r.md",
        "# R\n\n```rhai id=a timeout=60s\nlet s = \"x\"; for i in 0..19 { s += s; }\nlet m = #{}; for i in 0..5000 { m[s + i] = 1; }\n#{n: m.len()}\n```\n",
    );
    let out = t.run_args(&["run".into(), "r.md".into()]);
    out.code_is(1).stderr_has("MiB of memory");
}

#[test]
fn a_steps_timeout_bounds_its_expressions_too() {
    let big = "x".repeat(2500);
    let t = Test::new().file(
        "r.md",
        format!("# R\n\n```runbook\n[inputs.big]\ndefault = \"{big}\"\n```\n\n```manual id=a for-each='[1,2,3,4]' timeout=1s\ninstructions = \"${{ inputs.big.to_chars().reduce(|a, x| [a]).len() }}\"\n```\n"),
    );
    let started = std::time::Instant::now();
    let out = t.run_args(&["run".into(), "r.md".into(), "--yes".into()]);
    out.code_is(1).stderr_has("timeout=");
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
}

/// A secret's `choices` are the secret: `check` refuses them, at their place, so no site, list or
/// error message can show them.
#[test]
fn a_secret_with_choices_is_refused() {
    let t = Test::new().file(
        "s.md",
        "# S\n\n```runbook\n[inputs.pw]\nsecret = true\nchoices = [\"CANARY-hunter2-only\"]\n```\n\n```rhai id=x\n#{ n: inputs.pw.len() }\n```\n",
    );
    t.run_args(&["check".into(), "s.md".into()])
        .code_is(2)
        .stderr_has("secret `pw` lists its choices in the runbook");
}
