//! The write path of hashes: fields set and removed, each change reported as one
//! `HashSet` or `HashDel` effect naming only the fields it touched (a large hash is never
//! copied to replicate one field), and the packed-to-table conversion at the thresholds.

use bytes::Bytes;

use super::super::effect::{DelCause, Effect};
use super::super::Shard;
use crate::entry::{Big, Kind};
use crate::hash::{self, packed, BigHash, Limits};
use crate::store::{Entry, NO_EXPIRY};

/// The most pairs a new hash packs directly, field by field (quadratic in them); more go
/// through the table, which folds repeated fields in linear time.
const DIRECT_PACK: usize = 32;

/// A new entry for a hash holding `pairs` (later duplicates win), packed when it fits.
fn new_hash<'a>(
    key: &[u8],
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    limits: Limits,
    expire_at: u64,
    flags: u32,
    cas: u64,
) -> (Entry, usize) {
    // As Redis's `hashTypeTryConversion`: any pair too long makes a table, even if a
    // later duplicate replaces it.
    let fits = pairs.clone().all(|(f, v)| limits.fits(f, v));
    let count = pairs.clone().count();
    if fits && count <= limits.max_entries.min(DIRECT_PACK) {
        // Few pairs: packed at once (folding repeated fields) without the table.
        let mut b = Vec::with_capacity(pairs.clone().map(|(f, v)| packed::pair_len(f, v)).sum());
        let n = packed::set(&mut b, pairs);
        return (
            Entry::new_kind(Kind::HashPacked, key, &b, expire_at, flags, cas),
            n,
        );
    }
    let t = BigHash::from_pairs(pairs);
    let n = t.len();
    let e = if fits && n <= limits.max_entries {
        Entry::new_kind(Kind::HashPacked, key, &t.to_packed(), expire_at, flags, cas)
    } else {
        Entry::new_big(key, Box::new(Big::Hash(t)), expire_at, flags, cas)
    };
    (e, n)
}

/// `old` with `pairs` set, as version `cas`; also how many fields were new. A packed
/// hash converts to the table form when a pair is too long or it gets too many fields.
fn set_on<'a>(
    mut old: Entry,
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    limits: Limits,
    cas: u64,
) -> (Entry, usize) {
    match old.kind() {
        Kind::HashPacked => {
            // Values as long as the ones they replace: written over them in place.
            if packed::overwrite(old.value_mut(), pairs.clone()) {
                old.set_cas(cas);
                return (old, 0);
            }
            let fits = pairs.clone().all(|(f, v)| limits.fits(f, v));
            let n = packed::len(old.value());
            if fits && n + pairs.clone().count() <= limits.max_entries {
                let mut b = old.value().to_vec();
                let added = packed::set(&mut b, pairs);
                let e =
                    old.with_kind_value(Kind::HashPacked, b.len(), cas, |v| v.copy_from_slice(&b));
                return (e, added);
            }
            let mut t = BigHash::from_pairs(packed::pairs(old.value()));
            let added = pairs.filter(|(f, v)| t.insert(f, v)).count();
            if fits && t.len() <= limits.max_entries {
                // Repeated fields kept it small: it stays packed, as in Redis.
                let b = t.to_packed();
                let e =
                    old.with_kind_value(Kind::HashPacked, b.len(), cas, |v| v.copy_from_slice(&b));
                return (e, added);
            }
            (old.with_big(Box::new(Big::Hash(t)), cas), added)
        }
        Kind::Boxed if old.hash().is_some() => {
            let added = match old.big_mut() {
                Some(Big::Hash(t)) => pairs.filter(|(f, v)| t.insert(f, v)).count(),
                _ => 0,
            };
            old.set_cas(cas);
            (old, added)
        }
        // Not a hash (only a stream out of order could ask): it becomes one.
        _ => new_hash(old.key(), pairs, limits, NO_EXPIRY, 0, cas),
    }
}

/// `old` without `fields`, as version `cas`; also how many were present.
fn del_on(mut old: Entry, fields: &[&[u8]], cas: u64) -> (Entry, usize) {
    match old.kind() {
        Kind::HashPacked => {
            let mut b = old.value().to_vec();
            let removed = packed::del(&mut b, fields);
            let e = old.with_kind_value(Kind::HashPacked, b.len(), cas, |v| v.copy_from_slice(&b));
            (e, removed)
        }
        Kind::Boxed => {
            let removed = match old.big_mut() {
                Some(Big::Hash(t)) => fields.iter().filter(|f| t.remove(f)).count(),
                _ => 0,
            };
            old.set_cas(cas);
            (old, removed)
        }
        _ => (old, 0),
    }
}

