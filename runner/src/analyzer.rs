//! `runbook check`: everything that can be known about a runbook without touching AWS.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rhai::{Dynamic, Engine, Scope};
use runbook_plugins::Registry;
use toml::de::DeTable;

use crate::diagnostic::{Diagnostic, Diags, Severity};
use crate::interp::{self, Ref};
use crate::manual;
use crate::model::{Executor, Runbook, Step};
use crate::parser;
use crate::sandbox;
use crate::source::{Source, Span};
use crate::suggest::{closest, same_effect};

mod call;
pub use call::CALL_RULES;
mod on_failure;
mod params;
mod place;

/// The most script one `rhai` step may hold. Rhai's compiler resolves each variable by searching
/// every `let` before it, so its time grows with the square of a script's size: 64 KiB compiles in
/// milliseconds, 1 MiB would take a minute.
pub const MAX_RHAI: usize = 64 << 10;

/// A runbook read and checked, with what `check` said of it (the caller shows it, and refuses to
/// run it if any is an error).
pub struct Checked {
    pub source: Source,
    pub runbook: Runbook,
    pub diags: Vec<Diagnostic>,
}

/// Reads and checks a runbook before it is run (`run`, `plan`, and the executor for the runbook
/// an `on-failure=` step continues into). `Err` is the one diagnostic of a file that
/// cannot be read.
pub fn checked(path: &Path) -> Result<Checked, Diagnostic> {
    let source = crate::load::read(path)?;
    let (runbook, diags) = check(&source, Registry::shared());
    Ok(Checked { source, runbook, diags })
}

/// Parses and checks one runbook; its runbooks root is found from where it lies
/// ([`crate::paths::runbooks_root`]).
pub fn check(source: &Source, registry: &Registry) -> (Runbook, Vec<Diagnostic>) {
    check_in(source, registry, &crate::paths::runbooks_root(source.path()))
}

/// Parses and checks one runbook whose `on-failure=` targets and includes must stay inside `root`.
/// At most [`crate::diagnostic::MAX_PER_FILE`] diagnostics are kept; a note counts the rest.
pub fn check_in(source: &Source, registry: &Registry, root: &Path) -> (Runbook, Vec<Diagnostic>) {
    let mut diags = Diags::new();
    let runbook = parser::parse_into(source, &mut diags);
    let diags = check_parsed(source, &runbook, diags, registry, root);
    (runbook, diags)
}

/// [`check_in`] for a runbook already parsed, with the diagnostics its parsing left: what `render`
/// uses, which parses each runbook once for its pages and checks it beside mdBook's build.
pub fn check_parsed(
    source: &Source,
    runbook: &Runbook,
    mut diags: Diags,
    registry: &Registry,
    root: &Path,
) -> Vec<Diagnostic> {
    let root = crate::paths::canonical(root);
    let mut cx = Checker {
        source,
        registry,
        runbook,
        root: &root,
        engine: sandbox::checking_engine(),
        diags: &mut diags,
        step_index: runbook
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (interp::step_key(&s.id), i))
            .collect(),
        anchors: runbook
            .steps
            .iter()
            .map(|s| s.id.as_str())
            .chain(runbook.sections.iter().map(|s| s.slug.as_str()))
            .collect(),
        outputs: HashMap::new(),
        secret_steps: HashSet::new(),
    };
    cx.check_settings();
    for (i, step) in runbook.steps.iter().enumerate() {
        cx.check_step(i, step);
        if cx.makes_secrets(step) {
            cx.secret_steps.insert(interp::step_key(&step.id));
        }
    }
    cx.check_links();
    diags.finish(&source.path().display().to_string())
}

/// The outputs of a script whose value is a literal map (`#{ email: ..., name: ... }` as its
/// last statement, and no `return` anywhere that could end it with another): that map's keys.
/// Any other script's outputs are known only when it runs.
fn rhai_outputs(engine: &Engine, body: &str) -> Outputs {
    use rhai::{Expr, Stmt};
    let returns = body
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w == "return");
    if returns {
        return Outputs::Any;
    }
    let Ok(ast) = engine.compile(body) else {
        return Outputs::Any;
    };
    let Some(Stmt::Expr(last)) = ast.statements().last() else {
        return Outputs::Any;
    };
    match last.as_ref() {
        Expr::Map(map, _) => Outputs::Known(map.0.iter().map(|(id, _)| id.name.to_string()).collect()),
        // The optimizer folds a map of constants into one value.
        Expr::DynamicConstant(value, _) => match value.read_lock::<rhai::Map>() {
            Some(map) => Outputs::Known(map.keys().map(|k| k.to_string()).collect()),
            None => Outputs::Any,
        },
        _ => Outputs::Any,
    }
}

