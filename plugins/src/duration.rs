//! Durations as parameters: one parser, one type per notation, each with a schema pattern that
//! `check` applies to literal values, so `timeout = "15"` or `session_duration = "4 hours"` is
//! a located error before a run, not a surprise after three accounts were created.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `"10m"`, `"90s"`, `"2h"`, `"1h30m"`, `"500ms"`, or bare seconds.
pub fn parse(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(std::time::Duration::from_secs(n));
    }
    let mut millis = 0u64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        millis = millis.checked_add(n.checked_mul(unit)?)?;
    }
    if !num.is_empty() {
        return None;
    }
    (millis > 0 || s == "0s").then(|| std::time::Duration::from_millis(millis))
}

/// A time limit written with units (`30m`, `1h30m`, `500ms`): how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub duration: std::time::Duration,
    written: String,
}

impl Wait {
    /// A default written as it would be in a runbook.
    pub fn of(written: &str) -> Wait {
        Wait {
            duration: parse(written).unwrap_or_default(),
            written: written.to_string(),
        }
    }
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = String::deserialize(d)?;
        match parse(&written) {
            Some(duration) if !duration.is_zero() => Ok(Wait { duration, written }),
            _ => Err(serde::de::Error::custom(format!(
                "`{written}` is not a duration such as 30s, 10m or 1h30m"
            ))),
        }
    }
}

impl Serialize for Wait {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

/// The pattern `check` applies to a literal `Wait` (what `parse` accepts, less bare seconds,
/// which read as a typo: `15` what?).
pub const WAIT_PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";

impl JsonSchema for Wait {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Wait".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": WAIT_PATTERN,
            "examples": ["30s", "10m", "1h30m"],
        })
    }
}

/// A session length as AWS writes it, ISO-8601 (`PT1H`, `PT4H30M`), from 1 to 12 hours (the range
/// IAM Identity Center accepts for a permission set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDuration(String);

/// The pattern `check` applies to a literal `SessionDuration`.
pub const SESSION_PATTERN: &str = "^PT([0-9]+H)?([0-9]+M)?([0-9]+S)?$";

impl SessionDuration {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Seconds, when the text is an ISO-8601 duration of hours, minutes and seconds.
    fn seconds(s: &str) -> Option<u64> {
        let rest = s.strip_prefix("PT")?;
        if rest.is_empty() {
            return None;
        }
        let (mut total, mut num) = (0u64, String::new());
        let mut last = 0;
        for c in rest.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let (rank, unit) = match c {
                'H' => (1, 3600),
                'M' => (2, 60),
                'S' => (3, 1),
                _ => return None,
            };
            // Each unit once, in order, each with a number.
            if rank <= last || num.is_empty() {
                return None;
            }
            last = rank;
            total = total.checked_add(num.parse::<u64>().ok()?.checked_mul(unit)?)?;
            num.clear();
        }
        num.is_empty().then_some(total)
    }
}

impl Default for SessionDuration {
    fn default() -> Self {
        SessionDuration("PT1H".into())
    }
}

impl<'de> Deserialize<'de> for SessionDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match SessionDuration::seconds(&s) {
            Some(secs) if (3600..=12 * 3600).contains(&secs) => Ok(SessionDuration(s)),
            Some(_) => Err(serde::de::Error::custom(format!(
                "`{s}` is outside 1 to 12 hours (PT1H to PT12H), the range IAM Identity Center accepts"
            ))),
            None => Err(serde::de::Error::custom(format!(
                "`{s}` is not an ISO-8601 duration such as PT1H or PT4H30M"
            ))),
        }
    }
}

impl Serialize for SessionDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl JsonSchema for SessionDuration {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "SessionDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": SESSION_PATTERN,
            "examples": ["PT1H", "PT4H30M", "PT12H"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("99999999999999999d"), None);
        assert_eq!(parse("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse("10x"), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse("5m3"), None);
    }

    #[test]
    fn session_durations() {
        let de = |s: &str| serde_json::from_value::<SessionDuration>(serde_json::json!(s));
        assert_eq!(de("PT1H").ok().map(|d| d.0), Some("PT1H".to_string()));
        assert!(de("PT4H30M").is_ok());
        assert!(de("PT12H").is_ok());
        assert!(de("PT90M").is_ok());
        for bad in [
            "4 hours", "PT", "PT30M", "PT13H", "P1D", "PT1H1H", "PTH", "PT1M1H", "1h",
        ] {
            assert!(de(bad).is_err(), "{bad}");
        }
        let re = regex::Regex::new(SESSION_PATTERN).expect("pattern");
        assert!(re.is_match("PT4H30M") && !re.is_match("4 hours"));
    }

    #[test]
    fn waits() {
        let de = |s: &str| serde_json::from_value::<Wait>(serde_json::json!(s));
        assert_eq!(de("30m").ok().map(|w| w.duration), Some(Duration::from_secs(1800)));
        assert!(de("0s").is_err(), "a zero wait is no wait");
        assert!(de("soon").is_err());
        let re = regex::Regex::new(WAIT_PATTERN).expect("pattern");
        assert!(re.is_match("1h30m") && !re.is_match("15") && !re.is_match("4 hours"));
    }
}
