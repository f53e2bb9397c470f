//! Where values come from: `--input k=v`, the answers file, the last run's journal, a default,
//! or a person at a prompt, checked against each input's `pattern` and `choices`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::model::Input;
use crate::parser::anchored;

/// The answers file: `[inputs]`, `[steps.STEP-ID]` (confirm = true, plus `ask` values), and
/// `[rehearsal]` (the emulated account).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    #[serde(default)]
    pub inputs: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub steps: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// The account a rehearsal with this file plays (`runbook rehearse`; a run ignores it).
    #[serde(default)]
    pub rehearsal: Option<crate::emulator::Account>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {message}")]
    AnswersFile { path: String, message: String },
    #[error("--input `{0}`: write it as NAME=VALUE")]
    BadFlag(String),
    #[error("{source_}: unknown input `{name}`{}", if known.is_empty() { " (this runbook takes none)".to_string() } else { format!(" (inputs are: {known})") })]
    Unknown {
        source_: String,
        name: String,
        known: String,
    },
    #[error("{source_}: {message}")]
    Invalid { source_: String, message: String },
}

impl Answers {
    pub fn load(path: &Path) -> Result<Answers, InputError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| InputError::AnswersFile {
            path: shown.clone(),
            message: crate::load::io_message(&e),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| InputError::AnswersFile {
            path: shown.clone(),
            message: "not valid UTF-8".into(),
        })?;
        toml::from_str(&text).map_err(|e| {
            let src = crate::source::Source::new(path, text.as_str());
            let (line, col) = e.span().map_or((0, 0), |r| src.line_col(r.start));
            InputError::AnswersFile {
                path: format!("{shown}:{line}:{col}"),
                message: e.message().trim().to_string(),
            }
        })
    }

    /// An answer as text (numbers and booleans are accepted and written as text).
    pub fn text(v: &toml::Value) -> Option<String> {
        match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Float(f) => Some(f.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Parses `--input NAME=VALUE` flags.
pub fn flags(raw: &[String]) -> Result<BTreeMap<String, String>, InputError> {
    raw.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| InputError::BadFlag(s.clone()))
        })
        .collect()
}

/// A value an input does not take. A secret's value is never part of the message.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("`{name}` must be one of: {}", choices.join(", "))]
    NotAChoice { name: String, choices: Vec<String> },
    #[error("{shown} does not match the pattern {pattern} for `{name}`")]
    NoMatch {
        /// The value in backticks, or "the value" for a secret.
        shown: String,
        pattern: String,
        name: String,
    },
    #[error("the pattern for `{name}` is invalid: {error}")]
    BadPattern { name: String, error: String },
}

