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
    /// A whole hash as it stands (RENAME and COPY of a hash, a snapshot item): it replaces
    /// whatever the key held. `pairs` is the packed form ([`crate::hash::packed`]) of
    /// every field in order; `table` says the hash is in its table form.
    HashPut {
        key: Bytes,
        pairs: Bytes,
        table: bool,
        expire_at: u64,
        flags: u32,
        cas: u64,
        bits: ItemBits,
    },
    /// Fields set to final values on the hash at `key` (HSET, HSETNX, HMSET, and HINCRBY
    /// and HINCRBYFLOAT with their results), in order; a key that is absent becomes a new
    /// hash without expiry. `cas` is the item's version after the write.
    HashSet { key: Bytes, pairs: Bytes, cas: u64 },
    /// Fields removed from the hash at `key` (HDEL), which keeps at least one field
    /// (removing the last one is a `Del`).
    HashDel {
        key: Bytes,
        fields: Vec<Bytes>,
        cas: u64,
    },
    /// A whole list as it stands (RENAME and COPY of a list, RESTORE, a snapshot item): it replaces whatever the key held. `items` is the packed form
    /// ([`crate::list::packed`]) of every element, head first.
    ListPut {
        key: Bytes,
        items: Bytes,
        expire_at: u64,
        flags: u32,
        cas: u64,
        bits: ItemBits,
    },
    /// Elements pushed on the list at `key`, one after another, at the head (`left`, so
    /// the last one ends up first) or at the tail; a key that is absent becomes a new list
    /// without expiry. `items` is packed. `cas` is the item's version after the write; a
    /// replay that finds the list already at `cas` skips it (as for `ListPop`), so applying
    /// it twice is applying it once.
    ListPush {
        key: Bytes,
        left: bool,
        items: Bytes,
        cas: u64,
    },
    /// `count` elements popped from the head (`left`) or the tail of the list at `key`
    /// (LPOP, RPOP, LTRIM, LMOVE's source), which keeps at least one element (popping
    /// the last one is a `Del`).
    ListPop {
        key: Bytes,
        left: bool,
        count: u64,
        cas: u64,
    },
    /// The element at `index` (from the head) of the list at `key` replaced (LSET).
    ListSet {
        key: Bytes,
        index: u64,
        value: Bytes,
        cas: u64,
    },
    /// `value` inserted into the list at `key` so that it stands at `index` from the head
    /// (LINSERT's outcome: where the pivot was found, not the pivot). `cas` is the item's
    /// version after the write; a replay that finds the list already at `cas` skips it.
    ListInsert {
        key: Bytes,
        index: u64,
        value: Bytes,
        cas: u64,
    },
    /// The elements at `indexes` (positions from the head before the removal, strictly
    /// ascending) removed from the list at `key` (LREM's outcome: which elements matched,
    /// not the value and count), which keeps at least one element (removing the last is a
    /// `Del`). Skipped on replay when the list is already at `cas`.
    ListRem {
        key: Bytes,
        indexes: Vec<u64>,
        cas: u64,
    },
    /// A whole set as it stands (RENAME and COPY of a set, SINTERSTORE and friends, a
    /// snapshot item): it replaces whatever the key held. `members` is the packed form
    /// ([`crate::set::packed`]) of every member in order; `enc` the form it is in.
    SetPut {
        key: Bytes,
        members: Bytes,
        enc: crate::set::Encoding,
        expire_at: u64,
        flags: u32,
        cas: u64,
        bits: ItemBits,
    },
    /// Members added to the set at `key` (SADD, SMOVE's destination), packed, each one
    /// new; a key that is absent becomes a new set without expiry.
    SetAdd {
        key: Bytes,
        members: Bytes,
        cas: u64,
    },
    /// Members removed from the set at `key` (SREM, SPOP's outcome, SMOVE's source),
    /// which keeps at least one member (removing the last one is a `Del`).
    SetRem {
        key: Bytes,
        members: Vec<Bytes>,
        cas: u64,
    },
    /// A whole sorted set as it stands (RENAME, COPY, the STORE commands, a snapshot
    /// item): it replaces whatever the key held. `entries` is the packed form
    /// ([`crate::zset::packed`]) of every member in order; `big` says it is in its large
    /// form.
    ZsetPut {
        key: Bytes,
        entries: Bytes,
        big: bool,
        expire_at: u64,
        flags: u32,
        cas: u64,
        bits: ItemBits,
    },
    /// Members set to their final scores on the sorted set at `key` (ZADD, ZINCRBY with
    /// their outcomes), packed as in [`crate::zset::packed`] but in the order given; an
    /// absent key becomes a new sorted set without expiry.
    ZsetAdd {
        key: Bytes,
        entries: Bytes,
        cas: u64,
    },
    /// Members removed from the sorted set at `key` (ZREM, ZPOP*, ZREMRANGE*), which keeps
    /// at least one member (removing the last one is a `Del`).
    ZsetRem {
        key: Bytes,
        members: Vec<Bytes>,
        cas: u64,
    },
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
        if let Some(z) = e.zset() {
            return Effect::ZsetPut {
                key: Bytes::copy_from_slice(e.key()),
                entries: Bytes::from(z.to_packed()),
                big: matches!(z, crate::zset::ZsetRef::Big(_)),
                expire_at: e.expire_at(),
                flags: e.flags(),
                cas: e.cas(),
                bits: e.item_bits(),
            };
        }
        if let Some(h) = e.hash() {
            return Effect::HashPut {
                key: Bytes::copy_from_slice(e.key()),
                pairs: Bytes::from(e.value_bytes().into_owned()),
                table: matches!(h, crate::hash::HashRef::Table(_)),
                expire_at: e.expire_at(),
                flags: e.flags(),
                cas: e.cas(),
                bits: e.item_bits(),
            };
        }
        if e.list().is_some() {
            return Effect::ListPut {
                key: Bytes::copy_from_slice(e.key()),
                items: Bytes::from(e.value_bytes().into_owned()),
                expire_at: e.expire_at(),
                flags: e.flags(),
                cas: e.cas(),
                bits: e.item_bits(),
            };
        }
        if let Some(s) = e.set() {
            return Effect::SetPut {
                key: Bytes::copy_from_slice(e.key()),
                members: Bytes::from(s.to_packed()),
                enc: s.encoding(),
                expire_at: e.expire_at(),
                flags: e.flags(),
                cas: e.cas(),
                bits: e.item_bits(),
            };
        }
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

