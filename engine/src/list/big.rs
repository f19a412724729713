//! The chunked form of a long list (Redis's quicklist): a deque of fixed-size chunks,
//! each holding consecutive elements in the packed form ([`super::packed`]) inside a
//! window `[start, end)` of its buffer. A push at the head writes just before `start`, a
//! push at the tail just after `end`, so both ends are O(1) without moving bytes; a pop
//! at the head advances `start`; a pop at the tail finds the chunk's last element by
//! walking its (at most [`CHUNK_BYTES`]) bytes.
//!
//! ```text
//!   VecDeque<Chunk>
//!   ┌──────────────────────────┐ ┌──────────────────────────┐
//!   │ ....[len|e][len|e][len|e]│ │[len|e][len|e]....        │
//!   └──────────────────────────┘ └──────────────────────────┘
//!        ^start             ^end   ^start        ^end
//! ```
//!
//! A chunk's buffer is one 1 KiB allocation (an exact allocator size class), so a full
//! chunk wastes nothing and a chunk costs 24 bytes of bookkeeping: about 0.3 bytes per
//! element for short elements. An element longer than a chunk gets a chunk of its own.

use std::collections::VecDeque;

use super::packed;
use crate::entry::alloc_class;

/// The size of a chunk's buffer.
pub const CHUNK_BYTES: usize = 1024;

#[derive(Clone)]
struct Chunk {
    buf: Box<[u8]>,
    start: u32,
    end: u32,
    count: u32,
}

impl Chunk {
    /// An empty chunk able to take at least `need` bytes, its window at the tail end
    /// (`at_head`: for pushes at the head, the window sits at the buffer's end).
    fn new(need: usize, at_head: bool) -> Chunk {
        let size = need.max(CHUNK_BYTES);
        let at = if at_head { size as u32 } else { 0 };
        Chunk {
            buf: vec![0u8; size].into_boxed_slice(),
            start: at,
            end: at,
            count: 0,
        }
    }

    fn live(&self) -> &[u8] {
        &self.buf[self.start as usize..self.end as usize]
    }

    fn push_back(&mut self, e: &[u8]) -> bool {
        let n = packed::elem_len(e);
        let end = self.end as usize;
        if end + n > self.buf.len() {
            return false;
        }
        let mut v = Vec::with_capacity(n);
        packed::push(&mut v, e);
        self.buf[end..end + n].copy_from_slice(&v);
        self.end += n as u32;
        self.count += 1;
        true
    }

    fn push_front(&mut self, e: &[u8]) -> bool {
        let n = packed::elem_len(e);
        let start = self.start as usize;
        if start < n {
            return false;
        }
        let mut v = Vec::with_capacity(n);
        packed::push(&mut v, e);
        self.buf[start - n..start].copy_from_slice(&v);
        self.start -= n as u32;
        self.count += 1;
        true
    }

    fn heap_bytes(&self) -> usize {
        alloc_class(self.buf.len())
    }
}

