//! Scalars on the wire: timestamps in the format each place wants, blobs, URI encoding, and the
//! idempotency tokens the SDKs fill in.

use aws_smithy_types::date_time::{DateTime, Format};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where a timestamp goes, which decides its default format (as the SDKs do).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Place {
    /// A JSON body: seconds since the epoch.
    JsonBody,
    /// An XML body or a query form: ISO 8601.
    XmlOrForm,
    /// A header: an HTTP date.
    Header,
    /// A URI label or a query string: ISO 8601.
    Uri,
}

/// The text toml gives a TOML datetime when it becomes JSON.
const TOML_DATETIME: &str = "$__toml_private_datetime";

/// A timestamp as a step wrote it: an ISO 8601 string, a TOML datetime, or epoch seconds.
pub(super) fn timestamp(v: &Value) -> Option<DateTime> {
    match v {
        Value::Number(n) => n.as_f64().map(DateTime::from_secs_f64),
        Value::String(s) => parse_time(s),
        Value::Object(o) if o.len() == 1 => o.get(TOML_DATETIME).and_then(Value::as_str).and_then(parse_time),
        _ => None,
    }
}

fn parse_time(s: &str) -> Option<DateTime> {
    let s = s.trim();
    if let Ok(t) = DateTime::from_str(s, Format::DateTime) {
        return Some(t);
    }
    // A TOML local datetime or a date alone is taken as UTC.
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        format!("{}Z", s.replace(' ', "T"))
    };
    DateTime::from_str(&full, Format::DateTime)
        .ok()
        .or_else(|| DateTime::from_str(s, Format::HttpDate).ok())
}

/// Whether a value can be sent as a timestamp (the check `validate` makes).
pub(super) fn is_timestamp(v: &Value) -> bool {
    timestamp(v).is_some()
}

/// The timestamp in the wire format of its place, or of the model's `timestampFormat`.
pub(super) fn format_time(v: &Value, format: Option<&str>, place: Place) -> Value {
    let Some(t) = timestamp(v) else {
        return v.clone();
    };
    let format = format.unwrap_or(match place {
        Place::JsonBody => "unixTimestamp",
        Place::Header => "rfc822",
        Place::XmlOrForm | Place::Uri => "iso8601",
    });
    match format {
        "unixTimestamp" => {
            if t.subsec_nanos() == 0 {
                Value::from(t.secs())
            } else {
                serde_json::Number::from_f64(t.as_secs_f64())
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::from(t.secs()))
            }
        }
        "rfc822" => t.fmt(Format::HttpDate).map(Value::String).unwrap_or_else(|_| v.clone()),
        _ => t.fmt(Format::DateTime).map(Value::String).unwrap_or_else(|_| v.clone()),
    }
}

/// A timestamp from an answer, as a step reads every timestamp: ISO 8601.
pub(super) fn read_time(v: &Value) -> Value {
    let t = match v {
        Value::Number(n) => n.as_f64().map(DateTime::from_secs_f64),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .map(DateTime::from_secs_f64)
            .or_else(|| parse_time(s)),
        _ => None,
    };
    t.and_then(|t| t.fmt(Format::DateTime).ok())
        .map(Value::String)
        .unwrap_or_else(|| v.clone())
}

/// A blob as a step writes it (base64) decoded to its bytes.
pub(super) fn blob(v: &Value) -> Option<Vec<u8>> {
    v.as_str().and_then(|s| aws_smithy_types::base64::decode(s.trim()).ok())
}

pub(super) fn base64(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
}

/// Everything but RFC 3986's unreserved characters (and `/` in a greedy label).
pub(super) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text of a scalar in a URI, a query string or a header.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The token the SDKs make up for an idempotency member the step left out. Ours is derived
/// from the operation and the request, so the same request sent again (a resend after an
/// unknown outcome) is the same request to AWS, which acts on it once.
pub(super) fn idempotency_token(call: &str, request: &Value) -> String {
    let digest = Sha256::digest(format!("{call}\n{request}").as_bytes());
    let h = hex(&digest[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_take_their_places_format() {
        let t = json!("2024-02-03T04:05:06Z");
        assert_eq!(format_time(&t, None, Place::JsonBody), json!(1706933106));
        assert_eq!(format_time(&t, None, Place::XmlOrForm), json!("2024-02-03T04:05:06Z"));
        assert_eq!(
            format_time(&t, None, Place::Header),
            json!("Sat, 03 Feb 2024 04:05:06 GMT")
        );
        assert_eq!(
            format_time(&t, Some("iso8601"), Place::JsonBody),
            json!("2024-02-03T04:05:06Z")
        );
        let toml = json!({ "$__toml_private_datetime": "2024-02-03T04:05:06" });
        assert_eq!(format_time(&toml, None, Place::JsonBody), json!(1706933106));
        assert_eq!(
            format_time(&json!("2024-02-03"), None, Place::Uri),
            json!("2024-02-03T00:00:00Z")
        );
        assert!(!is_timestamp(&json!("yesterday")));
        assert_eq!(read_time(&json!(1706933106.5)), json!("2024-02-03T04:05:06.5Z"));
        assert_eq!(
            read_time(&json!("Sat, 03 Feb 2024 04:05:06 GMT")),
            json!("2024-02-03T04:05:06Z")
        );
    }

    #[test]
    fn labels_and_tokens() {
        assert_eq!(uri_encode("a b/c~", false), "a%20b%2Fc~");
        assert_eq!(uri_encode("a b/c", true), "a%20b/c");
        let a = idempotency_token("ec2:RunInstances", &json!({"a": 1}));
        assert_eq!(a, idempotency_token("ec2:RunInstances", &json!({"a": 1})));
        assert_ne!(a, idempotency_token("ec2:RunInstances", &json!({"a": 2})));
        assert_eq!(a.len(), 36);
    }
}
