//! Content from pull requests, made safe for the published site. Raw HTML goes through ammonia's
//! allow-list (a whole HTML block at once, an inline tag on its own, as mdBook reads them); links,
//! autolinks and images keep only `http`, `https`, `mailto` and relative URLs (any other becomes
//! its text); heading attributes other than an id and classes are not kept. `render` applies
//! [`sanitize`] to every chapter once its includes and cards are in; `check` reports [`changes`]
//! as warnings, so an author learns where the site will differ from what they wrote. Both use
//! this module; neither imports the other.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::LazyLock;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
use mdbook_markdown::MarkdownOptions;
use mdbook_markdown::pulldown_cmark::{Event, Tag, TagEnd};

/// The URL schemes a link or an image may have; a URL without a scheme (relative) is kept too.
pub const SCHEMES: &[&str] = &["http", "https", "mailto"];

/// Rounds of [`sanitize`]: a change can make a construct of the text around it (a removed tag
/// between `[x]` and `(...)` makes a link), so the result is read again until nothing changes.
const ROUNDS: usize = 4;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    // No `rel` added to links: a link the author wrote stays as written when it is safe.
    b.url_schemes(SCHEMES.iter().copied().collect()).link_rel(None);
    b
});

/// One place where the site differs from the Markdown: `range` of the text is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub range: Range<usize>,
    pub replacement: String,
    /// What is not kept, for `check`'s warning (empty on the later lines of an HTML block).
    pub why: String,
}

/// Whether a link or image URL may be published: no scheme (relative) or one of [`SCHEMES`],
/// read as a browser reads it (leading spaces and control characters dropped, tabs and newlines
/// removed anywhere).
pub fn safe_url(url: &str) -> bool {
    let cleaned: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    match scheme(&cleaned) {
        None => true,
        Some(s) => SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(s)),
    }
}

fn scheme(url: &str) -> Option<&str> {
    let end = url.find([':', '/', '?', '#'])?;
    let s = &url[..end];
    let valid = url[end..].starts_with(':')
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(s)
}

/// The options mdBook's HTML renderer parses with, by default.
pub fn default_options() -> MarkdownOptions {
    MarkdownOptions::default()
}

