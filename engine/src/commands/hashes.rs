//! Hash commands, with Redis 7.0's replies and error texts: HSET, HSETNX, HMSET, HGET,
//! HMGET, HGETALL, HDEL, HEXISTS, HLEN, HSTRLEN, HKEYS, HVALS, HINCRBY, HINCRBYFLOAT,
//! HRANDFIELD and HSCAN.
//!
//! Reads go through `Shard::lookup_read` and [`Entry::hash`](crate::Entry::hash); writes
//! through the write path's `hash_set` and `hash_del`, which report the fields touched.

use bytes::Bytes;

use super::longdouble::LongDouble;
use super::{cmd_name, int_arg, is_opt, parse_i64, scan_option};
use crate::glob::glob_match;
use crate::hash::HashRef;
use crate::reply::{errors, Reply};
use crate::shard::Shard;

/// HRANDFIELD's largest count magnitude: a reply is built whole in memory, so a count
/// beyond this is refused instead of allocating without bound (Redis 7.0 would try).
pub const MAX_RANDOM_COUNT: u64 = 1 << 22;

/// The hash under a live key for a read that counts: `Ok(None)` when missing,
/// WRONGTYPE when the key holds another type.
fn read<'a>(s: &'a mut Shard, key: &[u8], now: u64) -> Result<Option<HashRef<'a>>, Reply> {
    match s.lookup_read(key, now) {
        None => Ok(None),
        Some(e) => e.hash().map(Some).ok_or(errors::WRONGTYPE),
    }
}

/// Checks that a write may go to `key`: absent or a hash.
fn check_writable(s: &mut Shard, key: &[u8], now: u64) -> Result<(), Reply> {
    match s.lookup(key, now) {
        Some(e) if e.hash().is_none() => Err(errors::WRONGTYPE),
        _ => Ok(()),
    }
}

/// HSET and HMSET: one probe of the keyspace checks the type and writes.
fn set_generic(s: &mut Shard, a: &[Bytes], now: u64) -> Result<usize, Reply> {
    if a.len() < 4 || !a.len().is_multiple_of(2) {
        return Err(errors::wrong_arity(&cmd_name(a)));
    }
    s.hash_set_args(&a[1], &a[2..], now)
        .ok_or(errors::WRONGTYPE)
}

/// HSET key field value [field value ...]
pub fn hset(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match set_generic(s, a, now) {
        Ok(n) => Reply::Int(n as i64),
        Err(e) => e,
    }
}

/// HMSET key field value [field value ...]
pub fn hmset(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match set_generic(s, a, now) {
        Ok(_) => Reply::Ok,
        Err(e) => e,
    }
}

/// HSETNX key field value
pub fn hsetnx(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if let Err(e) = check_writable(s, &a[1], now) {
        return e;
    }
    let exists = s
        .lookup(&a[1], now)
        .and_then(|e| e.hash())
        .is_some_and(|h| h.get(&a[2]).is_some());
    if exists {
        return Reply::Int(0);
    }
    s.hash_set(&a[1], &[(&a[2], &a[3])], now);
    Reply::Int(1)
}

/// HGET key field
pub fn hget(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(h) => h.and_then(|h| h.get(&a[2])).map_or(Reply::Nil, Reply::bulk),
        Err(e) => e,
    }
}

/// HMGET key field [field ...]
pub fn hmget(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(h) => Reply::Array(
            a[2..]
                .iter()
                .map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Nil, Reply::bulk))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// HGETALL key: a map in RESP3, a flat array in RESP2.
pub fn hgetall(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(h) => Reply::Map(
            h.map(|h| {
                h.iter()
                    .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                    .collect()
            })
            .unwrap_or_default(),
        ),
        Err(e) => e,
    }
}

