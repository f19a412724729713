//! Counters over string values: INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT. A counter is
//! an ordinary string holding a decimal number; writing it keeps the key's TTL, as
//! Redis's `dbReplaceValue` does.

use bytes::Bytes;

use super::longdouble::LongDouble;
use super::{int_arg, parse_i64, string_of};
use crate::reply::{errors, Reply};
use crate::shard::Shard;
use crate::store::NO_EXPIRY;

/// Stores `value` under `key`, keeping the TTL of a live key (a new key has none).
fn replace_value(s: &mut Shard, key: &[u8], value: Vec<u8>, existed: bool, now: u64) {
    if existed {
        s.update(key, now, |v| *v = value);
    } else {
        s.put(key, &value, NO_EXPIRY, 0);
    }
}

/// Adds `by` to the integer under `key` (absent counts as 0), as `incrDecrCommand`.
fn incr_by(s: &mut Shard, key: &[u8], by: i64, now: u64) -> Reply {
    let (old, existed) = match string_of(s.lookup(key, now)) {
        Ok(Some(v)) => match parse_i64(v) {
            Some(n) => (n, true),
            None => return errors::NOT_INTEGER,
        },
        Ok(None) => (0, false),
        Err(e) => return e,
    };
    let Some(new) = old.checked_add(by) else {
        return errors::OVERFLOW;
    };
    let mut buf = itoa::Buffer::new();
    replace_value(s, key, buf.format(new).as_bytes().to_vec(), existed, now);
    Reply::Int(new)
}

/// INCR key
pub fn incr(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    incr_by(s, &a[1], 1, now)
}

/// DECR key
pub fn decr(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    incr_by(s, &a[1], -1, now)
}

/// INCRBY key increment
pub fn incrby(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match int_arg(&a[2]) {
        Ok(by) => incr_by(s, &a[1], by, now),
        Err(e) => e,
    }
}

/// DECRBY key decrement
pub fn decrby(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match int_arg(&a[2]) {
        // -i64::MIN does not exist.
        Ok(i64::MIN) => Reply::err("ERR decrement would overflow"),
        Ok(by) => incr_by(s, &a[1], -by, now),
        Err(e) => e,
    }
}

/// INCRBYFLOAT key increment
///
/// Bit-exact with Redis on x86-64: both numbers are read as x87 long doubles, added
/// with one rounding and printed as `%.17Lf` without trailing zeros (see `longdouble`).
pub fn incrbyfloat(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let key = &a[1];
    // The stored value is checked before the increment, as Redis does.
    let (old, existed) = match string_of(s.lookup(key, now)) {
        Ok(Some(v)) => match LongDouble::parse(v) {
            Some(v) => (v, true),
            None => return errors::NOT_FLOAT,
        },
        Ok(None) => (LongDouble::parse(b"0").expect("zero parses"), false),
        Err(e) => return e,
    };
    let Some(by) = LongDouble::parse(&a[2]) else {
        return errors::NOT_FLOAT;
    };
    let new = match old.add(by) {
        Some(v) if v.is_finite() => v,
        _ => return Reply::err("ERR increment would produce NaN or Infinity"),
    };
    let text = new.to_human();
    replace_value(s, key, text.clone().into_bytes(), existed, now);
    Reply::Bulk(Bytes::from(text))
}

#[cfg(test)]
mod tests {
    use crate::commands::{bulk, err, run};
    use crate::reply::Reply;
    use crate::Shard;

    const NOW: u64 = 1_000_000;

    #[test]
    fn incr_decr_create_and_count() {
        let mut s = Shard::new(0);
        assert_eq!(run(&mut s, &["INCR", "n"], NOW), Reply::Int(1));
        assert_eq!(run(&mut s, &["INCR", "n"], NOW), Reply::Int(2));
        assert_eq!(run(&mut s, &["DECR", "n"], NOW), Reply::Int(1));
        assert_eq!(run(&mut s, &["INCRBY", "n", "10"], NOW), Reply::Int(11));
        assert_eq!(run(&mut s, &["DECRBY", "n", "20"], NOW), Reply::Int(-9));
        assert_eq!(run(&mut s, &["GET", "n"], NOW), bulk("-9"));
        assert_eq!(run(&mut s, &["DECR", "fresh"], NOW), Reply::Int(-1));
        assert_eq!(run(&mut s, &["INCRBY", "x", "-5"], NOW), Reply::Int(-5));
    }

    #[test]
    fn incr_keeps_ttl() {
        let mut s = Shard::new(0);
        run(&mut s, &["SET", "n", "5", "PX", "1000"], NOW);
        assert_eq!(run(&mut s, &["INCR", "n"], NOW + 10), Reply::Int(6));
        assert_eq!(run(&mut s, &["PTTL", "n"], NOW + 10), Reply::Int(990));
        assert_eq!(
            run(&mut s, &["INCR", "n"], NOW + 1000),
            Reply::Int(1),
            "expired: from 0"
        );
        assert_eq!(run(&mut s, &["PTTL", "n"], NOW + 1000), Reply::Int(-1));
    }

