//! `runbook export --ssm`: a runbook as an AWS Systems Manager Automation document
//! (schemaVersion 0.3) that does what the runbook does, as idempotently, for the runs that
//! outgrow a terminal (unattended, approvals by IAM principals, many accounts at once).
//!
//! A runbook step lowers to a group of Automation steps (`steps.rs`, `actions.rs`; Rhai through
//! `rhai2py.rs`); references resolve in `values.rs`; the groups are joined, branch targets
//! resolved and the outputs later steps read declared here; `lint.rs` checks what AWS's schema
//! misses; `doc.rs` writes YAML or JSON. What cannot be exported is a located error; what
//! changes meaning, a note.

mod actions;
mod doc;
mod lint;
mod rhai2py;
mod script;
mod steps;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use runbook_plugins::Registry;
use sha2::Digest as _;

use crate::diagnostic::{Diagnostic, Severity};
use crate::interp;
use crate::model::{Runbook, Step};
use crate::source::{Source, Span};

pub use doc::Node;

/// What the command line asks of an export.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub json: bool,
    /// Step ids left out (`--skip`): a `net` probe, say, run by hand with `runbook run --only`.
    pub skip: Vec<String>,
    /// Notes are errors.
    pub strict: bool,
    /// `NotificationArn` on every approval, from an `ApprovalTopicArn` parameter.
    pub approval_topic: bool,
}

/// A written export: the document's text and the notes about what changed meaning.
#[derive(Debug)]
pub struct Exported {
    pub text: String,
    pub notes: Vec<Diagnostic>,
    /// The document as a tree (tests and the site read it).
    pub doc: Node,
}

/// Exports one checked runbook. Every diagnostic is collected; with any error, nothing is
/// returned to write.
pub fn export(
    source: &Source,
    runbook: &Runbook,
    registry: &Registry,
    opts: &Options,
) -> Result<Exported, Vec<Diagnostic>> {
    let mut x = Lower::new(source, runbook, registry, opts);
    x.prepare();
    for (i, step) in runbook.steps.iter().enumerate() {
        if x.included(step) {
            steps::lower(&mut x, i, step);
        }
    }
    let doc = x.assemble();
    // A document whose lowering failed is not written: nothing to lint.
    if !x.diags.iter().any(Diagnostic::is_error) {
        lint::lint(&doc, &mut x);
    }
    let mut diags = std::mem::take(&mut x.diags);
    if opts.strict {
        for d in &mut diags {
            if d.severity == Severity::Note {
                d.severity = Severity::Error;
                d.message = format!("{} (--strict)", d.message);
            }
        }
    }
    crate::diagnostic::sort(&mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let text = if opts.json { doc::json(&doc) } else { doc::yaml(&doc) };
    Ok(Exported {
        text,
        notes: diags,
        doc,
    })
}

/// An Automation output type.
pub(crate) type AutoType = &'static str;

/// One Automation step before its targets are resolved.
#[derive(Debug, Clone)]
pub(crate) struct AStep {
    pub name: String,
    pub action: &'static str,
    pub description: Option<String>,
    /// Step-level settings after `inputs` is written: `timeoutSeconds`, `maxAttempts`, ...
    pub settings: Vec<(String, Node)>,
    pub inputs: Node,
    pub outputs: Outs,
    /// For `aws:branch`: each choice's condition and where it goes, and where nothing matched goes.
    pub choices: Vec<(Vec<(String, Node)>, Target)>,
    pub default: Option<Target>,
    /// For `aws:loop`: the steps run for each item.
    pub body: Vec<AStep>,
}

impl AStep {
    pub fn new(name: impl Into<String>, action: &'static str, inputs: Node) -> AStep {
        AStep {
            name: name.into(),
            action,
            description: None,
            settings: Vec::new(),
            inputs,
            outputs: Outs::None,
            choices: Vec::new(),
            default: None,
            body: Vec::new(),
        }
    }
}

/// How a step's outputs are declared once it is known which of them later steps read.
#[derive(Debug, Clone)]
pub(crate) enum Outs {
    None,
    /// A script: `$.Payload.NAME`, with each output's type.
    Script(BTreeMap<String, AutoType>),
    /// An API call: each output's selector and type.
    Api(BTreeMap<String, (String, AutoType)>),
    /// Declared as they are, whoever reads them (helper steps).
    Fixed(Vec<(String, String, AutoType)>),
}

/// Where a branch goes: the first step of a group, or the first step after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Group(usize),
    After(usize),
    /// A step of the same group, by name.
    Name(String),
    /// The first step after the group the branch is in.
    AfterSelf,
}

/// The Automation steps one runbook step became.
#[derive(Debug, Default)]
pub(crate) struct Group {
    pub steps: Vec<AStep>,
}

