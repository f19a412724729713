//! INCRBYFLOAT's arithmetic, bit-exact with Redis on x86-64: Redis parses with `strtold`,
//! adds in x87 80-bit long double (64-bit mantissa, round to nearest even) and prints
//! with `%.17Lf`. An `f64` gets `0.1 + 0.2` wrong ("0.30000000000000004" instead of
//! "0.3"), so this module emulates the long double exactly with a small big integer.
//!
//! A finite value is `mant * 2^exp` with `mant < 2^64`; parsing, adding and printing are
//! each done exactly on big integers and rounded once, as the hardware and libc do.

use std::cmp::Ordering;

/// Exponent of the lowest mantissa bit of the smallest subnormal (2^-16445).
const MIN_EXP: i64 = -16445;
/// Largest exponent of a normalised 64-bit mantissa (the value below 2^16384).
const MAX_EXP: i64 = 16384 - 64;
/// Redis refuses float strings of this many bytes or more (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// An x87 extended-precision value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LongDouble {
    Finite { neg: bool, mant: u64, exp: i64 },
    Inf { neg: bool },
}

/// Why a value could not be represented.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    Overflow,
    /// A non-zero value rounded to zero.
    Underflow,
}

/// A little-endian base-2^32 natural number; just what this module needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> u64 {
        match self.0.last() {
            Some(&top) => self.0.len() as u64 * 32 - top.leading_zeros() as u64,
            None => 0,
        }
    }

    fn bit(&self, i: u64) -> bool {
        let w = (i / 32) as usize;
        w < self.0.len() && (self.0[w] >> (i % 32)) & 1 == 1
    }

    /// Whether any bit below position `n` is set.
    fn any_below(&self, n: u64) -> bool {
        let w = (n / 32) as usize;
        self.0.iter().take(w).any(|&x| x != 0)
            || (w < self.0.len()
                && !n.is_multiple_of(32)
                && self.0[w] & ((1u32 << (n % 32)) - 1) != 0)
    }

    fn mul_add_small(&mut self, m: u32, a: u32) {
        let mut carry = a as u64;
        for x in &mut self.0 {
            let v = *x as u64 * m as u64 + carry;
            *x = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    /// Divides in place by `d`, returning the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for x in self.0.iter_mut().rev() {
            let v = (rem << 32) | *x as u64;
            *x = (v / d as u64) as u32;
            rem = v % d as u64;
        }
        self.trim();
        rem as u32
    }

    fn mul_pow10(&mut self, mut k: u64) {
        while k > 0 {
            let step = k.min(9);
            self.mul_add_small(10u32.pow(step as u32), 0);
            k -= step;
        }
    }

    /// Divides by `10^k`; returns whether anything was lost (a non-zero remainder).
    fn div_pow10(&mut self, mut k: u64) -> bool {
        let mut lost = false;
        while k > 0 && !self.is_zero() {
            let step = k.min(9);
            lost |= self.div_small(10u32.pow(step as u32)) != 0;
            k -= step;
        }
        lost
    }

    fn shl(&mut self, n: u64) {
        if self.is_zero() || n == 0 {
            return;
        }
        let (words, bits) = ((n / 32) as usize, n % 32);
        if bits != 0 {
            let mut carry = 0u32;
            for x in &mut self.0 {
                let v = (*x as u64) << bits | carry as u64;
                *x = v as u32;
                carry = (v >> 32) as u32;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, words));
    }

    /// The bits from position `from` up, as a u64 (the caller knows they fit).
    fn bits_from(&self, from: u64) -> u64 {
        (0..64).fold(0u64, |acc, i| acc | (self.bit(from + i) as u64) << i)
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    fn add(&mut self, o: &Big) {
        self.0.resize(self.0.len().max(o.0.len()) + 1, 0);
        let mut carry = 0u64;
        for (i, x) in self.0.iter_mut().enumerate() {
            let v = *x as u64 + *o.0.get(i).unwrap_or(&0) as u64 + carry;
            *x = v as u32;
            carry = v >> 32;
        }
        self.trim();
    }

    /// `self - o`, for `self >= o`.
    fn sub(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for (i, x) in self.0.iter_mut().enumerate() {
            let v = *x as i64 - *o.0.get(i).unwrap_or(&0) as i64 - borrow;
            borrow = (v < 0) as i64;
            *x = v.rem_euclid(1 << 32) as u32;
        }
        self.trim();
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut s = chunks.pop().map_or("0".to_string(), |top| top.to_string());
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

/// Rounds `big * 2^exp` (plus a sliver when `sticky`) to the nearest long double, ties
/// to even, keeping 64 bits (fewer for subnormals).
fn round(neg: bool, big: &Big, exp: i64, sticky: bool) -> Result<LongDouble, Range> {
    if big.is_zero() {
        return if sticky {
            Err(Range::Underflow)
        } else {
            Ok(LongDouble::zero(neg))
        };
    }
    let n = big.bits() as i64;
    let e = (exp + n - 64).max(MIN_EXP);
    let drop = e - exp;
    let (mut mant, mut e) = if drop <= 0 {
        (big.bits_from(0) << -drop, e)
    } else {
        let drop = drop as u64;
        let mut mant = big.bits_from(drop);
        let half = big.bit(drop - 1);
        let rest = sticky || big.any_below(drop - 1);
        if half && (rest || mant & 1 == 1) {
            mant = mant.wrapping_add(1);
            if mant == 0 {
                // Carried out of 64 bits: 2^64 = 2^63 * 2.
                return finish(neg, 1 << 63, e + 1);
            }
        }
        (mant, e)
    };
    if mant == 0 {
        return Err(Range::Underflow);
    }
    // Normalise so the exponent check below sees the real magnitude.
    while mant >> 63 == 0 && e > MIN_EXP {
        mant <<= 1;
        e -= 1;
    }
    finish(neg, mant, e)
}

fn finish(neg: bool, mant: u64, exp: i64) -> Result<LongDouble, Range> {
    if exp > MAX_EXP {
        return Err(Range::Overflow);
    }
    Ok(LongDouble::Finite { neg, mant, exp })
}

impl LongDouble {
    fn zero(neg: bool) -> LongDouble {
        LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        }
    }

    /// Parses as Redis's `string2ld`: the whole string must be a `strtold` number
    /// (decimal or hex, `inf`/`infinity`), no leading space, no NaN, no overflow and no
    /// underflow to zero.
    pub(crate) fn parse(b: &[u8]) -> Option<LongDouble> {
        if b.is_empty() || b.len() >= MAX_CHARS || b[0].is_ascii_whitespace() {
            return None;
        }
        let (neg, body) = match b[0] {
            b'-' => (true, &b[1..]),
            b'+' => (false, &b[1..]),
            _ => (false, b),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Inf { neg });
        }
        let parsed = match body {
            [b'0', b'x' | b'X', hex @ ..] => parse_hex(neg, hex)?,
            _ => parse_dec(neg, body)?,
        };
        parsed.ok()
    }

    pub(crate) fn is_finite(&self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// `self + o` rounded once, as an x87 `fadd`; `None` for NaN (inf - inf).
    pub(crate) fn add(self, o: LongDouble) -> Option<LongDouble> {
        use LongDouble::*;
        let (an, am, ae, bn, bm, be) = match (self, o) {
            (Inf { neg: a }, Inf { neg: b }) => return (a == b).then_some(Inf { neg: a }),
            (Inf { neg }, _) | (_, Inf { neg }) => return Some(Inf { neg }),
            (
                Finite {
                    neg: an,
                    mant: am,
                    exp: ae,
                },
                Finite {
                    neg: bn,
                    mant: bm,
                    exp: be,
                },
            ) => (an, am, ae, bn, bm, be),
        };
        if am == 0 && bm == 0 {
            return Some(LongDouble::zero(an && bn));
        }
        // Both as integers over the smaller exponent: exact.
        let e = ae.min(be);
        let (mut a, mut b) = (Big::from_u64(am), Big::from_u64(bm));
        a.shl((ae - e) as u64);
        b.shl((be - e) as u64);
        let (neg, mag) = if an == bn {
            a.add(&b);
            (an, a)
        } else {
            match a.cmp(&b) {
                Ordering::Equal => return Some(LongDouble::zero(false)),
                Ordering::Greater => {
                    a.sub(&b);
                    (an, a)
                }
                Ordering::Less => {
                    b.sub(&a);
                    (bn, b)
                }
            }
        };
        Some(round(neg, &mag, e, false).unwrap_or(Inf { neg }))
    }

    /// Formats as Redis's `ld2string(.., LD_STR_HUMAN)`: `%.17Lf` (exact, ties to even),
    /// then trailing zeros and a trailing dot removed, and "-0" turned into "0".
    pub(crate) fn to_human(self) -> String {
        let LongDouble::Finite { neg, mant, exp } = self else {
            return if matches!(self, LongDouble::Inf { neg: true }) {
                "-inf"
            } else {
                "inf"
            }
            .into();
        };
        let mut n = Big::from_u64(mant);
        n.mul_pow10(17);
        if exp >= 0 {
            n.shl(exp as u64);
        } else {
            let shift = (-exp) as u64;
            // n >> shift, rounded to nearest (an exact tie cannot occur: 10^-17 is not
            // dyadic), ties to even as glibc would.
            let mut q = shr(&n, shift);
            let half = n.bit(shift - 1);
            let rest = n.any_below(shift - 1);
            if half && (rest || q.bit(0)) {
                q.mul_add_small(1, 1);
            }
            n = q;
        }
        let digits = n.to_decimal();
        let digits = format!("{digits:0>18}");
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut s = String::with_capacity(digits.len() + 2);
        if neg {
            s.push('-');
        }
        s.push_str(int);
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        if s == "-0" {
            s.remove(0);
        }
        s
    }
}

fn shr(b: &Big, n: u64) -> Big {
    let (words, bits) = ((n / 32) as usize, n % 32);
    if words >= b.0.len() {
        return Big::default();
    }
    let src = &b.0[words..];
    let mut out: Vec<u32> = (0..src.len())
        .map(|i| {
            let lo = (src[i] as u64) >> bits;
            let hi = src
                .get(i + 1)
                .map_or(0, |&x| ((x as u64) << (32 - bits)) & 0xFFFF_FFFF);
            (if bits == 0 { src[i] as u64 } else { lo | hi }) as u32
        })
        .collect();
    while out.last() == Some(&0) {
        out.pop();
    }
    Big(out)
}

/// Decimal digits with an optional fraction and exponent; `None` when the syntax is bad.
fn parse_dec(neg: bool, s: &[u8]) -> Option<Result<LongDouble, Range>> {
    let mut big = Big::default();
    let (mut i, mut digits, mut frac, mut sig) = (0, 0usize, 0i64, 0i64);
    let mut seen_dot = false;
    while i < s.len() {
        match s[i] {
            c @ b'0'..=b'9' => {
                digits += 1;
                if !big.is_zero() || c != b'0' {
                    big.mul_add_small(10, (c - b'0') as u32);
                    sig += 1;
                }
                frac += seen_dot as i64;
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut exp10 = 0i64;
    if i < s.len() {
        let rest = &s[i + 1..];
        if !matches!(s[i], b'e' | b'E') {
            return None;
        }
        let (eneg, edigits) = match rest.first() {
            Some(b'-') => (true, &rest[1..]),
            Some(b'+') => (false, &rest[1..]),
            _ => (false, rest),
        };
        if edigits.is_empty() || !edigits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for &d in edigits {
            exp10 = (exp10 * 10 + (d - b'0') as i64).min(1 << 40);
        }
        if eneg {
            exp10 = -exp10;
        }
    }
    let exp10 = exp10 - frac;
    if big.is_zero() {
        return Some(Ok(LongDouble::zero(neg)));
    }
    // The value is below 10^(sig + exp10): screen out absurd magnitudes before any work.
    let magnitude = sig + exp10;
    if magnitude > 4940 {
        return Some(Err(Range::Overflow));
    }
    if magnitude < -4960 {
        return Some(Err(Range::Underflow));
    }
    if exp10 >= 0 {
        big.mul_pow10(exp10 as u64);
        return Some(round(neg, &big, 0, false));
    }
    // big / 10^k with at least 66 quotient bits, plus a sticky bit for the remainder.
    let k = (-exp10) as u64;
    let pow_bits = k * 3322 / 1000 + 1;
    let shift = (pow_bits + 68).saturating_sub(big.bits());
    big.shl(shift);
    let lost = big.div_pow10(k);
    Some(round(neg, &big, -(shift as i64), lost))
}

/// Hex digits with an optional fraction and a `p` binary exponent (C99 hex floats).
fn parse_hex(neg: bool, s: &[u8]) -> Option<Result<LongDouble, Range>> {
    let mut big = Big::default();
    let (mut i, mut digits, mut exp2) = (0, 0usize, 0i64);
    let mut seen_dot = false;
    while i < s.len() {
        match s[i] {
            c if c.is_ascii_hexdigit() => {
                digits += 1;
                let v = (c as char).to_digit(16)?;
                // At most MAX_CHARS digits: the number stays below 20k bits.
                if !big.is_zero() || v != 0 {
                    big.mul_add_small(16, v);
                }
                exp2 -= 4 * seen_dot as i64;
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < s.len() {
        if !matches!(s[i], b'p' | b'P') {
            return None;
        }
        let rest = &s[i + 1..];
        let (eneg, edigits) = match rest.first() {
            Some(b'-') => (true, &rest[1..]),
            Some(b'+') => (false, &rest[1..]),
            _ => (false, rest),
        };
        if edigits.is_empty() || !edigits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut p = 0i64;
        for &d in edigits {
            p = (p * 10 + (d - b'0') as i64).min(1 << 40);
        }
        exp2 += if eneg { -p } else { p };
    }
    if big.is_zero() {
        return Some(Ok(LongDouble::zero(neg)));
    }
    Some(round(neg, &big, exp2, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(s: &str) -> LongDouble {
        LongDouble::parse(s.as_bytes()).unwrap_or_else(|| panic!("parse {s:?}"))
    }

    fn sum(a: &str, b: &str) -> String {
        ld(a).add(ld(b)).unwrap().to_human()
    }

    /// Outputs observed from redis-server 7.0.15 on x86-64.
    #[test]
    fn matches_redis_on_x86() {
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("10.50", "0.1"), "10.6");
        assert_eq!(sum("10.6", "-5"), "5.6");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("1000.1", "0"), "1000.09999999999999998");
        assert_eq!(sum("1e30", "0"), "1000000000000000000024696061952");
        assert_eq!(sum("0", "1e-20"), "0");
        assert_eq!(sum("0", "0x1p3"), "8");
        assert_eq!(sum("3.0", "1.5e0"), "4.5");
        assert_eq!(sum("1", "0.3333333333333333333333"), "1.33333333333333333");
        assert_eq!(sum("0", "0.024390243902439025"), "0.02439024390243902");
        assert_eq!(
            sum("123456789.987654321", "0"),
            "123456789.98765432099753525"
        );
        assert_eq!(
            sum("123456789.98765432099753525", "0.000001"),
            "123456789.98765532099787379"
        );
        assert_eq!(sum("9223372036854775807", "1"), "9223372036854775808");
        assert_eq!(sum("1.", ".5e-3"), "1.0005");
        assert_eq!(sum("0", "1e-4950"), "0", "subnormal, accepted");
        assert_eq!(sum("0", "3.6e-4951"), "0", "smallest subnormal, accepted");
        assert_eq!(LongDouble::parse(b"1e-4952"), None, "underflows to zero");
        assert!(sum("1e4931", "1e4931")
            .starts_with("200000000000000000001203789877592778264767554850906622954757"));
        assert_eq!(
            sum("1.7e308", "1.7e308"),
            "340000000000000000006273556050395193590540427779388267466087171526404912102411641988123739177800600673957047683771263425322806997836001586961457274820033393094901317200013624802610872515245814124760542925564488876540887382670905522638137419003805178364056052028734561012664811529831035124023358619554802565120"
        );
        let big = sum("0", "1e400");
        assert!(big.starts_with("10000000000000000000281880683947586514586453433629"));
        assert_eq!(big.len(), 401);
        assert_eq!(sum(&big, "1e-400"), big, "a tiny addend is absorbed");
    }

    #[test]
    fn integers_and_halves_are_exact() {
        assert_eq!(sum("17179869184", "1.5"), "17179869185.5");
        assert_eq!(sum("17179869184", "17179869184"), "34359738368");
        assert_eq!(sum("-1.5", "1.5"), "0");
        assert_eq!(sum("-0", "-0"), "0");
        assert_eq!(sum("-2.25", "0"), "-2.25");
        assert_eq!(sum("9223372036854775807", "1"), "9223372036854775808");
        assert_eq!(
            sum("18446744073709551615", "0"),
            "18446744073709551615",
            "2^64 - 1 fits"
        );
        assert_eq!(
            sum("36893488147419103231", "0"),
            "36893488147419103232",
            "2^65 - 1 rounds"
        );
    }

    #[test]
    fn parse_rejects_like_string2ld() {
        for bad in [
            "",
            " 1",
            "1 ",
            "abc",
            "nan",
            "-nan",
            "1e",
            "1e+",
            ".",
            "+",
            "0x",
            "1.2.3",
            "1e400000",
            "1e-400000",
            "0x1p99999",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(LongDouble::parse(&vec![b'1'; MAX_CHARS]), None, "too long");
        for good in [
            "1.",
            ".5",
            "+.5e-3",
            "-0",
            "0x1.8p1",
            "0X.8",
            "INF",
            "-Infinity",
            "1e4000",
            "007",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good:?}");
        }
        assert_eq!(ld("0x1.8p1").to_human(), "3");
        assert_eq!(ld("0X.8").to_human(), "0.5");
    }

    #[test]
    fn infinities_and_nan() {
        assert!(!ld("inf").add(ld("1")).unwrap().is_finite());
        assert_eq!(ld("inf").add(ld("-inf")), None);
        assert!(
            !ld("1e4932").add(ld("1e4932")).unwrap().is_finite(),
            "overflow to inf"
        );
        assert!(ld("1e4931").add(ld("1e4931")).unwrap().is_finite());
    }

    #[test]
    fn rounding_in_printing() {
        // 2^-58 = 3.5e-18 rounds down to 0 at 17 decimals; 2^-57 = 6.9e-18 rounds up.
        assert_eq!(ld("0x1p-58").to_human(), "0");
        assert_eq!(ld("0x1p-57").to_human(), "0.00000000000000001");
        assert_eq!(ld("-0x1p-57").to_human(), "-0.00000000000000001");
        assert_eq!(ld("0x1p-200").add(ld("0")).unwrap().to_human(), "0");
        assert_eq!(ld("0.99999999999999999999").to_human(), "1");
    }
}
