use super::*;
use serde_json::json;
use std::os::unix::fs::MetadataExt;

/// A run directory at the depth the tool uses (`STATE/<runbook>-<hash>/runs/<name>`): `open`
/// owns its last three components, and never the test's temporary directory or those above.
/// Built here, not by the code under test, so that no mutant can move a test's files out of
/// its temporary directory.
pub(super) fn run_dir_in(tmp: &tempfile::TempDir) -> PathBuf {
    runs_of(&tmp.path().join("rb-00000000"), "default")
}

pub(super) fn runs_of(runbook_dir: &Path, name: &str) -> PathBuf {
    runbook_dir.join("runs").join(name)
}

pub(super) fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

pub(super) fn open(dir: &Path) -> Journal {
    Journal::open(dir, "r.md", false, Redactor::default()).expect("open")
}

#[test]
fn timestamps_are_rfc3339_utc_with_millis() {
    let t = now();
    assert_eq!(t.len(), "2026-11-28T21:53:03.123Z".len(), "{t}");
    assert!(t.ends_with('Z'));
    let parsed: jiff::Timestamp = t.parse().expect("parses back");
    let drift = jiff::Timestamp::now().duration_since(parsed).as_secs();
    assert!((0..5).contains(&drift), "{t}");
}

#[test]
fn second_open_reports_the_holder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    let _first = Journal::open(&dir, "r.md", false, Redactor::default()).expect("first");
    match Journal::open(&dir, "r.md", false, Redactor::default()) {
        Err(JournalError::Locked { holder }) => assert!(holder.contains("pid"), "{holder}"),
        other => panic!("expected a lock error, got {:?}", other.err()),
    }
}

#[test]
fn newer_state_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("state.json"), r#"{"version": 99}"#).expect("write");
    let e = Journal::open(&dir, "r.md", false, Redactor::default())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("newer"), "{e}");
}

#[test]
fn entries_round_trip_and_items_are_found_by_step() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    let mut j = Journal::open(&dir, "r.md", false, Redactor::default()).expect("open");
    j.record(Entry::ItemFinished {
        step: "a".into(),
        hash: "h1".into(),
        item_key: "x".into(),
        outputs: json!({"id": 1}),
    })
    .expect("record");
    j.record(Entry::ItemFinished {
        step: "b".into(),
        hash: "h2".into(),
        item_key: "y".into(),
        outputs: json!({}),
    })
    .expect("record");
    let items = j.finished_items("a").expect("read");
    assert_eq!(items.len(), 1);
    assert_eq!(items["x"], ("h1".to_string(), json!({"id": 1})));
    let text = std::fs::read_to_string(dir.join("transcript.jsonl")).expect("read");
    assert!(text.contains(r#""event":"item-finished""#), "{text}");
}

#[test]
fn values_deeper_than_the_limit_are_refused_not_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut j = Journal::open(&run_dir_in(&tmp), "r.md", false, Redactor::default()).expect("open");
    let mut v = json!(1);
    for _ in 0..MAX_DEPTH {
        v = json!([v]);
    }
    let e = j
        .record(Entry::StepFinished {
            step: "s".into(),
            hash: "h".into(),
            outputs: v,
        })
        .expect_err("too deep");
    assert!(matches!(e, JournalError::TooDeep { .. }), "{e}");
    assert!(j.lines().expect("read").is_empty());
}

#[test]
fn a_torn_last_line_is_ended_before_the_next_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("transcript.jsonl"),
        "{\"ts\":\"x\",\"run\":\"r\",\"event\":\"item-fin",
    )
    .expect("write");
    let mut j = Journal::open(&dir, "r.md", false, Redactor::default()).expect("open");
    j.record(Entry::ItemFinished {
        step: "a".into(),
        hash: "h".into(),
        item_key: "k".into(),
        outputs: json!({}),
    })
    .expect("record");
    assert_eq!(j.finished_items("a").expect("read").len(), 1);
}

