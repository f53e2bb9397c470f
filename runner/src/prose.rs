//! A section's Markdown made legible in a terminal: wrapped paragraphs, headings, lists, links.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

/// Renders Markdown for a terminal `width` columns wide.
pub fn render(markdown: &str, width: usize, color: bool) -> String {
    let width = width.clamp(40, 100);
    let mut out = String::new();
    let mut para = String::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut link: Vec<String> = Vec::new();
    let mut in_code = false;
    let mut item_prefix: Option<String> = None;
    let bold = |s: &str| {
        if color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };

    let flush = |para: &mut String, out: &mut String, indent: usize, prefix: Option<String>| {
        let text = para.trim();
        if text.is_empty() {
            return;
        }
        let first = prefix.unwrap_or_else(|| " ".repeat(indent));
        let rest = " ".repeat(first.chars().count());
        let opts = textwrap::Options::new(width)
            .initial_indent(&first)
            .subsequent_indent(&rest)
            .break_words(false)
            .word_separator(textwrap::WordSeparator::AsciiSpace)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        out.push_str(&textwrap::fill(text, opts));
        out.push('\n');
        para.clear();
    };

    for event in Parser::new_ext(markdown, crate::parser::markdown_options()) {
        let indent = lists.len() * 2;
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                flush(&mut para, &mut out, indent, item_prefix.take());
                if !out.is_empty() {
                    out.push('\n');
                }
                if level == HeadingLevel::H1 {
                    para.push_str("# ");
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                out.push_str(&bold(para.trim()));
                out.push('\n');
                para.clear();
            }
            Event::Start(Tag::Paragraph) => {}
            Event::End(TagEnd::Paragraph) => {
                flush(&mut para, &mut out, indent, item_prefix.take());
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::List(start)) => {
                flush(&mut para, &mut out, indent, item_prefix.take());
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                flush(&mut para, &mut out, indent, item_prefix.take());
                let depth = lists.len().saturating_sub(1) * 2;
                let marker = match lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => "• ".to_string(),
                };
                item_prefix = Some(format!("{}{marker}", " ".repeat(depth + 2)));
            }
            Event::End(TagEnd::Item) => flush(&mut para, &mut out, indent, item_prefix.take()),
            Event::Start(Tag::Link { dest_url, .. }) => link.push(dest_url.to_string()),
            Event::End(TagEnd::Link) => {
                if let Some(url) = link.pop() {
                    if !para.ends_with(&url) {
                        para.push_str(&format!(" <{url}>"));
                    }
                }
            }
            Event::Start(Tag::CodeBlock(_)) => {
                flush(&mut para, &mut out, indent, item_prefix.take());
                in_code = true;
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = false;
                out.push('\n');
            }
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) if color => {
                para.push_str(if matches!(event, Event::Start(_)) {
                    "\x1b[1m"
                } else {
                    "\x1b[0m"
                })
            }
            Event::Text(t) if in_code => {
                for line in t.lines() {
                    out.push_str(&format!("{}    {line}\n", " ".repeat(indent)));
                }
            }
            Event::Text(t) => para.push_str(&t),
            Event::Code(t) => {
                para.push('`');
                para.push_str(&t);
                para.push('`');
            }
            Event::SoftBreak | Event::HardBreak => para.push(' '),
            Event::TaskListMarker(done) => para.push_str(if done { "[x] " } else { "[ ] " }),
            Event::Html(h) | Event::InlineHtml(h) if !h.trim_start().starts_with("<!--") => para.push_str(&h),
            _ => {}
        }
    }
    flush(&mut para, &mut out, 0, item_prefix.take());
    out.trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_links_and_wrapping() {
        let md =
            "Open the [console](https://console.aws.amazon.com) and:\n\n1. Choose **Enable**.\n2. Wait.\n\n- a\n- b\n";
        let out = render(md, 40, false);
        assert_eq!(
            out,
            "Open the console\n<https://console.aws.amazon.com> and:\n\n  1. Choose Enable.\n  2. Wait.\n\n  • a\n  • b\n"
        );
    }

    /// A URL is one word however long: wrapping moves it to a line of its own, never splits it
    /// (at a hyphen, a slash or a query separator), so it stays whole for the terminal to open.
    #[test]
    fn urls_are_never_broken() {
        let long = "https://us-east-1.console.aws.amazon.com/singlesignon/home?region=us-east-1#/instances/ssoins-7223a1e34a0b3c4d/users/create-user-with-a-very-long-path";
        let md = format!(
            "Open [the form]({long}) in the console, or paste {long} into a browser, or <{long}>.\n\n- in a list: {long}\n"
        );
        for width in [40, 60, 80] {
            let out = render(&md, width, false);
            assert_eq!(out.matches(long).count(), 4, "width {width}: {out}");
            for line in out.lines() {
                assert!(
                    line.chars().count() <= width || line.contains(long),
                    "width {width}: only a URL may overflow: {line:?}"
                );
            }
        }
    }
}
