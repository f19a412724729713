//! The table form of a large set (Redis's `hashtable` encoding): O(1) per member.
//!
//! Members live in a dense vector, each member one heap block, and an [`IndexTable`]
//! (the store's own index, 5.7 to 8.3 bytes a slot) maps a member's hash to its
//! position. Removing swaps the last member into the hole, so the vector stays dense:
//! SRANDMEMBER and SPOP pick a position in O(1), and SSCAN walks positions from the end
//! down, which returns every member present for the whole scan at least once, for the
//! reason `hash::big` gives for HSCAN.
//!
//! ```text
//!   IndexTable (u32)        members: Vec<Box<[u8]>>
//!   ┌──────────────┐        ┌───┐
//!   │ h(m) ─► 1    │ ─────► │ 0 │──► [member]
//!   └──────────────┘        │ 1 │──► [member]
//!                           └───┘
//! ```

use ahash::RandomState;

use super::packed;
use crate::entry::alloc_class;
use crate::table::IndexTable;

#[derive(Clone, Default)]
pub struct BigSet {
    index: IndexTable,
    members: Vec<Box<[u8]>>,
    hasher: RandomState,
    /// Sum of the member blocks' allocator size classes.
    member_bytes: usize,
}

impl BigSet {
    pub fn new() -> BigSet {
        BigSet::default()
    }

    /// A table holding `members` in order (duplicates once).
    pub fn from_members<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> BigSet {
        let mut s = BigSet::new();
        for m in members {
            s.insert(m);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        let members = &self.members;
        self.index
            .find(self.hasher.hash_one(m), |i| &*members[i as usize] == m)
            .is_some()
    }

    /// The member at position `i`.
    pub fn at(&self, i: usize) -> Option<&[u8]> {
        self.members.get(i).map(|b| &b[..])
    }

    /// Adds `m`; returns whether it was new.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        if self.contains(m) {
            return false;
        }
        assert!(self.members.len() < u32::MAX as usize, "set is full");
        let i = self.members.len() as u32;
        self.members.push(m.into());
        self.member_bytes += alloc_class(m.len().max(1));
        let (members, hasher) = (&self.members, &self.hasher);
        self.index.insert_unique(hasher.hash_one(m), i, |j| {
            hasher.hash_one(&*members[j as usize])
        });
        true
    }

    /// Removes `m`; returns whether it was present.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        let members = &self.members;
        let Some(i) = self
            .index
            .remove(self.hasher.hash_one(m), |i| &*members[i as usize] == m)
        else {
            return false;
        };
        let last = (self.members.len() - 1) as u32;
        if i != last {
            // The last member moves into the hole: refile it under its new position.
            let h = self.hasher.hash_one(&*self.members[last as usize]);
            self.index.remove(h, |j| j == last);
            let (members, hasher) = (&self.members, &self.hasher);
            self.index
                .insert_unique(h, i, |j| hasher.hash_one(&*members[j as usize]));
        }
        let old = self.members.swap_remove(i as usize);
        self.member_bytes -= alloc_class(old.len().max(1));
        if self.members.len() < self.members.capacity() / 4 {
            self.members.shrink_to(self.members.len() * 2);
        }
        true
    }

    /// The members in position order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.members.iter().map(|b| &b[..])
    }

    /// Heap bytes held: member blocks, the vector and the index at their capacities.
    pub fn heap_bytes(&self) -> usize {
        self.member_bytes + self.members.capacity() * 16 + self.index.heap_bytes()
    }

    /// The packed serialization of every member, in position order.
    pub fn to_packed(&self) -> Vec<u8> {
        packed::from_members(self.iter())
    }
}

impl PartialEq for BigSet {
    fn eq(&self, o: &BigSet) -> bool {
        self.members == o.members
    }
}

impl std::fmt::Debug for BigSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigSet").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn behaves_like_a_set(ops: Vec<(bool, u16)>) -> bool {
            let mut s = BigSet::new();
            let mut model = std::collections::HashSet::new();
            for (add, m) in ops {
                let m = (m % 64).to_string().into_bytes();
                let ok = if add { s.insert(&m) == model.insert(m) } else { s.remove(&m) == model.remove(&m) };
                if !ok { return false; }
            }
            s.len() == model.len()
                && model.iter().all(|m| s.contains(m))
                && (0..s.len()).all(|i| s.at(i).is_some_and(|m| model.contains(m)))
                && packed::validate(&s.to_packed(), usize::MAX) == Ok(s.len())
        }
    }
}
