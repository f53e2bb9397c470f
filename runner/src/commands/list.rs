//! `runbook list`: the runbooks and their steps, for people or (`--json`) tools.

use super::*;

pub(super) fn list(paths: &[PathBuf], json: bool, color: bool) -> Result<(), CommandError> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("runbooks")]
    } else {
        paths.to_vec()
    };
    let (mut books, diags) = analyse(&paths);
    let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.is_error()).collect();
    // A secret's default is written in the runbook (check warns), but never printed.
    for b in &mut books {
        for i in b.settings.inputs.values_mut().filter(|i| i.secret) {
            if i.default.is_some() {
                i.default = Some(crate::redact::MASK.into());
            }
        }
    }
    if json {
        let _ = crate::ui::print_out(&serde_json::to_string_pretty(&books).unwrap_or_else(|_| "[]".into()));
    } else {
        let mut out = std::io::stdout().lock();
        for b in &books {
            let _ = writeln!(
                out,
                "{}  {}",
                crate::ui::sanitize(&b.path),
                crate::ui::sanitize(&b.title)
            );
            if !b.settings.inputs.is_empty() {
                let names: Vec<&str> = b.settings.inputs.keys().map(String::as_str).collect();
                let _ = writeln!(out, "  inputs: {}", crate::ui::sanitize(&names.join(", ")));
            }
            for s in &b.steps {
                let what = match s.executor.written() {
                    Some(written) => format!("{} {written}", s.executor.word()),
                    None => s.executor.word().to_string(),
                };
                let _ = writeln!(out, "  {:>5}  {:<32} {}", s.line, s.id, crate::ui::sanitize(&what));
            }
        }
    }
    report(&errors, color);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Diagnosed)
    }
}
