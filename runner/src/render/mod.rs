//! `runbook render`: book/ plus every runbook, built into a static site by the mdBook library.
//!
//! The book is staged in a temporary directory: book/ is copied, runbooks/ lands under
//! `src/runbooks/`, the CLI and plugin references are generated from clap and the registry, and the
//! runbooks part of SUMMARY.md is written from the runbook index. mdBook then builds it with our
//! preprocessor ([`cards::StepCards`]) registered in code; no `mdbook` binary is involved.

pub mod cards;
pub mod links;
pub mod reference;
pub mod serve;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mdbook_driver::MDBook;
use mdbook_driver::config::Config;
use pulldown_cmark::{Event, Parser, Tag};
use runbook_plugins::Registry;

use crate::diagnostic::Diagnostic;
use crate::model::Runbook;
use crate::source::Source;
use crate::{analyzer, load};

/// The line in book/src/SUMMARY.md that the runbook chapters replace.
pub const RUNBOOKS_MARKER: &str = "<!-- runbooks -->";
/// Where runbooks sit inside the staged book's src/.
pub const RUNBOOKS_DIR: &str = "runbooks";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("the runbooks have errors; `runbook check {0}` shows them")]
    Runbooks(String, Vec<Diagnostic>),
    #[error("{0}")]
    Book(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |e| RenderError::Io {
        path: path.display().to_string(),
        message: load::io_message(&e),
    }
}

fn book_error(e: mdbook_driver::errors::Error) -> RenderError {
    RenderError::Book(format!("{e:#}"))
}

/// A book ready for mdBook: book/ and the runbooks copied into a temporary directory.
pub struct Staged {
    dir: tempfile::TempDir,
    /// Runbook chapters, in index order: (path under src/, title).
    pub runbooks: Vec<(String, String)>,
    /// What `check` read, by path under the runbooks directory: the cards reuse it.
    parsed: HashMap<String, (Source, Runbook)>,
    registry: Arc<Registry>,
    shown_dir: String,
}

impl Staged {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// Copies book/ and runbooks/ into a staging directory and writes the generated pages.
pub fn stage(book: &Path, runbooks: &Path) -> Result<Staged, RenderError> {
    let registry = Arc::new(Registry::builtin());
    let dir = tempfile::Builder::new()
        .prefix("runbook-render-")
        .tempdir()
        .map_err(io(Path::new("temporary directory")))?;
    copy_tree(book, dir.path(), &|_| true)?;
    let src = dir.path().join("src");
    let rb_dir = src.join(RUNBOOKS_DIR);
    copy_tree(runbooks, &rb_dir, &|p| p.extension().is_some_and(|e| e == "md"))?;

    // Parse every runbook (titles for the summary, models for the cards); `check` runs later,
    // beside mdBook's build (see `render`).
    let (files, diags) = load::collect(&[runbooks.to_path_buf()]);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(RenderError::Runbooks(runbooks.display().to_string(), diags));
    }
    let mut titles = Vec::new();
    let mut parsed = HashMap::new();
    for f in &files {
        let source = load::read(f).map_err(|d| RenderError::Runbooks(runbooks.display().to_string(), vec![d]))?;
        let (rb, _) = crate::parser::parse(&source);
        let rel = slash(f.strip_prefix(runbooks).unwrap_or(f));
        titles.push((rel.clone(), rb.title.clone()));
        parsed.insert(rel, (source, rb));
    }
    let ordered = index_order(runbooks, titles)?;

    let reference = src.join("reference");
    std::fs::create_dir_all(&reference).map_err(io(&reference))?;
    let cli = reference.join("cli.md");
    std::fs::write(&cli, reference::cli_reference()).map_err(io(&cli))?;
    let plugins = reference.join("plugins.md");
    std::fs::write(&plugins, reference::plugin_reference(&registry)).map_err(io(&plugins))?;

