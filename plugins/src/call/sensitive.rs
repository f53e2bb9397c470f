//! The model's `sensitive` trait: which members of a request or an answer are secrets (a
//! password, a key, an MFA seed), so the runner can mask them wherever it shows or stores them.

use serde_json::Value;

use super::Call;
use super::model::{Service, Shape};

const MAX_DEPTH: usize = 64;

/// Every value in `v` that the model marks sensitive, read through `shape`: the text of a
/// sensitive string, number or blob (base64, as a step sees it), and every leaf under a
/// sensitive structure, list or map.
pub fn values_in(service: &Service, shape: &Shape, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(service, shape, v, false, &mut out, 0);
    out.sort();
    out.dedup();
    out
}

fn walk(service: &Service, shape: &Shape, v: &Value, inherited: bool, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let secret = inherited || shape.sensitive;
    match v {
        Value::Object(o) if shape.ty == "structure" => {
            for (k, x) in o {
                match shape.members.get(k).and_then(|r| service.shape(&r.shape)) {
                    Some(inner) => walk(service, inner, x, secret, out, depth + 1),
                    None if secret => leaves(x, out),
                    None => {}
                }
            }
        }
        Value::Object(o) if shape.ty == "map" => {
            let inner = shape.value.as_ref().and_then(|r| service.shape(&r.shape));
            for (k, x) in o {
                // A sensitive map's keys are part of the secret too.
                if secret && !k.is_empty() {
                    out.push(k.clone());
                }
                match inner {
                    Some(inner) => walk(service, inner, x, secret, out, depth + 1),
                    None if secret => leaves(x, out),
                    None => {}
                }
            }
        }
        Value::Array(a) => {
            let inner = shape.member.as_ref().and_then(|r| service.shape(&r.shape));
            for x in a {
                match inner {
                    Some(inner) => walk(service, inner, x, secret, out, depth + 1),
                    None if secret => leaves(x, out),
                    None => {}
                }
            }
        }
        _ if secret => leaves(v, out),
        _ => {}
    }
}

/// `v` with every value the model marks sensitive replaced by the mask, whole (a sensitive map
/// or structure becomes one mask, so neither its keys nor its size show). What a request looks
/// like wherever it is shown or named: a short secret is masked by where it is, not by a search
/// for its text.
pub fn masked(service: &Service, shape: &Shape, v: &Value) -> Value {
    mask(service, shape, v, 0)
}

/// What a masked value reads as.
pub const MASK: &str = "********";

fn mask(service: &Service, shape: &Shape, v: &Value, depth: usize) -> Value {
    if shape.sensitive && !v.is_null() {
        return Value::String(MASK.into());
    }
    if depth > MAX_DEPTH {
        return v.clone();
    }
    let inner = |r: &Option<super::model::Ref>| r.as_ref().and_then(|r| service.shape(&r.shape));
    match v {
        Value::Object(o) if shape.ty == "structure" => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = match shape.members.get(k).and_then(|r| service.shape(&r.shape)) {
                        Some(s) => mask(service, s, x, depth + 1),
                        None => x.clone(),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Object(o) if shape.ty == "map" => match inner(&shape.value) {
            Some(s) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), mask(service, s, x, depth + 1)))
                    .collect(),
            ),
            None => v.clone(),
        },
        Value::Array(a) => match inner(&shape.member) {
            Some(s) => Value::Array(a.iter().map(|x| mask(service, s, x, depth + 1)).collect()),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

fn leaves(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Object(o) => o.values().for_each(|x| leaves(x, out)),
        Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
        _ => {}
    }
}

/// The paths of the sensitive members under `shape` (`VirtualMFADevice.Base32StringSeed`,
/// `Items[].Secret`); a sensitive structure is named whole.
pub fn paths_in(service: &Service, shape: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    paths(service, shape, "", &mut out, &mut seen);
    out
}

fn paths<'a>(service: &'a Service, shape: &'a Shape, at: &str, out: &mut Vec<String>, seen: &mut Vec<&'a str>) {
    match shape.ty.as_str() {
        "structure" => {
            for (name, r) in &shape.members {
                let p = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                member(service, r, p, out, seen);
            }
        }
        "list" => {
            if let Some(r) = &shape.member {
                member(service, r, format!("{at}[]"), out, seen);
            }
        }
        "map" => {
            if let Some(r) = &shape.value {
                member(service, r, format!("{at}{{}}"), out, seen);
            }
        }
        _ => {}
    }
}

/// One member at path `p`: named when sensitive, else walked (a recursive shape, a tree of
/// folders, once per branch).
fn member<'a>(
    service: &'a Service,
    r: &'a super::model::Ref,
    p: String,
    out: &mut Vec<String>,
    seen: &mut Vec<&'a str>,
) {
    let Some(inner) = service.shape(&r.shape) else { return };
    if inner.sensitive {
        out.push(p);
    } else if !seen.contains(&r.shape.as_str()) {
        seen.push(&r.shape);
        paths(service, inner, &p, out, seen);
        seen.pop();
    }
}

impl Call {
    /// The sensitive values of a request of this call.
    pub fn sensitive_in_request(&self, request: &Value) -> Vec<String> {
        self.input()
            .map(|s| values_in(self.service, s, request))
            .unwrap_or_default()
    }

    /// The request with its sensitive members masked where they are.
    pub fn masked_request(&self, request: &Value) -> Value {
        match self.input() {
            Some(s) => masked(self.service, s, request),
            None => request.clone(),
        }
    }

