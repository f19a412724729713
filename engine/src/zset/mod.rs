//! Sorted-set values: a small sorted set lives packed in its entry's value bytes
//! ([`packed`], Redis's `listpack`), a large one in chunks the entry owns ([`big`],
//! reported as Redis's `skiplist`).
//!
//! A sorted set is packed while it has at most `zset-max-listpack-entries` members and
//! every member is at most `zset-max-listpack-value` bytes; past either it converts to the
//! large form and stays there, as in Redis. The thresholds are process-wide settings
//! ([`limits`]), changed by CONFIG SET.
//!
//! Readers get a [`ZsetRef`] from [`Entry::zset`](crate::Entry::zset); only the shard's
//! write path changes a sorted set (`Shard::zset_add`, `Shard::zset_rem`, `put_zset`),
//! which reports the outcome as effects.

pub mod big;
pub mod packed;

use std::sync::atomic::{AtomicUsize, Ordering};

pub use big::BigZset;

/// Redis's default `zset-max-listpack-entries`.
pub const DEFAULT_MAX_ENTRIES: usize = 128;
/// Redis's default `zset-max-listpack-value`.
pub const DEFAULT_MAX_VALUE: usize = 64;

static MAX_ENTRIES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_ENTRIES);
static MAX_VALUE: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_VALUE);

/// When a sorted set stops being packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// The thresholds in force (CONFIG GET zset-max-listpack-*).
pub fn limits() -> Limits {
    Limits {
        max_entries: MAX_ENTRIES.load(Ordering::Relaxed),
        max_value: MAX_VALUE.load(Ordering::Relaxed),
    }
}

/// CONFIG SET zset-max-listpack-entries.
pub fn set_max_entries(n: usize) {
    MAX_ENTRIES.store(n, Ordering::Relaxed);
}

/// CONFIG SET zset-max-listpack-value.
pub fn set_max_value(n: usize) {
    MAX_VALUE.store(n, Ordering::Relaxed);
}

/// A sorted set as stored, for reading.
#[derive(Clone, Copy)]
pub enum ZsetRef<'a> {
    Packed(&'a [u8]),
    Big(&'a BigZset),
}

impl<'a> ZsetRef<'a> {
    pub fn len(&self) -> usize {
        match self {
            ZsetRef::Packed(b) => packed::len(b),
            ZsetRef::Big(z) => z.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZsetRef::Packed(b) => packed::score(b, member),
            ZsetRef::Big(z) => z.score(member),
        }
    }

    /// The member's ascending 0-based rank and its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match self {
            ZsetRef::Packed(b) => packed::find(b, member),
            ZsetRef::Big(z) => z.rank(member),
        }
    }

    /// How many entries from the first satisfy `before` (true for a prefix of the order).
    pub fn count_while(&self, before: impl FnMut(&[u8], f64) -> bool) -> usize {
        match self {
            ZsetRef::Packed(b) => packed::count_while(b, before),
            ZsetRef::Big(z) => z.count_while(before),
        }
    }

    /// The entries from rank `start` on, in ascending order.
    pub fn iter_from(&self, start: usize) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
        match *self {
            ZsetRef::Packed(b) => Box::new(packed::entries(b).skip(start)),
            ZsetRef::Big(z) => Box::new(z.iter_from(start)),
        }
    }

    /// The entries with ranks in `start..end` (ascending).
    ///
    /// The walk stops at the end of the set by itself: no count of the entries first,
    /// which in the packed form is a walk over all of them.
    pub fn range(&self, start: usize, end: usize) -> Vec<(&'a [u8], f64)> {
        // The capacity a small range needs, never what a huge `end` asks for.
        let mut v = Vec::with_capacity(end.saturating_sub(start).min(128));
        self.for_range(start, end, |m, s| v.push((m, s)));
        v
    }

    /// Calls `f` on the entries with ranks in `start..end`, in ascending order: what
    /// [`ZsetRef::range`] collects, for a caller that copies them out (a reply) and needs
    /// no vector. Each form's own iterator, not the boxed one of `iter_from` (no
    /// allocation, no dynamic call per entry), driven by `for_each`, which walks the large
    /// form chunk by chunk instead of asking the flattening iterator for each entry.
    pub fn for_range(&self, start: usize, end: usize, mut f: impl FnMut(&'a [u8], f64)) {
        if start >= end {
            return;
        }
        match *self {
            ZsetRef::Packed(b) => packed::entries(b)
                .skip(start)
                .take(end - start)
                .for_each(|(m, s)| f(m, s)),
            ZsetRef::Big(z) => z
                .iter_from(start)
                .take(end - start)
                .for_each(|(m, s)| f(m, s)),
        }
    }

    /// OBJECT ENCODING's name for this form.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZsetRef::Packed(_) => "listpack",
            ZsetRef::Big(_) => "skiplist",
        }
    }

    /// The packed serialization of every entry, in order.
    pub fn to_packed(&self) -> Vec<u8> {
        match self {
            ZsetRef::Packed(b) => b.to_vec(),
            ZsetRef::Big(z) => z.to_packed(),
        }
    }
}

