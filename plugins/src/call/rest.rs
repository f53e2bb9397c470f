//! The rest protocols (rest-json: lambda, account; rest-xml: s3, route53, cloudfront): members
//! go into the URI (`/2015-03-31/functions/{FunctionName}`), the query string, headers, or the
//! body (JSON or XML, or one member as the whole body); the answer's members come back from the
//! status, headers and body.

use serde_json::{Map, Value};

use super::codec::{self, Place};
use super::model::{Ref, Service, Shape};
use super::{Call, json, xml};

/// A request ready to sign: method, path and query (encoded), headers, body.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn is_xml(service: &Service) -> bool {
    service.metadata.protocol == "rest-xml"
}

/// Fills `{Label}` and `{Label+}` from the members located in the URI.
fn path(call: Call, template: &str, input: Option<&Shape>, request: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("model: unclosed label in {template}"))?;
        let label = &rest[open + 1..close];
        let (label, greedy) = match label.strip_suffix('+') {
            Some(l) => (l, true),
            None => (label, false),
        };
        let member = input.and_then(|s| {
            s.members
                .iter()
                .find(|(n, r)| r.location.as_deref() == Some("uri") && r.location_name.as_deref().unwrap_or(n) == label)
        });
        let value = member.and_then(|(n, r)| request.get(n).map(|v| (r, v)));
        let Some((r, v)) = value else {
            return Err(format!(
                "{} needs a value for the URI label {{{label}}}",
                call.full_name()
            ));
        };
        let v = match call.service.shape(&r.shape) {
            Some(s) if s.ty == "timestamp" => codec::format_time(v, s.timestamp_format.as_deref(), Place::Uri),
            _ => v.clone(),
        };
        let text = codec::text(&v);
        if text.is_empty() {
            return Err(format!("{}: the URI label {{{label}}} is empty", call.full_name()));
        }
        out.push_str(&codec::uri_encode(&text, greedy));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn push_query(q: &mut Vec<String>, k: &str, v: &str) {
    q.push(format!(
        "{}={}",
        codec::uri_encode(k, false),
        codec::uri_encode(v, false)
    ));
}

/// The request on the wire. `request` is in member names and already checked against the model.
pub(super) fn encode(call: Call, request: &Value) -> Result<Outgoing, String> {
    let service = call.service;
    let input = call.input();
    let template = call.operation.http.request_uri.as_str();
    let (template_path, fixed_query) = template.split_once('?').unwrap_or((template, ""));
    let mut out = Outgoing {
        method: call.operation.http.method.clone(),
        path: path(call, template_path, input, request)?,
        query: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let mut query: Vec<String> = fixed_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{}={}", codec::uri_encode(k, false), codec::uri_encode(v, false)),
            None => format!("{}=", codec::uri_encode(p, false)),
        })
        .collect();
    let Some(input) = input else {
        out.query = query.join("&");
        return Ok(out);
    };
    let empty = Map::new();
    let given = request.as_object().unwrap_or(&empty);
    let mut body_members = Map::new();
    for (name, r) in &input.members {
        let Some(shape) = service.shape(&r.shape) else { continue };
        let wire = r.location_name.as_deref().unwrap_or(name);
        let Some(v) = given.get(name) else {
            continue;
        };
        match r.location.as_deref() {
            Some("uri") => {}
            Some("querystring") => match (shape.ty.as_str(), v) {
                ("list", Value::Array(items)) => {
                    items.iter().for_each(|x| push_query(&mut query, wire, &codec::text(x)))
                }
                ("map", Value::Object(o)) => {
                    for (k, x) in o {
                        match x {
                            Value::Array(items) => {
                                items.iter().for_each(|i| push_query(&mut query, k, &codec::text(i)))
                            }
                            x => push_query(&mut query, k, &codec::text(x)),
                        }
                    }
                }
                ("timestamp", v) => {
                    let t = codec::format_time(v, shape.timestamp_format.as_deref(), Place::Uri);
                    push_query(&mut query, wire, &codec::text(&t));
                }
                (_, v) => push_query(&mut query, wire, &codec::text(v)),
            },
            Some("header") => out.headers.push((wire.to_string(), header_text(shape, r, v))),
            Some("headers") => {
                if let Value::Object(o) = v {
                    for (k, x) in o {
                        out.headers.push((format!("{wire}{k}"), codec::text(x)));
                    }
                }
            }
            Some(_) => {}
            None => {
                body_members.insert(name.clone(), v.clone());
            }
        }
    }
    out.query = query.join("&");
    match input.payload.as_deref() {
        Some(p) => {
            let (Some(r), Some(v)) = (input.members.get(p), given.get(p)) else {
                return Ok(out);
            };
            let shape = service
                .shape(&r.shape)
                .ok_or_else(|| format!("model: no shape {}", r.shape))?;
            match shape.ty.as_str() {
                "blob" => {
                    out.body = codec::blob(v).ok_or_else(|| format!("`{p}` must be base64"))?;
                }
                "string" => out.body = codec::text(v).into_bytes(),
                _ if is_xml(service) => {
                    let root = r.location_name.as_deref().unwrap_or(p);
                    out.body = xml::write(service, root, shape, Some(r), v).into_bytes();
                    out.headers.push(("content-type".into(), "application/xml".into()));
                }
                _ => {
                    out.body = json::to_wire(service, shape, v, 0).to_string().into_bytes();
                    out.headers.push(("content-type".into(), "application/json".into()));
                }
            }
        }
        None => {
            let has_body = input.members.values().any(|r| r.location.is_none());
            if is_xml(service) {
                if !body_members.is_empty() {
                    let root = input.location_name.clone().unwrap_or_else(|| r_name(call));
                    let b = xml::write(service, &root, input, None, &Value::Object(body_members));
                    out.body = b.into_bytes();
                    out.headers.push(("content-type".into(), "application/xml".into()));
                }
            } else if has_body {
                // botocore sends `{}` when the operation has body members and none is given.
                out.body = json::to_wire(service, input, &Value::Object(body_members), 0)
                    .to_string()
                    .into_bytes();
                out.headers.push(("content-type".into(), "application/json".into()));
            }
        }
    }
    Ok(out)
}

