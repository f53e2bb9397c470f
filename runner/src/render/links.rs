//! mdBook's links (`{{#include}}`, `{{#rustdoc_include}}`, `{{#playground}}`, `{{#title}}`), done
//! by us instead of mdBook's `links` preprocessor, so that they can be confined: a link reads only
//! files that resolve (symlinks followed) inside its root (the runbooks directory for a runbook,
//! the book directory for a book page), and never inside a step block. `check` runs the same code
//! and reports what it would refuse as located errors.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

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
}

/// What links are resolved against, and what they have read so far.
pub struct Expander<'a> {
    /// The canonical directory every file read must be inside.
    pub root: &'a Path,
    /// Bytes written so far (the page, includes included).
    written: usize,
    /// Files read so far.
    reads: usize,
    /// `{{#title}}`, when one was given.
    pub title: Option<String>,
    pub diags: Diags,
}

impl<'a> Expander<'a> {
    pub fn new(root: &'a Path) -> Self {
        Expander {
            root,
            written: 0,
            reads: 0,
            title: None,
            diags: Diags::new(),
        }
    }

    /// Appends `source.text[range]` to `out` with its links expanded. A refused link is a
    /// diagnostic located in `source` and stays as written.
    pub fn expand(&mut self, source: &Source, range: Range<usize>, out: &mut String) {
        self.expand_at(source, range, out, 0);
    }

    fn expand_at(&mut self, source: &Source, range: Range<usize>, out: &mut String, depth: usize) {
        let text = &source.text[range.clone()];
        let dir = source.path().parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut at = 0;
        for link in find(text) {
            self.push(out, &text[at..link.range.start]);
            at = link.range.end;
            let span = Span::new(range.start + link.range.start, range.start + link.range.end);
            match self.one(&link, &dir, out, depth) {
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

    fn one(&mut self, link: &Link<'_>, dir: &Path, out: &mut String, depth: usize) -> Result<(), LinkError> {
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
        // What an include brings in has links of its own, resolved from its own directory.
        let included = Source::new(path, body);
        let len = included.text.len();
        self.expand_at(&included, 0..len, out, depth + 1);
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
        let mut e = Expander::new(&root);
        let mut out = String::new();
        e.expand(&page, 0..page.text.len(), &mut out);
        assert!(out.starts_with("x A B "), "{out}");
        let diags = e.diags.finish("page.md");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("outside"), "{diags:?}");
        let page = Source::new(root.join("page.md"), "{{#include loop.md}}");
        let mut e = Expander::new(&root);
        e.expand(&page, 0..page.text.len(), &mut String::new());
        let diags = e.diags.finish("page.md");
        assert!(diags.iter().any(|d| d.message.contains("deep")), "{diags:?}");
    }
}
