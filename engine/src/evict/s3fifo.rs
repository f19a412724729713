//! S3-FIFO (Yang et al., SOSP'23, "FIFO queues are all you need for cache eviction"),
//! counted in bytes, with an optional ARC-style adaptive small queue (on by default).
//!
//! - New items enter the small FIFO `S`, unless their key's fingerprint is in the ghost
//!   queue `G`, in which case they enter the main FIFO `M`.
//! - A hit only bumps the item's 2-bit frequency (saturating at 3).
//! - To evict: if `S` holds at least its byte target, take `S`'s oldest item: if it was
//!   accessed at least `promote_at` times it moves to `M` (frequency kept), else it is
//!   evicted and its fingerprint enters `G`. Otherwise take `M`'s oldest: if its
//!   frequency is > 0 it is halved (3 -> 1 -> 0) and the item re-enters `M`, else it is
//!   evicted. The paper decrements by one; halving lets a main queue full of formerly
//!   hot items drain in two passes instead of three after a popularity shift, which
//!   turned the shift trace at a 10% cache from 0.3% more misses than LRU into 0.4% fewer
//!   while the stationary Zipf traces moved by at most 0.5 points (benches/RESULTS-hitratio.md).
//!   One-hit wonders leave after a short stay in `S`; a scan never reaches `M`.
//! - Fixed mode (the paper): `S`'s target is 10% of the budget, `G` holds about as many
//!   fingerprints as `M` holds items.
//! - Adaptive mode (default): `M`'s victims enter `G` too, marked as such, and `G` holds
//!   about as many fingerprints as the cache holds items. A ghost hit on a key that `S`
//!   evicted means `S` was too small: its target grows by the item's size (times the
//!   ratio of main to small ghost entries, as ARC weighs its ghost lists); a ghost hit
//!   on a key that `M` evicted shrinks it likewise. The target stays between the
//!   `small_min` and `small_max` shares of the budget ([`S3FifoConfig`]). This lets
//!   S3-FIFO flush a stale main queue quickly after a popularity shift (where fixed
//!   S3-FIFO trails LRU) and settle on a small `S` under a stable skew.
//!
//! Memory per tracked item: 13 bytes of side arrays indexed by id (queue position 4,
//! size 4, key fingerprint 4, state 1), one 4-byte queue cell, and ~4 bytes of ghost
//! (one fingerprint per cached item), plus up to 25% growth slack on the arrays and
//! queues: about 21-25 bytes. Removal from the middle of a queue leaves a tombstone; queues
//! compact when tombstones outnumber live slots.

use super::fifo::Fifo;
use super::ghost::{tag, Ghost, Kind};
use super::{ensure, Policy};

/// Tunables. The defaults are what `benches/hitratio.rs` measured best across its traces
/// (see `benches/RESULTS-hitratio.md`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct S3FifoConfig {
    /// Share of the byte budget targeted for the small queue: fixed, or the starting
    /// point when `adaptive` (paper: 0.1).
    pub small_ratio: f64,
    /// Accesses needed while in the small queue to be promoted to main (the paper's
    /// text says "accessed", i.e. 1; its pseudo-code says `freq > 1`, i.e. 2).
    pub promote_at: u8,
    /// Ghost entries per item in main (fixed mode) or per item cached (adaptive mode);
    /// 0 disables the ghost (and with it the adaptation).
    pub ghost_ratio: f64,
    /// Adapt the small queue's target to ghost hits (see the module docs).
    pub adaptive: bool,
    /// Bounds of the adaptive target, as shares of the budget.
    pub small_min: f64,
    pub small_max: f64,
}

impl Default for S3FifoConfig {
    fn default() -> Self {
        S3FifoConfig {
            small_ratio: 0.1,
            promote_at: 1,
            ghost_ratio: 1.0,
            adaptive: true,
            small_min: 0.01,
            small_max: 0.5,
        }
    }
}

impl S3FifoConfig {
    /// The paper's fixed S3-FIFO: 10% small queue, ghost sized like main.
    pub fn fixed() -> S3FifoConfig {
        S3FifoConfig {
            adaptive: false,
            ..S3FifoConfig::default()
        }
    }
}

const FREQ: u8 = 0b0011;
const IN_SMALL: u8 = 0b0100;
const IN_MAIN: u8 = 0b1000;
const QUEUE: u8 = IN_SMALL | IN_MAIN;

