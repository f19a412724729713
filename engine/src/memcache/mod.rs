//! memcached's per-key operations, executed against a [`Shard`].
//!
//! The codec in `baton-net` turns text and meta commands into [`McOp`]s, one per key. The
//! connection routes each op to the core that owns its key, runs [`execute`] there and
//! carries the [`McResult`] back; the encoder turns results into memcached's reply text.
//! Ops and results are plain owned data (`Send`), so they cross cores by value, and no
//! op needs anything but its own key's shard.
//!
//! ```text
//!   conn core                         owner core
//!   parse ─► McOp ─────── mesh ─────► execute(&mut Shard, op, &ctx)
//!   encode ◄─ McResult ◄─ mesh ─────── McResult
//! ```
//!
//! Semantics are memcached 1.6's: CAS uniques change on every write; `append`/`prepend`
//! keep the item's flags and expiry; `incr` wraps at 2^64 and `decr` stops at 0; exptimes
//! follow [`expiry`]. Items are the same [`crate::Entry`]s Redis commands see: a Redis
//! `SET` key reads back here with flags 0, and a memcached item reads back in Redis.
//!
//! Every write goes through the shard's write path ([`Shard::put`], [`Shard::update`],
//! [`Shard::delete`], [`Shard::set_expire`]), including the two things memcached adds on
//! top: a client-chosen CAS (the meta `E` flag) and the per-item stale and win-token bits
//! (`Shard::mc_cas_after_write` and `Shard::set_item_bits`, in `shard/write.rs`).

mod meta;
mod text;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_meta;

use crate::shard::Shard;
use crate::store::NO_EXPIRY;

pub use meta::{MetaArith, MetaDelete, MetaGet, MetaSet};

/// memcached's `REALTIME_MAXDELTA`: exptimes up to 30 days are relative, larger ones are
/// absolute unix times.
pub const MAX_RELATIVE_EXPTIME: i64 = 60 * 60 * 24 * 30;

/// memcached's default item size limit (`-I`), 1 MiB.
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;

/// When an item written with a memcached exptime expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// exptime 0: never.
    Never,
    /// Absolute unix milliseconds, in the future.
    At(u64),
    /// A negative exptime or an absolute time already past: the write happens but the
    /// item is gone at once, as memcached stores it already expired.
    Expired,
}

/// Converts a memcached exptime (seconds) at `now_ms`: 0 never expires, 1..=30 days is
/// relative, anything larger is an absolute unix time, and a negative value has expired.
pub fn expiry(exptime: i64, now_ms: u64) -> Expiry {
    match exptime {
        0 => Expiry::Never,
        t if t < 0 => Expiry::Expired,
        t if t <= MAX_RELATIVE_EXPTIME => Expiry::At(now_ms.saturating_add(t as u64 * 1000)),
        t => {
            let at = (t as u64).saturating_mul(1000);
            if at <= now_ms {
                Expiry::Expired
            } else {
                Expiry::At(at)
            }
        }
    }
}

/// When `flush_all [delay]` takes effect: `None` now, else at that unix ms. The server
/// flushes every shard at that moment; memcached's "items updated before the flush time
/// are invalid" is exactly "everything present at that moment".
pub fn flush_deadline(delay: i64, now_ms: u64) -> Option<u64> {
    match expiry(delay, now_ms) {
        Expiry::At(at) => Some(at),
        Expiry::Never | Expiry::Expired => None,
    }
}

/// Seconds left before `expire_at` (rounded up), or -1 for an item without expiry, as the
/// meta `t` flag reports it.
pub fn ttl_seconds(expire_at: u64, now_ms: u64) -> i64 {
    if expire_at == NO_EXPIRY {
        -1
    } else {
        (expire_at.saturating_sub(now_ms).div_ceil(1000)) as i64
    }
}

/// What an op may depend on besides the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McCtx {
    /// The shard's clock, unix ms.
    pub now_ms: u64,
    /// The item size limit; `append`/`prepend` beyond it answer NOT_STORED as memcached's
    /// failed allocation does. The codec rejects larger `set`s before they get here.
    pub max_item_size: usize,
}