/// What the export knows of a runbook step.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepInfo {
    /// Its Automation name.
    pub name: String,
    /// Left out: `--skip`, or a step only a rehearsal runs.
    pub left_out: Option<&'static str>,
    pub for_each: bool,
    pub manual: bool,
    /// Its outputs and their types, when known.
    pub outputs: BTreeMap<String, AutoType>,
}

pub(crate) struct Lower<'a> {
    pub src: &'a Source,
    pub rb: &'a Runbook,
    pub reg: &'a Registry,
    pub opts: &'a Options,
    pub diags: Vec<Diagnostic>,
    /// Document parameters, in order.
    pub params: Vec<(String, Node)>,
    /// Input name -> parameter name.
    pub inputs: HashMap<String, String>,
    /// (step key, question) -> parameter name.
    /// (step key, question) -> parameter name, and whether the question is secret.
    pub asks: HashMap<(String, String), (String, bool)>,
    /// Step key -> what is known of it.
    pub info: HashMap<String, StepInfo>,
    /// Step key -> the outputs later steps read (`*` for the whole step).
    pub reads: HashMap<String, BTreeSet<String>>,
    pub groups: Vec<Group>,
    /// The runbook step index of each group (None for the guard).
    pub group_step: Vec<Option<usize>>,
    /// Region parameter every regional step runs in, when there is one.
    pub region_param: Option<String>,
    /// Step names taken, so helper names never clash.
    pub taken: BTreeSet<String>,
    /// Inside a for-each step: the iterator's Automation variable and type.
    pub cur_item: Option<(String, rhai2py::Ty)>,
    /// For-each steps whose items are maps (`StringMap`).
    pub cur_item_map: BTreeSet<String>,
}

impl<'a> Lower<'a> {
    fn new(src: &'a Source, rb: &'a Runbook, reg: &'a Registry, opts: &'a Options) -> Self {
        Lower {
            src,
            rb,
            reg,
            opts,
            diags: Vec::new(),
            params: Vec::new(),
            inputs: HashMap::new(),
            asks: HashMap::new(),
            info: HashMap::new(),
            reads: HashMap::new(),
            groups: Vec::new(),
            group_step: Vec::new(),
            region_param: None,
            taken: BTreeSet::new(),
            cur_item: None,
            cur_item_map: BTreeSet::new(),
        }
    }

    pub fn error(&mut self, span: Span, msg: impl Into<String>, help: Option<String>) {
        let mut d = Diagnostic::error(self.src, span, msg);
        d.help = help;
        self.diags.push(d);
    }

