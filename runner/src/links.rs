//! mdBook's links (`{{#include}}`, `{{#rustdoc_include}}`, `{{#playground}}`, `{{#title}}`), done
//! by us instead of mdBook's `links` preprocessor, so that they can be confined: a link reads only
//! files that resolve (symlinks followed) inside its root (the runbooks directory for a runbook,
//! the book directory for a book page), and never inside a step block. `check` runs the same code
//! and reports what it would refuse as located errors.
//!
//! What includes produce is bounded for the whole site, not only per page: a [`Budget`] shared by
//! every page allows [`BUDGET_FLOOR`] plus [`BUDGET_FACTOR`] times the bytes of the pages and of
//! the distinct files they include, so nesting cannot turn a small book into a large site.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;

use crate::diagnostic::{Diagnostic, Diags};
use crate::source::{Source, Span};

/// mdBook's own pattern: an escaped link, or `{{#type rest}}`.
static LINK: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\\\{\{\#.*\}\}|\{\{\s*\#([a-zA-Z0-9_]+)\s+([^}]+)\}\}").ok());

/// Includes nest at most this deep (mdBook's limit too).
pub const MAX_DEPTH: usize = 10;
/// A page may grow to at most this many bytes through includes.
pub const MAX_PAGE: usize = 16 << 20;
/// A page may read at most this many files (nesting can multiply them).
pub const MAX_READS: usize = 1000;
/// Includes may add this many bytes to a site (or to one runbook in `check`) whatever its size...
pub const BUDGET_FLOOR: usize = 1 << 20;
/// ...plus this many times the bytes of its pages and of the distinct files they include.
pub const BUDGET_FACTOR: usize = 2;

/// What includes may still add, shared by every page of a site (clones share it).
#[derive(Clone)]
pub struct Budget(Arc<Mutex<Left>>);

struct Left {
    bytes: usize,
    /// Files already counted towards the budget (each once, however often it is included).
    seen: HashSet<PathBuf>,
    /// Their bytes.
    included: usize,
}

impl Budget {
    /// The budget of a site whose pages hold `pages` bytes.
    pub fn new(pages: usize) -> Self {
        Budget(Arc::new(Mutex::new(Left {
            bytes: BUDGET_FLOOR.saturating_add(pages.saturating_mul(BUDGET_FACTOR)),
            seen: HashSet::new(),
            included: 0,
        })))
    }

    /// Bytes of the distinct files included so far: inputs of the site as much as its pages.
    pub fn included(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).included
    }

    /// Takes `len` bytes an include of `file` (of `file_len` bytes) adds; false when they are
    /// more than what is left.
    fn take(&self, file: &Path, file_len: usize, len: usize) -> bool {
        let mut left = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if left.seen.insert(file.to_path_buf()) {
            left.included = left.included.saturating_add(file_len);
            left.bytes = left.bytes.saturating_add(file_len.saturating_mul(BUDGET_FACTOR));
        }
        match left.bytes.checked_sub(len) {
            Some(rest) => {
                left.bytes = rest;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `\{{#...}}`: written out without the backslash.
    Escaped,
    Include,
    RustdocInclude,
    Playground,
    Title,
}

#[derive(Debug, Clone)]
pub struct Link<'a> {
    /// Byte range in the text searched.
    pub range: Range<usize>,
    pub kind: Kind,
    /// What follows the type: a path (with `:lines` or `:anchor`) and properties, or a title.
    pub arg: &'a str,
    pub text: &'a str,
}

/// The links in `text`, as mdBook's `links` preprocessor would find them.
pub fn find(text: &str) -> Vec<Link<'_>> {
    let Some(re) = LINK.as_ref() else { return Vec::new() };
    re.captures_iter(text)
        .filter_map(|cap| {
            let all = cap.get(0)?;
            let (kind, arg) = match (cap.get(1), cap.get(2)) {
                (Some(t), Some(rest)) => (
                    match t.as_str() {
                        "include" => Kind::Include,
                        "rustdoc_include" => Kind::RustdocInclude,
                        "playground" | "playpen" => Kind::Playground,
                        "title" => Kind::Title,
                        _ => return None,
                    },
                    rest.as_str(),
                ),
                _ if all.as_str().starts_with('\\') => (Kind::Escaped, ""),
                _ => return None,
            };
            Some(Link {
                range: all.range(),
                kind,
                arg,
                text: all.as_str(),
            })
        })
        .collect()
}

/// Why a link was refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("`{link}` reads {path}, which is outside {root}: includes must stay inside it")]
    Outside { link: String, path: String, root: String },
    #[error("`{link}` reads {path}, which cannot be read: {why}")]
    Unreadable { link: String, path: String, why: String },
    #[error("`{link}` nests includes more than {MAX_DEPTH} deep")]
    TooDeep { link: String },
    #[error("`{link}` makes the page larger than {} MiB", MAX_PAGE >> 20)]
    TooBig { link: String },
    #[error("`{link}` makes the page read more than {MAX_READS} files")]
    TooMany { link: String },
    #[error(
        "`{link}` makes includes add more to the site than its budget ({} MiB plus {BUDGET_FACTOR} times the bytes of the pages and of the files they include)",
        BUDGET_FLOOR >> 20
    )]
    OverBudget { link: String },
}

