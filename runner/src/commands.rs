//! The subcommands, each a function from parsed arguments to an exit code.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;
use runbook_plugins::Registry;

use crate::cli::{Cli, ColorChoice, Command};
use crate::diagnostic::{self, Diagnostic};
use crate::exit::Exit;
use crate::model::Runbook;
use crate::{analyzer, load};

pub fn dispatch(cli: Cli) -> Exit {
    let color = use_color(cli.color);
    match cli.command {
        Command::Check { paths, json } => check(&paths, json, color),
        Command::Actions { name } => crate::actions::run(name.as_deref()),
        Command::List { paths, json } => list(&paths, json, color),
        Command::Completions { shell } => {
            // Into a buffer first: a closed pipe (`| head`) is not a panic.
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "runbook", &mut buf);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf).and_then(|()| out.flush());
            Exit::Done
        }
        Command::Run(args) => runtime(|| crate::run::run(args, color, None)),
        Command::Rehearse(args) => runtime(|| {
            let account = args.account();
            crate::run::run(args.run, color, Some(account))
        }),
        Command::Plan(args) => runtime(|| crate::run::plan(args, color)),
        Command::Status {
            file,
            state_dir,
            run,
            json,
        } => crate::run::status(&file, &state_dir, run.as_deref(), json, color),
        Command::Runs { file, state_dir, json } => crate::run::runs(&file, &state_dir, json, color),
        Command::Answers { file } => answers_template(&file, color),
        Command::Render {
            book,
            runbooks,
            out,
            serve,
        } => render(&book, &runbooks, &out, serve.as_deref(), color),
    }
}

fn runtime<F, Fut>(f: F) -> Exit
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Exit>,
{
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => {
            let exit = rt.block_on(f());
            // A prompt interrupted by Ctrl-C can leave its thread blocked on the terminal; dropping
            // the runtime would wait for it for ever. The run is over and its journal closed.
            rt.shutdown_background();
            exit
        }
        Err(e) => {
            eprintln!("runbook: cannot start the async runtime: {e}");
            Exit::StepFailed
        }
    }
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && console::Term::stderr().is_term()
        }
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

/// Loads and checks every runbook under the given paths. A directory given is the runbooks root
/// of the runbooks found in it (`on-failure=` and includes stay inside it); a file given alone
/// has the root [`crate::paths::runbooks_root`] finds.
pub fn analyse(paths: &[PathBuf]) -> (Vec<Runbook>, Vec<Diagnostic>) {
    let registry = Registry::shared();
    let mut books = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        let (files, d) = load::collect(std::slice::from_ref(p));
        diags.extend(d);
        let root = if p.is_dir() {
            p.clone()
        } else {
            crate::paths::runbooks_root(p)
        };
        for f in files {
            match load::read(&f) {
                Ok(src) => {
                    let (rb, d) = analyzer::check_in(&src, registry, &root);
                    diags.extend(d);
                    books.push(rb);
                }
                Err(d) => diags.push(d),
            }
        }
    }
    diagnostic::sort(&mut diags);
    (books, diags)
}

fn check(paths: &[PathBuf], json: bool, color: bool) -> Exit {
    let (books, diags) = analyse(paths);
    // A capped file's closing note counts what it left out.
    let errors: usize = diags
        .iter()
        .map(|d| {
            if d.is_note() {
                d.hidden_errors
            } else {
                usize::from(d.is_error())
            }
        })
        .sum();
    let warnings: usize = diags
        .iter()
        .map(|d| {
            if d.is_note() {
                d.hidden_warnings
            } else {
                usize::from(!d.is_error())
            }
        })
        .sum();
    if json {
        // A closed pipe is not an error (`runbook check --json | head`).
        let _ = crate::ui::print_out(&serde_json::to_string_pretty(&diags).unwrap_or_else(|_| "[]".into()));
    } else {
        report(&diags, color);
        let steps: usize = books.iter().map(|b| b.steps.len()).sum();
        eprintln!(
            "checked {} runbook{} ({} step{}): {} error{}, {} warning{}",
            books.len(),
            plural(books.len()),
            steps,
            plural(steps),
            errors,
            plural(errors),
            warnings,
            plural(warnings)
        );
    }
    if errors > 0 { Exit::Usage } else { Exit::Done }
}

