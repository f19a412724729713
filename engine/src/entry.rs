//! One stored item in one allocation: header, key and value packed together.
//!
//! A cache pays for every byte of per-key overhead a million times over, so an entry is a
//! single heap block that holds everything about the key, and the store's slab keeps just
//! a pointer to it (8 bytes). Redis spends a dictEntry, a robj and two SDS headers on the
//! same key (about 55-80 bytes of overhead); this layout spends 15 bytes for a short key
//! without TTL or client flags.
//!
//! ```text
//!  0        8          12     13        ..        ..           ..      ..
//!  ┌────────┬──────────┬──────┬─────────┬─────────┬────────────┬───────┬──────┬───────┐
//!  │ cas u64│access u32│ meta │klen LEB │vlen LEB │[expire u64]│[flags]│ key  │ value │
//!  └────────┴──────────┴──────┴─────────┴─────────┴────────────┴───────┴──────┴───────┘
//! ```
//!
//! - `cas`: memcached's CAS unique, bumped on every write.
//! - `access`: unix seconds of the last read (OBJECT IDLETIME, memcached meta `l`).
//! - `meta`: which optional fields follow, plus per-item bits (fetched, stale, won), and
//!   in its top three bits the value's [`Kind`]: a string, a packed hash (the value bytes
//!   are the pairs, see [`crate::hash::packed`]), an intset or packed set (see
//!   [`crate::set`]), or a boxed large value (the value bytes are a pointer to a [`Big`]
//!   the entry owns, such as a hash's or a set's table form).
//! - lengths are LEB128 varints (one byte each below 128), so short keys and values pay 2.
//! - `expire_at` (unix ms) and the 32-bit client `flags` are present only when set.
//!
//! All fields past the first 13 bytes sit at offsets computed from the header, and are
//! read and written unaligned. The unsafe code is confined to this module: an [`Entry`]
//! owns its block, computes its layout from its own header, and frees it on drop.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

use crate::hash::{BigHash, HashRef};
use crate::list::{BigList, ListRef};
use crate::set::{BigSet, SetRef};
use crate::zset::{BigZset, ZsetRef};

/// Absolute expiry in unix milliseconds; `NO_EXPIRY` means the key is persistent.
pub const NO_EXPIRY: u64 = 0;

const OFF_CAS: usize = 0;
const OFF_ACCESS: usize = 8;
const OFF_META: usize = 12;
const OFF_LENS: usize = 13;

const M_EXPIRE: u8 = 1 << 0;
const M_FLAGS: u8 = 1 << 1;
/// The item was read at least once since it was written (memcached meta `h`).
const M_FETCHED: u8 = 1 << 2;
/// Marked stale by a meta delete/set with `I` (memcached's stale-while-revalidate).
const M_STALE: u8 = 1 << 3;
/// A client already received the win token for this stale or missing item.
const M_WON: u8 = 1 << 4;
/// The top three bits: the value's [`Kind`].
const KIND_SHIFT: u8 = 5;
const M_KIND: u8 = 0b111 << KIND_SHIFT;

/// How the value bytes of an entry are to be read. Three bits of the meta byte; the
/// values not used yet are left for lists (2) and sorted sets (5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The value bytes are the string.
    Str = 0,
    /// The value bytes are a packed hash ([`crate::hash::packed`]).
    HashPacked = 1,
    /// The value bytes are a packed list ([`crate::list::packed`]).
    ListPacked = 2,
    /// The value bytes are an intset ([`crate::set::intset`]).
    SetInts = 3,
    /// The value bytes are a packed set ([`crate::set::packed`]).
    SetPacked = 4,
    /// The value bytes are a packed sorted set ([`crate::zset::packed`]).
    ZsetPacked = 5,
    /// The value bytes are a pointer to a [`Big`] the entry owns.
    Boxed = 7,
}

impl Kind {
    fn from_bits(b: u8) -> Kind {
        match b {
            1 => Kind::HashPacked,
            2 => Kind::ListPacked,
            3 => Kind::SetInts,
            4 => Kind::SetPacked,
            5 => Kind::ZsetPacked,
            7 => Kind::Boxed,
            _ => Kind::Str,
        }
    }
}

/// The data type a key holds, as TYPE names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    String,
    Hash,
    List,
    Set,
    Zset,
}