/// A score as Redis 7.0 prints it (C's `%.17g`): `inf`, `-inf`, `1.5`, `0.10000000000000001`,
/// `1e+20`.
pub fn score_text(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if d.is_nan() {
        return "nan".to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // 17 significant digits, correctly rounded: d.ddddddddddddddddde±x.
    let sci = format!("{:.16e}", d.abs());
    let (mant, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::with_capacity(24);
    if d < 0.0 {
        out.push('-');
    }
    if !(-4..17).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// A C99 hexadecimal float as `strtod` reads it (`0x10`, `-0x1.8p3`).
fn parse_hex(text: &str) -> Option<f64> {
    let (neg, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mant, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let e: i32 = e.parse().ok()?;
        v *= 2f64.powi(e.clamp(-2000, 2000));
    }
    Some(if neg { -v } else { v })
}

/// Parses a score argument as Redis's `getDoubleFromObject` does (`strtod` over the whole
/// text, no leading space, no NaN, no overflow or underflow to infinity or zero, C99
/// hexadecimal floats too): `None` is "ERR value is not a valid float".
pub fn parse_score(b: &[u8]) -> Option<f64> {
    if let Some(v) = parse_small_int(b) {
        return Some(v);
    }
    let text = std::str::from_utf8(b).ok()?;
    if text.is_empty() || text.len() > 400 || text.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let v: f64 = match text.parse() {
        Ok(v) => v,
        Err(_) => parse_hex(text)?,
    };
    if v.is_nan() {
        return None;
    }
    if v.is_infinite() && !b.windows(3).any(|w| w.eq_ignore_ascii_case(b"inf")) {
        return None; // ERANGE overflow
    }
    let mantissa = b.split(|&c| c == b'e' || c == b'E').next().unwrap_or(b"");
    if v == 0.0 && mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
        return None; // ERANGE underflow
    }
    Some(v)
}

/// A score written as a plain integer of at most 15 digits (`[+-]?[0-9]{1,15}`, what
/// most clients send), which a double holds exactly: read without the float parser.
/// `None` for anything else, which takes the general path.
#[inline]
fn parse_small_int(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    let v = n as f64;
    Some(if neg { -v } else { v })
}

/// Parses a bound of a score range (`strtod` without the range checks, as Redis's
/// `zslParseRange`): `None` when it is not a number.
pub fn parse_bound_score(b: &[u8]) -> Option<f64> {
    if let Some(v) = parse_small_int(b) {
        return Some(v);
    }
    let text = std::str::from_utf8(b).ok()?;
    if text.is_empty() || text.len() > 400 || text.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let v: f64 = match text.parse() {
        Ok(v) => v,
        Err(_) => parse_hex(text)?,
    };
    (!v.is_nan()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_print_like_redis() {
        for (d, want) in [
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (1e20, "1e+20"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
        ] {
            assert_eq!(score_text(d), want, "{d}");
        }
    }

    #[test]
    fn scores_parse_like_strtod() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e5"), Some(1e5));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"-0x1.8p3"), Some(-12.0));
        assert_eq!(parse_score(b"0x"), None);
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"abc",
            b"1e400",
            b"1e-400",
            b"--1",
        ] {
            assert_eq!(parse_score(bad), None, "{bad:?}");
        }
        assert_eq!(parse_bound_score(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_bound_score(b"nan"), None);
        for bad in [&b"-"[..], b"+", b"1-", b"12a", b"+-1"] {
            assert_eq!(parse_score(bad), None, "{bad:?}");
        }
        assert_eq!(parse_score(b"1E5"), Some(1e5));
        assert_eq!(parse_score(b"1E-400"), None);
        assert_eq!(parse_score(b"INF"), Some(f64::INFINITY));
    }

    /// Plain integers take a path of their own; it gives what the float parser gives,
    /// to the bit (`-0` is negative zero), up to 15 digits and past them.
    #[test]
    fn integer_scores_read_as_the_float_parser_reads_them() {
        let mut texts: Vec<String> = ["-0", "+0", "0", "+7", "000123", "-000", "999999999999999"]
            .map(String::from)
            .to_vec();
        texts.extend(["1234567890123456", "-99999999999999999999"].map(String::from));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x >> (x % 64)) as i64;
            texts.push(n.to_string());
            texts.push(format!("+{}", n.unsigned_abs()));
        }
        for t in texts {
            let want: f64 = t.parse().unwrap();
            let got = parse_score(t.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{t}");
            assert_eq!(
                parse_bound_score(t.as_bytes()).map(f64::to_bits),
                Some(want.to_bits())
            );
        }
    }
}
