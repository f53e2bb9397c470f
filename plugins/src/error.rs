//! What can go wrong in a plugin action, said so that the operator knows what to do next.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{action}: invalid parameters: {message}")]
    Params { action: &'static str, message: String },

    /// An AWS call answered with an error (or never answered).
    #[error("{call} failed: {code}: {message}{}", request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Aws {
        call: &'static str,
        code: String,
        message: String,
        request_id: Option<String>,
        /// The HTTP status of AWS's error answer; `None` when no answer came (never sent, timed
        /// out, reset, unreadable).
        status: Option<u16>,
    },

    /// A read-only check found the account not as the runbook needs it.
    #[error("{message}")]
    Check { message: String, hint: Option<String> },

    /// An asynchronous operation ended in FAILED.
    #[error("{what} failed: {reason}{}", request_id.as_ref().map(|r| format!(" (request {r})")).unwrap_or_default())]
    Failed {
        what: String,
        reason: String,
        request_id: Option<String>,
        hint: Option<String>,
    },

    /// An asynchronous operation was still running at the step's deadline.
    #[error("timed out after {waited_secs}s waiting for {what} (last status {status}{}); run the step again to resume polling", request_id.as_ref().map(|r| format!(", request {r}")).unwrap_or_default())]
    Timeout {
        what: String,
        status: String,
        waited_secs: u64,
        request_id: Option<String>,
    },

    #[error("AWS configuration: {0}")]
    Config(String),

    /// No usable AWS credentials: none found, a source that failed, or a session that expired.
    /// Nothing was sent.
    #[error("{message}")]
    Credentials {
        problem: CredentialsProblem,
        message: String,
        /// The profile the run uses, when it names one.
        profile: Option<String>,
    },

    /// The journal could not record what the action was about to do; nothing was sent.
    #[error("journal: {0}")]
    Journal(String),

    #[error("{0}")]
    Other(String),
}

impl PluginError {
    /// What the operator can do about it, when we know.
    pub fn hint(&self) -> Option<String> {
        match self {
            PluginError::Check { hint, .. } | PluginError::Failed { hint, .. } => hint.clone(),
            PluginError::Aws { call, code, status, .. } => {
                denied_hint(call, code, *status).or_else(|| aws_hint(code).map(String::from))
            }
            PluginError::Credentials { problem, profile, .. } => Some(problem.ways(profile.as_deref())),
            PluginError::Timeout { .. } => {
                Some("AWS is still working on it; run the step again later and it will pick up the same request".into())
            }
            _ => None,
        }
    }

    /// The error, with the IAM action it lacked when AWS refused it for want of permission: for
    /// one item of a fan-out, whose error becomes a line of the step's (and loses its hint).
    pub fn with_permission(&self) -> String {
        match self {
            PluginError::Aws { call, code, status, .. } => match denied_hint(call, code, *status) {
                Some(h) => format!("{self} ({h})"),
                None => self.to_string(),
            },
            _ => self.to_string(),
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            PluginError::Aws { code, .. } => Some(code),
            PluginError::Credentials { .. } => Some("NoCredentials"),
            _ => None,
        }
    }

    /// Throttling or a server-side fault: worth another try.
    pub fn is_transient(&self) -> bool {
        match self {
            PluginError::Aws { code, .. } => is_transient_code(code),
            _ => false,
        }
    }

    pub fn is_throttling(&self) -> bool {
        matches!(self, PluginError::Aws { code, .. } if is_throttling_code(code))
    }

    /// AWS answered the call with a refusal, so it did nothing: a throttle, or an error answer
    /// that is not a server fault; or the call never left (no credentials to sign it with). A
    /// 5xx, a timeout, a reset or an unreadable answer is not a refusal: the call may have been
    /// done.
    pub fn is_refusal(&self) -> bool {
        matches!(self, PluginError::Aws { code, status: Some(status), .. } if nothing_done(*status, code))
            || matches!(self, PluginError::Credentials { .. })
    }
}

