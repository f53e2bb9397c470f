//! Markdown to [`Runbook`]: headings become sections, fenced blocks whose info string starts with
//! an executor word become steps, the `runbook` block becomes settings. Everything keeps its span.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::diagnostic::{Diagnostic, Diags, Severity};
use crate::model::{Attr, Attributes, Executor, Family, Runbook, Section, Settings, Step};
use crate::source::{Source, Span};

mod fences;
mod settings;
pub use fences::SHELLS;
use fences::{near_miss, shell_fence};
use settings::parse_settings;
pub use settings::{PATTERN_LIMIT, anchored};
pub(crate) use settings::{RawInput, toml_error};

/// The pulldown-cmark options every reader of a runbook uses (the renderer too).
pub fn markdown_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// Executor words: the first word of a step block's info string.
pub const EXECUTORS: [&str; 4] = ["manual", "rhai", "aws", "net"];

/// A fenced block as pulldown-cmark reported it.
struct Fenced {
    info: String,
    range: Range<usize>,
    /// (file range, text) of each piece of content.
    texts: Vec<(Range<usize>, String)>,
}

struct Heading {
    level: u8,
    range: Range<usize>,
    text: String,
}

/// Parses a runbook. Problems are returned as diagnostics beside the best model that could be
/// built, so `check` reports all of them at once.
pub fn parse(source: &Source) -> (Runbook, Vec<Diagnostic>) {
    let mut diags = Diags::new();
    let runbook = parse_into(source, &mut diags);
    (runbook, diags.finish(&source.path().display().to_string()))
}