/// What links are resolved against, and what they have read so far.
pub struct Expander<'a> {
    /// The canonical directory every file read must be inside.
    pub root: &'a Path,
    budget: &'a Budget,
    /// Bytes written so far (the page, includes included).
    written: usize,
    /// Files read so far.
    reads: usize,
    /// `{{#title}}`, when one was given.
    pub title: Option<String>,
    pub diags: Diags,
}

impl<'a> Expander<'a> {
    pub fn new(root: &'a Path, budget: &'a Budget) -> Self {
        Expander {
            root,
            budget,
            written: 0,
            reads: 0,
            title: None,
            diags: Diags::new(),
        }
    }

    /// Appends `source.text[range]` to `out` with its links expanded. A refused link is a
    /// diagnostic located in `source` and stays as written.
    pub fn expand(&mut self, source: &Source, range: Range<usize>, out: &mut String) {
        let dir = source.path().parent().unwrap_or(Path::new(".")).to_path_buf();
        self.expand_at(source, &dir, range, out, 0);
    }

    /// `dir` is where `source`'s links are resolved from (an included file's real directory;
    /// `source` is named as the page names it, for messages).
    fn expand_at(&mut self, source: &Source, dir: &Path, range: Range<usize>, out: &mut String, depth: usize) {
        let text = &source.text[range.clone()];
        let mut at = 0;
        for link in find(text) {
            self.push(out, &text[at..link.range.start]);
            at = link.range.end;
            let span = Span::new(range.start + link.range.start, range.start + link.range.end);
            match self.one(&link, source.path(), dir, out, depth) {
                Ok(()) => {}
                Err(e) => {
                    self.diags.push(Diagnostic::error(source, span, e.to_string()));
                    self.push(out, link.text);
                }
            }
        }
        self.push(out, &text[at..]);
    }

    fn push(&mut self, out: &mut String, s: &str) {
        self.written += s.len();
        if self.written <= MAX_PAGE {
            out.push_str(s);
        }
    }

    fn one(
        &mut self,
        link: &Link<'_>,
        from: &Path,
        dir: &Path,
        out: &mut String,
        depth: usize,
    ) -> Result<(), LinkError> {
        let shown = || link.text.to_string();
        let mut words = link.arg.split_whitespace();
        let file_arg = words.next().unwrap_or("");
        let (file, spec) = match link.kind {
            Kind::Escaped => {
                self.push(out, &link.text[1..]);
                return Ok(());
            }
            Kind::Title => {
                self.title = Some(link.arg.trim().to_string());
                return Ok(());
            }
            Kind::Playground => (file_arg, None),
            Kind::Include | Kind::RustdocInclude => match file_arg.split_once(':') {
                Some((f, s)) => (f, Some(s)),
                None => (file_arg, None),
            },
        };
        if depth >= MAX_DEPTH {
            return Err(LinkError::TooDeep { link: shown() });
        }
        self.reads += 1;
        if self.reads > MAX_READS {
            return Err(LinkError::TooMany { link: shown() });
        }
        let path = self.confined(&dir.join(file), link)?;
        let text = read_limited(&path).map_err(|why| LinkError::Unreadable {
            link: shown(),
            path: path.display().to_string(),
            why,
        })?;
        if self.written + text.len() > MAX_PAGE {
            return Err(LinkError::TooBig { link: shown() });
        }
        let body = match link.kind {
            Kind::Playground => {
                let props: Vec<&str> = words.collect();
                let lang = if props.is_empty() {
                    "rust".into()
                } else {
                    format!("rust,{}", props.join(","))
                };
                let nl = if text.ends_with('\n') { "" } else { "\n" };
                format!("```{lang}\n{text}{nl}```\n")
            }
            _ => select(&text, spec),
        };
        if !self.budget.take(&path, text.len(), body.len()) {
            return Err(LinkError::OverBudget { link: shown() });
        }
        // What an include brings in has links of its own, resolved from its own directory.
        // Named from the page (`runbooks/part.md`), read from where it really is.
        let named = lexical(&from.parent().unwrap_or(Path::new("")).join(file));
        let included = Source::new(named, body);
        let len = included.text.len();
        let real_dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.expand_at(&included, &real_dir, 0..len, out, depth + 1);
        if self.written > MAX_PAGE {
            return Err(LinkError::TooBig { link: shown() });
        }
        Ok(())
    }

    /// The canonical path of `path` when it is inside the root.
    fn confined(&self, path: &Path, link: &Link<'_>) -> Result<PathBuf, LinkError> {
        let real = path.canonicalize().map_err(|e| LinkError::Unreadable {
            link: link.text.to_string(),
            path: path.display().to_string(),
            why: crate::load::io_message(&e),
        })?;
        if real.starts_with(self.root) {
            Ok(real)
        } else {
            Err(LinkError::Outside {
                link: link.text.to_string(),
                path: real.display().to_string(),
                root: self.root.display().to_string(),
            })
        }
    }
}

