//! The service models a generic call is checked and serialised against: botocore's, trimmed to
//! what this code reads (`plugins/models/aws/`, one gzip file per service), embedded, and each
//! decompressed and parsed the first time a step names its service: `check` on a runbook that
//! calls iam pays for iam, not for ec2.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::OnceLock;

use serde::Deserialize;

/// The embedded models, sorted by name: `(service, protocol, number of operations, API
/// reference uid, a global service's signing region or "", gzip of the trimmed JSON)`. What a
/// listing needs is here, so listing every service opens no model.
type Source = (
    &'static str,
    &'static str,
    usize,
    &'static str,
    &'static str,
    &'static [u8],
);
static SOURCES: &[Source] = include!("../../models/aws/index.rs");

/// A service as listed, without its model.
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    pub name: &'static str,
    pub protocol: &'static str,
    pub operations: usize,
    /// `organizations-2016-11-28`, for the API reference's address.
    pub uid: &'static str,
    /// The region a global service answers in.
    pub global: Option<&'static str>,
}

/// Every service, in name order, without opening a model.
pub fn catalog() -> impl Iterator<Item = Listing> {
    SOURCES.iter().map(|s| Listing {
        name: s.0,
        protocol: s.1,
        operations: s.2,
        uid: s.3,
        global: Some(s.4).filter(|r| !r.is_empty()),
    })
}

/// The AWS API reference page of an operation (or, without one, of the service).
pub fn api_reference(uid: &str, operation: Option<&str>) -> String {
    match operation {
        Some(op) => format!("https://docs.aws.amazon.com/goto/WebAPI/{uid}/{op}"),
        None => format!("https://docs.aws.amazon.com/goto/WebAPI/{uid}"),
    }
}

