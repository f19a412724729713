//! The slot tap: while a node streams slots to another one (CLUSTER MIGRATESLOTS), each
//! shard notes which keys of those slots its writes changed, so the stream can send
//! their values again after its snapshot walk passed them.
//!
//! The tap sits beside the effect sink on the sealed write path and sees every change
//! (client writes of both protocols, expiry and eviction deletions, flushes) as the key
//! it touched. It keeps the key's name, not the effect: the stream re-reads the key's
//! value when it sends it, so a key changed a thousand times is sent once per catch-up
//! pass, whatever the effect kinds were (an incremental list push, a hash field delete,
//! a type change), and memory is bounded by how many distinct keys changed, not by how
//! many writes ran.
//!
//! ```text
//!   command ─► write path ─► Store
//!                  ├──► Effect ─► EffectSink (the replication journal)
//!                  └──► key in a tapped slot? ─► dirty set (this module)
//! ```
//!
//! Cost when no migration runs: one `Option` test per change.

use std::collections::HashSet;

use baton_ring::SLOTS;
use bytes::Bytes;

use super::Shard;

/// A set of cluster slots, one bit each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSet(Box<[u64]>);

impl Default for SlotSet {
    fn default() -> SlotSet {
        SlotSet(vec![0; usize::from(SLOTS) / 64].into_boxed_slice())
    }
}

impl SlotSet {
    /// The set of `slots`.
    pub fn of(slots: &[u16]) -> SlotSet {
        let mut s = SlotSet::default();
        for &slot in slots {
            s.insert(slot);
        }
        s
    }

    pub fn insert(&mut self, slot: u16) {
        let s = usize::from(slot % SLOTS);
        self.0[s / 64] |= 1 << (s % 64);
    }

    pub fn contains(&self, slot: u16) -> bool {
        let s = usize::from(slot % SLOTS);
        self.0[s / 64] & (1 << (s % 64)) != 0
    }

    /// Whether `key` hashes to a slot of the set.
    pub fn has_key(&self, key: &[u8]) -> bool {
        self.contains(baton_ring::slot(key))
    }
}

/// One shard's tap: the slots watched and the keys of them changed since the last drain.
pub struct SlotTap {
    slots: SlotSet,
    dirty: HashSet<Bytes>,
    /// Most keys `dirty` may hold; past it the tap overflows (the stream fails).
    limit: usize,
    overflowed: bool,
    /// A flush emptied the shard while tapped (every key sent from it is gone).
    flushed: bool,
}

/// What [`Shard::tap_drain`] took.
#[derive(Debug, Default)]
pub struct Drained {
    /// Keys changed since the last drain (up to the number asked).
    pub keys: Vec<Bytes>,
    /// Keys still in the dirty set after this drain.
    pub left: usize,
    pub overflowed: bool,
    pub flushed: bool,
}

impl SlotTap {
    pub(super) fn note(&mut self, key: &[u8]) {
        if !self.slots.has_key(key) || self.dirty.contains(key) {
            return;
        }
        if self.dirty.len() >= self.limit {
            self.overflowed = true;
            return;
        }
        self.dirty.insert(Bytes::copy_from_slice(key));
    }
}

impl Shard {
    /// Starts noting, for job `id`, the keys of `slots` that writes change, at most
    /// `limit` of them between two drains (replacing the job's tap if it had one). Jobs'
    /// taps are independent: each notes the keys of its own slots.
    pub fn start_tap(&mut self, id: u64, slots: SlotSet, limit: usize) {
        self.stop_tap(id);
        self.taps.push((
            id,
            SlotTap {
                slots,
                dirty: HashSet::new(),
                limit,
                overflowed: false,
                flushed: false,
            },
        ));
    }

    /// Stops job `id`'s tap and forgets the keys it noted.
    pub fn stop_tap(&mut self, id: u64) {
        self.taps.retain(|(t, _)| *t != id);
    }

    /// Whether job `id` has a tap here.
    pub fn tapped(&self, id: u64) -> bool {
        self.taps.iter().any(|(t, _)| *t == id)
    }

    fn tap_of(&mut self, id: u64) -> Option<&mut SlotTap> {
        self.taps
            .iter_mut()
            .find(|(t, _)| *t == id)
            .map(|(_, tap)| tap)
    }

    /// Takes up to `max` of the keys job `id`'s tap noted since the last drain (`None`
    /// without one).
    pub fn tap_drain(&mut self, id: u64, max: usize) -> Option<Drained> {
        let tap = self.tap_of(id)?;
        let keys: Vec<Bytes> = tap.dirty.iter().take(max).cloned().collect();
        for k in &keys {
            tap.dirty.remove(k);
        }
        Some(Drained {
            keys,
            left: tap.dirty.len(),
            overflowed: tap.overflowed,
            flushed: tap.flushed,
        })
    }

