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
    // The table when it adds something (failures, throttling, more items than a screen);
    // otherwise one line.
    if summary.failed > 0 || summary.throttled > 0 || summary.halved > 0 || summary.total > 20 {
        shared.ui.block(&summary.table());
    } else {
        shared.ui.line(&format!(
            "  {}: {} item{} done in {:.1}s{}",
            step.id,
            summary.total,
            if summary.total == 1 { "" } else { "s" },
            summary.seconds,
            if summary.already > 0 {
                format!(" ({} before this run)", summary.already)
            } else {
                String::new()
            }
        ));
    }
    shared.record(Entry::FanoutSummary {
        step: step.id.clone(),
        summary: summary.json(),
    })?;
    if !failures.is_empty() {
        // The first few, each already clipped; every one is journaled as `item-failed`.
        const NAMED: usize = 5;
        let more = failures.len().saturating_sub(NAMED);
        return Err(StepError::Failed {
            message: format!(
                "{} of {} items failed: {}{}",
                failures.len(),
                items.len(),
                failures[..failures.len().min(NAMED)].join("; "),
                if more > 0 {
                    format!("; and {more} more (each in the journal as item-failed)")
                } else {
                    String::new()
                }
            ),
            hint: Some("the others are journaled; run again to retry only the failed ones".into()),
            // A script's failure keeps where it failed (the first item's, when several did).
            at: first_at,
        });
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

/// How much a fan-out's items may return together. Each item's outputs are bounded (1 MiB);
/// without a bound on their sum, 100 items of 500 KB wrote 204 MB of events, 204 MB of transcript
/// and a 102 MB state file from a 580-byte runbook.
const OUTPUTS_CAP: usize = 4 << 20;
