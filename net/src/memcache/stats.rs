//! The `stats` reply: the server fills an [`McStats`] (process facts, its own connection
//! counts, the shards' item counts, and the command counters [`McStats::record`] keeps)
//! and [`encode_stats`] writes memcached's `STAT <name> <value>` lines.

use baton_engine::memcache::{McOpKind, McResult, MetaStatus, StoreMode};

/// Everything `stats` reports. Counters are summed over cores by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McStats {
    pub pid: u32,
    /// Seconds since the server started.
    pub uptime: u64,
    /// Current unix time, seconds.
    pub time: u64,
    pub version: String,
    /// CPU time used, microseconds (`rusage_user`, `rusage_system`).
    pub rusage_user_us: u64,
    pub rusage_system_us: u64,
    pub max_connections: u64,
    pub curr_connections: u64,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_flush: u64,
    pub cmd_touch: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub delete_misses: u64,
    pub delete_hits: u64,
    pub incr_misses: u64,
    pub incr_hits: u64,
    pub decr_misses: u64,
    pub decr_hits: u64,
    pub cas_misses: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub store_too_large: u64,
    pub store_no_memory: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub limit_maxbytes: u64,
    pub threads: u64,
    /// Bytes used by items.
    pub bytes: u64,
    pub curr_items: u64,
    pub total_items: u64,
    pub evictions: u64,
}

fn hit_miss(hit: bool, hits: &mut u64, misses: &mut u64) {
    if hit {
        *hits += 1;
    } else {
        *misses += 1;
    }
}

impl McStats {
    /// Counts a `get` of one key, a hit or a miss.
    pub fn record_get(&mut self, hit: bool) {
        self.cmd_get += 1;
        hit_miss(hit, &mut self.get_hits, &mut self.get_misses);
    }

    /// Counts one executed op the way memcached's counters do (`gat` and `touch` count as
    /// touches, not gets; every storage attempt counts in `cmd_set`). Take the kind with
    /// `op.kind()` before the op moves into `execute`.
    pub fn record(&mut self, kind: McOpKind, result: &McResult) {
        let meta_ok = matches!(result, McResult::Meta(r) if r.status == MetaStatus::Ok);
        match kind {
            McOpKind::Get => self.record_get(matches!(result, McResult::Value(Some(_)))),
            McOpKind::GetAndTouch => {
                self.cmd_touch += 1;
                let hit = matches!(result, McResult::Value(Some(_)));
                hit_miss(hit, &mut self.touch_hits, &mut self.touch_misses);
            }
            McOpKind::Touch => {
                self.cmd_touch += 1;
                let hit = *result == McResult::Touched;
                hit_miss(hit, &mut self.touch_hits, &mut self.touch_misses);
            }
            McOpKind::Store(mode) => {
                self.cmd_set += 1;
                if *result == McResult::Stored {
                    // memcached counts every item ever stored (links), append/prepend too.
                    self.total_items += 1;
                }
                if mode == StoreMode::Cas {
                    match result {
                        McResult::Stored => self.cas_hits += 1,
                        McResult::Exists => self.cas_badval += 1,
                        McResult::NotFound => self.cas_misses += 1,
                        _ => {}
                    }
                }
            }
            McOpKind::MetaSet => {
                self.cmd_set += 1;
                if meta_ok {
                    self.total_items += 1;
                }
            }
            McOpKind::Delete => {
                let hit = *result == McResult::Deleted;
                hit_miss(hit, &mut self.delete_hits, &mut self.delete_misses);
            }
            McOpKind::MetaDelete => {
                hit_miss(meta_ok, &mut self.delete_hits, &mut self.delete_misses);
            }
            McOpKind::Incr | McOpKind::MetaArith => {
                let hit = matches!(result, McResult::Number(_)) || meta_ok;
                hit_miss(hit, &mut self.incr_hits, &mut self.incr_misses);
            }
            McOpKind::Decr => {
                let hit = matches!(result, McResult::Number(_));
                hit_miss(hit, &mut self.decr_hits, &mut self.decr_misses);
            }
            McOpKind::MetaGet => {
                self.cmd_get += 1;
                hit_miss(meta_ok, &mut self.get_hits, &mut self.get_misses);
            }
            McOpKind::MetaDebug => {}
        }
        if *result == McResult::OutOfMemory {
            self.store_no_memory += 1;
        }
    }

    /// Counts a reply the parser decided on (`McRequest::Error`).
    pub fn record_error(&mut self, text: &str) {
        if text == super::lex::TOO_LARGE {
            self.store_too_large += 1;
        }
    }
}

fn stat(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "STAT {name} {value}\r\n");
}

/// `seconds.micros`, as memcached prints rusage.
struct Micros(u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// Appends the `stats` reply: `STAT` lines in memcached's order, then `END`.
pub fn encode_stats(s: &McStats, out: &mut Vec<u8>) {
    stat(out, "pid", s.pid);
    stat(out, "uptime", s.uptime);
    stat(out, "time", s.time);
    stat(out, "version", &s.version);
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", Micros(s.rusage_user_us));
    stat(out, "rusage_system", Micros(s.rusage_system_us));
    stat(out, "max_connections", s.max_connections);
    stat(out, "curr_connections", s.curr_connections);
    stat(out, "total_connections", s.total_connections);
    stat(out, "rejected_connections", s.rejected_connections);
    stat(out, "cmd_get", s.cmd_get);
    stat(out, "cmd_set", s.cmd_set);
    stat(out, "cmd_flush", s.cmd_flush);
    stat(out, "cmd_touch", s.cmd_touch);
    stat(out, "get_hits", s.get_hits);
    stat(out, "get_misses", s.get_misses);
    stat(out, "delete_misses", s.delete_misses);
    stat(out, "delete_hits", s.delete_hits);
    stat(out, "incr_misses", s.incr_misses);
    stat(out, "incr_hits", s.incr_hits);
    stat(out, "decr_misses", s.decr_misses);
    stat(out, "decr_hits", s.decr_hits);
    stat(out, "cas_misses", s.cas_misses);
    stat(out, "cas_hits", s.cas_hits);
    stat(out, "cas_badval", s.cas_badval);
    stat(out, "touch_hits", s.touch_hits);
    stat(out, "touch_misses", s.touch_misses);
    stat(out, "store_too_large", s.store_too_large);
    stat(out, "store_no_memory", s.store_no_memory);
    stat(out, "bytes_read", s.bytes_read);
    stat(out, "bytes_written", s.bytes_written);
    stat(out, "limit_maxbytes", s.limit_maxbytes);
    stat(out, "threads", s.threads);
    stat(out, "bytes", s.bytes);
    stat(out, "curr_items", s.curr_items);
    stat(out, "total_items", s.total_items);
    stat(out, "evictions", s.evictions);
    out.extend_from_slice(b"END\r\n");
}