/// Checks a value against an input's pattern and choices.
pub fn validate(name: &str, input: &Input, value: &str) -> Result<(), Invalid> {
    if let Some(choices) = &input.choices {
        if !choices.iter().any(|c| c == value) {
            return Err(Invalid::NotAChoice {
                name: name.to_string(),
                choices: choices.clone(),
            });
        }
    }
    if let Some(p) = &input.pattern {
        match anchored(p) {
            Ok(re) if re.is_match(value) => {}
            Ok(_) => {
                return Err(Invalid::NoMatch {
                    shown: if input.secret {
                        "the value".to_string()
                    } else {
                        format!("`{value}`")
                    },
                    pattern: p.clone(),
                    name: name.to_string(),
                });
            }
            Err(e) => {
                return Err(Invalid::BadPattern {
                    name: name.to_string(),
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Where input values come from, in the order they are tried: `--input`, `RUNBOOK_INPUT_<NAME>`,
/// the answers file, the run's last value (never for secrets), a person (when one can be asked),
/// the default.
pub struct Sources<'a> {
    pub flags: &'a BTreeMap<String, String>,
    pub answers: &'a Answers,
    pub stored: &'a BTreeMap<String, serde_json::Value>,
}

/// The environment variable that can carry an input (`admin_user` -> `RUNBOOK_INPUT_ADMIN_USER`).
pub fn env_var(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("RUNBOOK_INPUT_{upper}")
}

/// What to do with an input nothing supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenMissing {
    /// Ask the person at the terminal.
    Ask,
    /// Take the default, else wait for a person (exit 3).
    Wait,
    /// Take the default, else leave it out (`plan`).
    Leave,
}

impl WhenMissing {
    /// Ask when a person can be asked (the caller knows: `prompt::interactive`), else wait.
    pub fn ask_if(person: bool) -> WhenMissing {
        if person { WhenMissing::Ask } else { WhenMissing::Wait }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "waiting for a person: input `{0}` has no value; give --input {0}=VALUE, {var}=VALUE, or [inputs] {0} = \"...\" in the answers file",
        var = env_var(.0)
    )]
    Waiting(String),
    #[error("input `{0}`: {1}")]
    Prompt(String, std::io::Error),
}

/// Resolved input values. Secrets are held as [`Secret`] and never formatted in clear.
#[derive(Debug, Default)]
pub struct Resolved {
    pub values: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
    /// Inputs left without a value (only with [`WhenMissing::Leave`]).
    pub missing: Vec<String>,
}

use crate::redact::Secret;

/// Checks that every input the flags and the answers file name is declared.
pub fn check_known(
    declared: &BTreeMap<String, Input>,
    flags: &BTreeMap<String, String>,
    answers: &Answers,
) -> Result<(), InputError> {
    let known: Vec<&str> = declared.keys().map(String::as_str).collect();
    for (name, src) in flags
        .keys()
        .map(|k| (k, "--input"))
        .chain(answers.inputs.keys().map(|k| (k, "answers file")))
    {
        if !declared.contains_key(name) {
            return Err(InputError::Unknown {
                source_: src.into(),
                name: name.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

/// Resolves the named inputs (all, when `only` is `None`) in the order the runbook declares them.
pub fn resolve(
    declared: &BTreeMap<String, Input>,
    only: Option<&[String]>,
    src: &Sources<'_>,
    when_missing: WhenMissing,
    ask: &dyn Fn(&str, &Input) -> std::io::Result<String>,
) -> Result<Resolved, ResolveError> {
    let mut ordered: Vec<(&String, &Input)> = declared
        .iter()
        .filter(|(n, _)| only.is_none_or(|o| o.contains(n)))
        .collect();
    ordered.sort_by_key(|(_, i)| i.span.start);
    let mut out = Resolved::default();
    for (name, input) in ordered {
        let given = if let Some(v) = src.flags.get(name) {
            Some((v.clone(), "--input".to_string()))
        } else if let Some(v) = std::env::var(env_var(name)).ok().filter(|v| !v.is_empty()) {
            Some((v, env_var(name)))
        } else if let Some(v) = src.answers.inputs.get(name) {
            match Answers::text(v) {
                Some(t) => Some((t, "answers file".to_string())),
                None => {
                    return Err(InputError::Invalid {
                        source_: "answers file".into(),
                        message: format!("input `{name}` must be a string"),
                    }
                    .into());
                }
            }
        } else if let Some(serde_json::Value::String(v)) = src.stored.get(name).filter(|_| !input.secret) {
            Some((v.clone(), "the last run".to_string()))
        } else {
            None
        };
        let value = match given {
            Some((v, from)) => {
                // A plan (which leaves what is missing) does not hold a secret against its
                // pattern: the author of a pull request writes the pattern, and a plan that
                // stopped or not as the secret matched it would answer their guesses (attacker
                // finding). A run checks it before it uses it.
                if !(input.secret && when_missing == WhenMissing::Leave) {
                    validate(name, input, &v).map_err(|e| InputError::Invalid {
                        source_: from,
                        message: e.to_string(),
                    })?;
                }
                v
            }
            None if when_missing == WhenMissing::Ask => {
                ask(name, input).map_err(|e| ResolveError::Prompt(name.clone(), e))?
            }
            None => match &input.default {
                Some(d) => d.clone(),
                None if when_missing == WhenMissing::Leave => {
                    out.missing.push(name.clone());
                    continue;
                }
                None => return Err(ResolveError::Waiting(name.clone())),
            },
        };
        if input.secret {
            out.secrets.insert(name.clone(), Secret::new(value));
        } else {
            out.values.insert(name.clone(), value);
        }
    }
    Ok(out)
}
