//! The meta commands' item logic: `mg`, `ms`, `md`, `ma` and `me`. The codec has already
//! parsed the flags; these structs hold only what changes what happens to the item. Flags
//! that only shape the reply (`k`, `O`, `q`, `c`, `f`, `s`, `t`, `b`) stay with the encoder.

use super::text::{
    apply_delta, parse_counter, retouch, set_counter, store_item, write_value, StoreOutcome, Write,
};
use super::{ttl_seconds, McCtx, McDebug, MetaResult, MetaStatus, StoreMode};
use crate::entry::ItemBits;
use crate::shard::Shard;

/// `mg <key> <flags>*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaGet {
    pub key: Vec<u8>,
    /// `v`: return the value.
    pub value: bool,
    /// `T<exptime>`: update the TTL on a hit.
    pub touch: Option<i64>,
    /// `C<cas>`: leave the value out when the item's CAS equals this.
    pub unless_cas: Option<u64>,
    /// `N<exptime>`: on a miss, create an empty item with this exptime and win it.
    pub vivify: Option<i64>,
    /// `R<secs>`: win the right to recache when the item's TTL is below this.
    pub recache: Option<i64>,
}

/// `ms <key> <datalen> <flags>*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSet {
    pub key: Vec<u8>,
    pub data: Vec<u8>,
    /// `M<mode>`: Set (default), Add (`E`), Replace (`R`), Append (`A`), Prepend (`P`).
    /// With `C`, Set and Replace act as `cas`.
    pub mode: StoreMode,
    /// `F<flags>`.
    pub flags: u32,
    /// `T<exptime>`.
    pub exptime: i64,
    /// `C<cas>`: compare before storing.
    pub compare_cas: Option<u64>,
    /// `E<cas>`: the CAS to give the new version.
    pub new_cas: Option<u64>,
    /// `N<exptime>`: an append/prepend miss creates the item with this exptime.
    pub vivify: Option<i64>,
    /// `I` with `C`: a CAS older than the item's stores the data anyway, marked stale
    /// (keeping the item's expiry and win state), instead of failing with `EX`.
    pub invalidate: bool,
}

/// `md <key> <flags>*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaDelete {
    pub key: Vec<u8>,
    /// `C<cas>`: delete only if the CAS matches.
    pub compare_cas: Option<u64>,
    /// `E<cas>`: the CAS of the emptied item (`x`).
    pub new_cas: Option<u64>,
    /// `x`: empty the value but keep the item (with flags `F`, exptime `T`).
    pub remove_value: bool,
    pub flags: u32,
    pub exptime: i64,
    /// `I`: mark the item stale (and bump its CAS) instead of deleting it; `T` then sets
    /// its TTL.
    pub invalidate: bool,
}

/// `ma <key> <flags>*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArith {
    pub key: Vec<u8>,
    /// `MI`/`M+` (default) or `MD`/`M-`.
    pub incr: bool,
    /// `D<delta>`, default 1.
    pub delta: u64,
    /// `J<initial>`, default 0: the value created on a miss with `N`.
    pub initial: u64,
    /// `N<exptime>`: create the item on a miss.
    pub vivify: Option<i64>,
    /// `T<exptime>`: update the TTL on success.
    pub touch: Option<i64>,
    /// `C<cas>`: apply only if the CAS matches (0 compares with nothing).
    pub compare_cas: Option<u64>,
    /// `E<cas>`: the CAS to give the new version.
    pub new_cas: Option<u64>,
    /// `v`: return the new number as a data block.
    pub value: bool,
}

impl MetaArith {
    /// `ma <key>` with no flags: increment by one.
    pub fn incr(key: Vec<u8>) -> MetaArith {
        MetaArith {
            key,
            incr: true,
            delta: 1,
            initial: 0,
            vivify: None,
            touch: None,
            compare_cas: None,
            new_cas: None,
            value: false,
        }
    }
}

