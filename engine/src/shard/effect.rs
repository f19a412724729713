//! What a shard's writes did, as data: the stream replication will ship.
//!
//! The write path reports every change it makes to the store as one [`Effect`] to the
//! shard's [`EffectSink`], if one is set. Effects are results, not commands: they carry
//! the absolute expiry, the flags, the CAS the write produced and memcached's item bits,
//! never "now + 10s" or "bump the CAS". So a stream applied in order with
//! [`Shard::apply`](super::Shard::apply) reproduces every item exactly, on another shard
//! and at any later time, and applying an effect twice is the same as applying it once.
//!
//! ```text
//!   command ─► write path ─► Store
//!                   │
//!                   └──► Effect ─► EffectSink (none by default; the replication journal)
//! ```

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::entry::{Entry, ItemBits};

/// One change to one shard's keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The whole item as it stands after a write (SET, APPEND, INCR, a memcached store,
    /// ...): it replaces whatever the key held.
    Put {
        key: Bytes,
        value: Bytes,
        /// Absolute unix ms, or [`NO_EXPIRY`](crate::NO_EXPIRY).
        expire_at: u64,
        flags: u32,
        cas: u64,
        bits: ItemBits,
    },
    /// A present item's new expiry (EXPIRE, PERSIST, memcached touch); its value, flags,
    /// CAS and bits stay. Sent instead of a `Put` so that a TTL change copies no value.
    Expire { key: Bytes, expire_at: u64 },
    /// A present item's new CAS and item bits (the meta `E` flag, `md I`, a win token
    /// handed out); its value and expiry stay.
    Stamp {
        key: Bytes,
        cas: u64,
        bits: ItemBits,
    },
    /// The key is gone.
    Del { key: Bytes, cause: DelCause },
    /// Every key is gone (FLUSHDB, FLUSHALL, memcached's flush_all).
    Flush,
}

/// Why a key went away. Replicas delete alike; the cause is for statistics and for
/// telling a client's delete from the cache's own decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelCause {
    /// A command removed it (DEL, GETDEL, RENAME's source, an expiry set in the past).
    Deleted,
    /// Its expiry passed and lazy or active expiry reclaimed it.
    Expired,
    /// The eviction policy gave it up to stay within the memory budget.
    Evicted,
}

impl Effect {
    /// The `Put` that recreates `e` exactly.
    pub fn put(e: &Entry) -> Effect {
        let (key, value) = e.key_value();
        Effect::Put {
            key: Bytes::copy_from_slice(key),
            value: Bytes::copy_from_slice(value),
            expire_at: e.expire_at(),
            flags: e.flags(),
            cas: e.cas(),
            bits: e.item_bits(),
        }
    }
}

/// Where a shard sends its effects. Called on the shard's own core, synchronously, once
/// per change and in the order the changes happened.
pub trait EffectSink: Send {
    fn emit(&mut self, effect: Effect);
}

/// A sink that keeps effects in memory for whoever holds a clone of it (tests, and
/// consumers that drain in batches).
#[derive(Clone, Default)]
pub struct Collector(Arc<Mutex<Vec<Effect>>>);

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// The effects collected since the last call, oldest first.
    pub fn take(&self) -> Vec<Effect> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl EffectSink for Collector {
    fn emit(&mut self, effect: Effect) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(effect);
    }
}
