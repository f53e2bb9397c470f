//! `runbook render`: book/ plus every runbook, built into a static site by the mdBook library.
//!
//! The book is staged in a temporary directory: book/ is copied, runbooks/ lands under
//! `src/runbooks/`, the CLI and plugin references are generated from clap and the registry, and the
//! runbooks part of SUMMARY.md is written from the runbook index. mdBook then builds it with our
//! preprocessor ([`cards::StepCards`]) registered in code; no `mdbook` binary is involved.

pub mod cards;
pub mod links;
mod out;
pub mod reference;
pub mod serve;
mod ssm;
mod stage;
mod summary;

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use mdbook_driver::MDBook;
use mdbook_driver::book::Book;
use mdbook_driver::builtin_preprocessors::IndexPreprocessor;
use mdbook_driver::config::Config;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};
use mdbook_summary::Summary;
use runbook_plugins::Registry;

use out::OutDir;
pub use stage::stage;

use crate::diagnostic::{Diagnostic, Diags};
use crate::model::Runbook;
use crate::source::Source;
use crate::{analyzer, load, paths};

/// The line in book/src/SUMMARY.md that the runbook chapters replace.
pub const RUNBOOKS_MARKER: &str = "<!-- runbooks -->";
/// Where runbooks sit inside the staged book's src/.
pub const RUNBOOKS_DIR: &str = "runbooks";
/// The file a render writes into its site; `--out` is replaced only when it holds one (or is empty
/// or missing), so a render never deletes what it did not make.
pub const SITE_MARKER: &str = ".runbook-site";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("the runbooks have errors; `runbook check {0}` shows them")]
    Runbooks(String, Vec<Diagnostic>),
    #[error("the book's pages have errors")]
    Pages(Vec<Diagnostic>),
    #[error("{0}")]
    Book(String),
    #[error("--out {path}: {why}")]
    Out { path: String, why: String },
    #[error("{path}: {why}")]
    Config { path: String, why: String },
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

/// A book ready for mdBook: what its renderer reads from disk copied into a temporary directory,
/// the runbooks parsed, the generated pages written (see [`stage`]).
pub struct Staged {
    dir: tempfile::TempDir,
    /// book/ as given: its pages are read from there when the book is loaded.
    book_dir: PathBuf,
    /// The canonical book and runbooks roots: includes stay inside them.
    book_root: PathBuf,
    runbooks_root: PathBuf,
    /// Runbook chapters, in index order: (path under src/, title).
    pub runbooks: Vec<(String, String)>,
    /// Each runbook as parsed, by path under the runbooks directory, with what parsing found:
    /// the cards and `check` reuse it.
    parsed: Arc<HashMap<String, (Source, Runbook, Diags)>>,
    /// book/'s Markdown pages (paths relative to book/) that staging would have copied.
    pages: BTreeSet<PathBuf>,
    /// Generated pages by path under src/: the CLI and plugin references.
    generated: HashMap<String, String>,
    registry: &'static Registry,
    shown_dir: String,
    /// The book with its cards already in (see [`Staged::precard`]).
    carded: Option<Book>,
}

