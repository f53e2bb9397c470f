//! The service models a generic call is checked and serialised against: botocore's, trimmed
//! (`plugins/models/`), embedded and parsed once.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

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
    /// `json` or `query`.
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
    pub global_endpoint: Option<String>,
    #[serde(default)]
    pub source: String,
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
    /// `service:Operation`, filled in when the model is loaded.
    #[serde(skip)]
    pub call: String,
}

/// A reference to a shape from a member, a list or a map.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ref {
    pub shape: String,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
}

#[derive(Debug, Deserialize)]
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
            "integer" | "long" => "integer",
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

    /// What a person reads: `string`, `list of Tag`, `one of USER, GROUP`, ...
    pub fn describe(&self) -> String {
        if !self.choices.is_empty() {
            return format!("one of {}", self.choices.join(", "));
        }
        match (self.ty.as_str(), &self.member) {
            ("list", Some(m)) => format!("list of {}", m.shape),
            ("structure", _) if self.document => "any value".into(),
            (t, _) => t.to_string(),
        }
    }
}

const SOURCES: [(&str, &str); 6] = [
    ("organizations", include_str!("../../models/organizations.json")),
    ("sso-admin", include_str!("../../models/sso-admin.json")),
    ("identitystore", include_str!("../../models/identitystore.json")),
    ("support", include_str!("../../models/support.json")),
    ("iam", include_str!("../../models/iam.json")),
    ("sts", include_str!("../../models/sts.json")),
];

/// The services a generic call may name, in the order the reference lists them.
pub fn service_names() -> Vec<&'static str> {
    SOURCES.iter().map(|(n, _)| *n).collect()
}

fn loaded() -> &'static [Service] {
    static MODELS: OnceLock<Vec<Service>> = OnceLock::new();
    MODELS.get_or_init(|| {
        SOURCES
            .iter()
            .filter_map(|(name, text)| {
                // The files are ours and tested (`every_model_loads`); a broken one is left out.
                let mut s: Service = serde_json::from_str(text).ok()?;
                s.name = name;
                for (op_name, op) in s.operations.iter_mut() {
                    op.call = format!("{name}:{op_name}");
                }
                Some(s)
            })
            .collect()
    })
}

pub fn service(name: &str) -> Option<&'static Service> {
    loaded().iter().find(|s| s.name == name)
}

impl Service {
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    pub fn is_query(&self) -> bool {
        self.metadata.protocol == "query"
    }

    /// The name the request is signed for (`sso` for sso-admin).
    pub fn signing_name(&self) -> &str {
        self.metadata
            .signing_name
            .as_deref()
            .unwrap_or(&self.metadata.endpoint_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_loads() {
        assert_eq!(loaded().len(), SOURCES.len(), "a model file does not parse");
        for s in loaded() {
            assert!(!s.operations.is_empty(), "{}", s.name);
            for (name, op) in &s.operations {
                for shape in op.input.iter().chain(&op.output) {
                    assert!(s.shape(shape).is_some(), "{}:{name}: shape {shape}", s.name);
                }
            }
        }
        let ids = service("identitystore").expect("identitystore");
        assert_eq!(ids.metadata.target_prefix.as_deref(), Some("AWSIdentityStore"));
        assert_eq!(service("sso-admin").expect("sso-admin").signing_name(), "sso");
        assert!(service("iam").expect("iam").is_query());
    }
}