#[test]
fn planted_links_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("victim");
    std::fs::write(&target, "keep").expect("write");
    let run = run_dir_in(&dir);
    std::fs::create_dir_all(&run).expect("mkdir");
    std::os::unix::fs::symlink(&target, run.join("transcript.jsonl")).expect("link");
    let e = Journal::open(&run, "r.md", false, Redactor::default())
        .err()
        .expect("refused");
    assert!(matches!(e, JournalError::Symlink { .. }), "{e}");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
}

#[test]
fn run_names_stay_one_path_component() {
    assert_eq!(run_name("admin_user=bob"), "admin_user=bob");
    assert!(run_name("../../etc").starts_with(".._.._etc-"));
    assert!(run_name("..").starts_with("run..-"));
    assert!(run_name("").starts_with("run-"));
    assert!(!run_name("a/b").contains('/'));
    assert_ne!(run_name("a/b"), run_name("a?b"));
    assert_ne!(run_name("a/b"), run_name("a_b"));
    let long = "x".repeat(100);
    assert_ne!(run_name(&long), run_name(&"x".repeat(101)));
}

#[test]
fn intents_and_results_are_fsynced_progress_lines_are_not() {
    let durable = [
        Entry::Intent {
            step: "s".into(),
            item_key: None,
            call: "CreateAccount".into(),
            target: "t".into(),
        },
        Entry::Requested {
            step: "s".into(),
            item_key: None,
            call: "CreateAccount".into(),
            target: "t".into(),
            request_id: None,
        },
        Entry::ItemFinished {
            step: "s".into(),
            hash: "h".into(),
            item_key: "k".into(),
            outputs: json!({}),
        },
        Entry::StepFinished {
            step: "s".into(),
            hash: "h".into(),
            outputs: json!({}),
        },
        Entry::RunFinished { outcome: "done".into() },
    ];
    let progress = [
        Entry::StepStarted {
            step: "s".into(),
            hash: "h".into(),
        },
        Entry::Log {
            step: "s".into(),
            message: "m".into(),
        },
        Entry::Note {
            step: "s".into(),
            item_key: None,
            message: "m".into(),
        },
    ];
    for e in &durable {
        assert!(e.durable(), "{e:?}");
    }
    for e in &progress {
        assert!(!e.durable(), "{e:?}");
    }
}

#[test]
fn a_runbook_keeps_its_runs_under_its_name_and_a_digest_of_its_path() {
    let state = Path::new("/state");
    let one = dir_for(state, Path::new("/nowhere/one/setup.md"));
    let two = dir_for(state, Path::new("/nowhere/two/setup.md"));
    assert_eq!(one.parent(), Some(state));
    let name = one.file_name().and_then(|n| n.to_str()).expect("name");
    let digest = name.strip_prefix("setup-").expect("named by the stem");
    assert!(
        digest.len() == 8 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    assert_ne!(one, two, "two runbooks of one name keep apart");
    assert_eq!(run_dir(&one, "prod"), one.join("runs").join("prod"));
}

#[test]
fn a_saved_state_is_read_back_by_peek_and_by_the_next_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    assert!(Journal::peek(&dir).expect("peek").is_none(), "no run yet");
    let mut j = open(&dir);
    let run_id = j.state.run_id.clone();
    j.state.steps.insert("a".into(), StepState::new(StepStatus::Done, "h1"));
    j.save().expect("save");
    drop(j);
    let peeked = Journal::peek(&dir).expect("peek").expect("a state");
    assert_eq!(peeked.version, STATE_VERSION);
    assert_eq!(peeked.steps["a"].status, StepStatus::Done);
    let j = open(&dir);
    assert_eq!(j.state.run_id, run_id, "the same run resumes");
    assert_eq!(j.state.steps["a"].hash, "h1");
    assert!(!dir.join("state.json.prev").exists());
}

