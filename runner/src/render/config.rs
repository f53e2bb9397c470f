//! book.toml, by allow-list: it comes from pull requests too. Only the keys in [`KEYS`] are
//! honoured, each with the values it may take (the publishing page lists them); any other key is
//! an error at its `book.toml:line:col`, so nothing a key could do (run a program, load a script,
//! read a theme, write a file) is left to mdBook. Every path in it (the pages' directory, extra
//! CSS, the 404 page, redirects and their targets) is normalised and must stay inside the book or
//! the site; the book's files are read from the staged copy, which holds no symbolic link, so no
//! path can pass through one.

use std::path::{Path, PathBuf};

use mdbook_driver::config::Config;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Diagnostic;
use crate::source::{Source, Span};

/// What a key may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Bool,
    /// A whole number in this range.
    Int(i64, i64),
    /// Text shown on the site (escaped by mdBook).
    Text,
    TextList,
    /// `light`, `rust`, `coal`, `navy` or `ayu`.
    Theme,
    /// A language tag such as `en` or `pt-BR`.
    Language,
    /// `ltr` or `rtl`.
    Direction,
    /// An http(s) URL of plain characters.
    WebUrl,
    /// A Font Awesome icon name.
    Icon,
    /// The path the site is served under: `/`, `/docs/`.
    SiteUrl,
    /// A host name (GitHub Pages' CNAME file).
    Host,
    /// The pages' directory, inside the book.
    Src,
    /// A page inside the pages' directory.
    Page404,
    /// CSS files inside the book.
    Css,
    /// A table of site paths to pages of the site or http(s) URLs.
    Redirect,
}

/// The keys `runbook render` honours (book/src/ci.md lists them).
const KEYS: &[(&str, Rule)] = &[
    ("book.title", Rule::Text),
    ("book.authors", Rule::TextList),
    ("book.description", Rule::Text),
    ("book.language", Rule::Language),
    ("book.text-direction", Rule::Direction),
    ("book.src", Rule::Src),
    ("output.html.default-theme", Rule::Theme),
    ("output.html.preferred-dark-theme", Rule::Theme),
    ("output.html.smart-punctuation", Rule::Bool),
    ("output.html.definition-lists", Rule::Bool),
    ("output.html.admonitions", Rule::Bool),
    ("output.html.no-section-label", Rule::Bool),
    ("output.html.hash-files", Rule::Bool),
    ("output.html.sidebar-header-nav", Rule::Bool),
    ("output.html.git-repository-url", Rule::WebUrl),
    ("output.html.edit-url-template", Rule::WebUrl),
    ("output.html.git-repository-icon", Rule::Icon),
    ("output.html.input-404", Rule::Page404),
    ("output.html.site-url", Rule::SiteUrl),
    ("output.html.cname", Rule::Host),
    ("output.html.additional-css", Rule::Css),
    ("output.html.redirect", Rule::Redirect),
    ("output.html.fold.enable", Rule::Bool),
    ("output.html.fold.level", Rule::Int(0, 10)),
    ("output.html.print.enable", Rule::Bool),
    ("output.html.print.page-break", Rule::Bool),
    ("output.html.search.enable", Rule::Bool),
    ("output.html.search.limit-results", Rule::Int(1, 1000)),
    ("output.html.search.teaser-word-count", Rule::Int(1, 1000)),
    ("output.html.search.use-boolean-and", Rule::Bool),
    ("output.html.search.boost-title", Rule::Int(0, 100)),
    ("output.html.search.boost-hierarchy", Rule::Int(0, 100)),
    ("output.html.search.boost-paragraph", Rule::Int(0, 100)),
    ("output.html.search.expand", Rule::Bool),
    ("output.html.search.heading-split-level", Rule::Int(0, 6)),
];

/// Why a key that is not honoured is refused, for the keys people reach for.
fn refusal(key: &str) -> String {
    let why = match key {
        "output.html.additional-js" => "it loads a script into every page, and the site runs only mdBook's own",
        "output.html.theme" => "a theme's templates could load scripts and other hosts; the site uses mdBook's",
        "output.html.mathjax-support" => "MathJax loads from another host",
        "output.html.live-reload-endpoint" => "it makes the site connect elsewhere",
        "output.html.playground" | "output.html.code" => "Rust playgrounds send code to another host",
        k if k.starts_with("preprocessor") => "a preprocessor runs a program",
        k if k.starts_with("output.") && !k.starts_with("output.html") => "another renderer runs a program",
        k if k.starts_with("build") => "`runbook render` decides where and how the book is built",
        _ => "it is not one of the keys `runbook render` honours (book/src/ci.md lists them)",
    };
    format!("`{key}` is not honoured: {why}")
}