/// `state -> state` after a hit: frequency +1 saturating at 3, untracked ids unchanged.
const BUMP: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut s = 0;
    while s < 16 {
        let s8 = s as u8;
        t[s] = if s8 & QUEUE != 0 && s8 & FREQ != FREQ {
            s8 + 1
        } else {
            s8
        };
        s += 1;
    }
    t
};

#[derive(Clone, Copy, Default)]
struct Info {
    /// Cell index in the item's queue.
    pos: u32,
    size: u32,
}

pub struct S3Fifo {
    info: Vec<Info>,
    /// Queue bits and frequency per id; apart from `info` so that a hit touches one byte.
    state: Vec<u8>,
    /// Ghost fingerprint of each id's key.
    tags: Vec<u32>,
    small: Fifo,
    main: Fifo,
    ghost: Ghost,
    small_bytes: u64,
    main_bytes: u64,
    budget: u64,
    /// In bytes; fractional so that unit-sized adaptation steps do not round away.
    small_target: f64,
    cfg: S3FifoConfig,
}

impl S3Fifo {
    /// A policy for a cache of `budget_bytes`, with the default configuration.
    pub fn new(budget_bytes: u64) -> S3Fifo {
        S3Fifo::with_config(budget_bytes, S3FifoConfig::default())
    }

    pub fn with_config(budget_bytes: u64, cfg: S3FifoConfig) -> S3Fifo {
        let share = |x: f64| (0.0..=1.0).contains(&x);
        assert!(share(cfg.small_ratio), "small_ratio in [0, 1]");
        assert!(
            share(cfg.small_min) && share(cfg.small_max) && cfg.small_min <= cfg.small_max,
            "0 <= small_min <= small_max <= 1"
        );
        assert!(cfg.ghost_ratio >= 0.0, "ghost_ratio >= 0");
        let mut p = S3Fifo {
            info: Vec::new(),
            state: Vec::new(),
            tags: Vec::new(),
            small: Fifo::default(),
            main: Fifo::default(),
            ghost: Ghost::new(0),
            small_bytes: 0,
            main_bytes: 0,
            budget: 0,
            small_target: 0.0,
            cfg,
        };
        p.set_budget(budget_bytes);
        p
    }

    /// Changes the byte budget (CONFIG SET maxmemory). Only the small queue's target
    /// moves (keeping its share); the store evicts down to the new budget itself.
    pub fn set_budget(&mut self, budget_bytes: u64) {
        let share = if !self.cfg.adaptive || self.budget == 0 {
            self.cfg.small_ratio
        } else {
            self.small_target / self.budget as f64
        };
        self.budget = budget_bytes;
        self.small_target = budget_bytes as f64 * share;
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    pub fn config(&self) -> S3FifoConfig {
        self.cfg
    }

    /// The small queue's current byte target.
    pub fn small_target(&self) -> u64 {
        self.small_target as u64
    }

    /// Bytes in the small queue.
    pub fn small_bytes(&self) -> u64 {
        self.small_bytes
    }

    /// Bytes in the main queue.
    pub fn main_bytes(&self) -> u64 {
        self.main_bytes
    }

    /// Whether `id` is in the main queue (false if in small or untracked).
    pub fn in_main(&self, id: u32) -> bool {
        self.state_of(id) & IN_MAIN != 0
    }

    /// The 2-bit access frequency of `id` (0 if untracked).
    pub fn freq(&self, id: u32) -> u8 {
        self.state_of(id) & FREQ
    }

    /// Number of fingerprints the ghost can hold now.
    pub fn ghost_capacity(&self) -> usize {
        self.ghost.capacity()
    }

    #[inline]
    fn state_of(&self, id: u32) -> u8 {
        self.state.get(id as usize).copied().unwrap_or(0)
    }

    fn push(&mut self, id: u32, to_main: bool) {
        let info = &mut self.info;
        let (queue, bytes) = if to_main {
            (&mut self.main, &mut self.main_bytes)
        } else {
            (&mut self.small, &mut self.small_bytes)
        };
        let pos = queue.push(id, |m, p| info[m as usize].pos = p);
        info[id as usize].pos = pos;
        *bytes += u64::from(info[id as usize].size);
        self.state[id as usize] = if to_main { IN_MAIN } else { IN_SMALL };
    }

    /// ARC's rule: move the small target toward the queue whose ghost was hit, by the
    /// item's size weighted by how much rarer that ghost's entries are.
    fn adapt(&mut self, kind: Kind, size: u32) {
        let small = self.ghost.count(Kind::Small).max(1) as f64;
        let main = self.ghost.count(Kind::Main).max(1) as f64;
        let size = f64::from(size.max(1));
        let budget = self.budget as f64;
        let target = self.small_target;
        self.small_target = match kind {
            Kind::Small => {
                (target + size * (main / small).max(1.0)).min(budget * self.cfg.small_max)
            }
            Kind::Main => {
                (target - size * (small / main).max(1.0)).max(budget * self.cfg.small_min)
            }
        };
    }

    /// Records an evicted item's fingerprint, keeping the ghost sized.
    fn remember(&mut self, id: u32, kind: Kind) {
        let items = if self.cfg.adaptive {
            self.main.live() + self.small.live()
        } else {
            self.main.live()
        };
        self.ghost
            .fit((f64::from(items) * self.cfg.ghost_ratio) as usize);
        self.ghost.insert(self.tags[id as usize], kind);
    }
}

impl Policy for S3Fifo {
    fn insert(&mut self, id: u32, hash: u64, size: u32) {
        assert!(id < u32::MAX - 1, "id out of range");
        self.remove(id);
        ensure(&mut self.info, id, Info::default());
        ensure(&mut self.state, id, 0);
        ensure(&mut self.tags, id, 0);
        self.info[id as usize].size = size;
        let t = tag(hash);
        self.tags[id as usize] = t;
        let hit = if self.cfg.ghost_ratio > 0.0 {
            self.ghost.take(t)
        } else {
            None
        };
        if let (Some(kind), true) = (hit, self.cfg.adaptive) {
            self.adapt(kind, size);
        }
        self.push(id, hit.is_some());
    }

