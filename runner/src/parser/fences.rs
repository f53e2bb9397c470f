//! Fences that are not steps but look like one: shell blocks (runbook never runs a shell) and
//! near misses of an executor word.

use super::EXECUTORS;
use crate::diagnostic::Diagnostic;
use crate::source::{Source, Span};

/// Languages of fenced blocks that other tools (Runme, notebooks) run as shell commands.
pub const SHELLS: [&str; 20] = [
    "sh",
    "bash",
    "shell",
    "zsh",
    "fish",
    "ksh",
    "csh",
    "tcsh",
    "dash",
    "console",
    "shellsession",
    "shell-session",
    "terminal",
    "powershell",
    "pwsh",
    "ps1",
    "posh",
    "cmd",
    "bat",
    "batch",
];

/// Warns about a shell block: someone used to tools that run them would believe it ran.
pub(super) fn shell_fence(source: &Source, info: &str, info_span: Span) -> Option<Diagnostic> {
    let word = info
        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
        .find(|w| !w.is_empty())?;
    let lang = word.trim_start_matches('.');
    if !SHELLS.iter().any(|s| s.eq_ignore_ascii_case(lang)) {
        return None;
    }
    let lead = source.text[info_span.start..info_span.end].find(word).unwrap_or(0);
    let start = info_span.start + lead;
    Some(
        Diagnostic::warning(
            source,
            Span::new(start, start + word.len()),
            format!("a `{word}` block is shown, never run: `runbook` never runs shell"),
        )
        .with_help(
            "to act, write a step (```aws SERVICE.ACTION, ```rhai, or ```manual with `instructions` \
for what a person types); to show a command without this warning, make it a ```text block",
        ),
    )
}

/// Warns about a fenced block that looks like a step but will be shown as plain code.
pub(super) fn near_miss(source: &Source, info: &str, info_span: Span) -> Option<Diagnostic> {
    let word = info.split_whitespace().next()?;
    let lower = word.to_ascii_lowercase();
    // Ordinary languages that sit one edit away from an executor word.
    const LANGUAGES: [&str; 8] = ["awk", "nix", "nim", "rust", "json", "text", "ini", "ant"];
    if LANGUAGES.contains(&lower.as_str()) {
        return None;
    }
    let hit = EXECUTORS.iter().find(|e| {
        if lower == **e {
            return true; // wrong case: `Manual`, `AWS`
        }
        let d = crate::suggest::edit_distance(&lower, e);
        d == 1 || (d == 2 && e.len() >= 6)
    })?;
    let second = info.split_whitespace().nth(1).unwrap_or("");
    let looks_like_action = second.contains('.') && !second.contains('=');
    if lower.len() < 3 && !looks_like_action {
        return None;
    }
    let span = Span::new(info_span.start, info_span.start + word.len());
    Some(
        Diagnostic::warning(
            source,
            span,
            format!("`{word}` is not an executor; this block will not run"),
        )
        .with_help(format!("did you mean `{hit}`?")),
    )
}
