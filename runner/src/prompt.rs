//! Asking a person: confirmations, values with validation and re-prompting, secrets unechoed.

use std::io::IsTerminal;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input as Line, Password, Select};

use crate::inputs::validate;
use crate::model::Input;
use crate::text::sanitize;

/// dialoguer's error is an I/O error; keep its kind (Ctrl-C at a prompt is `Interrupted`).
fn io(e: dialoguer::Error) -> std::io::Error {
    match e {
        dialoguer::Error::IO(e) => e,
    }
}

/// Whether a person can be asked: stdin and stderr are terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

pub fn confirm(question: &str) -> std::io::Result<bool> {
    Confirm::with_theme(&ColorfulTheme::default())
        .with_prompt(sanitize(question))
        .default(false)
        .interact()
        .map_err(io)
}

/// Asks for one value until it passes the input's checks.
pub fn ask(name: &str, input: &Input) -> std::io::Result<String> {
    let theme = ColorfulTheme::default();
    // Prompts, help and choices come from the runbook: no escape sequence of theirs acts.
    let prompt = sanitize(input.prompt.as_deref().unwrap_or(name));
    if let Some(help) = &input.help {
        eprintln!("  {}", sanitize(help));
    }
    if input.secret {
        loop {
            let v = Password::with_theme(&theme)
                .with_prompt(&prompt)
                .interact()
                .map_err(io)?;
            match validate(name, input, &v) {
                Ok(()) => return Ok(v),
                Err(e) => eprintln!("  {e}"),
            }
        }
    }
    if let Some(choices) = &input.choices {
        let default = input
            .default
            .as_ref()
            .and_then(|d| choices.iter().position(|c| c == d))
            .unwrap_or(0);
        let shown: Vec<String> = choices.iter().map(|c| sanitize(c)).collect();
        let i = Select::with_theme(&theme)
            .with_prompt(&prompt)
            .items(&shown)
            .default(default)
            .interact()
            .map_err(io)?;
        return Ok(choices[i].clone());
    }
    let mut line = Line::<String>::with_theme(&theme).with_prompt(&prompt);
    if let Some(d) = &input.default {
        line = line.default(d.clone());
    }
    let name = name.to_string();
    let spec = input.clone();
    line.validate_with(move |v: &String| validate(&name, &spec, v))
        .interact_text()
        .map_err(io)
}

/// Asks run / skip / quit before a step (`run --step`).
pub fn run_skip_quit(step: &str) -> std::io::Result<usize> {
    Select::with_theme(&ColorfulTheme::default())
        .with_prompt(format!("Step {}", sanitize(step)))
        .items(["run", "skip", "quit (the journal is saved)"])
        .default(0)
        .interact()
        .map_err(io)
}
