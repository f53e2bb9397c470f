//! Rhai to Python 3.11, for a checked subset: what a runbook's scripts and `${...}` expressions
//! compute, run by `aws:executeScript`. Translated: literals, `()`, references, comparisons,
//! `&& || !`, `+ - *` (string `+` through `_add`, which keeps Rhai's string + anything),
//! `if` (statement, or expression: a conditional expression, or an `if` statement assigning the
//! `let`), `let`/`const`/assignment, `for x in array|range`, `break`/`continue`, map and array
//! literals and indexing, interpolated strings, `??`, the methods in [`METHODS`], `fail` (raise),
//! `warn`/`print`. Everything else is refused at its Rhai position: closures, `fn`,
//! `while`/`loop`/`do`, `switch`, `/` and `%` (Rhai's integer division is not Python's),
//! `return`, other methods and functions.

use rhai::{ASTFlags, Engine, Expr, FnCallExpr, OptimizationLevel, Position, Stmt, StmtBlock};

use std::fmt::Write as _;

mod expr;
#[cfg(test)]
mod tests;

/// What a value is, as far as the translation can tell: the Automation output type follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    Int,
    List,
    Map,
    Unknown,
}

/// Where references resolve: each returns the Python expression that reads the value.
pub trait Scope {
    fn input(&mut self, name: &str) -> Result<(String, Ty), String>;
    fn step(&mut self, id: &str, field: Option<&str>) -> Result<(String, Ty), String>;
    fn item(&mut self) -> Result<(String, Ty), String>;
    fn run(&mut self, field: &str) -> Result<(String, Ty), String>;
}

/// A refusal, at a 1-based line and column of the translated code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// A translated script: statements (indented for the handler's body) and the outputs of the
/// map it ends with.
pub struct Script {
    pub body: String,
    pub outputs: Vec<(String, Ty)>,
}

pub const METHODS: &[&str] = &[
    "len",
    "is_empty",
    "contains",
    "starts_with",
    "ends_with",
    "split",
    "to_upper",
    "to_lower",
    "to_string",
    "trim",
    "replace",
    "push",
];

/// Python names a script's variables must not take.
const RESERVED: &[&str] = &[
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "class",
    "def",
    "del",
    "elif",
    "except",
    "finally",
    "from",
    "global",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "try",
    "with",
    "yield",
    "id",
    "len",
    "str",
    "list",
    "dict",
    "print",
    "type",
    "range",
    "min",
    "max",
    "events",
    "context",
    "handler",
    "P",
    "boto3",
    "json",
    "time",
    "Exception",
];

fn engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(|| {
        let mut e = Engine::new_raw();
        // The tree as written: folding constants would lose positions and shapes.
        e.set_optimization_level(OptimizationLevel::None);
        e.set_max_expr_depths(64, 64);
        e
    })
}

fn at(pos: Position, message: impl Into<String>) -> Refusal {
    Refusal {
        line: pos.line().unwrap_or(1),
        col: pos.position().unwrap_or(1),
        message: message.into(),
    }
}

/// Translates a whole script (a `rhai` step).
pub fn script(code: &str, scope: &mut dyn Scope) -> Result<Script, Vec<Refusal>> {
    let ast = engine()
        .compile(code)
        .map_err(|e| vec![at(e.position(), format!("cannot compile: {e}"))])?;
    let mut t = Tr {
        scope,
        errors: Vec::new(),
        vars: Default::default(),
    };
    if let Some(f) = ast.iter_functions().find(|f| !f.name.starts_with("anon$")) {
        t.errors.push(at(
            Position::new(1, 1),
            format!(
                "cannot export the function `{}`: `fn` is outside the exportable Rhai subset",
                f.name
            ),
        ));
    }
    let stmts = ast.statements();
    let mut body = String::new();
    let mut outputs = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        let last = i + 1 == stmts.len();
        match s {
            Stmt::Expr(e) if last => match e.as_ref() {
                Expr::Map(m, _) => {
                    let mut items = Vec::new();
                    for (k, v) in &m.0 {
                        let (py, ty) = t.expr(v);
                        items.push(format!("{}: {py}", py_str(&k.name)));
                        outputs.push((k.name.to_string(), ty));
                    }
                    let _ = writeln!(body, "    return {{{}}}", items.join(", "));
                }
                other => {
                    let (py, _) = t.expr(other);
                    let _ = writeln!(body, "    {py}\n    return {{}}");
                }
            },
            _ => t.stmt(s, 1, &mut body),
        }
    }
    if !matches!(stmts.last(), Some(Stmt::Expr(_))) {
        body.push_str("    return {}\n");
    }
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    Ok(Script { body, outputs })
}