/// HKEYS and HVALS: one side of every pair.
fn one_side(s: &mut Shard, a: &[Bytes], now: u64, keys: bool) -> Reply {
    match read(s, &a[1], now) {
        Ok(h) => Reply::Array(
            h.map(|h| {
                h.iter()
                    .map(|(f, v)| Reply::bulk(if keys { f } else { v }))
                    .collect()
            })
            .unwrap_or_default(),
        ),
        Err(e) => e,
    }
}

/// HKEYS key
pub fn hkeys(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    one_side(s, a, now, true)
}

/// HVALS key
pub fn hvals(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    one_side(s, a, now, false)
}

/// HDEL key field [field ...]
pub fn hdel(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if let Err(e) = check_writable(s, &a[1], now) {
        return e;
    }
    let fields: Vec<&[u8]> = a[2..].iter().map(|f| &f[..]).collect();
    Reply::Int(s.hash_del(&a[1], &fields, now) as i64)
}

/// HEXISTS key field
pub fn hexists(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(h) => Reply::Int(h.is_some_and(|h| h.get(&a[2]).is_some()) as i64),
        Err(e) => e,
    }
}

/// HLEN key
pub fn hlen(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(h) => Reply::Int(h.map_or(0, |h| h.len()) as i64),
        Err(e) => e,
    }
}

/// HSTRLEN key field
pub fn hstrlen(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(h) => Reply::Int(h.and_then(|h| h.get(&a[2])).map_or(0, |v| v.len()) as i64),
        Err(e) => e,
    }
}

/// The current value of a field for an increment: `Ok(None)` when the key or field is
/// absent, WRONGTYPE for a key of another type.
fn field_for_write(
    s: &mut Shard,
    key: &[u8],
    field: &[u8],
    now: u64,
) -> Result<Option<Vec<u8>>, Reply> {
    match s.lookup(key, now) {
        None => Ok(None),
        Some(e) => match e.hash() {
            None => Err(errors::WRONGTYPE),
            Some(h) => Ok(h.get(field).map(<[u8]>::to_vec)),
        },
    }
}

