//! net: reachability checks for the firewall allow-list (DNS, TCP, TLS, an HTTP answer).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::action::{Action, Preview, Verdict};
use crate::context::Context;
use crate::duration::Wait;
use crate::error::PluginError;

fn ten_seconds() -> Wait {
    Wait::of("10s")
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReachableParams {
    /// The URLs to reach (http or https), e.g. `https://us-east-1.signin.aws/platform/login`.
    pub urls: Vec<String>,
    /// Per-URL limit, e.g. `10s`.
    #[serde(default = "ten_seconds")]
    pub timeout: Wait,
    /// Fail the step when any URL is unreachable (otherwise only report).
    #[serde(default = "yes")]
    pub require_all: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Reachability {
    /// The URL.
    pub url: String,
    /// True when DNS, the connection and an HTTP answer all worked.
    pub ok: bool,
    /// What happened: the HTTP status line, or where it stopped.
    pub detail: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Reachabilities {
    /// One entry per URL.
    pub results: Vec<Reachability>,
    /// How many were unreachable.
    pub failed: usize,
}

pub struct CheckReachable;

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

/// Why a URL was not reached: the detail a result row shows.
#[derive(Debug, thiserror::Error)]
enum Unreachable {
    #[error("only http:// and https:// URLs can be checked")]
    Scheme,
    #[error("bad port `{0}`")]
    Port(String),
    #[error("no concrete host to reach (wildcards cannot be probed)")]
    NoHost,
    #[error("DNS lookup of {host} failed: {error}")]
    Dns { host: String, error: std::io::Error },
    #[error("DNS lookup of {0} gave no address")]
    NoAddress(String),
    #[error("connecting to {addr} failed: {error}")]
    Connect {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error("TLS handshake with {host} failed: {error}")]
    Handshake { host: String, error: std::io::Error },
    #[error("sending the request: {0}")]
    Send(std::io::Error),
    #[error("reading the answer: {0}")]
    Read(std::io::Error),
    #[error("the server did not answer HTTP")]
    NotHttp,
    #[error("no answer within {0}")]
    Timeout(String),
}

fn parse_url(url: &str) -> Result<Target, Unreachable> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(Unreachable::Scheme);
    };
    let (authority, path) = rest
        .find(['/', '?', '#'])
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h.to_string(),
            p.parse::<u16>().map_err(|_| Unreachable::Port(p.to_string()))?,
        ),
        _ => (authority.to_string(), if tls { 443 } else { 80 }),
    };
    if host.is_empty() || host.contains('*') {
        return Err(Unreachable::NoHost);
    }
    Ok(Target {
        tls,
        host: host.trim_matches(['[', ']']).to_string(),
        port,
        path,
    })
}

async fn head<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, t: &Target) -> Result<String, Unreachable> {
    let req = format!(
        "HEAD {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: runbook-net-check\r\nConnection: close\r\n\r\n",
        t.path, t.host
    );
    s.write_all(req.as_bytes()).await.map_err(Unreachable::Send)?;
    let mut buf = vec![0u8; 512];
    let n = s.read(&mut buf).await.map_err(Unreachable::Read)?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.starts_with("HTTP/") {
        Ok(line)
    } else {
        Err(Unreachable::NotHttp)
    }
}

pub(crate) fn tls_config() -> Result<Arc<tokio_rustls::rustls::ClientConfig>, String> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let cfg = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

async fn probe(url: &str) -> Result<String, Unreachable> {
    let t = parse_url(url)?;
    let addrs: Vec<_> = tokio::net::lookup_host((t.host.as_str(), t.port))
        .await
        .map_err(|error| Unreachable::Dns {
            host: t.host.clone(),
            error,
        })?
        .collect();
    let addr = addrs.first().ok_or_else(|| Unreachable::NoAddress(t.host.clone()))?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|error| Unreachable::Connect { addr: *addr, error })?;
    if t.tls {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(t.host.clone())
            .map_err(|e| Unreachable::Tls(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config().map_err(Unreachable::Tls)?)
            .connect(name, tcp)
            .await
            .map_err(|error| Unreachable::Handshake {
                host: t.host.clone(),
                error,
            })?;
        head(tls, &t).await
    } else {
        head(tcp, &t).await
    }
}

impl Action for CheckReachable {
    type Params = CheckReachableParams;
    type Outputs = Reachabilities;
    const NAME: &'static str = "net.check-reachable";
    const SUMMARY: &'static str = "Checks that each URL resolves, connects (TLS verified for https) and answers HTTP: the firewall allow-list check.";
    const MUTATES: bool = false;
    const CALLS: &'static [&'static str] = &[];

    fn cli(p: &Value) -> Vec<String> {
        p.get("urls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|u| crate::command(["curl", "-sSI", u]))
            .collect()
    }

    async fn plan(_ctx: &Context, p: &CheckReachableParams) -> Result<Preview, PluginError> {
        let mut preview = Preview::default();
        for u in &p.urls {
            preview.push(Verdict::Check, format!("reach {u}"));
        }
        Ok(preview)
    }

    async fn apply(_ctx: &Context, p: CheckReachableParams) -> Result<Reachabilities, PluginError> {
        let limit = p.timeout.duration;
        let timeout = &p.timeout;
        let checks = p.urls.iter().map(|u| async move {
            let r = tokio::time::timeout(limit, probe(u))
                .await
                .unwrap_or_else(|_| Err(Unreachable::Timeout(timeout.to_string())));
            match r {
                Ok(status) => Reachability {
                    url: u.clone(),
                    ok: true,
                    detail: status,
                },
                Err(why) => Reachability {
                    url: u.clone(),
                    ok: false,
                    detail: why.to_string(),
                },
            }
        });
        let results = futures::future::join_all(checks).await;
        let failed = results.iter().filter(|r| !r.ok).count();
        if failed > 0 && p.require_all {
            let list: Vec<String> = results
                .iter()
                .filter(|r| !r.ok)
                .map(|r| format!("{}: {}", r.url, r.detail))
                .collect();
            return Err(PluginError::Check {
                message: format!("{failed} of {} URLs unreachable: {}", results.len(), list.join("; ")),
                hint: Some(
                    "allow *.awsapps.com, *.signin.aws and the access portal URLs through the firewall and proxy"
                        .into(),
                ),
            });
        }
        Ok(Reachabilities { results, failed })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        let t = parse_url("https://d-123.awsapps.com/start").expect("parses");
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("d-123.awsapps.com", 443, "/start")
        );
        let t = parse_url("http://127.0.0.1:8080").expect("parses");
        assert_eq!((t.port, t.path.as_str()), (8080, "/"));
        assert!(parse_url("https://*.awsapps.com").is_err());
        assert!(parse_url("ftp://x").is_err());
    }
}
