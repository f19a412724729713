//! Sorted-set commands, with Redis 7.0's replies and error texts: ZADD, ZINCRBY, ZREM,
//! ZCARD, ZCOUNT, ZLEXCOUNT, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZRANGE (BYSCORE, BYLEX,
//! REV, LIMIT, WITHSCORES) and the older ZRANGEBYSCORE family, ZRANGESTORE,
//! ZREMRANGEBYRANK/SCORE/LEX, ZPOPMIN, ZPOPMAX, ZMPOP, ZRANDMEMBER and ZSCAN.
//!
//! Every read resolves to a window of ranks over the set (a score or lex bound is a count
//! of the entries before it), so the large form answers in O(log n + reply).
//! Scores are `Reply::Double` (RESP3 doubles, `%.17g` bulk strings in RESP2). The
//! blocking BZPOPMIN, BZPOPMAX and BZMPOP are not implemented.

use bytes::Bytes;

use super::{int_arg, is_opt, scan_option};
use crate::glob::glob_match;
use crate::reply::{errors, Bulks, Reply};
use crate::shard::Shard;
use crate::zset::{self, ZsetRef};

/// ZRANDMEMBER's largest count magnitude (as HRANDFIELD's): a reply is built whole.
pub const MAX_RANDOM_COUNT: u64 = 1 << 22;

const NOT_FLOAT_RANGE: Reply = Reply::err("ERR min or max is not a float");
const NOT_LEX_RANGE: Reply = Reply::err("ERR min or max not valid string range item");
const NAN_RESULT: Reply = Reply::err("ERR resulting score is not a number (NaN)");

/// The sorted set under a live key for a read that counts.
fn read<'a>(s: &'a mut Shard, key: &[u8], now: u64) -> Result<Option<ZsetRef<'a>>, Reply> {
    match s.lookup_read(key, now) {
        None => Ok(None),
        Some(e) => e.zset().map(Some).ok_or(errors::WRONGTYPE),
    }
}

/// The sorted set under a live key for a write: absent, or WRONGTYPE for another type.
fn for_write<'a>(s: &'a mut Shard, key: &[u8], now: u64) -> Result<Option<ZsetRef<'a>>, Reply> {
    match s.lookup(key, now) {
        None => Ok(None),
        Some(e) => e.zset().map(Some).ok_or(errors::WRONGTYPE),
    }
}

fn score_reply(s: f64) -> Reply {
    Reply::Double(s)
}

/// Members with scores: pairs (RESP3) or flat (RESP2), or just the members.
/// The members' bytes are copied into one buffer ([`Reply::bulks`]), not one per member.
fn entries_reply(items: &[(&[u8], f64)], withscores: bool) -> Reply {
    let members = Reply::bulks(items.iter().map(|(m, _)| *m));
    if withscores {
        Reply::Pairs(
            members
                .into_iter()
                .zip(items)
                .map(|(m, (_, s))| (m, score_reply(*s)))
                .collect(),
        )
    } else {
        Reply::Array(members)
    }
}

/// A range read's reply ([`entries_reply`]): without scores, the members packed in one
/// buffer ([`Bulks`]) that the connection copies out, with no `Reply` per member.
fn range_reply(items: &[(&[u8], f64)], withscores: bool) -> Reply {
    if withscores {
        return entries_reply(items, true);
    }
    let bytes = items.iter().map(|(m, _)| m.len()).sum();
    let mut members = Bulks::with_capacity(items.len(), bytes);
    for (m, _) in items {
        members.push(m);
    }
    Reply::Bulks(members)
}

// ---- ZADD, ZINCRBY, ZREM ------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What ZADD did: the members' final scores to write, and the counts for the reply.
struct AddOutcome<'a> {
    writes: Vec<(&'a [u8], f64)>,
    added: usize,
    updated: usize,
    /// The last processed member's score (for INCR), `None` when it was skipped.
    score: Option<f64>,
}

