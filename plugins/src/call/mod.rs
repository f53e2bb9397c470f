//! Any operation of any AWS service by its API name: `aws organizations:ListAccounts`,
//! `aws s3:PutBucketVersioning`, `aws ec2:DescribeVpcs`.
//!
//! The step body is the request in the API's own member names; the answer is the response as a
//! map. Names and types are checked against the service models (`plugins/models/`, botocore's,
//! for every service). The request is written in the service's protocol (json, query, ec2,
//! rest-json, rest-xml), sent to the endpoint its metadata names, signed with SigV4 from the same
//! credentials and region as the built-in actions, retried like them, and counted in the same
//! throttle accounting.
//!
//! A mutating call journals its intent before it is sent, `Requested` when AWS answered it, and
//! `Rejected` when AWS refused it (nothing was done); anything else (a 5xx, a timeout, a reset
//! connection after the request left) is an unknown outcome, never retried unless the step says
//! `on-unknown=retry`.

mod codec;
mod endpoint;
mod json;
pub mod model;
pub(crate) mod name;
mod pages;
mod query;
mod rest;
mod sensitive;
mod validate;
mod wire;
mod xml;

use serde_json::Value;

use crate::context::{Context, Event};
use crate::error::PluginError;
pub use model::{Listing, Measure, Service, Shape, api_reference, catalog, service, service_names};
pub use name::{Call, NameError, resolve};
pub use sensitive::{sensitive_outputs, sensitive_values};
pub use validate::RequestError;

/// Whether a step names a generic call rather than a built-in action.
pub fn is_call(name: &str) -> bool {
    name.contains(':')
}

