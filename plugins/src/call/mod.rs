//! Any operation of the supported services by its API name: `aws organizations:ListAccounts`.
//!
//! The step body is the request in the API's own member names; the answer is the response as a
//! map. Names and types are checked against the service models (`plugins/models/`, from
//! botocore). Calls are signed with SigV4 from the same credentials, region and endpoint as the
//! built-in actions, retried like them, and counted in the same throttle accounting.
//!
//! A mutating call journals its intent before it is sent, `Requested` when AWS answered it, and
//! `Rejected` when AWS refused it (nothing was done); anything else (a 5xx, a timeout, a reset
//! connection after the request left) is an unknown outcome, never retried unless the step says
//! `on-unknown=retry`.

pub mod model;
mod query;
mod wire;

use serde_json::Value;

use crate::context::{Context, Event};
use crate::error::PluginError;
pub use model::{Measure, Service, Shape, service, service_names};

/// `service:Operation`, resolved against the models.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub service: &'static Service,
    pub operation: &'static model::Operation,
    /// The operation's name as the API spells it.
    pub name: &'static str,
}

/// Why a call name does not resolve; `candidates` are for "did you mean".
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NameError {
    #[error("`{0}` is not SERVICE:Operation (e.g. `organizations:ListAccounts`)")]
    Syntax(String),
    #[error("no service `{service}` for generic calls")]
    UnknownService {
        service: String,
        candidates: Vec<&'static str>,
    },
    #[error("{service} has no operation `{operation}`")]
    UnknownOperation {
        service: &'static str,
        operation: String,
        candidates: Vec<&'static str>,
    },
}

/// Whether a step names a generic call rather than a built-in action.
pub fn is_call(name: &str) -> bool {
    name.contains(':')
}

pub fn resolve(name: &str) -> Result<Call, NameError> {
    let (svc, op) = name
        .split_once(':')
        .filter(|(s, o)| !s.is_empty() && !o.is_empty())
        .ok_or_else(|| NameError::Syntax(name.to_string()))?;
    let service = service(svc).ok_or_else(|| NameError::UnknownService {
        service: svc.to_string(),
        candidates: service_names(),
    })?;
    match service.operations.get_key_value(op) {
        Some((n, o)) => Ok(Call {
            service,
            operation: o,
            name: n.as_str(),
        }),
        None => Err(NameError::UnknownOperation {
            service: service.name,
            operation: op.to_string(),
            candidates: service.operations.keys().map(String::as_str).collect(),
        }),
    }
}

/// An operation reads only when its name says so (as IAM's access levels do).
pub fn read_only(operation: &str) -> bool {
    ["Describe", "List", "Get"].iter().any(|p| operation.starts_with(p))
}

impl Call {
    /// `service:Operation`.
    pub fn full_name(&self) -> &'static str {
        &self.operation.call
    }

    pub fn input(&self) -> Option<&'static Shape> {
        self.operation.input.as_deref().and_then(|s| self.service.shape(s))
    }

    pub fn output(&self) -> Option<&'static Shape> {
        self.operation.output.as_deref().and_then(|s| self.service.shape(s))
    }

    /// The response's top-level member names: what `steps.ID.NAME` may read.
    pub fn output_members(&self) -> Vec<String> {
        self.output()
            .map(|s| s.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The AWS CLI command that does the same by hand.
    pub fn cli(&self) -> String {
        format!("aws {} {}", self.service.name, kebab(self.name))
    }

    /// Checks a resolved request against the model: member names, types, required members.
    pub fn validate(&self, request: &Value) -> Result<(), RequestError> {
        let empty = Value::Object(Default::default());
        let request = if request.is_null() { &empty } else { request };
        match self.input() {
            Some(shape) => validate(self.service, shape, request, ""),
            None if request.as_object().is_some_and(|o| o.is_empty()) => Ok(()),
            None => Err(RequestError::NoMembers(self.full_name())),
        }
    }
}

/// `ListAccounts` -> `list-accounts`, as the AWS CLI names commands.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase()) {
                out.push('-');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

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

fn validate(service: &Service, shape: &Shape, v: &Value, path: &str) -> Result<(), RequestError> {
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

/// How a step asked for the call to be made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Journal an intent first and pass the guard (decided by the runner: the name, or `mutates=`).
    pub mutates: bool,
    /// `on-unknown=retry`: a mutating call whose outcome is unknown (5xx, timeout) is sent again.
    pub retry_unknown: bool,
}

/// A short, stable rendering of the request for the journal (masked there like every entry).
pub fn target_of(request: &Value) -> String {
    let t = request.to_string();
    if t.len() <= 300 {
        return t;
    }
    let mut end = 300;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &t[..end])
}