/// Where publishing `text` changes it, in text order and never overlapping. Ranges in `keep`
/// (the cards `render` wrote) are left alone.
pub fn changes(text: &str, options: &MarkdownOptions, keep: &[Range<usize>]) -> Vec<Change> {
    // A line of an HTML block ends with its newline, which a card's range need not hold.
    let kept = |r: &Range<usize>| {
        let end = if text[r.clone()].ends_with('\n') {
            r.end - 1
        } else {
            r.end
        };
        keep.iter().any(|k| k.start <= r.start && end <= k.end)
    };
    let mut out = Vec::new();
    let mut events = mdbook_markdown::new_cmark_parser(text, options).into_offset_iter();
    while let Some((event, range)) = events.next() {
        match event {
            Event::Start(Tag::HtmlBlock) => {
                // mdBook reads a block's lines as one piece of HTML.
                let mut lines: Vec<Range<usize>> = Vec::new();
                let mut html = String::new();
                for (e, r) in events.by_ref() {
                    match e {
                        Event::End(TagEnd::HtmlBlock) => break,
                        Event::Html(t) | Event::Text(t) => {
                            html.push_str(&t);
                            lines.push(r);
                        }
                        _ => {}
                    }
                }
                if lines.iter().all(kept) {
                    continue;
                }
                if let Some((clean, why)) = html_block(&html) {
                    // The sanitized block on the first line (one line, inside a <div>, so it stays
                    // one HTML block in any container); the other lines are emptied.
                    for (i, r) in lines.iter().enumerate() {
                        let nl = if text[r.clone()].ends_with('\n') { "\n" } else { "" };
                        let replacement = if i == 0 { format!("{clean}{nl}") } else { nl.to_string() };
                        out.push(Change {
                            range: r.clone(),
                            replacement,
                            why: if i == 0 { why.clone() } else { String::new() },
                        });
                    }
                }
            }
            Event::InlineHtml(t) if !kept(&range) => {
                if let Some((replacement, why)) = inline_html(&t) {
                    out.push(Change {
                        range,
                        replacement,
                        why,
                    });
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) if !safe_url(&dest_url) && !kept(&range) => {
                let text = plain_text(&mut events);
                out.push(Change {
                    range,
                    replacement: escape(&text),
                    why: format!(
                        "the link to `{}` (not http, https, mailto or relative) is shown as its text",
                        shown(&dest_url)
                    ),
                });
            }
            Event::Start(Tag::Image { dest_url, .. }) if !safe_url(&dest_url) && !kept(&range) => {
                let text = plain_text(&mut events);
                out.push(Change {
                    range,
                    replacement: escape(&text),
                    why: format!(
                        "the image `{}` (not http, https or relative) is shown as its text",
                        shown(&dest_url)
                    ),
                });
            }
            Event::Start(Tag::Heading { attrs, .. }) if !attrs.is_empty() && !kept(&range) => {
                let at = attribute_block(&text[range.clone()]);
                if let Some(at) = at.map(|a| range.start + a) {
                    out.push(Change {
                        range: at..at + 1,
                        replacement: "&#123;".into(),
                        why: format!(
                            "heading attributes other than an id and classes (`{}`) are not published; the block is shown as text",
                            shown(&attrs[0].0)
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// `text` as the site publishes it (see [`changes`]); `None` when it does not settle.
pub fn sanitize(text: &str, options: &MarkdownOptions, keep: &[Range<usize>]) -> Option<String> {
    let mut text = text.to_string();
    let mut keep = keep.to_vec();
    for _ in 0..ROUNDS {
        let changes = changes(&text, options, &keep);
        if changes.is_empty() {
            return Some(text);
        }
        (text, keep) = apply(&text, &changes, &keep);
    }
    None
}

/// Applies `changes` (in order, not overlapping) and moves the `keep` ranges with the text; a
/// kept range that a change touched is no longer kept.
fn apply(text: &str, changes: &[Change], keep: &[Range<usize>]) -> (String, Vec<Range<usize>>) {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for c in changes {
        if c.range.start < at {
            continue;
        }
        out.push_str(&text[at..c.range.start]);
        out.push_str(&c.replacement);
        at = c.range.end;
    }
    out.push_str(&text[at..]);
    let moved = keep
        .iter()
        .filter(|k| !changes.iter().any(|c| c.range.start < k.end && k.start < c.range.end))
        .map(|k| {
            let shift: isize = changes
                .iter()
                .filter(|c| c.range.end <= k.start)
                .map(|c| c.replacement.len() as isize - c.range.len() as isize)
                .sum();
            let start = (k.start as isize + shift).max(0) as usize;
            start..start + k.len()
        })
        .collect();
    (out, moved)
}

/// The text of a link or image whose start was just read, up to its end.
fn plain_text<'a>(events: &mut impl Iterator<Item = (Event<'a>, Range<usize>)>) -> String {
    let mut text = String::new();
    let mut depth = 0usize;
    for (e, _) in events {
        match e {
            Event::Start(_) => depth += 1,
            Event::End(_) if depth == 0 => break,
            Event::End(_) => depth -= 1,
            Event::Text(t) | Event::Code(t) | Event::InlineHtml(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            _ => {}
        }
    }
    text
}

/// Text that Markdown reads as exactly these characters: every ASCII punctuation mark escaped,
/// line breaks as spaces (a replacement is one line).
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\r' => o.push(' '),
            c if c.is_ascii_punctuation() => {
                o.push('\\');
                o.push(c);
            }
            c => o.push(c),
        }
    }
    o
}

/// At most 80 characters of a URL or name, for a message.
fn shown(s: &str) -> String {
    let mut o: String = s.chars().take(80).collect();
    if o.len() < s.len() {
        o.push('…');
    }
    o
}

/// Where the attribute block `{...}` of a heading's source starts.
fn attribute_block(heading: &str) -> Option<usize> {
    let close = heading.rfind('}')?;
    heading[..close].rfind('{')
}

/// A block of raw HTML: `None` when ammonia keeps it as written, else the sanitized block (one
/// line, in a `<div>`) and what was not kept.
fn html_block(html: &str) -> Option<(String, String)> {
    let clean = CLEANER.clean(html).to_string();
    let (before, after) = (tokens(html), tokens(&clean));
    let why = difference(&before, &after)?;
    let one_line = clean.trim().replace('\r', "").replace('\n', "&#10;");
    Some((format!("<div>{one_line}</div>"), why))
}

/// An inline HTML tag (mdBook reads each on its own): `None` when kept as written; else ammonia's
/// version of the tag, or the tag escaped as text when ammonia drops the element.
fn inline_html(html: &str) -> Option<(String, String)> {
    let before = tokens(html);
    let tags: Vec<&html5ever::tokenizer::Tag> = before.iter().filter_map(as_tag).collect();
    let inert = before.iter().all(|t| {
        matches!(
            t,
            Token::CommentToken(_) | Token::DoctypeToken(_) | Token::ParseError(_) | Token::EOFToken
        )
    });
    if inert {
        return None;
    }
    let escaped = |why: String| Some((escape(html), why));
    let [tag] = tags.as_slice() else {
        return escaped("raw HTML it cannot read as one tag is shown as text".into());
    };
    let name = tag.name.to_string();
    match tag.kind {
        TagKind::EndTag => {
            let pair = format!("<{name}></{name}>");
            if CLEANER.clean(&pair).to_string() == pair {
                None
            } else {
                escaped(format!("raw HTML `</{name}>` is not published (shown as text)"))
            }
        }
        TagKind::StartTag => {
            let after = tokens(&CLEANER.clean(html).to_string());
            let kept = after
                .iter()
                .filter_map(as_tag)
                .next()
                .filter(|t| t.kind == TagKind::StartTag && t.name == tag.name);
            match kept {
                None => escaped(format!("raw HTML `<{name}>` is not published (shown as text)")),
                Some(k) if same_attrs(tag, k) => None,
                Some(k) => {
                    let why = difference(&before, &after)
                        .unwrap_or_else(|| format!("attributes of `<{name}>` are not published"));
                    Some((start_tag(k), why))
                }
            }
        }
    }
}

fn as_tag(t: &Token) -> Option<&html5ever::tokenizer::Tag> {
    match t {
        Token::TagToken(tag) => Some(tag),
        _ => None,
    }
}

fn attrs_of(t: &html5ever::tokenizer::Tag) -> Vec<(String, String)> {
    let mut a: Vec<(String, String)> = t
        .attrs
        .iter()
        .map(|a| (a.name.local.to_string(), a.value.to_string()))
        .collect();
    a.sort();
    a
}

fn same_attrs(a: &html5ever::tokenizer::Tag, b: &html5ever::tokenizer::Tag) -> bool {
    attrs_of(a) == attrs_of(b)
}

/// A start tag as HTML, its attribute values quoted and escaped.
fn start_tag(t: &html5ever::tokenizer::Tag) -> String {
    let mut o = format!("<{}", t.name);
    for (name, value) in attrs_of(t) {
        let v = value
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        o.push_str(&format!(" {name}=\"{v}\""));
    }
    o.push('>');
    o
}

/// What ammonia left out of `before` to make `after`, or `None` when they are the same HTML
/// (comments, whitespace and how attributes are quoted aside).
fn difference(before: &[Token], after: &[Token]) -> Option<String> {
    let (a, b) = (significant(before), significant(after));
    if a == b {
        return None;
    }
    for item in &a {
        if let Item::Start(name, attrs) = item {
            let same_name: Vec<&Item> = b
                .iter()
                .filter(|i| matches!(i, Item::Start(n, _) if n == name))
                .collect();
            if same_name.is_empty() {
                return Some(format!("raw HTML `<{name}>` is not published"));
            }
            for (attr, value) in attrs {
                let kept = same_name
                    .iter()
                    .any(|i| matches!(i, Item::Start(_, at) if at.iter().any(|(n, v)| n == attr && v == value)));
                if !kept {
                    return Some(format!("the `{attr}` attribute of `<{name}>` is not published"));
                }
            }
        }
    }
    Some("raw HTML is published as the sanitizer reads it (tags closed or moved)".into())
}

#[derive(Debug, PartialEq, Eq)]
enum Item {
    Start(String, Vec<(String, String)>),
    End(String),
    Text(String),
}

/// Tags and text, comments and parse errors left out, whitespace collapsed.
fn significant(tokens: &[Token]) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for t in tokens {
        match t {
            Token::TagToken(tag) => out.push(match tag.kind {
                TagKind::StartTag => Item::Start(tag.name.to_string(), attrs_of(tag)),
                TagKind::EndTag => Item::End(tag.name.to_string()),
            }),
            Token::CharacterTokens(s) => {
                let words = s.split_whitespace().collect::<Vec<_>>().join(" ");
                if words.is_empty() {
                    continue;
                }
                match out.last_mut() {
                    Some(Item::Text(prev)) => {
                        prev.push(' ');
                        prev.push_str(&words);
                    }
                    _ => out.push(Item::Text(words)),
                }
            }
            _ => {}
        }
    }
    out
}

/// Collects tokens; `<script>` and `<style>` switch to raw text, as mdBook's reader does.
#[derive(Default)]
struct Collector(RefCell<Vec<Token>>);

impl TokenSink for Collector {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        use html5ever::tokenizer::states::RawKind;
        let raw = match &token {
            Token::TagToken(t) if t.kind == TagKind::StartTag && &*t.name == "script" => Some(RawKind::ScriptData),
            Token::TagToken(t) if t.kind == TagKind::StartTag && &*t.name == "style" => Some(RawKind::Rawtext),
            _ => None,
        };
        self.0.borrow_mut().push(token);
        match raw {
            Some(kind) => TokenSinkResult::RawData(kind),
            None => TokenSinkResult::Continue,
        }
    }
}

fn tokens(html: &str) -> Vec<Token> {
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(html));
    let tok = Tokenizer::new(Collector::default(), TokenizerOpts::default());
    let _ = tok.feed(&queue);
    tok.end();
    tok.sink.0.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(md: &str) -> String {
        sanitize(md, &default_options(), &[]).expect("settles")
    }

    #[test]
    fn urls_keep_only_safe_schemes() {
        for ok in [
            "https://x",
            "HTTP://x",
            "mailto:a@b",
            "page.md",
            "../a.html#x",
            "#top",
            "/abs",
            "x/y:z",
            "?q=a:b",
        ] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            " JavaScript:x",
            "java\tscript:x",
            "\u{1}javascript:x",
            "data:text/html,x",
            "vbscript:x",
            "file:///etc/passwd",
        ] {
            assert!(!safe_url(bad), "{bad}");
        }
    }

    #[test]
    fn hostile_markup_is_removed_and_the_rest_kept() {
        let out = clean(
            "a <img src=x onerror=alert(1)> b <kbd>Ctrl</kbd>\n\n<script>alert(2)</script>\n\n[x](javascript:alert(3)) <javascript:alert(4)> ![i](data:x)\n\n# T {onclick=alert(5)}\n",
        );
        for bad in ["onerror", "<script", "](javascript", "<javascript", "](data:"] {
            assert!(!out.contains(bad), "{bad} in {out}");
        }
        assert!(
            out.contains("<img src=\"x\">") && out.contains("<kbd>Ctrl</kbd>"),
            "{out}"
        );
        assert!(out.contains("&#123;onclick"), "{out}");
        // Kept as written when nothing is unsafe.
        let fine = "Some <b>bold</b> and [a link](https://example.com) and <!-- a comment -->.\n";
        assert_eq!(clean(fine), fine);
    }

    #[test]
    fn a_removed_tag_cannot_make_a_link() {
        let out = clean("[x]<foo>(javascript:alert(1))\n");
        assert!(changes(&out, &default_options(), &[]).is_empty(), "{out}");
        assert!(!out.contains("](javascript"), "{out}");
    }

    #[test]
    fn kept_ranges_are_left_alone() {
        let card = "<div class=\"rb-step\"><input type=\"checkbox\"></div>";
        let md = format!("intro\n\n{card}\n\n<input type=checkbox>\n");
        let start = md.find(card).unwrap_or(0);
        let ours = vec![Range {
            start,
            end: start + card.len(),
        }];
        let out = sanitize(&md, &default_options(), &ours).expect("settles");
        assert!(out.contains(card), "{out}");
        assert_eq!(out.matches("<input").count(), 1, "{out}");
    }
}
