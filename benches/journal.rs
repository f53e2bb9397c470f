//! The journal's cost per fan-out item at several N, in one process: each finished item is one
//! fsynced transcript line (no state-file rewrite), so the cost per item must not grow with N.
//! Also times reading the finished items back, as a resume does.
//!
//! Then the journal's work for one item of a fan-out of a call by name that changes AWS (intent,
//! the look for its own unsettled call, answer, finished item) at N = 500, 2,000 and 8,000: a
//! resume reads the transcript once, and asking what is unsettled must not read it again (it did,
//! once per item: 61 s of CPU at 4,000 items).
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
    calls_by_name(&base);
}

/// Per item: what a fan-out item of a mutating call by name asks of the journal.
fn calls_by_name(base: &std::path::Path) {
    println!();
    println!("{:>6} {:>22}", "N", "call-by-name µs/item");
    let mut first = None;
    for n in [500usize, 2000, 8000] {
        let dir = tempfile::tempdir_in(base).expect("tempdir");
        let mut j = Journal::open(dir.path(), "bench.md", false, Redactor::default()).expect("open");
        let t = Instant::now();
        for i in 0..n {
            let item = format!("user-{i:05}");
            let target = format!("{{\"UserName\":\"{item}\"}}");
            j.record(Entry::Intent {
                step: "tag".into(),
                item_key: Some(item.clone()),
                call: "iam:TagUser".into(),
                target: target.clone(),
            })
            .expect("record");
            j.record(Entry::Requested {
                step: "tag".into(),
                item_key: Some(item.clone()),
                call: "iam:TagUser".into(),
                target,
                request_id: None,
            })
            .expect("record");
            let open = j.unsettled("tag").expect("unsettled");
            assert!(open.iter().any(|u| u.item_key.as_deref() == Some(&item)));
            j.record(Entry::ItemFinished {
                step: "tag".into(),
                hash: "h".into(),
                item_key: item,
                outputs: json!({}),
            })
            .expect("record");
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{n:>6} {per:>22.1}");
        let base = *first.get_or_insert(per);
        if n == 8000 {
            println!("per-item cost at N=8000 / at N=500: {:.2} (1.0 = linear)", per / base);
        }
    }
}
