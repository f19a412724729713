//! Key lifetimes: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX | XX | GT | LT), TTL,
//! PTTL, EXPIRETIME, PEXPIRETIME and PERSIST. Deadlines are absolute unix ms inside.

use bytes::Bytes;

use super::{already_expired, cmd_name, int_arg};
use crate::reply::{errors, Reply};
use crate::shard::Shard;
use crate::store::NO_EXPIRY;

/// The condition flags of the EXPIRE family.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Cond {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_cond(opts: &[Bytes]) -> Result<Cond, Reply> {
    let mut c = Cond::default();
    for opt in opts {
        let flag = match opt.to_ascii_uppercase().as_slice() {
            b"NX" => &mut c.nx,
            b"XX" => &mut c.xx,
            b"GT" => &mut c.gt,
            b"LT" => &mut c.lt,
            _ => {
                return Err(Reply::error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(opt)
                )))
            }
        };
        *flag = true;
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(Reply::err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if c.gt && c.lt {
        return Err(Reply::err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(c)
}

/// How the EXPIRE family reads its time argument.
#[derive(Clone, Copy)]
enum Base {
    /// Relative to now (EXPIRE, PEXPIRE).
    Now,
    /// Absolute unix time (EXPIREAT, PEXPIREAT).
    Epoch,
}

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT, as Redis's `expireGenericCommand`: options
/// first, then the number (negative allowed, overflow is "invalid expire time"), then the
/// key. A deadline at or before now deletes the key and answers 1.
fn expire_generic(s: &mut Shard, a: &[Bytes], base: Base, unit_ms: i64, now: u64) -> Reply {
    let cond = match parse_cond(&a[3..]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let when = match int_arg(&a[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let basetime = match base {
        Base::Now => now as i64,
        Base::Epoch => 0,
    };
    let Some(when) = when
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(basetime))
    else {
        return errors::invalid_expire(&cmd_name(a));
    };
    let key = &a[1];
    let Some(current) = s.lookup(key, now).map(|e| e.expire_at()) else {
        return Reply::Int(0);
    };
    // A persistent key counts as an infinite TTL: GT never beats it, LT always does.
    let has_ttl = current != NO_EXPIRY;
    let refused = (cond.nx && has_ttl)
        || (cond.xx && !has_ttl)
        || (cond.gt && (!has_ttl || when <= current as i64))
        || (cond.lt && has_ttl && when >= current as i64);
    if refused {
        return Reply::Int(0);
    }
    if when <= 0 || already_expired(when as u64, now) {
        s.delete(key, now);
    } else {
        s.set_expire(key, when as u64, now);
    }
    Reply::Int(1)
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub fn expire(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    expire_generic(s, a, Base::Now, 1000, now)
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub fn pexpire(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    expire_generic(s, a, Base::Now, 1, now)
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub fn expireat(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    expire_generic(s, a, Base::Epoch, 1000, now)
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub fn pexpireat(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    expire_generic(s, a, Base::Epoch, 1, now)
}

/// The deadline of a live key: `Err(-2)` when missing, `Err(-1)` without expiry.
fn deadline(s: &mut Shard, key: &[u8], now: u64) -> Result<u64, Reply> {
    match s.lookup_read(key, now) {
        None => Err(Reply::Int(-2)),
        Some(e) if e.expire_at() == NO_EXPIRY => Err(Reply::Int(-1)),
        Some(e) => Ok(e.expire_at()),
    }
}

/// TTL key: seconds left, rounded to nearest as Redis does ((ms + 500) / 1000).
pub fn ttl(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match deadline(s, &a[1], now) {
        Ok(at) => Reply::Int(((at.saturating_sub(now) + 500) / 1000) as i64),
        Err(r) => r,
    }
}

/// PTTL key
pub fn pttl(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match deadline(s, &a[1], now) {
        Ok(at) => Reply::Int(at.saturating_sub(now) as i64),
        Err(r) => r,
    }
}

/// EXPIRETIME key: the deadline in unix seconds, rounded to nearest as Redis does.
pub fn expiretime(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match deadline(s, &a[1], now) {
        Ok(at) => Reply::Int(((at + 500) / 1000) as i64),
        Err(r) => r,
    }
}

/// PEXPIRETIME key
pub fn pexpiretime(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match deadline(s, &a[1], now) {
        Ok(at) => Reply::Int(at as i64),
        Err(r) => r,
    }
}

/// PERSIST key
pub fn persist(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    match s.lookup(&a[1], now) {
        Some(e) if e.expire_at() != NO_EXPIRY => {
            s.set_expire(&a[1], NO_EXPIRY, now);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::{err, run};
    use crate::reply::Reply;
    use crate::Shard;

    const NOW: u64 = 1_700_000_000_000;

    fn int(n: i64) -> Reply {
        Reply::Int(n)
    }

    #[test]
    fn expire_family_sets_deadlines() {
        let mut s = Shard::new(0);
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "10"], NOW),
            int(0),
            "missing key"
        );
        run(&mut s, &["SET", "k", "v"], NOW);
        assert_eq!(run(&mut s, &["EXPIRE", "k", "10"], NOW), int(1));
        assert_eq!(
            run(&mut s, &["PEXPIRETIME", "k"], NOW),
            int(NOW as i64 + 10_000)
        );
        assert_eq!(run(&mut s, &["PEXPIRE", "k", "1234"], NOW), int(1));
        assert_eq!(run(&mut s, &["PTTL", "k"], NOW), int(1234));
        let at = (NOW / 1000 + 50).to_string();
        assert_eq!(run(&mut s, &["EXPIREAT", "k", &at], NOW), int(1));
        assert_eq!(
            run(&mut s, &["EXPIRETIME", "k"], NOW),
            int(NOW as i64 / 1000 + 50)
        );
        let at = (NOW + 99).to_string();
        assert_eq!(run(&mut s, &["PEXPIREAT", "k", &at], NOW), int(1));
        assert_eq!(run(&mut s, &["PTTL", "k"], NOW), int(99));
        assert_eq!(run(&mut s, &["GET", "k"], NOW + 99), Reply::Nil);
        assert_eq!(s.expires(), 0, "reclaimed");
    }

    #[test]
    fn past_deadlines_delete() {
        let mut s = Shard::new(0);
        for cmd in [
            &["EXPIRE", "k", "0"][..],
            &["EXPIRE", "k", "-10"],
            &["PEXPIRE", "k", "-1"],
            &["EXPIREAT", "k", "1"],
            &["PEXPIREAT", "k", "0"],
            &["PEXPIREAT", "k", "-9223372036854775808"],
        ] {
            run(&mut s, &["SET", "k", "v"], NOW);
            assert_eq!(run(&mut s, cmd, NOW), int(1), "{cmd:?}");
            assert_eq!(run(&mut s, &["EXISTS", "k"], NOW), int(0), "{cmd:?}");
        }
        run(&mut s, &["SET", "k", "v"], NOW);
        let now = NOW.to_string();
        assert_eq!(run(&mut s, &["PEXPIREAT", "k", &now], NOW), int(1));
        assert_eq!(
            run(&mut s, &["EXISTS", "k"], NOW),
            int(0),
            "a deadline of now is past"
        );
    }

    #[test]
    fn conditions() {
        let mut s = Shard::new(0);
        run(&mut s, &["SET", "k", "v"], NOW);
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "100", "XX"], NOW),
            int(0),
            "no TTL yet"
        );
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "100", "GT"], NOW),
            int(0),
            "persistent is infinite"
        );
        assert_eq!(run(&mut s, &["EXPIRE", "k", "100", "NX"], NOW), int(1));
        assert_eq!(run(&mut s, &["EXPIRE", "k", "200", "NX"], NOW), int(0));
        assert_eq!(run(&mut s, &["EXPIRE", "k", "200", "xx"], NOW), int(1));
        assert_eq!(run(&mut s, &["EXPIRE", "k", "100", "GT"], NOW), int(0));
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "200", "GT"], NOW),
            int(0),
            "equal is not greater"
        );
        assert_eq!(run(&mut s, &["EXPIRE", "k", "300", "gt"], NOW), int(1));
        assert_eq!(run(&mut s, &["EXPIRE", "k", "400", "LT"], NOW), int(0));
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "300", "LT"], NOW),
            int(0),
            "equal is not less"
        );
        assert_eq!(run(&mut s, &["EXPIRE", "k", "50", "LT", "XX"], NOW), int(1));
        assert_eq!(run(&mut s, &["TTL", "k"], NOW), int(50));
        run(&mut s, &["PERSIST", "k"], NOW);
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "50", "LT"], NOW),
            int(1),
            "LT beats persistent"
        );
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "60", "GT", "GT"], NOW),
            int(1),
            "repeats allowed"
        );
        assert_eq!(run(&mut s, &["EXPIRE", "missing", "60", "NX"], NOW), int(0));
    }

    #[test]
    fn errors() {
        let mut s = Shard::new(0);
        run(&mut s, &["SET", "k", "v"], NOW);
        let nx = err("ERR NX and XX, GT or LT options at the same time are not compatible");
        for opts in [["NX", "XX"], ["GT", "NX"], ["nx", "lt"]] {
            assert_eq!(
                run(&mut s, &["EXPIRE", "k", "10", opts[0], opts[1]], NOW),
                nx
            );
        }
        assert_eq!(
            run(&mut s, &["PEXPIRE", "k", "10", "GT", "LT"], NOW),
            err("ERR GT and LT options at the same time are not compatible")
        );
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "10", "FOO"], NOW),
            err("ERR Unsupported option FOO")
        );
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "x", "FOO"], NOW),
            err("ERR Unsupported option FOO"),
            "options are checked before the number"
        );
        assert_eq!(
            run(&mut s, &["EXPIRE", "k", "ten"], NOW),
            err("ERR value is not an integer or out of range")
        );
        for (cmd, n) in [
            ("EXPIRE", "9223372036854775807"),
            ("EXPIRE", "-9223372036854775807"),
            ("EXPIREAT", "9223372036854775807"),
            ("PEXPIRE", "9223372036854775807"),
        ] {
            let want = err(&format!(
                "ERR invalid expire time in '{}' command",
                cmd.to_lowercase()
            ));
            assert_eq!(run(&mut s, &[cmd, "k", n], NOW), want, "{cmd} {n}");
        }
        assert_eq!(
            run(&mut s, &["PEXPIREAT", "k", "9223372036854775807"], NOW),
            int(1),
            "the largest absolute deadline is valid"
        );
        assert_eq!(
            run(&mut s, &["EXPIRE", "k"], NOW),
            err("ERR wrong number of arguments for 'expire' command")
        );
    }

    #[test]
    fn ttl_family() {
        let mut s = Shard::new(0);
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(run(&mut s, &[cmd, "k"], NOW), int(-2), "{cmd}");
        }
        run(&mut s, &["SET", "k", "v"], NOW);
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(run(&mut s, &[cmd, "k"], NOW), int(-1), "{cmd}");
        }
        let at = NOW + 10_499;
        run(&mut s, &["PEXPIREAT", "k", &at.to_string()], NOW);
        assert_eq!(
            run(&mut s, &["TTL", "k"], NOW),
            int(10),
            "10.499 s rounds down"
        );
        assert_eq!(
            run(&mut s, &["TTL", "k"], NOW - 1),
            int(11),
            "10.5 s rounds up"
        );
        assert_eq!(run(&mut s, &["PTTL", "k"], NOW), int(10_499));
        assert_eq!(
            run(&mut s, &["EXPIRETIME", "k"], NOW),
            int(((at + 500) / 1000) as i64)
        );
        // Half a second or more past a whole second rounds up, as in Redis.
        run(
            &mut s,
            &["PEXPIREAT", "k", &(NOW / 1000 * 1000 + 60_600).to_string()],
            NOW,
        );
        assert_eq!(
            run(&mut s, &["EXPIRETIME", "k"], NOW),
            int((NOW / 1000 + 61) as i64)
        );
        run(&mut s, &["PEXPIREAT", "k", &at.to_string()], NOW);
        assert_eq!(run(&mut s, &["PEXPIRETIME", "k"], NOW), int(at as i64));
        assert_eq!(run(&mut s, &["PTTL", "k"], at - 1), int(1));
        assert_eq!(run(&mut s, &["PTTL", "k"], at), int(-2));
    }

    #[test]
    fn persist() {
        let mut s = Shard::new(0);
        assert_eq!(run(&mut s, &["PERSIST", "k"], NOW), int(0));
        run(&mut s, &["SET", "k", "v"], NOW);
        assert_eq!(
            run(&mut s, &["PERSIST", "k"], NOW),
            int(0),
            "no TTL to remove"
        );
        run(&mut s, &["EXPIRE", "k", "5"], NOW);
        assert_eq!(s.expires(), 1);
        assert_eq!(run(&mut s, &["PERSIST", "k"], NOW), int(1));
        assert_eq!(
            (run(&mut s, &["TTL", "k"], NOW + 10_000), s.expires()),
            (int(-1), 0)
        );
        run(&mut s, &["EXPIRE", "k", "5"], NOW);
        assert_eq!(
            run(&mut s, &["PERSIST", "k"], NOW + 5000),
            int(0),
            "already expired"
        );
    }
}
