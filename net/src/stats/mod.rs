//! What INFO and SLOWLOG report about commands, kept per core and summed on demand.
//!
//! Each core counts the commands its connections run in a thread-local table with one row
//! per command and subcommand (the rows of [`baton_engine::command`]'s tables): calls,
//! time, rejections (arity, auth) and failures (error replies). Counting one command costs
//! two reads of the [`clock`] and a few additions on one cache line; no atomics, no
//! syscalls. A command that runs on another core is timed there and its ticks come back
//! with its reply, so the connection's core counts it either way.
//!
//! `total_commands_processed` is the sum of the calls, and `instantaneous_ops_per_sec`
//! comes from a sampler task per core that reads that sum every 100 ms into a ring of 16
//! samples, as Redis's `trackInstantaneousMetric` does.

pub mod info;
pub mod slowlog;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use baton_engine::clock;
use baton_engine::reply::Reply;
use baton_engine::runtime::Core;
use bytes::Bytes;

use crate::client::Client;
use crate::config::Shared;

/// Rows in the per-core table; at least `command_and_subcommand_count()` (a test checks).
const ROWS: usize = 512;

/// One row's counters. `Cell`s: the table is thread-local and never borrowed across calls.
struct Counters {
    calls: Cell<u64>,
    ticks: Cell<u64>,
    rejected: Cell<u64>,
    failed: Cell<u64>,
}

impl Counters {
    const fn new() -> Counters {
        Counters {
            calls: Cell::new(0),
            ticks: Cell::new(0),
            rejected: Cell::new(0),
            failed: Cell::new(0),
        }
    }
}

fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get().wrapping_add(by));
}

thread_local! {
    static TABLE: [Counters; ROWS] = const { [const { Counters::new() }; ROWS] };
}

/// Counts one executed command of table row `row` that ran for `ticks`.
#[inline]
pub fn record(row: usize, ticks: u64, failed: bool) {
    TABLE.with(|t| {
        if let Some(c) = t.get(row) {
            bump(&c.calls, 1);
            bump(&c.ticks, ticks);
            if failed {
                bump(&c.failed, 1);
            }
        }
    });
}

/// Counts a command refused before it ran (wrong arity, not authenticated).
pub fn reject(row: usize) {
    TABLE.with(|t| {
        if let Some(c) = t.get(row) {
            bump(&c.rejected, 1);
        }
    });
}

/// The duration in microseconds when a command that ran for `ticks` belongs in the slow
/// log (`slowlog-log-slower-than`: negative turns the log off, 0 logs everything).
#[inline]
pub fn slow_us(shared: &Shared, ticks: u64) -> Option<u64> {
    let threshold = shared
        .settings
        .slowlog_log_slower_than
        .load(Ordering::Relaxed);
    if threshold < 0 {
        return None;
    }
    let us = clock::to_us(ticks);
    (us >= threshold as u64).then_some(us)
}

/// Counts an executed command and logs it if it was slow.
#[inline]
pub fn executed(
    shared: &Shared,
    client: &Client,
    row: usize,
    ticks: u64,
    reply: &Reply,
    args: &[Bytes],
) {
    record(row, ticks, reply.is_error());
    if let Some(us) = slow_us(shared, ticks) {
        slowlog::push(shared, client, args, us);
    }
}

/// One row's numbers, as a snapshot that can cross cores.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommandCounts {
    pub calls: u64,
    pub ticks: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl CommandCounts {
    pub fn add(&mut self, o: &CommandCounts) {
        self.calls += o.calls;
        self.ticks += o.ticks;
        self.rejected += o.rejected;
        self.failed += o.failed;
    }
}

/// This core's rows that counted anything, as (row, counts).
pub fn counts() -> Vec<(usize, CommandCounts)> {
    TABLE.with(|t| {
        t.iter()
            .enumerate()
            .filter(|(_, c)| c.calls.get() | c.rejected.get() | c.failed.get() != 0)
            .map(|(row, c)| {
                (
                    row,
                    CommandCounts {
                        calls: c.calls.get(),
                        ticks: c.ticks.get(),
                        rejected: c.rejected.get(),
                        failed: c.failed.get(),
                    },
                )
            })
            .collect()
    })
}

/// Commands this core's connections ran (its share of `total_commands_processed`).
pub fn processed() -> u64 {
    TABLE.with(|t| t.iter().map(|c| c.calls.get()).sum())
}

