//! Diagnostics: what `check`, the parser and the executor report about a runbook, and the one
//! place that turns them into text (`path:line:col: error: message`, the line, a caret) or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::source::{Source, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
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
    #[serde(skip)]
    source_line: String,
}

impl Diagnostic {
    pub fn at(source: &Source, span: Span, severity: Severity, message: impl Into<String>) -> Self {
        let (line, col) = source.line_col(span.start);
        let (end_line, end_col) = source.line_col(span.end.max(span.start));
        Diagnostic {
            severity,
            path: source.path().display().to_string(),
            line,
            col,
            end_line,
            end_col,
            message: message.into(),
            help: None,
            source_line: source.line_text(line).to_string(),
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
            source_line: String::new(),
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
        };
        let mut out = String::new();
        // Paths, messages and source lines come from files: no escape sequence of theirs acts.
        let clean = crate::ui::sanitize;
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
                let width = if self.end_line == self.line && self.end_col > self.col {
                    self.end_col - self.col
                } else {
                    1
                };
                // Keep tabs in the indentation so the caret lines up in a terminal.
                let lead: String = self
                    .source_line
                    .chars()
                    .take(self.col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{gutter} | {}", clean(&self.source_line));
                let _ = writeln!(out, "{pad} | {lead}{}", paint(code, &"^".repeat(width)));
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {}", clean(help));
        }
        out
    }
}

/// Sorts diagnostics by file position and drops exact repeats.
pub fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
    diags.dedup();
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
}
