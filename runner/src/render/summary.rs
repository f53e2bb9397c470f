//! The runbooks part of SUMMARY.md: the runbooks in the order their index links them.

use std::collections::BTreeSet;
use std::path::Path;

use pulldown_cmark::{Event, Parser, Tag};

use super::{RUNBOOKS_DIR, RUNBOOKS_MARKER, RenderError};

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

/// SUMMARY.md with the marker line replaced by the runbook chapters (appended when absent).
pub(super) fn with_runbooks(summary: &str, runbooks: &[(String, String)]) -> String {
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
