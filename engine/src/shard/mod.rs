//! The per-core shard: one [`Store`] plus the statistics, the memory budget with its
//! eviction policy, and the single write path that every mutation goes through. A shard
//! is owned by exactly one core and is never shared.
//!
//! This module holds the read path, statistics, memory and sampling; `write` holds the
//! write path, the only code that changes the store, which reports every change as an
//! [`Effect`] (see `effect.rs`) to an optional [`EffectSink`]; [`Shard::apply`] replays
//! one. That stream is what replication will ship.
//!
//! Memory: the shard's `used_memory` is what its store holds (entries by allocator size
//! class, slab and table at capacity) plus the eviction policy's own metadata. With a
//! budget (`maxmemory / cores`) every write that leaves the shard over it evicts until it
//! is under again, so a write never returns with the shard over budget while something
//! is evictable. Commands flagged `denyoom` are refused with Redis's OOM error when the
//! shard is over budget and nothing can be evicted (`noeviction`, or a volatile policy
//! with no key that has a TTL).
//!
//! The policy's side arrays exist only while a budget is set: without `maxmemory`
//! nothing is ever evicted and a key costs no policy bytes. Setting a budget at run time
//! enrolls the keys already stored, in slab order.

mod effect;
pub mod tap;
mod write;

pub use effect::{Collector, DelCause, Effect, EffectSink};
pub use write::store;

use bytes::Bytes;

use crate::evict::{EvictionPolicy, Policy, Random, S3Fifo};
use crate::rng::XorShift64Star;
use crate::store::{Entry, ItemCopy, Store, NO_EXPIRY};

/// Redis's default `proto-max-bulk-len`: the largest string a command may build.
pub const DEFAULT_MAX_VALUE_LEN: usize = 512 * 1024 * 1024;

/// Redis's reply to a `denyoom` command when memory is over the limit.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Keys volatile-ttl samples per eviction (Redis's `maxmemory-samples` default).
const TTL_SAMPLES: usize = 5;

/// Bytes a key costs besides its entry: its slab pointer and its share of the table.
/// Counted into the size the policy sees, so that its byte targets mean real memory.
const KEY_OVERHEAD: usize = 8 + 6;

/// Counters one shard keeps; the server sums them over cores for INFO.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
}

/// An item's read state as a read found it, before marking it read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub fetched: bool,
    /// Unix seconds of the previous read (or of the write, if never read).
    pub accessed_secs: u32,
}

/// The eviction policy's state while a budget is set.
enum Tracker {
    Off,
    S3(Box<S3Fifo>),
    Random(Random),
}

impl Tracker {
    fn policy(&mut self) -> Option<&mut dyn Policy> {
        match self {
            Tracker::Off => None,
            Tracker::S3(p) => Some(&mut **p),
            Tracker::Random(p) => Some(p),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Tracker::Off => 0,
            Tracker::S3(p) => p.heap_bytes() + std::mem::size_of::<S3Fifo>(),
            Tracker::Random(p) => p.heap_bytes(),
        }
    }
}

/// One core's share of the keyspace.
pub struct Shard {
    pub(crate) id: usize,
    /// Private: only `write.rs` changes it; everything else reads through [`Shard::store`].
    store: Store,
    pub stats: ShardStats,
    next_cas: u64,
    /// Entries stored by `link` (with `next_cas`, the shard's write version: blocked
    /// clients' owners look at their keys again when it moves).
    links: u64,
    rng: XorShift64Star,
    /// The largest value APPEND, SETRANGE and LCS may build (`proto-max-bulk-len`).
    pub(crate) max_value_len: usize,
    /// Where the active expiry cycle resumes its walk over the store's slab.
    pub(crate) expire_cursor: usize,
    /// Running estimate of the TTL left on keys that have one, in ms (INFO's avg_ttl).
    avg_ttl: u64,
    /// This shard's byte budget; 0 = none.
    maxmemory: usize,
    policy: EvictionPolicy,
    tracker: Tracker,
    /// Whether `tracker` holds only keys with a TTL.
    tracked_volatile: bool,
    /// The latest time a caller passed in (unix ms); stamps writes that take no `now`.
    pub(crate) now: u64,
    /// Where the write path reports effects; `None` (the default) reports nothing.
    sink: Option<Box<dyn EffectSink>>,
    /// The keys slot migrations must send again ([`tap`]), one tap per job; empty while
    /// none runs.
    taps: Vec<(u64, tap::SlotTap)>,
    /// A replica's shard: its primary decides what expires and what is evicted, so it
    /// never reclaims or evicts on its own; expired keys only look absent to reads.
    replica: bool,
}

