//! `runbook answers`: a commented answers-file template (inputs, manual steps and their questions).

use runbook_plugins::Registry;

use super::error::CommandError;
use crate::diagnostic::report;
use crate::{analyzer, load};

/// TOML text for a string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `runbook answers FILE`: a commented answers file to fill in.
pub(super) fn answers_template(file: &std::path::Path, color: bool) -> Result<(), CommandError> {
    let source = match load::read(file) {
        Ok(s) => s,
        Err(d) => {
            report(&[d], color);
            return Err(CommandError::Diagnosed);
        }
    };
    let (rb, diags) = analyzer::check(&source, Registry::shared());
    if report(&diags, color) {
        return Err(CommandError::Diagnosed);
    }
    let clean = |s: &str| crate::text::sanitize(s).replace('\n', " ");
    let mut o = String::new();
    o.push_str(&format!(
        "# Answers for \"{}\" ({}), made by `runbook answers`.\n",
        clean(&rb.title),
        clean(&rb.path)
    ));
    o.push_str(&format!(
        "# Fill it in, then: runbook run {} --answers THIS-FILE\n# A commented-out value is not given: the run asks for it (or waits, exit 3).\n\n",
        clean(&rb.path)
    ));
    let describe = |o: &mut String, i: &crate::model::Input| {
        if let Some(p) = &i.prompt {
            o.push_str(&format!("# {}\n", clean(p)));
        }
        if let Some(h) = &i.help {
            o.push_str(&format!("# {}\n", clean(h)));
        }
        if let Some(c) = &i.choices {
            o.push_str(&format!("# one of: {}\n", clean(&c.join(", "))));
        }
        if let Some(p) = &i.pattern {
            o.push_str(&format!("# must match: {}\n", clean(p)));
        }
    };
    let value_line = |o: &mut String, name: &str, i: &crate::model::Input| {
        let key = toml::Value::String(name.to_string()).to_string();
        let key = if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            name.to_string()
        } else {
            key
        };
        if i.secret {
            o.push_str(&format!(
                "# secret: not kept in files; give it as {}=... or at the prompt\n# {key} = \"\"\n",
                crate::inputs::env_var(name)
            ));
        } else {
            match &i.default {
                Some(d) => o.push_str(&format!("{key} = {}\n", toml_str(d))),
                None => o.push_str(&format!("# {key} = \"\"\n")),
            }
        }
    };
    let mut inputs: Vec<(&String, &crate::model::Input)> = rb.settings.inputs.iter().collect();
    inputs.sort_by_key(|(_, i)| i.span.start);
    o.push_str("[inputs]\n");
    for (name, i) in inputs {
        describe(&mut o, i);
        value_line(&mut o, name, i);
        o.push('\n');
    }
    for step in rb
        .steps
        .iter()
        .filter(|s| matches!(s.executor, crate::model::Executor::Manual))
    {
        let Some(m) = crate::manual::parse(&source, step, &mut Vec::new()) else {
            continue;
        };
        o.push_str(&format!("[steps.{}]\n", step.id));
        if let Some(c) = &m.confirm {
            o.push_str(&format!("# {}\n", clean(c)));
        }
        o.push_str("confirm = false\n");
        for (name, i) in &m.ask {
            describe(&mut o, i);
            value_line(&mut o, name, i);
        }
        o.push('\n');
    }
    let _ = crate::ui::print_out(o.trim_end());
    Ok(())
}
