//! Helpers for tests, benches and fuzzers: build request frames, read replies back.
//!
//! Not used by the server. The reply reader is strict and small; it exists so that encoding
//! can be checked by round trip rather than only against hand-written bytes.

use bytes::Bytes;

use super::{format_double, Reply};

/// Deepest nesting [`parse_reply`] follows, so hostile input cannot exhaust the stack.
pub const MAX_REPLY_DEPTH: usize = 64;

/// The multibulk request frame for `args` (`*<n>\r\n` then `$<len>\r\n<arg>\r\n` each), as
/// every Redis client library sends it.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one RESP2 or RESP3 reply from the front of `buf`: the reply and the bytes it took,
/// or `None` if `buf` does not start with a complete, well-formed reply.
///
/// RESP2 cannot tell every type apart, so the answer is the most literal reading: `+OK`
/// gives [`Reply::Ok`], `$-1` and `_` give [`Reply::Nil`], `*-1` gives [`Reply::NilArray`],
/// `*` always an array, `$` always a bulk string, `:` always an integer. Verbatim strings
/// must carry a three-letter format (`txt:`), which is dropped.
pub fn parse_reply(buf: &[u8]) -> Option<(Reply, usize)> {
    let mut pos = 0;
    let reply = read(buf, &mut pos, 0)?;
    Some((reply, pos))
}

/// The reply that [`parse_reply`] reads back from the encoding of `reply` in `proto`: what
/// survives the trip over the wire (RESP2's degraded types, line breaks in status and error
/// texts turned to spaces, `+OK` read as [`Reply::Ok`], both nils one nil in RESP3).
pub fn as_seen_on_wire(reply: &Reply, proto: u8) -> Reply {
    let resp3 = proto >= 3;
    let all = |items: &[Reply]| -> Vec<Reply> {
        items.iter().map(|r| as_seen_on_wire(r, proto)).collect()
    };
    match reply {
        Reply::Simple(text) => match one_line(text) {
            text if &text[..] == b"OK" => Reply::Ok,
            text => Reply::Simple(text),
        },
        Reply::Error(text) => Reply::Error(one_line(text)),
        Reply::NilArray if resp3 => Reply::Nil,
        Reply::Array(items) => Reply::Array(all(items)),
        Reply::Push(items) if resp3 => Reply::Push(all(items)),
        Reply::Push(items) => Reply::Array(all(items)),
        Reply::Set(items) if resp3 => Reply::Set(all(items)),
        Reply::Set(items) => Reply::Array(all(items)),
        Reply::Map(pairs) if resp3 => Reply::Map(
            pairs
                .iter()
                .map(|(k, v)| (as_seen_on_wire(k, proto), as_seen_on_wire(v, proto)))
                .collect(),
        ),
        Reply::Map(pairs) => Reply::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [as_seen_on_wire(k, proto), as_seen_on_wire(v, proto)])
                .collect(),
        ),
        Reply::Double(d) if !resp3 => Reply::Bulk(Bytes::from(format_double(*d))),
        Reply::Bool(b) if !resp3 => Reply::Int(i64::from(*b)),
        Reply::Verbatim(data) if !resp3 => Reply::Bulk(data.clone()),
        other => other.clone(),
    }
}

/// Structural equality, except that a NaN double equals a NaN double.
pub fn same_reply(a: &Reply, b: &Reply) -> bool {
    let all = |x: &[Reply], y: &[Reply]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_reply(p, q))
    };
    match (a, b) {
        (Reply::Double(x), Reply::Double(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Reply::Array(x), Reply::Array(y)) | (Reply::Set(x), Reply::Set(y)) => all(x, y),
        (Reply::Map(x), Reply::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same_reply(k1, k2) && same_reply(v1, v2))
        }
        _ => a == b,
    }
}

fn one_line(text: &[u8]) -> Bytes {
    text.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect()
}

