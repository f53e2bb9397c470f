//! One generic call on the wire: the request in the service's protocol, its endpoint, the SigV4
//! signature, attempts with backoff under the attempt timeout, throttles counted where the
//! built-in clients count them, and the answer read back through the output shape.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;

use super::endpoint::{self, Target};
use super::rest::Outgoing;
use super::{Call, Options, codec, json, query, rest, xml};
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

/// The request in the service's protocol, before it has a host.
fn outgoing(call: Call, request: &Value) -> Result<Outgoing, PluginError> {
    let meta = &call.service.metadata;
    let mut out = match meta.protocol.as_str() {
        "query" | "ec2" => Outgoing {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body: query::encode(call.service, call.name, call.input(), request).into_bytes(),
        },
        "json" => {
            let body = match call.input() {
                Some(shape) => json::to_wire(call.service, shape, request, 0),
                None => Value::Object(Default::default()),
            };
            let mut headers = vec![(
                "content-type".to_string(),
                format!(
                    "application/x-amz-json-{}",
                    meta.json_version.as_deref().unwrap_or("1.1")
                ),
            )];
            if let Some(p) = &meta.target_prefix {
                headers.push(("x-amz-target".into(), format!("{p}.{}", call.name)));
            }
            Outgoing {
                method: "POST".into(),
                path: "/".into(),
                query: String::new(),
                headers,
                body: body.to_string().into_bytes(),
            }
        }
        "rest-json" | "rest-xml" => {
            rest::encode(call, request).map_err(|e| PluginError::Other(format!("{}: {e}", call.full_name())))?
        }
        other => {
            return Err(PluginError::Other(format!(
                "{}: the {other} protocol is not supported",
                call.full_name()
            )));
        }
    };
    let has_md5 = out.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-md5"));
    if call.operation.checksum_required && !has_md5 {
        use md5::Digest;
        let sum = md5::Md5::digest(&out.body);
        out.headers.push(("content-md5".into(), codec::base64(&sum)));
    }
    Ok(out)
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
    let target = endpoint::target(ctx, call).await.map_err(Failure::Refused)?;
    let mut out = outgoing(call, request).map_err(Failure::Refused)?;
    let url = endpoint::url(&target, call, &mut out, request).map_err(Failure::Refused)?;
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Failure::Refused(PluginError::Config(format!("endpoint `{url}`: {e}"))))?;
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
        let req = signed(&target, &uri, &out, credentials).map_err(Failure::Refused)?;
        // The family's request budget paces calls by name as it paces the built-in clients.
        let bucket = ctx.budget().bucket(call.service.name);
        if let Some(b) = &bucket {
            b.take().await;
        }
        let outcome = match tokio::time::timeout(attempt_timeout, once(ctx, call, req, opts.mutates)).await {
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
    target: &Target,
    uri: &http::Uri,
    out: &Outgoing,
    credentials: aws_credential_types::Credentials,
) -> Result<http::Request<Full<Bytes>>, PluginError> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| PluginError::Config(format!("endpoint `{uri}` has no host")))?;
    let mut builder = http::Request::builder()
        .method(out.method.as_str())
        .uri(uri.clone())
        .header("host", &host);
    for (k, v) in &out.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let mut req = builder
        .body(Full::new(Bytes::from(out.body.clone())))
        .map_err(|e| PluginError::Other(format!("request: {e}")))?;
    let mut settings = SigningSettings::default();
    if target.signing_name == "s3" {
        // s3 signs its paths as sent and wants the payload's hash in a header.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name(&target.signing_name)
        .time(SystemTime::now())
        .settings(settings)
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
        out.method.as_str(),
        &uri_text,
        headers.into_iter(),
        SignableBody::Bytes(&out.body),
    )
    .map_err(|e| PluginError::Config(format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| PluginError::Config(format!("signing: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut req);
    Ok(req)
}

async fn once(ctx: &Context, call: Call, req: http::Request<Full<Bytes>>, mutates: bool) -> Attempt {
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
    let headers = resp.headers().clone();
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
    // Masked before it is clipped: a secret cut in two is no text a mask finds.
    let text = ctx.redact(&String::from_utf8_lossy(&bytes));
    // AWS never answers an API call with a web page: a 2xx HTML page is a captive portal or a
    // proxy's, not AWS's answer, and believing it would record a change AWS may never have seen
    // (attacker finding, round 5).
    // Told by the body, not its content type: moto labels its JSON answers text/html.
    let html = {
        let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
            .trim_start()
            .to_ascii_lowercase();
        start.starts_with("<!doctype html") || start.starts_with("<html")
    };
    if (200..300).contains(&status) && html {
        return Attempt::Unknown(aws_error(
            call,
            "ResponseError",
            format!(
                "HTTP {status} with a web page, not an AWS answer: {}",
                crate::error::body_start(&bytes)
            ),
            header_id,
        ));
    }
    // An empty answer to a change in a JSON protocol, whose answers are objects: nothing says AWS
    // did it (attacker finding: an empty 200 or 204 was recorded as a case opened).
    let json_protocol = matches!(
        call.service.metadata.protocol.as_str(),
        "json" | "awsJson1_0" | "awsJson1_1"
    );
    if (200..300).contains(&status)
        && mutates
        && json_protocol
        && call.output().is_some()
        && bytes.iter().all(u8::is_ascii_whitespace)
    {
        return Attempt::Unknown(aws_error(
            call,
            "ResponseError",
            format!("HTTP {status} with an empty body, not an AWS answer"),
            header_id,
        ));
    }
    if (200..300).contains(&status) {
        return match parse_answer(call, status, &headers, &bytes) {
            Ok((body, id)) => Attempt::Answered(Answer {
                body,
                request_id: header_id.or(id),
            }),
            // AWS acted; the answer could not be read.
            Err(e) => Attempt::Unknown(aws_error(call, "ResponseError", e, header_id)),
        };
    }
    let (code, message, id, aws_code) = parse_error(call, &text, error_type.as_deref(), status);
    let mut error = aws_error(call, code.clone(), message, header_id.or(id));
    if let PluginError::Aws { status: answered, .. } = &mut error {
        *answered = Some(status);
    }
    if status == 429 || is_throttling_code(&code) {
        ctx.pressure().on_throttle();
        return Attempt::NotDone { error, retry: true };
    }
    // An error without AWS's code (a proxy's 403 page, an empty 400) is not AWS refusing: a
    // change that met one may have been done behind it (attacker finding: `retries=` sent a
    // second CreateCase after a proxy's HTML 403).
    if mutates && !aws_code {
        return Attempt::Unknown(error);
    }
    if !nothing_done(status, &code) {
        return Attempt::Unknown(error);
    }
    Attempt::NotDone { error, retry: false }
}

fn parse_answer(
    call: Call,
    status: u16,
    headers: &http::HeaderMap,
    bytes: &[u8],
) -> Result<(Value, Option<String>), String> {
    let service = call.service;
    match service.metadata.protocol.as_str() {
        "query" | "ec2" => {
            let root = xml::parse(&String::from_utf8_lossy(bytes))?;
            let body = query::decode(service, call.operation.result_wrapper.as_deref(), call.output(), &root);
            Ok((body, xml::request_id(&root)))
        }
        "rest-json" | "rest-xml" => Ok((rest::decode(call, status, headers, bytes)?, None)),
        _ => {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok((Value::Object(Default::default()), None));
            }
            let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("the answer is not JSON: {e}"))?;
            let v = match call.output() {
                Some(shape) => json::from_wire(service, shape, &v, 0),
                None => v,
            };
            Ok((v, None))
        }
    }
}

/// (code, message, request id) of an error answer in either protocol.
/// (code, message, request id, whether the code is AWS's own rather than made from the status).
fn parse_error(
    call: Call,
    text: &str,
    header_type: Option<&str>,
    status: u16,
) -> (String, String, Option<String>, bool) {
    let clean = |c: &str| {
        let c = c.rsplit('#').next().unwrap_or(c);
        c.split(':').next().unwrap_or(c).trim().to_string()
    };
    let xml_errors = matches!(call.service.metadata.protocol.as_str(), "query" | "ec2" | "rest-xml");
    if xml_errors && !text.trim().is_empty() {
        if let Ok(root) = xml::parse(text) {
            let code = root.find("Code").map(|n| n.text.trim().to_string());
            let message = root
                .find("Message")
                .map(|n| n.text.trim().to_string())
                .unwrap_or_default();
            if let Some(code) = code {
                return (code, message, xml::request_id(&root), true);
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
            return (code, message, None, true);
        }
    }
    // An error in the other protocol's shape (moto words IAM's AccessDenied in XML for every
    // service): its code is AWS's all the same, and says AWS did nothing.
    if !xml_errors && !text.trim().is_empty() {
        if let Ok(root) = xml::parse(text) {
            if let Some(code) = root.find("Code").map(|n| n.text.trim().to_string()) {
                let message = root
                    .find("Message")
                    .map(|n| n.text.trim().to_string())
                    .unwrap_or_default();
                return (code, message, xml::request_id(&root), true);
            }
        }
    }
    // A HEAD answer has no body: its status is all there is (s3's `NotFound`).
    let from_status = || {
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map(|r| r.replace(' ', ""))
            .unwrap_or_else(|| format!("HttpStatus{status}"))
    };
    let aws_code = header_type.is_some();
    let code = header_type.map(clean).unwrap_or_else(from_status);
    // Not an error AWS's protocol describes (a proxy's page, a body without a code): the status
    // and the start of the body, on one line, sanitized and clipped, as for the SDK's calls.
    let said = if text.trim().is_empty() {
        String::new()
    } else {
        format!(
            "HTTP {status}, an answer with no AWS error code: {}",
            crate::error::body_start(text.as_bytes())
        )
    };
    (code, said, None, aws_code)
}
