//! The write path of lists. Every change in place is reported by its outcome, never by
//! the whole list, so a long list is never copied to replicate one command: `ListPush`
//! (the elements pushed), `ListPop` (how many went from which end), `ListSet` (LSET),
//! `ListInsert` (LINSERT: the element and the index it landed at) and `ListRem` (LREM:
//! the indexes of the elements removed). Only whole-list writes (COPY, RENAME, RESTORE)
//! are a `ListPut`. Popping or removing the last element removes the key, reported as a
//! `Del`.
//!
//! A packed list is small (at most one chunk, [`crate::list::stays_packed`]), so an
//! insert or removal in it rewrites its bytes; in the chunked form only the chunks
//! touched are rebuilt ([`BigList::insert`], [`BigList::remove_indexes`]). The effect is
//! the same small one for both forms: what changed, not how it is stored.
//!
//! A list converts between the packed and the chunked form here, at the thresholds of
//! [`crate::list::stays_packed`].

use bytes::Bytes;

use super::super::effect::{DelCause, Effect};
use super::super::Shard;
use crate::entry::{Big, Kind};
use crate::list::{self, packed, BigList};
use crate::store::{Entry, NO_EXPIRY};

/// A new list entry holding the packed elements `items` (`count` of them), in the form
/// its size calls for.
fn list_entry(
    key: &[u8],
    items: &[u8],
    count: usize,
    expire_at: u64,
    flags: u32,
    cas: u64,
) -> Entry {
    if list::stays_packed(count, items.len(), false) {
        Entry::new_kind(Kind::ListPacked, key, items, expire_at, flags, cas)
    } else {
        let l = BigList::from_elems(packed::elems(items));
        Entry::new_big(key, Box::new(Big::List(l)), expire_at, flags, cas)
    }
}

/// `old` (a list) with `items` pushed one by one at the head or tail, as version `cas`.
fn push_on(mut old: Entry, left: bool, items: &[&[u8]], cas: u64) -> Entry {
    match old.kind() {
        Kind::ListPacked => {
            let cur = old.value();
            let mut add = Vec::with_capacity(items.iter().map(|e| packed::elem_len(e)).sum());
            if left {
                for e in items.iter().rev() {
                    packed::push(&mut add, e);
                }
            } else {
                for e in items {
                    packed::push(&mut add, e);
                }
            }
            let (first, second) = if left {
                (&add[..], cur)
            } else {
                (cur, &add[..])
            };
            let count = packed::len(cur) + items.len();
            let len = cur.len() + add.len();
            if list::stays_packed(count, len, false) {
                // The new entry's value is written once: the pushed bytes and the old.
                return old.with_kind_value(Kind::ListPacked, len, cas, |v| {
                    v[..first.len()].copy_from_slice(first);
                    v[first.len()..].copy_from_slice(second);
                });
            }
            let l = BigList::from_elems(packed::elems(first).chain(packed::elems(second)));
            old.with_big(Box::new(Big::List(l)), cas)
        }
        Kind::Boxed if old.list().is_some() => {
            if let Some(Big::List(l)) = old.big_mut() {
                for e in items {
                    if left {
                        l.push_front(e);
                    } else {
                        l.push_back(e);
                    }
                }
            }
            old.set_cas(cas);
            old
        }
        // Not a list (only a stream out of order could ask): it becomes one.
        _ => {
            let mut b = Vec::new();
            let order: Box<dyn Iterator<Item = &&[u8]>> = if left {
                Box::new(items.iter().rev())
            } else {
                Box::new(items.iter())
            };
            for e in order {
                packed::push(&mut b, e);
            }
            list_entry(old.key(), &b, items.len(), NO_EXPIRY, 0, cas)
        }
    }
}

