//! Reply encoding for RESP2 and RESP3.
//!
//! RESP3-only types degrade the way Redis degrades them for RESP2 clients: maps become flat
//! arrays, sets arrays, doubles and verbatim strings bulk strings, booleans the integers 1/0,
//! and both nils `$-1`/`*-1`.

use super::Reply;

/// Appends the encoding of `reply` for protocol version `proto` (3 means RESP3; anything
/// else, RESP2).
pub fn encode(reply: &Reply, proto: u8, out: &mut Vec<u8>) {
    let resp3 = proto >= 3;
    match reply {
        Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
        Reply::Simple(text) => line(out, b'+', text),
        Reply::Error(text) => line(out, b'-', text),
        Reply::Int(n) => header(out, b':', *n),
        Reply::Bulk(data) => bulk(out, data),
        Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
        Reply::Array(items) => {
            header(out, b'*', items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Bulks(items) => {
            header(out, b'*', items.len());
            // Each string's header is at most 13 bytes with its CRLFs (`$` and 10 digits).
            out.reserve(items.data_len() + 13 * items.len());
            for item in items.iter() {
                // A member shorter than 10 bytes (the usual one) has a header of 4 bytes:
                // one fixed-size copy, not a call per header.
                match u8::try_from(item.len()) {
                    Ok(n @ 0..=9) => out.extend_from_slice(&[b'$', b'0' + n, b'\r', b'\n']),
                    _ => header(out, b'$', item.len()),
                }
                out.extend_from_slice(item);
                out.extend_from_slice(b"\r\n");
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                header(out, b'%', pairs.len());
            } else {
                header(out, b'*', pairs.len() * 2);
            }
            for (key, value) in pairs {
                encode(key, proto, out);
                encode(value, proto, out);
            }
        }
        Reply::Pairs(pairs) if resp3 => {
            header(out, b'*', pairs.len());
            for (key, value) in pairs {
                header(out, b'*', 2);
                encode(key, proto, out);
                encode(value, proto, out);
            }
        }
        Reply::Pairs(pairs) => {
            header(out, b'*', pairs.len() * 2);
            for (key, value) in pairs {
                encode(key, proto, out);
                encode(value, proto, out);
            }
        }
        Reply::Set(items) => {
            header(out, if resp3 { b'~' } else { b'*' }, items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Double(d) => {
            let text = DoubleText::new(*d);
            if resp3 {
                out.push(b',');
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Reply::Bool(b) => out.extend_from_slice(match (resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        }),
        Reply::Verbatim(data) if resp3 => {
            header(out, b'=', data.len() + 4);
            out.extend_from_slice(b"txt:");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Verbatim(data) => bulk(out, data),
        Reply::Push(items) => {
            header(out, if resp3 { b'>' } else { b'*' }, items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Sequence(replies) => {
            for r in replies {
                encode(r, proto, out);
            }
        }
    }
}

/// [`encode`] into a fresh buffer.
pub fn encode_to_vec(reply: &Reply, proto: u8) -> Vec<u8> {
    let mut out = Vec::new();
    encode(reply, proto, &mut out);
    out
}

/// Formats a double as Redis 7.0 replies with it: `inf`, `-inf`, `nan`, otherwise C's
/// `%.17g` (`1.5`, `3`, `0.0001`, `0.10000000000000001`, `1.0000000000000001e-05`).
pub fn format_double(d: f64) -> String {
    // DoubleText holds ASCII only.
    String::from_utf8_lossy(DoubleText::new(d).as_bytes()).into_owned()
}

/// `+text\r\n` or `-text\r\n`; a CR or LF inside would end the line early and desynchronise
/// the client, so they become spaces (as Redis does for error texts).
fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.push(kind);
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        out.extend_from_slice(text);
    } else {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(b"\r\n");
}

/// `<kind><n>\r\n`: an aggregate's or a bulk string's header, or an integer reply. The
/// usual numbers, below 100, are written as one small copy without formatting.
#[inline]
fn header<N: itoa::Integer + TryInto<u8> + Copy>(out: &mut Vec<u8>, kind: u8, n: N) {
    match n.try_into() {
        Ok(small @ 0..=9) => out.extend_from_slice(&[kind, b'0' + small, b'\r', b'\n']),
        Ok(small @ 10..=99) => {
            out.extend_from_slice(&[kind, b'0' + small / 10, b'0' + small % 10, b'\r', b'\n'])
        }
        _ => long_header(out, kind, n),
    }
}

/// [`header`] of a number outside 0..=99.
#[inline(never)]
fn long_header<N: itoa::Integer>(out: &mut Vec<u8>, kind: u8, n: N) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes one bulk string (the same in RESP2 and RESP3).
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.reserve(data.len() + 24);
    header(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// A formatted double on the stack. The longest text is 24 bytes (`-2.2250738585072014e-308`).
struct DoubleText {
    buf: [u8; 32],
    len: usize,
}

impl DoubleText {
    /// C's `%g` switches to exponent notation at this decimal exponent (its precision).
    const PRECISION: i32 = 17;

    fn new(d: f64) -> DoubleText {
        let mut text = DoubleText {
            buf: [0; 32],
            len: 0,
        };
        if d.is_nan() {
            text.push_str(b"nan");
        } else if d.is_infinite() {
            text.push_str(if d > 0.0 { b"inf" } else { b"-inf" });
        } else {
            text.push_finite(d);
        }
        text
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn push_str(&mut self, s: &[u8]) {
        for &b in s {
            self.push(b);
        }
    }

    fn push_finite(&mut self, d: f64) {
        // C's `%.17g`, as Redis 7.0's addReplyDouble: 17 significant digits, correctly
        // rounded, trailing zeros dropped.
        let text = format!("{:.16e}", d.abs());
        let (digits, exponent) = shortest_digits(text.as_bytes());
        if d.is_sign_negative() {
            self.push(b'-');
        }
        let Some((&first, rest)) = digits.split_first() else {
            self.push(b'0');
            return;
        };
        if !(-4..Self::PRECISION).contains(&exponent) {
            self.push(first);
            if !rest.is_empty() {
                self.push(b'.');
                self.push_str(rest);
            }
            self.push(b'e');
            self.push(if exponent < 0 { b'-' } else { b'+' });
            let magnitude = exponent.unsigned_abs();
            if magnitude < 10 {
                self.push(b'0');
            }
            self.push_str(itoa::Buffer::new().format(magnitude).as_bytes());
        } else if exponent < 0 {
            self.push_str(b"0.");
            for _ in 0..(-exponent - 1) {
                self.push(b'0');
            }
            self.push_str(&digits);
        } else {
            let int_len = exponent as usize + 1;
            for i in 0..int_len {
                self.push(digits.get(i).copied().unwrap_or(b'0'));
            }
            if digits.len() > int_len {
                self.push(b'.');
                self.push_str(&digits[int_len..]);
            }
        }
    }
}

/// Splits a float's text (`1.5`, `1e-7`, `1.2345e20`, `1.0000000000000000e-1`) into its significant
/// digits (no leading or trailing zeros; empty for zero) and the decimal exponent of the
/// first digit.
fn shortest_digits(text: &[u8]) -> (Vec<u8>, i32) {
    let text = text.strip_prefix(b"-").unwrap_or(text);
    let (mantissa, exp) = match text.iter().position(|&b| b == b'e' || b == b'E') {
        Some(e) => (&text[..e], parse_exponent(&text[e + 1..])),
        None => (text, 0),
    };
    let int_len = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len()) as i32;
    let mut digits: Vec<u8> = mantissa
        .iter()
        .copied()
        .filter(u8::is_ascii_digit)
        .collect();
    let leading = digits.iter().take_while(|&&b| b == b'0').count();
    digits.drain(..leading);
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, int_len - leading as i32 - 1 + exp)
}

fn parse_exponent(s: &[u8]) -> i32 {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let magnitude = digits
        .iter()
        .fold(0i32, |acc, &b| acc * 10 + i32::from(b - b'0'));
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(reply: Reply, proto: u8) -> String {
        String::from_utf8(encode_to_vec(&reply, proto)).unwrap()
    }

    fn both(reply: Reply) -> (String, String) {
        (enc(reply.clone(), 2), enc(reply, 3))
    }

    #[test]
    fn scalars() {
        assert_eq!(both(Reply::Ok), ("+OK\r\n".into(), "+OK\r\n".into()));
        assert_eq!(enc(Reply::simple("PONG"), 2), "+PONG\r\n");
        assert_eq!(enc(Reply::err("ERR boom"), 3), "-ERR boom\r\n");
        assert_eq!(enc(Reply::Int(0), 2), ":0\r\n");
        assert_eq!(enc(Reply::Int(-42), 3), ":-42\r\n");
        assert_eq!(enc(Reply::Int(i64::MIN), 2), ":-9223372036854775808\r\n");
        assert_eq!(enc(Reply::bulk("hello"), 2), "$5\r\nhello\r\n");
        assert_eq!(enc(Reply::bulk(""), 3), "$0\r\n\r\n");
        assert_eq!(
            encode_to_vec(&Reply::bulk(b"a\r\n\0b"), 2),
            b"$5\r\na\r\n\0b\r\n"
        );
    }

    /// Numbers below 100 take the short form; the ones around its edges, the general one.
    #[test]
    fn numbers_at_the_edges_of_the_short_form() {
        for n in [
            0i64,
            1,
            9,
            10,
            42,
            99,
            100,
            255,
            256,
            1000,
            -1,
            -9,
            -10,
            -100,
            i64::MAX,
        ] {
            assert_eq!(enc(Reply::Int(n), 2), format!(":{n}\r\n"));
        }
        for len in [0usize, 9, 10, 99, 100, 255, 256, 1000] {
            let data = "x".repeat(len);
            assert_eq!(enc(Reply::bulk(&data), 3), format!("${len}\r\n{data}\r\n"));
            let items = vec![Reply::Int(7); len];
            let want = format!("*{len}\r\n{}", ":7\r\n".repeat(len));
            assert_eq!(enc(Reply::Array(items), 2), want);
        }
    }

    #[test]
    fn line_breaks_in_status_and_error_become_spaces() {
        assert_eq!(
            enc(Reply::error("ERR bad\r\nthing\n"), 2),
            "-ERR bad  thing \r\n"
        );
        assert_eq!(enc(Reply::Simple(Bytes::from("a\rb")), 3), "+a b\r\n");
    }

    #[test]
    fn nils_differ_by_protocol() {
        assert_eq!(both(Reply::Nil), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(Reply::NilArray), ("*-1\r\n".into(), "_\r\n".into()));
    }

    #[test]
    fn aggregates() {
        let array = Reply::Array(vec![Reply::bulk("a"), Reply::Int(1), Reply::Nil]);
        assert_eq!(
            both(array),
            (
                "*3\r\n$1\r\na\r\n:1\r\n$-1\r\n".into(),
                "*3\r\n$1\r\na\r\n:1\r\n_\r\n".into()
            )
        );
        assert_eq!(enc(Reply::Array(vec![]), 2), "*0\r\n");
        let map = Reply::Map(vec![
            (Reply::bulk("k"), Reply::Int(7)),
            (Reply::simple("s"), Reply::Bool(true)),
        ]);
        assert_eq!(
            both(map),
            (
                "*4\r\n$1\r\nk\r\n:7\r\n+s\r\n:1\r\n".into(),
                "%2\r\n$1\r\nk\r\n:7\r\n+s\r\n#t\r\n".into()
            )
        );
        let set = Reply::Set(vec![Reply::bulk("x")]);
        assert_eq!(
            both(set),
            ("*1\r\n$1\r\nx\r\n".into(), "~1\r\n$1\r\nx\r\n".into())
        );
        let nested = Reply::Array(vec![Reply::Array(vec![Reply::Int(1)]), Reply::Map(vec![])]);
        assert_eq!(enc(nested, 3), "*2\r\n*1\r\n:1\r\n%0\r\n");
    }

    #[test]
    fn packed_bulks_encode_as_their_array() {
        let long = "x".repeat(300);
        let items: Vec<&[u8]> = vec![b"a", b"", long.as_bytes()];
        let array = Reply::Array(items.iter().map(Reply::bulk).collect());
        let packed = Reply::Bulks(items.iter().copied().collect());
        assert_eq!(both(packed), both(array));
        let empty = Reply::Bulks(baton_engine::reply::Bulks::default());
        assert_eq!(both(empty), ("*0\r\n".into(), "*0\r\n".into()));
    }

    #[test]
    fn bools_and_verbatim() {
        assert_eq!(both(Reply::Bool(true)), (":1\r\n".into(), "#t\r\n".into()));
        assert_eq!(both(Reply::Bool(false)), (":0\r\n".into(), "#f\r\n".into()));
        assert_eq!(
            both(Reply::Verbatim(Bytes::from("hi\r\n"))),
            ("$4\r\nhi\r\n\r\n".into(), "=8\r\ntxt:hi\r\n\r\n".into())
        );
    }

    #[test]
    fn doubles_in_both_protocols() {
        assert_eq!(
            both(Reply::Double(1.5)),
            ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into())
        );
        assert_eq!(enc(Reply::Double(f64::INFINITY), 3), ",inf\r\n");
        assert_eq!(enc(Reply::Double(f64::NEG_INFINITY), 2), "$4\r\n-inf\r\n");
        assert_eq!(enc(Reply::Double(f64::NAN), 3), ",nan\r\n");
    }

    #[test]
    fn double_text_matches_redis() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.5, "1.5"),
            (3.0, "3"),
            (-3.0, "-3"),
            (10.0, "10"),
            (100.25, "100.25"),
            (0.1, "0.10000000000000001"),
            (0.3, "0.29999999999999999"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1.5e-7, "1.4999999999999999e-07"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (1.2345e20, "1.2345e+20"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e300, "1.0000000000000001e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "4.9406564584124654e-324"),
            (-2.5e-5, "-2.5000000000000001e-05"),
            (2.71, "2.71"),
            (std::f64::consts::PI, "3.1415926535897931"),
        ];
        for &(d, want) in cases {
            assert_eq!(format_double(d), want, "formatting {d:e}");
        }
    }

    /// Any double's text reads back as the same double, and never carries more digits than
    /// `%.17g` would.
    #[test]
    fn double_text_round_trips() {
        fn prop(bits: u64) -> bool {
            let d = f64::from_bits(bits);
            let text = format_double(d);
            if d.is_nan() {
                return text == "nan";
            }
            let back: f64 = text.parse().unwrap();
            let digits = text
                .split('e')
                .next()
                .unwrap()
                .bytes()
                .filter(u8::is_ascii_digit)
                .skip_while(|&b| b == b'0')
                .count();
            back.to_bits() == d.to_bits() && digits <= 17
        }
        quickcheck::quickcheck(prop as fn(u64) -> bool);
        for d in [1.0, 2.5, 1e-300, 123.456, 9007199254740993.0] {
            assert!(prop(f64::to_bits(d)), "{d}");
        }
    }
}