impl ValueType {
    /// TYPE's answer.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Hash => "hash",
            ValueType::List => "list",
            ValueType::Set => "set",
            ValueType::Zset => "zset",
        }
    }
}

/// A value too large to live packed in its entry: it has its own heap structures, which
/// the entry points to and owns.
#[derive(Debug, Clone, PartialEq)]
pub enum Big {
    Hash(BigHash),
    List(BigList),
    Set(BigSet),
    ZSet(BigZset),
}

impl Big {
    fn heap_bytes(&self) -> usize {
        match self {
            Big::Hash(h) => std::mem::size_of::<Big>() + h.heap_bytes(),
            Big::List(l) => std::mem::size_of::<Big>() + l.heap_bytes(),
            Big::Set(t) => std::mem::size_of::<Big>() + t.heap_bytes(),
            Big::ZSet(z) => std::mem::size_of::<Big>() + z.heap_bytes(),
        }
    }
}

const PTR_LEN: usize = std::mem::size_of::<usize>();

/// The heap block size an allocator hands out for a request of `n` bytes: the size
/// classes of mimalloc (8-byte steps up to 64, then four classes per doubling), which
/// jemalloc's classes match closely. Memory accounting uses it so that `used_memory`
/// follows what the process really holds, not the bytes asked for.
pub fn alloc_class(n: usize) -> usize {
    if n <= 64 {
        return n.max(8).next_multiple_of(8);
    }
    // Four classes between 2^k and 2^(k+1): steps of 2^(k-2).
    let k = usize::BITS - 1 - n.leading_zeros();
    let step = 1usize << (k - 2);
    n.next_multiple_of(step)
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The field offsets of one entry, decoded from its header.
#[derive(Clone, Copy)]
struct Shape {
    meta: u8,
    klen: usize,
    vlen: usize,
    /// Offset of the first optional field (expiry if present, else flags, else key).
    opt: usize,
}

impl Shape {
    fn for_parts(klen: usize, vlen: usize, expire_at: u64, flags: u32) -> Shape {
        let mut meta = 0;
        if expire_at != NO_EXPIRY {
            meta |= M_EXPIRE;
        }
        if flags != 0 {
            meta |= M_FLAGS;
        }
        Shape {
            meta,
            klen,
            vlen,
            opt: OFF_LENS + varint_len(klen) + varint_len(vlen),
        }
    }

    fn flags_off(&self) -> usize {
        self.opt + if self.meta & M_EXPIRE != 0 { 8 } else { 0 }
    }

    fn key_off(&self) -> usize {
        self.flags_off() + if self.meta & M_FLAGS != 0 { 4 } else { 0 }
    }

    fn value_off(&self) -> usize {
        self.key_off() + self.klen
    }

    fn size(&self) -> usize {
        self.value_off() + self.vlen
    }

    fn layout(&self) -> Layout {
        // Alignment 1: every field is read unaligned. Asking for 8 would be no better
        // and much worse: mimalloc serves an aligned request whose size is not a
        // multiple of the alignment from the next size class up (112 bytes instead of 96
        // for a typical 94-byte entry, measured).
        Layout::from_size_align(self.size(), 1).expect("entry size fits a layout")
    }
}

/// memcached's per-item state besides value, expiry, flags and CAS: what a write decides
/// and replication must carry. (The fetched bit and access time are a read's business and
/// stay local.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ItemBits {
    /// Marked stale by a meta delete/set with `I` (stale-while-revalidate).
    pub stale: bool,
    /// A client already received the win token for this stale or missing item.
    pub won: bool,
}

/// One stored item, owning its heap block. See the module docs for the layout.
/// `Option<Entry>` is one pointer wide, which is what the store's slab holds.
#[repr(transparent)]
pub struct Entry {
    ptr: NonNull<u8>,
}

// SAFETY: an Entry exclusively owns its heap block (like a Box<[u8]>); nothing else
// points into it, so moving it to another thread is sound.
unsafe impl Send for Entry {}

impl Entry {
    /// A new entry holding copies of `key` and `value`.
    pub fn new(key: &[u8], value: &[u8], expire_at: u64, flags: u32, cas: u64) -> Entry {
        Entry::build(key, value.len(), expire_at, flags, cas, |v| {
            v.copy_from_slice(value)
        })
    }

