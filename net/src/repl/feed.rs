//! The primary's side of one flow, as a core's loop drives it: the replica's FLOWSYNC
//! picked a shard; the flow's socket came to that shard's core; each turn the loop asks
//! [`FeedState::fill`] for what is due (journal records, then snapshot chunks while the
//! send buffer has room) and reads the replica's `ACK offset` lines.

use std::sync::atomic::Ordering;

use baton_engine::Shard;
use baton_replication::Feeder;

use crate::repl_state::{lock, FeedRequest, Repl, ReplicaInfo};

/// How much a flow puts in its send buffer at a time (journal records always go whole).
pub const FILL_BUDGET: usize = 256 * 1024;
/// Longest ACK line a replica sends; a longer one ends the flow.
const MAX_ACK_LINE: usize = 64;

/// Reads a replica's `REPLCONF ACK <offset>` lines (or bare `ACK <offset>`) from
/// `bytes`, continuing the incomplete line in `line`: the last complete ACK's offset, or
/// an error for anything else (an over-long line, another command).
pub fn take_acks(line: &mut Vec<u8>, bytes: &[u8]) -> Result<Option<u64>, String> {
    let mut acked = None;
    for &b in bytes {
        if b != b'\n' {
            if line.len() >= MAX_ACK_LINE {
                return Err("an over-long line from the replica on a flow".into());
            }
            line.push(b);
            continue;
        }
        let done = std::mem::take(line);
        let text = String::from_utf8_lossy(&done);
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let offset = match words.as_slice() {
            [r, a, n] if r.eq_ignore_ascii_case("replconf") && a.eq_ignore_ascii_case("ack") => {
                n.parse::<u64>().ok()
            }
            [a, n] if a.eq_ignore_ascii_case("ack") => n.parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("unexpected input from the replica on a flow: {text:?}"))?;
        acked = Some(offset);
    }
    Ok(acked)
}

/// One flow being fed, on its shard's core.
pub struct FeedState {
    req: FeedRequest,
    feeder: Feeder,
    /// An incomplete ACK line.
    line: Vec<u8>,
}

impl FeedState {
    /// Starts the flow: installs the shard's journal if it has none yet, picks a full or
    /// a partial sync, writes the hello (and a partial sync's backlog) to `out`, and
    /// registers the replica.
    pub fn start(
        repl: &Repl,
        shard: &mut Shard,
        req: FeedRequest,
        now_ms: u64,
        out: &mut Vec<u8>,
    ) -> FeedState {
        let k = req.shard;
        let (journal, created) = repl.journal_or_new(k);
        if created {
            shard.set_effect_sink(Box::new(journal.clone()));
        }
        let ids = lock(&repl.ids).clone();
        let feeder = Feeder::start(journal, &ids, k as u32, repl.cores as u32, req.asked, out);
        let full = feeder.is_full();
        let acked = if full { 0 } else { feeder.sent() };
        tracing::info!(
            shard = k,
            replica = %format!("{}:{}", req.ip, req.port),
            "Replica flow {k} starts: {}",
            if full {
                "full sync".to_string()
            } else {
                format!("partial resync from offset {}", req.asked.map_or(0, |a| a.1))
            }
        );
        let mut replicas = lock(&repl.replicas);
        let i = match replicas.iter().position(|r| r.id == req.replica_id) {
            Some(i) => i,
            None => {
                replicas.push(ReplicaInfo {
                    id: req.replica_id.clone(),
                    ip: req.ip.clone(),
                    port: req.port,
                    acked: vec![0; repl.cores],
                    connected: vec![false; repl.cores],
                    loading: vec![false; repl.cores],
                    last_ack_ms: now_ms,
                    copied_keys: vec![0; repl.cores],
                    copied_bytes: vec![0; repl.cores],
                    pending: 0,
                    any_full: false,
                    asked_partial: false,
                });
                replicas.len() - 1
            }
        };
        let r = &mut replicas[i];
        r.ip.clone_from(&req.ip);
        r.port = req.port;
        r.connected[k] = true;
        r.loading[k] = full;
        r.acked[k] = acked;
        r.last_ack_ms = now_ms;
        // A sync is counted once all of a replica's flows started: full if any is.
        r.pending += 1;
        r.any_full |= full;
        r.asked_partial |= req.asked.is_some();
        if r.pending >= repl.cores {
            let s = &repl.stats;
            if !r.any_full {
                s.partial_ok.fetch_add(1, Ordering::Relaxed);
            } else {
                s.full.fetch_add(1, Ordering::Relaxed);
                if r.asked_partial {
                    s.partial_err.fetch_add(1, Ordering::Relaxed);
                }
            }
            r.pending = 0;
            r.any_full = false;
            r.asked_partial = false;
        }
        FeedState {
            req,
            feeder,
            line: Vec::new(),
        }
    }