#[test]
fn restart_moves_the_previous_state_aside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    let mut j = open(&dir);
    j.state.steps.insert("a".into(), StepState::new(StepStatus::Done, "h1"));
    j.save().expect("save");
    drop(j);
    let j = Journal::open(&dir, "r.md", true, Redactor::default()).expect("open");
    assert!(j.state.steps.is_empty());
    let prev = std::fs::read_to_string(dir.join("state.json.prev")).expect("kept aside");
    assert!(prev.contains("h1"), "{prev}");
}

#[test]
fn a_linked_state_file_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(tmp.path().join("other.json"), "{}").expect("write");
    std::os::unix::fs::symlink(tmp.path().join("other.json"), dir.join("state.json")).expect("link");
    let e = Journal::peek(&dir).expect_err("refused");
    assert!(matches!(e, JournalError::Symlink { .. }), "{e}");
}

#[test]
fn the_state_file_masks_secrets_in_outputs_and_text_and_marks_those_outputs_secret() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    let redactor = Redactor::default();
    redactor.add("hunter2");
    redactor.add("one");
    let mut j = Journal::open(&dir, "r.md", false, redactor).expect("open");
    let mut a = StepState::new(StepStatus::Done, "h");
    a.outputs = json!({"password": "hunter2"});
    let mut b = StepState::new(StepStatus::Done, "h");
    b.outputs = json!({"id": "i-1"});
    let mut c = StepState::new(StepStatus::Failed, "h");
    c.error = Some("refused hunter2".into());
    j.state
        .steps
        .extend([("a".into(), a), ("b".into(), b), ("c".into(), c)]);
    j.save().expect("save");
    let text = std::fs::read_to_string(dir.join("state.json")).expect("read");
    assert!(!text.contains("hunter2"), "{text}");
    let state = Journal::peek(&dir).expect("peek").expect("state");
    assert_eq!(state.steps["a"].outputs, json!(crate::redact::MASK));
    assert!(state.steps["a"].secret, "masked outputs are marked secret");
    assert_eq!(state.steps["b"].outputs, json!({"id": "i-1"}));
    assert!(!state.steps["b"].secret, "outputs without a secret are values");
    assert_eq!(state.steps["c"].error.as_deref(), Some("refused ********"));
    assert_eq!(
        state.steps["a"].status,
        StepStatus::Done,
        "a secret `one` leaves `done` alone"
    );
}

#[test]
fn depth_counts_the_levels_of_arrays_and_objects() {
    assert_eq!(depth(&json!(1)), 1);
    assert_eq!(depth(&json!([])), 1);
    assert_eq!(depth(&json!([[1]])), 3);
    assert_eq!(depth(&json!({"a": {"b": 1}})), 3);
    assert_eq!(depth(&json!({"a": [{"b": []}], "c": 1})), 4);
}

/// `v` nested so that `depth(v) == levels`.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 1..levels {
        v = json!([v]);
    }
    v
}

#[test]
fn the_journal_writes_values_up_to_the_depth_limit_and_no_deeper() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut j = open(&run_dir_in(&tmp));
    // A transcript line holds its outputs one level down.
    let line = |v| Entry::StepFinished {
        step: "s".into(),
        hash: "h".into(),
        outputs: v,
    };
    j.record(line(nested(MAX_DEPTH - 1))).expect("at the limit");
    let e = j.record(line(nested(MAX_DEPTH))).expect_err("one deeper");
    assert!(matches!(e, JournalError::TooDeep { .. }), "{e}");
    assert_eq!(j.lines().expect("read").len(), 1);
    // The state file holds outputs at `steps.ID.outputs`, three levels down.
    let mut st = StepState::new(StepStatus::Done, "h");
    st.outputs = nested(MAX_DEPTH - 3);
    j.state.steps.insert("s".into(), st.clone());
    j.save().expect("at the limit");
    st.outputs = nested(MAX_DEPTH - 2);
    j.state.steps.insert("s".into(), st);
    let e = j.save().expect_err("one deeper");
    assert!(matches!(e, JournalError::TooDeep { .. }), "{e}");
}

