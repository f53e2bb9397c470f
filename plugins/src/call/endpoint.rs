//! Where a call goes and what it is signed for, from the service's metadata: a regional host
//! (`ssm.eu-west-1.amazonaws.com`), a global service's one host and signing region (iam,
//! organizations, route53: `global`), a host prefix, s3's bucket in the host name, or everything
//! at `--endpoint-url` (an emulator), where s3 is addressed path-style.

use serde_json::Value;

use super::Call;
use super::rest::Outgoing;
use crate::context::Context;
use crate::error::PluginError;

#[derive(Debug)]
pub(super) struct Target {
    /// `https://host[:port]`, no trailing slash.
    pub base: String,
    pub region: String,
    pub signing_name: String,
    /// `--endpoint-url`: one host for everything.
    pub custom: bool,
}

/// The region a call is signed for: a global service's own, else the step's.
pub(super) async fn region(ctx: &Context, call: Call) -> Result<String, PluginError> {
    match &call.service.metadata.global {
        Some(g) => Ok(g.region.clone()),
        None => ctx.region().await,
    }
}

pub(super) async fn target(ctx: &Context, call: Call) -> Result<Target, PluginError> {
    let sdk = ctx.sdk().await?;
    let region = region(ctx, call).await?;
    let meta = &call.service.metadata;
    let custom = sdk.endpoint_url().map(|e| e.trim_end_matches('/').to_string());
    let base = match (&custom, &meta.global) {
        (Some(e), _) => e.clone(),
        (None, Some(g)) => format!("https://{}", g.host),
        (None, None) => {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{}.{region}.{suffix}", meta.endpoint_prefix)
        }
    };
    Ok(Target {
        base,
        region,
        signing_name: call.service.signing_name().to_string(),
        custom: custom.is_some(),
    })
}

/// Whether s3 can put this bucket in the host name (`bucket.s3.region.amazonaws.com`): a DNS
/// label without dots (a dot would break the certificate's wildcard).
fn virtual_host_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// The request's full URL: host prefix and s3's bucket-in-host for AWS's own endpoints.
pub(super) fn url(target: &Target, call: Call, out: &mut Outgoing, request: &Value) -> Result<String, PluginError> {
    let (scheme, host) = target.base.split_once("://").unwrap_or(("https", target.base.as_str()));
    let mut host = host.to_string();
    if !target.custom {
        if let Some(prefix) = &call.operation.host_prefix {
            host = format!("{}{host}", fill_host_labels(call, prefix, request)?);
        }
        if call.service.name == "s3" {
            if let Some(bucket) = request.get("Bucket").and_then(Value::as_str) {
                let lead = format!("/{bucket}");
                let in_path = out.path == lead || out.path.starts_with(&format!("{lead}/"));
                if virtual_host_bucket(bucket) && in_path {
                    out.path = match &out.path[lead.len()..] {
                        "" => "/".to_string(),
                        rest => rest.to_string(),
                    };
                    host = format!("{bucket}.{host}");
                }
            }
        }
    }
    let mut url = format!("{scheme}://{host}{}", out.path);
    if !out.query.is_empty() {
        url.push('?');
        url.push_str(&out.query);
    }
    Ok(url)
}

/// `{AccountId}.` filled from the request's host-label members.
fn fill_host_labels(call: Call, prefix: &str, request: &Value) -> Result<String, PluginError> {
    let mut out = String::new();
    let mut rest = prefix;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let label = &rest[open + 1..close];
        let v = request.get(label).and_then(Value::as_str).unwrap_or("");
        let ok = !v.is_empty() && v.len() <= 63 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(PluginError::Other(format!(
                "{}: `{label}` goes into the host name and must be letters, digits and dashes",
                call.full_name()
            )));
        }
        out.push_str(v);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{resolve, rest};
    use serde_json::json;

    fn aws(service: &str, region: &str) -> Target {
        Target {
            base: format!("https://{service}.{region}.amazonaws.com"),
            region: region.into(),
            signing_name: service.into(),
            custom: false,
        }
    }

    #[test]
    fn s3_puts_the_bucket_in_the_host_except_at_an_emulator() {
        let c = resolve("s3:ListObjectsV2").expect("resolves");
        let req = json!({"Bucket": "logs-1"});
        let mut out = rest::encode(c, &req).expect("encodes");
        let first = url(&aws("s3", "eu-west-1"), c, &mut out, &req).expect("url");
        assert_eq!(first, "https://logs-1.s3.eu-west-1.amazonaws.com/?list-type=2");
        let mut out = rest::encode(c, &req).expect("encodes");
        let moto = Target {
            base: "http://127.0.0.1:5000".into(),
            custom: true,
            ..aws("s3", "eu-west-1")
        };
        assert_eq!(
            url(&moto, c, &mut out, &req).expect("url"),
            "http://127.0.0.1:5000/logs-1?list-type=2"
        );
        let dotted = json!({"Bucket": "my.logs"});
        let mut out = rest::encode(c, &dotted).expect("encodes");
        assert_eq!(
            url(&aws("s3", "eu-west-1"), c, &mut out, &dotted).expect("url"),
            "https://s3.eu-west-1.amazonaws.com/my.logs?list-type=2"
        );
    }

    #[test]
    fn host_prefixes_take_their_labels() {
        let c = resolve("s3control:ListAccessPoints").expect("resolves");
        let req = json!({"AccountId": "111122223333"});
        let mut out = rest::encode(c, &req).expect("encodes");
        let first = url(&aws("s3-control", "us-east-1"), c, &mut out, &req).expect("url");
        assert!(
            first.starts_with("https://111122223333.s3-control.us-east-1.amazonaws.com/"),
            "{first}"
        );
        let bad = json!({"AccountId": "x.evil.com/"});
        let mut out = rest::encode(c, &bad).expect("encodes");
        assert!(url(&aws("s3-control", "us-east-1"), c, &mut out, &bad).is_err());
    }
}
