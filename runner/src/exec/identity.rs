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

/// The digests that tell whether a step must run again.
///
/// What a step resolves to is digested in the clear (SHA-256) with its secrets masked, so the
/// digest holds nothing to guess at and needs no key: losing a key file never makes a finished
/// step run again (attacker finding: following the tool's own advice to remove a key file sent a
/// second CreateCase). What a secret adds is digested apart, keyed with the operator's own key,
/// which lives outside every state directory ([`crate::journal::own_key`]): whoever holds a state
/// directory cannot test guesses of a low-entropy secret against it (attacker finding: a 4-digit
/// PIN recovered in milliseconds from a keyed digest and the key beside it).
pub struct Digester {
    /// The key earlier versions kept in the state directory: only to recognise what they recorded.
    legacy: Option<Vec<u8>>,
    /// The operator's key and its id, loaded when a secret is first digested.
    own: std::sync::OnceLock<Option<(Vec<u8>, String)>>,
}

/// How a recorded digest compares with today's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sameness {
    Same,
    Changed,
    /// Everything but its secrets is the same, and whether they changed cannot be told: the key
    /// that digested them is not this one (a new machine, a lost key).
    Unverifiable,
}

const PREFIX: &str = "v3:";

fn sha(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..16])
}

fn mac(key: &[u8], parts: &[&[u8]]) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    for p in parts {
        // Length-prefixed, so that no two lists of parts digest alike.
        m.update(&(p.len() as u64).to_le_bytes());
        m.update(p);
    }
    hex::encode(&m.finalize().into_bytes()[..16])
}

impl Digester {
    /// `legacy`: the state directory's key of earlier versions, when it has one.
    pub fn new(legacy: Option<Vec<u8>>) -> Digester {
        Digester {
            legacy,
            own: std::sync::OnceLock::new(),
        }
    }

    /// A digester with this key as the operator's own, loaded already.
    pub fn with_own_key(legacy: Option<Vec<u8>>, key: Vec<u8>) -> Digester {
        let d = Digester::new(legacy);
        let id = sha(&[b"key-id", &key])[..8].to_string();
        let _ = d.own.set(Some((key, id)));
        d
    }

    fn own(&self) -> Option<&(Vec<u8>, String)> {
        self.own
            .get_or_init(|| {
                crate::journal::own_key()
                    .ok()
                    .map(|key| (key.clone(), sha(&[b"key-id", &key])[..8].to_string()))
            })
            .as_ref()
    }

    fn keyed(&self, parts: &[&[u8]]) -> String {
        match self.own() {
            Some((key, id)) => format!("k{id}:{}", mac(key, parts)),
            // No key can be kept: a digest that never matches (the step asks or runs again).
            None => "nokey".into(),
        }
    }

    /// The digest of a secret value, to tell whether it changed without keeping it.
    pub fn value(&self, name: &str, value: &str) -> String {
        self.keyed(&[b"value", name.as_bytes(), value.as_bytes()])
    }

    /// Whether two digests of a secret value differ; `None` when they were made with other keys.
    pub fn value_changed(old: &str, new: &str) -> Option<bool> {
        let id = |d: &str| d.split_once(':').map(|(k, _)| k.to_string());
        if old == new {
            return Some(false);
        }
        match (id(old), id(new)) {
            (Some(a), Some(b)) if a == b && a != "nokey" => Some(true),
            _ => None,
        }
    }

    /// The identity of a step (or one item of a fan-out): `public` is what it resolved to with
    /// its secrets masked; `secret`, when it read one, what it resolved to in full.
    pub fn step(&self, info: &str, body: &str, public: &Value, secret: Option<&Value>) -> String {
        let plain = sha(&[b"step", info.as_bytes(), body.as_bytes(), public.to_string().as_bytes()]);
        match secret {
            None => format!("{PREFIX}{plain}"),
            Some(full) => format!(
                "{PREFIX}{plain}:{}",
                self.keyed(&[b"step", info.as_bytes(), body.as_bytes(), full.to_string().as_bytes()])
            ),
        }
    }

