//! What the tool shows: the running tally of events and the text of each line. Pure:
//! the caller passes the time in and prints what comes back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::protocol::{CoreCopy, Hello};

/// Unfinished copy progress is shown at most this often (a finished core always is),
/// so a server reporting every few keys does not flood the terminal.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Everything the old server reported so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// Latest COPY per core (the counts are cumulative).
    copied: BTreeMap<u32, CoreCopy>,
    /// What was last shown per core and when: repeats are skipped, and the core shown
    /// longest ago goes first.
    shown: BTreeMap<u32, (CoreCopy, Instant)>,
    last_shown: Option<Instant>,
    freeze_micros: Option<u64>,
    /// Connections handed over per core (one MOVED per core; a repeat replaces it).
    moved: BTreeMap<u32, u64>,
}

impl Progress {
    /// Records a COPY event; returns the line to show, if it is time to show one: a
    /// finished core at once, otherwise at most one line per [`MIN_INTERVAL`], for the
    /// changed core shown longest ago (so with many cores each gets its turn).
    pub fn copy(&mut self, copy: CoreCopy, now: Instant) -> Option<String> {
        self.copied.insert(copy.core, copy);
        let show = if copy.done {
            if self.shown.get(&copy.core).map(|&(shown, _)| shown) == Some(copy) {
                return None;
            }
            copy
        } else {
            let due = self
                .last_shown
                .map_or(true, |at| now.duration_since(at) >= MIN_INTERVAL);
            if !due {
                return None;
            }
            *self
                .copied
                .values()
                .filter(|c| !c.done)
                .filter(|c| self.shown.get(&c.core).map(|&(shown, _)| shown) != Some(**c))
                .min_by_key(|c| self.shown.get(&c.core).map(|&(_, at)| at))?
        };
        self.shown.insert(show.core, (show, now));
        self.last_shown = Some(now);
        Some(copy_line(&show))
    }

    /// Records a FREEZE event; returns its line.
    pub fn freeze(&mut self, micros: u64) -> String {
        self.freeze_micros = Some(micros);
        format!("freeze: {} (no command started meanwhile)", millis(micros))
    }

    /// Records a MOVED event; returns its line.
    pub fn moved(&mut self, core: u32, connections: u64) -> String {
        self.moved.insert(core, connections);
        format!(
            "core {core}: {connections} connection{} handed over",
            plural(connections)
        )
    }

    /// The final report after DONE.
    pub fn summary(&self, elapsed: Duration, new_pid: u32, server: &str) -> String {
        let keys: u64 = self.copied.values().map(|c| c.keys).sum();
        let bytes: u64 = self.copied.values().map(|c| c.bytes).sum();
        let cores = self.copied.len() as u64;
        let connections: u64 = self.moved.values().sum();
        let freeze = match self.freeze_micros {
            Some(micros) => millis(micros),
            None => "not reported".to_owned(),
        };
        let mut out = format!(
            "handoff done in {:.2} s: the new process (pid {new_pid}) serves now\n\
             \x20 copied:      {keys} key{} ({}) from {cores} core{}\n\
             \x20 freeze:      {freeze}\n\
             \x20 connections: {connections} moved",
            elapsed.as_secs_f64(),
            plural(keys),
            bytes_text(bytes),
            plural(cores),
        );
        if !server.is_empty() {
            out.push_str("\n  old server:  ");
            out.push_str(server);
        }
        out
    }
}

/// The line describing the old server after `OK`.
pub fn hello_line(hello: &Hello) -> String {
    format!(
        "old server: pid {}, port {}, {} core{}, version {}",
        hello.pid,
        hello.port,
        hello.cores,
        plural(u64::from(hello.cores)),
        hello.version
    )
}

fn copy_line(copy: &CoreCopy) -> String {
    format!(
        "core {}: {} {} key{} ({})",
        copy.core,
        if copy.done { "copied" } else { "copying," },
        copy.keys,
        plural(copy.keys),
        bytes_text(copy.bytes)
    )
}

/// `1234` micros as `1.234 ms`.
pub fn millis(micros: u64) -> String {
    format!("{}.{:03} ms", micros / 1000, micros % 1000)
}

