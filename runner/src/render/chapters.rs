//! The mdBook preprocessor that makes each chapter what the site publishes: a runbook's step
//! blocks become cards ([`super::cards`]), the mdBook links of the prose are expanded within
//! their root and the site's include budget ([`crate::links`]), and the result is sanitized
//! ([`crate::markup`]) with the cards left as written.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mdbook_driver::book::{Book, BookItem, Chapter};
use mdbook_markdown::MarkdownOptions;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};
use runbook_plugins::Registry;

use super::cards::cards_with;
use crate::analyzer;
use crate::diagnostic::{Diagnostic, Diags};
use crate::links::{self, Expander};
use crate::markup;
use crate::model::Runbook;
use crate::source::Source;

pub struct StepCards {
    /// Chapters under this directory of the book's src/ are runbooks.
    pub dir: String,
    /// How the runbooks directory is named in the "run this" command.
    pub shown_dir: String,
    pub registry: &'static Registry,
    /// Runbooks as staging parsed them, by path under `dir` (with what parsing found).
    pub parsed: Arc<HashMap<String, (Source, Runbook, Diags)>>,
    /// The canonical runbooks root: a runbook's includes stay inside it.
    pub runbooks_root: PathBuf,
    /// The canonical book root, and where its chapters are (book/src): a page's includes stay
    /// inside the book.
    pub book_root: PathBuf,
    pub book_src: PathBuf,
    /// Includes refused while building; the build fails when there is any.
    pub refused: Arc<Mutex<Vec<Diagnostic>>>,
    /// What includes may still add to the site, all pages together.
    pub budget: links::Budget,
    /// How mdBook will read the Markdown (book.toml's options), for the sanitizer.
    pub markdown: MarkdownOptions,
    /// Pages this program generates (the references), by path under src/: not sanitized.
    pub generated: Vec<String>,
    /// Each runbook's path under `dir` by where its page is published (`summary::page_path`).
    pub by_page: HashMap<String, String>,
}

impl Preprocessor for StepCards {
    fn name(&self) -> &str {
        "runbook-cards"
    }

    fn run(&self, ctx: &PreprocessorContext, mut book: Book) -> mdbook_driver::errors::Result<Book> {
        let mut refused = Vec::new();
        book.for_each_mut(|item| {
            if let BookItem::Chapter(ch) = item {
                if let Some(title) = self.chapter(ch, &mut refused) {
                    if let Some(path) = &ch.path {
                        ctx.chapter_titles.borrow_mut().insert(path.clone(), title);
                    }
                }
            }
        });
        if refused.is_empty() {
            Ok(book)
        } else {
            let n = refused.len();
            if let Ok(mut r) = self.refused.lock() {
                r.extend(refused);
            }
            Err(mdbook_driver::errors::Error::msg(format!("{n} include(s) refused")))
        }
    }
}

impl StepCards {
    /// Turns a chapter's step blocks into cards and expands the links of its prose, confined to
    /// its root. Returns the chapter's `{{#title}}`, if it sets one.
    fn chapter(&self, ch: &mut Chapter, refused: &mut Vec<Diagnostic>) -> Option<String> {
        let path = ch.source_path.clone()?;
        let Ok(rel) = path.strip_prefix(&self.dir) else {
            // A book page: links only, relative to the page's place in book/src.
            let source = Source::new(self.book_src.join(&path), std::mem::take(&mut ch.content));
            let mut links = Expander::new(&self.book_root, &self.budget);
            let mut out = String::with_capacity(source.text.len());
            links.expand(&source, 0..source.text.len(), &mut out);
            let shown = source.path().display().to_string();
            ch.content = if self.generated.contains(&super::slash(&path)) {
                out
            } else {
                self.published(&source, out, &[], refused)
            };
            refused.extend(links.diags.finish(&shown));
            return links.title;
        };
        let page = super::slash(rel);
        let rel_s = self.by_page.get(&page).cloned().unwrap_or(page);
        let rel = std::path::Path::new(&rel_s);
        let shown = if self.shown_dir.is_empty() {
            rel_s.clone()
        } else {
            format!("{}/{rel_s}", self.shown_dir.trim_end_matches('/'))
        };
        let is_index = rel.file_name().is_some_and(|n| n == "README.md");
        let mut links = Expander::new(&self.runbooks_root, &self.budget);
        // Reuse what `check` read (it has the runbook's real path, which includes start from).
        let fresh;
        let (source, rb) = match self.parsed.get(&rel_s) {
            Some((source, rb, _)) if source.text == ch.content => (source, rb),
            _ => {
                let source = Source::new(self.runbooks_root.join(rel), std::mem::take(&mut ch.content));
                let (rb, _) = analyzer::check_in(&source, self.registry, &self.runbooks_root);
                fresh = (source, rb);
                (&fresh.0, &fresh.1)
            }
        };
        let mut ours = Vec::new();
        let text = cards_with(source, &shown, rb, self.registry, is_index, &mut ours, |range, out| {
            links.expand(source, range, out)
        });
        ch.content = self.published(source, text, &ours, refused);
        refused.extend(links.diags.finish(&source.path().display().to_string()));
        links.title
    }

    /// A chapter's Markdown as the site publishes it ([`markup::sanitize`]); `ours` are the
    /// cards. A page that does not settle is refused.
    fn published(&self, source: &Source, text: String, ours: &[Range<usize>], refused: &mut Vec<Diagnostic>) -> String {
        match markup::sanitize(&text, &self.markdown, ours) {
            Some(safe) => safe,
            None => {
                refused.push(Diagnostic::file(
                    source.path().display().to_string(),
                    "the page's raw HTML and links do not settle under the sanitizer; simplify them (`runbook check` warns where)",
                ));
                String::new()
            }
        }
    }
}
