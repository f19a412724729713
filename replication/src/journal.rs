//! A shard's journal: its effects as encoded records, numbered by byte offset, with the
//! recent past kept in a bounded backlog so that a replica can resume from where it was.
//!
//! The offset of a record is the number of journal bytes the shard produced before it,
//! since the journal began. A replica that applied everything up to offset `o` asks for
//! `o`; the backlog serves it if it still holds `o`, else the replica needs a full sync.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use baton_engine::shard::{Effect, EffectSink};

use crate::record::encode_effect;

/// Records go into chunks of about this many bytes; the backlog drops whole chunks, so
/// what it holds always starts at a record.
const CHUNK: usize = 16 * 1024;

/// Redis's default `repl-backlog-size`: the total over all shards.
pub const DEFAULT_BACKLOG_SIZE: usize = 1024 * 1024;

/// The recent past of a journal.
#[derive(Debug)]
pub struct Backlog {
    /// Whole records, oldest first, in chunks that each start at the given offset.
    chunks: VecDeque<(u64, Vec<u8>)>,
    /// The offset one past the newest byte: the next record's offset.
    end: u64,
    /// Bytes held at most, beyond the newest chunk (which is always kept).
    capacity: usize,
    held: usize,
}

/// Why a backlog cannot serve an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// It no longer holds the offset: the records before `start` are gone.
    Gone { start: u64 },
    /// The offset is past everything written (not from this journal).
    Ahead { end: u64 },
}

impl Backlog {
    /// An empty backlog whose next record has offset `start`, keeping about `capacity`
    /// bytes of the past.
    pub fn new(capacity: usize, start: u64) -> Backlog {
        Backlog {
            chunks: VecDeque::new(),
            end: start,
            capacity,
            held: 0,
        }
    }

    /// The offset the next record gets.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The oldest offset still held (equal to [`Backlog::end`] when empty).
    pub fn start(&self) -> u64 {
        self.chunks.front().map_or(self.end, |(at, _)| *at)
    }

    /// Appends one record, written by `encode`, and drops the oldest chunks past the
    /// capacity. Returns the record's offset.
    pub fn append(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let at = self.end;
        if self.chunks.back().is_none_or(|(_, c)| c.len() >= CHUNK) {
            self.chunks.push_back((at, Vec::with_capacity(CHUNK)));
        }
        let chunk = &mut self.chunks.back_mut().expect("a chunk was just ensured").1;
        let before = chunk.len();
        encode(chunk);
        let len = chunk.len() - before;
        self.end += len as u64;
        self.held += len;
        self.trim();
        at
    }

    /// Changes how many bytes of the past it keeps (`repl-backlog-size` set at run time):
    /// a smaller capacity drops the oldest chunks at once, a larger one keeps more from
    /// now on.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.trim();
    }

    /// The bytes of the past it keeps at most, beyond the newest chunk.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn trim(&mut self) {
        while self.chunks.len() > 1 && self.held - self.chunks[0].1.len() >= self.capacity {
            let (_, old) = self.chunks.pop_front().expect("more than one chunk");
            self.held -= old.len();
        }
    }

    /// Every byte from `offset` to the end, in order (several slices). `offset` must be
    /// the start of a record, as a replica's applied offset always is.
    pub fn since(&self, offset: u64) -> Result<Vec<&[u8]>, Resume> {
        if offset > self.end {
            return Err(Resume::Ahead { end: self.end });
        }
        if offset < self.start() {
            return Err(Resume::Gone {
                start: self.start(),
            });
        }
        let first = self
            .chunks
            .partition_point(|(at, c)| at + c.len() as u64 <= offset);
        Ok(self
            .chunks
            .iter()
            .skip(first)
            .map(|(at, c)| &c[offset.saturating_sub(*at) as usize..])
            .filter(|s| !s.is_empty())
            .collect())
    }
}

/// A shard's journal: the [`EffectSink`] its write path reports to, which encodes each
/// effect into the backlog. Clones share the backlog; the flows that feed replicas read
/// it through [`Journal::backlog`].
#[derive(Debug, Clone)]
pub struct Journal(Arc<Mutex<Backlog>>);

impl Journal {
    pub fn new(capacity: usize, start: u64) -> Journal {
        Journal(Arc::new(Mutex::new(Backlog::new(capacity, start))))
    }

    /// Starts the journal again at `offset`, forgetting its past: a replica's journal
    /// when a full sync of the primary shard it mirrors begins at that offset.
    pub fn restart(&self, offset: u64) {
        let mut b = self.backlog();
        let capacity = b.capacity;
        *b = Backlog::new(capacity, offset);
    }

    /// Changes the backlog's capacity (see [`Backlog::set_capacity`]).
    pub fn set_capacity(&self, capacity: usize) {
        self.backlog().set_capacity(capacity);
    }

    /// The backlog, locked. Only the shard's own core ever touches it, so the lock is
    /// never contended; it is there because a shard's sink must be `Send`.
    pub fn backlog(&self) -> MutexGuard<'_, Backlog> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EffectSink for Journal {
    fn emit(&mut self, effect: Effect) {
        self.backlog().append(|out| encode_effect(&effect, out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(b: &mut Backlog, len: usize) -> u64 {
        b.append(|out| out.extend_from_slice(&vec![7u8; len]))
    }

    #[test]
    fn offsets_count_bytes_and_old_chunks_go_whole() {
        let mut b = Backlog::new(2 * CHUNK, 100);
        assert_eq!((b.start(), b.end()), (100, 100));
        assert_eq!(b.since(100), Ok(vec![]));
        assert_eq!(record(&mut b, 10), 100);
        assert_eq!(record(&mut b, 5), 110);
        assert_eq!(b.since(110).unwrap().concat().len(), 5);
        assert_eq!(b.since(116), Err(Resume::Ahead { end: 115 }));
        let mut last = 0;
        for _ in 0..10 {
            last = record(&mut b, CHUNK / 2 + 1);
        }
        assert!(b.start() > 100, "the oldest chunks were dropped");
        assert!(b.held <= 3 * CHUNK + CHUNK, "bounded: {}", b.held);
        assert_eq!(b.since(100), Err(Resume::Gone { start: b.start() }));
        let tail = b.since(last).unwrap().concat();
        assert_eq!(tail.len(), CHUNK / 2 + 1);
        let all = b.since(b.start()).unwrap().concat();
        assert_eq!(all.len() as u64, b.end() - b.start());
    }

    #[test]
    fn capacity_changes_at_run_time() {
        let mut b = Backlog::new(8 * CHUNK, 0);
        for _ in 0..8 {
            record(&mut b, CHUNK);
        }
        assert_eq!(b.start(), 0, "everything fits");
        b.set_capacity(2 * CHUNK);
        assert_eq!(b.capacity(), 2 * CHUNK);
        assert!(b.start() > 0, "shrinking drops the oldest chunks at once");
        assert!(
            b.held <= 3 * CHUNK,
            "bounded by the new capacity: {}",
            b.held
        );
        let all = b.since(b.start()).unwrap().concat();
        assert_eq!(all.len() as u64, b.end() - b.start());
        let start = b.start();
        b.set_capacity(16 * CHUNK);
        assert_eq!(b.start(), start, "growing keeps what is held");
        for _ in 0..8 {
            record(&mut b, CHUNK);
        }
        assert_eq!(b.start(), start, "and keeps more from now on");

        let j = Journal::new(8 * CHUNK, 0);
        j.set_capacity(CHUNK);
        assert_eq!(j.backlog().capacity(), CHUNK);
    }
}