    let summary_path = src.join("SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path).map_err(io(&summary_path))?;
    let summary = with_runbooks(&summary, &ordered);
    std::fs::write(&summary_path, summary).map_err(io(&summary_path))?;
    Ok(Staged {
        dir,
        runbooks: ordered,
        parsed,
        registry,
        // The command on each page is run from the repository: a relative path stays as given,
        // an absolute one (a build machine's) becomes its last component.
        shown_dir: if runbooks.is_absolute() {
            runbooks
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            slash(runbooks)
        },
    })
}

/// Builds the staged book into `out`. With `cards` false it is plain mdBook (the bench's peer).
pub fn build(staged: &Staged, out: &Path, cards: bool) -> Result<(), RenderError> {
    let config_path = staged.root().join("book.toml");
    let mut config = if config_path.exists() {
        Config::from_disk(&config_path).map_err(book_error)?
    } else {
        Config::default()
    };
    config.build.build_dir = absolute(out);
    config.build.create_missing = false;
    let mut md = MDBook::load_with_config(staged.root(), config).map_err(book_error)?;
    if cards {
        md.with_preprocessor(cards::StepCards {
            dir: RUNBOOKS_DIR.into(),
            shown_dir: staged.shown_dir.clone(),
            registry: staged.registry.clone(),
            parsed: staged.parsed.clone(),
        });
    }
    md.build().map_err(book_error)
}

/// `runbook render`: stage, then build while `check` runs on another core. Runbooks that do not
/// pass `check` are refused (the site documents what can be run): the site is built beside `out`
/// and moved into place only when they do, so a refused render leaves nothing half-built.
pub fn render(book: &Path, runbooks: &Path, out: &Path) -> Result<Staged, RenderError> {
    let staged = stage(book, runbooks)?;
    let out = absolute(out);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".into());
    let building = out.with_file_name(format!(".{name}.building-{}", std::process::id()));
    let (errors, built) = std::thread::scope(|s| {
        let check = s.spawn(|| staged.check());
        let built = build(&staged, &building, true);
        (check.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), built)
    });
    let done = built.and_then(|()| {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RenderError::Runbooks(runbooks.display().to_string(), errors))
        }
    });
    if let Err(e) = done {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(io(&out))?;
    }
    std::fs::rename(&building, &out).map_err(io(&out))?;
    Ok(staged)
}

impl Staged {
    /// `check` over every staged runbook: the errors, sorted.
    pub fn check(&self) -> Vec<Diagnostic> {
        let mut errors: Vec<Diagnostic> = self
            .parsed
            .values()
            .flat_map(|(source, _)| analyzer::check(source, &self.registry).1)
            .filter(Diagnostic::is_error)
            .collect();
        crate::diagnostic::sort(&mut errors);
        errors
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<(), RenderError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let entries = std::fs::read_dir(from).map_err(io(from))?;
    for entry in entries {
        let entry = entry.map_err(io(from))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ty = entry.file_type().map_err(io(&path))?;
        if ty.is_dir() {
            copy_tree(&path, &to.join(&name), keep)?;
        } else if ty.is_file() && keep(&path) {
            std::fs::copy(&path, to.join(&name)).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Orders runbooks as the index (runbooks/README.md) links them; the index comes first and
/// runbooks it does not link follow in path order, so every runbook is a chapter.
fn index_order(runbooks: &Path, titles: Vec<(String, String)>) -> Result<Vec<(String, String)>, RenderError> {
    let index_path = runbooks.join("README.md");
    let mut order: Vec<String> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(&index_path) {
        order.push("README.md".into());
        for ev in Parser::new_ext(&text, crate::parser::markdown_options()) {
            if let Event::Start(Tag::Link { dest_url, .. }) = ev {
                let dest = dest_url.split('#').next().unwrap_or("");
                if dest.ends_with(".md") && !dest.contains("://") && !order.iter().any(|o| o == dest) {
                    order.push(dest.trim_start_matches("./").to_string());
                }
            }
        }
    }
    let mut rest: BTreeSet<(String, String)> = titles.into_iter().collect();
    let mut out = Vec::new();
    for path in order {
        if let Some(found) = rest.iter().find(|(p, _)| *p == path).cloned() {
            rest.remove(&found);
            out.push(found);
        }
    }
    out.extend(rest);
    Ok(out)
}

/// SUMMARY.md with the marker line replaced by the runbook chapters (appended when absent).
fn with_runbooks(summary: &str, runbooks: &[(String, String)]) -> String {
    let mut items = String::new();
    let (index, rest): (Vec<_>, Vec<_>) = runbooks.iter().partition(|(p, _)| p == "README.md");
    let indent = if let Some((p, t)) = index.first() {
        items.push_str(&format!("- [{}]({RUNBOOKS_DIR}/{p})\n", escape_link_text(t)));
        "    "
    } else {
        ""
    };
    for (p, t) in rest {
        items.push_str(&format!("{indent}- [{}]({RUNBOOKS_DIR}/{p})\n", escape_link_text(t)));
    }
    if summary.lines().any(|l| l.trim() == RUNBOOKS_MARKER) {
        let mut out = String::new();
        for line in summary.lines() {
            if line.trim() == RUNBOOKS_MARKER {
                out.push_str(&items);
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    } else {
        format!("{summary}\n# Runbooks\n\n{items}")
    }
}

fn escape_link_text(t: &str) -> String {
    t.replace('[', "\\[").replace(']', "\\]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_nests_runbooks_under_the_index_in_index_order() {
        let s = with_runbooks(
            "# Summary\n\n[Intro](introduction.md)\n\n# Runbooks\n\n<!-- runbooks -->\n\n# Reference\n",
            &[
                ("README.md".into(), "AWS Setup".into()),
                ("b.md".into(), "B [x]".into()),
                ("a.md".into(), "A".into()),
            ],
        );
        assert!(
            s.contains(
                "- [AWS Setup](runbooks/README.md)\n    - [B \\[x\\]](runbooks/b.md)\n    - [A](runbooks/a.md)\n"
            ),
            "{s}"
        );
        assert!(!s.contains(RUNBOOKS_MARKER));
    }
}