/// Applies ZADD's rules to `items` against the current scores (`current`), in order.
fn zadd_outcome<'a>(
    f: AddFlags,
    items: &[(&'a [u8], f64)],
    mut current: impl FnMut(&[u8]) -> Option<f64>,
) -> Result<AddOutcome<'a>, Reply> {
    let mut out = AddOutcome {
        writes: Vec::new(),
        added: 0,
        updated: 0,
        score: None,
    };
    // Scores set by earlier pairs of this call; a single pair (the usual ZADD) needs none.
    let track = items.len() > 1;
    let mut pending: std::collections::HashMap<&[u8], f64> = std::collections::HashMap::new();
    for &(m, score) in items {
        let cur = if track { pending.get(m).copied() } else { None }.or_else(|| current(m));
        out.score = None;
        match cur {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                let new = if f.incr { cur + score } else { score };
                if new.is_nan() {
                    return Err(NAN_RESULT);
                }
                if (f.lt && new >= cur) || (f.gt && new <= cur) {
                    continue;
                }
                out.score = Some(new);
                if new != cur {
                    out.updated += 1;
                    if track {
                        pending.insert(m, new);
                    }
                    out.writes.push((m, new));
                }
            }
            None => {
                if f.xx {
                    continue;
                }
                out.score = Some(score);
                out.added += 1;
                if track {
                    pending.insert(m, score);
                }
                out.writes.push((m, score));
            }
        }
    }
    Ok(out)
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < a.len() {
        let w = &a[i];
        if is_opt(w, "NX") {
            f.nx = true;
        } else if is_opt(w, "XX") {
            f.xx = true;
        } else if is_opt(w, "GT") {
            f.gt = true;
        } else if is_opt(w, "LT") {
            f.lt = true;
        } else if is_opt(w, "CH") {
            f.ch = true;
        } else if is_opt(w, "INCR") {
            f.incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &a[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return errors::SYNTAX;
    }
    if f.nx && f.xx {
        return Reply::err("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Reply::err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && rest.len() > 2 {
        return Reply::err("ERR INCR option supports a single increment-element pair");
    }
    let mut items = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks_exact(2) {
        let Some(score) = zset::parse_score(&p[0]) else {
            return errors::NOT_FLOAT;
        };
        items.push((&p[1][..], score));
    }
    add_generic(s, &a[1], f, &items, now)
}

fn add_generic(s: &mut Shard, key: &[u8], f: AddFlags, items: &[(&[u8], f64)], now: u64) -> Reply {
    let out = match for_write(s, key, now) {
        Err(e) => return e,
        Ok(z) => match zadd_outcome(f, items, |m| z.and_then(|z| z.score(m))) {
            Ok(out) => out,
            Err(e) => return e,
        },
    };
    s.zset_add(key, &out.writes, now);
    if f.incr {
        out.score.map_or(Reply::Nil, score_reply)
    } else if f.ch {
        Reply::Int((out.added + out.updated) as i64)
    } else {
        Reply::Int(out.added as i64)
    }
}

/// ZINCRBY key increment member
pub fn zincrby(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let Some(by) = zset::parse_score(&a[2]) else {
        return errors::NOT_FLOAT;
    };
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    add_generic(s, &a[1], f, &[(&a[3][..], by)], now)
}

/// ZREM key member [member ...]
pub fn zrem(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if let Err(e) = for_write(s, &a[1], now) {
        return e;
    }
    let members: Vec<&[u8]> = a[2..].iter().map(|m| &m[..]).collect();
    Reply::Int(s.zset_rem(&a[1], &members, now) as i64)
}

// ---- point reads ----------------------------------------------------------------------

/// ZCARD key
pub fn zcard(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(z) => Reply::Int(z.map_or(0, |z| z.len()) as i64),
        Err(e) => e,
    }
}

/// ZSCORE key member
pub fn zscore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(z) => z
            .and_then(|z| z.score(&a[2]))
            .map_or(Reply::Nil, score_reply),
        Err(e) => e,
    }
}

/// ZMSCORE key member [member ...]
pub fn zmscore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(z) => Reply::Array(
            a[2..]
                .iter()
                .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, score_reply))
                .collect(),
        ),
        Err(e) => e,
    }
}

fn rank_generic(s: &mut Shard, a: &[Bytes], now: u64, rev: bool) -> Reply {
    match read(s, &a[1], now) {
        Ok(z) => z
            .and_then(|z| {
                z.rank(&a[2])
                    .map(|(r, _)| if rev { z.len() - 1 - r } else { r })
            })
            .map_or(Reply::Nil, |r| Reply::Int(r as i64)),
        Err(e) => e,
    }
}

/// ZRANK key member
pub fn zrank(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    rank_generic(s, a, now, false)
}

/// ZREVRANK key member
pub fn zrevrank(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    rank_generic(s, a, now, true)
}

// ---- ranges ---------------------------------------------------------------------------

/// A score bound: the value and whether it is exclusive (`(1.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// Parses a score bound as Redis's `zslParseRange` does.
pub fn parse_score_bound(b: &[u8]) -> Option<ScoreBound> {
    match b.strip_prefix(b"(") {
        Some(rest) => zset::parse_bound_score(rest).map(|value| ScoreBound {
            value,
            exclusive: true,
        }),
        None => zset::parse_bound_score(b).map(|value| ScoreBound {
            value,
            exclusive: false,
        }),
    }
}