impl Shard {
    /// Sets `pairs` on the hash at `key`, creating it if absent (the caller has checked
    /// that the key holds no other type); returns how many fields were new. Reported as
    /// one `HashSet` of the pairs as given.
    pub fn hash_set(&mut self, key: &[u8], pairs: &[(&[u8], &[u8])], now: u64) -> usize {
        self.expire_if_needed(key, now);
        let cas = self.bump_cas();
        let added = self.hash_set_at(key, pairs.iter().copied(), cas, now);
        self.emit_hash_set(key, pairs.iter().copied(), cas);
        self.enforce_budget();
        added
    }

    /// Reports a `HashSet` of `pairs` as given (HSET, HMSET).
    fn emit_hash_set<'a>(
        &mut self,
        key: &[u8],
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        cas: u64,
    ) {
        self.emit(|_| {
            let mut b = Vec::new();
            for (f, v) in pairs {
                packed::push(&mut b, f, v);
            }
            Effect::HashSet {
                key: Bytes::copy_from_slice(key),
                pairs: Bytes::from(b),
                cas,
            }
        });
    }

    /// HSET's and HMSET's write: `args` are field, value, field, value, ... (an even
    /// count). One probe of the table finds the key, reclaims it if it has expired, checks
    /// that it holds a hash (`None` when it holds another type: WRONGTYPE) and sets the
    /// pairs; returns how many fields were new. Reported as one `HashSet`, as
    /// [`Shard::hash_set`].
    pub fn hash_set_args(&mut self, key: &[u8], args: &[Bytes], now: u64) -> Option<usize> {
        let found = match self.store.index_of(key) {
            Some(idx) if self.store.entry_at(idx).is_expired(now) => {
                self.reclaim_expired(idx);
                // Gone, except on a replica, which leaves expiry to its primary.
                self.store.index_of(key)
            }
            Some(idx) if self.store.entry_at(idx).hash().is_none() => return None,
            found => found,
        };
        let pairs = args.chunks_exact(2).map(|p| (&p[0][..], &p[1][..]));
        let cas = self.bump_cas();
        let added = self.hash_set_in(found, key, pairs.clone(), cas, now);
        self.emit_hash_set(key, pairs, cas);
        self.enforce_budget();
        Some(added)
    }

    fn hash_set_at<'a>(
        &mut self,
        key: &[u8],
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
        cas: u64,
        now: u64,
    ) -> usize {
        let found = self.store.index_of(key);
        self.hash_set_in(found, key, pairs, cas, now)
    }

    /// Sets `pairs` on the hash at slab index `found` (a new hash at `key` when `None`).
    fn hash_set_in<'a>(
        &mut self,
        found: Option<u32>,
        key: &[u8],
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
        cas: u64,
        now: u64,
    ) -> usize {
        let limits = hash::limits();
        let mut added = 0;
        match found {
            None => {
                let (mut e, n) = new_hash(key, pairs, limits, NO_EXPIRY, 0, cas);
                e.set_accessed(now);
                self.link(e);
                added = n;
            }
            Some(idx) => self.relink(idx, |old| {
                let (mut e, n) = set_on(old, pairs, limits, cas);
                e.set_accessed(now);
                added = n;
                e
            }),
        }
        added
    }

    /// Removes `fields` from the hash at `key`; returns how many were present. Removing
    /// the last field removes the key (reported as a `Del`, else as one `HashDel`).
    pub fn hash_del(&mut self, key: &[u8], fields: &[&[u8]], now: u64) -> usize {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return 0;
        };
        let present = self
            .store
            .entry_at(idx)
            .hash()
            .is_some_and(|h| fields.iter().any(|f| h.get(f).is_some()));
        if !present {
            return 0;
        }
        let cas = self.bump_cas();
        let removed = self.hash_del_at(idx, fields, cas, now);
        if self
            .store
            .entry_at(idx)
            .hash()
            .is_some_and(|h| h.is_empty())
        {
            self.remove_at(idx, DelCause::Deleted);
        } else {
            self.emit(|_| Effect::HashDel {
                key: Bytes::copy_from_slice(key),
                fields: fields.iter().map(|f| Bytes::copy_from_slice(f)).collect(),
                cas,
            });
        }
        removed
    }

    fn hash_del_at(&mut self, idx: u32, fields: &[&[u8]], cas: u64, now: u64) -> usize {
        let mut removed = 0;
        self.relink(idx, |old| {
            let (mut e, n) = del_on(old, fields, cas);
            e.set_accessed(now);
            removed = n;
            e
        });
        removed
    }

    /// Stores a whole hash given as packed pairs (COPY, RENAME, a replicated `HashPut`),
    /// in the table form when `table` (or when it is too big to stay packed).
    pub fn put_hash(&mut self, key: &[u8], pairs: &[u8], table: bool, expire_at: u64, flags: u32) {
        let cas = self.bump_cas();
        let mut e = hash_entry(key, pairs, table, expire_at, flags, cas);
        e.set_accessed(self.now);
        let idx = self.link(e);
        self.emit_put(idx);
        self.enforce_budget();
    }

    /// Replays a `HashPut`, `HashSet` or `HashDel` (see [`Shard::apply_quiet`]).
    pub(super) fn apply_hash(&mut self, effect: &Effect) {
        match effect {
            Effect::HashPut {
                key,
                pairs,
                table,
                expire_at,
                flags,
                cas,
                bits,
            } => {
                let mut e = hash_entry(key, pairs, *table, *expire_at, *flags, *cas);
                e.set_item_bits(*bits);
                e.set_accessed(self.now);
                self.link(e);
                self.witness_cas(*cas);
            }
            Effect::HashSet { key, pairs, cas } => {
                self.hash_set_at(key, packed::pairs(pairs), *cas, self.now);
                self.witness_cas(*cas);
            }
            Effect::HashDel { key, fields, cas } => {
                if let Some(idx) = self.store.index_of(key) {
                    let fields: Vec<&[u8]> = fields.iter().map(|f| &f[..]).collect();
                    self.hash_del_at(idx, &fields, *cas, self.now);
                    if self
                        .store
                        .entry_at(idx)
                        .hash()
                        .is_some_and(|h| h.is_empty())
                    {
                        self.unlink(idx);
                    }
                    self.witness_cas(*cas);
                }
            }
            _ => {}
        }
    }
}

