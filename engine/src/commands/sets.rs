//! Set commands, with Redis 7.0's replies and error texts: SADD, SREM, SMEMBERS,
//! SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE, SSCAN, and the algebra:
//! SINTER, SUNION, SDIFF, their STORE forms and SINTERCARD.
//!
//! Reads go through `Shard::lookup_read` and [`Entry::set`](crate::Entry::set); writes
//! through the write path's `set_add`, `set_rem` and `put_set`. The algebra is one pure
//! function ([`combine`]) over the sets found, so the same code answers when every key
//! lives on this core (the handlers here) and when they span cores (`exec::txn` gathers
//! copies of the sets under the cores' locks, then calls [`combine`]).

use std::borrow::Cow;
use std::collections::HashSet;

use bytes::Bytes;

use super::{int_arg, is_opt, parse_i64, scan_option};
use crate::glob::glob_match;
use crate::reply::{errors, Reply};
use crate::set::{packed, BigSet, SetRef};
use crate::shard::Shard;
use crate::store::{ItemCopy, NO_EXPIRY};

/// SRANDMEMBER's largest negative count: a reply is built whole in memory, so a count
/// beyond this is refused instead of allocating without bound (Redis 7.0 tries, and
/// dies of it).
pub const MAX_RANDOM_COUNT: u64 = 1 << 22;

/// The set under a live key for a read that counts: `Ok(None)` when missing, WRONGTYPE
/// when the key holds another type.
fn read<'a>(s: &'a mut Shard, key: &[u8], now: u64) -> Result<Option<SetRef<'a>>, Reply> {
    match s.lookup_read(key, now) {
        None => Ok(None),
        Some(e) => e.set().map(Some).ok_or(errors::WRONGTYPE),
    }
}

/// Checks that a write may go to `key`: absent or a set.
fn check_writable(s: &mut Shard, key: &[u8], now: u64) -> Result<(), Reply> {
    match s.lookup(key, now) {
        Some(e) if e.set().is_none() => Err(errors::WRONGTYPE),
        _ => Ok(()),
    }
}

fn members(a: &[Bytes]) -> Vec<&[u8]> {
    a.iter().map(|m| &m[..]).collect()
}

fn bulks<'a>(it: impl Iterator<Item = Cow<'a, [u8]>>) -> Vec<Reply> {
    it.map(|m| Reply::bulk(&m[..])).collect()
}

/// SADD key member [member ...]
pub fn sadd(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if let Err(e) = check_writable(s, &a[1], now) {
        return e;
    }
    let added = match a {
        // One member (the usual SADD): no vector of members.
        [_, key, m] => s.set_add(key, &[&m[..]], now),
        _ => s.set_add(&a[1], &members(&a[2..]), now),
    };
    Reply::Int(added as i64)
}

/// SREM key member [member ...]
pub fn srem(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if let Err(e) = check_writable(s, &a[1], now) {
        return e;
    }
    Reply::Int(s.set_rem(&a[1], &members(&a[2..]), now) as i64)
}

/// SMEMBERS key: a set in RESP3.
pub fn smembers(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(set) => Reply::Set(set.map(|t| bulks(t.iter())).unwrap_or_default()),
        Err(e) => e,
    }
}

/// SISMEMBER key member
pub fn sismember(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(set) => Reply::Int(set.is_some_and(|t| t.contains(&a[2])) as i64),
        Err(e) => e,
    }
}

/// SMISMEMBER key member [member ...]
pub fn smismember(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(set) => Reply::Array(
            a[2..]
                .iter()
                .map(|m| Reply::Int(set.is_some_and(|t| t.contains(m)) as i64))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// SCARD key
pub fn scard(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(set) => Reply::Int(set.map_or(0, |t| t.len()) as i64),
        Err(e) => e,
    }
}

/// `n` distinct random positions below `len` (a partial Fisher-Yates; `n < len`), or
/// for a large set a rejection sample, so the work and memory follow `n`, not `len`.
fn distinct_positions(s: &mut Shard, len: usize, n: usize) -> Vec<usize> {
    if n * 4 < len {
        let mut seen = HashSet::with_capacity(n);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let p = (s.random() % len as u64) as usize;
            if seen.insert(p) {
                out.push(p);
            }
        }
        return out;
    }
    let mut all: Vec<usize> = (0..len).collect();
    for k in 0..n {
        let j = k + (s.random() % (len - k) as u64) as usize;
        all.swap(k, j);
    }
    all.truncate(n);
    all
}

