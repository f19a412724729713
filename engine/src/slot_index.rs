//! The store's per-slot key index, kept only in cluster mode: for each of Redis Cluster's
//! 16384 slots, how many keys the store holds and a list of their slab positions, so that
//! CLUSTER COUNTKEYSINSLOT is one read and GETKEYSINSLOT walks only the slot's own keys.
//!
//! The lists are doubly linked through two arrays parallel to the store's slab: a key's
//! slab position never changes while the key exists (see the store's doc), so a position
//! is a stable name for it. That costs 8 bytes per slab position (`next` and `prev`, both
//! `u32`) plus 8 bytes per slot (head and count): 128 KiB per shard. Redis keeps the same
//! lists through its dict entries (two pointers, 16 bytes per key).
//!
//! ```text
//!   heads[slot] ──► pos a ──next──► pos b ──next──► NIL      counts[slot] = 2
//!                   NIL ◄──prev──── pos a ◄──prev──
//! ```
//!
//! A store without cluster mode has no index at all (`Option::None`): nothing is allocated
//! and nothing is hashed on its writes.

use baton_ring::SLOTS;

/// "No position": the end of a list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    next: u32,
    prev: u32,
}

const UNLINKED: Link = Link {
    next: NIL,
    prev: NIL,
};

/// Keys per slot, as lists of slab positions.
pub(crate) struct SlotIndex {
    heads: Box<[u32]>,
    counts: Box<[u32]>,
    /// Indexed by slab position; a free position's link is unused.
    links: Vec<Link>,
}

impl SlotIndex {
    pub fn new() -> SlotIndex {
        SlotIndex {
            heads: vec![NIL; usize::from(SLOTS)].into_boxed_slice(),
            counts: vec![0; usize::from(SLOTS)].into_boxed_slice(),
            links: Vec::new(),
        }
    }

    /// Files the key at slab position `pos` under `slot`.
    pub fn insert(&mut self, pos: u32, slot: u16) {
        let p = pos as usize;
        if self.links.len() <= p {
            self.links.resize(p + 1, UNLINKED);
        }
        let s = usize::from(slot);
        let head = self.heads[s];
        self.links[p] = Link {
            next: head,
            prev: NIL,
        };
        if head != NIL {
            self.links[head as usize].prev = pos;
        }
        self.heads[s] = pos;
        self.counts[s] += 1;
    }

    /// Takes the key at slab position `pos` (filed under `slot`) out of its list.
    pub fn remove(&mut self, pos: u32, slot: u16) {
        let Link { next, prev } = self.links[pos as usize];
        if prev == NIL {
            debug_assert_eq!(self.heads[usize::from(slot)], pos);
            self.heads[usize::from(slot)] = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
        self.links[pos as usize] = UNLINKED;
        self.counts[usize::from(slot)] -= 1;
    }

    /// Keys filed under `slot`.
    pub fn count(&self, slot: u16) -> usize {
        self.counts[usize::from(slot)] as usize
    }

    /// Slab positions of the keys filed under `slot`, most recently added first.
    pub fn positions(&self, slot: u16) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.heads[usize::from(slot)];
        std::iter::from_fn(move || {
            (at != NIL).then(|| {
                let pos = at;
                at = self.links[pos as usize].next;
                pos
            })
        })
    }

    /// Forgets every key (the store was cleared) and gives the links' memory back.
    pub fn clear(&mut self) {
        self.heads.fill(NIL);
        self.counts.fill(0);
        self.links = Vec::new();
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.heads.len() * 4 + self.counts.len() * 4 + self.links.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn listed(ix: &SlotIndex, slot: u16) -> BTreeSet<u32> {
        let v: Vec<u32> = ix.positions(slot).collect();
        assert_eq!(
            v.len(),
            ix.count(slot),
            "count and list agree for slot {slot}"
        );
        v.into_iter().collect()
    }

    #[test]
    fn lists_follow_inserts_and_removes_against_a_model() {
        let mut ix = SlotIndex::new();
        let mut model: BTreeMap<u32, u16> = BTreeMap::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x % 300) as u32;
            // Few slots, so lists get long and removals hit heads, middles and tails.
            let slot = ((x >> 20) % 5) as u16 * 4000;
            match model.remove(&pos) {
                Some(old) => ix.remove(pos, old),
                None => {
                    ix.insert(pos, slot);
                    model.insert(pos, slot);
                }
            }
        }
        for slot in [0u16, 4000, 8000, 12000, 16000, 1, 16383] {
            let want: BTreeSet<u32> = model
                .iter()
                .filter(|(_, s)| **s == slot)
                .map(|(p, _)| *p)
                .collect();
            assert_eq!(listed(&ix, slot), want, "slot {slot}");
        }
        ix.clear();
        assert_eq!(ix.count(0), 0);
        assert_eq!(ix.positions(4000).count(), 0);
    }
}