/// An operation reads when its name says so (as IAM's access levels do).
pub fn read_only(operation: &str) -> bool {
    ["Describe", "List", "Get", "Head"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// Whether `check` can tell a literal is a timestamp a call would send.
pub fn is_timestamp(text: &str) -> bool {
    codec::is_timestamp(&Value::String(text.to_string()))
}

/// Whether a literal is base64, as a blob member is written.
pub fn is_base64(text: &str) -> bool {
    codec::blob(&Value::String(text.to_string())).is_some()
}

/// Operations named like reads that make something: an identity, a database user, a login
/// session, credentials or a token (what `plan` must never do with CI's credentials). Found by
/// reading the models' documentation of the `Get*` operations that return a secret or say they
/// create; a call listed here journals an intent and passes the guard like any change.
pub const NOT_READS: &[&str] = &[
    "cognito-identity:GetId",
    "cognito-identity:GetOpenIdToken",
    "cognito-identity:GetOpenIdTokenForDeveloperIdentity",
    "cognito-identity:GetCredentialsForIdentity",
    "sts:GetSessionToken",
    "sts:GetFederationToken",
    "sso:GetRoleCredentials",
    "ecr:GetAuthorizationToken",
    "ecr-public:GetAuthorizationToken",
    "codeartifact:GetAuthorizationToken",
    "redshift:GetClusterCredentials",
    "redshift:GetClusterCredentialsWithIAM",
    "redshift-serverless:GetCredentials",
    "lightsail:GetInstanceAccessDetails",
    "lightsail:GetRelationalDatabaseMasterUserPassword",
    "secretsmanager:GetRandomPassword",
    "connect:GetFederationToken",
    "iot:GetRegistrationCode",
    "quicksight:GetSessionEmbedUrl",
    "quicksight:GetDashboardEmbedUrl",
    "gamelift:GetInstanceAccess",
    "lakeformation:GetTemporaryGlueTableCredentials",
    "lakeformation:GetTemporaryGluePartitionCredentials",
    "emr:GetClusterSessionCredentials",
    "emr-containers:GetManagedEndpointSessionCredentials",
    "s3control:GetDataAccess",
    "datazone:GetEnvironmentCredentials",
    "cognito-idp:GetTokensFromRefreshToken",
    "bedrock-agentcore:GetWorkloadAccessToken",
    "bedrock-agentcore:GetResourceApiKey",
    "kinesis-video-archived-media:GetHLSStreamingSessionURL",
    "kinesis-video-archived-media:GetDASHStreamingSessionURL",
];

/// Whether `service:Operation` reads: its name says so, or its model marks it read-only, and it
/// is not one of [`NOT_READS`].
pub fn reads(name: &str) -> bool {
    if NOT_READS.contains(&name) {
        return false;
    }
    match resolve(name) {
        Ok(c) => c.reads(),
        Err(_) => read_only(name.split_once(':').map_or(name, |(_, o)| o)),
    }
}

impl Call {
    /// Whether the call changes nothing: its name, or the model's own `readonly` marker.
    pub fn reads(&self) -> bool {
        !NOT_READS.contains(&self.full_name()) && (read_only(self.name) || self.operation.readonly)
    }

    /// Why a step cannot make this call at all (a streamed body, a protocol we do not speak).
    pub fn refusal(&self) -> Option<String> {
        if !self.service.spoken() {
            return Some(format!(
                "{} speaks only the {} protocol, which calls by name do not support",
                self.service.name, self.service.metadata.protocol
            ));
        }
        let service = self.service;
        let streams = |shape: Option<&'static Shape>| -> Option<&'static str> {
            shape.and_then(|s| {
                s.members
                    .iter()
                    .find(|(_, r)| r.streaming || service.shape(&r.shape).is_some_and(|m| m.streaming || m.eventstream))
                    .map(|(m, _)| m.as_str())
            })
        };
        if let Some(m) = streams(self.input()) {
            return Some(format!(
                "{} streams its request body (`{m}`): a runbook step cannot send it; use the AWS CLI (`{}`) in a script step's hand-over, or a built-in action",
                self.full_name(),
                self.cli()
            ));
        }
        if let Some(m) = streams(self.output()) {
            return Some(format!(
                "{} streams its answer (`{m}`): a runbook step cannot read it; use the AWS CLI (`{}`) by hand",
                self.full_name(),
                self.cli()
            ));
        }
        None
    }

    /// The request with the idempotency tokens the step left out filled in, as the SDKs fill
    /// them (ours derive from the request: the same request sent again is the same to AWS).
    pub fn with_tokens(&self, request: Value) -> Value {
        let Some(shape) = self.input() else {
            return request;
        };
        let missing: Vec<&String> = shape
            .members
            .iter()
            .filter(|(k, r)| r.idempotency_token && request.get(k.as_str()).is_none())
            .map(|(k, _)| k)
            .collect();
        if missing.is_empty() {
            return request;
        }
        let token = codec::idempotency_token(self.full_name(), &request);
        let mut request = request;
        if let Some(o) = request.as_object_mut() {
            for k in missing {
                o.insert(k.clone(), Value::String(token.clone()));
            }
        }
        request
    }

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

    /// The operation's page in the AWS API reference.
    pub fn api_reference(&self) -> Option<String> {
        self.service
            .metadata
            .uid
            .as_deref()
            .map(|uid| model::api_reference(uid, Some(self.name)))
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
            Some(shape) => validate::validate(self.service, shape, request, ""),
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

/// How a step asked for the call to be made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Journal an intent first and pass the guard (decided by the runner: the name, or `mutates=`).
    pub mutates: bool,
    /// `on-unknown=retry`: a mutating call whose outcome is unknown (5xx, timeout) is sent again.
    pub retry_unknown: bool,
    /// The caller already holds the claim on this call's target (it checks, once it holds it,
    /// that no other journal lost an answer to the same request): the call takes none itself.
    pub claimed: bool,
}

/// What a call's intent, claim and mark name as its target: the request as sent (tokens filled
/// in), and where it acts when that is not the caller's own account and region.
pub fn target(call: Call, ctx: &Context, request: &Value) -> String {
    let request = if request.is_null() {
        Value::Object(Default::default())
    } else {
        request.clone()
    };
    sent_target(call, ctx, &call.with_tokens(customize(call, request)))
}

/// The target of a request as it will be sent: its sensitive members masked where they are, so
/// no intent, claim, mark or line names a secret however short.
fn sent_target(call: Call, ctx: &Context, request: &Value) -> String {
    let request = call.masked_request(request);
    match ctx.place() {
        Some(p) => format!("{} in {}", target_of(&request), p.describe()),
        None => target_of(&request),
    }
}

/// What the SDKs change in a request before it is sent, so a value read from one answer can be
/// written into the next request as is: route53 answers `/hostedzone/Z1` and takes `Z1`
/// (botocore's `fix_route53_ids`).
fn customize(call: Call, mut request: Value) -> Value {
    if call.service.name != "route53" {
        return request;
    }
    let Some(input) = call.input() else {
        return request;
    };
    if let Some(o) = request.as_object_mut() {
        for (name, r) in &input.members {
            if !matches!(r.shape.as_str(), "ResourceId" | "DelegationSetId" | "ChangeId") {
                continue;
            }
            if let Some(Value::String(v)) = o.get_mut(name) {
                if let Some(last) = v.rsplit('/').next().map(String::from) {
                    *v = last;
                }
            }
        }
    }
    request
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

/// Makes the call. A mutating call journals its intent first and its answer after; a read is
/// read to its last page.
pub async fn invoke(ctx: &Context, call: Call, request: Value, opts: Options) -> Result<Value, PluginError> {
    let request = if request.is_null() {
        Value::Object(Default::default())
    } else {
        request
    };
    if let Some(why) = call.refusal() {
        return Err(PluginError::Other(why));
    }
    let request = call.with_tokens(customize(call, request));
    call.validate(&request)
        .map_err(|message| PluginError::Other(format!("{}: {message}", call.full_name())))?;
    if !opts.mutates {
        return pages::read_all(ctx, call, request, opts).await;
    }
    let name = call.full_name();
    let target = sent_target(call, ctx, &request);
    // AWS makes a second one of most things a call by name makes (it has no client token to
    // tell them apart): one item, run or process at a time, after any lost answer has landed.
    let _claim = if opts.claimed {
        None
    } else {
        Some(ctx.claim(name, &target, crate::Duplicates::Made).await?)
    };
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
        assert!(read_only("HeadBucket"));
        // Not by its name: by the model's marker.
        assert!(reads("identitystore:IsMemberInGroups") && !reads("identitystore:CreateUser"));
        assert!(resolve("s3:ListBuckets").is_ok() && resolve("account:GetAlternateContact").is_ok());
        assert_eq!(kebab("GetCallerIdentity"), "get-caller-identity");
        assert_eq!(kebab("ListAccountsForParent"), "list-accounts-for-parent");
        assert_eq!(kebab("GetSAMLProvider"), "get-saml-provider");
    }

    #[test]
    fn streams_and_foreign_protocols_are_refused_by_name() {
        let get = resolve("s3:GetObject").expect("resolves");
        assert!(
            get.refusal().is_some_and(|r| r.contains("streams its answer (`Body`)")),
            "{:?}",
            get.refusal()
        );
        let put = resolve("s3:PutObject").expect("resolves");
        assert!(put.refusal().is_some_and(|r| r.contains("streams its request body")));
        assert_eq!(resolve("s3:PutBucketTagging").expect("resolves").refusal(), None);
        let t = resolve("ec2:RunInstances").expect("resolves");
        let filled = t.with_tokens(json!({"MaxCount": 1, "MinCount": 1}));
        assert_eq!(
            filled["ClientToken"],
            t.with_tokens(json!({"MaxCount": 1, "MinCount": 1}))["ClientToken"]
        );
        assert_eq!(t.with_tokens(json!({"ClientToken": "mine"}))["ClientToken"], "mine");
        let r = resolve("route53:ChangeResourceRecordSets").expect("resolves");
        assert_eq!(
            customize(r, json!({"HostedZoneId": "/hostedzone/Z1", "ChangeBatch": {}}))["HostedZoneId"],
            "Z1"
        );
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