/// [`parse`], adding its diagnostics to a file's capped collection.
pub fn parse_into(source: &Source, diags: &mut Diags) -> Runbook {
    let mut headings: Vec<Heading> = Vec::new();
    let mut blocks: Vec<Fenced> = Vec::new();
    let mut heading: Option<Heading> = None;
    let mut block: Option<Fenced> = None;

    for (event, range) in Parser::new_ext(&source.text, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some(Heading {
                    level: heading_level(level),
                    range,
                    text: String::new(),
                })
            }
            Event::End(TagEnd::Heading(_)) => headings.extend(heading.take()),
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                block = Some(Fenced {
                    info: info.to_string(),
                    range,
                    texts: Vec::new(),
                })
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(block.take()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(b) = block.as_mut() {
                    b.texts.push((range, t.to_string()));
                } else if let Some(h) = heading.as_mut() {
                    h.text.push_str(&t);
                }
            }
            _ => {}
        }
    }

    let mut settings = Settings::default();
    let mut machine_spans: Vec<Span> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    for b in &blocks {
        let info_span = info_span(source, b);
        let word = b.info.split_whitespace().next().unwrap_or("");
        let span = Span::new(b.range.start, b.range.end);
        if word == "runbook" {
            machine_spans.push(span);
            if settings.span.is_some() {
                diags.push_with(Severity::Error, || {
                    Diagnostic::error(source, info_span, "a second `runbook` block")
                        .with_help("a runbook has at most one settings block; merge them")
                });
                continue;
            }
            let (body, body_lines) = body_of(source, b);
            settings = parse_settings(source, &body, &body_lines, span, diags);
        } else if EXECUTORS.contains(&word) {
            machine_spans.push(span);
            let (body, body_lines) = body_of(source, b);
            if let Some(step) = parse_step(source, &b.info, info_span, span, body, body_lines, diags) {
                steps.push(step);
            }
        } else if let Some(d) =
            shell_fence(source, &b.info, info_span).or_else(|| near_miss(source, &b.info, info_span))
        {
            diags.push(d);
        }
    }

    let sections = build_sections(source, &headings, &machine_spans);
    assign_sections_and_ids(source, &sections, &mut steps, diags);

    let title = settings
        .title
        .clone()
        .or_else(|| {
            let top = headings.iter().map(|h| h.level).min()?;
            headings
                .iter()
                .find(|h| h.level == top)
                .map(|h| h.text.trim().to_string())
        })
        .unwrap_or_else(|| {
            source
                .path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });

    Runbook {
        path: source.path().display().to_string(),
        title,
        settings,
        sections,
        steps,
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// The info string's span on the opening fence line. pulldown-cmark gives the info string
/// unescaped; where that differs from the source the whole rest of the fence line is used.
fn info_span(source: &Source, b: &Fenced) -> Span {
    let text = &source.text;
    let line_end = text[b.range.start..]
        .find('\n')
        .map_or(text.len(), |i| b.range.start + i);
    let line = &text[b.range.start..line_end];
    let fence_at = line.find(['`', '~']).unwrap_or(0);
    let fence_char = line[fence_at..].chars().next().unwrap_or('`');
    let after_fence = fence_at + line[fence_at..].len() - line[fence_at..].trim_start_matches(fence_char).len();
    let rest = &line[after_fence..];
    let lead = rest.len() - rest.trim_start().len();
    let start = b.range.start + after_fence + lead;
    let end = b.range.start + line.trim_end().len().max(after_fence + lead);
    Span::new(start, end)
}

/// A block's body text and the file offset at which each of its lines starts.
fn body_of(source: &Source, b: &Fenced) -> (String, Vec<usize>) {
    let mut body = String::new();
    let mut lines = Vec::new();
    for (range, text) in &b.texts {
        let verbatim = source.text.get(range.clone()) == Some(text.as_str());
        let mut at = 0;
        for piece in text.split_inclusive('\n') {
            lines.push(if verbatim { range.start + at } else { range.start });
            at += piece.len();
        }
        body.push_str(text);
    }
    if lines.is_empty() {
        // An empty body: point at the line after the opening fence.
        let after = source.text[b.range.start..]
            .find('\n')
            .map_or(b.range.end, |i| b.range.start + i + 1);
        lines.push(after.min(b.range.end));
    }
    (body, lines)
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits an info string into words with their spans; quotes group, as in HTML attributes.
fn words(source: &Source, info_span: Span, diags: &mut Diags) -> Vec<(String, Option<Attr>, Span)> {
    let text = &source.text[info_span.start..info_span.end];
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = text[start..i].to_string();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            let (value, vstart, vend);
            if i < bytes.len() && (bytes[i] == b'\'' || bytes[i] == b'"') {
                let quote = bytes[i];
                let open = i;
                i += 1;
                vstart = i;
                match bytes[i..].iter().position(|&b| b == quote) {
                    Some(n) => {
                        vend = i + n;
                        i = vend + 1;
                    }
                    None => {
                        diags.push_with(Severity::Error, || {
                            Diagnostic::error(
                                source,
                                Span::new(open, open + 1).shifted(info_span.start),
                                format!("quoted value of `{key}` is never closed"),
                            )
                            .with_help(format!("close it with {}", quote as char))
                        });
                        vend = bytes.len();
                        i = bytes.len();
                    }
                }
                value = text[vstart..vend].to_string();
            } else {
                vstart = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                vend = i;
                value = text[vstart..vend].to_string();
            }
            let attr = Attr {
                value,
                span: Span::new(vstart, vend).shifted(info_span.start),
            };
            out.push((key, Some(attr), Span::new(start, i).shifted(info_span.start)));
        } else {
            out.push((key, None, Span::new(start, i).shifted(info_span.start)));
        }
    }
    out
}

pub const ATTRIBUTES: [&str; 12] = [
    "id",
    "if",
    "timeout",
    "retries",
    "on-failure",
    "for-each",
    "public",
    "mutates",
    "on-unknown",
    "account",
    "role",
    "region",
];

