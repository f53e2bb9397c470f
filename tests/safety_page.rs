//! book/src/safety.md names the test behind each promise; every name it gives must exist, so the
//! page cannot point at a test that was renamed or removed.

mod common;

use common::repo;

fn sources(dir: &std::path::Path, out: &mut String) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push_str(&std::fs::read_to_string(&p).expect("read"));
        }
    }
}

#[test]
fn every_test_the_safety_page_names_exists() {
    let page = std::fs::read_to_string(repo().join("book/src/safety.md")).expect("safety page");
    let mut code = String::new();
    for d in ["tests", "runner/src", "plugins/src", "fuzz/fuzz_targets"] {
        sources(&repo().join(d), &mut code);
    }
    let mut names = 0;
    let mut paths = 0;
    for token in page.split('`').skip(1).step_by(2) {
        if token.contains('/') && !token.contains(' ') {
            assert!(
                repo().join(token).exists(),
                "safety.md names `{token}`, which does not exist"
            );
            paths += 1;
        } else if token.matches('_').count() >= 2
            && token
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        {
            assert!(
                code.contains(&format!("fn {token}(")),
                "safety.md names test `{token}`, which does not exist"
            );
            names += 1;
        }
    }
    assert!(names >= 15 && paths >= 10, "{names} tests and {paths} paths named");
}
