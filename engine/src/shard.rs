//! The per-core shard: one [`Store`] plus the statistics and the single write path that
//! every mutation goes through. A shard is owned by exactly one core and is never shared.

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::reply::Reply;
use crate::store::{Entry, Store, ValueSnapshot, NO_EXPIRY};

/// Redis's default `proto-max-bulk-len`: the largest string a command may build.
pub const DEFAULT_MAX_VALUE_LEN: usize = 512 * 1024 * 1024;

/// Counters one shard keeps; the server sums them over cores for INFO.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    // SHIM(obs): replaced by main's implementation on merge
    pub evicted_keys: u64,
}

/// One core's share of the keyspace.
pub struct Shard {
    pub(crate) id: usize,
    pub(crate) store: Store,
    pub stats: ShardStats,
    pub(crate) next_cas: u64,
    pub(crate) rng: u64,
    /// The largest value APPEND, SETRANGE and LCS may build (`proto-max-bulk-len`).
    pub(crate) max_value_len: usize,
    /// Where the active expiry cycle resumes its walk over the store's slots.
    pub(crate) expire_cursor: usize,
}

impl Shard {
    pub fn new(id: usize) -> Shard {
        Shard {
            id,
            store: Store::new(),
            stats: ShardStats::default(),
            next_cas: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            expire_cursor: 0,
        }
    }

    /// The largest string a command may build (`proto-max-bulk-len`), in bytes.
    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    pub fn set_max_value_len(&mut self, len: usize) {
        self.max_value_len = len;
    }

    pub fn id(&self) -> usize {
        self.id
    }

    /// Runs one command whose arity was already checked. `args[0]` is the name.
    pub fn execute(&mut self, spec: &CommandSpec, args: &[Bytes], now: u64) -> Reply {
        self.stats.commands_processed += 1;
        match spec.handler {
            Some(h) => h(self, args, now),
            None => Reply::error(format!("ERR '{}' cannot run on a shard", spec.name)),
        }
    }

