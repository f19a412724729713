//! String commands: GET/SET and friends, MGET/MSET, APPEND, STRLEN, GETRANGE, SETRANGE.
//! The INCR family lives in [`super::incr`] and LCS in [`super::lcs`]; both are
//! re-exported here so the command table names every string handler as `strings::*`.

use bytes::Bytes;

pub use super::incr::{decr, decrby, incr, incrby, incrbyfloat};
pub use super::lcs::{lcs, lcs_reply, lcs_reply_with_limit};

use super::{
    already_expired, cmd_name, expire_deadline, int_arg, is_opt, string_of, string_reply,
    ExpireOpt, ExpireUnit,
};
use crate::reply::{errors, Reply};
use crate::shard::Shard;
use crate::store::NO_EXPIRY;

/// GET key
pub fn get(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match get_value(s, &a[1], now) {
        Ok(Some(v)) => Reply::bulk(v),
        Ok(None) => Reply::Nil,
        Err(r) => r,
    }
}

/// GET's value in place, `None` for a missing key; `Err` is WRONGTYPE.
#[inline]
pub(crate) fn get_value<'s>(
    s: &'s mut Shard,
    key: &[u8],
    now: u64,
) -> Result<Option<&'s [u8]>, Reply> {
    match s.lookup_read(key, now) {
        None => Ok(None),
        Some(e) => e.string().map(Some).ok_or(errors::WRONGTYPE),
    }
}

/// Options of SET or GETEX after the key (and value), as Redis's
/// `parseExtendedStringArgumentsOrReply` reads them: each option may repeat, conflicting
/// ones (NX with XX, two different expiry kinds) are a syntax error.
#[derive(Debug, Default)]
struct StringOpts {
    nx: bool,
    xx: bool,
    get: bool,
    /// The expiry option and its raw argument.
    expire: Option<(ExpireUnit, Bytes)>,
    keepttl: bool,
    persist: bool,
}

/// Which command's options are being parsed: SET takes NX/XX/GET/KEEPTTL, GETEX PERSIST.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptsFor {
    Set,
    GetEx,
}

impl StringOpts {
    fn parse(opts: &[Bytes], cmd: OptsFor) -> Result<StringOpts, Reply> {
        let mut o = StringOpts::default();
        let mut i = 0;
        while i < opts.len() {
            let opt = &opts[i][..];
            let set = cmd == OptsFor::Set;
            let unit = o.expire.as_ref().map(|(u, _)| *u);
            // An expiry kind may repeat (last wins) but not mix with another kind.
            let expire_ok = |u: ExpireUnit| !o.keepttl && !o.persist && unit.is_none_or(|x| x == u);
            let expire_unit = [
                ("EX", ExpireUnit::Secs),
                ("PX", ExpireUnit::Millis),
                ("EXAT", ExpireUnit::AtSecs),
                ("PXAT", ExpireUnit::AtMillis),
            ]
            .into_iter()
            .find(|(w, _)| is_opt(opt, w))
            .map(|(_, u)| u);
            if set && is_opt(opt, "NX") && !o.xx {
                o.nx = true;
            } else if set && is_opt(opt, "XX") && !o.nx {
                o.xx = true;
            } else if set && is_opt(opt, "GET") {
                o.get = true;
            } else if set && is_opt(opt, "KEEPTTL") && unit.is_none() {
                o.keepttl = true;
            } else if !set && is_opt(opt, "PERSIST") && unit.is_none() {
                o.persist = true;
            } else if let Some(u) = expire_unit.filter(|&u| expire_ok(u) && i + 1 < opts.len()) {
                o.expire = Some((u, opts[i + 1].clone()));
                i += 1;
            } else {
                return Err(errors::SYNTAX);
            }
            i += 1;
        }
        Ok(o)
    }

    /// The expiry as an absolute deadline (errors name `cmd`).
    fn expiry(&self, now: u64, cmd: &[u8]) -> Result<ExpireOpt, Reply> {
        Ok(match &self.expire {
            Some((unit, arg)) => ExpireOpt::At(expire_deadline(arg, *unit, now, cmd)?),
            None if self.keepttl => ExpireOpt::KeepTtl,
            None if self.persist => ExpireOpt::Persist,
            None => ExpireOpt::None,
        })
    }
}

/// When SET writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    /// NX: only if the key is absent.
    IfAbsent,
    /// XX: only if the key is present.
    IfPresent,
}

/// What SET answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    /// `+OK`, or Nil when the condition failed (SET).
    Ok,
    /// The old value or Nil (SET ... GET, GETSET).
    Old,
    /// 1 when written, 0 when not (SETNX).
    Written,
}

