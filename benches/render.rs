//! `runbook render` next to plain mdBook building the same staged book (same pages, same
//! runbooks, same generated references) without our preprocessor, in the same process.
//! Target (issue 6): render at most 1.1x plain mdBook.
//!
//! Run: `cargo bench --bench render`. The two builds alternate so that disk cache and CPU
//! frequency treat them alike; each figure is the median of its rounds.

use std::path::Path;
use std::time::Instant;

use runbook::render;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let out = tempfile::tempdir().expect("tempdir");
    let (mut ours, mut plain, mut staging) = (Vec::new(), Vec::new(), Vec::new());
    // One warm-up build of each, not counted.
    for round in 0..=rounds {
        let t = Instant::now();
        let staged =
            render::render(&root.join("book"), &root.join("runbooks"), &out.path().join("ours")).expect("render");
        let a = t.elapsed().as_secs_f64();
        drop(staged);
        let t = Instant::now();
        let staged = render::stage(&root.join("book"), &root.join("runbooks")).expect("stage");
        let s = t.elapsed().as_secs_f64();
        // The peer gets the staging for free: only mdBook's own build is timed.
        let t = Instant::now();
        render::build(&staged, &out.path().join("plain"), false).expect("plain");
        let b = t.elapsed().as_secs_f64();
        if round > 0 {
            ours.push(a);
            plain.push(b);
            staging.push(s);
        }
    }
    let (o, p) = (median(ours), median(plain));
    println!("runbook render (stage, cards, build, check) {:8.1} ms", o * 1e3);
    println!(
        "  staging alone (copy, parse, references)    {:8.1} ms",
        median(staging) * 1e3
    );
    println!("plain mdBook build of the same book         {:8.1} ms", p * 1e3);
    println!(
        "ratio render/plain                          {:8.2}   (target <= 1.10)",
        o / p
    );
}
