//! Shard-side command handlers, one module per command group. Each handler has the
//! signature [`crate::command::Handler`] and a Redis-style syntax line above it.
//!
//! - [`strings`]: GET/SET and the other string commands; [`incr`] (INCR family,
//!   INCRBYFLOAT, whose x87 long-double arithmetic is emulated in `longdouble`) and
//!   [`lcs`] are split out and re-exported from it.
//! - [`keyspace`]: DEL, EXISTS, TYPE, RENAME, COPY, KEYS, SCAN, RANDOMKEY; [`expire`]
//!   (EXPIRE family, TTL, PERSIST) is split out and re-exported from it.
//! - [`db`]: DBSIZE, FLUSHDB, FLUSHALL (the whole database, on every shard).
//! - [`introspect`]: OBJECT and MEMORY USAGE.
//! - [`sets`]: the set commands; the algebra is one pure function that the cross-core
//!   transactions (`exec::txn`) share.
//!
//! Handlers only read through `Shard::lookup*` and only write through the shard's write
//! path (`put`, `update`, `delete`, `take`, `set_expire`, `flush`); the store itself
//! cannot be written from here (its mutators are private to the write path), so every write is reported as an
//! effect.

pub mod db;
pub mod dump;
pub mod expire;
pub mod hashes;
pub mod incr;
pub mod introspect;
pub mod keyspace;
pub mod lcs;
pub mod lists;
// Sets (issue 14).
mod longdouble;
pub mod sets;
pub mod strings;
pub mod zsets;

use bytes::Bytes;

use crate::reply::{errors, Reply};

/// Parses a whole decimal i64 as Redis's `string2ll` does (no spaces, no `+`, no leading
/// zeros other than "0" itself).
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    if neg && digits == b"0" {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = (d - b'0') as i64;
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// An integer argument, or Redis's "not an integer" error reply.
pub fn int_arg(b: &Bytes) -> Result<i64, Reply> {
    parse_i64(b).ok_or(errors::NOT_INTEGER)
}

/// The SCAN family's `COUNT n` and `MATCH pattern` (a `*` pattern matches everything, so
/// it is dropped): applies the option at `a[i]` and returns true, or false when `a[i]` is
/// neither (or has no value after it).
pub(crate) fn scan_option<'a>(
    a: &'a [Bytes],
    i: usize,
    count: &mut usize,
    pattern: &mut Option<&'a [u8]>,
) -> Result<bool, Reply> {
    if i + 1 >= a.len() {
        return Ok(false);
    }
    if is_opt(&a[i], "COUNT") {
        match int_arg(&a[i + 1])? {
            n if n < 1 => return Err(errors::SYNTAX),
            n => *count = usize::try_from(n).unwrap_or(usize::MAX),
        }
        Ok(true)
    } else if is_opt(&a[i], "MATCH") {
        *pattern = Some(&a[i + 1]).filter(|p| &p[..] != b"*").map(|p| &p[..]);
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Whether an argument spells `word` (given in upper case), ignoring ASCII case.
pub fn is_opt(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The command name as Redis prints it in errors: lower case.
pub(crate) fn cmd_name(args: &[Bytes]) -> String {
    String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
}

/// Which expiry option a SET or GETEX carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpireOpt {
    /// No expiry option: SET drops any TTL, GETEX leaves it.
    None,
    /// EX/PX/EXAT/PXAT, already made absolute (unix ms, > 0).
    At(u64),
    /// SET ... KEEPTTL.
    KeepTtl,
    /// GETEX ... PERSIST.
    Persist,
}

/// The time unit and base of an expiry argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpireUnit {
    /// Relative seconds (EX, SETEX).
    Secs,
    /// Relative milliseconds (PX, PSETEX).
    Millis,
    /// Absolute unix seconds (EXAT).
    AtSecs,
    /// Absolute unix milliseconds (PXAT).
    AtMillis,
}

/// Turns an expiry argument into an absolute unix-ms deadline as Redis's
/// `getExpireMillisecondsOrReply` does: a non-integer is "not an integer"; zero, negative
/// or overflowing values are "invalid expire time in '<cmd>' command".
pub(crate) fn expire_deadline(
    arg: &Bytes,
    unit: ExpireUnit,
    now: u64,
    cmd: &[u8],
) -> Result<u64, Reply> {
    let n = int_arg(arg)?;
    // The command's name is spelled out only for the error (SET runs this on every call
    // with an expiry; a name built up front was an allocation per SET).
    let invalid = || errors::invalid_expire(&String::from_utf8_lossy(cmd).to_ascii_lowercase());
    if n <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        ExpireUnit::Secs | ExpireUnit::AtSecs => n.checked_mul(1000).ok_or_else(invalid)?,
        ExpireUnit::Millis | ExpireUnit::AtMillis => n,
    };
    let at = match unit {
        ExpireUnit::Secs | ExpireUnit::Millis => {
            let now = i64::try_from(now).map_err(|_| invalid())?;
            ms.checked_add(now).ok_or_else(invalid)?
        }
        ExpireUnit::AtSecs | ExpireUnit::AtMillis => ms,
    };
    Ok(at as u64)
}