    /// Keys held, expired-but-unreclaimed ones included (as Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    pub fn expires(&self) -> usize {
        self.store.expires()
    }

    /// Read-only access to the store, for commands that only look.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A pseudo-random number (xorshift64*), for RANDOMKEY and sampling.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    // ---- the read path -------------------------------------------------------------

    /// The live entry for `key`, reclaiming it first if it has expired (lazy expiry).
    pub fn lookup(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        // One probe: find the slot, then either reclaim it or hand out its entry.
        let idx = self.store.index_of(key)?;
        if self.store.entry_at(idx).is_expired(now) {
            self.expire_if_needed(key, now);
            return None;
        }
        Some(self.store.entry_at(idx))
    }

    /// Like [`Shard::lookup`], counting a keyspace hit or miss.
    pub fn lookup_read(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        match self.store.index_of(key) {
            Some(idx) if !self.store.entry_at(idx).is_expired(now) => {
                self.stats.keyspace_hits += 1;
                Some(self.store.entry_at(idx))
            }
            found => {
                self.stats.keyspace_misses += 1;
                if found.is_some() {
                    self.expire_if_needed(key, now);
                }
                None
            }
        }
    }

    pub fn exists(&mut self, key: &[u8], now: u64) -> bool {
        self.lookup(key, now).is_some()
    }

    /// A copy of the live value under `key`, to move it to another shard.
    pub fn snapshot(&mut self, key: &[u8], now: u64) -> Option<ValueSnapshot> {
        self.lookup(key, now).map(|e| ValueSnapshot {
            value: Bytes::copy_from_slice(&e.value),
            expire_at: e.expire_at,
            flags: e.flags,
        })
    }

    // ---- the write path: every mutation goes through here ----------------------------

    pub(crate) fn expire_if_needed(&mut self, key: &[u8], now: u64) {
        if self.store.is_expired(key, now) {
            self.store.remove(key);
            self.stats.expired_keys += 1;
        }
    }

    pub(crate) fn bump_cas(&mut self) -> u64 {
        self.next_cas += 1;
        // Shards hand out disjoint CAS sequences, so a CAS unique names one item version.
        (self.next_cas << 8) | (self.id as u64 & 0xff)
    }

    /// Stores `value` under `key` with an absolute expiry (or [`NO_EXPIRY`]) and flags.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>, expire_at: u64, flags: u32) {
        let cas = self.bump_cas();
        self.store.insert(
            key,
            Entry {
                value: value.into_boxed_slice(),
                expire_at,
                flags,
                cas,
            },
        );
    }

    /// Writes a snapshot taken from another shard.
    pub fn restore(&mut self, key: &[u8], snap: &ValueSnapshot) {
        self.put(key, snap.value.to_vec(), snap.expire_at, snap.flags);
    }

    /// Changes a live value in place through `f`, keeping its expiry and flags; returns
    /// `None` if the key is absent.
    pub fn update<R>(
        &mut self,
        key: &[u8],
        now: u64,
        f: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> Option<R> {
        self.expire_if_needed(key, now);
        let cas = self.bump_cas();
        let e = self.store.get_mut(key, now)?;
        e.cas = cas;
        // Values are stored exactly sized; grow them as a Vec for the change, then shrink
        // back (APPEND costs a reallocation per call, as memcached's append does).
        let mut value = std::mem::take(&mut e.value).into_vec();
        let r = f(&mut value);
        e.value = value.into_boxed_slice();
        Some(r)
    }

    /// Deletes a live key; returns whether it existed.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        self.expire_if_needed(key, now);
        self.store.remove(key).is_some()
    }

    /// Sets the absolute expiry of a live key (an expiry in the past deletes it, as Redis
    /// does); returns whether the key existed.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64, now: u64) -> bool {
        self.expire_if_needed(key, now);
        if self.store.get(key, now).is_none() {
            return false;
        }
        if expire_at != NO_EXPIRY && expire_at <= now {
            self.store.remove(key);
        } else {
            self.store.set_expire(key, expire_at);
        }
        true
    }

    /// Removes a live key and hands its entry back (RENAME moves it without a copy).
    pub fn take(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        self.expire_if_needed(key, now);
        self.store.remove(key)
    }

    /// Removes every key.
    pub fn flush(&mut self) {
        self.store.clear();
        self.expire_cursor = 0;
    }

    // ---- sampling ------------------------------------------------------------------

    /// A random live key, reclaiming expired keys it runs into; `None` when none is live.
    ///
    /// Probes random slots first (uniform over live keys while the slab is dense), then
    /// falls back to a walk from a random slot so a sparse slab still finds its keys.
    pub fn random_key(&mut self, now: u64) -> Option<Bytes> {
        const PROBES: usize = 16;
        for _ in 0..PROBES {
            let slots = self.store.slot_count();
            if self.store.is_empty() || slots == 0 {
                return None;
            }
            let idx = (self.random() % slots as u64) as usize;
            if let Some(key) = self.live_key_at(idx, now) {
                return Some(key);
            }
        }
        let slots = self.store.slot_count();
        let start = (self.random() % slots.max(1) as u64) as usize;
        for step in 0..slots {
            if let Some(key) = self.live_key_at((start + step) % slots, now) {
                return Some(key);
            }
        }
        None
    }

    /// The key at slab position `idx` if it is live; reclaims it if it has expired.
    fn live_key_at(&mut self, idx: usize, now: u64) -> Option<Bytes> {
        let (key, entry) = self.store.slot(idx)?;
        let key = Bytes::copy_from_slice(key);
        if entry.is_expired(now) {
            self.expire_if_needed(&key, now);
            return None;
        }
        Some(key)
    }

    /// One step of active expiry: walks up to `max_slots` slab positions from where the
    /// last step stopped, reclaiming expired keys; returns how many it reclaimed. Bounded
    /// work per call, so the runtime can run it every tick.
    pub fn expire_cycle(&mut self, now: u64, max_slots: usize) -> usize {
        let mut reclaimed = 0;
        for _ in 0..max_slots.min(self.store.slot_count()) {
            if self.expire_cursor >= self.store.slot_count() {
                self.expire_cursor = 0;
            }
            let expired = match self.store.slot(self.expire_cursor) {
                Some((key, e)) if e.is_expired(now) => Some(Bytes::copy_from_slice(key)),
                _ => None,
            };
            if let Some(key) = expired {
                self.expire_if_needed(&key, now);
                reclaimed += 1;
            }
            self.expire_cursor += 1;
        }
        reclaimed
    }
}

// SHIM(obs): replaced by main's implementation on merge
// The eviction and memory-accounting API that main is adding, reduced to what INFO and
// CONFIG SET call, so this branch builds: no budget is kept and nothing is evicted.
impl Shard {
    pub fn set_maxmemory(&mut self, bytes: usize, now: u64) {
        let _ = (bytes, now);
    }