/// A lex bound: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

/// Parses a lex bound as Redis's `zslParseLexRangeItem` does.
pub fn parse_lex_bound(b: &[u8]) -> Option<LexBound<'_>> {
    match b {
        b"-" => Some(LexBound::Min),
        b"+" => Some(LexBound::Max),
        [b'[', rest @ ..] => Some(LexBound::Incl(rest)),
        [b'(', rest @ ..] => Some(LexBound::Excl(rest)),
        _ => None,
    }
}

/// Whether `m` is below the lower lex bound `min` (not yet in range).
fn lex_below_min(m: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(x) => m < *x,
        LexBound::Excl(x) => m <= *x,
    }
}

/// Whether `m` is within the upper lex bound `max`.
fn lex_within_max(m: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(x) => m <= *x,
        LexBound::Excl(x) => m < *x,
    }
}

/// The ranks `lo..hi` (ascending) of the entries within a score range.
fn score_window(z: &ZsetRef, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
    let lo = z.count_while(|_, s| s < min.value || (min.exclusive && s == min.value));
    let hi = z.count_while(|_, s| s < max.value || (!max.exclusive && s == max.value));
    (lo, hi.max(lo))
}

/// The ranks `lo..hi` of the entries within a lex range (meant for equal scores).
fn lex_window(z: &ZsetRef, min: &LexBound, max: &LexBound) -> (usize, usize) {
    let lo = z.count_while(|m, _| lex_below_min(m, min));
    let hi = z.count_while(|m, _| lex_within_max(m, max));
    (lo, hi.max(lo))
}

/// The ranks `lo..hi` of a rank range `start..=stop` (negative from the end), in the
/// direction given.
fn rank_window(len: usize, start: i64, stop: i64, rev: bool) -> (usize, usize) {
    let len_i = len as i64;
    let mut start = if start < 0 { len_i + start } else { start };
    let mut stop = if stop < 0 { len_i + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len_i {
        return (0, 0);
    }
    if stop >= len_i {
        stop = len_i - 1;
    }
    let (start, stop) = (start as usize, stop as usize);
    if rev {
        (len - 1 - stop, len - start)
    } else {
        (start, stop + 1)
    }
}

/// Which entries a range command selects.
enum RangeBy<'a> {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound<'a>, LexBound<'a>),
}

/// A parsed ZRANGE-family request.
struct RangeSpec<'a> {
    by: RangeBy<'a>,
    rev: bool,
    /// LIMIT offset count; count < 0 means all.
    limit: Option<(i64, i64)>,
    withscores: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Parses `key min max [options]` at `a[at..]` as Redis's `zrangeGenericCommand`.
