//! Diagnostics: what `check`, the parser and the executor report about a runbook, and the one
//! place that turns them into text (`path:line:col: error: message`, the line, a caret) or JSON.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

use crate::source::{Source, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// What a reader should know and nothing need change for (`export`: what changes meaning).
    Note,
    Warning,
    Error,
}

/// A located message. The location is resolved when the diagnostic is made, so a diagnostic
/// outlives its source and renders on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: String,
    /// 1-based; 0 when the problem is with the file as a whole.
    pub line: usize,
    pub col: usize,
    pub end_line: usize,
    pub end_col: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// On the note that closes a capped report: how many errors and warnings it left out.
    #[serde(skip_serializing_if = "is_zero")]
    pub hidden_errors: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub hidden_warnings: usize,
    /// The line (or, for a long line, a window of it around the column).
    #[serde(skip)]
    source_line: String,
    /// Characters of the line left out before `source_line`; whether some are left out after it.
    #[serde(skip)]
    line_skip: usize,
    #[serde(skip)]
    line_cut: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Diagnostics kept per file; the rest are counted in one closing note.
pub const MAX_PER_FILE: usize = 50;
/// Bytes of a long source line shown before and after the column.
const WINDOW_BEFORE: usize = 60;
const WINDOW_AFTER: usize = 100;

impl Diagnostic {
    pub fn at(source: &Source, span: Span, severity: Severity, message: impl Into<String>) -> Self {
        let (line, col) = source.line_col(span.start);
        let (end_line, end_col) = source.line_col(span.end.max(span.start));
        // A long line is shown as a window around the column, so a diagnostic costs O(window)
        // however long the line: an 80 KB line with 20,000 errors must not print 20,000 copies.
        let text = source.line_text(line);
        let line_start = source.line_start(line);
        let at = span.start.clamp(line_start, line_start + text.len()) - line_start;
        let (mut from, mut to) = (at.saturating_sub(WINDOW_BEFORE), (at + WINDOW_AFTER).min(text.len()));
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        while !text.is_char_boundary(to) {
            to += 1;
        }
        let line_skip = if from == 0 {
            0
        } else {
            source.line_col(line_start + from).1 - 1
        };
        Diagnostic {
            severity,
            path: source.path().display().to_string(),
            line,
            col,
            end_line,
            end_col,
            message: message.into(),
            help: None,
            hidden_errors: 0,
            hidden_warnings: 0,
            source_line: text[from..to].to_string(),
            line_skip,
            line_cut: to < text.len(),
        }
    }

    pub fn error(source: &Source, span: Span, message: impl Into<String>) -> Self {
        Self::at(source, span, Severity::Error, message)
    }

    pub fn warning(source: &Source, span: Span, message: impl Into<String>) -> Self {
        Self::at(source, span, Severity::Warning, message)
    }

    /// A problem with a whole file (unreadable, not UTF-8 before any line can be shown).
    pub fn file(path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            line: 0,
            col: 0,
            end_line: 0,
            end_col: 0,
            message: message.into(),
            help: None,
            hidden_errors: 0,
            hidden_warnings: 0,
            source_line: String::new(),
            line_skip: 0,
            line_cut: false,
        }
    }

    /// A problem at a known line and column whose text is given directly (e.g. a non-UTF-8 line).
    pub fn at_line_col(path: impl Into<String>, line: usize, col: usize, message: impl Into<String>) -> Self {
        let mut d = Self::file(path, message);
        d.line = line;
        d.col = col;
        d.end_line = line;
        d.end_col = col;
        d
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `path:line:col: error: message`, then the source line with a caret under the span.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let (label, code) = match self.severity {
            Severity::Error => ("error", "1;31"),
            Severity::Warning => ("warning", "1;33"),
            Severity::Note => ("note", "1;36"),
        };
        let mut out = String::new();
        // Paths, messages and source lines come from files: no escape sequence of theirs acts.
        let clean = crate::text::sanitize;
        let (path, message) = (clean(&self.path), clean(&self.message));
        if self.line == 0 {
            let _ = writeln!(out, "{path}: {}: {message}", paint(code, label));
        } else {
            let _ = writeln!(
                out,
                "{path}:{}:{}: {}: {message}",
                self.line,
                self.col,
                paint(code, label),
            );
            if !self.source_line.is_empty() {
                let gutter = self.line.to_string();
                let pad = " ".repeat(gutter.len());
                let (before, after) = (
                    if self.line_skip > 0 { "…" } else { "" },
                    if self.line_cut { "…" } else { "" },
                );
                let col = self.col.saturating_sub(1).saturating_sub(self.line_skip);
                let shown = self.source_line.chars().count();
                let width = if self.end_line == self.line && self.end_col > self.col {
                    (self.end_col - self.col).min(shown.saturating_sub(col)).max(1)
                } else {
                    1
                };
                // Keep tabs in the indentation so the caret lines up in a terminal.
                let lead: String = before
                    .chars()
                    .chain(self.source_line.chars().take(col))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{gutter} | {before}{}{after}", clean(&self.source_line));
                let _ = writeln!(out, "{pad} | {lead}{}", paint(code, &"^".repeat(width)));
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {}", clean(help));
        }
        out
    }
}

