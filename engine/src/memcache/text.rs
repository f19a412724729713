//! The classic text commands' item logic: retrieval, the six storage modes, delete,
//! incr/decr and touch. The meta commands reuse [`store_item`], [`retouch`] and the counter
//! helpers.

use super::{expiry, ttl_seconds, Expiry, McCtx, McItem, McResult, StoreMode, StoreOp};
use crate::shard::Shard;
use crate::store::NO_EXPIRY;

/// How a storage command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoreOutcome {
    /// Stored: the item's CAS and its final size (grown by append/prepend).
    Stored {
        cas: u64,
        size: usize,
    },
    NotStored,
    Exists,
    NotFound,
}

/// A storage request, as text `set`..`cas` and meta `ms` both express it.
pub(super) struct Write {
    pub mode: StoreMode,
    pub flags: u32,
    pub exptime: i64,
    pub data: Vec<u8>,
    /// The CAS to compare: `cas`'s unique, or `ms C`. 0 compares with nothing, so a
    /// [`StoreMode::Cas`] with 0 fails and an append with 0 proceeds, as memcached's do.
    pub compare: Option<u64>,
    /// The CAS to give the new version (`E`), instead of the shard's next one.
    pub new_cas: Option<u64>,
    /// `ms MA N<ttl>`: an append/prepend miss stores the data with this exptime.
    pub vivify: Option<i64>,
}

/// Writes `value` with memcached's exptime rules; an expired exptime removes the key, as
/// memcached's item stored already expired is never seen again.
pub(super) fn write_value(
    shard: &mut Shard,
    key: &[u8],
    value: Vec<u8>,
    exptime: i64,
    flags: u32,
    now: u64,
) {
    match expiry(exptime, now) {
        Expiry::Never => shard.put(key, &value, NO_EXPIRY, flags),
        Expiry::At(at) => shard.put(key, &value, at, flags),
        Expiry::Expired => {
            shard.delete(key, now);
        }
    }
}

/// Sets a live key's expiry from an exptime and returns its new TTL in seconds (-1 for
/// none, 0 when the exptime has already passed and the key is gone).
pub(super) fn retouch(shard: &mut Shard, key: &[u8], exptime: i64, now: u64) -> i64 {
    match expiry(exptime, now) {
        Expiry::Never => {
            shard.set_expire(key, NO_EXPIRY, now);
            -1
        }
        Expiry::At(at) => {
            shard.set_expire(key, at, now);
            ttl_seconds(at, now)
        }
        Expiry::Expired => {
            shard.delete(key, now);
            0
        }
    }
}

