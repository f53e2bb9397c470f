//! Step bodies against their action's parameters: unknown and missing keys, literal types,
//! choices and typed strings (durations), and every `${...}` inside.

use std::collections::HashSet;

use runbook_plugins::FieldSpec;
use toml::de::{DeTable, DeValue};

use super::Checker;
use crate::diagnostic::{Diagnostic, Severity};
use crate::interp;
use crate::model::Step;
use crate::source::BodyMap;
use crate::source::Span;
use crate::suggest::closest;

impl Checker<'_> {
    pub(super) fn check_toml_body(&mut self, index: usize, step: &Step, action: Option<&str>, item: bool) {
        let map = step.body_map();
        let table = match DeTable::parse(&step.body) {
            Ok(t) => t,
            Err(e) => {
                let span = e.span().map_or(step.info_span, |r| map.span(r));
                self.error(span, format!("invalid TOML: {}", e.message().trim()));
                return;
            }
        };
        let table = table.into_inner();
        if let Some(name) = action {
            let Some(info) = self.registry.get(name).map(|a| a.info().clone()) else {
                return;
            };
            let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
            for (key, value) in table.iter() {
                let kspan = map.span(key.span());
                match info.param(key.get_ref()) {
                    None => {
                        let source = self.source;
                        self.diags.push_with(Severity::Error, || {
                            let d = Diagnostic::error(
                                source,
                                kspan,
                                format!("unknown parameter `{}` for `{name}`", key.get_ref()),
                            );
                            match closest(key.get_ref(), &names) {
                                Some(c) => d.with_help(format!("did you mean `{c}`?")),
                                None if names.is_empty() => d.with_help(format!("`{name}` takes no parameters")),
                                None => d.with_help(format!("parameters are: {}", names.join(", "))),
                            }
                        });
                    }
                    Some(spec) => self.check_type(spec, value.get_ref(), map.span(value.span())),
                }
            }
            let given: HashSet<&str> = table.keys().map(|k| k.get_ref().as_ref()).collect();
            for p in info.params.iter().filter(|p| p.required) {
                if !given.contains(p.name.as_str()) {
                    self.diags.push(
                        Diagnostic::error(
                            self.source,
                            step.info_span,
                            format!("`{name}` needs parameter `{}`", p.name),
                        )
                        .with_help(format!("{}: {}", p.name, p.doc)),
                    );
                }
            }
        }
        self.check_values(&table, &map, index, item);
    }

    pub(super) fn check_type(&mut self, spec: &FieldSpec, value: &DeValue<'_>, span: Span) {
        let kind = match value {
            DeValue::String(s) => {
                if interp::pieces(s).is_ok_and(|p| interp::whole_expr(&p).is_some()) {
                    return; // typed at run time
                }
                if !spec.choices.is_empty() && !spec.choices.iter().any(|c| c == s.as_ref()) && !s.contains("${") {
                    self.error(
                        span,
                        format!("`{}` must be one of {}, not `{s}`", spec.name, spec.choices.join(", ")),
                    );
                    return;
                }
                if let Some(pattern) = &spec.pattern {
                    if !s.contains("${") && !pattern_matches(pattern, s) {
                        let like = match spec.examples.as_slice() {
                            [] => String::new(),
                            ex => format!(
                                " such as {}",
                                ex.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                            ),
                        };
                        self.error(
                            span,
                            format!("`{}` must be {}{like}, not `{s}`", spec.name, typed_name(spec)),
                        );
                        return;
                    }
                }
                "string"
            }
            DeValue::Integer(_) => "integer",
            DeValue::Float(_) => "number",
            DeValue::Boolean(_) => "boolean",
            DeValue::Datetime(_) => "string",
            DeValue::Array(_) => "array",
            DeValue::Table(_) => "object",
        };
        let ok = spec
            .json_types
            .iter()
            .any(|t| t == kind || (t == "number" && kind == "integer"));
        if !ok {
            self.error(
                span,
                format!("`{}` must be {}, not {}", spec.name, spec.ty, article(kind)),
            );
        }
    }

    /// Every string in a TOML body: its `${...}` expressions must compile and name known things.
    pub(super) fn check_values(&mut self, table: &DeTable<'_>, map: &BodyMap<'_>, index: usize, item: bool) {
        for value in table.values() {
            self.check_value(value.get_ref(), value.span(), map, index, item);
        }
    }

    pub(super) fn check_value(
        &mut self,
        value: &DeValue<'_>,
        range: std::ops::Range<usize>,
        map: &BodyMap<'_>,
        index: usize,
        item: bool,
    ) {
        match value {
            DeValue::String(s) => {
                let span = map.span(range.clone());
                let raw = map.body.get(range.clone()).unwrap_or("");
                // Exact columns when the string is written as-is between its quotes.
                let exact = ["\"\"\"", "'''", "\"", "'"]
                    .iter()
                    .find(|q| raw.starts_with(**q) && raw.get(q.len()..q.len() + s.len()) == Some(s.as_ref()))
                    .map(|q| map.offset(range.start + q.len()));
                self.check_string(s, span, exact, index, item);
            }
            DeValue::Array(items) => {
                for v in items {
                    self.check_value(v.get_ref(), v.span(), map, index, item);
                }
            }
            DeValue::Table(t) => self.check_values(t, map, index, item),
            _ => {}
        }
    }
}

/// Whether a literal matches a parameter's schema pattern (compiled once per pattern; a pattern
/// that does not compile, which would be our bug, accepts everything rather than block a run).
fn pattern_matches(pattern: &str, value: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static COMPILED: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let Ok(mut m) = COMPILED.get_or_init(Default::default).lock() else {
        return true;
    };
    m.entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok())
        .as_ref()
        .is_none_or(|re| re.is_match(value))
}

/// What a patterned string parameter holds, in words.
fn typed_name(spec: &FieldSpec) -> &'static str {
    if spec.examples.iter().any(|e| e.starts_with("PT")) {
        "an ISO-8601 duration"
    } else if spec.pattern.as_deref() == Some(runbook_plugins::duration::WAIT_PATTERN) {
        "a duration with a unit"
    } else {
        "a value"
    }
}

pub(super) fn article(kind: &str) -> String {
    match kind {
        "integer" | "array" | "object" => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}
