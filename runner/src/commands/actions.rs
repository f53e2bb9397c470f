//! `runbook actions [NAME]`: what a step can do, in the terminal. The built-in actions from the
//! registry, and the generic call (`aws SERVICE:Operation`) with its rules; with a name, one
//! action's parameters and outputs, or one operation's request and response members.

use std::fmt::Write as _;

use runbook_plugins::Registry;
use runbook_plugins::call::{self, NameError};

use super::CommandError;
use crate::analyzer::CALL_RULES;

pub fn run(name: Option<&str>) -> Result<(), CommandError> {
    let registry = Registry::shared();
    let text = match name {
        None => overview(registry),
        Some(n) if call::is_call(n) => operation(n).map_err(CommandError::Usage)?,
        Some(n) => match registry.get(n).or_else(|| registry.get(&format!("net.{n}"))) {
            Some(a) => action(a.info()),
            None if call::service(n).is_some() => service(n),
            None => {
                let names = registry.names();
                let hint = crate::suggest::closest(n, &names)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                return Err(CommandError::Usage(format!(
                    "no action `{n}`{hint} (`runbook actions` lists them)"
                )));
            }
        },
    };
    // A closed pipe (`runbook actions | head`) is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(())
}

fn overview(registry: &Registry) -> String {
    let mut o = String::from("Built-in actions (`aws SERVICE.ACTION`, `net ACTION`):\n\n");
    for a in registry.iter() {
        let i = a.info();
        let _ = writeln!(
            o,
            "  {:<40} {:<8} {}",
            i.name,
            if i.mutates { "changes" } else { "reads" },
            i.summary
        );
    }
    let _ = writeln!(
        o,
        "\nAny operation by its API name (`aws SERVICE:Operation`):\n\n  {CALL_RULES}\n"
    );
    let names: Vec<&str> = call::service_names();
    let mut lines = String::new();
    for chunk in names.chunks(6) {
        let _ = writeln!(
            lines,
            "    {}",
            chunk.iter().map(|n| format!("{n:<24}")).collect::<String>().trim_end()
        );
    }
    let _ = writeln!(
        o,
        "  {} services:\n{lines}\n`runbook actions NAME` shows an action's parameters, `runbook actions SERVICE` its operations,\n`runbook actions SERVICE:Operation` an operation's request and response members.",
        names.len()
    );
    o
}

fn action(i: &runbook_plugins::ActionInfo) -> String {
    let mut o = format!(
        "{} ({})\n  {}\n\nparameters:\n",
        i.name,
        if i.mutates { "changes AWS" } else { "read-only" },
        i.summary
    );
    for f in &i.params {
        let req = match (&f.default, f.required) {
            (Some(d), _) => format!("default {d}"),
            (None, true) => "required".into(),
            (None, false) => "optional".into(),
        };
        let _ = writeln!(o, "  {:<22} {:<22} {:<18} {}", f.name, f.ty, req, f.doc);
    }
    o.push_str("\noutputs:\n");
    for f in &i.outputs {
        let _ = writeln!(o, "  {:<22} {:<22} {}", f.name, f.ty, f.doc);
    }
    o.push_str(&calls_of(i.calls));
    o
}

/// An action's AWS calls and the IAM actions they need (what `runbook permissions` sums).
fn calls_of(calls: &[&str]) -> String {
    if calls.is_empty() {
        return "\nAWS calls: none\n".into();
    }
    let mut o = String::from("\nAWS calls (IAM actions; `runbook permissions FILE` sums them for a runbook):\n");
    for c in calls {
        let iam = match runbook_plugins::permissions::iam_actions(c) {
            Ok(a) if a.is_empty() => "needs no permission".to_string(),
            Ok(a) => a.join(", "),
            Err(e) => e.to_string(),
        };
        let _ = writeln!(o, "  {c:<56} {iam}");
    }
    o
}

fn service(name: &str) -> String {
    let Some(s) = call::service(name) else {
        return String::new();
    };
    let whole = if s.metadata.service_full_name.is_empty() {
        String::new()
    } else {
        format!("{}; ", s.metadata.service_full_name)
    };
    let mut o = format!(
        "{name} ({whole}{} protocol, {})\n",
        s.metadata.protocol, s.metadata.source
    );
    if let Some(g) = &s.metadata.global {
        let _ = writeln!(
            o,
            "global: answers at {} (signed for {}) whatever the region",
            g.host, g.region
        );
    }
    o.push('\n');
    for op in s.operations.keys() {
        let kind = match call::resolve(&format!("{name}:{op}")) {
            Ok(c) if c.refusal().is_some() => "streams: not a step",
            Ok(c) if c.reads() => "reads",
            _ => "changes",
        };
        let _ = writeln!(o, "  aws {name}:{op:<50} {kind}");
    }
    o
}

fn operation(name: &str) -> Result<String, String> {
    let c = call::resolve(name).map_err(|e| match &e {
        NameError::UnknownOperation {
            operation, candidates, ..
        } => match crate::suggest::closest(operation, candidates) {
            Some(s) => format!("{e}; did you mean `{s}`?"),
            None => e.to_string(),
        },
        _ => e.to_string(),
    })?;
    let mut o = format!(
        "aws {} ({}; by hand: {})\n",
        c.full_name(),
        if c.reads() { "reads" } else { "changes AWS" },
        c.cli()
    );
    if let Some(url) = c.api_reference() {
        let _ = writeln!(o, "API reference: {url}");
    }
    if let Some(why) = c.refusal() {
        let _ = writeln!(o, "cannot be a step: {why}");
    }
    if let Ok(iam) = runbook_plugins::permissions::iam_actions(name) {
        let needs = if iam.is_empty() {
            "none (AWS authorises it for anyone)".to_string()
        } else {
            iam.join(", ")
        };
        let _ = writeln!(o, "IAM permission: {needs}");
    }
    let secret = c.sensitive_outputs();
    if !secret.is_empty() {
        let _ = writeln!(o, "sensitive in the answer (the model says so): {}", secret.join(", "));
    }
    o.push_str("\nrequest members:\n");
    let members = |shape: Option<&call::Shape>, o: &mut String, required: bool| {
        let Some(shape) = shape else {
            o.push_str("  (none)\n");
            return;
        };
        for (m, r) in &shape.members {
            let ty = c.service.shape(&r.shape).map(|s| s.describe()).unwrap_or_default();
            let req = if required && shape.required.contains(m) {
                "required"
            } else {
                ""
            };
            let _ = writeln!(o, "  {m:<32} {ty:<40} {req}");
        }
    };
    members(c.input(), &mut o, true);
    o.push_str("\nresponse members (steps.ID.NAME):\n");
    members(c.output(), &mut o, false);
    Ok(o)
}