/// Whether an absolute deadline has already passed (SET/GETEX/EXPIRE then delete).
pub(crate) fn already_expired(at: u64, now: u64) -> bool {
    at <= now
}

/// A string read's reply: the bulk string, Nil for a missing key, WRONGTYPE for a key
/// of another type (Redis's `lookupKeyReadOrReply` + `checkType`).
pub(crate) fn string_reply(e: Option<&crate::Entry>) -> Reply {
    match e.map(|e| e.string()) {
        None => Reply::Nil,
        Some(Some(v)) => Reply::bulk(v),
        Some(None) => errors::WRONGTYPE,
    }
}

/// The string under a live key, `Ok(None)` for a missing key, WRONGTYPE for another type.
pub(crate) fn string_of(e: Option<&crate::Entry>) -> Result<Option<&[u8]>, Reply> {
    match e {
        None => Ok(None),
        Some(e) => e.string().map(Some).ok_or(errors::WRONGTYPE),
    }
}

/// Test helper: runs a command given as words through the command table on `shard`,
/// checking the arity as the server does.
#[cfg(test)]
pub(crate) fn run(shard: &mut crate::Shard, words: &[&str], now: u64) -> Reply {
    let args: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    // A linear search, so the tests do not depend on the table's binary-search order.
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let spec = crate::command::COMMANDS
        .iter()
        .find(|c| c.name == name)
        .expect("known command");
    if !spec.arity_ok(args.len()) {
        return errors::wrong_arity(spec.name);
    }
    shard.execute(spec, &args, now)
}

/// Test helper: an error reply with this exact text.
#[cfg(test)]
pub(crate) fn err(text: &str) -> Reply {
    Reply::error(text.to_string())
}

/// Test helper: a bulk reply.
#[cfg(test)]
pub(crate) fn bulk(text: &str) -> Reply {
    Reply::bulk(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_deadlines() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let now = 1_000_000;
        assert_eq!(
            expire_deadline(&b("10"), ExpireUnit::Secs, now, b"set"),
            Ok(1_010_000)
        );
        assert_eq!(
            expire_deadline(&b("10"), ExpireUnit::Millis, now, b"set"),
            Ok(1_000_010)
        );
        assert_eq!(
            expire_deadline(&b("10"), ExpireUnit::AtSecs, now, b"set"),
            Ok(10_000)
        );
        assert_eq!(
            expire_deadline(&b("10"), ExpireUnit::AtMillis, now, b"set"),
            Ok(10)
        );
        let invalid = errors::invalid_expire("getex");
        for (arg, unit) in [
            ("0", ExpireUnit::Secs),
            ("-1", ExpireUnit::AtMillis),
            ("9223372036854775807", ExpireUnit::Secs),
            ("9223372036854775807", ExpireUnit::Millis),
        ] {
            assert_eq!(
                expire_deadline(&b(arg), unit, now, b"getex"),
                Err(invalid.clone())
            );
        }
        assert_eq!(
            expire_deadline(&b("x"), ExpireUnit::Secs, now, b"set"),
            Err(errors::NOT_INTEGER)
        );
    }

    #[test]
    fn parses_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [&b""[..], b"-", b"+1", b" 1", b"01", b"-0", b"1.0", b"abc"] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }
}