pub(super) fn get(shard: &mut Shard, m: MetaGet, ctx: &McCtx) -> MetaResult {
    let now = ctx.now_ms;
    // A key of another Redis type (a hash) is a miss to memcached, and is not replaced.
    let found = shard.lookup_read_seen(&m.key, now);
    if found.as_ref().is_some_and(|(e, _)| e.string().is_none()) {
        return MetaResult::status(MetaStatus::Miss);
    }
    let Some((e, seen)) = found else {
        return match m.vivify {
            Some(exptime) => vivify(shard, &m, exptime, ctx),
            None => MetaResult::status(MetaStatus::Miss),
        };
    };
    let (stale, token_sent) = (e.stale(), e.won());
    let send_value = m.value && m.unless_cas != Some(e.cas());
    let ttl = ttl_seconds(e.expire_at(), now);
    // memcached hands one client the right to refresh a stale item, or one whose TTL
    // fell below `R`; later requests see `Z` until the item is written again.
    let won = !token_sent && (stale || m.recache.is_some_and(|r| ttl != -1 && ttl < r));
    let mut r = MetaResult {
        status: MetaStatus::Ok,
        value: send_value.then(|| e.value().to_vec()),
        flags: e.flags(),
        cas: e.cas(),
        size: e.value().len(),
        ttl,
        ttl_before: ttl,
        hit_before: seen.fetched,
        last_access: (now / 1000).saturating_sub(u64::from(seen.accessed_secs)),
        token_sent,
        stale,
        won,
    };
    if won {
        shard.set_item_bits(&m.key, now, |b| b.won = true);
    }
    if let Some(exptime) = m.touch {
        r.ttl = retouch(shard, &m.key, exptime, now);
    }
    r
}

/// `mg N` on a miss (already counted): an empty item with the vivify TTL, whose win goes
/// to this request.
fn vivify(shard: &mut Shard, m: &MetaGet, exptime: i64, ctx: &McCtx) -> MetaResult {
    let now = ctx.now_ms;
    write_value(shard, &m.key, Vec::new(), exptime, 0, now);
    shard.set_item_bits(&m.key, now, |b| b.won = true);
    let Some(e) = shard.lookup(&m.key, now) else {
        // A negative exptime: the item was never live; memcached answers a plain miss.
        return MetaResult::status(MetaStatus::Miss);
    };
    let ttl = ttl_seconds(e.expire_at(), now);
    MetaResult {
        value: m.value.then(Vec::new),
        cas: e.cas(),
        ttl,
        ttl_before: ttl,
        won: true,
        ..MetaResult::status(MetaStatus::Ok)
    }
}

pub(super) fn set(shard: &mut Shard, m: MetaSet, ctx: &McCtx) -> MetaResult {
    let mode = match (m.mode, m.compare_cas) {
        (StoreMode::Set | StoreMode::Replace, Some(_)) => StoreMode::Cas,
        (mode, _) => mode,
    };
    let sent = m.data.len();
    if m.invalidate {
        if let Some(r) = set_stale(shard, &m, ctx) {
            return r;
        }
    }
    let w = Write {
        mode,
        flags: m.flags,
        exptime: m.exptime,
        data: m.data,
        compare: m.compare_cas,
        new_cas: m.new_cas,
        vivify: m.vivify,
    };
    let (status, cas, size) = match store_item(shard, &m.key, w, ctx) {
        StoreOutcome::Stored { cas, size } => (MetaStatus::Ok, cas, size),
        StoreOutcome::NotStored => (MetaStatus::NotStored, 0, sent),
        StoreOutcome::Exists => (MetaStatus::Exists, 0, sent),
        StoreOutcome::NotFound => (MetaStatus::Miss, 0, sent),
    };
    MetaResult {
        cas,
        size,
        ..MetaResult::status(status)
    }
}

/// `ms I C<cas>` with a CAS older than the item's: memcached stores the data but marks it
/// stale, keeping the item's expiry and win state. `None` when that does not apply (no
/// item, no `C`, or a CAS that is not older): the store proceeds as usual.
fn set_stale(shard: &mut Shard, m: &MetaSet, ctx: &McCtx) -> Option<MetaResult> {
    let now = ctx.now_ms;
    let c = m.compare_cas?;
    let (cas, expire_at, flags, won) = shard
        .lookup(&m.key, now)
        .map(|e| (e.cas(), e.expire_at(), e.flags(), e.won()))?;
    if c >= cas || !matches!(m.mode, StoreMode::Set | StoreMode::Replace) {
        return None;
    }
    let flags = if m.flags != 0 { m.flags } else { flags };
    shard.put(&m.key, &m.data, expire_at, flags);
    let cas = shard.mc_cas_after_write(&m.key, now, m.new_cas);
    shard.set_item_bits(&m.key, now, |b| *b = ItemBits { stale: true, won });
    Some(MetaResult {
        cas,
        size: m.data.len(),
        ..MetaResult::status(MetaStatus::Ok)
    })
}