    /// The identity an earlier version recorded for the same resolution, when its key is here.
    pub fn legacy_step(&self, info: &str, body: &str, what: &Value) -> Option<String> {
        let key = self.legacy.as_ref()?;
        Some(mac(
            key,
            &[b"step", info.as_bytes(), body.as_bytes(), what.to_string().as_bytes()],
        ))
    }

    /// A call by API name and where it goes, as earlier versions marked it pending.
    pub fn legacy_request(&self, call: &str, what: &Value) -> Option<String> {
        let key = self.legacy.as_ref()?;
        Some(mac(key, &[b"request", call.as_bytes(), what.to_string().as_bytes()]))
    }

    /// Compares a recorded identity with today's (`now`, and `legacy` for records of earlier
    /// versions).
    pub fn compare(recorded: &str, now: &str, legacy: Option<&str>) -> Sameness {
        if recorded == now {
            return Sameness::Same;
        }
        if !recorded.starts_with(PREFIX) {
            return if legacy == Some(recorded) {
                Sameness::Same
            } else {
                Sameness::Changed
            };
        }
        // v3:PLAIN[:kID:MAC]
        let split = |d: &str| -> (String, Option<String>) {
            let rest = &d[PREFIX.len().min(d.len())..];
            match rest.split_once(':') {
                Some((plain, keyed)) => (plain.to_string(), keyed.split_once(':').map(|(id, _)| id.to_string())),
                None => (rest.to_string(), None),
            }
        };
        let (old_plain, old_id) = split(recorded);
        let (new_plain, new_id) = split(now);
        match (old_id, new_id) {
            (Some(a), Some(b)) if old_plain == new_plain && (a != b || a == "nokey") => Sameness::Unverifiable,
            _ => Sameness::Changed,
        }
    }
}

/// One item of a fan-out, resolved.
pub struct Item {
    pub value: Value,
    pub key: String,
    pub hash: String,
    /// The identity an earlier version would have recorded (see [`Digester::legacy_step`]).
    pub legacy_hash: Option<String>,
    /// The action's parameters for this item (`aws`/`net` steps).
    pub params: Option<Value>,
}

/// A step made ready to run.
pub struct Prepared {
    pub hash: String,
    /// The identity an earlier version would have recorded (see [`Digester::legacy_step`]).
    pub legacy_hash: Option<String>,
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
    resolution(&shared.source, &shared.runbook, step, env, item, engine, target)
}

