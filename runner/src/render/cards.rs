//! Cards: what a runbook chapter's step blocks become on the site.
//!
//! Every fenced step block is replaced by one HTML block (no blank line inside, so CommonMark
//! keeps it whole): an executor badge, the action and what it checks or changes, a parameters
//! table, the AWS CLI equivalent, and the `if=`, `for-each=` and `on-failure=` attributes. Manual
//! steps become a checklist item with their questions; the `runbook` block becomes an inputs
//! table. Secret values are never written: a secret default shows as "(secret)".

use std::fmt::Write as _;
use std::ops::Range;

use runbook_plugins::Registry;
use serde_json::Value;

use crate::manual;
use crate::model::{Executor, Input, Runbook, Step};
use crate::source::Source;

/// The chapter's Markdown with step blocks and the settings block replaced; prose as written.
pub fn cards(source: &Source, shown: &str, rb: &Runbook, registry: &Registry, is_index: bool) -> String {
    cards_with(source, shown, rb, registry, is_index, &mut Vec::new(), |range, out| {
        out.push_str(&source.text[range])
    })
}

/// [`cards`], with `prose` writing each stretch of text between machine blocks (the only text
/// that links are expanded in: step bodies are never preprocessed). `ours` receives where in the
/// result the HTML this module wrote is (the sanitizer leaves it alone).
pub fn cards_with(
    source: &Source,
    shown: &str,
    rb: &Runbook,
    registry: &Registry,
    is_index: bool,
    ours: &mut Vec<Range<usize>>,
    mut prose: impl FnMut(Range<usize>, &mut String),
) -> String {
    let text = &source.text;
    let mut blocks: Vec<(usize, usize, String)> = Vec::new();
    if let Some(span) = rb.settings.span {
        blocks.push((span.start, span.end, inputs_table(rb)));
    }
    for step in &rb.steps {
        blocks.push((step.span.start, step.span.end, card(source, step, registry)));
    }
    blocks.sort_by_key(|b| b.0);

    let mut out = String::with_capacity(text.len() * 2);
    let mut at = 0;
    let title_end = if is_index || rb.steps.is_empty() {
        None
    } else {
        first_heading_end(text)
    };
    if let Some(end) = title_end {
        prose(0..end, &mut out);
        let from = out.len();
        out.push_str(&run_this(shown));
        match crate::policy::policy_of(rb) {
            Some(policy) if policy.is_empty() => out.push_str(
                "<p class=\"rb-policy\">A run needs no IAM permission: its AWS steps only ask who the caller is.</p>\n\n",
            ),
            Some(policy) => {
                let _ = write!(
                    out,
                    "<details class=\"rb-policy\"><summary>The IAM policy a run needs (<code>runbook permissions {}</code>)</summary><pre><code class=\"language-json\">{}</code></pre></details>\n\n",
                    esc(&shell_words::quote(shown)),
                    esc(&policy)
                );
            }
            None => {}
        }
        ours.push(from..out.len());
        at = end;
    }
    for (start, end, html) in blocks {
        if start < at {
            continue;
        }
        prose(at..start, &mut out);
        out.push_str("\n\n");
        let from = out.len();
        out.push_str(&html);
        ours.push(from..out.len());
        out.push_str("\n\n");
        at = end;
    }
    prose(at..text.len(), &mut out);
    out
}

/// The byte offset just past the first line when it is an ATX `# ` heading.
fn first_heading_end(text: &str) -> Option<usize> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with("# ") {
        return None;
    }
    let start = text.len() - trimmed.len();
    Some(start + trimmed.find('\n').map_or(trimmed.len(), |i| i + 1))
}

fn run_this(path: &str) -> String {
    // Pasted into a shell: quoted as one word whatever the file's name.
    let path = shell_words::quote(path);
    format!(
        "\n<div class=\"rb-run-this\"><strong>Run this</strong>\
<pre><code class=\"language-bash\">runbook run {p}</code></pre>\
<span>Try it first without an AWS account: <code>runbook rehearse {p}</code></span></div>\n\n",
        p = esc(&path)
    )
}

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // A blank line would end the HTML block; no value needs one.
            '\n' => o.push_str("&#10;"),
            _ => o.push(c),
        }
    }
    o
}

/// Turns `x` in already-escaped text into <code>x</code> (doc lines use Markdown backticks).
fn code_spans(escaped: &str) -> String {
    let parts: Vec<&str> = escaped.split('`').collect();
    if parts.len() % 2 == 0 {
        return escaped.to_string();
    }
    let mut o = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i % 2 == 1 {
            let _ = write!(o, "<code>{p}</code>");
        } else {
            o.push_str(p);
        }
    }
    o
}