pub(super) fn delete(shard: &mut Shard, m: MetaDelete, ctx: &McCtx) -> MetaResult {
    let now = ctx.now_ms;
    let Some(cur_cas) = shard.lookup(&m.key, now).map(|e| e.cas()) else {
        return MetaResult::status(MetaStatus::Miss);
    };
    if m.compare_cas.is_some_and(|c| c != cur_cas) {
        return MetaResult::status(MetaStatus::Exists);
    }
    if m.invalidate {
        // Mark stale and bump the CAS; the next reader wins the right to refresh it.
        let cas = m.new_cas.unwrap_or_else(|| shard.bump_cas());
        shard.mc_cas_after_write(&m.key, now, Some(cas));
        shard.set_item_bits(&m.key, now, |b| {
            *b = ItemBits {
                stale: true,
                won: false,
            }
        });
        if m.exptime != 0 {
            retouch(shard, &m.key, m.exptime, now);
        }
    } else if m.remove_value {
        // memcached swaps in an empty item that keeps the old CAS unless `E` names one.
        write_value(shard, &m.key, Vec::new(), m.exptime, m.flags, now);
        shard.mc_cas_after_write(&m.key, now, Some(m.new_cas.unwrap_or(cur_cas)));
    } else {
        shard.delete(&m.key, now);
    }
    MetaResult::status(MetaStatus::Ok)
}

/// `None` when the stored value is not a number.
pub(super) fn arith(shard: &mut Shard, m: MetaArith, ctx: &McCtx) -> Option<MetaResult> {
    let now = ctx.now_ms;
    let current = shard.lookup(&m.key, now).map(|e| {
        (
            e.cas(),
            e.value().is_empty() && e.string().is_some(),
            e.string().and_then(parse_counter),
            e.expire_at(),
        )
    });
    let (n, ttl_before) = match current {
        None => {
            let Some(exptime) = m.vivify else {
                return Some(MetaResult::status(MetaStatus::Miss));
            };
            let digits = itoa::Buffer::new().format(m.initial).as_bytes().to_vec();
            write_value(shard, &m.key, digits, exptime, 0, now);
            (m.initial, -1)
        }
        Some((_, true, _, _)) => return None,
        Some((cas, _, _, _)) if m.compare_cas.is_some_and(|c| c != 0 && c != cas) => {
            return Some(MetaResult::status(MetaStatus::Exists));
        }
        Some((_, _, None, _)) => return None,
        Some((_, _, Some(n), expire_at)) => {
            let n = apply_delta(n, m.incr, m.delta);
            set_counter(shard, &m.key, n, now);
            (n, ttl_seconds(expire_at, now))
        }
    };
    let cas = shard.mc_cas_after_write(&m.key, now, m.new_cas);
    let mut ttl = shard
        .store()
        .get(&m.key, now)
        .map_or(0, |e| ttl_seconds(e.expire_at(), now));
    if let Some(exptime) = m.touch {
        ttl = retouch(shard, &m.key, exptime, now);
    }
    let digits = itoa::Buffer::new().format(n).as_bytes().to_vec();
    Some(MetaResult {
        size: digits.len(),
        value: m.value.then_some(digits),
        cas,
        ttl,
        ttl_before,
        ..MetaResult::status(MetaStatus::Ok)
    })
}

pub(super) fn debug(shard: &mut Shard, key: Vec<u8>, ctx: &McCtx) -> Option<McDebug> {
    let now = ctx.now_ms;
    let (ttl, cas, size, accessed, fetched) = shard.lookup(&key, now).map(|e| {
        (
            ttl_seconds(e.expire_at(), now),
            e.cas(),
            key.len() + e.value().len(),
            e.accessed_secs(),
            e.fetched(),
        )
    })?;
    Some(McDebug {
        key,
        ttl,
        cas,
        size,
        last_access: (now / 1000).saturating_sub(u64::from(accessed)),
        fetched,
    })
}
