//! A FIFO queue of item ids in which an item can be removed from the middle in O(1) by
//! overwriting its cell with a tombstone.
//!
//! An item's position is the physical index of its cell, which the caller keeps in its
//! own side array. Whenever cells move (compaction, or copying into a resized buffer),
//! the queue reports each move through a `moved(id, new_pos)` callback. Capacities are not
//! powers of two: the buffer grows by 25%, so the slack stays small (it is per-key
//! metadata); the few resizes cost O(n) each, amortized O(1) per push.
//!
//! Memory stays bounded: when tombstones outnumber live cells the queue compacts, and when
//! the occupied span falls to a quarter of the capacity the buffer shrinks.

/// A removed cell.
const TOMB: u32 = u32::MAX;

const MIN_CAP: usize = 16;
/// Compaction is not worth it below this many tombstones.
const MIN_DEAD: u32 = 32;

#[derive(Default)]
pub(crate) struct Fifo {
    /// Item ids, [`TOMB`] for removed ones.
    buf: Vec<u32>,
    /// Index of the oldest cell.
    head: u32,
    /// Occupied cells from `head` on, tombstones included.
    span: u32,
    /// Tombstones among them.
    dead: u32,
}

impl Fifo {
    /// Live cells.
    #[inline]
    pub fn live(&self) -> u32 {
        self.span - self.dead
    }

    #[cfg(test)]
    pub fn dead(&self) -> u32 {
        self.dead
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Physical index of the `k`th cell from the head (`k < capacity`).
    #[inline]
    fn at(&self, k: u32) -> u32 {
        let i = self.head as usize + k as usize;
        let cap = self.buf.len();
        (if i >= cap { i - cap } else { i }) as u32
    }

    /// The cell at position `pos`.
    #[inline]
    pub fn get(&self, pos: u32) -> u32 {
        self.buf[pos as usize]
    }

    /// Live ids from oldest to newest, with their positions (for invariant checks).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.span)
            .map(|k| (self.get(self.at(k)), self.at(k)))
            .filter(|&(id, _)| id != TOMB)
    }

    /// Appends `id` as the newest cell and returns its position. May compact or resize
    /// first, reporting every live cell that moved.
    pub fn push(&mut self, id: u32, mut moved: impl FnMut(u32, u32)) -> u32 {
        debug_assert_ne!(id, TOMB);
        if self.span as usize == self.buf.len() {
            if self.dead >= MIN_DEAD && self.dead as usize * 4 >= self.buf.len() {
                self.compact(&mut moved);
            } else {
                let cap = self.buf.len();
                let new = (cap + cap / 4).max(MIN_CAP);
                assert!(new < TOMB as usize, "eviction queue over 2^32 cells");
                self.realloc(new, &mut moved);
            }
        }
        let pos = self.at(self.span);
        self.buf[pos as usize] = id;
        self.span += 1;
        pos
    }

    /// Removes and returns the oldest live id. May shrink the buffer, reporting moves.
    pub fn pop(&mut self, mut moved: impl FnMut(u32, u32)) -> Option<u32> {
        while self.span > 0 {
            let id = self.buf[self.head as usize];
            self.head = self.at(1);
            self.span -= 1;
            if id == TOMB {
                self.dead -= 1;
                continue;
            }
            self.maybe_shrink(&mut moved);
            return Some(id);
        }
        self.head = 0;
        self.maybe_shrink(&mut moved);
        None
    }

    /// Replaces the live cell at `pos` by a tombstone. May compact, reporting moves.
    pub fn kill(&mut self, pos: u32, mut moved: impl FnMut(u32, u32)) {
        let cell = &mut self.buf[pos as usize];
        debug_assert_ne!(*cell, TOMB);
        *cell = TOMB;
        self.dead += 1;
        if self.dead >= MIN_DEAD && self.dead > self.live() {
            self.compact(&mut moved);
            self.maybe_shrink(&mut moved);
        }
    }

    /// Drops every cell; keeps the allocation.
    pub fn clear(&mut self) {
        self.head = 0;
        self.span = 0;
        self.dead = 0;
    }

    /// Squeezes out tombstones in place, keeping FIFO order.
    fn compact(&mut self, moved: &mut impl FnMut(u32, u32)) {
        let mut w = 0;
        for r in 0..self.span {
            let id = self.buf[self.at(r) as usize];
            if id != TOMB {
                if w != r {
                    let to = self.at(w);
                    self.buf[to as usize] = id;
                    moved(id, to);
                }
                w += 1;
            }
        }
        self.span = w;
        self.dead = 0;
    }

