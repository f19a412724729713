//! Hash values: a small hash lives packed in its entry's value bytes ([`packed`], Redis's
//! `listpack`), a large one in a table the entry owns ([`big`], Redis's `hashtable`).
//!
//! A hash is packed while it has at most `hash-max-listpack-entries` fields and every
//! field and value is at most `hash-max-listpack-value` bytes; past either it converts to
//! the table form and stays there, as in Redis. The thresholds are process-wide settings
//! ([`limits`]), changed by CONFIG SET.
//!
//! Readers get a [`HashRef`] from [`Entry::hash`](crate::Entry::hash); only the shard's
//! write path changes a hash ([`Shard::hash_set`](crate::Shard::hash_set) and
//! [`Shard::hash_del`](crate::Shard::hash_del)), which reports the fields it set or
//! removed as effects.

pub mod big;
pub mod packed;

use std::sync::atomic::{AtomicUsize, Ordering};

pub use big::BigHash;

/// Redis's default `hash-max-listpack-entries`.
pub const DEFAULT_MAX_ENTRIES: usize = 128;
/// Redis's default `hash-max-listpack-value`.
pub const DEFAULT_MAX_VALUE: usize = 64;

static MAX_ENTRIES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_ENTRIES);
static MAX_VALUE: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_VALUE);

/// When a hash stops being packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`: the most fields a packed hash holds.
    pub max_entries: usize,
    /// `hash-max-listpack-value`: the longest field or value a packed hash holds.
    pub max_value: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_value: DEFAULT_MAX_VALUE,
        }
    }
}

impl Limits {
    /// Whether a pair this long may stay packed.
    pub fn fits(&self, field: &[u8], value: &[u8]) -> bool {
        field.len() <= self.max_value && value.len() <= self.max_value
    }
}

/// The thresholds in force (CONFIG GET hash-max-listpack-*).
pub fn limits() -> Limits {
    Limits {
        max_entries: MAX_ENTRIES.load(Ordering::Relaxed),
        max_value: MAX_VALUE.load(Ordering::Relaxed),
    }
}

/// CONFIG SET hash-max-listpack-entries: hashes written from now on follow it.
pub fn set_max_entries(n: usize) {
    MAX_ENTRIES.store(n, Ordering::Relaxed);
}

/// CONFIG SET hash-max-listpack-value.
pub fn set_max_value(n: usize) {
    MAX_VALUE.store(n, Ordering::Relaxed);
}

/// A hash as stored, for reading.
#[derive(Clone, Copy)]
pub enum HashRef<'a> {
    Packed(&'a [u8]),
    Table(&'a BigHash),
}

impl<'a> HashRef<'a> {
    pub fn len(&self) -> usize {
        match self {
            HashRef::Packed(b) => packed::len(b),
            HashRef::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&'a [u8]> {
        match *self {
            HashRef::Packed(b) => packed::get(b, field),
            HashRef::Table(t) => t.get(field),
        }
    }

    /// Every pair, packed ones in insertion order, a table's in position order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a> {
        match *self {
            HashRef::Packed(b) => Box::new(packed::pairs(b)),
            HashRef::Table(t) => Box::new(t.iter()),
        }
    }

    /// OBJECT ENCODING's name for this form.
    pub fn encoding(&self) -> &'static str {
        match self {
            HashRef::Packed(_) => "listpack",
            HashRef::Table(_) => "hashtable",
        }
    }
}
