//! The published site from untrusted files (issue 29): no script from content, no markup in the
//! search index, commands that paste as written, nothing sensitive published. Every attack runs
//! through the binary; the browser half is `tests/browser.rs`, the site's bounds `site_bounds.rs`.

use crate::common::site::{files, project, read};

const HOSTILE: &str = "# R

<script>window.__pwned = 1</script>

Text <img src=x onerror=\"alert(1)\"> and [click](javascript:alert(2)) and <javascript:alert(3)> ![i](data:image/png,x) <kbd>Ctrl</kbd>

<a href=\"jav&#x09;ascript:alert(4)\">entity</a>

## &lt;img src=x onerror=alert(5)&gt; zebracrumb

## Title {onclick=alert(6)}

```manual id=a
confirm = \"ok?\"
```
";

#[test]
fn raw_html_and_unsafe_links_never_reach_the_site_and_check_says_where() {
    let t = project(HOSTILE);
    let out = t.run_args(&["check".into(), "runbooks".into()]);
    out.code_is(0);
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains(": warning: ")).collect();
    let at: Vec<&str> = warnings.iter().filter_map(|l| l.split(": warning: ").next()).collect();
    assert_eq!(
        at,
        [
            "runbooks/r.md:3:1",
            "runbooks/r.md:5:6",
            "runbooks/r.md:5:41",
            "runbooks/r.md:5:74",
            "runbooks/r.md:5:96",
            "runbooks/r.md:7:1",
            "runbooks/r.md:11:10",
        ],
        "{}",
        out.stderr
    );
    assert!(
        warnings[0].ends_with("the site changes this: raw HTML `<script>` is not published"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].ends_with("the `onerror` attribute of `<img>` is not published"),
        "{warnings:?}"
    );
    assert!(
        warnings[2].contains("the link to `javascript:alert(2)`"),
        "{warnings:?}"
    );
    let out = t.run_args(&["render".into()]);
    out.code_is(0);
    let page = read(&t.path("site/runbooks/r.html"));
    let main = page
        .split("<main>")
        .nth(1)
        .and_then(|m| m.split("</main>").next())
        .unwrap_or("");
    // Attributes as mdBook writes them (quoted); the escaped heading text holds `onerror=` too.
    for bad in [
        "<script",
        "onerror=\"",
        "onclick=\"",
        "href=\"javascript:",
        "src=\"data:",
        "href=\"jav",
    ] {
        assert!(!main.contains(bad), "{bad} reached the page: {main}");
    }
    assert!(
        main.contains("<kbd>Ctrl</kbd>") && main.contains("<img src=\"x\">"),
        "safe HTML is kept: {main}"
    );
    assert!(
        main.contains(">click<") || main.contains("click and"),
        "an unsafe link shows its text: {main}"
    );
}

#[test]
fn every_page_has_a_policy_that_allows_no_inline_script_but_its_own() {
    let t = project(HOSTILE).file(
        "book/book.toml",
        r#"[book]
title = "t"

[output.html.redirect]
"/old.html" = "runbooks/r.html"
"#,
    );
    t.run_args(&["render".into()]).code_is(0);
    let mut pages = 0;
    for (p, b) in files(&t.path("site")) {
        if p.extension().is_none_or(|e| e != "html") {
            continue;
        }
        let text = String::from_utf8_lossy(&b);
        let head = text.split("</head>").next().unwrap_or("");
        let policy = head
            .split("http-equiv=\"Content-Security-Policy\" content=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{} has no Content-Security-Policy", p.display()));
        let script_src = policy
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap_or_else(|| panic!("{}: {policy}", p.display()));
        assert!(!script_src.contains("unsafe"), "{}: {script_src}", p.display());
        for source in script_src.split_whitespace().skip(1) {
            assert!(
                source == "'self'" || source.starts_with("'sha256-"),
                "{}: {script_src}",
                p.display()
            );
        }
        pages += 1;
    }
    assert!(pages >= 5, "{pages} pages (the redirect page too)");
}

#[test]
fn the_search_index_holds_text_never_markup() {
    let t = project(HOSTILE);
    t.run_args(&["render".into()]).code_is(0);
    let index = files(&t.path("site"))
        .into_iter()
        .find(|(p, _)| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("searchindex"))
        })
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .expect("a search index");
    assert!(index.contains("zebracrumb"), "the heading is indexed");
    // The breadcrumbs mdBook's searcher inserts as HTML hold the heading escaped.
    let crumbs: Vec<&str> = index
        .split("\"breadcrumbs\":\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap_or(""))
        .collect();
    assert!(!crumbs.is_empty());
    for c in &crumbs {
        assert!(!c.contains('<'), "markup in a breadcrumb: {c}");
    }
    assert!(
        crumbs.iter().any(|c| c.contains("&lt;img src=x onerror=alert(5)&gt;")),
        "{crumbs:?}"
    );
}

