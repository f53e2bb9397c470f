//! Each kind of runbook step as Automation steps: `manual` -> `aws:approve`, `rhai` ->
//! `aws:executeScript`, a call by name -> `aws:executeAwsApi` (a script that reads every page
//! when the operation pages), built-in actions through `actions.rs`, `net` refused. Around them:
//! `if=` (an `aws:branch`, or the condition inside the step's script when later steps read its
//! outputs, since Automation resolves every reference up front), `for-each=` (`aws:loop`),
//! `retries=`, `timeout=`, and the guard as the first step.

use super::rhai2py::{self, Ty, py_str};
use super::values::{self, PyScope};
use super::{AStep, Group, Lower, Node, Outs, Target};
use crate::interp;
use crate::model::{Executor, Family, Step};

/// Automation's limit on an approval's message.
pub const MAX_MESSAGE: usize = 4096;
/// Automation's limit on an `aws:loop`'s items.
pub const MAX_ITEMS: usize = 100;
/// What one run of `aws:executeScript` may take; polling scripts stop a minute before.
pub const SCRIPT_LIMIT: u64 = 600;
pub const POLL_BUDGET: u64 = 540;

pub use super::script::{guard, script};

/// Lowers one runbook step (index `i`) into its group (or groups: an `if=` branch goes first).
pub fn lower(x: &mut Lower, i: usize, step: &Step) {
    let key = interp::step_key(&step.id);
    let name = x.info[&key].name.clone();
    let cond = step
        .attrs
        .if_
        .as_ref()
        .map(|a| a.value.trim().to_string())
        .filter(|c| c != "!run.rehearsal");
    let read_later = x.reads.contains_key(&key);
    let item = for_each(x, step, &name);
    if step.attrs.for_each.is_some() && item.is_none() {
        return;
    }
    let inside = cond
        .clone()
        .filter(|_| read_later && !matches!(step.executor, Executor::Manual));
    x.cur_item = item.clone().map(|(v, t, _)| (v, t));
    let mut steps = match &step.executor {
        Executor::Manual => manual(x, step, &name),
        Executor::Rhai => rhai(x, step, &name, inside.as_deref()),
        Executor::Action {
            family: Family::Net,
            name: action,
        } => {
            x.error(
                step.info_span,
                format!("cannot export `net {}`: it probes the network of the machine it runs on, and an Automation execution has no such machine", action.trim_start_matches("net.")),
                Some(format!("leave it out with `--skip {}`, and run it where the operator is: `runbook run {} --only {}`", step.id, x.src.path().display(), step.id)),
            );
            Vec::new()
        }
        Executor::Action { .. } if step.executor.call().is_some() => call(x, step, &name, inside.as_deref()),
        Executor::Action { name: action, .. } => super::actions::lower(x, step, action, &name, inside.as_deref()),
    };
    x.cur_item = None;
    let loc = format!("{}:{}", x.src.path().display(), step.line);
    for s in &mut steps {
        let d = s.description.take().unwrap_or_default();
        s.description = Some(if d.is_empty() {
            loc.clone()
        } else {
            format!("{loc}: {d}")
        });
    }
    if let Some(target) = &step.attrs.on_failure {
        x.note(
            target.span,
            format!("`on-failure={}` is a pointer an Automation execution cannot follow; the export writes it into the step's description", target.value),
        );
        if let Some(main) = steps.iter_mut().find(|s| s.name == name) {
            let d = main.description.take().unwrap_or_default();
            main.description = Some(format!("{d}\n\nIf this step fails, see {}.", target.value));
        }
    }
    attributes(x, step, &name, &mut steps);
    if let Some((var, _, iterators)) = item {
        for s in &mut steps {
            if s.name == name {
                s.name = x.helper(&name, "item");
            }
        }
        let mut lp = AStep::new(
            &name,
            "aws:loop",
            Node::map().with("Iterators", iterators).with(
                "IteratorDataType",
                Node::s(if item_is_map(x, step) { "StringMap" } else { "String" }),
            ),
        );
        lp.description = Some(format!("{loc}: for each item, one at a time"));
        lp.body = steps;
        steps = vec![lp];
        let _ = var;
    }
    if let Some(c) = cond.filter(|_| inside.is_none()) {
        branch(x, step, &name, &c);
    }
    x.groups.push(Group { steps });
    x.group_step.push(Some(i));
}

