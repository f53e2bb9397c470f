//! Keeps secrets out of everything runbook writes: each string bound for the terminal, the
//! transcript or the state file passes through a [`Redactor`] that knows the secret values.
//!
//! There is one redactor per process ([`Redactor::global`]): every run, the runs `on-failure=`
//! continues into, `plan`, the event stream, errors and diagnostics all mask with it, so a secret
//! learned anywhere is masked everywhere (attacker finding: a follow-up started with a fresh
//! redactor and printed the parent's secret from the error it was handed).
//!
//! Searching text for a secret is the backstop, not the rule: what code derives from a secret is
//! kept whole and opaque where it stands ([`Redactor::opaque`]). Secrets shorter than
//! [`MIN_SEARCHED`] are masked where they are a whole value but not searched for inside text (a
//! secret "x" would mask every x), and credentials of the environment below [`MIN_ENV`].

use std::sync::{Arc, RwLock};

use serde_json::Value;

pub const MASK: &str = "********";

/// Derived secret values shorter than this are masked where they stand (the outputs of the step
/// that derived them) but not searched for in every other text: a secret "7" would mask every 7.
pub const MIN_DERIVED: usize = 3;

/// Secrets shorter than this are masked where they are a whole value, never searched for inside
/// other text.
pub const MIN_SEARCHED: usize = 4;

/// Environment credentials shorter than this are test values (`AWS_SECRET_ACCESS_KEY=x`), not
/// keys AWS issues (20 and 40 characters): searched for, they would mask every `x` printed.
pub const MIN_ENV: usize = 8;

/// A secret value. It formats as the mask, never in clear; [`Secret::expose`] is the one way to
/// the value, for the places that must send it (an AWS parameter, the script scope).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// The forms a secret takes when something encodes it on the way out or echoes it back: inside a
/// JSON string (a journal line, an event, a request body: `"` and `\` escaped), in a query-protocol
/// request or an error that quotes one (form-urlencoded: `+` for a space, `%XX` for the rest),
/// percent-encoded with `%20`, and inside XML (`&amp;`, `&lt;`, ...). Masking looks for each.
fn encodings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret)
        .map(|q| q[1..q.len() - 1].to_string())
        .unwrap_or_default();
    // As forms, query strings and paths encode it (`/` kept by path encoders: IAM's policy
    // documents, s3's `EncodingType=url` keys).
    let percent = |space_plus: bool, slash: bool| {
        let mut out = String::new();
        for b in secret.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
                b'/' if slash => out.push('/'),
                b' ' if space_plus => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    let xml = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;");
    let mut forms = vec![
        json,
        percent(true, false),
        percent(false, false),
        percent(true, true),
        percent(false, true),
        xml,
    ];
    if secret.chars().count() >= MIN_ENV {
        forms.extend(transformed(secret));
    }
    forms.retain(|f| !f.is_empty() && f != secret);
    forms.sort();
    forms.dedup();
    forms
}

/// What an answer may carry a long secret back as (an AWS error quoting a canonical request in
/// hex, a proxy or service echoing headers in base64, a message upper-cased or reversed): only for
/// secrets of [`MIN_ENV`]+ characters, where such a form is no common word. Base64 is found at
/// whatever offset the secret sat in the encoded bytes: each of the three alignments, without the
/// two groups at its ends that mix in neighbouring bytes (they tell at most two bytes).
fn transformed(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let bytes = secret.as_bytes();
    let mut out = vec![
        secret.to_uppercase(),
        secret.to_lowercase(),
        secret.chars().rev().collect(),
        hex::encode(bytes),
        hex::encode_upper(bytes),
    ];
    // As S3 quotes a canonical request (`CanonicalRequestBytes`): hex bytes with separators.
    for sep in [" ", ":"] {
        let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        out.push(pairs.join(sep));
        out.push(pairs.join(sep).to_uppercase());
    }
    for skip in 0..3 {
        let rest = &bytes[skip.min(bytes.len())..];
        let whole = rest.len() / 3 * 3;
        if whole >= 6 {
            out.push(STANDARD_NO_PAD.encode(&rest[..whole]));
            out.push(URL_SAFE_NO_PAD.encode(&rest[..whole]));
        }
    }
    out
}

