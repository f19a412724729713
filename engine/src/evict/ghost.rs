//! S3-FIFO's ghost queue: fingerprints of keys recently evicted (from the small queue,
//! and in adaptive mode from the main queue too).
//!
//! A global FIFO of fingerprints plus a hash set would cost ~15 bytes per ghost entry.
//! Instead this is a table of 64-byte buckets of sixteen 32-bit fingerprints, each bucket
//! its own little FIFO (slot 0 newest): inserting shifts the bucket right and drops the
//! oldest. A bucket sees one insertion per `buckets` global insertions on average, so a
//! fingerprint survives about `capacity` insertions, like the global FIFO, with some
//! spread (16 slots: ~25% standard deviation). Cost: 4 bytes per entry, one cache line
//! per lookup, no pointers. Fingerprint 0 marks an empty slot; the lowest bit of a
//! stored fingerprint records which queue evicted the key ([`Kind`]), and per-kind counts
//! are kept exact (drops, hits and rebuilds all adjust them).
//!
//! The bucket is chosen from the fingerprint's high bits (fastrange), so the table can
//! be rebuilt at another size from the fingerprints alone.

const WAYS: usize = 16;

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([u32; WAYS]);

/// Which queue evicted a ghost entry; stored in the fingerprint's lowest bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Small = 0,
    Main = 1,
}

pub(crate) struct Ghost {
    buckets: Vec<Bucket>,
    /// Live entries per [`Kind`].
    count: [usize; 2],
}

/// The 32-bit fingerprint the ghost stores for a 64-bit key hash: lowest bit clear (it
/// carries the [`Kind`]), never 0.
#[inline]
pub(crate) fn tag(hash: u64) -> u32 {
    let t = (hash >> 32) as u32 & !1;
    if t == 0 {
        2
    } else {
        t
    }
}

fn kind_of(slot: u32) -> Kind {
    if slot & 1 == 0 {
        Kind::Small
    } else {
        Kind::Main
    }
}

impl Ghost {
    /// A ghost holding about `entries` fingerprints (at least one bucket).
    pub fn new(entries: usize) -> Ghost {
        let n = Self::buckets_for(entries);
        Ghost {
            buckets: vec![Bucket::default(); n],
            count: [0; 2],
        }
    }

    fn buckets_for(entries: usize) -> usize {
        entries.div_ceil(WAYS).max(1)
    }

    /// Number of fingerprints the table holds when full.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    #[inline]
    fn bucket(&self, tag: u32) -> usize {
        ((u64::from(tag) * self.buckets.len() as u64) >> 32) as usize
    }

    /// Entries of `kind` held now.
    pub fn count(&self, kind: Kind) -> usize {
        self.count[kind as usize]
    }

    /// Records `tag`, evicted from `kind`, as the newest entry of its bucket.
    pub fn insert(&mut self, tag: u32, kind: Kind) {
        debug_assert!(tag > 1 && tag & 1 == 0);
        let b = self.bucket(tag);
        let slots = &mut self.buckets[b].0;
        // Shift up to the first hole (holes come from `take`), else drop the oldest.
        let end = match slots.iter().position(|&t| t == 0) {
            Some(hole) => hole,
            None => {
                self.count[kind_of(slots[WAYS - 1]) as usize] -= 1;
                WAYS - 1
            }
        };
        slots.copy_within(0..end, 1);
        slots[0] = tag | kind as u32;
        self.count[kind as usize] += 1;
    }

    /// Which queue evicted `tag`, if it is in the ghost; a hit removes it.
    pub fn take(&mut self, tag: u32) -> Option<Kind> {
        let b = self.bucket(tag);
        let slots = &mut self.buckets[b].0;
        let i = slots.iter().position(|&t| t & !1 == tag)?;
        let kind = kind_of(slots[i]);
        slots[i] = 0;
        self.count[kind as usize] -= 1;
        Some(kind)
    }

    #[cfg(test)]
    pub fn contains(&self, tag: u32) -> bool {
        self.buckets[self.bucket(tag)]
            .0
            .iter()
            .any(|&t| t & !1 == tag)
    }

