//! Finding runbooks on disk and reading them: directories are searched for `*.md`, files must be
//! UTF-8, and every failure is a diagnostic that names the path.

use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::source::Source;

/// Expands the paths given on the command line into runbook files, in a stable order.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        let shown = p.display().to_string();
        match std::fs::metadata(p) {
            Err(e) => diags.push(Diagnostic::file(shown, io_message(&e))),
            Ok(m) if m.is_dir() => {
                let before = files.len();
                walk(p, &crate::paths::canonical(p), &mut files, &mut diags);
                if files.len() == before {
                    diags.push(Diagnostic::file(
                        shown,
                        "no runbooks here (no *.md files in this directory or below)",
                    ));
                }
            }
            Ok(_) => files.push(p.clone()),
        }
    }
    (files, diags)
}

/// Walks `dir` for `*.md`. Symbolic links are not followed out of `root`: a linked directory is
/// skipped, and a linked file that resolves outside is an error.
fn walk(dir: &Path, root: &Path, files: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::file(dir.display().to_string(), io_message(&e)));
            return;
        }
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        let is_md = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("md"));
        let link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if link {
            let inside = path.canonicalize().is_ok_and(|r| r.starts_with(root) && r.is_file());
            if is_md && !inside {
                diags.push(Diagnostic::file(
                    path.display().to_string(),
                    "a symbolic link to somewhere outside the runbooks directory; it is not read",
                ));
            } else if is_md {
                files.push(path);
            }
        } else if path.is_dir() {
            walk(&path, root, files, diags);
        } else if is_md {
            files.push(path);
        }
    }
}

/// Reads a runbook. A file that is not UTF-8 is refused with the line and column of the first bad byte.
pub fn read(path: &Path) -> Result<Source, Diagnostic> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Diagnostic::file(&shown, io_message(&e)))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(path, text)),
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let good = String::from_utf8_lossy(&bytes[..at]);
            let line = good.matches('\n').count() + 1;
            let col = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(Diagnostic::at_line_col(
                shown,
                line,
                col,
                format!(
                    "not valid UTF-8 (byte 0x{:02x} at offset {at}); runbooks must be UTF-8 text",
                    bytes[at]
                ),
            ))
        }
    }
}

pub fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ if e.raw_os_error() == Some(21) => "is a directory".into(),
        _ => e.to_string(),
    }
}