/// A message clipped for the screen (`...`) may end inside a secret, and the start of a secret is
/// not the secret (attacker finding: 31 of a session token's 32 characters were printed before
/// the `...` of a clipped AWS error). A long secret's beginning of [`MIN_ENV`]+ characters just
/// before a cut is masked as the secret is.
fn cut_short(mut out: String, secrets: &[String]) -> String {
    for marker in ["...", "…"] {
        let mut from = 0;
        while let Some(found) = out[from..].find(marker) {
            let at = from + found;
            let before = &out[..at];
            let cut = secrets
                .iter()
                .filter(|s| s.chars().count() >= MIN_ENV)
                .filter_map(|s| {
                    let head: String = s.chars().take(MIN_ENV).collect();
                    let window = before.len().saturating_sub(s.len());
                    let start = (window..=before.len()).find(|i| before.is_char_boundary(*i))?;
                    let i = start + before[start..].rfind(head.as_str())?;
                    s.starts_with(&before[i..]).then_some(i)
                })
                .min();
            match cut {
                Some(i) => {
                    out.replace_range(i..at, MASK);
                    from = i + MASK.len() + marker.len();
                }
                None => from = at + marker.len(),
            }
            if from >= out.len() {
                break;
            }
        }
    }
    out
}

#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
    /// Secrets too short to search for: masked only where a whole value equals one.
    whole: Arc<RwLock<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.secrets.read().map(|s| s.len()).unwrap_or(0);
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    /// The redactor of this process, with the credentials of the environment already known.
    pub fn global() -> Redactor {
        static GLOBAL: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let r = Redactor::default();
                r.add_credentials_from_env();
                r
            })
            .clone()
    }

    /// Remembers a secret value; empty values are ignored (they would match everywhere).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        if secret.chars().count() < MIN_SEARCHED {
            if let Ok(mut w) = self.whole.write() {
                if !w.iter().any(|x| x == secret) {
                    w.push(secret.to_string());
                }
            }
            return;
        }
        // Text is sanitized for the terminal after redaction, but a secret may also reach a
        // sink already sanitized: remember that form too.
        let shown = crate::text::sanitize(secret);
        if let Ok(mut s) = self.secrets.write() {
            for v in std::iter::once(secret.to_string())
                .chain(std::iter::once(shown))
                .chain(encodings(secret))
            {
                if !s.contains(&v) {
                    s.push(v);
                }
            }
            // Longest first, so a secret containing another is masked whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// Whether `s` holds a secret this redactor knows.
    pub fn knows(&self, s: &str) -> bool {
        self.secrets
            .read()
            .map(|secrets| secrets.iter().any(|x| s.contains(x.as_str())))
            .unwrap_or(true)
    }

    /// Remembers every value in something derived from a secret (a script's outputs, an
    /// expression over a secret): strings and numbers of at least [`MIN_DERIVED`] characters.
    pub fn add_derived(&self, v: &Value) {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) if s.chars().count() >= MIN_DERIVED => self.add(s),
                Value::Number(n) if n.to_string().len() >= MIN_DERIVED => self.add(&n.to_string()),
                Value::Array(a) => stack.extend(a),
                Value::Object(o) => {
                    // Keys can be built from a secret too (`m[inputs.pw] = 1`).
                    for k in o.keys().filter(|k| k.chars().count() >= MIN_DERIVED) {
                        self.add(k);
                    }
                    stack.extend(o.values());
                }
                _ => {}
            }
        }
    }

    /// The outputs of a step that read a secret, as anything outside the run may see them: one
    /// opaque value, nothing of their shape (no member names, nulls, lengths or types: an attacker
    /// once encoded a secret in a map of `()` and `0`), except the members the author declared
    /// `public=`, which keep their values beside one masked member for the rest.
    pub fn opaque(v: &Value, public: &[String]) -> Value {
        let shown: serde_json::Map<String, Value> = match v {
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| public.iter().any(|p| p == *k))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
            _ => serde_json::Map::new(),
        };
        if shown.is_empty() {
            return Value::String(MASK.into());
        }
        let mut shown = shown;
        shown.insert(MASK.into(), Value::String(MASK.into()));
        Value::Object(shown)
    }

    /// Every leaf of `v` masked, keeping its shape (kept for tests of the old masking).
    #[cfg(test)]
    pub fn mask_all(v: &Value, public: &[String]) -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .enumerate()
                    .map(|(i, (k, x))| {
                        if public.iter().any(|p| p == k) {
                            (k.clone(), x.clone())
                        } else {
                            // Keys are masked too, numbered to stay distinct.
                            (format!("{MASK}{i}"), Self::mask_all(x, &[]))
                        }
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| Self::mask_all(x, &[])).collect()),
            Value::Null => Value::Null,
            _ => Value::String(MASK.into()),
        }
    }

    /// Remembers the AWS credentials of the environment: they are never printed either.
    pub fn add_credentials_from_env(&self) {
        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if let Ok(v) = std::env::var(k) {
                if v.chars().count() >= MIN_ENV {
                    self.add(&v);
                }
            }
        }
    }

    /// Whether a whole value is a secret too short to search for.
    fn is_whole_secret(&self, s: &str) -> bool {
        self.whole.read().map(|w| w.iter().any(|x| x == s)).unwrap_or(true)
    }

    pub fn text(&self, s: &str) -> String {
        let Ok(secrets) = self.secrets.read() else {
            return MASK.to_string();
        };
        let mut out = s.to_string();
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        if out.contains("...") || out.contains('…') {
            out = cut_short(out, &secrets);
        }
        out
    }

    /// `v` with every secret masked: in strings, in keys, and numbers that are secrets.
    pub fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) if self.is_whole_secret(s) => Value::String(MASK.into()),
            Value::Number(n) if self.is_whole_secret(&n.to_string()) => Value::String(MASK.into()),
            Value::String(s) => Value::String(self.text(s)),
            Value::Number(n) if self.knows(&n.to_string()) => Value::String(self.text(&n.to_string())),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (self.text(k), self.value(x))).collect()),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_cut_short_by_a_clipped_message_is_masked() {
        let token = "SessTokCanaryValue9876543210zyxw";
        let r = Redactor::default();
        r.add(token);
        for keep in [8, 20, 31] {
            let clipped = format!("xxxx raw: {}...", &token[..keep]);
            assert_eq!(r.text(&clipped), format!("xxxx raw: {MASK}..."), "{keep}");
        }
        // Seven characters are too few to tell a secret from text.
        assert_eq!(r.text("raw: SessTok..."), "raw: SessTok...");
        assert_eq!(r.text("a... b…"), "a... b…");
    }

    /// The attacker's forms: an error that quoted the session token base64-encoded behind a
    /// prefix of any length, hex-encoded, upper-cased or reversed.
    #[test]
    fn a_long_secret_is_masked_in_the_forms_an_answer_may_carry_it_in() {
        use base64::Engine as _;
        let token = "SessTokCanaryValue9876543210zyxw";
        let r = Redactor::default();
        r.add(token);
        for prefix in ["", "a", "ab", "abc", "x-amz-security-token:"] {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{token}\nhost"));
            let shown = r.text(&format!("b64: {encoded}"));
            // No six bytes of the token are left as the encoding shows them (at most the two
            // groups at its ends, which mix in neighbouring bytes, tell a byte or two).
            for i in (0..token.len() - 6).filter(|i| (prefix.len() + i) % 3 == 0) {
                let piece = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&token[i..i + 6]);
                assert!(!shown.contains(&piece), "{prefix:?} at {i}: {shown}");
            }
            assert!(shown.contains(MASK), "{prefix:?}: {shown}");
        }
        for form in [
            token.to_uppercase(),
            token.chars().rev().collect::<String>(),
            hex::encode(token),
            hex::encode_upper(token),
        ] {
            assert_eq!(r.text(&format!("x {form} y")), format!("x {MASK} y"), "{form}");
        }
        // A short secret keeps only its exact forms: its upper case may be a common word.
        let short = Redactor::default();
        short.add("abcd");
        assert_eq!(short.text("ABCD dcba"), "ABCD dcba");
    }

    #[test]
    fn a_secret_url_encoded_with_its_slashes_kept_is_masked() {
        let r = Redactor::default();
        r.add("Vx9 Q/+=Zk");
        let doc = "%7B%22sts%3AExternalId%22%3A%22Vx9%20Q/%2B%3DZk%22%7D";
        assert!(!r.text(doc).contains("Vx9"), "{}", r.text(doc));
    }

    #[test]
    fn masks_every_occurrence_longest_first() {
        let r = Redactor::default();
        r.add("hunter2");
        r.add("hunter22x");
        r.add("");
        assert_eq!(r.text("a hunter22x b hunter2"), format!("a {MASK} b {MASK}"));
        let v = r.value(&serde_json::json!({"k": ["hunter2", 1]}));
        assert_eq!(v, serde_json::json!({"k": [MASK, 1]}));
    }

    /// A secret is masked in the forms encoders give it: a JSON line escapes `"` and `\`, a
    /// query-protocol request (echoed back in an AWS error) form-urlencodes it, XML escapes `&`.
    #[test]
    fn a_secret_is_masked_in_its_escaped_and_encoded_forms() {
        let r = Redactor::default();
        r.add(r#"Pw zz"&\/+é"#);
        let line = serde_json::json!({ "UserName": r#"zzPw zz"&\/+é"# }).to_string();
        assert_eq!(r.text(&line), format!(r#"{{"UserName":"zz{MASK}"}}"#), "{line}");
        for echoed in [
            "Password=Pw+zz%22%26%5C%2F%2B%C3%A9&Action=x",
            "Password=Pw%20zz%22%26%5C%2F%2B%C3%A9",
            "<Message>Pw zz&quot;&amp;\\/+é</Message>",
        ] {
            let masked = r.text(echoed);
            assert!(!masked.contains("zz%22") && !masked.contains("&quot;&amp;"), "{masked}");
            assert!(masked.contains(MASK), "{masked}");
        }
    }

    #[test]
    fn short_secrets_are_masked_as_whole_values_and_never_searched_for() {
        let r = Redactor::default();
        r.add("x");
        assert_eq!(r.text("syntax probe"), "syntax probe");
        assert_eq!(
            r.value(&serde_json::json!({"a": "x", "b": "xx"})),
            serde_json::json!({"a": MASK, "b": "xx"})
        );
    }

    #[test]
    fn opaque_outputs_keep_nothing_of_their_shape_but_the_public_members() {
        let bits = serde_json::json!({"b0": null, "b1": 0, "list": [1, 2, 3]});
        assert_eq!(Redactor::opaque(&bits, &[]), serde_json::json!(MASK));
        assert_eq!(
            Redactor::opaque(&serde_json::json!({"id": "u-1", "pin": "1234"}), &["id".into()]),
            serde_json::json!({"id": "u-1", MASK: MASK})
        );
    }

    #[test]
    fn a_redactor_shows_how_many_secrets_it_holds_never_which() {
        let r = Redactor::default();
        r.add("hunter2");
        assert_eq!(format!("{r:?}"), "Redactor(1 secrets)");
    }

    #[test]
    fn short_derived_numbers_are_not_searched_for_everywhere() {
        let r = Redactor::default();
        r.add_derived(&serde_json::json!({"n": 7, "m": 12345}));
        assert_eq!(r.text("7 and 12345"), format!("7 and {MASK}"));
    }

    #[test]
    fn masking_keeps_lists_as_lists_and_null_as_null() {
        let masked = Redactor::mask_all(&serde_json::json!({"a": [1, "x"], "z": null}), &[]);
        assert_eq!(
            masked,
            serde_json::json!({format!("{MASK}0"): [MASK, MASK], format!("{MASK}1"): null})
        );
    }

    #[test]
    fn secrets_never_format_in_clear() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), format!("{MASK} {MASK}"));
        assert_eq!(serde_json::to_string(&s).expect("json"), format!("\"{MASK}\""));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn derived_values_are_remembered_from_the_minimum_length() {
        let r = Redactor::default();
        r.add_derived(&serde_json::json!({"a": "UNTER2", "b": [1234, "ab"], "c": true}));
        assert_eq!(r.text("UNTER2 1234 ab true"), format!("{MASK} {MASK} ab true"));
        let masked = Redactor::mask_all(
            &serde_json::json!({"a": "x", "n": {"m": 1}, "p": "keep"}),
            &["p".into()],
        );
        assert_eq!(
            masked,
            serde_json::json!({format!("{MASK}0"): MASK, format!("{MASK}1"): {format!("{MASK}0"): MASK}, "p": "keep"})
        );
        r.add("4821");
        assert_eq!(
            r.value(&serde_json::json!({"4821": 4821, "n": 48210})),
            serde_json::json!({MASK: MASK, "n": format!("{MASK}0")})
        );
    }
}
