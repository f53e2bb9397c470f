//! The query protocols: query (iam, sts, sns) and ec2. The request as form fields flattened by
//! the model (`Tags.member.1.Key`; ec2: `Filter.1.Name`, every list flat), the answer as XML read
//! back into the same map the JSON protocols give (the `*Response` and `*Result` wrappers
//! dropped, lists and numbers typed by the model).

use serde_json::{Map, Value};

use super::codec::{self, Place};
use super::model::{Ref, Service, Shape};
use super::xml::{self, Node};

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

/// ec2's field name for a member: `queryName`, else the `locationName` capitalised.
fn ec2_name<'a>(r: &'a Ref, member: &'a str) -> std::borrow::Cow<'a, str> {
    if let Some(q) = &r.query_name {
        return q.into();
    }
    match r.location_name.as_deref() {
        Some(l) => {
            let mut c = l.chars();
            match c.next() {
                Some(f) => format!("{}{}", f.to_uppercase(), c.as_str()).into(),
                None => member.into(),
            }
        }
        None => member.into(),
    }
}

fn flatten(service: &Service, shape: &Shape, v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    let ec2 = service.metadata.protocol == "ec2";
    match (shape.ty.as_str(), v) {
        ("structure", Value::Object(o)) => {
            for (k, x) in o {
                let Some(r) = shape.members.get(k) else { continue };
                let Some(inner) = service.shape(&r.shape) else { continue };
                let name = if ec2 {
                    ec2_name(r, k)
                } else {
                    r.location_name.as_deref().unwrap_or(k).into()
                };
                flatten_ref(service, r, inner, x, &at(prefix, &name), out);
            }
        }
        ("timestamp", x) => {
            let t = codec::format_time(x, shape.timestamp_format.as_deref(), Place::XmlOrForm);
            out.push((prefix.to_string(), codec::text(&t)));
        }
        (_, Value::String(s)) => out.push((prefix.to_string(), s.clone())),
        (_, Value::Bool(b)) => out.push((prefix.to_string(), b.to_string())),
        (_, Value::Number(n)) => out.push((prefix.to_string(), n.to_string())),
        (_, Value::Null) => {}
        (_, other) => out.push((prefix.to_string(), other.to_string())),
    }
}

fn flatten_ref(service: &Service, r: &Ref, shape: &Shape, v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    // ec2 writes every list flat: `Filter.1.Value.1`.
    let flat = r.flattened || shape.flattened || service.metadata.protocol == "ec2";
    match (shape.ty.as_str(), v) {
        ("list", Value::Array(items)) => {
            if items.is_empty() {
                if service.metadata.protocol != "ec2" {
                    out.push((prefix.to_string(), String::new()));
                }
                return;
            }
            let member = shape.member.as_ref();
            let list_prefix = if flat {
                // A flattened query list takes its member's name (`Attribute.1`); ec2 keeps its own.
                match member.and_then(|m| m.location_name.as_deref()) {
                    Some(n) if service.metadata.protocol == "query" => {
                        let parent = prefix.rsplit_once('.').map_or("", |(p, _)| p);
                        at(parent, n)
                    }
                    _ => prefix.to_string(),
                }
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

/// The answer's members: query's `<OpResponse><OpResult>...`, ec2's `<OpResponse>...`, read
/// through the output shape.
pub(super) fn decode(service: &Service, wrapper: Option<&str>, output: Option<&Shape>, root: &Node) -> Value {
    let result = if service.metadata.protocol == "ec2" {
        Some(root)
    } else {
        wrapper.and_then(|w| root.child(w))
    };
    match (result, output) {
        (Some(node), Some(shape)) => xml::read(service, shape, node, 0),
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::resolve;
    use crate::call::xml::{parse, request_id};
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

    #[test]
    fn ec2_fields_are_capitalised_and_flat() {
        let c = resolve("ec2:DescribeVpcs").expect("resolves");
        let body = encode(
            c.service,
            c.name,
            c.input(),
            &json!({"Filters": [{"Name": "tag:team", "Values": ["a", "b"]}], "VpcIds": ["vpc-1"], "DryRun": false}),
        );
        assert_eq!(
            body,
            "Action=DescribeVpcs&Version=2016-11-15&DryRun=false&Filter.1.Name=tag%3Ateam&Filter.1.Value.1=a&Filter.1.Value.2=b&VpcId.1=vpc-1"
        );
        let xml = r#"<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-2</requestId><vpcSet><item><vpcId>vpc-1</vpcId><isDefault>true</isDefault></item></vpcSet></DescribeVpcsResponse>"#;
        let root = parse(xml).expect("parses");
        let v = decode(c.service, None, c.output(), &root);
        assert_eq!(v["Vpcs"][0]["VpcId"], "vpc-1");
        assert_eq!(v["Vpcs"][0]["IsDefault"], true);
        assert_eq!(request_id(&root).as_deref(), Some("r-2"));
    }
}
