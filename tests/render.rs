//! `runbook render`: the site built from book/ and runbooks/, checked file by file.

mod common;

use std::path::Path;

use common::{Test, repo};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir`, as (path, bytes).
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.push((p, bytes));
            }
        }
    }
    out
}

fn render_bundled() -> (Test, std::path::PathBuf) {
    let t = Test::new();
    let out = t.path("site");
    let r = Test::new()
        .args([
            "render",
            "--book",
            &repo().join("book").display().to_string(),
            "--runbooks",
            &repo().join("runbooks").display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .run();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("rendered 9 runbooks"), "{}", r.stderr);
    (t, out)
}

#[test]
fn a_page_per_runbook_and_a_card_per_step() {
    let (_t, site) = render_bundled();
    let list = Test::new()
        .args(["list", "--json", &repo().join("runbooks").display().to_string()])
        .run();
    assert_eq!(list.code, 0, "{list:?}");
    let books: serde_json::Value = serde_json::from_str(&list.stdout).expect("list --json");
    let books = books.as_array().expect("array");
    assert_eq!(books.len(), 9);
    for b in books {
        let path = b["path"].as_str().expect("path");
        let rel = Path::new(path)
            .strip_prefix(repo().join("runbooks"))
            .expect("under runbooks/");
        let page = if rel.file_name().is_some_and(|n| n == "README.md") {
            rel.with_file_name("index.html")
        } else {
            rel.with_extension("html")
        };
        let html = read(&site.join("runbooks").join(&page));
        let steps = b["steps"].as_array().expect("steps");
        assert_eq!(
            html.matches("class=\"rb-step ").count(),
            steps.len(),
            "{}: one card per step",
            page.display()
        );
        for s in steps {
            let id = s["id"].as_str().expect("id");
            assert!(
                html.contains(&format!("id=\"step-{id}\"")),
                "{}: no card for {id}",
                page.display()
            );
        }
        if !steps.is_empty() {
            let run = format!("runbook run {}", Path::new("runbooks").join(rel).display());
            assert!(html.contains(&run), "{}: no run-this box with `{run}`", page.display());
        }
        // Step blocks became cards; no raw step fence is left on the page.
        assert!(!html.contains("language-aws"), "{}", page.display());
    }

    // Cards carry what the issue asks for, on the Part 2 page.
    let p2 = read(&site.join("runbooks/part-2-identity-center.html"));
    assert!(p2.contains("rb-badge-person"), "manual steps have the person badge");
    assert!(p2.contains("rb-badge-check"), "read-only actions have the check badge");
    assert!(p2.contains("rb-badge-aws"), "mutating actions have the AWS badge");
    assert!(p2.contains("aws sso-admin create-permission-set"), "AWS CLI equivalent");
    assert!(p2.contains("Runs only if"), "the if= condition");
    assert!(p2.contains("class=\"rb-inputs\""), "the inputs table");
    assert!(p2.contains("rb-checklist"), "manual steps are checklist items");
    // Ordinary code blocks stay code blocks.
    let p1 = read(&site.join("runbooks/users-and-credentials.html"));
    assert!(p1.contains("<pre><code"), "code blocks kept");
    // The troubleshooting runbooks are linked from on-failure= where a runbook names them.
    let all: String = files(&site.join("runbooks"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "html"))
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .collect();
    assert!(all.contains("rb-on-failure"), "an on-failure= link is rendered");
}

#[test]
fn references_are_generated_from_the_code() {
    let (_t, site) = render_bundled();
    let plugins = read(&site.join("reference/plugins.html"));
    let registry = runbook_plugins::Registry::builtin();
    for a in registry.iter() {
        let info = a.info();
        assert!(plugins.contains(info.name), "plugin reference lacks {}", info.name);
        for p in &info.params {
            assert!(plugins.contains(&p.name), "{}: parameter {} missing", info.name, p.name);
        }
    }
    let cli = read(&site.join("reference/cli.html"));
    for sub in [
        "check",
        "list",
        "plan",
        "run",
        "rehearse",
        "status",
        "render",
        "completions",
    ] {
        assert!(cli.contains(&format!("runbook {sub}")), "CLI reference lacks {sub}");
    }
    assert!(cli.contains("--max-in-flight"), "flags come from clap");
}

#[test]
fn search_index_covers_runbooks_and_cards() {
    let (_t, site) = render_bundled();
    let index = files(&site)
        .into_iter()
        .find(|(p, _)| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("searchindex") && n.to_string_lossy().ends_with(".js"))
        })
        .expect("a search index");
    let text = String::from_utf8_lossy(&index.1);
    // Prose of a runbook, and text that only a card contains.
    assert!(text.contains("organization"), "runbook prose is indexed");
    assert!(text.contains("create-permission-set"), "card text is indexed");
}

#[test]
fn secrets_never_reach_the_site() {
    let secret_input = "SeKr1t-input-default-4471";
    let secret_answer = "SeKr1t-ask-default-9902";
    let rb = format!(
        "# Secret things\n\n```runbook\n[inputs.token]\nprompt = \"API token\"\nsecret = true\ndefault = \"{secret_input}\"\n```\n\n\
## Do it\n\n```manual id=paste\nconfirm = \"Pasted?\"\n[ask.otp]\nprompt = \"One-time code\"\nsecret = true\ndefault = \"{secret_answer}\"\n```\n\n\
```aws sts.whoami id=who\n```\n"
    );
    let t = Test::new()
        .file("book/book.toml", "[book]\ntitle = \"t\"\n")
        .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n")
        .file("runbooks/README.md", "# Index\n\n- [Secret](secret.md)\n")
        .file("runbooks/secret.md", rb)
        .args(["render"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{out:?}");
    let site = files(&t.path("site"));
    assert!(site.len() > 10, "a site was written");
    for (p, bytes) in site {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(secret_input), "{} shows a secret default", p.display());
        assert!(!text.contains(secret_answer), "{} shows a secret default", p.display());
    }
    let page = read(&t.path("site/runbooks/secret.html"));
    assert!(
        page.contains("secret, never shown"),
        "the table says a secret is hidden"
    );
}

#[test]
fn a_runbook_with_errors_is_not_rendered() {
    let t = Test::new()
        .file("book/book.toml", "[book]\ntitle = \"t\"\n")
        .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n")
        .file("runbooks/bad.md", "# Bad\n\n```aws sts.whoami\nbogus = 1\n```\n")
        .args(["render"]);
    let out = t.run();
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("bad.md:4:1: error: unknown parameter `bogus`"),
        "{}",
        out.stderr
    );
    assert!(!t.path("site/index.html").exists(), "nothing half-built");
}
