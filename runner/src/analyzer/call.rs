//! `check` for generic calls (`aws SERVICE:Operation`): the operation's name, and the request's
//! member names and types against the service model, each error located in the Markdown.

use runbook_plugins::call::{self, Measure, NameError, Service, Shape};
use toml::de::{DeTable, DeValue};

use super::{Checker, action_span, closest};
use crate::diagnostic::{Diagnostic, Severity};
use crate::interp;
use crate::model::Step;
use crate::source::BodyMap;
use crate::source::Span;

/// The generic call's rules, as the reference and the terminal both say them: what `check`
/// enforces here and what the executor does with such a step.
pub const CALL_RULES: &str = "`aws SERVICE:Operation` calls any operation of any AWS service by its API name (`aws s3:PutBucketVersioning`, `aws ec2:DescribeVpcs`; the service as the AWS CLI names it). The body is the request in the API's member names (PascalCase, nested tables and arrays as the API shapes them; timestamps in ISO 8601 or as TOML datetimes, blobs in base64); the outputs are the response as a map (`steps.ID.Accounts[0].Id`, timestamps in ISO 8601). Names and types are checked by `runbook check` against AWS's service models. An operation whose name starts with Describe, List, Get or Head, or that the model marks read-only, reads, to its last page; any other changes AWS (`mutates=true|false` overrides). An operation that streams its request or answer (s3 GetObject, PutObject) cannot be a step. Global services (iam, organizations, route53, ...) answer in one region whatever the step's. `plan` makes the reads and shows the changes without sending them. A change passes the guard and journals its intent before it is sent; after an unknown outcome (lost answer, 5xx, timeout, crash) a re-run stops and asks (answer `resend = true` under [steps.ID]) unless the step says `on-unknown=retry`.";

/// The closest name, preferring one that differs only in case (`UserID` for `UserId`).
fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .find(|c| c.eq_ignore_ascii_case(word))
        .copied()
        .or_else(|| closest(word, candidates))
}

