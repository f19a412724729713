//! The wire format of a flow: the records one primary shard sends one replica.
//!
//! A flow opens with a [`Hello`] and then carries records, each a tag byte and a body of
//! fixed-width little-endian numbers and length-prefixed byte strings:
//!
//! ```text
//!  HELLO   0x00 "BTNR" version:u16 shard:u32 cores:u32 replid:[u8;40] offset:u64 full:u8
//!  PUT     0x01 key value expire_at:u64 flags:u32 cas:u64 bits:u8      journal
//!  EXPIRE  0x02 key expire_at:u64                                     journal
//!  STAMP   0x03 key cas:u64 bits:u8                                   journal
//!  DEL     0x04 key cause:u8                                          journal
//!  FLUSH   0x05                                                       journal
//!  ITEM    0x06 key value expire_at:u64 flags:u32 cas:u64 bits:u8      snapshot
//!  END     0x07                                                       snapshot done
//!  HPUT    0x08 key pairs table:u8 expire_at:u64 flags:u32 cas:u64 bits:u8   journal (v2)
//!  HSET    0x09 key pairs cas:u64                                     journal (v2)
//!  HDEL    0x0a key n:u32 field*n cas:u64                             journal (v2)
//!  HITEM   0x0b key pairs table:u8 expire_at:u64 flags:u32 cas:u64 bits:u8   snapshot (v2)
//!  LINS    0x11 key index:u64 value cas:u64                           journal (v4)
//!  LREM    0x1e key n:u32 gap*n cas:u64                               journal (v4)
//!  gap: a LEB128 varint, the first removed index, then each one's distance past the
//!  previous one less one (so strictly ascending by construction)
//!  SPUT    0x12 key members enc:u8 expire_at:u64 flags:u32 cas:u64 bits:u8  journal (sets)
//!  SADD    0x13 key members cas:u64                                   journal (sets)
//!  SREM    0x14 key n:u32 member*n cas:u64                            journal (sets)
//!  SITEM   0x15 key members enc:u8 expire_at:u64 flags:u32 cas:u64 bits:u8  snapshot (sets)
//!  members: a set's packed members (baton_engine::set::packed), validated; enc: 0 intset,
//!  1 packed, 2 table
//!  ZPUT    0x18 key entries big:u8 expire_at:u64 flags:u32 cas:u64 bits:u8  journal
//!  ZADD    0x19 key entries cas:u64                                   journal
//!  ZREM    0x1a key n:u32 member*n cas:u64                            journal
//!  ZITEM   0x1b key entries big:u8 expire_at:u64 flags:u32 cas:u64 bits:u8  snapshot
//!  entries: a sorted set's packed members and scores (baton_engine::zset::packed), validated
//!  key, value, pairs, field: len:u32 then the bytes
//!  pairs: a hash's packed field/value pairs (baton_engine::hash::packed), validated
//! ```
//!
//! Version 2 added the hash records (0x08-0x0b), version 3 the list, set and sorted-set
//! records (0x0c-0x1b), version 4 LINS and LREM (LINSERT and LREM had been a whole-list
//! LPUT); an older flow holds none of them and decodes unchanged, so this build reads all
//! four. An older build refuses a newer flow at its HELLO rather than
//! meet a record it cannot read.
//!
//! Journal records are the shard's [`Effect`]s; their encoded bytes are what a flow's
//! offset counts. Snapshot records (ITEM, END) go to one replica during its full sync and
//! count nothing.
//!
//! Decoding never trusts a length: every one is checked against [`Limits`] and against
//! the bytes present before anything is allocated, and a malformed record is an error
//! that names what was wrong, never a panic.

use baton_engine::entry::ItemBits;
use baton_engine::shard::{DelCause, Effect};
use baton_engine::Entry;
use bytes::Bytes;

/// The format version this build speaks.
pub const VERSION: u16 = 4;
/// The oldest format version this build still reads.
pub const MIN_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"BTNR";
/// A replication id: 40 hex characters, as Redis's.
pub type ReplId = [u8; 40];

const T_HELLO: u8 = 0;
const T_PUT: u8 = 1;
const T_EXPIRE: u8 = 2;
const T_STAMP: u8 = 3;
const T_DEL: u8 = 4;
const T_FLUSH: u8 = 5;
const T_ITEM: u8 = 6;
const T_END: u8 = 7;
const T_HPUT: u8 = 8;
const T_HSET: u8 = 9;
const T_HDEL: u8 = 10;
const T_HITEM: u8 = 11;
// Lists (12..=17).
const T_LPUT: u8 = 12;
const T_LPUSH: u8 = 13;
const T_LPOP: u8 = 14;
const T_LSET: u8 = 15;
const T_LITEM: u8 = 16;
const T_LINS: u8 = 17;
// Sets (issue 14): 18..=23.
const T_SPUT: u8 = 18;
const T_SADD: u8 = 19;
const T_SREM: u8 = 20;
const T_SITEM: u8 = 21;
// Sorted sets: 24..=29.
const T_ZPUT: u8 = 24;
const T_ZADD: u8 = 25;
const T_ZREM: u8 = 26;
const T_ZITEM: u8 = 27;
// Lists again (version 4): 30.
const T_LREM: u8 = 30;

