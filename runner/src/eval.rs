//! Evaluating what a runbook computes: `if=` and `for-each=` expressions, `${...}` in bodies, and
//! the scope (`inputs`, `steps`, `run`, `item`) they see.

use rhai::{Dynamic, Engine, Scope};
use serde_json::Value;

use crate::interp::{self, Piece};

/// The values expressions can read.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub inputs: serde_json::Map<String, Value>,
    pub steps: serde_json::Map<String, Value>,
    pub run: serde_json::Map<String, Value>,
}

fn dynamic(v: &Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

pub fn to_json(d: &Dynamic) -> Value {
    rhai::serde::from_dynamic::<Value>(d).unwrap_or(Value::Null)
}

impl Env {
    /// Records a step's outputs under its id and under the id with `-` as `_`.
    pub fn set_step(&mut self, id: &str, outputs: Value) {
        let key = interp::step_key(id);
        if key != id {
            self.steps.insert(id.to_string(), outputs.clone());
        }
        self.steps.insert(key, outputs);
    }

    pub fn scope(&self, item: Option<&Value>) -> Scope<'static> {
        let mut s = Scope::new();
        s.push_constant("inputs", dynamic(&Value::Object(self.inputs.clone())));
        s.push_constant("steps", dynamic(&Value::Object(self.steps.clone())));
        s.push_constant("run", dynamic(&Value::Object(self.run.clone())));
        if let Some(item) = item {
            s.push_constant("item", dynamic(item));
        }
        s
    }

    pub fn eval(&self, engine: &Engine, code: &str, item: Option<&Value>) -> Result<Dynamic, String> {
        let mut scope = self.scope(item);
        engine
            .eval_expression_with_scope::<Dynamic>(&mut scope, code)
            .map_err(|e| crate::sandbox::describe(&e, &crate::sandbox::Limits::default()))
    }

    /// A string with `${...}`: exactly one expression keeps its type, anything else is text.
    pub fn interpolate(&self, engine: &Engine, s: &str, item: Option<&Value>) -> Result<Value, String> {
        let pieces = interp::pieces(s).map_err(|e| e.message)?;
        if let Some(code) = interp::whole_expr(&pieces) {
            let d = self
                .eval(engine, code, item)
                .map_err(|e| format!("`${{{}}}`: {e}", code.trim()))?;
            return Ok(to_json(&d));
        }
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Lit(l) => out.push_str(&l),
                Piece::Expr { code, .. } => {
                    let d = self
                        .eval(engine, &code, item)
                        .map_err(|e| format!("`${{{}}}`: {e}", code.trim()))?;
                    match to_json(&d) {
                        Value::String(s) => out.push_str(&s),
                        Value::Null => {}
                        other => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok(Value::String(out))
    }

    /// Interpolates every string in a JSON value.
    pub fn resolve(&self, engine: &Engine, v: &Value, item: Option<&Value>) -> Result<Value, String> {
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
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// The values a piece of code refers to, for the step hash.
    pub fn referenced(&self, code: &str) -> Value {
        let mut out = serde_json::Map::new();
        for r in interp::refs(code) {
            match r {
                interp::Ref::Input { name, .. } => {
                    out.insert(
                        format!("inputs.{name}"),
                        self.inputs.get(&name).cloned().unwrap_or(Value::Null),
                    );
                }
                interp::Ref::Step { id, .. } => {
                    let key = interp::step_key(&id);
                    out.insert(
                        format!("steps.{key}"),
                        self.steps.get(&key).cloned().unwrap_or(Value::Null),
                    );
                }
            }
        }
        Value::Object(out)
    }
}

/// A TOML body as JSON (before interpolation).
pub fn toml_body(body: &str) -> Result<Value, String> {
    let table: toml::Table = toml::from_str(body).map_err(|e| e.message().to_string())?;
    serde_json::to_value(table).map_err(|e| e.to_string())
}

pub fn truthy(d: &Dynamic) -> Result<bool, String> {
    d.as_bool().map_err(|t| format!("expected true or false, got {t}"))
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
