//! The per-core key/value table. Knows entries and their absolute expiry; knows nothing
//! about commands, protocols or threads. Time is always passed in (`now`, unix ms).
//!
//! Layout: entries live in a slab (`Vec<Option<Entry>>`, one pointer per position) and an
//! [`IndexTable`] maps a key's hash to its slab index (4 bytes plus a tag byte per table cell,
//! 60-88% full). Each [`Entry`] is one heap block holding header, key and value. A key
//! keeps its slab index for as long as it exists, and freed positions are reused through
//! a free list. That stable index is what makes SCAN a real cursor: the cursor is a slab
//! position, so a key present for a whole scan is returned exactly once however much the
//! table grows, shrinks or rehashes meanwhile. It also gives RANDOMKEY, the active expiry
//! cycle and the eviction policies (which know entries by slab index) O(1) access.
//!
//! ```text
//!   IndexTable (u32)          slab: Vec<Option<Entry>>     heap
//!   ┌──────────────┐          ┌─────────────┐
//!   │ h(k) ─► 2    │ ───────► │ 0 ptr ──────┼──────────►  [hdr|key|value]
//!   │ h(j) ─► 0    │          │ 1 None      │ ◄─ free: [1]
//!   └──────────────┘          │ 2 ptr ──────┼──────────►  [hdr|key|value]
//!                             └─────────────┘
//! ```
//!
//! The slab keeps its high-water mark: a position freed in the middle is reused by the
//! next insert but never moved, because moving a live key would break running scans.
//!
//! The store accounts its own memory ([`Store::memory`]): the allocator size class of
//! every entry plus the slab, free list and table capacity.

use ahash::RandomState;
use bytes::Bytes;

use crate::slot_index::SlotIndex;
use crate::table::IndexTable;

pub use crate::entry::{Entry, NO_EXPIRY};

/// A value lifted out of one shard to be written into another (cross-core RENAME, COPY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCopy {
    /// The string, or a hash's packed pairs.
    pub value: Bytes,
    pub expire_at: u64,
    pub flags: u32,
    /// What `value` is: a string, a packed hash, a hash in its table form (`Boxed`), or
    /// a list's packed elements (`ListPacked`, whatever the list's form); for a set, whose
    /// `value` is always its packed members, `SetInts` for an intset and `SetPacked` for
    /// either other form (both are "hashtable" to OBJECT ENCODING).
    pub kind: crate::entry::Kind,
    /// The data type (a `Boxed` kind is a hash's table or a sorted set's large form).
    pub vtype: crate::entry::ValueType,
}

impl ItemCopy {
    /// A copy of what `e` holds.
    pub fn of(e: &Entry) -> ItemCopy {
        ItemCopy {
            value: Bytes::from(e.value_bytes().into_owned()),
            expire_at: e.expire_at(),
            flags: e.flags(),
            // A list travels packed whatever its form; its length decides the form.
            kind: if e.list().is_some() {
                crate::entry::Kind::ListPacked
            } else {
                match e.set() {
                    Some(crate::set::SetRef::Ints(_)) => crate::entry::Kind::SetInts,
                    Some(_) => crate::entry::Kind::SetPacked,
                    None => e.kind(),
                }
            },
            vtype: e.value_type(),
        }
    }
}

/// The table itself. Expired entries may still sit in it until touched; every lookup
/// through [`Store::get`] treats them as absent.
///
/// Only the shard's write path (this module's parent) can call the methods that change
/// an entry: the compiler guarantees that every write goes through it and is reported.
///
/// ```compile_fail
/// let mut store = baton_engine::Store::new();
/// store.clear();
/// ```
#[derive(Default)]
pub struct Store {
    /// Slab indices, keyed by the hash of the key stored at that position.
    table: IndexTable,
    slab: Vec<Option<Entry>>,
    /// Free slab positions, reused last-freed first.
    free: Vec<u32>,
    hasher: RandomState,
    expires: usize,
    /// Sum of the allocator size classes of the entries held.
    entry_bytes: usize,
    /// Keys per cluster slot; only in cluster mode ([`Store::index_slots`]).
    slots: Option<Box<SlotIndex>>,
}