/// HINCRBY key field increment
pub fn hincrby(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let by = match int_arg(&a[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let old = match field_for_write(s, &a[1], &a[2], now) {
        Ok(Some(v)) => match parse_i64(&v) {
            Some(n) => n,
            None => return Reply::err("ERR hash value is not an integer"),
        },
        Ok(None) => 0,
        Err(e) => return e,
    };
    let Some(new) = old.checked_add(by) else {
        return errors::OVERFLOW;
    };
    let mut buf = itoa::Buffer::new();
    s.hash_set(&a[1], &[(&a[2], buf.format(new).as_bytes())], now);
    Reply::Int(new)
}

/// HINCRBYFLOAT key field increment: long-double arithmetic and formatting, as
/// INCRBYFLOAT's (see `longdouble`).
pub fn hincrbyfloat(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let Some(by) = LongDouble::parse(&a[3]) else {
        return errors::NOT_FLOAT;
    };
    if !by.is_finite() {
        return Reply::err("ERR value is NaN or Infinity");
    }
    let old = match field_for_write(s, &a[1], &a[2], now) {
        Ok(Some(v)) => match LongDouble::parse(&v) {
            Some(n) => n,
            None => return Reply::err("ERR hash value is not a float"),
        },
        Ok(None) => LongDouble::parse(b"0").expect("zero parses"),
        Err(e) => return e,
    };
    let new = match old.add(by) {
        Some(v) if v.is_finite() => v,
        _ => return Reply::err("ERR increment would produce NaN or Infinity"),
    };
    let text = new.to_human();
    s.hash_set(&a[1], &[(&a[2], text.as_bytes())], now);
    Reply::Bulk(Bytes::from(text))
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let mut count = None;
    let mut withvalues = false;
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
        if a.len() > 4 || (a.len() == 4 && !is_opt(&a[3], "WITHVALUES")) {
            return errors::SYNTAX;
        }
        withvalues = a.len() == 4;
        if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Reply::err("ERR value is out of range");
        }
        count = Some(n);
    }
    let len = match read(s, &a[1], now) {
        Ok(h) => h.map(|h| h.len()),
        Err(e) => return e,
    };
    // Positions first (the generator is the shard's), then the pairs at them.
    let positions: Vec<usize> = match (count, len) {
        (None, None) => return Reply::Nil,
        (Some(_), None) => return Reply::Array(Vec::new()),
        (_, Some(0)) | (Some(0), _) => return Reply::Array(Vec::new()),
        (None, Some(len)) => vec![(s.random() % len as u64) as usize],
        (Some(n), Some(len)) if n < 0 => {
            // Repeats allowed: `-count` independent picks.
            if n.unsigned_abs() > MAX_RANDOM_COUNT {
                return Reply::err("ERR value is out of range");
            }
            (0..n.unsigned_abs())
                .map(|_| (s.random() % len as u64) as usize)
                .collect()
        }
        (Some(n), Some(len)) if n as u64 >= len as u64 => (0..len).collect(),
        (Some(n), Some(len)) => {
            // Distinct picks: a partial Fisher-Yates over positions.
            let mut all: Vec<usize> = (0..len).collect();
            for k in 0..n as usize {
                let j = k + (s.random() % (len - k) as u64) as usize;
                all.swap(k, j);
            }
            all.truncate(n as usize);
            all
        }
    };
    let Some(h) = s.store().get(&a[1], now).and_then(|e| e.hash()) else {
        return Reply::Nil;
    };
    let packed: Vec<(&[u8], &[u8])> = match h {
        HashRef::Packed(_) => h.iter().collect(),
        HashRef::Table(_) => Vec::new(),
    };
    let at = |i: usize| match h {
        HashRef::Table(t) => t.at(i),
        HashRef::Packed(_) => packed.get(i).copied(),
    };
    let picks = positions.into_iter().filter_map(at);
    if count.is_none() {
        return picks
            .map(|(f, _)| Reply::bulk(f))
            .next()
            .unwrap_or(Reply::Nil);
    }
    if withvalues {
        Reply::Pairs(
            picks
                .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                .collect(),
        )
    } else {
        Reply::Array(picks.map(|(f, _)| Reply::bulk(f)).collect())
    }
}

/// Parses a scan cursor as Redis 7.0 does (`strtoul`).
fn parse_cursor(b: &[u8]) -> Option<u64> {
    super::keyspace::parse_cursor(b)
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
///
/// A packed hash is returned whole with cursor 0, as Redis does with a listpack. A table
/// is walked by position from the end down (see `hash::big`): the cursor is the
/// position to continue below, and every pair present for the whole scan is returned.
pub fn hscan(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let Some(cursor) = parse_cursor(&a[2]) else {
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
    let h = match read(s, &a[1], now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let mut push = |f: &[u8], v: &[u8]| {
        if pattern.is_none_or(|p| glob_match(p, f)) {
            items.push(Reply::bulk(f));
            items.push(Reply::bulk(v));
        }
    };
    let next = match h {
        None => 0,
        Some(HashRef::Packed(_)) => {
            h.into_iter()
                .flat_map(|h| h.iter())
                .for_each(|(f, v)| push(f, v));
            0
        }
        Some(HashRef::Table(t)) => {
            let top = if cursor == 0 {
                t.len()
            } else {
                usize::try_from(cursor).unwrap_or(usize::MAX).min(t.len())
            };
            let bottom = top.saturating_sub(count);
            for pos in (bottom..top).rev() {
                if let Some((f, v)) = t.at(pos) {
                    push(f, v);
                }
            }
            bottom as u64
        }
    };
    let mut buf = itoa::Buffer::new();
    Reply::Array(vec![Reply::bulk(buf.format(next)), Reply::Array(items)])
}

#[cfg(test)]
#[path = "hashes_tests.rs"]
mod tests;