/// At most so many pages of one read (1,000 pages of 100 is far past any account's assignments);
/// more is an error, never a short list.
const MAX_PAGES: usize = 1_000;

/// A read answered in pages (`NextToken`, or IAM's `Marker` with `IsTruncated`) is read to its
/// end and the pages' lists joined, as the SDK's paginators do: a step that lists a user's
/// assignments to remove them sees all of them, not the first page (attacker finding, session 6:
/// the offboarding runbook removed the first page and deleted the user). A token seen before,
/// a page said to be truncated without a marker, or more than [`MAX_PAGES`] pages is an error:
/// a short list read as a whole one is how a user is deleted with assignments left.
async fn read_all(ctx: &Context, call: Call, mut request: Value, opts: Options) -> Result<Value, PluginError> {
    let send = |request: Value| async move {
        match wire::send(ctx, call, &request, opts).await {
            Ok(answer) => Ok(answer.body),
            Err(wire::Failure::Refused(e) | wire::Failure::Unknown(e)) => Err(e),
        }
    };
    let mut body = send(request.clone()).await?;
    let takes = |member: &str| call.input().is_some_and(|s| s.members.contains_key(member));
    // The Support API spells it `nextToken`.
    let Some(token) = ["NextToken", "nextToken", "Marker"].into_iter().find(|t| takes(t)) else {
        return Ok(body);
    };
    let short = |why: &str| PluginError::Failed {
        what: format!("reading {}", call.full_name()),
        reason: format!("{why}: the list would be short"),
        request_id: None,
        hint: Some("AWS answered pages that do not add up; run the step again, and report it if it persists".into()),
    };
    let mut seen = std::collections::HashSet::new();
    let mut pages = 1;
    loop {
        let next = body.get(token).and_then(Value::as_str).filter(|t| !t.is_empty());
        let next = match token {
            "Marker" if body.get("IsTruncated") != Some(&Value::Bool(true)) => None,
            "Marker" if next.is_none() => return Err(short("a page said it was truncated and gave no marker")),
            _ => next,
        };
        let Some(next) = next.map(String::from) else {
            break;
        };
        if !seen.insert(next.clone()) {
            return Err(short("AWS repeated a page token"));
        }
        if pages >= MAX_PAGES {
            return Err(short(&format!("more than {MAX_PAGES} pages")));
        }
        pages += 1;
        if let Some(o) = request.as_object_mut() {
            o.insert(token.into(), Value::String(next));
        }
        let page = send(request.clone()).await?;
        if let (Some(all), Value::Object(page)) = (body.as_object_mut(), page) {
            // The token member leaves with the page that had one.
            all.remove(token);
            for (k, v) in page {
                match (all.get_mut(&k), v) {
                    (Some(Value::Array(joined)), Value::Array(more)) => joined.extend(more),
                    (_, v) => {
                        all.insert(k, v);
                    }
                }
            }
        }
    }
    if let Some(o) = body.as_object_mut() {
        o.remove(token);
        if token == "Marker" {
            o.insert("IsTruncated".into(), Value::Bool(false));
        }
    }
    Ok(body)
}

