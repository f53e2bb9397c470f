//! `runbook check`: exact diagnostics for malformed runbooks, and clean runs over the bundled
//! runbooks, the book's and README's examples, and real-world Markdown.

use crate::common::{Test, repo};

/// Checks `text` as `r.md` and returns the first line of each diagnostic.
pub(crate) fn diagnose(text: &[u8]) -> (i32, Vec<String>) {
    let out = Test::new().file("r.md", text).args(["check", "r.md"]).run();
    assert_ne!(out.code, 101, "panicked: {out:?}");
    let lines = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("r.md"))
        .map(String::from)
        .collect();
    (out.code, lines)
}

#[track_caller]
pub(crate) fn error_is(text: &str, expected: &str) {
    let (code, lines) = diagnose(text.as_bytes());
    assert_eq!(code, 2, "{text}\n{lines:?}");
    assert_eq!(lines.first().map(String::as_str), Some(expected), "all: {lines:#?}");
}

#[test]
fn bad_toml_value_on_a_body_line() {
    error_is(
        "# T\n\n```aws iam.check-role-quota\n\nmin_free = 1x\n```\n",
        "r.md:5:12: error: invalid TOML: string values must be quoted, expected literal string",
    );
}

#[test]
fn unknown_parameter_key() {
    error_is(
        "# T\n\n```aws iam.check-role-quota\nmin_fre = 3\n```\n",
        "r.md:4:1: error: unknown parameter `min_fre` for `iam.check-role-quota`",
    );
}

#[test]
fn rhai_syntax_error_on_the_third_line_of_a_block() {
    error_is(
        "# T\n\n## Compute\n\n```rhai\nlet a = 1;\nlet b = 2;\nlet c = a +* b;\n#{ c: c }\n```\n",
        "r.md:8:12: error: Rhai: Unexpected '*'",
    );
}

#[test]
fn a_timeout_without_a_unit() {
    error_is(
        "# T\n\n```aws sts.whoami timeout=15\n```\n",
        "r.md:3:27: error: timeout `15` has no unit",
    );
}

#[test]
fn duplicate_step_id() {
    error_is(
        "# T\n\n```rhai id=x\n1\n```\n\n```rhai id=x\n2\n```\n",
        "r.md:7:12: error: duplicate step id `x` (first used at 3:12)",
    );
}

#[test]
fn undefined_step_output_reference() {
    error_is(
        "# T\n\n```manual id=portal\ninstructions = \"Open ${steps.x.url}\"\n```\n",
        "r.md:4:24: error: no step `x` in this runbook",
    );
}

#[test]
fn second_runbook_block() {
    error_is(
        "# T\n\n```runbook\n[inputs.a]\n```\n\n```runbook\n[inputs.b]\n```\n",
        "r.md:7:4: error: a second `runbook` block",
    );
}

#[test]
fn invalid_input_pattern() {
    error_is(
        "# T\n\n```runbook\n[inputs.user]\nprompt = \"User\"\npattern = \"[a-z\"\n```\n",
        "r.md:6:11: error: invalid pattern for `user`: unclosed character class",
    );
}

#[test]
fn quoted_attribute_left_open() {
    error_is(
        "# T\n\n```aws sts.whoami if='inputs.a == 1\n```\n",
        "r.md:3:22: error: quoted value of `if` is never closed",
    );
}

#[test]
fn non_utf8_file() {
    let (code, lines) = diagnose(b"# T\n\nok line\nbad \xff byte\n");
    assert_eq!(code, 2);
    assert_eq!(
        lines,
        ["r.md:4:5: error: not valid UTF-8 (byte 0xff at offset 17); runbooks must be UTF-8 text"]
    );
}

#[test]
fn unknown_action_suggests_the_closest() {
    let out = Test::new()
        .file("r.md", "# T\n\n```aws sts.whoamy\n```\n")
        .args(["check", "r.md"])
        .run();
    out.code_is(2);
    assert_eq!(
        out.stderr,
        "r.md:3:8: error: unknown aws action `sts.whoamy`\n  |\n3 | ```aws sts.whoamy\n  |        ^^^^^^^^^^\n  = help: did you mean `sts.whoami`?\nchecked 1 runbook (1 step): 1 error, 0 warnings\n"
    );
}

