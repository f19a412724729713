//! The write path of sorted sets: members set to final scores and members removed, each
//! change reported as one `ZsetAdd` or `ZsetRem` effect naming only the members touched
//! (outcomes, never increments: ZINCRBY journals the resulting score), whole sets stored
//! as one `ZsetPut`, and the packed-to-large conversion at the thresholds.

use bytes::Bytes;

use super::super::effect::{DelCause, Effect};
use super::super::Shard;
use crate::entry::{Big, Kind};
use crate::store::{Entry, NO_EXPIRY};
use crate::zset::{self, packed, BigZset, Limits};

fn fits(limits: Limits, member: &[u8]) -> bool {
    member.len() <= limits.max_value
}

/// An entry holding `z`'s entries: packed when `big` is false and they fit.
fn zset_entry(
    key: &[u8],
    entries: &[u8],
    big: bool,
    expire_at: u64,
    flags: u32,
    cas: u64,
) -> Entry {
    let limits = zset::limits();
    let n = packed::len(entries);
    if !big && n <= limits.max_entries && packed::entries(entries).all(|(m, _)| fits(limits, m)) {
        // Rebuilt so that foreign bytes are sorted and free of duplicates.
        let b = packed::from_entries(packed::entries(entries));
        if packed::len(&b) <= limits.max_entries {
            return Entry::new_kind(Kind::ZsetPacked, key, &b, expire_at, flags, cas);
        }
    }
    let z = BigZset::from_entries(packed::entries(entries));
    Entry::new_big(key, Box::new(Big::ZSet(z)), expire_at, flags, cas)
}

/// `old` (a sorted set, or absent) with `items` set, as version `cas`.
fn add_on<'a>(
    key: &[u8],
    old: Option<Entry>,
    items: impl Iterator<Item = (&'a [u8], f64)> + Clone,
    cas: u64,
) -> Entry {
    let limits = zset::limits();
    match old {
        Some(mut old) if old.kind() == Kind::ZsetPacked => {
            let mut b = old.value().to_vec();
            if items.clone().all(|(m, _)| fits(limits, m)) {
                for (m, s) in items {
                    packed::remove(&mut b, m);
                    packed::insert(&mut b, m, s);
                }
                if packed::len(&b) <= limits.max_entries {
                    return old.with_kind_value(Kind::ZsetPacked, b.len(), cas, |v| {
                        v.copy_from_slice(&b)
                    });
                }
                let z = BigZset::from_entries(packed::entries(&b));
                return old.with_big(Box::new(Big::ZSet(z)), cas);
            }
            let mut z = BigZset::from_entries(packed::entries(&b));
            for (m, s) in items {
                z.set(m, s);
            }
            let e = old.with_big(Box::new(Big::ZSet(z)), cas);
            old.set_cas(cas);
            e
        }
        Some(mut old) if matches!(old.big(), Some(Big::ZSet(_))) => {
            if let Some(Big::ZSet(z)) = old.big_mut() {
                for (m, s) in items {
                    z.set(m, s);
                }
            }
            old.set_cas(cas);
            old
        }
        // Absent, or (only a stream out of order could ask) another type: a new set.
        _ => {
            let b = packed::from_entries(items);
            zset_entry(key, &b, false, NO_EXPIRY, 0, cas)
        }
    }
}

/// `old` without `members`, as version `cas`; also how many were present.
fn rem_on(mut old: Entry, members: &[&[u8]], cas: u64) -> (Entry, usize) {
    match old.kind() {
        Kind::ZsetPacked => {
            let mut b = old.value().to_vec();
            let n = members
                .iter()
                .filter(|m| packed::remove(&mut b, m).is_some())
                .count();
            let e = old.with_kind_value(Kind::ZsetPacked, b.len(), cas, |v| v.copy_from_slice(&b));
            (e, n)
        }
        _ => {
            let n = match old.big_mut() {
                Some(Big::ZSet(z)) => members.iter().filter(|m| z.remove(m).is_some()).count(),
                _ => 0,
            };
            old.set_cas(cas);
            (old, n)
        }
    }
}

impl Shard {
    /// Sets members to final scores on the sorted set at `key`, creating it if absent
    /// (the caller has checked that the key holds no other type). Reported as one
    /// `ZsetAdd` of the items as given.
    pub fn zset_add(&mut self, key: &[u8], items: &[(&[u8], f64)], now: u64) {
        if items.is_empty() {
            return;
        }
        self.expire_if_needed(key, now);
        let cas = self.bump_cas();
        self.zset_add_at(key, items.iter().copied(), cas, now);
        self.emit(|_| {
            let mut b = Vec::new();
            for (m, s) in items {
                packed::push(&mut b, m, *s);
            }
            Effect::ZsetAdd {
                key: Bytes::copy_from_slice(key),
                entries: Bytes::from(b),
                cas,
            }
        });
        self.enforce_budget();
    }

    fn zset_add_at<'a>(
        &mut self,
        key: &[u8],
        items: impl Iterator<Item = (&'a [u8], f64)> + Clone,
        cas: u64,
        now: u64,
    ) {
        match self.store.index_of(key) {
            None => {
                let mut e = add_on(key, None, items, cas);
                e.set_accessed(now);
                self.link(e);
            }
            Some(idx) => self.relink(idx, |old| {
                let mut e = add_on(key, Some(old), items, cas);
                e.set_accessed(now);
                e
            }),
        }
    }