/// Makes the call. A mutating call journals its intent first and its answer after; a read is
/// read to its last page.
pub async fn invoke(ctx: &Context, call: Call, request: Value, opts: Options) -> Result<Value, PluginError> {
    let request = if request.is_null() {
        Value::Object(Default::default())
    } else {
        request
    };
    call.validate(&request)
        .map_err(|message| PluginError::Other(format!("{}: {message}", call.full_name())))?;
    if !opts.mutates {
        return read_all(ctx, call, request, opts).await;
    }
    let name = call.full_name();
    let target = target_of(&request);
    // AWS makes a second one of most things a call by name makes (it has no client token to
    // tell them apart): one item, run or process at a time, after any lost answer has landed.
    let _claim = ctx.claim(name, &target, crate::Duplicates::Made).await?;
    if opts.mutates {
        ctx.emit(Event::Intent {
            call: name.to_string(),
            target: target.clone(),
        })?;
    }
    match wire::send(ctx, call, &request, opts).await {
        Ok(answer) => {
            if opts.mutates {
                ctx.emit(Event::Requested {
                    call: name.to_string(),
                    target,
                    request_id: answer.request_id,
                })?;
            }
            Ok(answer.body)
        }
        Err(wire::Failure::Refused(e)) => {
            if opts.mutates {
                ctx.emit(Event::Rejected {
                    call: name.to_string(),
                    target,
                    code: e.code().unwrap_or("error").to_string(),
                })?;
            }
            Err(e)
        }
        Err(wire::Failure::Unknown(e)) => Err(if opts.mutates {
            PluginError::Failed {
                what: name.to_string(),
                reason: format!("the outcome is unknown: {e}"),
                request_id: None,
                hint: Some("AWS may or may not have acted; check (e.g. with a Describe/List/Get call) before running again: a re-run stops here and asks, unless the step says on-unknown=retry".to_string()),
            }
        } else {
            e
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_outside_the_models_bounds_is_refused_before_it_is_sent() {
        let list = resolve("organizations:ListAccounts").expect("resolves");
        assert_eq!(
            list.validate(&json!({ "MaxResults": 5000 })).map_err(|e| e.to_string()),
            Err("`MaxResults` must be from 1 to 20, not 5000".to_string())
        );
        assert_eq!(
            list.validate(&json!({ "MaxResults": 0 })).map_err(|e| e.to_string()),
            Err("`MaxResults` must be from 1 to 20, not 0".to_string())
        );
        assert_eq!(list.validate(&json!({ "MaxResults": 20 })), Ok(()));
        let user = resolve("iam:CreateUser").expect("resolves");
        let long = "u".repeat(65);
        assert_eq!(
            user.validate(&json!({ "UserName": long })).map_err(|e| e.to_string()),
            Err("`UserName` must be from 1 to 64 characters long, not 65".to_string())
        );
        assert_eq!(user.validate(&json!({ "UserName": "u".repeat(64) })), Ok(()));
    }

    #[test]
    fn names_resolve_with_candidates() {
        let c = resolve("organizations:ListAccounts").expect("resolves");
        assert_eq!(c.full_name(), "organizations:ListAccounts");
        assert!(c.output_members().contains(&"Accounts".to_string()));
        assert!(matches!(
            resolve("organisations:ListAccounts"),
            Err(NameError::UnknownService { .. })
        ));
        match resolve("identitystore:DeleteUsers") {
            Err(NameError::UnknownOperation { candidates, .. }) => assert!(candidates.contains(&"DeleteUser")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(resolve("sts"), Err(NameError::Syntax(_))));
        assert!(read_only("ListAccounts") && read_only("GetUserId") && !read_only("DeleteUser"));
        assert_eq!(kebab("GetCallerIdentity"), "get-caller-identity");
        assert_eq!(kebab("ListAccountsForParent"), "list-accounts-for-parent");
        assert_eq!(kebab("GetSAMLProvider"), "get-saml-provider");
    }

    #[test]
    fn requests_are_checked_against_the_model() {
        let c = resolve("identitystore:DeleteUser").expect("resolves");
        assert!(c.validate(&json!({"IdentityStoreId": "d-1", "UserId": "u"})).is_ok());
        let e = c
            .validate(&json!({"IdentityStoreId": "d-1", "UserID": "u"}))
            .expect_err("unknown member");
        assert_eq!(
            e,
            RequestError::NoSuchMember {
                at: "the request".into(),
                member: "UserID".into()
            }
        );
        let e = c.validate(&json!({"IdentityStoreId": "d-1"})).expect_err("required");
        assert!(e.to_string().contains("UserId"), "{e}");
        let a = resolve("sso-admin:DeleteAccountAssignment").expect("resolves");
        let e = a
            .validate(&json!({"InstanceArn": "arn:aws:sso:::instance/ssoins-1234567890abcdef", "TargetId": "111111111111", "TargetType": "ACCOUNT", "PermissionSetArn": "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef", "PrincipalType": "USER", "PrincipalId": "u"}))
            .expect_err("enum");
        assert!(e.to_string().contains("AWS_ACCOUNT"), "{e}");
        let l = resolve("organizations:ListAccounts").expect("resolves");
        assert!(l.validate(&json!({"MaxResults": "5"})).is_err());
        assert!(l.validate(&Value::Null).is_ok());
    }
}
