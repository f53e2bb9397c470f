//! What a runbook's values become: inputs as parameters, `${...}` as Automation's `{{ ref }}`
//! where it is only a reference (a whole `{{ ref }}` keeps its type), else Python inside a
//! script, which reads every Automation variable it needs through `InputPayload` (each value one
//! `{{ ref }}`, keyed by its Automation name).

use std::collections::BTreeMap;

use super::rhai2py::{self, Ty, py_str};
use super::{AutoType, Lower, Node};
use crate::interp::{self, Piece};
use crate::model::{Executor, Input, Step};
use crate::source::Span;

/// `home_region` -> `HomeRegion`.
pub fn pascal(name: &str) -> String {
    name.split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
        })
        .collect()
}

/// At most `n` characters, cut at a word.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let cut: String = s.chars().take(n).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a);
    format!("{cut} …")
}

/// An input (or a manual step's question) as a document parameter. A secret becomes the name
/// of a SecureString parameter: documents cannot reference SecureString values, and only
/// scripts read it.
pub fn parameter(input: &Input, secret: bool) -> Node {
    let mut desc = input.prompt.clone().unwrap_or_default();
    if let Some(h) = &input.help {
        desc = if desc.is_empty() {
            h.clone()
        } else {
            format!("{desc} ({h})")
        };
    }
    if secret {
        desc = format!("Name of a SecureString parameter in Parameter Store that holds: {desc}");
    }
    let mut n = Node::map().with("type", Node::s("String"));
    if !desc.is_empty() {
        n.set("description", Node::s(desc));
    }
    if let Some(d) = input.default.as_ref().filter(|_| !secret) {
        n.set("default", Node::s(d));
    }
    if let Some(c) = input.choices.as_ref().filter(|_| !secret) {
        n.set("allowedValues", Node::List(c.iter().map(Node::s).collect()));
    } else if let Some(p) = input.pattern.as_ref().filter(|_| !secret) {
        // The runbook matches the whole value; Automation's pattern is a search.
        n.set("allowedPattern", Node::s(format!("^(?:{p})$")));
    }
    n
}

pub fn auto_type(json_types: &[String], human: &str) -> AutoType {
    let has = |t: &str| json_types.iter().any(|j| j == t);
    if has("array") {
        if human.contains("string") {
            "StringList"
        } else {
            "MapList"
        }
    } else if has("object") {
        "StringMap"
    } else if has("boolean") {
        "Boolean"
    } else if has("integer") {
        "Integer"
    } else {
        "String"
    }
}

pub fn ty_of(t: AutoType) -> Ty {
    match t {
        "String" => Ty::Str,
        "Boolean" => Ty::Bool,
        "Integer" => Ty::Int,
        "StringList" | "MapList" => Ty::List,
        "StringMap" => Ty::Map,
        _ => Ty::Unknown,
    }
}

pub fn auto_of(t: Ty) -> AutoType {
    match t {
        Ty::Bool => "Boolean",
        Ty::Int => "Integer",
        Ty::List => "StringList",
        Ty::Map => "StringMap",
        Ty::Str | Ty::Unknown => "String",
    }
}

/// The outputs a step declares before it is lowered (a script's types are refined then).
pub fn declared_outputs(x: &Lower, step: &Step) -> BTreeMap<String, AutoType> {
    let mut m = BTreeMap::new();
    match &step.executor {
        Executor::Manual => {
            let mut d = Vec::new();
            if let Some(man) = crate::manual::parse(x.src, step, &mut d) {
                for (k, _) in man.ask {
                    m.insert(k, "String");
                }
            }
        }
        Executor::Rhai => {
            for k in rhai2py::map_keys(&step.body) {
                m.insert(k, "String");
            }
        }
        Executor::Action { name, .. } => {
            if let Some(call) = step.executor.call() {
                if let Ok(c) = runbook_plugins::call::resolve(call)
                    && let Some(shape) = c.output()
                {
                    for (k, r) in &shape.members {
                        m.insert(k.clone(), super::actions::shape_type(c.service, &r.shape));
                    }
                }
            } else if let Some(a) = x.reg.get(name) {
                for o in &a.info().outputs {
                    m.insert(o.name.clone(), auto_type(&o.json_types, &o.ty));
                }
            }
        }
    }
    m
}

