//! The wire, on hyper (the HTTP stack the SDK already brings): a server that reads each request
//! whole into a [`Call`], asks a [`Handler`] what to [`Reply`], and writes it; and a client
//! ([`Upstream`]) to moto. The rehearsal's answering layer and the test suite's fault proxy both
//! stand on it: one HTTP implementation, and a handler knows nothing of HTTP framing.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

/// Bound on what the layer reads: AWS requests and moto answers of these runbooks are a few KiB.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Hop-by-hop headers and the length, which hyper sets for the body it sends.
const NOT_PASSED: [&str; 4] = ["connection", "transfer-encoding", "content-length", "keep-alive"];

/// One request from the SDK, read whole, with what the rules look at.
pub struct Call {
    pub method: hyper::Method,
    pub uri: hyper::Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The signing name from the `Authorization` header's scope (`sso`, `organizations`, `sts`).
    pub service: String,
    pub region: String,
    /// The operation: after the `.` of `X-Amz-Target` (JSON protocols) or `Action=` (query);
    /// empty for a REST call.
    pub op: String,
}

impl Call {
    fn read(parts: hyper::http::request::Parts, body: Bytes) -> Call {
        let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        // `Credential=KEY/DATE/REGION/SERVICE/aws4_request`
        let scope: Vec<&str> = header("authorization")
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split([',', ' ']).next())
            .map(|c| c.split('/').collect())
            .unwrap_or_default();
        let op = match header("x-amz-target").rsplit_once('.') {
            Some((_, op)) => op.to_string(),
            None => form_urlencoded::parse(&body)
                .find(|(k, _)| k == "Action")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default(),
        };
        Call {
            service: scope.get(3).copied().unwrap_or("").to_string(),
            region: scope.get(2).copied().unwrap_or("us-east-1").to_string(),
            op,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        }
    }

    /// A header's value (empty when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Whether the call is in a JSON protocol (it names its operation in `X-Amz-Target`).
    pub fn is_json(&self) -> bool {
        self.headers.contains_key("x-amz-target")
    }

    /// The JSON request body (`Null` for the query protocol or a body that is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A string member of the JSON request.
    pub fn member(&self, name: &str) -> String {
        self.json()[name].as_str().unwrap_or("").to_string()
    }
}

/// An answer, from moto or from the layer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Answer {
    /// An answer with this status, content type and body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
        .header("content-type", content_type)
    }

    /// The answer with one more header (one that is not a valid header value is left out).
    pub fn header(mut self, name: &'static str, value: &str) -> Answer {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A JSON-protocol answer of the layer's own.
    pub fn json_body(status: u16, body: &Value) -> Answer {
        Answer::new(status, "application/x-amz-json-1.1", body.to_string())
            .header("x-amzn-requestid", "rehearsal-answering-layer")
    }

    /// An error as AWS's JSON protocols send it: the code in `__type` and `x-amzn-ErrorType`.
    pub fn error(status: u16, code: &str, message: &str, extra: Value) -> Answer {
        let mut body = serde_json::json!({ "__type": code, "message": message, "Message": message });
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        Answer::json_body(status, &body).header("x-amzn-errortype", code)
    }

    /// The body replaced (a rewritten moto answer); the length is hyper's to set.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Answer {
        self.body = body.into();
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(self.body));
        *r.status_mut() = hyper::StatusCode::from_u16(self.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
        for (k, v) in self.headers {
            if !NOT_PASSED.contains(&k.as_str()) {
                r.headers_mut().append(k, v);
            }
        }
        r
    }
}

/// What the server does with a call: answer it, or close the connection without a word (a
/// connection reset, or the caller killed before its answer).
pub enum Reply {
    Answer(Answer),
    Close,
}

impl From<Answer> for Reply {
    fn from(a: Answer) -> Reply {
        Reply::Answer(a)
    }
}

/// What answers the calls: the rehearsal's account, or the test suite's fault proxy.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, call: Call) -> impl Future<Output = Reply> + Send;
}

/// The connection is closed without an answer: hyper drops a connection whose service fails.
#[derive(Debug, thiserror::Error)]
#[error("closed without an answer")]
struct Closed;

/// Serves every connection until the task is dropped.
pub async fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>) {
    while let Ok((stream, _)) = listener.accept().await {
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move {
                    match one(handler, req).await {
                        Reply::Answer(a) => Ok(a.into_response()),
                        Reply::Close => Err(Closed),
                    }
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn one<H: Handler>(handler: Arc<H>, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        // A task of its own: hyper drops a connection's work when its client goes away, and AWS
        // carries on with a request whose sender gave up (a held request still lands).
        Ok(b) => {
            let call = Call::read(parts, b.to_bytes());
            tokio::spawn(async move { handler.handle(call).await })
                .await
                .unwrap_or(Reply::Close)
        }
        Err(e) => Answer::error(
            400,
            "SerializationException",
            &format!("request body: {e}"),
            Value::Null,
        )
        .into(),
    }
}

/// moto, reached over loopback.
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("moto: {0}")]
    Send(#[from] hyper_util::client::legacy::Error),
    #[error("moto's answer: {0}")]
    Read(String),
    #[error("request to moto: {0}")]
    Build(#[from] hyper::http::Error),
}

impl Upstream {
    pub fn new(port: u16) -> Upstream {
        Upstream::at(&format!("http://127.0.0.1:{port}"))
    }

    /// moto at `base` (`http://127.0.0.1:PORT`).
    pub fn at(base: &str) -> Upstream {
        Upstream {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Answer, UpstreamError> {
        let res = self.client.request(req).await?;
        let status = res.status().as_u16();
        let headers = res.headers().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let body = Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| UpstreamError::Read(e.to_string()))?
            .to_bytes();
        Ok(Answer { status, headers, body })
    }

    /// Whether moto answers its own API (it is up).
    pub async fn ready(&self) -> bool {
        self.get("/moto-api/").await.is_ok_and(|a| a.status == 200)
    }

    /// A GET of moto's own API.
    pub async fn get(&self, path: &str) -> Result<Answer, UpstreamError> {
        self.send(Request::get(format!("{}{path}", self.base)).body(Full::default())?)
            .await
    }

    /// A POST to moto's own API (reset, state transitions).
    pub async fn post(&self, path: &str, content_type: &str, body: String) -> Result<Answer, UpstreamError> {
        let req = Request::post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))?;
        self.send(req).await
    }

    /// The SDK's request, passed on unchanged.
    pub async fn forward(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let path = call.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(format!("{}{path}", self.base));
        for (k, v) in &call.headers {
            if !NOT_PASSED.contains(&k.as_str()) {
                req = req.header(k, v);
            }
        }
        self.send(req.body(Full::new(call.body.clone()))?).await
    }

    /// A JSON-protocol call of the layer's own, as `service` in `region` would be signed (moto
    /// routes by the scope and checks no signature).
    pub async fn call(&self, service: &str, region: &str, target: &str, body: &Value) -> Result<Answer, UpstreamError> {
        let req = Request::post(format!("{}/", self.base))
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/20240101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0",
                    super::ACCESS_KEY
                ),
            )
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(body.to_string())))?;
        self.send(req).await
    }
}
