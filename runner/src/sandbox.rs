//! The Rhai engine every script, condition and interpolation runs in: no modules, no `eval`, no
//! file or network access, explicit limits, a deadline, and `print` routed to the step log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, EvalAltResult};

/// What one script evaluation may use (AWS's limits are `runbook_plugins::AwsLimits`). Debug and
/// release builds of Rhai default differently, so every limit is set here.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLimits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub deadline: Duration,
    /// How much the process may grow while the script runs. Rhai bounds each string, array
    /// and map, not their sum: 1,500 distinct 1 MiB strings in a map took 1.5 GB.
    pub max_memory: usize,
    /// The step's own deadline (`timeout=`): every evaluation for the step stops there.
    pub until: Option<Instant>,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            max_operations: 5_000_000,
            max_call_levels: 48,
            max_expr_depth: 64,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
            deadline: Duration::from_secs(10),
            max_memory: 256 << 20,
            until: None,
        }
    }
}

/// Deepest value a script may return: well inside what the journal writes and reads back.
pub const MAX_OUTPUT_DEPTH: usize = 32;

/// Largest value a script may return, strings, arrays and maps together (bytes of text plus
/// 16 per element).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Stack for the thread a script runs on: deep values are built, compared and dropped by
/// recursion inside Rhai, and the operation limit bounds how deep they can get.
pub const SCRIPT_STACK: usize = 512 << 20;

/// Converts what a script returned to JSON, refusing values nested deeper than
/// [`MAX_OUTPUT_DEPTH`] or larger than [`MAX_OUTPUT_BYTES`] before anything copies them.
pub fn bounded_json(d: &Dynamic) -> Result<serde_json::Value, OutputTooBig> {
    let mut budget = MAX_OUTPUT_BYTES;
    convert(d, 1, &mut budget)
}

/// A script's value that is refused before anything copies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutputTooBig {
    #[error("the script returned more than {} KiB (strings, lists and maps together)", MAX_OUTPUT_BYTES >> 10)]
    Large,
    #[error("the script returned a value nested deeper than {MAX_OUTPUT_DEPTH} levels")]
    Deep,
}

fn spend(budget: &mut usize, n: usize) -> Result<(), OutputTooBig> {
    *budget = budget.checked_sub(n).ok_or(OutputTooBig::Large)?;
    Ok(())
}

fn convert(d: &Dynamic, depth: usize, budget: &mut usize) -> Result<serde_json::Value, OutputTooBig> {
    use serde_json::Value;
    if depth > MAX_OUTPUT_DEPTH {
        return Err(OutputTooBig::Deep);
    }
    spend(budget, 16)?;
    if d.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = d.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = d.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = d.as_float() {
        return Ok(serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null));
    }
    if let Some(a) = d.read_lock::<rhai::Array>() {
        let mut out = Vec::with_capacity(a.len().min(1024));
        for x in a.iter() {
            out.push(convert(x, depth + 1, budget)?);
        }
        return Ok(Value::Array(out));
    }
    if let Some(m) = d.read_lock::<rhai::Map>() {
        let mut out = serde_json::Map::new();
        for (k, x) in m.iter() {
            spend(budget, k.len())?;
            out.insert(k.to_string(), convert(x, depth + 1, budget)?);
        }
        return Ok(Value::Object(out));
    }
    if let Some(s) = d.read_lock::<rhai::ImmutableString>() {
        spend(budget, s.len())?;
        return Ok(Value::String(s.to_string()));
    }
    if let Some(b) = d.read_lock::<rhai::Blob>() {
        spend(budget, b.len())?;
        return Ok(Value::Array(b.iter().map(|x| Value::from(*x)).collect()));
    }
    let s = d.to_string();
    spend(budget, s.len())?;
    Ok(Value::String(s))
}

/// Where a script's `print`, `debug`, `warn` go.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// The reason on_progress stopped a script; shown to the operator.
pub const DEADLINE_TOKEN: &str = "runbook: script deadline reached";
pub const INTERRUPT_TOKEN: &str = "runbook: interrupted";
pub const MEMORY_TOKEN: &str = "runbook: script memory limit";
pub const STEP_DEADLINE_TOKEN: &str = "runbook: the step's timeout";

/// The process's resident memory in bytes (Linux), for the script memory bound.
fn resident() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Building the standard package registers hundreds of functions; do it once per process.
fn standard_package() -> rhai::Shared<rhai::Module> {
    static PACKAGE: std::sync::OnceLock<rhai::Shared<rhai::Module>> = std::sync::OnceLock::new();
    PACKAGE
        .get_or_init(|| StandardPackage::new().as_shared_module())
        .clone()
}

