//! book/src/safety.md names the test behind each promise; every name it gives must exist, so the
//! page cannot point at a test that was renamed or removed.

use crate::common::repo;

/// Whether `code` holds `fn name(` marked `#[test]` (other attributes may stand between).
fn is_test_in(code: &str, name: &str) -> bool {
    let lines: Vec<&str> = code.lines().collect();
    lines.iter().enumerate().any(|(i, l)| {
        let t = l.trim_start();
        (t.starts_with(&format!("fn {name}(")) || t.starts_with(&format!("async fn {name}(")))
            && lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim())
                .take_while(|l| l.starts_with("#[") || l.starts_with("///") || l.starts_with("//"))
                .any(|l| l == "#[test]" || l.starts_with("#[tokio::test"))
    })
}

#[test]
fn every_test_the_safety_page_names_is_a_test_in_the_file_its_row_names() {
    let page = std::fs::read_to_string(repo().join("book/src/safety.md")).expect("safety page");
    let (mut names, mut paths) = (0, 0);
    for row in page.lines().filter(|l| l.starts_with('|') && !l.starts_with("|---")) {
        // Every cell after the first may name what proves a promise: a file, then the tests in
        // it (the promise × path table names tests in each of its cells).
        let cells: Vec<&str> = row.trim_matches('|').split('|').skip(1).collect();
        for cell in cells {
            let mut file: Option<String> = None;
            for token in cell.split('`').skip(1).step_by(2) {
                if token.contains('/') && !token.contains(' ') {
                    let path = repo().join(token);
                    assert!(path.exists(), "safety.md names `{token}`, which does not exist");
                    file = path.is_file().then(|| std::fs::read_to_string(&path).expect("read"));
                    paths += 1;
                } else if token.matches('_').count() >= 2
                    && token
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                {
                    let code = file
                        .as_deref()
                        .unwrap_or_else(|| panic!("safety.md names test `{token}` before naming its file: {row}"));
                    assert!(
                        is_test_in(code, token),
                        "safety.md names `{token}`, which is not a #[test] in the file its row names: {row}"
                    );
                    names += 1;
                }
            }
        }
    }
    assert!(names >= 25 && paths >= 15, "{names} tests and {paths} paths named");
}

#[test]
fn the_test_finder_tells_a_test_from_a_function() {
    let code = r#"#[test]
#[ignore]
fn real_one_here() {}

fn helper_not_test() {}
"#;
    assert!(is_test_in(code, "real_one_here"));
    assert!(!is_test_in(code, "helper_not_test"));
    assert!(!is_test_in(code, "missing_name_here"));
}
