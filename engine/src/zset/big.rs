//! The large form of a sorted set (Redis's `skiplist` encoding): sorted chunks of packed
//! entries with a count tree for ranks, plus a hash index from member to chunk.
//!
//! Why not a skip list or a B-tree of nodes: a node per member costs Redis about 100 bytes
//! per member of a 1M-member set (skip-list node, dict entry, member SDS). Here members
//! live packed, in the same layout as the small form ([`super::packed`]), in chunks of at
//! most 128 entries (or 4 KiB), so a member costs its bytes plus 9 for score and length,
//! plus a 1-byte tag (below); the index adds a 4-byte slot (the store's own 1.5x-growing
//! [`IndexTable`]) and an 8-byte handle. About 41 bytes for `member:<i>` instead of
//! Redis's ~100.
//!
//! ```text
//!   order: [c3, c0, c7, ...]    chunk ids in score order; fen = Fenwick tree of counts
//!   chunks[c]: (s,m)(s,m)...    sorted, packed, <= 128 entries
//!              t t ...          one tag byte of each entry's member hash
//!   index: h(member) ─► handle ─► (chunk id, 32-bit member hash)
//! ```
//!
//! Costs: a member's score is the index lookup plus a scan of one chunk's tags (memchr
//! over at most 128 bytes) and a walk over the entry lengths to the match; a rank
//! is that plus a Fenwick prefix sum (O(log n)); the entry at a rank is a Fenwick descent
//! plus a chunk scan; a score or lex bound is a binary search over the chunks' first
//! entries plus a chunk scan. An insert or removal rewrites one chunk. A chunk split (or
//! merge, or a chunk emptied) rebuilds the position map and the Fenwick tree, O(n/128),
//! which happens at most once per 64 writes on average: for a 1M-member set that is
//! rebuilding 8k counters. Appending past the largest score (ZADD with growing scores)
//! splits off a one-entry chunk, so sequential loads leave chunks full.
//!
//! Handles are stable while their member stays in the set, so ZSCAN walks handle ids:
//! every member present for the whole scan is returned at least once. Two members whose
//! 32-bit hashes collide in one chunk have interchangeable handles, which keeps every
//! operation right (a scan may then return such a member twice, as SCAN may).

use ahash::RandomState;

use super::packed;
use crate::entry::alloc_class;
use crate::table::IndexTable;

/// Entries per chunk at most.
const CHUNK_ENTRIES: usize = 128;
/// Bytes per chunk past which a chunk of more than one entry splits.
const CHUNK_BYTES: usize = 4096;
/// The chunk id of a free handle.
const FREE: u32 = u32::MAX;

#[derive(Clone, Default)]
struct Chunk {
    buf: Vec<u8>,
    n: u32,
    /// One byte of each entry's member hash ([`tag`]), in entry order: a member lookup
    /// scans these 1-byte tags and walks the packed entries only to the one candidate
    /// (reading lengths), instead of comparing every entry's member (which cost a ZADD
    /// more than everything else it did).
    tags: Vec<u8>,
}

/// An entry's tag: a byte of its member's 32-bit hash that the index's bucket does not
/// already decide.
fn tag(h: u32) -> u8 {
    (h >> 24) as u8
}

#[derive(Clone, Default)]
pub struct BigZset {
    chunks: Vec<Chunk>,
    free_chunks: Vec<u32>,
    /// Chunk ids in order.
    order: Vec<u32>,
    /// Chunk id -> position in `order`.
    pos: Vec<u32>,
    /// Fenwick tree over `order` positions of the chunks' entry counts.
    fen: Vec<u32>,
    index: IndexTable,
    /// Handle -> (chunk id, 32-bit member hash).
    handles: Vec<(u32, u32)>,
    free_handles: Vec<u32>,
    hasher: RandomState,
    len: usize,
    /// Sum of the chunk buffers' and tag vectors' allocator size classes.
    buf_bytes: usize,
}