/// The one write behind SET, SETNX, SETEX, PSETEX and GETSET, as Redis's
/// `setGenericCommand`. A deadline already in the past deletes the key instead.
fn set_generic(
    s: &mut Shard,
    key: &[u8],
    value: &[u8],
    cond: Cond,
    expire: ExpireOpt,
    reply: SetReply,
    now: u64,
) -> Reply {
    // Reading the old value (GET, GETSET) counts a keyspace hit or miss, as in Redis.
    let old = if reply == SetReply::Old {
        s.lookup_read(key, now)
    } else {
        s.lookup(key, now)
    };
    let found = old.is_some();
    let old_expire = old.map_or(NO_EXPIRY, |e| e.expire_at());
    let old_reply = match reply {
        SetReply::Old => string_reply(old),
        _ => Reply::Nil,
    };
    if old_reply.is_error() {
        // SET ... GET and GETSET on another type: WRONGTYPE, and nothing written.
        return old_reply;
    }
    let write = match cond {
        Cond::Always => true,
        Cond::IfAbsent => !found,
        Cond::IfPresent => found,
    };
    if write {
        match expire {
            ExpireOpt::At(at) if already_expired(at, now) => {
                s.delete(key, now);
            }
            _ => {
                let at = match expire {
                    ExpireOpt::At(at) => at,
                    ExpireOpt::KeepTtl => old_expire,
                    ExpireOpt::None | ExpireOpt::Persist => NO_EXPIRY,
                };
                s.put(key, value, at, 0);
            }
        }
    }
    match reply {
        SetReply::Old => old_reply,
        SetReply::Written => Reply::Int(write as i64),
        SetReply::Ok if write => Reply::Ok,
        SetReply::Ok => Reply::Nil,
    }
}