impl McCtx {
    pub fn new(now_ms: u64) -> McCtx {
        McCtx {
            now_ms,
            max_item_size: DEFAULT_MAX_ITEM_SIZE,
        }
    }
}

/// The six storage commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// `set`/`add`/`replace`/`append`/`prepend`/`cas` for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOp {
    pub mode: StoreMode,
    pub key: Vec<u8>,
    pub flags: u32,
    /// Raw exptime (see [`expiry`]); ignored by append and prepend.
    pub exptime: i64,
    pub data: Vec<u8>,
    /// The CAS unique to compare, for [`StoreMode::Cas`] only.
    pub cas: u64,
}

/// One per-key memcached operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McOp {
    /// `get`/`gets` for one key, or `gat`/`gats` when `touch` holds the new exptime.
    Get {
        key: Vec<u8>,
        touch: Option<i64>,
    },
    Store(StoreOp),
    Delete {
        key: Vec<u8>,
    },
    /// `incr`/`decr`.
    Arith {
        key: Vec<u8>,
        incr: bool,
        delta: u64,
    },
    Touch {
        key: Vec<u8>,
        exptime: i64,
    },
    MetaGet(MetaGet),
    MetaSet(MetaSet),
    MetaDelete(MetaDelete),
    MetaArith(MetaArith),
    /// `me`: the item's metadata.
    MetaDebug {
        key: Vec<u8>,
    },
}

/// What kind of op, for the server's `stats` counters (ops move into [`execute`], so take
/// the kind first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McOpKind {
    Get,
    GetAndTouch,
    Store(StoreMode),
    Delete,
    Incr,
    Decr,
    Touch,
    MetaGet,
    MetaSet,
    MetaDelete,
    MetaArith,
    MetaDebug,
}

impl McOp {
    /// The key that routes this op to its core.
    pub fn key(&self) -> &[u8] {
        match self {
            McOp::Get { key, .. }
            | McOp::Delete { key }
            | McOp::Arith { key, .. }
            | McOp::Touch { key, .. }
            | McOp::MetaDebug { key } => key,
            McOp::Store(s) => &s.key,
            McOp::MetaGet(m) => &m.key,
            McOp::MetaSet(m) => &m.key,
            McOp::MetaDelete(m) => &m.key,
            McOp::MetaArith(m) => &m.key,
        }
    }

    pub fn kind(&self) -> McOpKind {
        match self {
            McOp::Get { touch: None, .. } => McOpKind::Get,
            McOp::Get { touch: Some(_), .. } => McOpKind::GetAndTouch,
            McOp::Store(s) => McOpKind::Store(s.mode),
            McOp::Delete { .. } => McOpKind::Delete,
            McOp::Arith { incr: true, .. } => McOpKind::Incr,
            McOp::Arith { incr: false, .. } => McOpKind::Decr,
            McOp::Touch { .. } => McOpKind::Touch,
            McOp::MetaGet(_) => McOpKind::MetaGet,
            McOp::MetaSet(_) => McOpKind::MetaSet,
            McOp::MetaDelete(_) => McOpKind::MetaDelete,
            McOp::MetaArith(_) => McOpKind::MetaArith,
            McOp::MetaDebug { .. } => McOpKind::MetaDebug,
        }
    }
}

/// An item as a retrieval command returns it. The key is the op's own, moved here so the
/// encoder can write `VALUE <key> ...` without the op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McItem {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub flags: u32,
    pub cas: u64,
}

/// The outcome of a meta command, before the encoder picks the return flags the client
/// asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// `HD`, or `VA` when a value is returned.
    Ok,
    /// `EN` for `mg`, `NF` for the others.
    Miss,
    /// `NS`.
    NotStored,
    /// `EX`.
    Exists,
}

