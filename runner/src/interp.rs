//! `${ expr }` in string values: finding the expressions, and the names they refer to.

use std::ops::Range;

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    /// A Rhai expression; `span` covers the code between `${` and `}` in the string.
    Expr {
        code: String,
        span: Range<usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpError {
    pub at: usize,
    pub message: String,
}

/// Splits a string into literal text and expressions. `$${` writes a literal `${`.
pub fn pieces(s: &str) -> Result<Vec<Piece>, InterpError> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let mut lit_start = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && s[i..].starts_with("$${") {
            lit.push_str(&s[lit_start..i]);
            lit.push_str("${");
            i += 3;
            lit_start = i;
            continue;
        }
        if bytes[i] == b'$' && s[i..].starts_with("${") {
            lit.push_str(&s[lit_start..i]);
            if !lit.is_empty() {
                out.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            let code_start = i + 2;
            let end = matching_brace(s, code_start).ok_or(InterpError {
                at: i,
                message: "`${` is never closed with `}`".into(),
            })?;
            let code = s[code_start..end].to_string();
            if code.trim().is_empty() {
                return Err(InterpError {
                    at: i,
                    message: "empty `${}`".into(),
                });
            }
            out.push(Piece::Expr {
                code,
                span: code_start..end,
            });
            i = end + 1;
            lit_start = i;
            continue;
        }
        i += 1;
    }
    lit.push_str(&s[lit_start..]);
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

/// Finds the `}` that closes an expression starting at `from`, skipping nested braces and
/// string literals.
fn matching_brace(s: &str, from: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' | b'\'' => {
                let q = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether a string is exactly one expression (and so keeps the expression's type).
pub fn whole_expr(pieces: &[Piece]) -> Option<&str> {
    match pieces {
        [Piece::Expr { code, .. }] => Some(code),
        _ => None,
    }
}

/// A name an expression reads from the run's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Input {
        name: String,
        span: Range<usize>,
    },
    Step {
        id: String,
        field: Option<String>,
        span: Range<usize>,
    },
}

/// Finds `inputs.NAME`, `steps.ID` and `steps.ID.FIELD` (also `steps["id-with-dashes"]`) in Rhai
/// code, outside string literals.
pub fn refs(code: &str) -> Vec<Ref> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // Comments are not code: an apostrophe in one is not a character literal.
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == b'"' || c == b'`' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if is_ident_start(c) && (i == 0 || !is_ident_char(bytes[i - 1]) && bytes[i - 1] != b'.') {
            let start = i;
            let word = ident(code, i);
            i += word.len();
            if word != "inputs" && word != "steps" {
                continue;
            }
            let Some((first, after)) = member(code, i) else {
                continue;
            };
            if word == "inputs" {
                out.push(Ref::Input {
                    name: first,
                    span: start..after,
                });
                i = after;
            } else {
                let (field, end) = match member(code, after) {
                    Some((f, e)) => (Some(f), e),
                    None => (None, after),
                };
                out.push(Ref::Step {
                    id: first,
                    field,
                    span: start..end,
                });
                i = end;
            }
            continue;
        }
        i += 1;
    }
    out
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident(code: &str, at: usize) -> &str {
    let end = code[at..]
        .bytes()
        .position(|b| !is_ident_char(b))
        .map_or(code.len(), |n| at + n);
    &code[at..end]
}

/// `.name` or `["name"]` at `at` (spaces allowed before): the name and where it ends.
fn member(code: &str, at: usize) -> Option<(String, usize)> {
    let rest = &code[at..];
    let skip = rest.len() - rest.trim_start().len();
    let at = at + skip;
    let rest = &code[at..];
    if let Some(r) = rest.strip_prefix('.') {
        let skip2 = r.len() - r.trim_start().len();
        let start = at + 1 + skip2;
        let name = ident(code, start);
        if name.is_empty() || !is_ident_start(name.as_bytes()[0]) {
            return None;
        }
        return Some((name.to_string(), start + name.len()));
    }
    if let Some(r) = rest.strip_prefix('[') {
        let r = r.trim_start();
        let q = r.chars().next()?;
        if q != '"' && q != '\'' {
            return None;
        }
        let inner = &r[1..];
        let close = inner.find(q)?;
        let name = inner[..close].to_string();
        let after_q = code.len() - inner[close + 1..].len();
        // `]` must follow the name (spaces allowed): searching further would scan to the end of
        // the script for every `steps["` in it.
        let tail = &code[after_q..];
        let ws = tail.len() - tail.trim_start().len();
        if !tail[ws..].starts_with(']') {
            return None;
        }
        return Some((name, after_q + ws + 1));
    }
    None
}

/// How a step id is written in an expression: `steps.create_the_user` for `create-the-user`.
pub fn step_key(id: &str) -> String {
    id.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_and_expressions() {
        let p = pieces("https://${ steps.ic.store }.awsapps.com/$${x}").expect("ok");
        assert_eq!(
            p,
            vec![
                Piece::Lit("https://".into()),
                Piece::Expr {
                    code: " steps.ic.store ".into(),
                    span: 10..26
                },
                Piece::Lit(".awsapps.com/${x}".into()),
            ]
        );
        assert_eq!(whole_expr(&pieces("${ [1, 2] }").expect("ok")), Some(" [1, 2] "));
        assert!(pieces("a ${ if x { \"}\" } else { 1 }").is_err());
        assert_eq!(pieces("${ if x { \"}\" } else { 1 } }").expect("ok").len(), 1);
    }

    #[test]
    fn finds_references() {
        let r = refs(r#"inputs.user + steps.admin_ps.arn + steps["find-ic"].store + "inputs.no" + x.inputs"#);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(matches!(&r[0], Ref::Input { name, .. } if name == "user"));
        assert!(matches!(&r[1], Ref::Step { id, field: Some(f), .. } if id == "admin_ps" && f == "arn"));
        assert!(matches!(&r[2], Ref::Step { id, field: Some(f), .. } if id == "find-ic" && f == "store"));
    }

    #[test]
    fn an_apostrophe_in_a_comment_hides_no_reference() {
        let r = refs("// the parameter's value\nsteps.params.Parameters.len() /* it's */ + inputs.x");
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(matches!(&r[0], Ref::Step { id, .. } if id == "params"));
    }
}
