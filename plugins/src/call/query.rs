//! The query protocol (iam, sts): the request as form fields flattened by the model
//! (`Tags.member.1.Key`), the answer as XML read back into the same map the JSON protocol gives
//! (the `*Response` and `*Result` wrappers dropped, lists and numbers typed by the model).

use serde_json::{Map, Value};

use super::model::{Ref, Service, Shape};

/// The form body: `Action`, `Version`, then the request's members.
pub(super) fn encode(service: &Service, operation: &str, input: Option<&Shape>, request: &Value) -> String {
    let mut fields: Vec<(String, String)> = vec![
        ("Action".into(), operation.to_string()),
        ("Version".into(), service.metadata.api_version.clone()),
    ];
    if let Some(shape) = input {
        flatten(service, shape, request, "", &mut fields);
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

fn at(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn flatten(service: &Service, shape: &Shape, v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match (shape.ty.as_str(), v) {
        ("structure", Value::Object(o)) => {
            for (k, x) in o {
                let Some(r) = shape.members.get(k) else { continue };
                let Some(inner) = service.shape(&r.shape) else { continue };
                let name = r.location_name.as_deref().unwrap_or(k);
                flatten_ref(service, r, inner, x, &at(prefix, name), out);
            }
        }
        (_, Value::String(s)) => out.push((prefix.to_string(), s.clone())),
        (_, Value::Bool(b)) => out.push((prefix.to_string(), b.to_string())),
        (_, Value::Number(n)) => out.push((prefix.to_string(), n.to_string())),
        (_, Value::Null) => {}
        (_, other) => out.push((prefix.to_string(), other.to_string())),
    }
}

fn flatten_ref(service: &Service, r: &Ref, shape: &Shape, v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    let flat = r.flattened || shape.flattened;
    match (shape.ty.as_str(), v) {
        ("list", Value::Array(items)) => {
            if items.is_empty() {
                out.push((prefix.to_string(), String::new()));
                return;
            }
            let member = shape.member.as_ref();
            let list_prefix = if flat {
                prefix.to_string()
            } else {
                at(
                    prefix,
                    member.and_then(|m| m.location_name.as_deref()).unwrap_or("member"),
                )
            };
            for (i, x) in items.iter().enumerate() {
                let p = format!("{list_prefix}.{}", i + 1);
                match member.and_then(|m| service.shape(&m.shape).map(|s| (m, s))) {
                    Some((m, s)) => flatten_ref(service, m, s, x, &p, out),
                    None => flatten_scalar(x, &p, out),
                }
            }
        }
        ("map", Value::Object(o)) => {
            let entry = if flat { prefix.to_string() } else { at(prefix, "entry") };
            let key_name = shape
                .key
                .as_ref()
                .and_then(|k| k.location_name.as_deref())
                .unwrap_or("key");
            let value_name = shape
                .value
                .as_ref()
                .and_then(|k| k.location_name.as_deref())
                .unwrap_or("value");
            for (i, (k, x)) in o.iter().enumerate() {
                let p = format!("{entry}.{}", i + 1);
                out.push((at(&p, key_name), k.clone()));
                match shape
                    .value
                    .as_ref()
                    .and_then(|m| service.shape(&m.shape).map(|s| (m, s)))
                {
                    Some((m, s)) => flatten_ref(service, m, s, x, &at(&p, value_name), out),
                    None => flatten_scalar(x, &at(&p, value_name), out),
                }
            }
        }
        _ => flatten(service, shape, v, prefix, out),
    }
}

fn flatten_scalar(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    out.push((
        prefix.to_string(),
        v.as_str().map(String::from).unwrap_or_else(|| v.to_string()),
    ));
}

/// An XML element, as far as the answer needs it.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element of this name anywhere below (error bodies nest differently).
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find_map(|c| if c.name == name { Some(c) } else { c.find(name) })
    }
}

/// Deeper than any AWS answer: a hostile answer cannot make reading it recurse without bound.
const MAX_DEPTH: usize = 64;

/// Parses an XML document into its root element.
pub(super) fn parse(text: &str) -> Result<Node, String> {
    let mut stack: Vec<Node> = vec![Node::default()];
    for token in xmlparser::Tokenizer::from(text) {
        let token = token.map_err(|e| format!("the answer is not XML: {e}"))?;
        match token {
            xmlparser::Token::ElementStart { local, .. } => {
                if stack.len() > MAX_DEPTH {
                    return Err("the answer nests deeper than any AWS answer".into());
                }
                stack.push(Node {
                    name: local.as_str().to_string(),
                    ..Node::default()
                });
            }
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Close(..) | xmlparser::ElementEnd::Empty => {
                    let done = stack.pop().ok_or("unbalanced XML")?;
                    stack.last_mut().ok_or("unbalanced XML")?.children.push(done);
                }
            },
            xmlparser::Token::Text { text } | xmlparser::Token::Cdata { text, .. } => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&unescape(text.as_str()));
                }
            }
            _ => {}
        }
    }
    let mut top = stack.pop().ok_or("empty XML")?;
    if !stack.is_empty() {
        return Err("the answer's XML is cut short".into());
    }
    top.children
        .pop()
        .ok_or_else(|| "the answer has no XML element".to_string())
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The answer's members: `<OpResponse><OpResult>...` read through the output shape.
pub(super) fn decode(service: &Service, wrapper: Option<&str>, output: Option<&Shape>, root: &Node) -> Value {
    let result = wrapper.and_then(|w| root.child(w));
    match (result, output) {
        (Some(node), Some(shape)) => read(service, shape, node, 0),
        _ => Value::Object(Map::new()),
    }
}

