//! Where values come from: `--input k=v`, the answers file, the last run's journal, a default,
//! or a person at a prompt, checked against each input's `pattern` and `choices`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::model::Input;
use crate::parser::anchored;

/// The answers file: `[inputs]` and `[steps.STEP-ID]` (confirm = true, plus `ask` values).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    #[serde(default)]
    pub inputs: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub steps: BTreeMap<String, BTreeMap<String, toml::Value>>,
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

/// Checks a value against an input's pattern and choices.
pub fn validate(name: &str, input: &Input, value: &str) -> Result<(), String> {
    if let Some(choices) = &input.choices {
        if !choices.iter().any(|c| c == value) {
            return Err(format!("`{name}` must be one of: {}", choices.join(", ")));
        }
    }
    if let Some(p) = &input.pattern {
        match anchored(p) {
            Ok(re) if re.is_match(value) => {}
            Ok(_) => {
                let shown = if input.secret {
                    "the value".to_string()
                } else {
                    format!("`{value}`")
                };
                return Err(format!("{shown} does not match the pattern {p} for `{name}`"));
            }
            Err(e) => return Err(format!("the pattern for `{name}` is invalid: {e}")),
        }
    }
    Ok(())
}