fn r_name(call: Call) -> String {
    call.operation.input.clone().unwrap_or_else(|| call.name.to_string())
}

fn header_text(shape: &Shape, r: &Ref, v: &Value) -> String {
    if r.jsonvalue {
        return codec::base64(v.to_string().as_bytes());
    }
    match (shape.ty.as_str(), v) {
        ("timestamp", v) => codec::text(&codec::format_time(v, shape.timestamp_format.as_deref(), Place::Header)),
        ("list", Value::Array(items)) => items.iter().map(codec::text).collect::<Vec<_>>().join(","),
        (_, v) => codec::text(v),
    }
}

/// The answer's members from its status, headers and body.
pub(super) fn decode(call: Call, status: u16, headers: &http::HeaderMap, body: &[u8]) -> Result<Value, String> {
    let service = call.service;
    let Some(output) = call.output() else {
        return Ok(Value::Object(Map::new()));
    };
    let mut o = Map::new();
    for (name, r) in &output.members {
        let Some(shape) = service.shape(&r.shape) else { continue };
        let wire = r.location_name.as_deref().unwrap_or(name);
        match r.location.as_deref() {
            Some("statusCode") => {
                o.insert(name.clone(), Value::from(status));
            }
            Some("header") => {
                if let Some(h) = headers.get(wire).and_then(|h| h.to_str().ok()) {
                    o.insert(name.clone(), read_header(shape, r, h));
                }
            }
            Some("headers") => {
                let prefix = wire.to_ascii_lowercase();
                let m: Map<String, Value> = headers
                    .iter()
                    .filter_map(|(k, v)| {
                        let rest = k.as_str().strip_prefix(&prefix)?;
                        Some((rest.to_string(), Value::String(v.to_str().ok()?.to_string())))
                    })
                    .collect();
                if !m.is_empty() {
                    o.insert(name.clone(), Value::Object(m));
                }
            }
            _ => {}
        }
    }
    let text = || String::from_utf8_lossy(body).into_owned();
    match output.payload.as_deref() {
        Some(p) => {
            let Some(r) = output.members.get(p) else {
                return Ok(Value::Object(o));
            };
            let shape = service
                .shape(&r.shape)
                .ok_or_else(|| format!("model: no shape {}", r.shape))?;
            let v = match shape.ty.as_str() {
                _ if body.is_empty() => None,
                "blob" => Some(Value::String(codec::base64(body))),
                "string" => Some(Value::String(text())),
                _ if is_xml(service) => {
                    let root = xml::parse(&text())?;
                    Some(xml::read(service, shape, &root, 0))
                }
                _ => {
                    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
                    Some(json::from_wire(service, shape, &v, 0))
                }
            };
            if let Some(v) = v {
                o.insert(p.to_string(), v);
            }
        }
        None if body.iter().all(u8::is_ascii_whitespace) => {}
        None if is_xml(service) => {
            let root = xml::parse(&text())?;
            if let Value::Object(m) = xml::read(service, output, &root, 0) {
                o.extend(m);
            }
        }
        None => {
            let v: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
            if let Value::Object(m) = json::from_wire(service, output, &v, 0) {
                for (k, v) in m {
                    // A body key that is a header member's name is the body's.
                    o.insert(k, v);
                }
            }
        }
    }
    Ok(Value::Object(o))
}

