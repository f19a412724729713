//! List commands, with Redis 7.0's replies and error texts: LPUSH, RPUSH, LPUSHX, RPUSHX,
//! LPOP, RPOP, LLEN, LINDEX, LRANGE, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH
//! and LMPOP.
//!
//! Reads go through `Shard::lookup_read` and [`Entry::list`](crate::Entry::list); writes
//! through the write path's `list_push`, `list_pop`, `list_set`, `list_insert` and
//! `list_remove`. LMOVE, RPOPLPUSH and LMPOP whose keys live on several cores run as cross-core transactions
//! ([`crate::exec`]) built from [`mpop_one`], [`source_state`] and the same write path.

use bytes::Bytes;

use super::{cmd_name, int_arg, is_opt, parse_i64};
use crate::list::ListRef;
use crate::reply::{errors, Reply};
use crate::shard::Shard;

const NOT_POSITIVE: Reply = Reply::err("ERR value is out of range, must be positive");
const INDEX_RANGE: Reply = Reply::err("ERR index out of range");

/// The list under a live key for a read that counts: `Ok(None)` when missing,
/// WRONGTYPE when the key holds another type.
fn read<'a>(s: &'a mut Shard, key: &[u8], now: u64) -> Result<Option<ListRef<'a>>, Reply> {
    match s.lookup_read(key, now) {
        None => Ok(None),
        Some(e) => e.list().map(Some).ok_or(errors::WRONGTYPE),
    }
}

/// The list under a live key for a write (no read is counted).
fn write_target<'a>(s: &'a mut Shard, key: &[u8], now: u64) -> Result<Option<ListRef<'a>>, Reply> {
    match s.lookup(key, now) {
        None => Ok(None),
        Some(e) => e.list().map(Some).ok_or(errors::WRONGTYPE),
    }
}

fn elem(v: Vec<u8>) -> Reply {
    Reply::Bulk(Bytes::from(v))
}

/// LPUSH, RPUSH, LPUSHX and RPUSHX: `only_existing` for the X forms.
fn push_generic(s: &mut Shard, a: &[Bytes], now: u64, left: bool, only_existing: bool) -> Reply {
    match write_target(s, &a[1], now) {
        Err(e) => return e,
        Ok(None) if only_existing => return Reply::Int(0),
        Ok(_) => {}
    }
    let pushed = match a {
        // One element (the usual push): no vector of elements.
        [_, key, e] => s.list_push(key, left, &[&e[..]], now),
        _ => {
            let items: Vec<&[u8]> = a[2..].iter().map(|e| &e[..]).collect();
            s.list_push(&a[1], left, &items, now)
        }
    };
    Reply::Int(pushed as i64)
}

/// LPUSH key element [element ...]
pub fn lpush(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    push_generic(s, a, now, true, false)
}

/// RPUSH key element [element ...]
pub fn rpush(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    push_generic(s, a, now, false, false)
}

/// LPUSHX key element [element ...]
pub fn lpushx(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    push_generic(s, a, now, true, true)
}

/// RPUSHX key element [element ...]
pub fn rpushx(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    push_generic(s, a, now, false, true)
}

/// LPOP and RPOP: one element as a bulk string, or with a count an array.
fn pop_generic(s: &mut Shard, a: &[Bytes], now: u64, left: bool) -> Reply {
    if a.len() > 3 {
        return errors::wrong_arity(&cmd_name(a));
    }
    let count = match a.get(2) {
        None => None,
        Some(c) => match parse_i64(c) {
            Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return NOT_POSITIVE,
        },
    };
    match write_target(s, &a[1], now) {
        Err(e) => return e,
        Ok(None) => {
            return if count.is_some() {
                Reply::NilArray
            } else {
                Reply::Nil
            }
        }
        Ok(Some(_)) => {}
    }
    match count {
        None => s
            .list_pop(&a[1], left, 1, now)
            .pop()
            .map_or(Reply::Nil, elem),
        Some(n) => Reply::Array(
            s.list_pop(&a[1], left, n, now)
                .into_iter()
                .map(elem)
                .collect(),
        ),
    }
}

/// LPOP key [count]
pub fn lpop(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    pop_generic(s, a, now, true)
}

/// RPOP key [count]
pub fn rpop(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    pop_generic(s, a, now, false)
}

/// LLEN key
pub fn llen(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match read(s, &a[1], now) {
        Ok(l) => Reply::Int(l.map_or(0, |l| l.len()) as i64),
        Err(e) => e,
    }
}