    fn maybe_shrink(&mut self, moved: &mut impl FnMut(u32, u32)) {
        let cap = self.buf.len();
        if cap > MIN_CAP && self.span as usize * 4 <= cap {
            self.realloc((self.live() as usize * 2).max(MIN_CAP), moved);
        }
    }

    /// Copies the live cells, in order, to the start of a new buffer of `cap` cells.
    fn realloc(&mut self, cap: usize, moved: &mut impl FnMut(u32, u32)) {
        debug_assert!(cap >= self.live() as usize);
        let mut buf = Vec::with_capacity(cap);
        for k in 0..self.span {
            let id = self.buf[self.at(k) as usize];
            if id != TOMB {
                moved(id, buf.len() as u32);
                buf.push(id);
            }
        }
        self.span = buf.len() as u32;
        buf.resize(cap, TOMB);
        self.buf = buf;
        self.head = 0;
        self.dead = 0;
    }

    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue plus the position map its callers keep.
    struct Tracked {
        r: Fifo,
        pos: Vec<u32>,
    }

    impl Tracked {
        fn new(ids: usize) -> Tracked {
            Tracked {
                r: Fifo::default(),
                pos: vec![TOMB; ids],
            }
        }
        fn push(&mut self, id: u32) {
            let pos = &mut self.pos;
            let p = self.r.push(id, |m, p| pos[m as usize] = p);
            pos[id as usize] = p;
        }
        fn pop(&mut self) -> Option<u32> {
            let pos = &mut self.pos;
            let id = self.r.pop(|m, p| pos[m as usize] = p)?;
            pos[id as usize] = TOMB;
            Some(id)
        }
        fn kill(&mut self, id: u32) {
            let pos = &mut self.pos;
            let p = std::mem::replace(&mut pos[id as usize], TOMB);
            self.r.kill(p, |m, p| pos[m as usize] = p);
        }
        fn check(&self) {
            for (id, &p) in self.pos.iter().enumerate() {
                if p != TOMB {
                    assert_eq!(self.r.get(p), id as u32, "position of {id}");
                }
            }
            let live = self.pos.iter().filter(|&&p| p != TOMB).count();
            assert_eq!(self.r.live() as usize, live);
            assert_eq!(self.r.iter().count(), live);
        }
    }

    #[test]
    fn fifo_order_growth_and_wraparound() {
        let mut t = Tracked::new(1000);
        // Interleave pushes and pops so the span wraps around the buffer end.
        let mut next = 0;
        let mut expect = 0;
        for round in 0..50 {
            for _ in 0..(round % 7 + 3) {
                t.push(next);
                next += 1;
            }
            for _ in 0..(round % 5 + 1) {
                assert_eq!(t.pop(), Some(expect));
                expect += 1;
            }
            t.check();
        }
        assert!(t.r.capacity() >= t.r.live() as usize);
        while let Some(id) = t.pop() {
            assert_eq!(id, expect);
            expect += 1;
        }
        assert_eq!(expect, next);
        t.check();
    }

    #[test]
    fn kill_from_the_middle_keeps_order() {
        let mut t = Tracked::new(200);
        for i in 0..200u32 {
            t.push(i);
        }
        // Every odd id goes; compaction renumbers the rest along the way.
        for i in (1..200u32).step_by(2) {
            t.kill(i);
            t.check();
        }
        let got: Vec<u32> = std::iter::from_fn(|| t.pop()).collect();
        assert_eq!(got, (0..200).step_by(2).collect::<Vec<u32>>());
    }

    #[test]
    fn tombstones_are_bounded() {
        let mut t = Tracked::new(10);
        // Churn: remove and re-add 10 ids many times without ever popping.
        for round in 0..10_000u32 {
            let id = round % 10;
            if round >= 10 {
                t.kill(id);
            }
            t.push(id);
            assert!(t.r.dead() <= MIN_DEAD);
        }
        t.check();
        assert_eq!(t.r.live(), 10);
        assert!(t.r.capacity() <= 64, "capacity {}", t.r.capacity());
    }

    #[test]
    fn capacity_tracks_the_live_count() {
        let mut t = Tracked::new(10_000);
        for i in 0..10_000 {
            t.push(i);
        }
        let cap = t.r.capacity();
        assert!(cap < 10_000 * 5 / 4 + MIN_CAP, "slack: {cap}");
        for _ in 0..9_990 {
            t.pop();
        }
        assert!(t.r.capacity() <= 4 * 10 + MIN_CAP, "{}", t.r.capacity());
        t.check();
        let rest: Vec<u32> = std::iter::from_fn(|| t.pop()).collect();
        assert_eq!(rest, (9_990..10_000).collect::<Vec<_>>());
    }
}
