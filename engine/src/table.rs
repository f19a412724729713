//! The store's index: an open-addressing hash table of `u32` slab indices that grows by
//! about 1.5x instead of doubling.
//!
//! A table that doubles (hashbrown, Redis's dict) sits between 44% and 88% full, so at an
//! unlucky key count it spends twice the bytes it needs: at one million keys hashbrown holds
//! 2^21 buckets of 5 bytes, 10.5 bytes per key. Here the table has any whole number of
//! 16-slot groups; it grows when 7/8 of the slots are used and resizes to 60% full, so it is
//! always between 60% and 87.5% full: 5.7 to 8.3 bytes per key.
//!
//! Layout (like a SwissTable, simplified): groups of 16 slots, each group its 16 tag bytes
//! (`EMPTY`, `DELETED`, or a tag of 254 values from the low byte of the key's hash) followed
//! by its 16 `u32` slab indices, 80 bytes in all.
//! A key's probe starts at group `fastrange(hash, groups)` (the hash's high bits) and walks
//! whole groups forward, comparing 16 tags at once; a lookup stops at the first group that
//! has an `EMPTY` slot. Deletion leaves `DELETED` unless the slot's group still has an
//! `EMPTY` (then no probe ever passed through that group, and `EMPTY` is safe). Resizing
//! drops the tombstones.
//!
//! The table never sees keys: callers pass the hash and an equality test on slab indices,
//! and a function that rehashes a slab index when the table grows.

/// Slots per group: one SSE2 compare covers a group's tags.
const GROUP: usize = 16;
const EMPTY: u8 = 0;
const DELETED: u8 = 1;

/// Load (counting tombstones) that triggers a resize, as a fraction of the slots.
const MAX_LOAD: (usize, usize) = (7, 8);
/// Load right after growing.
const GROW_TO: (usize, usize) = (3, 5);

/// A full slot's tag: the hash's low byte, with the two values taken by `EMPTY` and
/// `DELETED` folded onto two others. 254 tags where 7 bits gave 128 halve the lookups
/// that match a tag and then read a slab slot and an entry (two cache misses) for a key
/// that is not there: a cache answering mostly misses at a full table met one in about
/// ten before.
#[inline]
fn tag_of(hash: u64) -> u8 {
    let t = hash as u8;
    if t <= DELETED {
        t + 2
    } else {
        t
    }
}

/// Whether a tag byte is a full slot's.
#[inline]
fn is_full(tag: u8) -> bool {
    tag > DELETED
}

/// Bit `i` set where `tags[i] == byte`, for one group.
#[inline]
fn match_byte(tags: &[u8; GROUP], byte: u8) -> u16 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads exactly the 16 bytes
        // of `tags` and allows any alignment.
        unsafe {
            let group = _mm_loadu_si128(tags.as_ptr().cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(group, _mm_set1_epi8(byte as i8))) as u16
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut m = 0u16;
        for (i, &t) in tags.iter().enumerate() {
            m |= u16::from(t == byte) << i;
        }
        m
    }
}

/// Iterates the set bits of a mask, lowest first.
fn bits(mut m: u16) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (m != 0).then(|| {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            i
        })
    })
}

/// One group: its 16 tags and the 16 slab indices they describe, side by side, so that a
/// probe that matches a tag finds the index in the same or the next cache line.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Group {
    tags: [u8; GROUP],
    slots: [u32; GROUP],
}

const GROUP_BYTES: usize = std::mem::size_of::<Group>();

const EMPTY_GROUP: Group = Group {
    tags: [EMPTY; GROUP],
    slots: [0; GROUP],
};

#[derive(Default, Clone)]
pub(crate) struct IndexTable {
    groups: Vec<Group>,
    len: usize,
    deleted: usize,
}

impl IndexTable {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held: one tag byte and one `u32` per slot.
    pub fn heap_bytes(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Group>()
    }

