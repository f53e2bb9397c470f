//! After mdBook: what the built site needs that mdBook's templates cannot give it.
//!
//! - Every HTML page gets a Content-Security-Policy whose `script-src` is the site itself plus the
//!   SHA-256 of each of that page's inline scripts (mdBook's templates write them, with per-page
//!   values): no `'unsafe-inline'`, so a script that reached a page any other way does not run.
//!   The sanitizer ([`crate::markup`]) keeps content from writing a `<script>` at all.
//! - The search index's breadcrumbs (chapter and heading names, which mdBook's searcher inserts
//!   as HTML) are escaped: the index holds text, never markup.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{RenderError, io};

/// A site may hold this many bytes whatever its size (mdBook's own assets are about 1.3 MiB)...
pub const SITE_FLOOR: u64 = 4 << 20;
/// ...plus this many a page (mdBook's template and table of contents)...
pub const SITE_PER_PAGE: u64 = 64 << 10;
/// ...plus this many times the bytes of the book's files and the runbooks. The search index is
/// the largest multiple (a character tree of every word): pages of nothing but distinct headings
/// come to about 40 times their size.
pub const SITE_FACTOR: u64 = 64;

/// Refuses a built site larger than [`SITE_FLOOR`] + [`SITE_PER_PAGE`] per page + [`SITE_FACTOR`]
/// times its inputs: whatever the Markdown does, the site stays within that multiple.
pub(super) fn bounded(site: &Path, inputs: u64, pages: u64) -> Result<u64, RenderError> {
    let limit = SITE_FLOOR
        .saturating_add(SITE_PER_PAGE.saturating_mul(pages))
        .saturating_add(SITE_FACTOR.saturating_mul(inputs));
    let bytes = bytes_under(site)?;
    if bytes > limit {
        return Err(RenderError::Oversized(format!(
            "the site would be {bytes} bytes, more than a site of {pages} pages from {inputs} bytes may be \
({} MiB, {} KiB a page and {SITE_FACTOR} times its inputs); includes or repeated text multiply it",
            SITE_FLOOR >> 20,
            SITE_PER_PAGE >> 10
        )));
    }
    Ok(bytes)
}

fn bytes_under(dir: &Path) -> Result<u64, RenderError> {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let ty = entry.file_type().map_err(io(&entry.path()))?;
            if ty.is_dir() {
                todo.push(entry.path());
            } else {
                total += entry.metadata().map_err(io(&entry.path()))?.len();
            }
        }
    }
    Ok(total)
}

/// The policy, with `{scripts}` replaced by the page's inline script hashes.
const POLICY: &str = "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; media-src 'self'; object-src 'none'; \
frame-src 'self'; form-action 'none'; base-uri 'self'";