    pub fn note(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::at(self.src, span, Severity::Note, msg));
    }

    /// A whole-document problem the lint found (it has no runbook position).
    pub fn doc_error(&mut self, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::file(self.src.path().display().to_string(), msg));
    }

    pub fn included(&self, step: &Step) -> bool {
        self.info
            .get(&interp::step_key(&step.id))
            .is_some_and(|i| i.left_out.is_none())
    }

    /// A step's Automation name: its id as Rhai spells it, at least 3 characters
    /// (`step:\w+` in `onFailure`, 3-128 characters).
    pub fn step_name(id: &str) -> String {
        let n = interp::step_key(id);
        if n.len() < 3 { format!("step_{n}") } else { n }
    }

    /// A name for a helper step, unique in the document.
    pub fn helper(&mut self, base: &str, suffix: &str) -> String {
        let mut n = format!("{base}_{suffix}");
        let mut k = 2;
        while self.taken.contains(&n) {
            n = format!("{base}_{suffix}{k}");
            k += 1;
        }
        self.taken.insert(n.clone());
        n
    }

    /// Parameters, what each step is, and which outputs later steps read.
    fn prepare(&mut self) {
        for (name, input) in &self.rb.settings.inputs {
            let param = values::pascal(name);
            let param = if input.secret {
                format!("{param}ParameterName")
            } else {
                param
            };
            self.inputs.insert(name.clone(), param.clone());
            let node = values::parameter(input, input.secret);
            self.params.push((param, node));
        }
        for step in &self.rb.steps {
            let key = interp::step_key(&step.id);
            let name = Self::step_name(&step.id);
            self.taken.insert(name.clone());
            let if_ = step.attrs.if_.as_ref().map(|a| a.value.trim().to_string());
            let left_out = if self
                .opts
                .skip
                .iter()
                .any(|s| s == &step.id || interp::step_key(s) == key)
            {
                Some("--skip")
            } else if if_.as_deref() == Some("run.rehearsal") {
                Some("a rehearsal-only step (`if='run.rehearsal'`)")
            } else {
                None
            };
            let info = StepInfo {
                name,
                left_out,
                for_each: step.attrs.for_each.is_some(),
                manual: matches!(step.executor, crate::model::Executor::Manual),
                outputs: values::declared_outputs(self, step),
            };
            self.info.insert(key, info);
        }
        self.ask_parameters();
        let rb = self.rb;
        let included: Vec<&Step> = rb.steps.iter().filter(|s| self.included(s)).collect();
        for step in included {
            for code in values::code_of(step) {
                for r in interp::refs(&code) {
                    if let interp::Ref::Step { id, field, .. } = r {
                        let f = field.unwrap_or_else(|| "*".into());
                        self.reads.entry(interp::step_key(&id)).or_default().insert(f);
                    }
                }
            }
        }
        for s in &self.opts.skip {
            if self.rb.step(s).is_none()
                && self
                    .rb
                    .steps
                    .iter()
                    .all(|x| interp::step_key(&x.id) != interp::step_key(s))
            {
                self.doc_error(format!("--skip {s}: the runbook has no step `{s}`"));
            }
        }
        self.params.push((
            "AutomationAssumeRole".into(),
            Node::map()
                .with("type", Node::s("String"))
                .with(
                    "description",
                    Node::s("The IAM role the automation assumes (ARN); empty: the caller's permissions."),
                )
                .with("default", Node::s("")),
        ));
        if self
            .rb
            .steps
            .iter()
            .any(|s| self.included(s) && matches!(s.executor, crate::model::Executor::Manual))
            || self
                .rb
                .steps
                .iter()
                .any(|s| self.included(s) && s.executor.action() == Some("support.ensure-case"))
        {
            self.params.push((
                "Approvers".into(),
                Node::map()
                    .with("type", Node::s("StringList"))
                    .with("description", Node::s("IAM users, groups or roles (ARNs or names) who answer the manual steps: Approve = yes, Reject = no.")),
            ));
            if self.opts.approval_topic {
                self.params.push((
                    "ApprovalTopicArn".into(),
                    Node::map()
                        .with("type", Node::s("String"))
                        .with("description", Node::s("Amazon SNS topic (ARN) told of each approval that waits; its name must start with Automation.")),
                ));
            }
        }
        steps::guard(self);
    }

    /// Each question of a manual step becomes a parameter: an approval yields only approve or
    /// reject. Named after the question, or after its step too when two would clash.
    fn ask_parameters(&mut self) {
        let mut all = Vec::new();
        for step in self
            .rb
            .steps
            .iter()
            .filter(|s| self.included(s) && matches!(s.executor, crate::model::Executor::Manual))
        {
            let mut d = Vec::new();
            if let Some(m) = crate::manual::parse(self.src, step, &mut d) {
                for (q, input) in m.ask {
                    all.push((interp::step_key(&step.id), q, input));
                }
            }
        }
        let taken: BTreeSet<String> = self.params.iter().map(|(k, _)| k.clone()).collect();
        for (key, q, input) in &all {
            let short = values::pascal(q);
            let clash =
                taken.contains(&short) || all.iter().filter(|(_, q2, _)| values::pascal(q2) == short).count() > 1;
            let name = if clash {
                format!("{}{short}", values::pascal(key))
            } else {
                short
            };
            // A secret answer is the name of a SecureString parameter, as a secret input is.
            let name = if input.secret {
                format!("{name}ParameterName")
            } else {
                name
            };
            self.asks.insert((key.clone(), q.clone()), (name.clone(), input.secret));
            self.params.push((name, values::parameter(input, input.secret)));
        }
    }

    /// Joins the groups, resolves branch targets and declares the outputs later steps read.
    fn assemble(&mut self) -> Node {
        let firsts: Vec<Option<String>> = self
            .groups
            .iter()
            .map(|g| g.steps.first().map(|s| s.name.clone()))
            .collect();
        let after = |i: usize| firsts[i + 1..].iter().flatten().next().cloned();
        let mut needs_end = false;
        let resolve = |t: &Target, gi: usize, needs_end: &mut bool| -> String {
            let found = match t {
                Target::Group(g) => firsts[*g].clone().or_else(|| after(*g)),
                Target::After(g) => after(*g),
                Target::Name(n) => Some(n.clone()),
                Target::AfterSelf => after(gi),
            };
            found.unwrap_or_else(|| {
                *needs_end = true;
                "runbook_end".into()
            })
        };
        let mut main = Vec::new();
        let mut doc_outputs = Vec::new();
        for (gi, g) in self.groups.iter().enumerate() {
            let key = self.group_step[gi].map(|i| interp::step_key(&self.rb.steps[i].id));
            for s in &g.steps {
                let reads = key
                    .as_ref()
                    .filter(|_| {
                        s.name
                            == self
                                .info
                                .get(key.as_deref().unwrap_or(""))
                                .map(|i| i.name.clone())
                                .unwrap_or_default()
                    })
                    .and_then(|k| self.reads.get(k).cloned());
                let node = step_node(s, reads.as_ref(), &|t, e| resolve(t, gi, e), &mut needs_end);
                // What later steps read is what the execution is for: the document's outputs.
                if reads.is_some()
                    && let Some(Node::List(outs)) = node.get("outputs")
                {
                    for o in outs {
                        if let Some(n) = o.get("Name").and_then(Node::as_str)
                            && !matches!(n, "handed_over_flag" | "case_text" | "console_link")
                        {
                            doc_outputs.push(format!("{}.{n}", s.name));
                        }
                    }
                }
                main.push(node);
            }
        }
        if needs_end {
            main.push(
                Node::map()
                    .with("name", Node::s("runbook_end"))
                    .with("action", Node::s("aws:sleep"))
                    .with(
                        "description",
                        Node::s("Where a skipped last step goes: nothing left to do."),
                    )
                    .with("inputs", Node::map().with("Duration", Node::s("PT0S")))
                    .with("isEnd", Node::Bool(true)),
            );
        }
        let digest = hex::encode(sha2::Sha256::digest(self.src.text.as_bytes()));
        let mut description = format!(
            "# {}\n\nExported by `runbook export --ssm` from {} (sha256 {digest}). Each step's description cites its line in that file.",
            self.rb.title,
            self.src.path().display()
        );
        if let Some(p) = self
            .rb
            .sections
            .first()
            .map(|s| s.prose.trim())
            .filter(|p| !p.is_empty())
        {
            description.push_str("\n\n");
            description.push_str(&values::clip(p, 2000));
        }
        let mut root = Node::map()
            .with("description", Node::s(description))
            .with("schemaVersion", Node::s("0.3"))
            .with("assumeRole", Node::s("{{ AutomationAssumeRole }}"))
            .with("parameters", Node::Map(self.params.clone()))
            .with("mainSteps", Node::List(main));
        if !doc_outputs.is_empty() {
            root.set("outputs", Node::List(doc_outputs.into_iter().map(Node::Str).collect()));
        }
        root
    }
}

