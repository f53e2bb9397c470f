//! Script steps: `aws:executeScript` with the prelude's helpers the script calls, and the
//! guard, the first step, which checks the account and region as `[guard]` says.

use super::rhai2py::py_str;
use super::steps::flush;
use super::values::{self, PyScope};
use super::{AStep, Group, Lower, Node, Outs};

/// Helpers every script may call (`py/prelude.py`), blocks separated by two blank lines; a
/// script takes those it calls.
pub const PRELUDE: &str = include_str!("py/prelude.py");

/// An `aws:executeScript` step: the prelude's helpers it uses, `defs`, and `handler` with `body`.
pub fn script(name: &str, scope: &mut PyScope, defs: &str, body: &str, outputs: Outs) -> AStep {
    let code = format!("{defs}{body}");
    // The prelude's helpers this script calls, and those they call, in the prelude's order.
    let blocks: Vec<(&str, &str)> = PRELUDE
        .split("\n\n\n")
        .filter_map(|b| {
            let b = b.trim();
            b.strip_prefix("def ")
                .and_then(|d| d.split('(').next())
                .map(|name| (name, b))
        })
        .collect();
    let mut used = vec![false; blocks.len()];
    let mut need = code.clone();
    loop {
        let mut more = false;
        for (i, (name, block)) in blocks.iter().enumerate() {
            if !used[i] && need.contains(&format!("{name}(")) {
                used[i] = true;
                need.push_str(block);
                more = true;
            }
        }
        if !more {
            break;
        }
    }
    let mut text = String::new();
    for (i, (_, block)) in blocks.iter().enumerate() {
        if used[i] {
            text.push_str(block);
            text.push_str("\n\n");
        }
    }
    if need.contains("_client(") || need.contains("boto3.") || need.contains("botocore.") {
        text = format!(
            "import boto3\nimport botocore\nimport botocore.exceptions\nfrom botocore.config import Config\n\n{text}"
        );
    }
    if code.contains("time.") {
        text = format!("import time\n{text}");
    }
    if code.contains("json.") {
        text = format!("import json\n{text}");
    }
    text.push_str(defs);
    text.push_str("def handler(events, context):\n");
    text.push_str(body);
    let mut inputs = Node::map()
        .with("Runtime", Node::s("python3.11"))
        .with("Handler", Node::s("handler"))
        .with("Script", Node::s(text));
    if !scope.payload.is_empty() {
        inputs.set(
            "InputPayload",
            Node::Map(scope.payload.iter().map(|(k, v)| (k.clone(), Node::s(v))).collect()),
        );
    }
    let mut s = AStep::new(name, "aws:executeScript", inputs);
    s.outputs = outputs;
    s
}

/// The guard: the first step checks the account (and region) as `[guard]` says before anything
/// else runs.
pub fn guard(x: &mut Lower) {
    let g = x.rb.settings.guard.clone().unwrap_or(crate::model::Guard {
        account: None,
        region: None,
    });
    // Every regional step in one region named by an input: the execution must run there.
    let mut regions = std::collections::BTreeSet::new();
    for s in x.rb.steps.iter().filter(|s| x.included(s)) {
        if let Ok(t) = toml::from_str::<toml::Table>(&s.body)
            && let Some(toml::Value::String(r)) = t.get("region")
        {
            regions.insert(r.clone());
        }
    }
    let region_code = g
        .region
        .clone()
        .or_else(|| (regions.len() == 1).then(|| regions.iter().next().cloned()).flatten());
    let account = g.account.clone().filter(|a| a != "any");
    if account.is_none() && region_code.is_none() {
        return;
    }
    let name = if x.taken.contains("guard") {
        x.helper("runbook", "guard")
    } else {
        "guard".to_string()
    };
    x.taken.insert(name.clone());
    let anchor = x.rb.settings.span.unwrap_or_default();
    let step = x.rb.steps.first().cloned();
    let mut scope = PyScope::new(x, None);
    let mut body = String::new();
    body.push_str("    me = _client(\"sts\").get_caller_identity()[\"Account\"]\n");
    match account.as_deref() {
        Some("management") => body.push_str("    org = _organization()\n    if org is not None and org[\"MasterAccountId\"] != me:\n        raise Exception(\"this runbook must run in the management account \" + org[\"MasterAccountId\"] + \" of organization \" + org[\"Id\"] + \", not in \" + me)\n"),
        Some(a) => {
            let want = match &step {
                Some(st) => values::string(st, &mut scope, a).py,
                None => py_str(a),
            };
            body.push_str(&format!("    want = {want}\n    if me != want:\n        raise Exception(\"this runbook must run in account \" + want + \", not in \" + me)\n"));
        }
        None => {}
    }
    if let Some(r) = &region_code {
        let want = match &step {
            Some(st) => values::string(st, &mut scope, r).py,
            None => py_str(r),
        };
        scope
            .payload
            .insert("global:REGION".into(), "{{ global:REGION }}".into());
        body.push_str(&format!(
            "    if events[\"global:REGION\"] != {want}:\n        raise Exception(\"start this automation in \" + {want} + \" (the runbook's region), not in \" + events[\"global:REGION\"])\n"
        ));
    }
    body.push_str("    return {\"account_id\": me}\n");
    let mut s = script(
        &name,
        &mut scope,
        "",
        &body,
        Outs::Fixed(vec![("account_id".into(), "$.Payload.account_id".into(), "String")]),
    );
    let errs = scope.take_errors();
    flush(x, errs);
    if g.region.is_none() {
        x.region_param = region_code.clone();
    }
    s.description = Some(format!(
        "The runbook's guard ({}): checked once, first, since every step of an execution runs as the same role in the same account and region.",
        [
            account.map(|a| format!("account = {a}")),
            region_code.map(|r| format!("region = {r}"))
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    ));
    let _ = anchor;
    x.groups.push(Group { steps: vec![s] });
    x.group_step.push(None);
}
