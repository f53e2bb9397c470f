//! The body of a `manual` step: what the person confirms, what they are asked, and the machine
//! check that runs after they confirm.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::model::{Input, Step};
use crate::parser::{RawInput, toml_error};
use crate::source::{Source, Span};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Manual {
    /// The yes/no question (default: "Done?").
    pub confirm: Option<String>,
    /// Text shown before the question; may use `${...}`.
    pub instructions: Option<String>,
    /// A plugin action (`aws iam.check-root-mfa`) run after the person confirms.
    pub verify: Option<String>,
    #[serde(skip)]
    pub verify_span: Option<Span>,
    /// Questions, in the order written.
    pub ask: Vec<(String, Input)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManual {
    confirm: Option<String>,
    instructions: Option<String>,
    verify: Option<toml::Spanned<String>>,
    #[serde(default)]
    ask: BTreeMap<String, toml::Spanned<RawInput>>,
}

/// Parses a manual step's body. Questions keep the order they were written in.
pub fn parse(source: &Source, step: &Step, diags: &mut Vec<Diagnostic>) -> Option<Manual> {
    let map = step.body_map();
    let raw: RawManual = match toml::from_str(&step.body) {
        Ok(r) => r,
        Err(e) => {
            diags.push(toml_error(source, &map, step.info_span, &e));
            return None;
        }
    };
    let mut ask: Vec<(String, Input, usize)> = raw
        .ask
        .into_iter()
        .map(|(name, spanned)| {
            let at = spanned.span().start;
            let span = map.span(spanned.span());
            let input = spanned.into_inner().into_input(&name, span, &map, source, diags);
            (name, input, at)
        })
        .collect();
    ask.sort_by_key(|(_, _, at)| *at);
    Some(Manual {
        confirm: raw.confirm,
        instructions: raw.instructions,
        verify_span: raw.verify.as_ref().map(|v| map.span(v.span())),
        verify: raw.verify.map(|v| v.into_inner()),
        ask: ask.into_iter().map(|(n, i, _)| (n, i)).collect(),
    })
}

/// A `verify` that does not name an action the way it must.
#[derive(Debug, thiserror::Error)]
#[error("`verify` must be `aws SERVICE.ACTION` or `net ACTION`, not `{}`", .0.escape_debug())]
pub struct BadVerify(pub String);

/// `aws iam.check-root-mfa` -> `iam.check-root-mfa`; `net check-reachable` -> `net.check-reachable`.
pub fn verify_action(verify: &str) -> Result<String, BadVerify> {
    let mut words = verify.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("aws"), Some(a), None) => Ok(a.to_string()),
        (Some("net"), Some(a), None) => Ok(crate::model::Executor::action_step(crate::model::Family::Net, a)
            .action()
            .unwrap_or(a)
            .to_string()),
        _ => Err(BadVerify(verify.to_string())),
    }
}