/// The SDK's paginators end the stream when AWS repeats a page token, and the list is then
/// short: a stream that ended on a page still carrying a token is an error, never a whole list
/// (a short list of accounts or cases is how a second one gets made).
pub(crate) fn whole_list(call: &'static str, last_token: Option<&str>) -> Result<(), PluginError> {
    match last_token.filter(|t| !t.is_empty()) {
        None => Ok(()),
        Some(_) => Err(PluginError::Failed {
            what: format!("reading {call}"),
            reason: "AWS repeated a page token: the list would be short".into(),
            request_id: None,
            hint: Some("run the step again, and report it if it persists".into()),
        }),
    }
}

/// Whether an error answer (its HTTP status and code) means AWS did nothing: a client error
/// (4xx: refused, throttled, a concurrent modification) or a throttle sent as a 5xx (`SlowDown`).
/// A server fault may come after AWS acted. The one rule for the built-in actions and calls by
/// API name.
/// A 4xx whose code says the server failed or timed out (`InternalError` is sent as a 400 by
/// some services; the SDKs retry `RequestTimeout` as transient) is a fault too, as is a 408.
pub(crate) fn nothing_done(status: u16, code: &str) -> bool {
    (status < 500 && status != 408 && !is_server_fault_code(code)) || is_throttling_code(code)
}

/// Codes that say the server failed or timed out, whatever the status they came with.
const SERVER_FAULT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "InternalServiceError",
    "InternalServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServiceFailure",
    "ServiceException",
    "RequestTimeout",
    "RequestTimeoutException",
];

fn is_server_fault_code(code: &str) -> bool {
    SERVER_FAULT_CODES.contains(&bare(code))
}

/// An error code without its namespace (`namespace#Code`) or detail (`Code:detail`).
fn bare(code: &str) -> &str {
    let code = code.rsplit('#').next().unwrap_or(code);
    code.split(':').next().unwrap_or(code).trim()
}

/// Error codes AWS services use for throttling (the SDKs' list, plus `TooManyRequests`).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "TooManyRequests",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Whether an error code (also as `namespace#Code` or `Code:detail`) means "slow down".
pub fn is_throttling_code(code: &str) -> bool {
    THROTTLING_CODES.contains(&bare(code))
}

pub fn is_transient_code(code: &str) -> bool {
    is_throttling_code(code)
        || matches!(
            code,
            "InternalServerException"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "HttpStatus500"
                | "HttpStatus502"
                | "HttpStatus503"
                | "HttpStatus504"
                | "DispatchFailure"
                | "TimeoutError"
                | "ConcurrentModificationException"
        )
}

/// A refusal for want of permission names the IAM action(s) the call needs, as
/// `runbook permissions` computes them (an answer the SDK could not read counts when it is a 403).
fn denied_hint(call: &str, code: &str, status: Option<u16>) -> Option<String> {
    // A 403 is a refusal for want of permission unless its code says the credentials themselves
    // are wrong (expired, unknown, a bad signature): an answer's code may be unreadable
    // (`HttpStatus403`, `Forbidden`) when a service or an emulator answers in another format.
    let credentials = matches!(
        code,
        "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "InvalidSignatureException"
            | "MissingAuthenticationToken"
    );
    let denied = matches!(code, "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation")
        || (status == Some(403) && !credentials);
    if !denied {
        return None;
    }
    let actions = crate::permissions::iam_actions(call).ok().filter(|a| !a.is_empty())?;
    Some(format!(
        "the caller lacks IAM permission {}: add it to the caller's policy (`runbook permissions FILE` prints the policy a run of FILE needs)",
        actions.join(" and ")
    ))
}