    /// Appends what is due to `out`. An error ends the flow (the replica lagged out).
    pub fn fill(&mut self, repl: &Repl, shard: &Shard, out: &mut Vec<u8>) -> Result<(), String> {
        let walking = self.feeder.walking();
        let before = out.len();
        self.feeder
            .fill(shard, out, FILL_BUDGET)
            .map_err(|e| e.to_string())?;
        if walking {
            // A handoff shows the copy's progress; a full sync is counted as it goes.
            let k = self.req.shard;
            let (keys, bytes) = (self.feeder.walked(), (out.len() - before) as u64);
            let done = !self.feeder.walking();
            repl.update_replica(&self.req.replica_id, |r| {
                r.copied_keys[k] = keys;
                r.copied_bytes[k] += bytes;
                if done {
                    r.loading[k] = false;
                }
            });
        }
        Ok(())
    }

    /// Journal bytes written that this flow has not shipped yet.
    pub fn unshipped(&self) -> u64 {
        self.feeder.unshipped()
    }

    /// `ip:port` of the replica, for the log.
    pub fn replica_addr(&self) -> String {
        format!("{}:{}", self.req.ip, self.req.port)
    }

    /// Whether the snapshot walk still has items to send.
    pub fn walking(&self) -> bool {
        self.feeder.walking()
    }

    /// Takes bytes the replica sent: `REPLCONF ACK <offset>` lines (or bare `ACK
    /// <offset>`), each the journal offset it applied on this flow.
    pub fn on_input(&mut self, repl: &Repl, bytes: &[u8], now_ms: u64) -> Result<(), String> {
        if let Some(offset) = take_acks(&mut self.line, bytes)? {
            let k = self.req.shard;
            repl.update_replica(&self.req.replica_id, |r| {
                r.acked[k] = r.acked[k].max(offset);
                r.last_ack_ms = now_ms;
            });
        }
        Ok(())
    }

    /// The flow's connection closed: the replica is gone from INFO once none of its flows
    /// is connected.
    pub fn on_close(&mut self, repl: &Repl) {
        let k = self.req.shard;
        repl.update_replica(&self.req.replica_id, |r| {
            r.connected[k] = false;
            r.loading[k] = false;
        });
        lock(&repl.replicas).retain(|r| r.connected.iter().any(|c| *c));
        tracing::info!(shard = k, replica = %self.replica_addr(), "Replica flow closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_read_across_reads_and_anything_else_is_an_error() {
        let mut line = Vec::new();
        assert_eq!(
            take_acks(&mut line, b"REPLCONF ACK 12\r\nREPLCONF A"),
            Ok(Some(12))
        );
        assert_eq!(take_acks(&mut line, b"CK 40\r\n"), Ok(Some(40)));
        assert_eq!(take_acks(&mut line, b"ack 7\n"), Ok(Some(7)));
        assert_eq!(take_acks(&mut line, b""), Ok(None));
        assert!(take_acks(&mut Vec::new(), b"SET a b\r\n").is_err());
        assert!(take_acks(&mut Vec::new(), b"REPLCONF ACK -1\r\n").is_err());
        assert!(take_acks(&mut Vec::new(), &[b'x'; 100]).is_err());
    }
}