/// Reads the staged book.toml (`shown` names the file as given) into an mdBook config holding
/// only the honoured keys, normalised; `root` is the staged book, `pages` its Markdown pages.
pub(super) fn read(
    root: &Path,
    shown: &Path,
    pages: &std::collections::BTreeSet<PathBuf>,
) -> Result<Config, Vec<Diagnostic>> {
    let path = root.join("book.toml");
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| vec![Diagnostic::file(shown.display().to_string(), "not UTF-8 text")])?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(vec![Diagnostic::file(
                shown.display().to_string(),
                crate::load::io_message(&e),
            )]);
        }
    };
    let source = Source::new(shown, text);
    let table = DeTable::parse(&source.text).map_err(|e| {
        let at = e.span().map_or(Span::default(), |r| Span::new(r.start, r.end));
        vec![Diagnostic::error(
            &source,
            at,
            format!("invalid TOML: {}", e.message().trim()),
        )]
    })?;
    let mut reader = Reader {
        source: &source,
        root,
        pages,
        out: toml::Table::new(),
        src: PathBuf::from("src"),
        diags: Vec::new(),
    };
    // `book.src` first: the 404 page is found in it.
    reader.walk(table.get_ref(), "", true);
    reader.walk(table.get_ref(), "", false);
    if !reader.diags.is_empty() {
        crate::diagnostic::sort(&mut reader.diags);
        return Err(reader.diags);
    }
    let text = toml::to_string(&reader.out).unwrap_or_default();
    text.parse::<Config>()
        .map_err(|e| vec![Diagnostic::file(shown.display().to_string(), format!("{e:#}"))])
}

struct Reader<'a> {
    source: &'a Source,
    root: &'a Path,
    pages: &'a std::collections::BTreeSet<PathBuf>,
    out: toml::Table,
    /// The pages' directory (normalised), once `book.src` is read.
    src: PathBuf,
    diags: Vec<Diagnostic>,
}

fn span_of<T>(s: &toml::Spanned<T>) -> Span {
    let r = s.span();
    Span::new(r.start, r.end)
}