fn item_is_map(x: &Lower, step: &Step) -> bool {
    x.cur_item_map.contains(&interp::step_key(&step.id))
}

/// `for-each=`: the iterator's variable, type and the `Iterators` value.
fn for_each(x: &mut Lower, step: &Step, name: &str) -> Option<(String, Ty, Node)> {
    let attr = step.attrs.for_each.as_ref()?;
    let code = attr.value.trim();
    x.note(attr.span, "`for-each=` becomes aws:loop, which runs its items one at a time: the per-item concurrency of a terminal run is lost");
    let var = format!("{name}.CurrentIteratorValue");
    if let Some(r) = values::pure_ref(code) {
        let resolved = match &r {
            interp::Ref::Input { name, .. } => x.resolve_input(name),
            interp::Ref::Step { id, field, .. } => x.resolve_step(id, field.as_deref().unwrap_or("")),
        };
        return match resolved {
            Ok(res) => {
                let t = match &r {
                    interp::Ref::Step { id, field: Some(f), .. } => x
                        .info
                        .get(&interp::step_key(id))
                        .and_then(|i| i.outputs.get(f))
                        .copied(),
                    _ => None,
                };
                let map = t == Some("MapList");
                if map {
                    x.cur_item_map.insert(interp::step_key(&step.id));
                }
                Some((
                    var,
                    if map { Ty::Map } else { Ty::Str },
                    Node::s(format!("{{{{ {} }}}}", res.var)),
                ))
            }
            Err(m) => {
                x.error(attr.span, m, None);
                None
            }
        };
    }
    if let Ok(items) = serde_json::from_str::<Vec<String>>(code) {
        if items.len() > MAX_ITEMS {
            x.error(
                attr.span,
                format!(
                    "cannot export a for-each of {} items: aws:loop takes at most {MAX_ITEMS}",
                    items.len()
                ),
                Some("split the list over several steps".into()),
            );
            return None;
        }
        return Some((var, Ty::Str, Node::List(items.into_iter().map(Node::Str).collect())));
    }
    x.error(
        attr.span,
        format!("cannot export `for-each='{code}'`: aws:loop iterates over a list that a step outputs or a literal list of strings"),
        Some("compute the list in a step of its own (a `rhai` step returning it) and iterate over that step's output".into()),
    );
    None
}

/// `retries=N` -> `maxAttempts: N+1` (every lowering looks before it creates, so a retry of any
/// failure is safe); `timeout=` -> `timeoutSeconds` (at most 600 on a script).
fn attributes(x: &mut Lower, step: &Step, name: &str, steps: &mut [AStep]) {
    let retries = step
        .attrs
        .retries
        .as_ref()
        .and_then(|a| a.value.trim().parse::<i64>().ok());
    let timeout = timeout_secs(step);
    let Some(main) = steps.iter_mut().find(|s| s.name == name) else {
        return;
    };
    let polls = main.settings.iter().any(|(k, _)| k == "maxAttempts");
    if let Some(t) = timeout
        && !polls
    {
        let t = if main.action == "aws:executeScript" {
            t.min(SCRIPT_LIMIT)
        } else {
            t
        };
        main.settings.push(("timeoutSeconds".into(), Node::Int(t as i64)));
    }
    if let Some(n) = retries {
        match main.settings.iter_mut().find(|(k, _)| k == "maxAttempts") {
            Some((_, Node::Int(m))) => *m *= n + 1,
            _ => main.settings.push(("maxAttempts".into(), Node::Int(n + 1))),
        }
    }
    let _ = x;
}

pub fn timeout_secs(step: &Step) -> Option<u64> {
    let a = step.attrs.timeout.as_ref()?;
    runbook_plugins::aws::parse_duration(a.value.trim()).map(|d| d.as_secs().max(1))
}