fn read_header(shape: &Shape, r: &Ref, h: &str) -> Value {
    if r.jsonvalue {
        return codec::blob(&Value::String(h.to_string()))
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| Value::String(h.to_string()));
    }
    match shape.ty.as_str() {
        "integer" | "long" => h.trim().parse::<i64>().map(Value::from).unwrap_or_else(|_| h.into()),
        "float" | "double" => h
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| h.into()),
        "boolean" => Value::Bool(h.trim() == "true"),
        "timestamp" => codec::read_time(&Value::String(h.to_string())),
        "list" => Value::Array(h.split(',').map(|s| Value::String(s.trim().to_string())).collect()),
        _ => Value::String(h.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::resolve;
    use serde_json::json;

    #[test]
    fn members_go_to_their_places() {
        let c = resolve("lambda:ListFunctions").expect("resolves");
        let o = encode(c, &json!({"MaxItems": 5, "FunctionVersion": "ALL"})).expect("encodes");
        assert_eq!((o.method.as_str(), o.path.as_str()), ("GET", "/2015-03-31/functions"));
        assert_eq!(o.query, "FunctionVersion=ALL&MaxItems=5");
        assert!(o.body.is_empty());
        let c = resolve("s3:PutBucketTagging").expect("resolves");
        let o = encode(
            c,
            &json!({"Bucket": "my bucket", "Tagging": {"TagSet": [{"Key": "a", "Value": "b"}]}, "ExpectedBucketOwner": "111122223333"}),
        )
        .expect("encodes");
        assert_eq!(
            (o.method.as_str(), o.path.as_str(), o.query.as_str()),
            ("PUT", "/my%20bucket", "tagging=")
        );
        assert!(
            o.headers
                .contains(&("x-amz-expected-bucket-owner".into(), "111122223333".into()))
        );
        assert_eq!(
            String::from_utf8_lossy(&o.body),
            "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"
        );
        let c = resolve("s3:DeleteObject").expect("resolves");
        let o = encode(c, &json!({"Bucket": "b", "Key": "a b/c.txt"})).expect("encodes");
        assert_eq!(o.path, "/b/a%20b/c.txt");
        assert!(encode(c, &json!({"Bucket": "b"})).is_err());
    }

    #[test]
    fn answers_come_from_status_headers_and_body() {
        let c = resolve("s3:HeadBucket").expect("resolves");
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-bucket-region", http::HeaderValue::from_static("eu-west-1"));
        let v = decode(c, 200, &h, b"").expect("decodes");
        assert_eq!(v["BucketRegion"], "eu-west-1");
        let c = resolve("s3:ListBuckets").expect("resolves");
        let xml = br#"<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>o</ID></Owner><Buckets><Bucket><Name>b1</Name><CreationDate>2024-02-03T04:05:06.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>"#;
        let v = decode(c, 200, &http::HeaderMap::new(), xml).expect("decodes");
        assert_eq!(v["Buckets"][0]["Name"], "b1");
        assert_eq!(v["Buckets"][0]["CreationDate"], "2024-02-03T04:05:06Z");
    }
}