/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
///     EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
pub fn set(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let o = match StringOpts::parse(&a[3..], OptsFor::Set) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let expire = match o.expiry(now, &a[0]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let cond = match (o.nx, o.xx) {
        (true, _) => Cond::IfAbsent,
        (_, true) => Cond::IfPresent,
        _ => Cond::Always,
    };
    let reply = if o.get { SetReply::Old } else { SetReply::Ok };
    set_generic(s, &a[1], &a[2], cond, expire, reply, now)
}

/// SETNX key value
pub fn setnx(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_generic(
        s,
        &a[1],
        &a[2],
        Cond::IfAbsent,
        ExpireOpt::None,
        SetReply::Written,
        now,
    )
}

/// SETEX and PSETEX: key, a relative expiry in `unit`, value.
fn setex_generic(s: &mut Shard, a: &[Bytes], unit: ExpireUnit, now: u64) -> Reply {
    match expire_deadline(&a[2], unit, now, &a[0]) {
        Ok(at) => set_generic(
            s,
            &a[1],
            &a[3],
            Cond::Always,
            ExpireOpt::At(at),
            SetReply::Ok,
            now,
        ),
        Err(e) => e,
    }
}

/// SETEX key seconds value
pub fn setex(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    setex_generic(s, a, ExpireUnit::Secs, now)
}

/// PSETEX key milliseconds value
pub fn psetex(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    setex_generic(s, a, ExpireUnit::Millis, now)
}

/// GETSET key value
pub fn getset(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    set_generic(
        s,
        &a[1],
        &a[2],
        Cond::Always,
        ExpireOpt::None,
        SetReply::Old,
        now,
    )
}

/// GETDEL key
pub fn getdel(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let reply = string_reply(s.lookup_read(&a[1], now));
    if matches!(reply, Reply::Bulk(_)) {
        s.delete(&a[1], now);
    }
    reply
}

/// GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///     PXAT unix-time-milliseconds | PERSIST]
pub fn getex(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    // As Redis's `getexCommand`: syntax first, then the key (a missing key answers Nil
    // even with an invalid expire time), then the expire time.
    let opts = match StringOpts::parse(&a[2..], OptsFor::GetEx) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let Some(e) = s.lookup_read(&a[1], now) else {
        return Reply::Nil;
    };
    let Some(v) = e.string() else {
        return errors::WRONGTYPE;
    };
    let reply = Reply::bulk(v);
    let has_ttl = e.expire_at() != NO_EXPIRY;
    let expire = match opts.expiry(now, &a[0]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    match expire {
        ExpireOpt::At(at) if already_expired(at, now) => {
            s.delete(&a[1], now);
        }
        ExpireOpt::At(at) => {
            s.set_expire(&a[1], at, now);
        }
        ExpireOpt::Persist if has_ttl => {
            s.set_expire(&a[1], NO_EXPIRY, now);
        }
        _ => {}
    }
    reply
}

/// MGET key [key ...]
pub fn mget(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    Reply::Array(
        a[1..]
            .iter()
            // A key of another type is Nil, as in Redis.
            .map(|k| match string_reply(s.lookup_read(k, now)) {
                Reply::Error(_) => Reply::Nil,
                r => r,
            })
            .collect(),
    )
}

/// MSET and MSETNX take key/value pairs: an unpaired key is an arity error, checked
/// before any write. The server calls this before splitting a cross-core MSETNX.
pub fn check_pairs(a: &[Bytes]) -> Result<(), Reply> {
    if a.len() < 3 || a.len().is_multiple_of(2) {
        return Err(errors::wrong_arity(&cmd_name(a)));
    }
    Ok(())
}

/// MSET key value [key value ...]
pub fn mset(s: &mut Shard, a: &[Bytes], _now: u64) -> Reply {
    if let Err(e) = check_pairs(a) {
        return e;
    }
    for kv in a[1..].chunks_exact(2) {
        s.put(&kv[0], &kv[1], NO_EXPIRY, 0);
    }
    Reply::Ok
}

/// MSETNX key value [key value ...]
pub fn msetnx(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    if let Err(e) = check_pairs(a) {
        return e;
    }
    if a[1..].chunks_exact(2).any(|kv| s.exists(&kv[0], now)) {
        return Reply::Int(0);
    }
    for kv in a[1..].chunks_exact(2) {
        s.put(&kv[0], &kv[1], NO_EXPIRY, 0);
    }
    Reply::Int(1)
}

/// Redis's `checkStringLength`: whether a string of `offset + len` bytes may be built.
fn check_len(s: &Shard, offset: usize, len: usize) -> Result<(), Reply> {
    match offset.checked_add(len) {
        Some(total) if total <= s.max_value_len() => Ok(()),
        _ => Err(errors::STRING_TOO_LONG),
    }
}

/// APPEND key value
pub fn append(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (key, tail) = (&a[1], &a[2]);
    let found = match string_of(s.lookup(key, now)) {
        Ok(v) => v.map(|v| v.len()),
        Err(e) => return e,
    };
    let Some(len) = found else {
        s.put(key, tail, NO_EXPIRY, 0);
        return Reply::Int(tail.len() as i64);
    };
    if let Err(e) = check_len(s, len, tail.len()) {
        return e;
    }
    let new_len = s.update(key, now, |v| {
        v.extend_from_slice(tail);
        v.len()
    });
    Reply::Int(new_len.unwrap_or(0) as i64)
}

/// STRLEN key
pub fn strlen(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match string_of(s.lookup_read(&a[1], now)) {
        Ok(v) => Reply::Int(v.map_or(0, |v| v.len() as i64)),
        Err(e) => e,
    }
}

/// The byte range GETRANGE returns for `start..=end` over `len` bytes, as Redis's
/// `getrangeCommand` clamps it; `None` is the empty string.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return None;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.clamp(0, len - 1);
    (start <= end).then_some((start as usize, end as usize))
}

/// GETRANGE key start end (also SUBSTR)
pub fn getrange(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (start, end) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(st), Ok(en)) => (st, en),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let v = match string_of(s.lookup_read(&a[1], now)) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::bulk(b""),
        Err(e) => return e,
    };
    match clamp_range(start, end, v.len()) {
        Some((st, en)) => Reply::bulk(&v[st..=en]),
        None => Reply::bulk(b""),
    }
}

/// SETRANGE key offset value
pub fn setrange(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (key, patch) = (&a[1], &a[3]);
    let offset = match int_arg(&a[2]) {
        Ok(n) if n < 0 => return errors::OFFSET_RANGE,
        Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
        Err(e) => return e,
    };
    let old_len = match string_of(s.lookup(key, now)) {
        Ok(v) => v.map(|v| v.len()),
        Err(e) => return e,
    };
    if patch.is_empty() {
        return Reply::Int(old_len.unwrap_or(0) as i64);
    }
    if let Err(e) = check_len(s, offset, patch.len()) {
        return e;
    }
    let write = |v: &mut Vec<u8>| {
        let end = offset + patch.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[offset..end].copy_from_slice(patch);
        v.len()
    };
    let new_len = match old_len {
        Some(_) => s.update(key, now, write).unwrap_or(0),
        None => {
            let mut v = Vec::new();
            let n = write(&mut v);
            s.put(key, &v, NO_EXPIRY, 0);
            n
        }
    };
    Reply::Int(new_len as i64)
}

#[cfg(test)]
#[path = "strings_tests.rs"]
mod tests;