impl Staged {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// Builds the staged book into `out`. With `cards` false it is plain mdBook (the bench's peer).
///
/// book.toml comes from the same pull requests as the runbooks, so it is held to the same rules:
/// no preprocessor or renderer commands, no files from outside the book, no theme of its own
/// (ours sets a Content-Security-Policy: the site loads nothing from another host), no
/// playground, no hidden lines, and mdBook's own `links` preprocessor is off (ours is confined).
pub fn build(staged: &Staged, out: &Path, cards: bool) -> Result<(), RenderError> {
    build_with(staged, out, cards, &Arc::new(Mutex::new(Vec::new())))
}

fn build_with(
    staged: &Staged,
    out: &Path,
    cards: bool,
    refused: &Arc<Mutex<Vec<Diagnostic>>>,
) -> Result<(), RenderError> {
    let mut config = staged.config()?;
    config.build.build_dir = absolute(out);
    let book = match &staged.carded {
        Some(book) => book.clone(),
        None => staged.load_book(&config)?,
    };
    let cards = cards.then(|| staged.step_cards(&config, refused));
    let mut md = MDBook::load_with_config_and_summary(staged.root(), config, Summary::default()).map_err(book_error)?;
    md.book = book;
    if let Some(cards) = cards {
        md.with_preprocessor(cards);
    }
    md.with_preprocessor(IndexPreprocessor::new());
    md.build().map_err(book_error)
}

impl Staged {
    /// book.toml, held to the rules of [`build`].
    fn config(&self) -> Result<Config, RenderError> {
        let config_path = self.root().join("book.toml");
        let mut config = if config_path.exists() {
            Config::from_disk(&config_path).map_err(book_error)?
        } else {
            Config::default()
        };
        self.materialize(&config)?;
        safe_config(&mut config, self)?;
        config.build.create_missing = false;
        config.build.use_default_preprocessors = false;
        Ok(config)
    }

    fn step_cards(&self, config: &Config, refused: &Arc<Mutex<Vec<Diagnostic>>>) -> cards::StepCards {
        cards::StepCards {
            dir: RUNBOOKS_DIR.into(),
            shown_dir: self.shown_dir.clone(),
            registry: self.registry,
            parsed: Arc::clone(&self.parsed),
            runbooks_root: self.runbooks_root.clone(),
            book_root: self.book_root.clone(),
            book_src: self.book_root.join(&config.book.src),
            refused: refused.clone(),
        }
    }