/// `old` (a list) without `count` elements at the head or tail, as version `cas`; also
/// the elements popped, in the order they came off.
fn pop_on(mut old: Entry, left: bool, count: usize, cas: u64) -> (Entry, Vec<Vec<u8>>) {
    match old.kind() {
        Kind::ListPacked => {
            // The popped elements and the rest are byte ranges of the packed value, split
            // at one element boundary.
            let cur = old.value();
            let (gone, rest) = if left {
                cur.split_at(packed::offset(cur, count))
            } else {
                let n = packed::len(cur);
                let (rest, gone) = cur.split_at(packed::offset(cur, n - count.min(n)));
                (gone, rest)
            };
            let mut popped: Vec<Vec<u8>> = packed::elems(gone).map(|e| e.to_vec()).collect();
            if !left {
                popped.reverse();
            }
            let e = old.with_kind_value(Kind::ListPacked, rest.len(), cas, |v| {
                v.copy_from_slice(rest)
            });
            (e, popped)
        }
        Kind::Boxed => {
            let mut popped = Vec::new();
            let mut small = None;
            if let Some(Big::List(l)) = old.big_mut() {
                for _ in 0..count {
                    match if left { l.pop_front() } else { l.pop_back() } {
                        Some(e) => popped.push(e),
                        None => break,
                    }
                }
                if list::stays_packed(l.len(), l.packed_len(), true) {
                    small = Some(l.to_packed());
                }
            }
            let e = match small {
                Some(b) => {
                    old.with_kind_value(Kind::ListPacked, b.len(), cas, |v| v.copy_from_slice(&b))
                }
                None => {
                    old.set_cas(cas);
                    old
                }
            };
            (e, popped)
        }
        _ => (old, Vec::new()),
    }
}

/// `old` (a list) with the element at `index` replaced, as version `cas`.
fn set_on(mut old: Entry, index: usize, value: &[u8], cas: u64) -> Entry {
    let Some(l) = old.list() else {
        return old;
    };
    if let list::ListRef::Big(_) = l {
        if let Some(Big::List(big)) = old.big_mut() {
            big.set(index, value);
        }
        old.set_cas(cas);
        return old;
    }
    let mut b = Vec::new();
    for (i, e) in l.iter().enumerate() {
        packed::push(&mut b, if i == index { value } else { e });
    }
    let count = l.len();
    let (key, expire_at, flags) = (old.key().to_vec(), old.expire_at(), old.flags());
    let mut e = list_entry(&key, &b, count, expire_at, flags, cas);
    e.set_item_bits(old.item_bits());
    e.set_accessed(old.accessed_secs() as u64 * 1000);
    e
}

/// `old` (a list) with `value` inserted so that it stands at `index` (at most its
/// length), as version `cas`.
fn insert_on(old: Entry, index: usize, value: &[u8], cas: u64) -> Entry {
    match old.kind() {
        Kind::ListPacked => {
            let cur = old.value();
            let at = packed::offset(cur, index);
            let mut mid = Vec::with_capacity(packed::elem_len(value));
            packed::push(&mut mid, value);
            let count = packed::len(cur) + 1;
            let len = cur.len() + mid.len();
            if list::stays_packed(count, len, false) {
                return old.with_kind_value(Kind::ListPacked, len, cas, |v| {
                    v[..at].copy_from_slice(&cur[..at]);
                    v[at..at + mid.len()].copy_from_slice(&mid);
                    v[at + mid.len()..].copy_from_slice(&cur[at..]);
                });
            }
            let l = BigList::from_elems(
                packed::elems(&cur[..at])
                    .chain(std::iter::once(value))
                    .chain(packed::elems(&cur[at..])),
            );
            old.with_big(Box::new(Big::List(l)), cas)
        }
        Kind::Boxed => {
            let mut old = old;
            if let Some(Big::List(l)) = old.big_mut() {
                l.insert(index, value);
                old.set_cas(cas);
            }
            old
        }
        _ => old,
    }
}

