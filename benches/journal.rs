//! The journal's cost per fan-out item at several N, in one process: each finished item is one
//! fsynced transcript line (no state-file rewrite), so the cost per item must not grow with N.
//! Also times reading the finished items back, as a resume does.
//!
//! Run: `cargo bench --bench journal`. The journal is written under `RUNBOOK_BENCH_DIR` (default:
//! `target/bench-journal`, on the disk of the build, not a tmpfs where fsync costs nothing).

use std::time::Instant;

use runbook::journal::{Entry, Journal};
use runbook::redact::Redactor;
use serde_json::json;

fn main() {
    let base = std::env::var_os("RUNBOOK_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-journal"));
    std::fs::create_dir_all(&base).expect("bench dir");
    println!(
        "journal under {} ({} cores)",
        base.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>6} {:>14} {:>14} {:>16}",
        "N", "record µs/item", "resume µs/item", "transcript B/item"
    );
    let mut first = None;
    for n in [200usize, 1000, 5000] {
        let dir = tempfile::tempdir_in(&base).expect("tempdir");
        let mut j = Journal::open(dir.path(), "bench.md", false, Redactor::default()).expect("open");
        let t = Instant::now();
        for i in 0..n {
            j.record(Entry::ItemFinished {
                step: "accounts".into(),
                hash: "h".into(),
                item_key: format!("bench-a{i:05}-prod"),
                outputs: json!({ "account_id": format!("{:012}", i), "created": true, "create_request_id": format!("car-{i:032}") }),
            })
            .expect("record");
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let t = Instant::now();
        let done = j.finished_items("accounts").expect("read");
        let resume = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        assert_eq!(done.len(), n);
        let bytes = std::fs::metadata(dir.path().join("transcript.jsonl"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("{n:>6} {per:>14.1} {resume:>14.2} {:>16}", bytes / n as u64);
        let base = *first.get_or_insert(per);
        if n == 5000 {
            println!(
                "per-item record cost at N=5000 / at N=200: {:.2} (1.0 = linear journal)",
                per / base
            );
        }
    }
}