    /// The sensitive values of an answer of this call.
    pub fn sensitive_in_response(&self, response: &Value) -> Vec<String> {
        self.output()
            .map(|s| values_in(self.service, s, response))
            .unwrap_or_default()
    }

    /// Where the answer's sensitive members are (`VirtualMFADevice.Base32StringSeed`).
    pub fn sensitive_outputs(&self) -> Vec<String> {
        self.output().map(|s| paths_in(self.service, s)).unwrap_or_default()
    }

    /// Where the request's sensitive members are (`PasswordData`, `NewPassword`).
    pub fn sensitive_inputs(&self) -> Vec<String> {
        self.input().map(|s| paths_in(self.service, s)).unwrap_or_default()
    }
}

/// Every sensitive value in `v`, a request or an answer of `call`: the runner masks them in
/// what it prints, journals and renders. Both shapes are read, so a value is found whichever it
/// is (a request read with the answer's shape finds nothing more than its own members).
pub fn sensitive_values(call: &Call, v: &Value) -> Vec<String> {
    let mut all = call.sensitive_in_request(v);
    all.extend(call.sensitive_in_response(v));
    all.sort();
    all.dedup();
    all
}

/// The sensitive members of the answer of `service:Operation`, for the built-in actions that
/// call it through the SDK (`iam`, `CreateVirtualMFADevice` gives
/// `VirtualMFADevice.Base32StringSeed` and `VirtualMFADevice.QRCodePNG`).
pub fn sensitive_outputs(service: &str, operation: &str) -> Vec<String> {
    super::resolve(&format!("{service}:{operation}"))
        .map(|c| c.sensitive_outputs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::resolve;
    use serde_json::json;

    #[test]
    fn the_models_secrets_are_found() {
        assert_eq!(
            sensitive_outputs("iam", "CreateVirtualMFADevice"),
            vec!["VirtualMFADevice.Base32StringSeed", "VirtualMFADevice.QRCodePNG"]
        );
        let c = resolve("iam:CreateVirtualMFADevice").expect("resolves");
        let answer =
            json!({"VirtualMFADevice": {"SerialNumber": "arn:mfa", "Base32StringSeed": "SEED", "QRCodePNG": "UE5H"}});
        assert_eq!(sensitive_values(&c, &answer), vec!["SEED", "UE5H"]);
        let c = resolve("iam:CreateLoginProfile").expect("resolves");
        assert_eq!(
            c.sensitive_in_request(&json!({"UserName": "bob", "Password": "hunter2"})),
            vec!["hunter2"]
        );
        // A sensitive list: every item is a secret.
        let c = resolve("secretsmanager:GetSecretValue").expect("resolves");
        assert_eq!(
            c.sensitive_in_response(&json!({"Name": "n", "SecretString": "s3cret"})),
            vec!["s3cret"]
        );
        assert!(c.sensitive_outputs().contains(&"SecretString".to_string()));
        assert!(sensitive_outputs("nope", "Nothing").is_empty());
    }

    #[test]
    fn identity_data_is_shown_and_every_other_sensitive_member_is_not() {
        let accounts = resolve("organizations:ListAccounts").expect("resolves");
        let answer = json!({"Accounts": [{"Id": "111111111111", "Name": "Prod", "Email": "a@example.com"}]});
        assert!(accounts.sensitive_in_response(&answer).is_empty());
        let made = resolve("organizations:CreateAccount").expect("resolves");
        assert!(
            made.sensitive_in_request(&json!({"AccountName": "Prod", "Email": "a@example.com"}))
                .is_empty()
        );
        // The same service's other sensitive members, and the account service's one-time
        // password, stay secret.
        let otp = resolve("account:AcceptPrimaryEmailUpdate").expect("resolves");
        assert_eq!(
            otp.sensitive_in_request(
                &json!({"AccountId": "111111111111", "Otp": "123456", "PrimaryEmail": "a@example.com"})
            ),
            vec!["123456"]
        );
        let notes = resolve("organizations:InviteAccountToOrganization").expect("resolves");
        assert_eq!(
            notes.sensitive_in_request(&json!({"Target": {"Id": "1", "Type": "ACCOUNT"}, "Notes": "private"})),
            vec!["private"]
        );
    }

    #[test]
    fn a_short_sensitive_value_is_masked_where_it_is() {
        let put = resolve("ssm:PutParameter").expect("resolves");
        assert_eq!(
            put.masked_request(&json!({"Name": "/a", "Value": "one", "Type": "String"})),
            json!({"Name": "/a", "Value": MASK, "Type": "String"})
        );
        let f = resolve("lambda:CreateFunction").expect("resolves");
        assert_eq!(
            f.masked_request(&json!({"FunctionName": "f", "Environment": {"Variables": {"A": "1", "B": "2"}}})),
            json!({"FunctionName": "f", "Environment": {"Variables": MASK}})
        );
    }

    #[test]
    fn every_identity_exception_names_a_sensitive_shape_of_its_model() {
        for (service, shapes) in crate::call::model::IDENTITY_DATA {
            let gz = crate::call::model::raw(service).expect("a bundled model");
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut text).expect("gzip");
            let raw: Value = serde_json::from_slice(&text).expect("json");
            for shape in *shapes {
                assert_eq!(raw["shapes"][shape]["sensitive"], json!(true), "{service}: {shape}");
            }
        }
    }

    #[test]
    fn every_operation_named_like_a_read_that_makes_something_is_a_real_one() {
        for name in crate::call::NOT_READS {
            let c = resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!c.reads(), "{name}");
            assert!(!crate::call::reads(name), "{name}");
        }
        assert!(crate::call::reads("sts:GetCallerIdentity"));
    }
}