fn input_row(name: &str, i: &Input) -> String {
    let default = match (&i.default, i.secret) {
        (_, true) => "<em>(secret, never shown)</em>".to_string(),
        (Some(d), false) if d.is_empty() => "<em>(empty)</em>".into(),
        (Some(d), false) => format!("<code>{}</code>", esc(d)),
        (None, false) => "<em>required</em>".into(),
    };
    let mut rule = String::new();
    if let Some(c) = &i.choices {
        rule = format!(
            "one of {}",
            c.iter()
                .map(|c| format!("<code>{}</code>", esc(c)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else if let Some(p) = &i.pattern {
        rule = format!("matches <code>{}</code>", esc(p));
    }
    let mut what = i.prompt.as_deref().map(esc).unwrap_or_default();
    if let Some(h) = &i.help {
        let _ = write!(what, "<br><small>{}</small>", code_spans(&esc(h)));
    }
    format!(
        "<tr><td><code>{}</code></td><td>{what}</td><td>{default}</td><td>{rule}</td></tr>",
        esc(name)
    )
}

fn inputs_table(rb: &Runbook) -> String {
    let mut o = String::from("<div class=\"rb-inputs\"><strong>Inputs</strong>");
    if rb.settings.inputs.is_empty() {
        o.push_str("<p>This runbook asks for no inputs.</p>");
    } else {
        o.push_str(
            "<table><thead><tr><th>input</th><th>asked as</th><th>default</th><th>accepted</th></tr></thead><tbody>",
        );
        for (name, i) in &rb.settings.inputs {
            o.push_str(&input_row(name, i));
        }
        o.push_str("</tbody></table>");
    }
    if let Some(g) = &rb.settings.guard {
        let mut parts = Vec::new();
        if let Some(a) = &g.account {
            parts.push(format!("account <code>{}</code>", esc(a)));
        }
        if let Some(r) = &g.region {
            parts.push(format!("region <code>{}</code>", esc(r)));
        }
        if !parts.is_empty() {
            let _ = write!(
                o,
                "<p>Before each step that changes AWS, the runbook checks it runs as {}.</p>",
                parts.join(" in ")
            );
        }
    }
    o.push_str("</div>");
    o
}

/// `troubleshooting/x.md` as a relative link to the page mdBook writes for it. Every segment is
/// percent-encoded, so no file name (`javascript:x.md`) can make the link a URL with a scheme.
fn page_link(target: &str) -> String {
    let (path, frag) = target.split_once('#').map_or((target, None), |(p, f)| (p, Some(f)));
    // The page a runbook is published as (`summary::page_path`).
    let path = super::summary::page_path(path);
    let page = match path.strip_suffix("README.md") {
        Some(dir) => format!("{dir}index.html"),
        None => path
            .strip_suffix(".md")
            .map_or(path.to_string(), |p| format!("{p}.html")),
    };
    let page = page.split('/').map(encode).collect::<Vec<_>>().join("/");
    match frag {
        Some(f) => format!("{page}#{}", encode(f)),
        None => page,
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

fn card(source: &Source, step: &Step, registry: &Registry) -> String {
    let (kind, badge) = match &step.executor {
        Executor::Manual => ("person", "person"),
        Executor::Rhai => ("script", "script"),
        Executor::Action { name, .. } => {
            let mutates = step
                .call_mutates()
                .unwrap_or_else(|| registry.get(name).is_some_and(|a| a.info().mutates));
            if mutates { ("aws", "AWS") } else { ("check", "check") }
        }
    };
    let mut o = String::new();
    let _ = write!(
        o,
        "<div class=\"rb-step rb-{kind}\" id=\"step-{id}\"><div class=\"rb-step-head\"><span class=\"rb-badge rb-badge-{kind}\">{badge}</span> ",
        id = esc(&step.id)
    );
    match step.executor.written() {
        Some(a) => {
            let _ = write!(
                o,
                "<code class=\"rb-action\">{} {}</code>",
                step.executor.word(),
                esc(a)
            );
        }
        None => {
            let _ = write!(
                o,
                "<span class=\"rb-action\">{}</span>",
                if kind == "person" {
                    "a person does this"
                } else {
                    "Rhai script"
                }
            );
        }
    }
    let _ = write!(o, " <a class=\"rb-id\" href=\"#step-{0}\">{0}</a></div>", esc(&step.id));

    if let Some(a) = &step.attrs.if_ {
        let _ = write!(
            o,
            "<p class=\"rb-attr\">Runs only if <code>{}</code>.</p>",
            esc(&a.value)
        );
    }
    if let Some(a) = &step.attrs.for_each {
        let _ = write!(
            o,
            "<p class=\"rb-attr\">Once for each <code>item</code> of <code>{}</code>.</p>",
            esc(&a.value)
        );
    }
    if let Some(at) = crate::placement::written(&step.attrs) {
        let _ = write!(o, "<p class=\"rb-attr rb-place\">Acts {}.</p>", esc(&at));
    }
    if let Executor::Action { .. } = &step.executor
        && let Ok(iam) = crate::policy::step_actions(step, registry)
    {
        // What `runbook permissions` puts in the policy for this step.
        let codes = |set: &std::collections::BTreeSet<String>| {
            if set.is_empty() {
                "none".to_string()
            } else {
                set.iter()
                    .map(|a| format!("<code>{}</code>", esc(a)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let listed = if step.attrs.account.is_some() {
            format!(
                "<code>sts:AssumeRole</code> (the caller), and for the role it assumes: {}",
                codes(&iam)
            )
        } else {
            codes(&iam)
        };
        let _ = write!(o, "<p class=\"rb-attr rb-iam\">IAM permissions: {listed}.</p>");
    }
    match &step.executor {
        Executor::Manual => manual_body(&mut o, source, step),
        Executor::Rhai => {
            // Rhai, not Rust: mdBook would give `language-rust` a playground (a run button that
            // posts to another host, a hidden `fn main`, and `#` lines hidden).
            let _ = write!(
                o,
                "<pre><code class=\"language-rhai\">{}</code></pre>",
                esc(step.body.trim_end())
            );
        }
        Executor::Action { .. } => action_body(&mut o, step, registry),
    }
    if let Some(t) = &step.attrs.timeout {
        let _ = write!(o, "<p class=\"rb-attr\">Gives up after {}.</p>", esc(&t.value));
    }
    if let Some(a) = &step.attrs.on_failure {
        let _ = write!(
            o,
            "<p class=\"rb-attr rb-on-failure\">If this step fails, continue with <a href=\"{}\">{}</a>.</p>",
            esc(&page_link(&a.value)),
            esc(&a.value)
        );
    }
    o.push_str("</div>");
    o
}

/// A generic call's card: what it is, its request as written, the CLI command.
fn call_body(o: &mut String, step: &Step, name: &str) {
    let Ok(c) = runbook_plugins::call::resolve(name) else {
        return;
    };
    let _ = write!(
        o,
        "<p class=\"rb-summary\">Calls the AWS API operation {} by its name. <em>{}</em></p>",
        match c.api_reference() {
            Some(url) => format!("<a href=\"{}\"><code>{}</code></a>", esc(&url), esc(c.full_name())),
            None => format!("<code>{}</code>", esc(c.full_name())),
        },
        if step.call_mutates().unwrap_or(true) {
            "Changes AWS: journaled before it is sent, never sent twice blindly."
        } else {
            "Read-only."
        }
    );
    if !step.body.trim().is_empty() {
        // What the model marks sensitive (a parameter's value, a password) is not published,
        // even written literally: the site is public, the runbook may not be.
        let mut body = step.body.trim_end().to_string();
        let request = crate::eval::toml_body(&step.body).unwrap_or(Value::Null);
        for v in c.sensitive_in_request(&request) {
            for q in ['"', '\''] {
                body = body.replace(&format!("{q}{v}{q}"), &format!("{q}{}{q}", crate::redact::MASK));
            }
        }
        let _ = write!(o, "<pre><code class=\"language-toml\">{}</code></pre>", esc(&body));
    }
    let _ = write!(
        o,
        "<details class=\"rb-cli\"><summary>Equivalent AWS CLI</summary><pre><code class=\"language-bash\">{}</code></pre></details>",
        esc(&c.cli())
    );
}

fn action_body(o: &mut String, step: &Step, registry: &Registry) {
    if let Some(name) = step.executor.call() {
        call_body(o, step, name);
        return;
    }
    let Some(name) = step.executor.action() else { return };
    let Some(action) = registry.get(name) else { return };
    let info = action.info();
    let _ = write!(
        o,
        "<p class=\"rb-summary\">{} <em>{}</em></p>",
        esc(info.summary),
        if info.mutates {
            "Changes AWS only where something is missing."
        } else {
            "Read-only."
        }
    );
    let params = crate::eval::toml_body(&step.body).unwrap_or(Value::Null);
    if let Some(map) = params.as_object().filter(|m| !m.is_empty()) {
        o.push_str("<table class=\"rb-params\"><thead><tr><th>parameter</th><th>value</th><th>meaning</th></tr></thead><tbody>");
        for (k, v) in map {
            let doc = info.param(k).map(|f| f.doc.as_str()).unwrap_or("");
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(
                o,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                esc(k),
                esc(&shown),
                code_spans(&esc(doc))
            );
        }
        o.push_str("</tbody></table>");
    }
    let cli = action.cli(&placeholders(&params));
    if !cli.is_empty() {
        let label = if step.executor.word() == "aws" {
            "Equivalent AWS CLI"
        } else {
            "By hand"
        };
        let _ = write!(
            o,
            "<details class=\"rb-cli\"><summary>{label}</summary><pre><code class=\"language-bash\">{}</code></pre></details>",
            esc(&cli.join("\n"))
        );
    }
}

/// Parameter values for the CLI lines: `${inputs.admin_user}` becomes `ADMIN_USER`, so the
/// command reads as a template to fill in.
fn placeholders(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("${") => Value::String(placeholder_text(s)),
        Value::Array(a) => Value::Array(a.iter().map(placeholders).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), placeholders(v))).collect()),
        other => other.clone(),
    }
}

fn placeholder_text(s: &str) -> String {
    let Ok(pieces) = crate::interp::pieces(s) else {
        return "VALUE".into();
    };
    let mut out = String::new();
    for p in pieces {
        match p {
            crate::interp::Piece::Lit(t) => out.push_str(&t),
            crate::interp::Piece::Expr { code, .. } => {
                let code = code.trim();
                let simple = code.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '_');
                let last = code.rsplit('.').next().unwrap_or("value");
                out.push_str(&if simple { last.to_uppercase() } else { "VALUE".into() });
            }
        }
    }
    out
}

fn manual_body(o: &mut String, source: &Source, step: &Step) {
    let mut diags = Vec::new();
    let Some(m) = manual::parse(source, step, &mut diags) else {
        return;
    };
    if let Some(i) = &m.instructions {
        let _ = write!(o, "<p class=\"rb-instructions\">{}</p>", esc(i));
    }
    let confirm = m.confirm.as_deref().unwrap_or("Done?");
    let _ = write!(
        o,
        "<ul class=\"rb-checklist\"><li><label><input type=\"checkbox\"> {}</label></li></ul>",
        esc(confirm)
    );
    if !m.ask.is_empty() {
        o.push_str("<table class=\"rb-ask\"><thead><tr><th>answer</th><th>asked as</th><th>default</th><th>accepted</th></tr></thead><tbody>");
        for (name, i) in &m.ask {
            o.push_str(&input_row(name, i));
        }
        o.push_str("</tbody></table>");
    }
    if let Some(v) = &m.verify {
        let _ = write!(
            o,
            "<p class=\"rb-attr\">Then the runbook checks: <code>{}</code>.</p>",
            esc(v)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer;

    #[test]
    fn placeholders_name_the_value_to_fill_in() {
        assert_eq!(placeholder_text("${inputs.admin_user}"), "ADMIN_USER");
        assert_eq!(placeholder_text("${steps.ic.identity_store_id}"), "IDENTITY_STORE_ID");
        assert_eq!(placeholder_text("a-${ x + 1 }"), "a-VALUE");
    }

    #[test]
    fn links_point_at_pages() {
        assert_eq!(
            page_link("troubleshooting/not-activated.md"),
            "troubleshooting/not-activated.html"
        );
        assert_eq!(page_link("README.md#x"), "index.html#x");
        let evil = page_link("javascript:alert(1).md");
        assert!(
            evil.starts_with("javascript_alert%281%29-") && evil.ends_with(".html"),
            "{evil}"
        );
        assert_eq!(code_spans("a `b` c"), "a <code>b</code> c");
        assert_eq!(code_spans("odd ` tick"), "odd ` tick");
    }

    #[test]
    fn cards_replace_steps_and_hide_secret_defaults() {
        let md = "# T\n\nProse.\n\n```runbook\n[inputs.pw]\nsecret = true\ndefault = \"hunter2-secret\"\n```\n\n\
```manual id=m\nconfirm = \"Did it?\"\n[ask.code]\nsecret = true\ndefault = \"otp-99\"\n```\n\n\
```aws sts.whoami id=who\n```\n\n```text\nkept\n```\n";
        let source = Source::new("runbooks/t.md", md);
        let registry = Registry::shared();
        let (rb, _) = analyzer::check(&source, registry);
        let out = cards(&source, "runbooks/t.md", &rb, registry, false);
        assert!(!out.contains("hunter2-secret") && !out.contains("otp-99"), "{out}");
        assert_eq!(out.matches("class=\"rb-step ").count(), 2, "{out}");
        assert!(out.contains("```text\nkept\n```"), "{out}");
        assert!(out.contains("runbook run runbooks/t.md"), "{out}");
        assert!(out.contains("aws sts get-caller-identity"), "{out}");
        for block in out.split("\n\n").filter(|b| b.starts_with("<div")) {
            assert!(!block.contains("\n\n"), "a card must be one HTML block: {block}");
        }
    }
}