/// What a later step can read of an earlier one.
#[derive(Clone)]
enum Outputs {
    Known(Vec<String>),
    Any,
}

struct Checker<'a> {
    source: &'a Source,
    registry: &'a Registry,
    runbook: &'a Runbook,
    /// The canonical runbooks root: `on-failure=` and includes stay inside it.
    root: &'a Path,
    engine: &'static Engine,
    diags: &'a mut Diags,
    step_index: HashMap<String, usize>,
    /// Step ids and section slugs, for `on-failure=#...`.
    anchors: HashSet<&'a str>,
    /// Outputs of steps already asked about, by index (a manual body is parsed once).
    outputs: HashMap<usize, Outputs>,
    /// Steps (by expression key) whose outputs are secret: a secret answer, or code that read a
    /// secret. What reads them is secret too.
    secret_steps: HashSet<String>,
}

impl Checker<'_> {
    fn error(&mut self, span: Span, msg: impl Into<String>) {
        let source = self.source;
        self.diags
            .push_with(Severity::Error, || Diagnostic::error(source, span, msg));
    }

    /// `{{#include}}` and the other mdBook links in the prose (never in a step block): their
    /// files must be inside the runbooks root, as `render` requires, and what they add is bounded
    /// as one page of a site is. Then where the site will not publish what the author wrote (raw
    /// HTML, links and images with other schemes, heading attributes): warnings.
    fn check_links(&mut self) {
        let mut machine: Vec<Span> = self.runbook.steps.iter().map(|s| s.span).collect();
        machine.extend(self.runbook.settings.span);
        machine.sort_by_key(|s| s.start);
        let budget = crate::links::Budget::new(self.source.text.len());
        let mut expander = crate::links::Expander::new(self.root, &budget);
        let mut sink = String::new();
        for range in crate::links::prose_ranges(self.source.text.len(), &machine) {
            expander.expand(self.source, range, &mut sink);
            sink.clear();
        }
        self.diags
            .extend(expander.diags.finish(&self.source.path().display().to_string()));
        let blocks: Vec<std::ops::Range<usize>> = machine.iter().map(|s| s.start..s.end).collect();
        let source = self.source;
        let changes = crate::markup::changes(&source.text, &crate::markup::default_options(), &blocks);
        // An HTML block's later lines say nothing of their own.
        for change in changes.iter().filter(|c| !c.why.is_empty()) {
            let span = Span::new(change.range.start, change.range.end);
            self.diags.push_with(Severity::Warning, || {
                Diagnostic::warning(source, span, format!("the site changes this: {}", change.why))
            });
        }
    }

    fn check_settings(&mut self) {
        let Some(guard) = self.runbook.settings.guard.clone() else {
            return;
        };
        let span = self.runbook.settings.span.unwrap_or_default();
        if let Some(acct) = &guard.account {
            let ok = acct == "management"
                || acct == "any"
                || acct.contains("${")
                || (acct.len() == 12 && acct.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                self.error(
                    span,
                    format!("guard account `{acct}` must be `management`, `any` or a 12-digit account id"),
                );
            }
        }
        for value in [guard.account, guard.region].into_iter().flatten() {
            self.check_string(&value, span, None, usize::MAX, false);
        }
    }

    fn check_step(&mut self, index: usize, step: &Step) {
        let has_item = step.attrs.for_each.is_some();
        self.check_attrs(index, step);
        if let Some(name) = step.executor.call() {
            self.check_call(index, step, name, has_item);
            return;
        }
        self.check_call_only_attrs(step);
        match &step.executor {
            Executor::Action { name, .. } => {
                let action = step.executor.written().unwrap_or(name);
                if self.registry.get(name).is_none() {
                    let names = self.registry.names();
                    let prefix = if step.executor.word() == "net" { "net." } else { "" };
                    let span = action_span(step, action);
                    let mut d = Diagnostic::error(
                        self.source,
                        span,
                        format!("unknown {} action `{action}`", step.executor.word()),
                    );
                    let shown: Vec<&str> = names
                        .iter()
                        .filter(|n| n.starts_with("net.") == (prefix == "net."))
                        .map(|n| n.strip_prefix(prefix).unwrap_or(n))
                        .collect();
                    d = match closest(action, &same_effect(action, &shown)) {
                        Some(c) => d.with_help(format!("did you mean `{c}`?")),
                        None => d.with_help(format!("actions are: {}", shown.join(", "))),
                    };
                    self.diags.push(d);
                    self.check_toml_body(index, step, None, has_item);
                } else {
                    self.check_toml_body(index, step, Some(name), has_item);
                }
            }
            Executor::Manual => self.check_manual(index, step, has_item),
            Executor::Rhai => self.check_rhai(index, step, has_item),
        }
    }

    /// The secrets `code` names: `inputs.NAME` of a secret input, `steps.ID` of a secret step.
    fn secrets_named(&self, code: &str) -> Vec<String> {
        let mut out: Vec<String> = interp::refs(code)
            .into_iter()
            .filter_map(|r| match r {
                Ref::Input { name, .. } if self.runbook.settings.inputs.get(&name).is_some_and(|i| i.secret) => {
                    Some(format!("inputs.{name}"))
                }
                Ref::Step { id, .. } if self.secret_steps.contains(&interp::step_key(&id)) => {
                    Some(format!("steps.{id}"))
                }
                _ => None,
            })
            .collect();
        out.dedup();
        out
    }

    /// Whether a step's outputs are secret: it asks a secret question, or its code reads a
    /// secret.
    fn makes_secrets(&self, step: &Step) -> bool {
        if !self.secrets_named(&step.body).is_empty() {
            return true;
        }
        matches!(step.executor, Executor::Manual)
            && crate::manual::parse(self.source, step, &mut Vec::new())
                .is_some_and(|m| m.ask.iter().any(|(_, i)| i.secret))
    }

    fn check_attrs(&mut self, index: usize, step: &Step) {
        self.check_place(index, step);
        let a = &step.attrs;
        // Both are evaluated once, before any fan-out: neither sees `item`.
        for attr in [&a.if_, &a.for_each].into_iter().flatten() {
            self.check_expression(&attr.value, attr.span, index, false);
        }
        // Whether a step runs, and which items it has, show in every log, event and journal: a
        // condition or a list over a secret would spell it out a bit (or an item) at a time.
        // Where a step acts is shown too, and sent: the region is in every request's signature
        // and host name (a DNS query), the account in the role's ARN that is assumed (attacker
        // finding: `plan` printed `region `hun`` and sent an AssumeRole made of a secret).
        for (word, attr) in [
            ("if", &a.if_),
            ("for-each", &a.for_each),
            ("account", &a.account),
            ("region", &a.region),
            ("role", &a.role),
        ] {
            let Some(attr) = attr else { continue };
            let named = self.secrets_named(&attr.value);
            if let Some(first) = named.first() {
                let help = if matches!(word, "if" | "for-each") {
                    format!(
                        "whether a step runs and which items it has are shown in the log, the journal and the events, so a `{word}=` over a secret would tell it; decide inside a `rhai` step that reads it (its outputs stay secret), or on a value that is not secret"
                    )
                } else {
                    format!(
                        "where a step acts is shown in the log and sent to AWS (the region in every request and host name, the account and role in the role assumed), so a `{word}=` made of a secret would tell it; use a value that is not secret"
                    )
                };
                let d = Diagnostic::error(self.source, attr.span, format!("`{word}=` reads the secret `{first}`"))
                    .with_help(help);
                self.diags.push(d);
            }
        }
        if let Some(t) = &a.timeout {
            if t.value.trim().parse::<u64>().is_ok() {
                // A bare number could mean seconds or minutes: say which.
                self.diags.push(
                    Diagnostic::error(self.source, t.span, format!("timeout `{}` has no unit", t.value))
                        .with_help(format!("write `{0}s` or `{0}m`", t.value.trim())),
                );
            } else if runbook_plugins::aws::parse_duration(&t.value).is_none_or(|d| d.is_zero()) {
                self.diags.push(
                    Diagnostic::error(self.source, t.span, format!("timeout `{}` is not a duration", t.value))
                        .with_help("write e.g. `90s`, `10m`, `1h30m`"),
                );
            }
        }
        if let Some(r) = &a.retries {
            if r.value.parse::<u32>().map_or(true, |n| n > 100) {
                self.error(
                    r.span,
                    format!("retries `{}` must be a whole number from 0 to 100", r.value),
                );
            }
        }
        if let Some(f) = &a.on_failure {
            self.check_on_failure(&f.value, f.span);
        }
    }

    /// Compiles an `if=` or `for-each=` expression and checks the names it reads.
    fn check_expression(&mut self, code: &str, span: Span, index: usize, item: bool) {
        let scope = scope(item);
        if let Err(e) = self.engine.compile_expression_with_scope(&scope, code) {
            let col = e.1.position().unwrap_or(1);
            let at = (span.start + col.saturating_sub(1)).min(span.end);
            self.error(Span::new(at, at + 1), format!("expression does not compile: {}", e.0));
            return;
        }
        self.check_refs(code, span.start, span.end, index);
    }

    /// Checks `${...}` in a string value located at `span` (`exact_at` is the file offset of the
    /// string's first character when the string is written verbatim, so columns can be exact).
    fn check_string(&mut self, value: &str, span: Span, exact_at: Option<usize>, index: usize, item: bool) {
        let locate = |r: std::ops::Range<usize>| match exact_at {
            Some(at) => Span::new(at + r.start, at + r.end),
            None => span,
        };
        let pieces = match interp::pieces(value) {
            Ok(p) => p,
            Err(e) => {
                let at = locate(e.at..e.at + 2);
                self.error(at, e.message);
                return;
            }
        };
        for p in pieces {
            if let interp::Piece::Expr { code, span: r } = p {
                let scope = scope(item);
                let at = locate(r.clone());
                if let Err(e) = self.engine.compile_expression_with_scope(&scope, &code) {
                    self.error(at, format!("`${{{}}}` does not compile: {}", code.trim(), e.0));
                    continue;
                }
                self.check_refs(&code, at.start, at.end, index);
            }
        }
    }

    /// `inputs.X` must be declared; `steps.X.Y` must name an earlier step and one of its outputs.
    fn check_refs(&mut self, code: &str, base: usize, end: usize, index: usize) {
        for r in interp::refs(code) {
            let (Ref::Input { span, .. } | Ref::Step { span, .. }) = &r;
            let at = sub_span(base, end, span.clone());
            self.check_ref(r, at, index);
        }
    }

    fn check_ref(&mut self, r: Ref, at: Span, index: usize) {
        let source = self.source;
        let runbook = self.runbook;
        match r {
            Ref::Input { name, .. } => {
                if !runbook.settings.inputs.contains_key(&name) {
                    self.diags.push_with(Severity::Error, || {
                        let names: Vec<&str> = runbook.settings.inputs.keys().map(String::as_str).collect();
                        let d = Diagnostic::error(source, at, format!("unknown input `{name}`"));
                        match closest(&name, &names) {
                            Some(c) => d.with_help(format!("did you mean `{c}`?")),
                            None if names.is_empty() => {
                                d.with_help("declare it under [inputs.NAME] in the `runbook` block")
                            }
                            None => d.with_help(format!("inputs are: {}", names.join(", "))),
                        }
                    });
                }
            }
            Ref::Step { id, field, .. } => {
                let key = interp::step_key(&id);
                match self.step_index.get(&key).copied() {
                    None => self.diags.push_with(Severity::Error, || {
                        let ids: Vec<String> = runbook.steps[..index.min(runbook.steps.len())]
                            .iter()
                            .map(|s| interp::step_key(&s.id))
                            .collect();
                        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                        let d = Diagnostic::error(source, at, format!("no step `{id}` in this runbook"));
                        match closest(&key, &refs) {
                            Some(c) => d.with_help(format!("did you mean `steps.{c}`?")),
                            None => d,
                        }
                    }),
                    Some(i) if i >= index => self.diags.push_with(Severity::Error, || {
                        Diagnostic::error(source, at, format!("step `{id}` does not come before this one"))
                            .with_help("a step can read the outputs of earlier steps only")
                    }),
                    Some(i) => {
                        let Some(field) = field else { return };
                        if let Outputs::Known(known) = self.outputs_of(i) {
                            if !known.contains(&field) {
                                let step_id = &runbook.steps[i].id;
                                self.diags.push_with(Severity::Error, || {
                                    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
                                    let d = Diagnostic::error(
                                        source,
                                        at,
                                        format!("step `{step_id}` has no output `{field}`"),
                                    );
                                    match closest(&field, &refs) {
                                        Some(c) => d.with_help(format!("did you mean `{c}`?")),
                                        None => d.with_help(format!("its outputs are: {}", known.join(", "))),
                                    }
                                });
                            }
                        }
                    }
                }
            }
        }
    }

    /// What step `i` outputs, worked out once per step.
    fn outputs_of(&mut self, i: usize) -> Outputs {
        if let Some(o) = self.outputs.get(&i) {
            return o.clone();
        }
        let o = self.outputs_of_step(&self.runbook.steps[i]);
        self.outputs.insert(i, o.clone());
        o
    }

    fn outputs_of_step(&self, step: &Step) -> Outputs {
        let mut known = match &step.executor {
            Executor::Action { .. } if step.executor.call().is_some() => {
                match runbook_plugins::call::resolve(step.executor.call().unwrap_or_default()) {
                    Ok(c) => c.output_members(),
                    Err(_) => return Outputs::Any,
                }
            }
            Executor::Action { name, .. } => match self.registry.get(name) {
                Some(a) => a.info().outputs.iter().map(|f| f.name.clone()).collect(),
                None => return Outputs::Any,
            },
            Executor::Manual => {
                let mut sink = Vec::new();
                match manual::parse(self.source, step, &mut sink) {
                    Some(m) => {
                        let mut v: Vec<String> = m.ask.into_iter().map(|(n, _)| n).collect();
                        v.push("confirmed".into());
                        v
                    }
                    None => return Outputs::Any,
                }
            }
            Executor::Rhai => match rhai_outputs(self.engine, &step.body) {
                Outputs::Known(k) => k,
                Outputs::Any => return Outputs::Any,
            },
        };
        if step.attrs.for_each.is_some() {
            // A fan-out's outputs are a list of the item outputs, plus the items themselves.
            known = vec!["items".into(), "results".into()];
        }
        Outputs::Known(known)
    }

    fn check_manual(&mut self, index: usize, step: &Step, item: bool) {
        let mut found = Vec::new();
        let parsed = manual::parse(self.source, step, &mut found);
        self.diags.extend(found);
        let Some(m) = parsed else {
            return;
        };
        let span = step.info_span;
        // Walk the body again with spans, so `${...}` errors point into the string.
        if let Ok(table) = DeTable::parse(&step.body) {
            self.check_values(table.get_ref(), &step.body_map(), index, item);
        }
        if let Some(v) = &m.verify {
            let vspan = m.verify_span.unwrap_or(span);
            match manual::verify_action(v) {
                Err(bad) => self.error(vspan, bad.to_string()),
                Ok(name) => match self.registry.get(&name) {
                    None => self.error(vspan, format!("`verify` names unknown action `{name}`")),
                    Some(a) if a.info().mutates => self.error(
                        vspan,
                        format!("`verify` must be a read-only check, and `{name}` changes things"),
                    ),
                    Some(a) if a.info().params.iter().any(|p| p.required) => self.error(
                        vspan,
                        format!("`verify` action `{name}` needs parameters; use an `aws` step after this one"),
                    ),
                    Some(_) => {}
                },
            }
        }
        for (name, input) in &m.ask {
            if !parser::is_identifier(name) {
                self.error(input.span, format!("question name `{name}` is not an identifier"));
            }
        }
    }

    fn check_rhai(&mut self, index: usize, step: &Step, item: bool) {
        if step.body.len() > MAX_RHAI {
            // Rhai's compiler looks each variable up through every `let` before it: quadratic.
            self.error(
                step.info_span,
                format!(
                    "this Rhai step is {} KiB; a step holds at most {} KiB of script",
                    step.body.len() >> 10,
                    MAX_RHAI >> 10
                ),
            );
            return;
        }
        let scope = scope(item);
        match self.engine.compile_with_scope(&scope, &step.body) {
            Err(e) => {
                let pos = e.1;
                let span = match (pos.line(), pos.position()) {
                    (Some(l), c) => step.body_line_col(l, c.unwrap_or(1)),
                    _ => step.info_span,
                };
                self.error(span, format!("Rhai: {}", e.0));
            }
            Ok(_) => {
                // One pass over the script: each reference is located and checked as found.
                let map = step.body_map();
                for r in interp::refs(&step.body) {
                    let (Ref::Input { span, .. } | Ref::Step { span, .. }) = &r;
                    let at = map.span(span.clone());
                    self.check_ref(r, at, index);
                }
            }
        }
    }
}

fn action_span(step: &Step, action: &str) -> Span {
    // The action is the second word of the info string.
    let start = step.info_span.start + step.executor.word().len() + 1;
    Span::new(start, start + action.len())
}

fn sub_span(base: usize, end: usize, r: std::ops::Range<usize>) -> Span {
    Span::new((base + r.start).min(end), (base + r.end).min(end))
}

/// The names an expression may read.
fn scope(item: bool) -> Scope<'static> {
    let mut s = Scope::new();
    s.push("inputs", rhai::Map::new());
    s.push("steps", rhai::Map::new());
    s.push("run", rhai::Map::new());
    if item {
        s.push("item", Dynamic::UNIT);
    }
    s
}