    /// Rebuilds for about `entries` fingerprints if the current size is more than 25%
    /// off. Keeps as many entries as fit, newest preferred.
    pub fn fit(&mut self, entries: usize) {
        let want = Self::buckets_for(entries);
        let have = self.buckets.len();
        if want * 4 >= have * 3 && want * 4 <= have * 5 {
            return;
        }
        let old = std::mem::replace(&mut self.buckets, vec![Bucket::default(); want]);
        self.count = [0; 2];
        // Oldest slots first, so the newest end up at the front of the new buckets.
        for way in (0..WAYS).rev() {
            for b in &old {
                let t = b.0[way];
                if t != 0 {
                    self.insert(t & !1, kind_of(t));
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.count = [0; 2];
    }

    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn take_removes() {
        let mut g = Ghost::new(100);
        g.insert(tag(mix(1)), Kind::Small);
        assert!(g.contains(tag(mix(1))));
        assert_eq!(g.take(tag(mix(2))), None);
        assert_eq!(g.count(Kind::Small), 1);
        assert_eq!(g.take(tag(mix(1))), Some(Kind::Small));
        assert_eq!(g.take(tag(mix(1))), None);
        assert_eq!(g.count(Kind::Small), 0);
        g.insert(tag(mix(3)), Kind::Main);
        assert_eq!((g.count(Kind::Small), g.count(Kind::Main)), (0, 1));
        assert_eq!(g.take(tag(mix(3))), Some(Kind::Main));
        assert_eq!(g.count(Kind::Main), 0);
    }

    #[test]
    fn bucket_is_fifo() {
        let mut g = Ghost::new(WAYS); // a single bucket
        let t = |i: u32| 2 * i; // valid tags: even, non-zero
        for i in 1..=WAYS as u32 + 3 {
            g.insert(t(i), if i % 2 == 0 { Kind::Main } else { Kind::Small });
        }
        // The three oldest fell out, the rest are there.
        for i in 1..=3 {
            assert!(!g.contains(t(i)), "{i}");
        }
        for i in 4..=WAYS as u32 + 3 {
            assert!(g.contains(t(i)), "{i}");
        }
        // Even numbers were main; the drops (1, 2, 3) updated the counts.
        assert_eq!(g.count(Kind::Small) + g.count(Kind::Main), WAYS);
        assert_eq!(g.count(Kind::Main), WAYS / 2);
        // A hole made by `take` is filled without dropping anything.
        assert_eq!(g.take(t(10)), Some(Kind::Main));
        g.insert(t(100), Kind::Small);
        assert!(g.contains(t(4)) && g.contains(t(100)) && !g.contains(t(10)));
        g.insert(t(101), Kind::Small);
        assert!(
            !g.contains(t(4)),
            "the oldest goes once the bucket is full again"
        );
        assert_eq!(g.count(Kind::Small) + g.count(Kind::Main), WAYS);
    }

    #[test]
    fn behaves_like_a_fifo_of_its_capacity() {
        let cap = 16_384;
        let mut g = Ghost::new(cap);
        let n = cap as u64 * 3;
        for i in 0..n {
            g.insert(tag(mix(i)), Kind::Small);
        }
        let recent = (n - cap as u64 / 2..n)
            .filter(|&i| g.contains(tag(mix(i))))
            .count();
        let old = (0..n - 2 * cap as u64)
            .filter(|&i| g.contains(tag(mix(i))))
            .count();
        // The newest half-capacity is nearly all present, the far past nearly all gone.
        assert!(recent as f64 > 0.97 * (cap / 2) as f64, "recent {recent}");
        assert!((old as f64) < 0.01 * cap as f64, "old {old}");
    }

    #[test]
    fn fit_rebuilds_keeping_newest() {
        let mut g = Ghost::new(4096);
        for i in 0..4096u64 {
            g.insert(tag(mix(i)), Kind::Small);
        }
        g.fit(1024);
        assert_eq!(g.capacity(), 1024);
        assert_eq!(g.count(Kind::Small), 1024);
        let newest = (4096 - 256..4096)
            .filter(|&i| g.contains(tag(mix(i))))
            .count();
        assert!(newest > 240, "newest kept: {newest}");
        g.fit(1100); // within 25%: unchanged
        assert_eq!(g.capacity(), 1024);
        g.fit(8192);
        assert_eq!(g.capacity(), 8192);
        assert!(g.contains(tag(mix(4095))));
    }
}
