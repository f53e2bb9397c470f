//! Manual steps: what only a person can do. The instructions are shown, then the confirmation and
//! the questions are taken from the answers file, `--yes`, or the person at the terminal; a
//! `verify=` check runs after they confirm.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Outcome, Secrecy, Shared, StepError};
use crate::eval::Env;
use crate::inputs::{self, Answers};
use crate::journal::{self, Entry};
use crate::manual::{self, Manual};
use crate::model::Step;
use crate::redact::Secret;

/// How the message of [`StepError::Refused`] starts (the wording only: the variant decides).
const REFUSED: &str = "the person did not confirm";

/// An answer to one question; secret answers never format in clear.
enum Answer {
    Plain(String),
    Secret(Secret),
}

impl Answer {
    fn new(value: String, secret: bool) -> Answer {
        if secret {
            Answer::Secret(Secret::new(value))
        } else {
            Answer::Plain(value)
        }
    }

    fn expose(&self) -> &str {
        match self {
            Answer::Plain(s) => s,
            Answer::Secret(s) => s.expose(),
        }
    }
}

pub(super) async fn run_manual(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<&Value>,
    deadline: Option<std::time::Instant>,
) -> Result<Outcome, StepError> {
    let mut sink = Vec::new();
    let Some(m) = manual::parse(&shared.source, step, &mut sink) else {
        return Err(StepError::failed(
            "the manual step's body does not parse; run `runbook check`",
        ));
    };
    let engine = shared.engine_until(deadline);
    let text = |s: &Option<String>| -> Result<Option<String>, StepError> {
        s.as_ref()
            .map(|t| {
                env.interpolate(&engine, t, item)
                    .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
            })
            .transpose()
            .map_err(|e| StepError::failed(e.to_string()))
    };
    if let Some(instr) = text(&m.instructions)? {
        shared.ui.block(&format!("\n{}\n", instr.trim_end()));
    }
    let question = text(&m.confirm)?.unwrap_or_else(|| "Done?".to_string());
    let (answers, via) = collect_answers(shared, step, &m, &question)?;
    // A person confirmed: check what can be checked before calling it done.
    if let Some(v) = &m.verify {
        let name = manual::verify_action(v).map_err(|bad| StepError::failed(bad.to_string()))?;
        let action = shared
            .registry
            .get(&name)
            .ok_or_else(|| StepError::failed(format!("unknown action `{name}`")))?;
        shared.ui.status(&format!("{}  verifying with {name}", step.id));
        if let Err(e) = action.apply(&shared.context_for(step, None, None), json!({})).await {
            if let runbook_plugins::PluginError::Journal(m) = e {
                return Err(StepError::Journal(m));
            }
            return Err(StepError::Failed {
                message: format!("confirmed, but the check `{name}` disagrees: {e}"),
                hint: e.hint().or_else(|| Some("finish the step, then run again".into())),
                at: None,
            });
        }
    }
    let shown: serde_json::Map<String, Value> = answers
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                match a {
                    Answer::Plain(s) => json!(s),
                    Answer::Secret(s) => json!(s.to_string()),
                },
            )
        })
        .collect();
    shared.record(Entry::Confirmed {
        step: step.id.clone(),
        question,
        who: json!({ "os_user": journal::os_user(), "caller": shared.who() }),
        via: via.into(),
        answers: Value::Object(shown),
    })?;
    let mut public = vec!["confirmed".to_string()];
    let mut any_secret = false;
    let mut out = serde_json::Map::new();
    out.insert("confirmed".into(), json!(true));
    for (k, a) in &answers {
        match a {
            Answer::Plain(_) => public.push(k.clone()),
            Answer::Secret(_) => any_secret = true,
        }
        out.insert(k.clone(), json!(a.expose()));
    }
    Ok(Outcome {
        outputs: Value::Object(out),
        secrecy: if any_secret {
            Secrecy::AllBut(public)
        } else {
            Secrecy::None
        },
    })
}

/// Gets the confirmation and the answers from the answers file, `--yes`, or a person.
fn collect_answers(
    shared: &Shared,
    step: &Step,
    m: &Manual,
    question: &str,
) -> Result<(BTreeMap<String, Answer>, &'static str), StepError> {
    let mut answers = BTreeMap::new();
    let need = || {
        let mut keys = vec!["confirm = true".to_string()];
        keys.extend(m.ask.iter().map(|(n, _)| format!("{n} = \"...\"")));
        format!(
            "answer in the answers file under [steps.{}]: {}",
            step.id,
            keys.join(", ")
        )
    };
    let mut keep = |name: &str, value: String, secret: bool| {
        if secret {
            shared.redactor.add(&value);
        }
        answers.insert(name.to_string(), Answer::new(value, secret));
    };
    if let Some(given) = shared.answers.steps.get(&step.id) {
        for k in given.keys() {
            if k != "confirm" && !m.ask.iter().any(|(n, _)| n == k) {
                return Err(StepError::failed(format!(
                    "answers file: step `{}` asks no `{k}`",
                    step.id
                )));
            }
        }
        match given.get("confirm").and_then(toml::Value::as_bool) {
            Some(true) => {}
            // An explicit no, as a person at the terminal would answer.
            Some(false) if step.attrs.on_failure.is_some() => {
                return Err(StepError::Refused(format!(
                    "{REFUSED} (confirm = false in the answers file)"
                )));
            }
            _ => return Err(StepError::Waiting(format!("not confirmed; {}", need()))),
        }
        for (name, input) in &m.ask {
            let v = match given.get(name).and_then(Answers::text) {
                Some(v) => v,
                None if crate::prompt::interactive() => shared
                    .ui
                    .suspend(|| crate::prompt::ask(name, input))
                    .map_err(prompt_error)?,
                None => match &input.default {
                    Some(d) => d.clone(),
                    None => return Err(StepError::Waiting(need())),
                },
            };
            inputs::validate(name, input, &v).map_err(|e| StepError::failed(format!("answers file: {e}")))?;
            keep(name, v, input.secret);
        }
        return Ok((answers, "answers-file"));
    }
    if crate::prompt::interactive() {
        let q = match shared.who() {
            Some(who) => format!("{question} ({who})"),
            None => question.to_string(),
        };
        let yes = shared
            .ui
            .suspend(|| crate::prompt::confirm(&crate::text::sanitize(&q)))
            .map_err(prompt_error)?;
        if !yes {
            return Err(StepError::Refused(format!(
                "{REFUSED}; run again when the step is done"
            )));
        }
        for (name, input) in &m.ask {
            let v = shared
                .ui
                .suspend(|| crate::prompt::ask(name, input))
                .map_err(prompt_error)?;
            keep(name, v, input.secret);
        }
        return Ok((answers, "terminal"));
    }
    if shared.opts.yes && m.ask.is_empty() {
        return Ok((answers, "--yes"));
    }
    Err(StepError::Waiting(need()))
}

fn prompt_error(e: std::io::Error) -> StepError {
    if e.kind() == std::io::ErrorKind::Interrupted {
        StepError::Interrupted
    } else {
        StepError::failed(format!("prompt: {e}"))
    }
}
