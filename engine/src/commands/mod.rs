//! Shard-side command handlers, one module per command group. Each handler has the
//! signature [`crate::command::Handler`] and a Redis-style syntax line above it.

pub mod keyspace;
pub mod server;
pub mod strings;

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

#[cfg(test)]
mod tests {
    use super::parse_i64;

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