/// What a step resolves to (its identity's input) and, for an action, its parameters: the one
/// resolution `run` and `plan` both use.
pub fn resolution(
    source: &crate::source::Source,
    runbook: &crate::model::Runbook,
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
            let m = crate::manual::parse(source, step, &mut sink).ok_or(PrepareError::ManualBody)?;
            let text = |s: &Option<String>| -> Result<Value, PrepareError> {
                match s {
                    Some(t) => env.interpolate(engine, t, item).map_err(PrepareError::Text),
                    None => Ok(Value::Null),
                }
            };
            // The person is shown the section's prose too: a changed text is asked again.
            let prose = runbook.section_of(step).map(|s| format!("{}\n{}", s.title, s.prose));
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
    // What it resolves to holds a secret when its code names one (or its items come from one).
    let tainted = env.reads_secret(&eval::step_code(step)) || (step.attrs.for_each.is_some() && env.secret_item);
    let digest = |what: &Value| -> (String, Option<String>) {
        let public = if tainted {
            shared.redactor.value(what)
        } else {
            what.clone()
        };
        (
            shared.digester.step(info, &step.body, &public, tainted.then_some(what)),
            shared.digester.legacy_step(info, &step.body, what),
        )
    };
    let Some(list) = &step.attrs.for_each else {
        let (what, params) = resolve(shared, step, env, None, &engine, &target)?;
        let (hash, legacy_hash) = digest(&what);
        return Ok(Prepared {
            hash,
            legacy_hash,
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
        let (hash, legacy_hash) = digest(&what);
        items.push(Item {
            // Items derived from a secret are journaled by position, never by value.
            key: if env.secret_item {
                format!("item-{i}")
            } else {
                item_key(&value)
            },
            hash,
            legacy_hash,
            value,
            params,
        });
    }
    let all: Vec<&str> = items.iter().map(|i| i.hash.as_str()).collect();
    let legacy: Option<Vec<&str>> = items.iter().map(|i| i.legacy_hash.as_deref()).collect();
    Ok(Prepared {
        hash: shared.digester.step(info, &step.body, &json!({ "items": all }), None),
        legacy_hash: legacy.and_then(|l| shared.digester.legacy_step(info, &step.body, &json!({ "items": l }))),
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
        // Digests made with another key tell nothing either way.
        if stored_secrets
            .get(k)
            .is_some_and(|old| Digester::value_changed(old, d) == Some(true))
        {
            out.push(format!("{k}: changed (secret)"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_digested_with_the_operators_key_and_nothing_else_is_keyed() {
        let a = Digester::with_own_key(None, vec![1; 32]);
        let b = Digester::with_own_key(None, vec![2; 32]);
        assert_ne!(a.value("pin", "1234"), b.value("pin", "1234"));
        assert_ne!(a.value("pin", "1234"), a.value("pin", "1235"));
        assert_eq!(a.value("pin", "1234"), a.value("pin", "1234"));
        // Without secrets the identity is the same under any key: a lost key changes nothing.
        assert_eq!(
            a.step("aws x", "a", &json!("bc"), None),
            b.step("aws x", "a", &json!("bc"), None)
        );
        assert_ne!(
            a.step("aws x", "a", &json!("bc"), None),
            a.step("aws x", "ab", &json!("c"), None)
        );
        assert_ne!(
            a.step("i", "b", &json!({"u": "alice"}), None),
            a.step("i", "b", &json!({"u": "bob"}), None)
        );
    }

    #[test]
    fn a_secret_digested_under_another_key_is_unverifiable_not_the_same() {
        let (a, b) = (
            Digester::with_own_key(None, vec![1; 32]),
            Digester::with_own_key(None, vec![2; 32]),
        );
        let masked = json!({"pin": "********"});
        let old = a.step("m", "b", &masked, Some(&json!({"pin": "1234"})));
        let same_key = a.step("m", "b", &masked, Some(&json!({"pin": "1234"})));
        let other_pin = a.step("m", "b", &masked, Some(&json!({"pin": "9999"})));
        let other_key = b.step("m", "b", &masked, Some(&json!({"pin": "1234"})));
        assert_eq!(Digester::compare(&old, &same_key, None), Sameness::Same);
        assert_eq!(Digester::compare(&old, &other_pin, None), Sameness::Changed);
        assert_eq!(Digester::compare(&old, &other_key, None), Sameness::Unverifiable);
        let other_public = b.step(
            "m",
            "b",
            &json!({"pin": "********", "x": 1}),
            Some(&json!({"pin": "1234"})),
        );
        assert_eq!(Digester::compare(&old, &other_public, None), Sameness::Changed);
        // A record of an earlier version is the same when its own digest says so.
        assert_eq!(Digester::compare("abc", &old, Some("abc")), Sameness::Same);
        assert_eq!(Digester::compare("abc", &old, Some("abd")), Sameness::Changed);
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
        let stored_s = BTreeMap::from([("pw".to_string(), "kab12:d1".to_string())]);
        let secrets = BTreeMap::from([("pw".to_string(), "kab12:d2".to_string())]);
        assert_eq!(
            input_changes(&stored, &stored_s, &values, &secrets),
            vec!["user: alice → bob".to_string(), "pw: changed (secret)".to_string()]
        );
    }
}
