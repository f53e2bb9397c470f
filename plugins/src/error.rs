//! What can go wrong in a plugin action, said so that the operator knows what to do next.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
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
            PluginError::Aws { code, .. } => aws_hint(code).map(String::from),
            PluginError::Timeout { .. } => {
                Some("AWS is still working on it; run the step again later and it will pick up the same request".into())
            }
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            PluginError::Aws { code, .. } => Some(code),
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
    /// that is not a server fault. A 5xx, a timeout, a reset or an unreadable answer is not a
    /// refusal: the call may have been done.
    pub fn is_refusal(&self) -> bool {
        matches!(self, PluginError::Aws { code, status: Some(status), .. } if nothing_done(*status, code))
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
pub(crate) fn nothing_done(status: u16, code: &str) -> bool {
    status < 500 || is_throttling_code(code)
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
    let code = code.rsplit('#').next().unwrap_or(code);
    let code = code.split(':').next().unwrap_or(code).trim();
    THROTTLING_CODES.contains(&code)
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

/// Builds a [`PluginError::Aws`] from an SDK error, keeping the code, message and request id.
pub fn aws<E>(call: &'static str, err: SdkError<E, HttpResponse>) -> PluginError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    SdkError<E, HttpResponse>: ProvideErrorMetadata + RequestId,
{
    let request_id = err.request_id().map(String::from);
    let status = match &err {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        _ => None,
    };
    let (code, message) = match &err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            let code = e
                .code()
                .map(String::from)
                .unwrap_or_else(|| format!("HttpStatus{}", s.raw().status().as_u16()));
            let message = e
                .message()
                .map(String::from)
                .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
            (code, message)
        }
        SdkError::DispatchFailure(_) => ("DispatchFailure".to_string(), DisplayErrorContext(&err).to_string()),
        SdkError::TimeoutError(_) => ("TimeoutError".to_string(), "the request timed out".to_string()),
        SdkError::ResponseError(_) => ("ResponseError".to_string(), DisplayErrorContext(&err).to_string()),
        _ => ("Unknown".to_string(), DisplayErrorContext(&err).to_string()),
    };
    PluginError::Aws {
        call,
        code,
        message: message.lines().next().unwrap_or("").to_string(),
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
