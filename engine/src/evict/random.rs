//! `allkeys-random`: a dense array of the tracked ids with swap-removal; the victim is a
//! uniformly random element, drawn from a seeded xorshift64* generator (deterministic).

use super::{ensure, Policy, NIL};
use crate::rng::XorShift64Star;

pub struct Random {
    /// Tracked ids, in no particular order.
    ids: Vec<u32>,
    /// Per id: index into `ids`, or `NIL`.
    slot: Vec<u32>,
    size: Vec<u32>,
    bytes: u64,
    rng: XorShift64Star,
}

impl Random {
    /// `seed` fixes the sequence of victims (0 is replaced by a fixed non-zero seed).
    pub fn new(seed: u64) -> Random {
        Random {
            ids: Vec::new(),
            slot: Vec::new(),
            size: Vec::new(),
            bytes: 0,
            rng: XorShift64Star::new(seed),
        }
    }

    /// A uniformly random tracked id, left tracked (volatile-ttl samples with it).
    pub fn sample(&mut self) -> Option<u32> {
        if self.ids.is_empty() {
            return None;
        }
        // Fastrange over the high bits: uniform enough, no division.
        let i = ((self.rng.next() >> 32) * self.ids.len() as u64) >> 32;
        Some(self.ids[i as usize])
    }
}

impl Policy for Random {
    fn insert(&mut self, id: u32, _hash: u64, size: u32) {
        assert!(id < NIL, "id out of range");
        self.remove(id);
        ensure(&mut self.slot, id, NIL);
        ensure(&mut self.size, id, 0);
        self.slot[id as usize] = self.ids.len() as u32;
        self.size[id as usize] = size;
        self.ids.push(id);
        self.bytes += u64::from(size);
    }

    fn access(&mut self, _id: u32) {}

    fn remove(&mut self, id: u32) {
        let Some(&i) = self.slot.get(id as usize) else {
            return;
        };
        if i == NIL {
            return;
        }
        let last = self.ids.pop().expect("tracked id implies non-empty");
        if last != id {
            self.ids[i as usize] = last;
            self.slot[last as usize] = i;
        }
        self.slot[id as usize] = NIL;
        self.bytes -= u64::from(self.size[id as usize]);
    }

    fn resize(&mut self, id: u32, size: u32) {
        if self.contains(id) {
            let s = &mut self.size[id as usize];
            self.bytes = self.bytes - u64::from(*s) + u64::from(size);
            *s = size;
        }
    }

    fn evict(&mut self) -> Option<u32> {
        let id = self.sample()?;
        self.remove(id);
        Some(id)
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn contains(&self, id: u32) -> bool {
        self.slot.get(id as usize).is_some_and(|&s| s != NIL)
    }

    fn clear(&mut self) {
        for &id in &self.ids {
            self.slot[id as usize] = NIL;
        }
        self.ids.clear();
        self.bytes = 0;
    }

    fn heap_bytes(&self) -> usize {
        (self.ids.capacity() + self.slot.capacity() + self.size.capacity()) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_every_item_once_and_roughly_uniformly() {
        let mut firsts = [0u32; 4];
        let mut p = Random::new(7);
        for _ in 0..4000 {
            for id in 0..4 {
                p.insert(id, 0, 3);
            }
            assert_eq!(p.bytes(), 12);
            let mut got: Vec<u32> = std::iter::from_fn(|| p.evict()).collect();
            firsts[got[0] as usize] += 1;
            got.sort_unstable();
            assert_eq!(got, vec![0, 1, 2, 3]);
            assert_eq!(p.bytes(), 0);
        }
        for f in firsts {
            assert!((850..1150).contains(&f), "first-victim counts {firsts:?}");
        }
    }

    #[test]
    fn remove_resize_clear() {
        let mut p = Random::new(1);
        for id in 0..10 {
            p.insert(id, 0, 1);
        }
        p.remove(3);
        p.remove(3);
        p.remove(100);
        p.resize(4, 10);
        p.resize(3, 10);
        assert_eq!((p.len(), p.bytes()), (9, 8 + 10));
        for _ in 0..9 {
            assert_ne!(p.evict(), Some(3));
        }
        assert_eq!(p.evict(), None);
        p.insert(5, 0, 2);
        p.clear();
        assert!(!p.contains(5) && p.is_empty() && p.bytes() == 0);
    }
}
