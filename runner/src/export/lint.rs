//! What AWS's published schema does not check, checked on every export before it is written:
//! step names (`^[A-Za-z0-9_]{3,128}$`, unique), branch and `onFailure` targets that exist, every
//! `{{ ref }}` naming a parameter, an Automation variable or an output of an earlier step,
//! `InputPayload` values that are one reference each, approvals with approvers and a message
//! of at most 4,096 characters. A finding is the exporter's mistake, not the runbook's: it is
//! reported against the whole file, and nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use super::steps::MAX_MESSAGE;
use super::{Lower, Node};

pub fn lint(doc: &Node, x: &mut Lower) {
    let mut problems = Vec::new();
    let params: BTreeSet<String> = match doc.get("parameters") {
        Some(Node::Map(m)) => m.iter().map(|(k, _)| k.clone()).collect(),
        _ => BTreeSet::new(),
    };
    let steps = match doc.get("mainSteps") {
        Some(Node::List(l)) => l.clone(),
        _ => Vec::new(),
    };
    let mut names = BTreeSet::new();
    collect_names(&steps, &mut names, &mut problems);
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    check_steps(&steps, &params, &names, &mut known, None, &mut problems);
    if let Some(Node::List(outs)) = doc.get("outputs") {
        for o in outs {
            if let Some(r) = o.as_str()
                && !resolves(r, &params, &known, None)
            {
                problems.push(format!("document output `{r}` is no step's output"));
            }
        }
    }
    for p in problems {
        x.doc_error(format!(
            "the exported document would be invalid: {p} (a bug in the exporter; please report it)"
        ));
    }
}

fn collect_names(steps: &[Node], names: &mut BTreeSet<String>, problems: &mut Vec<String>) {
    for s in steps {
        let name = s.get("name").and_then(Node::as_str).unwrap_or("");
        let ok = (3..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            problems.push(format!(
                "step name `{name}` is not 3-128 letters, digits or underscores"
            ));
        }
        if !names.insert(name.to_string()) {
            problems.push(format!("two steps are named `{name}`"));
        }
        if let Some(Node::List(body)) = s.get("inputs").and_then(|i| i.get("Steps")) {
            collect_names(body, names, problems);
        }
    }
}

/// Every `{{ ... }}` in a string.
pub fn refs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(a) = rest.find("{{") {
        let Some(b) = rest[a..].find("}}") else { break };
        out.push(rest[a + 2..a + b].trim().to_string());
        rest = &rest[a + b + 2..];
    }
    out
}

fn resolves(r: &str, params: &BTreeSet<String>, known: &BTreeMap<String, BTreeSet<String>>, lp: Option<&str>) -> bool {
    if params.contains(r) || r.starts_with("global:") || r.starts_with("automation:") {
        return true;
    }
    match r.split_once('.') {
        Some((step, out)) => {
            known.get(step).is_some_and(|o| o.contains(out))
                || lp.is_some_and(|l| l == step && matches!(out, "CurrentIteratorValue" | "CurrentIteration"))
        }
        None => false,
    }
}

fn check_steps(
    steps: &[Node],
    params: &BTreeSet<String>,
    names: &BTreeSet<String>,
    known: &mut BTreeMap<String, BTreeSet<String>>,
    lp: Option<&str>,
    problems: &mut Vec<String>,
) {
    for s in steps {
        let name = s.get("name").and_then(Node::as_str).unwrap_or("").to_string();
        let action = s.get("action").and_then(Node::as_str).unwrap_or("");
        let inputs = s.get("inputs").cloned().unwrap_or(Node::map());
        let target = |t: &str, problems: &mut Vec<String>| {
            if !names.contains(t) {
                problems.push(format!("step `{name}` goes to `{t}`, which is no step"));
            }
        };
        if let Some(t) = s
            .get("onFailure")
            .and_then(Node::as_str)
            .and_then(|t| t.strip_prefix("step:"))
        {
            target(t, problems);
        }
        if let Some(t) = s.get("nextStep").and_then(Node::as_str) {
            target(t, problems);
        }
        if action == "aws:branch" {
            if let Some(Node::List(cs)) = inputs.get("Choices") {
                for c in cs {
                    match c.get("NextStep").and_then(Node::as_str) {
                        Some(t) => target(t, problems),
                        None => problems.push(format!("a choice of `{name}` has no NextStep")),
                    }
                    let ops = ["StringEquals", "BooleanEquals", "NumericEquals", "And", "Or", "Not"];
                    if !ops.iter().any(|o| c.get(o).is_some()) {
                        problems.push(format!("a choice of `{name}` has no operator"));
                    }
                }
            }
            if let Some(t) = inputs.get("Default").and_then(Node::as_str) {
                target(t, problems);
            }
        }
        if action == "aws:approve" {
            if inputs.get("Approvers").is_none() {
                problems.push(format!("approval `{name}` has no Approvers"));
            }
            if let Some(m) = inputs.get("Message").and_then(Node::as_str)
                && m.chars().count() > MAX_MESSAGE
            {
                problems.push(format!("approval `{name}` has a message over {MAX_MESSAGE} characters"));
            }
        }
        if let Some(Node::Map(p)) = inputs.get("InputPayload") {
            for (k, v) in p {
                let ok = v.as_str().is_some_and(|v| {
                    let t = v.trim();
                    t.starts_with("{{") && t.ends_with("}}") && refs(t).len() == 1
                });
                if !ok {
                    problems.push(format!(
                        "`{name}` passes `{k}` as something other than one {{{{ reference }}}}"
                    ));
                }
            }
        }
        let mut strings = Vec::new();
        let shallow = match &inputs {
            Node::Map(m) => Node::Map(
                m.iter()
                    .filter(|(k, _)| k != "Steps" && k != "Script")
                    .cloned()
                    .collect(),
            ),
            other => other.clone(),
        };
        shallow.strings("inputs", &mut strings);
        for (_, text) in strings {
            for r in refs(text) {
                if !resolves(&r, params, known, lp) {
                    problems.push(format!(
                        "`{name}` reads `{{{{ {r} }}}}`, which no parameter, variable or earlier step output is"
                    ));
                }
            }
        }
        if let Some(Node::List(body)) = inputs.get("Steps") {
            check_steps(body, params, names, known, Some(&name), problems);
        }
        let outs: BTreeSet<String> = match s.get("outputs") {
            Some(Node::List(o)) => o
                .iter()
                .filter_map(|o| o.get("Name").and_then(Node::as_str))
                .map(String::from)
                .collect(),
            _ => BTreeSet::new(),
        };
        known.insert(name, outs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_reference() {
        assert_eq!(refs("a {{ X }} b {{y.z}}"), vec!["X".to_string(), "y.z".to_string()]);
        assert!(refs("no refs {{ open").is_empty());
    }
}