/// A service as `aws SERVICE:Operation` names it, with its protocol metadata.
#[derive(Debug, Deserialize)]
pub struct Service {
    #[serde(skip)]
    pub name: &'static str,
    pub metadata: Metadata,
    pub operations: BTreeMap<String, Operation>,
    pub shapes: BTreeMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `json`, `rest-json`, `rest-xml`, `query` or `ec2` (`smithy-rpc-v2-cbor` for the few
    /// services that speak nothing else: known to `check`, refused when called).
    pub protocol: String,
    pub api_version: String,
    pub endpoint_prefix: String,
    #[serde(default)]
    pub signing_name: Option<String>,
    #[serde(default)]
    pub target_prefix: Option<String>,
    #[serde(default)]
    pub json_version: Option<String>,
    #[serde(default)]
    pub xml_namespace: Option<String>,
    /// `organizations-2016-11-28`: the API reference's address for the service.
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub service_full_name: String,
    /// A service that answers in one place whatever the region (iam, organizations, route53).
    #[serde(default)]
    pub global: Option<Global>,
    #[serde(default)]
    pub source: String,
}

/// Where a global service answers, and the region its requests are signed for.
#[derive(Debug, Deserialize)]
pub struct Global {
    pub host: String,
    pub region: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub request_uri: String,
    #[serde(default)]
    pub response_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
    /// Query protocol: the element the answer's members sit in (`ListUsersResult`).
    #[serde(default)]
    pub result_wrapper: Option<String>,
    #[serde(default)]
    pub http: Http,
    /// The model says the operation changes nothing.
    #[serde(default)]
    pub readonly: bool,
    /// Prepended to the endpoint's host (`data.`, `{AccountId}.`).
    #[serde(default)]
    pub host_prefix: Option<String>,
    /// AWS refuses the request without a checksum of its body (Content-MD5).
    #[serde(default)]
    pub checksum_required: bool,
    #[serde(default)]
    pub paginator: Option<Paginator>,
    /// `service:Operation`, filled in when the model is loaded.
    #[serde(skip)]
    pub call: String,
}

/// botocore's pagination data for one operation (`paginators-1.json`).
#[derive(Debug, Deserialize)]
pub struct Paginator {
    pub input_token: OneOrMore,
    pub output_token: OneOrMore,
    /// A member that says whether more pages follow (`IsTruncated`).
    #[serde(default)]
    pub more_results: Option<String>,
    #[serde(default)]
    pub result_key: Option<OneOrMore>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl OneOrMore {
    pub fn all(&self) -> Vec<&str> {
        match self {
            OneOrMore::One(s) => vec![s.as_str()],
            OneOrMore::More(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A reference to a shape from a member, a list or a map.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ref {
    pub shape: String,
    /// `uri`, `querystring`, `header`, `headers`, `statusCode`; none for the body.
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub xml_namespace: Option<XmlNs>,
    #[serde(default)]
    pub xml_attribute: bool,
    /// ec2: the form field's name.
    #[serde(default)]
    pub query_name: Option<String>,
    /// A header that carries JSON, base64-encoded.
    #[serde(default)]
    pub jsonvalue: bool,
    #[serde(default)]
    pub host_label: bool,
    #[serde(default)]
    pub idempotency_token: bool,
    #[serde(default)]
    pub streaming: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub members: BTreeMap<String, Ref>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub member: Option<Ref>,
    #[serde(default)]
    pub key: Option<Ref>,
    #[serde(default)]
    pub value: Option<Ref>,
    #[serde(default, rename = "enum")]
    pub choices: Vec<String>,
    #[serde(default)]
    pub flattened: bool,
    /// A free-form JSON value (identitystore's `AttributeValue`).
    #[serde(default)]
    pub document: bool,
    /// The least and the most a number may be, or a string or a list may hold.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// The member that is the whole HTTP body (rest protocols).
    #[serde(default)]
    pub payload: Option<String>,
    /// Secret: a password, a key, a seed. Masked wherever the runner shows or stores it.
    #[serde(default)]
    pub sensitive: bool,
    /// A body of unbounded length (an object's content): not something a step sends or reads.
    #[serde(default)]
    pub streaming: bool,
    #[serde(default)]
    pub eventstream: bool,
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// rest-xml: the root element's name.
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub xml_namespace: Option<XmlNs>,
    /// rest-xml: the members in the model's order, where it is not alphabetical.
    #[serde(default)]
    pub order: Vec<String>,
}

/// An XML namespace: a URI, or a prefix and its URI (`xsi`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum XmlNs {
    Uri(String),
    Prefixed {
        #[serde(default)]
        prefix: Option<String>,
        uri: String,
    },
}

impl XmlNs {
    /// `xmlns="..."` or `xmlns:xsi="..."`.
    pub fn attribute(&self) -> (String, &str) {
        match self {
            XmlNs::Uri(u) => ("xmlns".into(), u),
            XmlNs::Prefixed { prefix: Some(p), uri } => (format!("xmlns:{p}"), uri),
            XmlNs::Prefixed { prefix: None, uri } => ("xmlns".into(), uri),
        }
    }
}

/// What [`Shape::out_of_bounds`] measures: a number's value, a string's or a list's length.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    Number(f64),
    Chars(usize),
    Items(usize),
}

impl Shape {
    /// The JSON type a value of this shape has in a request body (a TOML table is an object).
    pub fn json_kind(&self) -> &'static str {
        if self.document {
            return "any";
        }
        match self.ty.as_str() {
            "structure" | "map" => "object",
            "list" => "array",
            "integer" | "long" | "short" | "byte" => "integer",
            "float" | "double" => "number",
            "boolean" => "boolean",
            // string, timestamp (ISO 8601), blob (base64)
            _ => "string",
        }
    }

    /// Why a value is outside the model's bounds (the one rule `check` and the run share), if it
    /// is: `must be from 1 to 20, not 5000`, `must be at most 64 characters long, not 80`.
    pub fn out_of_bounds(&self, m: Measure) -> Option<String> {
        let (value, unit) = match m {
            Measure::Number(n) if matches!(self.ty.as_str(), "integer" | "long" | "float" | "double") => (n, ""),
            Measure::Chars(n) if self.ty == "string" => (n as f64, " characters long"),
            Measure::Items(n) if self.ty == "list" => (n as f64, " items long"),
            _ => return None,
        };
        let below = self.min.is_some_and(|min| value < min);
        let above = self.max.is_some_and(|max| value > max);
        if !below && !above {
            return None;
        }
        let range = match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("from {lo} to {hi}{unit}"),
            (Some(lo), None) => format!("at least {lo}{unit}"),
            (None, Some(hi)) => format!("at most {hi}{unit}"),
            (None, None) => return None,
        };
        Some(format!("must be {range}, not {value}"))
    }

    /// The members in the order the model gives them (what an XML body is read against).
    pub fn ordered_members(&self) -> Vec<(&str, &Ref)> {
        if self.order.is_empty() {
            return self.members.iter().map(|(k, r)| (k.as_str(), r)).collect();
        }
        self.order
            .iter()
            .filter_map(|k| self.members.get_key_value(k).map(|(k, r)| (k.as_str(), r)))
            .collect()
    }

    /// What a person reads: `string`, `list of Tag`, `one of USER, GROUP`, ...
    pub fn describe(&self) -> String {
        if !self.choices.is_empty() {
            return format!("one of {}", self.choices.join(", "));
        }
        match (self.ty.as_str(), &self.member) {
            ("list", Some(m)) => format!("list of {}", m.shape),
            ("structure", _) if self.document => "any value".into(),
            ("blob", _) => "blob (base64)".into(),
            ("timestamp", _) => "timestamp (ISO 8601)".into(),
            (t, _) => t.to_string(),
        }
    }
}

/// Every service a generic call may name, sorted.
pub fn service_names() -> Vec<&'static str> {
    SOURCES.iter().map(|s| s.0).collect()
}

/// Each service's model, parsed on first use and kept for the process.
fn cells() -> &'static [OnceLock<Option<Service>>] {
    static CELLS: OnceLock<Vec<OnceLock<Option<Service>>>> = OnceLock::new();
    CELLS.get_or_init(|| SOURCES.iter().map(|_| OnceLock::new()).collect())
}