/// The entry for a whole hash given as packed pairs: the table form when asked for or
/// when it does not fit the packed thresholds.
fn hash_entry(
    key: &[u8],
    pairs: &[u8],
    table: bool,
    expire_at: u64,
    flags: u32,
    cas: u64,
) -> Entry {
    let limits = hash::limits();
    let fits = || {
        packed::len(pairs) <= limits.max_entries
            && packed::pairs(pairs).all(|(f, v)| limits.fits(f, v))
    };
    if !table && fits() {
        Entry::new_kind(Kind::HashPacked, key, pairs, expire_at, flags, cas)
    } else {
        let t = BigHash::from_pairs(packed::pairs(pairs));
        Entry::new_big(key, Box::new(Big::Hash(t)), expire_at, flags, cas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Collector;

    #[test]
    fn fields_set_and_removed_replay_exactly_across_the_conversion() {
        let mut a = Shard::new(0);
        let fx = Collector::new();
        a.set_effect_sink(Box::new(fx.clone()));
        a.hash_set(b"h", &[(b"f1", b"v1"), (b"f2", b"v2")], 0);
        let long = vec![b'x'; 100];
        a.hash_set(b"h", &[(b"f3", &long)], 0);
        assert!(matches!(
            a.lookup(b"h", 0).unwrap().hash(),
            Some(hash::HashRef::Table(_))
        ));
        assert_eq!(a.hash_del(b"h", &[b"f1", b"nope"], 0), 1);
        let mut b = Shard::new(1);
        for e in fx.take() {
            b.apply(&e);
        }
        assert_eq!(a.lookup(b"h", 0), b.lookup(b"h", 0));
        assert_eq!(a.hash_del(b"h", &[b"f2", b"f3"], 0), 2);
        assert!(a.lookup(b"h", 0).is_none(), "the last field takes the key");
        let effects = fx.take();
        assert!(matches!(effects[..], [Effect::Del { .. }]), "{effects:?}");
        b.apply(&effects[0]);
        assert!(b.is_empty());
        assert_eq!(a.used_memory(), b.used_memory());
    }

    #[test]
    fn memory_counts_the_table() {
        let mut s = Shard::new(0);
        let before = s.used_memory();
        for i in 0..1000u32 {
            let f = i.to_string();
            s.hash_set(b"h", &[(f.as_bytes(), b"value")], 0);
        }
        let grown = s.used_memory() - before;
        assert!(grown > 1000 * 16, "{grown}");
        s.hash_del(b"h", &[b"0"], 0);
        let all: Vec<String> = (1..1000u32).map(|i| i.to_string()).collect();
        let fields: Vec<&[u8]> = all.iter().map(|f| f.as_bytes()).collect();
        s.hash_del(b"h", &fields, 0);
        assert!(s.is_empty());
        assert_eq!(s.store().entry_bytes(), 0);
    }
}
