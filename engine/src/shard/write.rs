//! The write path: the one module that changes a shard's [`Store`](crate::Store).
//!
//! `link` stores an entry, `unlink` deletes one, `relink` replaces one in place; each
//! keeps the eviction policy in step. Every mutation the shard makes (a command's write,
//! a memcached CAS or item-bit change, a lazy or active expiry, an eviction, a flush)
//! goes through them, which is what lets replication observe every change in one place.

use super::{policy_size, Shard, Tracker};
use crate::store::{Entry, ValueSnapshot, NO_EXPIRY};

/// The capability to change a [`Store`](crate::Store): every store method that mutates
/// takes one, and only this module can make one (the field is private), so a write
/// anywhere else does not compile (only the crate's unit tests may forge one, to test the
/// store alone):
///
/// ```compile_fail
/// let mut store = baton_engine::Store::new();
/// store.clear(baton_engine::shard::Sealed(()));
/// ```
#[derive(Clone, Copy)]
pub struct Sealed(());

const SEAL: Sealed = Sealed(());

#[cfg(test)]
impl Sealed {
    /// For the store's own unit tests, which exercise it without a shard.
    pub(crate) const fn for_tests() -> Sealed {
        SEAL
    }
}

impl Shard {
    fn link(&mut self, entry: Entry) -> u32 {
        if matches!(self.tracker, Tracker::Off) {
            return self.store.insert(SEAL, entry).0;
        }
        let covered = self.covers(&entry);
        let size = policy_size(&entry);
        let hash = self.store.hash(entry.key());
        let (idx, old) = self.store.insert(SEAL, entry);
        if let Some(p) = self.tracker.policy() {
            match old {
                Some(_) if covered && p.contains(idx) => p.resize(idx, size),
                _ if covered => p.insert(idx, hash, size),
                _ => p.remove(idx),
            }
        }
        idx
    }

    fn relink(&mut self, idx: u32, f: impl FnOnce(Entry) -> Entry) {
        self.store.map_at(SEAL, idx, f);
        if matches!(self.tracker, Tracker::Off) {
            return;
        }
        let e = self.store.entry_at(idx);
        let (covered, size, hash) = (self.covers(e), policy_size(e), self.store.hash(e.key()));
        if let Some(p) = self.tracker.policy() {
            match (covered, p.contains(idx)) {
                (true, true) => p.resize(idx, size),
                (true, false) => p.insert(idx, hash, size),
                (false, _) => p.remove(idx),
            }
        }
    }

    fn unlink(&mut self, idx: u32) -> Entry {
        if let Some(p) = self.tracker.policy() {
            p.remove(idx);
        }
        self.store.remove_at(SEAL, idx)
    }

    /// Evicts until the shard is within its budget; false if it is still over because
    /// nothing (more) can be evicted.
    pub(super) fn enforce_budget(&mut self) -> bool {
        if self.maxmemory == 0 {
            return true;
        }
        while self.used_memory() > self.maxmemory {
            let Some(idx) = self.pick_victim() else {
                return false;
            };
            self.unlink(idx);
            self.stats.evicted_keys += 1;
        }
        true
    }

    /// Deletes the expired entry at `idx` and counts it (lazy and active expiry alike).
    pub(super) fn reclaim_expired(&mut self, idx: u32) {
        self.unlink(idx);
        self.stats.expired_keys += 1;
    }

    pub(crate) fn expire_if_needed(&mut self, key: &[u8], now: u64) {
        if let Some(idx) = self.store.index_of(key) {
            if self.store.entry_at(idx).is_expired(now) {
                self.reclaim_expired(idx);
            }
        }
    }

    /// The slab index of `key` if it is live (an expired entry is left for lazy expiry).
    fn live_index(&self, key: &[u8], now: u64) -> Option<u32> {
        let idx = self.store.index_of(key)?;
        (!self.store.entry_at(idx).is_expired(now)).then_some(idx)
    }

    pub(crate) fn bump_cas(&mut self) -> u64 {
        self.next_cas += 1;
        // Shards hand out disjoint CAS sequences, so a CAS unique names one item version.
        (self.next_cas << crate::CORE_BITS) | self.id as u64
    }

    /// Stores `value` under `key` with an absolute expiry (or [`NO_EXPIRY`]) and flags.
    pub fn put(&mut self, key: &[u8], value: &[u8], expire_at: u64, flags: u32) {
        let cas = self.bump_cas();
        let mut e = Entry::new(key, value, expire_at, flags, cas);
        e.set_accessed(self.now);
        self.link(e);
        self.enforce_budget();
    }