/// A name whose verb takes something away is never "corrected" to one that adds it.
#[test]
fn suggestions_never_offer_the_opposite_effect() {
    // By edit distance `identitystore.ensure-user` (5) is nearer to `disable-user` than
    // `identitystore.remove-user` (6), and was the one offered.
    let out = Test::new()
        .file(
            "r.md",
            "# T\n\n```aws identitystore.disable-user id=d\nuser_name = \"x\"\n```\n",
        )
        .args(["check", "r.md"])
        .run();
    out.code_is(2);
    assert!(
        out.stderr.contains("unknown aws action `identitystore.disable-user`"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("did you mean `identitystore.remove-user`?"),
        "{out:?}"
    );
    // The same distance in the same direction is still offered.
    let out = Test::new()
        .file("r.md", "# T\n\n```aws identitystore.ensure-usr id=d\n```\n")
        .args(["check", "r.md"])
        .run();
    assert!(
        out.stderr.contains("did you mean `identitystore.ensure-user`?"),
        "{out:?}"
    );
}

/// Typed strings are checked at `check`, located at the value, with examples: a session length
/// AWS would reject (or moto accept) and a time limit without a unit.
#[test]
fn durations_are_typed_parameters() {
    error_is(
        "# T\n\n```aws sso-admin.ensure-permission-set id=ps\ninstance_arn = \"arn\"\nname = \"Admin\"\nsession_duration = \"4 hours\"\n```\n",
        "r.md:6:20: error: `session_duration` must be an ISO-8601 duration such as `PT1H`, `PT4H30M`, `PT12H`, not `4 hours`",
    );
    error_is(
        "# T\n\n```net check-reachable id=n\nurls = [\"https://example.com\"]\ntimeout = \"15\"\n```\n",
        "r.md:5:11: error: `timeout` must be a duration with a unit such as `30s`, `10m`, `1h30m`, not `15`",
    );
    let (code, lines) = diagnose(
        b"# T\n\n```aws sso-admin.ensure-permission-set id=ps\ninstance_arn = \"arn\"\nname = \"Admin\"\nsession_duration = \"PT4H30M\"\n```\n",
    );
    assert_eq!((code, lines), (0, vec![]));
}

/// A value only known at run time is typed when the step runs: the error names the parameter and
/// the step's line, and nothing is sent.
#[test]
fn a_bad_duration_known_only_at_run_time_names_the_parameter() {
    let out = Test::new()
        .file(
            "r.md",
            "# T\n\n```runbook\n[inputs.hours]\nprompt = \"h\"\n```\n\n```aws sso-admin.ensure-permission-set id=ps\ninstance_arn = \"arn:aws:sso:::instance/ssoins-1\"\nname = \"Admin\"\nsession_duration = \"${inputs.hours}\"\n```\n",
        )
        .aws(&crate::common::Moto::shared().endpoint)
        .args(["run", "r.md", "--input", "hours=4 hours"])
        .run();
    out.code_is(1).stderr_has("r.md:8:1: error: step `ps` failed");
    assert!(
        out.stderr.contains("`session_duration`: "),
        "names the parameter: {out:?}"
    );
    out.stderr_has("`4 hours` is not an ISO-8601 duration");
}

/// A script whose value is a literal map has known outputs: a typo in a later reference is a
/// located error with a suggestion. A script that may `return` something else is checked at run
/// time only.
#[test]
fn outputs_of_a_script_returning_a_literal_map_are_checked() {
    error_is(
        "# T\n\n```rhai id=names\nlet e = \"a@example.com\";\n#{ email: e, name: \"n\" }\n```\n\n```manual id=m\ninstructions = \"mail ${steps.names.emial}\"\n```\n",
        "r.md:9:24: error: step `names` has no output `emial`",
    );
    let (code, lines) = diagnose(
        b"# T\n\n```rhai id=names\nif true { return #{ other: 1 }; }\n#{ email: 1 }\n```\n\n```manual id=m\ninstructions = \"${steps.names.other}\"\n```\n",
    );
    assert_eq!((code, lines), (0, vec![]));
}

#[test]
fn missing_required_parameter() {
    error_is(
        "# T\n\n```aws identitystore.wait-for-user\nidentity_store_id = \"d-1\"\n```\n",
        "r.md:3:4: error: `identitystore.wait-for-user` needs parameter `user_name`",
    );
}

#[test]
fn wrong_parameter_type() {
    error_is(
        "# T\n\n```aws sso-admin.find-instance\nwait = \"yes\"\n```\n",
        "r.md:4:8: error: `wait` must be boolean, not a string",
    );
}

#[test]
fn wrong_enumeration_value() {
    error_is(
        "# T\n\n```aws sso-admin.ensure-assignment\ninstance_arn = \"a\"\npermission_set_arn = \"p\"\nprincipal_id = \"u\"\naccount_id = \"1\"\nprincipal_type = \"USR\"\n```\n",
        "r.md:8:18: error: `principal_type` must be one of USER, GROUP, not `USR`",
    );
}

#[test]
fn unknown_input_with_suggestion() {
    let out = Test::new()
        .file(
            "r.md",
            "# T\n\n```runbook\n[inputs.admin_user]\n```\n\n```manual\nconfirm = \"Is ${inputs.admin_usr} ok?\"\n```\n",
        )
        .args(["check", "r.md"])
        .run();
    out.code_is(2);
    assert!(
        out.stderr.starts_with("r.md:8:17: error: unknown input `admin_usr`\n"),
        "{out:?}"
    );
    out.stderr_has("did you mean `admin_user`?");
}

#[test]
fn exact_columns_inside_a_body_string() {
    error_is(
        "# T\n\n```aws sso-admin.find-instance\nregion = \"x-${inputs.nope}\"\n```\n",
        "r.md:4:15: error: unknown input `nope`",
    );
}

#[test]
fn step_that_comes_later() {
    error_is(
        "# T\n\n```rhai id=first\nsteps.second.value\n```\n\n```rhai id=second\n#{ value: 1 }\n```\n",
        "r.md:4:1: error: step `second` does not come before this one",
    );
}

#[test]
fn unknown_output_of_an_aws_step() {
    error_is(
        "# T\n\n```aws sso-admin.find-instance id=ic\n```\n\n```manual\ninstructions = \"${steps.ic.portal}\"\n```\n",
        "r.md:7:19: error: step `ic` has no output `portal`",
    );
}

#[test]
fn bad_timeout_and_retries() {
    let (code, lines) = diagnose(b"# T\n\n```aws sts.whoami timeout=soon retries=-1\n```\n");
    assert_eq!(code, 2);
    assert_eq!(
        lines,
        [
            "r.md:3:27: error: timeout `soon` is not a duration",
            "r.md:3:40: error: retries `-1` must be a whole number from 0 to 100",
        ]
    );
}

#[test]
fn unknown_attribute() {
    error_is(
        "# T\n\n```aws sts.whoami retry=3\n```\n",
        "r.md:3:19: error: unknown attribute `retry`",
    );
}

#[test]
fn condition_that_does_not_compile() {
    error_is(
        "# T\n\n```aws sts.whoami if='inputs.a =='\n```\n",
        "r.md:3:34: error: expression does not compile: Script is incomplete",
    );
}

#[test]
fn on_failure_path_that_is_missing_or_escapes() {
    let (code, lines) =
        diagnose(b"# T\n\n```manual on-failure=nope.md\n```\n\n```manual on-failure=../../../etc/passwd\n```\n");
    assert_eq!(code, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("r.md:3:22: error: on-failure names `nope.md`, but "),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("r.md:6:22: error: on-failure path `../../../etc/passwd` leaves the runbooks directory"),
        "{lines:?}"
    );
}

/// A runbook that continues into itself on failure would repeat what failed, each time as a new
/// run with an empty journal (an attacker saw one lost CreateUser answer become four calls).
#[test]
fn on_failure_into_the_same_runbook_is_refused() {
    let (code, lines) =
        diagnose(b"# T\n\n```manual id=m on-failure=r.md\n```\n\n```manual id=n on-failure=./r.md#m\n```\n");
    assert_eq!(code, 2, "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert!(
            l.contains("which is this runbook: a failure would run it again"),
            "{lines:?}"
        );
    }
}

