//! `runbook list`: the runbooks and their steps, for people or (`--json`) tools.

use std::io::Write;
use std::path::PathBuf;

use super::analyse;
use super::error::CommandError;
use crate::diagnostic::{Diagnostic, report};

pub(super) fn list(paths: &[PathBuf], json: bool, color: bool) -> Result<(), CommandError> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("runbooks")]
    } else {
        paths.to_vec()
    };
    let (mut books, diags) = analyse(&paths);
    let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.is_error()).collect();
    // A secret's default is written in the runbook (check warns), but never printed: not as the
    // input's default, nor in the body of a step that asks for it (`[ask.NAME] secret = true`).
    let secrets = crate::redact::Redactor::default();
    for b in &mut books {
        for i in b.settings.inputs.values_mut().filter(|i| i.secret) {
            if let Some(d) = i.default.replace(crate::redact::MASK.into()) {
                secrets.add(&d);
            }
        }
        for s in b
            .steps
            .iter()
            .filter(|s| matches!(s.executor, crate::model::Executor::Manual))
        {
            for d in secret_ask_defaults(&s.body) {
                secrets.add(&d);
            }
        }
    }
    if json {
        let v = serde_json::to_value(&books).unwrap_or_default();
        let _ = crate::ui::print_out(&serde_json::to_string_pretty(&secrets.value(&v)).unwrap_or_else(|_| "[]".into()));
    } else {
        let mut out = std::io::stdout().lock();
        for b in &books {
            let _ = writeln!(
                out,
                "{}  {}",
                crate::text::sanitize(&b.path),
                crate::text::sanitize(&b.title)
            );
            if !b.settings.inputs.is_empty() {
                let names: Vec<&str> = b.settings.inputs.keys().map(String::as_str).collect();
                let _ = writeln!(out, "  inputs: {}", crate::text::sanitize(&names.join(", ")));
            }
            for s in &b.steps {
                let what = match s.executor.written() {
                    Some(written) => format!("{} {written}", s.executor.word()),
                    None => s.executor.word().to_string(),
                };
                let _ = writeln!(out, "  {:>5}  {:<32} {}", s.line, s.id, crate::text::sanitize(&what));
            }
        }
    }
    report(&errors, color);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Diagnosed)
    }
}

/// The defaults of the secret questions a manual step's body asks (`[ask.NAME]` with
/// `secret = true` and a `default`).
fn secret_ask_defaults(body: &str) -> Vec<String> {
    let Ok(t) = toml::from_str::<toml::Table>(body) else {
        return Vec::new();
    };
    let Some(toml::Value::Table(asks)) = t.get("ask") else {
        return Vec::new();
    };
    asks.values()
        .filter_map(|a| a.as_table())
        .filter(|a| a.get("secret").and_then(toml::Value::as_bool) == Some(true))
        .filter_map(|a| {
            a.get("default")
                .map(|d| d.as_str().map_or_else(|| d.to_string(), String::from))
        })
        .collect()
}
#[cfg(test)]
mod tests {
    #[test]
    fn finds_secret_ask_defaults() {
        let body = "[ask.t]\nprompt = \"T\"\nsecret = true\ndefault = \"ASKDEFAULTSECRET2\"\n";
        assert_eq!(super::secret_ask_defaults(body), vec!["ASKDEFAULTSECRET2".to_string()]);
    }
}
