//! `runbook plan`: what a run would do, without changing anything. Steps are walked in order as
//! a run would: conditions are evaluated, scripts run (they compute, nothing else), read-only AWS
//! steps read, so later steps resolve; steps that would change AWS are asked for their plan
//! (Describe/List/Get only), per item for a fan-out; a person's steps say what they will be asked.

use std::time::{Duration, Instant};

use runbook_plugins::{Context, Registry, Verdict};
use serde_json::{Value, json};

use crate::eval::{self, Env};
use crate::interp;
use crate::model::{Executor, Family, Runbook, Step};
use crate::sandbox::{self, Limits};
use crate::source::Source;

/// Items of one fan-out planned one by one; the rest are counted.
const PLANNED_ITEMS: usize = 50;

/// How long a read-only step may read during a plan (a wait-for action would otherwise wait).
const READ_BUDGET: Duration = Duration::from_secs(5);

/// One step of the plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub step: String,
    /// `aws (reads)`, `aws (changes)`, `net (checks)`, `script`, `person`.
    pub kind: String,
    pub action: Option<String>,
    /// `exists`, `would-create`, `would-change`, `check`, `computed`, `person`, `skipped`,
    /// `unknown`, `error`.
    pub verdict: String,
    pub details: Vec<String>,
    /// Items of a fan-out, when it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
}

/// The plan, and what it means for `--detailed-exitcode`.
pub struct Plan {
    pub rows: Vec<Row>,
    /// Something would change (or a person would be asked).
    pub pending: bool,
    /// A step could not be planned.
    pub errors: bool,
}

fn kind(step: &Step, registry: &Registry) -> String {
    match &step.executor {
        Executor::Manual => "person".into(),
        Executor::Rhai => "script".into(),
        Executor::Action {
            family: Family::Net, ..
        } => "net (checks)".into(),
        Executor::Action { .. } if step.executor.call().is_some() => match step.call_mutates() {
            Some(true) => "aws (changes)".into(),
            _ => "aws (reads)".into(),
        },
        Executor::Action { name, .. } => match registry.get(name).map(|a| a.info().mutates) {
            Some(true) => "aws (changes)".into(),
            _ => "aws (reads)".into(),
        },
    }
}

