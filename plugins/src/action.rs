//! The [`Action`] trait every plugin action implements, and its type-erased form for the registry.

use std::future::Future;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::BoxFuture;
use crate::context::Context;
use crate::error::PluginError;

/// What `plan` found for one thing the action manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Already as wanted: `apply` will only read it.
    Exists,
    /// Missing: `apply` will create it.
    WouldCreate,
    /// Present but different: `apply` will change it.
    WouldChange,
    /// A read-only check that `apply` will run.
    Check,
    /// Cannot be known before earlier steps have run (e.g. a parameter comes from them).
    Unknown,
}

/// One thing an action's `plan` looked at, and what `apply` will do with it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PreviewItem {
    pub verdict: Verdict,
    pub what: String,
}

/// What an action's `plan` foresees `apply` doing, one [`PreviewItem`] per thing it manages: the
/// action's share of a run's plan (the runner's `plan` walks the steps and shows these in its
/// rows).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Preview {
    pub items: Vec<PreviewItem>,
}

impl Preview {
    pub fn one(verdict: Verdict, what: impl Into<String>) -> Self {
        Preview {
            items: vec![PreviewItem {
                verdict,
                what: what.into(),
            }],
        }
    }

    pub fn push(&mut self, verdict: Verdict, what: impl Into<String>) {
        self.items.push(PreviewItem {
            verdict,
            what: what.into(),
        });
    }
}

/// A plugin action with typed parameters and outputs.
pub trait Action: Send + Sync + 'static {
    /// Deserialised from the step body with unknown keys refused; doc comments become the book.
    type Params: DeserializeOwned + JsonSchema + Send + Sync;
    type Outputs: Serialize + JsonSchema + Send;
    /// `service.action`, as written after the executor word.
    const NAME: &'static str;
    /// One line: what the action checks or changes.
    const SUMMARY: &'static str;
    /// Whether `apply` can change anything (the guard is checked before such steps).
    const MUTATES: bool;
    /// Whether the action sends text a person wrote or chose to AWS (a support case): the
    /// runner shows it and asks before sending, unless told `--yes`.
    const SENDS_TEXT: bool = false;
    /// For an action that ensures something exists: whose the thing it finds is (what makes an
    /// existing one this step's, and what it refuses), and which of its properties it brings to
    /// what the step says. For the plugin reference.
    const CONVERGES: &'static str = "";
    /// Every AWS call `plan` or `apply` may make, as `service:Operation` in the service models'
    /// names (the names its errors and journal use): what `runbook permissions` turns into IAM
    /// actions (`permissions::iam_actions`). The suite runs the bundled runbooks through a proxy
    /// that sees each request and fails on a call no step declared.
    const CALLS: &'static [&'static str];

    /// The AWS CLI command(s) that do the same by hand, for the rendered docs.
    fn cli(_params: &Value) -> Vec<String> {
        Vec::new()
    }

    /// Reads what exists and says what `apply` would do. Never mutates.
    fn plan(ctx: &Context, params: &Self::Params) -> impl Future<Output = Result<Preview, PluginError>> + Send;

    /// Makes it so, creating only what is missing.
    fn apply(ctx: &Context, params: Self::Params) -> impl Future<Output = Result<Self::Outputs, PluginError>> + Send;
}

/// One parameter or output field, as the docs and `check` see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    /// Human type: `string`, `integer`, `boolean`, `list of string`, `one of USER, GROUP`, ...
    pub ty: String,
    /// JSON types accepted (`string`, `integer`, `number`, `boolean`, `array`, `object`).
    pub json_types: Vec<String>,
    /// Accepted values, when the field is an enumeration.
    pub choices: Vec<String>,
    pub required: bool,
    pub default: Option<Value>,
    pub doc: String,
    /// A regular expression a literal string value must match (typed strings: durations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Values written as they should be, for messages and docs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// An action's description, derived from its types.
#[derive(Debug, Clone, Serialize)]
pub struct ActionInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub mutates: bool,
    /// Sends text to AWS (shown and confirmed before it goes).
    pub sends_text: bool,
    /// Whose an existing thing is and what is brought to what the step says (ensure actions).
    pub converges: &'static str,
    /// The AWS calls the action may make (`service:Operation`, the models' names).
    pub calls: &'static [&'static str],
    pub params: Vec<FieldSpec>,
    pub outputs: Vec<FieldSpec>,
}