fn wide(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

/// Changes `v` through `f` and moves `bytes` by how much its allocation class changed.
fn counted<R>(v: &mut Vec<u8>, bytes: &mut usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let before = class(v.capacity());
    let r = f(v);
    *bytes = *bytes + class(v.capacity()) - before;
    r
}

fn class(cap: usize) -> usize {
    if cap == 0 {
        0
    } else {
        alloc_class(cap)
    }
}

impl BigZset {
    pub fn new() -> BigZset {
        BigZset::default()
    }

    /// A set holding `items` (a later duplicate replaces the earlier score).
    pub fn from_entries<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> BigZset {
        let mut z = BigZset::new();
        for (m, s) in items {
            z.set(m, s);
        }
        z
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn h32(&self, member: &[u8]) -> u32 {
        (self.hasher.hash_one(member) >> 32) as u32
    }

    fn buf(&self, c: u32) -> &[u8] {
        &self.chunks[c as usize].buf
    }

    /// Changes chunk `c`'s buffer through `f`, keeping `buf_bytes` right.
    fn with_buf<R>(&mut self, c: u32, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        counted(&mut self.chunks[c as usize].buf, &mut self.buf_bytes, f)
    }

    /// Changes chunk `c`'s tags through `f`, keeping `buf_bytes` right.
    fn with_tags<R>(&mut self, c: u32, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        counted(&mut self.chunks[c as usize].tags, &mut self.buf_bytes, f)
    }

    /// `member`'s entry in chunk `c` (`h` its 32-bit hash): the entries whose tag matches,
    /// each reached by reading the lengths of those before it.
    fn find_in(chunks: &[Chunk], c: u32, member: &[u8], h: u32) -> Option<packed::Found> {
        let chunk = &chunks[c as usize];
        let t = tag(h);
        let (mut pos, mut at, mut from) = (0, 0, 0);
        while let Some(k) = memchr::memchr(t, &chunk.tags[from..]) {
            let i = from + k;
            at = packed::skip(&chunk.buf, at, i - pos)?;
            pos = i;
            if let Some((end, score)) = packed::entry_is(&chunk.buf, at, member) {
                return Some(packed::Found {
                    pos,
                    start: at,
                    end,
                    score,
                });
            }
            from = i + 1;
        }
        None
    }

    /// The chunk of `member`, and its place in the chunk with its score: found by the
    /// index's check of the candidate.
    fn member_at(&self, member: &[u8]) -> Option<(u32, (usize, f64))> {
        let h = self.h32(member);
        let (handles, chunks) = (&self.handles, &self.chunks);
        let mut hit = None;
        let x = self.index.find(wide(h), |x| {
            let (c, hh) = handles[x as usize];
            hit = if hh == h {
                BigZset::find_in(chunks, c, member, h)
            } else {
                None
            };
            hit.is_some()
        })?;
        let f = hit?;
        Some((handles[x as usize].0, (f.pos, f.score)))
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.member_at(member).map(|(_, (_, s))| s)
    }

    /// The member's 0-based rank (ascending) and score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let (c, (i, s)) = self.member_at(member)?;
        Some((self.prefix(self.pos[c as usize] as usize) + i, s))
    }

    /// Sets `member`'s score; returns the old one.
    pub fn set(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let h = self.h32(member);
        let old = self.remove_hashed(member, h);
        self.insert(member, h, score);
        old
    }

    fn new_chunk(&mut self) -> u32 {
        match self.free_chunks.pop() {
            Some(c) => c,
            None => {
                assert!(self.chunks.len() < FREE as usize, "sorted set is full");
                self.chunks.push(Chunk::default());
                (self.chunks.len() - 1) as u32
            }
        }
    }

    /// The order position of the chunk where `(score, member)` belongs.
    fn locate(&self, score: f64, member: &[u8]) -> usize {
        let q = self.order.partition_point(|&c| {
            packed::first(self.buf(c))
                .is_some_and(|(m, s)| packed::cmp((s, m), (score, member)).is_le())
        });
        q.saturating_sub(1)
    }

    /// Inserts `member` (absent; `h` its 32-bit hash).
    fn insert(&mut self, member: &[u8], h: u32, score: f64) {
        if self.order.is_empty() {
            let c = self.new_chunk();
            self.order.push(c);
            self.rebuild();
        }
        let p = self.locate(score, member);
        let c = self.order[p];
        let i = self.with_buf(c, |b| packed::insert(b, member, score));
        self.with_tags(c, |t| t.insert(i, tag(h)));
        self.chunks[c as usize].n += 1;
        self.fen_add(p, 1);
        self.len += 1;
        let x = match self.free_handles.pop() {
            Some(x) => {
                self.handles[x as usize] = (c, h);
                x
            }
            None => {
                assert!(self.handles.len() < u32::MAX as usize, "sorted set is full");
                self.handles.push((c, h));
                (self.handles.len() - 1) as u32
            }
        };
        let handles = &self.handles;
        self.index
            .insert_unique(wide(h), x, |x| wide(handles[x as usize].1));
        let chunk = &self.chunks[c as usize];
        if chunk.n as usize > CHUNK_ENTRIES || (chunk.buf.len() > CHUNK_BYTES && chunk.n > 1) {
            self.split(p, i);
        }
    }

    /// Splits the chunk at order position `p`, whose entry `inserted` is the newest.
    fn split(&mut self, p: usize, inserted: usize) {
        let c = self.order[p];
        let n = self.chunks[c as usize].n as usize;
        let keep = if p + 1 == self.order.len() && inserted + 1 == n {
            n - 1
        } else {
            n / 2
        };
        let off = packed::offset_of(self.buf(c), keep);
        let tail = self.buf(c)[off..].to_vec();
        let d = self.new_chunk();
        self.repoint(&tail, c, d);
        self.with_buf(c, |b| {
            b.truncate(off);
            if b.capacity() > b.len() + b.len() / 4 {
                b.shrink_to_fit();
            }
        });
        let tail_tags = self.with_tags(c, |t| {
            let tail = t.split_off(keep);
            if t.capacity() > t.len() + t.len() / 4 {
                t.shrink_to_fit();
            }
            tail
        });
        self.with_tags(d, |t| *t = tail_tags);
        self.chunks[c as usize].n = keep as u32;
        self.with_buf(d, |b| *b = tail);
        self.chunks[d as usize].n = (n - keep) as u32;
        self.order.insert(p + 1, d);
        self.rebuild();
    }

    /// Files the members packed in `moved` under chunk `to` instead of `from`.
    fn repoint(&mut self, moved: &[u8], from: u32, to: u32) {
        for (m, _) in packed::entries(moved) {
            let h = self.h32(m);
            let handles = &self.handles;
            if let Some(x) = self
                .index
                .find(wide(h), |x| handles[x as usize] == (from, h))
            {
                self.handles[x as usize].0 = to;
            }
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        self.remove_hashed(member, self.h32(member))
    }

    /// [`BigZset::remove`] of a member whose 32-bit hash is `h`. The chunk is scanned once:
    /// the index's check of the candidate finds the entry's bytes, which are then cut.
    fn remove_hashed(&mut self, member: &[u8], h: u32) -> Option<f64> {
        let (handles, chunks) = (&self.handles, &self.chunks);
        let mut hit = None;
        let x = self.index.remove(wide(h), |x| {
            let (c, hh) = handles[x as usize];
            hit = if hh == h {
                BigZset::find_in(chunks, c, member, h)
            } else {
                None
            };
            hit.is_some()
        })?;
        let found = hit?;
        let c = self.handles[x as usize].0;
        self.handles[x as usize] = (FREE, 0);
        self.free_handles.push(x);
        let s = self.with_buf(c, |b| {
            b.drain(found.start..found.end);
            if b.capacity() > 2 * b.len() + 64 {
                b.shrink_to_fit();
            }
            found.score
        });
        self.with_tags(c, |t| {
            t.remove(found.pos);
            if t.capacity() > 2 * t.len() + 16 {
                t.shrink_to_fit();
            }
        });
        self.chunks[c as usize].n -= 1;
        self.len -= 1;
        let p = self.pos[c as usize] as usize;
        self.fen_add(p, -1);
        if self.chunks[c as usize].n == 0 {
            self.drop_chunk(p);
        } else if p + 1 < self.order.len() {
            let next = self.order[p + 1];
            let (a, b) = (&self.chunks[c as usize], &self.chunks[next as usize]);
            if (a.n + b.n) as usize <= CHUNK_ENTRIES / 2
                && a.buf.len() + b.buf.len() <= CHUNK_BYTES / 2
            {
                let moved = std::mem::take(&mut self.chunks[next as usize].buf);
                self.buf_bytes -= class(moved.capacity());
                let moved_tags = self.with_tags(next, std::mem::take);
                self.with_tags(c, |t| t.extend_from_slice(&moved_tags));
                self.repoint(&moved, next, c);
                self.with_buf(c, |b| b.extend_from_slice(&moved));
                self.chunks[c as usize].n += self.chunks[next as usize].n;
                self.chunks[next as usize].n = 0;
                self.drop_chunk(p + 1);
            }
        }
        if self.free_handles.len() == self.handles.len() {
            self.handles.clear();
            self.free_handles.clear();
        }
        Some(s)
    }

    /// Removes the (empty) chunk at order position `p`.
    fn drop_chunk(&mut self, p: usize) {
        let c = self.order.remove(p);
        self.with_buf(c, |b| *b = Vec::new());
        self.with_tags(c, |t| *t = Vec::new());
        self.chunks[c as usize].n = 0;
        self.free_chunks.push(c);
        self.rebuild();
    }

    /// Recomputes `pos` and `fen` from `order`.
    fn rebuild(&mut self) {
        self.pos.resize(self.chunks.len(), 0);
        self.fen.clear();
        for (p, &c) in self.order.iter().enumerate() {
            self.pos[c as usize] = p as u32;
            self.fen.push(self.chunks[c as usize].n);
        }
        let n = self.fen.len();
        for i in 1..=n {
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                self.fen[j - 1] += self.fen[i - 1];
            }
        }
    }

    fn fen_add(&mut self, p: usize, d: i32) {
        let mut i = p + 1;
        while i <= self.fen.len() {
            self.fen[i - 1] = self.fen[i - 1].wrapping_add_signed(d);
            i += i & i.wrapping_neg();
        }
    }

    /// Entries in the chunks before order position `p`.
    fn prefix(&self, p: usize) -> usize {
        let mut i = p;
        let mut s = 0usize;
        while i > 0 {
            s += self.fen[i - 1] as usize;
            i &= i - 1;
        }
        s
    }

    /// The order position of the chunk holding rank `r` (< len), and `r`'s offset in it.
    fn find_rank(&self, r: usize) -> (usize, usize) {
        let n = self.fen.len();
        let mut p = 0;
        let mut rem = r;
        let mut step = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            if p + step <= n && (self.fen[p + step - 1] as usize) <= rem {
                p += step;
                rem -= self.fen[p - 1] as usize;
            }
            step >>= 1;
        }
        (p, rem)
    }

    /// How many entries, from the first, satisfy `before` (which must hold for a prefix of
    /// the order: "below a score bound", "below a lex bound").
    pub fn count_while(&self, mut before: impl FnMut(&[u8], f64) -> bool) -> usize {
        let q = self
            .order
            .partition_point(|&c| packed::first(self.buf(c)).is_some_and(|(m, s)| before(m, s)));
        if q == 0 {
            return 0;
        }
        self.prefix(q - 1) + packed::count_while(self.buf(self.order[q - 1]), before)
    }

    /// The entries from rank `start` on, in order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let (p, off) = if start >= self.len {
            (self.order.len(), 0)
        } else {
            self.find_rank(start)
        };
        self.order[p..]
            .iter()
            .flat_map(|&c| packed::entries(self.buf(c)))
            .skip(off)
    }

    /// Every entry in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.iter_from(0)
    }

    /// One step of ZSCAN: the members of the next `count` handles from `cursor`, and the
    /// cursor to continue from (0 when done).
    pub fn scan(&self, cursor: usize, count: usize, mut f: impl FnMut(&[u8], f64)) -> usize {
        let mut x = cursor;
        let mut seen = 0;
        while x < self.handles.len() && seen < count {
            let (c, h) = self.handles[x];
            if c != FREE {
                seen += 1;
                for (m, s) in packed::entries(self.buf(c)) {
                    if self.h32(m) == h {
                        f(m, s);
                    }
                }
            }
            x += 1;
        }
        if x >= self.handles.len() {
            0
        } else {
            x
        }
    }

    /// Heap bytes held: chunk buffers, the chunk tables, handles and the index.
    pub fn heap_bytes(&self) -> usize {
        self.buf_bytes
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + 4 * (self.order.capacity()
                + self.pos.capacity()
                + self.fen.capacity()
                + self.free_chunks.capacity()
                + self.free_handles.capacity())
            + 8 * self.handles.capacity()
            + self.index.heap_bytes()
    }

    /// The packed serialization of every entry, in order.
    pub fn to_packed(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for &c in &self.order {
            out.extend_from_slice(self.buf(c));
        }
        out
    }
}