    #[inline]
    fn access(&mut self, id: u32) {
        if let Some(s) = self.state.get_mut(id as usize) {
            *s = BUMP[*s as usize];
        }
    }

    fn remove(&mut self, id: u32) {
        let st = self.state_of(id);
        if st & QUEUE == 0 {
            return;
        }
        let Info { pos, size } = self.info[id as usize];
        let info = &mut self.info;
        let (queue, bytes) = if st & IN_SMALL != 0 {
            (&mut self.small, &mut self.small_bytes)
        } else {
            (&mut self.main, &mut self.main_bytes)
        };
        debug_assert_eq!(queue.get(pos), id);
        queue.kill(pos, |m, p| info[m as usize].pos = p);
        *bytes -= u64::from(size);
        self.state[id as usize] = 0;
    }

    fn resize(&mut self, id: u32, size: u32) {
        let st = self.state_of(id);
        if st & QUEUE == 0 {
            return;
        }
        let old = std::mem::replace(&mut self.info[id as usize].size, size);
        let q = if st & IN_SMALL != 0 {
            &mut self.small_bytes
        } else {
            &mut self.main_bytes
        };
        *q = *q - u64::from(old) + u64::from(size);
    }

    fn evict(&mut self) -> Option<u32> {
        let ghost = self.cfg.ghost_ratio > 0.0;
        loop {
            let small_live = self.small.live() > 0;
            let small_full = self.small_bytes as f64 >= self.small_target;
            if small_live && (small_full || self.main.live() == 0) {
                let info = &mut self.info;
                let id = self.small.pop(|m, p| info[m as usize].pos = p)?;
                let i = id as usize;
                let freq = self.state[i] & FREQ;
                self.small_bytes -= u64::from(self.info[i].size);
                if freq >= self.cfg.promote_at {
                    self.push(id, true);
                    self.state[i] |= freq;
                    continue;
                }
                self.state[i] = 0;
                if ghost {
                    self.remember(id, Kind::Small);
                }
                return Some(id);
            }
            let info = &mut self.info;
            let id = self.main.pop(|m, p| info[m as usize].pos = p)?;
            let i = id as usize;
            let freq = self.state[i] & FREQ;
            self.main_bytes -= u64::from(self.info[i].size);
            if freq > 0 {
                self.push(id, true);
                self.state[i] |= freq >> 1;
                continue;
            }
            self.state[i] = 0;
            if ghost && self.cfg.adaptive {
                self.remember(id, Kind::Main);
            }
            return Some(id);
        }
    }

