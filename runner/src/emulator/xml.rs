//! Reading and changing the text of elements in moto's query-protocol (XML) answers, with
//! xmlparser's tokens rather than string search: a name inside a value, a comment or an
//! attribute is never mistaken for an element.

use std::ops::Range;

use xmlparser::{ElementEnd, Token, Tokenizer};

/// Where the text of each element named `name` (its local name) is, in document order. An
/// element without text gives an empty range at the place its text would be.
fn texts(xml: &str, name: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    // The element just started is `name` (waiting for the end of its start tag).
    let mut starting = false;
    // Inside `name`, before any text: where its text begins.
    let mut inside: Option<usize> = None;
    for token in Tokenizer::from(xml) {
        let Ok(token) = token else { break };
        match token {
            Token::ElementStart { local, .. } => {
                starting = local.as_str() == name;
                inside = None;
            }
            Token::ElementEnd {
                end: ElementEnd::Open,
                span,
            } => {
                if starting {
                    inside = Some(span.end());
                }
                starting = false;
            }
            Token::Text { text } if inside.is_some() => {
                inside = None;
                out.push(text.start()..text.end());
            }
            Token::ElementEnd {
                end: ElementEnd::Close(_, local),
                ..
            } => {
                if let Some(at) = inside.take()
                    && local.as_str() == name
                {
                    out.push(at..at);
                }
            }
            _ => {}
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The text of the first element named `name`.
pub(super) fn text(xml: &str, name: &str) -> Option<String> {
    texts(xml, name).first().map(|r| unescape(&xml[r.clone()]))
}

/// `xml` with the text of the first element named `name` replaced by `value`.
pub(super) fn set_text(xml: &str, name: &str, value: &str) -> String {
    match texts(xml, name).first() {
        Some(r) => format!("{}{}{}", &xml[..r.start], escape(value), &xml[r.end..]),
        None => xml.to_string(),
    }
}

/// In a map of `<key>`/`<value>` entries (IAM's SummaryMap), `xml` with the value of `key`
/// replaced by `value`.
pub(super) fn set_entry(xml: &str, key: &str, value: &str) -> String {
    let Some(after) = texts(xml, "key")
        .into_iter()
        .find(|r| unescape(&xml[r.clone()]) == key)
        .map(|r| r.end)
    else {
        return xml.to_string();
    };
    match texts(xml, "value").into_iter().find(|r| r.start >= after) {
        Some(r) => format!("{}{}{}", &xml[..r.start], escape(value), &xml[r.end..]),
        None => xml.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_text_is_found_by_its_tag_not_by_a_look_alike() {
        let xml = "<R><!-- <Arn>no</Arn> --><Note>&lt;Arn&gt;x</Note><Arn>arn:aws:sts::1:user/moto</Arn><Account>1</Account></R>";
        assert_eq!(text(xml, "Arn").as_deref(), Some("arn:aws:sts::1:user/moto"));
        let out = set_text(xml, "Arn", "arn:aws:iam::1:root");
        assert!(out.contains("<Arn>arn:aws:iam::1:root</Arn>"), "{out}");
        assert!(out.contains("<Note>&lt;Arn&gt;x</Note>"), "{out}");
        assert_eq!(
            set_text("<R><Arn></Arn></R>", "Arn", "a&b"),
            "<R><Arn>a&amp;b</Arn></R>"
        );
    }

    #[test]
    fn a_map_entry_is_changed_by_its_key() {
        let xml = "<SummaryMap><entry><key>Users</key><value>0</value></entry><entry><key>AccountMFAEnabled</key><value>0</value></entry></SummaryMap>";
        let out = set_entry(xml, "AccountMFAEnabled", "1");
        assert!(out.contains("<key>AccountMFAEnabled</key><value>1</value>"), "{out}");
        assert!(out.contains("<key>Users</key><value>0</value>"), "{out}");
        assert_eq!(set_entry(xml, "Missing", "1"), xml);
    }
}
