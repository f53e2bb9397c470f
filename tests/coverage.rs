//! Every section of the AWS Setup guide is covered by some runbook: runbooks/coverage.toml maps
//! each guide heading to a runbook section, and this test holds the mapping to the runbooks (and
//! to the guide's own table of contents when the guide is at hand).

mod common;

use std::collections::BTreeMap;

use common::{Test, repo};

#[derive(serde::Deserialize)]
struct Coverage {
    sections: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    guide: String,
    runbook: String,
    heading: String,
}

#[test]
fn every_guide_section_maps_to_a_runbook_section_that_covers_it() {
    let text = std::fs::read_to_string(repo().join("runbooks/coverage.toml")).expect("coverage.toml");
    let cov: Coverage = toml::from_str(&text).expect("coverage.toml parses");
    let out = Test::new()
        .args(["list", "--json", &repo().join("runbooks").display().to_string()])
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    let books: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for b in books.as_array().expect("array") {
        let path = b["path"].as_str().unwrap_or("");
        let rel = path.split("runbooks/").last().unwrap_or(path).to_string();
        let list = b["sections"]
            .as_array()
            .expect("sections")
            .iter()
            .map(|s| {
                (
                    s["title"].as_str().unwrap_or("").to_string(),
                    s["prose"].as_str().unwrap_or("").to_lowercase(),
                )
            })
            .collect();
        sections.insert(rel, list);
    }
    for e in &cov.sections {
        let secs = sections
            .get(&e.runbook)
            .unwrap_or_else(|| panic!("{}: no runbook {}", e.guide, e.runbook));
        let (title, prose) = secs
            .iter()
            .find(|(t, _)| t == &e.heading)
            .unwrap_or_else(|| panic!("{}: {} has no heading `{}`", e.guide, e.runbook, e.heading));
        let g = e.guide.to_lowercase();
        assert!(
            title.to_lowercase() == g || prose.contains(&g),
            "{}: section `{}` of {} does not mention it",
            e.guide,
            e.heading,
            e.runbook
        );
    }
    // With the guide at hand, nothing in its table of contents may be left out.
    let guide = repo().join("../shared/seeds/000_826e65cc107ae59b.txt");
    if let Ok(g) = std::fs::read_to_string(&guide) {
        let toc: Vec<&str> = g
            .lines()
            .skip_while(|l| !l.starts_with("Table of Contents"))
            .skip(1)
            .take_while(|l| !l.starts_with("Overview") || l.contains('\t'))
            .filter_map(|l| l.split_once('\t').map(|(t, _)| t.trim()))
            .filter(|t| !t.starts_with('.'))
            .collect();
        assert!(toc.len() > 30, "read the guide's table of contents");
        for t in toc {
            assert!(
                cov.sections.iter().any(|e| e.guide == t),
                "guide section `{t}` is not mapped"
            );
        }
    } else {
        eprintln!(
            "note: {} not found; checked the mapping against the runbooks only",
            guide.display()
        );
    }
}
