//! A runbook's text, where it came from, and how byte offsets become `line:col`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A byte range in a [`Source`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn shifted(self, by: usize) -> Self {
        Span::new(self.start + by, self.end + by)
    }
}

/// One file's text with a line index; every diagnostic is resolved against it.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
    /// Characters before each `CHUNK`-byte boundary, so a column costs O(CHUNK), not O(line).
    chars_before: Vec<usize>,
}

/// Bytes between two checkpoints of [`Source::chars_before`].
const CHUNK: usize = 256;

/// Characters in a byte range of UTF-8 text: every byte that does not continue a character.
fn chars_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut chars_before = Vec::with_capacity(text.len() / CHUNK + 1);
        let mut n = 0;
        for chunk in text.as_bytes().chunks(CHUNK) {
            chars_before.push(n);
            n += chars_in(chunk);
        }
        chars_before.push(n);
        Source {
            path: path.into(),
            text,
            line_starts,
            chars_before,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end clamp.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let col = self.chars_to(offset) - self.chars_to(self.line_starts[line]) + 1;
        (line + 1, col)
    }

    /// Characters before byte `offset` (a char boundary), in O(CHUNK).
    fn chars_to(&self, offset: usize) -> usize {
        let k = offset / CHUNK;
        self.chars_before.get(k).copied().unwrap_or(0) + chars_in(&self.text.as_bytes()[k * CHUNK..offset])
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self.line_starts.get(line).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// Byte offset of the start of a 1-based line.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

/// A step's body as its own little source: maps body offsets back to the Markdown file.
pub struct BodyMap<'a> {
    pub body: &'a str,
    /// Where each line of the body starts in the file.
    pub lines: &'a [usize],
    /// Where each line starts in the body: an offset is found by binary search, so mapping every
    /// key of a 200,000-key body stays linear.
    starts: Vec<usize>,
}

impl<'a> BodyMap<'a> {
    pub fn new(body: &'a str, lines: &'a [usize]) -> Self {
        let mut starts = Vec::new();
        if !body.is_empty() {
            starts.push(0);
            starts.extend(body.match_indices('\n').map(|(i, _)| i + 1).filter(|&i| i < body.len()));
        }
        BodyMap { body, lines, starts }
    }

    pub fn offset(&self, offset: usize) -> usize {
        if self.starts.is_empty() {
            return self.lines.last().copied().unwrap_or(0);
        }
        let last = self.starts.len().min(self.lines.len()).max(1) - 1;
        let i = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
            .min(last);
        let start = self.starts[i];
        let end = self.starts.get(i + 1).copied().unwrap_or(self.body.len());
        self.lines.get(i).copied().unwrap_or(0) + offset.saturating_sub(start).min(end - start)
    }

    pub fn span(&self, span: Range<usize>) -> Span {
        let start = self.offset(span.start);
        Span::new(start, self.offset(span.end).max(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_chars() {
        let s = Source::new("x.md", "ab\nçd\n\nz");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(3), (2, 1));
        assert_eq!(s.line_col(5), (2, 2)); // after the two-byte ç
        assert_eq!(s.line_col(8), (4, 1));
        assert_eq!(s.line_col(99), (4, 2));
        assert_eq!(s.line_text(2), "çd");
        assert_eq!(s.line_text(3), "");
        assert_eq!(s.line_text(9), "");
        let long = format!("{}é{}\nx", "a".repeat(1000), "b".repeat(1000));
        let s = Source::new("x.md", long.as_str());
        assert_eq!(s.line_col(1002), (1, 1002)); // the first `b`, after a two-byte é
        assert_eq!(s.line_col(2003), (2, 1));
    }
}
