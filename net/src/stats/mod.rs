//! What INFO and SLOWLOG report about commands, kept per core and summed on demand.
//!
//! Each core counts the commands its connections run in its [`CommandStats`] (a field of
//! the core's `NetCore`), with one row per command and subcommand (the rows of
//! [`baton_engine::command`]'s tables): calls, time, rejections (arity, auth) and failures
//! (error replies). Counting one command costs two reads of the [`clock`] and a few
//! additions on one cache line; no atomics, no syscalls. A command that runs on another
//! core is timed there and its ticks come back with its reply, so the connection's core
//! counts it either way.
//!
//! `total_commands_processed` is the sum of the calls, and `instantaneous_ops_per_sec`
//! comes from a sampler task per core that reads that sum every 100 ms into a ring of 16
//! samples, as Redis's `trackInstantaneousMetric` does.

pub mod info;
pub mod slowlog;

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use baton_engine::clock;

use crate::config::Shared;

/// Rows in the per-core table; at least `command_and_subcommand_count()` (a test checks).
const ROWS: usize = 512;

/// One row's counters. `Cell`s: the table belongs to one core and is never borrowed
/// across calls.
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

/// One core's command counters and its ops/sec samples.
pub struct CommandStats {
    rows: [Counters; ROWS],
    sampler: Sampler,
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats::new()
    }
}

impl CommandStats {
    pub const fn new() -> CommandStats {
        CommandStats {
            rows: [const { Counters::new() }; ROWS],
            sampler: Sampler::new(),
        }
    }

    /// Counts one executed command of table row `row` that ran for `ticks`.
    #[inline]
    pub fn record(&self, row: usize, ticks: u64, failed: bool) {
        if let Some(c) = self.rows.get(row) {
            bump(&c.calls, 1);
            bump(&c.ticks, ticks);
            if failed {
                bump(&c.failed, 1);
            }
        }
    }

    /// Counts a command refused before it ran (wrong arity, not authenticated).
    pub fn reject(&self, row: usize) {
        if let Some(c) = self.rows.get(row) {
            bump(&c.rejected, 1);
        }
    }

    /// The rows that counted anything, as (row, counts).
    pub fn counts(&self) -> Vec<(usize, CommandCounts)> {
        self.rows
            .iter()
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
    }

    /// Commands this core's connections ran (its share of `total_commands_processed`).
    pub fn processed(&self) -> u64 {
        self.rows.iter().map(|c| c.calls.get()).sum()
    }

    /// Zeroes the counters and the ops samples (CONFIG RESETSTAT); `now_ms` starts the
    /// next sample.
    pub fn reset(&self, now_ms: u64) {
        for c in &self.rows {
            c.calls.set(0);
            c.ticks.set(0);
            c.rejected.set(0);
            c.failed.set(0);
        }
        self.sampler.reset(0, now_ms);
    }

    /// This core's `instantaneous_ops_per_sec`.
    pub fn ops_per_sec(&self) -> u64 {
        self.sampler.average()
    }

    /// Starts sampling afresh at `now_ms` (when the sampler task starts).
    pub fn start_sampling(&self, now_ms: u64) {
        self.sampler.reset(self.processed(), now_ms);
    }

    /// Takes one ops/sec sample ([`SAMPLE_EVERY`] after the last one).
    pub fn sample(&self, now_ms: u64) {
        self.sampler.sample(self.processed(), now_ms);
    }
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

/// Samples kept for `instantaneous_ops_per_sec` (Redis's STATS_METRIC_SAMPLES).
const SAMPLES: usize = 16;
/// How often the sampler runs (Redis samples in its 100 ms cron).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

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
        let stats = CommandStats::new();
        stats.record(get, 100, false);
        stats.record(get, 50, true);
        stats.reject(get);
        stats.reject(ROWS + 7); // out of range: ignored, no panic
        stats.record(ROWS, 1, false);
        let snap = stats.counts();
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
        assert_eq!(stats.processed(), 2);
        stats.reset(0);
        assert!(stats.counts().is_empty());
        assert_eq!(stats.processed(), 0);
    }

    #[test]
    fn two_cores_count_apart() {
        // What thread-locals could not show in one test: each core's table is its own.
        let (get, set) = (
            command_index(lookup(b"get").unwrap()),
            command_index(lookup(b"set").unwrap()),
        );
        let (core0, core1) = (CommandStats::new(), CommandStats::new());
        core0.record(get, 10, false);
        core0.record(get, 10, false);
        core1.record(set, 5, true);
        assert_eq!(core0.processed(), 2);
        assert_eq!(core1.processed(), 1);
        assert_eq!(
            core0.counts().iter().map(|(r, _)| *r).collect::<Vec<_>>(),
            [get]
        );
        assert_eq!(core1.counts()[0].1.failed, 1);
        core1.reset(0);
        assert_eq!(core1.processed(), 0);
        assert_eq!(core0.processed(), 2, "resetting one core leaves the other");
    }

    #[test]
    fn the_sampler_counts_from_where_sampling_started() {
        let stats = CommandStats::new();
        let get = command_index(lookup(b"get").unwrap());
        for _ in 0..50 {
            stats.record(get, 1, false);
        }
        stats.start_sampling(1_000);
        for _ in 0..160 {
            stats.record(get, 1, false);
        }
        // 160 commands in 100 ms: 1600 ops/s in one sample of 16.
        stats.sample(1_100);
        assert_eq!(stats.ops_per_sec(), 100);
        stats.reset(1_200);
        assert_eq!(stats.ops_per_sec(), 0);
        for _ in 0..16 {
            stats.record(get, 1, false);
        }
        stats.sample(1_300);
        assert_eq!(
            stats.ops_per_sec(),
            10,
            "160 ops/s in one sample of 16 after the reset"
        );
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