    fn bytes(&self) -> u64 {
        self.small_bytes + self.main_bytes
    }

    fn len(&self) -> usize {
        (self.small.live() + self.main.live()) as usize
    }

    fn contains(&self, id: u32) -> bool {
        self.state_of(id) & QUEUE != 0
    }

    fn clear(&mut self) {
        self.state.fill(0);
        self.small.clear();
        self.main.clear();
        self.ghost.clear();
        self.small_bytes = 0;
        self.main_bytes = 0;
        self.small_target = self.budget as f64 * self.cfg.small_ratio;
    }

    fn heap_bytes(&self) -> usize {
        self.info.capacity() * std::mem::size_of::<Info>()
            + self.state.capacity()
            + self.tags.capacity() * 4
            + self.small.heap_bytes()
            + self.main.heap_bytes()
            + self.ghost.heap_bytes()
    }
}

#[cfg(test)]
impl S3Fifo {
    /// Recomputes everything derivable from the rings and compares (tests only).
    fn validate(&self) {
        let mut seen = vec![0u8; self.state.len()];
        for (queue, flag, bytes) in [
            (&self.small, IN_SMALL, self.small_bytes),
            (&self.main, IN_MAIN, self.main_bytes),
        ] {
            let mut sum = 0u64;
            for (id, pos) in queue.iter() {
                let i = id as usize;
                assert_eq!(self.state[i] & QUEUE, flag, "queue bits of {id}");
                assert_eq!(self.info[i].pos, pos, "position of {id}");
                seen[i] += 1;
                sum += u64::from(self.info[i].size);
            }
            assert_eq!(sum, bytes, "bytes of queue {flag:#b}");
        }
        for (i, &st) in self.state.iter().enumerate() {
            let want = u8::from(st & QUEUE != 0);
            assert_eq!(seen[i], want, "id {i} is in {} queue slots", seen[i]);
        }
        assert!(self.small_target >= 0.0 && self.small_target <= self.budget as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key hash whose ghost fingerprint is distinct per id.
    fn h(id: u32) -> u64 {
        (u64::from(id) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn fixed(budget: u64) -> S3Fifo {
        S3Fifo::with_config(budget, S3FifoConfig::fixed())
    }

    fn drain(p: &mut S3Fifo) -> Vec<u32> {
        std::iter::from_fn(|| p.evict()).collect()
    }

    #[test]
    fn unaccessed_items_leave_small_in_fifo_order() {
        let mut p = fixed(100);
        for id in 0..10 {
            p.insert(id, h(id), 10);
        }
        assert_eq!(p.small_bytes(), 100);
        assert_eq!(drain(&mut p), (0..10).collect::<Vec<_>>());
        assert_eq!(p.bytes(), 0);
        assert!(p.is_empty());
    }

    #[test]
    fn accessed_small_items_are_promoted() {
        let mut p = fixed(100);
        for id in 0..5 {
            p.insert(id, h(id), 10);
        }
        p.access(1);
        p.access(3);
        // 0 goes; 1 is promoted (not returned), then 2 goes.
        assert_eq!(p.evict(), Some(0));
        assert_eq!(p.evict(), Some(2));
        assert!(p.in_main(1));
        assert_eq!(p.freq(1), 1, "frequency is kept on promotion");
        assert_eq!(p.main_bytes(), 10);
        // Now small holds 3 (promoted on the next pass) and 4.
        assert_eq!(p.evict(), Some(4));
        assert!(p.in_main(3));
        // Small is empty: main is next. 1 and 3 have freq 1: each gets one more round.
        assert_eq!(drain(&mut p), vec![1, 3]);
    }

    #[test]
    fn promote_at_two_needs_two_hits() {
        let cfg = S3FifoConfig {
            promote_at: 2,
            ..S3FifoConfig::fixed()
        };
        let mut p = S3Fifo::with_config(100, cfg);
        for id in 0..3 {
            p.insert(id, h(id), 10);
        }
        p.access(0);
        p.access(1);
        p.access(1);
        // 0 had one hit: not enough. 1 had two: promoted. 2 had none.
        assert_eq!(p.evict(), Some(0));
        assert_eq!(p.evict(), Some(2));
        assert!(p.in_main(1));
        assert_eq!(p.freq(1), 2);
    }

    #[test]
    fn main_gives_second_chances_by_frequency() {
        let mut p = fixed(1000);
        // Put 0..4 into main through the ghost: evict them from small once, reinsert.
        for id in 0..4 {
            p.insert(id, h(id), 10);
        }
        assert_eq!(drain(&mut p), vec![0, 1, 2, 3]);
        for id in 0..4 {
            p.insert(id, h(id), 10);
            assert!(p.in_main(id), "ghost hit must go to main");
        }
        for _ in 0..5 {
            p.access(2); // saturates at 3
        }
        assert_eq!(p.freq(2), 3);
        p.access(0);
        // main: 0(f1) 1 2(f3) 3. Order of eviction: 1, 3, 0 (after one re-insert), 2
        // (after two: its frequency halves 3 -> 1 -> 0).
        assert_eq!(drain(&mut p), vec![1, 3, 0, 2]);
        for id in [5, 6] {
            p.insert(id, h(id), 10);
        }
        assert_eq!(drain(&mut p), vec![5, 6]);
        for id in [5, 6] {
            p.insert(id, h(id), 10);
            assert!(p.in_main(id));
        }
        for _ in 0..3 {
            p.access(5);
        }
        assert_eq!(p.evict(), Some(6), "5 gets another pass");
        assert_eq!(p.freq(5), 1, "its frequency halved: 3 -> 1");
    }

    #[test]
    fn small_target_is_a_share_of_the_budget() {
        let mut p = fixed(1000); // small target 100 bytes
                                 // Five items into main via the ghost.
        for id in 0..5 {
            p.insert(id, h(id), 100);
        }
        assert_eq!(drain(&mut p), vec![0, 1, 2, 3, 4]);
        for id in 0..5 {
            p.insert(id, h(id), 100);
        }
        assert_eq!(p.main_bytes(), 500);
        // Small under its target: main is evicted even though small has an older item.
        p.insert(10, h(10), 50);
        assert_eq!(p.evict(), Some(0));
        // At the target: small goes first.
        p.insert(11, h(11), 50);
        assert_eq!(p.small_bytes(), 100);
        assert_eq!(p.evict(), Some(10));
        // Shrinking the budget shrinks the target.
        p.set_budget(400);
        assert_eq!(p.evict(), Some(11));
    }

    #[test]
    fn ghost_promotion_and_scan_resistance() {
        let mut p = fixed(100);
        // A hot set of 5 in main, accessed.
        for id in 0..5 {
            p.insert(id, h(id), 10);
        }
        drain(&mut p);
        for id in 0..5 {
            p.insert(id, h(id), 10);
            p.access(id);
        }
        // A scan of 1000 one-hit items through a cache of 100 bytes.
        for id in 100..1100 {
            p.insert(id, h(id), 10);
            p.access(0);
            while p.bytes() > 100 {
                let v = p.evict().unwrap();
                assert!(v >= 100, "hot item {v} evicted by a scan");
            }
        }
        for id in 0..5 {
            assert!(p.in_main(id));
        }
    }

    #[test]
    fn remove_and_resize_bookkeeping() {
        let mut p = fixed(1000);
        for id in 0..6 {
            p.insert(id, h(id), 10 + id);
        }
        assert_eq!(p.bytes(), (10..16).sum::<u32>() as u64);
        p.remove(2);
        p.remove(2); // idempotent
        p.resize(3, 100);
        p.resize(42, 7); // untracked: no-op
        p.access(42);
        assert_eq!(p.bytes(), 10 + 11 + 100 + 14 + 15);
        assert_eq!(p.len(), 5);
        assert!(!p.contains(2));
        // Reusing id 2 for a different key: the old slot must not resurface.
        p.insert(2, h(77), 5);
        assert_eq!(p.bytes(), 10 + 11 + 100 + 14 + 15 + 5);
        assert_eq!(drain(&mut p), vec![0, 1, 3, 4, 5, 2]);
        // Re-inserting a tracked id replaces it.
        p.insert(9, h(9), 10);
        p.insert(9, h(9), 20);
        assert_eq!((p.len(), p.bytes()), (1, 20));
        p.clear();
        assert_eq!((p.len(), p.bytes(), p.evict()), (0, 0, None));
    }

    #[test]
    fn churn_keeps_memory_bounded() {
        let mut p = S3Fifo::new(1 << 20);
        for id in 0..1000 {
            p.insert(id, h(id), 1);
        }
        let before = p.heap_bytes();
        // DEL + SET churn below budget: no evictions, only removes and inserts.
        for round in 0..200_000u32 {
            let id = round % 1000;
            p.remove(id);
            p.insert(id, h(round + 5000), 1);
        }
        assert_eq!(p.len(), 1000);
        assert!(
            p.heap_bytes() <= before * 2,
            "{} vs {before}",
            p.heap_bytes()
        );
        assert_eq!(drain(&mut p).len(), 1000);
    }

    #[test]
    fn bytes_stay_within_budget_under_an_evict_loop() {
        let budget = 10_000;
        let mut p = S3Fifo::new(budget);
        let mut x = 12345u64;
        for id in 0..50_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 3000) as u32;
            p.insert(id, h(key), 1 + (x >> 40) as u32 % 300);
            if (x >> 20) & 3 == 0 {
                p.access(id - (x % 100).min(id as u64) as u32);
            }
            while p.bytes() > budget {
                p.evict().unwrap();
            }
            assert!(p.bytes() <= budget);
        }
        assert!(p.ghost_capacity() > 0);
    }

    #[test]
    fn adaptive_target_follows_ghost_hits() {
        let mut p = S3Fifo::new(1000);
        assert_eq!(p.small_target(), 100);
        // Evicted from small, then requested again: small was too small.
        for id in 0..4 {
            p.insert(id, h(id), 10);
        }
        assert_eq!(drain(&mut p), vec![0, 1, 2, 3]);
        p.insert(0, h(0), 10);
        assert!(p.in_main(0));
        assert!(p.small_target() >= 110, "grew: {}", p.small_target());
        // Evicted from main (adaptive mode remembers those too), then requested again.
        assert_eq!(p.evict(), Some(0));
        let before = p.small_target();
        p.insert(0, h(0), 10);
        assert!(p.in_main(0), "a main ghost hit also goes to main");
        assert!(p.small_target() < before, "shrank: {}", p.small_target());
    }

    #[test]
    fn adaptive_target_stays_within_bounds() {
        let cfg = S3FifoConfig {
            small_min: 0.05,
            small_max: 0.2,
            ..S3FifoConfig::default()
        };
        let mut p = S3Fifo::with_config(1000, cfg);
        // Many small-ghost hits: grow up to the max only.
        for round in 0..50 {
            for id in 0..8 {
                p.insert(id, h(id + 100 * round), 10);
            }
            drain(&mut p);
            for id in 0..8 {
                p.insert(id, h(id + 100 * round), 10);
            }
            drain(&mut p);
        }
        assert_eq!(p.small_target(), 200);
        // Many main-ghost hits: shrink down to the min only.
        for _ in 0..100 {
            p.adapt(Kind::Main, 10);
        }
        assert_eq!(p.small_target(), 50);
        // A new budget keeps the share.
        p.set_budget(2000);
        assert_eq!(p.small_target(), 100);
    }

    #[test]
    fn fixed_mode_ghost_ignores_main_victims() {
        let mut p = fixed(1000);
        for id in 0..2 {
            p.insert(id, h(id), 10);
        }
        drain(&mut p);
        p.insert(0, h(0), 10); // ghost hit: main
        assert!(p.in_main(0));
        assert_eq!(p.evict(), Some(0));
        p.insert(0, h(0), 10); // main victims are not remembered
        assert!(!p.in_main(0));
        assert_eq!(p.small_target(), 100);
    }

    #[test]
    fn random_operations_keep_internal_invariants() {
        let mut x = 0x9E37_79B9u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for cfg in [S3FifoConfig::default(), S3FifoConfig::fixed()] {
            let mut p = S3Fifo::with_config(20_000, cfg);
            for step in 0..60_000u32 {
                let r = next();
                let id = (r % 500) as u32;
                match (r >> 16) % 8 {
                    0..=2 => p.insert(id, h((r >> 24) as u32 % 900), (r >> 40) as u32 % 200),
                    3 | 4 => p.access(id),
                    5 => p.remove(id),
                    6 => p.resize(id, (r >> 40) as u32 % 200),
                    _ => {
                        while p.bytes() > 20_000 - (r >> 50) % 10_000 {
                            p.evict().unwrap();
                        }
                    }
                }
                if step % 97 == 0 {
                    p.validate();
                }
            }
            p.validate();
        }
    }
}
