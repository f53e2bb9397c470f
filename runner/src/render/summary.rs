//! The runbooks part of SUMMARY.md: the runbooks in the order their index links them, and where
//! each runbook's page is published.
//!
//! Runbook chapters never go through SUMMARY.md's Markdown as text: the marker line becomes
//! placeholder links (`.runbook-chapter-N.md`) that the book loader replaces with the chapters
//! themselves, so a file named `a b.md`, `p).md` or `[x].md` or a title with brackets cannot
//! break the summary.

use std::collections::BTreeSet;
use std::path::Path;

use pulldown_cmark::{Event, Parser, Tag};
use sha2::{Digest, Sha256};

use super::{RUNBOOKS_MARKER, RenderError};

/// Orders runbooks as the index (runbooks/README.md) links them; the index comes first and
/// runbooks it does not link follow in path order, so every runbook is a chapter.
pub(super) fn index_order(
    runbooks: &Path,
    titles: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, RenderError> {
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

/// SUMMARY.md with the marker line replaced by a placeholder per runbook (appended when absent):
/// the index first, the others nested under it. See [`placeholder`].
pub(super) fn with_runbooks(summary: &str, runbooks: &[(String, String)]) -> String {
    let mut items = String::new();
    let index = runbooks.iter().position(|(p, _)| p == "README.md");
    let indent = if let Some(i) = index {
        items.push_str(&format!("- [runbooks]({PLACEHOLDER}{i}.md)\n"));
        "    "
    } else {
        ""
    };
    for (i, _) in runbooks.iter().enumerate().filter(|(i, _)| Some(*i) != index) {
        items.push_str(&format!("{indent}- [runbook]({PLACEHOLDER}{i}.md)\n"));
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

const PLACEHOLDER: &str = ".runbook-chapter-";

/// The runbook a placeholder link of [`with_runbooks`] stands for (its index).
pub(super) fn placeholder(location: &Path) -> Option<usize> {
    location
        .to_str()?
        .strip_prefix(PLACEHOLDER)?
        .strip_suffix(".md")?
        .parse()
        .ok()
}

/// Where a runbook (`rel` under the runbooks directory) is published, under the same directory:
/// its path, with each part that holds a character URLs or mdBook's links treat specially
/// (quotes, `<`, `>`, `&`, `#`, `?`, `%`, `:`, a backslash, control characters) made safe and
/// marked with a hash of the name, so that two names never meet.
pub fn page_path(rel: &str) -> String {
    rel.split('/').map(safe_part).collect::<Vec<_>>().join("/")
}

fn special(c: char) -> bool {
    c.is_control()
        || "\"'<>\\&#?%:`{}|^".contains(c)
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One part of a path, made safe as [`page_path`] says.
fn safe_part(part: &str) -> String {
    if !part.chars().any(special) {
        return part.to_string();
    }
    let clean: String = part.chars().map(|c| if special(c) { '_' } else { c }).collect();
    let hash = hex::encode(&Sha256::digest(part.as_bytes())[..4]);
    match clean.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{hash}.{ext}"),
        _ => format!("{clean}-{hash}"),
    }
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
            s.contains("- [runbooks](.runbook-chapter-0.md)\n    - [runbook](.runbook-chapter-1.md)\n    - [runbook](.runbook-chapter-2.md)\n"),
            "{s}"
        );
        assert!(!s.contains(RUNBOOKS_MARKER));
        assert_eq!(placeholder(Path::new(".runbook-chapter-2.md")), Some(2));
    }

    #[test]
    fn page_paths_are_safe_and_distinct() {
        assert_eq!(page_path("a b.md"), "a b.md");
        assert_eq!(page_path("dir/p).md"), "dir/p).md");
        let quoted = page_path("x\" onmouseover=\"alert(1).md");
        assert!(
            quoted.starts_with("x_ onmouseover=_alert(1)-") && quoted.ends_with(".md"),
            "{quoted}"
        );
        assert_ne!(page_path("a#b.md"), page_path("a?b.md"));
        assert!(!page_path("t\u{1b}[31m.md").contains('\u{1b}'));
    }
}