/// An `if=` in front of a step: a branch on a `{{ ref }}` for `==`/`!=` against a string,
/// else on what a `_cond` script computes ("true" or "false": the simulator fails on Boolean
/// branches).
fn branch(x: &mut Lower, step: &Step, name: &str, code: &str) {
    let g = x.groups.len();
    // The step's group follows this one.
    let (run, skip) = (Target::Group(g + 1), Target::After(g + 1));
    let bname = x.helper(name, "if");
    let mut steps = Vec::new();
    let simple = simple_condition(x, code);
    let mut b = AStep::new(&bname, "aws:branch", Node::map());
    b.description = Some(format!("{}:{}: if={code}", x.src.path().display(), step.line));
    match simple {
        Some((var, lit, equal)) => {
            let cond = vec![
                ("Variable".to_string(), Node::s(format!("{{{{ {var} }}}}"))),
                ("StringEquals".to_string(), Node::s(lit)),
            ];
            // `!=` is the same test with the skip as its choice (no `Not`).
            if equal {
                b.choices.push((cond, run));
                b.default = Some(skip);
            } else {
                b.choices.push((cond, skip));
                b.default = Some(run);
            }
        }
        None => {
            let cname = x.helper(name, "cond");
            let mut scope = PyScope::new(x, x.cur_item.clone());
            let v = values::expr(step, &mut scope, code);
            let body = format!("    return {{\"value\": \"true\" if ({}) else \"false\"}}\n", v.py);
            let s = script(
                &cname,
                &mut scope,
                "",
                &body,
                Outs::Fixed(vec![("value".into(), "$.Payload.value".into(), "String")]),
            );
            let errs = scope.take_errors();
            flush(x, errs);
            steps.push(s);
            b.choices.push((
                vec![
                    ("Variable".to_string(), Node::s(format!("{{{{ {cname}.value }}}}"))),
                    ("StringEquals".to_string(), Node::s("true")),
                ],
                run,
            ));
            b.default = Some(skip);
        }
    }
    steps.push(b);
    x.groups.push(Group { steps });
    x.group_step.push(None);
}

/// `REF == "text"` or `REF != "text"` (either side), REF a string variable.
fn simple_condition(x: &Lower, code: &str) -> Option<(String, String, bool)> {
    let (op, equal) = if code.contains("!=") {
        ("!=", false)
    } else {
        ("==", true)
    };
    let (a, b) = code.split_once(op)?;
    let lit = |s: &str| serde_json::from_str::<String>(s.trim()).ok();
    let (r, l) = match (lit(a), lit(b)) {
        (None, Some(l)) => (a, l),
        (Some(l), None) => (b, l),
        _ => return None,
    };
    let resolved = match values::pure_ref(r)? {
        interp::Ref::Input { name, .. } => x.resolve_input(&name).ok()?,
        interp::Ref::Step { id, field, .. } => x.resolve_step(&id, field.as_deref()?).ok()?,
    };
    (resolved.ty == Ty::Str && !resolved.secret).then_some((resolved.var, l, equal))
}

/// Refusals met in a scope (taken with [`PyScope::take_errors`]) into the export's diagnostics.
pub fn flush(x: &mut Lower, errors: Vec<(crate::source::Span, String, Option<String>)>) {
    for (span, m, help) in errors {
        x.error(span, m, help);
    }
}