/// The text of `html` with the entities mdBook and the cards write decoded.
fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#10;", "\n")
        .replace("&amp;", "&")
}

#[test]
fn cli_commands_on_the_cards_paste_into_a_shell_as_written() {
    let rb = r#"# Users

```aws identitystore.ensure-user id=user
identity_store_id = "d-1234567890"
user_name = "pat.obrien"
display_name = "Pat O'Brien"
given_name = "Pat"
family_name = "O'Brien $(touch PWNED) `touch PWNED2` \"q\""
email = "pat@example.com"
```
"#;
    let t = project(rb);
    t.run_args(&["render".into()]).code_is(0);
    let page = read(&t.path("site/runbooks/r.html"));
    let code = page
        .split("<code class=\"language-bash\">")
        .filter_map(|r| r.split("</code>").next())
        .map(unescape)
        .find(|c| c.contains("create-user"))
        .unwrap_or_else(|| panic!("no CLI block: {page}"));
    let line = code
        .lines()
        .find(|l| l.contains("create-user"))
        .expect("create-user line");
    // Pasted into a real shell, with `aws` standing for a program that prints its arguments.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            r#"aws() {{ printf '%s\n' "$@"; }}
{line}"#
        ))
        .current_dir(t.dir.path())
        .output()
        .expect("sh");
    assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    let args: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    let after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag} in {args:?}"));
        args[i + 1].clone()
    };
    assert_eq!(after("--display-name"), "Pat O'Brien", "{line}");
    let name: serde_json::Value = serde_json::from_str(&after("--name")).expect("JSON");
    assert_eq!(
        name["FamilyName"], "O'Brien $(touch PWNED) `touch PWNED2` \"q\"",
        "{line}"
    );
    assert!(
        !t.path("PWNED").exists() && !t.path("PWNED2").exists(),
        "pasting ran a command"
    );
}

/// A pull request's files in book/src that a browser would run: a script named as mdBook's own
/// (every page loads it, and the policy allows the site's scripts), a raw HTML page (the policy
/// was computed over its own inline script), an SVG. None reaches the site; images and styles do.
#[test]
fn no_file_of_the_book_is_published_as_script() {
    let t = project(
        r#"# R

```rhai id=x
#{}
```
"#,
    );
    let t = t
        .file("book/src/p.html", "<script>document.title=\"INLINE-PWNED\"</script>")
        .file(
            "book/src/x.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
        )
        .file("book/src/logo.png", "not really a png");
    // The name of mdBook's own script, as the site has it.
    t.run_args(&["render".into()]).code_is(0);
    let own: Vec<String> = std::fs::read_dir(t.path("site"))
        .expect("site")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".js"))
        .collect();
    assert!(!own.is_empty(), "mdBook writes its scripts");
    let mut t = t;
    for name in &own {
        t = t.file(&format!("book/src/{name}"), "document.title=\"PWNED-BY-PR\";");
    }
    t.run_args(&["render".into()]).code_is(0);
    for (path, bytes) in files(&t.path("site")) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("PWNED") && !text.contains("alert(1)"),
            "{} carries the book's script",
            path.display()
        );
    }
    assert!(!t.path("site/p.html").exists() && !t.path("site/x.svg").exists());
    assert!(t.path("site/logo.png").exists(), "images are published");
}

/// A value the service model marks sensitive, written literally in a call by name (a
/// parameter's value, a login password), is not published: the card shows the mask, and
/// neither the pages nor the search index hold it.
#[test]
fn literal_sensitive_values_of_a_call_are_not_published() {
    let t = project(
        r#"# R

```aws ssm:PutParameter id=p
Name = "/app/db"
Value = "LITERALSENSITIVEVALUE"
Type = "String"
```

```aws iam:CreateLoginProfile id=l
UserName = "ops"
Password = 'LOGINPROFILEPASSWORD'
```
"#,
    );
    t.run_args(&["render".into()]).code_is(0);
    let mut seen = false;
    for (path, bytes) in files(&t.path("site")) {
        let text = String::from_utf8_lossy(&bytes);
        seen |= text.contains("/app/db");
        assert!(
            !text.contains("LITERALSENSITIVEVALUE") && !text.contains("LOGINPROFILEPASSWORD"),
            "{}",
            path.display()
        );
    }
    assert!(seen, "the rest of the request is published");
}
