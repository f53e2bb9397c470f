//! Reference pages generated from the code: the CLI from clap, the plugins from the registry.
//! Neither is written by hand, so neither can drift.

use std::fmt::Write as _;

use clap::CommandFactory;
use runbook_plugins::Registry;
use serde_json::Value;

use crate::cli::Cli;

/// One section per subcommand, each with its full `--help`.
pub fn cli_reference() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let mut o = String::from(
        "# Command-line reference\n\nGenerated from `runbook --help`; every subcommand's help follows.\n\n```text\n",
    );
    let _ = writeln!(o, "{}\n```\n", cmd.render_long_help().to_string().trim_end());
    for sub in cmd.get_subcommands_mut() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = sub.get_name().to_string();
        let help = sub.render_long_help().to_string();
        let _ = writeln!(o, "## runbook {name}\n\n```text\n{}\n```\n", help.trim_end());
    }
    o
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Every registered action: what it does, its parameters and outputs, and the AWS CLI it replaces.
pub fn plugin_reference(registry: &Registry) -> String {
    let mut o = String::from(
        "# Plugin reference\n\nGenerated from the plugin registry. A step names an action after its executor word \
(```` ```aws organizations.ensure-account ````, ```` ```net check-reachable ````) and sets its parameters \
as TOML in the block's body. Any string value may use `${...}`; a later step reads an action's outputs as \
`${steps.ID.FIELD}`.\n\n",
    );
    for a in registry.iter() {
        let info = a.info();
        let (word, name) = match info.name.strip_prefix("net.") {
            Some(n) => ("net", n),
            None => ("aws", info.name),
        };
        let _ = writeln!(o, "## {}\n\n`{word} {name}`: {}\n", info.name, info.summary);
        let _ = writeln!(
            o,
            "{}\n",
            if info.mutates {
                "**Changes AWS** (the runbook's guard is checked first; it looks before it acts)."
            } else {
                "**Read-only.**"
            }
        );
        if !info.converges.is_empty() {
            let _ = writeln!(o, "**Whose it is, and all of it.** {}\n", info.converges);
        }
        if info.params.is_empty() {
            o.push_str("No parameters.\n\n");
        } else {
            o.push_str("| parameter | type | required / default | meaning |\n|---|---|---|---|\n");
            for f in &info.params {
                let req = match (&f.default, f.required) {
                    (Some(d), _) => format!("default `{}`", d_text(d)),
                    (None, true) => "required".into(),
                    (None, false) => "optional".into(),
                };
                let _ = writeln!(o, "| `{}` | {} | {} | {} |", f.name, cell(&f.ty), req, cell(&f.doc));
            }
            o.push('\n');
        }
        if !info.outputs.is_empty() {
            o.push_str("| output | type | meaning |\n|---|---|---|\n");
            for f in &info.outputs {
                let _ = writeln!(o, "| `{}` | {} | {} |", f.name, cell(&f.ty), cell(&f.doc));
            }
            o.push('\n');
        }
        if !info.calls.is_empty() {
            let iam = runbook_plugins::permissions::iam_actions_of(info.calls).unwrap_or_default();
            let listed: Vec<String> = iam.iter().map(|a| format!("`{a}`")).collect();
            let _ = writeln!(
                o,
                "**IAM permissions** (what `runbook permissions` puts in the policy): {}\n",
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.join(", ")
                }
            );
        }
        let cli = a.cli(&Value::Object(Default::default()));
        if !cli.is_empty() {
            let _ = writeln!(o, "By hand:\n\n```bash\n{}\n```\n", cli.join("\n"));
        }
    }
    let _ = writeln!(
        o,
        "## Any operation by its API name\n\n{}\n",
        crate::analyzer::CALL_RULES
    );
    // From the models' index: listing every service opens none of them.
    o.push_str("| service | protocol | operations | region | API reference |\n|---|---|---|---|---|\n");
    for s in runbook_plugins::call::catalog() {
        let region = match s.global {
            Some(r) => format!("global ({r})"),
            None => "the step's".into(),
        };
        let link = if s.uid.is_empty() {
            String::new()
        } else {
            format!("[{}]({})", s.uid, runbook_plugins::call::api_reference(s.uid, None))
        };
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {region} | {link} |",
            s.name, s.protocol, s.operations
        );
    }
    o.push_str("\n`runbook actions SERVICE` lists a service's operations; `runbook actions SERVICE:Operation` shows its request and response members and its API reference page, `https://docs.aws.amazon.com/goto/WebAPI/UID/Operation` (each call step's card links it too).\n");
    o
}

fn d_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
