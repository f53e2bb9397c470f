//! The exported document as a tree with its keys in the order written, and the two ways it is
//! written out: YAML (the default; scripts as literal blocks, so a reviewer reads them as code)
//! and JSON. Both are deterministic: the same runbook gives the same bytes.
//!
//! Hand-written rather than a YAML crate: the lockfile has none, the well-known ones are
//! unmaintained (serde_yaml) or disputed forks, and what is needed is small and fixed (block
//! maps and lists, quoted or plain scalars, literal blocks); a test parses every export with
//! PyYAML and compares it with the JSON form.

use std::fmt::Write as _;

/// A node of the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn s(v: impl Into<String>) -> Node {
        Node::Str(v.into())
    }

    pub fn map() -> Node {
        Node::Map(Vec::new())
    }

    /// Adds a key (maps only) and returns the map, for building in one expression.
    pub fn with(mut self, k: &str, v: Node) -> Node {
        self.set(k, v);
        self
    }

    pub fn set(&mut self, k: &str, v: Node) {
        if let Node::Map(m) = self {
            match m.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v,
                None => m.push((k.to_string(), v)),
            }
        }
    }

    pub fn get(&self, k: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(key, _)| key == k).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Every string in the tree, with the key it sits under (for the lint).
    pub fn strings<'a>(&'a self, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
        match self {
            Node::Str(s) => out.push((key, s)),
            Node::List(l) => l.iter().for_each(|n| n.strings(key, out)),
            Node::Map(m) => m.iter().for_each(|(k, n)| n.strings(k, out)),
            Node::Int(_) | Node::Bool(_) => {}
        }
    }
}

/// The document as YAML.
pub fn yaml(root: &Node) -> String {
    let mut out = String::new();
    match root {
        Node::Map(m) if !m.is_empty() => map_yaml(m, 0, &mut out),
        other => {
            let _ = writeln!(out, "{}", inline(other));
        }
    }
    out
}

fn map_yaml(m: &[(String, Node)], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in m {
        let _ = write!(out, "{pad}{}:", scalar(k));
        value_yaml(v, indent, out);
    }
}

/// Writes what follows `key:` or `-`: a scalar on the same line, or a block below it.
fn value_yaml(v: &Node, indent: usize, out: &mut String) {
    match v {
        Node::Map(m) if !m.is_empty() => {
            out.push('\n');
            map_yaml(m, indent + 2, out);
        }
        Node::List(l) if !l.is_empty() => {
            out.push('\n');
            list_yaml(l, indent, out);
        }
        Node::Str(s) if s.contains('\n') => match block(s, indent + 2) {
            Some(b) => {
                out.push(' ');
                out.push_str(&b);
            }
            None => {
                let _ = writeln!(out, " {}", json_str(s));
            }
        },
        other => {
            let _ = writeln!(out, " {}", inline(other));
        }
    }
}

fn list_yaml(l: &[Node], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in l {
        match item {
            Node::Map(m) if !m.is_empty() => {
                // The first key shares the dash's line; the rest line up under it.
                let mut first = String::new();
                map_yaml(m, indent + 2, &mut first);
                let trimmed = &first[indent + 2..];
                let _ = write!(out, "{pad}- {trimmed}");
            }
            other => {
                let _ = write!(out, "{pad}-");
                value_yaml(other, indent, out);
            }
        }
    }
}

/// A literal block (`|-` or `|`), when the text can be one: no leading space on its first line
/// (that would need an indentation indicator), no control characters but tabs, at most one
/// trailing newline.
fn block(s: &str, indent: usize) -> Option<String> {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let body = s.trim_end_matches('\n');
    if trailing > 1
        || body.is_empty()
        || body.starts_with([' ', '\t'])
        || body.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
        || body.lines().any(|l| l.ends_with(' ') || l.ends_with('\t'))
        || s.contains('\r')
    {
        return None;
    }
    let pad = " ".repeat(indent);
    let mut b = String::from(if trailing == 1 { "|\n" } else { "|-\n" });
    for line in body.split('\n') {
        if line.is_empty() {
            b.push('\n');
        } else {
            let _ = writeln!(b, "{pad}{line}");
        }
    }
    Some(b)
}

fn inline(v: &Node) -> String {
    match v {
        Node::Str(s) => scalar(s),
        Node::Int(i) => i.to_string(),
        Node::Bool(b) => b.to_string(),
        Node::List(_) => "[]".into(),
        Node::Map(_) => "{}".into(),
    }
}

/// A string as a YAML scalar: plain when nothing could read it as something else, single-quoted
/// when printable, else double-quoted (JSON's escapes are YAML's).
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '+' | '='))
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with(':')
        && !s.contains("::")
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else if s.chars().all(|c| !c.is_control()) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        json_str(s)
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The document as JSON, two spaces per level.
pub fn json(root: &Node) -> String {
    let mut out = String::new();
    json_into(root, 0, &mut out);
    out.push('\n');
    out
}

fn json_into(v: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent + 2);
    match v {
        Node::Str(s) => out.push_str(&json_str(s)),
        Node::Int(i) => out.push_str(&i.to_string()),
        Node::Bool(b) => out.push_str(&b.to_string()),
        Node::List(l) if l.is_empty() => out.push_str("[]"),
        Node::Map(m) if m.is_empty() => out.push_str("{}"),
        Node::List(l) => {
            out.push_str("[\n");
            for (i, n) in l.iter().enumerate() {
                out.push_str(&pad);
                json_into(n, indent + 2, out);
                out.push_str(if i + 1 < l.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}]", " ".repeat(indent));
        }
        Node::Map(m) => {
            out.push_str("{\n");
            for (i, (k, n)) in m.iter().enumerate() {
                let _ = write!(out, "{pad}{}: ", json_str(k));
                json_into(n, indent + 2, out);
                out.push_str(if i + 1 < m.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}}}", " ".repeat(indent));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_quotes_what_could_read_as_something_else() {
        let doc = Node::map()
            .with("schemaVersion", Node::s("0.3"))
            .with("assumeRole", Node::s("{{ AutomationAssumeRole }}"))
            .with("flag", Node::s("true"))
            .with("action", Node::s("aws:executeScript"))
            .with("n", Node::Int(3))
            .with(
                "steps",
                Node::List(vec![Node::map().with("name", Node::s("a_b")).with(
                    "inputs",
                    Node::map().with("Script", Node::s("def handler(e, c):\n    return {}\n")),
                )]),
            )
            .with("empty", Node::List(vec![]))
            .with("q", Node::s("it's"));
        assert_eq!(
            yaml(&doc),
            "schemaVersion: '0.3'\nassumeRole: '{{ AutomationAssumeRole }}'\nflag: 'true'\naction: aws:executeScript\n'n': 3\nsteps:\n- name: a_b\n  inputs:\n    Script: |\n      def handler(e, c):\n          return {}\nempty: []\nq: 'it''s'\n"
        );
    }

    #[test]
    fn text_a_block_cannot_hold_is_double_quoted() {
        let doc = Node::map().with("m", Node::s("  indented\nnext"));
        assert_eq!(yaml(&doc), "m: \"  indented\\nnext\"\n");
        let doc = Node::map().with("m", Node::s("a\n\nb"));
        assert_eq!(yaml(&doc), "m: |-\n  a\n\n  b\n");
    }

    #[test]
    fn json_keeps_the_order_written() {
        let doc = Node::map()
            .with("b", Node::Int(1))
            .with("a", Node::List(vec![Node::Bool(true)]));
        assert_eq!(json(&doc), "{\n  \"b\": 1,\n  \"a\": [\n    true\n  ]\n}\n");
    }
}