#[test]
fn verify_must_be_a_read_only_check() {
    error_is(
        "# T\n\n```manual\nconfirm = \"ok?\"\nverify = \"aws organizations.ensure-organization\"\n```\n",
        "r.md:5:10: error: `verify` must be a read-only check, and `organizations.ensure-organization` changes things",
    );
}

#[test]
fn near_miss_executor_is_a_warning_only() {
    let (code, lines) = diagnose(b"# T\n\n```mannual\nconfirm = \"x\"\n```\n\n```awk\n{print}\n```\n");
    assert_eq!(code, 0);
    assert_eq!(
        lines,
        ["r.md:3:4: warning: `mannual` is not an executor; this block will not run"]
    );
}

#[test]
fn directory_without_runbooks_and_missing_paths() {
    let out = Test::new()
        .file("empty/notes.txt", "x")
        .args(["check", "empty", "missing.md"])
        .run();
    out.code_is(2);
    assert_eq!(
        out.stderr,
        "empty: error: no runbooks here (no *.md files in this directory or below)\nmissing.md: error: no such file or directory\nchecked 0 runbooks (0 steps): 0 errors, 0 warnings\n".replace("0 errors", "2 errors")
    );
}

#[test]
fn json_diagnostics_for_tools() {
    let out = Test::new()
        .file("r.md", "# T\n\n```aws sts.whoami retry=3\n```\n")
        .args(["check", "--json", "r.md"])
        .run();
    out.code_is(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v[0]["line"], 3);
    assert_eq!(v[0]["col"], 19);
    assert_eq!(v[0]["severity"], "error");
}

