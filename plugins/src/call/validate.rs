//! A request checked against the service's model before it is sent: member names, types,
//! bounds, enums, required members, timestamps and blobs.

use serde_json::Value;

use super::codec;
use super::model::{Measure, Service, Shape};

/// What in a request the service's model does not allow. `at` is the member's path
/// (`Filter.Status`, `Tags[0]`), or "the request".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("{at} must be {expected}, not {got}")]
    WrongType { at: String, expected: String, got: Value },
    #[error("{at} {why}")]
    OutOfBounds { at: String, why: String },
    #[error("{at} must be one of {}, not `{got}`", choices.join(", "))]
    NotAChoice {
        at: String,
        choices: Vec<String>,
        got: String,
    },
    #[error("{at} has no member `{member}`")]
    NoSuchMember { at: String, member: String },
    #[error("{at} needs member `{member}`")]
    Missing { at: String, member: String },
    #[error("{0} takes no request members")]
    NoMembers(&'static str),
    /// The embedded model names a shape it does not hold (a trimming fault).
    #[error("model: no shape {0}")]
    Model(String),
}

pub(super) fn validate(service: &Service, shape: &Shape, v: &Value, path: &str) -> Result<(), RequestError> {
    let at = |p: &str| {
        if p.is_empty() {
            "the request".to_string()
        } else {
            format!("`{p}`")
        }
    };
    let kind = shape.json_kind();
    let ok = match (kind, v) {
        ("any", _) => return Ok(()),
        ("object", Value::Object(_)) | ("array", Value::Array(_)) | ("string", Value::String(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("number", Value::Number(_)) | ("boolean", Value::Bool(_)) => true,
        // A TOML datetime arrives as a table of its own.
        ("string", v) if shape.ty == "timestamp" => codec::is_timestamp(v),
        _ => false,
    };
    if !ok {
        return Err(RequestError::WrongType {
            at: at(path),
            expected: shape.describe(),
            got: v.clone(),
        });
    }
    let measure = match v {
        Value::Number(n) => n.as_f64().map(Measure::Number),
        Value::String(s) => Some(Measure::Chars(s.chars().count())),
        Value::Array(a) => Some(Measure::Items(a.len())),
        _ => None,
    };
    if let Some(why) = measure.and_then(|m| shape.out_of_bounds(m)) {
        return Err(RequestError::OutOfBounds { at: at(path), why });
    }
    if shape.ty == "timestamp" && !codec::is_timestamp(v) {
        return Err(RequestError::WrongType {
            at: at(path),
            expected: "a timestamp (ISO 8601, e.g. 2025-01-31T12:00:00Z)".into(),
            got: v.clone(),
        });
    }
    if shape.ty == "blob" && codec::blob(v).is_none() {
        return Err(RequestError::WrongType {
            at: at(path),
            expected: "a blob, written in base64".into(),
            got: v.clone(),
        });
    }
    match v {
        Value::String(s) if !shape.choices.is_empty() && !shape.choices.contains(s) => Err(RequestError::NotAChoice {
            at: at(path),
            choices: shape.choices.clone(),
            got: s.clone(),
        }),
        Value::Object(o) if shape.ty == "structure" => {
            for (k, x) in o {
                let r = shape.members.get(k).ok_or_else(|| RequestError::NoSuchMember {
                    at: at(path),
                    member: k.clone(),
                })?;
                let inner = service
                    .shape(&r.shape)
                    .ok_or_else(|| RequestError::Model(r.shape.clone()))?;
                validate(service, inner, x, &join(path, k))?;
            }
            match shape.required.iter().find(|r| !o.contains_key(*r)) {
                Some(r) => Err(RequestError::Missing {
                    at: at(path),
                    member: r.clone(),
                }),
                None => Ok(()),
            }
        }
        Value::Object(o) => match shape.value.as_ref().and_then(|r| service.shape(&r.shape)) {
            Some(inner) => o
                .iter()
                .try_for_each(|(k, x)| validate(service, inner, x, &join(path, k))),
            None => Ok(()),
        },
        Value::Array(a) => match shape.member.as_ref().and_then(|r| service.shape(&r.shape)) {
            Some(inner) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, x)| validate(service, inner, x, &format!("{path}[{i}]"))),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}