/// `old` (a list) without the elements at `indexes` (ascending), as version `cas`.
fn remove_on(old: Entry, indexes: &[u64], cas: u64) -> Entry {
    match old.kind() {
        Kind::ListPacked => {
            let cur = old.value();
            let mut kept = Vec::with_capacity(cur.len());
            let mut next = indexes.iter().peekable();
            for (i, e) in packed::elems(cur).enumerate() {
                while next.next_if(|&&x| x < i as u64).is_some() {}
                if next.next_if(|&&x| x == i as u64).is_none() {
                    packed::push(&mut kept, e);
                }
            }
            old.with_kind_value(Kind::ListPacked, kept.len(), cas, |v| {
                v.copy_from_slice(&kept)
            })
        }
        Kind::Boxed => {
            let mut old = old;
            let mut small = None;
            if let Some(Big::List(l)) = old.big_mut() {
                l.remove_indexes(indexes);
                if list::stays_packed(l.len(), l.packed_len(), true) {
                    small = Some(l.to_packed());
                }
            }
            match small {
                Some(b) => {
                    old.with_kind_value(Kind::ListPacked, b.len(), cas, |v| v.copy_from_slice(&b))
                }
                None => {
                    old.set_cas(cas);
                    old
                }
            }
        }
        _ => old,
    }
}

impl Shard {
    /// Pushes `items` one by one at the head (`left`) or tail of the list at `key`,
    /// creating it if absent (the caller has checked that the key holds no other type);
    /// returns the new length. Reported as one `ListPush`.
    pub fn list_push(&mut self, key: &[u8], left: bool, items: &[&[u8]], now: u64) -> usize {
        self.expire_if_needed(key, now);
        let cas = self.bump_cas();
        let len = self.list_push_at(key, left, items, cas, now);
        self.emit(|_| Effect::ListPush {
            key: Bytes::copy_from_slice(key),
            left,
            items: Bytes::from(packed::pack(items.iter().copied())),
            cas,
        });
        self.enforce_budget();
        len
    }

    fn list_push_at(
        &mut self,
        key: &[u8],
        left: bool,
        items: &[&[u8]],
        cas: u64,
        now: u64,
    ) -> usize {
        let idx = match self.store.index_of(key) {
            None => {
                let mut b = Vec::new();
                let order: Box<dyn Iterator<Item = &&[u8]>> = if left {
                    Box::new(items.iter().rev())
                } else {
                    Box::new(items.iter())
                };
                for e in order {
                    packed::push(&mut b, e);
                }
                let mut e = list_entry(key, &b, items.len(), NO_EXPIRY, 0, cas);
                e.set_accessed(now);
                self.link(e)
            }
            Some(idx) => {
                self.relink(idx, |old| {
                    let mut e = push_on(old, left, items, cas);
                    e.set_accessed(now);
                    e
                });
                idx
            }
        };
        self.store.entry_at(idx).list().map_or(0, |l| l.len())
    }