/// A byte count in binary units: `512 B`, `1.5 KiB`, `3.0 MiB`.
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(core: u32, keys: u64, bytes: u64, done: bool) -> CoreCopy {
        CoreCopy {
            core,
            keys,
            bytes,
            done,
        }
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(1023), "1023 B");
        assert_eq!(bytes_text(1024), "1.0 KiB");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 << 20), "3.0 MiB");
        assert_eq!(bytes_text(5 << 30), "5.0 GiB");
        assert_eq!(bytes_text(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn millis_keep_the_micros() {
        assert_eq!(millis(0), "0.000 ms");
        assert_eq!(millis(1234), "1.234 ms");
        assert_eq!(millis(5), "0.005 ms");
        assert_eq!(millis(2_000_000), "2000.000 ms");
    }

    #[test]
    fn copy_progress_is_throttled_but_done_always_shows() {
        let mut p = Progress::default();
        let t0 = Instant::now();
        assert_eq!(
            p.copy(copy(0, 10, 2048, false), t0).as_deref(),
            Some("core 0: copying, 10 keys (2.0 KiB)")
        );
        // Too soon after the last line: skipped, for this core and any other.
        assert_eq!(p.copy(copy(0, 20, 4096, false), t0), None);
        assert_eq!(p.copy(copy(1, 5, 100, false), t0 + MIN_INTERVAL / 2), None);
        // A finished core shows at once, however soon.
        assert_eq!(
            p.copy(copy(1, 1, 100, true), t0 + MIN_INTERVAL / 2)
                .as_deref(),
            Some("core 1: copied 1 key (100 B)")
        );
        // The same report again is never shown twice.
        assert_eq!(p.copy(copy(1, 1, 100, true), t0 + MIN_INTERVAL * 5), None);
        // Once the interval passed, a changed core shows again.
        let later = t0 + MIN_INTERVAL * 2;
        assert_eq!(
            p.copy(copy(0, 30, 8192, false), later).as_deref(),
            Some("core 0: copying, 30 keys (8.0 KiB)")
        );
    }

    #[test]
    fn at_most_ten_unfinished_lines_a_second() {
        let mut p = Progress::default();
        let t0 = Instant::now();
        let shown = (0..1000u64)
            .filter_map(|i| {
                let at = t0 + Duration::from_millis(i);
                p.copy(copy((i % 4) as u32, i, i, false), at)
            })
            .count();
        assert_eq!(shown, 10);
    }

    #[test]
    fn every_core_gets_its_turn() {
        let mut p = Progress::default();
        let t0 = Instant::now();
        // Four cores report together every 4 ms, core 0 always first.
        let lines: Vec<String> = (0..1000u64)
            .filter_map(|i| {
                let at = t0 + Duration::from_millis(i / 4 * 4);
                p.copy(copy((i % 4) as u32, i, 0, false), at)
            })
            .collect();
        let cores: Vec<&str> = lines.iter().map(|l| &l[..6]).collect();
        assert_eq!(
            cores[..5],
            ["core 0", "core 1", "core 2", "core 3", "core 0"],
            "{lines:?}"
        );
    }

    #[test]
    fn summary_totals_the_latest_report_of_each_core() {
        let mut p = Progress::default();
        let t0 = Instant::now();
        p.copy(copy(0, 10, 1000, false), t0);
        p.copy(copy(0, 100, 1024, true), t0);
        p.copy(copy(1, 50, 1024, true), t0);
        assert_eq!(
            p.freeze(1500),
            "freeze: 1.500 ms (no command started meanwhile)"
        );
        assert_eq!(p.moved(0, 3), "core 0: 3 connections handed over");
        assert_eq!(p.moved(1, 1), "core 1: 1 connection handed over");
        assert_eq!(
            p.summary(Duration::from_millis(2346), 77, "4 connections moved"),
            "handoff done in 2.35 s: the new process (pid 77) serves now\n\
             \x20 copied:      150 keys (2.0 KiB) from 2 cores\n\
             \x20 freeze:      1.500 ms\n\
             \x20 connections: 4 moved\n\
             \x20 old server:  4 connections moved"
        );
    }

    #[test]
    fn summary_without_events() {
        let p = Progress::default();
        assert_eq!(
            p.summary(Duration::ZERO, 1, ""),
            "handoff done in 0.00 s: the new process (pid 1) serves now\n\
             \x20 copied:      0 keys (0 B) from 0 cores\n\
             \x20 freeze:      not reported\n\
             \x20 connections: 0 moved"
        );
    }

    #[test]
    fn hello_is_one_line() {
        let hello = Hello {
            pid: 9,
            port: 6379,
            cores: 1,
            version: "0.1.0".into(),
        };
        assert_eq!(
            hello_line(&hello),
            "old server: pid 9, port 6379, 1 core, version 0.1.0"
        );
    }
}
