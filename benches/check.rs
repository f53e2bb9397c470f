//! `runbook check` throughput next to raw pulldown-cmark parsing of the same input, in the same
//! process. Target (issue 2): check at least half as fast as the raw parse.
//!
//! Run: `cargo bench --bench check`. Input: every bundled runbook and book page, read from disk.

use std::time::{Duration, Instant};

use pulldown_cmark::Parser;
use runbook::source::Source;
use runbook_plugins::Registry;

fn files() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["runbooks", "runbooks/troubleshooting", "book/src"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "md") {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    out.push((p.display().to_string(), t));
                }
            }
        }
    }
    out
}

/// Runs `f` over the corpus until at least `min` has passed; returns MB/s.
fn throughput(corpus: &[(String, String)], min: Duration, mut f: impl FnMut(&str, &str) -> usize) -> f64 {
    let bytes: usize = corpus.iter().map(|(_, t)| t.len()).sum();
    let mut rounds = 0usize;
    let mut sink = 0usize;
    let start = Instant::now();
    while start.elapsed() < min {
        for (p, t) in corpus {
            sink = sink.wrapping_add(f(p, t));
        }
        rounds += 1;
    }
    std::hint::black_box(sink);
    (bytes * rounds) as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn main() {
    let corpus = files();
    let bytes: usize = corpus.iter().map(|(_, t)| t.len()).sum();
    let registry = Registry::builtin();
    let min = Duration::from_secs(1);
    let raw_parse = |_: &str, t: &str| {
        Parser::new_ext(t, runbook::parser::markdown_options())
            .into_offset_iter()
            .count()
    };
    let full_check = |p: &str, t: &str| {
        let src = Source::new(p, t);
        let (rb, diags) = runbook::analyzer::check(&src, &registry);
        rb.steps.len() + diags.len()
    };
    let parse_model = |p: &str, t: &str| runbook::parser::parse(&Source::new(p, t)).0.steps.len();
    // Warm every path (caches, allocator, page faults) before any is measured; then measure them
    // in turns, three rounds each, and keep each one's best, so drift on a shared machine does not
    // favour whichever ran first.
    let warm = Duration::from_millis(300);
    let _ = throughput(&corpus, warm, raw_parse);
    let _ = throughput(&corpus, warm, full_check);
    let _ = throughput(&corpus, warm, parse_model);
    let (mut raw, mut check, mut parse_only) = (0f64, 0f64, 0f64);
    for _ in 0..3 {
        raw = raw.max(throughput(&corpus, min, raw_parse));
        check = check.max(throughput(&corpus, min, full_check));
        parse_only = parse_only.max(throughput(&corpus, min, parse_model));
    }
    println!("cores: {}", std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("corpus: {} files, {} bytes", corpus.len(), bytes);
    println!("raw pulldown-cmark parse   {raw:>8.1} MB/s");
    println!(
        "runbook parse (model only) {parse_only:>8.1} MB/s   ratio to raw {:.2}",
        parse_only / raw
    );
    println!(
        "runbook check (full)       {check:>8.1} MB/s   ratio to raw {:.2}   target >= 0.50",
        check / raw
    );
}