fn aws_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDeniedException" | "AccessDenied" => {
            "the caller lacks permission for this call; run as the management account with administrator access"
        }
        "AWSOrganizationsNotInUseException" => {
            "this account is not in an organization; run the organization step first"
        }
        "SubscriptionRequiredException" => {
            "the account's support plan has no Support API (Basic plan); use the console link"
        }
        "ExpiredToken" | "ExpiredTokenException" | "InvalidClientTokenId" | "UnrecognizedClientException" => {
            "the credentials are expired or invalid; sign in again (e.g. `aws sso login`)"
        }
        "DispatchFailure" => "the request never reached AWS; check the network and the endpoint URL",
        c if is_throttling_code(c) => "AWS is throttling requests; wait a minute and run again",
        _ => return None,
    })
}

/// Why there are no usable credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsProblem {
    /// No source in the chain had any.
    Missing,
    /// An IAM Identity Center (SSO) session expired.
    Expired,
    /// A source failed (an instance metadata endpoint that refuses, a broken profile).
    Failed,
}

impl CredentialsProblem {
    /// The ways to credentials, for the operator who has none that work.
    pub fn ways(self, profile: Option<&str>) -> String {
        match self {
            CredentialsProblem::Expired => format!(
                "sign in again with `aws sso login --profile {}`, then run again; or run from AWS CloudShell, signed in to the console",
                profile.unwrap_or("NAME")
            ),
            _ => "get credentials one of these ways: in a new account, AWS CloudShell, opened in the console signed in as the root user (no keys needed); for an IAM Identity Center user, `aws configure sso` once, then `--profile NAME`; or another profile of ~/.aws/config with `--profile NAME`".into(),
        }
    }
}

/// No credentials provider at all (the SDK found no source to even try).
pub fn no_credentials() -> PluginError {
    credentials(
        &aws_credential_types::provider::error::CredentialsError::not_loaded_no_source(),
        None,
    )
}

/// A credentials failure as one line that says what happened, from the SDK's error. `profile`
/// is the profile the run uses, when it names one.
pub fn credentials(e: &aws_credential_types::provider::error::CredentialsError, profile: Option<&str>) -> PluginError {
    use aws_credential_types::provider::error::CredentialsError as C;
    let chain = one_line(e);
    let (problem, message) = match e {
        C::CredentialsNotLoaded(_) => (
            CredentialsProblem::Missing,
            "no AWS credentials found (none in the environment, ~/.aws/config and ~/.aws/credentials, an SSO session, a container such as CloudShell, or instance metadata)".to_string(),
        ),
        _ if chain.contains("SSO token has expired") || (chain.contains("SSO") && chain.contains("expired")) => (
            CredentialsProblem::Expired,
            format!(
                "the IAM Identity Center (SSO) session{} has expired and cannot be refreshed",
                profile.map(|p| format!(" of profile `{p}`")).unwrap_or_default()
            ),
        ),
        _ => (
            CredentialsProblem::Failed,
            format!("the AWS credentials could not be loaded: {chain}"),
        ),
    };
    PluginError::Credentials {
        problem,
        message,
        profile: profile.map(String::from),
    }
}

/// An error and its sources as one line, each message once, never the types' debug dumps (the
/// SDK's `DisplayErrorContext` appends one).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    // Wrappers that only say "an error occurred" add nothing to what their source says.
    const FILLER: [&str; 4] = [
        "an error occurred while loading credentials",
        "an error occurred while loading an access token",
        "dispatch failure",
        "other",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = text.trim_end_matches('.').to_string();
        if !text.is_empty() && !FILLER.contains(&text.as_str()) && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// The first characters of an answer's body, on one line, for an answer the SDK could not read.
pub(crate) fn body_start(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(160) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None if text.is_empty() => "(empty body)".into(),
        None => text,
    }
}

/// The credentials failure inside an SDK error, if that is what stopped the call (it happens
/// before the request is signed, so it reaches us as a dispatch failure).
fn credentials_inside<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a aws_credential_types::provider::error::CredentialsError> {
    let mut next: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(c) = err.downcast_ref::<aws_credential_types::provider::error::CredentialsError>() {
            return Some(c);
        }
        next = err.source();
    }
    None
}

