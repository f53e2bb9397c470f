//! `runbook check` on hostile input at 1x and 10x its size (issue 14): time must grow with the
//! input, not with its square. Each case prints both times and their ratio; linear is about 10,
//! quadratic about 100.
//!
//! Run: `cargo bench --bench hostile` (`SCALE=2` doubles the 1x sizes). Rhai cases stay under the
//! 64 KiB a Rhai step may hold (`analyzer::MAX_RHAI`): past it, check refuses the step unparsed.

use std::time::{Duration, Instant};

use runbook::source::Source;
use runbook_plugins::Registry;

/// A hostile runbook: its name, its 1x repetitions, and how to build it for `n` of them.
type Case = (&'static str, usize, fn(usize) -> String);

/// The hostile runbooks, each built for `n` repetitions of its attack.
fn cases() -> Vec<Case> {
    vec![
        ("x=y attributes on one info line", 20_000, |n| {
            format!("# T\n\n```aws sts.whoami {}\n```\n", vec!["x=y"; n].join(" "))
        }),
        ("unknown keys in one body", 20_000, |n| {
            let keys: String = (0..n).map(|i| format!("k{i} = 1\n")).collect();
            format!("# T\n\n```aws sts.whoami\n{keys}```\n")
        }),
        // Rhai's own compiler is quadratic in `let`s; a step holds at most 64 KiB (MAX_RHAI), so
        // the 10x case of these two is just under that limit.
        ("references in one valid Rhai step", 150, |n| {
            let refs: String = (0..n)
                .map(|i| format!("let v{i} = inputs.user + steps.ask.name;\n"))
                .collect();
            format!(
                "# T\n\n```runbook\n[inputs.user]\n```\n\n```manual id=ask\n[ask.name]\nprompt = \"?\"\n```\n\n```rhai\n{refs}#{{}}\n```\n"
            )
        }),
        ("unknown references in one Rhai step", 150, |n| {
            let refs: String = (0..n).map(|i| format!("let v{i} = inputs.nope{i};\n")).collect();
            format!("# T\n\n```rhai\n{refs}#{{}}\n```\n")
        }),
        ("references in an array (no lets)", 200, |n| {
            let refs: String = (0..n).map(|_| "inputs.user, steps.ask.name,\n").collect();
            format!(
                "# T\n\n```runbook\n[inputs.user]\n```\n\n```manual id=ask\n[ask.name]\nprompt = \"?\"\n```\n\n```rhai\nlet a = [\n{refs}];\n#{{}}\n```\n"
            )
        }),
        ("Rhai steps over the 64 KiB limit", 4_000, |n| {
            let refs: String = (0..n).map(|i| format!("let v{i} = inputs.user;\n")).collect();
            format!("# T\n\n```rhai\n{refs}#{{}}\n```\n")
        }),
        ("steps in one section", 5_000, |n| {
            let steps: String = (0..n).map(|_| "```manual\n```\n\n").collect();
            format!("# T\n\n## One\n\n{steps}")
        }),
        ("sections with a step each", 5_000, |n| {
            (0..n).map(|i| format!("## S{i}\n\n```manual\n```\n\n")).collect()
        }),
        ("on-failure=#anchor on every step", 5_000, |n| {
            (0..n)
                .map(|i| format!("```manual id=s{i} on-failure=#s0\n```\n\n"))
                .collect()
        }),
        ("shell fences", 10_000, |n| "```sh id=x\nrm -rf /\n```\n\n".repeat(n)),
        ("unclosed steps[\" in a Rhai step", 400, |n| {
            format!("# T\n\n```rhai\n{}\n#{{}}\n```\n", "// steps[\"x\" \n".repeat(n))
        }),
    ]
}

/// Time of one `check`, averaged over enough repetitions to fill 20 ms.
fn time_check(text: &str, registry: &Registry) -> Duration {
    let src = Source::new("hostile.md", text);
    let start = Instant::now();
    let mut runs = 0u32;
    while runs == 0 || start.elapsed() < Duration::from_millis(20) {
        let (rb, diags) = runbook::analyzer::check(&src, registry);
        std::hint::black_box((rb.steps.len(), diags.len()));
        runs += 1;
    }
    start.elapsed() / runs
}

/// The best of a few runs (the least disturbed by the rest of the machine).
fn best(text: &str, registry: &Registry) -> Duration {
    (0..3).map(|_| time_check(text, registry)).min().unwrap_or_default()
}

fn main() {
    let registry = Registry::builtin();
    let scale: usize = std::env::var("SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    println!(
        "{:<38} {:>9} {:>10} {:>10} {:>7}",
        "hostile input (1x size)", "1x bytes", "1x", "10x", "ratio"
    );
    let mut worst: f64 = 0.0;
    for (name, n, make) in cases() {
        let small = make(n * scale);
        let large = make(n * scale * 10);
        let _ = time_check(&small, &registry); // warm up
        let (a, b) = (best(&small, &registry), best(&large, &registry));
        let ratio = b.as_secs_f64() / a.as_secs_f64().max(1e-9);
        worst = worst.max(ratio);
        println!(
            "{name:<38} {:>9} {:>8.1}ms {:>8.1}ms {ratio:>7.1}",
            small.len(),
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        );
    }
    println!("worst ratio {worst:.1} (linear: about 10; quadratic: about 100)");
}