    fn first_group(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.groups.len() as u128) >> 64) as usize
    }

    fn next_group(&self, g: usize) -> usize {
        if g + 1 == self.groups.len() {
            0
        } else {
            g + 1
        }
    }

    /// The slot holding the index for which `eq` holds, among those filed under `hash`.
    fn find_slot(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, usize)> {
        if self.groups.is_empty() {
            return None;
        }
        let tag = tag_of(hash);
        let mut g = self.first_group(hash);
        for _ in 0..self.groups.len() {
            let group = &self.groups[g];
            for i in bits(match_byte(&group.tags, tag)) {
                if eq(group.slots[i]) {
                    return Some((g, i));
                }
            }
            if match_byte(&group.tags, EMPTY) != 0 {
                return None;
            }
            g = self.next_group(g);
        }
        None
    }

    /// Asks the cache for the group a lookup of `hash` reads first (its tags, and the
    /// line of its slab indices), ahead of the lookup; changes nothing.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if self.groups.is_empty() {
            return;
        }
        let group: *const Group = &self.groups[self.first_group(hash)];
        crate::prefetch::line(group.cast());
        crate::prefetch::line(group.cast::<u8>().wrapping_add(GROUP_BYTES - 1));
    }

    pub fn find(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, eq)
            .map(|(g, i)| self.groups[g].slots[i])
    }

    /// Files `idx` under `hash`; the caller knows it is not in the table yet. `rehash`
    /// gives the hash of any index already in the table (used when the table grows).
    pub fn insert_unique(&mut self, hash: u64, idx: u32, rehash: impl Fn(u32) -> u64) {
        let slots = self.groups.len() * GROUP;
        if let Some(groups) = self.grow_to(slots) {
            self.resize(groups, &rehash);
        }
        self.place(hash, idx);
        self.len += 1;
    }

    /// How many groups the table grows to before it files one more index, if it must.
    fn grow_to(&self, slots: usize) -> Option<usize> {
        ((self.len + self.deleted + 1) * MAX_LOAD.1 > slots * MAX_LOAD.0).then(|| {
            let want = (self.len + 1) * GROW_TO.1 / GROW_TO.0;
            want.div_ceil(GROUP).max(1)
        })
    }

    /// Grows the table now if filing one more index would: `all` gives every index it
    /// holds with its hash, in whatever order is cheapest for the caller to read (a store
    /// walks its slab in order: its entries' keys then stream through the cache, where
    /// [`IndexTable::insert_unique`]'s own growth reads them in the table's random order,
    /// a cache miss or two per entry). Returns whether it grew.
    pub fn grow_for_one_more<I: Iterator<Item = (u64, u32)>>(
        &mut self,
        all: impl FnOnce() -> I,
    ) -> bool {
        let Some(groups) = self.grow_to(self.groups.len() * GROUP) else {
            return false;
        };
        let mut placed = 0;
        self.regroup(groups, |t, _| {
            for (hash, idx) in all() {
                t.place(hash, idx);
                placed += 1;
            }
        });
        debug_assert_eq!(
            placed, self.len,
            "the caller gave every index the table held"
        );
        true
    }

    /// Puts `idx` in the first free slot of its probe sequence (there is one: the load
    /// is kept below 7/8).
    fn place(&mut self, hash: u64, idx: u32) {
        let mut g = self.first_group(hash);
        loop {
            let group = &mut self.groups[g];
            let free = match_byte(&group.tags, EMPTY) | match_byte(&group.tags, DELETED);
            if let Some(i) = bits(free).next() {
                if group.tags[i] == DELETED {
                    self.deleted -= 1;
                }
                group.tags[i] = tag_of(hash);
                group.slots[i] = idx;
                return;
            }
            g = self.next_group(g);
        }
    }

    fn resize(&mut self, groups: usize, rehash: &impl Fn(u32) -> u64) {
        self.regroup(groups, |t, old| {
            for group in old {
                for (&tag, &idx) in group.tags.iter().zip(&group.slots) {
                    if is_full(tag) {
                        t.place(rehash(idx), idx);
                    }
                }
            }
        });
    }

    /// Replaces the groups with `groups` empty ones, lets `fill` file the indexes in them
    /// (from the old groups it is given, or from the caller's own list), then frees the
    /// old groups.
    fn regroup(&mut self, groups: usize, fill: impl FnOnce(&mut IndexTable, &[Group])) {
        let mut fresh = Vec::with_capacity(groups);
        fresh.resize(groups, EMPTY_GROUP);
        let old = std::mem::replace(&mut self.groups, fresh);
        self.deleted = 0;
        fill(self, &old);
        let bytes = old.capacity() * std::mem::size_of::<Group>();
        drop(old);
        crate::trim::freed(bytes);
    }

    /// Removes and returns the index for which `eq` holds, filed under `hash`.
    pub fn remove(&mut self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let (g, i) = self.find_slot(hash, eq)?;
        let group = &mut self.groups[g];
        group.tags[i] = if match_byte(&group.tags, EMPTY) != 0 {
            EMPTY
        } else {
            self.deleted += 1;
            DELETED
        };
        self.len -= 1;
        Some(group.slots[i])
    }

    pub fn clear(&mut self) {
        *self = IndexTable::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;
    use std::collections::HashSet;

    /// A deliberately poor hash so that probes collide and wrap.
    fn h(x: u32) -> u64 {
        u64::from(x % 97).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(x) << 3
    }

    /// Growing from the caller's list (a store's slab order) keeps every index findable,
    /// drops the tombstones, and happens exactly when `insert_unique` would have grown.
    #[test]
    fn growing_from_the_callers_list_keeps_every_index() {
        let mut t = IndexTable::default();
        let mut live: Vec<u32> = Vec::new();
        let mut grew = 0;
        for x in 0..5_000u32 {
            let before = t.groups.len();
            let all = live.clone();
            if t.grow_for_one_more(|| all.into_iter().map(|i| (h(i), i))) {
                grew += 1;
                assert!(t.groups.len() > before);
                assert_eq!(t.deleted, 0);
            }
            t.insert_unique(h(x), x, |_| panic!("grown already: no rehash here"));
            live.push(x);
            if x % 3 == 0 {
                // Some removals leave tombstones behind.
                let gone = live.remove(live.len() / 2);
                assert_eq!(t.remove(h(gone), |i| i == gone), Some(gone));
            }
        }
        assert!(grew > 5, "the table grew {grew} times");
        assert_eq!(t.len(), live.len());
        for &i in &live {
            assert_eq!(t.find(h(i), |j| j == i), Some(i));
        }
    }

    /// splitmix64: a good hash, for the load figures.
    fn mix(x: u32) -> u64 {
        let mut z = u64::from(x).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Every hash gets a full slot's tag, and the tags take 254 values, nearly even.
    #[test]
    fn tags_are_full_and_take_254_values() {
        let mut seen = [0u32; 256];
        for low in 0..=255u64 {
            let t = tag_of(0xABCD_0000 | low);
            assert!(is_full(t), "tag {t} of low byte {low}");
            seen[t as usize] += 1;
        }
        assert_eq!(seen.iter().filter(|&&n| n > 0).count(), 254);
        assert!(seen.iter().all(|&n| n <= 2));
    }

    /// A prefetch changes nothing: on an empty table (no group to name) and on a full
    /// one, before lookups that find and miss as they would without it.
    #[test]
    fn prefetch_changes_nothing() {
        let mut t = IndexTable::default();
        t.prefetch(mix(1));
        assert_eq!(t.find(mix(1), |_| true), None);
        for i in 0..1_000u32 {
            t.insert_unique(mix(i), i, mix);
        }
        for i in 0..2_000u32 {
            t.prefetch(mix(i));
            assert_eq!(t.find(mix(i), |x| x == i), (i < 1_000).then_some(i));
        }
    }

    #[test]
    fn load_stays_between_sixty_and_eighty_eight_percent() {
        let mut t = IndexTable::default();
        for i in 0..300_000u32 {
            t.insert_unique(mix(i), i, mix);
            if i > 1_000 {
                let load = t.len() as f64 / (t.groups.len() * GROUP) as f64;
                assert!((0.59..=0.876).contains(&load), "load {load} at {i}");
            }
        }
        for i in (0..300_000u32).step_by(7) {
            assert_eq!(t.find(mix(i), |x| x == i), Some(i));
        }
        assert_eq!(t.find(mix(5_000_000), |x| x == 5_000_000), None);
        let per_key = t.heap_bytes() as f64 / t.len() as f64;
        assert!(per_key < 8.4, "{per_key} bytes per key");
    }

    #[test]
    fn a_large_table_that_grows_hands_its_old_array_to_the_release_hook() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        crate::trim::set_release_hook(|| {
            CALLS.fetch_add(1, Ordering::Relaxed);
        });
        let mut t = IndexTable::default();
        let mut freed_large = 0;
        for i in 0..200_000u32 {
            let groups = t.groups.capacity();
            t.insert_unique(mix(i), i, mix);
            if t.groups.capacity() != groups
                && groups * std::mem::size_of::<Group>() >= crate::trim::MIN_BYTES
            {
                freed_large += 1;
            }
        }
        assert!(freed_large >= 1);
        // Other tests may grow large tables meanwhile: at least ours were reported.
        assert!(CALLS.load(Ordering::Relaxed) >= freed_large);
    }

    quickcheck! {
        fn behaves_like_a_set(ops: Vec<(bool, u16)>) -> bool {
            let mut t = IndexTable::default();
            let mut model = HashSet::new();
            for (insert, k) in ops {
                let k = u32::from(k % 300);
                if insert {
                    if model.insert(k) {
                        t.insert_unique(h(k), k, h);
                    }
                } else if t.remove(h(k), |x| x == k).is_some() != model.remove(&k) {
                    return false;
                }
                if t.len() != model.len() {
                    return false;
                }
            }
            (0..300).all(|k| (t.find(h(k), |x| x == k) == Some(k)) == model.contains(&k))
        }
    }

    #[test]
    fn churn_with_tombstones_does_not_grow_without_bound() {
        let mut t = IndexTable::default();
        for round in 0..200u32 {
            for i in 0..1_000u32 {
                t.insert_unique(h(round * 1_000 + i), round * 1_000 + i, h);
            }
            for i in 0..1_000u32 {
                let k = round * 1_000 + i;
                assert_eq!(t.remove(h(k), |x| x == k), Some(k));
            }
        }
        assert_eq!(t.len(), 0);
        assert!(
            t.groups.len() * GROUP <= 4_096,
            "{} slots",
            t.groups.len() * GROUP
        );
    }
}
