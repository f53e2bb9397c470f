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

/// One link of a chain `a.b[c].d()`.
enum Link<'e> {
    Prop(&'e str),
    Method(&'e FnCallExpr, Position),
    Index(&'e Expr),
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

    /// An expression that is a statement block: `if` with simple branches only.
    fn value_stmt(&mut self, s: &Stmt) -> (String, Ty) {
        match s {
            Stmt::If(fc, pos) => {
                if !self.simple_if(&fc.body, &fc.branch) {
                    return self.refuse(*pos, "cannot export an `if` expression whose branches hold statements here; assign it with `let` first");
                }
                let (c, _) = self.expr(&fc.expr);
                let (a, ta) = self.block_value(&fc.body);
                let (b, tb) = self.block_value(&fc.branch);
                (
                    format!("({a} if {c} else {b})"),
                    if ta == tb { ta } else { Ty::Unknown },
                )
            }
            Stmt::Expr(e) => self.expr(e),
            other => self.refuse(other.position(), "cannot export this statement inside an expression"),
        }
    }

    fn block_value(&mut self, b: &StmtBlock) -> (String, Ty) {
        match b.statements() {
            [] => ("None".into(), Ty::Unknown),
            [s] => self.value_stmt(s),
            _ => self.refuse(b.position(), "cannot export a block of statements as a value"),
        }
    }

    fn expr(&mut self, e: &Expr) -> (String, Ty) {
        match e {
            Expr::Unit(_) => ("None".into(), Ty::Unknown),
            Expr::BoolConstant(b, _) => ((if *b { "True" } else { "False" }).into(), Ty::Bool),
            Expr::IntegerConstant(i, _) => (i.to_string(), Ty::Int),
            Expr::FloatConstant(f, _) => (format!("{}", **f), Ty::Unknown),
            Expr::CharConstant(c, _) => (py_str(&c.to_string()), Ty::Str),
            Expr::StringConstant(s, _) => (py_str(s), Ty::Str),
            Expr::InterpolatedString(parts, _) => {
                let ps: Vec<String> = parts
                    .iter()
                    .map(|p| match p {
                        Expr::StringConstant(s, _) => py_str(s),
                        other => format!("_str({})", self.expr(other).0),
                    })
                    .collect();
                (format!("({})", ps.join(" + ")), Ty::Str)
            }
            Expr::Array(items, _) => {
                let ps: Vec<String> = items.iter().map(|i| self.expr(i).0).collect();
                (format!("[{}]", ps.join(", ")), Ty::List)
            }
            Expr::Map(m, _) => {
                let ps: Vec<String> =
                    m.0.iter()
                        .map(|(k, v)| format!("{}: {}", py_str(&k.name), self.expr(v).0))
                        .collect();
                (format!("{{{}}}", ps.join(", ")), Ty::Map)
            }
            Expr::Variable(v, _, pos) => match v.1.as_str() {
                "item" => self.scope.item().unwrap_or_else(|m| self.refuse(*pos, m)),
                "inputs" | "steps" | "run" => self.refuse(
                    *pos,
                    format!(
                        "cannot export `{}` as a whole: name what it reads (`{}.NAME`)",
                        v.1, v.1
                    ),
                ),
                name => {
                    let n = var_name(name);
                    let ty = self.vars.get(&n).copied().unwrap_or(Ty::Unknown);
                    (n, ty)
                }
            },
            Expr::Dot(..) | Expr::Index(..) => self.chain(e),
            Expr::And(xs, _) | Expr::Or(xs, _) => {
                let op = if matches!(e, Expr::And(..)) { " and " } else { " or " };
                let ps: Vec<String> = xs.iter().map(|x| self.expr(x).0).collect();
                (format!("({})", ps.join(op)), Ty::Bool)
            }
            Expr::Coalesce(xs, _) => {
                let ps: Vec<String> = xs.iter().map(|x| self.expr(x).0).collect();
                (format!("_coalesce({})", ps.join(", ")), Ty::Unknown)
            }
            Expr::FnCall(c, pos) => self.call(c, *pos),
            Expr::Stmt(b) => self.block_value(b),
            Expr::DynamicConstant(d, pos) if d.is_fnptr() => self.refuse(
                *pos,
                "cannot export a closure: closures are outside the exportable Rhai subset",
            ),
            other => self.refuse(
                other.position(),
                "cannot export this expression: outside the exportable Rhai subset",
            ),
        }
    }

    fn call(&mut self, c: &FnCallExpr, pos: Position) -> (String, Ty) {
        let name = c.name.as_str();
        if c.op_token.is_some() || matches!(name, "==" | "!=" | "<" | ">" | "<=" | ">=" | "+" | "-" | "*" | "!") {
            let args: Vec<(String, Ty)> = c.args.iter().map(|a| self.expr(a)).collect();
            return match (name, args.as_slice()) {
                ("!", [(a, _)]) => (format!("(not {a})"), Ty::Bool),
                ("-", [(a, t)]) => (format!("(-{a})"), *t),
                ("==" | "!=", [(a, _), (b, _)]) if b == "None" || a == "None" => {
                    let x = if b == "None" { a } else { b };
                    (format!("({x} {} None)", if name == "==" { "is" } else { "is not" }), Ty::Bool)
                }
                ("==" | "!=" | "<" | ">" | "<=" | ">=", [(a, _), (b, _)]) => (format!("({a} {name} {b})"), Ty::Bool),
                ("+", [(a, ta), (b, tb)]) => {
                    let strs = (*ta == Ty::Str, *tb == Ty::Str);
                    if *ta == Ty::Int && *tb == Ty::Int {
                        (format!("({a} + {b})"), Ty::Int)
                    } else if strs.0 || strs.1 {
                        // A string on either side: Rhai joins the other's text.
                        let side = |p: &str, is: bool| if is { p.to_string() } else { format!("_str({p})") };
                        (format!("{} + {}", side(a, strs.0), side(b, strs.1)), Ty::Str)
                    } else {
                        (format!("_add({a}, {b})"), Ty::Unknown)
                    }
                }
                ("-" | "*", [(a, _), (b, _)]) => (format!("({a} {name} {b})"), Ty::Int),
                _ => self.refuse(pos, format!("cannot export the operator `{name}`: outside the exportable Rhai subset (Rhai's `/` and `%` on integers differ from Python's)")),
            };
        }
        match name {
            "fail" | "throw" | "warn" | "print" | "debug" => {
                let s = self.call_stmt(c, pos);
                self.refuse(pos, format!("cannot export `{name}` used as a value ({s})"))
            }
            "to_string" if c.args.len() == 1 => (format!("_str({})", self.expr(&c.args[0]).0), Ty::Str),
            _ => self.refuse(
                pos,
                format!("cannot export the function `{name}`: outside the exportable Rhai subset"),
            ),
        }
    }

    fn chain(&mut self, e: &Expr) -> (String, Ty) {
        let (root, links) = flatten(e);
        let mut i = 0;
        // References: inputs.x, steps.id[.field], run.x, item.
        let (mut py, mut ty) = match root {
            Expr::Variable(v, _, pos) if matches!(v.1.as_str(), "inputs" | "steps" | "run") => {
                let key = |l: Option<&Link>| match l {
                    Some(Link::Prop(p)) => Some(p.to_string()),
                    Some(Link::Index(Expr::StringConstant(s, _))) => Some(s.to_string()),
                    _ => None,
                };
                let Some(first) = key(links.first()) else {
                    return self.refuse(
                        *pos,
                        format!("cannot export `{}` indexed by a computed name: name what it reads", v.1),
                    );
                };
                i = 1;
                let r = match v.1.as_str() {
                    "inputs" => self.scope.input(&first),
                    "run" => self.scope.run(&first),
                    _ => {
                        let field = key(links.get(1));
                        if field.is_some() {
                            i = 2;
                        }
                        self.scope.step(&first, field.as_deref())
                    }
                };
                match r {
                    Ok(x) => x,
                    Err(m) => return self.refuse(*pos, m),
                }
            }
            other => self.expr(other),
        };
        for link in &links[i..] {
            (py, ty) = match link {
                Link::Prop(p) => (format!("_get({py}, {})", py_str(p)), Ty::Unknown),
                Link::Index(x) => {
                    let (ix, _) = self.expr(x);
                    (format!("_idx({py}, {ix})"), Ty::Unknown)
                }
                Link::Method(m, pos) => self.method(&py, ty, m, *pos),
            };
        }
        (py, ty)
    }

    fn method(&mut self, recv: &str, _ty: Ty, m: &FnCallExpr, pos: Position) -> (String, Ty) {
        let args: Vec<String> = m.args.iter().map(|a| self.expr(a).0).collect();
        match (m.name.as_str(), args.as_slice()) {
            ("len", []) => (format!("len({recv})"), Ty::Int),
            ("is_empty", []) => (format!("(len({recv}) == 0)"), Ty::Bool),
            ("contains", [a]) => (format!("({a} in {recv})"), Ty::Bool),
            ("starts_with", [a]) => (format!("{recv}.startswith({a})"), Ty::Bool),
            ("ends_with", [a]) => (format!("{recv}.endswith({a})"), Ty::Bool),
            ("split", [a]) => (format!("{recv}.split({a})"), Ty::List),
            ("to_upper", []) => (format!("{recv}.upper()"), Ty::Str),
            ("to_lower", []) => (format!("{recv}.lower()"), Ty::Str),
            ("to_string", []) => (format!("_str({recv})"), Ty::Str),
            (name, _)
                if m.args
                    .iter()
                    .any(|a| matches!(a, Expr::DynamicConstant(d, _) if d.is_fnptr())) =>
            {
                self.refuse(
                    pos,
                    format!(
                        "cannot export `.{name}(...)` with a closure: closures are outside the exportable Rhai subset"
                    ),
                )
            }
            (name, _) => self.refuse(
                pos,
                format!(
                    "cannot export the method `.{name}(...)` here: the exportable methods are {}",
                    METHODS.join(", ")
                ),
            ),
        }
    }
}

/// `a.b[c].d()` as its root and links, in order.
fn flatten(e: &Expr) -> (&Expr, Vec<Link<'_>>) {
    let mut links = Vec::new();
    let (root, rest, index, flags) = match e {
        Expr::Dot(b, f, _) => (&b.lhs, &b.rhs, false, *f),
        Expr::Index(b, f, _) => (&b.lhs, &b.rhs, true, *f),
        other => return (other, links),
    };
    links_of(rest, index, flags, &mut links);
    (root, links)
}

fn links_of<'e>(rhs: &'e Expr, index: bool, flags: ASTFlags, out: &mut Vec<Link<'e>>) {
    if index && flags.contains(ASTFlags::BREAK) {
        out.push(Link::Index(rhs));
        return;
    }
    let one = |x: &'e Expr, index: bool| {
        if index {
            Link::Index(x)
        } else {
            match x {
                Expr::Property(p, _) => Link::Prop(p.2.as_str()),
                Expr::MethodCall(m, pos) => Link::Method(m, *pos),
                other => Link::Index(other),
            }
        }
    };
    match rhs {
        Expr::Dot(b, f, _) => {
            out.push(one(&b.lhs, index));
            links_of(&b.rhs, false, *f, out);
        }
        Expr::Index(b, f, _) => {
            out.push(one(&b.lhs, index));
            links_of(&b.rhs, true, *f, out);
        }
        leaf => out.push(one(leaf, index)),
    }
}