/// Zeroes this core's command counters and ops samples (CONFIG RESETSTAT).
pub fn reset() {
    TABLE.with(|t| {
        for c in t.iter() {
            c.calls.set(0);
            c.ticks.set(0);
            c.rejected.set(0);
            c.failed.set(0);
        }
    });
    SAMPLER.with(|s| s.reset(processed(), baton_engine::runtime::now_ms()));
}

/// Samples kept for `instantaneous_ops_per_sec` (Redis's STATS_METRIC_SAMPLES).
const SAMPLES: usize = 16;
/// How often the sampler runs (Redis samples in its 100 ms cron).
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A ring of ops/sec samples, Redis's `inst_metric`.
struct Sampler {
    samples: [Cell<u64>; SAMPLES],
    next: Cell<usize>,
    last_ms: Cell<u64>,
    last_count: Cell<u64>,
}

impl Sampler {
    const fn new() -> Sampler {
        Sampler {
            samples: [const { Cell::new(0) }; SAMPLES],
            next: Cell::new(0),
            last_ms: Cell::new(0),
            last_count: Cell::new(0),
        }
    }

    fn sample(&self, count: u64, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms.get());
        let ops = count.saturating_sub(self.last_count.get());
        let per_sec = ops.saturating_mul(1000).checked_div(elapsed).unwrap_or(0);
        let i = self.next.get();
        self.samples[i].set(per_sec);
        self.next.set((i + 1) % SAMPLES);
        self.last_ms.set(now_ms);
        self.last_count.set(count);
    }

    fn average(&self) -> u64 {
        self.samples.iter().map(Cell::get).sum::<u64>() / SAMPLES as u64
    }

    fn reset(&self, count: u64, now_ms: u64) {
        for s in &self.samples {
            s.set(0);
        }
        self.next.set(0);
        self.last_ms.set(now_ms);
        self.last_count.set(count);
    }
}

thread_local! {
    static SAMPLER: Sampler = const { Sampler::new() };
}

/// This core's `instantaneous_ops_per_sec`.
pub fn ops_per_sec() -> u64 {
    SAMPLER.with(Sampler::average)
}

/// Samples this core's command count every 100 ms until the server stops. Spawn one per
/// core, on that core (its connection loop drives the core's timers).
pub async fn run_sampler(core: Rc<Core>, shared: Arc<Shared>) {
    let now = baton_engine::runtime::now_ms();
    SAMPLER.with(|s| s.reset(processed(), now));
    while !shared.stopping() {
        let next = baton_engine::runtime::now_ms() + SAMPLE_EVERY.as_millis() as u64;
        core.timers.sleep_until(next).await;
        let now = baton_engine::runtime::now_ms();
        SAMPLER.with(|s| s.sample(processed(), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_engine::command::{command_and_subcommand_count, command_index, lookup};

    #[test]
    fn every_command_and_subcommand_has_a_row() {
        assert!(command_and_subcommand_count() <= ROWS);
    }

    #[test]
    fn counts_calls_time_rejections_and_failures() {
        let get = command_index(lookup(b"get").unwrap());
        record(get, 100, false);
        record(get, 50, true);
        reject(get);
        reject(ROWS + 7); // out of range: ignored, no panic
        record(ROWS, 1, false);
        let snap = counts();
        assert_eq!(
            snap,
            vec![(
                get,
                CommandCounts {
                    calls: 2,
                    ticks: 150,
                    rejected: 1,
                    failed: 1
                }
            )]
        );
        assert_eq!(processed(), 2);
        reset();
        assert!(counts().is_empty());
        assert_eq!(processed(), 0);
    }

    #[test]
    fn sampler_averages_sixteen_samples() {
        let s = Sampler::new();
        s.reset(0, 1_000);
        // 100 ops every 100 ms = 1000 ops/s, for 8 of the 16 samples.
        for i in 1..=8u64 {
            s.sample(i * 100, 1_000 + i * 100);
        }
        assert_eq!(s.average(), 500);
        for i in 9..=16u64 {
            s.sample(i * 100, 1_000 + i * 100);
        }
        assert_eq!(s.average(), 1000);
        // A counter reset (RESETSTAT) never yields a negative rate.
        s.sample(0, 2_800);
        assert!(s.average() < 1000);
        s.sample(5, 2_800);
        assert_eq!(
            s.samples[1].get(),
            0,
            "no time passed: rate 0, not a division by 0"
        );
    }
}