impl Checker<'_> {
    pub(super) fn check_call(&mut self, index: usize, step: &Step, name: &str, item: bool) {
        self.check_call_attrs(step);
        // `mutates=false` on an operation whose name says it changes something makes `plan` send
        // it and the journal skip its intent: allowed (the author may know better), said aloud.
        if let Some(m) = step.attrs.mutates.as_ref().filter(|m| m.value == "false") {
            if !call::reads(name) {
                let source = self.source;
                self.diags.push_with(Severity::Warning, || {
                    Diagnostic::warning(
                        source,
                        m.span,
                        format!("`{name}` is treated as read-only: `plan` will send it, and no intent is journaled before it"),
                    )
                    .with_help("only operations that change nothing should say mutates=false")
                });
            }
        }
        let span = action_span(step, name);
        let resolved = match call::resolve(name) {
            Ok(c) => Some(c),
            Err(e) => {
                let help = match &e {
                    NameError::Syntax(_) => {
                        "write the service, a colon and the operation as the API reference names it".to_string()
                    }
                    NameError::UnknownService { service, candidates } => match suggest(service, candidates) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => {
                            "services are named as the AWS CLI names them (`runbook actions` lists them)".to_string()
                        }
                    },
                    NameError::UnknownOperation {
                        operation, candidates, ..
                    } => match suggest(operation, candidates) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => "operations are named as in the API reference, e.g. `ListAccounts`".to_string(),
                    },
                };
                self.diags
                    .push(Diagnostic::error(self.source, span, e.to_string()).with_help(help));
                None
            }
        };
        let map = step.body_map();
        let table = match DeTable::parse(&step.body) {
            Ok(t) => t.into_inner(),
            Err(e) => {
                let at = e.span().map_or(step.info_span, |r| map.span(r));
                self.error(at, format!("invalid TOML: {}", e.message().trim()));
                return;
            }
        };
        if let Some(why) = resolved.and_then(|c| c.refusal()) {
            self.diags.push(
                Diagnostic::error(self.source, span, why)
                    .with_help("a step's request and answer are held whole in memory and in the journal"),
            );
        }
        if let Some(c) = resolved {
            match c.input() {
                Some(shape) => {
                    let what = c.full_name();
                    self.check_members(c.service, shape, &table, &map, step.info_span, what, "");
                }
                None if !table.is_empty() => {
                    self.error(step.info_span, format!("`{}` takes no request members", c.full_name()))
                }
                None => {}
            }
        }
        self.check_values(&table, &map, index, item);
    }

    fn check_call_attrs(&mut self, step: &Step) {
        if let Some(m) = &step.attrs.mutates {
            if m.value != "true" && m.value != "false" {
                self.error(m.span, format!("mutates `{}` must be `true` or `false`", m.value));
            }
        }
        if let Some(u) = &step.attrs.on_unknown {
            if u.value != "retry" && u.value != "ask" {
                self.error(u.span, format!("on-unknown `{}` must be `retry` or `ask`", u.value));
            }
        }
    }

    /// Attributes only a generic call takes, written on another step.
    pub(super) fn check_call_only_attrs(&mut self, step: &Step) {
        for (name, attr) in [("mutates", &step.attrs.mutates), ("on-unknown", &step.attrs.on_unknown)] {
            if let Some(a) = attr {
                let source = self.source;
                self.diags.push_with(Severity::Error, || {
                    Diagnostic::error(source, a.span, format!("`{name}=` is for generic calls only"))
                        .with_help("a built-in action knows whether it changes AWS and how it resumes; `aws SERVICE:Operation` steps take this attribute")
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_members(
        &mut self,
        service: &Service,
        shape: &Shape,
        table: &DeTable<'_>,
        map: &BodyMap<'_>,
        at: Span,
        what: &str,
        path: &str,
    ) {
        let names: Vec<&str> = shape.members.keys().map(String::as_str).collect();
        for (key, value) in table.iter() {
            let k = key.get_ref().as_ref();
            let kspan = map.span(key.span());
            let member_path = if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            };
            match shape.members.get(k) {
                None => {
                    let source = self.source;
                    self.diags.push_with(Severity::Error, || {
                        let d =
                            Diagnostic::error(source, kspan, format!("`{what}` has no request member `{member_path}`"));
                        match suggest(k, &names) {
                            Some(c) => d.with_help(format!("did you mean `{c}`?")),
                            None if names.is_empty() => d.with_help("it takes no members here"),
                            None => d.with_help(format!("members here are: {}", names.join(", "))),
                        }
                    });
                }
                Some(r) => {
                    if let Some(inner) = service.shape(&r.shape) {
                        self.check_member(
                            service,
                            inner,
                            value.get_ref(),
                            map.span(value.span()),
                            map,
                            what,
                            &member_path,
                        );
                    }
                }
            }
        }
        for r in &shape.required {
            // An idempotency token left out is filled in when the call is made, as the SDKs do.
            let filled = shape.members.get(r).is_some_and(|m| m.idempotency_token);
            if !filled && !table.keys().any(|k| k.get_ref().as_ref() == r.as_str()) {
                let p = if path.is_empty() {
                    r.clone()
                } else {
                    format!("{path}.{r}")
                };
                self.error(at, format!("`{what}` needs request member `{p}`"));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_member(
        &mut self,
        service: &Service,
        shape: &Shape,
        value: &DeValue<'_>,
        span: Span,
        map: &BodyMap<'_>,
        what: &str,
        path: &str,
    ) {
        let kind = match value {
            DeValue::String(s) => {
                if interp::pieces(s).is_ok_and(|p| interp::whole_expr(&p).is_some()) {
                    return; // typed when it is resolved
                }
                if !shape.choices.is_empty() && !s.contains("${") && !shape.choices.iter().any(|c| c == s.as_ref()) {
                    self.error(
                        span,
                        format!("`{path}` must be one of {}, not `{s}`", shape.choices.join(", ")),
                    );
                    return;
                }
                "string"
            }
            DeValue::Integer(_) => "integer",
            DeValue::Float(_) => "number",
            DeValue::Boolean(_) => "boolean",
            DeValue::Datetime(_) => "timestamp",
            DeValue::Array(_) => "array",
            DeValue::Table(_) => "object",
        };
        let want = shape.json_kind();
        let ok = want == "any"
            || want == kind
            || (want == "number" && kind == "integer")
            || (kind == "timestamp" && shape.ty == "timestamp")
            || (kind == "integer" && shape.ty == "timestamp");
        if ok && shape.ty == "timestamp" {
            if let DeValue::String(s) = value {
                if !s.contains("${") && !call::is_timestamp(s) {
                    self.error(
                        span,
                        format!("`{path}` must be a timestamp (ISO 8601, e.g. 2025-01-31T12:00:00Z), not `{s}`"),
                    );
                    return;
                }
            }
        }
        if ok && shape.ty == "blob" {
            if let DeValue::String(s) = value {
                if !s.contains("${") && !call::is_base64(s) {
                    self.error(span, format!("`{path}` is a blob: write it in base64"));
                    return;
                }
            }
        }
        if !ok {
            self.error(
                span,
                format!(
                    "`{path}` must be {}, not {}",
                    shape.describe(),
                    super::params::article(kind)
                ),
            );
            return;
        }
        let measure = match value {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| Measure::Number(n as f64)),
            DeValue::Float(f) => f.as_str().parse().ok().map(Measure::Number),
            DeValue::String(s) if !s.contains("${") => Some(Measure::Chars(s.chars().count())),
            DeValue::Array(a) => Some(Measure::Items(a.len())),
            _ => None,
        };
        if let Some(why) = measure.and_then(|m| shape.out_of_bounds(m)) {
            self.error(span, format!("`{path}` {why}"));
            return;
        }
        match value {
            DeValue::Table(t) if shape.ty == "structure" && !shape.document => {
                self.check_members(service, shape, t, map, span, what, path)
            }
            DeValue::Table(t) if shape.ty == "map" => {
                if let Some(inner) = shape.value.as_ref().and_then(|r| service.shape(&r.shape)) {
                    for (k, v) in t.iter() {
                        let p = format!("{path}.{}", k.get_ref());
                        self.check_member(service, inner, v.get_ref(), map.span(v.span()), map, what, &p);
                    }
                }
            }
            DeValue::Array(items) => {
                if let Some(inner) = shape.member.as_ref().and_then(|r| service.shape(&r.shape)) {
                    for (i, v) in items.iter().enumerate() {
                        let p = format!("{path}[{i}]");
                        self.check_member(service, inner, v.get_ref(), map.span(v.span()), map, what, &p);
                    }
                }
            }
            _ => {}
        }
    }
}