fn parse_range<'a>(
    a: &'a [Bytes],
    at: usize,
    store: bool,
    mut kind: Kind,
    rev: Option<bool>,
) -> Result<RangeSpec<'a>, Reply> {
    let mut direction = rev;
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut j = at + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        let w = &a[j];
        if !store && is_opt(w, "WITHSCORES") {
            withscores = true;
        } else if is_opt(w, "LIMIT") && left >= 2 {
            let offset = int_arg(&a[j + 1])?;
            let count = int_arg(&a[j + 2])?;
            limit = Some((offset, count));
            j += 2;
        } else if direction.is_none() && is_opt(w, "REV") {
            direction = Some(true);
        } else if kind == Kind::Auto && is_opt(w, "BYLEX") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is_opt(w, "BYSCORE") {
            kind = Kind::Score;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    let rev = direction.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit.is_some_and(|(_, c)| c != -1) && kind == Kind::Rank {
        return Err(Reply::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(Reply::err(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut min, mut max) = (&a[at + 1], &a[at + 2]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let by = match kind {
        Kind::Score => match (parse_score_bound(min), parse_score_bound(max)) {
            (Some(lo), Some(hi)) => RangeBy::Score(lo, hi),
            _ => return Err(NOT_FLOAT_RANGE),
        },
        Kind::Lex => match (parse_lex_bound(min), parse_lex_bound(max)) {
            (Some(lo), Some(hi)) => RangeBy::Lex(lo, hi),
            _ => return Err(NOT_LEX_RANGE),
        },
        _ => RangeBy::Rank(int_arg(min)?, int_arg(max)?),
    };
    Ok(RangeSpec {
        by,
        rev,
        limit,
        withscores,
    })
}

/// The ranks `lo..hi` of a forward rank range counted from the start (`ZRANGE z 0 9`,
/// the usual one): the walk stops at the set's end by itself, so the set's size (a walk
/// over a packed set) is not needed. `None` for any other range.
fn forward_ranks(spec: &RangeSpec) -> Option<(usize, usize)> {
    match spec.by {
        RangeBy::Rank(start, stop) if !spec.rev && start >= 0 && stop >= 0 => {
            if start > stop {
                return Some((0, 0));
            }
            let end = usize::try_from(stop).map_or(usize::MAX, |s| s.saturating_add(1));
            Some((start as usize, end))
        }
        _ => None,
    }
}

/// The entries a range selects, in reply order.
fn select<'a>(z: &ZsetRef<'a>, spec: &RangeSpec) -> Vec<(&'a [u8], f64)> {
    if let Some((lo, hi)) = forward_ranks(spec) {
        return z.range(lo, hi);
    }
    let (lo, hi) = match &spec.by {
        RangeBy::Rank(start, stop) => {
            let (lo, hi) = rank_window(z.len(), *start, *stop, spec.rev);
            let mut v = z.range(lo, hi);
            if spec.rev {
                v.reverse();
            }
            return v;
        }
        RangeBy::Score(min, max) => score_window(z, *min, *max),
        RangeBy::Lex(min, max) => lex_window(z, min, max),
    };
    let (offset, count) = spec.limit.unwrap_or((0, -1));
    if offset < 0 {
        return Vec::new();
    }
    let span = hi - lo;
    let offset = usize::try_from(offset).unwrap_or(usize::MAX).min(span);
    let take = if count < 0 {
        span - offset
    } else {
        usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(span - offset)
    };
    if spec.rev {
        let mut v = z.range(hi - offset - take, hi - offset);
        v.reverse();
        v
    } else {
        z.range(lo + offset, lo + offset + take)
    }
}

fn range_generic(s: &mut Shard, a: &[Bytes], now: u64, kind: Kind, rev: Option<bool>) -> Reply {
    let spec = match parse_range(a, 1, false, kind, rev) {
        Ok(spec) => spec,
        Err(e) => return e,
    };
    match read(s, &a[1], now) {
        Err(e) => e,
        Ok(None) => Reply::Array(Vec::new()),
        Ok(Some(z)) => match forward_ranks(&spec) {
            // Members straight from the set into the reply's buffer.
            Some((lo, hi)) if !spec.withscores => {
                let n = hi.saturating_sub(lo).min(128);
                let mut members = Bulks::with_capacity(n, 16 * n);
                z.for_range(lo, hi, |m, _| members.push(m));
                Reply::Bulks(members)
            }
            _ => range_reply(&select(&z, &spec), spec.withscores),
        },
    }
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    range_generic(s, a, now, Kind::Auto, None)
}

/// ZREVRANGE key start stop [WITHSCORES]
pub fn zrevrange(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    range_generic(s, a, now, Kind::Rank, Some(true))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub fn zrangebyscore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    range_generic(s, a, now, Kind::Score, Some(false))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub fn zrevrangebyscore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    range_generic(s, a, now, Kind::Score, Some(true))
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    range_generic(s, a, now, Kind::Lex, Some(false))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    range_generic(s, a, now, Kind::Lex, Some(true))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
///
/// When the two keys live on different cores, the cross-core transaction runs
/// [`zrangestore_select`] on the source's core and stores on the destination's.
pub fn zrangestore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match zrangestore_select(s, a, now) {
        Ok(packed) => zrangestore_put(s, &a[1], &packed),
        Err(e) => e,
    }
}

/// ZRANGESTORE's first half: the selected entries of the source, packed.
pub fn zrangestore_select(s: &mut Shard, a: &[Bytes], now: u64) -> Result<Vec<u8>, Reply> {
    let spec = parse_range(a, 2, true, Kind::Auto, None)?;
    let mut out = Vec::new();
    if let Some(z) = read(s, &a[2], now)? {
        for (m, sc) in select(&z, &spec) {
            zset::packed::push(&mut out, m, sc);
        }
    }
    Ok(out)
}

/// ZRANGESTORE's second half: stores the entries at `dst` (an empty result deletes it).
pub fn zrangestore_put(s: &mut Shard, dst: &[u8], packed: &[u8]) -> Reply {
    let n = zset::packed::len(packed);
    s.put_zset(dst, packed, false, crate::NO_EXPIRY, 0);
    Reply::Int(n as i64)
}

/// ZCOUNT key min max
pub fn zcount(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (Some(min), Some(max)) = (parse_score_bound(&a[2]), parse_score_bound(&a[3])) else {
        return NOT_FLOAT_RANGE;
    };
    match read(s, &a[1], now) {
        Err(e) => e,
        Ok(z) => Reply::Int(z.map_or(0, |z| {
            let (lo, hi) = score_window(&z, min, max);
            hi - lo
        }) as i64),
    }
}

/// ZLEXCOUNT key min max
pub fn zlexcount(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (Some(min), Some(max)) = (parse_lex_bound(&a[2]), parse_lex_bound(&a[3])) else {
        return NOT_LEX_RANGE;
    };
    match read(s, &a[1], now) {
        Err(e) => e,
        Ok(z) => Reply::Int(z.map_or(0, |z| {
            let (lo, hi) = lex_window(&z, &min, &max);
            hi - lo
        }) as i64),
    }
}

/// Removes the entries `pick` selects from the set at `key`; replies with their count.
fn remove_selected(
    s: &mut Shard,
    key: &[u8],
    now: u64,
    pick: impl FnOnce(&ZsetRef) -> (usize, usize),
) -> Reply {
    let members: Vec<Vec<u8>> = match for_write(s, key, now) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(z)) => {
            let (lo, hi) = pick(&z);
            z.range(lo, hi)
                .into_iter()
                .map(|(m, _)| m.to_vec())
                .collect()
        }
    };
    let refs: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
    Reply::Int(s.zset_rem(key, &refs, now) as i64)
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (start, stop) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    remove_selected(s, &a[1], now, |z| rank_window(z.len(), start, stop, false))
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (Some(min), Some(max)) = (parse_score_bound(&a[2]), parse_score_bound(&a[3])) else {
        return NOT_FLOAT_RANGE;
    };
    remove_selected(s, &a[1], now, |z| score_window(z, min, max))
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (Some(min), Some(max)) = (parse_lex_bound(&a[2]), parse_lex_bound(&a[3])) else {
        return NOT_LEX_RANGE;
    };
    remove_selected(s, &a[1], now, |z| lex_window(z, &min, &max))
}

// ---- pops -------------------------------------------------------------------------------

/// Pops up to `count` entries from one end of the set at `key` (lowest first for min).
fn pop(
    s: &mut Shard,
    key: &[u8],
    count: usize,
    max: bool,
    now: u64,
) -> Result<Vec<(Vec<u8>, f64)>, Reply> {
    let popped: Vec<(Vec<u8>, f64)> = match for_write(s, key, now)? {
        None => return Ok(Vec::new()),
        Some(z) => {
            let n = count.min(z.len());
            let mut v: Vec<(Vec<u8>, f64)> = if max {
                z.range(z.len() - n, z.len())
            } else {
                z.range(0, n)
            }
            .into_iter()
            .map(|(m, sc)| (m.to_vec(), sc))
            .collect();
            if max {
                v.reverse();
            }
            v
        }
    };
    let refs: Vec<&[u8]> = popped.iter().map(|(m, _)| &m[..]).collect();
    s.zset_rem(key, &refs, now);
    Ok(popped)
}

fn pop_generic(s: &mut Shard, a: &[Bytes], now: u64, max: bool) -> Reply {
    if a.len() > 3 {
        return errors::SYNTAX;
    }
    let count = match a.get(2).map(int_arg) {
        None => None,
        Some(Ok(n)) if n < 0 => return Reply::err("ERR value is out of range, must be positive"),
        Some(Ok(n)) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(Err(e)) => return e,
    };
    let popped = match pop(s, &a[1], count.unwrap_or(1), max, now) {
        Ok(p) => p,
        Err(e) => return e,
    };
    match count {
        None => Reply::Array(
            popped
                .iter()
                .flat_map(|(m, sc)| [Reply::bulk(m), score_reply(*sc)])
                .collect(),
        ),
        Some(_) => Reply::Pairs(
            popped
                .iter()
                .map(|(m, sc)| (Reply::bulk(m), score_reply(*sc)))
                .collect(),
        ),
    }
}

/// ZPOPMIN key [count]
pub fn zpopmin(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    pop_generic(s, a, now, false)
}

/// ZPOPMAX key [count]
pub fn zpopmax(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    pop_generic(s, a, now, true)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
///
/// Runs where all its keys live on one core (the table routes it by its keys).
pub fn zmpop(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let numkeys = match int_arg(&a[1]) {
        Ok(n) if n <= 0 => return Reply::err("ERR numkeys should be greater than 0"),
        Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
        Err(e) => return e,
    };
    if numkeys > a.len().saturating_sub(3) {
        return errors::SYNTAX;
    }
    let keys = &a[2..2 + numkeys];
    let mut i = 2 + numkeys;
    let max = if is_opt(&a[i], "MIN") {
        false
    } else if is_opt(&a[i], "MAX") {
        true
    } else {
        return errors::SYNTAX;
    };
    i += 1;
    let mut count = 1usize;
    let mut seen_count = false;
    while i < a.len() {
        if !seen_count && is_opt(&a[i], "COUNT") && i + 1 < a.len() {
            match int_arg(&a[i + 1]) {
                Ok(n) if n <= 0 => return Reply::err("ERR count should be greater than 0"),
                Ok(n) => count = usize::try_from(n).unwrap_or(usize::MAX),
                Err(e) => return e,
            }
            seen_count = true;
            i += 2;
        } else {
            return errors::SYNTAX;
        }
    }
    for key in keys {
        match for_write(s, key, now) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(_)) => {}
        }
        let popped = match pop(s, key, count, max, now) {
            Ok(p) => p,
            Err(e) => return e,
        };
        return Reply::Array(vec![
            Reply::bulk(key),
            Reply::Array(
                popped
                    .iter()
                    .map(|(m, sc)| Reply::Array(vec![Reply::bulk(m), score_reply(*sc)]))
                    .collect(),
            ),
        ]);
    }
    Reply::NilArray
}

