//! An operation named `service:Operation`, found in the models. Apart from sending (the rest of
//! `call`), because what names an operation needs no error of a call: `permissions` maps names to
//! IAM actions for an error's hint, and an error must not depend on the code that sends.

use super::model::{self, Service, service, service_names};

/// `service:Operation`, resolved against the models.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub service: &'static Service,
    pub operation: &'static model::Operation,
    /// The operation's name as the API spells it.
    pub name: &'static str,
}

/// Why a call name does not resolve; `candidates` are for "did you mean".
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NameError {
    #[error("`{0}` is not SERVICE:Operation (e.g. `organizations:ListAccounts`)")]
    Syntax(String),
    #[error("no AWS service `{service}`")]
    UnknownService {
        service: String,
        candidates: Vec<&'static str>,
    },
    #[error("{service} has no operation `{operation}`")]
    UnknownOperation {
        service: &'static str,
        operation: String,
        candidates: Vec<&'static str>,
    },
}

/// Resolves `service:Operation` against the models.
pub fn resolve(name: &str) -> Result<Call, NameError> {
    let (svc, op) = name
        .split_once(':')
        .filter(|(s, o)| !s.is_empty() && !o.is_empty())
        .ok_or_else(|| NameError::Syntax(name.to_string()))?;
    let service = service(svc).ok_or_else(|| NameError::UnknownService {
        service: svc.to_string(),
        candidates: service_names(),
    })?;
    match service.operations.get_key_value(op) {
        Some((n, o)) => Ok(Call {
            service,
            operation: o,
            name: n.as_str(),
        }),
        None => Err(NameError::UnknownOperation {
            service: service.name,
            operation: op.to_string(),
            candidates: service.operations.keys().map(String::as_str).collect(),
        }),
    }
}