/// Finishes the site built in `site`: every page's policy, the search index's breadcrumbs.
pub(super) fn finish(site: &Path) -> Result<(), RenderError> {
    let mut todo = vec![site.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(io(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if ty.is_dir() {
                todo.push(path);
            } else if ty.is_file() && name.ends_with(".html") {
                let page = std::fs::read_to_string(&path).map_err(io(&path))?;
                std::fs::write(&path, with_policy(&page)).map_err(io(&path))?;
            } else if ty.is_file() && name.starts_with("searchindex") && name.ends_with(".js") {
                let index = std::fs::read_to_string(&path).map_err(io(&path))?;
                let escaped = escaped_index(&index).ok_or_else(|| RenderError::Io {
                    path: path.display().to_string(),
                    message: "mdBook's search index is not in the form this version reads".into(),
                })?;
                std::fs::write(&path, escaped).map_err(io(&path))?;
            }
        }
    }
    Ok(())
}

/// The policy for a page with these inline scripts.
pub fn policy(inline_scripts: &[&str]) -> String {
    let hashes: String = inline_scripts
        .iter()
        .map(|s| {
            let digest = Sha256::digest(s.as_bytes());
            format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    POLICY.replace("{scripts}", &hashes)
}

/// `page` with a policy meta element first in its head.
fn with_policy(page: &str) -> String {
    let scripts = inline_scripts(page);
    let meta = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        policy(&scripts)
    );
    match find_ascii_ci(page, "<head>") {
        Some(at) => {
            let end = at + "<head>".len();
            format!("{}\n{meta}{}", &page[..end], &page[end..])
        }
        None => format!("{meta}\n{page}"),
    }
}

/// The text of each `<script>` without a `src` that mdBook's template wrote, as the browser hashes
/// it: outside comments, and outside the page's content (from the first `<main>` to the last
/// `</main>`, which holds every byte that came from the book), so that a script in the content,
/// however it got past the sanitizer, is not allowed.
fn inline_scripts(page: &str) -> Vec<&str> {
    let content = match (find_ascii_ci(page, "<main>"), rfind_ascii_ci(page, "</main>")) {
        (Some(a), Some(b)) if a < b => a..b,
        _ => 0..0,
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = page[at..].find('<').map(|i| at + i) {
        let rest = &page[i..];
        if rest.starts_with("<!--") {
            at = rest.find("-->").map_or(page.len(), |e| i + e + 3);
            continue;
        }
        if !starts_with_ascii_ci(rest, "<script") {
            at = i + 1;
            continue;
        }
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let body_start = i + tag_end + 1;
        let body_end = find_ascii_ci(&page[body_start..], "</script").map_or(page.len(), |e| body_start + e);
        if !tag.to_ascii_lowercase().contains("src=") && !content.contains(&i) {
            out.push(&page[body_start..body_end]);
        }
        at = body_end;
    }
    out
}

fn starts_with_ascii_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn find_ascii_ci(s: &str, needle: &str) -> Option<usize> {
    let (h, n) = (s.as_bytes(), needle.as_bytes());
    (0..h.len().saturating_sub(n.len()) + 1)
        .find(|&i| h.len() >= i + n.len() && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn rfind_ascii_ci(s: &str, needle: &str) -> Option<usize> {
    let (h, n) = (s.as_bytes(), needle.as_bytes());
    (0..h.len().saturating_sub(n.len()) + 1)
        .rev()
        .find(|&i| h.len() >= i + n.len() && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// mdBook writes the index as `window.search = Object.assign(window.search, JSON.parse('…'));`
/// with `\` and `'` escaped; the same, each document's breadcrumbs HTML-escaped.
fn escaped_index(js: &str) -> Option<String> {
    const START: &str = "JSON.parse('";
    const END: &str = "'));";
    let from = js.find(START)? + START.len();
    let to = js.rfind(END)?;
    let mut json = String::with_capacity(to.saturating_sub(from));
    let mut chars = js.get(from..to)?.chars();
    while let Some(c) = chars.next() {
        json.push(if c == '\\' { chars.next()? } else { c });
    }
    let mut index: serde_json::Value = serde_json::from_str(&json).ok()?;
    let docs = index.pointer_mut("/index/documentStore/docs")?.as_object_mut()?;
    for doc in docs.values_mut() {
        if let Some(crumbs) = doc.get_mut("breadcrumbs") {
            if let Some(text) = crumbs.as_str() {
                *crumbs = serde_json::Value::String(html_escape(text));
            }
        }
    }
    let json = serde_json::to_string(&index).ok()?;
    Some(format!(
        "{}{}{}",
        &js[..from],
        json.replace('\\', "\\\\").replace('\'', "\\'"),
        &js[to..]
    ))
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_and_external_ones_are_not() {
        let page = "<html><head><script>a()</script><script src=\"x.js\"></script><!-- <script>c()</script> --></head>\
<main><script>content()</script></main><script>not()</script></main><SCRIPT>b()</SCRIPT></html>";
        assert_eq!(inline_scripts(page), ["a()", "b()"]);
        let out = with_policy(page);
        assert!(
            out.starts_with("<html><head>\n<meta http-equiv=\"Content-Security-Policy\""),
            "{out}"
        );
        let script_src = policy(&["a()"]).split(';').nth(1).unwrap_or("").to_string();
        assert!(!script_src.contains("unsafe"), "{script_src}");
        // sha256("a()"), as a browser computes it.
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"a()"));
        assert!(out.contains(&format!("'sha256-{digest}'")), "{out}");
    }

    #[test]
    fn breadcrumbs_are_escaped_in_the_index() {
        let json = r#"{"index":{"documentStore":{"docs":{"0":{"breadcrumbs":"R » <img src=x onerror=alert(1)>","body":"it's"}}}}}"#;
        let js = format!(
            "window.search = Object.assign(window.search, JSON.parse('{}'));",
            json.replace('\\', "\\\\").replace('\'', "\\'")
        );
        let out = escaped_index(&js).expect("read");
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
        assert!(out.contains("it\\'s"), "{out}");
    }
}