/// `a/./b/../c` as `a/c`, without looking at the file system (for a name in a message).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reads a text file of at most [`MAX_PAGE`] bytes.
fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| crate::load::io_message(&e))?;
    if !f.metadata().map_err(|e| crate::load::io_message(&e))?.is_file() {
        return Err("not a file".into());
    }
    let mut bytes = Vec::new();
    f.take(MAX_PAGE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| crate::load::io_message(&e))?;
    if bytes.len() > MAX_PAGE {
        return Err(format!("larger than {} MiB", MAX_PAGE >> 20));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

/// The lines an include asks for: `N`, `N:M`, `N:`, `:M` (1-based, as mdBook) or an anchor name.
fn select(text: &str, spec: Option<&str>) -> String {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return text.lines().collect::<Vec<_>>().join("\n");
    };
    let mut parts = spec.splitn(2, ':');
    let first = parts.next().unwrap_or("");
    let start = match first.parse::<usize>() {
        Ok(n) => Some(n.saturating_sub(1)),
        Err(_) if first.is_empty() => None,
        Err(_) => return anchored(text, first),
    };
    let end = parts.next().map(|e| e.parse::<usize>().ok());
    let (skip, take) = match (start, end) {
        (Some(s), Some(Some(e))) => (s, e.saturating_sub(s)),
        (Some(s), Some(None)) => (s, usize::MAX),
        (Some(s), None) => (s, 1),
        (None, Some(Some(e))) => (0, e),
        (None, _) => (0, usize::MAX),
    };
    text.lines().skip(skip).take(take).collect::<Vec<_>>().join("\n")
}

/// The lines between `ANCHOR: name` and `ANCHOR_END: name`, without anchor lines.
fn anchored(text: &str, name: &str) -> String {
    let is_marker = |l: &str, m: &str| {
        l.find(m).is_some_and(|i| {
            let rest = l[i + m.len()..].trim_start();
            rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .next()
                == Some(name)
        })
    };
    let mut out = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if inside {
            if is_marker(l, "ANCHOR_END:") {
                break;
            }
            if !l.contains("ANCHOR:") && !l.contains("ANCHOR_END:") {
                out.push(l);
            }
        } else if is_marker(l, "ANCHOR:") {
            inside = true;
        }
    }
    out.join("\n")
}

/// The parts of a file that are not machine blocks (whose spans are given in file order).
pub fn prose_ranges(len: usize, machine: &[Span]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    for m in machine {
        if m.start >= at {
            out.push(at..m.start);
            at = m.end;
        }
    }
    out.push(at..len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links_as_mdbook_does() {
        let links = find("a {{#include x.md:2:3}} b {{ #title T }} \\{{#include y}} {{#other z}} {{#include}}");
        let kinds: Vec<_> = links.iter().map(|l| l.kind.clone()).collect();
        assert_eq!(kinds, [Kind::Include, Kind::Title, Kind::Escaped]);
        assert_eq!(links[0].arg, "x.md:2:3");
    }

    #[test]
    fn selects_lines_and_anchors() {
        let t = "one\ntwo\nthree\n// ANCHOR: a\nfour\n// ANCHOR_END: a\n";
        assert_eq!(select(t, Some("2")), "two");
        assert_eq!(select(t, Some("2:3")), "two\nthree");
        assert_eq!(select(t, Some(":2")), "one\ntwo");
        assert_eq!(select(t, Some("a")), "four");
        assert_eq!(select("x\ny\n", None), "x\ny");
    }

    #[test]
    fn includes_stay_inside_the_root_and_nest_boundedly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::write(root.join("a.md"), "A {{#include b.md}}").expect("write");
        std::fs::write(root.join("b.md"), "B").expect("write");
        std::fs::write(root.join("loop.md"), "{{#include loop.md}}").expect("write");
        let page = Source::new(root.join("page.md"), "x {{#include a.md}} {{#include /etc/hostname}}");
        let budget = Budget::new(0);
        let mut e = Expander::new(&root, &budget);
        let mut out = String::new();
        e.expand(&page, 0..page.text.len(), &mut out);
        assert!(out.starts_with("x A B "), "{out}");
        let diags = e.diags.finish("page.md");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("outside"), "{diags:?}");
        let page = Source::new(root.join("page.md"), "{{#include loop.md}}");
        let mut e = Expander::new(&root, &budget);
        e.expand(&page, 0..page.text.len(), &mut String::new());
        let diags = e.diags.finish("page.md");
        assert!(diags.iter().any(|d| d.message.contains("deep")), "{diags:?}");
    }

    #[test]
    fn includes_share_one_budget_across_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::write(root.join("big.md"), "x".repeat(300 << 10)).expect("write");
        let budget = Budget::new(0);
        let mut refused = 0;
        for n in 0..10 {
            let page = Source::new(root.join(format!("p{n}.md")), "{{#include big.md}}");
            let mut e = Expander::new(&root, &budget);
            e.expand(&page, 0..page.text.len(), &mut String::new());
            refused += e.diags.finish("p.md").len();
        }
        // 1 MiB plus twice the 300 KiB file: five includes of it, not ten.
        assert_eq!(refused, 5);
    }
}