    /// The bench's second peer: turns the step blocks into cards now, so that
    /// `build(staged, out, false)` builds with plain mdBook the pages `render` builds (without
    /// `{{#title}}` titles, which the cards hand to the build that runs them).
    pub fn precard(&mut self) -> Result<(), RenderError> {
        let config = self.config()?;
        let book = self.load_book(&config)?;
        let cards = self.step_cards(&config, &Arc::new(Mutex::new(Vec::new())));
        let ctx = PreprocessorContext::new(self.root().to_path_buf(), config, "html".into());
        self.carded = Some(cards.run(&ctx, book).map_err(book_error)?);
        Ok(())
    }
}

/// The theme we build with: mdBook's, plus a head that forbids loading from any other host.
const HEAD: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; \
script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
font-src 'self' data:; connect-src 'self'; media-src 'self'; object-src 'none'; frame-src 'self'; \
form-action 'none'; base-uri 'self'\">\n";

fn refuse(why: impl Into<String>) -> RenderError {
    RenderError::Config {
        path: "book.toml".into(),
        why: why.into(),
    }
}

/// A relative path that stays where it is joined (no root, no `..`).
fn plain_relative(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn web_link(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fn safe_config(config: &mut Config, staged: &Staged) -> Result<(), RenderError> {
    let root = staged.root();
    let real_root = paths::canonical(root);
    let preprocessors = config.preprocessors::<serde_json::Value>().unwrap_or_default();
    if let Some(name) = preprocessors.keys().next() {
        return Err(refuse(format!(
            "[preprocessor.{name}] would run a program; `runbook render` runs none (remove the table)"
        )));
    }
    let outputs = config.outputs::<serde_json::Value>().unwrap_or_default();
    if let Some(name) = outputs.keys().find(|k| *k != "html") {
        return Err(refuse(format!(
            "[output.{name}] would run another renderer; `runbook render` builds HTML only (remove the table)"
        )));
    }
    if !plain_relative(&config.book.src) {
        return Err(refuse(format!(
            "book.src `{}` must be a directory inside the book",
            config.book.src.display()
        )));
    }
    if let Some(html) = config.html_config() {
        if html.theme.is_some() || root.join("theme").exists() {
            return Err(refuse(
                "a theme of the book's own is not supported: `runbook render` uses mdBook's, which loads nothing from other hosts",
            ));
        }
        for (what, files) in [
            ("additional-css", &html.additional_css),
            ("additional-js", &html.additional_js),
        ] {
            for f in files {
                let inside = root.join(f).canonicalize().is_ok_and(|p| p.starts_with(&real_root));
                if !inside {
                    return Err(refuse(format!(
                        "{what} `{}` is not a file inside the book",
                        f.display()
                    )));
                }
            }
        }
        if html.live_reload_endpoint.is_some() {
            return Err(refuse("live-reload-endpoint would make the site connect elsewhere"));
        }
        if let Some(p) = &html.input_404 {
            if !plain_relative(Path::new(p)) {
                return Err(refuse(format!("input-404 `{p}` must be a page inside the book")));
            }
        }
        for (what, url) in [
            ("git-repository-url", &html.git_repository_url),
            ("edit-url-template", &html.edit_url_template),
        ] {
            if let Some(u) = url.as_deref().filter(|u| !web_link(u)) {
                return Err(refuse(format!("{what} `{u}` must be an http(s) URL")));
            }
        }
        for (from, to) in &html.redirect {
            if to.contains(':') && !web_link(to) {
                return Err(refuse(format!(
                    "redirect of `{from}` to `{to}` must be a path or an http(s) URL"
                )));
            }
        }
    }
    let theme = root.join(".runbook-theme");
    std::fs::create_dir_all(&theme).map_err(io(&theme))?;
    let head = theme.join("head.hbs");
    std::fs::write(&head, HEAD).map_err(io(&head))?;
    for (key, value) in [
        ("output.html.theme", serde_json::json!(theme)),
        ("output.html.mathjax-support", serde_json::json!(false)),
        ("output.html.playground.runnable", serde_json::json!(false)),
        ("output.html.playground.editable", serde_json::json!(false)),
        ("output.html.code.hidelines", serde_json::json!({})),
    ] {
        config.set(key, value).map_err(book_error)?;
    }
    Ok(())
}

/// `runbook render`: stage, then build while `check` runs on another core. Runbooks that do not
/// pass `check` are refused (the site documents what can be run): the site is built beside `out`
/// and moved into place only when they do, so a refused render leaves nothing half-built, and
/// nothing of its own behind.
pub fn render(book: &Path, runbooks: &Path, out: &Path) -> Result<Staged, RenderError> {
    let target = OutDir::prepare(out, &[book, runbooks])?;
    let result = render_into(book, runbooks, &target);
    if result.is_err() {
        target.undo();
    }
    result
}

fn render_into(book: &Path, runbooks: &Path, target: &OutDir) -> Result<Staged, RenderError> {
    let staged = stage(book, runbooks)?;
    let name = target
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".into());
    let parent = target.path.parent().unwrap_or(Path::new("/"));
    // Removed when dropped: on every error path, and on a panic.
    let building = tempfile::Builder::new()
        .prefix(&format!(".{name}.building-"))
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let refused = Arc::new(Mutex::new(Vec::new()));
    let (errors, built) = std::thread::scope(|s| {
        let check = s.spawn(|| staged.check());
        let built = build_with(&staged, building.path(), true, &refused);
        (check.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), built)
    });
    if !errors.is_empty() {
        return Err(RenderError::Runbooks(runbooks.display().to_string(), errors));
    }
    let refused = std::mem::take(&mut *refused.lock().unwrap_or_else(|p| p.into_inner()));
    if !refused.is_empty() {
        let mut refused = refused;
        crate::diagnostic::sort(&mut refused);
        return Err(RenderError::Pages(refused));
    }
    built?;
    staged.publish_ssm(building.path())?;
    let marker = building.path().join(SITE_MARKER);
    std::fs::write(
        &marker,
        "made by `runbook render`; the next render replaces this directory\n",
    )
    .map_err(io(&marker))?;
    target.replace_with(building)?;
    Ok(staged)
}

impl Staged {
    /// `check` over every staged runbook: the errors, sorted.
    pub fn check(&self) -> Vec<Diagnostic> {
        let mut errors: Vec<Diagnostic> = self
            .parsed
            .values()
            .flat_map(|(source, rb, diags)| {
                analyzer::check_parsed(source, rb, diags.clone(), self.registry, &self.runbooks_root)
            })
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