/// What opens a flow: who sends it, and from where in the journal it resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    /// The primary's shard this flow comes from, and how many it runs.
    pub shard: u32,
    pub cores: u32,
    pub replid: ReplId,
    /// The journal offset the flow's first journal record starts at.
    pub offset: u64,
    /// A full sync (snapshot records come first, interleaved with the journal) or a
    /// partial one (the journal only).
    pub full: bool,
}

/// One record of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Hello(Hello),
    /// A journal record: one effect of the primary shard.
    Effect(Effect),
    /// A snapshot record: one item as the walk found it (applied as a `Put`).
    Item(Effect),
    /// The snapshot walk is done: the replica now holds the whole shard.
    End,
}

impl Record {
    /// Whether this record counts toward the flow's journal offset.
    pub fn is_journal(&self) -> bool {
        matches!(self, Record::Effect(_))
    }
}

/// The largest key and value a decoder accepts, by default Redis's 512 MiB
/// `proto-max-bulk-len` for both.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_key: usize,
    pub max_value: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_key: 512 << 20,
            max_value: 512 << 20,
        }
    }
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown record tag {0:#04x}")]
    Tag(u8),
    #[error("not a Baton replication flow (bad magic)")]
    Magic,
    #[error("replication format version {found} is not one this build reads ({MIN_VERSION} to {VERSION})")]
    Version { found: u16 },
    #[error("{field} of {len} bytes is over the limit of {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("a hash's packed pairs are malformed: {0}")]
    Pairs(baton_engine::hash::packed::PackedError),
    #[error("a list's packed elements are malformed: {0}")]
    Items(baton_engine::list::packed::PackedError),
    #[error("a set's packed members are malformed: {0}")]
    Members(baton_engine::hash::packed::PackedError),
    #[error("a sorted set's packed entries are malformed: {0}")]
    Entries(baton_engine::zset::packed::PackedError),
    #[error("invalid {field}: {value}")]
    Invalid { field: &'static str, value: u64 },
}

/// Appends `effect` as a journal record.
pub fn encode_effect(effect: &Effect, out: &mut Vec<u8>) {
    match effect {
        Effect::Put {
            key,
            value,
            expire_at,
            flags,
            cas,
            bits,
        } => {
            out.push(T_PUT);
            put_item(out, key, value, *expire_at, *flags, *cas, *bits);
        }
        Effect::Expire { key, expire_at } => {
            out.push(T_EXPIRE);
            put_bytes(out, key);
            out.extend_from_slice(&expire_at.to_le_bytes());
        }
        Effect::Stamp { key, cas, bits } => {
            out.push(T_STAMP);
            put_bytes(out, key);
            out.extend_from_slice(&cas.to_le_bytes());
            out.push(bits_byte(*bits));
        }
        Effect::Del { key, cause } => encode_del(key, *cause, out),
        Effect::Flush => out.push(T_FLUSH),
        Effect::HashPut { .. } => put_hash_item(out, T_HPUT, effect),
        Effect::HashSet { key, pairs, cas } => {
            out.push(T_HSET);
            put_bytes(out, key);
            put_bytes(out, pairs);
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::HashDel { key, fields, cas } => {
            out.push(T_HDEL);
            put_bytes(out, key);
            out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
            for f in fields {
                put_bytes(out, f);
            }
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::ListPut { .. } => put_list_item(out, T_LPUT, effect),
        Effect::ListPush {
            key,
            left,
            items,
            cas,
        } => {
            out.push(T_LPUSH);
            put_bytes(out, key);
            out.push(*left as u8);
            put_bytes(out, items);
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::ListPop {
            key,
            left,
            count,
            cas,
        } => {
            out.push(T_LPOP);
            put_bytes(out, key);
            out.push(*left as u8);
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::ListSet {
            key,
            index,
            value,
            cas,
        } => {
            out.push(T_LSET);
            put_bytes(out, key);
            out.extend_from_slice(&index.to_le_bytes());
            put_bytes(out, value);
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::ListInsert {
            key,
            index,
            value,
            cas,
        } => {
            out.push(T_LINS);
            put_bytes(out, key);
            out.extend_from_slice(&index.to_le_bytes());
            put_bytes(out, value);
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::ListRem { key, indexes, cas } => {
            out.push(T_LREM);
            put_bytes(out, key);
            out.extend_from_slice(&(indexes.len() as u32).to_le_bytes());
            let mut next = 0u64;
            for &i in indexes {
                // Strictly ascending, as the write path emits them.
                put_varint(out, i.wrapping_sub(next));
                next = i.wrapping_add(1);
            }
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::SetPut { .. } => put_set_item(out, T_SPUT, effect),
        Effect::SetAdd { key, members, cas } => {
            out.push(T_SADD);
            put_bytes(out, key);
            put_bytes(out, members);
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::SetRem { key, members, cas } => {
            out.push(T_SREM);
            put_bytes(out, key);
            out.extend_from_slice(&(members.len() as u32).to_le_bytes());
            for m in members {
                put_bytes(out, m);
            }
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::ZsetPut { .. } => put_zset_item(out, T_ZPUT, effect),
        Effect::ZsetAdd { key, entries, cas } => {
            out.push(T_ZADD);
            put_bytes(out, key);
            put_bytes(out, entries);
            out.extend_from_slice(&cas.to_le_bytes());
        }
        Effect::ZsetRem { key, members, cas } => {
            out.push(T_ZREM);
            put_bytes(out, key);
            out.extend_from_slice(&(members.len() as u32).to_le_bytes());
            for m in members {
                put_bytes(out, m);
            }
            out.extend_from_slice(&cas.to_le_bytes());
        }
    }
}

/// Appends `v` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a whole list (`ListPut`) under `tag` (LPUT in the journal, LITEM in a
/// snapshot).
fn put_list_item(out: &mut Vec<u8>, tag: u8, effect: &Effect) {
    if let Effect::ListPut {
        key,
        items,
        expire_at,
        flags,
        cas,
        bits,
    } = effect
    {
        out.push(tag);
        put_bytes(out, key);
        put_bytes(out, items);
        put_meta(out, *expire_at, *flags, *cas, *bits);
    }
}

/// Appends a whole set (`SetPut`) under `tag` (SPUT in the journal, SITEM in a snapshot).
fn put_set_item(out: &mut Vec<u8>, tag: u8, effect: &Effect) {
    use baton_engine::set::Encoding;
    if let Effect::SetPut {
        key,
        members,
        enc,
        expire_at,
        flags,
        cas,
        bits,
    } = effect
    {
        out.push(tag);
        put_bytes(out, key);
        put_bytes(out, members);
        out.push(match enc {
            Encoding::Ints => 0,
            Encoding::Packed => 1,
            Encoding::Table => 2,
        });
        put_meta(out, *expire_at, *flags, *cas, *bits);
    }
}

/// Appends a whole sorted set (`ZsetPut`) under `tag` (ZPUT in the journal, ZITEM in a
/// snapshot).
fn put_zset_item(out: &mut Vec<u8>, tag: u8, effect: &Effect) {
    if let Effect::ZsetPut {
        key,
        entries,
        big,
        expire_at,
        flags,
        cas,
        bits,
    } = effect
    {
        out.push(tag);
        put_bytes(out, key);
        put_bytes(out, entries);
        out.push(*big as u8);
        put_meta(out, *expire_at, *flags, *cas, *bits);
    }
}

/// Appends a whole hash (`HashPut`) under `tag` (HPUT in the journal, HITEM in a
/// snapshot).
fn put_hash_item(out: &mut Vec<u8>, tag: u8, effect: &Effect) {
    if let Effect::HashPut {
        key,
        pairs,
        table,
        expire_at,
        flags,
        cas,
        bits,
    } = effect
    {
        out.push(tag);
        put_bytes(out, key);
        put_bytes(out, pairs);
        out.push(*table as u8);
        put_meta(out, *expire_at, *flags, *cas, *bits);
    }
}

/// Appends the fields every whole item ends with: absolute expiry, memcached flags, CAS
/// and item bits.
fn put_meta(out: &mut Vec<u8>, expire_at: u64, flags: u32, cas: u64, bits: ItemBits) {
    out.extend_from_slice(&expire_at.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&cas.to_le_bytes());
    out.push(bits_byte(bits));
}

/// Appends one snapshot item.
pub fn encode_item(
    key: &[u8],
    value: &[u8],
    expire_at: u64,
    flags: u32,
    cas: u64,
    bits: ItemBits,
    out: &mut Vec<u8>,
) {
    out.push(T_ITEM);
    put_item(out, key, value, expire_at, flags, cas, bits);
}

/// Appends the end-of-snapshot marker.
pub fn encode_end(out: &mut Vec<u8>) {
    out.push(T_END);
}

/// Appends a flow's opening record.
pub fn encode_hello(h: &Hello, out: &mut Vec<u8>) {
    out.push(T_HELLO);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&h.version.to_le_bytes());
    out.extend_from_slice(&h.shard.to_le_bytes());
    out.extend_from_slice(&h.cores.to_le_bytes());
    out.extend_from_slice(&h.replid);
    out.extend_from_slice(&h.offset.to_le_bytes());
    out.push(h.full as u8);
}

/// Appends any record.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Hello(h) => encode_hello(h, out),
        Record::Effect(e) => encode_effect(e, out),
        Record::Item(Effect::Put {
            key,
            value,
            expire_at,
            flags,
            cas,
            bits,
        }) => encode_item(key, value, *expire_at, *flags, *cas, *bits, out),
        Record::Item(h @ Effect::HashPut { .. }) => put_hash_item(out, T_HITEM, h),
        Record::Item(l @ Effect::ListPut { .. }) => put_list_item(out, T_LITEM, l),
        Record::Item(s @ Effect::SetPut { .. }) => put_set_item(out, T_SITEM, s),
        Record::Item(z @ Effect::ZsetPut { .. }) => put_zset_item(out, T_ZITEM, z),
        Record::Item(other) => encode_effect(other, out),
        Record::End => encode_end(out),
    }
}

/// Appends the journal record of [`Effect::put`]`(e)`, read from the entry in place: the
/// same bytes as encoding that effect, without building it (a string's key and value are
/// copied once, into `out`; other types go through the effect).
pub fn encode_put_entry(e: &Entry, out: &mut Vec<u8>) {
    match e.string() {
        Some(value) => {
            out.push(T_PUT);
            let bits = e.item_bits();
            put_item(out, e.key(), value, e.expire_at(), e.flags(), e.cas(), bits);
        }
        None => encode_effect(&Effect::put(e), out),
    }
}

/// Appends the journal record of an [`Effect::Del`] of `key`, without building it.
pub fn encode_del(key: &[u8], cause: DelCause, out: &mut Vec<u8>) {
    out.push(T_DEL);
    put_bytes(out, key);
    out.push(match cause {
        DelCause::Deleted => 0,
        DelCause::Expired => 1,
        DelCause::Evicted => 2,
    });
}

fn put_item(
    out: &mut Vec<u8>,
    key: &[u8],
    value: &[u8],
    expire_at: u64,
    flags: u32,
    cas: u64,
    bits: ItemBits,
) {
    put_bytes(out, key);
    put_bytes(out, value);
    put_meta(out, expire_at, flags, cas, bits);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Keys and values are bounded far below 4 GiB (proto-max-bulk-len), so u32 holds them.
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn bits_byte(bits: ItemBits) -> u8 {
    bits.stale as u8 | (bits.won as u8) << 1
}

/// Reads the record at the front of `buf`: `Ok(None)` when it has not all arrived yet,
/// else the record and the bytes it took.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Record, usize)>, DecodeError> {
    Reader {
        buf,
        pos: 0,
        src: None,
    }
    .finish(limits)
}

/// [`decode`] of the record at `buf[at..]`, whose byte strings (keys, values, ...) are
/// slices sharing `buf` rather than copies: a replica applying a stream copies each
/// value once, into its store, instead of first into an allocation of its own.
pub fn decode_shared(
    buf: &Bytes,
    at: usize,
    limits: &Limits,
) -> Result<Option<(Record, usize)>, DecodeError> {
    Reader {
        buf: &buf[at..],
        pos: 0,
        src: Some(buf),
    }
    .finish(limits)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What `buf` lies in, when byte strings are to share it.
    src: Option<&'a Bytes>,
}

/// What reading a field can end in: not there yet, or wrong.
enum Fail {
    Short,
    Bad(DecodeError),
}

impl From<DecodeError> for Fail {
    fn from(e: DecodeError) -> Fail {
        Fail::Bad(e)
    }
}

impl Reader<'_> {
    fn finish(mut self, limits: &Limits) -> Result<Option<(Record, usize)>, DecodeError> {
        match self.record(limits) {
            Ok(record) => Ok(Some((record, self.pos))),
            Err(Fail::Short) => Ok(None),
            Err(Fail::Bad(e)) => Err(e),
        }
    }

    fn record(&mut self, limits: &Limits) -> Result<Record, Fail> {
        let tag = self.u8()?;
        Ok(match tag {
            T_HELLO => {
                if self.take(4)? != MAGIC {
                    return Err(DecodeError::Magic.into());
                }
                let version = u16::from_le_bytes(self.array()?);
                if !(MIN_VERSION..=VERSION).contains(&version) {
                    return Err(DecodeError::Version { found: version }.into());
                }
                let shard = self.u32()?;
                let cores = self.u32()?;
                if cores == 0 || shard >= cores {
                    return Err(DecodeError::Invalid {
                        field: "flow shard",
                        value: u64::from(shard),
                    }
                    .into());
                }
                let replid: ReplId = self.array()?;
                let offset = self.u64()?;
                let full = self.flag("full-sync flag")?;
                Record::Hello(Hello {
                    version,
                    shard,
                    cores,
                    replid,
                    offset,
                    full,
                })
            }
            T_PUT | T_ITEM => {
                let key = self.bytes("key", limits.max_key)?;
                let value = self.bytes("value", limits.max_value)?;
                let expire_at = self.u64()?;
                let flags = self.u32()?;
                let cas = self.u64()?;
                let bits = self.bits()?;
                let put = Effect::Put {
                    key,
                    value,
                    expire_at,
                    flags,
                    cas,
                    bits,
                };
                if tag == T_PUT {
                    Record::Effect(put)
                } else {
                    Record::Item(put)
                }
            }
            T_EXPIRE => Record::Effect(Effect::Expire {
                key: self.bytes("key", limits.max_key)?,
                expire_at: self.u64()?,
            }),
            T_STAMP => Record::Effect(Effect::Stamp {
                key: self.bytes("key", limits.max_key)?,
                cas: self.u64()?,
                bits: self.bits()?,
            }),
            T_DEL => {
                let key = self.bytes("key", limits.max_key)?;
                let cause = match self.u8()? {
                    0 => DelCause::Deleted,
                    1 => DelCause::Expired,
                    2 => DelCause::Evicted,
                    other => {
                        return Err(DecodeError::Invalid {
                            field: "delete cause",
                            value: u64::from(other),
                        }
                        .into())
                    }
                };
                Record::Effect(Effect::Del { key, cause })
            }
            T_FLUSH => Record::Effect(Effect::Flush),
            T_HPUT | T_HITEM => {
                let put = Effect::HashPut {
                    key: self.bytes("key", limits.max_key)?,
                    pairs: self.pairs(limits)?,
                    table: self.flag("hash table flag")?,
                    expire_at: self.u64()?,
                    flags: self.u32()?,
                    cas: self.u64()?,
                    bits: self.bits()?,
                };
                if tag == T_HPUT {
                    Record::Effect(put)
                } else {
                    Record::Item(put)
                }
            }
            T_HSET => Record::Effect(Effect::HashSet {
                key: self.bytes("key", limits.max_key)?,
                pairs: self.pairs(limits)?,
                cas: self.u64()?,
            }),
            T_HDEL => {
                let key = self.bytes("key", limits.max_key)?;
                let n = self.u32()? as usize;
                // Each field takes at least its 4-byte length: no count beyond what the
                // bytes could hold is believed before they arrive.
                let room = (self.buf.len() - self.pos) / 4;
                let mut fields = Vec::with_capacity(n.min(room));
                for _ in 0..n {
                    fields.push(self.bytes("field", limits.max_value)?);
                }
                Record::Effect(Effect::HashDel {
                    key,
                    fields,
                    cas: self.u64()?,
                })
            }
            T_LPUT | T_LITEM => {
                let put = Effect::ListPut {
                    key: self.bytes("key", limits.max_key)?,
                    items: self.items(limits)?,
                    expire_at: self.u64()?,
                    flags: self.u32()?,
                    cas: self.u64()?,
                    bits: self.bits()?,
                };
                if tag == T_LPUT {
                    Record::Effect(put)
                } else {
                    Record::Item(put)
                }
            }
            T_LPUSH => Record::Effect(Effect::ListPush {
                key: self.bytes("key", limits.max_key)?,
                left: self.flag("list side")?,
                items: self.items(limits)?,
                cas: self.u64()?,
            }),
            T_LPOP => Record::Effect(Effect::ListPop {
                key: self.bytes("key", limits.max_key)?,
                left: self.flag("list side")?,
                count: self.u64()?,
                cas: self.u64()?,
            }),
            T_LSET => Record::Effect(Effect::ListSet {
                key: self.bytes("key", limits.max_key)?,
                index: self.u64()?,
                value: self.bytes("value", limits.max_value)?,
                cas: self.u64()?,
            }),
            T_LINS => Record::Effect(Effect::ListInsert {
                key: self.bytes("key", limits.max_key)?,
                index: self.u64()?,
                value: self.bytes("value", limits.max_value)?,
                cas: self.u64()?,
            }),
            T_LREM => {
                let key = self.bytes("key", limits.max_key)?;
                let n = self.u32()? as usize;
                // Each index takes at least one byte.
                let room = self.buf.len() - self.pos;
                let mut indexes = Vec::with_capacity(n.min(room));
                // Where the next index may start: past the previous one (`None` past
                // u64::MAX, where no index may follow).
                let mut next = Some(0u64);
                for _ in 0..n {
                    let gap = self.varint("list index")?;
                    let i = next
                        .and_then(|n| n.checked_add(gap))
                        .ok_or(DecodeError::Invalid {
                            field: "list index gap",
                            value: gap,
                        })?;
                    indexes.push(i);
                    next = i.checked_add(1);
                }
                Record::Effect(Effect::ListRem {
                    key,
                    indexes,
                    cas: self.u64()?,
                })
            }
            T_SPUT | T_SITEM => {
                use baton_engine::set::Encoding;
                let key = self.bytes("key", limits.max_key)?;
                let members = self.members(limits)?;
                let enc = match self.u8()? {
                    0 => Encoding::Ints,
                    1 => Encoding::Packed,
                    2 => Encoding::Table,
                    other => {
                        return Err(DecodeError::Invalid {
                            field: "set encoding",
                            value: u64::from(other),
                        }
                        .into())
                    }
                };
                let put = Effect::SetPut {
                    key,
                    members,
                    enc,
                    expire_at: self.u64()?,
                    flags: self.u32()?,
                    cas: self.u64()?,
                    bits: self.bits()?,
                };
                if tag == T_SPUT {
                    Record::Effect(put)
                } else {
                    Record::Item(put)
                }
            }
            T_SADD => Record::Effect(Effect::SetAdd {
                key: self.bytes("key", limits.max_key)?,
                members: self.members(limits)?,
                cas: self.u64()?,
            }),
            T_SREM => {
                let key = self.bytes("key", limits.max_key)?;
                let n = self.u32()? as usize;
                // As HDEL: no count beyond what the bytes present could hold is believed.
                let room = (self.buf.len() - self.pos) / 4;
                let mut members = Vec::with_capacity(n.min(room));
                for _ in 0..n {
                    members.push(self.bytes("member", limits.max_value)?);
                }
                Record::Effect(Effect::SetRem {
                    key,
                    members,
                    cas: self.u64()?,
                })
            }
            T_ZPUT | T_ZITEM => {
                let put = Effect::ZsetPut {
                    key: self.bytes("key", limits.max_key)?,
                    entries: self.entries(limits)?,
                    big: self.flag("sorted set form flag")?,
                    expire_at: self.u64()?,
                    flags: self.u32()?,
                    cas: self.u64()?,
                    bits: self.bits()?,
                };
                if tag == T_ZPUT {
                    Record::Effect(put)
                } else {
                    Record::Item(put)
                }
            }
            T_ZADD => Record::Effect(Effect::ZsetAdd {
                key: self.bytes("key", limits.max_key)?,
                entries: self.entries(limits)?,
                cas: self.u64()?,
            }),
            T_ZREM => {
                let key = self.bytes("key", limits.max_key)?;
                let n = self.u32()? as usize;
                let room = (self.buf.len() - self.pos) / 4;
                let mut members = Vec::with_capacity(n.min(room));
                for _ in 0..n {
                    members.push(self.bytes("member", limits.max_value)?);
                }
                Record::Effect(Effect::ZsetRem {
                    key,
                    members,
                    cas: self.u64()?,
                })
            }
            T_END => Record::End,
            other => return Err(DecodeError::Tag(other).into()),
        })
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Fail> {
        let end = self.pos.checked_add(n).ok_or(Fail::Short)?;
        let b = self.buf.get(self.pos..end).ok_or(Fail::Short)?;
        self.pos = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Fail> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Fail> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A LEB128 varint of at most 64 bits, in its shortest encoding.
    fn varint(&mut self, field: &'static str) -> Result<u64, Fail> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            if (i > 0 && byte == 0) || (i == 9 && byte > 1) {
                return Err(DecodeError::Invalid {
                    field,
                    value: u64::from(byte),
                }
                .into());
            }
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid { field, value: v }.into())
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, Fail> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::Invalid {
                field,
                value: u64::from(other),
            }
            .into()),
        }
    }

    fn bits(&mut self) -> Result<ItemBits, Fail> {
        let b = self.u8()?;
        if b > 3 {
            return Err(DecodeError::Invalid {
                field: "item bits",
                value: u64::from(b),
            }
            .into());
        }
        Ok(ItemBits {
            stale: b & 1 != 0,
            won: b & 2 != 0,
        })
    }

    /// A hash's packed pairs: a byte string that must parse as pairs.
    fn pairs(&mut self, limits: &Limits) -> Result<Bytes, Fail> {
        let b = self.bytes("pairs", limits.max_value)?;
        baton_engine::hash::packed::validate(&b, usize::MAX).map_err(DecodeError::Pairs)?;
        Ok(b)
    }

    /// A list's packed elements: a byte string that must parse as elements.
    fn items(&mut self, limits: &Limits) -> Result<Bytes, Fail> {
        let b = self.bytes("items", limits.max_value)?;
        baton_engine::list::packed::validate(&b, usize::MAX).map_err(DecodeError::Items)?;
        Ok(b)
    }

    /// A set's packed members: a byte string that must parse as members.
    fn members(&mut self, limits: &Limits) -> Result<Bytes, Fail> {
        let b = self.bytes("members", limits.max_value)?;
        baton_engine::set::packed::validate(&b, usize::MAX).map_err(DecodeError::Members)?;
        Ok(b)
    }

    /// A sorted set's packed entries: a byte string that must parse as entries.
    fn entries(&mut self, limits: &Limits) -> Result<Bytes, Fail> {
        let b = self.bytes("entries", limits.max_value)?;
        baton_engine::zset::packed::validate(&b, usize::MAX).map_err(DecodeError::Entries)?;
        Ok(b)
    }

    /// A length-prefixed byte string, its length checked before it is read.
    fn bytes(&mut self, field: &'static str, max: usize) -> Result<Bytes, Fail> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { field, len, max }.into());
        }
        let src = self.src;
        let b = self.take(len)?;
        Ok(match src {
            Some(src) => src.slice_ref(b),
            None => Bytes::copy_from_slice(b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: Record) {
        let mut buf = Vec::new();
        encode(&r, &mut buf);
        let limits = Limits::default();
        assert_eq!(decode(&buf, &limits), Ok(Some((r.clone(), buf.len()))));
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut], &limits), Ok(None), "{r:?} cut at {cut}");
        }
        // The same record behind another, its byte strings shared with the buffer.
        let mut two = vec![T_FLUSH];
        two.extend_from_slice(&buf);
        let shared = Bytes::from(two);
        let decoded = decode_shared(&shared, 1, &limits);
        assert_eq!(decoded, Ok(Some((r.clone(), buf.len()))));
        if let Some(k) = decoded.unwrap().and_then(|(r, _)| match r {
            Record::Effect(e) | Record::Item(e) => e.key().cloned(),
            _ => None,
        }) {
            let within = shared.as_ptr_range();
            assert!(k.is_empty() || within.contains(&k.as_ptr()), "not a copy");
        }
        for cut in 1..shared.len() {
            let short = shared.slice(..cut);
            assert_eq!(
                decode_shared(&short, 1, &limits),
                Ok(None),
                "{r:?} cut at {cut}"
            );
        }
    }

    fn key(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn every_record_round_trips_and_waits_for_its_last_byte() {
        round_trip(Record::Hello(Hello {
            version: VERSION,
            shard: 1,
            cores: 2,
            replid: [b'a'; 40],
            offset: 12345,
            full: true,
        }));
        let put = Effect::Put {
            key: key("k"),
            value: key("value"),
            expire_at: 1_700_000_000_000,
            flags: 7,
            cas: (9 << 16) | 1,
            bits: ItemBits {
                stale: true,
                won: false,
            },
        };
        round_trip(Record::Effect(put.clone()));
        round_trip(Record::Item(put));
        round_trip(Record::Effect(Effect::Expire {
            key: key("k"),
            expire_at: u64::MAX,
        }));
        round_trip(Record::Effect(Effect::Stamp {
            key: key(""),
            cas: 3,
            bits: ItemBits {
                stale: false,
                won: true,
            },
        }));
        for cause in [DelCause::Deleted, DelCause::Expired, DelCause::Evicted] {
            round_trip(Record::Effect(Effect::Del {
                key: key("gone"),
                cause,
            }));
        }
        round_trip(Record::Effect(Effect::Flush));
        round_trip(Record::End);
        round_trip(Record::Effect(Effect::ListInsert {
            key: key("l"),
            index: 3,
            value: key("v"),
            cas: 9,
        }));
        for indexes in [vec![], vec![0], vec![0, 1, 2, 200, 70_000, u64::MAX]] {
            round_trip(Record::Effect(Effect::ListRem {
                key: key("l"),
                indexes,
                cas: 10,
            }));
        }
        let pairs = Bytes::from(baton_engine::hash::packed::from_pairs([
            (&b"f"[..], &b"v"[..]),
            (b"g", b""),
        ]));
        let hput = Effect::HashPut {
            key: key("h"),
            pairs: pairs.clone(),
            table: true,
            expire_at: 5,
            flags: 0,
            cas: 77,
            bits: ItemBits::default(),
        };
        round_trip(Record::Effect(hput.clone()));
        round_trip(Record::Item(hput));
        round_trip(Record::Effect(Effect::HashSet {
            key: key("h"),
            pairs,
            cas: 78,
        }));
        round_trip(Record::Effect(Effect::HashDel {
            key: key("h"),
            fields: vec![key("f"), key("")],
            cas: 79,
        }));
        let items = Bytes::from(baton_engine::list::packed::pack([&b"a"[..], b"", b"c"]));
        let lput = Effect::ListPut {
            key: key("l"),
            items: items.clone(),
            expire_at: 9,
            flags: 3,
            cas: 80,
            bits: ItemBits::default(),
        };
        round_trip(Record::Effect(lput.clone()));
        round_trip(Record::Item(lput));
        for left in [true, false] {
            round_trip(Record::Effect(Effect::ListPush {
                key: key("l"),
                left,
                items: items.clone(),
                cas: 81,
            }));
            round_trip(Record::Effect(Effect::ListPop {
                key: key("l"),
                left,
                count: u64::MAX,
                cas: 82,
            }));
        }
        round_trip(Record::Effect(Effect::ListSet {
            key: key("l"),
            index: 7,
            value: key("v"),
            cas: 83,
        }));
    }

    #[test]
    fn set_records_round_trip_and_refuse_bad_members() {
        use baton_engine::set::{packed, Encoding};
        let members = Bytes::from(packed::from_members([&b"a"[..], b"", b"12"]));
        for enc in [Encoding::Ints, Encoding::Packed, Encoding::Table] {
            let sput = Effect::SetPut {
                key: key("s"),
                members: members.clone(),
                enc,
                expire_at: 5,
                flags: 3,
                cas: 80,
                bits: ItemBits::default(),
            };
            round_trip(Record::Effect(sput.clone()));
            round_trip(Record::Item(sput));
        }
        round_trip(Record::Effect(Effect::SetAdd {
            key: key("s"),
            members,
            cas: 81,
        }));
        round_trip(Record::Effect(Effect::SetRem {
            key: key("s"),
            members: vec![key("a"), key("")],
            cas: 82,
        }));
        let mut bad = vec![T_SADD];
        put_bytes(&mut bad, b"s");
        put_bytes(&mut bad, &[5, b'a']);
        bad.extend_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            decode(&bad, &Limits::default()),
            Err(DecodeError::Members(_))
        ));
        let mut enc = vec![T_SPUT];
        put_bytes(&mut enc, b"s");
        put_bytes(&mut enc, b"");
        enc.push(3);
        assert!(matches!(
            decode(&enc, &Limits::default()),
            Err(DecodeError::Invalid {
                field: "set encoding",
                ..
            })
        ));
        let entries = Bytes::from(baton_engine::zset::packed::from_entries([
            (&b"m"[..], 1.5),
            (b"", f64::NEG_INFINITY),
        ]));
        let zput = Effect::ZsetPut {
            key: key("z"),
            entries: entries.clone(),
            big: true,
            expire_at: 5,
            flags: 0,
            cas: 80,
            bits: ItemBits::default(),
        };
        round_trip(Record::Effect(zput.clone()));
        round_trip(Record::Item(zput));
        round_trip(Record::Effect(Effect::ZsetAdd {
            key: key("z"),
            entries,
            cas: 81,
        }));
        round_trip(Record::Effect(Effect::ZsetRem {
            key: key("z"),
            members: vec![key("m"), key("")],
            cas: 82,
        }));
        let mut bad_entries = vec![T_ZADD];
        bad_entries.extend_from_slice(&1u32.to_le_bytes());
        bad_entries.push(b'z');
        bad_entries.extend_from_slice(&3u32.to_le_bytes());
        bad_entries.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            decode(&bad_entries, &Limits::default()),
            Err(DecodeError::Entries(_))
        ));
    }

    #[test]
    fn malformed_records_are_errors_that_say_why() {
        let limits = Limits {
            max_key: 8,
            max_value: 8,
        };
        assert_eq!(decode(&[0x42], &limits), Err(DecodeError::Tag(0x42)));
        let mut long = vec![T_PUT];
        long.extend_from_slice(&9u32.to_le_bytes());
        assert_eq!(
            decode(&long, &limits),
            Err(DecodeError::TooLong {
                field: "key",
                len: 9,
                max: 8
            }),
            "a length over the limit is refused before its bytes arrive"
        );
        let mut cause = vec![T_DEL];
        cause.extend_from_slice(&1u32.to_le_bytes());
        cause.extend_from_slice(b"k\x09");
        assert!(matches!(
            decode(&cause, &limits),
            Err(DecodeError::Invalid {
                field: "delete cause",
                ..
            })
        ));
        let mut hello = Vec::new();
        encode_hello(
            &Hello {
                version: VERSION,
                shard: 0,
                cores: 1,
                replid: [b'0'; 40],
                offset: 0,
                full: false,
            },
            &mut hello,
        );
        let mut old = hello.clone();
        old[5] = 9;
        assert_eq!(
            decode(&old, &limits),
            Err(DecodeError::Version { found: 9 })
        );
        let mut v1 = hello.clone();
        v1[5] = 1;
        assert!(
            matches!(decode(&v1, &limits), Ok(Some((Record::Hello(_), _)))),
            "version 1 flows still decode"
        );
        let mut bad_pairs = vec![T_HSET];
        bad_pairs.extend_from_slice(&1u32.to_le_bytes());
        bad_pairs.push(b'h');
        bad_pairs.extend_from_slice(&2u32.to_le_bytes());
        bad_pairs.extend_from_slice(&[5, b'x']);
        assert!(matches!(
            decode(&bad_pairs, &limits),
            Err(DecodeError::Pairs(_))
        ));
        let mut bad_items = vec![T_LPUSH];
        bad_items.extend_from_slice(&1u32.to_le_bytes());
        bad_items.extend_from_slice(&[b'l', 1]);
        bad_items.extend_from_slice(&2u32.to_le_bytes());
        bad_items.extend_from_slice(&[5, b'x']);
        bad_items.extend_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            decode(&bad_items, &limits),
            Err(DecodeError::Items(_))
        ));
        // LREM's indexes: a gap past u64::MAX, and a varint longer than it need be.
        let mut past = vec![T_LREM];
        past.extend_from_slice(&1u32.to_le_bytes());
        past.push(b'l');
        past.extend_from_slice(&2u32.to_le_bytes());
        past.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0]);
        past.extend_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            decode(&past, &limits),
            Err(DecodeError::Invalid {
                field: "list index gap",
                ..
            })
        ));
        let mut long_varint = vec![T_LREM];
        long_varint.extend_from_slice(&1u32.to_le_bytes());
        long_varint.push(b'l');
        long_varint.extend_from_slice(&1u32.to_le_bytes());
        long_varint.extend_from_slice(&[0x81, 0]);
        assert!(matches!(
            decode(&long_varint, &limits),
            Err(DecodeError::Invalid {
                field: "list index",
                ..
            })
        ));
        // A count of indexes far past the bytes present waits for them, allocating
        // nothing it asked for.
        let mut many = vec![T_LREM];
        many.extend_from_slice(&1u32.to_le_bytes());
        many.push(b'l');
        many.extend_from_slice(&u32::MAX.to_le_bytes());
        many.push(3);
        assert_eq!(decode(&many, &limits), Ok(None));
        let mut bad_side = vec![T_LPOP];
        bad_side.extend_from_slice(&1u32.to_le_bytes());
        bad_side.extend_from_slice(&[b'l', 2]);
        bad_side.extend_from_slice(&[0; 16]);
        assert!(matches!(
            decode(&bad_side, &limits),
            Err(DecodeError::Invalid { .. })
        ));
        let mut magic = hello.clone();
        magic[1] = b'X';
        assert_eq!(decode(&magic, &limits), Err(DecodeError::Magic));
        let mut shard = hello;
        shard[7] = 5; // shard 5 of 1 core
        assert!(matches!(
            decode(&shard, &limits),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
