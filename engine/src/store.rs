//! The per-core key/value table. Knows entries and their absolute expiry; knows nothing
//! about commands, protocols or threads. Time is always passed in (`now`, unix ms).
//!
//! Layout: entries live in a slab (`Vec<Slot>`) and a hashbrown [`HashTable`] maps a key's
//! hash to its slab index. A key keeps its slab index for as long as it exists, and freed
//! slots are reused through a free list. That stable index is what makes SCAN a real
//! cursor: the cursor is a slab position, so a key present for a whole scan is returned
//! exactly once however much the table grows, shrinks or rehashes meanwhile. It also gives
//! RANDOMKEY and the active expiry cycle O(1) access to "some slot".
//!
//! ```text
//!   HashTable<u32>            slots: Vec<Slot>
//!   ┌──────────────┐          ┌───────────────────────────┐
//!   │ h(k) ─► 2    │ ───────► │ 0 Full { key, entry }     │
//!   │ h(j) ─► 0    │          │ 1 Free { next: NONE }     │ ◄─ free list head
//!   └──────────────┘          │ 2 Full { key, entry }     │
//!                             └───────────────────────────┘
//! ```
//!
//! The slab keeps its high-water mark: a slot freed in the middle is reused by the next
//! insert but never moved, because moving a live key would break running scans.

use ahash::RandomState;
use bytes::Bytes;
use hashbrown::HashTable;

/// Absolute expiry in unix milliseconds; `NO_EXPIRY` means the key is persistent.
pub const NO_EXPIRY: u64 = 0;

/// End of the free list.
const NONE: u32 = u32::MAX;

/// One stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value, exactly sized: a boxed slice is 8 bytes smaller than a `Vec` per key.
    pub value: Box<[u8]>,
    /// Absolute expiry in unix ms, or [`NO_EXPIRY`].
    pub expire_at: u64,
    /// memcached's opaque 32-bit client flags.
    pub flags: u32,
    /// memcached's CAS unique; bumped on every write to the item.
    pub cas: u64,
}

impl Entry {
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != NO_EXPIRY && self.expire_at <= now
    }
}

/// A value lifted out of one shard to be written into another (cross-core RENAME, COPY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSnapshot {
    pub value: Bytes,
    pub expire_at: u64,
    pub flags: u32,
}

/// One slab position.
enum Slot {
    Full {
        key: Box<[u8]>,
        entry: Entry,
    },
    /// A freed position; `next` chains the free list.
    Free {
        next: u32,
    },
}

/// The table itself. Expired entries may still sit in it until touched; every lookup
/// through [`Store::get`] treats them as absent.
#[derive(Default)]
pub struct Store {
    /// Slab indices, keyed by the hash of the key stored in that slot.
    table: HashTable<u32>,
    slots: Vec<Slot>,
    /// Head of the free list of `Slot::Free` positions; [`NONE`] when empty.
    free: Option<u32>,
    hasher: RandomState,
    expires: usize,
}

