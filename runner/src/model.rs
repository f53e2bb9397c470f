//! The parsed runbook: what the analyzer checks, the executor runs and the renderer shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::source::Span;

#[derive(Debug, Clone, Serialize)]
pub struct Runbook {
    pub path: String,
    pub title: String,
    pub settings: Settings,
    pub sections: Vec<Section>,
    pub steps: Vec<Step>,
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn section_of(&self, step: &Step) -> Option<&Section> {
        step.section.and_then(|i| self.sections.get(i))
    }
}

/// The `runbook` block's settings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// Where the block is, when there is one.
    pub span: Option<Span>,
    pub title: Option<String>,
    pub inputs: BTreeMap<String, Input>,
    pub guard: Option<Guard>,
}

/// A value the runbook asks for before it starts (`[inputs.NAME]`), or a question a manual step
/// asks (`[ask.NAME]`): the same fields either way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What the person is asked.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Taken when nothing else supplies a value.
    #[serde(default)]
    pub default: Option<String>,
    /// A regular expression the whole value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The only values accepted.
    #[serde(default)]
    pub choices: Option<Vec<String>>,
    /// Never echoed, logged, stored in clear or rendered.
    #[serde(default)]
    pub secret: bool,
    /// The input names the run: runs with different values are separate instances, each with
    /// its own journal (`runbook runs FILE` lists them).
    #[serde(default)]
    pub key: bool,
    /// Shown under the prompt and on the site.
    #[serde(default)]
    pub help: Option<String>,
    #[serde(skip_deserializing)]
    pub span: Span,
}

/// Who the runbook must be run as; checked before every mutating step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// `management`, `any`, or a 12-digit account id (may be `${...}`).
    #[serde(default)]
    pub account: Option<String>,
    /// Region the runbook must run in (may be `${...}`).
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub level: u8,
    pub title: String,
    pub slug: String,
    /// The heading's span.
    pub span: Span,
    /// The section's Markdown, without its heading and without step blocks.
    pub prose: String,
}

/// Who does a step: a person, a script, or a plugin action. Built once by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    Manual,
    Rhai,
    /// `aws SERVICE.ACTION`, `aws SERVICE:Operation` (a call by API name) or `net ACTION`.
    Action {
        family: Family,
        name: String,
    },
}

/// The word that opens an action step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Aws,
    Net,
}

impl Executor {
    /// An action step as written after its word (`net check-reachable` is `check-reachable`).
    pub fn action_step(family: Family, written: &str) -> Executor {
        let name = match family {
            Family::Aws => written.to_string(),
            Family::Net => format!("net.{written}"),
        };
        Executor::Action { family, name }
    }

    pub fn word(&self) -> &'static str {
        match self {
            Executor::Manual => "manual",
            Executor::Rhai => "rhai",
            Executor::Action {
                family: Family::Aws, ..
            } => "aws",
            Executor::Action {
                family: Family::Net, ..
            } => "net",
        }
    }

    /// The generic call an `aws SERVICE:Operation` step names (None for built-in actions).
    pub fn call(&self) -> Option<&str> {
        match self {
            Executor::Action {
                family: Family::Aws,
                name,
            } if runbook_plugins::call::is_call(name) => Some(name),
            _ => None,
        }
    }

    /// The plugin registry's name for the action (`net.check-reachable`), for action steps.
    pub fn action(&self) -> Option<&str> {
        match self {
            Executor::Action { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The action as the step writes it after its word (`check-reachable` for `net`).
    pub fn written(&self) -> Option<&str> {
        match self {
            Executor::Action {
                family: Family::Net,
                name,
            } => Some(name.strip_prefix("net.").unwrap_or(name)),
            Executor::Action { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// As `list --json` has always shown it: `{"kind": "aws", "action": "iam:CreateUser"}`.
impl Serialize for Executor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.word())?;
        if let Some(a) = self.written() {
            m.serialize_entry("action", a)?;
        }
        m.end()
    }
}

/// One `key=value` word of a step's info string.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attr {
    pub value: String,
    /// The value's span (inside quotes, when quoted).
    pub span: Span,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Attributes {
    pub id: Option<Attr>,
    #[serde(rename = "if")]
    pub if_: Option<Attr>,
    pub timeout: Option<Attr>,
    pub retries: Option<Attr>,
    pub on_failure: Option<Attr>,
    pub for_each: Option<Attr>,
    /// `public=a,b`: outputs of a script that reads a secret which may be kept in clear.
    pub public: Option<Attr>,
    /// `mutates=true|false`: overrides what a generic call's name says (Describe/List/Get read).
    pub mutates: Option<Attr>,
    /// `on-unknown=retry|ask`: what a generic mutating call does after an unknown outcome.
    pub on_unknown: Option<Attr>,
    /// `account=ID` (or `${...}`): an aws step acts in that account, by assuming `role=` there.
    pub account: Option<Attr>,
    /// `role=NAME`: the role assumed in `account=` (default OrganizationAccountAccessRole).
    pub role: Option<Attr>,
    /// `region=NAME` (or `${...}`): an aws step acts in that region.
    pub region: Option<Attr>,
}

impl Attributes {
    /// Whether the step says where it acts (`account=`, `region=`).
    pub fn placed(&self) -> bool {
        self.account.is_some() || self.region.is_some()
    }

    /// The output names `public=` declares.
    pub fn public_outputs(&self) -> Vec<String> {
        self.public
            .as_ref()
            .map(|a| {
                a.value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub executor: Executor,
    pub attrs: Attributes,
    /// The block's text between its fences.
    pub body: String,
    /// Where each line of `body` starts in the file, so errors in a body point at the Markdown.
    #[serde(skip)]
    pub body_lines: Vec<usize>,
    /// The whole fenced block, fences included.
    pub span: Span,
    /// The info string.
    pub info_span: Span,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// Index into `Runbook::sections` of the section the step sits in.
    pub section: Option<usize>,
}

impl Step {
    /// The step's `timeout=`, when it has one.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.attrs
            .timeout
            .as_ref()
            .and_then(|t| runbook_plugins::aws::parse_duration(&t.value))
    }

    /// Maps offsets in `body` back to the Markdown file.
    pub fn body_map(&self) -> crate::source::BodyMap<'_> {
        crate::source::BodyMap::new(&self.body, &self.body_lines)
    }

    /// Maps a span in `body` to a span in the file.
    pub fn body_span(&self, span: Span) -> Span {
        self.body_map().span(span.start..span.end)
    }

    /// Maps a 1-based line and column in `body` (as Rhai reports them) to a file span.
    pub fn body_line_col(&self, line: usize, col: usize) -> Span {
        let mut off = 0;
        for (i, l) in self.body.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let within: usize = l.chars().take(col.saturating_sub(1)).map(char::len_utf8).sum();
                let at = self.body_map().offset(off + within);
                return Span::new(at, at + 1);
            }
            off += l.len();
        }
        let at = self.body_map().offset(self.body.len());
        Span::new(at, at)
    }

    /// Whether a generic call step changes AWS: its `mutates=`, else its operation's name or the
    /// model's read-only marker.
    pub fn call_mutates(&self) -> Option<bool> {
        let name = self.executor.call()?;
        if let Some(m) = &self.attrs.mutates {
            return Some(m.value != "false");
        }
        Some(!runbook_plugins::call::reads(name))
    }
}