impl Shard {
    pub fn new(id: usize) -> Shard {
        Shard {
            id,
            store: Store::new(),
            stats: ShardStats::default(),
            next_cas: 0,
            links: 0,
            rng: XorShift64Star::new(
                0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
            ),
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            expire_cursor: 0,
            avg_ttl: 0,
            maxmemory: 0,
            policy: EvictionPolicy::default(),
            tracker: Tracker::Off,
            tracked_volatile: false,
            now: 0,
            sink: None,
            taps: Vec::new(),
            replica: false,
        }
    }

    /// Makes this a replica's shard (or a primary's again): while set, lazy and active
    /// expiry and eviction leave every key in place, since the primary's `Del` effects
    /// (applied with [`Shard::apply`]) say what goes. A replica takes no other writes.
    pub fn set_replica(&mut self, replica: bool) {
        self.replica = replica;
    }

    pub fn is_replica(&self) -> bool {
        self.replica
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

    /// Keeps a per-slot key index from now on (cluster mode): see `slot_index.rs`.
    pub fn index_slots(&mut self) {
        self.store.index_slots();
    }

    /// A pseudo-random number (xorshift64*), for RANDOMKEY and sampling.
    pub fn random(&mut self) -> u64 {
        self.rng.next()
    }

    // ---- memory --------------------------------------------------------------------

    /// Bytes this shard holds: its store plus the eviction policy's metadata.
    pub fn used_memory(&self) -> usize {
        self.store.memory() + self.tracker.heap_bytes()
    }

    /// This shard's budget in bytes; 0 = no limit.
    pub fn maxmemory(&self) -> usize {
        self.maxmemory
    }

    pub fn policy(&self) -> EvictionPolicy {
        self.policy
    }

    /// Sets the budget (CONFIG SET maxmemory / cores) and evicts down to it at once.
    pub fn set_maxmemory(&mut self, bytes: usize, _now: u64) {
        self.maxmemory = bytes;
        self.rebuild_tracker();
        self.enforce_budget();
    }

    /// Changes the policy (CONFIG SET maxmemory-policy); the keys are enrolled afresh.
    pub fn set_policy(&mut self, policy: EvictionPolicy) {
        if policy != self.policy {
            self.policy = policy;
            self.rebuild_tracker();
            self.enforce_budget();
        }
    }

    /// Builds the policy's state for the current budget and policy, enrolling every key
    /// it covers in slab order (or drops it when there is no budget). Keeps the state
    /// when only an S3-FIFO budget moved.
    fn rebuild_tracker(&mut self) {
        use EvictionPolicy::*;
        let volatile = self.policy.volatile();
        let same_scope = self.tracked_volatile == volatile;
        match (self.maxmemory, self.policy, &mut self.tracker) {
            (0, _, Tracker::Off) | (_, NoEviction, Tracker::Off) => return,
            (0, _, _) | (_, NoEviction, _) => {
                self.tracker = Tracker::Off;
                return;
            }
            (_, AllkeysS3Fifo | VolatileS3Fifo, Tracker::S3(p)) if same_scope => {
                p.set_budget(self.maxmemory as u64);
                return;
            }
            (_, AllkeysRandom | VolatileRandom | VolatileTtl, Tracker::Random(_)) if same_scope => {
                return;
            }
            (_, AllkeysS3Fifo | VolatileS3Fifo, _) => {
                self.tracker = Tracker::S3(Box::new(S3Fifo::new(self.maxmemory as u64)));
            }
            (_, AllkeysRandom | VolatileRandom | VolatileTtl, _) => {
                self.tracker = Tracker::Random(Random::new(self.random()));
            }
        }
        self.tracked_volatile = volatile;
        let ids: Vec<(u32, u64, u32)> = self
            .store
            .iter_indexed()
            .filter(|(_, e)| !volatile || e.has_expiry())
            .map(|(i, e)| (i, self.store.hash(e.key()), policy_size(e)))
            .collect();
        if let Some(p) = self.tracker.policy() {
            for (i, h, size) in ids {
                p.insert(i, h, size);
            }
        }
    }

    /// Whether the policy covers `e` (volatile policies cover keys with a TTL only).
    fn covers(&self, e: &Entry) -> bool {
        !self.policy.volatile() || e.has_expiry()
    }

    /// The key the policy gives up next to get back under budget (already out of the
    /// policy's bookkeeping), or `None` when nothing is evictable.
    fn pick_victim(&mut self) -> Option<u32> {
        match &mut self.tracker {
            Tracker::Off => None,
            Tracker::S3(p) => p.evict(),
            Tracker::Random(p) if self.policy == EvictionPolicy::VolatileTtl => {
                let store = &self.store;
                let mut best: Option<(u64, u32)> = None;
                for _ in 0..TTL_SAMPLES {
                    let Some(id) = p.sample() else { break };
                    let at = store.entry_at(id).expire_at();
                    if best.is_none_or(|(b, _)| at < b) {
                        best = Some((at, id));
                    }
                }
                best.map(|(_, id)| {
                    p.remove(id);
                    id
                })
            }
            Tracker::Random(p) => p.evict(),
        }
    }

    /// Whether a command that may grow memory can run (a `denyoom` command, a memcached
    /// store): evicts first if over budget. When not, Redis clients get the OOM error and
    /// memcached clients `SERVER_ERROR out of memory storing object`.
    pub(crate) fn admit_write(&mut self) -> bool {
        self.maxmemory == 0 || self.used_memory() <= self.maxmemory || self.enforce_budget()
    }

    /// MEMORY USAGE: the bytes `key` costs (entry plus slab and table share).
    pub fn key_memory(&mut self, key: &[u8], now: u64) -> Option<usize> {
        self.lookup(key, now).map(|e| e.alloc_size() + KEY_OVERHEAD)
    }

    /// OBJECT IDLETIME: seconds since the key was last read or written.
    pub fn key_idle_secs(&mut self, key: &[u8], now: u64) -> Option<u64> {
        let e = self.lookup(key, now)?;
        Some((now / 1000).saturating_sub(u64::from(e.accessed_secs())))
    }

    /// OBJECT FREQ: the key's S3-FIFO frequency (0..=3) while the S3-FIFO policy tracks
    /// it; `Err` when no frequency is tracked (no budget, or another policy).
    pub fn key_freq(&mut self, key: &[u8], now: u64) -> Option<Result<u8, ()>> {
        let idx = self.store.index_of(key)?;
        if self.store.entry_at(idx).is_expired(now) {
            self.expire_if_needed(key, now);
            return None;
        }
        Some(match &self.tracker {
            Tracker::S3(p) if p.contains(idx) => Ok(p.freq(idx)),
            _ => Err(()),
        })
    }

    /// Estimated TTL left on keys with one, in ms (0 if there are none), as INFO's
    /// keyspace `avg_ttl`: kept up by the active expiry cycle's samples.
    pub fn avg_ttl(&self, _now: u64) -> u64 {
        if self.store.expires() == 0 {
            0
        } else {
            self.avg_ttl
        }
    }

    // ---- the read path -------------------------------------------------------------

    /// The live entry for `key`, reclaiming it first if it has expired (lazy expiry).
    pub fn lookup(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        // One probe: find the position, then either reclaim it or hand out its entry.
        let idx = self.store.index_of(key)?;
        if self.store.entry_at(idx).is_expired(now) {
            self.expire_if_needed(key, now);
            return None;
        }
        Some(self.store.entry_at(idx))
    }

    /// Like [`Shard::lookup`] for a read that counts: a keyspace hit or miss, the key's
    /// last-access time and fetched bit, and an access for the eviction policy.
    pub fn lookup_read(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.lookup_read_seen(key, now).map(|(e, _)| e)
    }

    /// [`Shard::lookup_read`], also giving what the read replaced: whether the item had
    /// been read before and when (memcached's `h` and `l` report those).
    #[inline]
    pub(crate) fn lookup_read_seen(&mut self, key: &[u8], now: u64) -> Option<(&Entry, Seen)> {
        match self.store.index_of(key) {
            Some(idx) if !self.store.entry_at(idx).is_expired(now) => {
                self.stats.keyspace_hits += 1;
                if let Some(p) = self.tracker.policy() {
                    p.access(idx);
                }
                let e = self.store.entry_at(idx);
                let seen = Seen {
                    fetched: e.fetched(),
                    accessed_secs: e.accessed_secs(),
                };
                Some((self.store.mark_read(idx, now), seen))
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
    pub fn copy_item(&mut self, key: &[u8], now: u64) -> Option<ItemCopy> {
        self.lookup(key, now).map(ItemCopy::of)
    }

    // ---- sampling ------------------------------------------------------------------

    /// A random live key, reclaiming expired keys it runs into; `None` when none is live.
    ///
    /// Probes random positions first (uniform over live keys while the slab is dense), then
    /// falls back to a walk from a random position so a sparse slab still finds its keys.
    pub fn random_key(&mut self, now: u64) -> Option<Bytes> {
        const PROBES: usize = 16;
        for _ in 0..PROBES {
            let len = self.store.slab_len();
            if self.store.is_empty() || len == 0 {
                return None;
            }
            let idx = (self.random() % len as u64) as usize;
            if let Some(key) = self.live_key_at(idx, now) {
                return Some(key);
            }
        }
        let len = self.store.slab_len();
        let start = (self.random() % len.max(1) as u64) as usize;
        for step in 0..len {
            if let Some(key) = self.live_key_at((start + step) % len, now) {
                return Some(key);
            }
        }
        None
    }

    /// The key at slab position `idx` if it is live; reclaims it if it has expired.
    fn live_key_at(&mut self, idx: usize, now: u64) -> Option<Bytes> {
        let (key, entry) = self.store.at(idx)?;
        if entry.is_expired(now) {
            self.reclaim_expired(idx as u32);
            return None;
        }
        Some(Bytes::copy_from_slice(key))
    }

    /// One step of active expiry: walks up to `max_positions` slab positions from where the
    /// last step stopped, reclaiming expired keys; returns how many positions held a key
    /// with a TTL and how many of those it reclaimed. Bounded work per call, so the
    /// runtime can run it every tick and repeat while the expired share stays high.
    pub fn expire_cycle(&mut self, now: u64, max_positions: usize) -> (usize, usize) {
        if self.replica {
            return (0, 0);
        }
        let (mut volatile, mut reclaimed) = (0, 0);
        let (mut ttl_sum, mut ttl_n) = (0u64, 0u64);
        for _ in 0..max_positions.min(self.store.slab_len()) {
            if self.expire_cursor >= self.store.slab_len() {
                self.expire_cursor = 0;
            }
            let at = match self.store.at(self.expire_cursor) {
                Some((_, e)) if e.has_expiry() => e.expire_at(),
                _ => NO_EXPIRY,
            };
            if at != NO_EXPIRY {
                volatile += 1;
                if at <= now {
                    self.reclaim_expired(self.expire_cursor as u32);
                    reclaimed += 1;
                } else {
                    ttl_sum += at - now;
                    ttl_n += 1;
                }
            }
            self.expire_cursor += 1;
        }
        if let Some(sample) = ttl_sum.checked_div(ttl_n) {
            // Redis's running estimate: each sample moves the average 1/50 of the way.
            self.avg_ttl = if self.avg_ttl == 0 {
                sample
            } else {
                self.avg_ttl / 50 * 49 + sample / 50
            };
        }
        (volatile, reclaimed)
    }
}

/// The size the eviction policy counts for an entry: its block plus the key's overhead.
fn policy_size(e: &Entry) -> u32 {
    (e.alloc_size() + KEY_OVERHEAD).min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reclaims_expired_keys_and_counts() {
        let mut s = Shard::new(1);
        s.put(b"a", b"1", 100, 0);
        s.put(b"b", b"2", NO_EXPIRY, 7);
        assert_eq!(
            s.lookup_read(b"a", 99).map(|e| e.value().to_vec()),
            Some(b"1".to_vec())
        );
        assert!(s.lookup_read(b"a", 100).is_none());
        assert!(s.lookup_read(b"zz", 100).is_none());
        assert_eq!((s.stats.keyspace_hits, s.stats.keyspace_misses), (1, 2));
        assert_eq!((s.stats.expired_keys, s.len(), s.expires()), (1, 1, 0));
        assert_eq!(s.lookup(b"b", 100).map(|e| e.flags()), Some(7));
    }

    #[test]
    fn expire_cycle_reclaims_with_bounded_work() {
        let mut s = Shard::new(0);
        for i in 0..100u32 {
            let at = if i % 2 == 0 { 50 } else { NO_EXPIRY };
            s.put(&i.to_be_bytes(), &[1], at, 0);
        }
        assert_eq!(s.expire_cycle(49, 1000), (50, 0), "nothing due yet");
        assert_eq!(
            s.expire_cycle(50, 10),
            (5, 5),
            "ten positions, five of them expired"
        );
        let mut total = 5;
        for _ in 0..20 {
            total += s.expire_cycle(50, 10).1;
        }
        assert_eq!((total, s.len(), s.expires()), (50, 50, 0));
        assert_eq!(s.stats.expired_keys, 50);
    }

    #[test]
    fn random_key_finds_sparse_live_keys() {
        let mut s = Shard::new(0);
        assert_eq!(s.random_key(0), None);
        for i in 0..1000u32 {
            s.put(&i.to_be_bytes(), &[1], NO_EXPIRY, 0);
        }
        for i in 1..1000u32 {
            s.delete(&i.to_be_bytes(), 0);
        }
        assert_eq!(s.random_key(0).as_deref(), Some(&0u32.to_be_bytes()[..]));
        s.put(b"x", &[1], 10, 0);
        s.delete(&0u32.to_be_bytes(), 0);
        assert_eq!(
            s.random_key(10),
            None,
            "expired keys are reclaimed, not returned"
        );
        assert!(s.is_empty());
    }

    #[test]
    fn a_replica_shard_neither_expires_nor_evicts_on_its_own() {
        let mut s = Shard::new(0);
        s.set_replica(true);
        s.set_maxmemory(1, 0);
        s.put(b"a", b"1", 100, 0);
        s.put(b"b", b"2", NO_EXPIRY, 0);
        assert!(s.lookup(b"a", 200).is_none(), "an expired key looks absent");
        assert_eq!(s.expire_cycle(200, 100), (0, 0));
        assert_eq!(s.len(), 2, "nothing reclaimed, nothing evicted");
        assert_eq!((s.stats.expired_keys, s.stats.evicted_keys), (0, 0));
        s.set_replica(false);
        assert!(s.lookup(b"a", 200).is_none());
        assert_eq!(s.len(), 1, "a primary reclaims it");
    }

    #[test]
    fn flush_where_removes_only_the_keys_it_names() {
        let mut s = Shard::new(0);
        for k in [&b"a1"[..], b"a2", b"b1"] {
            s.put(k, b"v", NO_EXPIRY, 0);
        }
        assert_eq!(s.flush_where(|k| k.starts_with(b"a")), 2);
        assert_eq!(s.len(), 1);
        assert!(s.exists(b"b1", 0));
    }

    #[test]
    fn max_value_len_is_configurable() {
        let mut s = Shard::new(0);
        assert_eq!(s.max_value_len(), DEFAULT_MAX_VALUE_LEN);
        s.set_max_value_len(10);
        assert_eq!(s.max_value_len(), 10);
    }
}