impl ActionInfo {
    pub fn param(&self, name: &str) -> Option<&FieldSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// An action with its types erased: parameters and outputs travel as JSON values.
pub trait DynAction: Send + Sync {
    fn info(&self) -> &ActionInfo;
    fn cli(&self, params: &Value) -> Vec<String>;
    /// Checks parameters against the typed struct without running anything.
    fn validate(&self, params: &Value) -> Result<(), PluginError>;
    fn plan<'a>(&'a self, ctx: &'a Context, params: Value) -> BoxFuture<'a, Result<Preview, PluginError>>;
    fn apply<'a>(&'a self, ctx: &'a Context, params: Value) -> BoxFuture<'a, Result<Value, PluginError>>;
}

pub(crate) struct Erased<A: Action> {
    info: ActionInfo,
    _a: PhantomData<fn() -> A>,
}

impl<A: Action> Erased<A> {
    pub(crate) fn new() -> Self {
        Erased {
            info: ActionInfo {
                name: A::NAME,
                summary: A::SUMMARY,
                mutates: A::MUTATES,
                sends_text: A::SENDS_TEXT,
                converges: A::CONVERGES,
                calls: A::CALLS,
                params: fields_of(&schemars::schema_for!(A::Params)),
                outputs: fields_of(&schemars::schema_for!(A::Outputs)),
            },
            _a: PhantomData,
        }
    }
}

fn parse_params<A: Action>(params: Value) -> Result<A::Params, PluginError> {
    // A step with an empty body gives an empty table; treat `null` the same.
    let params = if params.is_null() {
        Value::Object(Default::default())
    } else {
        params
    };
    // The path names the parameter (`session_duration: ...`), so an error found only at run time,
    // on a value from `${...}`, still says which parameter it is about.
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        PluginError::Params {
            action: A::NAME,
            message: if path == "." {
                inner.to_string()
            } else {
                format!("`{path}`: {inner}")
            },
        }
    })
}

impl<A: Action> DynAction for Erased<A> {
    fn info(&self) -> &ActionInfo {
        &self.info
    }

    fn cli(&self, params: &Value) -> Vec<String> {
        A::cli(params)
    }

    fn validate(&self, params: &Value) -> Result<(), PluginError> {
        parse_params::<A>(params.clone()).map(|_| ())
    }

    fn plan<'a>(&'a self, ctx: &'a Context, params: Value) -> BoxFuture<'a, Result<Preview, PluginError>> {
        Box::pin(async move {
            let p = parse_params::<A>(params)?;
            A::plan(ctx, &p).await
        })
    }

    fn apply<'a>(&'a self, ctx: &'a Context, params: Value) -> BoxFuture<'a, Result<Value, PluginError>> {
        Box::pin(async move {
            let p = parse_params::<A>(params)?;
            let out = A::apply(ctx, p).await?;
            serde_json::to_value(out).map_err(|e| PluginError::Other(format!("{}: outputs: {e}", A::NAME)))
        })
    }
}

/// Reads the top-level fields of a struct's JSON schema.
fn fields_of(schema: &schemars::Schema) -> Vec<FieldSpec> {
    let root = schema.as_value();
    let defs = root.get("$defs").cloned().unwrap_or(Value::Null);
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| {
            let resolved = resolve(prop, &defs);
            let (ty, json_types, choices) = describe(&resolved, &defs);
            FieldSpec {
                name: name.clone(),
                ty,
                json_types,
                choices,
                required: required.contains(&name.as_str()),
                default: prop.get("default").cloned(),
                doc: prop
                    .get("description")
                    .or_else(|| resolved.get("description"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .replace('\n', " "),
                pattern: resolved.get("pattern").and_then(Value::as_str).map(String::from),
                examples: resolved
                    .get("examples")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn resolve(v: &Value, defs: &Value) -> Value {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or("");
        if let Some(d) = defs.get(name) {
            return resolve(d, defs);
        }
    }
    // Option<T> of a referenced type: anyOf [ {$ref}, {type: null} ].
    if let Some(any) = v.get("anyOf").and_then(Value::as_array) {
        let non_null: Vec<&Value> = any
            .iter()
            .filter(|x| x.get("type") != Some(&Value::from("null")))
            .collect();
        if non_null.len() == 1 {
            return resolve(non_null[0], defs);
        }
    }
    v.clone()
}

fn describe(v: &Value, defs: &Value) -> (String, Vec<String>, Vec<String>) {
    let enum_values = |v: &Value| -> Vec<String> {
        if let Some(e) = v.get("enum").and_then(Value::as_array) {
            return e.iter().filter_map(Value::as_str).map(String::from).collect();
        }
        if let Some(one) = v.get("oneOf").and_then(Value::as_array) {
            return one
                .iter()
                .filter_map(|x| x.get("const").or_else(|| x.get("enum").and_then(|e| e.get(0))))
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
        }
        Vec::new()
    };
    let choices = enum_values(v);
    if !choices.is_empty() {
        return (format!("one of {}", choices.join(", ")), vec!["string".into()], choices);
    }
    let types: Vec<String> = match v.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(String::from)
            .collect(),
        _ => vec!["object".into()],
    };
    let ty = match types.first().map(String::as_str) {
        Some("array") => {
            let item = v.get("items").map(|i| resolve(i, defs)).unwrap_or(Value::Null);
            let (inner, _, _) = describe(&item, defs);
            format!("list of {inner}")
        }
        Some(t) if item_is_object(v) => t.to_string(),
        Some(t) => t.to_string(),
        None => "any".into(),
    };
    (ty, types, Vec::new())
}

fn item_is_object(v: &Value) -> bool {
    v.get("properties").is_some()
}

/// A command line as a shell reads it, each word quoted only where it must be (shell-words), so
/// a value such as `Pat O'Brien` pastes as one word, as written. The cards' CLI lines use it.
pub fn command<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    shell_words::join(words)
}
