//! XML answers (query, ec2, rest-xml) read through the output shape into the map the JSON
//! protocols give (lists and numbers typed by the model), and rest-xml request bodies written
//! from the input shape.

use serde_json::{Map, Value};

use super::codec::{self, Place};
use super::model::{Ref, Service, Shape};

/// An XML element, as far as an answer needs it.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
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

/// `xsi:type` names the attribute `type` once parsed: prefixes are dropped on both sides.
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

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
            xmlparser::Token::Attribute {
                prefix, local, value, ..
            } if prefix.as_str() != "xmlns" && local.as_str() != "xmlns" => {
                if let Some(n) = stack.last_mut() {
                    n.attrs.push((local.as_str().to_string(), unescape(value.as_str())));
                }
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

/// The request id of an answer or an error (`RequestId`, ec2's `RequestID`, wherever it sits).
pub(super) fn request_id(root: &Node) -> Option<String> {
    ["RequestId", "RequestID", "requestId"]
        .iter()
        .find_map(|n| root.find(n))
        .map(|n| n.text.trim().to_string())
}

/// The members of a structure read from an element; only body members (no `location`).
pub(super) fn read(service: &Service, shape: &Shape, node: &Node, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match shape.ty.as_str() {
        "structure" => {
            let mut o = Map::new();
            for (name, r) in &shape.members {
                if r.location.is_some() {
                    continue;
                }
                let Some(inner) = service.shape(&r.shape) else { continue };
                let xml_name = local(r.location_name.as_deref().unwrap_or(name));
                if r.xml_attribute {
                    if let Some((_, v)) = node.attrs.iter().find(|(k, _)| k == xml_name) {
                        o.insert(name.clone(), scalar(inner, v));
                    }
                } else if (inner.ty == "list" || inner.ty == "map") && (r.flattened || inner.flattened) {
                    let items: Vec<&Node> = node.children.iter().filter(|c| c.name == xml_name).collect();
                    if !items.is_empty() {
                        let v = if inner.ty == "list" {
                            read_items(service, inner, &items, depth)
                        } else {
                            read_entries(service, inner, &items, depth)
                        };
                        o.insert(name.clone(), v);
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
            let entries: Vec<&Node> = node.children.iter().filter(|c| c.name == "entry").collect();
            read_entries(service, shape, &entries, depth)
        }
        _ => scalar(shape, &node.text),
    }
}

fn scalar(shape: &Shape, text: &str) -> Value {
    match shape.ty.as_str() {
        "integer" | "long" | "short" | "byte" => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        "float" | "double" => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_string())),
        "boolean" => Value::Bool(text.trim() == "true"),
        "timestamp" => codec::read_time(&Value::String(text.trim().to_string())),
        _ => Value::String(text.to_string()),
    }
}

fn read_entries(service: &Service, map: &Shape, entries: &[&Node], depth: usize) -> Value {
    let key_name = map
        .key
        .as_ref()
        .and_then(|k| k.location_name.as_deref())
        .unwrap_or("key");
    let value_name = map
        .value
        .as_ref()
        .and_then(|k| k.location_name.as_deref())
        .unwrap_or("value");
    let value_shape = map.value.as_ref().and_then(|v| service.shape(&v.shape));
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

/// A rest-xml body: `value` written as the element `name` of `shape`.
pub(super) fn write(service: &Service, name: &str, shape: &Shape, r: Option<&Ref>, value: &Value) -> String {
    let mut out = String::new();
    let ns = r
        .and_then(|r| r.xml_namespace.as_ref())
        .or(shape.xml_namespace.as_ref())
        .map(|n| n.attribute());
    element(service, name, shape, value, ns, &mut out, 0);
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn element(
    service: &Service,
    name: &str,
    shape: &Shape,
    value: &Value,
    ns: Option<(String, &str)>,
    out: &mut String,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    out.push('<');
    out.push_str(name);
    if let Some((k, uri)) = ns {
        out.push_str(&format!(" {k}=\"{}\"", escape(uri)));
    }
    match (shape.ty.as_str(), value) {
        ("structure", Value::Object(o)) => {
            // Attributes first: they belong in the start tag.
            for (m, r) in shape.ordered_members() {
                let (true, Some(v)) = (r.xml_attribute, o.get(m)) else {
                    continue;
                };
                let attr = r.location_name.as_deref().unwrap_or(m);
                out.push_str(&format!(" {attr}=\"{}\"", escape(&codec::text(v))));
            }
            out.push('>');
            for (m, r) in shape.ordered_members() {
                let (Some(v), Some(inner)) = (o.get(m), service.shape(&r.shape)) else {
                    continue;
                };
                if r.xml_attribute || r.location.is_some() {
                    continue;
                }
                let child = r.location_name.as_deref().unwrap_or(m);
                let ns = r
                    .xml_namespace
                    .as_ref()
                    .or(inner.xml_namespace.as_ref())
                    .map(|n| n.attribute());
                member(service, child, r, inner, v, ns, out, depth + 1);
            }
        }
        ("list", Value::Array(items)) => {
            out.push('>');
            let m = shape.member.as_ref();
            let child = m.and_then(|m| m.location_name.as_deref()).unwrap_or("member");
            if let Some((m, inner)) = m.and_then(|m| service.shape(&m.shape).map(|s| (m, s))) {
                let ns = inner.xml_namespace.as_ref().map(|n| n.attribute());
                for x in items {
                    member(service, child, m, inner, x, ns.clone(), out, depth + 1);
                }
            }
        }
        ("map", Value::Object(o)) => {
            out.push('>');
            entries(service, shape, o, out, depth);
        }
        _ => {
            out.push('>');
            out.push_str(&escape(&scalar_text(shape, value)));
        }
    }
    out.push_str(&format!("</{name}>"));
}

#[allow(clippy::too_many_arguments)]
fn member(
    service: &Service,
    name: &str,
    r: &Ref,
    shape: &Shape,
    value: &Value,
    ns: Option<(String, &str)>,
    out: &mut String,
    depth: usize,
) {
    match (shape.ty.as_str(), value) {
        ("list", Value::Array(items)) if r.flattened || shape.flattened => {
            if let Some(inner) = shape.member.as_ref().and_then(|m| service.shape(&m.shape)) {
                for x in items {
                    element(service, name, inner, x, None, out, depth + 1);
                }
            }
        }
        ("map", Value::Object(o)) if r.flattened || shape.flattened => {
            let mut inner = String::new();
            entries(service, shape, o, &mut inner, depth);
            // Each entry is an element of the member's name.
            out.push_str(
                &inner
                    .replace("<entry>", &format!("<{name}>"))
                    .replace("</entry>", &format!("</{name}>")),
            );
        }
        _ => element(service, name, shape, value, ns, out, depth),
    }
}

fn entries(service: &Service, map: &Shape, o: &Map<String, Value>, out: &mut String, depth: usize) {
    let key = map
        .key
        .as_ref()
        .and_then(|k| k.location_name.as_deref())
        .unwrap_or("key");
    let val = map
        .value
        .as_ref()
        .and_then(|k| k.location_name.as_deref())
        .unwrap_or("value");
    let vshape = map.value.as_ref().and_then(|v| service.shape(&v.shape));
    for (k, v) in o {
        out.push_str(&format!("<entry><{key}>{}</{key}>", escape(k)));
        if let Some(s) = vshape {
            element(service, val, s, v, None, out, depth + 1);
        }
        out.push_str("</entry>");
    }
}

fn scalar_text(shape: &Shape, v: &Value) -> String {
    if shape.ty == "timestamp" {
        return codec::text(&codec::format_time(
            v,
            shape.timestamp_format.as_deref(),
            Place::XmlOrForm,
        ));
    }
    codec::text(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::resolve;
    use serde_json::json;

    #[test]
    fn bodies_keep_the_models_order_namespace_and_attributes() {
        let c = resolve("s3:PutBucketAcl").expect("resolves");
        let input = c.input().expect("input");
        let r = input.members.get("AccessControlPolicy").expect("member");
        let shape = c.service.shape(&r.shape).expect("shape");
        let body = write(
            c.service,
            "AccessControlPolicy",
            shape,
            Some(r),
            &json!({"Owner": {"ID": "o"}, "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": "x&y"}, "Permission": "READ"}]}),
        );
        assert_eq!(
            body,
            "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>x&amp;y</ID></Grantee><Permission>READ</Permission></Grant></AccessControlList><Owner><ID>o</ID></Owner></AccessControlPolicy>"
        );
        let back = parse(&body).expect("parses");
        assert_eq!(
            read(c.service, shape, &back, 0)["Grants"][0]["Grantee"]["Type"],
            json!("CanonicalUser")
        );
    }
}
