//! What the operator sees while a runbook runs: indicatif spinners and bars on a terminal,
//! plain timestamped lines otherwise (CI logs). Everything shown passes the redactor.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::redact::Redactor;

pub struct Ui {
    fancy: Option<MultiProgress>,
    color: bool,
    redactor: Redactor,
    spinner: Mutex<Option<ProgressBar>>,
}

fn clock() -> String {
    let now = crate::journal::now();
    now.get(11..19).unwrap_or("").to_string()
}

impl Ui {
    pub fn new(color: bool, redactor: Redactor) -> Ui {
        let fancy = std::io::stdout().is_terminal().then(MultiProgress::new);
        Ui {
            fancy,
            color,
            redactor,
            spinner: Mutex::new(None),
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

    /// A line of output, above any progress bars.
    pub fn line(&self, s: &str) {
        let s = self.redactor.text(s);
        match &self.fancy {
            Some(mp) => {
                let _ = mp.println(&s);
            }
            None => println!("{} {s}", clock()),
        }
    }

    /// Text shown as is (section prose, hand-over details): no timestamp.
    pub fn block(&self, s: &str) {
        let s = self.redactor.text(s);
        match &self.fancy {
            Some(mp) => {
                mp.suspend(|| println!("{s}"));
            }
            None => println!("{s}"),
        }
    }

    pub fn step_started(&self, id: &str, what: &str) {
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
            None => self.line(&msg),
        }
    }

    /// Updates the current step's spinner (polling status), or prints a line.
    pub fn status(&self, s: &str) {
        let current = self.spinner.lock().ok().and_then(|g| g.clone());
        match current {
            Some(pb) => pb.set_message(self.redactor.text(s)),
            None => self.line(&format!("  … {s}")),
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
            other => other.to_string(),
        };
        self.line(&format!("{mark} {id}  {detail}"));
    }

    pub fn warn(&self, s: &str) {
        self.line(&format!("{} {s}", self.paint("1;33", "warning:")));
    }

    pub fn note(&self, s: &str) {
        self.line(&format!("{} {s}", self.paint("1;36", "note:")));
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
            pb.set_prefix(id.to_string());
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