fn read(buf: &[u8], pos: &mut usize, depth: usize) -> Option<Reply> {
    if depth > MAX_REPLY_DEPTH {
        return None;
    }
    let kind = *buf.get(*pos)?;
    *pos += 1;
    let line = read_line(buf, pos)?;
    Some(match kind {
        b'+' if line == b"OK" => Reply::Ok,
        b'+' => Reply::Simple(Bytes::copy_from_slice(line)),
        b'-' => Reply::Error(Bytes::copy_from_slice(line)),
        b':' => Reply::Int(integer(line)?),
        b'_' if line.is_empty() => Reply::Nil,
        b'#' => match line {
            b"t" => Reply::Bool(true),
            b"f" => Reply::Bool(false),
            _ => return None,
        },
        b',' => Reply::Double(match line {
            b"inf" => f64::INFINITY,
            b"-inf" => f64::NEG_INFINITY,
            b"nan" => f64::NAN,
            _ => std::str::from_utf8(line).ok()?.parse().ok()?,
        }),
        b'$' if line == b"-1" => Reply::Nil,
        b'$' => Reply::Bulk(Bytes::copy_from_slice(read_body(buf, pos, line)?)),
        b'=' => {
            let body = read_body(buf, pos, line)?;
            if body.len() < 4 || body[3] != b':' {
                return None;
            }
            Reply::Verbatim(Bytes::copy_from_slice(&body[4..]))
        }
        b'*' if line == b"-1" => Reply::NilArray,
        b'*' => Reply::Array(read_items(buf, pos, line, depth)?),
        b'~' => Reply::Set(read_items(buf, pos, line, depth)?),
        b'>' => Reply::Push(read_items(buf, pos, line, depth)?),
        b'%' => {
            let n = count(line)?;
            let mut pairs = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                let key = read(buf, pos, depth + 1)?;
                let value = read(buf, pos, depth + 1)?;
                pairs.push((key, value));
            }
            Reply::Map(pairs)
        }
        _ => return None,
    })
}

/// The bytes up to the next `\r\n`, which is consumed too.
fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let cr = memchr::memchr(b'\r', rest)?;
    if rest.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    *pos += cr + 2;
    Some(&rest[..cr])
}

fn read_body<'a>(buf: &'a [u8], pos: &mut usize, len_line: &[u8]) -> Option<&'a [u8]> {
    let len = count(len_line)?;
    let end = pos.checked_add(len)?;
    if buf.get(end..end.checked_add(2)?)? != b"\r\n" {
        return None;
    }
    let body = &buf[*pos..end];
    *pos = end + 2;
    Some(body)
}

fn read_items(buf: &[u8], pos: &mut usize, line: &[u8], depth: usize) -> Option<Vec<Reply>> {
    let n = count(line)?;
    let mut items = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        items.push(read(buf, pos, depth + 1)?);
    }
    Some(items)
}

fn integer(line: &[u8]) -> Option<i64> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

