//! Rhai steps. Scripts compute; steps act: a script reaches nothing outside its scope (no AWS,
//! network, files or processes). It runs on a thread of its own with a large stack, under the
//! sandbox's limits and the step's `timeout=`; what it returns is bounded in size and depth. A
//! script that reads a secret has secret outputs and log lines, except outputs declared `public=`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rhai::{Dynamic, EvalAltResult};
use serde_json::{Value, json};

use super::{Outcome, Secrecy, Shared, StepError};
use crate::eval::Env;
use crate::journal::Entry;
use crate::model::Step;
use crate::redact::MASK;
use crate::sandbox::{self, Limits};

pub(super) async fn run_rhai(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    item: Option<&Value>,
    deadline: Option<std::time::Instant>,
) -> Result<Outcome, StepError> {
    let tainted = env.reads_secret(&step.body);
    let public = step.attrs.public_outputs();
    let mut limits = Limits::default();
    if let Some(t) = super::step::timeout(step) {
        limits.deadline = t;
    }
    limits.until = deadline;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let shared2 = shared.clone();
    let step2 = step.clone();
    let mut scope = env.scope_for(&step.body, item);
    let spawned = std::thread::Builder::new()
        .name(format!("rhai {}", step.id))
        .stack_size(sandbox::SCRIPT_STACK)
        .spawn(move || {
            let log_shared = shared2.clone();
            let log_step = step2.id.clone();
            let log: sandbox::Log = Arc::new(move |s: &str| {
                let s = if tainted { MASK } else { s };
                log_shared.ui.line(&format!("  {log_step}: {s}"));
                if let Err(StepError::Journal(m)) = log_shared.record(Entry::Log {
                    step: log_step.clone(),
                    message: s.to_string(),
                }) {
                    log_shared.ui.warn(&format!("journal: {m}"));
                }
            });
            let mut engine = sandbox::engine(limits, Some(log.clone()), Some(shared2.interrupted.clone()));
            engine.register_fn("fail", |msg: &str| -> Result<(), Box<EvalAltResult>> {
                Err(msg.into())
            });
            engine.register_fn("warn", move |msg: &str| log(&format!("warning: {msg}")));
            let result = engine
                .eval_with_scope::<Dynamic>(&mut scope, &step2.body)
                .map(|d| sandbox::bounded_json(&d))
                .map_err(|e| {
                    let limit = crate::sandbox::is_limit(&e);
                    (e.position(), sandbox::describe(&e, &limits), limit)
                });
            // Whatever the script built is dropped here, on the thread with the large stack.
            drop(scope);
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(StepError::failed(format!("cannot start the script: {e}")));
    }
    let res = rx
        .await
        .map_err(|_| StepError::failed("the script stopped without an answer"))?;
    let at = |pos: rhai::Position| match pos.line() {
        Some(l) => {
            let span = step.body_line_col(l, pos.position().unwrap_or(1));
            let (line, col) = shared.source.line_col(span.start);
            format!(" at {}:{line}:{col}", shared.runbook.path)
        }
        None => String::new(),
    };
    match res {
        Ok(Ok(v)) => {
            let outputs = match v {
                Value::Object(o) => Value::Object(o),
                Value::Null => json!({}),
                other => json!({ "value": other }),
            };
            if tainted {
                // Derived from a secret: remembered as secret wherever it shows up.
                let secret_part = crate::redact::Redactor::mask_all(&outputs, &public);
                let mut derived = outputs.clone();
                if let (Value::Object(d), Value::Object(_)) = (&mut derived, &secret_part) {
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
        Ok(Err(e)) => Err(StepError::failed(format!("script: {e}"))),
        Err((pos, message, limit)) => {
            if shared.interrupted.load(Ordering::SeqCst) {
                return Err(StepError::Interrupted);
            }
            // A script that read a secret may quote it, or something derived from it, in
            // its error (`fail("bad: " + inputs.pw)`): only the limits it hit are told.
            let message = if tainted && !limit {
                "the script failed; its message is withheld because it reads a secret".to_string()
            } else {
                message
            };
            Err(StepError::failed(format!("script{}: {message}", at(pos))))
        }
    }
}
