//! Expressions: operators, calls, chains (`a.b[c].d()`), references, methods.

use rhai::{ASTFlags, Expr, FnCallExpr, Position, Stmt, StmtBlock};

use super::{METHODS, Tr, Ty, py_str, var_name};

/// One link of a chain `a.b[c].d()`.
enum Link<'e> {
    Prop(&'e str),
    Method(&'e FnCallExpr, Position),
    Index(&'e Expr),
}

impl Tr<'_> {
    /// An expression that is a statement block: `if` with simple branches only.
    pub(super) fn value_stmt(&mut self, s: &Stmt) -> (String, Ty) {
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

    pub(super) fn block_value(&mut self, b: &StmtBlock) -> (String, Ty) {
        match b.statements() {
            [] => ("None".into(), Ty::Unknown),
            [s] => self.value_stmt(s),
            _ => self.refuse(b.position(), "cannot export a block of statements as a value"),
        }
    }

    pub(super) fn expr(&mut self, e: &Expr) -> (String, Ty) {
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

    pub(super) fn call(&mut self, c: &FnCallExpr, pos: Position) -> (String, Ty) {
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

    pub(super) fn chain(&mut self, e: &Expr) -> (String, Ty) {
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

    pub(super) fn method(&mut self, recv: &str, _ty: Ty, m: &FnCallExpr, pos: Position) -> (String, Ty) {
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
