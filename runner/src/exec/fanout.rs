//! A step run once per item (`for-each=`), at most `--max-in-flight` at a time under an adaptive
//! limit. Each finished item is journaled as it finishes with its own identity, so a re-run
//! retries only what failed, never finished, or now resolves differently.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use runbook_plugins::Fanout;
use serde_json::{Value, json};

use super::identity::{Item, Prepared};
use super::{Outcome, Secrecy, Shared, StepError};
use crate::eval::Env;
use crate::journal::Entry;
use crate::model::Step;

struct FanoutSummary<'a> {
    step: &'a str,
    total: usize,
    already: usize,
    done_now: usize,
    failed: usize,
    throttled: u64,
    limit: usize,
    lowest: usize,
    now: usize,
    halved: u32,
    seconds: f64,
}

impl FanoutSummary<'_> {
    fn table(&self) -> String {
        let concurrency = if self.halved == 0 {
            format!("{} (never throttled down)", self.limit)
        } else {
            format!(
                "{} -> lowest {} -> {} (halved {} time{})",
                self.limit,
                self.lowest,
                self.now,
                self.halved,
                if self.halved == 1 { "" } else { "s" }
            )
        };
        let rows = [
            ("items", self.total.to_string()),
            ("done before this run", self.already.to_string()),
            ("done now", self.done_now.to_string()),
            ("failed", self.failed.to_string()),
            (
                "waiting",
                (self.total - self.already - self.done_now - self.failed).to_string(),
            ),
            ("throttled responses", self.throttled.to_string()),
            ("concurrency", concurrency),
            ("time", format!("{:.1}s", self.seconds)),
        ];
        let mut o = format!("  {} summary\n", self.step);
        for (k, v) in rows {
            o.push_str(&format!("    {k:<22} {v}\n"));
        }
        o
    }

    /// The table when it adds something (failures, throttling, more items than a screen);
    /// otherwise one line.
    fn worth_a_table(&self) -> bool {
        self.failed > 0 || self.throttled > 0 || self.halved > 0 || self.total > 20
    }

    fn line(&self) -> String {
        format!(
            "  {}: {} item{} done in {:.1}s{}",
            self.step,
            self.total,
            if self.total == 1 { "" } else { "s" },
            self.seconds,
            if self.already > 0 {
                format!(" ({} before this run)", self.already)
            } else {
                String::new()
            }
        )
    }

    fn json(&self) -> Value {
        json!({
            "step": self.step, "items": self.total, "already": self.already, "done": self.done_now,
            "failed": self.failed, "throttled": self.throttled, "max_in_flight": self.limit,
            "lowest_in_flight": self.lowest, "halved": self.halved, "seconds": self.seconds,
        })
    }
}