/// Steps this one reads whose outputs the plan does not have.
fn missing(step: &Step, env: &Env) -> Vec<String> {
    // Scripts are code; other bodies hold code only inside `${...}` (in TOML strings).
    let mut code = match &step.executor {
        Executor::Rhai => step.body.clone(),
        _ => match interp::pieces(&step.body) {
            Ok(pieces) => pieces
                .into_iter()
                .filter_map(|p| match p {
                    interp::Piece::Expr { code, .. } => Some(code),
                    interp::Piece::Lit(_) => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(_) => step.body.clone(),
        },
    };
    for a in [&step.attrs.if_, &step.attrs.for_each].into_iter().flatten() {
        code.push('\n');
        code.push_str(&a.value);
    }
    let mut out: Vec<String> = interp::refs(&code)
        .into_iter()
        .filter_map(|r| match r {
            interp::Ref::Step { id, .. } if !env.steps.contains_key(&interp::step_key(&id)) => Some(id),
            _ => None,
        })
        .collect();
    out.dedup();
    out
}

fn verdict_word(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|x| x.as_str().map(String::from))
        .unwrap_or_default()
}

fn summary(v: &Value) -> String {
    let Value::Object(o) = v else {
        return v.to_string();
    };
    o.iter()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .take(4)
        .map(|(k, v)| format!("{k}={}", v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the last run finished this manual step with the same resolved text (instructions,
/// question, the section's prose): a new run would not ask again. Computed by the run's own
/// resolution and digest; a step that reads a secret cannot be told here and is asked.
fn confirmed_before(
    step: &Step,
    source: &Source,
    runbook: &Runbook,
    env: &Env,
    engine: &rhai::Engine,
    last: Option<&crate::journal::State>,
) -> bool {
    use crate::exec::{Digester, Sameness};
    let Some(st) = last.and_then(|s| s.steps.get(&step.id)) else {
        return false;
    };
    if st.status != crate::journal::StepStatus::Done || env.reads_secret(&eval::step_code(step)) {
        return false;
    }
    let Ok((what, _)) = crate::exec::identity::resolution(source, runbook, step, env, None, engine, &Value::Null)
    else {
        return false;
    };
    let info = &source.text[step.info_span.start..step.info_span.end];
    let hash = Digester::new(None).step(info, &step.body, &what, None);
    Digester::compare(&st.hash, &hash, None) == Sameness::Same
}

/// Walks the runbook. `env` holds the resolved inputs (and outputs a run recorded).
/// `last` is the record of the run a new run would continue.
pub async fn walk(
    runbook: &Runbook,
    source: &Source,
    env: &mut Env,
    ctx: &Context,
    registry: &Registry,
    last: Option<&crate::journal::State>,
) -> Plan {
    let mut plan = Plan {
        rows: Vec::new(),
        pending: false,
        errors: false,
    };
    for step in &runbook.steps {
        let row = plan_step(step, (source, runbook, last), env, ctx, registry, &mut plan).await;
        plan.rows.push(row);
    }
    plan
}

async fn plan_step(
    step: &Step,
    (source, runbook, last): (&Source, &Runbook, Option<&crate::journal::State>),
    env: &mut Env,
    ctx: &Context,
    registry: &Registry,
    plan: &mut Plan,
) -> Row {
    let mut row = Row {
        step: step.id.clone(),
        kind: kind(step, registry),
        action: step.executor.action().map(String::from),
        verdict: "unknown".into(),
        details: Vec::new(),
        items: None,
    };
    let mutating = row.kind == "aws (changes)";
    let deps = missing(step, env);
    if !deps.is_empty() {
        row.details.push(format!(
            "depends on {} (known only after a run)",
            deps.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
        ));
        plan.pending |= mutating || matches!(step.executor, Executor::Manual);
        return row;
    }
    let engine = sandbox::engine(Limits::default(), None, None);
    if let Some(cond) = &step.attrs.if_ {
        match env.eval(&engine, &cond.value, None).and_then(|d| eval::truthy(&d)) {
            Ok(true) => {}
            Ok(false) => {
                row.verdict = "skipped".into();
                row.details.push(format!("condition `{}` is false", cond.value));
                env.set_step(&step.id, json!({ "skipped": true }));
                return row;
            }
            Err(e) => {
                row.details.push(format!("`if`: {e}"));
                return row;
            }
        }
    }
    let items: Option<Vec<Value>> = match &step.attrs.for_each {
        None => None,
        Some(list) => match env.eval(&engine, &list.value, None).map(|d| eval::to_json(&d)) {
            Ok(Value::Array(a)) => Some(a),
            Ok(other) => {
                row.verdict = "error".into();
                row.details.push(format!("`for-each` must give a list, got {other}"));
                plan.errors = true;
                return row;
            }
            Err(e) => {
                row.details.push(format!("`for-each`: {e}"));
                return row;
            }
        },
    };
    row.items = items.as_ref().map(Vec::len);
    // No items, nothing to do: not a change a CI gate should wait on.
    if items.as_ref().is_some_and(Vec::is_empty) {
        row.verdict = "skipped".into();
        row.details.push("`for-each` gives no items".into());
        env.set_step(&step.id, json!({ "items": [], "results": [] }));
        return row;
    }
    let each: Vec<Option<&Value>> = match &items {
        Some(v) => v.iter().map(Some).collect(),
        None => vec![None],
    };
    match &step.executor {
        Executor::Manual if items.is_none() && confirmed_before(step, source, runbook, env, &engine, last) => {
            row.verdict = "done".into();
            row.details
                .push("confirmed in the last run, and what the person is shown has not changed".into());
        }
        Executor::Manual => {
            row.verdict = "person".into();
            plan.pending = true;
            let confirm = crate::manual::parse(source, step, &mut Vec::new())
                .and_then(|m| m.confirm)
                .and_then(|c| env.interpolate(&engine, &c, each[0]).ok())
                .and_then(|v| v.as_str().map(String::from));
            row.details.push(match confirm {
                Some(q) => format!("a person is asked: {q}"),
                None => "a person acts and confirms".into(),
            });
        }
        Executor::Rhai => {
            let mut results = Vec::new();
            for item in &each {
                let limits = Limits::default();
                match sandbox::run_script(step.body.clone(), env.scope_for(&step.body, *item), limits, None, None).await
                {
                    Ok(v) => results.push(match v {
                        Value::Object(o) => Value::Object(o),
                        Value::Null => json!({}),
                        other => json!({ "value": other }),
                    }),
                    Err(e) => {
                        row.verdict = "error".into();
                        row.details.push(format!("script: {}", e.message));
                        plan.errors = true;
                        return row;
                    }
                }
            }
            row.verdict = "computed".into();
            let outputs = match &items {
                Some(v) => json!({ "items": v, "results": results }),
                None => results.pop().unwrap_or(Value::Null),
            };
            if env.reads_secret(&step.body) {
                env.set_secret_step(&step.id, outputs);
                row.details.push("outputs derived from a secret".into());
            } else {
                row.details.push(summary(&outputs));
                env.set_step(&step.id, outputs);
            }
        }
        Executor::Action { .. } if step.executor.call().is_some() => {
            plan_call(step, env, ctx, &engine, &items, &each, mutating, &mut row, plan).await;
        }
        Executor::Action { name, .. } => {
            let Some(action) = registry.get(name) else {
                row.verdict = "error".into();
                row.details.push(format!("unknown action {name}"));
                plan.errors = true;
                return row;
            };
            let mut worst: Option<Verdict> = None;
            let mut results = Vec::new();
            let planned = each.len().min(PLANNED_ITEMS);
            for item in each.iter().take(planned) {
                let params = match eval::toml_body(&step.body).and_then(|b| env.resolve(&engine, &b, *item)) {
                    Ok(p) => p,
                    Err(e) => {
                        row.verdict = "error".into();
                        row.details.push(format!("parameters: {e}"));
                        plan.errors = true;
                        return row;
                    }
                };
                let prefix = item.map(|v| format!("{}: ", eval_key(v))).unwrap_or_default();
                let (ctx, where_) = match placed(step, env, &engine, ctx, *item).await {
                    Ok(p) => p,
                    Err(e) => {
                        row.verdict = "fails".into();
                        row.details.push(format!("{prefix}{e}"));
                        plan.pending = true;
                        return row;
                    }
                };
                if !where_.is_empty() {
                    row.details.push(format!("{prefix}acts{where_}"));
                }
                if !action.info().mutates {
                    // A read: do it, so later steps see what it found.
                    let ctx = ctx.with_deadline(Some(Instant::now() + READ_BUDGET));
                    match action.apply(&ctx, params).await {
                        Ok(out) => {
                            worst = worst.or(Some(Verdict::Check));
                            if items.is_none() {
                                row.details.push(summary(&out));
                            }
                            results.push(out);
                        }
                        Err(e) => {
                            row.verdict = "fails".into();
                            row.details.push(e.to_string());
                            plan.pending = true;
                            return row;
                        }
                    }
                    continue;
                }
                match action.plan(&ctx, params).await {
                    Ok(p) => {
                        for i in p.items {
                            worst = Some(match worst {
                                Some(w) if rank(w) >= rank(i.verdict) => w,
                                _ => i.verdict,
                            });
                            row.details
                                .push(format!("{prefix}{}: {}", verdict_word(i.verdict), i.what));
                        }
                    }
                    Err(e) => {
                        row.verdict = "error".into();
                        row.details.push(e.to_string());
                        plan.errors = true;
                        return row;
                    }
                }
            }
            if each.len() > planned {
                row.details
                    .push(format!("and {} more items, planned at run time", each.len() - planned));
                worst = Some(Verdict::Unknown);
            }
            row.verdict = worst.map(verdict_word).unwrap_or_else(|| "check".into());
            if mutating && !matches!(worst, Some(Verdict::Exists) | None) {
                plan.pending = true;
            }
            if !mutating && results.len() == each.len() {
                let outputs = match &items {
                    Some(v) => json!({ "items": v, "results": results }),
                    None => results.pop().unwrap_or(Value::Null),
                };
                env.set_step(&step.id, outputs);
            }
        }
    }
    row
}

/// A step's context in its `account=`/`region=` for one item (the role assumed, as a run
/// would), and the words that say where: " in account 111122223333 (Role), region eu-west-1".
async fn placed(
    step: &Step,
    env: &Env,
    engine: &rhai::Engine,
    ctx: &Context,
    item: Option<&Value>,
) -> Result<(Context, String), String> {
    match crate::placement::resolve(step, env, engine, item) {
        Ok(None) => Ok((ctx.clone(), String::new())),
        Ok(Some(p)) => match ctx.elsewhere(&p).await {
            Ok(c) => Ok((c, format!(" in {}", p.describe()))),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(format!("account/region: {e}")),
    }
}

/// A generic call: a read is made (so later steps resolve); a change is shown, never sent.
#[allow(clippy::too_many_arguments)]
async fn plan_call(
    step: &Step,
    env: &mut Env,
    ctx: &Context,
    engine: &rhai::Engine,
    items: &Option<Vec<Value>>,
    each: &[Option<&Value>],
    mutating: bool,
    row: &mut Row,
    plan: &mut Plan,
) {
    let name = step.executor.call().unwrap_or_default();
    let c = match runbook_plugins::call::resolve(name) {
        Ok(c) => c,
        Err(e) => {
            row.verdict = "error".into();
            row.details.push(e.to_string());
            plan.errors = true;
            return;
        }
    };
    let planned = each.len().min(PLANNED_ITEMS);
    let mut results = Vec::new();
    for item in each.iter().take(planned) {
        let params = match eval::toml_body(&step.body).and_then(|b| env.resolve(engine, &b, *item)) {
            Ok(p) => p,
            Err(e) => {
                row.verdict = "error".into();
                row.details.push(format!("parameters: {e}"));
                plan.errors = true;
                return;
            }
        };
        let prefix = item.map(|v| format!("{}: ", eval_key(v))).unwrap_or_default();
        let (ctx, where_) = match placed(step, env, engine, ctx, *item).await {
            Ok(p) => p,
            Err(e) => {
                row.verdict = "fails".into();
                row.details.push(format!("{prefix}{e}"));
                plan.pending = true;
                return;
            }
        };
        if mutating {
            if let Err(e) = c.validate(&params) {
                row.verdict = "error".into();
                row.details.push(format!("{prefix}{e}"));
                plan.errors = true;
                return;
            }
            row.details
                .push(format!("{prefix}would call {} {params}{where_}", c.full_name()));
            continue;
        }
        let ctx = ctx.with_deadline(Some(Instant::now() + READ_BUDGET));
        match runbook_plugins::call::invoke(&ctx, c, params, runbook_plugins::call::Options::default()).await {
            Ok(out) => {
                if items.is_none() {
                    row.details.push(summary(&out));
                }
                results.push(out);
            }
            Err(e) => {
                row.verdict = "fails".into();
                row.details.push(e.to_string());
                plan.pending = true;
                return;
            }
        }
    }
    if each.len() > planned {
        row.details
            .push(format!("and {} more items, planned at run time", each.len() - planned));
    }
    if mutating {
        row.verdict = verdict_word(Verdict::WouldChange);
        plan.pending = true;
        return;
    }
    row.verdict = verdict_word(Verdict::Check);
    if results.len() == each.len() {
        let outputs = match items {
            Some(v) => json!({ "items": v, "results": results }),
            None => results.pop().unwrap_or(Value::Null),
        };
        env.set_step(&step.id, outputs);
    }
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::WouldCreate | Verdict::WouldChange => 3,
        Verdict::Unknown => 2,
        Verdict::Check => 1,
        Verdict::Exists => 0,
    }
}

fn eval_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