/// The keys of the map a script ends with: its outputs, before it is translated.
pub fn map_keys(code: &str) -> Vec<String> {
    let Ok(ast) = engine().compile(code) else {
        return Vec::new();
    };
    match ast.statements().last() {
        Some(Stmt::Expr(e)) => match e.as_ref() {
            Expr::Map(m, _) => m.0.iter().map(|(k, _)| k.name.to_string()).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Translates one expression (an `if=`, a `${...}`); also returns the helper definitions it needs.
pub fn expr(code: &str, scope: &mut dyn Scope) -> Result<(String, Ty), Vec<Refusal>> {
    let ast = engine()
        .compile_expression(code)
        .map_err(|e| vec![at(e.position(), format!("cannot compile: {e}"))])?;
    let mut t = Tr {
        scope,
        errors: Vec::new(),
        vars: Default::default(),
    };
    let (py, ty) = match ast.statements() {
        [Stmt::Expr(e)] => t.expr(e),
        [s] => t.value_stmt(s),
        _ => (String::new(), Ty::Unknown),
    };
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    Ok((py, ty))
}

struct Tr<'a> {
    scope: &'a mut dyn Scope,
    errors: Vec<Refusal>,
    /// What each variable was last given, as far as known.
    vars: std::collections::HashMap<String, Ty>,
}

fn var_name(name: &str) -> String {
    if RESERVED.contains(&name) || name.starts_with('_') {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

pub fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Tr<'_> {
    fn refuse(&mut self, pos: Position, msg: impl Into<String>) -> (String, Ty) {
        self.errors.push(at(pos, msg));
        ("None".into(), Ty::Unknown)
    }

    fn stmt(&mut self, s: &Stmt, depth: usize, out: &mut String) {
        let pad = "    ".repeat(depth);
        match s {
            Stmt::Noop(_) => {}
            Stmt::Var(v, _, _) => {
                let name = var_name(&v.0.name);
                self.assign(&name, &v.1, depth, out);
            }
            Stmt::Assignment(a) => {
                let (op, bin) = a.as_ref();
                let target = match &bin.lhs {
                    Expr::Variable(v, _, _) => var_name(&v.1),
                    other => return self.errors.push(at(other.position(), "cannot export an assignment to a member; build a new map instead")),
                };
                match op.get_op_assignment_info() {
                    None => self.assign(&target, &bin.rhs, depth, out),
                    Some((_, _, _, syntax, _, _)) => {
                        let (rhs, _) = self.expr(&bin.rhs);
                        let line = match syntax {
                            "+=" => {
                                format!("{target} = _add({target}, {rhs})")
                            }
                            "-=" | "*=" => format!("{target} {syntax} {rhs}"),
                            other => return self.errors.push(at(op.position(), format!("cannot export `{other}`: outside the exportable Rhai subset"))),
                        };
                        let _ = writeln!(out, "{pad}{line}");
                    }
                }
            }
            Stmt::If(fc, _) => self.if_stmt(&fc.expr, &fc.body, &fc.branch, depth, out, None),
            Stmt::For(f, pos) => {
                let (x, i, fc) = f.as_ref();
                let iter = match &fc.expr {
                    Expr::FnCall(c, _) if c.name == ".." || c.name == "..=" => {
                        let a = self.expr(&c.args[0]).0;
                        let b = self.expr(&c.args[1]).0;
                        if c.name == ".." { format!("range({a}, {b})") } else { format!("range({a}, {b} + 1)") }
                    }
                    e => self.expr(e).0,
                };
                let head = match i {
                    Some(i) => format!("for {}, {} in enumerate({iter}):", var_name(&i.name), var_name(&x.name)),
                    None => format!("for {} in {iter}:", var_name(&x.name)),
                };
                let _ = writeln!(out, "{pad}{head}");
                self.block(&fc.body, depth + 1, out);
                let _ = pos;
            }
            Stmt::BreakLoop(None, flags, _) => {
                let _ = writeln!(out, "{pad}{}", if flags.contains(ASTFlags::BREAK) { "break" } else { "continue" });
            }
            Stmt::Block(b) => {
                for s in b.statements() {
                    self.stmt(s, depth, out);
                }
            }
            Stmt::FnCall(c, pos) => {
                let line = self.call_stmt(c, *pos);
                let _ = writeln!(out, "{pad}{line}");
            }
            Stmt::Expr(e) => {
                let line = match e.as_ref() {
                    Expr::FnCall(c, pos) => self.call_stmt(c, *pos),
                    Expr::Dot(..) => self.mutating_method(e).unwrap_or_else(|| self.expr(e).0),
                    Expr::Stmt(b) => {
                        self.block(b, depth, out);
                        return;
                    }
                    other => self.expr(other).0,
                };
                let _ = writeln!(out, "{pad}{line}");
            }
            Stmt::Return(..) => self.errors.push(at(s.position(), "cannot export `return`: end the script with the map of its outputs instead")),
            Stmt::While(..) | Stmt::Do(..) => self.errors.push(at(s.position(), "cannot export a `while`/`loop`/`do` loop: only `for x in array` or a range is in the exportable Rhai subset")),
            Stmt::Switch(..) => self.errors.push(at(s.position(), "cannot export `switch`: write it as `if`/`else if`")),
            _ => self.errors.push(at(s.position(), "cannot export this statement: outside the exportable Rhai subset")),
        }
    }

    fn block(&mut self, b: &StmtBlock, depth: usize, out: &mut String) {
        let before = out.len();
        for s in b.statements() {
            self.stmt(s, depth, out);
        }
        if out.len() == before {
            let _ = writeln!(out, "{}pass", "    ".repeat(depth));
        }
    }

    /// `target = value`; an `if` expression whose branches hold statements becomes an `if`
    /// statement that assigns in each branch.
    fn assign(&mut self, target: &str, value: &Expr, depth: usize, out: &mut String) {
        if let Expr::Stmt(b) = value
            && let [Stmt::If(fc, _)] = b.statements()
            && !self.simple_if(&fc.body, &fc.branch)
        {
            return self.if_stmt(&fc.expr, &fc.body, &fc.branch, depth, out, Some(target));
        }
        let (py, ty) = self.expr(value);
        // A variable given values of two types is of neither.
        let known = self.vars.get(target).copied();
        self.vars.insert(
            target.to_string(),
            if known.is_none_or(|k| k == ty) { ty } else { Ty::Unknown },
        );
        let _ = writeln!(out, "{}{target} = {py}", "    ".repeat(depth));
    }

    fn simple_if(&self, body: &StmtBlock, branch: &StmtBlock) -> bool {
        let one = |b: &StmtBlock| match b.statements() {
            [] | [Stmt::Expr(_)] => true,
            [Stmt::If(fc, _)] => self.simple_if(&fc.body, &fc.branch),
            _ => false,
        };
        one(body) && one(branch)
    }

    /// An `if` statement; with `target`, the value of each branch is assigned to it.
    fn if_stmt(
        &mut self,
        cond: &Expr,
        body: &StmtBlock,
        branch: &StmtBlock,
        depth: usize,
        out: &mut String,
        target: Option<&str>,
    ) {
        let pad = "    ".repeat(depth);
        let (c, _) = self.expr(cond);
        let _ = writeln!(out, "{pad}if {c}:");
        self.branch_body(body, depth + 1, out, target);
        match branch.statements() {
            [] if target.is_none() => {}
            [Stmt::If(fc, _)] => {
                let mut inner = String::new();
                self.if_stmt(&fc.expr, &fc.body, &fc.branch, depth, &mut inner, target);
                let _ = write!(out, "{pad}el{}", &inner[pad.len()..]);
            }
            _ => {
                let _ = writeln!(out, "{pad}else:");
                self.branch_body(branch, depth + 1, out, target);
            }
        }
    }

    fn branch_body(&mut self, b: &StmtBlock, depth: usize, out: &mut String, target: Option<&str>) {
        let Some(target) = target else {
            return self.block(b, depth, out);
        };
        let stmts = b.statements();
        match stmts.split_last() {
            Some((Stmt::Expr(last), rest)) => {
                for s in rest {
                    self.stmt(s, depth, out);
                }
                self.assign(target, last, depth, out);
            }
            _ => {
                for s in stmts {
                    self.stmt(s, depth, out);
                }
                let _ = writeln!(out, "{}{target} = None", "    ".repeat(depth));
            }
        }
    }

    /// `fail`, `warn`, `print` as statements.
    fn call_stmt(&mut self, c: &FnCallExpr, pos: Position) -> String {
        let arg = |t: &mut Self| {
            c.args
                .first()
                .map_or_else(|| "\"\"".to_string(), |a| format!("_str({})", t.expr(a).0))
        };
        match c.name.as_str() {
            "fail" | "throw" => format!("raise Exception({})", arg(self)),
            "warn" => format!("print(\"warning: \" + {})", arg(self)),
            "print" | "debug" => format!("print({})", arg(self)),
            _ => self.call(c, pos).0,
        }
    }

    /// `x.trim()`, `x.replace(a, b)`, `x.push(v)` change `x` in Rhai: each becomes an assignment.
    fn mutating_method(&mut self, e: &Expr) -> Option<String> {
        let Expr::Dot(bin, _, _) = e else { return None };
        let (Expr::Variable(v, _, _), Expr::MethodCall(m, _)) = (&bin.lhs, &bin.rhs) else {
            return None;
        };
        let name = var_name(&v.1);
        let args: Vec<String> = m.args.iter().map(|a| self.expr(a).0).collect();
        match (m.name.as_str(), args.as_slice()) {
            ("trim", []) => Some(format!("{name} = {name}.strip()")),
            ("replace", [a, b]) => Some(format!("{name} = {name}.replace({a}, {b})")),
            ("push", [a]) => Some(format!("{name} = {name} + [{a}]")),
            _ => None,
        }
    }
}