    pub fn set_policy(&mut self, policy: crate::evict::EvictionPolicy) {
        let _ = policy;
    }

    pub fn used_memory(&self) -> usize {
        self.store
            .iter()
            .map(|(k, e)| k.len() + e.value.len())
            .sum()
    }

    pub fn maxmemory(&self) -> usize {
        0
    }

    pub fn avg_ttl(&self, now: u64) -> u64 {
        let (sum, n) = self
            .store
            .iter()
            .filter(|(_, e)| e.expire_at != NO_EXPIRY && e.expire_at > now)
            .fold((0u64, 0u64), |(s, n), (_, e)| {
                (s + (e.expire_at - now), n + 1)
            });
        sum.checked_div(n).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reclaims_expired_keys_and_counts() {
        let mut s = Shard::new(1);
        s.put(b"a", b"1".to_vec(), 100, 0);
        s.put(b"b", b"2".to_vec(), NO_EXPIRY, 7);
        assert_eq!(
            s.lookup_read(b"a", 99).map(|e| e.value.to_vec()),
            Some(b"1".to_vec())
        );
        assert!(s.lookup_read(b"a", 100).is_none());
        assert!(s.lookup_read(b"zz", 100).is_none());
        assert_eq!((s.stats.keyspace_hits, s.stats.keyspace_misses), (1, 2));
        assert_eq!((s.stats.expired_keys, s.len(), s.expires()), (1, 1, 0));
        assert_eq!(s.lookup(b"b", 100).map(|e| e.flags), Some(7));
    }

    #[test]
    fn take_moves_the_entry_out() {
        let mut s = Shard::new(0);
        s.put(b"a", b"1".to_vec(), 500, 3);
        let e = s.take(b"a", 10).unwrap();
        assert_eq!(
            (e.value.into_vec(), e.expire_at, e.flags),
            (b"1".to_vec(), 500, 3)
        );
        assert!(!s.exists(b"a", 10));
        s.put(b"a", b"1".to_vec(), 500, 3);
        assert!(
            s.take(b"a", 500).is_none(),
            "an expired key is not handed out"
        );
    }

    #[test]
    fn cas_changes_on_every_write() {
        let mut s = Shard::new(2);
        s.put(b"a", b"1".to_vec(), NO_EXPIRY, 0);
        let c1 = s.lookup(b"a", 0).unwrap().cas;
        s.update(b"a", 0, |v| v.push(b'2'));
        let c2 = s.lookup(b"a", 0).unwrap().cas;
        assert_ne!(c1, c2);
        assert_eq!(c1 & 0xff, 2, "the shard id is in the low bits");
    }

    #[test]
    fn expire_cycle_reclaims_with_bounded_work() {
        let mut s = Shard::new(0);
        for i in 0..100u32 {
            let at = if i % 2 == 0 { 50 } else { NO_EXPIRY };
            s.put(&i.to_be_bytes(), vec![1], at, 0);
        }
        assert_eq!(s.expire_cycle(49, 1000), 0, "nothing due yet");
        assert_eq!(s.expire_cycle(50, 10), 5, "ten slots, five of them expired");
        let mut total = 5;
        for _ in 0..20 {
            total += s.expire_cycle(50, 10);
        }
        assert_eq!((total, s.len(), s.expires()), (50, 50, 0));
        assert_eq!(s.stats.expired_keys, 50);
    }

    #[test]
    fn random_key_finds_sparse_live_keys() {
        let mut s = Shard::new(0);
        assert_eq!(s.random_key(0), None);
        for i in 0..1000u32 {
            s.put(&i.to_be_bytes(), vec![1], NO_EXPIRY, 0);
        }
        for i in 1..1000u32 {
            s.delete(&i.to_be_bytes(), 0);
        }
        assert_eq!(s.random_key(0).as_deref(), Some(&0u32.to_be_bytes()[..]));
        s.put(b"x", vec![1], 10, 0);
        s.delete(&0u32.to_be_bytes(), 0);
        assert_eq!(
            s.random_key(10),
            None,
            "expired keys are reclaimed, not returned"
        );
        assert!(s.is_empty());
    }

    #[test]
    fn max_value_len_is_configurable() {
        let mut s = Shard::new(0);
        assert_eq!(s.max_value_len(), DEFAULT_MAX_VALUE_LEN);
        s.set_max_value_len(10);
        assert_eq!(s.max_value_len(), 10);
    }
}
