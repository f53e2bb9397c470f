//! Staging: what mdBook reads from disk goes into a temporary directory; its pages stay in memory.
//!
//! mdBook's renderer reads book.toml's files (additional CSS and JavaScript), the assets of the
//! book's src/ and the 404 page from disk: those are copied (symbolic links and hidden files are
//! not, so nothing outside the book reaches the site). Every other page is Markdown that mdBook
//! only reads to load the book, so the book is loaded here instead: the book's own pages from
//! book/ (those the copy would have taken), the runbooks as `check` read them, and the generated
//! references, under the SUMMARY.md that names the runbooks. A page is read only when SUMMARY.md
//! names it, and only from inside the book.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use mdbook_driver::book::{Book, BookItem, Chapter};
use mdbook_driver::config::Config;
use mdbook_summary::{SummaryItem, parse_summary};
use runbook_plugins::Registry;

use super::summary::{index_order, page_path, placeholder, with_runbooks};
use super::{RUNBOOKS_DIR, RenderError, Staged, io, reference, slash};
use crate::diagnostic::{Diagnostic, Diags};
use crate::{load, paths};

/// Where the generated references sit under the book's src/.
const CLI_PAGE: &str = "reference/cli.md";
const PLUGINS_PAGE: &str = "reference/plugins.md";