/// `manual` -> `aws:approve`: instructions, then the question; the section's prose in the
/// description; questions become parameters (noted); `verify` runs after the approval.
fn manual(x: &mut Lower, step: &Step, name: &str) -> Vec<AStep> {
    let mut d = Vec::new();
    let Some(m) = crate::manual::parse(x.src, step, &mut d) else {
        return Vec::new();
    };
    let key = interp::step_key(&step.id);
    for (q, _) in &m.ask {
        let p = x
            .asks
            .get(&(key.clone(), q.clone()))
            .map(|a| a.0.clone())
            .unwrap_or_default();
        x.note(step.info_span, format!("question `{q}` becomes the document parameter `{p}`: it is answered when the execution starts, not at this step"));
    }
    let mut out = Vec::new();
    let mut scope = PyScope::new(x, x.cur_item.clone());
    let mut message = String::new();
    let mut hoisted = Vec::new();
    if let Some(i) = &m.instructions {
        let v = values::string(step, &mut scope, i);
        if v.secret {
            scope.errors.push((
                step.info_span,
                format!(
                    "cannot export `{}`: its message would show a secret to every approver",
                    step.id
                ),
                Some("keep secrets to scripts; show their names, not their values".into()),
            ));
        }
        match v.auto {
            Some(Node::Str(s)) => message.push_str(&s),
            _ => {
                let ename = format!("{name}_expr");
                message.push_str(&format!("{{{{ {ename}.text }}}}"));
                hoisted.push((ename, v.py));
            }
        }
        message.push_str("\n\n");
    }
    let confirm = values::string(step, &mut scope, m.confirm.as_deref().unwrap_or("Done?"));
    match confirm.auto {
        Some(Node::Str(c)) if !confirm.secret => message.push_str(&c),
        _ => scope.errors.push((
            step.info_span,
            format!(
                "cannot export the question of `{}`: it needs a computed value or a secret",
                step.id
            ),
            Some("keep the question to plain text and `${inputs.x}` or `${steps.a.b}` references".into()),
        )),
    }
    message.push_str(" (Approve = yes, Reject = no)");
    let mut names = Vec::new();
    for (ename, py) in hoisted {
        names.push(ename.clone());
        let body = format!("    return {{\"text\": _str({py})}}\n");
        out.push(script(
            &ename,
            &mut scope,
            "",
            &body,
            Outs::Fixed(vec![("text".into(), "$.Payload.text".into(), "String")]),
        ));
    }
    let errs = scope.take_errors();
    flush(x, errs);
    x.taken.extend(names);
    if message.chars().count() > MAX_MESSAGE {
        x.error(step.span, format!("cannot export `{}`: its message is {} characters, and an approval's message holds at most {MAX_MESSAGE}", step.id, message.chars().count()), Some("shorten the instructions; the section's prose goes into the step's description anyway".into()));
    }
    let mut inputs = Node::map()
        .with("Approvers", Node::s("{{ Approvers }}"))
        .with("MinRequiredApprovals", Node::Int(1))
        .with("Message", Node::s(message));
    if x.opts.approval_topic {
        inputs.set("NotificationArn", Node::s("{{ ApprovalTopicArn }}"));
    }
    let mut a = AStep::new(name, "aws:approve", inputs);
    let prose =
        x.rb.section_of(step)
            .map(|s| values::clip(s.prose.trim(), 1500))
            .unwrap_or_default();
    a.description = Some(prose);
    out.push(a);
    if let Some(v) = &m.verify {
        match crate::manual::verify_action(v) {
            Ok(action) if !action.starts_with("net.") => {
                let vname = x.helper(name, "verify");
                let mut vs = super::actions::lower(x, step, &action, &vname, None);
                out.append(&mut vs);
            }
            _ => x.error(
                m.verify_span.unwrap_or(step.info_span),
                format!("cannot export `verify = \"{v}\"`"),
                Some("only an `aws` action can verify in an export".into()),
            ),
        }
    }
    out
}