/// The members at `positions` of the set under `key` (live: the caller just read it).
fn members_at(s: &mut Shard, key: &[u8], positions: &[usize], now: u64) -> Vec<Vec<u8>> {
    let Some(set) = s.store().get(key, now).and_then(|e| e.set()) else {
        return Vec::new();
    };
    match set {
        SetRef::Packed(_) => {
            let all: Vec<Cow<[u8]>> = set.iter().collect();
            positions
                .iter()
                .filter_map(|&i| all.get(i).map(|m| m.to_vec()))
                .collect()
        }
        _ => positions
            .iter()
            .filter_map(|&i| set.at(i).map(|m| m.into_owned()))
            .collect(),
    }
}

/// SPOP key [count]: the popped members are journaled as removed (the outcome), so a
/// replica loses exactly the same ones.
pub fn spop(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if a.len() > 3 {
        return errors::SYNTAX;
    }
    let count = match a.get(2) {
        None => None,
        Some(c) => match parse_i64(c) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return Reply::err("ERR value is out of range, must be positive"),
        },
    };
    let len = match read(s, &a[1], now) {
        Ok(set) => set.map_or(0, |t| t.len()),
        Err(e) => return e,
    };
    if len == 0 || count == Some(0) {
        return match count {
            None => Reply::Nil,
            Some(_) => Reply::Set(Vec::new()),
        };
    }
    let n = count.unwrap_or(1).min(len as u64) as usize;
    let picked = if n == len {
        members_at(s, &a[1], &(0..len).collect::<Vec<_>>(), now)
    } else {
        let positions = distinct_positions(s, len, n);
        members_at(s, &a[1], &positions, now)
    };
    let refs: Vec<&[u8]> = picked.iter().map(|m| &m[..]).collect();
    s.set_rem(&a[1], &refs, now);
    match count {
        None => picked.first().map_or(Reply::Nil, Reply::bulk),
        Some(_) => Reply::Set(picked.iter().map(Reply::bulk).collect()),
    }
}