fn key_of(slab: &[Option<Entry>], idx: u32) -> &[u8] {
    match &slab[idx as usize] {
        Some(e) => e.key(),
        // The table only ever holds indices of full positions.
        None => unreachable!("table points at a free position"),
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

    /// The hash the table files `key` under (also the eviction policy's ghost hash).
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Bytes this store holds: entries by allocator size class, plus the slab, the free
    /// list and the hash table at their capacities.
    pub fn memory(&self) -> usize {
        self.entry_bytes
            + self.slab.capacity() * 8
            + self.free.capacity() * 4
            + self.table.heap_bytes()
            + self.slots.as_ref().map_or(0, |ix| ix.heap_bytes())
    }

    /// Sum of the entries' allocator size classes (the part eviction can free).
    pub fn entry_bytes(&self) -> usize {
        self.entry_bytes
    }

    /// Asks the cache for the table group a lookup of `key` reads first, so that a batch
    /// of commands can fetch the next one's while this one runs; changes nothing.
    #[inline]
    pub fn prefetch(&self, key: &[u8]) {
        self.table.prefetch(self.hash(key));
    }

    /// The slab index holding `key`, expired or not.
    pub(crate) fn index_of(&self, key: &[u8]) -> Option<u32> {
        self.index_of_hashed(key, self.hash(key))
    }

    pub(crate) fn index_of_hashed(&self, key: &[u8], h: u64) -> Option<u32> {
        self.table.find(h, |i| key_of(&self.slab, i) == key)
    }

    pub(crate) fn entry_at(&self, idx: u32) -> &Entry {
        match &self.slab[idx as usize] {
            Some(e) => e,
            None => unreachable!("index of a free position"),
        }
    }

    pub(in crate::shard::write) fn entry_at_mut(&mut self, idx: u32) -> &mut Entry {
        self.entry_mut(idx)
    }

    fn entry_mut(&mut self, idx: u32) -> &mut Entry {
        match &mut self.slab[idx as usize] {
            Some(e) => e,
            None => unreachable!("index of a free position"),
        }
    }

    /// Records a read of the entry at `idx` (its access time and fetched bit) and returns
    /// it. Open to all: a read changes nothing that replication carries.
    pub(crate) fn mark_read(&mut self, idx: u32, now: u64) -> &Entry {
        let e = self.entry_mut(idx);
        e.touch(now);
        e
    }

    /// The entry for `key` whether expired or not, for the shard's single-probe lookup.
    pub(crate) fn get_any(&self, key: &[u8]) -> Option<&Entry> {
        self.index_of(key).map(|i| self.entry_at(i))
    }

    /// The live entry for `key`, or `None` (an expired entry counts as absent).
    pub fn get(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_any(key).filter(|e| !e.is_expired(now))
    }

    /// Whether `key` holds an expired entry (to be reclaimed by the caller's write path).
    pub fn is_expired(&self, key: &[u8], now: u64) -> bool {
        self.get_any(key).is_some_and(|e| e.is_expired(now))
    }

    fn count_in(&mut self, e: &Entry) {
        self.entry_bytes += e.alloc_size();
        if e.has_expiry() {
            self.expires += 1;
        }
    }

    fn count_out(&mut self, e: &Entry) {
        self.entry_bytes -= e.alloc_size();
        if e.has_expiry() {
            self.expires -= 1;
        }
    }

    /// Inserts or replaces the entry for `entry.key()`; returns its slab index and the
    /// previous entry, expired or not (a replacement keeps the slab index).
    pub(in crate::shard::write) fn insert(&mut self, entry: Entry) -> (u32, Option<Entry>) {
        let h = self.hash(entry.key());
        if let Some(idx) = self.index_of_hashed(entry.key(), h) {
            return (idx, Some(self.replace_at(idx, entry)));
        }
        // Grown here, before the new entry is in the slab, by walking the slab in order.
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.table.grow_for_one_more(|| {
            slab.iter()
                .enumerate()
                .filter_map(|(i, e)| e.as_ref().map(|e| (hasher.hash_one(e.key()), i as u32)))
        });
        self.count_in(&entry);
        let idx = match self.free.pop() {
            Some(idx) => {
                debug_assert!(self.slab[idx as usize].is_none());
                self.slab[idx as usize] = Some(entry);
                idx
            }
            None => {
                assert!(self.slab.len() < u32::MAX as usize, "store slab is full");
                let before = self.slab.capacity();
                self.slab.push(Some(entry));
                if self.slab.capacity() != before {
                    // The old slab array was freed.
                    crate::trim::freed(before * std::mem::size_of::<Option<Entry>>());
                }
                (self.slab.len() - 1) as u32
            }
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.table
            .insert_unique(h, idx, |i| hasher.hash_one(key_of(slab, i)));
        if let Some(ix) = &mut self.slots {
            ix.insert(idx, baton_ring::slot(key_of(&self.slab, idx)));
        }
        (idx, None)
    }

    /// Puts `entry` (for the same key) in place of the one at slab index `idx`; returns
    /// the old one.
    pub(in crate::shard::write) fn replace_at(&mut self, idx: u32, entry: Entry) -> Entry {
        debug_assert_eq!(self.entry_at(idx).key(), entry.key());
        self.count_in(&entry);
        let old = std::mem::replace(self.entry_mut(idx), entry);
        self.count_out(&old);
        old
    }

    /// Applies `f` to the entry at `idx` by value (for changes that may rebuild it).
    pub(in crate::shard::write) fn map_at(&mut self, idx: u32, f: impl FnOnce(Entry) -> Entry) {
        let old = self.slab[idx as usize]
            .take()
            .expect("index of a free position");
        self.count_out(&old);
        let new = f(old);
        self.count_in(&new);
        self.slab[idx as usize] = Some(new);
    }

    /// Removes `key`, expired or not; returns its former slab index and entry. (The
    /// write path goes by slab index; the store's own tests go by key.)
    #[cfg(test)]
    pub(in crate::shard::write) fn remove(&mut self, key: &[u8]) -> Option<(u32, Entry)> {
        let h = self.hash(key);
        let slab = &self.slab;
        let idx = self.table.remove(h, |i| key_of(slab, i) == key)?;
        Some((idx, self.vacate(idx)))
    }

    /// Removes the entry at slab index `idx` (which must be full).
    pub(in crate::shard::write) fn remove_at(&mut self, idx: u32) -> Entry {
        let h = self.hash(self.entry_at(idx).key());
        self.table
            .remove(h, |i| i == idx)
            .unwrap_or_else(|| unreachable!("a full position is in the table"));
        self.vacate(idx)
    }

    fn vacate(&mut self, idx: u32) -> Entry {
        let old = self.slab[idx as usize]
            .take()
            .unwrap_or_else(|| unreachable!("table points at a free position"));
        if let Some(ix) = &mut self.slots {
            ix.remove(idx, baton_ring::slot(old.key()));
        }
        self.free.push(idx);
        self.count_out(&old);
        old
    }

    /// Sets the absolute expiry of a present key (expired or not); returns its slab
    /// index, or `None` if absent. (For the store's own tests, as [`Store::remove`].)
    #[cfg(test)]
    pub(in crate::shard::write) fn set_expire(
        &mut self,
        key: &[u8],
        expire_at: u64,
    ) -> Option<u32> {
        let idx = self.index_of(key)?;
        self.map_at(idx, |e| e.with_expire(expire_at));
        Some(idx)
    }

    /// Removes every entry and gives the memory back.
    pub(in crate::shard::write) fn clear(&mut self) {
        self.table.clear();
        self.slab = Vec::new();
        self.free = Vec::new();
        self.expires = 0;
        self.entry_bytes = 0;
        if let Some(ix) = &mut self.slots {
            ix.clear();
        }
    }

    /// Starts keeping the per-slot key index (cluster mode), filing the keys already held.
    pub(in crate::shard) fn index_slots(&mut self) {
        if self.slots.is_some() {
            return;
        }
        let mut ix = SlotIndex::new();
        for (pos, e) in self.slab.iter().enumerate() {
            if let Some(e) = e {
                ix.insert(pos as u32, baton_ring::slot(e.key()));
            }
        }
        self.slots = Some(Box::new(ix));
    }

    /// Keys held in cluster slot `slot`, expired-but-unreclaimed ones included: one read
    /// with the index, a walk of the whole store without it.
    pub fn count_in_slot(&self, slot: u16) -> usize {
        match &self.slots {
            Some(ix) => ix.count(slot),
            None => self
                .iter()
                .filter(|(k, _)| baton_ring::slot(k) == slot)
                .count(),
        }
    }

    /// Up to `max` keys held in cluster slot `slot` (as [`Store::count_in_slot`]).
    pub fn keys_in_slot(&self, slot: u16, max: usize) -> Vec<&[u8]> {
        match &self.slots {
            Some(ix) => ix
                .positions(slot)
                .take(max)
                .map(|pos| key_of(&self.slab, pos))
                .collect(),
            None => self
                .iter()
                .map(|(k, _)| k)
                .filter(|k| baton_ring::slot(k) == slot)
                .take(max)
                .collect(),
        }
    }

    /// Number of slab positions (full or free); valid cursors and positions are below it.
    pub fn slab_len(&self) -> usize {
        self.slab.len()
    }

    /// The entry at slab position `idx`, if that position holds one (expired or not).
    pub fn at(&self, pos: usize) -> Option<(&[u8], &Entry)> {
        self.slab.get(pos)?.as_ref().map(|e| (e.key(), e))
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
    /// high bits to the server to name the core ([`crate::CORE_BITS`] of them).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        let (end_log2, mut pos) = if cursor == 0 {
            let len = self.slab.len().max(1).next_power_of_two();
            (len.trailing_zeros() as u64, 0usize)
        } else {
            (cursor >> 32, (cursor & 0xFFFF_FFFF) as usize)
        };
        let end = match 1usize.checked_shl(end_log2.min(63) as u32) {
            Some(end) => end.min(self.slab.len()),
            None => self.slab.len(),
        };
        let count = count.max(1);
        let mut budget = count.saturating_mul(10);
        let mut visited = 0usize;
        while pos < end && visited < count && budget > 0 {
            if let Some(entry) = &self.slab[pos] {
                f(entry.key(), entry);
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
        self.slab
            .iter()
            .filter_map(|s| s.as_ref().map(|e| (e.key(), e)))
    }

    /// Iterates `(slab index, entry)` over every entry.
    pub(crate) fn iter_indexed(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.slab
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i as u32, e)))
    }

    /// The `n`th entry in slab order. O(n); RANDOMKEY uses [`Store::at`] instead.
    pub fn nth(&self, n: usize) -> Option<(&[u8], &Entry)> {
        self.iter().nth(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(s: &mut Store, k: &[u8], v: &[u8], expire_at: u64) -> Option<Entry> {
        s.insert(Entry::new(k, v, expire_at, 0, 0)).1
    }

    #[test]
    fn insert_get_replace_remove() {
        let mut s = Store::new();
        assert!(ins(&mut s, b"a", b"1", NO_EXPIRY).is_none());
        assert_eq!(s.get(b"a", 10).unwrap().value()[..], b"1"[..]);
        let old = ins(&mut s, b"a", b"2", 100).unwrap();
        assert_eq!(old.value()[..], b"1"[..]);
        assert_eq!((s.len(), s.expires()), (1, 1));
        assert!(s.get(b"a", 100).is_none(), "expired at its deadline");
        assert!(s.is_expired(b"a", 100));
        assert_eq!(s.remove(b"a").unwrap().1.value()[..], b"2"[..]);
        assert_eq!((s.len(), s.expires()), (0, 0));
        assert!(s.remove(b"a").is_none());
    }

    #[test]
    fn slot_index_agrees_with_a_scan_through_inserts_removes_and_clear() {
        let mut s = Store::new();
        // Keys from before the index was turned on are filed too.
        for i in 0..500 {
            ins(
                &mut s,
                format!("{{t{}}}k{i}", i % 7).as_bytes(),
                b"v",
                NO_EXPIRY,
            );
        }
        s.index_slots();
        for i in 0..300 {
            ins(
                &mut s,
                format!("{{t{}}}n{i}", i % 7).as_bytes(),
                b"v",
                NO_EXPIRY,
            );
            ins(
                &mut s,
                format!("{{t{}}}k{i}", i % 7).as_bytes(),
                b"w",
                NO_EXPIRY,
            );
            if i % 3 == 0 {
                s.remove(format!("{{t{}}}k{i}", i % 7).as_bytes());
            }
        }
        let mut scanned = std::collections::HashMap::<u16, Vec<Vec<u8>>>::new();
        for (k, _) in s.iter() {
            scanned
                .entry(baton_ring::slot(k))
                .or_default()
                .push(k.to_vec());
        }
        assert_eq!(scanned.len(), 7);
        for (slot, mut keys) in scanned {
            assert_eq!(s.count_in_slot(slot), keys.len());
            let mut listed: Vec<Vec<u8>> = s
                .keys_in_slot(slot, usize::MAX)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            keys.sort();
            listed.sort();
            assert_eq!(listed, keys, "slot {slot}");
            assert_eq!(s.keys_in_slot(slot, 3).len(), 3);
        }
        let one = baton_ring::slot(b"t1");
        assert_eq!(s.count_in_slot(one + 1), 0);
        s.clear();
        assert_eq!(s.count_in_slot(one), 0);
        ins(&mut s, b"{t1}again", b"v", NO_EXPIRY);
        assert_eq!(s.keys_in_slot(one, 10), vec![&b"{t1}again"[..]]);
    }

    #[test]
    fn expiry_count_follows_set_expire() {
        let mut s = Store::new();
        ins(&mut s, b"a", b"1", NO_EXPIRY);
        assert!(s.set_expire(b"a", 50).is_some());
        assert_eq!(s.expires(), 1);
        assert!(s.set_expire(b"a", 60).is_some());
        assert_eq!(s.expires(), 1);
        assert!(s.set_expire(b"a", NO_EXPIRY).is_some());
        assert_eq!(s.expires(), 0);
        assert!(s.set_expire(b"missing", 5).is_none());
    }

    #[test]
    fn freed_positions_are_reused_without_moving_others() {
        let mut s = Store::new();
        for i in 0..10u8 {
            ins(&mut s, &[i], &[i], NO_EXPIRY);
        }
        s.remove(&[3]);
        s.remove(&[7]);
        assert_eq!(s.at(3).map(|(k, _)| k.to_vec()), None);
        ins(&mut s, b"x", b"x", NO_EXPIRY);
        ins(&mut s, b"y", b"y", NO_EXPIRY);
        assert_eq!(s.slab_len(), 10, "both holes reused");
        for i in [0u8, 1, 2, 4, 5, 6, 8, 9] {
            assert_eq!(s.at(i as usize).unwrap().0, &[i]);
            assert_eq!(s.get(&[i], 0).unwrap().value()[..], [i]);
        }
        assert_eq!(s.get(b"x", 0).unwrap().value()[..], b"x"[..]);
        assert_eq!(s.iter().count(), 10);
    }

    #[test]
    fn scan_returns_stable_keys_exactly_once_across_growth_and_removal() {
        let mut s = Store::new();
        for i in 0..1000u32 {
            ins(&mut s, &i.to_be_bytes(), b"v", NO_EXPIRY);
        }
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0;
        let mut round = 0u32;
        loop {
            cursor = s.scan(cursor, 7, |k, _| *seen.entry(k.to_vec()).or_insert(0) += 1);
            // Churn between calls: grow the table (forcing rehashes) and delete odd keys.
            for j in 0..50u32 {
                ins(&mut s, &(100_000 + round * 50 + j).to_be_bytes(), b"n", 0);
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
            ins(&mut s, &i.to_be_bytes(), b"v", NO_EXPIRY);
        }
        let (mut cursor, mut calls, mut seen) = (0, 0, 0);
        loop {
            cursor = s.scan(cursor, 2, |_, _| seen += 1);
            for j in 0..10u32 {
                ins(
                    &mut s,
                    &(1000 + calls * 10 + j).to_be_bytes(),
                    b"n",
                    NO_EXPIRY,
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
            ins(&mut s, &i.to_be_bytes(), b"v", NO_EXPIRY);
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
        assert_eq!(next >> 32, 7, "ends at 128 >= 100 positions");
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
        ins(&mut s, b"a", b"1", 5);
        s.remove(b"a");
        ins(&mut s, b"b", b"1", 5);
        s.clear();
        assert_eq!((s.len(), s.expires(), s.slab_len()), (0, 0, 0));
        assert!(s.get(b"b", 0).is_none());
        ins(&mut s, b"c", b"1", NO_EXPIRY);
        assert_eq!(s.nth(0).unwrap().0, b"c");
    }
}