/// A meta command's result: the status plus every item field a return flag may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaResult {
    pub status: MetaStatus,
    /// The data block (`VA`): the item's value for `mg v`, the number for `ma v`.
    pub value: Option<Vec<u8>>,
    /// Client flags (`f`).
    pub flags: u32,
    /// CAS unique (`c`); 0 when nothing was stored.
    pub cas: u64,
    /// Value size in bytes (`s`).
    pub size: usize,
    /// Remaining TTL in seconds, -1 for none (`t`), after the command's own `T`/`N`.
    pub ttl: i64,
    /// The TTL before the command changed it: memcached reports this when `t` precedes
    /// the `T`/`N` flag that changed it.
    pub ttl_before: i64,
    /// `h`: whether the item had been read before this request.
    pub hit_before: bool,
    /// `l`: seconds since the item was last read (or written) before this request.
    pub last_access: u64,
    /// `Z`: a win token for this item went to an earlier request.
    pub token_sent: bool,
    /// `X`: the item is stale (invalidated by `md I` or `ms I`).
    pub stale: bool,
    /// `W`: this request won the right to recache the item.
    pub won: bool,
}

impl MetaResult {
    pub fn status(status: MetaStatus) -> MetaResult {
        MetaResult {
            status,
            value: None,
            flags: 0,
            cas: 0,
            size: 0,
            ttl: -1,
            ttl_before: -1,
            hit_before: false,
            last_access: 0,
            token_sent: false,
            stale: false,
            won: false,
        }
    }
}

/// `me`'s view of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McDebug {
    pub key: Vec<u8>,
    /// Seconds until expiry, -1 for none.
    pub ttl: i64,
    pub cas: u64,
    /// Key plus value bytes.
    pub size: usize,
    /// Seconds since the last access (`la`).
    pub last_access: u64,
    /// Whether the item was read since it was written (`fetch`).
    pub fetched: bool,
}

/// The result of one [`McOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McResult {
    /// A retrieval: the item, or `None` on a miss.
    Value(Option<McItem>),
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    /// incr/decr's new value.
    Number(u64),
    /// `CLIENT_ERROR cannot increment or decrement non-numeric value`.
    NonNumeric,
    /// `SERVER_ERROR out of memory storing object`: the shard is over its `maxmemory`
    /// budget and its policy cannot make room (`noeviction`, or a volatile policy with no
    /// key that has a TTL).
    OutOfMemory,
    Meta(MetaResult),
    /// `me`: the item's metadata, or `None` on a miss.
    Debug(Option<McDebug>),
}

/// [`execute`] for a `get` or `gets` of one key without a touch, giving a hit where it
/// lies (value, client flags, CAS unique) instead of a copy in a [`McResult`]: the caller
/// encodes it while the shard is still borrowed, which saves a `get` the value's
/// allocation, copy and free. `None` is a miss.
#[inline]
pub fn execute_get<'s>(
    shard: &'s mut Shard,
    key: &[u8],
    ctx: &McCtx,
) -> Option<(&'s [u8], u32, u64)> {
    shard.now = ctx.now_ms;
    text::get_in_place(shard, key, ctx.now_ms)
}

/// Runs one op against the shard that owns its key.
pub fn execute(shard: &mut Shard, op: McOp, ctx: &McCtx) -> McResult {
    shard.now = ctx.now_ms;
    if matches!(op, McOp::Store(_) | McOp::MetaSet(_)) && !shard.admit_write() {
        return McResult::OutOfMemory;
    }
    match op {
        McOp::Get { key, touch } => text::get(shard, key, touch, ctx),
        McOp::Store(s) => text::store(shard, s, ctx),
        McOp::Delete { key } => text::delete(shard, &key, ctx),
        McOp::Arith { key, incr, delta } => text::arith(shard, &key, incr, delta, ctx),
        McOp::Touch { key, exptime } => text::touch(shard, &key, exptime, ctx),
        McOp::MetaGet(m) => McResult::Meta(meta::get(shard, m, ctx)),
        McOp::MetaSet(m) => McResult::Meta(meta::set(shard, m, ctx)),
        McOp::MetaDelete(m) => McResult::Meta(meta::delete(shard, m, ctx)),
        McOp::MetaArith(m) => match meta::arith(shard, m, ctx) {
            Some(r) => McResult::Meta(r),
            None => McResult::NonNumeric,
        },
        McOp::MetaDebug { key } => McResult::Debug(meta::debug(shard, key, ctx)),
    }
}
