//! Before a run touches its state directory, everything the operator gave is checked: flags,
//! the answers file (inputs and steps), `--from`/`--only`, `--step`. A usage error leaves the
//! state directory byte for byte as it was (an attacker's `run FILE --from nosuch` after a
//! finished run once turned it into "stopped" and appended a second `run-finished`). Then the
//! journal is found (it may have moved), adopted and opened.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Digester, RunOptions};
use crate::inputs::{self, Answers};
use crate::journal::{self, Journal, JournalError};
use crate::model::{Executor, Runbook, Step};
use crate::source::Source;
use crate::ui::Ui;

/// What the command line and the answers file say, checked.
pub(super) struct Given {
    pub answers: Answers,
    pub flags: BTreeMap<String, String>,
}

/// Checks everything given before anything is written. `Err` is a usage error's message.
pub(super) fn preflight(runbook: &Runbook, source: &Source, opts: &RunOptions) -> Result<Given, String> {
    let answers = match &opts.answers {
        Some(p) => Answers::load(p).map_err(|e| e.to_string())?,
        None => Answers::default(),
    };
    // A continued run shares its parent's answers file, which names the parent's inputs and
    // steps too.
    let nested = opts.failed.is_some();
    // The answers file may also answer the runbooks `on-failure=` leads into.
    let linked = super::followup::linked(runbook);
    let mut known_inputs = runbook.settings.inputs.clone();
    for l in &linked {
        for (k, v) in &l.settings.inputs {
            known_inputs.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let flags = inputs::flags(&opts.inputs).map_err(|e| e.to_string())?;
    if !nested {
        // Flags name this runbook's inputs; the answers file may name the linked ones' too.
        inputs::check_known(&runbook.settings.inputs, &flags, &Answers::default()).map_err(|e| e.to_string())?;
        inputs::check_known(&known_inputs, &flags, &answers).map_err(|e| e.to_string())?;
    }
    // Every value given now must fit its input (pattern, choices), whatever the journal holds.
    let none = BTreeMap::new();
    let src = inputs::Sources {
        flags: &flags,
        answers: &answers,
        stored: &none,
    };
    inputs::resolve(
        &runbook.settings.inputs,
        None,
        &src,
        inputs::WhenMissing::Leave,
        &|_, _| Err(std::io::Error::other("not asked before the journal opens")),
    )
    .map_err(|e| e.to_string())?;
    for id in [&opts.from, &opts.only].into_iter().flatten() {
        if runbook.step(id).is_none() {
            let ids: Vec<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
            return Err(format!(
                "no step `{id}` in {} (steps: {})",
                runbook.path,
                ids.join(", ")
            ));
        }
    }
    if opts.step_mode && !crate::prompt::interactive() {
        return Err("--step needs a terminal to ask in".into());
    }
    if !nested {
        for (sid, given) in &answers.steps {
            let Some(step) = runbook.step(sid).or_else(|| linked.iter().find_map(|l| l.step(sid))) else {
                return Err(format!(
                    "answers file names step `{sid}`, which {} does not have",
                    runbook.path
                ));
            };
            let registry = runbook_plugins::Registry::shared();
            let sends_text = step
                .executor
                .action()
                .and_then(|a| registry.get(a))
                .is_some_and(|a| a.info().sends_text);
            // A manual step of this runbook: its questions are known before anything runs.
            let asks: Option<Vec<(String, crate::model::Input)>> = runbook
                .step(sid)
                .filter(|s| matches!(s.executor, Executor::Manual))
                .and_then(|s| crate::manual::parse(source, s, &mut Vec::new()))
                .map(|m| m.ask);
            answers_fit(step, sends_text, given)
                .and_then(|()| asks_fit(asks.as_deref(), given))
                .map_err(|e| format!("answers file, [steps.{sid}]: {e}"))?;
        }
    }
    Ok(Given { answers, flags })
}

/// The journal of this run, opened; `Err` says why nothing was run.
pub(super) fn open_journal(
    runbook: &Runbook,
    source: &Source,
    opts: &RunOptions,
    given: &Given,
    ui: &Ui,
    redactor: &crate::redact::Redactor,
) -> Result<(Journal, Digester, (journal::Pending, Digester)), super::RunError> {
    let usage = super::RunError::Usage;
    let cannot_keep = |dir: &Path, e: &dyn std::fmt::Display| {
        format!(
            "cannot keep the journal in {}: {e}\n  nothing was run; fix it or choose another --state-dir (RUNBOOK_STATE_DIR)",
            dir.display()
        )
    };
    let step_ids: Vec<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
    let path = Path::new(&runbook.path);
    let here = journal::locate(&opts.state_dir, path, &runbook.title, &step_ids);
    if here.is_ok_and(|l| std::fs::symlink_metadata(&l.dir).is_err()) && !opts.rehearsal {
        if let Some(other) = journal::elsewhere(&opts.state_dir, path, &runbook.title, &step_ids) {
            return Err(usage(format!(
                "the journal of {} is in {} (a run started from {}), not in {}\n  nothing was run; run from there, or pass --state-dir {}",
                runbook.path,
                other.display(),
                other.parent().map(|p| p.display().to_string()).unwrap_or_default(),
                opts.state_dir.display(),
                other.display()
            )));
        }
    }
    let runbook_dir = match journal::adopt(&opts.state_dir, path, &runbook.title, &step_ids) {
        Ok(found) => {
            if let Some(from) = found.moved_from {
                ui.note(&format!(
                    "this runbook moved from {}; its journal moved with it",
                    from.display()
                ));
            }
            found.dir
        }
        Err(e @ JournalError::MovedAmbiguous { .. }) => return Err(usage(format!("{e}\n  nothing was run"))),
        Err(e) => return Err(usage(cannot_keep(&opts.state_dir, &e))),
    };
    let key = journal::legacy_key(&runbook_dir).map_err(|e| usage(cannot_keep(&runbook_dir, &e)))?;
    // A runbook that declares secrets needs the operator's key to tell whether they changed: a
    // key that is not trustworthy (planted, readable by others) is refused before anything runs.
    let declares_secrets = runbook.settings.inputs.values().any(|i| i.secret)
        || runbook.steps.iter().any(|s| {
            matches!(s.executor, Executor::Manual)
                && crate::manual::parse(source, s, &mut Vec::new()).is_some_and(|m| m.ask.iter().any(|(_, i)| i.secret))
        });
    let digester = if declares_secrets {
        match journal::own_key() {
            Ok(own) => Digester::with_own_key(key, own),
            Err(e) => {
                return Err(usage(format!(
                    "cannot use the key of secret digests: {e}\n  nothing was run"
                )));
            }
        }
    } else {
        Digester::new(key)
    };
    let pending = match journal::Pending::open(&opts.state_dir) {
        Ok((p, key)) => (p, Digester::new(key)),
        Err(e) => return Err(usage(cannot_keep(&opts.state_dir, &e))),
    };
    // Which instance: --run, the key inputs' values, a fresh one per rehearsal, or the default.
    let name = super::run_name(runbook, opts, &given.flags, &given.answers, ui, &digester)?;
    let dir = journal::run_dir(&runbook_dir, &name);
    let mut journal = match Journal::open(&dir, &runbook.path, opts.restart, redactor.clone()) {
        Ok(x) => x,
        Err(e @ (JournalError::Io { .. } | JournalError::Symlink { .. })) => {
            return Err(usage(format!(
                "cannot keep the journal in {}: {e}\n  nothing was run; free some space or choose another --state-dir (RUNBOOK_STATE_DIR)",
                dir.display()
            )));
        }
        Err(e) => return Err(usage(e.to_string())),
    };
    match journal.recover_finished() {
        Ok(steps) => {
            for step in steps {
                ui.note(&format!(
                    "{step}: finished before the last run stopped (the journal says so; the state file was not saved)"
                ));
            }
        }
        Err(e) => return Err(usage(e.to_string())),
    }
    // A journal is a rehearsal's or a real run's, never both.
    if !journal.state.steps.is_empty() && journal.state.rehearsal != opts.rehearsal {
        return Err(usage(format!(
            "the run `{name}` in {} is a {}; a {} never continues it",
            dir.display(),
            if journal.state.rehearsal {
                "rehearsal"
            } else {
                "real run"
            },
            if opts.rehearsal { "rehearsal" } else { "real run" }
        )));
    }
    journal.state.rehearsal = opts.rehearsal;
    journal.state.name = name;
    Ok((journal, digester, pending))
}

/// A manual step's answers name its questions, each a value, not a table or a list, that the
/// question's `choices` and `pattern` take.
fn asks_fit(
    asks: Option<&[(String, crate::model::Input)]>,
    given: &BTreeMap<String, toml::Value>,
) -> Result<(), String> {
    let Some(asks) = asks else { return Ok(()) };
    for (k, v) in given.iter().filter(|(k, _)| k.as_str() != "confirm") {
        let Some((_, input)) = asks.iter().find(|(n, _)| n == k) else {
            let names: Vec<&str> = asks.iter().map(|(n, _)| n.as_str()).collect();
            let known = if names.is_empty() {
                "it asks nothing".to_string()
            } else {
                format!("it asks: {}", names.join(", "))
            };
            return Err(format!("the step asks no `{k}` ({known})"));
        };
        let Some(text) = Answers::text(v) else {
            return Err(format!("`{k}` must be a value, not a {}", v.type_str()));
        };
        inputs::validate(k, input, &text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What an answers file may say to a step: a manual step's `confirm` (and its questions, which
/// the step checks when it asks), a call's `resend`, the `confirm` of an action that sends text
/// to AWS, each a boolean (`resend` also the time of the call it answers); nothing to any other
/// step.
/// A value that is almost right (`resend = "yes"`) would otherwise read as no answer at all.
fn answers_fit(step: &Step, sends_text: bool, given: &BTreeMap<String, toml::Value>) -> Result<(), String> {
    let takes: &[&str] = match &step.executor {
        Executor::Manual => &["confirm"],
        // Only a call that changes AWS can have an unknown outcome to send again.
        e if e.call().is_some() && super::call::options(step).mutates => &["resend"],
        // An action that sends text to AWS (a support case) shows it and asks first.
        _ if sends_text => &["confirm"],
        _ => &[],
    };
    for (k, v) in given {
        if takes.contains(&k.as_str()) {
            // `resend` may also name the call it answers by the time it was sent.
            let sent_at = k == "resend" && v.as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok());
            if !v.is_bool() && !sent_at {
                return Err(format!("`{k}` must be true or false, not {v}"));
            }
        } else if !matches!(step.executor, Executor::Manual) {
            let what = step.executor.word();
            return Err(match takes {
                [] => format!("this `{what}` step takes no answers (`{k}` given)"),
                _ => format!("`{k}`: this `{what}` step takes only `{}`", takes.join("`, `")),
            });
        }
    }
    Ok(())
}