impl Reader<'_> {
    /// Reads `table` (at dotted `prefix`); `src_only` reads nothing but `book.src`.
    fn walk(&mut self, table: &DeTable<'_>, prefix: &str, src_only: bool) {
        for (key, value) in table.iter() {
            let name = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            if src_only && name != "book.src" && !"book.src".starts_with(&format!("{name}.")) {
                continue;
            }
            let rule = KEYS.iter().find(|(k, _)| *k == name).map(|(_, r)| *r);
            match (rule, value.get_ref()) {
                (Some(rule), v) => {
                    if src_only || name != "book.src" {
                        self.value(&name, rule, v, span_of(value));
                    }
                }
                (None, DeValue::Table(t)) if KEYS.iter().any(|(k, _)| k.starts_with(&format!("{name}."))) => {
                    self.walk(t, &name, src_only);
                }
                (None, _) => self.error(span_of(key), refusal(&name)),
            }
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(self.source, span, message));
    }

    /// Sets `key` (dotted) in the config that mdBook reads.
    fn set(&mut self, key: &str, value: toml::Value) {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut table = &mut self.out;
        for p in parts {
            let entry = table
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            let Some(t) = entry.as_table_mut() else { return };
            table = t;
        }
        table.insert(last.to_string(), value);
    }

    fn value(&mut self, key: &str, rule: Rule, v: &DeValue<'_>, span: Span) {
        let short = key.rsplit('.').next().unwrap_or(key).to_string();
        let text = v.as_str();
        let result: Result<toml::Value, String> = match rule {
            Rule::Bool => match v {
                DeValue::Boolean(b) => Ok(toml::Value::Boolean(*b)),
                _ => Err("must be true or false".into()),
            },
            Rule::Int(lo, hi) => match v {
                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .filter(|n| (lo..=hi).contains(n))
                    .map(toml::Value::Integer)
                    .ok_or_else(|| format!("must be a whole number from {lo} to {hi}")),
                _ => Err(format!("must be a whole number from {lo} to {hi}")),
            },
            Rule::Text => text
                .filter(|t| t.len() <= 1000)
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be text (at most 1000 characters)".into()),
            Rule::TextList => match v {
                DeValue::Array(items) => items
                    .iter()
                    .map(|i| i.get_ref().as_str().map(|s| toml::Value::String(s.into())))
                    .collect::<Option<Vec<_>>>()
                    .map(toml::Value::Array)
                    .ok_or_else(|| "must be a list of names".into()),
                _ => Err("must be a list of names".into()),
            },
            Rule::Theme => text
                .filter(|t| ["light", "rust", "coal", "navy", "ayu"].contains(t))
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be one of light, rust, coal, navy, ayu".into()),
            Rule::Language => text
                .filter(|t| !t.is_empty() && t.len() <= 35 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be a language tag such as `en` or `pt-BR`".into()),
            Rule::Direction => text
                .filter(|t| ["ltr", "rtl"].contains(t))
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be ltr or rtl".into()),
            Rule::WebUrl => text
                .filter(|t| web_url(t))
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be an http(s) URL of plain characters".into()),
            Rule::Icon => text
                .filter(|t| {
                    !t.is_empty()
                        && t.len() <= 64
                        && t.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be an icon name such as `fab-github`".into()),
            Rule::SiteUrl => text
                .filter(|t| {
                    t.starts_with('/') && t.ends_with('/') && !t.starts_with("//") && plain(t) && normal(t).is_some()
                })
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be the path the site is served under, such as `/docs/`".into()),
            Rule::Host => text
                .filter(|t| {
                    !t.is_empty()
                        && t.len() <= 253
                        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                })
                .map(|t| toml::Value::String(t.into()))
                .ok_or_else(|| "must be a host name".into()),
            Rule::Src => match text.map(|t| (t, normal(t))) {
                Some((_, Some(p))) if !p.as_os_str().is_empty() && self.root.join(&p).is_dir() => {
                    self.src = p.clone();
                    Ok(toml::Value::String(super::slash(&p)))
                }
                _ => Err("must be a directory inside the book (not a symbolic link, not hidden)".into()),
            },
            Rule::Page404 => match text.and_then(|t| normal(t).map(|p| (t, p))) {
                Some((t, p)) if self.pages.contains(&self.src.join(&p)) => Ok(toml::Value::String(if t.is_empty() {
                    t.into()
                } else {
                    super::slash(&p)
                })),
                _ => Err("must be a Markdown page inside the book's pages".into()),
            },
            Rule::Css => self.css(v),
            Rule::Redirect => self.redirects(v),
        };
        match result {
            Ok(value) => self.set(key, value),
            Err(why) => self.error(span, format!("`{short}` {why}")),
        }
    }

    /// Extra CSS: each a file of the book (staged copies hold no symbolic links or hidden files).
    fn css(&mut self, v: &DeValue<'_>) -> Result<toml::Value, String> {
        let DeValue::Array(items) = v else {
            return Err("must be a list of CSS files inside the book".into());
        };
        let mut files = Vec::new();
        for item in items.iter() {
            let file = item.get_ref().as_str().and_then(normal);
            match file {
                Some(p) if p.extension().is_some_and(|e| e == "css") && self.root.join(&p).is_file() => {
                    files.push(toml::Value::String(super::slash(&p)));
                }
                _ => {
                    let shown = item.get_ref().as_str().unwrap_or("?").to_string();
                    self.error(
                        span_of(item),
                        format!("additional-css `{shown}` is not a .css file inside the book (symbolic links and hidden files are not read)"),
                    );
                }
            }
        }
        Ok(toml::Value::Array(files))
    }

    /// Redirects: each key a path inside the site, each target a page of the site (resolved
    /// from the key's directory) or an http(s) URL; plain characters only, since mdBook writes
    /// both into a script of the redirect page.
    fn redirects(&mut self, v: &DeValue<'_>) -> Result<toml::Value, String> {
        let DeValue::Table(table) = v else {
            return Err("must be a table of old paths to new pages".into());
        };
        let mut out = toml::Table::new();
        for (key, target) in table.iter() {
            let from = key.get_ref().to_string();
            let (path, fragment) = from
                .split_once('#')
                .map_or((from.as_str(), None), |(p, f)| (p, Some(f)));
            let normalised =
                normal(path).filter(|p| plain(&from) && !p.as_os_str().is_empty() && fragment.is_none_or(plain));
            let Some(page) = normalised else {
                self.error(
                    span_of(key),
                    format!("redirect `{from}` must be a path inside the site, of plain characters"),
                );
                continue;
            };
            let Some(to) = target.get_ref().as_str() else {
                self.error(
                    span_of(target),
                    "a redirect's target must be a page of the site or an http(s) URL",
                );
                continue;
            };
            let dir = page.parent().map(Path::to_path_buf).unwrap_or_default();
            let inside = if to.starts_with('/') && !to.starts_with("//") {
                normal(to).is_some()
            } else {
                normal(&format!("{}/{to}", super::slash(&dir))).is_some()
            };
            let ok = plain(to) && (web_url(to) || (!to.contains(':') && !to.starts_with("//") && inside));
            if !ok {
                self.error(
                    span_of(target),
                    format!("redirect target `{to}` must be a page of the site or an http(s) URL, of plain characters"),
                );
                continue;
            }
            let key = match fragment {
                Some(f) => format!("/{}#{f}", super::slash(&page)),
                None => format!("/{}", super::slash(&page)),
            };
            out.insert(key, toml::Value::String(to.into()));
        }
        Ok(toml::Value::Table(out))
    }
}

/// Characters a URL or path from book.toml may hold: none that ends a quoted attribute, a
/// script's string or a tag.
fn plain(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~/%#?=&+:@!$,;*()".contains(c))
}

fn web_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://")) && plain(s) && s.len() <= 2000
}

/// `a/./b/../c` as `a/c` (a leading `/` dropped); `None` when it climbs out or holds a
/// backslash.
fn normal(p: &str) -> Option<PathBuf> {
    if p.contains('\\') || p.contains('\0') {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            other => out.push(other),
        }
    }
    Some(out.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<Config, Vec<String>> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("src")).expect("src");
        std::fs::write(dir.path().join("book.toml"), text).expect("write");
        std::fs::write(dir.path().join("theme.css"), "").expect("write");
        let pages = [PathBuf::from("src/404.md")].into_iter().collect();
        read(dir.path(), Path::new("book/book.toml"), &pages).map_err(|ds| {
            ds.iter()
                .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
                .collect()
        })
    }

    #[test]
    fn only_documented_keys_are_honoured() {
        let ok = read_text(
            "[book]\ntitle = \"T\"\n[output.html]\nadditional-css = [\"./theme.css\"]\ninput-404 = \"404.md\"\n[output.html.redirect]\n\"/a/../old.html\" = \"new.html\"\n",
        );
        let config = ok.expect("honoured");
        let html = config.html_config().unwrap_or_default();
        assert_eq!(html.redirect.get("/old.html").map(String::as_str), Some("new.html"));
        assert_eq!(html.additional_css, [PathBuf::from("theme.css")]);
        let errs = read_text(
            "[output.html]\nadditional-js = [\"x.js\"]\nmathjax-support = true\n[preprocessor.x]\ncommand = \"y\"\n",
        )
        .err()
        .unwrap_or_default();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("2:1: `output.html.additional-js` is not honoured: it loads a script"),
            "{errs:?}"
        );
    }

    #[test]
    fn paths_stay_inside_the_book_and_the_site() {
        for bad in [
            "[output.html.redirect]\n\"/../../escaped/pwned.html\" = \"index.html\"\n",
            "[output.html.redirect]\n\"/x.html\" = \"../../../../elsewhere.html\"\n",
            "[output.html.redirect]\n\"/x.html\" = \"javascript:alert(1)\"\n",
            "[output.html.redirect]\n\"/x.html\" = \"a\\\"</script><script>alert(1)//\"\n",
            "[output.html]\nadditional-css = [\"../../etc/passwd\"]\n",
            "[book]\nsrc = \"../elsewhere\"\n",
        ] {
            let errs = read_text(bad).err().unwrap_or_default();
            assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        }
    }
}