/// SRANDMEMBER key [count]
pub fn srandmember(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if a.len() > 3 {
        return errors::SYNTAX;
    }
    let count = match a.get(2) {
        None => None,
        Some(c) => match int_arg(c) {
            Ok(i64::MIN) => {
                return Reply::err(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Ok(n) => Some(n),
            Err(e) => return e,
        },
    };
    let len = match read(s, &a[1], now) {
        Ok(set) => set.map_or(0, |t| t.len()),
        Err(e) => return e,
    };
    let positions: Vec<usize> = match count {
        None if len == 0 => return Reply::Nil,
        None => vec![(s.random() % len as u64) as usize],
        Some(0) => return Reply::Array(Vec::new()),
        Some(_) if len == 0 => return Reply::Array(Vec::new()),
        Some(n) if n < 0 => {
            // Repeats allowed: `-count` independent picks.
            if n.unsigned_abs() > MAX_RANDOM_COUNT {
                return Reply::err("ERR value is out of range");
            }
            (0..n.unsigned_abs())
                .map(|_| (s.random() % len as u64) as usize)
                .collect()
        }
        Some(n) if n as u64 >= len as u64 => (0..len).collect(),
        Some(n) => distinct_positions(s, len, n as usize),
    };
    let picked = members_at(s, &a[1], &positions, now);
    match count {
        None => picked.first().map_or(Reply::Nil, Reply::bulk),
        Some(_) => Reply::Array(picked.iter().map(Reply::bulk).collect()),
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
///
/// An intset or packed set is returned whole with cursor 0, as Redis does with an
/// intset or listpack. A table is walked by position from the end down (see
/// `set::big`): the cursor is the position to continue below.
pub fn sscan(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
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
    let set = match read(s, &a[1], now) {
        Ok(set) => set,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let mut push = |m: &[u8]| {
        if pattern.is_none_or(|p| glob_match(p, m)) {
            items.push(Reply::bulk(m));
        }
    };
    let next = match set {
        None => 0,
        Some(SetRef::Table(t)) => {
            let top = if cursor == 0 {
                t.len()
            } else {
                usize::try_from(cursor).unwrap_or(usize::MAX).min(t.len())
            };
            let bottom = top.saturating_sub(count);
            for pos in (bottom..top).rev() {
                if let Some(m) = t.at(pos) {
                    push(m);
                }
            }
            bottom as u64
        }
        Some(small) => {
            small.iter().for_each(|m| push(&m));
            0
        }
    };
    let mut buf = itoa::Buffer::new();
    Reply::Array(vec![Reply::bulk(buf.format(next)), Reply::Array(items)])
}

// ---- the algebra -----------------------------------------------------------------------

/// Which combination of sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Inter,
    Union,
    Diff,
}

/// What a SINTER/SUNION/SDIFF (STORE)/SINTERCARD asks for, read from its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Algebra {
    pub op: Op,
    /// The destination of a STORE form.
    pub dst: Option<Bytes>,
    /// SINTERCARD: answer the count, stopping at the limit (0 = none).
    pub card: Option<usize>,
    pub keys: Vec<Bytes>,
}

const NUMKEYS_ERR: Reply = Reply::err("ERR numkeys should be greater than 0");

/// Reads the arguments of any of the algebra commands.
pub fn parse_algebra(a: &[Bytes]) -> Result<Algebra, Reply> {
    let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
    let op = match name.as_str() {
        "sinter" | "sinterstore" | "sintercard" => Op::Inter,
        "sunion" | "sunionstore" => Op::Union,
        _ => Op::Diff,
    };
    if name == "sintercard" {
        let n = match parse_i64(&a[1]) {
            Some(n) if n > 0 => n as u64,
            _ => return Err(NUMKEYS_ERR),
        };
        if n > (a.len() - 2) as u64 {
            return Err(Reply::err(
                "ERR Number of keys can't be greater than number of args",
            ));
        }
        let n = n as usize;
        let mut limit = 0usize;
        let mut i = 2 + n;
        while i < a.len() {
            if is_opt(&a[i], "LIMIT") && i + 1 < a.len() {
                limit = match parse_i64(&a[i + 1]) {
                    Some(l) if l >= 0 => usize::try_from(l).unwrap_or(usize::MAX),
                    _ => return Err(Reply::err("ERR LIMIT can't be negative")),
                };
                i += 2;
            } else {
                return Err(errors::SYNTAX);
            }
        }
        return Ok(Algebra {
            op,
            dst: None,
            card: Some(limit),
            keys: a[2..2 + n].to_vec(),
        });
    }
    let store = name.ends_with("store");
    let first = if store { 2 } else { 1 };
    Ok(Algebra {
        op,
        dst: store.then(|| a[1].clone()),
        card: None,
        keys: a[first..].to_vec(),
    })
}

/// The members `op` gives over `sets` (`None` for a missing key), distinct, at most
/// `limit` of them (SINTERCARD's LIMIT; `usize::MAX` for all).
pub fn combine<'a>(op: Op, sets: &[Option<SetRef<'a>>], limit: usize) -> Vec<Cow<'a, [u8]>> {
    let mut out = Vec::new();
    match op {
        Op::Inter => {
            let Some(mut present) = sets.iter().copied().collect::<Option<Vec<SetRef>>>() else {
                return out;
            };
            // The smallest set drives, as in Redis; the rest are probed.
            present.sort_by_key(|s| s.len());
            let Some((first, rest)) = present.split_first() else {
                return out;
            };
            for m in first.iter() {
                if out.len() >= limit {
                    break;
                }
                if rest.iter().all(|s| s.contains(&m)) {
                    out.push(m);
                }
            }
        }
        Op::Union => {
            let mut seen: HashSet<Cow<[u8]>> = HashSet::new();
            for set in sets.iter().flatten() {
                for m in set.iter() {
                    if seen.insert(m.clone()) {
                        out.push(m);
                    }
                }
            }
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return out;
            };
            for m in first.iter() {
                if !sets[1..].iter().flatten().any(|s| s.contains(&m)) {
                    out.push(m);
                }
            }
        }
    }
    out
}

