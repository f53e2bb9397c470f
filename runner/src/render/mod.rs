//! `runbook render`: book/ plus every runbook, built into a static site by the mdBook library.
//!
//! The book is staged in a temporary directory: book/ is copied, runbooks/ lands under
//! `src/runbooks/`, the CLI and plugin references are generated from clap and the registry, and the
//! runbooks part of SUMMARY.md is written from the runbook index. mdBook then builds it with our
//! preprocessor ([`chapters::StepCards`]) registered in code; no `mdbook` binary is involved.

pub mod cards;
mod chapters;
mod config;
mod out;
mod post;
pub mod reference;
pub mod serve;
mod ssm;
mod stage;
mod summary;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
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
use crate::{analyzer, load};

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
    #[error("{0}")]
    Oversized(String),
    #[error("book.toml has errors")]
    BookToml(Vec<Diagnostic>),
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
    /// Bytes of the runbooks and of book/'s files: what includes may add and how large the site
    /// may be are measured by them.
    input_bytes: usize,
    /// What includes may add to the site, all pages together.
    budget: crate::links::Budget,
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
        let shown = self.book_dir.join("book.toml");
        let mut config = config::read(self.root(), &shown, &self.pages).map_err(RenderError::BookToml)?;
        self.materialize(&config)?;
        safe_config(&mut config, self)?;
        config.build.create_missing = false;
        config.build.use_default_preprocessors = false;
        Ok(config)
    }

    fn step_cards(&self, config: &Config, refused: &Arc<Mutex<Vec<Diagnostic>>>) -> chapters::StepCards {
        let markdown = markdown_options(config);
        chapters::StepCards {
            budget: self.budget.clone(),
            markdown,
            generated: self.generated.keys().cloned().collect(),
            by_page: self
                .runbooks
                .iter()
                .map(|(rel, _)| (summary::page_path(rel), rel.clone()))
                .collect(),
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

/// How mdBook will read the Markdown, from book.toml's options.
fn markdown_options(config: &Config) -> mdbook_markdown::MarkdownOptions {
    let html = config.html_config().unwrap_or_default();
    let mut markdown = crate::markup::default_options();
    markdown.smart_punctuation = html.smart_punctuation;
    markdown.definition_lists = html.definition_lists;
    markdown.admonitions = html.admonitions;
    markdown
}

/// The theme we build with: mdBook's, with an empty custom head (the Content-Security-Policy is
/// written into every page after the build, with the hashes of its inline scripts: `post`).
const HEAD: &str = "";

/// What we set whatever book.toml says: our theme (mdBook's, with an empty custom head), no
/// MathJax, no playground, no hidden lines.
fn safe_config(config: &mut Config, staged: &Staged) -> Result<(), RenderError> {
    let root = staged.root();
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
    post::finish(building.path())?;
    let pages = (staged.runbooks.len() + staged.pages.len()) as u64 + 3;
    let inputs = staged.input_bytes + staged.budget.included();
    post::bounded(building.path(), inputs as u64, pages)?;
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
