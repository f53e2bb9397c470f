//! Keeps secrets out of everything runbook writes: each string bound for the terminal, the
//! transcript or the state file passes through a [`Redactor`] that knows the secret values.

use std::sync::{Arc, RwLock};

use serde_json::Value;

pub const MASK: &str = "********";

#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    /// Remembers a secret value; empty values are ignored (they would match everywhere).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        if let Ok(mut s) = self.secrets.write() {
            if !s.iter().any(|x| x == secret) {
                s.push(secret.to_string());
                // Longest first, so a secret containing another is masked whole.
                s.sort_by_key(|x| std::cmp::Reverse(x.len()));
            }
        }
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
        out
    }

    pub fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), self.value(x))).collect()),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
