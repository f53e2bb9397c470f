//! Evaluating what a runbook computes: `if=` and `for-each=` expressions, `${...}` in bodies, and
//! the scope (`inputs`, `steps`, `run`, `item`) they see.

use std::collections::BTreeSet;

use rhai::{Dynamic, Engine, Scope};
use serde_json::Value;

use crate::interp::{self, Piece};
use crate::redact::Redactor;

/// The values expressions can read.
///
/// Secrets are in scope only for code that names them (`inputs.pw`, `steps.ask_pin`), so what
/// code reads of a secret is known before it runs; whatever such code computes is remembered by
/// the redactor as secret too.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub inputs: serde_json::Map<String, Value>,
    pub steps: serde_json::Map<String, Value>,
    pub run: serde_json::Map<String, Value>,
    /// Inputs marked `secret`.
    pub secret_inputs: BTreeSet<String>,
    /// Steps (by expression key) whose outputs hold secrets.
    pub secret_steps: BTreeSet<String>,
    /// `item` is derived from a secret (a `for-each=` over one).
    pub secret_item: bool,
    pub redactor: Redactor,
}

fn dynamic(v: &Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

pub fn to_json(d: &Dynamic) -> Value {
    rhai::serde::from_dynamic::<Value>(d).unwrap_or(Value::Null)
}

impl Env {
    /// Steps `step` reads (in its body, `if=` and `for-each=`) whose outputs this environment
    /// does not have: a plan cannot decide such a step.
    pub fn missing_steps(&self, step: &crate::model::Step) -> Vec<String> {
        let mut code = step_code(step);
        for a in [&step.attrs.if_, &step.attrs.for_each].into_iter().flatten() {
            code.push('\n');
            code.push_str(&a.value);
        }
        let mut out: Vec<String> = crate::interp::refs(&code)
            .into_iter()
            .filter_map(|r| match r {
                crate::interp::Ref::Step { id, .. } if !self.steps.contains_key(&crate::interp::step_key(&id)) => {
                    Some(id)
                }
                _ => None,
            })
            .collect();
        out.dedup();
        out
    }

    /// Records a step's outputs under its id and under the id with `-` as `_`.
    pub fn set_step(&mut self, id: &str, outputs: Value) {
        let key = interp::step_key(id);
        if key != id {
            self.steps.insert(id.to_string(), outputs.clone());
        }
        self.steps.insert(key, outputs);
    }

    /// Records a step whose outputs hold secrets.
    pub fn set_secret_step(&mut self, id: &str, outputs: Value) {
        self.secret_steps.insert(interp::step_key(id));
        self.secret_steps.insert(id.to_string());
        self.set_step(id, outputs);
    }

    /// The secret inputs and secret steps `code` names.
    fn secrets_named(&self, code: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut inputs, mut steps) = (BTreeSet::new(), BTreeSet::new());
        if self.secret_inputs.is_empty() && self.secret_steps.is_empty() {
            return (inputs, steps);
        }
        for r in interp::refs(code) {
            match r {
                interp::Ref::Input { name, .. } if self.secret_inputs.contains(&name) => {
                    inputs.insert(name);
                }
                interp::Ref::Step { id, .. } if self.secret_steps.contains(&interp::step_key(&id)) => {
                    steps.insert(interp::step_key(&id));
                    steps.insert(id);
                }
                _ => {}
            }
        }
        (inputs, steps)
    }

    /// Whether `code` reads a secret (and so everything it computes is secret).
    pub fn reads_secret(&self, code: &str) -> bool {
        if self.secret_item && mentions(code, "item") {
            return true;
        }
        let (i, s) = self.secrets_named(code);
        !i.is_empty() || !s.is_empty()
    }

    /// The scope `code` runs in: every value, except the secrets it does not name.
    pub fn scope_for(&self, code: &str, item: Option<&Value>) -> Scope<'static> {
        let (named_inputs, named_steps) = self.secrets_named(code);
        let inputs: serde_json::Map<String, Value> = self
            .inputs
            .iter()
            .filter(|(k, _)| !self.secret_inputs.contains(*k) || named_inputs.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let steps: serde_json::Map<String, Value> = self
            .steps
            .iter()
            .filter(|(k, _)| !self.secret_steps.contains(*k) || named_steps.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut s = Scope::new();
        s.push_constant("inputs", dynamic(&Value::Object(inputs)));
        s.push_constant("steps", dynamic(&Value::Object(steps)));
        s.push_constant("run", dynamic(&Value::Object(self.run.clone())));
        if let Some(item) = item {
            s.push_constant("item", dynamic(item));
        }
        s
    }

    /// What a script reads, as JSON: part of a script step's identity. When every use of
    /// `inputs` and `steps` is a plain reference (`inputs.x`, `steps.y.z`), only the values
    /// referenced count; otherwise (`inputs[k]`, `for x in steps`) the whole scope does.
    pub fn scope_json(&self, code: &str, item: Option<&Value>) -> Value {
        let refs = interp::refs(code);
        let uses = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| *w == "inputs" || *w == "steps")
            .count();
        let run: std::collections::BTreeMap<_, _> = self
            .run
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "id" | "started"))
            .collect();
        if uses > refs.len() {
            let (named_inputs, named_steps) = self.secrets_named(code);
            let keep =
                |set: &BTreeSet<String>, named: &BTreeSet<String>, k: &String| !set.contains(k) || named.contains(k);
            return serde_json::json!({
                "inputs": self.inputs.iter().filter(|(k, _)| keep(&self.secret_inputs, &named_inputs, k)).collect::<std::collections::BTreeMap<_, _>>(),
                "steps": self.steps.iter().filter(|(k, _)| keep(&self.secret_steps, &named_steps, k)).collect::<std::collections::BTreeMap<_, _>>(),
                "run": run,
                "item": item,
            });
        }
        let mut read = std::collections::BTreeMap::new();
        for r in refs {
            match r {
                interp::Ref::Input { name, .. } => {
                    read.insert(
                        format!("inputs.{name}"),
                        self.inputs.get(&name).cloned().unwrap_or(Value::Null),
                    );
                }
                interp::Ref::Step { id, .. } => {
                    let key = interp::step_key(&id);
                    read.insert(
                        format!("steps.{key}"),
                        self.steps.get(&key).cloned().unwrap_or(Value::Null),
                    );
                }
            }
        }
        serde_json::json!({ "read": read, "run": run, "item": item })
    }

    pub fn eval(&self, engine: &Engine, code: &str, item: Option<&Value>) -> Result<Dynamic, EvalError> {
        let mut scope = self.scope_for(code, item);
        let secret = self.reads_secret(code);
        let d = engine
            .eval_expression_with_scope::<Dynamic>(&mut scope, code)
            .map_err(|e| {
                let limit = crate::sandbox::is_limit(&e);
                if secret && !limit {
                    // What failed may quote what it computed from the secret.
                    EvalError::Withheld
                } else {
                    EvalError::Script(crate::sandbox::describe(&e, &crate::sandbox::ScriptLimits::default()))
                }
            })?;
        if secret {
            self.redactor.add_derived(&to_json(&d));
        }
        Ok(d)
    }

    /// A string with `${...}`: exactly one expression keeps its type, anything else is text.
    pub fn interpolate(&self, engine: &Engine, s: &str, item: Option<&Value>) -> Result<Value, EvalError> {
        let pieces = interp::pieces(s).map_err(|e| EvalError::Syntax(e.message))?;
        if let Some(code) = interp::whole_expr(&pieces) {
            let d = self.eval(engine, code, item).map_err(|e| e.within(code))?;
            return Ok(to_json(&d));
        }
        let mut out = String::new();
        let secret = pieces
            .iter()
            .any(|p| matches!(p, Piece::Expr { code, .. } if self.reads_secret(code)));
        for p in pieces {
            match p {
                Piece::Lit(l) => out.push_str(&l),
                Piece::Expr { code, .. } => {
                    let d = self.eval(engine, &code, item).map_err(|e| e.within(&code))?;
                    match to_json(&d) {
                        Value::String(s) => out.push_str(&s),
                        Value::Null => {}
                        other => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        if secret {
            // Short pieces of a secret are not searched for alone; the whole text is.
            self.redactor.add(&out);
        }
        Ok(Value::String(out))
    }

    /// Interpolates every string in a JSON value.
    pub fn resolve(&self, engine: &Engine, v: &Value, item: Option<&Value>) -> Result<Value, EvalError> {
        Ok(match v {
            Value::String(s) if s.contains("${") => self.interpolate(engine, s, item)?,
            Value::String(s) => Value::String(s.replace("$${", "${")),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.resolve(engine, x, item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), self.resolve(engine, x, item)?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// The code a step evaluates: a script's body, or the `${...}` expressions of any other body
/// (TOML strings, where a reference inside quotes is still code). When the body's expressions
/// cannot be told apart, all of it counts (an over-count only makes more secret).
pub fn step_code(step: &crate::model::Step) -> String {
    match &step.executor {
        crate::model::Executor::Rhai => step.body.clone(),
        _ => match interp::pieces(&step.body) {
            Ok(pieces) => pieces
                .into_iter()
                .filter_map(|p| match p {
                    Piece::Expr { code, .. } => Some(code),
                    Piece::Lit(_) => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(_) => step.body.clone(),
        },
    }
}

/// Whether `code` uses the identifier `word` (anywhere, strings included: an over-count is safe).
fn mentions(code: &str, word: &str) -> bool {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == word)
}

/// A TOML body as JSON (before interpolation).
pub fn toml_body(body: &str) -> Result<Value, EvalError> {
    let table: toml::Table = toml::from_str(body).map_err(|e| EvalError::Body(e.message().to_string()))?;
    serde_json::to_value(table).map_err(|e| EvalError::Body(e.to_string()))
}

pub fn truthy(d: &Dynamic) -> Result<bool, EvalError> {
    d.as_bool().map_err(|t| EvalError::NotBool(t.to_string()))
}

/// Why an expression, a `${...}` string or a step body could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The `${...}` text itself is malformed.
    #[error("{0}")]
    Syntax(String),
    /// The TOML body does not parse.
    #[error("{0}")]
    Body(String),
    /// The script failed (or hit a sandbox limit), as the sandbox describes it.
    #[error("{0}")]
    Script(String),
    /// It failed while reading a secret: the message could quote it.
    #[error("the expression failed; its message is withheld because it reads a secret")]
    Withheld,
    #[error("expected true or false, got {0}")]
    NotBool(String),
    /// The expression of one `${...}` in a string, and why it failed.
    #[error("`${{{code}}}`: {inner}")]
    In { code: String, inner: Box<EvalError> },
}

impl EvalError {
    fn within(self, code: &str) -> EvalError {
        EvalError::In {
            code: code.trim().to_string(),
            inner: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_expressions_keep_their_type() {
        let engine = crate::sandbox::engine(Default::default(), None, None);
        let mut env = Env::default();
        env.inputs.insert("n".into(), json!("alice"));
        env.set_step("find-ic", json!({"ids": ["1", "2"], "store": "d-1"}));
        assert_eq!(
            env.interpolate(&engine, "${steps.find_ic.ids}", None),
            Ok(json!(["1", "2"]))
        );
        assert_eq!(
            env.interpolate(&engine, "https://${steps[\"find-ic\"].store}.x/${inputs.n}", None),
            Ok(json!("https://d-1.x/alice"))
        );
        assert_eq!(
            env.resolve(&engine, &json!({"a": ["${ 1 + 1 }"]}), None),
            Ok(json!({"a": [2]}))
        );
        assert_eq!(
            env.interpolate(&engine, "${item}-x", Some(&json!("acct"))),
            Ok(json!("acct-x"))
        );
    }
}
