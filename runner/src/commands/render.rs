//! `runbook render`: the site, built or served.

use super::*;

pub(super) fn render(
    book: &std::path::Path,
    runbooks: &std::path::Path,
    out: &std::path::Path,
    serve: Option<&str>,
    color: bool,
) -> Exit {
    use crate::render::RenderError;
    let started = std::time::Instant::now();
    match crate::render::render(book, runbooks, out) {
        Ok(staged) => eprintln!(
            "rendered {} runbook{} into {} in {:.1}s",
            staged.runbooks.len(),
            plural(staged.runbooks.len()),
            out.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(RenderError::Runbooks(dir, diags)) => {
            report(&diags, color);
            eprintln!("runbook: not rendered: the runbooks in {dir} have errors");
            return Exit::Usage;
        }
        Err(RenderError::Pages(diags)) => {
            report(&diags, color);
            eprintln!("runbook: not rendered: the book's pages have errors");
            return Exit::Usage;
        }
        Err(e) => {
            eprintln!("runbook: render: {e}");
            return Exit::Usage;
        }
    }
    let Some(addr) = serve else { return Exit::Done };
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("runbook: cannot serve on {addr}: {e}");
            return Exit::Usage;
        }
    };
    match listener.local_addr() {
        Ok(a) => {
            let _ = crate::ui::print_out(&format!("serving {} at http://{a}/ (Ctrl-C stops)", out.display()));
        }
        Err(e) => eprintln!("runbook: {e}"),
    }
    let _ = std::io::stdout().flush();
    match crate::render::serve::serve(listener, out.to_path_buf()) {
        Ok(()) => Exit::Done,
        Err(e) => {
            eprintln!("runbook: serve: {e}");
            Exit::StepFailed
        }
    }
}