#[test]
fn a_secret_in_an_entry_is_masked_and_the_line_still_reads_back_as_its_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let redactor = Redactor::default();
    // A secret that happens to be part of an event's name.
    redactor.add("finished");
    let mut j = Journal::open(&run_dir_in(&tmp), "r.md", false, redactor).expect("open");
    let written = j
        .record(Entry::ItemFinished {
            step: "a".into(),
            hash: "h".into(),
            item_key: "k".into(),
            outputs: json!({"note": "finished"}),
        })
        .expect("record");
    assert!(written.contains(r#""event":"item-finished""#), "{written}");
    assert!(!written.contains(r#""finished""#), "{written}");
    let items = j.finished_items("a").expect("read");
    // Outputs that held a secret are one opaque value: nothing of their shape is kept.
    assert_eq!(items["k"], ("h".to_string(), json!(crate::redact::MASK)));
}

#[test]
fn reopening_a_whole_transcript_adds_nothing_to_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = run_dir_in(&tmp);
    let mut j = open(&dir);
    j.record(Entry::RunFinished { outcome: "done".into() }).expect("record");
    drop(j);
    let before = std::fs::read(dir.join("transcript.jsonl")).expect("read");
    drop(open(&dir));
    assert_eq!(std::fs::read(dir.join("transcript.jsonl")).expect("read"), before);
}

#[test]
fn a_missing_transcript_reads_as_empty_and_a_linked_one_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert!(read_lines(&tmp.path().join("missing.jsonl")).expect("empty").is_empty());
    std::fs::write(tmp.path().join("real.jsonl"), "").expect("write");
    std::os::unix::fs::symlink(tmp.path().join("real.jsonl"), tmp.path().join("t.jsonl")).expect("link");
    let e = read_lines(&tmp.path().join("t.jsonl")).expect_err("refused");
    assert!(matches!(e, JournalError::Symlink { .. }), "{e}");
}

#[test]
fn calls_stay_unsettled_until_the_step_or_item_settles_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut j = open(&run_dir_in(&tmp));
    let key = |k: Option<&str>| k.map(String::from);
    let intent = |step: &str, k: Option<&str>| Entry::Intent {
        step: step.into(),
        item_key: key(k),
        call: "CreateAccount".into(),
        target: "t".into(),
    };
    let requested = |step: &str, k: Option<&str>| Entry::Requested {
        step: step.into(),
        item_key: key(k),
        call: "CreateAccount".into(),
        target: "t".into(),
        request_id: None,
    };
    let rejected = |step: &str, k: Option<&str>| Entry::Rejected {
        step: step.into(),
        item_key: key(k),
        call: "CreateAccount".into(),
        target: "t".into(),
        code: "ValidationException".into(),
    };
    let item_finished = |step: &str, k: &str| Entry::ItemFinished {
        step: step.into(),
        hash: "h".into(),
        item_key: k.into(),
        outputs: json!({}),
    };
    let step_finished = |step: &str| Entry::StepFinished {
        step: step.into(),
        hash: "h".into(),
        outputs: json!({}),
    };
    for e in [
        intent("a", None),
        intent("a", Some("x")),
        requested("a", Some("x")),
        intent("a", Some("y")),
        rejected("a", Some("y")),
        intent("a", Some("z")),
        item_finished("a", "z"),
        intent("a", Some("w")),
        // Another step's entries settle nothing of step a.
        intent("b", Some("q")),
        requested("b", None),
        rejected("b", None),
        item_finished("b", "w"),
        step_finished("b"),
    ] {
        j.record(e).expect("record");
    }
    let open_calls: Vec<(Option<String>, bool)> = j
        .unsettled("a")
        .expect("read")
        .into_iter()
        .map(|u| (u.item_key, u.answered))
        .collect();
    assert_eq!(
        open_calls,
        vec![(None, false), (key(Some("w")), false), (key(Some("x")), true)]
    );
    j.record(step_finished("a")).expect("record");
    assert!(
        j.unsettled("a").expect("read").is_empty(),
        "a finished step settles its calls"
    );
}