impl PartialEq for BigZset {
    fn eq(&self, o: &BigZset) -> bool {
        self.len == o.len && self.iter().eq(o.iter())
    }
}

impl std::fmt::Debug for BigZset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigZset").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;
    use std::collections::HashMap;

    fn check(z: &BigZset, model: &HashMap<Vec<u8>, f64>) -> bool {
        let mut want: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        want.sort_by(|a, b| packed::cmp((a.1, &a.0), (b.1, &b.0)));
        let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        let mut scanned = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = z.scan(cursor, 7, |m, _| {
                scanned.insert(m.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        // Every chunk's tags are its entries' tags, in order.
        let tags_right = z.order.iter().all(|&c| {
            let chunk = &z.chunks[c as usize];
            let want: Vec<u8> = packed::entries(&chunk.buf)
                .map(|(m, _)| tag(z.h32(m)))
                .collect();
            chunk.tags == want && chunk.n as usize == want.len()
        });
        let bytes: usize = z
            .chunks
            .iter()
            .map(|c| class(c.buf.capacity()) + class(c.tags.capacity()))
            .sum();
        tags_right
            && bytes == z.buf_bytes
            && got == want
            && z.len() == want.len()
            && scanned.len() == want.len()
            && want.iter().enumerate().all(|(i, (m, s))| {
                z.rank(m) == Some((i, *s))
                    && z.iter_from(i).next().map(|(m2, _)| m2.to_vec()) == Some(m.clone())
            })
            && z.count_while(|_, s| s < 0.0) == want.iter().filter(|(_, s)| *s < 0.0).count()
    }

    #[test]
    fn sequential_loads_fill_chunks_and_survive_removal() {
        let mut z = BigZset::new();
        let mut model = HashMap::new();
        for i in 0..2000u32 {
            let m = format!("member:{i}").into_bytes();
            z.set(&m, f64::from(i));
            model.insert(m, f64::from(i));
        }
        assert!(
            z.order.len() <= 2000 / CHUNK_ENTRIES + 1,
            "{}",
            z.order.len()
        );
        assert!(check(&z, &model));
        for i in (0..2000u32).step_by(3) {
            let m = format!("member:{i}").into_bytes();
            assert_eq!(z.remove(&m), Some(f64::from(i)));
            model.remove(&m);
        }
        assert!(check(&z, &model));
        let before = z.heap_bytes();
        assert!(before > 0);
        for i in 0..2000u32 {
            let m = format!("member:{i}").into_bytes();
            z.remove(&m);
        }
        assert!(z.is_empty() && z.order.is_empty());
    }

    quickcheck! {
        fn behaves_like_a_sorted_map(ops: Vec<(bool, u16, i16)>) -> bool {
            let mut z = BigZset::new();
            let mut model = HashMap::new();
            for (add, m, s) in ops {
                let m = (m % 700).to_string().into_bytes();
                let s = f64::from(s % 50);
                if add {
                    if z.set(&m, s) != model.insert(m, s) { return false; }
                } else if z.remove(&m) != model.remove(&m) {
                    return false;
                }
            }
            check(&z, &model)
        }
    }
}
