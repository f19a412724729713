//! The table form of a large hash (Redis's `hashtable` encoding): O(1) per field.
//!
//! Pairs live in a dense vector, each pair one heap block (`flen LEB | field | value`),
//! and an [`IndexTable`] (the store's own 1.5x-growing index, 5.7 to 8.3 bytes a slot)
//! maps a field's hash to its position. Deleting swaps the last pair into the hole, so
//! the vector stays dense: HRANDFIELD picks a position in O(1), and HSCAN walks positions
//! from the end down, which returns every pair present for the whole scan at least once
//! (a swap only ever moves a pair the walk has already passed into a position it has also
//! passed, or one it has not yet reached).
//!
//! ```text
//!   IndexTable (u32)        pairs: Vec<Box<[u8]>>
//!   ┌──────────────┐        ┌───┐
//!   │ h(f) ─► 1    │ ─────► │ 0 │──► [flen|field|value]
//!   └──────────────┘        │ 1 │──► [flen|field|value]
//!                           └───┘
//! ```

use ahash::RandomState;

use super::packed;
use crate::entry::alloc_class;
use crate::table::IndexTable;

#[derive(Clone, Default)]
pub struct BigHash {
    index: IndexTable,
    pairs: Vec<Box<[u8]>>,
    hasher: RandomState,
    /// Sum of the pair blocks' allocator size classes.
    pair_bytes: usize,
}

/// The field and value of one pair block.
fn split(block: &[u8]) -> (&[u8], &[u8]) {
    let mut flen = 0usize;
    let mut at = 0;
    let mut shift = 0;
    loop {
        let b = block[at];
        at += 1;
        flen |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (&block[at..at + flen], &block[at + flen..])
}

fn block(field: &[u8], value: &[u8]) -> Box<[u8]> {
    let mut b = Vec::with_capacity(field.len() + value.len() + 5);
    packed::put_varint(&mut b, field.len());
    b.extend_from_slice(field);
    b.extend_from_slice(value);
    b.into_boxed_slice()
}

impl BigHash {
    pub fn new() -> BigHash {
        BigHash::default()
    }

    /// A table holding `pairs` in order (later duplicates replace earlier values).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> BigHash {
        let mut h = BigHash::new();
        for (f, v) in pairs {
            h.insert(f, v);
        }
        h
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn position(&self, field: &[u8]) -> Option<u32> {
        let pairs = &self.pairs;
        self.index.find(self.hasher.hash_one(field), |i| {
            split(&pairs[i as usize]).0 == field
        })
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.position(field)
            .map(|i| split(&self.pairs[i as usize]).1)
    }

    /// The pair at position `i` (below [`BigHash::len`]).
    pub fn at(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.pairs.get(i).map(|b| split(b))
    }

    /// Sets `field` to `value`; returns whether the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        let b = block(field, value);
        let size = alloc_class(b.len());
        if let Some(i) = self.position(field) {
            let old = std::mem::replace(&mut self.pairs[i as usize], b);
            self.pair_bytes = self.pair_bytes + size - alloc_class(old.len());
            return false;
        }
        assert!(self.pairs.len() < u32::MAX as usize, "hash is full");
        let i = self.pairs.len() as u32;
        self.pairs.push(b);
        self.pair_bytes += size;
        let (pairs, hasher) = (&self.pairs, &self.hasher);
        self.index.insert_unique(hasher.hash_one(field), i, |j| {
            hasher.hash_one(split(&pairs[j as usize]).0)
        });
        true
    }

    /// Removes `field`; returns whether it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let pairs = &self.pairs;
        let Some(i) = self.index.remove(self.hasher.hash_one(field), |i| {
            split(&pairs[i as usize]).0 == field
        }) else {
            return false;
        };
        let last = (self.pairs.len() - 1) as u32;
        if i != last {
            // The last pair moves into the hole: refile it under its new position.
            let h = self.hasher.hash_one(split(&self.pairs[last as usize]).0);
            self.index.remove(h, |j| j == last);
            let (pairs, hasher) = (&self.pairs, &self.hasher);
            self.index
                .insert_unique(h, i, |j| hasher.hash_one(split(&pairs[j as usize]).0));
        }
        let old = self.pairs.swap_remove(i as usize);
        self.pair_bytes -= alloc_class(old.len());
        if self.pairs.len() < self.pairs.capacity() / 4 {
            self.pairs.shrink_to(self.pairs.len() * 2);
        }
        true
    }

    /// The pairs in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.pairs.iter().map(|b| split(b))
    }

    /// Heap bytes held: pair blocks, the vector and the index at their capacities.
    pub fn heap_bytes(&self) -> usize {
        self.pair_bytes + self.pairs.capacity() * 16 + self.index.heap_bytes()
    }

    /// The packed serialization of every pair, in position order.
    pub fn to_packed(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (f, v) in self.iter() {
            packed::push(&mut out, f, v);
        }
        out
    }
}

impl PartialEq for BigHash {
    fn eq(&self, o: &BigHash) -> bool {
        self.pairs == o.pairs
    }
}

impl std::fmt::Debug for BigHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigHash").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn behaves_like_a_map(ops: Vec<(bool, u16, Vec<u8>)>) -> bool {
            let mut h = BigHash::new();
            let mut model = std::collections::HashMap::new();
            for (is_set, f, v) in ops {
                let f = (f % 64).to_string().into_bytes();
                if is_set {
                    if h.insert(&f, &v) != model.insert(f.clone(), v).is_none() { return false; }
                } else if h.remove(&f) != model.remove(&f).is_some() {
                    return false;
                }
            }
            h.len() == model.len()
                && model.iter().all(|(f, v)| h.get(f) == Some(&v[..]))
                && (0..h.len()).all(|i| h.at(i).is_some_and(|(f, v)| model.get(f).map(|x| &x[..]) == Some(v)))
                && packed::validate(&h.to_packed(), usize::MAX) == Ok(h.len())
        }
    }
}