/// Every piece of code a step holds: its script, each `${...}` of its body, `if=`, `for-each=`.
pub fn code_of(step: &Step) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(step.executor, Executor::Rhai) {
        out.push(step.body.clone());
    } else if let Ok(t) = toml::from_str::<toml::Table>(&step.body) {
        let mut strings = Vec::new();
        strings_of(&toml::Value::Table(t), &mut strings);
        for s in strings {
            if let Ok(ps) = interp::pieces(&s) {
                out.extend(ps.into_iter().filter_map(|p| match p {
                    Piece::Expr { code, .. } => Some(code),
                    Piece::Lit(_) => None,
                }));
            }
        }
    }
    out.extend(
        step.attrs
            .if_
            .iter()
            .chain(step.attrs.for_each.iter())
            .map(|a| a.value.clone()),
    );
    out
}

fn strings_of(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(a) => a.iter().for_each(|v| strings_of(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| strings_of(v, out)),
        _ => {}
    }
}

/// Where a piece of code sits in the file: its first occurrence in the step's body (or
/// attribute), then the line and column inside it.
pub fn code_span(step: &Step, code: &str, line: usize, col: usize) -> Span {
    for a in [&step.attrs.if_, &step.attrs.for_each].into_iter().flatten() {
        if a.value == code {
            let off = offset_in(code, line, col);
            return Span::new(a.span.start + off, a.span.start + off + 1);
        }
    }
    match step.body.find(code) {
        Some(at) => {
            let off = at + offset_in(code, line, col);
            step.body_span(Span::new(off, off + 1))
        }
        None => step.info_span,
    }
}

fn offset_in(code: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in code.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off + l.chars().take(col.saturating_sub(1)).map(char::len_utf8).sum::<usize>();
        }
        off += l.len();
    }
    0
}

/// An Automation variable a reference names.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub var: String,
    pub ty: Ty,
    pub secret: bool,
}

impl Lower<'_> {
    pub fn resolve_input(&self, name: &str) -> Result<Resolved, String> {
        let param = self
            .inputs
            .get(name)
            .ok_or_else(|| format!("the runbook has no input `{name}`"))?;
        let secret = self.rb.settings.inputs.get(name).is_some_and(|i| i.secret);
        Ok(Resolved {
            var: param.clone(),
            ty: Ty::Str,
            secret,
        })
    }

    pub fn resolve_step(&self, id: &str, field: &str) -> Result<Resolved, String> {
        let key = interp::step_key(id);
        let info = self
            .info
            .get(&key)
            .ok_or_else(|| format!("the runbook has no step `{id}`"))?;
        if let Some(why) = info.left_out {
            return Err(format!(
                "cannot export a reference to step `{id}`, which the export leaves out ({why})"
            ));
        }
        if info.for_each {
            return Err(format!(
                "cannot export a reference to the outputs of `{id}`: it is a for-each step, and aws:loop keeps no per-item outputs"
            ));
        }
        if info.manual {
            return match self.asks.get(&(key.clone(), field.to_string())) {
                Some((p, secret)) => Ok(Resolved {
                    var: p.clone(),
                    ty: Ty::Str,
                    secret: *secret,
                }),
                None => Err(format!(
                    "`{id}` asks no question `{field}`: only its questions (parameters of the document) can be read"
                )),
            };
        }
        let ty = info.outputs.get(field).map_or(Ty::Unknown, |t| ty_of(t));
        Ok(Resolved {
            var: format!("{}.{field}", info.name),
            ty,
            secret: false,
        })
    }

    pub fn resolve_run(&self, field: &str) -> Result<Option<Resolved>, String> {
        match field {
            "id" => Ok(Some(Resolved {
                var: "automation:EXECUTION_ID".into(),
                ty: Ty::Str,
                secret: false,
            })),
            "started" => Ok(Some(Resolved {
                var: "global:DATE_TIME".into(),
                ty: Ty::Str,
                secret: false,
            })),
            "rehearsal" => Ok(None),
            other => Err(format!(
                "cannot export `run.{other}`: an Automation execution has no {}",
                if other == "user" {
                    "operator at a terminal (its principal is the assumed role)"
                } else {
                    "state directory"
                }
            )),
        }
    }
}

/// What to do about a refusal.
pub fn help_for(message: &str) -> String {
    if message.contains("for-each step") {
        "read the items again in a later step that is not a fan-out (for accounts: `aws organizations.list-accounts` with `name_pattern`, then its `ids`)".into()
    } else if message.contains("`run.") {
        "make it an input of the runbook (`[inputs.NAME]`): the document takes it as a parameter".into()
    } else if message.contains("leaves out") {
        "export that step too (drop its --skip), or leave out this one as well".into()
    } else {
        "rewrite it with the exportable Rhai subset (see the book's SSM Automation page), or leave the step out with --skip".into()
    }
}

