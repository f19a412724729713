//! Eviction policies as pure data structures.
//!
//! A policy knows items only by a dense `u32` id (the store keeps its entries in a slab
//! and hands slab indices to the policy), their size in bytes, and, for S3-FIFO's ghost
//! queue, a 64-bit hash of the key. It never sees keys or values and never frees
//! anything itself: the store asks [`Policy::evict`] for a victim while it is over its
//! memory budget and then deletes that entry.
//!
//! Policies:
//! - [`S3Fifo`]: the shard's policy (Yang et al., SOSP'23), counted in bytes.
//! - [`ExactLru`]: a true LRU over an intrusive doubly-linked list, the baseline.
//! - [`Random`]: Redis's `allkeys-random`.
//!
//! Contract shared by all policies:
//! - ids are dense (the side arrays grow to the largest id seen) and below `u32::MAX - 1`;
//! - `insert` of an id that is already tracked replaces it (as if `remove` came first);
//! - `access`, `remove` and `resize` of an untracked id are no-ops;
//! - `evict` removes the victim from the policy before returning it, so the store must
//!   not call `remove` for it afterwards (doing so is a harmless no-op);
//! - `bytes` is the sum of the sizes of the tracked items.
//!
//! The byte budget given to [`S3Fifo`] only sizes its small queue: whether to evict at
//! all is the store's decision (it also counts its own table overhead).
//!
//! Example, the store's eviction loop:
//! ```
//! use baton_engine::evict::{Policy, S3Fifo};
//! let mut p = S3Fifo::new(100);
//! for id in 0..20u32 {
//!     p.insert(id, u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15), 10);
//!     while p.bytes() > 100 {
//!         let victim = p.evict().expect("over budget means not empty");
//!         assert!(victim <= id); // the store now deletes slab entry `victim`
//!     }
//! }
//! assert!(p.bytes() <= 100);
//! ```

mod fifo;
mod ghost;
mod lru;
mod random;
mod s3fifo;

pub use lru::ExactLru;
pub use random::Random;
pub use s3fifo::{S3Fifo, S3FifoConfig};

/// An eviction policy over dense item ids. See the module docs for the contract.
pub trait Policy {
    /// A new item was stored under slab id `id`; `hash` is a 64-bit hash of its key.
    fn insert(&mut self, id: u32, hash: u64, size: u32);
    /// The item was read (a hit). O(1) and cheap.
    fn access(&mut self, id: u32);
    /// The store deleted the item (DEL, expiry, overwrite with a new id, flush of one key).
    fn remove(&mut self, id: u32);
    /// The item's size changed in place (APPEND, SETRANGE, overwrite keeping the id).
    fn resize(&mut self, id: u32, size: u32);
    /// Chooses a victim and forgets it; `None` when nothing is tracked.
    fn evict(&mut self) -> Option<u32>;
    /// Sum of the sizes of the tracked items.
    fn bytes(&self) -> u64;
    /// Number of tracked items.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether `id` is tracked.
    fn contains(&self, id: u32) -> bool;
    /// Forgets every item (FLUSHALL); keeps allocations for reuse.
    fn clear(&mut self);
    /// Heap bytes held by the policy's own metadata (for overhead accounting).
    fn heap_bytes(&self) -> usize;
}

/// Marker for "not tracked" / "no link" in the side arrays of the policies.
pub(crate) const NIL: u32 = u32::MAX;

/// Grows a side array so that `id` indexes into it. Grows capacity by 25% steps rather
/// than doubling: these arrays are per-key metadata, and slack counts.
#[inline]
pub(crate) fn ensure<T: Clone>(v: &mut Vec<T>, id: u32, fill: T) {
    let need = id as usize + 1;
    if v.len() < need {
        if need > v.capacity() {
            let want = need.max(v.capacity() + v.capacity() / 4).max(16);
            v.reserve_exact(want - v.len());
        }
        v.resize(need, fill);
    }
}

/// `maxmemory-policy`: what a shard does when a write takes it over its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// Refuse writes that may grow memory with Redis's OOM error.
    NoEviction,
    /// S3-FIFO over every key (the default).
    #[default]
    AllkeysS3Fifo,
    /// S3-FIFO over keys with a TTL only; writes fail with OOM when none is left.
    VolatileS3Fifo,
    /// A uniformly random key.
    AllkeysRandom,
    /// A uniformly random key among those with a TTL.
    VolatileRandom,
    /// Of a few sampled keys with a TTL, the one expiring soonest (Redis's sampling).
    VolatileTtl,
}

impl EvictionPolicy {
    pub const NAMES: [&'static str; 6] = [
        "noeviction",
        "allkeys-s3fifo",
        "volatile-s3fifo",
        "allkeys-random",
        "volatile-random",
        "volatile-ttl",
    ];

    /// Parses a policy name, case-insensitively. Redis's LRU and LFU names map to the
    /// S3-FIFO policy of the same key scope (see [`EvictionPolicy::is_alias`]).
    pub fn parse(name: &str) -> Option<EvictionPolicy> {
        use EvictionPolicy::*;
        Some(match name.to_ascii_lowercase().as_str() {
            "noeviction" => NoEviction,
            "allkeys-s3fifo" | "allkeys-lru" | "allkeys-lfu" => AllkeysS3Fifo,
            "volatile-s3fifo" | "volatile-lru" | "volatile-lfu" => VolatileS3Fifo,
            "allkeys-random" => AllkeysRandom,
            "volatile-random" => VolatileRandom,
            "volatile-ttl" => VolatileTtl,
            _ => return None,
        })
    }

    /// Whether `name` is a Redis LRU/LFU policy name that Baton serves with S3-FIFO.
    pub fn is_alias(name: &str) -> bool {
        matches!(
            name.to_ascii_lowercase().as_str(),
            "allkeys-lru" | "allkeys-lfu" | "volatile-lru" | "volatile-lfu"
        )
    }

    pub fn name(&self) -> &'static str {
        use EvictionPolicy::*;
        match self {
            NoEviction => "noeviction",
            AllkeysS3Fifo => "allkeys-s3fifo",
            VolatileS3Fifo => "volatile-s3fifo",
            AllkeysRandom => "allkeys-random",
            VolatileRandom => "volatile-random",
            VolatileTtl => "volatile-ttl",
        }
    }

    /// Whether only keys with a TTL may be evicted.
    pub fn volatile(&self) -> bool {
        use EvictionPolicy::*;
        matches!(self, VolatileS3Fifo | VolatileRandom | VolatileTtl)
    }
}
