//! Where an aws step acts: its `account=`, `role=` and `region=` resolved against the inputs,
//! earlier outputs and the fan-out's item, as the executor and `plan` both need it.

use rhai::Engine;
use runbook_plugins::Place;
use serde_json::Value;

use crate::eval::{Env, EvalError};
use crate::model::Step;

/// The step's place for this item, or `None` when it acts where the caller is.
pub fn resolve(step: &Step, env: &Env, engine: &Engine, item: Option<&Value>) -> Result<Option<Place>, EvalError> {
    let a = &step.attrs;
    if !a.placed() {
        return Ok(None);
    }
    let text = |attr: &Option<crate::model::Attr>| -> Result<Option<String>, EvalError> {
        let Some(attr) = attr else { return Ok(None) };
        Ok(Some(match env.interpolate(engine, &attr.value, item)? {
            Value::String(s) => s,
            // An account id read as a number from a script or an answer.
            other => other.to_string(),
        }))
    };
    Ok(Some(Place {
        account: text(&a.account)?,
        role: text(&a.role)?,
        region: text(&a.region)?,
    }))
}

/// Where the step acts, as written (`in account ${item.Id} as OrganizationAccountAccessRole, in
/// region eu-west-1`): for the site's card and the plan.
pub fn written(a: &crate::model::Attributes) -> Option<String> {
    let mut at = Vec::new();
    if let Some(acct) = &a.account {
        let role = a
            .role
            .as_ref()
            .map_or(runbook_plugins::DEFAULT_ROLE, |r| r.value.as_str());
        at.push(format!("in account {} as {role}", acct.value));
    }
    if let Some(r) = &a.region {
        at.push(format!("in region {}", r.value));
    }
    (!at.is_empty()).then(|| at.join(", "))
}