/// One action makes one call per account (an assignment's fan-out): AWS refusing the call for
/// one account settles that call only, never another account's call whose outcome is unknown.
#[test]
fn a_refusal_settles_only_the_call_it_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut j = open(&run_dir_in(&tmp));
    let call = |target: &str| (String::from("sso-admin:CreateAccountAssignment"), target.to_string());
    let (c, a) = call("USER u in 111111111111");
    let (_, b) = call("USER u in 222222222222");
    for e in [
        Entry::Intent {
            step: "s".into(),
            item_key: None,
            call: c.clone(),
            target: a.clone(),
        },
        Entry::Intent {
            step: "s".into(),
            item_key: None,
            call: c.clone(),
            target: b.clone(),
        },
        Entry::Rejected {
            step: "s".into(),
            item_key: None,
            call: c.clone(),
            target: a.clone(),
            code: "AccessDeniedException".into(),
        },
    ] {
        j.record(e).expect("record");
    }
    let open_calls: Vec<String> = j.unsettled("s").expect("read").into_iter().map(|u| u.target).collect();
    assert_eq!(open_calls, vec![b.clone()]);
    // And an answer for one account does not answer another's.
    j.record(Entry::Intent {
        step: "s".into(),
        item_key: None,
        call: c.clone(),
        target: a.clone(),
    })
    .expect("record");
    j.record(Entry::Requested {
        step: "s".into(),
        item_key: None,
        call: c,
        target: b.clone(),
        request_id: None,
    })
    .expect("record");
    let answered: Vec<(String, bool)> = j
        .unsettled("s")
        .expect("read")
        .into_iter()
        .map(|u| (u.target, u.answered))
        .collect();
    assert_eq!(answered, vec![(a, false), (b, true)]);
}

#[test]
fn a_finished_run_starts_a_new_run_id_and_an_unfinished_one_resumes_its_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut j = open(&run_dir_in(&tmp));
    let first = j.state.run_id.clone();
    assert!(
        first.len() == 12 && first.chars().all(|c| c.is_ascii_hexdigit()),
        "{first}"
    );
    j.state.outcome = Some("failed".into());
    j.begin_run();
    assert_eq!(j.state.run_id, first, "a failed run resumes under its id");
    assert_eq!(j.state.outcome, None);
    j.state.outcome = Some("done".into());
    j.begin_run();
    assert_ne!(j.state.run_id, first, "a run after a finished one is a new run");
    assert_eq!(j.state.run_id.len(), 12);
    assert_eq!(j.state.outcome, None);
}

#[test]
fn runs_lists_each_instance_most_recently_updated_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rb = tmp.path().join("rb-00000000");
    assert!(Journal::runs(&rb).expect("none yet").is_empty());
    for name in ["older", "newer"] {
        drop(open(&runs_of(&rb, name)));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::write(rb.join("runs").join("stray-file"), "").expect("write");
    let names: Vec<String> = Journal::runs(&rb).expect("runs").into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["newer", "older"]);

    let broken = tmp.path().join("rb-11111111");
    std::fs::create_dir(&broken).expect("mkdir");
    std::fs::write(broken.join("runs"), "").expect("write");
    assert!(
        Journal::runs(&broken).is_err(),
        "a `runs` that is not a directory is an error"
    );
}

#[test]
fn the_user_is_named_by_the_os() {
    // `id -un` reads the passwd entry as we do; $USER may say anything.
    let id = std::process::Command::new("id").arg("-un").output().expect("id -un");
    assert_eq!(os_user(), String::from_utf8_lossy(&id.stdout).trim());
}