    #[test]
    fn incr_errors() {
        let mut s = Shard::new(0);
        let not_int = err("ERR value is not an integer or out of range");
        for bad in ["abc", " 1", "1 ", "1.5", "01", "", "99999999999999999999"] {
            run(&mut s, &["SET", "v", bad], NOW);
            assert_eq!(run(&mut s, &["INCR", "v"], NOW), not_int, "{bad:?}");
        }
        assert_eq!(
            run(&mut s, &["GET", "v"], NOW),
            bulk("99999999999999999999")
        );
        assert_eq!(run(&mut s, &["INCRBY", "n", "x"], NOW), not_int);
        assert_eq!(run(&mut s, &["DECRBY", "n", "1.0"], NOW), not_int);
        let overflow = err("ERR increment or decrement would overflow");
        run(&mut s, &["SET", "big", "9223372036854775807"], NOW);
        assert_eq!(run(&mut s, &["INCR", "big"], NOW), overflow);
        assert_eq!(
            run(&mut s, &["GET", "big"], NOW),
            bulk("9223372036854775807")
        );
        run(&mut s, &["SET", "small", "-9223372036854775808"], NOW);
        assert_eq!(run(&mut s, &["DECR", "small"], NOW), overflow);
        assert_eq!(
            run(&mut s, &["INCRBY", "small", "9223372036854775807"], NOW),
            Reply::Int(-1)
        );
        assert_eq!(
            run(&mut s, &["DECRBY", "n", "-9223372036854775808"], NOW),
            err("ERR decrement would overflow")
        );
        assert_eq!(
            run(&mut s, &["DECRBY", "n", "-9223372036854775807"], NOW),
            Reply::Int(i64::MAX)
        );
        assert_eq!(
            run(&mut s, &["INCR", "n", "1"], NOW),
            err("ERR wrong number of arguments for 'incr' command")
        );
    }

    #[test]
    fn incrbyfloat_formats_like_redis() {
        let mut s = Shard::new(0);
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "p", "0.1"], NOW), bulk("0.1"));
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "p", "0.2"], NOW), bulk("0.3"));
        run(&mut s, &["SET", "f", "10.50"], NOW);
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "f", "0.1"], NOW), bulk("10.6"));
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "f", "-5"], NOW), bulk("5.6"));
        run(&mut s, &["SET", "f", "5.0e3"], NOW);
        assert_eq!(
            run(&mut s, &["INCRBYFLOAT", "f", "2.0e2"], NOW),
            bulk("5200")
        );
        assert_eq!(run(&mut s, &["GET", "f"], NOW), bulk("5200"));
        assert_eq!(
            run(&mut s, &["INCRBYFLOAT", "new", "1.25"], NOW),
            bulk("1.25")
        );
        run(&mut s, &["SET", "big", "17179869184"], NOW);
        assert_eq!(
            run(&mut s, &["INCRBYFLOAT", "big", "1.5"], NOW),
            bulk("17179869185.5")
        );
        assert_eq!(
            run(&mut s, &["INCRBYFLOAT", "z", "0.024390243902439025"], NOW),
            bulk("0.02439024390243902")
        );
        run(&mut s, &["SET", "z", "0.024390243902439025"], NOW);
        assert_eq!(
            run(&mut s, &["INCRBYFLOAT", "z", "-0.024390243902439025"], NOW),
            bulk("0"),
            "no negative zero"
        );
        run(&mut s, &["SET", "t", "1", "PX", "500"], NOW);
        run(&mut s, &["INCRBYFLOAT", "t", "1"], NOW);
        assert_eq!(
            run(&mut s, &["PTTL", "t"], NOW),
            Reply::Int(500),
            "keeps TTL"
        );
    }

    #[test]
    fn incrbyfloat_errors() {
        let mut s = Shard::new(0);
        let not_float = err("ERR value is not a valid float");
        for bad in [" 11", "11 ", " 11 ", "abc", "nan", "1\x002"] {
            run(&mut s, &["SET", "f", bad], NOW);
            assert_eq!(
                run(&mut s, &["INCRBYFLOAT", "f", "1"], NOW),
                not_float,
                "{bad:?}"
            );
        }
        run(&mut s, &["SET", "f", "1"], NOW);
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "f", "x"], NOW), not_float);
        assert_eq!(
            run(&mut s, &["INCRBYFLOAT", "f", "1e400000"], NOW),
            not_float
        );
        assert_eq!(
            run(&mut s, &["INCRBYFLOAT", "f", "1e-400000"], NOW),
            not_float
        );
        let nan_inf = err("ERR increment would produce NaN or Infinity");
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "f", "+inf"], NOW), nan_inf);
        run(&mut s, &["SET", "f", "inf"], NOW);
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "f", "-inf"], NOW), nan_inf);
        run(&mut s, &["SET", "f", "1e4932"], NOW);
        assert_eq!(run(&mut s, &["INCRBYFLOAT", "f", "1e4932"], NOW), nan_inf);
        assert_eq!(run(&mut s, &["GET", "f"], NOW), bulk("1e4932"), "unchanged");
    }
}