fn key_of(slots: &[Slot], idx: u32) -> &[u8] {
    match &slots[idx as usize] {
        Slot::Full { key, .. } => key,
        // The table only ever holds indices of full slots.
        Slot::Free { .. } => unreachable!("table points at a free slot"),
    }
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Number of entries held, expired-but-unreclaimed ones included.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Number of entries that carry an expiry.
    pub fn expires(&self) -> usize {
        self.expires
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The slab index holding `key`, expired or not.
    pub(crate) fn index_of(&self, key: &[u8]) -> Option<u32> {
        let h = self.hash(key);
        self.table
            .find(h, |&i| key_of(&self.slots, i) == key)
            .copied()
    }

    pub(crate) fn entry_at(&self, idx: u32) -> &Entry {
        match &self.slots[idx as usize] {
            Slot::Full { entry, .. } => entry,
            Slot::Free { .. } => unreachable!("index of a free slot"),
        }
    }

    fn entry_at_mut(&mut self, idx: u32) -> &mut Entry {
        match &mut self.slots[idx as usize] {
            Slot::Full { entry, .. } => entry,
            Slot::Free { .. } => unreachable!("index of a free slot"),
        }
    }

    /// The entry for `key` whether expired or not, for the shard's single-probe lookup.
    pub(crate) fn get_any(&self, key: &[u8]) -> Option<&Entry> {
        self.index_of(key).map(|i| self.entry_at(i))
    }

    /// The live entry for `key`, or `None` (an expired entry counts as absent).
    pub fn get(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_any(key).filter(|e| !e.is_expired(now))
    }

    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let idx = self.index_of(key)?;
        Some(self.entry_at_mut(idx)).filter(|e| !e.is_expired(now))
    }

    /// Whether `key` holds an expired entry (to be reclaimed by the caller's write path).
    pub fn is_expired(&self, key: &[u8], now: u64) -> bool {
        self.get_any(key).is_some_and(|e| e.is_expired(now))
    }

    /// Inserts or replaces; returns the previous entry, expired or not.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        if entry.expire_at != NO_EXPIRY {
            self.expires += 1;
        }
        if let Some(idx) = self.index_of(key) {
            let old = std::mem::replace(self.entry_at_mut(idx), entry);
            if old.expire_at != NO_EXPIRY {
                self.expires -= 1;
            }
            return Some(old);
        }
        let slot = Slot::Full {
            key: key.into(),
            entry,
        };
        let idx = match self.free {
            Some(idx) => {
                let Slot::Free { next } = std::mem::replace(&mut self.slots[idx as usize], slot)
                else {
                    unreachable!("free list points at a full slot");
                };
                self.free = (next != NONE).then_some(next);
                idx
            }
            None => {
                assert!(self.slots.len() < NONE as usize, "store slab is full");
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let h = self.hash(key);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .insert_unique(h, idx, |&i| hasher.hash_one(key_of(slots, i)));
        None
    }

    /// Removes `key`, expired or not.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let h = self.hash(key);
        let slots = &self.slots;
        let found = self
            .table
            .find_entry(h, |&i| key_of(slots, i) == key)
            .ok()?;
        let (idx, _) = found.remove();
        let next = self.free.unwrap_or(NONE);
        let old = std::mem::replace(&mut self.slots[idx as usize], Slot::Free { next });
        self.free = Some(idx);
        let Slot::Full { entry, .. } = old else {
            unreachable!("table points at a free slot");
        };
        if entry.expire_at != NO_EXPIRY {
            self.expires -= 1;
        }
        Some(entry)
    }

    /// Sets the absolute expiry of a present key (expired or not); returns false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64) -> bool {
        let Some(idx) = self.index_of(key) else {
            return false;
        };
        let e = self.entry_at_mut(idx);
        let (had, has) = (e.expire_at != NO_EXPIRY, expire_at != NO_EXPIRY);
        e.expire_at = expire_at;
        match (had, has) {
            (false, true) => self.expires += 1,
            (true, false) => self.expires -= 1,
            _ => {}
        }
        true
    }

    /// Removes every entry and gives the memory back.
    pub fn clear(&mut self) {
        self.table = HashTable::new();
        self.slots = Vec::new();
        self.free = None;
        self.expires = 0;
    }

    /// Number of slab positions (full or free); valid cursors and slot indices are below it.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The entry at slab position `idx`, if that position holds one (expired or not).
    pub fn slot(&self, idx: usize) -> Option<(&[u8], &Entry)> {
        match self.slots.get(idx)? {
            Slot::Full { key, entry } => Some((key, entry)),
            Slot::Free { .. } => None,
        }
    }

    /// Visits entries from the position `cursor` names, calling `f` for each (expired
    /// ones included; callers filter with `now`), until `count` entries were visited or
    /// `10 * count` positions walked; returns the next cursor, 0 when the walk is complete.
    ///
    /// A key keeps its slab position for its whole life, so every key present from the
    /// first call (cursor 0) to the last is visited exactly once; keys added or removed
    /// meanwhile may or may not be.
    ///
    /// A cursor is `end_log2 << 32 | position`: the first call fixes the end of the walk
    /// at the slab length rounded up to a power of two, so a scan terminates even while
    /// inserts outpace it (new keys land past the end). Cursors are below 2^38, leaving the
    /// high bits to the server to name the core.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        let (end_log2, mut pos) = if cursor == 0 {
            let len = self.slots.len().max(1).next_power_of_two();
            (len.trailing_zeros() as u64, 0usize)
        } else {
            (cursor >> 32, (cursor & 0xFFFF_FFFF) as usize)
        };
        let end = match 1usize.checked_shl(end_log2.min(63) as u32) {
            Some(end) => end.min(self.slots.len()),
            None => self.slots.len(),
        };
        let count = count.max(1);
        let mut budget = count.saturating_mul(10);
        let mut visited = 0usize;
        while pos < end && visited < count && budget > 0 {
            if let Slot::Full { key, entry } = &self.slots[pos] {
                f(key, entry);
                visited += 1;
            }
            pos += 1;
            budget -= 1;
        }
        if pos >= end {
            0
        } else {
            end_log2 << 32 | pos as u64
        }
    }

    /// Iterates every entry (expired ones included; callers filter with `now`).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Full { key, entry } => Some((&**key, entry)),
            Slot::Free { .. } => None,
        })
    }

    /// The `n`th entry in slab order. O(n); RANDOMKEY uses [`Store::slot`] instead.
    pub fn nth(&self, n: usize) -> Option<(&[u8], &Entry)> {
        self.iter().nth(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: &[u8], expire_at: u64) -> Entry {
        Entry {
            value: v.into(),
            expire_at,
            flags: 0,
            cas: 0,
        }
    }

    #[test]
    fn insert_get_replace_remove() {
        let mut s = Store::new();
        assert!(s.insert(b"a", entry(b"1", NO_EXPIRY)).is_none());
        assert_eq!(s.get(b"a", 10).unwrap().value[..], b"1"[..]);
        let old = s.insert(b"a", entry(b"2", 100)).unwrap();
        assert_eq!(old.value[..], b"1"[..]);
        assert_eq!((s.len(), s.expires()), (1, 1));
        assert!(s.get(b"a", 100).is_none(), "expired at its deadline");
        assert!(s.is_expired(b"a", 100));
        assert_eq!(s.remove(b"a").unwrap().value[..], b"2"[..]);
        assert_eq!((s.len(), s.expires()), (0, 0));
        assert!(s.remove(b"a").is_none());
    }

    #[test]
    fn expiry_count_follows_set_expire() {
        let mut s = Store::new();
        s.insert(b"a", entry(b"1", NO_EXPIRY));
        assert!(s.set_expire(b"a", 50));
        assert_eq!(s.expires(), 1);
        assert!(s.set_expire(b"a", 60));
        assert_eq!(s.expires(), 1);
        assert!(s.set_expire(b"a", NO_EXPIRY));
        assert_eq!(s.expires(), 0);
        assert!(!s.set_expire(b"missing", 5));
    }

    #[test]
    fn freed_slots_are_reused_without_moving_others() {
        let mut s = Store::new();
        for i in 0..10u8 {
            s.insert(&[i], entry(&[i], NO_EXPIRY));
        }
        s.remove(&[3]);
        s.remove(&[7]);
        assert_eq!(s.slot(3).map(|(k, _)| k.to_vec()), None);
        s.insert(b"x", entry(b"x", NO_EXPIRY));
        s.insert(b"y", entry(b"y", NO_EXPIRY));
        assert_eq!(s.slot_count(), 10, "both holes reused");
        for i in [0u8, 1, 2, 4, 5, 6, 8, 9] {
            assert_eq!(s.slot(i as usize).unwrap().0, &[i]);
            assert_eq!(s.get(&[i], 0).unwrap().value[..], [i]);
        }
        assert_eq!(s.get(b"x", 0).unwrap().value[..], b"x"[..]);
        assert_eq!(s.iter().count(), 10);
    }

    #[test]
    fn scan_returns_stable_keys_exactly_once_across_growth_and_removal() {
        let mut s = Store::new();
        for i in 0..1000u32 {
            s.insert(&i.to_be_bytes(), entry(b"v", NO_EXPIRY));
        }
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0;
        let mut round = 0u32;
        loop {
            cursor = s.scan(cursor, 7, |k, _| *seen.entry(k.to_vec()).or_insert(0) += 1);
            // Churn between calls: grow the table (forcing rehashes) and delete odd keys.
            for j in 0..50u32 {
                s.insert(&(100_000 + round * 50 + j).to_be_bytes(), entry(b"n", 0));
            }
            s.remove(&(round * 2 + 1).to_be_bytes());
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in (0..1000u32).step_by(2) {
            assert_eq!(seen.get(&i.to_be_bytes()[..]), Some(&1), "key {i}");
        }
        assert!(seen.values().all(|&n| n == 1), "no key twice");
    }

    #[test]
    fn scan_terminates_while_inserts_outpace_it() {
        let mut s = Store::new();
        for i in 0..100u32 {
            s.insert(&i.to_be_bytes(), entry(b"v", NO_EXPIRY));
        }
        let (mut cursor, mut calls, mut seen) = (0, 0, 0);
        loop {
            cursor = s.scan(cursor, 2, |_, _| seen += 1);
            for j in 0..10u32 {
                s.insert(
                    &(1000 + calls * 10 + j).to_be_bytes(),
                    entry(b"n", NO_EXPIRY),
                );
            }
            calls += 1;
            if cursor == 0 {
                break;
            }
            assert!(calls < 1000, "scan does not end");
        }
        assert!(
            (100..=128).contains(&seen),
            "walked up to the end fixed at the start"
        );
    }

    #[test]
    fn scan_bounds_work_on_sparse_slabs() {
        let mut s = Store::new();
        for i in 0..100u32 {
            s.insert(&i.to_be_bytes(), entry(b"v", NO_EXPIRY));
        }
        for i in 0..99u32 {
            s.remove(&i.to_be_bytes());
        }
        let mut n = 0;
        let next = s.scan(0, 1, |_, _| n += 1);
        assert_eq!(
            (next & 0xFFFF_FFFF, n),
            (10, 0),
            "walks at most 10 * count positions"
        );
        assert_eq!(next >> 32, 7, "ends at 128 >= 100 slots");
        assert_eq!(
            s.scan(7 << 32 | 99, 10, |_, _| n += 1),
            0,
            "the last key ends the walk"
        );
        assert_eq!(n, 1);
        assert_eq!(
            s.scan(u64::MAX, 10, |_, _| n += 1),
            0,
            "past the end is done"
        );
        assert_eq!(
            Store::new().scan(0, 10, |_, _| n += 1),
            0,
            "an empty store is done"
        );
    }

    #[test]
    fn clear_empties_everything() {
        let mut s = Store::new();
        s.insert(b"a", entry(b"1", 5));
        s.remove(b"a");
        s.insert(b"b", entry(b"1", 5));
        s.clear();
        assert_eq!((s.len(), s.expires(), s.slot_count()), (0, 0, 0));
        assert!(s.get(b"b", 0).is_none());
        s.insert(b"c", entry(b"1", NO_EXPIRY));
        assert_eq!(s.nth(0).unwrap().0, b"c");
    }
}