    /// Writes a snapshot taken from another shard.
    pub fn restore(&mut self, key: &[u8], snap: &ValueSnapshot) {
        self.put(key, &snap.value, snap.expire_at, snap.flags);
    }

    /// Stores `e`'s value, expiry and flags under `key`: RENAME within one shard moves an
    /// entry taken with [`Shard::take`] this way.
    pub fn put_entry(&mut self, key: &[u8], e: &Entry) {
        self.put(key, e.value(), e.expire_at(), e.flags());
    }

    /// Changes a live value through `f`, keeping its expiry and flags; returns `None` if
    /// the key is absent. The new value is written into a fresh entry (one allocation).
    pub fn update<R>(
        &mut self,
        key: &[u8],
        now: u64,
        f: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> Option<R> {
        self.expire_if_needed(key, now);
        let idx = self.store.index_of(key)?;
        let cas = self.bump_cas();
        let mut value = self.store.entry_at(idx).value().to_vec();
        let r = f(&mut value);
        self.relink(idx, |old| {
            let mut e = old.with_value(value.len(), cas, |v| v.copy_from_slice(&value));
            e.set_accessed(now);
            e
        });
        self.enforce_budget();
        Some(r)
    }

    /// Changes a live item's per-item bits (memcached's stale and win-token state) in
    /// place. Not a write: value, expiry and CAS stay.
    pub(crate) fn set_item_bits(&mut self, key: &[u8], now: u64, f: impl FnOnce(&mut Entry)) {
        if let Some(idx) = self.live_index(key, now) {
            f(self.store.entry_at_mut(SEAL, idx));
        }
    }

    /// The CAS unique of `key` right after a write through the write path, replaced first
    /// by `cas` when the client chose one (the meta `E` flag). 0 when the key is not live
    /// (a write with an already-past expiry).
    ///
    /// The write itself (put/update) has bumped the shard's CAS sequence; `E` only names
    /// the version differently, which is what memcached does with it.
    pub(crate) fn mc_cas_after_write(&mut self, key: &[u8], now: u64, cas: Option<u64>) -> u64 {
        let Some(idx) = self.live_index(key, now) else {
            return 0;
        };
        let e = self.store.entry_at_mut(SEAL, idx);
        if let Some(c) = cas {
            e.set_cas(c);
        }
        e.cas()
    }

    /// Deletes a live key; returns whether it existed.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        self.expire_if_needed(key, now);
        match self.store.index_of(key) {
            Some(idx) => {
                self.unlink(idx);
                true
            }
            None => false,
        }
    }

    /// Sets the absolute expiry of a live key (an expiry in the past deletes it, as Redis
    /// does); returns whether the key existed.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64, now: u64) -> bool {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return false;
        };
        if expire_at != NO_EXPIRY && expire_at <= now {
            self.unlink(idx);
        } else {
            self.relink(idx, |e| e.with_expire(expire_at));
            self.enforce_budget();
        }
        true
    }

    /// Removes a live key and hands its entry back (RENAME moves it without a copy).
    pub fn take(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        self.expire_if_needed(key, now);
        let idx = self.store.index_of(key)?;
        Some(self.unlink(idx))
    }

    /// Removes every key.
    pub fn flush(&mut self) {
        self.store.clear(SEAL);
        self.expire_cursor = 0;
        self.avg_ttl = 0;
        if let Some(p) = self.tracker.policy() {
            p.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_moves_the_entry_out() {
        let mut s = Shard::new(0);
        s.put(b"a", b"1", 500, 3);
        let e = s.take(b"a", 10).unwrap();
        assert_eq!(
            (e.value().to_vec(), e.expire_at(), e.flags()),
            (b"1".to_vec(), 500, 3)
        );
        assert!(!s.exists(b"a", 10));
        s.put(b"a", b"1", 500, 3);
        assert!(
            s.take(b"a", 500).is_none(),
            "an expired key is not handed out"
        );
    }

    #[test]
    fn cas_changes_on_every_write() {
        let mut s = Shard::new(2);
        s.put(b"a", b"1", NO_EXPIRY, 0);
        let c1 = s.lookup(b"a", 0).unwrap().cas();
        s.update(b"a", 0, |v| v.push(b'2'));
        let c2 = s.lookup(b"a", 0).unwrap().cas();
        assert_ne!(c1, c2);
        assert_eq!(c1 & 0xffff, 2, "the shard id is in the low bits");
        let mut wide = Shard::new(300);
        wide.put(b"a", b"1", NO_EXPIRY, 0);
        let c = wide.lookup(b"a", 0).unwrap().cas();
        assert_eq!(
            c & 0xffff,
            300,
            "a core past 255 keeps its own CAS sequence"
        );
    }
}