/// Copies what mdBook reads from disk into a staging directory, parses every runbook and writes
/// the generated pages (in memory).
pub fn stage(book: &Path, runbooks: &Path) -> Result<Staged, RenderError> {
    let registry = Registry::shared();
    let book_root = paths::canonical(book);
    let runbooks_root = paths::canonical(runbooks);
    let dir = tempfile::Builder::new()
        .prefix("runbook-render-")
        .tempdir()
        .map_err(io(Path::new("temporary directory")))?;
    let mut pages = BTreeSet::new();
    let mut input_bytes = 0;
    copy_tree(book, dir.path(), Path::new(""), &mut pages, &mut input_bytes)?;

    // Parse every runbook (titles for the summary, models for the cards); `check` runs later,
    // on these models, beside mdBook's build (see `render`).
    let (files, diags) = load::collect(&[runbooks.to_path_buf()]);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(RenderError::Runbooks(runbooks.display().to_string(), diags));
    }
    let mut titles = Vec::new();
    let mut parsed = HashMap::new();
    for f in &files {
        let source = load::read(f).map_err(|d| RenderError::Runbooks(runbooks.display().to_string(), vec![d]))?;
        let mut diags = Diags::new();
        let rb = crate::parser::parse_into(&source, &mut diags);
        let rel = slash(f.strip_prefix(runbooks).unwrap_or(f));
        titles.push((rel.clone(), rb.title.clone()));
        input_bytes += source.text.len();
        parsed.insert(rel, (source, rb, diags));
    }
    let ordered = index_order(runbooks, titles)?;

    let generated = HashMap::from([
        (CLI_PAGE.to_string(), reference::cli_reference()),
        (PLUGINS_PAGE.to_string(), reference::plugin_reference(registry)),
    ]);
    Ok(Staged {
        dir,
        book_dir: book.to_path_buf(),
        book_root,
        runbooks_root,
        runbooks: ordered,
        parsed: Arc::new(parsed),
        pages,
        input_bytes,
        budget: crate::links::Budget::new(input_bytes),
        generated,
        registry,
        carded: None,
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

/// What a book may publish beside its pages: images, styles, fonts and documents. Never a file a
/// browser runs as script in the site's origin (`.js` would replace mdBook's own scripts, which
/// every page loads; an `.html` or `.svg` page runs its own script, and a policy can only allow
/// what the page carries), nor one it might (`.xml`, `.wasm`).
const ASSETS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp", "css", "woff", "woff2", "ttf", "otf", "eot", "pdf",
    "txt", "csv", "json", "yaml", "yml", "toml",
];

fn is_asset(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ASSETS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Copies `from` into `to`, except symbolic links, hidden files, Markdown pages and anything but
/// [`ASSETS`]; the pages' paths (relative to the book) are collected instead, to be read when the
/// book names them.
fn copy_tree(
    from: &Path,
    to: &Path,
    rel: &Path,
    pages: &mut BTreeSet<PathBuf>,
    bytes: &mut usize,
) -> Result<(), RenderError> {
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
            copy_tree(&path, &to.join(&name), &rel.join(&name), pages, bytes)?;
        } else if ty.is_file() && path.extension().is_some_and(|e| e == "md") {
            *bytes += entry.metadata().map_or(0, |m| m.len() as usize);
            pages.insert(rel.join(&name));
        } else if ty.is_file() && is_asset(&path) {
            *bytes += entry.metadata().map_or(0, |m| m.len() as usize);
            std::fs::copy(&path, to.join(&name)).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// A page of the book (`rel` relative to book/) that staging found, read as text.
fn read_page(book: &Path, pages: &BTreeSet<PathBuf>, rel: &Path) -> Result<String, RenderError> {
    let path = book.join(rel);
    if !pages.contains(rel) {
        return Err(RenderError::Io {
            path: path.display().to_string(),
            message: "no such page in the book (symbolic links and hidden files are not read)".into(),
        });
    }
    std::fs::read_to_string(&path).map_err(io(&path))
}

/// `a/./b.md` as `a/b.md`; `None` for a path that is absolute or climbs with `..` (no page of the
/// book is there).
fn inside(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

impl Staged {
    /// The book as mdBook would load it from the staged src/ with `config`: SUMMARY.md's chapters,
    /// each page read from where staging would have put it.
    pub(super) fn load_book(&self, config: &Config) -> Result<Book, RenderError> {
        let src = inside(&config.book.src).unwrap_or_default();
        let summary_path = src.join("SUMMARY.md");
        let summary = with_runbooks(&read_page(&self.book_dir, &self.pages, &summary_path)?, &self.runbooks);
        let summary = parse_summary(&summary).map_err(|e| {
            RenderError::Book(format!(
                "Summary parsing failed for file={:?}: {e:#}",
                self.book_dir.join(&summary_path)
            ))
        })?;
        let items = summary
            .prefix_chapters
            .iter()
            .chain(&summary.numbered_chapters)
            .chain(&summary.suffix_chapters)
            .map(|item| self.load_item(item, &src, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Book::new_with_items(items))
    }

    fn load_item(&self, item: &SummaryItem, src: &Path, parents: &[String]) -> Result<BookItem, RenderError> {
        let link = match item {
            SummaryItem::Link(link) => link,
            SummaryItem::Separator => return Ok(BookItem::Separator),
            SummaryItem::PartTitle(title) => return Ok(BookItem::PartTitle(title.clone())),
            other => return Err(RenderError::Book(format!("SUMMARY.md: {other:?} is not supported"))),
        };
        // A runbook's placeholder (see `summary`): the chapter itself, with its title.
        let runbook = link
            .location
            .as_deref()
            .and_then(placeholder)
            .and_then(|i| self.runbooks.get(i));
        let name = runbook.map_or_else(|| link.name.clone(), |(_, title)| title.clone());
        let mut ch = match &link.location {
            Some(location) => {
                let (path, mut content) = match runbook {
                    Some((rel, _)) => (
                        PathBuf::from(format!("{RUNBOOKS_DIR}/{}", page_path(rel))),
                        self.parsed.get(rel).map(|(s, _, _)| s.text.clone()).unwrap_or_default(),
                    ),
                    None => self.chapter_text(src, location)?,
                };
                if content.starts_with('\u{feff}') {
                    content.replace_range(..3, "");
                }
                Chapter::new(&name, content, path, parents.to_vec())
            }
            None => Chapter::new_draft(&name, parents.to_vec()),
        };
        ch.number = link.number.clone();
        let mut sub_parents = parents.to_vec();
        sub_parents.push(name);
        ch.sub_items = link
            .nested_items
            .iter()
            .map(|i| self.load_item(i, src, &sub_parents))
            .collect::<Result<_, _>>()?;
        Ok(BookItem::Chapter(ch))
    }

    /// A chapter's path under src/ and its text: a runbook, a generated reference or a page of
    /// the book, in that order (as each was written over the one before into src/).
    fn chapter_text(&self, src: &Path, location: &Path) -> Result<(PathBuf, String), RenderError> {
        let refused = |why: &str| RenderError::Book(format!("failed to read chapter `{}`: {why}", location.display()));
        let rel = inside(location).ok_or_else(|| refused("chapters must be pages inside the book's src/"))?;
        let key = slash(&rel);
        let runbook = key
            .strip_prefix(RUNBOOKS_DIR)
            .and_then(|k| k.strip_prefix('/'))
            .and_then(|k| self.parsed.get(k));
        if let Some((source, _, _)) = runbook {
            return Ok((rel, source.text.clone()));
        }
        if let Some(text) = self.generated.get(&key) {
            return Ok((rel, text.clone()));
        }
        let page = src.join(&rel);
        if !self.pages.contains(&page) {
            return Err(refused("no such page (symbolic links and hidden files are not read)"));
        }
        let text = std::fs::read_to_string(self.book_dir.join(&page)).map_err(|e| refused(&load::io_message(&e)))?;
        Ok((rel, text))
    }

    /// Writes into the staging directory the page mdBook's renderer reads from disk itself (the
    /// 404 page, which no preprocessor sees: it is sanitized here), when the book has it.
    pub(super) fn materialize(&self, config: &Config) -> Result<(), RenderError> {
        let src = inside(&config.book.src).unwrap_or_default();
        let html = config.html_config().unwrap_or_default();
        let Some(rel) = inside(&src.join(html.input_404.as_deref().unwrap_or("404.md"))) else {
            return Ok(());
        };
        if !self.pages.contains(&rel) {
            return Ok(());
        }
        let from = self.book_dir.join(&rel);
        let text = std::fs::read_to_string(&from).map_err(io(&from))?;
        let options = super::markdown_options(config);
        let safe = crate::markup::sanitize(&text, &options, &[]).ok_or_else(|| RenderError::Io {
            path: from.display().to_string(),
            message: "its raw HTML and links do not settle under the sanitizer".into(),
        })?;
        let to = self.root().join(&rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&to, safe).map_err(io(&to))
    }
}
