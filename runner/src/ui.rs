//! What the operator sees while a runbook runs: indicatif spinners and bars on a terminal,
//! plain timestamped lines otherwise (CI logs). Everything shown passes the redactor, and every
//! text from outside (runbooks, answers, AWS) is [`sanitize`](crate::text::sanitize)d: only the tool's own colours reach
//! the terminal as escape sequences.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::redact::Redactor;
use crate::text::sanitize;

pub struct Ui {
    fancy: Option<MultiProgress>,
    color: bool,
    redactor: Redactor,
    spinner: Mutex<Option<ProgressBar>>,
    /// Set when stdout is gone (a closed pipe): nothing more is printed, and the run stops at
    /// its next step boundary.
    closed: AtomicBool,
    /// Lines go to stderr (stdout carries the event stream: `run --events -`).
    to_stderr: bool,
    /// Progress lines are not shown (`plan` prints its own table); errors still are.
    silent: bool,
}

/// The time of day (UTC) a plain progress line is stamped with.
fn clock() -> String {
    jiff::Timestamp::now().strftime("%H:%M:%S").to_string()
}

/// Prints to stdout, reporting a closed pipe instead of panicking as `println!` would.
pub fn print_out(s: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

impl Ui {
    /// A Ui whose lines go to stderr when `to_stderr` (stdout is taken by events).
    pub fn with_output(color: bool, redactor: Redactor, to_stderr: bool) -> Ui {
        let fancy = if to_stderr {
            std::io::stderr().is_terminal().then(MultiProgress::new)
        } else {
            std::io::stdout().is_terminal().then(MultiProgress::new)
        };
        Ui {
            fancy,
            color,
            redactor,
            spinner: Mutex::new(None),
            closed: AtomicBool::new(false),
            to_stderr,
            silent: false,
        }
    }

    /// A Ui that shows no progress, only errors: the interpreter's lines while `plan` walks.
    pub fn silent(redactor: Redactor) -> Ui {
        Ui {
            fancy: None,
            color: false,
            redactor,
            spinner: Mutex::new(None),
            closed: AtomicBool::new(false),
            to_stderr: true,
            silent: true,
        }
    }

    /// Whether stdout was closed under the run (`runbook run … | head`).
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn out(&self, s: &str) {
        if self.closed() || self.silent {
            return;
        }
        let written = if self.to_stderr {
            let mut err = std::io::stderr().lock();
            err.write_all(s.as_bytes()).and_then(|()| err.write_all(b"\n"))
        } else {
            print_out(s)
        };
        if written.is_err() {
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    pub fn color(&self) -> bool {
        self.color
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// A line of output from outside the tool (an answer, an AWS message), above any bars.
    pub fn line(&self, s: &str) {
        self.emit(&sanitize(s));
    }

    /// A line the tool composed from sanitized parts and its own colours.
    fn emit(&self, s: &str) {
        let s = self.redactor.text(s);
        match &self.fancy {
            Some(mp) => {
                if mp.println(&s).is_err() {
                    self.closed.store(true, Ordering::SeqCst);
                }
            }
            None => self.out(&format!("{} {s}", clock())),
        }
    }

    /// Text shown as is (hand-over details, instructions): no timestamp.
    pub fn block(&self, s: &str) {
        self.block_styled(&sanitize(s));
    }

    /// Text the tool styled itself from sanitized input (section prose rendered for a terminal).
    pub fn block_styled(&self, s: &str) {
        let s = self.redactor.text(s);
        match &self.fancy {
            Some(mp) => {
                mp.suspend(|| self.out(&s));
            }
            None => self.out(&s),
        }
    }

    pub fn step_started(&self, id: &str, what: &str) {
        let (id, what) = (sanitize(id), sanitize(what));
        let msg = format!("{} {id}  {what}", self.paint("1;34", "▶"));
        match &self.fancy {
            Some(mp) => {
                let pb = mp.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_message(self.redactor.text(&format!("{id}  {what}")));
                pb.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut s) = self.spinner.lock() {
                    *s = Some(pb);
                }
            }
            None => self.emit(&msg),
        }
    }

    /// Updates the current step's spinner (polling status), or prints a line.
    pub fn status(&self, s: &str) {
        let s = sanitize(s);
        let current = self.spinner.lock().ok().and_then(|g| g.clone());
        match current {
            Some(pb) => pb.set_message(self.redactor.text(&s)),
            None => self.emit(&format!("  … {s}")),
        }
    }

    pub fn step_finished(&self, id: &str, mark: &str, detail: &str) {
        if let Ok(mut s) = self.spinner.lock() {
            if let Some(pb) = s.take() {
                pb.finish_and_clear();
            }
        }
        let mark = match mark {
            "done" => self.paint("1;32", "✓"),
            "skipped" => self.paint("2", "↷"),
            "failed" => self.paint("1;31", "✗"),
            "waiting" => self.paint("1;33", "⏸"),
            other => sanitize(other),
        };
        self.emit(&format!("{mark} {}  {}", sanitize(id), sanitize(detail)));
    }

    pub fn warn(&self, s: &str) {
        self.emit(&format!("{} {}", self.paint("1;33", "warning:"), sanitize(s)));
    }

    pub fn note(&self, s: &str) {
        self.emit(&format!("{} {}", self.paint("1;36", "note:"), sanitize(s)));
    }

    /// A bar for a fan-out of `total` items.
    pub fn fanout(&self, id: &str, total: u64) -> Fanout {
        let bar = self.fancy.as_ref().map(|mp| {
            let pb = mp.add(ProgressBar::new(total));
            pb.set_style(
                ProgressStyle::with_template("  {prefix} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            pb.set_prefix(sanitize(id));
            pb
        });
        Fanout {
            bar,
            total,
            counts: Mutex::new((0, 0)),
        }
    }

    /// Lets a prompt use the terminal without bars drawing over it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        let pb = self.spinner.lock().ok().and_then(|g| g.clone());
        if let Some(pb) = &pb {
            pb.disable_steady_tick();
        }
        let r = match &self.fancy {
            Some(mp) => mp.suspend(f),
            None => f(),
        };
        if let Some(pb) = &pb {
            pb.enable_steady_tick(Duration::from_millis(120));
        }
        r
    }
}

pub struct Fanout {
    bar: Option<ProgressBar>,
    total: u64,
    /// (done, failed)
    counts: Mutex<(u64, u64)>,
}

impl Fanout {
    pub fn item_finished(&self, ok: bool, ui: &Ui) {
        let (done, failed) = match self.counts.lock() {
            Ok(mut c) => {
                if ok {
                    c.0 += 1
                } else {
                    c.1 += 1
                }
                *c
            }
            Err(_) => return,
        };
        let waiting = self.total.saturating_sub(done + failed);
        let msg = format!("done {done} · waiting {waiting} · failed {failed}");
        match &self.bar {
            Some(pb) => {
                pb.inc(1);
                pb.set_message(msg);
            }
            None => {
                // Plain output: a line every 10% and at the end, not one per item.
                let n = done + failed;
                let step = (self.total / 10).max(1);
                if n % step == 0 || n == self.total {
                    ui.line(&format!("  {n}/{}  {msg}", self.total));
                }
            }
        }
    }

    pub fn finish(&self) -> (u64, u64) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
        self.counts.lock().map(|c| *c).unwrap_or((0, 0))
    }
}
