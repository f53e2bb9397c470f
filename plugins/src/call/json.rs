//! JSON bodies (json, rest-json): a step's request in member names becomes the wire's keys
//! (`locationName`, e.g. rest-json's lower-case keys) with timestamps as the protocol wants them;
//! an answer comes back the other way, timestamps as ISO 8601.

use serde_json::{Map, Value};

use super::codec::{self, Place};
use super::model::{Service, Shape};

const MAX_DEPTH: usize = 64;

/// The request (or a part of it) as the wire has it.
pub(super) fn to_wire(service: &Service, shape: &Shape, v: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH || shape.document {
        return v.clone();
    }
    match (shape.ty.as_str(), v) {
        ("structure", Value::Object(o)) => {
            let mut out = Map::new();
            for (k, x) in o {
                match shape.members.get(k) {
                    Some(r) if r.location.is_none() => {
                        let key = r.location_name.clone().unwrap_or_else(|| k.clone());
                        let x = match service.shape(&r.shape) {
                            Some(inner) => to_wire(service, inner, x, depth + 1),
                            None => x.clone(),
                        };
                        out.insert(key, x);
                    }
                    // A member that lives in the URI or a header is not in the body.
                    Some(_) => {}
                    None => {
                        out.insert(k.clone(), x.clone());
                    }
                }
            }
            Value::Object(out)
        }
        ("list", Value::Array(a)) => match shape.member.as_ref().and_then(|m| service.shape(&m.shape)) {
            Some(inner) => Value::Array(a.iter().map(|x| to_wire(service, inner, x, depth + 1)).collect()),
            None => v.clone(),
        },
        ("map", Value::Object(o)) => match shape.value.as_ref().and_then(|m| service.shape(&m.shape)) {
            Some(inner) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), to_wire(service, inner, x, depth + 1)))
                    .collect(),
            ),
            None => v.clone(),
        },
        ("timestamp", _) => codec::format_time(v, shape.timestamp_format.as_deref(), Place::JsonBody),
        _ => v.clone(),
    }
}

/// An answer (or a part of it) in member names.
pub(super) fn from_wire(service: &Service, shape: &Shape, v: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH || shape.document {
        return v.clone();
    }
    match (shape.ty.as_str(), v) {
        ("structure", Value::Object(o)) => {
            let mut out = Map::new();
            for (k, x) in o {
                let found = shape
                    .members
                    .iter()
                    .find(|(name, r)| r.location.is_none() && r.location_name.as_deref().unwrap_or(name) == k);
                match found {
                    Some((name, r)) => {
                        let x = match service.shape(&r.shape) {
                            Some(inner) => from_wire(service, inner, x, depth + 1),
                            None => x.clone(),
                        };
                        out.insert(name.clone(), x);
                    }
                    // A member newer than the model: kept as AWS named it.
                    None => {
                        out.insert(k.clone(), x.clone());
                    }
                }
            }
            Value::Object(out)
        }
        ("list", Value::Array(a)) => match shape.member.as_ref().and_then(|m| service.shape(&m.shape)) {
            Some(inner) => Value::Array(a.iter().map(|x| from_wire(service, inner, x, depth + 1)).collect()),
            None => v.clone(),
        },
        ("map", Value::Object(o)) => match shape.value.as_ref().and_then(|m| service.shape(&m.shape)) {
            Some(inner) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), from_wire(service, inner, x, depth + 1)))
                    .collect(),
            ),
            None => v.clone(),
        },
        ("timestamp", _) => codec::read_time(v),
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::resolve;
    use serde_json::json;

    #[test]
    fn keys_follow_location_names_both_ways() {
        // mq's members are PascalCase, its JSON keys camelCase.
        let c = resolve("mq:CreateBroker").expect("resolves");
        let input = c.input().expect("input");
        let wire = to_wire(
            c.service,
            input,
            &json!({"BrokerName": "b", "AutoMinorVersionUpgrade": true}),
            0,
        );
        assert_eq!(wire, json!({"brokerName": "b", "autoMinorVersionUpgrade": true}));
        let d = resolve("mq:DescribeBroker").expect("resolves");
        let back = from_wire(
            d.service,
            d.output().expect("output"),
            &json!({"brokerId": "a1", "created": 1706933106, "somethingNew": 1}),
            0,
        );
        assert_eq!(
            back,
            json!({"BrokerId": "a1", "Created": "2024-02-03T04:05:06Z", "somethingNew": 1})
        );
    }
}