/// The request id of an answer or an error (`RequestId`, wherever it sits).
pub(super) fn request_id(root: &Node) -> Option<String> {
    root.find("RequestId").map(|n| n.text.trim().to_string())
}

fn read(service: &Service, shape: &Shape, node: &Node, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match shape.ty.as_str() {
        "structure" => {
            let mut o = Map::new();
            for (name, r) in &shape.members {
                let Some(inner) = service.shape(&r.shape) else { continue };
                let xml_name = r.location_name.as_deref().unwrap_or(name);
                if inner.ty == "list" && (r.flattened || inner.flattened) {
                    let items: Vec<&Node> = node.children.iter().filter(|c| c.name == xml_name).collect();
                    if !items.is_empty() {
                        o.insert(name.clone(), read_items(service, inner, &items, depth));
                    }
                } else if let Some(c) = node.child(xml_name) {
                    o.insert(name.clone(), read(service, inner, c, depth + 1));
                }
            }
            Value::Object(o)
        }
        "list" => {
            let member_name = shape
                .member
                .as_ref()
                .and_then(|m| m.location_name.as_deref())
                .unwrap_or("member");
            let items: Vec<&Node> = node.children.iter().filter(|c| c.name == member_name).collect();
            read_items(service, shape, &items, depth)
        }
        "map" => {
            let key_name = shape
                .key
                .as_ref()
                .and_then(|k| k.location_name.as_deref())
                .unwrap_or("key");
            let value_name = shape
                .value
                .as_ref()
                .and_then(|k| k.location_name.as_deref())
                .unwrap_or("value");
            let value_shape = shape.value.as_ref().and_then(|v| service.shape(&v.shape));
            let entries = node.children.iter().filter(|c| shape.flattened || c.name == "entry");
            let mut o = Map::new();
            for e in entries {
                let (Some(k), Some(v)) = (e.child(key_name), e.child(value_name)) else {
                    continue;
                };
                let v = match value_shape {
                    Some(s) => read(service, s, v, depth + 1),
                    None => Value::String(v.text.clone()),
                };
                o.insert(k.text.trim().to_string(), v);
            }
            Value::Object(o)
        }
        "integer" | "long" => node
            .text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(node.text.clone())),
        "float" | "double" => node
            .text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(node.text.clone())),
        "boolean" => Value::Bool(node.text.trim() == "true"),
        _ => Value::String(node.text.clone()),
    }
}

fn read_items(service: &Service, list: &Shape, items: &[&Node], depth: usize) -> Value {
    let member = list.member.as_ref().and_then(|m| service.shape(&m.shape));
    Value::Array(
        items
            .iter()
            .map(|n| match member {
                Some(s) => read(service, s, n, depth + 1),
                None => Value::String(n.text.clone()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::resolve;
    use serde_json::json;

    #[test]
    fn requests_flatten_as_the_query_protocol_wants() {
        let c = resolve("iam:TagUser").expect("resolves");
        let body = encode(
            c.service,
            c.name,
            c.input(),
            &json!({"UserName": "bob", "Tags": [{"Key": "team", "Value": "a&b"}]}),
        );
        assert_eq!(
            body,
            "Action=TagUser&Version=2010-05-08&Tags.member.1.Key=team&Tags.member.1.Value=a%26b&UserName=bob"
        );
    }

    #[test]
    fn answers_drop_their_wrappers_and_take_the_models_types() {
        let c = resolve("iam:ListUsers").expect("resolves");
        let xml = r#"<ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListUsersResult><IsTruncated>false</IsTruncated><Users><member><UserName>a &amp; b</UserName><UserId>AID1</UserId></member><member><UserName>c</UserName></member></Users></ListUsersResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></ListUsersResponse>"#;
        let root = parse(xml).expect("parses");
        let v = decode(c.service, c.operation.result_wrapper.as_deref(), c.output(), &root);
        assert_eq!(v["Users"][0]["UserName"], "a & b");
        assert_eq!(v["Users"][1]["UserName"], "c");
        assert_eq!(v["IsTruncated"], false);
        assert_eq!(request_id(&root).as_deref(), Some("r-1"));
        let e = parse("<ErrorResponse><Error><Code>NoSuchEntity</Code><Message>x</Message></Error></ErrorResponse>")
            .expect("parses");
        assert_eq!(e.find("Code").map(|n| n.text.as_str()), Some("NoSuchEntity"));
        assert!(parse(&"<a>".repeat(100)).is_err());
    }
}
