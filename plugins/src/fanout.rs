//! The one fan-out engine. The runner's `for-each=` items and the accounts of one action
//! (sso-admin's assignments and their removal) both run through it: at most `max` at once under
//! an adaptive limit that a throttle seen by any client of the run halves and finished work grows
//! back (AIMD, see [`AdaptiveLimit`]).

use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};

use crate::pressure::{Pressure, Registered};

/// One fan-out: its limit hears throttles while it lives.
pub struct Fanout {
    limit: Registered,
    max: usize,
}

/// What a finished piece of work says about the pace: only success grows the limit.
pub trait Finished {
    fn succeeded(&self) -> bool;
}

impl<T, E> Finished for Result<T, E> {
    fn succeeded(&self) -> bool {
        self.is_ok()
    }
}

impl<K, T, E> Finished for (K, Result<T, E>) {
    fn succeeded(&self) -> bool {
        self.1.is_ok()
    }
}

impl Fanout {
    /// A fan-out of at most `max` at once (at least one).
    pub fn new(pressure: &Arc<Pressure>, max: usize) -> Fanout {
        let max = max.max(1);
        Fanout {
            limit: pressure.adaptive(max),
            max,
        }
    }

    /// Runs `one` for each item, each once it holds a place under the limit; yields the results
    /// as they finish, in that order. Work is started only as the stream is polled, so a consumer
    /// that stops reading (a journal that cannot record) starts nothing more.
    pub fn run<'a, T, R, F, Fut>(
        &'a self,
        items: impl IntoIterator<Item = T> + 'a,
        one: F,
    ) -> impl Stream<Item = R> + 'a
    where
        T: 'a,
        F: Fn(T) -> Fut + 'a,
        Fut: Future<Output = R> + 'a,
        R: Finished + 'a,
    {
        let limit = &self.limit;
        futures::stream::iter(items)
            .map(move |item| {
                let work = one(item);
                async move {
                    let _place = limit.acquire().await;
                    let r = work.await;
                    if r.succeeded() {
                        limit.succeeded();
                    }
                    r
                }
            })
            .buffer_unordered(self.max)
    }

    /// The limit now, the lowest it reached, and how many times a throttle halved it.
    pub fn stats(&self) -> (usize, usize, u32) {
        self.limit.stats()
    }
}