/// Builds a [`PluginError::Aws`] from an SDK error, keeping the code, message and request id; an
/// answer the SDK could not read is named by its HTTP status and the start of its body, and a
/// call that never left for want of credentials is a [`PluginError::Credentials`]. Never the
/// SDK's debug dump.
pub fn aws<E>(call: &'static str, err: SdkError<E, HttpResponse>) -> PluginError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    SdkError<E, HttpResponse>: ProvideErrorMetadata + RequestId,
{
    if let Some(c) = credentials_inside(&err) {
        return credentials(c, None);
    }
    let request_id = err.request_id().map(String::from);
    let status = match &err {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        _ => None,
    };
    let (code, message) = match &err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            let http = s.raw().status().as_u16();
            match (e.code(), e.message()) {
                (Some(code), Some(m)) => (code.to_string(), m.to_string()),
                (Some(code), None) => (code.to_string(), format!("HTTP {http}")),
                // Not an error AWS's protocol describes (an HTML page, a proxy's answer).
                (None, _) => (
                    format!("HttpStatus{http}"),
                    format!(
                        "HTTP {http}, an answer the SDK could not read: {}",
                        body_start(s.raw().body().bytes().unwrap_or_default())
                    ),
                ),
            }
        }
        SdkError::DispatchFailure(d) => (
            "DispatchFailure".to_string(),
            match d.as_connector_error() {
                Some(c) => format!("the request did not reach AWS: {}", one_line(c)),
                None => "the request did not reach AWS".to_string(),
            },
        ),
        SdkError::TimeoutError(_) => ("TimeoutError".to_string(), "the request timed out".to_string()),
        SdkError::ResponseError(r) => (
            "ResponseError".to_string(),
            format!(
                "HTTP {}, an answer the SDK could not read: {}",
                r.raw().status().as_u16(),
                body_start(r.raw().body().bytes().unwrap_or_default())
            ),
        ),
        _ => ("Unknown".to_string(), one_line(&err)),
    };
    PluginError::Aws {
        call,
        code,
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        request_id,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, code: &str) -> PluginError {
        PluginError::Aws {
            call: "x:Y",
            code: code.into(),
            message: String::new(),
            request_id: None,
            status: Some(status),
        }
    }

    /// The attacker's break: a CreateCase answered 400 `InternalError` (or 408) after AWS acted
    /// was a refusal, so `retries=` sent a second case.
    #[test]
    fn a_server_fault_or_timeout_below_500_is_not_a_refusal() {
        for (status, code) in [
            (400, "InternalError"),
            (400, "InternalFailure"),
            (400, "ServiceUnavailable"),
            (400, "RequestTimeoutException"),
            (408, "RequestTimeout"),
            (408, "HttpStatus408"),
        ] {
            assert!(!answered(status, code).is_refusal(), "{status} {code}");
        }
        assert!(answered(400, "ValidationException").is_refusal());
    }

    #[test]
    fn a_refusal_is_an_answer_below_500_or_a_throttle() {
        for (status, code) in [
            (400, "AccessDeniedException"),
            (400, "ThrottlingException"),
            (429, "TooManyRequestsException"),
            (409, "ConflictException"),
            (400, "ConcurrentModificationException"),
            (499, "HttpStatus499"),
            (503, "SlowDown"),
        ] {
            assert!(answered(status, code).is_refusal(), "{status} {code}");
        }
        for (status, code) in [
            (500, "InternalFailure"),
            (500, "HttpStatus500"),
            (502, "HttpStatus502"),
            (503, "ServiceUnavailable"),
        ] {
            assert!(!answered(status, code).is_refusal(), "{status} {code}");
        }
        // No answer at all (a timeout, a reset): the call may have been done.
        let unanswered = PluginError::Aws {
            call: "x:Y",
            code: "TimeoutError".into(),
            message: String::new(),
            request_id: None,
            status: None,
        };
        assert!(!unanswered.is_refusal());
    }
}
