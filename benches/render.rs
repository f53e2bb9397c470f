//! `runbook render` next to plain mdBook, in the same process. Target (issues 6, 17): render at
//! most 1.1x plain mdBook building the same pages.
//!
//! Two peers, each given its staging for free (only mdBook's own build is timed):
//! - the same staged book without our preprocessor: the runbooks as raw Markdown, so smaller
//!   pages than the site's (mdBook renders and indexes the cards' text only in `render`);
//! - the pages `render` builds: the same book with the cards already in its Markdown, built by
//!   plain mdBook. The difference to it is what `render` adds: staging, cards, check, `--out`.
//!
//! Run: `cargo bench --bench render` (`ROUNDS=N`, default 15). The builds alternate so that disk
//! cache and CPU frequency treat them alike; each figure is the median of its rounds, and the
//! spread is the interquartile range of the ratios. Every build creates some 60 files: on a file
//! system that is slow to create files (ext4 without a journal scans the inodes deleted in the
//! last seconds), `TMPDIR=/dev/shm` separates the work from the file system.

use std::path::Path;
use std::time::Instant;

use runbook::render;

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4])
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (book, runbooks) = (root.join("book"), root.join("runbooks"));
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let out = tempfile::tempdir().expect("tempdir");
    let (mut ours, mut raw, mut same, mut staging) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // One warm-up build of each, not counted.
    for round in 0..=rounds {
        let t = Instant::now();
        let staged = render::render(&book, &runbooks, &out.path().join("ours")).expect("render");
        let a = t.elapsed().as_secs_f64();
        drop(staged);
        let t = Instant::now();
        let staged = render::stage(&book, &runbooks).expect("stage");
        let s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        render::build(&staged, &out.path().join("raw"), false).expect("raw");
        let b = t.elapsed().as_secs_f64();
        drop(staged);
        let mut staged = render::stage(&book, &runbooks).expect("stage");
        staged.precard().expect("cards");
        let t = Instant::now();
        render::build(&staged, &out.path().join("same"), false).expect("same pages");
        let c = t.elapsed().as_secs_f64();
        if round > 0 {
            ours.push(a);
            raw.push(b);
            same.push(c);
            staging.push(s);
        }
    }
    let ratios = |peer: &[f64]| quartiles(ours.iter().zip(peer).map(|(o, p)| o / p).collect());
    let (r_raw, r_same) = (ratios(&raw), ratios(&same));
    let ms = |v: &[f64]| quartiles(v.to_vec()).1 * 1e3;
    println!("rounds {rounds}");
    println!("runbook render (stage, cards, build, check)   {:8.1} ms", ms(&ours));
    println!("  staging alone (copy, parse, references)      {:8.1} ms", ms(&staging));
    println!("plain mdBook, the pages render builds          {:8.1} ms", ms(&same));
    println!("plain mdBook, runbooks as raw Markdown         {:8.1} ms", ms(&raw));
    // The ratio of the medians, and the spread of the rounds' own ratios.
    println!(
        "ratio render/plain (same pages)               {:8.2}   (rounds' IQR {:.2}-{:.2}; target <= 1.10)",
        ms(&ours) / ms(&same),
        r_same.0,
        r_same.2
    );
    println!(
        "ratio render/plain (raw Markdown)             {:8.2}   (rounds' IQR {:.2}-{:.2})",
        ms(&ours) / ms(&raw),
        r_raw.0,
        r_raw.2
    );
}