    /// A new entry whose `vlen`-byte value `fill` writes in place (no staging copy).
    pub fn build(
        key: &[u8],
        vlen: usize,
        expire_at: u64,
        flags: u32,
        cas: u64,
        fill: impl FnOnce(&mut [u8]),
    ) -> Entry {
        Entry::build_kind(Kind::Str, key, vlen, expire_at, flags, cas, fill)
    }

    /// A new entry of `kind` holding copies of `key` and `value` (a string or a packed
    /// hash; a [`Kind::Boxed`] entry is made with [`Entry::new_big`]).
    pub fn new_kind(
        kind: Kind,
        key: &[u8],
        value: &[u8],
        expire_at: u64,
        flags: u32,
        cas: u64,
    ) -> Entry {
        debug_assert!(kind != Kind::Boxed);
        Entry::build_kind(kind, key, value.len(), expire_at, flags, cas, |v| {
            v.copy_from_slice(value)
        })
    }

    /// A new entry owning `big`.
    pub fn new_big(key: &[u8], big: Box<Big>, expire_at: u64, flags: u32, cas: u64) -> Entry {
        let ptr = Box::into_raw(big) as usize;
        Entry::build_kind(Kind::Boxed, key, PTR_LEN, expire_at, flags, cas, |v| {
            v.copy_from_slice(&ptr.to_ne_bytes())
        })
    }

