//! Set values in three forms, as Redis 7.0 keeps them:
//!
//! - [`intset`]: every member an integer (in Redis's canonical form) and at most
//!   `set-max-intset-entries` of them: sorted i64s in the entry's value bytes. OBJECT
//!   ENCODING says "intset".
//! - [`packed`]: a small set of short strings (at most [`MAX_PACKED_ENTRIES`] members of
//!   at most [`MAX_PACKED_VALUE`] bytes) in the entry's value bytes, like the listpack
//!   sets of Redis 7.2. Redis 7.0 has no such encoding and reports "hashtable" for it, so
//!   OBJECT ENCODING says "hashtable" here too; the form only saves memory.
//! - [`big`]: a table the entry owns, past either limit. "hashtable".
//!
//! A set only moves towards the table: an intset that gets a non-integer member or too
//! many becomes packed or a table, a packed set that grows becomes a table, and none goes
//! back, as in Redis (where a hashtable set never becomes an intset again).
//!
//! Readers get a [`SetRef`] from [`Entry::set`](crate::Entry::set); only the shard's
//! write path changes a set (`Shard::set_add`, `Shard::set_rem`, `Shard::put_set`),
//! which reports the members it added or removed as effects.

pub mod big;
pub mod intset;
pub mod packed;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use big::BigSet;

/// Redis's default `set-max-intset-entries`.
pub const DEFAULT_MAX_INTSET_ENTRIES: usize = 512;
/// The most members a packed set holds (Redis 7.2's `set-max-listpack-entries` default).
pub const MAX_PACKED_ENTRIES: usize = 128;
/// The longest member a packed set holds (Redis 7.2's `set-max-listpack-value` default).
pub const MAX_PACKED_VALUE: usize = 64;

static MAX_INTSET: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_INTSET_ENTRIES);

/// CONFIG GET set-max-intset-entries.
pub fn max_intset_entries() -> usize {
    MAX_INTSET.load(Ordering::Relaxed)
}

/// CONFIG SET set-max-intset-entries: sets written from now on follow it.
pub fn set_max_intset_entries(n: usize) {
    MAX_INTSET.store(n, Ordering::Relaxed);
}

/// The member as an intset holds it: Redis's `string2ll` form only ("007", "+1" and
/// "-0" are strings).
pub fn as_int(m: &[u8]) -> Option<i64> {
    intset::parse(m)
}

/// Which form a set is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Ints,
    Packed,
    Table,
}

impl Encoding {
    /// OBJECT ENCODING's name (Redis 7.0 has only these two).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Ints => "intset",
            Encoding::Packed | Encoding::Table => "hashtable",
        }
    }

    /// The form a new set of `members` (distinct) takes under the limits in force.
    pub fn for_members<'a>(members: impl Iterator<Item = &'a [u8]> + Clone) -> Encoding {
        let n = members.clone().count();
        if n <= max_intset_entries() && members.clone().all(|m| as_int(m).is_some()) {
            Encoding::Ints
        } else if n <= MAX_PACKED_ENTRIES && members.clone().all(|m| m.len() <= MAX_PACKED_VALUE) {
            Encoding::Packed
        } else {
            Encoding::Table
        }
    }
}

/// A set as stored, for reading.
#[derive(Clone, Copy)]
pub enum SetRef<'a> {
    Ints(&'a [u8]),
    Packed(&'a [u8]),
    Table(&'a BigSet),
}

impl<'a> SetRef<'a> {
    pub fn len(&self) -> usize {
        match self {
            SetRef::Ints(b) => intset::len(b),
            SetRef::Packed(b) => packed::len(b),
            SetRef::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match *self {
            SetRef::Ints(b) => as_int(m).is_some_and(|v| intset::contains(b, v)),
            SetRef::Packed(b) => packed::contains(b, m),
            SetRef::Table(t) => t.contains(m),
        }
    }

    /// Every member: an intset's ascending, a packed set's in insertion order, a
    /// table's in position order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Cow<'a, [u8]>> + 'a> {
        match *self {
            SetRef::Ints(b) => Box::new(
                intset::iter(b)
                    .map(|v| Cow::Owned(itoa::Buffer::new().format(v).as_bytes().to_vec())),
            ),
            SetRef::Packed(b) => Box::new(packed::members(b).map(Cow::Borrowed)),
            SetRef::Table(t) => Box::new(t.iter().map(Cow::Borrowed)),
        }
    }

    /// The member at position `i` of [`SetRef::iter`]'s order: O(1) but for a packed set.
    pub fn at(&self, i: usize) -> Option<Cow<'a, [u8]>> {
        match *self {
            SetRef::Ints(b) => intset::get(b, i)
                .map(|v| Cow::Owned(itoa::Buffer::new().format(v).as_bytes().to_vec())),
            SetRef::Packed(b) => packed::members(b).nth(i).map(Cow::Borrowed),
            SetRef::Table(t) => t.at(i).map(Cow::Borrowed),
        }
    }

    pub fn encoding(&self) -> Encoding {
        match self {
            SetRef::Ints(_) => Encoding::Ints,
            SetRef::Packed(_) => Encoding::Packed,
            SetRef::Table(_) => Encoding::Table,
        }
    }

    /// The packed serialization of every member, in [`SetRef::iter`]'s order.
    pub fn to_packed(&self) -> Vec<u8> {
        match *self {
            SetRef::Packed(b) => b.to_vec(),
            SetRef::Table(t) => t.to_packed(),
            SetRef::Ints(_) => {
                let mut out = Vec::new();
                for m in self.iter() {
                    packed::push(&mut out, &m);
                }
                out
            }
        }
    }
}

/// A set's value in the form `enc` from distinct `members`: the value bytes of an
/// intset ([`Encoding::Ints`]) or packed entry ([`Encoding::Packed`]), or a table. An
/// intset asked for with a member that is not an integer comes back packed or as a table.
pub enum Built {
    Bytes(Encoding, Vec<u8>),
    Table(BigSet),
}

pub fn build<'a>(enc: Encoding, members: impl Iterator<Item = &'a [u8]> + Clone) -> Built {
    match enc {
        Encoding::Ints if members.clone().all(|m| as_int(m).is_some()) => {
            let mut b = Vec::new();
            for m in members {
                intset::insert(&mut b, as_int(m).expect("checked"));
            }
            Built::Bytes(Encoding::Ints, b)
        }
        Encoding::Ints | Encoding::Packed
            if members.clone().count() <= MAX_PACKED_ENTRIES
                && members.clone().all(|m| m.len() <= MAX_PACKED_VALUE) =>
        {
            let mut b = Vec::new();
            for m in members {
                if !packed::contains(&b, m) {
                    packed::push(&mut b, m);
                }
            }
            Built::Bytes(Encoding::Packed, b)
        }
        _ => Built::Table(BigSet::from_members(members)),
    }
}
