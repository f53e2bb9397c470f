//! `runbook render`: the site, built or served.

use std::io::Write;

use super::error::CommandError;
use super::plural;
use crate::diagnostic::report;

pub(super) fn render(
    book: &std::path::Path,
    runbooks: &std::path::Path,
    out: &std::path::Path,
    serve: Option<&str>,
    color: bool,
) -> Result<(), CommandError> {
    use crate::render::RenderError;
    let started = std::time::Instant::now();
    match crate::render::render(book, runbooks, out) {
        // Names come from the command line and the checkout: no escape sequence of theirs acts.
        Ok(staged) => eprintln!(
            "rendered {} runbook{} into {} in {:.1}s",
            staged.runbooks.len(),
            plural(staged.runbooks.len()),
            crate::text::sanitize(&out.display().to_string()),
            started.elapsed().as_secs_f64()
        ),
        Err(RenderError::Runbooks(dir, diags)) => {
            report(&diags, color);
            return Err(CommandError::Usage(crate::text::sanitize(&format!(
                "not rendered: the runbooks in {dir} have errors"
            ))));
        }
        Err(RenderError::BookToml(diags)) => {
            report(&diags, color);
            return Err(CommandError::Usage("not rendered: book.toml has errors".into()));
        }
        Err(RenderError::Pages(diags)) => {
            report(&diags, color);
            return Err(CommandError::Usage("not rendered: the book's pages have errors".into()));
        }
        Err(e) => return Err(CommandError::Usage(crate::text::sanitize(&format!("render: {e}")))),
    }
    let Some(addr) = serve else { return Ok(()) };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| CommandError::Usage(crate::text::sanitize(&format!("cannot serve on {addr}: {e}"))))?;
    match listener.local_addr() {
        Ok(a) => {
            let _ = crate::ui::print_out(&crate::text::sanitize(&format!(
                "serving {} at http://{a}/ (Ctrl-C stops)",
                out.display()
            )));
        }
        Err(e) => eprintln!("runbook: {e}"),
    }
    let _ = std::io::stdout().flush();
    crate::render::serve::serve(listener, out.to_path_buf()).map_err(|e| CommandError::Failed(format!("serve: {e}")))
}