    /// Pops up to `count` elements from the head (`left`) or tail of the list at `key`;
    /// returns them in the order they came off (empty when the key is absent). Popping
    /// the last one removes the key (a `Del`), else the change is one `ListPop`.
    pub fn list_pop(&mut self, key: &[u8], left: bool, count: usize, now: u64) -> Vec<Vec<u8>> {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return Vec::new();
        };
        if count == 0 || self.store.entry_at(idx).list().is_none() {
            return Vec::new();
        }
        let cas = self.bump_cas();
        let popped = self.list_pop_at(idx, left, count, cas, now);
        if self.list_emptied(idx) {
            self.remove_at(idx, DelCause::Deleted);
        } else {
            let n = popped.len() as u64;
            self.emit(|_| Effect::ListPop {
                key: Bytes::copy_from_slice(key),
                left,
                count: n,
                cas,
            });
        }
        popped
    }

    fn list_pop_at(
        &mut self,
        idx: u32,
        left: bool,
        count: usize,
        cas: u64,
        now: u64,
    ) -> Vec<Vec<u8>> {
        let mut popped = Vec::new();
        self.relink(idx, |old| {
            let (mut e, p) = pop_on(old, left, count, cas);
            e.set_accessed(now);
            popped = p;
            e
        });
        popped
    }

    fn list_emptied(&self, idx: u32) -> bool {
        self.store
            .entry_at(idx)
            .list()
            .is_some_and(|l| l.is_empty())
    }

    /// Replaces the element at `index` (which the caller checked is in range) of the list
    /// at `key` with `value`. Reported as a `ListSet`.
    pub fn list_set(&mut self, key: &[u8], index: usize, value: &[u8], now: u64) {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return;
        };
        let cas = self.bump_cas();
        self.relink(idx, |old| {
            let mut e = set_on(old, index, value, cas);
            e.set_accessed(now);
            e
        });
        self.emit(|_| Effect::ListSet {
            key: Bytes::copy_from_slice(key),
            index: index as u64,
            value: Bytes::copy_from_slice(value),
            cas,
        });
        self.enforce_budget();
    }

    /// Inserts `value` into the live list at `key` so that it stands at `index` (which
    /// the caller checked is at most the length: LINSERT). Reported as a `ListInsert`.
    pub fn list_insert(&mut self, key: &[u8], index: usize, value: &[u8], now: u64) {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return;
        };
        let cas = self.bump_cas();
        self.relink(idx, |old| {
            let mut e = insert_on(old, index, value, cas);
            e.set_accessed(now);
            e
        });
        self.emit(|_| Effect::ListInsert {
            key: Bytes::copy_from_slice(key),
            index: index as u64,
            value: Bytes::copy_from_slice(value),
            cas,
        });
        self.enforce_budget();
    }

    /// Removes the elements at `indexes` (strictly ascending, each in range, as the
    /// caller found them: LREM) from the live list at `key`; removing every one removes
    /// the key (a `Del`), else the change is one `ListRem`.
    pub fn list_remove(&mut self, key: &[u8], indexes: &[u64], now: u64) {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return;
        };
        if indexes.is_empty() {
            return;
        }
        let cas = self.bump_cas();
        self.relink(idx, |old| {
            let mut e = remove_on(old, indexes, cas);
            e.set_accessed(now);
            e
        });
        if self.list_emptied(idx) {
            self.remove_at(idx, DelCause::Deleted);
            return;
        }
        self.emit(|_| Effect::ListRem {
            key: Bytes::copy_from_slice(key),
            indexes: indexes.to_vec(),
            cas,
        });
        self.enforce_budget();
    }

    /// Stores a whole list given as packed elements (COPY, RENAME, RESTORE), replacing
    /// whatever the key held. Reported as a `ListPut`.
    pub fn put_list(&mut self, key: &[u8], items: &[u8], expire_at: u64, flags: u32) {
        let cas = self.bump_cas();
        let mut e = list_entry(key, items, packed::len(items), expire_at, flags, cas);
        e.set_accessed(self.now);
        let idx = self.link(e);
        self.emit_put(idx);
        self.enforce_budget();
    }

    /// Whether the list at `key` already is the version `cas` a push or pop produced:
    /// pushes and pops are not idempotent by themselves, so a replayed one that finds its
    /// own version in place is skipped.
    fn list_at_version(&self, key: &[u8], cas: u64) -> bool {
        self.store
            .index_of(key)
            .is_some_and(|idx| self.store.entry_at(idx).cas() == cas)
    }

    /// Replays a `ListPut`, `ListPush`, `ListPop`, `ListSet`, `ListInsert` or `ListRem` (see
    /// [`Shard::apply_quiet`]). Applying one twice is the same as applying it once.
    pub(super) fn apply_list(&mut self, effect: &Effect) {
        match effect {
            Effect::ListPut {
                key,
                items,
                expire_at,
                flags,
                cas,
                bits,
            } => {
                let mut e = list_entry(key, items, packed::len(items), *expire_at, *flags, *cas);
                e.set_item_bits(*bits);
                e.set_accessed(self.now);
                self.link(e);
                self.witness_cas(*cas);
            }
            Effect::ListPush {
                key,
                left,
                items,
                cas,
            } => {
                if self.list_at_version(key, *cas) {
                    return;
                }
                let items: Vec<&[u8]> = packed::elems(items).collect();
                self.list_push_at(key, *left, &items, *cas, self.now);
                self.witness_cas(*cas);
            }
            Effect::ListPop {
                key,
                left,
                count,
                cas,
            } => {
                if self.list_at_version(key, *cas) {
                    return;
                }
                if let Some(idx) = self.store.index_of(key) {
                    let count = usize::try_from(*count).unwrap_or(usize::MAX);
                    self.list_pop_at(idx, *left, count, *cas, self.now);
                    if self.list_emptied(idx) {
                        self.unlink(idx);
                    }
                    self.witness_cas(*cas);
                }
            }
            Effect::ListSet {
                key,
                index,
                value,
                cas,
            } => {
                if let Some(idx) = self.store.index_of(key) {
                    let index = usize::try_from(*index).unwrap_or(usize::MAX);
                    self.relink(idx, |old| set_on(old, index, value, *cas));
                    self.witness_cas(*cas);
                }
            }
            Effect::ListInsert {
                key,
                index,
                value,
                cas,
            } => {
                if self.list_at_version(key, *cas) {
                    return;
                }
                let Some(idx) = self.store.index_of(key) else {
                    return;
                };
                let Some(len) = self.store.entry_at(idx).list().map(|l| l.len()) else {
                    return;
                };
                // A stream out of order could name a place past the end: it is skipped
                // rather than guessed at.
                if let Some(index) = usize::try_from(*index).ok().filter(|&i| i <= len) {
                    self.relink(idx, |old| insert_on(old, index, value, *cas));
                    self.witness_cas(*cas);
                }
            }
            Effect::ListRem { key, indexes, cas } => {
                if self.list_at_version(key, *cas) {
                    return;
                }
                if let Some(idx) = self.store.index_of(key) {
                    if self.store.entry_at(idx).list().is_none() {
                        return;
                    }
                    self.relink(idx, |old| remove_on(old, indexes, *cas));
                    if self.list_emptied(idx) {
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

    fn elems(s: &mut Shard, key: &[u8]) -> Vec<Vec<u8>> {
        s.lookup(key, 0)
            .and_then(|e| e.list())
            .map(|l| l.iter().map(<[u8]>::to_vec).collect())
            .unwrap_or_default()
    }

    #[test]
    fn pushes_and_pops_replay_exactly_across_both_conversions() {
        let mut a = Shard::new(0);
        let fx = Collector::new();
        a.set_effect_sink(Box::new(fx.clone()));
        let mut b = Shard::new(1);
        let long = vec![b'x'; 3000];
        assert_eq!(a.list_push(b"l", false, &[b"a", b"b"], 0), 2);
        assert_eq!(a.list_push(b"l", true, &[b"c", b"d"], 0), 4);
        assert_eq!(elems(&mut a, b"l"), [&b"d"[..], b"c", b"a", b"b"]);
        for _ in 0..3 {
            a.list_push(b"l", false, &[&long], 0);
        }
        assert!(matches!(
            a.lookup(b"l", 0).and_then(|e| e.list()),
            Some(list::ListRef::Big(_))
        ));
        a.list_set(b"l", 1, b"C", 0);
        assert_eq!(a.list_pop(b"l", false, 3, 0).len(), 3);
        assert!(
            matches!(
                a.lookup(b"l", 0).and_then(|e| e.list()),
                Some(list::ListRef::Packed(_))
            ),
            "back to packed at half the limit"
        );
        assert_eq!(a.list_pop(b"l", true, 1, 0), [b"d".to_vec()]);
        for e in fx.take() {
            b.apply(&e);
        }
        assert_eq!(a.lookup(b"l", 0), b.lookup(b"l", 0));
        assert_eq!(elems(&mut b, b"l"), [&b"C"[..], b"a", b"b"]);
        assert_eq!(a.list_pop(b"l", true, 10, 0).len(), 3);
        assert!(a.lookup(b"l", 0).is_none(), "the last pop takes the key");
        let effects = fx.take();
        assert!(matches!(effects[..], [Effect::Del { .. }]), "{effects:?}");
        b.apply(&effects[0]);
        assert!(b.is_empty());
        assert_eq!(a.used_memory(), b.used_memory());
    }

    fn is_big(s: &mut Shard, key: &[u8]) -> bool {
        matches!(
            s.lookup(key, 0).and_then(|e| e.list()),
            Some(list::ListRef::Big(_))
        )
    }

    /// LINSERT and LREM are reported by their outcomes (an index and an element, a list
    /// of indexes), on both forms and across both conversions, and replay exactly.
    #[test]
    fn inserts_and_removals_replay_as_small_outcomes_in_both_forms() {
        let mut a = Shard::new(0);
        let fx = Collector::new();
        a.set_effect_sink(Box::new(fx.clone()));
        let mut b = Shard::new(1);
        let mut model: Vec<Vec<u8>> = Vec::new();
        let check = |a: &mut Shard, b: &mut Shard, model: &[Vec<u8>], fx: &Collector| {
            for e in fx.take() {
                match &e {
                    Effect::ListInsert { .. }
                    | Effect::ListRem { .. }
                    | Effect::ListPush { .. }
                    | Effect::ListPop { .. }
                    | Effect::ListSet { .. } => {}
                    other => panic!("no whole-list effect expected: {other:?}"),
                }
                b.apply(&e);
                b.apply(&e); // twice is once
            }
            assert_eq!(elems(a, b"l"), model);
            assert_eq!(a.lookup(b"l", 0), b.lookup(b"l", 0));
            assert_eq!(a.used_memory(), b.used_memory());
        };
        // Packed: insert at the head, the middle and the tail.
        a.list_push(b"l", false, &[b"a", b"b"], 0);
        model.extend([b"a".to_vec(), b"b".to_vec()]);
        for (i, v) in [(0, &b"h"[..]), (2, b"m"), (4, b"t")] {
            a.list_insert(b"l", i, v, 0);
            model.insert(i, v.to_vec());
        }
        assert!(!is_big(&mut a, b"l"));
        check(&mut a, &mut b, &model, &fx);
        // An insert that outgrows the packed form converts it.
        let long = vec![b'x'; 600];
        a.list_insert(b"l", 1, &long, 0);
        model.insert(1, long.clone());
        a.list_insert(b"l", 3, &long, 0);
        model.insert(3, long.clone());
        assert!(is_big(&mut a, b"l"));
        check(&mut a, &mut b, &model, &fx);
        // Chunked: many elements, inserts in the middle, LSET, removals spread over
        // several chunks, a trim.
        for i in 0..300u32 {
            let v = format!("v{}", i % 3).into_bytes();
            a.list_push(b"l", false, &[&v], 0);
            model.push(v);
        }
        a.list_insert(b"l", 150, b"mid", 0);
        model.insert(150, b"mid".to_vec());
        a.list_set(b"l", 200, b"set", 0);
        model[200] = b"set".to_vec();
        let at: Vec<u64> = (0..model.len())
            .filter(|&i| model[i] == b"v1")
            .map(|i| i as u64)
            .collect();
        a.list_remove(b"l", &at, 0);
        for &i in at.iter().rev() {
            model.remove(i as usize);
        }
        assert!(is_big(&mut a, b"l"));
        check(&mut a, &mut b, &model, &fx);
        // Removals that shrink it back to the packed form.
        let at: Vec<u64> = (0..model.len() as u64).filter(|i| i % 50 != 7).collect();
        a.list_remove(b"l", &at, 0);
        model = model
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 50 == 7)
            .map(|(_, v)| v)
            .collect();
        assert!(!is_big(&mut a, b"l"));
        check(&mut a, &mut b, &model, &fx);
        // Packed again: remove from the middle, then everything (a `Del`).
        a.list_remove(b"l", &[1], 0);
        model.remove(1);
        check(&mut a, &mut b, &model, &fx);
        let all: Vec<u64> = (0..model.len() as u64).collect();
        a.list_remove(b"l", &all, 0);
        assert!(a.lookup(b"l", 0).is_none());
        let effects = fx.take();
        assert!(matches!(effects[..], [Effect::Del { .. }]), "{effects:?}");
        b.apply(&effects[0]);
        assert!(b.is_empty());
    }

    #[test]
    fn memory_counts_the_chunks() {
        let mut s = Shard::new(0);
        let before = s.used_memory();
        for i in 0..10_000u32 {
            s.list_push(b"l", false, &[format!("value:{i}").as_bytes()], 0);
        }
        let grown = s.used_memory() - before;
        assert!(grown > 10_000 * 10 && grown < 10_000 * 16, "{grown}");
        s.list_pop(b"l", true, 10_000, 0);
        assert!(s.is_empty());
        assert_eq!(s.store().entry_bytes(), 0);
    }
}