    fn build_kind(
        kind: Kind,
        key: &[u8],
        vlen: usize,
        expire_at: u64,
        flags: u32,
        cas: u64,
        fill: impl FnOnce(&mut [u8]),
    ) -> Entry {
        let mut shape = Shape::for_parts(key.len(), vlen, expire_at, flags);
        shape.meta |= (kind as u8) << KIND_SHIFT;
        let layout = shape.layout();
        // SAFETY: the layout has a non-zero size (the header alone is 15 bytes).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        let mut e = Entry { ptr };
        // SAFETY: every write below stays inside the `shape.size()` bytes just allocated,
        // at offsets `Shape` computed for exactly these lengths and optional fields.
        unsafe {
            let p = e.ptr.as_ptr();
            p.add(OFF_CAS).cast::<u64>().write_unaligned(cas);
            p.add(OFF_ACCESS).cast::<u32>().write_unaligned(0);
            p.add(OFF_META).write(shape.meta);
            let mut at = OFF_LENS;
            for mut v in [shape.klen, shape.vlen] {
                loop {
                    let byte = (v & 0x7f) as u8;
                    v >>= 7;
                    if v == 0 {
                        p.add(at).write(byte);
                        at += 1;
                        break;
                    }
                    p.add(at).write(byte | 0x80);
                    at += 1;
                }
            }
            debug_assert_eq!(at, shape.opt);
            if shape.meta & M_EXPIRE != 0 {
                p.add(shape.opt).cast::<u64>().write_unaligned(expire_at);
            }
            if shape.meta & M_FLAGS != 0 {
                p.add(shape.flags_off())
                    .cast::<u32>()
                    .write_unaligned(flags);
            }
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(shape.key_off()), key.len());
            // Zero the value first so that `fill` only ever sees initialised bytes.
            std::ptr::write_bytes(p.add(shape.value_off()), 0, vlen);
        }
        fill(e.value_mut());
        e
    }

    fn shape(&self) -> Shape {
        // SAFETY: the header was fully written by `build` and the block lives as long as
        // `self`; the varints were encoded by `build`, so decoding stays in the header.
        unsafe {
            let p = self.ptr.as_ptr();
            let meta = *p.add(OFF_META);
            let mut at = OFF_LENS;
            let mut lens = [0usize; 2];
            for len in &mut lens {
                let mut shift = 0;
                loop {
                    let b = *p.add(at);
                    at += 1;
                    *len |= ((b & 0x7f) as usize) << shift;
                    if b & 0x80 == 0 {
                        break;
                    }
                    shift += 7;
                }
            }
            Shape {
                meta,
                klen: lens[0],
                vlen: lens[1],
                opt: at,
            }
        }
    }

    fn meta(&self) -> u8 {
        // SAFETY: the meta byte is inside the header of a live block.
        unsafe { *self.ptr.as_ptr().add(OFF_META) }
    }

    fn set_meta_bit(&mut self, bit: u8, on: bool) {
        // SAFETY: as `meta`; `&mut self` means nobody else reads it meanwhile.
        unsafe {
            let m = self.ptr.as_ptr().add(OFF_META);
            *m = if on { *m | bit } else { *m & !bit };
        }
    }

    pub fn kind(&self) -> Kind {
        Kind::from_bits(self.meta() >> KIND_SHIFT)
    }

    pub fn value_type(&self) -> ValueType {
        match self.kind() {
            Kind::Str => ValueType::String,
            Kind::HashPacked => ValueType::Hash,
            Kind::ListPacked => ValueType::List,
            Kind::SetInts | Kind::SetPacked => ValueType::Set,
            Kind::ZsetPacked => ValueType::Zset,
            Kind::Boxed => match self.big() {
                Some(Big::Hash(_)) | None => ValueType::Hash,
                Some(Big::List(_)) => ValueType::List,
                Some(Big::Set(_)) => ValueType::Set,
                Some(Big::ZSet(_)) => ValueType::Zset,
            },
        }
    }

    /// The string value, or `None` when the key holds another type.
    pub fn string(&self) -> Option<&[u8]> {
        (self.kind() == Kind::Str).then(|| self.value())
    }

    /// The hash value, or `None` when the key holds another type.
    pub fn hash(&self) -> Option<HashRef<'_>> {
        match self.kind() {
            Kind::HashPacked => Some(HashRef::Packed(self.value())),
            Kind::Boxed => match self.big() {
                Some(Big::Hash(h)) => Some(HashRef::Table(h)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The list value, or `None` when the key holds another type.
    pub fn list(&self) -> Option<ListRef<'_>> {
        match self.kind() {
            Kind::ListPacked => Some(ListRef::Packed(self.value())),
            Kind::Boxed => match self.big() {
                Some(Big::List(l)) => Some(ListRef::Big(l)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The set value, or `None` when the key holds another type.
    pub fn set(&self) -> Option<SetRef<'_>> {
        match self.kind() {
            Kind::SetInts => Some(SetRef::Ints(self.value())),
            Kind::SetPacked => Some(SetRef::Packed(self.value())),
            Kind::Boxed => match self.big() {
                Some(Big::Set(t)) => Some(SetRef::Table(t)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The sorted set value, or `None` when the key holds another type.
    pub fn zset(&self) -> Option<ZsetRef<'_>> {
        match self.kind() {
            Kind::ZsetPacked => Some(ZsetRef::Packed(self.value())),
            Kind::Boxed => match self.big() {
                Some(Big::ZSet(z)) => Some(ZsetRef::Big(z)),
                _ => None,
            },
            _ => None,
        }
    }

    fn big_ptr(&self) -> Option<*mut Big> {
        if self.kind() != Kind::Boxed {
            return None;
        }
        let mut b = [0u8; PTR_LEN];
        b.copy_from_slice(self.value());
        Some(usize::from_ne_bytes(b) as *mut Big)
    }

    /// The boxed value of a [`Kind::Boxed`] entry.
    pub fn big(&self) -> Option<&Big> {
        // SAFETY: a Boxed entry's value bytes are the pointer `new_big` took from a Box
        // the entry owns until it drops; the borrow of `self` keeps it alive.
        self.big_ptr().map(|p| unsafe { &*p })
    }

    /// As [`Entry::big`], writable (the write path changes a large hash in place).
    pub(crate) fn big_mut(&mut self) -> Option<&mut Big> {
        // SAFETY: as `big`; `&mut self` gives exclusive access to what the entry owns.
        self.big_ptr().map(|p| unsafe { &mut *p })
    }

    /// The bytes that stand for the value in effects and records: the string, or a hash's
    /// packed pairs (a table is serialized).
    pub fn value_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.big() {
            Some(Big::Hash(h)) => std::borrow::Cow::Owned(h.to_packed()),
            Some(Big::List(l)) => std::borrow::Cow::Owned(l.to_packed()),
            Some(Big::Set(_)) => {
                std::borrow::Cow::Owned(self.set().map(|s| s.to_packed()).unwrap_or_default())
            }
            None if self.kind() == Kind::SetInts => {
                std::borrow::Cow::Owned(self.set().map(|s| s.to_packed()).unwrap_or_default())
            }
            Some(Big::ZSet(z)) => std::borrow::Cow::Owned(z.to_packed()),
            None => std::borrow::Cow::Borrowed(self.value()),
        }
    }

    pub fn key(&self) -> &[u8] {
        let s = self.shape();
        // SAFETY: `klen` bytes at the key offset are inside the block and initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(s.key_off()), s.klen) }
    }

    pub fn value(&self) -> &[u8] {
        let s = self.shape();
        // SAFETY: `vlen` bytes at the value offset are inside the block and initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(s.value_off()), s.vlen) }
    }

    /// Both at once, decoding the header once.
    pub fn key_value(&self) -> (&[u8], &[u8]) {
        let s = self.shape();
        let p = self.ptr.as_ptr();
        // SAFETY: as `key` and `value`.
        unsafe {
            (
                std::slice::from_raw_parts(p.add(s.key_off()), s.klen),
                std::slice::from_raw_parts(p.add(s.value_off()), s.vlen),
            )
        }
    }

    /// The value, writable in place (its length is fixed; SETRANGE within it, INCR).
    pub fn value_mut(&mut self) -> &mut [u8] {
        let s = self.shape();
        // SAFETY: as `value`; `&mut self` gives exclusive access to the block.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(s.value_off()), s.vlen) }
    }

    pub fn expire_at(&self) -> u64 {
        let s = self.shape();
        if s.meta & M_EXPIRE == 0 {
            return NO_EXPIRY;
        }
        // SAFETY: M_EXPIRE says 8 bytes of expiry sit at `opt`.
        unsafe { self.ptr.as_ptr().add(s.opt).cast::<u64>().read_unaligned() }
    }

    pub fn has_expiry(&self) -> bool {
        self.meta() & M_EXPIRE != 0
    }

    pub fn is_expired(&self, now: u64) -> bool {
        let at = self.expire_at();
        at != NO_EXPIRY && at <= now
    }

    pub fn flags(&self) -> u32 {
        let s = self.shape();
        if s.meta & M_FLAGS == 0 {
            return 0;
        }
        // SAFETY: M_FLAGS says 4 bytes of flags sit at `flags_off`.
        unsafe {
            self.ptr
                .as_ptr()
                .add(s.flags_off())
                .cast::<u32>()
                .read_unaligned()
        }
    }

    pub fn cas(&self) -> u64 {
        // SAFETY: the CAS is the first 8 bytes of the block.
        unsafe {
            self.ptr
                .as_ptr()
                .add(OFF_CAS)
                .cast::<u64>()
                .read_unaligned()
        }
    }

    pub fn set_cas(&mut self, cas: u64) {
        // SAFETY: as `cas`, with exclusive access.
        unsafe {
            self.ptr
                .as_ptr()
                .add(OFF_CAS)
                .cast::<u64>()
                .write_unaligned(cas)
        }
    }

    /// Unix seconds of the last read (0 if never read since written).
    pub fn accessed_secs(&self) -> u32 {
        // SAFETY: 4 bytes at OFF_ACCESS are in the header.
        unsafe {
            self.ptr
                .as_ptr()
                .add(OFF_ACCESS)
                .cast::<u32>()
                .read_unaligned()
        }
    }

    /// Records a read at `now` (unix ms): last-access time and the fetched bit.
    pub fn touch(&mut self, now: u64) {
        let secs = (now / 1000).min(u32::MAX as u64) as u32;
        // SAFETY: as `accessed_secs`, with exclusive access.
        unsafe {
            let p = self.ptr.as_ptr();
            p.add(OFF_ACCESS).cast::<u32>().write_unaligned(secs);
            *p.add(OFF_META) |= M_FETCHED;
        }
    }

    /// Sets the last-access time without marking the item fetched (a write counts as
    /// an access for idle time, as in Redis, but not as a hit for memcached's `h`).
    pub fn set_accessed(&mut self, now: u64) {
        let secs = (now / 1000).min(u32::MAX as u64) as u32;
        // SAFETY: as `accessed_secs`, with exclusive access.
        unsafe {
            self.ptr
                .as_ptr()
                .add(OFF_ACCESS)
                .cast::<u32>()
                .write_unaligned(secs)
        }
    }

    pub fn fetched(&self) -> bool {
        self.meta() & M_FETCHED != 0
    }

    pub fn stale(&self) -> bool {
        self.meta() & M_STALE != 0
    }

    pub fn won(&self) -> bool {
        self.meta() & M_WON != 0
    }

    pub fn item_bits(&self) -> ItemBits {
        ItemBits {
            stale: self.stale(),
            won: self.won(),
        }
    }

    pub fn set_item_bits(&mut self, bits: ItemBits) {
        self.set_meta_bit(M_STALE, bits.stale);
        self.set_meta_bit(M_WON, bits.won);
    }

    /// The entry with another expiry: changed in place when the block already has an
    /// expiry field and keeps one, rebuilt when the field must appear or go (the header
    /// sizes the block). Returns the entry to store.
    pub fn with_expire(self, expire_at: u64) -> Entry {
        let s = self.shape();
        if s.meta & M_EXPIRE != 0 && expire_at != NO_EXPIRY {
            // SAFETY: M_EXPIRE says 8 bytes of expiry sit at `opt`; exclusive access.
            unsafe {
                self.ptr
                    .as_ptr()
                    .add(s.opt)
                    .cast::<u64>()
                    .write_unaligned(expire_at)
            }
            return self;
        }
        if s.meta & M_EXPIRE == 0 && expire_at == NO_EXPIRY {
            return self;
        }
        let mut old = self;
        let e = old.rebuilt(expire_at, old.flags());
        // The new block took over the boxed value, if any: the old one only frees itself.
        old.set_kind(Kind::Str);
        e
    }

    /// Rewrites a string entry in place into what `Entry::new(key, value, expire_at,
    /// flags, cas)` builds for its key, when that block would have exactly this one's
    /// shape (a value as long, the same optional fields): no allocation, and no free of a
    /// block last touched long ago (a replica applying a stream of SETs, benches/RESULTS.md
    /// session 12). False, with nothing changed, when it would not fit.
    pub fn overwrite(&mut self, value: &[u8], expire_at: u64, flags: u32, cas: u64) -> bool {
        let old = self.shape();
        let new = Shape::for_parts(old.klen, value.len(), expire_at, flags);
        let optional = M_EXPIRE | M_FLAGS;
        if self.kind() != Kind::Str
            || new.vlen != old.vlen
            || new.meta & optional != old.meta & optional
        {
            return false;
        }
        // SAFETY: the same key length, value length and optional fields give the same
        // offsets and size as the block was built with; exclusive access.
        unsafe {
            let p = self.ptr.as_ptr();
            p.add(OFF_CAS).cast::<u64>().write_unaligned(cas);
            p.add(OFF_ACCESS).cast::<u32>().write_unaligned(0);
            // A string's kind bits are 0: the meta byte of a new block.
            p.add(OFF_META).write(new.meta);
            if new.meta & M_EXPIRE != 0 {
                p.add(new.opt).cast::<u64>().write_unaligned(expire_at);
            }
            if new.meta & M_FLAGS != 0 {
                p.add(new.flags_off()).cast::<u32>().write_unaligned(flags);
            }
        }
        self.value_mut().copy_from_slice(value);
        true
    }

    fn set_kind(&mut self, kind: Kind) {
        // SAFETY: as `meta`, with exclusive access.
        unsafe {
            let m = self.ptr.as_ptr().add(OFF_META);
            *m = (*m & !M_KIND) | ((kind as u8) << KIND_SHIFT);
        }
    }

    /// A copy of the block with another expiry and flags, keeping key, value bytes (a
    /// boxed value's pointer too: the caller gives up the old block's claim), kind, CAS
    /// and the item bits.
    fn rebuilt(&self, expire_at: u64, flags: u32) -> Entry {
        let (key, value) = self.key_value();
        let mut e = Entry::build_kind(
            self.kind(),
            key,
            value.len(),
            expire_at,
            flags,
            self.cas(),
            |v| v.copy_from_slice(value),
        );
        e.copy_item_state(self);
        e
    }

    /// A copy with a new value, keeping key, expiry, flags and the item bits; `cas` is
    /// the new version.
    pub fn with_value(&self, vlen: usize, cas: u64, fill: impl FnOnce(&mut [u8])) -> Entry {
        let kind = match self.kind() {
            Kind::Boxed => Kind::Str,
            k => k,
        };
        self.with_kind_value(kind, vlen, cas, fill)
    }

    /// A copy with a new value of `kind` (not [`Kind::Boxed`]), keeping key, expiry,
    /// flags and the item bits.
    pub fn with_kind_value(
        &self,
        kind: Kind,
        vlen: usize,
        cas: u64,
        fill: impl FnOnce(&mut [u8]),
    ) -> Entry {
        let mut e = Entry::build_kind(
            kind,
            self.key(),
            vlen,
            self.expire_at(),
            self.flags(),
            cas,
            fill,
        );
        e.copy_item_state(self);
        e
    }

    /// A copy owning `big` as its value, keeping key, expiry, flags and the item bits.
    pub fn with_big(&self, big: Box<Big>, cas: u64) -> Entry {
        let mut e = Entry::new_big(self.key(), big, self.expire_at(), self.flags(), cas);
        e.copy_item_state(self);
        e
    }

    fn copy_item_state(&mut self, from: &Entry) {
        let keep = from.meta() & (M_FETCHED | M_STALE | M_WON);
        // SAFETY: header bytes of two live blocks; `self` is exclusively borrowed.
        unsafe {
            let p = self.ptr.as_ptr();
            *p.add(OFF_META) |= keep;
            p.add(OFF_ACCESS)
                .cast::<u32>()
                .write_unaligned(from.accessed_secs());
        }
    }

    /// Bytes the allocator really holds for this entry (its size class).
    pub fn alloc_size(&self) -> usize {
        alloc_class(self.shape().size()) + self.big().map_or(0, Big::heap_bytes)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(p) = self.big_ptr() {
            // SAFETY: the pointer came from `Box::into_raw` in `new_big` and this entry is
            // its only owner (a rebuild that took it over turned this entry into a string).
            drop(unsafe { Box::from_raw(p) });
        }
        let layout = self.shape().layout();
        // SAFETY: the block was allocated by `build` with exactly this layout (the header
        // it is computed from never changes size after `build`).
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        let mut e = match self.big() {
            Some(big) => Entry::new_big(
                self.key(),
                Box::new(big.clone()),
                self.expire_at(),
                self.flags(),
                self.cas(),
            ),
            None => Entry::new_kind(
                self.kind(),
                self.key(),
                self.value(),
                self.expire_at(),
                self.flags(),
                self.cas(),
            ),
        };
        e.copy_item_state(self);
        e
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        let values = match (self.big(), other.big()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.value() == other.value(),
            _ => false,
        };
        values
            && self.key() == other.key()
            && self.kind() == other.kind()
            && self.expire_at() == other.expire_at()
            && self.flags() == other.flags()
            && self.cas() == other.cas()
    }
}

impl Eq for Entry {}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("kind", &self.kind())
            .field("value_len", &self.value().len())
            .field("expire_at", &self.expire_at())
            .field("flags", &self.flags())
            .field("cas", &self.cas())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn short_key_without_options_costs_fifteen_bytes_of_header() {
        let e = Entry::new(b"memtier-1234567", &[7u8; 64], NO_EXPIRY, 0, 9);
        assert_eq!(e.shape().size(), 15 + 15 + 64);
        assert_eq!(e.alloc_size(), 96, "mimalloc's 96-byte class");
        assert_eq!(
            (e.key(), e.value(), e.cas()),
            (&b"memtier-1234567"[..], &[7u8; 64][..], 9)
        );
        assert_eq!((e.expire_at(), e.flags()), (NO_EXPIRY, 0));
    }

    #[test]
    fn an_overwrite_in_place_equals_a_new_entry_or_changes_nothing() {
        let fresh = |v: &[u8], exp, flags, cas| Entry::new(b"key", v, exp, flags, cas);
        let same = |a: &Entry, b: &Entry| {
            assert_eq!(a.shape().size(), b.shape().size());
            // SAFETY: both blocks hold `size` initialised bytes.
            let bytes = |e: &Entry| unsafe {
                std::slice::from_raw_parts(e.ptr.as_ptr(), e.shape().size()).to_vec()
            };
            assert_eq!(bytes(a), bytes(b));
        };
        for (exp, flags) in [(NO_EXPIRY, 0), (77, 0), (NO_EXPIRY, 5), (77, 5)] {
            let mut e = fresh(b"aaaa", exp, flags, 1);
            e.touch(9_000);
            e.set_item_bits(ItemBits {
                stale: true,
                won: true,
            });
            let (exp2, flags2) = (if exp == NO_EXPIRY { exp } else { 88 }, flags * 2);
            assert!(e.overwrite(b"bbbb", exp2, flags2, 2));
            same(&e, &fresh(b"bbbb", exp2, flags2, 2));
        }
        // Anything that changes the block's shape is left to a new block.
        let mut e = fresh(b"aaaa", NO_EXPIRY, 0, 1);
        let before = fresh(b"aaaa", NO_EXPIRY, 0, 1);
        assert!(!e.overwrite(b"bbb", NO_EXPIRY, 0, 2), "a shorter value");
        assert!(!e.overwrite(b"bbbb", 77, 0, 2), "an expiry appears");
        assert!(!e.overwrite(b"bbbb", NO_EXPIRY, 5, 2), "flags appear");
        same(&e, &before);
        let mut e = fresh(b"aaaa", 77, 5, 1);
        assert!(!e.overwrite(b"bbbb", NO_EXPIRY, 5, 2), "the expiry goes");
        assert!(!e.overwrite(b"bbbb", 77, 0, 2), "the flags go");
        let mut h = Entry::new_kind(Kind::HashPacked, b"key", b"aaaa", NO_EXPIRY, 0, 1);
        assert!(!h.overwrite(b"bbbb", NO_EXPIRY, 0, 2), "not a string");
        assert_eq!(h.kind(), Kind::HashPacked);
    }

    #[test]
    fn optional_fields_and_bits_round_trip() {
        let mut e = Entry::new(b"k", b"v", 123_456, 0xdead_beef, 1);
        assert_eq!((e.expire_at(), e.flags()), (123_456, 0xdead_beef));
        assert!(!e.fetched());
        e.touch(5_000);
        assert!(e.fetched());
        assert_eq!(e.accessed_secs(), 5);
        e.set_item_bits(ItemBits {
            stale: true,
            won: true,
        });
        e.set_cas(77);
        let e = e.with_expire(NO_EXPIRY);
        assert_eq!(
            (e.expire_at(), e.flags(), e.cas()),
            (NO_EXPIRY, 0xdead_beef, 77)
        );
        assert!(
            e.fetched() && e.stale() && e.won(),
            "item bits survive a rebuild"
        );
        let e = e.with_expire(9).with_expire(10);
        assert_eq!(e.expire_at(), 10);
        let e2 = e.with_value(3, 78, |v| v.copy_from_slice(b"abc"));
        assert_eq!(
            (e2.key(), e2.value(), e2.expire_at(), e2.cas()),
            (&b"k"[..], &b"abc"[..], 10, 78)
        );
        assert_eq!(e.clone(), e);
    }

    #[test]
    fn alloc_classes_follow_mimalloc() {
        let classes: Vec<usize> = [1, 8, 9, 64, 65, 80, 81, 96, 97, 128, 129, 1000]
            .iter()
            .map(|&n| alloc_class(n))
            .collect();
        assert_eq!(classes, [8, 8, 16, 64, 80, 80, 96, 96, 112, 128, 160, 1024]);
    }

    quickcheck! {
        fn any_parts_round_trip(key: Vec<u8>, value: Vec<u8>, expire_at: u64, flags: u32, cas: u64) -> bool {
            let e = Entry::new(&key, &value, expire_at, flags, cas);
            e.key() == &key[..] && e.value() == &value[..] && e.expire_at() == expire_at
                && e.flags() == flags && e.cas() == cas && e.alloc_size() >= e.shape().size()
        }

        fn long_lengths_round_trip(klen: u16, vlen: u32) -> bool {
            let key = vec![b'k'; klen as usize];
            let value = vec![b'v'; (vlen % 300_000) as usize];
            let e = Entry::new(&key, &value, NO_EXPIRY, 0, 0);
            e.key() == &key[..] && e.value() == &value[..]
        }
    }
}
