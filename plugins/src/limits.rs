//! AWS's limits as data. Each AWS plugin declares the published quotas of the APIs it calls
//! ([`Quotas`], collected beside the services in `aws::QUOTAS`, which depend on this module and
//! not the other way); [`AwsLimits`] holds them for one run, with the
//! operator's overrides (`--rate sso-admin=20`, `--in-progress CreateAccountAssignment=15`).

use std::collections::BTreeMap;

/// The published limits of one API family (one service's endpoint), as its plugin declares them.
#[derive(Debug)]
pub struct Quotas {
    /// `sso-admin`, `organizations`, ...: the name `--rate` takes.
    pub family: &'static str,
    /// Requests per second, all operations of the family together; None: no client-side pace.
    pub rate: Option<f64>,
    /// Operations with a cap on how many may be in progress at once (AWS refuses one more).
    pub in_progress: &'static [(&'static str, usize)],
    /// Where the numbers come from.
    pub source: &'static str,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LimitError {
    #[error("`{0}`: expected NAME=NUMBER (e.g. sso-admin=20), or NAME=off")]
    Syntax(String),
    #[error("`{given}`: unknown {what} (known: {known})")]
    Unknown {
        given: String,
        what: &'static str,
        known: String,
    },
    #[error("`{0}`: the number must be above zero")]
    Number(String),
}

/// The AWS limits one run keeps: the published ones unless the operator overrides them (a
/// script's own limits are the runner's `sandbox::ScriptLimits`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsLimits {
    rates: BTreeMap<String, Option<f64>>,
    in_progress: BTreeMap<String, Option<usize>>,
}

impl AwsLimits {
    /// The limits these quotas declare (`aws::published_limits` gives the plugins' own).
    pub fn from_quotas(quotas: &[&Quotas]) -> AwsLimits {
        let mut l = AwsLimits::default();
        for q in quotas {
            l.rates.insert(q.family.to_string(), q.rate);
            for (op, cap) in q.in_progress {
                l.in_progress.insert(op.to_string(), Some(*cap));
            }
        }
        l
    }

    /// No client-side limits at all.
    pub fn none() -> AwsLimits {
        AwsLimits::default()
    }

    /// Requests per second for a family, if paced.
    pub fn rate(&self, family: &str) -> Option<f64> {
        self.rates.get(family).copied().flatten()
    }

    /// How many operations of `op` may be in progress at once, if capped.
    pub fn in_progress(&self, op: &str) -> Option<usize> {
        self.in_progress.get(op).copied().flatten()
    }

    /// The API families that have a rate (for names and suggestions).
    pub fn families(&self) -> Vec<&str> {
        self.rates.keys().map(String::as_str).collect()
    }

    /// The operations that have an in-progress cap.
    pub fn capped_operations(&self) -> Vec<&str> {
        self.in_progress.keys().map(String::as_str).collect()
    }

    /// `FAMILY=REQUESTS_PER_SECOND` or `FAMILY=off`.
    pub fn set_rate(&mut self, spec: &str) -> Result<(), LimitError> {
        let (name, value) = split(spec)?;
        known(&mut self.rates, name, "API family")?;
        let rate = match value {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|r| *r > 0.0 && r.is_finite())
                    .ok_or_else(|| LimitError::Number(spec.into()))?,
            ),
        };
        self.set_rate_to(name, rate)
    }

    /// A family's rate, or None: no client-side pace (a limits file's `[rate]` entry).
    pub fn set_rate_to(&mut self, family: &str, rate: Option<f64>) -> Result<(), LimitError> {
        if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(LimitError::Number(family.into()));
        }
        *known(&mut self.rates, family, "API family")? = rate;
        Ok(())
    }

    /// `OPERATION=COUNT` or `OPERATION=off`.
    pub fn set_in_progress(&mut self, spec: &str) -> Result<(), LimitError> {
        let (name, value) = split(spec)?;
        known(&mut self.in_progress, name, "operation with an in-progress cap")?;
        let cap = match value {
            None => None,
            Some(v) => Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| LimitError::Number(spec.into()))?,
            ),
        };
        self.set_in_progress_to(name, cap)
    }

    /// An operation's cap, or None: no cap (a limits file's `[in-progress]` entry).
    pub fn set_in_progress_to(&mut self, op: &str, cap: Option<usize>) -> Result<(), LimitError> {
        if cap == Some(0) {
            return Err(LimitError::Number(op.into()));
        }
        *known(&mut self.in_progress, op, "operation with an in-progress cap")? = cap;
        Ok(())
    }
}

fn split(spec: &str) -> Result<(&str, Option<&str>), LimitError> {
    let (name, value) = spec.split_once('=').ok_or_else(|| LimitError::Syntax(spec.into()))?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || value.is_empty() {
        return Err(LimitError::Syntax(spec.into()));
    }
    Ok((name, (value != "off").then_some(value)))
}

fn known<'a, T>(map: &'a mut BTreeMap<String, T>, name: &str, what: &'static str) -> Result<&'a mut T, LimitError> {
    let names = map.keys().cloned().collect::<Vec<_>>().join(", ");
    map.get_mut(name).ok_or(LimitError::Unknown {
        given: name.into(),
        what,
        known: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_and_overridden() {
        let mut l = crate::aws::published_limits();
        assert_eq!(l.rate("sso-admin"), Some(20.0));
        assert_eq!(l.in_progress("CreateAccountAssignment"), Some(15));
        assert_eq!(l.in_progress("CreateAccount"), Some(5));
        l.set_rate("sso-admin=5").expect("set");
        assert_eq!(l.rate("sso-admin"), Some(5.0));
        l.set_rate("organizations=off").expect("off");
        assert_eq!(l.rate("organizations"), None);
        l.set_in_progress("CreateAccount=2").expect("cap");
        assert_eq!(l.in_progress("CreateAccount"), Some(2));
        assert!(matches!(l.set_rate("ec2=5"), Err(LimitError::Unknown { .. })));
        assert_eq!(l.set_rate("sso-admin"), Err(LimitError::Syntax("sso-admin".into())));
        assert_eq!(l.set_rate("sso-admin=0"), Err(LimitError::Number("sso-admin=0".into())));
        assert_eq!(
            l.set_rate("sso-admin=NaN"),
            Err(LimitError::Number("sso-admin=NaN".into()))
        );
    }
}
