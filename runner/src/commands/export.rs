//! `runbook export --ssm`: the runbook as an AWS Systems Manager Automation document.

use std::io::Write;
use std::path::Path;

use runbook_plugins::Registry;

use super::error::CommandError;
use super::{out, plural};
use crate::cli::{ExportArgs, ExportFormat};
use crate::diagnostic::report;
use crate::{analyzer, load};

pub(super) fn export(args: &ExportArgs, color: bool) -> Result<(), CommandError> {
    let source = load::read(&args.file).map_err(|d| {
        report(&[d], color);
        CommandError::Diagnosed
    })?;
    let (runbook, diags) = analyzer::check(&source, Registry::shared());
    if report(&diags, color) {
        return Err(CommandError::Usage(format!(
            "{} has errors; fix them before exporting (see `runbook check`); nothing written",
            args.file.display()
        )));
    }
    let opts = crate::export::Options {
        json: args.format == ExportFormat::Json,
        skip: args.skip.clone(),
        strict: args.strict,
        approval_topic: args.approval_topic,
    };
    let exported = match crate::export::export(&source, &runbook, Registry::shared(), &opts) {
        Ok(e) => e,
        Err(diags) => {
            report(&diags, color);
            return Err(CommandError::Usage(format!(
                "{} cannot be exported to SSM Automation as it is; nothing written",
                args.file.display()
            )));
        }
    };
    report(&exported.notes, color);
    if opts.json {
        eprintln!(
            "note: AWS's schema says inline `Script` is not supported in JSON documents; YAML (the default) is the safe form"
        );
    }
    match &args.out {
        Some(path) => write(path, &exported.text)?,
        None => out(&exported.text),
    }
    let steps = match exported.doc.get("mainSteps") {
        Some(crate::export::Node::List(l)) => l.len(),
        _ => 0,
    };
    eprintln!(
        "exported {} as an Automation document: {steps} step{}, {} note{}{}",
        crate::text::sanitize(&args.file.display().to_string()),
        plural(steps),
        exported.notes.len(),
        plural(exported.notes.len()),
        args.out
            .as_ref()
            .map(|p| format!(", written to {}", crate::text::sanitize(&p.display().to_string())))
            .unwrap_or_default()
    );
    Ok(())
}

/// Writes the whole document or nothing: a temporary file beside it, renamed over it.
fn write(path: &Path, text: &str) -> Result<(), CommandError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| CommandError::Usage(format!("cannot write {}: {e}", path.display()));
    // A link planted on the way (`out` pointing elsewhere, `-o out/doc.yaml`) must not move the
    // write; a link at the name itself is replaced by the rename, never followed.
    if let Some(link) = crate::paths::first_link(dir) {
        return Err(CommandError::Usage(format!(
            "cannot write {}: it passes through {}, a symbolic link; the tool never writes through one (name the real directory)",
            path.display(),
            link.display()
        )));
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