fn parse(name: &'static str, gz: &[u8]) -> Option<Service> {
    let mut text = Vec::with_capacity(gz.len() * 8);
    flate2::read::GzDecoder::new(gz).read_to_end(&mut text).ok()?;
    // The files are ours and tested (`every_model_loads`); a broken one is left out.
    let mut s: Service = serde_json::from_slice(&text).ok()?;
    s.name = name;
    for (op_name, op) in s.operations.iter_mut() {
        op.call = format!("{name}:{op_name}");
    }
    Some(s)
}

pub fn service(name: &str) -> Option<&'static Service> {
    let i = SOURCES.binary_search_by(|s| s.0.cmp(name)).ok()?;
    let s = SOURCES[i];
    cells()[i].get_or_init(|| parse(s.0, s.5)).as_ref()
}

impl Service {
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    pub fn is_query(&self) -> bool {
        self.metadata.protocol == "query"
    }

    /// The name the request is signed for (`sso` for sso-admin, `execute-api` for some).
    pub fn signing_name(&self) -> &str {
        self.metadata
            .signing_name
            .as_deref()
            .unwrap_or(&self.metadata.endpoint_prefix)
    }

    /// Whether generic calls can speak the service's protocol.
    pub fn spoken(&self) -> bool {
        matches!(
            self.metadata.protocol.as_str(),
            "json" | "rest-json" | "rest-xml" | "query" | "ec2"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_loads() {
        assert!(SOURCES.windows(2).all(|w| w[0].0 < w[1].0), "index not sorted");
        assert!(SOURCES.len() > 400, "{}", SOURCES.len());
        for listed in catalog() {
            let name = listed.name;
            let s = service(name).unwrap_or_else(|| panic!("{name} does not parse"));
            assert!(!s.operations.is_empty(), "{}", s.name);
            assert_eq!(s.operations.len(), listed.operations, "{name}");
            assert_eq!(s.metadata.protocol, listed.protocol, "{name}");
            assert_eq!(
                s.metadata.global.as_ref().map(|g| g.region.as_str()),
                listed.global,
                "{name}"
            );
            for (op_name, op) in &s.operations {
                for shape in op.input.iter().chain(&op.output) {
                    assert!(s.shape(shape).is_some(), "{}:{op_name}: shape {shape}", s.name);
                }
            }
        }
        let ids = service("identitystore").expect("identitystore");
        assert_eq!(ids.metadata.target_prefix.as_deref(), Some("AWSIdentityStore"));
        assert_eq!(service("sso-admin").expect("sso-admin").signing_name(), "sso");
        assert!(service("iam").expect("iam").is_query());
        assert_eq!(service("ec2").expect("ec2").metadata.protocol, "ec2");
        assert_eq!(service("s3").expect("s3").metadata.protocol, "rest-xml");
        assert_eq!(service("lambda").expect("lambda").metadata.protocol, "rest-json");
        // cloudwatch lists CBOR first and also speaks json.
        assert_eq!(service("cloudwatch").expect("cloudwatch").metadata.protocol, "json");
        let iam = service("iam").expect("iam");
        assert_eq!(
            iam.metadata.global.as_ref().map(|g| g.host.as_str()),
            Some("iam.amazonaws.com")
        );
        assert!(service("ec2").expect("ec2").metadata.global.is_none());
        assert!(service("nope").is_none());
    }
}