/// Prints diagnostics to stderr (text) and says whether any was an error.
pub fn report(diags: &[Diagnostic], color: bool) -> bool {
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = write!(err, "{}", d.render(color));
    }
    diags.iter().any(Diagnostic::is_error)
}

/// Sorts diagnostics by file position and drops exact repeats; a file's closing "and N more"
/// note stays last.
pub fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| (&a.path, a.is_note(), a.line, a.col).cmp(&(&b.path, b.is_note(), b.line, b.col)));
    diags.dedup();
}

impl Diagnostic {
    /// The note that closes a capped report.
    pub fn is_note(&self) -> bool {
        self.hidden_errors + self.hidden_warnings > 0
    }
}

/// One file's diagnostics, at most [`MAX_PER_FILE`]: the rest are only counted, so that hostile
/// input with a problem in every byte costs neither memory nor a flood of output.
#[derive(Debug, Default, Clone)]
pub struct Diags {
    kept: Vec<Diagnostic>,
    hidden_errors: usize,
    hidden_warnings: usize,
}

impl Diags {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether another diagnostic would be kept (else building one is wasted work).
    pub fn has_room(&self) -> bool {
        self.kept.len() < MAX_PER_FILE
    }

    pub fn push(&mut self, d: Diagnostic) {
        if self.has_room() {
            self.kept.push(d);
        } else {
            self.count(d.severity);
        }
    }

    /// Builds the diagnostic only when it will be kept.
    pub fn push_with(&mut self, severity: Severity, make: impl FnOnce() -> Diagnostic) {
        if self.has_room() {
            self.kept.push(make());
        } else {
            self.count(severity);
        }
    }

    fn count(&mut self, severity: Severity) {
        match severity {
            Severity::Error => self.hidden_errors += 1,
            Severity::Warning | Severity::Note => self.hidden_warnings += 1,
        }
    }

    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        for d in ds {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.hidden_errors > 0 || self.kept.iter().any(Diagnostic::is_error)
    }

    /// The kept diagnostics in file order, then a note saying how many were left out.
    pub fn finish(self, path: &str) -> Vec<Diagnostic> {
        let mut out = self.kept;
        sort(&mut out);
        let hidden = self.hidden_errors + self.hidden_warnings;
        if hidden > 0 {
            let mut note = Diagnostic::file(
                path,
                format!(
                    "and {hidden} more not shown ({} error{}, {} warning{}); fix the ones above first",
                    self.hidden_errors,
                    if self.hidden_errors == 1 { "" } else { "s" },
                    self.hidden_warnings,
                    if self.hidden_warnings == 1 { "" } else { "s" },
                ),
            );
            if self.hidden_errors == 0 {
                note.severity = Severity::Warning;
            }
            note.hidden_errors = self.hidden_errors;
            note.hidden_warnings = self.hidden_warnings;
            out.push(note);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_line_and_caret() {
        let src = Source::new("r.md", "# T\n\n```aws sts.whoamy\n```\n");
        let d = Diagnostic::error(&src, Span::new(9, 19), "unknown action `sts.whoamy`");
        assert_eq!(
            d.render(false),
            "r.md:3:5: error: unknown action `sts.whoamy`\n  |\n3 | ```aws sts.whoamy\n  |     ^^^^^^^^^^\n"
        );
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_with_the_caret_in_place() {
        let line = format!("{}XY{}", "a".repeat(5000), "b".repeat(5000));
        let src = Source::new("r.md", format!("# T\n{line}\n"));
        let at = 4 + 5000;
        let d = Diagnostic::error(&src, Span::new(at, at + 2), "here");
        let out = d.render(false);
        assert!(out.len() < 400, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        let chars = |l: &str, c: char| l.chars().position(|x| x == c);
        assert!(lines[2].contains("XY"), "the column is shown: {out}");
        assert_eq!(chars(lines[3], '^'), chars(lines[2], 'X'), "{out}");
        assert!(lines[3].ends_with("^^"), "{out}");
        assert!(lines[0].starts_with("r.md:2:5001: error: here"), "{out}");
    }

    #[test]
    fn a_capped_report_counts_what_it_leaves_out() {
        let src = Source::new("r.md", "x\n");
        let mut d = Diags::new();
        for _ in 0..MAX_PER_FILE + 7 {
            d.push(Diagnostic::error(&src, Span::new(0, 1), "e"));
        }
        d.push(Diagnostic::warning(&src, Span::new(0, 1), "w"));
        let out = d.finish("r.md");
        let note = out.last().expect("note");
        assert_eq!((note.hidden_errors, note.hidden_warnings), (7, 1));
        assert!(note.message.starts_with("and 8 more not shown"), "{}", note.message);
        assert!(note.is_error());
    }
}