/// One step as the document writes it, its outputs those in `reads` (all, for `*`).
fn step_node(
    s: &AStep,
    reads: Option<&BTreeSet<String>>,
    resolve: &dyn Fn(&Target, &mut bool) -> String,
    needs_end: &mut bool,
) -> Node {
    let mut n = Node::map()
        .with("name", Node::s(&s.name))
        .with("action", Node::s(s.action));
    if let Some(d) = &s.description {
        n.set("description", Node::s(d));
    }
    for (k, v) in &s.settings {
        n.set(k, v.clone());
    }
    let mut inputs = s.inputs.clone();
    if s.action == "aws:branch" {
        let choices = s
            .choices
            .iter()
            .map(|(cond, t)| {
                let mut c = Node::map().with("NextStep", Node::s(resolve(t, needs_end)));
                for (k, v) in cond {
                    c.set(k, v.clone());
                }
                c
            })
            .collect();
        inputs.set("Choices", Node::List(choices));
        if let Some(d) = &s.default {
            inputs.set("Default", Node::s(resolve(d, needs_end)));
        }
    }
    if s.action == "aws:loop" {
        let body = s.body.iter().map(|b| step_node(b, reads, resolve, needs_end)).collect();
        inputs.set("Steps", Node::List(body));
    }
    n.set("inputs", inputs);
    let want = |f: &str| reads.is_some_and(|r| r.contains("*") || r.contains(f));
    let out = |name: &str, sel: String, ty: &str| {
        Node::map()
            .with("Name", Node::s(name))
            .with("Selector", Node::s(sel))
            .with("Type", Node::s(ty))
    };
    let outputs: Vec<Node> = match &s.outputs {
        Outs::None => Vec::new(),
        Outs::Script(m) => m
            .iter()
            .filter(|(k, _)| want(k))
            .map(|(k, t)| out(k, format!("$.Payload.{k}"), t))
            .collect(),
        Outs::Api(m) => {
            let mut v: Vec<Node> = m
                .iter()
                .filter(|(k, _)| want(k))
                .map(|(k, (sel, t))| out(k, sel.clone(), t))
                .collect();
            // A step with no outputs crashes the simulator; an API step declares at least one.
            if v.is_empty()
                && let Some((k, (sel, t))) = m.iter().next()
            {
                v.push(out(k, sel.clone(), t));
            }
            v
        }
        Outs::Fixed(v) => v.iter().map(|(k, sel, t)| out(k, sel.clone(), t)).collect(),
    };
    if !outputs.is_empty() && s.action != "aws:loop" {
        n.set("outputs", Node::List(outputs));
    }
    n
}
