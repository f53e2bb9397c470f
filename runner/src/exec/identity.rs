//! A step's identity: what it will do, resolved. Its source plus every value it resolves (the
//! parameters after `${...}`, the text a person is shown, the scope a script sees, each item of
//! a fan-out) enter one digest keyed with a random key of the state directory. A completed step is
//! skipped only while that digest is unchanged; secrets enter it only through the key.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Shared;
use crate::eval::{self, Env, EvalError};
use crate::model::{Executor, Family, Step};

/// Keyed digests (HMAC-SHA256 with the state directory's key).
pub struct Digester {
    key: Vec<u8>,
}

impl Digester {
    pub fn new(key: Vec<u8>) -> Digester {
        Digester { key }
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        for p in parts {
            // Length-prefixed, so that no two lists of parts digest alike.
            m.update(&(p.len() as u64).to_le_bytes());
            m.update(p);
        }
        hex::encode(&m.finalize().into_bytes()[..16])
    }

    /// The digest of a secret value, to tell whether it changed without keeping it.
    pub fn value(&self, name: &str, value: &str) -> String {
        self.mac(&[b"value", name.as_bytes(), value.as_bytes()])
    }

    /// A call by API name and where it goes: the same request from any runbook digests alike.
    pub fn request(&self, call: &str, what: &Value) -> String {
        self.mac(&[b"request", call.as_bytes(), what.to_string().as_bytes()])
    }

    /// The identity of a step (or one item of a fan-out) that resolved to `what`.
    pub fn step(&self, info: &str, body: &str, what: &Value) -> String {
        self.mac(&[b"step", info.as_bytes(), body.as_bytes(), what.to_string().as_bytes()])
    }
}

/// One item of a fan-out, resolved.
pub struct Item {
    pub value: Value,
    pub key: String,
    pub hash: String,
    /// The action's parameters for this item (`aws`/`net` steps).
    pub params: Option<Value>,
}

/// A step made ready to run.
pub struct Prepared {
    pub hash: String,
    /// The step's deadline (`timeout=`), fixed when it was prepared.
    pub deadline: Option<std::time::Instant>,
    /// The action's parameters (`aws`/`net` steps without `for-each`).
    pub params: Option<Value>,
    /// The items, for a `for-each` step.
    pub items: Option<Vec<Item>>,
}

pub fn item_key(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a step could not be made ready: what failed to resolve.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("parameters: {0}")]
    Parameters(EvalError),
    #[error("the manual step's body does not parse; run `runbook check`")]
    ManualBody,
    #[error("{0}")]
    Text(EvalError),
    #[error("`for-each` must give a list, got {0}")]
    NotAList(Value),
    #[error("`for-each`: {0}")]
    ForEach(EvalError),
    /// Which account the credentials are for could not be told: nothing may be believed about
    /// where the step acts, so nothing is decided (or journaled) about it.
    #[error("cannot tell which account the credentials are for: {0}")]
    Identity(String),
}

/// What a step resolves to for one item (or none), and the action's parameters when it has an
/// action.
fn resolve(
    shared: &Shared,
    step: &Step,
    env: &Env,
    item: Option<&Value>,
    engine: &rhai::Engine,
    target: &Value,
) -> Result<(Value, Option<Value>), PrepareError> {
    match &step.executor {
        Executor::Action { .. } => {
            let params = eval::toml_body(&step.body)
                .and_then(|b| env.resolve(engine, &b, item))
                .map_err(PrepareError::Parameters)?;
            // Where it acts is part of what it does: another account, region or endpoint is
            // another step.
            Ok((json!({ "params": params, "target": target }), Some(params)))
        }
        Executor::Manual => {
            let mut sink = Vec::new();
            let m = crate::manual::parse(&shared.source, step, &mut sink).ok_or(PrepareError::ManualBody)?;
            let text = |s: &Option<String>| -> Result<Value, PrepareError> {
                match s {
                    Some(t) => env.interpolate(engine, t, item).map_err(PrepareError::Text),
                    None => Ok(Value::Null),
                }
            };
            // The person is shown the section's prose too: a changed text is asked again.
            let prose = shared
                .runbook
                .section_of(step)
                .map(|s| format!("{}\n{}", s.title, s.prose));
            Ok((
                json!({
                    "instructions": text(&m.instructions)?,
                    "confirm": text(&m.confirm)?,
                    "prose": prose,
                    "item": item,
                }),
                None,
            ))
        }
        Executor::Rhai => Ok((json!({ "scope": env.scope_json(&step.body, item) }), None)),
    }
}

