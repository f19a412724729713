//! List values: a short list lives packed in its entry's value bytes ([`packed`], one
//! node's worth of Redis's listpack), a long one in a deque of chunks the entry owns
//! ([`big`], Redis's quicklist).
//!
//! A list is packed while it fits one node under `list-max-listpack-size` (as in Redis:
//! a positive value is a count of elements, a negative one -1..-5 a node size of 4..64
//! KiB; default -2, 8 KiB) and one chunk (1 KiB, see [`stays_packed`]). Past that it converts to the chunked form, and back when it
//! shrinks to half of that, as Redis 7.2 does. OBJECT ENCODING answers "quicklist" for
//! both forms, which is what Redis 7.0 answers for every list.
//!
//! Readers get a [`ListRef`] from [`Entry::list`](crate::Entry::list); only the shard's
//! write path changes a list, and it reports pushes, pops and rewrites as effects.

pub mod big;
pub mod packed;

use std::sync::atomic::{AtomicI64, Ordering};

pub use big::BigList;

/// Redis's default `list-max-listpack-size`: nodes of at most 8 KiB.
pub const DEFAULT_MAX_SIZE: i64 = -2;

/// Redis's cap on a node's bytes when the limit is a count (`SIZE_SAFETY_LIMIT`).
const SAFETY_BYTES: usize = 8192;

static MAX_SIZE: AtomicI64 = AtomicI64::new(DEFAULT_MAX_SIZE);

/// CONFIG GET list-max-listpack-size.
pub fn max_size() -> i64 {
    MAX_SIZE.load(Ordering::Relaxed)
}

/// CONFIG SET list-max-listpack-size: lists written from now on follow it.
pub fn set_max_size(n: i64) {
    MAX_SIZE.store(n, Ordering::Relaxed);
}

/// Whether a list of `count` elements taking `bytes` in packed form fits one node under
/// the limit `size` (a `list-max-listpack-size` value).
pub fn fits(size: i64, count: usize, bytes: usize) -> bool {
    if size >= 0 {
        count <= (size as usize).max(1) && bytes <= SAFETY_BYTES
    } else {
        let shift = (size.unsigned_abs().min(5) - 1) as u32;
        bytes <= 4096 << shift
    }
}

/// Whether a list should be packed under the limit in force: `count` elements of
/// `bytes` fit; a chunked list returns to the packed form only at half the limit, so
/// that a list at the threshold does not convert back and forth.
///
/// Past one chunk of the chunked form ([`big::CHUNK_BYTES`]) a list is chunked whatever
/// the limit: a packed list is copied whole by every push and walked by every pop from
/// its tail, so at 8 KiB an LPUSH/RPOP load spent 1.39x Redis's CPU per op
/// (benches/RESULTS.md, session 8). OBJECT ENCODING says "quicklist" for both forms, as
/// Redis 7.0 does, so where the switch happens is not visible to a client.
pub fn stays_packed(count: usize, bytes: usize, was_big: bool) -> bool {
    let size = max_size();
    if was_big {
        bytes.saturating_mul(2) <= big::CHUNK_BYTES
            && fits(size, count.saturating_mul(2), bytes.saturating_mul(2))
    } else {
        bytes <= big::CHUNK_BYTES && fits(size, count, bytes)
    }
}

/// A list as stored, for reading.
#[derive(Clone, Copy)]
pub enum ListRef<'a> {
    Packed(&'a [u8]),
    Big(&'a BigList),
}

impl<'a> ListRef<'a> {
    pub fn len(&self) -> usize {
        match self {
            ListRef::Packed(b) => packed::len(b),
            ListRef::Big(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            ListRef::Packed(b) => b.is_empty(),
            ListRef::Big(l) => l.is_empty(),
        }
    }

    /// The element at `index` from the head.
    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        match *self {
            ListRef::Packed(b) => packed::elems(b).nth(index),
            ListRef::Big(l) => l.get(index),
        }
    }

    /// Every element, head first.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        match *self {
            ListRef::Packed(b) => Box::new(packed::elems(b)),
            ListRef::Big(l) => Box::new(l.iter()),
        }
    }

    /// The elements from `index` on, head first.
    pub fn iter_from(&self, index: usize) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        match *self {
            ListRef::Packed(b) => Box::new(packed::elems(b).skip(index)),
            ListRef::Big(l) => Box::new(l.iter_from(index)),
        }
    }

    /// Every element, tail first.
    pub fn iter_rev(&self) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        match *self {
            ListRef::Packed(b) => {
                let v: Vec<&'a [u8]> = packed::elems(b).collect();
                Box::new(v.into_iter().rev())
            }
            ListRef::Big(l) => Box::new(l.iter_rev()),
        }
    }

    /// The packed form of the whole list.
    pub fn to_packed(&self) -> Vec<u8> {
        match self {
            ListRef::Packed(b) => b.to_vec(),
            ListRef::Big(l) => l.to_packed(),
        }
    }

    /// OBJECT ENCODING's name: Redis 7.0 keeps every list in a quicklist.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_limits_follow_redis() {
        assert!(fits(-2, 1000, 8192) && !fits(-2, 1, 8193));
        assert!(fits(-1, 1, 4096) && !fits(-1, 1, 4097));
        assert!(fits(-5, 1, 65536) && fits(-9, 1, 65536) && !fits(-5, 1, 65537));
        assert!(fits(128, 128, 100) && !fits(128, 129, 100) && !fits(128, 2, 9000));
        assert!(fits(0, 1, 10) && !fits(0, 2, 10));
    }
}