/// `rhai` -> a script translated to Python; `inside`: the step's `if=`, checked in the script.
fn rhai(x: &mut Lower, step: &Step, name: &str, inside: Option<&str>) -> Vec<AStep> {
    let mut scope = PyScope::new(x, x.cur_item.clone());
    let translated = rhai2py::script(&step.body, &mut scope);
    let declared: Vec<(String, &'static str)> = x.info[&interp::step_key(&step.id)]
        .outputs
        .iter()
        .map(|(k, t)| (k.clone(), *t))
        .collect();
    let pre = condition(step, &mut scope, inside, declared);
    match translated {
        Ok(t) => {
            let types: std::collections::BTreeMap<String, &'static str> = t
                .outputs
                .iter()
                .map(|(k, ty)| (k.clone(), values::auto_of(*ty)))
                .collect();
            let body = format!("{pre}{}", t.body);
            let s = script(name, &mut scope, "", &body, Outs::Script(types.clone()));
            let secret = scope.reads_secret;
            let errs = scope.take_errors();
            flush(x, errs);
            if secret && !types.is_empty() {
                let public = step.attrs.public_outputs();
                if types.keys().any(|k| !public.contains(k)) {
                    x.error(step.info_span, format!("cannot export `{}`: it reads a secret and returns outputs, which an execution shows to whoever can read it", step.id), Some("mark the outputs that hold no secret with `public=NAME,...`".into()));
                }
            }
            if let Some(i) = x.info.get_mut(&interp::step_key(&step.id)) {
                i.outputs = types;
            }
            vec![s]
        }
        Err(refusals) => {
            let errs = scope.take_errors();
            flush(x, errs);
            for r in refusals {
                let span = step.body_line_col(r.line, r.col);
                let help = values::help_for(&r.message);
                x.error(span, r.message, Some(help));
            }
            Vec::new()
        }
    }
}

/// The start of a handler whose step has an `if=` it checks itself: when false, the outputs
/// are empty values of their types, so the later steps that read them resolve.
pub fn condition(
    step: &Step,
    scope: &mut PyScope,
    inside: Option<&str>,
    outputs: Vec<(String, &'static str)>,
) -> String {
    let Some(code) = inside else { return String::new() };
    let v = values::expr(step, scope, code);
    let empty: Vec<String> = outputs
        .iter()
        .map(|(k, t)| {
            let e = match *t {
                "Boolean" => "False",
                "Integer" => "0",
                "StringList" | "MapList" => "[]",
                "StringMap" => "{}",
                _ => "\"\"",
            };
            format!("{}: {e}", py_str(k))
        })
        .collect();
    format!("    if not ({}):\n        return {{{}}}\n", v.py, empty.join(", "))
}

/// A call by name: `aws:executeAwsApi`, or a script when it pages (one API call reads one page),
/// when a parameter needs Python, or when it checks its own `if=`.
fn call(x: &mut Lower, step: &Step, name: &str, inside: Option<&str>) -> Vec<AStep> {
    let Some(Ok(c)) = step.executor.call().map(runbook_plugins::call::resolve) else {
        return Vec::new();
    };
    let table = toml::from_str::<toml::Table>(&step.body).unwrap_or_default();
    let mut scope = PyScope::new(x, x.cur_item.clone());
    let vals: Vec<(String, values::Val)> = table
        .iter()
        .map(|(k, v)| (k.clone(), values::value(step, &mut scope, v)))
        .collect();
    let members = c
        .input()
        .map(|s| s.members.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let pages = members.iter().any(|m| m == "NextToken" || m == "Marker");
    let outs: std::collections::BTreeMap<String, (String, &'static str)> = c
        .output()
        .map(|s| {
            s.members
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        (format!("$.{k}"), super::actions::shape_type(c.service, &r.shape)),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if vals.iter().any(|(_, v)| v.secret) {
        scope.errors.push((step.info_span, format!("cannot export `{}`: a secret would be an API input the execution records", step.id), Some("call it from a `rhai` step's computed value is not possible either; keep the call out of the export with --skip".into())));
    } else if !c
        .sensitive_in_request(&crate::eval::toml_body(&step.body).unwrap_or_default())
        .is_empty()
    {
        // A value the model marks sensitive, written in the runbook: the document (published
        // beside the runbook's page, recorded by every execution) would hold it.
        scope.errors.push((
            step.info_span,
            format!(
                "cannot export `{}`: it writes a value {} marks sensitive into the document",
                step.id,
                c.full_name()
            ),
            Some("keep the call out of the export with --skip".into()),
        ));
    }
    let needs_script = pages || inside.is_some() || vals.iter().any(|(_, v)| v.auto.is_none());
    if !needs_script {
        let errs = scope.take_errors();
        flush(x, errs);
        let mut inputs = Node::map()
            .with("Service", Node::s(c.service.name))
            .with("Api", Node::s(c.name));
        for (k, v) in vals {
            if let Some(a) = v.auto {
                inputs.set(&k, a);
            }
        }
        let mut s = AStep::new(name, "aws:executeAwsApi", inputs);
        s.outputs = Outs::Api(outs);
        return vec![s];
    }
    let pre = condition(
        step,
        &mut scope,
        inside,
        outs.iter().map(|(k, (_, t))| (k.clone(), *t)).collect(),
    );
    let token = if members.iter().any(|m| m == "Marker") {
        "Marker"
    } else {
        "NextToken"
    };
    let params = vals
        .iter()
        .map(|(k, v)| format!("{}: {}", py_str(k), v.py))
        .collect::<Vec<_>>()
        .join(", ");
    let body = format!(
        "{pre}    return _call({}, {}, {{{params}}}, {})\n",
        py_str(c.service.name),
        py_str(c.name),
        if pages { py_str(token) } else { "None".into() }
    );
    let types = outs.iter().map(|(k, (_, t))| (k.clone(), *t)).collect();
    let s = script(name, &mut scope, "", &body, Outs::Script(types));
    let errs = scope.take_errors();
    flush(x, errs);
    vec![s]
}