    /// Removes `members` from the sorted set at `key`; returns how many were present.
    /// Removing the last member removes the key (reported as a `Del`, else one `ZsetRem`
    /// naming the members that were present).
    pub fn zset_rem(&mut self, key: &[u8], members: &[&[u8]], now: u64) -> usize {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return 0;
        };
        let present: Vec<&[u8]> = match self.store.entry_at(idx).zset() {
            Some(z) => {
                let mut seen = std::collections::HashSet::new();
                members
                    .iter()
                    .copied()
                    .filter(|m| z.score(m).is_some() && seen.insert(*m))
                    .collect()
            }
            None => return 0,
        };
        if present.is_empty() {
            return 0;
        }
        let cas = self.bump_cas();
        let removed = self.zset_rem_at(idx, &present, cas, now);
        if self
            .store
            .entry_at(idx)
            .zset()
            .is_some_and(|z| z.is_empty())
        {
            self.remove_at(idx, DelCause::Deleted);
        } else {
            self.emit(|_| Effect::ZsetRem {
                key: Bytes::copy_from_slice(key),
                members: present.iter().map(|m| Bytes::copy_from_slice(m)).collect(),
                cas,
            });
        }
        removed
    }

    fn zset_rem_at(&mut self, idx: u32, members: &[&[u8]], cas: u64, now: u64) -> usize {
        let mut removed = 0;
        self.relink(idx, |old| {
            let (mut e, n) = rem_on(old, members, cas);
            e.set_accessed(now);
            removed = n;
            e
        });
        removed
    }

    /// Stores a whole sorted set given as packed entries (COPY, RENAME, the STORE
    /// commands, a replicated `ZsetPut`), in the large form when `big` (or when it does
    /// not fit the packed thresholds). An empty set deletes the key instead.
    pub fn put_zset(&mut self, key: &[u8], entries: &[u8], big: bool, expire_at: u64, flags: u32) {
        if entries.is_empty() {
            self.delete(key, self.now);
            return;
        }
        let cas = self.bump_cas();
        let mut e = zset_entry(key, entries, big, expire_at, flags, cas);
        e.set_accessed(self.now);
        let idx = self.link(e);
        self.emit_put(idx);
        self.enforce_budget();
    }

    /// Replays a `ZsetPut`, `ZsetAdd` or `ZsetRem` (see [`Shard::apply_quiet`]).
    pub(super) fn apply_zset(&mut self, effect: &Effect) {
        match effect {
            Effect::ZsetPut {
                key,
                entries,
                big,
                expire_at,
                flags,
                cas,
                bits,
            } => {
                if entries.is_empty() {
                    // Never emitted (an empty set is a Del); foreign bytes could say it.
                    if let Some(idx) = self.store.index_of(key) {
                        self.unlink(idx);
                    }
                    return;
                }
                let mut e = zset_entry(key, entries, *big, *expire_at, *flags, *cas);
                e.set_item_bits(*bits);
                e.set_accessed(self.now);
                self.link(e);
                self.witness_cas(*cas);
            }
            Effect::ZsetAdd { key, entries, cas } if !entries.is_empty() => {
                self.zset_add_at(key, packed::entries(entries), *cas, self.now);
                self.witness_cas(*cas);
            }
            Effect::ZsetRem { key, members, cas } => {
                if let Some(idx) = self.store.index_of(key) {
                    let members: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
                    self.zset_rem_at(idx, &members, *cas, self.now);
                    if self
                        .store
                        .entry_at(idx)
                        .zset()
                        .is_some_and(|z| z.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Collector;
    use crate::zset::ZsetRef;

    #[test]
    fn adds_and_removals_replay_exactly_across_the_conversion() {
        let mut a = Shard::new(0);
        let fx = Collector::new();
        a.set_effect_sink(Box::new(fx.clone()));
        a.zset_add(b"z", &[(b"m1", 1.0), (b"m2", 2.0)], 0);
        assert!(matches!(
            a.lookup(b"z", 0).unwrap().zset(),
            Some(ZsetRef::Packed(_))
        ));
        let long = vec![b'x'; 100];
        a.zset_add(b"z", &[(&long, 3.0), (b"m1", 5.0)], 0);
        assert!(matches!(
            a.lookup(b"z", 0).unwrap().zset(),
            Some(ZsetRef::Big(_))
        ));
        assert_eq!(a.zset_rem(b"z", &[b"m2", b"nope", b"m2"], 0), 1);
        let mut b = Shard::new(1);
        for e in fx.take() {
            b.apply(&e);
        }
        assert_eq!(a.lookup(b"z", 0), b.lookup(b"z", 0));
        assert_eq!(a.zset_rem(b"z", &[b"m1", &long], 0), 2);
        assert!(a.lookup(b"z", 0).is_none(), "the last member takes the key");
        let effects = fx.take();
        assert!(matches!(effects[..], [Effect::Del { .. }]), "{effects:?}");
        b.apply(&effects[0]);
        assert!(b.is_empty());
        assert_eq!(a.used_memory(), b.used_memory());
    }

    #[test]
    fn memory_counts_the_large_form() {
        let mut s = Shard::new(0);
        let before = s.used_memory();
        for i in 0..1000u32 {
            let m = format!("member:{i}");
            s.zset_add(b"z", &[(m.as_bytes(), f64::from(i))], 0);
        }
        let grown = s.used_memory() - before;
        assert!(grown > 1000 * 20, "{grown}");
        let all: Vec<String> = (0..1000u32).map(|i| format!("member:{i}")).collect();
        let members: Vec<&[u8]> = all.iter().map(|m| m.as_bytes()).collect();
        s.zset_rem(b"z", &members, 0);
        assert!(s.is_empty());
        assert_eq!(s.store().entry_bytes(), 0);
    }
}