fn parse_step(
    source: &Source,
    info: &str,
    info_span: Span,
    span: Span,
    body: String,
    body_lines: Vec<usize>,
    diags: &mut Diags,
) -> Option<Step> {
    let words = words(source, info_span, diags);
    let mut iter = words.into_iter();
    let (word, _, word_span) = iter.next()?;
    let executor = match word.as_str() {
        "manual" => Executor::Manual,
        "rhai" => Executor::Rhai,
        "aws" | "net" => {
            let action = match iter.clone().next() {
                Some((name, None, _)) => {
                    iter.next();
                    name
                }
                _ => {
                    diags.push(
                        Diagnostic::error(source, word_span, format!("`{word}` step without an action")).with_help(
                            if word == "aws" {
                                "write the action after the executor, e.g. ```aws sts.whoami"
                            } else {
                                "write the action after the executor, e.g. ```net check-reachable"
                            },
                        ),
                    );
                    return None;
                }
            };
            let family = if word == "aws" { Family::Aws } else { Family::Net };
            Executor::action_step(family, &action)
        }
        _ => {
            let _ = info;
            return None;
        }
    };
    let mut attrs = Attributes::default();
    for (key, value, wspan) in iter {
        let Some(value) = value else {
            diags.push_with(Severity::Error, || {
                Diagnostic::error(source, wspan, format!("`{key}` is not a `key=value` attribute"))
                    .with_help(format!("attributes are {}", ATTRIBUTES.join(", ")))
            });
            continue;
        };
        let slot = match key.as_str() {
            "id" => &mut attrs.id,
            "if" => &mut attrs.if_,
            "timeout" => &mut attrs.timeout,
            "retries" => &mut attrs.retries,
            "on-failure" => &mut attrs.on_failure,
            "for-each" => &mut attrs.for_each,
            "public" => &mut attrs.public,
            "mutates" => &mut attrs.mutates,
            "on-unknown" => &mut attrs.on_unknown,
            "account" => &mut attrs.account,
            "role" => &mut attrs.role,
            "region" => &mut attrs.region,
            _ => {
                diags.push_with(Severity::Error, || {
                    let d = Diagnostic::error(source, wspan, format!("unknown attribute `{key}`"));
                    match crate::suggest::closest(&key, &ATTRIBUTES) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("attributes are {}", ATTRIBUTES.join(", "))),
                    }
                });
                continue;
            }
        };
        if slot.is_some() {
            diags.push_with(Severity::Error, || {
                Diagnostic::error(source, wspan, format!("attribute `{key}` given twice"))
            });
        }
        *slot = Some(value);
    }
    let (line, _) = source.line_col(span.start);
    Some(Step {
        id: String::new(),
        executor,
        attrs,
        body,
        body_lines,
        span,
        info_span,
        line,
        section: None,
    })
}

fn build_sections(source: &Source, headings: &[Heading], machine: &[Span]) -> Vec<Section> {
    headings
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let start = h.range.end;
            let end = headings.get(i + 1).map_or(source.text.len(), |n| n.range.start);
            let mut prose = String::new();
            let mut at = start;
            // Machine blocks are in file order: find the first in this section, walk to its end.
            let first = machine.partition_point(|m| m.start < start);
            for m in machine[first..]
                .iter()
                .take_while(|m| m.start < end)
                .filter(|m| m.end <= end)
            {
                prose.push_str(&source.text[at..m.start]);
                at = m.end;
            }
            prose.push_str(&source.text[at..end]);
            Section {
                level: h.level,
                title: h.text.trim().to_string(),
                slug: slug(&h.text),
                span: Span::new(h.range.start, h.range.end),
                prose: prose.trim().to_string(),
            }
        })
        .collect()
}

