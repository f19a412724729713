//! Generic key commands: DEL/UNLINK, EXISTS, TOUCH, TYPE, RENAME, RENAMENX, COPY,
//! RANDOMKEY, KEYS and SCAN. The EXPIRE/TTL family lives in [`super::expire`] and is
//! re-exported here so the command table names it as `keyspace::*`.
//!
//! Cross-core RENAME/RENAMENX/COPY are coordinated by the server with the shard's own
//! methods (`copy_item`, `exists`, `put_copy`, `delete`); [`parse_copy_options`] is the
//! pure part of COPY it needs.

use bytes::Bytes;

pub use super::expire::{
    expire, expireat, expiretime, persist, pexpire, pexpireat, pexpiretime, pttl, ttl,
};

use super::{int_arg, is_opt, scan_option};
use crate::entry::ValueType;
use crate::glob::glob_match;
use crate::reply::{errors, Reply};
use crate::shard::Shard;

/// DEL key [key ...] (also UNLINK)
pub fn del(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    Reply::Int(a[1..].iter().filter(|k| s.delete(k, now)).count() as i64)
}

/// EXISTS key [key ...]: a key named twice counts twice.
pub fn exists(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    Reply::Int(
        a[1..]
            .iter()
            .filter(|k| s.lookup_read(k, now).is_some())
            .count() as i64,
    )
}

/// TOUCH key [key ...]
pub fn touch(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    exists(s, a, now)
}

/// TYPE key
pub fn type_(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match s.lookup_read(&a[1], now) {
        Some(e) => Reply::simple(e.value_type().name()),
        None => Reply::simple("none"),
    }
}

/// RENAME and RENAMENX, as Redis's `renameGenericCommand`: the value moves with its TTL
/// (and memcached flags); renaming a key onto itself is a no-op once it exists.
fn rename_generic(s: &mut Shard, a: &[Bytes], nx: bool, now: u64) -> Reply {
    let (src, dst) = (&a[1], &a[2]);
    let ok = if nx { Reply::Int(1) } else { Reply::Ok };
    if !s.exists(src, now) {
        return errors::NO_SUCH_KEY;
    }
    if src == dst {
        return if nx { Reply::Int(0) } else { ok };
    }
    if nx && s.exists(dst, now) {
        return Reply::Int(0);
    }
    if let Some(e) = s.take(src, now) {
        s.put_entry(dst, &e);
    }
    ok
}

/// RENAME key newkey
pub fn rename(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    rename_generic(s, a, false, now)
}

/// RENAMENX key newkey
pub fn renamenx(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    rename_generic(s, a, true, now)
}

/// Parses COPY's options (`COPY source destination [DB destination-db] [REPLACE]`, the
/// whole argument list) and returns whether REPLACE was given. Only database 0 exists.
pub fn parse_copy_options(args: &[Bytes]) -> Result<bool, Reply> {
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is_opt(&args[i], "REPLACE") {
            replace = true;
        } else if is_opt(&args[i], "DB") && i + 1 < args.len() {
            let db = int_arg(&args[i + 1])?;
            if i32::try_from(db).is_err() {
                return Err(Reply::err(
                    "ERR value is out of range, value must between -2147483648 and 2147483647",
                ));
            }
            if db != 0 {
                return Err(Reply::err("ERR DB index is out of range"));
            }
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    Ok(replace)
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let replace = match parse_copy_options(a) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let (src, dst) = (&a[1], &a[2]);
    if src == dst {
        return Reply::err("ERR source and destination objects are the same");
    }
    let Some(copy) = s.copy_item(src, now) else {
        return Reply::Int(0);
    };
    if s.exists(dst, now) && !replace {
        return Reply::Int(0);
    }
    s.put_copy(dst, &copy);
    Reply::Int(1)
}

/// RANDOMKEY
pub fn randomkey(s: &mut Shard, _a: &[Bytes], now: u64) -> Reply {
    match s.random_key(now) {
        Some(k) => Reply::Bulk(k),
        None => Reply::Nil,
    }
}

/// KEYS pattern: every live key matching the glob pattern.
pub fn keys(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let pattern = &a[1][..];
    let all = pattern == b"*";
    Reply::Array(
        s.store()
            .iter()
            .filter(|(k, e)| !e.is_expired(now) && (all || glob_match(pattern, k)))
            .map(|(k, _)| Reply::bulk(k))
            .collect(),
    )
}

/// Parses a SCAN cursor as Redis 7.0 does, with `strtoul`: optional sign and decimal
/// digits, no leading space; the empty string is 0 and `-n` wraps around; overflow or
/// trailing junk is invalid.
pub(crate) fn parse_cursor(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// `cursor` is this shard's own cursor (the server folds the core into the cursor the
/// client sees); shard cursors are below 2^38 (see [`crate::Store::scan`]). A key that
/// exists for the whole scan is returned exactly once; expired keys are never returned.
pub fn scan(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let Some(cursor) = parse_cursor(&a[1]) else {
        return Reply::err("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    // TYPE: `None` = any type, `Some(None)` = a name no key has (matches nothing).
    let mut want: Option<Option<ValueType>> = None;
    let mut i = 2;
    while i < a.len() {
        let more = i + 1 < a.len();
        match scan_option(a, i, &mut count, &mut pattern) {
            Ok(true) => {}
            Err(e) => return e,
            Ok(false) if is_opt(&a[i], "TYPE") && more => {
                // An unknown type name matches nothing, as in Redis 7.0.
                want = Some(if is_opt(&a[i + 1], "STRING") {
                    Some(ValueType::String)
                } else if is_opt(&a[i + 1], "HASH") {
                    Some(ValueType::Hash)
                } else if is_opt(&a[i + 1], "LIST") {
                    Some(ValueType::List)
                } else if is_opt(&a[i + 1], "SET") {
                    Some(ValueType::Set)
                } else if is_opt(&a[i + 1], "ZSET") {
                    Some(ValueType::Zset)
                } else {
                    None
                });
            }
            Ok(false) => return errors::SYNTAX,
        }
        i += 2;
    }
    let mut keys = Vec::new();
    let next = s.store().scan(cursor, count, |k, e| {
        let type_ok = want.is_none_or(|w| w == Some(e.value_type()));
        if type_ok && !e.is_expired(now) && pattern.is_none_or(|p| glob_match(p, k)) {
            keys.push(Reply::bulk(k));
        }
    });
    let mut buf = itoa::Buffer::new();
    Reply::Array(vec![Reply::bulk(buf.format(next)), Reply::Array(keys)])
}

#[cfg(test)]
#[path = "keyspace_tests.rs"]
mod tests;