/// TOML text for a string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `runbook answers FILE`: a commented answers file to fill in.
fn answers_template(file: &std::path::Path, color: bool) -> Exit {
    let source = match load::read(file) {
        Ok(s) => s,
        Err(d) => {
            report(&[d], color);
            return Exit::Usage;
        }
    };
    let (rb, diags) = analyzer::check(&source, Registry::shared());
    if report(&diags, color) {
        return Exit::Usage;
    }
    let clean = |s: &str| crate::ui::sanitize(s).replace('\n', " ");
    let mut o = String::new();
    o.push_str(&format!(
        "# Answers for \"{}\" ({}), made by `runbook answers`.\n",
        clean(&rb.title),
        clean(&rb.path)
    ));
    o.push_str(&format!(
        "# Fill it in, then: runbook run {} --answers THIS-FILE\n# A commented-out value is not given: the run asks for it (or waits, exit 3).\n\n",
        clean(&rb.path)
    ));
    let describe = |o: &mut String, i: &crate::model::Input| {
        if let Some(p) = &i.prompt {
            o.push_str(&format!("# {}\n", clean(p)));
        }
        if let Some(h) = &i.help {
            o.push_str(&format!("# {}\n", clean(h)));
        }
        if let Some(c) = &i.choices {
            o.push_str(&format!("# one of: {}\n", clean(&c.join(", "))));
        }
        if let Some(p) = &i.pattern {
            o.push_str(&format!("# must match: {}\n", clean(p)));
        }
    };
    let value_line = |o: &mut String, name: &str, i: &crate::model::Input| {
        let key = toml::Value::String(name.to_string()).to_string();
        let key = if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            name.to_string()
        } else {
            key
        };
        if i.secret {
            o.push_str(&format!(
                "# secret: not kept in files; give it as {}=... or at the prompt\n# {key} = \"\"\n",
                crate::inputs::env_var(name)
            ));
        } else {
            match &i.default {
                Some(d) => o.push_str(&format!("{key} = {}\n", toml_str(d))),
                None => o.push_str(&format!("# {key} = \"\"\n")),
            }
        }
    };
    let mut inputs: Vec<(&String, &crate::model::Input)> = rb.settings.inputs.iter().collect();
    inputs.sort_by_key(|(_, i)| i.span.start);
    o.push_str("[inputs]\n");
    for (name, i) in inputs {
        describe(&mut o, i);
        value_line(&mut o, name, i);
        o.push('\n');
    }
    for step in rb
        .steps
        .iter()
        .filter(|s| matches!(s.executor, crate::model::Executor::Manual))
    {
        let Some(m) = crate::manual::parse(&source, step, &mut Vec::new()) else {
            continue;
        };
        o.push_str(&format!("[steps.{}]\n", step.id));
        if let Some(c) = &m.confirm {
            o.push_str(&format!("# {}\n", clean(c)));
        }
        o.push_str("confirm = false\n");
        for (name, i) in &m.ask {
            describe(&mut o, i);
            value_line(&mut o, name, i);
        }
        o.push('\n');
    }
    let _ = crate::ui::print_out(o.trim_end());
    Exit::Done
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn list(paths: &[PathBuf], json: bool, color: bool) -> Exit {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("runbooks")]
    } else {
        paths.to_vec()
    };
    let (mut books, diags) = analyse(&paths);
    let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.is_error()).collect();
    // A secret's default is written in the runbook (check warns), but never printed.
    for b in &mut books {
        for i in b.settings.inputs.values_mut().filter(|i| i.secret) {
            if i.default.is_some() {
                i.default = Some(crate::redact::MASK.into());
            }
        }
    }
    if json {
        let _ = crate::ui::print_out(&serde_json::to_string_pretty(&books).unwrap_or_else(|_| "[]".into()));
    } else {
        let mut out = std::io::stdout().lock();
        for b in &books {
            let _ = writeln!(
                out,
                "{}  {}",
                crate::ui::sanitize(&b.path),
                crate::ui::sanitize(&b.title)
            );
            if !b.settings.inputs.is_empty() {
                let names: Vec<&str> = b.settings.inputs.keys().map(String::as_str).collect();
                let _ = writeln!(out, "  inputs: {}", crate::ui::sanitize(&names.join(", ")));
            }
            for s in &b.steps {
                let what = s.executor.action().unwrap_or_else(|| s.executor.word().to_string());
                let what = if s.executor.word() == "aws" || s.executor.word() == "net" {
                    format!("{} {}", s.executor.word(), what.trim_start_matches("net."))
                } else {
                    what
                };
                let _ = writeln!(out, "  {:>5}  {:<32} {}", s.line, s.id, crate::ui::sanitize(&what));
            }
        }
    }
    report(&errors, color);
    if errors.is_empty() { Exit::Done } else { Exit::Usage }
}

fn render(
    book: &std::path::Path,
    runbooks: &std::path::Path,
    out: &std::path::Path,
    serve: Option<&str>,
    color: bool,
) -> Exit {
    use crate::render::RenderError;
    let started = std::time::Instant::now();
    match crate::render::render(book, runbooks, out) {
        Ok(staged) => eprintln!(
            "rendered {} runbook{} into {} in {:.1}s",
            staged.runbooks.len(),
            plural(staged.runbooks.len()),
            out.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(RenderError::Runbooks(dir, diags)) => {
            report(&diags, color);
            eprintln!("runbook: not rendered: the runbooks in {dir} have errors");
            return Exit::Usage;
        }
        Err(RenderError::Pages(diags)) => {
            report(&diags, color);
            eprintln!("runbook: not rendered: the book's pages have errors");
            return Exit::Usage;
        }
        Err(e) => {
            eprintln!("runbook: render: {e}");
            return Exit::Usage;
        }
    }
    let Some(addr) = serve else { return Exit::Done };
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("runbook: cannot serve on {addr}: {e}");
            return Exit::Usage;
        }
    };
    match listener.local_addr() {
        Ok(a) => {
            let _ = crate::ui::print_out(&format!("serving {} at http://{a}/ (Ctrl-C stops)", out.display()));
        }
        Err(e) => eprintln!("runbook: {e}"),
    }
    let _ = std::io::stdout().flush();
    match crate::render::serve::serve(listener, out.to_path_buf()) {
        Ok(()) => Exit::Done,
        Err(e) => {
            eprintln!("runbook: serve: {e}");
            Exit::StepFailed
        }
    }
}
