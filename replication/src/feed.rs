//! The primary's side of one flow: what to send a replica that asks for shard `k`, and
//! what to send next as the journal grows and the snapshot walk goes on.
//!
//! A replica asks with the replication id it knows and the journal offset it holds for
//! the flow. The primary resumes the flow from its backlog (a partial sync) when the id is
//! its own, or its previous one up to the offset where that history ended (Redis's
//! `master_replid2` and `second_repl_offset`), and the backlog still holds the offset.
//! Otherwise it starts a full sync: a hello at the journal's current end, then the walk's
//! items interleaved, in order, with the journal records that follow.
//!
//! A feeder never buffers on its own: each [`Feeder::fill`] appends to the connection's
//! output what is due, up to a budget, and the journal records it has not shipped yet
//! stay in the backlog. A replica so slow that the backlog drops records it still needs
//! has lagged out: the flow ends with [`Lagged`] and the replica starts again.

use baton_engine::Shard;

use crate::journal::{Journal, Resume};
use crate::record::{encode_hello, Hello, ReplId, VERSION};
use crate::snapshot::SnapshotWalk;

/// A primary's replication ids: its own, and the one it took over from when it was
/// promoted, valid on each flow up to that flow's offset at the promotion (Redis's
/// `master_replid2` and `second_repl_offset`, one offset per flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplIds {
    pub id: ReplId,
    pub id2: ReplId,
    /// Per flow: offsets up to this one, under `id2`, are the same history as under `id`.
    pub second_offsets: Vec<u64>,
}

impl ReplIds {
    pub fn new(id: ReplId) -> ReplIds {
        ReplIds {
            id,
            id2: [b'0'; 40],
            second_offsets: Vec::new(),
        }
    }

    /// After a promotion at these journal offsets (one per flow): a new id, the old one
    /// kept as `id2` so that the old primary's other replicas resume from this one.
    pub fn promote(&mut self, new_id: ReplId, at: Vec<u64>) {
        self.id2 = self.id;
        self.id = new_id;
        self.second_offsets = at;
    }

    /// Whether a replica that knows `id` at `offset` on flow `shard` shares this
    /// primary's history.
    pub fn continues(&self, id: &ReplId, shard: u32, offset: u64) -> bool {
        *id == self.id
            || (*id == self.id2
                && self
                    .second_offsets
                    .get(shard as usize)
                    .is_some_and(|&at| offset <= at))
    }
}

/// The replica fell behind further than the backlog reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the replica lagged past the backlog: it needs offset {needed}, the backlog starts at {start}"
)]
pub struct Lagged {
    pub needed: u64,
    pub start: u64,
}

/// Each feeder's pin in its backlog.
static NEXT_PIN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One flow being fed. It pins the journal records it has yet to ship in the backlog
/// (within the backlog's pin limit: a replica's output buffer limit), and unpins when
/// dropped.
#[derive(Debug)]
pub struct Feeder {
    pin: u64,
    journal: Journal,
    /// The journal offset shipped so far (the next record to send starts here).
    sent: u64,
    walk: Option<SnapshotWalk>,
    /// Items of a walk that is over.
    walked: u64,
    full: bool,
}

impl Feeder {
    /// Starts the flow of primary shard `shard` (of `cores`) for a replica that asked with
    /// `asked` (its replication id and offset for this flow; `None` for a first sync),
    /// appending the hello, and for a partial sync the backlog's records since the
    /// offset, to `out`.
    pub fn start(
        journal: &Journal,
        ids: &ReplIds,
        shard: u32,
        cores: u32,
        asked: Option<(ReplId, u64)>,
        out: &mut Vec<u8>,
    ) -> Feeder {
        let mut backlog = journal.backlog();
        let pin = NEXT_PIN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let end = backlog.end();
        backlog.pin(pin, end);
        let partial = asked
            .filter(|(id, offset)| ids.continues(id, shard, *offset))
            .and_then(|(_, offset)| backlog.since(offset).ok().map(|parts| (offset, parts)));
        let mut hello = Hello {
            version: VERSION,
            shard,
            cores,
            replid: ids.id,
            offset: backlog.end(),
            full: true,
        };
        let feeder = match partial {
            Some((offset, parts)) => {
                hello.offset = offset;
                hello.full = false;
                encode_hello(&hello, out);
                for part in parts {
                    out.extend_from_slice(part);
                }
                Feeder {
                    pin,
                    journal: journal.clone(),
                    sent: backlog.end(),
                    walk: None,
                    walked: 0,
                    full: false,
                }
            }
            None => {
                encode_hello(&hello, out);
                Feeder {
                    pin,
                    journal: journal.clone(),
                    sent: backlog.end(),
                    walk: Some(SnapshotWalk::new()),
                    walked: 0,
                    full: true,
                }
            }
        };
        drop(backlog);
        feeder
    }

