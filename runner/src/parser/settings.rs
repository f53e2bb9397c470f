//! The `runbook` block: title, inputs (their patterns judged once each), guard.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::is_identifier;
use crate::diagnostic::{Diagnostic, Diags, Severity};
use crate::model::{Guard, Input, Settings};
use crate::source::{BodyMap, Source, Span};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    title: Option<String>,
    #[serde(default)]
    inputs: BTreeMap<String, toml::Spanned<RawInput>>,
    guard: Option<Guard>,
}

/// `[inputs.NAME]` and `[ask.NAME]` as written, with the spans `check` needs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInput {
    prompt: Option<String>,
    default: Option<String>,
    pattern: Option<toml::Spanned<String>>,
    choices: Option<Vec<String>>,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    key: bool,
    help: Option<String>,
}

#[derive(Clone)]
enum PatternProblem {
    Invalid(String),
    TooBig,
}

/// What is wrong with a pattern, if anything. Building the NFA is most of what checking a runbook
/// costs, and the same patterns recur in every runbook of a directory and every check of a
/// process (the bench, `serve`), so each distinct pattern is judged once; at most 1,024 are kept,
/// so a file of distinct patterns cannot grow the cache without bound.
fn pattern_problem(value: &str) -> Option<PatternProblem> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<String, Option<PatternProblem>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen.lock().ok().and_then(|m| m.get(value).cloned()) {
        return known;
    }
    // Syntax first (its messages are the clearer), then the compiled size under the same
    // limits a run uses, so a regex bomb is a located error here and not a surprise later.
    // Only the NFA is built (what the size limit bounds), not the engines a run adds.
    let problem = match regex_syntax::Parser::new().parse(value) {
        Err(e) => Some(PatternProblem::Invalid(first_line(&e.to_string()))),
        Ok(hir) => {
            use regex_automata::nfa::thompson::{Compiler, Config, WhichCaptures};
            let built = Compiler::new()
                .configure(
                    Config::new()
                        .nfa_size_limit(Some(PATTERN_LIMIT))
                        .shrink(false)
                        .which_captures(WhichCaptures::None),
                )
                .build_from_hir(&hir);
            match built {
                Err(e) if e.size_limit().is_some() => Some(PatternProblem::TooBig),
                Err(e) => Some(PatternProblem::Invalid(first_line(&e.to_string()))),
                Ok(_) => None,
            }
        }
    };
    if let Ok(mut m) = seen.lock() {
        if m.len() < 1024 {
            m.insert(value.to_string(), problem.clone());
        }
    }
    problem
}

impl RawInput {
    /// Converts to the model, checking the pattern and the default against it.
    pub(crate) fn into_input(
        self,
        name: &str,
        span: Span,
        map: &BodyMap<'_>,
        source: &Source,
        diags: &mut Vec<Diagnostic>,
    ) -> Input {
        let pattern = self.pattern.map(|p| {
            let pspan = map.span(p.span());
            let value = p.into_inner();
            // Syntax first (its messages are the clearer), then the compiled size under the same
            // limits a run uses, so a regex bomb is a located error here and not a surprise later.
            // Only the NFA is built (what the size limit bounds), not the engines a run adds.
            let problem = pattern_problem(&value).map(|p| match p {
                PatternProblem::Invalid(e) => format!("invalid pattern for `{name}`: {e}"),
                PatternProblem::TooBig => format!(
                    "pattern for `{name}` is too big: it compiles to more than {} MiB",
                    PATTERN_LIMIT >> 20
                ),
            });
            if let Some(message) = problem {
                diags.push(Diagnostic::error(source, pspan, message));
            }
            value
        });
        // Choices, patterns and defaults are literal: a `${...}` in them is never filled in, so
        // an answer would have to be the expression's text.
        let literal = [pattern.as_deref(), self.default.as_deref()]
            .into_iter()
            .flatten()
            .chain(self.choices.iter().flatten().map(String::as_str));
        if let Some(v) = literal.into_iter().find(|v| v.contains("${")) {
            diags.push(
                Diagnostic::error(
                    source,
                    span,
                    format!("`{name}`: `{v}` is not filled in: choices, pattern and default are literal"),
                )
                .with_help("ask for the value without choices, or list them in the runbook"),
            );
        }
        if let (Some(choices), Some(default)) = (&self.choices, &self.default) {
            if !choices.contains(default) {
                diags.push(Diagnostic::error(
                    source,
                    span,
                    format!("default `{default}` of `{name}` is not one of its choices"),
                ));
            }
        }
        if self.secret && self.choices.is_some() {
            diags.push(
                Diagnostic::error(source, span, format!("secret `{name}` lists its choices in the runbook"))
                    .with_help("the choices of a secret are the secret (the site, `list` and errors would show them); check it with `pattern` instead, or make it not secret"),
            );
        }
        if self.secret && self.default.is_some() {
            diags.push(
                Diagnostic::warning(
                    source,
                    span,
                    format!("secret `{name}` has a default written in the runbook"),
                )
                .with_help("a secret in a Markdown file is not secret; supply it at run time"),
            );
        }
        Input {
            prompt: self.prompt,
            default: self.default,
            pattern,
            choices: self.choices,
            secret: self.secret,
            key: self.key,
            help: self.help,
            span,
        }
    }
}

/// The most memory a compiled input pattern (and its lazy DFA) may take.
pub const PATTERN_LIMIT: usize = 1 << 20;

/// Compiles an input pattern so that it must match the whole value, within [`PATTERN_LIMIT`].
pub fn anchored(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(PATTERN_LIMIT)
        .dfa_size_limit(PATTERN_LIMIT)
        .build()
}

fn first_line(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // regex and toml errors put the useful sentence last.
    let last = lines.last().copied().unwrap_or(s);
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// Turns a toml error into a diagnostic located in the Markdown file.
pub(crate) fn toml_error(source: &Source, map: &BodyMap<'_>, fallback: Span, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().map_or(fallback, |r| map.span(r));
    Diagnostic::error(source, span, format!("invalid TOML: {}", e.message().trim()))
}

pub(super) fn parse_settings(source: &Source, body: &str, lines: &[usize], span: Span, diags: &mut Diags) -> Settings {
    let map = BodyMap::new(body, lines);
    let raw: RawSettings = match toml::from_str(body) {
        Ok(raw) => raw,
        Err(e) => {
            diags.push(toml_error(source, &map, span, &e));
            return Settings {
                span: Some(span),
                ..Settings::default()
            };
        }
    };
    let inputs = raw
        .inputs
        .into_iter()
        .map(|(name, spanned)| {
            let ispan = map.span(spanned.span());
            if !is_identifier(&name) {
                diags.push_with(Severity::Error, || {
                    Diagnostic::error(source, ispan, format!("input name `{name}` is not an identifier"))
                        .with_help("use letters, digits and `_` so that `${inputs.NAME}` can name it")
                });
            }
            let mut found = Vec::new();
            let input = spanned.into_inner().into_input(&name, ispan, &map, source, &mut found);
            diags.extend(found);
            (name, input)
        })
        .collect();
    Settings {
        span: Some(span),
        title: raw.title,
        inputs,
        guard: raw.guard,
    }
}