    /// Puts `key` back among the keys job `id` must send (one it read but could not send
    /// yet).
    pub fn tap_note(&mut self, id: u64, key: &[u8]) {
        if let Some(tap) = self.tap_of(id) {
            tap.note(key);
        }
    }

    /// The write path's hook: `key` changed (`None`: the whole shard was flushed).
    #[inline]
    pub(super) fn tap_changed(&mut self, key: Option<&[u8]>) {
        for (_, tap) in &mut self.taps {
            match key {
                Some(k) => tap.note(k),
                None => tap.flushed = true,
            }
        }
    }

    /// The write path's hook for a key read in place.
    #[inline]
    pub(super) fn tap_key(&mut self, key: &[u8]) {
        for (_, tap) in &mut self.taps {
            tap.note(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Effect;

    fn key_in(slot: u16, not: bool) -> Vec<u8> {
        (0..)
            .map(|i| format!("k{i}").into_bytes())
            .find(|k| (baton_ring::slot(k) == slot) != not)
            .unwrap()
    }

    #[test]
    fn a_slot_set_holds_its_slots() {
        let s = SlotSet::of(&[0, 63, 64, 16383]);
        assert!(s.contains(0) && s.contains(63) && s.contains(64) && s.contains(16383));
        assert!(!s.contains(1) && !s.contains(65) && !s.contains(16382));
    }

    #[test]
    fn every_kind_of_change_to_a_tapped_slot_is_noted_once() {
        let mut sh = Shard::new(0);
        let (a, other) = (key_in(7, false), key_in(7, true));
        let now = 1_000;
        assert!(sh.tap_drain(1, 10).is_none(), "no tap");
        sh.put(&other, b"x", crate::NO_EXPIRY, 0);
        sh.start_tap(1, SlotSet::of(&[7]), 100);
        // A second job on another slot notes only its own keys.
        sh.start_tap(2, SlotSet::of(&[8]), 100);
        assert!(sh.tapped(1) && sh.tapped(2));
        // A write, an expiry change, a delete: one key noted; the other slot's not.
        sh.put(&a, b"1", crate::NO_EXPIRY, 0);
        sh.put(&a, b"2", crate::NO_EXPIRY, 0);
        sh.put(&other, b"y", crate::NO_EXPIRY, 0);
        let d = sh.tap_drain(1, 10).unwrap();
        assert_eq!(d.keys, vec![Bytes::from(a.clone())]);
        assert!(!d.overflowed && !d.flushed && d.left == 0);
        // An expiry passing (lazy reclaim) is a change too.
        sh.put(&a, b"3", now + 5, 0);
        sh.tap_drain(1, 10);
        assert!(sh.lookup(&a, now + 10).is_none());
        assert_eq!(
            sh.tap_drain(1, 10).unwrap().keys,
            vec![Bytes::from(a.clone())]
        );
        // A replayed effect of any kind is noted by its key; a flush sets the flag.
        sh.apply(&Effect::Del {
            key: Bytes::from(a.clone()),
            cause: crate::shard::DelCause::Deleted,
        });
        sh.flush();
        let d = sh.tap_drain(1, 10).unwrap();
        assert!(d.flushed);
        let d = sh.tap_drain(2, 10).unwrap();
        assert!(d.keys.is_empty() && d.flushed, "slot 8 was not written");
        sh.stop_tap(1);
        assert!(!sh.tapped(1) && sh.tapped(2));
    }

    #[test]
    fn the_tap_overflows_past_its_limit_and_drains_in_parts() {
        let mut sh = Shard::new(0);
        let slots: Vec<u16> = (0..baton_ring::SLOTS).collect();
        sh.start_tap(1, SlotSet::of(&slots), 3);
        for i in 0..3 {
            sh.put(format!("k{i}").as_bytes(), b"v", crate::NO_EXPIRY, 0);
        }
        let d = sh.tap_drain(1, 2).unwrap();
        assert_eq!((d.keys.len(), d.left, d.overflowed), (2, 1, false));
        for i in 3..6 {
            sh.put(format!("k{i}").as_bytes(), b"v", crate::NO_EXPIRY, 0);
        }
        let d = sh.tap_drain(1, 10).unwrap();
        assert_eq!((d.keys.len(), d.left, d.overflowed), (3, 0, true));
    }
}
