//! The write path: the one module that changes a shard's [`Store`], and the one place
//! that reports each change as an [`Effect`].
//!
//! `link` stores an entry, `unlink` deletes one, `relink` replaces one in place; each
//! keeps the eviction policy in step. The operations above them pair every change with
//! its effect:
//!
//! | change                                                   | effect                 |
//! |----------------------------------------------------------|------------------------|
//! | [`Shard::put`] (and `restore`, `put_entry`), [`Shard::update`] | `Put` (whole item) |
//! | [`Shard::set_expire`] to a future time or none            | `Expire`               |
//! | a client-chosen CAS (meta `E`), stale and win-token bits  | `Stamp`                |
//! | [`Shard::delete`], [`Shard::take`], an expiry set in the past | `Del { Deleted }`  |
//! | lazy expiry on any lookup, the active expiry cycle        | `Del { Expired }`      |
//! | eviction to stay within the memory budget                 | `Del { Evicted }`      |
//! | [`Shard::flush`]                                          | `Flush`                |
//!
//! Reads change only an entry's access time and fetched bit, which are not effects.
//! [`Shard::apply`] is the way back: it replays an effect with the same three primitives.

mod hash;
mod list;
mod set;
pub mod store;
mod zset;

use bytes::Bytes;

use super::effect::{DelCause, Effect, EffectSink};
use super::{policy_size, Shard, Tracker};
use crate::entry::{ItemBits, Kind};
use crate::store::{Entry, ItemCopy, Store, NO_EXPIRY};

impl Shard {
    /// Sends the effect of every later change to `sink` (replacing any sink set before).
    pub fn set_effect_sink(&mut self, sink: Box<dyn EffectSink>) {
        self.sink = Some(sink);
    }

    /// Stops reporting effects; returns the sink that was set.
    pub fn clear_effect_sink(&mut self) -> Option<Box<dyn EffectSink>> {
        self.sink.take()
    }

    // ---- the three primitives: the store changes here and nowhere else ----------------

    fn link(&mut self, entry: Entry) -> u32 {
        self.links = self.links.wrapping_add(1);
        if matches!(self.tracker, Tracker::Off) {
            return self.store.insert(entry).0;
        }
        let covered = self.covers(&entry);
        let size = policy_size(&entry);
        let hash = self.store.hash(entry.key());
        let (idx, old) = self.store.insert(entry);
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
        self.store.map_at(idx, f);
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
        self.store.remove_at(idx)
    }

    /// Empties the store and everything that indexes it.
    fn clear(&mut self) {
        self.store.clear();
        self.expire_cursor = 0;
        self.avg_ttl = 0;
        if let Some(p) = self.tracker.policy() {
            p.clear();
        }
    }

    // ---- effects -----------------------------------------------------------------------

    /// Reports an effect, building it only when a sink listens: without one a write pays
    /// a branch and copies nothing. A replica's shard reports only what its primary sent
    /// ([`Shard::apply`]): a client's write on a writable replica (`replica-read-only
    /// no`) stays local, as on Redis, so the replica's journal stays its primary's.
    #[inline]
    fn emit(&mut self, effect: impl FnOnce(&Store) -> Effect) {
        if self.replica {
            return;
        }
        if !self.taps.is_empty() {
            // A slot migration runs: its tap notes the key (or the flush) too.
            let e = effect(&self.store);
            self.tap_changed(e.key().map(|k| &k[..]));
            if let Some(sink) = &mut self.sink {
                sink.emit(e);
            }
            return;
        }
        if let Some(sink) = &mut self.sink {
            sink.emit(effect(&self.store));
        }
    }

    /// Reports the entry at `idx` as it now stands (the sink reads it in place).
    fn emit_put(&mut self, idx: u32) {
        if !self.replica && !self.taps.is_empty() {
            let key = self.store.entry_at(idx).key();
            for (_, tap) in &mut self.taps {
                tap.note(key);
            }
        }
        if let (false, Some(sink)) = (self.replica, &mut self.sink) {
            sink.emit_put(self.store.entry_at(idx));
        }
    }

    /// Reports a new CAS or new item bits of the entry at `idx`.
    fn emit_stamp(&mut self, idx: u32) {
        self.emit(|s| {
            let e = s.entry_at(idx);
            Effect::Stamp {
                key: Bytes::copy_from_slice(e.key()),
                cas: e.cas(),
                bits: e.item_bits(),
            }
        });
    }

    /// Deletes the entry at `idx` and reports why (the sink reads the key in place).
    fn remove_at(&mut self, idx: u32, cause: DelCause) -> Entry {
        let e = self.unlink(idx);
        if !self.replica && !self.taps.is_empty() {
            self.tap_key(e.key());
        }
        if let (false, Some(sink)) = (self.replica, &mut self.sink) {
            sink.emit_del(e.key(), cause);
        }
        e
    }