/// A reference that is the whole of a `${...}`: `inputs.x`, `steps.a.b`, `run.id`.
pub fn pure_ref(code: &str) -> Option<interp::Ref> {
    let t = code.trim();
    let mut rs = interp::refs(t);
    if rs.len() != 1 {
        return None;
    }
    let r = rs.remove(0);
    let span = match &r {
        interp::Ref::Input { span, .. } => span.clone(),
        interp::Ref::Step {
            span, field: Some(_), ..
        } => span.clone(),
        interp::Ref::Step { .. } => return None,
    };
    (span.start == 0 && span.end == t.len()).then_some(r)
}

/// The scope a script's Python reads: each variable through `InputPayload`.
pub struct PyScope<'l, 'a> {
    pub x: &'l Lower<'a>,
    /// `InputPayload`: key -> `{{ var }}`.
    pub payload: BTreeMap<String, String>,
    /// The loop's iterator variable, inside a for-each step.
    pub item: Option<(String, Ty)>,
    pub reads_secret: bool,
    /// Refusals, flushed into the export's diagnostics by [`PyScope::finish`].
    pub errors: Vec<(Span, String, Option<String>)>,
}

impl<'l, 'a> PyScope<'l, 'a> {
    pub fn new(x: &'l Lower<'a>, item: Option<(String, Ty)>) -> Self {
        PyScope {
            x,
            payload: BTreeMap::new(),
            item,
            reads_secret: false,
            errors: Vec::new(),
        }
    }

    /// The refusals met, for the export's diagnostics.
    pub fn take_errors(&mut self) -> Vec<(Span, String, Option<String>)> {
        std::mem::take(&mut self.errors)
    }

    pub fn read(&mut self, r: &Resolved) -> String {
        self.payload.insert(r.var.clone(), format!("{{{{ {} }}}}", r.var));
        let e = format!("events[{}]", py_str(&r.var));
        if r.secret {
            self.reads_secret = true;
            format!("_secret({e})")
        } else {
            e
        }
    }
}

impl rhai2py::Scope for PyScope<'_, '_> {
    fn input(&mut self, name: &str) -> Result<(String, Ty), String> {
        let r = self.x.resolve_input(name)?;
        Ok((self.read(&r), r.ty))
    }

    fn step(&mut self, id: &str, field: Option<&str>) -> Result<(String, Ty), String> {
        match field {
            Some(f) => {
                let r = self.x.resolve_step(id, f)?;
                Ok((self.read(&r), r.ty))
            }
            None => {
                // The whole step, as a map of everything it outputs.
                let key = interp::step_key(id);
                let fields: Vec<String> = self
                    .x
                    .info
                    .get(&key)
                    .map(|i| i.outputs.keys().cloned().collect())
                    .unwrap_or_default();
                let mut items = Vec::new();
                for f in fields {
                    let r = self.x.resolve_step(id, &f)?;
                    items.push(format!("{}: {}", py_str(&f), self.read(&r)));
                }
                Ok((format!("{{{}}}", items.join(", ")), Ty::Map))
            }
        }
    }

    fn item(&mut self) -> Result<(String, Ty), String> {
        match self.item.clone() {
            Some((var, ty)) => {
                let r = Resolved { var, ty, secret: false };
                Ok((self.read(&r), ty))
            }
            None => Err("`item` is read outside a for-each step".into()),
        }
    }

    fn run(&mut self, field: &str) -> Result<(String, Ty), String> {
        match self.x.resolve_run(field)? {
            Some(r) => Ok((self.read(&r), r.ty)),
            None => Ok(("False".into(), Ty::Bool)),
        }
    }
}

/// A value of a step's body, both ways it can be written: as Automation writes it (`auto`,
/// None when it needs Python) and as Python inside a script (`py`).
#[derive(Debug, Clone)]
pub struct Val {
    pub auto: Option<Node>,
    pub py: String,
    pub ty: Ty,
    pub secret: bool,
}

