//! Text from outside the tool (runbooks, answers, AWS, file names) made safe to show on a
//! terminal. Its own module because everything that shows or records such text needs it (the
//! screen, the diagnostics, the redactor, the journal's lock holder), and none of them should
//! depend on another for it.

/// Neutralises control characters from text the tool did not write itself: escape sequences
/// (ESC, CSI, OSC), carriage returns and the C1 range are shown as `\u{..}` instead of acting on the
/// terminal. Newlines and tabs stay.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(is_hostile) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hostile(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The longest prefix of `s` no longer than `max` bytes ends here: on a character boundary.
pub fn floor_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::{floor_boundary, sanitize};

    #[test]
    fn escapes_act_on_nothing_and_lines_stay() {
        assert_eq!(sanitize("a\tb\nc"), "a\tb\nc");
        assert_eq!(sanitize("\x1b[2Jx\r\u{9b}"), "\\u{1b}[2Jx\\u{d}\\u{9b}");
        assert_eq!(sanitize("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(floor_boundary("aé", 2), 1);
        assert_eq!(floor_boundary("aé", 3), 3);
        assert_eq!(floor_boundary("ab", 9), 2);
    }
}