impl Effect {
    /// The key the effect changes (`None` for a flush).
    pub fn key(&self) -> Option<&Bytes> {
        match self {
            Effect::Put { key, .. }
            | Effect::Expire { key, .. }
            | Effect::Stamp { key, .. }
            | Effect::Del { key, .. }
            | Effect::HashPut { key, .. }
            | Effect::HashSet { key, .. }
            | Effect::HashDel { key, .. }
            | Effect::ListPut { key, .. }
            | Effect::ListPush { key, .. }
            | Effect::ListPop { key, .. }
            | Effect::ListSet { key, .. }
            | Effect::ListInsert { key, .. }
            | Effect::ListRem { key, .. }
            | Effect::SetPut { key, .. }
            | Effect::SetAdd { key, .. }
            | Effect::SetRem { key, .. }
            | Effect::ZsetPut { key, .. }
            | Effect::ZsetAdd { key, .. }
            | Effect::ZsetRem { key, .. } => Some(key),
            Effect::Flush => None,
        }
    }
}

/// Where a shard sends its effects. Called on the shard's own core, synchronously, once
/// per change and in the order the changes happened.
pub trait EffectSink: Send {
    fn emit(&mut self, effect: Effect);

    /// The entry `e` as it now stands: the effect [`Effect::put`] builds from it. A sink
    /// that encodes effects may read the entry in place instead, sparing the copies of its
    /// key and value that building the effect takes (a write's replication cost).
    fn emit_put(&mut self, e: &Entry) {
        self.emit(Effect::put(e));
    }

    /// A change `effect` already describes (a replica passing on what it applied): a
    /// sink that encodes effects may read it in place instead of taking the clone the
    /// default makes (cloning shares a `Bytes` only after allocating for it).
    fn emit_ref(&mut self, effect: &Effect) {
        self.emit(effect.clone());
    }

    /// `key` is gone, for `cause`: an [`Effect::Del`], which a sink that encodes may write
    /// without copying the key first.
    fn emit_del(&mut self, key: &[u8], cause: DelCause) {
        self.emit(Effect::Del {
            key: Bytes::copy_from_slice(key),
            cause,
        });
    }
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