/// Where AWS steps act: the endpoint, profile and region asked for, and the caller's account.
/// An STS failure is an error: an unknown account is not an account (read as one, it made every
/// AWS step look changed, and a call by name stop as an unknown outcome).
async fn target(shared: &Shared, step: &Step) -> Result<Value, PrepareError> {
    if !matches!(
        step.executor,
        Executor::Action {
            family: Family::Aws,
            ..
        }
    ) {
        return Ok(Value::Null);
    }
    let o = shared.ctx.aws_options();
    // No credentials, or credentials AWS refused, is a definite answer (the step may hand over);
    // no answer from STS is not.
    let account = match shared.caller().await {
        Ok(id) => Some(id.account_id.clone()),
        Err(e) if e.outage => {
            return Err(PrepareError::Identity(format!("sts:GetCallerIdentity: {}", e.message)));
        }
        Err(_) => None,
    };
    Ok(json!({
        "endpoint": o.endpoint_url,
        "profile": o.profile,
        "region": shared.ctx.region().await.ok(),
        "account": account,
    }))
}

/// Resolves a step (each item of a fan-out) and computes its identity. Every evaluation stops
/// at `deadline`.
pub async fn prepare(
    shared: &Shared,
    step: &Step,
    env: &Env,
    deadline: Option<std::time::Instant>,
) -> Result<Prepared, PrepareError> {
    let info = &shared.source.text[step.info_span.start..step.info_span.end];
    let target = target(shared, step).await?;
    let engine = shared.engine_until(deadline);
    let Some(list) = &step.attrs.for_each else {
        let (what, params) = resolve(shared, step, env, None, &engine, &target)?;
        return Ok(Prepared {
            hash: shared.digester.step(info, &step.body, &what),
            deadline,
            params,
            items: None,
        });
    };
    let values = match env.eval(&engine, &list.value, None).map(|d| eval::to_json(&d)) {
        Ok(Value::Array(a)) => a,
        Ok(other) => return Err(PrepareError::NotAList(other)),
        Err(e) => return Err(PrepareError::ForEach(e)),
    };
    let mut items = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let (what, params) = resolve(shared, step, env, Some(&value), &engine, &target)?;
        items.push(Item {
            // Items derived from a secret are journaled by position, never by value.
            key: if env.secret_item {
                format!("item-{i}")
            } else {
                item_key(&value)
            },
            hash: shared.digester.step(info, &step.body, &what),
            value,
            params,
        });
    }
    let all: Vec<&str> = items.iter().map(|i| i.hash.as_str()).collect();
    Ok(Prepared {
        hash: shared.digester.step(info, &step.body, &json!({ "items": all })),
        deadline,
        params: None,
        items: Some(items),
    })
}

/// Inputs that differ from the run's last values: "admin_user: alice → bob", and for secrets
/// "pw: changed (secret)". Inputs the last run did not have are not changes.
pub fn input_changes(
    stored: &BTreeMap<String, Value>,
    stored_secrets: &BTreeMap<String, String>,
    values: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in values {
        if let Some(old) = stored.get(k) {
            let old = old.as_str().map(String::from).unwrap_or_else(|| old.to_string());
            if &old != v {
                out.push(format!("{k}: {old} → {v}"));
            }
        }
    }
    for (k, d) in secrets {
        if stored_secrets.get(k).is_some_and(|old| old != d) {
            out.push(format!("{k}: changed (secret)"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_and_separate_their_parts() {
        let a = Digester::new(vec![1; 32]);
        let b = Digester::new(vec![2; 32]);
        assert_ne!(a.value("pin", "1234"), b.value("pin", "1234"));
        assert_ne!(a.value("pin", "1234"), a.value("pin", "1235"));
        assert_eq!(a.value("pin", "1234"), a.value("pin", "1234"));
        assert_ne!(a.step("aws x", "a", &json!("bc")), a.step("aws x", "ab", &json!("c")));
        assert_ne!(
            a.step("i", "b", &json!({"u": "alice"})),
            a.step("i", "b", &json!({"u": "bob"}))
        );
    }

    #[test]
    fn an_item_is_journaled_by_its_text_or_its_json() {
        assert_eq!(item_key(&json!("acme-a-prod")), "acme-a-prod");
        assert_eq!(item_key(&json!({"id": 1})), r#"{"id":1}"#);
        assert_ne!(item_key(&json!("a")), item_key(&json!("b")));
    }

    #[test]
    fn changes_name_old_and_new_and_hide_secrets() {
        let stored = BTreeMap::from([("user".to_string(), json!("alice")), ("same".to_string(), json!("x"))]);
        let values = BTreeMap::from([
            ("user".to_string(), "bob".to_string()),
            ("same".to_string(), "x".to_string()),
            ("new".to_string(), "y".to_string()),
        ]);
        let stored_s = BTreeMap::from([("pw".to_string(), "d1".to_string())]);
        let secrets = BTreeMap::from([("pw".to_string(), "d2".to_string())]);
        assert_eq!(
            input_changes(&stored, &stored_s, &values, &secrets),
            vec!["user: alice → bob".to_string(), "pw: changed (secret)".to_string()]
        );
    }
}
