//! The per-core shard: one [`Store`] plus the statistics and the single write path that
//! every mutation goes through. A shard is owned by exactly one core and is never shared.

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::reply::Reply;
use crate::store::{Entry, Store, ValueSnapshot, NO_EXPIRY};

/// Counters one shard keeps; the server sums them over cores for INFO.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
}

/// One core's share of the keyspace.
pub struct Shard {
    pub(crate) id: usize,
    pub(crate) store: Store,
    pub stats: ShardStats,
    pub(crate) next_cas: u64,
    pub(crate) rng: u64,
}

impl Shard {
    pub fn new(id: usize) -> Shard {
        Shard {
            id,
            store: Store::new(),
            stats: ShardStats::default(),
            next_cas: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
        }
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
        self.expire_if_needed(key, now);
        self.store.get(key, now)
    }

    /// Like [`Shard::lookup`], counting a keyspace hit or miss.
    pub fn lookup_read(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.expire_if_needed(key, now);
        match self.store.get(key, now) {
            Some(e) => {
                self.stats.keyspace_hits += 1;
                Some(e)
            }
            None => {
                self.stats.keyspace_misses += 1;
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
                value,
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
        Some(f(&mut e.value))
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

    /// Removes every key.
    pub fn flush(&mut self) {
        self.store.clear();
    }
}
