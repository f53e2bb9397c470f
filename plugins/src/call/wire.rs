//! One generic call on the wire: endpoint, SigV4 signature, attempts with backoff under the
//! attempt timeout, throttles counted where the built-in clients count them.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;

use super::{Call, Options, query};
use crate::context::Context;
use crate::error::{PluginError, is_throttling_code, nothing_done};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub(super) struct Answer {
    pub body: Value,
    pub request_id: Option<String>,
}

pub(super) enum Failure {
    /// AWS refused the call, or it never left: nothing was done.
    Refused(PluginError),
    /// The request left and no answer says what became of it.
    Unknown(PluginError),
}

/// One attempt's result, before deciding whether to try again.
enum Attempt {
    Answered(Answer),
    /// Not done (throttled, refused, never sent); `retry` says whether another try may help.
    NotDone {
        error: PluginError,
        retry: bool,
    },
    /// May or may not have been done.
    Unknown(PluginError),
}

fn client() -> Result<&'static Client<Https, Full<Bytes>>, PluginError> {
    static CLIENT: OnceLock<Result<Client<Https, Full<Bytes>>, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let tls = crate::net::tls_config()?;
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(Duration::from_secs(10)));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*tls).clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
        })
        .as_ref()
        .map_err(|e| PluginError::Config(format!("TLS: {e}")))
}

/// organizations, iam and support answer in us-east-1 (as the built-in clients are pinned).
async fn region_for(ctx: &Context, call: Call) -> Result<String, PluginError> {
    match call.service.name {
        "organizations" | "iam" | "support" => Ok("us-east-1".into()),
        _ => ctx.region().await,
    }
}

fn default_endpoint(call: Call, region: &str) -> String {
    match call.service.metadata.global_endpoint.as_deref() {
        Some(host) if call.service.name == "iam" => format!("https://{host}"),
        _ => format!(
            "https://{}.{region}.amazonaws.com",
            call.service.metadata.endpoint_prefix
        ),
    }
}

fn aws_error(
    call: Call,
    code: impl Into<String>,
    message: impl Into<String>,
    request_id: Option<String>,
) -> PluginError {
    PluginError::Aws {
        call: call.full_name(),
        code: code.into(),
        message: message.into(),
        request_id,
        status: None,
    }
}

pub(super) async fn send(ctx: &Context, call: Call, request: &Value, opts: Options) -> Result<Answer, Failure> {
    let sdk = ctx.sdk().await.map_err(Failure::Refused)?;
    let region = region_for(ctx, call).await.map_err(Failure::Refused)?;
    let endpoint = sdk
        .endpoint_url()
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| default_endpoint(call, &region));
    let uri: http::Uri = format!("{endpoint}/")
        .parse()
        .map_err(|e| Failure::Refused(PluginError::Config(format!("endpoint `{endpoint}`: {e}"))))?;
    let (content_type, target, body) = if call.service.is_query() {
        (
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            None,
            query::encode(call.service, call.name, call.input(), request),
        )
    } else {
        (
            format!(
                "application/x-amz-json-{}",
                call.service.metadata.json_version.as_deref().unwrap_or("1.1")
            ),
            call.service
                .metadata
                .target_prefix
                .as_ref()
                .map(|p| format!("{p}.{}", call.name)),
            request.to_string(),
        )
    };
    let creds = sdk
        .credentials_provider()
        .ok_or_else(|| Failure::Refused(crate::error::no_credentials()))?;
    let o = ctx.aws_options();
    let attempts = o.max_attempts.unwrap_or(5).max(1);
    let attempt_timeout = o.attempt_timeout.unwrap_or(Duration::from_secs(60));
    let mut last = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let credentials = creds
            .provide_credentials()
            .await
            .map_err(|e| Failure::Refused(crate::error::credentials(&e, o.profile.as_deref())))?;
        let req = signed(
            call,
            &uri,
            &region,
            &content_type,
            target.as_deref(),
            &body,
            credentials,
        )
        .map_err(Failure::Refused)?;
        // The family's request budget paces calls by name as it paces the built-in clients.
        let bucket = ctx.budget().bucket(call.service.name);
        if let Some(b) = &bucket {
            b.take().await;
        }
        let outcome = match tokio::time::timeout(attempt_timeout, once(ctx, call, req)).await {
            Ok(a) => a,
            Err(_) => Attempt::Unknown(aws_error(
                call,
                "TimeoutError",
                format!("no answer within {}s", attempt_timeout.as_secs()),
                None,
            )),
        };
        if let Some(b) = &bucket {
            match &outcome {
                Attempt::NotDone { error, .. } if error.is_throttling() => b.throttled(),
                Attempt::Answered(_) | Attempt::NotDone { .. } => b.answered(),
                Attempt::Unknown(_) => {}
            }
        }
        match outcome {
            Attempt::Answered(a) => return Ok(a),
            Attempt::NotDone { error, retry } => {
                if !retry {
                    return Err(Failure::Refused(error));
                }
                last = Some(Failure::Refused(error));
            }
            Attempt::Unknown(error) => {
                // A read may be asked again; a change only when the author said so.
                if opts.mutates && !opts.retry_unknown {
                    return Err(Failure::Unknown(error));
                }
                last = Some(Failure::Unknown(error));
            }
        }
    }
    Err(last.unwrap_or_else(|| Failure::Refused(PluginError::Other("no attempt was made".into()))))
}

fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(8)).min(20_000);
    // Full jitter, from the clock: enough to keep concurrent retries apart.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

fn signed(
    call: Call,
    uri: &http::Uri,
    region: &str,
    content_type: &str,
    target: Option<&str>,
    body: &str,
    credentials: aws_credential_types::Credentials,
) -> Result<http::Request<Full<Bytes>>, PluginError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| PluginError::Config(format!("endpoint `{uri}` has no host")))?;
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(uri.clone())
        .header("host", &host)
        .header("content-type", content_type);
    if let Some(t) = target {
        builder = builder.header("x-amz-target", t);
    }
    let mut req = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| PluginError::Other(format!("request: {e}")))?;
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(call.service.signing_name())
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| PluginError::Config(format!("signing: {e}")))?
        .into();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let uri_text = uri.to_string();
    let signable = SignableRequest::new(
        "POST",
        &uri_text,
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| PluginError::Config(format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| PluginError::Config(format!("signing: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut req);
    Ok(req)
}

async fn once(ctx: &Context, call: Call, req: http::Request<Full<Bytes>>) -> Attempt {
    let client = match client() {
        Ok(c) => c,
        Err(e) => return Attempt::NotDone { error: e, retry: false },
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            return Attempt::NotDone {
                error: aws_error(call, "DispatchFailure", format!("cannot connect: {e}"), None),
                retry: true,
            };
        }
        Err(e) => return Attempt::Unknown(aws_error(call, "DispatchFailure", e.to_string(), None)),
    };
    let status = resp.status().as_u16();
    let header_id = ["x-amzn-requestid", "x-amz-request-id"]
        .iter()
        .find_map(|h| resp.headers().get(*h).and_then(|v| v.to_str().ok()).map(String::from));
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let bytes = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Attempt::Unknown(aws_error(call, "ResponseError", e.to_string(), header_id)),
    };
    let text = String::from_utf8_lossy(&bytes);
    if (200..300).contains(&status) {
        return match parse_answer(call, &text) {
            Ok((body, id)) => Attempt::Answered(Answer {
                body,
                request_id: header_id.or(id),
            }),
            // AWS acted; the answer could not be read.
            Err(e) => Attempt::Unknown(aws_error(call, "ResponseError", e, header_id)),
        };
    }
    let (code, message, id) = parse_error(call, &text, error_type.as_deref(), status);
    let mut error = aws_error(call, code.clone(), message, header_id.or(id));
    if let PluginError::Aws { status: answered, .. } = &mut error {
        *answered = Some(status);
    }
    if status == 429 || is_throttling_code(&code) {
        ctx.pressure().on_throttle();
        return Attempt::NotDone { error, retry: true };
    }
    if !nothing_done(status, &code) {
        return Attempt::Unknown(error);
    }
    Attempt::NotDone { error, retry: false }
}

fn parse_answer(call: Call, text: &str) -> Result<(Value, Option<String>), String> {
    if call.service.is_query() {
        let root = query::parse(text)?;
        let body = query::decode(
            call.service,
            call.operation.result_wrapper.as_deref(),
            call.output(),
            &root,
        );
        return Ok((body, query::request_id(&root)));
    }
    if text.trim().is_empty() {
        return Ok((Value::Object(Default::default()), None));
    }
    serde_json::from_str(text)
        .map(|v| (v, None))
        .map_err(|e| format!("the answer is not JSON: {e}"))
}

/// (code, message, request id) of an error answer in either protocol.
fn parse_error(call: Call, text: &str, header_type: Option<&str>, status: u16) -> (String, String, Option<String>) {
    let clean = |c: &str| {
        let c = c.rsplit('#').next().unwrap_or(c);
        c.split(':').next().unwrap_or(c).trim().to_string()
    };
    if call.service.is_query() {
        if let Ok(root) = query::parse(text) {
            let code = root.find("Code").map(|n| n.text.trim().to_string());
            let message = root
                .find("Message")
                .map(|n| n.text.trim().to_string())
                .unwrap_or_default();
            if let Some(code) = code {
                return (code, message, query::request_id(&root));
            }
        }
    } else if let Ok(v) = serde_json::from_str::<Value>(text) {
        let code = ["__type", "code", "Code"]
            .iter()
            .find_map(|k| v.get(k).and_then(Value::as_str))
            .map(clean)
            .or_else(|| header_type.map(clean));
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| v.get(k).and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        if let Some(code) = code {
            return (code, message, None);
        }
    }
    let code = header_type.map(clean).unwrap_or_else(|| format!("HttpStatus{status}"));
    let first = text.lines().next().unwrap_or("").chars().take(200).collect();
    (code, first, None)
}