// ---- random and scan ----------------------------------------------------------------------

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let mut count = None;
    let mut withscores = false;
    if a.len() >= 3 {
        let n = match int_arg(&a[2]) {
            Ok(n) if n == i64::MIN => {
                return Reply::err(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Ok(n) => n,
            Err(e) => return e,
        };
        if a.len() > 4 || (a.len() == 4 && !is_opt(&a[3], "WITHSCORES")) {
            return errors::SYNTAX;
        }
        withscores = a.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Reply::err("ERR value is out of range");
        }
        count = Some(n);
    }
    let len = match read(s, &a[1], now) {
        Ok(z) => z.map(|z| z.len()),
        Err(e) => return e,
    };
    let positions: Vec<usize> = match (count, len) {
        (None, None) => return Reply::Nil,
        (Some(_), None) | (_, Some(0)) | (Some(0), _) => return Reply::Array(Vec::new()),
        (None, Some(len)) => vec![(s.random() % len as u64) as usize],
        (Some(n), Some(len)) if n < 0 => {
            if n.unsigned_abs() > MAX_RANDOM_COUNT {
                return Reply::err("ERR value is out of range");
            }
            (0..n.unsigned_abs())
                .map(|_| (s.random() % len as u64) as usize)
                .collect()
        }
        (Some(n), Some(len)) if n as u64 >= len as u64 => (0..len).collect(),
        (Some(n), Some(len)) => {
            let mut chosen = std::collections::HashSet::new();
            let mut out = Vec::with_capacity(n as usize);
            while out.len() < n as usize {
                let p = (s.random() % len as u64) as usize;
                if chosen.insert(p) {
                    out.push(p);
                }
            }
            out
        }
    };
    let Some(z) = s.store().get(&a[1], now).and_then(|e| e.zset()) else {
        return Reply::Nil;
    };
    let picks: Vec<(&[u8], f64)> = match z {
        ZsetRef::Packed(_) => {
            let all = z.range(0, z.len());
            positions
                .iter()
                .filter_map(|&p| all.get(p).copied())
                .collect()
        }
        ZsetRef::Big(_) => positions
            .iter()
            .filter_map(|&p| z.iter_from(p).next())
            .collect(),
    };
    match count {
        None => picks.first().map_or(Reply::Nil, |(m, _)| Reply::bulk(m)),
        Some(_) => entries_reply(&picks, withscores),
    }
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
///
/// A packed set is returned whole with cursor 0, as Redis does with a listpack; the large
/// form is walked by member handle (see `zset::big`). Scores are `%.17g` strings.
pub fn zscan(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let Some(cursor) = super::keyspace::parse_cursor(&a[2]) else {
        return Reply::err("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < a.len() {
        match scan_option(a, i, &mut count, &mut pattern) {
            Ok(true) => {}
            Ok(false) => return errors::SYNTAX,
            Err(e) => return e,
        }
        i += 2;
    }
    let z = match read(s, &a[1], now) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let mut push = |m: &[u8], sc: f64| {
        if pattern.is_none_or(|p| glob_match(p, m)) {
            items.push(Reply::bulk(m));
            items.push(Reply::bulk(zset::score_text(sc)));
        }
    };
    let next = match z {
        None => 0,
        Some(ZsetRef::Packed(b)) => {
            zset::packed::entries(b).for_each(|(m, sc)| push(m, sc));
            0
        }
        Some(ZsetRef::Big(z)) => {
            let c = usize::try_from(cursor).unwrap_or(usize::MAX);
            z.scan(c, count, &mut push) as u64
        }
    };
    let mut buf = itoa::Buffer::new();
    Reply::Array(vec![Reply::bulk(buf.format(next)), Reply::Array(items)])
}

#[cfg(test)]
#[path = "zsets_tests.rs"]
mod tests;

// ---- ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD -------------------------------

/// The key positions of a sorted-set command whose keys follow a `numkeys` argument:
/// ZUNION/ZINTER/ZDIFF/ZINTERCARD/ZMPOP (`numkeys` at 1), and ZUNIONSTORE/ZINTERSTORE/
/// ZDIFFSTORE (the destination at 1, `numkeys` at 2). `None` for other commands; a bad or
/// too large `numkeys` gives the keys that are there (the handler then answers the error).
pub fn numkeys_positions(name: &str, args: &[Bytes]) -> Option<Vec<usize>> {
    let (at, dst) = match name {
        "zunion" | "zinter" | "zdiff" | "zintercard" | "zmpop" => (1, false),
        "zunionstore" | "zinterstore" | "zdiffstore" => (2, true),
        _ => return None,
    };
    let n = args
        .get(at)
        .and_then(|b| super::parse_i64(b))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let last = (at + 1 + n).min(args.len());
    let mut keys: Vec<usize> = if dst { vec![1] } else { Vec::new() };
    keys.extend(at + 1..last);
    Some(keys)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(a: Aggregate, acc: f64, v: f64) -> f64 {
    match a {
        Aggregate::Sum => {
            let s = acc + v;
            // inf + -inf: Redis keeps 0 rather than NaN.
            if s.is_nan() {
                0.0
            } else {
                s
            }
        }
        Aggregate::Min => acc.min(v),
        Aggregate::Max => acc.max(v),
    }
}

/// A source's entries, owned (read before the destination is written).
type Entries = Vec<(Vec<u8>, f64)>;

/// Reads the `n` source sets from `a[first..first + n]`: missing keys are empty sets.
fn read_sources(
    s: &mut Shard,
    a: &[Bytes],
    first: usize,
    n: usize,
    now: u64,
) -> Result<Vec<Entries>, Reply> {
    let mut out = Vec::with_capacity(n);
    for key in &a[first..first + n] {
        // A plain set is an input too, every member with score 1 (as in Redis).
        let entries = match s.lookup_read(key, now) {
            None => Entries::default(),
            Some(e) => match (e.zset(), e.set()) {
                (Some(z), _) => z.iter_from(0).map(|(m, sc)| (m.to_vec(), sc)).collect(),
                (None, Some(set)) => set.iter().map(|m| (m.into_owned(), 1.0)).collect(),
                (None, None) => return Err(errors::WRONGTYPE),
            },
        };
        out.push(entries);
    }
    Ok(out)
}

/// Parses `numkeys` at `a[at]` and checks that many keys follow.
fn parse_numkeys(a: &[Bytes], at: usize, cmd: &str) -> Result<usize, Reply> {
    let n = int_arg(&a[at])?;
    if n < 1 {
        return Err(Reply::error(format!(
            "ERR at least 1 input key is needed for '{cmd}' command"
        )));
    }
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > a.len() - at - 1 {
        return Err(errors::SYNTAX);
    }
    Ok(n)
}

/// The result of a set operation over weighted sources, in order.
fn combine(op: SetOp, mut sources: Vec<(Entries, f64)>, agg: Aggregate) -> Entries {
    let weighted = |sc: f64, w: f64| {
        let v = sc * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut acc: std::collections::HashMap<Vec<u8>, f64> = std::collections::HashMap::new();
    match op {
        SetOp::Diff => {
            let mut it = sources.into_iter();
            if let Some((first, _)) = it.next() {
                let rest: Vec<std::collections::HashSet<Vec<u8>>> = it
                    .map(|(e, _)| e.into_iter().map(|(m, _)| m).collect())
                    .collect();
                for (m, sc) in first {
                    if !rest.iter().any(|r| r.contains(&m)) {
                        acc.insert(m, sc);
                    }
                }
            }
        }
        SetOp::Union => {
            sources.sort_by_key(|(e, _)| e.len());
            for (entries, w) in sources {
                for (m, sc) in entries {
                    let v = weighted(sc, w);
                    acc.entry(m)
                        .and_modify(|x| *x = aggregate(agg, *x, v))
                        .or_insert(v);
                }
            }
        }
        SetOp::Inter => {
            sources.sort_by_key(|(e, _)| e.len());
            let mut it = sources.into_iter();
            if let Some((first, w)) = it.next() {
                let rest: Vec<(std::collections::HashMap<Vec<u8>, f64>, f64)> =
                    it.map(|(e, w)| (e.into_iter().collect(), w)).collect();
                'member: for (m, sc) in first {
                    let mut v = weighted(sc, w);
                    for (r, w) in &rest {
                        match r.get(&m) {
                            Some(&x) => v = aggregate(agg, v, weighted(x, *w)),
                            None => continue 'member,
                        }
                    }
                    acc.insert(m, v);
                }
            }
        }
    }
    let mut out: Entries = acc.into_iter().collect();
    out.sort_by(|x, y| zset::packed::cmp((x.1, &x.0), (y.1, &y.0)));
    out
}

/// ZUNION/ZINTER/ZDIFF (`store` false, `numkeys` at 1) and their STORE forms (`numkeys`
/// at 2), as Redis's `zunionInterDiffGenericCommand`.
fn set_op_generic(s: &mut Shard, a: &[Bytes], now: u64, op: SetOp, store: bool) -> Reply {
    let cmd = super::cmd_name(a);
    let at = if store { 2 } else { 1 };
    let n = match parse_numkeys(a, at, &cmd) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let sources = match read_sources(s, a, at + 1, n, now) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut weights = vec![1.0; n];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut j = at + 1 + n;
    while j < a.len() {
        let left = a.len() - j - 1;
        if op != SetOp::Diff && is_opt(&a[j], "WEIGHTS") && left >= n {
            for (i, w) in weights.iter_mut().enumerate() {
                match zset::parse_score(&a[j + 1 + i]) {
                    Some(v) => *w = v,
                    None => return Reply::err("ERR weight value is not a float"),
                }
            }
            j += n;
        } else if op != SetOp::Diff && is_opt(&a[j], "AGGREGATE") && left >= 1 {
            agg = if is_opt(&a[j + 1], "SUM") {
                Aggregate::Sum
            } else if is_opt(&a[j + 1], "MIN") {
                Aggregate::Min
            } else if is_opt(&a[j + 1], "MAX") {
                Aggregate::Max
            } else {
                return errors::SYNTAX;
            };
            j += 1;
        } else if !store && is_opt(&a[j], "WITHSCORES") {
            withscores = true;
        } else {
            return errors::SYNTAX;
        }
        j += 1;
    }
    let result = combine(op, sources.into_iter().zip(weights).collect(), agg);
    if store {
        let mut packed = Vec::new();
        for (m, sc) in &result {
            zset::packed::push(&mut packed, m, *sc);
        }
        s.put_zset(&a[1], &packed, false, crate::NO_EXPIRY, 0);
        return Reply::Int(result.len() as i64);
    }
    let refs: Vec<(&[u8], f64)> = result.iter().map(|(m, sc)| (&m[..], *sc)).collect();
    entries_reply(&refs, withscores)
}

/// ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zunion(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_op_generic(s, a, now, SetOp::Union, false)
}

/// ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zinter(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_op_generic(s, a, now, SetOp::Inter, false)
}

/// ZDIFF numkeys key [key ...] [WITHSCORES]
pub fn zdiff(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_op_generic(s, a, now, SetOp::Diff, false)
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE ...]
pub fn zunionstore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_op_generic(s, a, now, SetOp::Union, true)
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE ...]
pub fn zinterstore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_op_generic(s, a, now, SetOp::Inter, true)
}

/// ZDIFFSTORE destination numkeys key [key ...]
pub fn zdiffstore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_op_generic(s, a, now, SetOp::Diff, true)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let n = match parse_numkeys(a, 1, "zintercard") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let mut limit = 0usize;
    let mut j = 2 + n;
    while j < a.len() {
        if is_opt(&a[j], "LIMIT") && j + 1 < a.len() {
            match int_arg(&a[j + 1]) {
                Ok(l) if l < 0 => return Reply::err("ERR LIMIT can't be negative"),
                Ok(l) => limit = usize::try_from(l).unwrap_or(usize::MAX),
                Err(e) => return e,
            }
            j += 2;
        } else {
            return errors::SYNTAX;
        }
    }
    let sources = match read_sources(s, a, 2, n, now) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let all = combine(
        SetOp::Inter,
        sources.into_iter().map(|e| (e, 1.0)).collect(),
        Aggregate::Sum,
    );
    let card = if limit == 0 {
        all.len()
    } else {
        all.len().min(limit)
    };
    Reply::Int(card as i64)
}