    // ---- expiry and eviction -----------------------------------------------------------

    /// Evicts until the shard is within its budget; false if it is still over because
    /// nothing (more) can be evicted.
    pub(super) fn enforce_budget(&mut self) -> bool {
        if self.maxmemory == 0 || self.replica {
            return true;
        }
        while self.used_memory() > self.maxmemory {
            let Some(idx) = self.pick_victim() else {
                return false;
            };
            self.remove_at(idx, DelCause::Evicted);
            self.stats.evicted_keys += 1;
        }
        true
    }

    /// Deletes the expired entry at `idx` and counts it (lazy and active expiry alike).
    /// A replica's shard keeps it: its primary's `Del` will come.
    pub(super) fn reclaim_expired(&mut self, idx: u32) {
        if self.replica {
            return;
        }
        self.remove_at(idx, DelCause::Expired);
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

    // ---- writes ------------------------------------------------------------------------

    /// A number that changes whenever a write may have filled a key (a new item version
    /// or a newly stored entry): blocked clients' owner cores look at their keys again
    /// when it moves.
    pub fn write_version(&self) -> u64 {
        self.next_cas.wrapping_add(self.links)
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
        let idx = self.link(e);
        self.emit_put(idx);
        self.enforce_budget();
    }

    /// Writes a copy taken from another shard ([`Shard::copy_item`]).
    pub fn put_copy(&mut self, key: &[u8], copy: &ItemCopy) {
        if copy.vtype == crate::entry::ValueType::Zset {
            let big = copy.kind == Kind::Boxed;
            return self.put_zset(key, &copy.value, big, copy.expire_at, copy.flags);
        }
        match copy.kind {
            Kind::Str => self.put(key, &copy.value, copy.expire_at, copy.flags),
            Kind::ListPacked => self.put_list(key, &copy.value, copy.expire_at, copy.flags),
            Kind::SetInts | Kind::SetPacked => {
                let enc = if copy.kind == Kind::SetInts {
                    crate::set::Encoding::Ints
                } else {
                    crate::set::Encoding::Packed
                };
                self.put_set(key, &copy.value, Some(enc), copy.expire_at, copy.flags)
            }
            kind => self.put_hash(
                key,
                &copy.value,
                kind == Kind::Boxed,
                copy.expire_at,
                copy.flags,
            ),
        }
    }

    /// Stores `e`'s value, expiry and flags under `key`: RENAME within one shard moves an
    /// entry taken with [`Shard::take`] this way.
    pub fn put_entry(&mut self, key: &[u8], e: &Entry) {
        match e.kind() {
            Kind::Str => self.put(key, e.value(), e.expire_at(), e.flags()),
            _ => self.put_copy(key, &ItemCopy::of(e)),
        }
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
        self.emit_put(idx);
        self.enforce_budget();
        Some(r)
    }

    /// Deletes a live key; returns whether it existed.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        self.expire_if_needed(key, now);
        match self.store.index_of(key) {
            Some(idx) => {
                self.remove_at(idx, DelCause::Deleted);
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
            self.remove_at(idx, DelCause::Deleted);
        } else {
            self.relink(idx, |e| e.with_expire(expire_at));
            self.emit(|s| Effect::Expire {
                key: Bytes::copy_from_slice(s.entry_at(idx).key()),
                expire_at,
            });
            self.enforce_budget();
        }
        true
    }

    /// Removes a live key and hands its entry back (RENAME moves it without a copy).
    pub fn take(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        self.expire_if_needed(key, now);
        let idx = self.store.index_of(key)?;
        Some(self.remove_at(idx, DelCause::Deleted))
    }

    /// Drops every key and reports nothing: only a handoff's old process calls it, once
    /// the new process holds this shard (per-shard cutover). No flush is journalled: the
    /// new process took the shard over at this point of its flow, and nothing downstream
    /// may see the shard emptied.
    pub fn hand_over(&mut self) {
        self.clear();
    }

    /// Removes every key.
    pub fn flush(&mut self) {
        self.clear();
        self.emit(|_| Effect::Flush);
    }

    /// Removes every key for which `doomed` holds, each reported as a `Del`: a replica
    /// whose primary runs another core count flushes the keys of one primary shard this
    /// way, as they are spread over all of its own shards. Returns how many went.
    pub fn flush_where(&mut self, mut doomed: impl FnMut(&[u8]) -> bool) -> usize {
        let victims: Vec<u32> = self
            .store
            .iter_indexed()
            .filter(|(_, e)| doomed(e.key()))
            .map(|(idx, _)| idx)
            .collect();
        for &idx in &victims {
            self.remove_at(idx, DelCause::Deleted);
        }
        victims.len()
    }

    // ---- memcached's item state --------------------------------------------------------

    /// Changes a live item's per-item bits (memcached's stale and win-token state) in
    /// place; value, expiry and CAS stay.
    pub(crate) fn set_item_bits(&mut self, key: &[u8], now: u64, f: impl FnOnce(&mut ItemBits)) {
        let Some(idx) = self.live_index(key, now) else {
            return;
        };
        let e = self.store.entry_at_mut(idx);
        let mut bits = e.item_bits();
        f(&mut bits);
        if bits != e.item_bits() {
            e.set_item_bits(bits);
            self.emit_stamp(idx);
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
        let e = self.store.entry_at_mut(idx);
        match cas {
            Some(c) if c != e.cas() => {
                e.set_cas(c);
                self.emit_stamp(idx);
                c
            }
            _ => e.cas(),
        }
    }

    /// Gives the live item under `key` the CAS unique `cas` it had on another node (RESTORE
    /// of a payload that carries one: a key moved by MIGRATE or a slot stream keeps its
    /// CAS, so a client's `gets` before the move and `cas` after it still match). This
    /// shard's own CAS sequence moves past it, so no later write here reuses it.
    pub fn carry_cas(&mut self, key: &[u8], now: u64, cas: u64) {
        self.witness_cas(cas);
        self.mc_cas_after_write(key, now, Some(cas));
    }

    // ---- replay --------------------------------------------------------------------------

    /// Makes the change `effect` describes, so that the item ends up exactly as it was
    /// where the effect was emitted: value, expiry, flags, CAS and item bits.
    ///
    /// Nothing is decided here. The CAS is the one carried, not a new one; an item whose
    /// expiry has passed is stored as it is (its `Del` follows in the stream); no eviction
    /// runs (the source's evictions arrive as `Del`s). Applying an effect twice is the
    /// same as applying it once, and an `Expire` or `Stamp` for an absent key does
    /// nothing. The effect then goes on to this shard's own sink, so replicas can chain.
    pub fn apply(&mut self, effect: &Effect) {
        self.apply_quiet(effect);
        self.tap_changed(effect.key().map(|k| &k[..]));
        if let Some(sink) = &mut self.sink {
            sink.emit_ref(effect);
        }
    }

    /// [`Shard::apply`] without passing the effect on to this shard's sink: for what a
    /// replica loads that is not part of its primary's journal (the items of a full
    /// sync's snapshot, the flush that starts one), so that a replica's own journal stays
    /// byte for byte its primary's.
    pub fn apply_quiet(&mut self, effect: &Effect) {
        match effect {
            Effect::Put {
                key,
                value,
                expire_at,
                flags,
                cas,
                bits,
            } => {
                // A value as long as the one it replaces is written over it in place.
                if let Some(idx) = self.store.index_of(key) {
                    let e = self.store.entry_at_mut(idx);
                    if e.overwrite(value, *expire_at, *flags, *cas) {
                        e.set_item_bits(*bits);
                        e.set_accessed(self.now);
                        self.links = self.links.wrapping_add(1);
                        self.relink(idx, |e| e);
                        self.witness_cas(*cas);
                        return;
                    }
                }
                let mut e = Entry::new(key, value, *expire_at, *flags, *cas);
                e.set_item_bits(*bits);
                e.set_accessed(self.now);
                self.link(e);
                self.witness_cas(*cas);
            }
            Effect::Expire { key, expire_at } => {
                if let Some(idx) = self.store.index_of(key) {
                    self.relink(idx, |e| e.with_expire(*expire_at));
                }
            }
            Effect::Stamp { key, cas, bits } => {
                if let Some(idx) = self.store.index_of(key) {
                    let e = self.store.entry_at_mut(idx);
                    e.set_cas(*cas);
                    e.set_item_bits(*bits);
                    self.witness_cas(*cas);
                }
            }
            Effect::Del { key, .. } => {
                if let Some(idx) = self.store.index_of(key) {
                    self.unlink(idx);
                }
            }
            Effect::Flush => self.clear(),
            Effect::HashPut { .. } | Effect::HashSet { .. } | Effect::HashDel { .. } => {
                self.apply_hash(effect)
            }
            Effect::ListPut { .. }
            | Effect::ListPush { .. }
            | Effect::ListPop { .. }
            | Effect::ListSet { .. }
            | Effect::ListInsert { .. }
            | Effect::ListRem { .. } => self.apply_list(effect),
            Effect::SetPut { .. } | Effect::SetAdd { .. } | Effect::SetRem { .. } => {
                self.apply_set(effect)
            }
            Effect::ZsetPut { .. } | Effect::ZsetAdd { .. } | Effect::ZsetRem { .. } => {
                self.apply_zset(effect)
            }
        }
    }

    /// Keeps this shard's CAS sequence at or past the one `cas` came from, so that the
    /// uniques it hands out itself later (say, once promoted) differ from every applied one.
    fn witness_cas(&mut self, cas: u64) {
        self.next_cas = self.next_cas.max(cas >> crate::CORE_BITS);
    }
}

#[cfg(test)]
mod tests;
