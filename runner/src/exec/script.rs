//! Rhai steps. Scripts compute; steps act: a script reaches nothing outside its scope (no AWS,
//! network, files or processes). It runs on a thread of its own with a large stack, under the
//! sandbox's limits and the step's `timeout=`; what it returns is bounded in size and depth. A
//! script that reads a secret has secret outputs and log lines, except outputs declared `public=`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::{Outcome, Secrecy, Shared, StepError};
use crate::eval::Env;
use crate::journal::Entry;
use crate::model::Step;
use crate::sandbox::{self, ScriptLimits};

pub(super) async fn run_rhai(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<&Value>,
    deadline: Option<std::time::Instant>,
) -> Result<Outcome, StepError> {
    let tainted = env.reads_secret(&step.body);
    let public = step.attrs.public_outputs();
    let mut limits = ScriptLimits::default();
    if let Some(t) = step.timeout() {
        limits.deadline = t;
    }
    limits.until = deadline;
    let log_shared = shared.clone();
    let log_step = step.id.clone();
    let log: sandbox::Log = Arc::new(move |s: &str| {
        // A script that reads a secret prints nothing anywhere: not its lines, not masks in
        // their place (how many there are can carry the secret too).
        if tainted {
            return;
        }
        let (allowed, over) = log_shared.printed.take(&log_step, s.len());
        let mut lines = Vec::new();
        if allowed > 0 {
            lines.push(s[..crate::text::floor_boundary(s, allowed)].to_string());
        }
        if over {
            lines.push(format!(
                "printed more than {} KiB; the rest of its output is dropped (not shown, not journaled)",
                PRINT_CAP >> 10
            ));
        }
        for message in lines {
            log_shared.ui.line(&format!("  {log_step}: {message}"));
            if let Err(StepError::Journal(m)) = log_shared.record(Entry::Log {
                step: log_step.clone(),
                message,
            }) {
                log_shared.ui.warn(&format!("journal: {m}"));
            }
        }
    });
    let res = sandbox::run_script(
        step.body.clone(),
        env.scope_for(&step.body, item),
        limits,
        Some(log),
        Some(shared.interrupted.clone()),
    )
    .await;
    // Where in the file the script failed: the failure is located there, as `check` locates
    // a script's errors, rather than at the fence with a second location in its message.
    let at = |pos: rhai::Position| pos.line().map(|l| step.body_line_col(l, pos.position().unwrap_or(1)));
    match res {
        Ok(v) => {
            let outputs = match v {
                Value::Object(o) => Value::Object(o),
                Value::Null => json!({}),
                other => json!({ "value": other }),
            };
            if tainted {
                // Derived from a secret: remembered as secret wherever it shows up, except
                // what the author declared public.
                let mut derived = outputs.clone();
                if let Value::Object(d) = &mut derived {
                    d.retain(|k, _| !public.contains(k));
                }
                shared.redactor.add_derived(&derived);
            }
            Ok(Outcome {
                outputs,
                secrecy: if tainted {
                    Secrecy::AllBut(public)
                } else {
                    Secrecy::None
                },
            })
        }
        Err(sandbox::ScriptError {
            position: pos,
            message,
            limit,
        }) => {
            if shared.interrupted.load(Ordering::SeqCst) {
                return Err(StepError::Interrupted);
            }
            // A script that read a secret may quote it, or something derived from it, in its
            // error (`fail("bad: " + inputs.pw)`), and where it failed can spell it too (a
            // ladder of `if c == N { fail() }`): neither is told, nor which limit it hit.
            if tainted {
                return Err(StepError::failed(
                    "the script failed; its message and where it failed are withheld because it reads a secret",
                ));
            }
            let _ = limit;
            Err(StepError::Failed {
                message: format!("script: {message}"),
                hint: None,
                at: at(pos),
            })
        }
    }
}

/// How much one step may print, across its retries and fan-out items: the screen, the journal
/// and `--events` each get at most this much of it (a script printing a 1 MiB string in a loop
/// wrote 765 MB in 5 s). The rest is dropped, and the screen and the journal say so once.
pub const PRINT_CAP: usize = 64 << 10;

/// Bytes printed so far, by step.
#[derive(Default)]
pub struct Printed(std::sync::Mutex<std::collections::HashMap<String, usize>>);

impl Printed {
    /// Of `len` more bytes from `step`, how many may still be printed, and whether this line is
    /// the one that went over the cap (told once).
    pub fn take(&self, step: &str, len: usize) -> (usize, bool) {
        let Ok(mut m) = self.0.lock() else {
            return (0, false);
        };
        let used = m.entry(step.to_string()).or_insert(0);
        if *used > PRINT_CAP {
            return (0, false);
        }
        let allowed = len.min(PRINT_CAP - *used);
        *used = used.saturating_add(len);
        (allowed, *used > PRINT_CAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_shared_across_lines_and_told_once() {
        let p = Printed::default();
        assert_eq!(p.take("a", PRINT_CAP - 10), (PRINT_CAP - 10, false));
        assert_eq!(p.take("a", 10), (10, false));
        assert_eq!(p.take("a", 1), (0, true));
        assert_eq!(p.take("a", 1), (0, false));
        assert_eq!(p.take("b", PRINT_CAP + 5), (PRINT_CAP, true));
    }
}