    /// Whether this flow began with a full sync.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Whether a full sync's walk is still going.
    pub fn walking(&self) -> bool {
        self.walk.is_some()
    }

    /// Items the snapshot walk has sent so far (0 for a partial sync).
    pub fn walked(&self) -> u64 {
        self.walked + self.walk.as_ref().map_or(0, SnapshotWalk::items)
    }

    /// The journal offset shipped so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Appends what is due to `out`: the journal records written since the last call,
    /// then, during a full sync and while `out` holds less than `budget` bytes, the next
    /// chunks of the walk (each chunk after the journal records that precede it, so the
    /// flow keeps the shard's order).
    pub fn fill(&mut self, shard: &Shard, out: &mut Vec<u8>, budget: usize) -> Result<(), Lagged> {
        self.ship_journal(out)?;
        while out.len() < budget {
            let Some(walk) = &mut self.walk else { break };
            let room = budget - out.len();
            if walk.next_chunk(shard, room.min(64 * 1024), out) {
                self.walked = walk.items();
                self.walk = None;
            }
        }
        Ok(())
    }

    /// Journal bytes written that this flow has not shipped yet.
    pub fn unshipped(&self) -> u64 {
        self.journal.backlog().end().saturating_sub(self.sent)
    }

    fn ship_journal(&mut self, out: &mut Vec<u8>) -> Result<(), Lagged> {
        let mut backlog = self.journal.backlog();
        match backlog.since(self.sent) {
            Ok(parts) => {
                for part in parts {
                    out.extend_from_slice(part);
                }
                self.sent = backlog.end();
                backlog.pin(self.pin, self.sent);
                Ok(())
            }
            Err(Resume::Gone { start }) => Err(Lagged {
                needed: self.sent,
                start,
            }),
            // The journal started again below what was shipped (this server's own
            // primary began a full sync): this flow's history is gone.
            Err(Resume::Ahead { end }) => Err(Lagged {
                needed: self.sent,
                start: end,
            }),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.journal.backlog().unpin(self.pin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promoted_primary_continues_its_old_history() {
        let mut ids = ReplIds::new([b'a'; 40]);
        assert!(ids.continues(&[b'a'; 40], 0, 500));
        assert!(!ids.continues(&[b'b'; 40], 0, 0));
        ids.promote([b'b'; 40], vec![1000, 10]);
        assert!(ids.continues(&[b'b'; 40], 0, 2000));
        assert!(
            ids.continues(&[b'a'; 40], 0, 1000),
            "the old id up to the switch"
        );
        assert!(!ids.continues(&[b'a'; 40], 0, 1001), "not past it");
        assert!(
            !ids.continues(&[b'a'; 40], 1, 11),
            "each flow has its own point"
        );
        assert!(!ids.continues(&[b'a'; 40], 2, 0), "no such flow");
    }

    #[test]
    fn a_replica_that_falls_behind_the_backlog_lags_out() {
        let journal = Journal::new(64, 0);
        let mut shard = Shard::new(0);
        shard.set_effect_sink(Box::new(journal.clone()));
        let ids = ReplIds::new([b'a'; 40]);
        let mut out = Vec::new();
        let mut f = Feeder::start(&journal, &ids, 0, 1, None, &mut out);
        assert!(f.is_full());
        f.fill(&shard, &mut out, 1 << 20).unwrap();
        assert!(!f.walking(), "an empty shard's walk ends at once");
        for i in 0..5000u32 {
            shard.put(&i.to_be_bytes(), &[0; 100], baton_engine::NO_EXPIRY, 0);
        }
        let lag = f.fill(&shard, &mut out, 1 << 20).unwrap_err();
        assert_eq!(lag.needed, f.sent());
        assert!(lag.start > lag.needed);
    }
}