fn count(line: &[u8]) -> Option<usize> {
    usize::try_from(integer(line)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::encode_to_vec;
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    /// A random reply, nested at most `depth` deep.
    fn arbitrary_reply(g: &mut Gen, depth: usize) -> Reply {
        let bytes = |g: &mut Gen| Bytes::from(Vec::<u8>::arbitrary(g));
        let kinds = if depth == 0 { 10 } else { 13 };
        match u8::arbitrary(g) % kinds {
            0 => Reply::Ok,
            1 => Reply::Simple(bytes(g)),
            2 => Reply::Error(bytes(g)),
            3 => Reply::Int(i64::arbitrary(g)),
            4 => Reply::Bulk(bytes(g)),
            5 => Reply::Nil,
            6 => Reply::NilArray,
            7 => Reply::Double(f64::from_bits(u64::arbitrary(g))),
            8 => Reply::Bool(bool::arbitrary(g)),
            9 => Reply::Verbatim(bytes(g)),
            kind => {
                let n = usize::arbitrary(g) % 5;
                let mut items = || (0..n).map(|_| arbitrary_reply(g, depth - 1)).collect();
                match kind {
                    10 => Reply::Array(items()),
                    11 => Reply::Set(items()),
                    _ => Reply::Map(
                        (0..n)
                            .map(|_| (arbitrary_reply(g, depth - 1), arbitrary_reply(g, depth - 1)))
                            .collect(),
                    ),
                }
            }
        }
    }

    #[derive(Clone, Debug)]
    struct AnyReply(Reply);

    impl Arbitrary for AnyReply {
        fn arbitrary(g: &mut Gen) -> AnyReply {
            AnyReply(arbitrary_reply(g, 3))
        }
    }

    /// Every reply reads back as itself (as far as its protocol can say), from exactly the
    /// bytes written, in both protocol versions.
    #[test]
    fn encoding_round_trips() {
        fn prop(reply: AnyReply) -> bool {
            [2, 3].into_iter().all(|proto| {
                let wire = encode_to_vec(&reply.0, proto);
                match parse_reply(&wire) {
                    Some((back, used)) => {
                        used == wire.len() && same_reply(&back, &as_seen_on_wire(&reply.0, proto))
                    }
                    None => false,
                }
            })
        }
        QuickCheck::new()
            .tests(1000)
            .quickcheck(prop as fn(AnyReply) -> bool);
    }

    #[test]
    fn wire_view_of_resp2_degrades_types() {
        let reply = Reply::Map(vec![(
            Reply::Bool(true),
            Reply::Set(vec![Reply::Double(0.5)]),
        )]);
        assert_eq!(
            as_seen_on_wire(&reply, 2),
            Reply::Array(vec![Reply::Int(1), Reply::Array(vec![Reply::bulk("0.5")])])
        );
        assert_eq!(
            as_seen_on_wire(&Reply::simple("O\rK"), 3),
            Reply::simple("O K")
        );
        assert!(same_reply(
            &Reply::Double(f64::NAN),
            &Reply::Double(-f64::NAN)
        ));
        assert!(!same_reply(&Reply::Double(0.0), &Reply::Double(-0.0)));
    }

    #[test]
    fn encode_command_frames_args() {
        assert_eq!(
            encode_command(&["SET", "k", ""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
        assert_eq!(encode_command::<&[u8]>(&[]), b"*0\r\n");
    }

    #[test]
    fn reads_every_reply_type() {
        let cases: &[(&[u8], Reply)] = &[
            (b"+OK\r\n", Reply::Ok),
            (b"+PONG\r\n", Reply::simple("PONG")),
            (b"-ERR x\r\n", Reply::err("ERR x")),
            (b":-3\r\n", Reply::Int(-3)),
            (b"$2\r\nab\r\n", Reply::bulk("ab")),
            (b"$-1\r\n", Reply::Nil),
            (b"_\r\n", Reply::Nil),
            (b"*-1\r\n", Reply::NilArray),
            (b",2.5\r\n", Reply::Double(2.5)),
            (b"#f\r\n", Reply::Bool(false)),
            (b"=6\r\ntxt:ab\r\n", Reply::Verbatim(Bytes::from("ab"))),
            (
                b"%1\r\n+a\r\n~1\r\n:1\r\n",
                Reply::Map(vec![(Reply::simple("a"), Reply::Set(vec![Reply::Int(1)]))]),
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(parse_reply(wire), Some((want.clone(), wire.len())));
        }
    }

    #[test]
    fn rejects_incomplete_and_malformed() {
        for wire in [
            &b"$3\r\nab\r\n"[..],
            b"$2\r\nabXX",
            b"*2\r\n:1\r\n",
            b"+OK\n",
            b"?x\r\n",
            b"=3\r\nabc\r\n",
            b"#x\r\n",
            b"$-2\r\n",
        ] {
            assert_eq!(
                parse_reply(wire),
                None,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let deep = "*1\r\n".repeat(MAX_REPLY_DEPTH + 2) + ":1\r\n";
        assert_eq!(parse_reply(deep.as_bytes()), None);
    }

    #[test]
    fn round_trips_resp3_encoding() {
        let reply = Reply::Array(vec![
            Reply::Ok,
            Reply::Nil,
            Reply::Double(-0.125),
            Reply::Verbatim(Bytes::from("v")),
            Reply::Map(vec![(Reply::bulk("k"), Reply::Bool(true))]),
        ]);
        let wire = encode_to_vec(&reply, 3);
        assert_eq!(parse_reply(&wire), Some((reply, wire.len())));
    }
}