/// A change to one chunk's elements (see [`BigList::rebuild_chunk`]); positions are
/// within the chunk.
#[derive(Clone, Copy)]
enum Edit<'a> {
    /// The element at this position replaced.
    Set(usize, &'a [u8]),
    /// A new element before the one at this position.
    Insert(usize, &'a [u8]),
    /// The elements at these positions (ascending) removed.
    Remove(&'a [usize]),
}

#[derive(Clone, Default)]
pub struct BigList {
    chunks: VecDeque<Chunk>,
    len: usize,
    /// The packed size of all elements (what [`BigList::to_packed`] would return).
    bytes: usize,
    /// The chunks' buffers in allocator size classes (kept, as memory accounting asks
    /// for it on every write).
    chunk_bytes: usize,
}

impl PartialEq for BigList {
    fn eq(&self, other: &BigList) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for BigList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BigList({} elements)", self.len)
    }
}

impl BigList {
    pub fn new() -> BigList {
        BigList::default()
    }

    pub fn from_elems<'a>(elems: impl IntoIterator<Item = &'a [u8]>) -> BigList {
        let mut l = BigList::new();
        for e in elems {
            l.push_back(e);
        }
        l
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push_back(&mut self, e: &[u8]) {
        if !self.chunks.back_mut().is_some_and(|c| c.push_back(e)) {
            let mut c = Chunk::new(packed::elem_len(e), false);
            c.push_back(e);
            self.chunk_bytes += c.heap_bytes();
            self.chunks.push_back(c);
        }
        self.len += 1;
        self.bytes += packed::elem_len(e);
    }

    pub fn push_front(&mut self, e: &[u8]) {
        if !self.chunks.front_mut().is_some_and(|c| c.push_front(e)) {
            let mut c = Chunk::new(packed::elem_len(e), true);
            c.push_front(e);
            self.chunk_bytes += c.heap_bytes();
            self.chunks.push_front(c);
        }
        self.len += 1;
        self.bytes += packed::elem_len(e);
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let c = self.chunks.front_mut()?;
        let mut at = c.start as usize;
        let e = packed::element(&c.buf[..c.end as usize], &mut at)
            .expect("chunks hold well-formed elements")
            .to_vec();
        c.start = at as u32;
        c.count -= 1;
        if c.count == 0 {
            self.chunk_bytes -= c.heap_bytes();
            self.chunks.pop_front();
        }
        self.len -= 1;
        self.bytes -= packed::elem_len(&e);
        Some(e)
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let c = self.chunks.back_mut()?;
        let last = c.start as usize + packed::last_offset(c.live());
        let mut at = last;
        let e = packed::element(&c.buf[..c.end as usize], &mut at)
            .expect("chunks hold well-formed elements")
            .to_vec();
        c.end = last as u32;
        c.count -= 1;
        if c.count == 0 {
            self.chunk_bytes -= c.heap_bytes();
            self.chunks.pop_back();
        }
        self.len -= 1;
        self.bytes -= packed::elem_len(&e);
        Some(e)
    }

    /// The element at `index` from the head: skips whole chunks by their counts.
    pub fn get(&self, mut index: usize) -> Option<&[u8]> {
        if index >= self.len {
            return None;
        }
        if index >= self.len / 2 {
            // Nearer the tail: count chunks from the back.
            let mut from_end = self.len - index;
            for c in self.chunks.iter().rev() {
                if from_end <= c.count as usize {
                    return packed::elems(c.live()).nth(c.count as usize - from_end);
                }
                from_end -= c.count as usize;
            }
            return None;
        }
        for c in &self.chunks {
            if index < c.count as usize {
                return packed::elems(c.live()).nth(index);
            }
            index -= c.count as usize;
        }
        None
    }

    /// Replaces the element at `index` (LSET): only its chunk is rebuilt (into two when
    /// the new element no longer fits one). False when `index` is out of range.
    pub fn set(&mut self, index: usize, value: &[u8]) -> bool {
        match self.locate(index) {
            Some((ci, at)) => {
                self.rebuild_chunk(ci, Edit::Set(at, value));
                true
            }
            None => false,
        }
    }

    /// Inserts `value` so that it stands at `index` (at most the length: the tail), for
    /// LINSERT: only the chunk it lands in is rebuilt. False when `index` is past the end.
    pub fn insert(&mut self, index: usize, value: &[u8]) -> bool {
        if index == self.len {
            self.push_back(value);
            return true;
        }
        match self.locate(index) {
            Some((ci, at)) => {
                self.rebuild_chunk(ci, Edit::Insert(at, value));
                true
            }
            None => false,
        }
    }

    /// Removes the elements at `indexes` (positions before the removal, ascending; those
    /// out of range or out of order are ignored), for LREM: only the chunks that held
    /// them are rebuilt, and a chunk left empty goes. Returns how many went.
    pub fn remove_indexes(&mut self, indexes: &[u64]) -> usize {
        // Per chunk, the positions within it, found in one walk from the head.
        let mut plan: Vec<(usize, Vec<usize>)> = Vec::new();
        let (mut base, mut ci, mut prev) = (0u64, 0usize, None::<u64>);
        for &i in indexes {
            if prev.is_some_and(|p| i <= p) {
                continue;
            }
            while ci < self.chunks.len() && i >= base + u64::from(self.chunks[ci].count) {
                base += u64::from(self.chunks[ci].count);
                ci += 1;
            }
            if ci == self.chunks.len() {
                break;
            }
            prev = Some(i);
            let at = (i - base) as usize;
            match plan.last_mut() {
                Some((c, v)) if *c == ci => v.push(at),
                _ => plan.push((ci, vec![at])),
            }
        }
        let before = self.len;
        // From the tail, so that a chunk's removal does not move those still to do.
        for (ci, at) in plan.iter().rev() {
            self.rebuild_chunk(*ci, Edit::Remove(at));
        }
        before - self.len
    }

    /// The chunk holding element `index`, and its position in that chunk.
    fn locate(&self, mut index: usize) -> Option<(usize, usize)> {
        for (ci, c) in self.chunks.iter().enumerate() {
            if index < c.count as usize {
                return Some((ci, index));
            }
            index -= c.count as usize;
        }
        None
    }

    /// Replaces chunk `ci` by its elements with `edit` made, in as many chunks as they
    /// take (none when no element is left), keeping the counts.
    fn rebuild_chunk(&mut self, ci: usize, edit: Edit<'_>) {
        let Some(old) = self.chunks.remove(ci) else {
            return;
        };
        let mut rebuilt = BigList::new();
        let mut gone = 0;
        for (i, e) in packed::elems(old.live()).enumerate() {
            match edit {
                Edit::Set(at, v) if at == i => rebuilt.push_back(v),
                Edit::Insert(at, v) if at == i => {
                    rebuilt.push_back(v);
                    rebuilt.push_back(e);
                }
                Edit::Remove(ats) if ats.get(gone) == Some(&i) => gone += 1,
                _ => rebuilt.push_back(e),
            }
        }
        self.len = self.len - old.count as usize + rebuilt.len;
        self.bytes = self.bytes - old.live().len() + rebuilt.bytes;
        self.chunk_bytes = self.chunk_bytes - old.heap_bytes() + rebuilt.chunk_bytes;
        for (k, c) in rebuilt.chunks.into_iter().enumerate() {
            self.chunks.insert(ci + k, c);
        }
    }

    /// Every element, head first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks.iter().flat_map(|c| packed::elems(c.live()))
    }

    /// The elements from `index` on, head first, skipping whole chunks to get there.
    pub fn iter_from(&self, mut index: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let mut first = 0;
        for c in &self.chunks {
            if index < c.count as usize {
                break;
            }
            index -= c.count as usize;
            first += 1;
        }
        self.chunks
            .range(first..)
            .flat_map(|c| packed::elems(c.live()))
            .skip(index)
    }

    /// Every element, tail first.
    pub fn iter_rev(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks.iter().rev().flat_map(|c| {
            let v: Vec<&[u8]> = packed::elems(c.live()).collect();
            v.into_iter().rev()
        })
    }

    /// The packed form of the whole list.
    pub fn to_packed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes);
        for c in &self.chunks {
            out.extend_from_slice(c.live());
        }
        out
    }

    /// The bytes of the live elements in packed form.
    pub fn packed_len(&self) -> usize {
        self.bytes
    }

    /// Heap bytes besides the `Big` itself: chunk buffers and the deque's slots.
    pub fn heap_bytes(&self) -> usize {
        let slots = self.chunks.capacity() * std::mem::size_of::<Chunk>();
        alloc_class(slots.max(1)) + self.chunk_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;
    use std::collections::VecDeque;

    quickcheck! {
        fn behaves_as_a_deque(ops: Vec<(u8, Vec<u8>)>) -> bool {
            let mut l = BigList::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for (op, mut v) in ops {
                // Some elements longer than a chunk.
                if op % 13 == 0 {
                    v = vec![op; CHUNK_BYTES + 7];
                }
                match op % 5 {
                    0 | 1 => { l.push_back(&v); m.push_back(v); }
                    2 => { l.push_front(&v); m.push_front(v); }
                    3 => if l.pop_front() != m.pop_front() { return false; },
                    _ if op % 7 == 0 && !m.is_empty() => {
                        let i = v.len() % m.len();
                        l.set(i, &v);
                        m[i] = v;
                    }
                    _ if op % 11 == 0 => {
                        let i = v.len() % (m.len() + 1);
                        if !l.insert(i, &v) { return false; }
                        m.insert(i, v);
                    }
                    _ if op % 3 == 0 => {
                        // Every element whose first byte is `op`'s parity, and one past
                        // the end that must be ignored.
                        let mut at: Vec<u64> = (0..m.len())
                            .filter(|&i| m[i].first().is_some_and(|b| b % 2 == op % 2))
                            .map(|i| i as u64)
                            .collect();
                        at.push(m.len() as u64 + 3);
                        let want = at.len() - 1;
                        if l.remove_indexes(&at) != want { return false; }
                        for &i in at[..want].iter().rev() {
                            m.remove(i as usize);
                        }
                    }
                    _ => if l.pop_back() != m.pop_back() { return false; },
                }
                if l.len() != m.len()
                    || l.packed_len() != m.iter().map(|e| packed::elem_len(e)).sum::<usize>()
                    || l.chunk_bytes != l.chunks.iter().map(Chunk::heap_bytes).sum::<usize>() {
                    return false;
                }
            }
            let all: Vec<&[u8]> = l.iter().collect();
            let rev: Vec<&[u8]> = l.iter_rev().collect();
            let from: Vec<&[u8]> = l.iter_from(m.len() / 3).collect();
            all == m.iter().map(|e| &e[..]).collect::<Vec<_>>()
                && rev == m.iter().rev().map(|e| &e[..]).collect::<Vec<_>>()
                && from == m.iter().skip(m.len() / 3).map(|e| &e[..]).collect::<Vec<_>>()
                && (0..m.len()).all(|i| l.get(i) == Some(&m[i][..]))
                && l.get(m.len()).is_none()
                && BigList::from_elems(packed::elems(&l.to_packed())) == l
        }
    }

    #[test]
    fn many_short_elements_fill_whole_chunks() {
        let mut l = BigList::new();
        for i in 0..100_000u32 {
            l.push_back(format!("value:{i}").as_bytes());
        }
        let per = l.heap_bytes() as f64 / l.len() as f64;
        assert!(per < 13.0, "{per} bytes per element");
        assert_eq!(l.get(99_999), Some(&b"value:99999"[..]));
        for _ in 0..100_000 {
            l.pop_front();
        }
        assert!(l.is_empty() && l.chunks.is_empty());
    }
}
