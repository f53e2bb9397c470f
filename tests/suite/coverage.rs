//! Every section of the AWS Setup guide is covered by some runbook, and says what the guide says
//! there. runbooks/coverage.toml holds the guide's table of contents and, for each heading, the
//! runbook section that covers it and the guide's facts in our words; this test holds the
//! runbooks to it. Nothing here reads a file outside the repository.

use std::collections::BTreeMap;

use crate::common::{Test, repo};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Coverage {
    toc: Vec<String>,
    sections: Vec<Entry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    guide: String,
    runbook: String,
    heading: String,
    facts: Vec<String>,
}

/// Lower case, Markdown emphasis and code marks dropped, whitespace runs as one space.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '*' | '`'))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The ATX headings of a Markdown file outside fenced blocks: (level, text, line index).
fn headings(lines: &[&str]) -> Vec<(usize, String, usize)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        for f in ["```", "~~~"] {
            if t.starts_with(f) {
                fence = match fence {
                    None => Some(f),
                    Some(open) if open == f && t.trim() == f => None,
                    other => other,
                };
            }
        }
        if fence.is_some() || t.starts_with("```") || t.starts_with("~~~") {
            continue;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && t[level..].starts_with(' ') {
            out.push((level, t[level..].trim().trim_end_matches('#').trim().to_string(), i));
        }
    }
    out
}

/// The text of the section under `heading`: its line down to the next heading of the same or a
/// higher level (subsections and step blocks included). None when the heading is missing.
fn section(text: &str, heading: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let hs = headings(&lines);
    let found: Vec<&(usize, String, usize)> = hs.iter().filter(|(_, t, _)| t == heading).collect();
    let (level, _, start) = match found.as_slice() {
        [one] => *one,
        [] => return Err(format!("no heading `{heading}`")),
        _ => return Err(format!("{} headings `{heading}`", found.len())),
    };
    let end = hs
        .iter()
        .find(|(l, _, at)| at > start && l <= level)
        .map_or(lines.len(), |(_, _, at)| *at);
    Ok(lines[*start..end].join("\n"))
}

fn coverage() -> Coverage {
    let text = std::fs::read_to_string(repo().join("runbooks/coverage.toml")).expect("coverage.toml");
    toml::from_str(&text).expect("coverage.toml parses")
}

