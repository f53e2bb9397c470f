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
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use mdbook_driver::MDBook;
use mdbook_driver::builtin_preprocessors::IndexPreprocessor;
use mdbook_driver::config::Config;
use pulldown_cmark::{Event, Parser, Tag};
use runbook_plugins::Registry;

use crate::diagnostic::Diagnostic;
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

/// A book ready for mdBook: book/ and the runbooks copied into a temporary directory.
pub struct Staged {
    dir: tempfile::TempDir,
    /// The canonical book and runbooks roots: includes stay inside them.
    book_root: PathBuf,
    runbooks_root: PathBuf,
    /// Runbook chapters, in index order: (path under src/, title).
    pub runbooks: Vec<(String, String)>,
    /// What `check` read, by path under the runbooks directory: the cards reuse it.
    parsed: HashMap<String, (Source, Runbook)>,
    registry: &'static Registry,
    shown_dir: String,
}

impl Staged {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// Copies book/ and runbooks/ into a staging directory and writes the generated pages.
pub fn stage(book: &Path, runbooks: &Path) -> Result<Staged, RenderError> {
    let registry = Registry::shared();
    let book_root = paths::canonical(book);
    let runbooks_root = paths::canonical(runbooks);
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
    std::fs::write(&plugins, reference::plugin_reference(registry)).map_err(io(&plugins))?;

    let summary_path = src.join("SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path).map_err(io(&summary_path))?;
    let summary = with_runbooks(&summary, &ordered);
    std::fs::write(&summary_path, summary).map_err(io(&summary_path))?;
    Ok(Staged {
        dir,
        book_root,
        runbooks_root,
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
    let config_path = staged.root().join("book.toml");
    let mut config = if config_path.exists() {
        Config::from_disk(&config_path).map_err(book_error)?
    } else {
        Config::default()
    };
    safe_config(&mut config, staged)?;
    config.build.build_dir = absolute(out);
    config.build.create_missing = false;
    config.build.use_default_preprocessors = false;
    let book_src = staged.book_root.join(&config.book.src);
    let mut md = MDBook::load_with_config(staged.root(), config).map_err(book_error)?;
    if cards {
        md.with_preprocessor(cards::StepCards {
            dir: RUNBOOKS_DIR.into(),
            shown_dir: staged.shown_dir.clone(),
            registry: staged.registry,
            parsed: staged.parsed.clone(),
            runbooks_root: staged.runbooks_root.clone(),
            book_root: staged.book_root.clone(),
            book_src,
            refused: refused.clone(),
        });
    }
    md.with_preprocessor(IndexPreprocessor::new());
    md.build().map_err(book_error)
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
    let marker = building.path().join(SITE_MARKER);
    std::fs::write(
        &marker,
        "made by `runbook render`; the next render replaces this directory\n",
    )
    .map_err(io(&marker))?;
    target.replace_with(building)?;
    Ok(staged)
}

/// `--out`, checked before anything is built: missing, empty, or a site we made; never a source
/// directory or one that contains a source.
struct OutDir {
    /// Absolute, with symlinks of its parent resolved.
    path: PathBuf,
    /// Parent directories this render created, deepest first (removed again if it fails).
    created: Vec<PathBuf>,
}

impl OutDir {
    fn prepare(out: &Path, sources: &[&Path]) -> Result<OutDir, RenderError> {
        let shown = out.display().to_string();
        let refuse = |why: String| RenderError::Out {
            path: shown.clone(),
            why,
        };
        let abs = normalize(&absolute(out));
        let Some(name) = abs.file_name().map(|n| n.to_os_string()) else {
            return Err(refuse("is the root directory".into()));
        };
        let parent = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut created = Vec::new();
        let mut p = parent.as_path();
        while !p.exists() {
            created.push(p.to_path_buf());
            p = match p.parent() {
                Some(q) => q,
                None => break,
            };
        }
        let real_parent = p
            .canonicalize()
            .map_err(|e| refuse(load::io_message(&e)))?
            .join(parent.strip_prefix(p).unwrap_or(Path::new("")));
        let path = real_parent.join(&name);
        for src in sources {
            let real = paths::canonical(src);
            if real.starts_with(&path) {
                return Err(refuse(format!(
                    "{} the source directory {}; the site must go elsewhere",
                    if real == path { "is" } else { "contains" },
                    src.display()
                )));
            }
        }
        match std::fs::symlink_metadata(&path) {
            Err(_) => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse("is a symbolic link; name the directory itself".into()));
            }
            Ok(m) if !m.is_dir() => return Err(refuse("is a file, not a directory".into())),
            Ok(_) => {
                let mut entries = std::fs::read_dir(&path).map_err(|e| refuse(load::io_message(&e)))?;
                let empty = entries.next().is_none();
                let ours = std::fs::symlink_metadata(path.join(SITE_MARKER)).is_ok_and(|m| m.is_file());
                if !empty && !ours {
                    return Err(refuse(format!(
                        "holds files not made by `runbook render` (it has no {SITE_MARKER}); \
name an empty or new directory, or one a render made"
                    )));
                }
            }
        }
        if !created.is_empty() {
            std::fs::create_dir_all(&parent).map_err(|e| refuse(load::io_message(&e)))?;
        }
        Ok(OutDir { path, created })
    }

    /// Moves the built site into place; a previous site is removed only once the new one is in.
    fn replace_with(&self, building: tempfile::TempDir) -> Result<(), RenderError> {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        if self.path.exists() {
            let old = tempfile::Builder::new()
                .prefix(".runbook-old-site-")
                .tempdir_in(parent)
                .map_err(io(parent))?;
            let aside = old.path().join("site");
            std::fs::rename(&self.path, &aside).map_err(io(&self.path))?;
            if let Err(e) = std::fs::rename(building.path(), &self.path) {
                let _ = std::fs::rename(&aside, &self.path);
                return Err(io(&self.path)(e));
            }
            drop(old);
        } else {
            std::fs::rename(building.path(), &self.path).map_err(io(&self.path))?;
        }
        let _ = building.keep();
        Ok(())
    }

    /// After a failed render: removes the parent directories it created (when still empty).
    fn undo(&self) {
        for d in &self.created {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `a/./b/../c` as `a/c`, without touching the file system (`..` of a symlink is taken
/// lexically; the sources are compared after canonicalizing, so nothing escapes the check).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Staged {
    /// `check` over every staged runbook: the errors, sorted.
    pub fn check(&self) -> Vec<Diagnostic> {
        let mut errors: Vec<Diagnostic> = self
            .parsed
            .values()
            .flat_map(|(source, _)| analyzer::check_in(source, self.registry, &self.runbooks_root).1)
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