/// A sandboxed engine. `interrupted` is polled between operations (Ctrl-C).
pub fn engine(
    limits: ScriptLimits,
    log: Option<Log>,
    interrupted: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Engine {
    let mut e = Engine::new_raw();
    e.register_global_module(standard_package());
    e.set_max_operations(limits.max_operations);
    e.set_max_call_levels(limits.max_call_levels);
    e.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    e.set_max_string_size(limits.max_string_size);
    e.set_max_array_size(limits.max_array_size);
    e.set_max_map_size(limits.max_map_size);
    e.set_max_variables(1_000);
    e.set_max_functions(1_000);
    e.disable_symbol("eval");
    // Rhai's `sleep` blocks between operations, where neither the deadline nor Ctrl-C is seen.
    const NO_SLEEP: &str =
        "`sleep` is not available in runbook scripts: a script computes; waiting is a step's job (a poll, a person)";
    e.register_fn("sleep", |_: f64| -> Result<(), Box<EvalAltResult>> {
        Err(NO_SLEEP.into())
    });
    e.register_fn("sleep", |_: i64| -> Result<(), Box<EvalAltResult>> {
        Err(NO_SLEEP.into())
    });
    let started = Instant::now();
    let baseline = resident();
    let last_sample = std::sync::atomic::AtomicU64::new(0);
    e.on_progress(move |_ops| {
        if interrupted
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Some(Dynamic::from(INTERRUPT_TOKEN));
        }
        let elapsed = started.elapsed();
        // Memory is sampled once a millisecond (reading /proc costs microseconds; a script
        // allocates at most some MiB in a millisecond).
        let ms = elapsed.as_millis() as u64;
        if ms > last_sample.load(std::sync::atomic::Ordering::Relaxed) {
            last_sample.store(ms, std::sync::atomic::Ordering::Relaxed);
            if let (Some(base), Some(now)) = (baseline, resident()) {
                if now > base + limits.max_memory {
                    return Some(Dynamic::from(MEMORY_TOKEN));
                }
            }
        }
        if limits.until.is_some_and(|u| Instant::now() > u) {
            return Some(Dynamic::from(STEP_DEADLINE_TOKEN));
        }
        (elapsed > limits.deadline).then(|| Dynamic::from(DEADLINE_TOKEN))
    });
    let print_log = log.clone();
    e.on_print(move |s| {
        if let Some(l) = &print_log {
            l(s)
        }
    });
    e.on_debug(move |s, _, _| {
        if let Some(l) = &log {
            l(s)
        }
    });
    e
}

/// The engine for `check`: unknown variables are compile errors. It only compiles, so one
/// engine serves the whole process.
pub fn checking_engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut e = engine(ScriptLimits::default(), None, None);
        e.set_strict_variables(true);
        e
    })
}

/// The error inside any function calls that wrapped it.
pub fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    let mut e = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) = e {
        e = inner;
    }
    e
}

/// Whether the error is one of the sandbox's limits (which quote nothing of the script's data).
pub fn is_limit(err: &EvalAltResult) -> bool {
    matches!(
        innermost(err),
        EvalAltResult::ErrorTerminated(..)
            | EvalAltResult::ErrorTooManyOperations(..)
            | EvalAltResult::ErrorDataTooLarge(..)
            | EvalAltResult::ErrorStackOverflow(..)
    )
}

/// Says what went wrong in words an operator understands.
pub fn describe(err: &EvalAltResult, limits: &ScriptLimits) -> String {
    if is_limit(err) {
        return describe_one(innermost(err), limits);
    }
    describe_one(err, limits)
}

fn describe_one(err: &EvalAltResult, limits: &ScriptLimits) -> String {
    match err {
        EvalAltResult::ErrorTerminated(token, _) => {
            let token = token.clone().into_string().ok();
            if token.as_deref() == Some(INTERRUPT_TOKEN) {
                "interrupted".to_string()
            } else if token.as_deref() == Some(STEP_DEADLINE_TOKEN) {
                "the step ran past its timeout=".to_string()
            } else if token.as_deref() == Some(MEMORY_TOKEN) {
                format!("the script used more than {} MiB of memory", limits.max_memory >> 20)
            } else {
                format!("the script ran past its {:?} deadline", limits.deadline)
            }
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            format!(
                "the script ran more than {} operations (an endless loop?)",
                limits.max_operations
            )
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            format!("the script recursed deeper than {} calls", limits.max_call_levels)
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => format!("the script built too large a value ({what})"),
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        other => {
            let s = other.to_string();
            // Drop Rhai's own "(line N, position M)": we point at the Markdown line instead.
            match s.rfind(" (line ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// How a script ended when it did not return a value.
#[derive(Debug)]
pub struct ScriptError {
    pub position: rhai::Position,
    pub message: String,
    /// One of the sandbox's limits (which quote nothing of the script's data).
    pub limit: bool,
}

/// Runs a script body on a thread of its own with a large stack ([`SCRIPT_STACK`]), with
/// `fail(msg)` and `warn(msg)` registered, and converts what it returns with the output bounds.
/// Whatever the script built is dropped on that thread.
pub async fn run_script(
    body: String,
    mut scope: rhai::Scope<'static>,
    limits: ScriptLimits,
    log: Option<Log>,
    interrupted: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<serde_json::Value, ScriptError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("rhai".into())
        .stack_size(SCRIPT_STACK)
        .spawn(move || {
            let mut engine = engine(limits, log.clone(), interrupted);
            engine.register_fn("fail", |msg: &str| -> Result<(), Box<EvalAltResult>> {
                Err(msg.into())
            });
            engine.register_fn("warn", move |msg: &str| {
                if let Some(l) = &log {
                    l(&format!("warning: {msg}"))
                }
            });
            let result = match engine.eval_with_scope::<Dynamic>(&mut scope, &body) {
                Ok(d) => bounded_json(&d).map_err(|e| ScriptError {
                    position: rhai::Position::NONE,
                    message: e.to_string(),
                    limit: true,
                }),
                Err(e) => Err(ScriptError {
                    position: e.position(),
                    message: describe(&e, &limits),
                    limit: is_limit(&e),
                }),
            };
            drop(scope);
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(ScriptError {
            position: rhai::Position::NONE,
            message: format!("cannot start the script: {e}"),
            limit: false,
        });
    }
    rx.await.unwrap_or_else(|_| {
        Err(ScriptError {
            position: rhai::Position::NONE,
            message: "the script stopped without an answer".into(),
            limit: false,
        })
    })
}