/// Every guide heading is mapped, once and in the guide's order, to a runbook section that exists
/// (exactly that heading) and says each of the guide's facts for it.
#[test]
fn every_guide_section_is_covered_and_says_the_guides_facts() {
    let cov = coverage();
    assert_eq!(cov.toc.len(), 41, "the guide's table of contents has 41 headings");
    let mapped: Vec<&str> = cov.sections.iter().map(|e| e.guide.as_str()).collect();
    assert_eq!(
        mapped,
        cov.toc.iter().map(String::as_str).collect::<Vec<_>>(),
        "every heading of the table of contents is mapped once, in order"
    );
    // The runbooks the mapping names are the bundled ones `runbook list` reads.
    let out = Test::new()
        .args(["list", "--json", &repo().join("runbooks").display().to_string()])
        .run();
    out.code_is(0);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let listed: Vec<String> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["path"].as_str())
        .map(|p| p.split("runbooks/").last().unwrap_or(p).to_string())
        .collect();
    let mut texts: BTreeMap<&str, String> = BTreeMap::new();
    let mut missing = Vec::new();
    for e in &cov.sections {
        assert!(
            listed.iter().any(|l| l == &e.runbook),
            "{}: {} is not a bundled runbook ({listed:?})",
            e.guide,
            e.runbook
        );
        assert!(
            e.facts.len() >= 2,
            "{}: a section needs at least two facts, not a heading word",
            e.guide
        );
        let text = texts
            .entry(&e.runbook)
            .or_insert_with(|| std::fs::read_to_string(repo().join("runbooks").join(&e.runbook)).expect("runbook"));
        let body = section(text, &e.heading).unwrap_or_else(|m| panic!("{}: {}: {m}", e.guide, e.runbook));
        let said = normalize(&body);
        for f in &e.facts {
            assert!(
                f.trim().len() >= 3,
                "{}: fact `{f}` is too short to mean anything",
                e.guide
            );
            if !said.contains(&normalize(f)) {
                missing.push(format!("{} ({} § {}): `{f}`", e.guide, e.runbook, e.heading));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "facts of the guide that the runbooks do not say:\n  {}",
        missing.join("\n  ")
    );
}

/// The check is only as good as its section boundaries: a fact said in the next section does not
/// count for this one.
#[test]
fn a_fact_counts_only_inside_its_own_section() {
    let md = r#"# T

## A

alpha words

```toml
# not a heading
beta = 1
```

### A1

gamma

## B

delta
"#;
    let a = section(md, "A").expect("A");
    assert!(a.contains("alpha") && a.contains("beta") && a.contains("gamma"), "{a}");
    assert!(!a.contains("delta"), "{a}");
    assert!(section(md, "not a heading").is_err());
    assert_eq!(normalize("**Security  control**:\n`x`"), "security control: x");
}

/// The site keeps what a reader of the guide relies on: the troubleshooting pages link to the
/// Support console, the registration page and Payment Methods, and the runbooks link to each
/// other where the guide cross-references.
#[test]
fn the_site_keeps_the_guides_links_and_cross_references() {
    let t = Test::new();
    let out = t.run_args(&[
        "render".into(),
        "--book".into(),
        repo().join("book").display().to_string(),
        "--runbooks".into(),
        repo().join("runbooks").display().to_string(),
        "--out".into(),
        "site".into(),
    ]);
    out.code_is(0);
    let page = |p: &str| std::fs::read_to_string(t.path("site").join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let support = "href=\"https://console.aws.amazon.com/support/home#/case/create";
    let signup = "href=\"https://portal.aws.amazon.com/billing/signup\"";
    let payment = "href=\"https://console.aws.amazon.com/billing/home#/paymentmethods\"";
    let want: &[(&str, &[&str])] = &[
        (
            "runbooks/troubleshooting/no-verification-call.html",
            &[
                support,
                payment,
                "href=\"https://console.aws.amazon.com/billing/home#/account\"",
            ],
        ),
        (
            "runbooks/troubleshooting/failed-attempts.html",
            &[support, "href=\"https://console.aws.amazon.com/\""],
        ),
        (
            "runbooks/troubleshooting/not-activated.html",
            &[support, signup, payment],
        ),
        (
            "runbooks/part-1-new-account.html",
            &[
                signup,
                "href=\"prerequisites.html#aws-account-requirements\"",
                "href=\"troubleshooting/no-verification-call.html\"",
                "href=\"troubleshooting/failed-attempts.html\"",
                "href=\"troubleshooting/not-activated.html\"",
            ],
        ),
        (
            "runbooks/part-2-identity-center.html",
            &[
                "href=\"part-1-new-account.html#step-3-activate-mfa-for-your-aws-account-root-user\"",
                "href=\"prerequisites.html#active-directory-or-external-idp\"",
                "href=\"#step-3-create-an-administrative-permission-set\"",
                "href=\"https://docs.aws.amazon.com/singlesignon/latest/userguide/enable-mfa.html\"",
            ],
        ),
        (
            "runbooks/prerequisites.html",
            &[
                "href=\"part-2-identity-center.html\"",
                "href=\"part-1-new-account.html\"",
                "href=\"multiple-accounts.html\"",
            ],
        ),
        (
            "runbooks/users-and-credentials.html",
            &[
                "href=\"part-2-identity-center.html\"",
                "href=\"#profile\"",
                "href=\"#root-user\"",
            ],
        ),
        (
            "runbooks/index.html",
            &["href=\"troubleshooting/not-activated.html\"", support],
        ),
    ];
    let mut lost = Vec::new();
    for (p, links) in want {
        let html = page(p);
        for l in *links {
            if !html.contains(l) {
                lost.push(format!("{p}: {l}"));
            }
        }
    }
    assert!(lost.is_empty(), "links lost on the site:\n  {}", lost.join("\n  "));
}
