//! The snapshot walk of a full sync: a shard's items, read in slab order a bounded chunk
//! at a time while the shard keeps serving. See the crate doc for why the chunks and the
//! journal, sent down one flow in the order they happen, leave the replica exact.

use baton_engine::shard::Effect;
use baton_engine::Shard;

use crate::record::{encode, encode_end, encode_item, Record};

/// Where a full sync's walk over one shard stands.
#[derive(Debug, Default, Clone)]
pub struct SnapshotWalk {
    /// The next slab position to read.
    pos: usize,
    /// Items sent so far.
    items: u64,
    done: bool,
}

impl SnapshotWalk {
    pub fn new() -> SnapshotWalk {
        SnapshotWalk::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Items sent so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Appends the items of the next slab positions to `out` as ITEM records, until about
    /// `max_bytes` were added or the slab ends; at the end, appends the END record.
    /// Returns whether the walk is done. Expired items not yet reclaimed go too: the
    /// primary's delete for them follows in the journal, and until then the replica holds
    /// what the primary holds.
    pub fn next_chunk(&mut self, shard: &Shard, max_bytes: usize, out: &mut Vec<u8>) -> bool {
        if self.done {
            return true;
        }
        let store = shard.store();
        let start = out.len();
        while self.pos < store.slab_len() && out.len() - start < max_bytes {
            if let Some((key, e)) = store.at(self.pos) {
                if e.hash().is_some()
                    || e.list().is_some()
                    || e.set().is_some()
                    || e.zset().is_some()
                {
                    encode(&Record::Item(Effect::put(e)), out);
                } else {
                    let bits = e.item_bits();
                    encode_item(key, e.value(), e.expire_at(), e.flags(), e.cas(), bits, out);
                }
                self.items += 1;
            }
            self.pos += 1;
        }
        if self.pos >= store.slab_len() {
            encode_end(out);
            self.done = true;
        }
        self.done
    }
}