/// What an algebra command does once its sets are known.
pub enum Outcome {
    /// Answer this (a read form, or an error).
    Reply(Reply),
    /// Store these packed members at the destination (delete it when empty) and answer
    /// their number.
    Store { members: Vec<u8>, count: usize },
}

/// The outcome of `alg` over `sets`, the sets of `alg.keys` in order.
pub fn outcome(alg: &Algebra, sets: &[Option<SetRef<'_>>]) -> Outcome {
    let limit = match alg.card {
        Some(0) | None => usize::MAX,
        Some(l) => l,
    };
    let result = combine(alg.op, sets, limit);
    if alg.card.is_some() {
        return Outcome::Reply(Reply::Int(result.len() as i64));
    }
    if alg.dst.is_some() {
        return Outcome::Store {
            members: packed::from_members(result.iter().map(|m| &m[..])),
            count: result.len(),
        };
    }
    Outcome::Reply(Reply::Set(bulks(result.into_iter())))
}

/// A set copied from another core, in a form [`combine`] can probe quickly.
pub enum Copied {
    Small(Bytes),
    Table(BigSet),
}

impl Copied {
    /// The set of a copy, or WRONGTYPE for a copy of another type.
    pub fn of(copy: ItemCopy) -> Result<Copied, Reply> {
        use crate::entry::Kind;
        if !matches!(copy.kind, Kind::SetInts | Kind::SetPacked) {
            return Err(errors::WRONGTYPE);
        }
        if packed::members(&copy.value)
            .nth(crate::set::MAX_PACKED_ENTRIES)
            .is_none()
        {
            Ok(Copied::Small(copy.value))
        } else {
            Ok(Copied::Table(BigSet::from_members(packed::members(
                &copy.value,
            ))))
        }
    }

    pub fn as_ref(&self) -> SetRef<'_> {
        match self {
            Copied::Small(b) => SetRef::Packed(b),
            Copied::Table(t) => SetRef::Table(t),
        }
    }
}

/// Writes a STORE form's result on this shard and gives its reply.
pub fn store_result(s: &mut Shard, dst: &[u8], members: &[u8], count: usize, now: u64) -> Reply {
    s.delete(dst, now);
    if count > 0 {
        s.put_set(dst, members, None, NO_EXPIRY, 0);
    }
    Reply::Int(count as i64)
}

/// SINTER, SUNION, SDIFF, SINTERSTORE, SUNIONSTORE, SDIFFSTORE and SINTERCARD with every
/// key on this core (across cores, `exec::txn` runs [`outcome`] over copies).
pub fn algebra(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let alg = match parse_algebra(a) {
        Ok(alg) => alg,
        Err(e) => return e,
    };
    // Reclaim expired keys first, so the reads below can share the store.
    for k in &alg.keys {
        s.expire_if_needed(k, now);
    }
    let store = s.store();
    let mut sets = Vec::with_capacity(alg.keys.len());
    for k in &alg.keys {
        match store.get(k, now) {
            None => sets.push(None),
            Some(e) => match e.set() {
                Some(set) => sets.push(Some(set)),
                None => return errors::WRONGTYPE,
            },
        }
    }
    match outcome(&alg, &sets) {
        Outcome::Reply(r) => r,
        Outcome::Store { members, count } => {
            let dst = alg.dst.expect("a store form has a destination");
            store_result(s, &dst, &members, count, now)
        }
    }
}

/// SMOVE source destination member, with both keys on this core.
pub fn smove(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (src, dst, m) = (&a[1], &a[2], &a[3]);
    let has = match s.lookup(src, now) {
        None => return Reply::Int(0),
        Some(e) => match e.set() {
            None => return errors::WRONGTYPE,
            Some(set) => set.contains(m),
        },
    };
    if let Err(e) = check_writable(s, dst, now) {
        return e;
    }
    if !has {
        return Reply::Int(0);
    }
    if src != dst {
        s.set_rem(src, &[m], now);
        s.set_add(dst, &[m], now);
    }
    Reply::Int(1)
}

#[cfg(test)]
#[path = "sets_tests.rs"]
mod tests;