/// Lowers a TOML value of a step's body. Refusals are reported at their position.
pub fn value(step: &Step, scope: &mut PyScope, v: &toml::Value) -> Val {
    let lit = |auto: Node, py: String, ty| Val {
        auto: Some(auto),
        py,
        ty,
        secret: false,
    };
    match v {
        toml::Value::String(s) => string(step, scope, s),
        toml::Value::Integer(i) => lit(Node::Int(*i), i.to_string(), Ty::Int),
        toml::Value::Boolean(b) => lit(Node::Bool(*b), (if *b { "True" } else { "False" }).into(), Ty::Bool),
        toml::Value::Float(f) => lit(Node::s(f.to_string()), f.to_string(), Ty::Unknown),
        toml::Value::Datetime(d) => lit(Node::s(d.to_string()), py_str(&d.to_string()), Ty::Str),
        toml::Value::Array(a) => {
            let vals: Vec<Val> = a.iter().map(|v| value(step, scope, v)).collect();
            let auto = vals
                .iter()
                .map(|v| v.auto.clone())
                .collect::<Option<Vec<_>>>()
                .map(Node::List);
            let py = format!(
                "[{}]",
                vals.iter().map(|v| v.py.as_str()).collect::<Vec<_>>().join(", ")
            );
            Val {
                auto,
                py,
                ty: Ty::List,
                secret: vals.iter().any(|v| v.secret),
            }
        }
        toml::Value::Table(t) => {
            let vals: Vec<(String, Val)> = t.iter().map(|(k, v)| (k.clone(), value(step, scope, v))).collect();
            let auto = vals
                .iter()
                .map(|(k, v)| v.auto.clone().map(|a| (k.clone(), a)))
                .collect::<Option<Vec<_>>>()
                .map(Node::Map);
            let py = format!(
                "{{{}}}",
                vals.iter()
                    .map(|(k, v)| format!("{}: {}", py_str(k), v.py))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Val {
                auto,
                py,
                ty: Ty::Map,
                secret: vals.iter().any(|(_, v)| v.secret),
            }
        }
    }
}

/// A string with `${...}`: references become `{{ var }}`, other expressions Python.
pub fn string(step: &Step, scope: &mut PyScope, s: &str) -> Val {
    let pieces = match interp::pieces(s) {
        Ok(p) => p,
        Err(_) => {
            return Val {
                auto: Some(Node::s(s)),
                py: py_str(s),
                ty: Ty::Str,
                secret: false,
            };
        }
    };
    let mut auto = Some(String::new());
    let mut py = Vec::new();
    let mut whole_ty = Ty::Str;
    let mut secret = false;
    for p in &pieces {
        match p {
            Piece::Lit(l) => {
                if let Some(a) = &mut auto {
                    a.push_str(l);
                }
                py.push(py_str(l));
            }
            Piece::Expr { code, .. } => {
                let t = expr(step, scope, code);
                secret |= t.secret;
                whole_ty = t.ty;
                match (&mut auto, t.auto) {
                    (Some(a), Some(Node::Str(r))) if pieces.len() == 1 || !matches!(t.ty, Ty::List | Ty::Map) => {
                        a.push_str(&r)
                    }
                    _ => auto = None,
                }
                py.push(if pieces.len() == 1 {
                    t.py
                } else {
                    format!("_str({})", t.py)
                });
            }
        }
    }
    let ty = if pieces.len() == 1 { whole_ty } else { Ty::Str };
    Val {
        auto: auto.map(Node::Str),
        py: if py.is_empty() { "\"\"".into() } else { py.join(" + ") },
        ty,
        secret,
    }
}

/// One `${...}` expression: a reference keeps Automation's substitution; anything else is Python.
pub fn expr(step: &Step, scope: &mut PyScope, code: &str) -> Val {
    if let Some(r) = pure_ref(code) {
        let resolved = match &r {
            interp::Ref::Input { name, .. } => scope.x.resolve_input(name),
            interp::Ref::Step { id, field, .. } => scope.x.resolve_step(id, field.as_deref().unwrap_or("")),
        };
        return match resolved {
            Ok(res) => Val {
                auto: Some(Node::s(format!("{{{{ {} }}}}", res.var))),
                py: scope.read(&res),
                ty: res.ty,
                secret: res.secret,
            },
            Err(m) => {
                let span = code_span(step, code, 1, 1 + code.len() - code.trim_start().len());
                let help = help_for(&m);
                scope.errors.push((span, m, Some(help)));
                Val {
                    auto: None,
                    py: "None".into(),
                    ty: Ty::Unknown,
                    secret: false,
                }
            }
        };
    }
    let before = scope.reads_secret;
    let t = rhai2py::expr(code, scope);
    match t {
        Ok((py, ty)) => {
            let auto = match code.trim() {
                "run.rehearsal" => Some(Node::Bool(false)),
                "!run.rehearsal" => Some(Node::Bool(true)),
                _ => None,
            };
            Val {
                auto,
                py,
                ty,
                secret: scope.reads_secret && !before,
            }
        }
        Err(refusals) => {
            for r in refusals {
                let span = code_span(step, code, r.line, r.col);
                scope.errors.push((
                    span,
                    format!(
                        "cannot export `{}`: {}",
                        code.trim(),
                        r.message.trim_start_matches("cannot export ")
                    ),
                    Some(help_for(&r.message)),
                ));
            }
            Val {
                auto: None,
                py: "None".into(),
                ty: Ty::Unknown,
                secret: false,
            }
        }
    }
}