/// The stored-data rule of memcached's incr/decr (`safe_strtoull` on the item): optional
/// leading whitespace and sign, decimal digits fitting in 64 bits, then the end or a
/// whitespace byte. Negative numbers and empty values are not numbers.
pub(super) fn parse_counter(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut rest = &value[start..];
    if let Some(r) = rest.strip_prefix(b"+") {
        rest = r;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    if let Some(&next) = rest.get(digits) {
        if !next.is_ascii_whitespace() {
            return None;
        }
    }
    rest[..digits].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Replaces a live counter's digits in place (flags and expiry kept, CAS bumped).
pub(super) fn set_counter(shard: &mut Shard, key: &[u8], n: u64, now: u64) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    shard.update(key, now, |v| {
        v.clear();
        v.extend_from_slice(digits);
    });
}

/// incr wraps at 2^64; decr stops at 0.
pub(super) fn apply_delta(n: u64, incr: bool, delta: u64) -> u64 {
    if incr {
        n.wrapping_add(delta)
    } else {
        n.saturating_sub(delta)
    }
}

/// The storage logic shared by the text commands and `ms` (memcached's `do_store_item`).
pub(super) fn store_item(shard: &mut Shard, key: &[u8], w: Write, ctx: &McCtx) -> StoreOutcome {
    let now = ctx.now_ms;
    let current = shard
        .lookup(key, now)
        .map(|e| (e.cas(), e.value().len(), e.string().is_some()));
    let compare = w.compare.filter(|&c| c != 0);
    let Some((cur_cas, cur_len, is_string)) = current else {
        return match (w.mode, w.vivify) {
            (StoreMode::Set | StoreMode::Add, _) => put_whole(shard, key, w, now),
            (StoreMode::Append | StoreMode::Prepend, Some(ttl)) => {
                put_whole(shard, key, Write { exptime: ttl, ..w }, now)
            }
            (StoreMode::Cas, _) => StoreOutcome::NotFound,
            _ => StoreOutcome::NotStored,
        };
    };
    match w.mode {
        StoreMode::Add => StoreOutcome::NotStored,
        StoreMode::Cas if compare != Some(cur_cas) => StoreOutcome::Exists,
        StoreMode::Set | StoreMode::Replace | StoreMode::Cas => put_whole(shard, key, w, now),
        // A key of another Redis type (a hash) cannot take bytes: not stored.
        StoreMode::Append | StoreMode::Prepend if !is_string => StoreOutcome::NotStored,
        StoreMode::Append | StoreMode::Prepend => {
            if compare.is_some_and(|c| c != cur_cas) {
                return StoreOutcome::Exists;
            }
            let size = cur_len + w.data.len();
            if size > ctx.max_item_size {
                return StoreOutcome::NotStored;
            }
            let append = w.mode == StoreMode::Append;
            shard.update(key, now, |v| {
                if append {
                    v.extend_from_slice(&w.data);
                } else {
                    v.splice(0..0, w.data.iter().copied());
                }
            });
            let cas = shard.mc_cas_after_write(key, now, w.new_cas);
            StoreOutcome::Stored { cas, size }
        }
    }
}

fn put_whole(shard: &mut Shard, key: &[u8], w: Write, now: u64) -> StoreOutcome {
    let size = w.data.len();
    write_value(shard, key, w.data, w.exptime, w.flags, now);
    let cas = shard.mc_cas_after_write(key, now, w.new_cas);
    StoreOutcome::Stored { cas, size }
}

/* get|gets <key>* ; gat|gats <exptime> <key>* (one key per op) */
pub(super) fn get(shard: &mut Shard, key: Vec<u8>, touch: Option<i64>, ctx: &McCtx) -> McResult {
    let now = ctx.now_ms;
    let Some((value, flags, cas)) =
        get_in_place(shard, &key, now).map(|(v, f, c)| (v.to_vec(), f, c))
    else {
        return McResult::Value(None);
    };
    if let Some(exptime) = touch {
        retouch(shard, &key, exptime, now);
    }
    McResult::Value(Some(McItem {
        key,
        value,
        flags,
        cas,
    }))
}

/// A `get`'s hit where it lies: the value, its client flags and its CAS unique.
#[inline]
pub(super) fn get_in_place<'s>(
    shard: &'s mut Shard,
    key: &[u8],
    now: u64,
) -> Option<(&'s [u8], u32, u64)> {
    shard
        .lookup_read(key, now)
        .and_then(|e| e.string().map(|v| (v, e.flags(), e.cas())))
}

/* set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply] ;
 * cas <key> <flags> <exptime> <bytes> <cas unique> [noreply] */
pub(super) fn store(shard: &mut Shard, op: StoreOp, ctx: &McCtx) -> McResult {
    let w = Write {
        mode: op.mode,
        flags: op.flags,
        exptime: op.exptime,
        data: op.data,
        compare: (op.mode == StoreMode::Cas).then_some(op.cas),
        new_cas: None,
        vivify: None,
    };
    match store_item(shard, &op.key, w, ctx) {
        StoreOutcome::Stored { .. } => McResult::Stored,
        StoreOutcome::NotStored => McResult::NotStored,
        StoreOutcome::Exists => McResult::Exists,
        StoreOutcome::NotFound => McResult::NotFound,
    }
}

/* delete <key> [noreply] */
pub(super) fn delete(shard: &mut Shard, key: &[u8], ctx: &McCtx) -> McResult {
    if shard.delete(key, ctx.now_ms) {
        McResult::Deleted
    } else {
        McResult::NotFound
    }
}

/* incr|decr <key> <value> [noreply] */
pub(super) fn arith(
    shard: &mut Shard,
    key: &[u8],
    incr: bool,
    delta: u64,
    ctx: &McCtx,
) -> McResult {
    let now = ctx.now_ms;
    let current = match shard.lookup(key, now) {
        None => return McResult::NotFound,
        Some(e) => e.string().and_then(parse_counter),
    };
    let Some(n) = current else {
        return McResult::NonNumeric;
    };
    let n = apply_delta(n, incr, delta);
    set_counter(shard, key, n, now);
    McResult::Number(n)
}

/* touch <key> <exptime> [noreply] */
pub(super) fn touch(shard: &mut Shard, key: &[u8], exptime: i64, ctx: &McCtx) -> McResult {
    let now = ctx.now_ms;
    if shard.lookup(key, now).is_none() {
        return McResult::NotFound;
    }
    retouch(shard, key, exptime, now);
    McResult::Touched
}
