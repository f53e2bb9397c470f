//! The limits file (`--limits FILE`, `RUNBOOK_LIMITS`): AWS limits an operator keeps with the
//! project, as TOML tables `[rate]` (requests per second per API family) and `[in-progress]`
//! (operations in progress at once), each value a number above zero or `"off"`. It changes the
//! published limits; `--rate` and `--in-progress` then change the file's. Every problem is
//! reported at its `file:line:col`, all of them at once.

use std::path::Path;

use runbook_plugins::{AwsLimits, LimitError};
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Diagnostic;
use crate::source::{Source, Span};
use crate::suggest::closest;

const TABLES: &[&str] = &["rate", "in-progress"];

/// Applies the file at `path` to `limits`; on any problem, the diagnostics (and `limits` is left
/// as it was).
pub fn apply(path: &Path, limits: &mut AwsLimits) -> Result<(), Vec<Diagnostic>> {
    let source = crate::load::read(path).map_err(|d| vec![d])?;
    apply_source(&source, limits)
}

fn apply_source(source: &Source, limits: &mut AwsLimits) -> Result<(), Vec<Diagnostic>> {
    let span = |r: std::ops::Range<usize>| Span::new(r.start, r.end);
    let table = DeTable::parse(&source.text).map_err(|e| {
        let at = e.span().map_or(Span::default(), span);
        vec![Diagnostic::error(
            source,
            at,
            format!("invalid TOML: {}", e.message().trim()),
        )]
    })?;
    let mut out = limits.clone();
    let mut diags = Vec::new();
    for (key, value) in table.get_ref().iter() {
        let name = key.get_ref().as_ref();
        let kspan = span(key.span());
        if !TABLES.contains(&name) {
            let d = Diagnostic::error(source, kspan, format!("unknown key `{name}` in a limits file"));
            diags.push(match closest(name, TABLES) {
                Some(c) => d.with_help(format!("did you mean `[{c}]`?")),
                None => d.with_help("a limits file has the tables [rate] and [in-progress]"),
            });
            continue;
        }
        let DeValue::Table(entries) = value.get_ref() else {
            diags.push(Diagnostic::error(
                source,
                span(value.span()),
                format!("`{name}` must be a table: [{name}]"),
            ));
            continue;
        };
        let rate = name == "rate";
        let known: Vec<String> = if rate {
            out.families().into_iter().map(String::from).collect()
        } else {
            out.capped_operations().into_iter().map(String::from).collect()
        };
        for (k, v) in entries.iter() {
            let entry = k.get_ref().as_ref();
            let kspan = span(k.span());
            let vspan = span(v.span());
            if !known.iter().any(|n| n == entry) {
                let what = if rate {
                    "API family"
                } else {
                    "operation with an in-progress cap"
                };
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                let d = Diagnostic::error(source, kspan, format!("unknown {what} `{entry}`"));
                diags.push(match closest(entry, &names) {
                    Some(c) => d.with_help(format!("did you mean `{c}`?")),
                    None => d.with_help(format!("known: {}", names.join(", "))),
                });
                continue;
            }
            let set = if rate {
                number(v.get_ref(), false).and_then(|n| out.set_rate_to(entry, n).map_err(|e| e.to_string()))
            } else {
                number(v.get_ref(), true).and_then(|n| {
                    out.set_in_progress_to(entry, n.map(|n| n as usize))
                        .map_err(|e: LimitError| e.to_string())
                })
            };
            if set.is_err() {
                let expected = if rate {
                    "requests per second (a number above zero) or \"off\""
                } else {
                    "how many at once (a whole number above zero) or \"off\""
                };
                diags.push(Diagnostic::error(
                    source,
                    vspan,
                    format!("`{entry}` must be {expected}"),
                ));
            }
        }
    }
    if diags.is_empty() {
        *limits = out;
        return Ok(());
    }
    crate::diagnostic::sort(&mut diags);
    Err(diags)
}

/// A value: Some(number) above zero (`whole`: an integer), None for `"off"`.
fn number(v: &DeValue<'_>, whole: bool) -> Result<Option<f64>, String> {
    let n = match v {
        DeValue::String(s) if s.as_ref() == "off" => return Ok(None),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
        DeValue::Float(f) if !whole => f.as_str().replace('_', "").parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n > 0.0 && n.is_finite() && (!whole || n <= u32::MAX as f64) => Ok(Some(n)),
        _ => Err("not a number above zero".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_text(text: &str) -> (AwsLimits, Vec<String>) {
        let mut l = runbook_plugins::aws::published_limits();
        let r = apply_source(&Source::new("limits.toml", text), &mut l);
        let msgs = r
            .err()
            .unwrap_or_default()
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect();
        (l, msgs)
    }

    #[test]
    fn values_and_off() {
        let (l, errs) = apply_text(
            "[rate]\nsso-admin = 5\norganizations = \"off\"\nidentitystore = 2.5\n\n[in-progress]\nCreateAccount = 2\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(l.rate("sso-admin"), Some(5.0));
        assert_eq!(l.rate("organizations"), None);
        assert_eq!(l.rate("identitystore"), Some(2.5));
        assert_eq!(l.in_progress("CreateAccount"), Some(2));
        assert_eq!(l.in_progress("CreateAccountAssignment"), Some(15));
    }

    #[test]
    fn every_problem_at_its_place_and_nothing_applied() {
        let (l, errs) = apply_text(
            "[rate]\nsso-admin = 0\nsso-admn = 5\n[in-progress]\nCreateAccount = 2.5\nCreateAccountAssignment = true\n[rates]\n",
        );
        assert_eq!(
            errs,
            [
                "2:13: `sso-admin` must be requests per second (a number above zero) or \"off\"",
                "3:1: unknown API family `sso-admn`",
                "5:17: `CreateAccount` must be how many at once (a whole number above zero) or \"off\"",
                "6:27: `CreateAccountAssignment` must be how many at once (a whole number above zero) or \"off\"",
                "7:2: unknown key `rates` in a limits file",
            ]
        );
        assert_eq!(l, runbook_plugins::aws::published_limits());
    }
}