pub(super) async fn fan_out(
    shared: &Arc<Shared>,
    step: &Step,
    env: &Env,
    prepared: &Prepared,
    items: &[Item],
) -> Result<Outcome, StepError> {
    // A new run re-checks every item of a step it looks at again.
    let done_before = if shared.rechecks(step) {
        Default::default()
    } else {
        shared
            .journal
            .lock()
            .map_err(|_| StepError::Journal("journal lock poisoned".into()))?
            .finished_items(&step.id)?
    };
    let bar = shared.ui.fanout(&step.id, items.len() as u64);
    let mut results: Vec<Option<Value>> = vec![None; items.len()];
    let mut todo = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match done_before.get(&item.key) {
            // Done before, and it would do the same now.
            Some((hash, out))
                if super::identity::Digester::compare(hash, &item.hash, item.legacy_hash.as_deref())
                    == super::identity::Sameness::Same =>
            {
                results[i] = Some(out.clone());
                bar.item_finished(true, &shared.ui);
            }
            _ => todo.push(i),
        }
    }
    let already = items.len() - todo.len();
    if already > 0 {
        shared.ui.note(&format!(
            "{}: {already} of {} items were already done",
            step.id,
            items.len()
        ));
    }
    let limit = shared.opts.max_in_flight.max(1);
    let memo = Some(Arc::new(runbook_plugins::Memo::default()));
    if super::call::sends_again(step) {
        // Items that send one change by name: only the first in the list sends it.
        let firsts = super::call::first_items(shared, step, env, items);
        shared
            .context_until(step, None, memo.clone(), None)
            .memo(super::call::FIRST_ITEMS, || async { Ok(firsts) })
            .await?;
    }
    // AIMD under the --max-in-flight ceiling: throttles seen by any client halve it, finished
    // items grow it back.
    let pressure = shared.ctx.pressure().clone();
    let fanout = Fanout::new(&pressure, limit);
    let throttled_before = pressure.throttled();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut first_at = None;
    let mut secret = false;
    // Bytes of item outputs kept so far: each item's are bounded, their sum is too.
    let mut kept: usize = 0;
    let mut stream = fanout.run(todo, |i| {
        let memo = memo.clone();
        let item = &items[i];
        async move {
            let r = super::step::run_once(
                shared,
                step,
                env,
                Some((&item.value, item.key.clone())),
                item.params.clone(),
                memo,
                prepared.deadline,
            )
            .await;
            (i, r)
        }
    });
    let outcome = async {
        while let Some((i, r)) = stream.next().await {
            let item = &items[i];
            match r {
                Ok(out) => {
                    kept = kept.saturating_add(out.outputs.to_string().len());
                    if kept > OUTPUTS_CAP {
                        let message = format!(
                            "its outputs would take the fan-out's past {} MiB (not kept): return less from each item",
                            OUTPUTS_CAP >> 20
                        );
                        shared.record(Entry::ItemFailed {
                            step: step.id.clone(),
                            item_key: item.key.clone(),
                            error: message.clone(),
                        })?;
                        bar.item_finished(false, &shared.ui);
                        failures.push(format!("{}: {message}", item.key));
                        continue;
                    }
                    // Outputs the redactor would mask are secret too: never read back.
                    let stored = out.stored();
                    let is_secret =
                        out.secrecy != Secrecy::None || env.secret_item || shared.redactor.value(&stored) != stored;
                    secret |= is_secret;
                    shared.record(Entry::ItemFinished {
                        step: step.id.clone(),
                        // A secret item's outputs are stored masked: its empty identity never
                        // matches, so it runs again rather than hand on masks.
                        hash: if is_secret { String::new() } else { item.hash.clone() },
                        item_key: item.key.clone(),
                        outputs: stored,
                    })?;
                    bar.item_finished(true, &shared.ui);
                    results[i] = Some(out.outputs);
                }
                Err(StepError::Failed { message, at, .. }) => {
                    first_at = first_at.or(at);
                    shared.record(Entry::ItemFailed {
                        step: step.id.clone(),
                        item_key: item.key.clone(),
                        error: message.clone(),
                    })?;
                    bar.item_finished(false, &shared.ui);
                    failures.push(format!("{}: {message}", item.key));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
    .await;
    drop(stream);
    outcome?;
    let (ok, failed) = bar.finish();
    let (now, lowest, halved) = fanout.stats();
    let summary = FanoutSummary {
        step: &step.id,
        total: items.len(),
        already,
        done_now: ok as usize - already.min(ok as usize),
        failed: failed as usize,
        throttled: pressure.throttled() - throttled_before,
        limit,
        lowest,
        now,
        halved,
        seconds: started.elapsed().as_secs_f64(),
    };
    if summary.worth_a_table() {
        shared.ui.block(&summary.table());
    } else {
        shared.ui.line(&summary.line());
    }
    shared.record(Entry::FanoutSummary {
        step: step.id.clone(),
        summary: summary.json(),
    })?;
    if !failures.is_empty() {
        return Err(joined(&failures, items.len(), first_at));
    }
    let outputs = json!({
        "items": items.iter().map(|i| i.value.clone()).collect::<Vec<_>>(),
        "results": results.into_iter().map(|r| r.unwrap_or(Value::Null)).collect::<Vec<_>>(),
    });
    Ok(Outcome {
        outputs,
        secrecy: if secret {
            Secrecy::AllBut(Vec::new())
        } else {
            Secrecy::None
        },
    })
}

/// The step's failure when items failed (`KEY: message` each): how many, the first few (each
/// already clipped; every one is journaled as `item-failed`), and where the first script failed.
fn joined(failures: &[String], total: usize, first_at: Option<crate::source::Span>) -> StepError {
    const NAMED: usize = 5;
    let more = failures.len().saturating_sub(NAMED);
    StepError::Failed {
        message: format!(
            "{} of {} items failed: {}{}",
            failures.len(),
            total,
            failures[..failures.len().min(NAMED)].join("; "),
            if more > 0 {
                format!("; and {more} more (each in the journal as item-failed)")
            } else {
                String::new()
            }
        ),
        hint: Some("the others are journaled; run again to retry only the failed ones".into()),
        at: first_at,
    }
}

/// How much a fan-out's items may return together. Each item's outputs are bounded (1 MiB);
/// without a bound on their sum, 100 items of 500 KB wrote 204 MB of events, 204 MB of transcript
/// and a 102 MB state file from a 580-byte runbook.
const OUTPUTS_CAP: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::exec::testing::Builder;

    fn summary(failed: usize, throttled: u64, halved: u32, total: usize) -> FanoutSummary<'static> {
        FanoutSummary {
            step: "f",
            total,
            already: 1,
            done_now: total - 1 - failed,
            failed,
            throttled,
            limit: 8,
            lowest: 2,
            now: 4,
            halved,
            seconds: 1.25,
        }
    }

    #[test]
    fn the_table_is_shown_when_it_says_more_than_a_line() {
        assert!(!summary(0, 0, 0, 20).worth_a_table());
        assert!(summary(1, 0, 0, 20).worth_a_table());
        assert!(summary(0, 1, 0, 20).worth_a_table());
        assert!(summary(0, 0, 1, 20).worth_a_table());
        assert!(summary(0, 0, 0, 21).worth_a_table());
        assert_eq!(
            summary(0, 0, 0, 3).line(),
            "  f: 3 items done in 1.2s (1 before this run)"
        );
        let one = FanoutSummary {
            already: 0,
            done_now: 1,
            ..summary(0, 0, 0, 1)
        };
        assert_eq!(one.line(), "  f: 1 item done in 1.2s");
    }

    #[test]
    fn the_table_counts_what_waits_and_how_concurrency_moved() {
        assert_eq!(
            summary(2, 5, 1, 10).table(),
            "  f summary\n    items                  10\n    done before this run   1\n    done now               7\n    failed                 2\n    waiting                0\n    throttled responses    5\n    concurrency            8 -> lowest 2 -> 4 (halved 1 time)\n    time                   1.2s\n"
        );
        let waiting = FanoutSummary {
            done_now: 3,
            ..summary(2, 0, 0, 10)
        };
        assert!(waiting.table().contains("\n    waiting                4\n"));
        assert!(
            waiting
                .table()
                .contains("\n    concurrency            8 (never throttled down)\n")
        );
        assert!(summary(0, 0, 3, 4).table().contains("(halved 3 times)"));
        assert_eq!(
            summary(2, 5, 1, 10).json(),
            json!({"step": "f", "items": 10, "already": 1, "done": 7, "failed": 2, "throttled": 5,
                "max_in_flight": 8, "lowest_in_flight": 2, "halved": 1, "seconds": 1.25})
        );
    }

    #[test]
    fn item_failures_are_joined_five_named_and_the_rest_counted() {
        let at = Some(crate::source::Span::new(3, 9));
        let two: Vec<String> = vec!["a: x".into(), "b: y".into()];
        let StepError::Failed {
            message,
            hint,
            at: where_,
        } = joined(&two, 4, at)
        else {
            panic!("not a failure")
        };
        assert_eq!(message, "2 of 4 items failed: a: x; b: y");
        assert_eq!(
            hint.as_deref(),
            Some("the others are journaled; run again to retry only the failed ones")
        );
        assert_eq!(where_, at);
        let seven: Vec<String> = (1..=7).map(|i| format!("i{i}: e")).collect();
        let StepError::Failed { message, .. } = joined(&seven, 9, None) else {
            panic!("not a failure")
        };
        assert_eq!(
            message,
            "7 of 9 items failed: i1: e; i2: e; i3: e; i4: e; i5: e; and 2 more (each in the journal as item-failed)"
        );
        let five: Vec<String> = (1..=5).map(|i| format!("i{i}: e")).collect();
        let StepError::Failed { message, .. } = joined(&five, 5, None) else {
            panic!("not a failure")
        };
        assert_eq!(message, "5 of 5 items failed: i1: e; i2: e; i3: e; i4: e; i5: e");
    }

    const ITEMS: &str =
        "# T\n\n```rhai id=f for-each='[1, 2, 3]'\nif item == 2 { throw \"two\"; }\n#{ v: item * 10 }\n```\n";

    /// Each item is journaled as it finishes; a run again retries only what failed, and a new run
    /// of a finished record looks at every item again.
    #[tokio::test]
    async fn a_run_again_retries_only_the_failed_items() {
        let f = Builder::new(ITEMS).opts(|o| o.max_in_flight = 1).build();
        let flags = BTreeMap::new();
        let ended = crate::exec::drive::drive(f.shared.clone(), &flags).await;
        let Err(crate::exec::RunError::StepFailed(failure)) = ended else {
            panic!("{ended:?}")
        };
        assert_eq!(
            failure.diagnostic.message,
            "step `f` failed: 1 of 3 items failed: 2: script: two"
        );
        assert_eq!(
            f.recorded(),
            [
                "run-started",
                "step-started f",
                "item-finished f 1",
                "item-failed f 2",
                "item-finished f 3",
                "fanout-summary f",
                "step-failed f"
            ]
        );
        assert!(crate::exec::drive::drive(f.shared.clone(), &flags).await.is_err());
        assert_eq!(
            f.recorded()[7..],
            [
                "run-started",
                "step-started f",
                "item-failed f 2",
                "fanout-summary f",
                "step-failed f"
            ]
        );
        f.shared.converging.store(true, Ordering::SeqCst);
        assert!(fan_out_again(&f).await.is_err());
        assert_eq!(
            f.recorded()[12..],
            [
                "item-finished f 1",
                "item-failed f 2",
                "item-finished f 3",
                "fanout-summary f"
            ]
        );
    }

    /// The step's fan-out alone, as `run_with_retries` calls it.
    async fn fan_out_again(f: &crate::exec::testing::Fixture) -> Result<Outcome, StepError> {
        let step = f.step("f");
        let env = Env::default();
        let plan = crate::exec::identity::prepare(&f.shared, step, &env, None)
            .await
            .expect("prepared");
        let items = plan.items.as_deref().expect("items");
        fan_out(&f.shared, step, &env, &plan, items).await
    }

    #[tokio::test]
    async fn the_items_outputs_are_the_steps_in_the_lists_order() {
        let f = Builder::new("# T\n\n```rhai id=f for-each='[\"a\", \"b\"]'\n#{ v: item }\n```\n")
            .opts(|o| o.max_in_flight = 2)
            .build();
        let step = f.step("f");
        let env = Env::default();
        let plan = crate::exec::identity::prepare(&f.shared, step, &env, None)
            .await
            .expect("prepared");
        let out = fan_out(&f.shared, step, &env, &plan, plan.items.as_deref().expect("items"))
            .await
            .expect("done");
        assert_eq!(
            out.outputs,
            json!({"items": ["a", "b"], "results": [{"v": "a"}, {"v": "b"}]})
        );
        assert_eq!(out.secrecy, Secrecy::None);
    }
}