#[test]
fn bundled_runbooks_are_clean_and_listed() {
    let out = Test::new()
        .args(["check", &repo().join("runbooks").display().to_string()])
        .run();
    out.code_is(0).stderr_has(" 0 errors, 0 warnings");
    let out = Test::new()
        .args(["list", "--json", &repo().join("runbooks").display().to_string()])
        .run();
    out.code_is(0);
    let books: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let titles: Vec<&str> = books
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    for t in [
        "Prerequisites and considerations",
        "Part 1: Set up a new AWS account",
        "Part 2: Create an administrative user in IAM Identity Center",
        "Multiple accounts",
        "AWS users and credentials",
        "I didn't receive the call from AWS to verify my new account",
        "It's been more than 24 hours and my account isn't activated",
    ] {
        assert!(titles.contains(&t), "{t} missing from {titles:?}");
    }
}

/// Fenced `markdown` examples in README.md and every page of book/ must pass `check`.
#[test]
fn examples_in_the_book_and_readme_check_clean() {
    let mut t = Test::new();
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let mut n = 0;
    for (i, block) in readme.split("````markdown\n").skip(1).enumerate() {
        let body = block.split("\n````").next().expect("closed");
        t = t.file(&format!("readme-{i}.md"), body);
        n += 1;
    }
    assert!(n >= 1, "README has a runbook example");
    let out = t.args(["check", "."]).run();
    out.code_is(0);
    let out = Test::new()
        .args(["check", &repo().join("book").display().to_string()])
        .run();
    out.code_is(0);
}

/// Real-world Markdown: 150 READMEs, guides and changelogs of crates this project builds with,
/// committed under `tests/corpus/markdown/` (where each came from, and its licence, in NOTICE.md;
/// `collect.py` regenerates them). No panic, no step found where none is written, exit 0.
#[test]
fn real_world_markdown_checks_without_panic() {
    let corpus = crate::common::repo().join("tests/corpus/markdown");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&corpus)
        .expect("the committed corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".md") && n.as_bytes()[0].is_ascii_digit())
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 150, "the corpus is complete: {}", corpus.display());
    let t = Test::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        std::fs::copy(f, t.path(name)).expect("copy");
    }
    let out = t.run_args(&["list".into(), "--json".into(), ".".into()]);
    out.code_is(0);
    let books: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let books = books.as_array().expect("array");
    assert_eq!(books.len(), 150, "every file was read as a runbook");
    let steps: usize = books.iter().map(|b| b["steps"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(steps, 0);
    let out = t.run_args(&["check".into(), ".".into()]);
    assert_eq!(
        out.code,
        0,
        "{}",
        out.stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
}

/// `mutates=false` on an operation whose name says it changes something is allowed (the author
/// may know better) but said aloud: `plan` will send it and no intent is journaled before it. On a
/// read it is no news.
#[test]
fn mutates_false_on_a_changing_operation_is_a_warning() {
    let out = Test::new()
        .file(
            "r.md",
            "# T\n\n```aws identitystore:DeleteUser id=d mutates=false\nIdentityStoreId = \"d-1234567890\"\nUserId = \"u\"\n```\n\n```aws identitystore:ListUsers id=l mutates=false\nIdentityStoreId = \"d-1234567890\"\n```\n",
        )
        .args(["check", "r.md"])
        .run();
    out.code_is(0);
    assert!(
        out.stderr
            .contains("r.md:3:46: warning: `identitystore:DeleteUser` is treated as read-only: `plan` will send it"),
        "{out:?}"
    );
    assert!(out.stderr.contains("0 errors, 1 warning"), "only the change: {out:?}");
}

/// `on-failure=other.md#step` (Part 2's way back to Part 1, Step 2) must name a step of that
/// runbook: `check` says so at its place.
#[test]
fn on_failure_into_another_runbook_from_a_step_must_name_one_of_its_steps() {
    let t = Test::new()
        .file(
            "runbooks/a.md",
            "# A\n\n```rhai id=go on-failure=b.md#nosuch\nfail(\"x\")\n```\n",
        )
        .file(
            "runbooks/b.md",
            "# B\n\n```rhai id=first\n#{}\n```\n\n```rhai id=second\n#{}\n```\n",
        );
    let out = t.run_args(&["check".to_string(), "runbooks/".into()]);
    out.code_is(2)
        .stderr_has("runbooks/a.md:3:")
        .stderr_has("on-failure names `b.md#nosuch`, but `nosuch` is no step of b.md (steps: first, second)");
    let t = t.file(
        "runbooks/a.md",
        "# A\n\n```rhai id=go on-failure=b.md#second\nfail(\"x\")\n```\n",
    );
    let out = t.run_args(&["run".to_string(), "runbooks/a.md".into(), "--yes".into()]);
    out.code_is(1).stdout_has("✓ second").stdout_lacks("first");
}