/// A Redis index (negative counts from the tail) as a position in a list of `len`.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// LINDEX key index
pub fn lindex(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let l = match read(s, &a[1], now) {
        Ok(Some(l)) => l,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let index = match int_arg(&a[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    position(index, l.len())
        .and_then(|i| l.get(i))
        .map_or(Reply::Nil, Reply::bulk)
}

/// Redis's clamping of a `start stop` range to a list of `len`: the positions it covers,
/// or `None` when it is empty.
fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

/// LRANGE key start stop
pub fn lrange(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (start, stop) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let l = match read(s, &a[1], now) {
        Ok(Some(l)) => l,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    match range(start, stop, l.len()) {
        None => Reply::Array(Vec::new()),
        Some((from, to)) => Reply::Array(
            l.iter_from(from)
                .take(to - from + 1)
                .map(Reply::bulk)
                .collect(),
        ),
    }
}

/// LSET key index element
pub fn lset(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let len = match write_target(s, &a[1], now) {
        Ok(Some(l)) => l.len(),
        Ok(None) => return errors::NO_SUCH_KEY,
        Err(e) => return e,
    };
    let index = match int_arg(&a[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match position(index, len) {
        None => INDEX_RANGE,
        Some(i) => {
            s.list_set(&a[1], i, &a[3], now);
            Reply::Ok
        }
    }
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let after = if is_opt(&a[2], "AFTER") {
        true
    } else if is_opt(&a[2], "BEFORE") {
        false
    } else {
        return errors::SYNTAX;
    };
    let l = match write_target(s, &a[1], now) {
        Ok(Some(l)) => l,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let Some(at) = l.iter().position(|e| e == &a[3][..]) else {
        return Reply::Int(-1);
    };
    let len = l.len() + 1;
    s.list_insert(&a[1], at + usize::from(after), &a[4], now);
    Reply::Int(len as i64)
}

/// LREM key count element
pub fn lrem(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let count = match int_arg(&a[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let l = match write_target(s, &a[1], now) {
        Ok(Some(l)) => l,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let target = &a[3][..];
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    // The positions of the matches, from the end the sign of `count` names, ascending.
    let at: Vec<u64> = if count < 0 {
        let last = l.len() - 1;
        let mut v: Vec<u64> = l
            .iter_rev()
            .enumerate()
            .filter(|(_, e)| *e == target)
            .take(limit)
            .map(|(i, _)| (last - i) as u64)
            .collect();
        v.reverse();
        v
    } else {
        l.iter()
            .enumerate()
            .filter(|(_, e)| *e == target)
            .take(limit)
            .map(|(i, _)| i as u64)
            .collect()
    };
    if at.is_empty() {
        return Reply::Int(0);
    }
    s.list_remove(&a[1], &at, now);
    Reply::Int(at.len() as i64)
}

/// LTRIM key start stop: elements outside the range are popped from both ends.
pub fn ltrim(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (start, stop) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let len = match write_target(s, &a[1], now) {
        Ok(Some(l)) => l.len(),
        Ok(None) => return Reply::Ok,
        Err(e) => return e,
    };
    match range(start, stop, len) {
        None => {
            s.delete(&a[1], now);
        }
        Some((from, to)) => {
            if from > 0 {
                s.list_pop(&a[1], true, from, now);
            }
            if to + 1 < len {
                s.list_pop(&a[1], false, len - 1 - to, now);
            }
        }
    }
    Reply::Ok
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < a.len() {
        if i + 1 >= a.len() {
            return errors::SYNTAX;
        }
        if !["RANK", "COUNT", "MAXLEN"].iter().any(|o| is_opt(&a[i], o)) {
            return errors::SYNTAX;
        }
        let v = match int_arg(&a[i + 1]) {
            Ok(v) => v,
            Err(e) => return e,
        };
        if is_opt(&a[i], "RANK") {
            if v == 0 {
                return Reply::err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            rank = v;
        } else if is_opt(&a[i], "COUNT") {
            if v < 0 {
                return Reply::err("ERR COUNT can't be negative");
            }
            count = Some(v as u64);
        } else if is_opt(&a[i], "MAXLEN") {
            if v < 0 {
                return Reply::err("ERR MAXLEN can't be negative");
            }
            maxlen = usize::try_from(v).unwrap_or(usize::MAX);
        }
        i += 2;
    }
    let l = match read(s, &a[1], now) {
        Ok(Some(l)) => l,
        Ok(None) if count.is_some() => return Reply::Array(Vec::new()),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let len = l.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    let elems: Box<dyn Iterator<Item = (usize, &[u8])>> = if rank > 0 {
        Box::new(l.iter().enumerate().take(scan))
    } else {
        Box::new(
            l.iter_rev()
                .enumerate()
                .map(move |(i, e)| (len - 1 - i, e))
                .take(scan),
        )
    };
    let skip = rank.unsigned_abs().saturating_sub(1);
    let want = match count {
        None => 1,
        Some(0) => u64::MAX,
        Some(c) => c,
    };
    let mut found = Vec::new();
    let mut seen = 0u64;
    for (pos, e) in elems {
        if e == &a[2][..] {
            seen += 1;
            if seen > skip {
                found.push(Reply::Int(pos as i64));
                if found.len() as u64 == want {
                    break;
                }
            }
        }
    }
    match count {
        Some(_) => Reply::Array(found),
        None => found.pop().unwrap_or(Reply::Nil),
    }
}

/// LEFT or RIGHT: `Some(true)` for LEFT.
fn side(arg: &[u8]) -> Option<bool> {
    if is_opt(arg, "LEFT") {
        Some(true)
    } else if is_opt(arg, "RIGHT") {
        Some(false)
    } else {
        None
    }
}

/// Whether the list at a key can be popped: `Ok(false)` when absent, WRONGTYPE for
/// another type.
pub fn source_state(s: &mut Shard, key: &[u8], now: u64) -> Result<bool, Reply> {
    write_target(s, key, now).map(|l| l.is_some_and(|l| !l.is_empty()))
}

/// WRONGTYPE when `key` holds something other than a list.
pub fn check_list_or_absent(s: &mut Shard, key: &[u8], now: u64) -> Result<(), Reply> {
    write_target(s, key, now).map(|_| ())
}

/// LMOVE's and RPOPLPUSH's directions.
pub fn move_sides(a: &[Bytes]) -> Result<(bool, bool), Reply> {
    if a[0].eq_ignore_ascii_case(b"rpoplpush") {
        return Ok((false, true));
    }
    match (side(&a[3]), side(&a[4])) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => Err(errors::SYNTAX),
    }
}

fn move_generic(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (from, to) = match move_sides(a) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let (src, dst) = (&a[1], &a[2]);
    let len = match write_target(s, src, now) {
        Ok(Some(l)) => l.len(),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    if let Err(e) = check_list_or_absent(s, dst, now) {
        return e;
    }
    if src == dst && len == 1 {
        // Rotating a one-element list changes nothing (and keeps its expiry).
        return read(s, src, now)
            .ok()
            .flatten()
            .and_then(|l| l.get(0))
            .map_or(Reply::Nil, Reply::bulk);
    }
    let Some(v) = s.list_pop(src, from, 1, now).pop() else {
        return Reply::Nil;
    };
    s.list_push(dst, to, &[&v], now);
    elem(v)
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    move_generic(s, a, now)
}

/// RPOPLPUSH source destination
pub fn rpoplpush(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    move_generic(s, a, now)
}

/// LMPOP's parsed arguments: the keys' positions, the side and the count.
pub struct MpopArgs {
    pub keys: std::ops::Range<usize>,
    pub left: bool,
    pub count: usize,
}

/// Parses `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]` with Redis's errors.
pub fn mpop_args(a: &[Bytes]) -> Result<MpopArgs, Reply> {
    let numkeys = match parse_i64(&a[1]) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(Reply::err("ERR numkeys should be greater than 0")),
    };
    // Keys, then the side: numkeys must leave room for it.
    if numkeys >= (a.len() - 2) as u64 {
        return Err(errors::SYNTAX);
    }
    let end = 2 + numkeys as usize;
    let left = side(&a[end]).ok_or(errors::SYNTAX)?;
    let mut count = None;
    let mut i = end + 1;
    while i < a.len() {
        if is_opt(&a[i], "COUNT") && i + 1 < a.len() && count.is_none() {
            match parse_i64(&a[i + 1]) {
                Some(n) if n > 0 => count = Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => return Err(Reply::err("ERR count should be greater than 0")),
            }
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok(MpopArgs {
        keys: 2..end,
        left,
        count: count.unwrap_or(1),
    })
}

/// LMPOP's step for one key: `Ok(None)` when it is absent (try the next key), WRONGTYPE
/// for another type, else the elements popped.
pub fn mpop_one(
    s: &mut Shard,
    key: &[u8],
    left: bool,
    count: usize,
    now: u64,
) -> Result<Option<Vec<Vec<u8>>>, Reply> {
    if !source_state(s, key, now)? {
        return Ok(None);
    }
    Ok(Some(s.list_pop(key, left, count, now)))
}

/// LMPOP's reply for elements popped from `key`.
pub fn mpop_reply(key: Bytes, popped: Vec<Vec<u8>>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(key),
        Reply::Array(popped.into_iter().map(elem).collect()),
    ])
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let m = match mpop_args(a) {
        Ok(m) => m,
        Err(e) => return e,
    };
    for k in &a[m.keys] {
        match mpop_one(s, k, m.left, m.count, now) {
            Err(e) => return e,
            Ok(None) => {}
            Ok(Some(popped)) => return mpop_reply(k.clone(), popped),
        }
    }
    Reply::NilArray
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
