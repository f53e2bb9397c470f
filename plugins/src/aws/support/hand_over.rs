//! The hand-over: where the account cannot use the Support API, the case text and a prefilled
//! console link go to the operator, in a private file of the state directory.

use super::{CONSOLE_LINK, Case, EnsureCaseParams, Found, Refusal, case_body};
use crate::context::{Context, Event};
use crate::error::PluginError;

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(60).collect()
}

/// Writes `text` to `path` readable by the owner only (0600), replacing it atomically and never
/// following a symlink planted at the temporary name.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".support-case")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes the case text where the operator can copy it into the console form.
pub(super) fn hand_over(
    ctx: &Context,
    p: &EnsureCaseParams,
    why: &Refusal,
    follows: Option<&Found>,
) -> Result<Case, PluginError> {
    let dir = ctx.state_dir();
    std::fs::create_dir_all(dir).map_err(|e| PluginError::Other(format!("{}: {e}", dir.display())))?;
    // Secrets stay out of the file's text and of its name (which is printed and journaled).
    let name = match slug(&ctx.redact(&p.subject)) {
        s if s.is_empty() => "case".to_string(),
        s => s,
    };
    let path = dir.join(format!("support-case-{name}.md"));
    let text = ctx.redact(&format!(
        "# Support case to open by hand\n\n{}\n\nOpen the AWS Support console's form, prefilled for an activation case:\n\n{CONSOLE_LINK}\n\n- Type: Account and billing\n- Service: Account ({})\n- Category: Activation ({})\n- Severity: {}\n- Contact method: Chat (or Web)\n- CC: {}\n{}\n## Subject\n\n{}\n\n## Description\n\n{}\n",
        why.explain(),
        p.service_code,
        p.category_code,
        p.severity,
        if p.cc.is_empty() {
            "-".to_string()
        } else {
            p.cc.join(", ")
        },
        match &p.account_id {
            Some(a) => format!("- The account: {a} (sign in to it before you open the form)\n"),
            None => String::new(),
        },
        p.subject,
        case_body(p, follows)
    ));
    write_private(&path, &text).map_err(|e| PluginError::Other(format!("{}: {e}", path.display())))?;
    ctx.emit(Event::Note {
        message: ctx.redact(&format!(
            "{}\n  open the case at {CONSOLE_LINK}\n  the case text is in {}",
            why.explain(),
            path.display()
        )),
    })?;
    Ok(Case {
        case_id: String::new(),
        display_id: String::new(),
        status: "handed-over".into(),
        created: false,
        follows_up: follows.map(|f| f.id.clone()).unwrap_or_default(),
        handed_over: true,
        reason: why.word().into(),
        console_link: CONSOLE_LINK.into(),
        handover_file: path.display().to_string(),
    })
}