/// GitHub-style heading slug: lowercase, words joined by `-`, punctuation dropped.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if (c == ' ' || c == '-' || c == '_') && !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn assign_sections_and_ids(source: &Source, sections: &[Section], steps: &mut [Step], diags: &mut Diags) {
    // Ids are compared as expressions see them: `steps.a_b` names both `a-b` and `a_b`.
    let key = |id: &str| id.replace('-', "_");
    let explicit: HashSet<String> = steps
        .iter()
        .filter_map(|s| s.attrs.id.as_ref().map(|a| key(&a.value)))
        .collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut first_by_id: BTreeMap<String, Span> = BTreeMap::new();
    // The next number to try for each base id, so numbering N steps of one section is linear.
    let mut next: HashMap<String, usize> = HashMap::new();
    for step in steps.iter_mut() {
        step.section = sections
            .partition_point(|s| s.span.start < step.span.start)
            .checked_sub(1);
        match &step.attrs.id {
            Some(id) => {
                if !valid_id(&id.value) {
                    diags.push_with(Severity::Error, || {
                        Diagnostic::error(source, id.span, format!("step id `{}` is not a valid id", id.value))
                            .with_help("use letters, digits, `-` and `_`, starting with a letter")
                    });
                }
                if let Some(first) = first_by_id.get(&key(&id.value)) {
                    diags.push_with(Severity::Error, || {
                        let (l, c) = source.line_col(first.start);
                        let first_text = &source.text[first.start..first.end];
                        let msg = if first_text == id.value {
                            format!("duplicate step id `{}` (first used at {l}:{c})", id.value)
                        } else {
                            format!(
                                "step id `{}` is the same as `{first_text}` (first used at {l}:{c}): expressions write both as `steps.{}`",
                                id.value,
                                key(&id.value)
                            )
                        };
                        Diagnostic::error(source, id.span, msg)
                    });
                } else {
                    first_by_id.insert(key(&id.value), id.span);
                }
                step.id = id.value.clone();
            }
            None => {
                let base = step
                    .section
                    .map(|i| sections[i].slug.clone())
                    .filter(|s| !s.is_empty() && s.starts_with(|c: char| c.is_ascii_alphabetic()))
                    .map(|s| if s.is_ascii() { s } else { ascii_slug(&s) })
                    .unwrap_or_else(|| "step".to_string());
                let n = next.entry(base.clone()).or_insert(1);
                let mut id = if *n == 1 { base.clone() } else { format!("{base}-{n}") };
                while used.contains(&key(&id)) || explicit.contains(&key(&id)) {
                    *n += 1;
                    id = format!("{base}-{n}");
                }
                step.id = id;
            }
        }
        used.insert(key(&step.id));
    }
}

fn ascii_slug(s: &str) -> String {
    let out: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    if out.is_empty() { "step".into() } else { out }
}

fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Runbook, Vec<Diagnostic>) {
        parse(&Source::new("t.md", text))
    }

    #[test]
    fn steps_take_heading_slugs_numbered_when_repeated() {
        let (rb, d) = parse_str(
            "# Title\n\n## Create the user\n\n```manual\n```\n\n```manual\n```\n\n## Next\n```rhai id=x\n#{}\n```\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let ids: Vec<_> = rb.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["create-the-user", "create-the-user-2", "x"]);
        assert_eq!(rb.title, "Title");
        assert_eq!(rb.sections[1].title, "Create the user");
    }

    #[test]
    fn ordinary_blocks_are_not_steps() {
        let (rb, d) = parse_str("```bash\nrm -rf /\n```\n```\nplain\n```\n    indented\n");
        assert!(rb.steps.is_empty());
        // Only a warning that the shell block is shown, never run.
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(!d[0].is_error() && d[0].message.contains("never runs shell"), "{d:?}");
    }

    #[test]
    fn quoted_attributes_keep_spaces_and_spans() {
        let text = "```aws sts.whoami if='inputs.x == \"y z\"' retries=3\n```\n";
        let (rb, d) = parse_str(text);
        assert!(d.is_empty(), "{d:?}");
        let s = &rb.steps[0];
        let cond = s.attrs.if_.as_ref().expect("if attribute");
        assert_eq!(cond.value, "inputs.x == \"y z\"");
        assert_eq!(&text[cond.span.start..cond.span.end], cond.value);
        assert_eq!(s.attrs.retries.as_ref().map(|a| a.value.as_str()), Some("3"));
    }

    #[test]
    fn body_lines_map_into_the_file_inside_a_list() {
        let text = "- item\n\n  ```rhai\n  let a = 1;\n  a\n  ```\n";
        let (rb, _) = parse_str(text);
        let s = &rb.steps[0];
        assert_eq!(s.body, "let a = 1;\na\n");
        let off = s.body_map().offset(11); // the `a` on the body's second line
        assert_eq!(&text[off..off + 1], "a");
        assert_eq!(Source::new("t", text).line_col(off), (5, 3));
    }

    #[test]
    fn slugs_follow_github() {
        assert_eq!(
            slug("Step 3: Create an AWS Organization!"),
            "step-3-create-an-aws-organization"
        );
        assert_eq!(slug("  IAM -- roles "), "iam-roles");
    }
}
