//! A shard's journal: its effects as encoded records, numbered by byte offset, with the
//! recent past kept in a bounded backlog so that a replica can resume from where it was.
//!
//! The offset of a record is the number of journal bytes the shard produced before it,
//! since the journal began. A replica that applied everything up to offset `o` asks for
//! `o`; the backlog serves it if it still holds `o`, else the replica needs a full sync.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use baton_engine::shard::{DelCause, Effect, EffectSink};
use baton_engine::Entry;

use crate::record::{encode_del, encode_effect, encode_put_entry};

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
    /// Offsets live flows still have to ship, by flow: the backlog keeps them past its
    /// capacity, up to `pin_limit` more bytes (a replica's output buffer limit), so that
    /// a replica that is slow for a moment is not dropped to a full sync.
    pins: Vec<(u64, u64)>,
    pin_limit: usize,
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
            pins: Vec::new(),
            pin_limit: 0,
        }
    }

    /// How many bytes past the capacity the backlog may keep for pinned flows (0: none).
    pub fn set_pin_limit(&mut self, limit: usize) {
        self.pin_limit = limit;
    }

    /// Changes the capacity (`repl-backlog-size`); a smaller one drops old chunks now.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.trim();
    }

    /// Flow `flow` still has to ship everything from `offset`: keep it (within the pin
    /// limit). Pinning again moves the flow's pin.
    pub fn pin(&mut self, flow: u64, offset: u64) {
        match self.pins.iter_mut().find(|(f, _)| *f == flow) {
            Some(p) => p.1 = offset,
            None => self.pins.push((flow, offset)),
        }
        self.trim();
    }

    pub fn unpin(&mut self, flow: u64) {
        self.pins.retain(|(f, _)| *f != flow);
        self.trim();
    }

    /// Bytes held beyond the capacity for pinned flows.
    pub fn pinned_excess(&self) -> usize {
        self.held.saturating_sub(self.capacity)
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

    /// The bytes of the past it keeps at most, beyond the newest chunk.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops the oldest chunks past the capacity, except those a pinned flow still needs
    /// while the excess stays within the pin limit.
    fn trim(&mut self) {
        let floor = self.pins.iter().map(|(_, o)| *o).min();
        while self.chunks.len() > 1 && self.held - self.chunks[0].1.len() >= self.capacity {
            let (at, first) = (&self.chunks[0].0, &self.chunks[0].1);
            let needed = floor.is_some_and(|f| f < at + first.len() as u64);
            if needed && self.held - first.len() < self.capacity + self.pin_limit {
                break;
            }
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
        let (capacity, pin_limit) = (b.capacity, b.pin_limit);
        *b = Backlog::new(capacity, offset);
        b.pin_limit = pin_limit;
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
        self.emit_ref(&effect);
    }

    fn emit_ref(&mut self, effect: &Effect) {
        self.backlog().append(|out| encode_effect(effect, out));
    }

    // A write's two most common effects are encoded from the entry (or key) in place:
    // building the effect first would copy the key and value into fresh allocations
    // only to copy them again into the backlog and free them.
    fn emit_put(&mut self, e: &Entry) {
        self.backlog().append(|out| encode_put_entry(e, out));
    }

    fn emit_del(&mut self, key: &[u8], cause: DelCause) {
        self.backlog().append(|out| encode_del(key, cause, out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_flow_keeps_its_records_up_to_the_pin_limit() {
        let mut b = Backlog::new(CHUNK, 0);
        b.set_pin_limit(4 * CHUNK);
        b.pin(1, 0);
        for _ in 0..8 {
            record(&mut b, CHUNK / 2);
        }
        assert_eq!(b.start(), 0, "pinned and within the limit: kept");
        assert!(b.since(0).is_ok());
        for _ in 0..16 {
            record(&mut b, CHUNK / 2);
        }
        assert!(b.start() > 0, "past the limit the pin gives way");
        assert!(b.held <= CHUNK + 4 * CHUNK + CHUNK, "bounded: {}", b.held);
        b.pin(1, b.end());
        record(&mut b, 10);
        assert!(
            b.held <= 2 * CHUNK + 10,
            "a pin at the end keeps nothing extra"
        );
        b.unpin(1);
        b.set_capacity(0);
        assert_eq!(b.chunks.len(), 1, "the newest chunk always stays");
    }

    /// Feeds a journal through the in-place path and keeps the effects the default path
    /// builds for the same calls, to compare their encodings.
    struct Tee(Journal, baton_engine::shard::Collector);

    impl EffectSink for Tee {
        fn emit(&mut self, effect: Effect) {
            self.1.emit(effect.clone());
            self.0.emit(effect);
        }
        fn emit_put(&mut self, e: &Entry) {
            self.1.emit(Effect::put(e));
            self.0.emit_put(e);
        }
        fn emit_del(&mut self, key: &[u8], cause: DelCause) {
            self.1.emit(Effect::Del {
                key: bytes::Bytes::copy_from_slice(key),
                cause,
            });
            self.0.emit_del(key, cause);
        }
    }

    #[test]
    fn entries_encoded_in_place_match_their_effects_byte_for_byte() {
        let journal = Journal::new(1 << 20, 0);
        let collector = baton_engine::shard::Collector::new();
        let mut shard = baton_engine::Shard::new(3);
        shard.set_effect_sink(Box::new(Tee(journal.clone(), collector.clone())));
        shard.put(b"plain", b"value", baton_engine::NO_EXPIRY, 0);
        shard.put(b"timed", &[0xff; 300], 1_000, 0xdead_beef);
        shard.update(b"plain", 5, |v| v.extend_from_slice(b"+more"));
        shard.put(b"", b"", baton_engine::NO_EXPIRY, 1);
        shard.hash_set(b"h", &[(b"f".as_slice(), b"v".as_slice())], 5);
        shard.put_hash(b"h2", &[], false, 2_000, 9);
        shard.list_push(b"l", true, &[b"x".as_slice()], 5);
        shard.delete(b"plain", 5);
        assert!(shard.lookup(b"timed", 1_000).is_none(), "expired");
        shard.flush();
        let effects = collector.take();
        assert!(effects.len() >= 9, "{effects:?}");
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Del {
                cause: DelCause::Expired,
                ..
            }
        )));
        let mut want = Vec::new();
        for e in &effects {
            encode_effect(e, &mut want);
        }
        assert_eq!(journal.backlog().since(0).unwrap().concat(), want);

        // A replica's shard passes on what it applies, encoded from the effect in place.
        let chained = Journal::new(1 << 20, 0);
        let mut replica = baton_engine::Shard::new(0);
        replica.set_effect_sink(Box::new(chained.clone()));
        for e in &effects {
            replica.apply(e);
        }
        assert_eq!(chained.backlog().since(0).unwrap().concat(), want);
    }

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
