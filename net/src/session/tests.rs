//! Sessions taken mid-stream, encoded, decoded and resumed: the restored session must read
//! exactly what the original would have, and corrupt bytes must give an error, not a panic.

use bytes::{Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::*;
use crate::memcache::{McLimits, McOp, McRequest};
use crate::resp::testing::encode_command;
use crate::resp::Limits;

/// Every command the session's RESP parser can read from `buf` now.
fn resp_commands(s: &mut Session, buf: &mut BytesMut) -> Vec<Vec<Bytes>> {
    let mut out = Vec::new();
    while let Some(args) = s
        .resp_parser
        .parse_command(buf, &Limits::default(), s.authenticated)
        .unwrap()
    {
        out.push(args);
    }
    out
}

/// Every request the session's memcached parser can read from `buf` now.
fn mc_requests(s: &mut Session, buf: &mut BytesMut, limits: &McLimits) -> Vec<McRequest> {
    let mut out = Vec::new();
    while let Some(r) = s.mc_parser.parse(buf, limits).unwrap() {
        out.push(r);
    }
    out
}

const TIMES: ConnTimes = ConnTimes {
    created_ms: 1_700_000_000_000,
    last_ms: 1_700_000_042_000,
};

/// Encodes `s` in the newest format and decodes it (checking the times came back too).
fn round_trip(s: &Session, unparsed: &[u8]) -> (Session, BytesMut) {
    let mut bytes = Vec::new();
    s.encode(VERSION, TIMES, unparsed, &mut bytes);
    let (session, times, buf) = Session::decode(&bytes).unwrap();
    assert_eq!(times, Some(TIMES));
    (session, buf)
}

fn encoded(s: &Session, unparsed: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    s.encode(VERSION, TIMES, unparsed, &mut bytes);
    bytes
}

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

/// A Redis session as HELLO 3 AUTH .. SETNAME app and CLIENT SETINFO leave it.
fn configured_redis_session() -> Session {
    let mut s = Session::new(Protocol::Redis, false);
    s.resp = 3;
    s.authenticated = true;
    s.name = Some(Bytes::from_static(b"app"));
    s.lib_name = Some(Bytes::from_static(b"redis-rs"));
    s.lib_ver = Some(Bytes::from_static(b"0.27.0"));
    s.last_cmd = "client|setinfo";
    s
}

#[test]
fn redis_session_round_trips_mid_pipeline() {
    let mut original = configured_redis_session();
    let mut buf = BytesMut::from(
        &b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n\
           *3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\nxy\r\n\
           *3\r\n$3\r\nSET\r\n$1\r\nc\r\n$10\r\n01234"[..],
    );
    assert_eq!(
        resp_commands(&mut original, &mut buf),
        [args(&["GET", "a"]), args(&["SET", "b", "xy"])]
    );
    let p = original.resp_parser.progress();
    assert_eq!(
        (p.count, p.args.len(), p.bulk_len),
        (3, 2, Some(10)),
        "the parser stopped inside the third command's value"
    );

    let (mut restored, mut restored_buf) = round_trip(&original, &buf);
    assert_eq!(restored, original);
    assert_eq!(restored_buf, buf);
    assert_eq!(restored.id, original.id);
    assert_eq!(restored.resp, 3);
    assert!(restored.authenticated);
    assert_eq!(restored.name.as_deref(), Some(&b"app"[..]));
    assert_eq!(restored.lib_name.as_deref(), Some(&b"redis-rs"[..]));
    assert_eq!(restored.lib_ver.as_deref(), Some(&b"0.27.0"[..]));
    assert_eq!(restored.db, 0);
    assert_eq!(restored.last_cmd, "client|setinfo");

    let rest = b"56789\r\nPING\r\n";
    buf.extend_from_slice(rest);
    restored_buf.extend_from_slice(rest);
    let expected = [args(&["SET", "c", "0123456789"]), args(&["PING"])];
    assert_eq!(resp_commands(&mut original, &mut buf), expected);
    assert_eq!(resp_commands(&mut restored, &mut restored_buf), expected);
    assert!(buf.is_empty() && restored_buf.is_empty());
}

#[test]
fn memcache_session_round_trips_mid_data_block() {
    let limits = McLimits::default();
    let mut original = Session::new(Protocol::Memcache, true);
    let mut buf = BytesMut::from(&b"get a\r\nset k 0 0 10\r\n12345"[..]);
    assert_eq!(mc_requests(&mut original, &mut buf, &limits).len(), 1);
    original.last_cmd = "memcache";
    assert_eq!(
        &buf[..],
        b"set k 0 0 10\r\n12345",
        "a partial request stays buffered"
    );

    let (mut restored, mut restored_buf) = round_trip(&original, &buf);
    assert_eq!(restored, original);
    assert_eq!(restored.last_cmd, "memcache");

    let rest = b"67890\r\nget k\r\n";
    buf.extend_from_slice(rest);
    restored_buf.extend_from_slice(rest);
    let expected = mc_requests(&mut original, &mut buf, &limits);
    assert_eq!(expected.len(), 2);
    assert!(matches!(
        &expected[0],
        McRequest::Single { op: McOp::Store(op), .. } if op.data == b"1234567890"
    ));
    assert_eq!(
        mc_requests(&mut restored, &mut restored_buf, &limits),
        expected
    );
}

#[test]
fn memcache_skip_state_survives_a_handoff() {
    let limits = McLimits {
        max_item_size: 32,
        ..McLimits::default()
    };
    let mut original = Session::new(Protocol::Memcache, true);
    let mut buf = BytesMut::from(&b"set big 0 0 100\r\n"[..]);
    buf.extend_from_slice(&[b'x'; 40]);
    assert_eq!(
        mc_requests(&mut original, &mut buf, &limits),
        [McRequest::Error("SERVER_ERROR object too large for cache")]
    );
    assert_eq!(
        original.mc_parser.swallowing(),
        62,
        "60 bytes of data and CRLF"
    );
    assert!(buf.is_empty());

    let (mut restored, mut restored_buf) = round_trip(&original, &buf);
    assert_eq!(restored.mc_parser.swallowing(), 62);

    let mut rest = vec![b'x'; 60];
    rest.extend_from_slice(b"\r\nget k\r\n");
    buf.extend_from_slice(&rest);
    restored_buf.extend_from_slice(&rest);
    let expected = mc_requests(&mut original, &mut buf, &limits);
    assert_eq!(
        expected.len(),
        1,
        "the rest of the block is skipped, get k read"
    );
    assert_eq!(
        mc_requests(&mut restored, &mut restored_buf, &limits),
        expected
    );
}

#[test]
fn restored_ids_are_not_handed_out_again() {
    let mut s = Session::new(Protocol::Redis, true);
    s.id += 1_000_000;
    let (restored, _) = round_trip(&s, b"");
    assert_eq!(restored.id, s.id);
    reserve_ids_through(restored.id);
    assert!(Session::new(Protocol::Redis, true).id > restored.id);
}

#[test]
fn last_command_comes_back_as_the_table_names_it() {
    for name in ["get", "client|list", "config|set", "memcache", NO_COMMAND] {
        let mut s = Session::new(Protocol::Redis, true);
        s.last_cmd = name;
        assert_eq!(round_trip(&s, b"").0.last_cmd, name);
    }
    // A command this binary does not have only shows in CLIENT LIST's cmd=.
    let mut s = Session::new(Protocol::Redis, true);
    s.last_cmd = "no-such-command";
    assert_eq!(round_trip(&s, b"").0.last_cmd, NO_COMMAND);
}

#[test]
fn subscriptions_round_trip() {
    let mut s = configured_redis_session();
    s.channels.insert(Bytes::from_static(b"__sentinel__:hello"));
    s.channels.insert(Bytes::from_static(b""));
    s.patterns.insert(Bytes::from_static(b"news.*"));
    let (restored, buf) = round_trip(&s, b"PING\r\n");
    assert_eq!(restored, s);
    assert_eq!(restored.subscriptions(), 3);
    assert_eq!(&buf[..], b"PING\r\n");
    // A count of names larger than what follows is refused before anything is allocated.
    let mut bytes = encoded(&Session::new(Protocol::Redis, true), b"");
    let at = bytes.len() - 8 - 8 - 8; // channels count, patterns count, unparsed length
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Session::decode(&bytes),
        Err(SessionError::Truncated {
            field: "channels",
            ..
        })
    ));
}

#[test]
fn corrupt_headers_name_what_is_wrong() {
    let s = configured_redis_session();
    let good = encoded(&s, b"PING\r\n");
    let decode_with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        edit(&mut bytes);
        Session::decode(&bytes).unwrap_err()
    };
    assert_eq!(decode_with(&|b| b[0] = b'X'), SessionError::BadMagic);
    assert_eq!(
        decode_with(&|b| b[4] = 1),
        SessionError::Version { found: 1 }
    );
    assert_eq!(
        decode_with(&|b| b[4] = 5),
        SessionError::Version { found: 5 }
    );
    assert_eq!(
        decode_with(&|b| b.push(0)),
        SessionError::Length {
            declared: (good.len() - 14) as u64,
            actual: good.len() - 14 + 1,
        }
    );
    // A byte inside the body that the length field counts, after the last field.
    assert_eq!(
        decode_with(&|b| {
            b.push(0);
            b[6] += 1;
        }),
        SessionError::Trailing(1)
    );
    // resp sits after magic, version, length, id and protocol.
    assert_eq!(
        decode_with(&|b| b[14 + 8 + 1] = 4),
        SessionError::Invalid {
            field: "resp",
            why: "neither 2 nor 3"
        }
    );
    assert!(matches!(
        decode_with(&|b| b.truncate(b.len() - 1)),
        SessionError::Length { .. }
    ));
}

/// What a decoded session does with its unparsed input must not panic, whatever the
/// numbers in its parser states say.
fn parse_everything(mut s: Session, mut buf: BytesMut) {
    let mut mc_buf = buf.clone();
    while let Ok(Some(_)) =
        s.resp_parser
            .parse_command(&mut buf, &Limits::default(), s.authenticated)
    {}
    while let Ok(Some(_)) = s.mc_parser.parse(&mut mc_buf, &McLimits::default()) {}
}

#[test]
fn damaged_bytes_give_errors_not_panics() {
    let mut s = configured_redis_session();
    let mut buf = BytesMut::from(
        &b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$10\r\n01"[..],
    );
    resp_commands(&mut s, &mut buf);
    let good = encoded(&s, &buf);
    for len in 0..good.len() {
        assert!(
            Session::decode(&good[..len]).is_err(),
            "a prefix of {len} bytes decoded"
        );
    }
    for at in 0..good.len() {
        for flip in [0x01, 0x10, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[at] ^= flip;
            if let Ok((s, _, unparsed)) = Session::decode(&bytes) {
                parse_everything(s, unparsed);
            }
        }
    }
}

/// A pipeline cut into reads, with a handoff after one of them.
#[derive(Clone, Debug)]
struct Handoff {
    input: Vec<u8>,
    piece: usize,
    /// The handoff happens after this many pieces.
    after: usize,
    name: Option<Vec<u8>>,
    db: u32,
    resp3: bool,
}

impl Arbitrary for Handoff {
    fn arbitrary(g: &mut Gen) -> Handoff {
        let mut input = Vec::new();
        for _ in 0..usize::arbitrary(g) % 6 + 1 {
            let mut words: Vec<Vec<u8>> = Arbitrary::arbitrary(g);
            words.insert(0, b"set".to_vec());
            if bool::arbitrary(g) {
                input.extend(encode_command(&words));
            } else {
                // An inline line, so the handoff can fall inside a line being searched.
                for w in &words {
                    input.extend(w.iter().filter(|b| b.is_ascii_alphanumeric()));
                    input.push(b' ');
                }
                input.extend_from_slice(b"\r\n");
            }
        }
        let piece = usize::arbitrary(g) % 16 + 1;
        let after = usize::arbitrary(g) % (input.len() / piece + 2);
        Handoff {
            input,
            piece,
            after,
            name: Arbitrary::arbitrary(g),
            db: Arbitrary::arbitrary(g),
            resp3: Arbitrary::arbitrary(g),
        }
    }
}

/// Feeds the pipeline piece by piece, handing the session over (encode, decode) after
/// `handoff` pieces when asked; returns the commands read and the final session.
fn feed(h: &Handoff, handoff: bool) -> (Vec<Vec<Bytes>>, Session) {
    let mut s = Session::new(Protocol::Redis, true);
    s.name = h.name.clone().map(Bytes::from);
    s.db = h.db;
    s.resp = if h.resp3 { 3 } else { 2 };
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for (i, piece) in h.input.chunks(h.piece).enumerate() {
        if handoff && i == h.after {
            let (restored, restored_buf) = round_trip(&s, &buf);
            assert_eq!(restored, s);
            (s, buf) = (restored, restored_buf);
        }
        buf.extend_from_slice(piece);
        commands.extend(resp_commands(&mut s, &mut buf));
    }
    (commands, s)
}

#[test]
fn pipelines_handed_over_anywhere_read_the_same_commands() {
    fn prop(h: Handoff) -> bool {
        let (plain, s1) = feed(&h, false);
        let (handed, s2) = feed(&h, true);
        plain == handed && s1 == Session { id: s1.id, ..s2 }
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(Handoff) -> bool);
}

#[test]
fn a_transaction_being_queued_and_its_watches_survive_a_handoff() {
    let mut s = configured_redis_session();
    s.multi = Some(MultiQueue {
        commands: vec![args(&["SET", "a", "1"]), args(&["INCR", ""])],
        dirty: true,
    });
    s.watched = vec![
        (Bytes::from_static(b"w1"), Some(42)),
        (Bytes::from_static(b"w2"), None),
    ];
    let (back, unparsed) = round_trip(&s, b"EXEC\r\n");
    assert_eq!(back, s);
    assert_eq!(&unparsed[..], b"EXEC\r\n");
    // An empty queue that is still open stays open.
    s.multi = Some(MultiQueue::default());
    s.watched.clear();
    assert_eq!(round_trip(&s, b"").0, s);
}

#[test]
fn format_3_is_still_written_and_read_without_the_times() {
    let mut s = configured_redis_session();
    s.channels.insert(Bytes::from_static(b"news"));
    let mut v3 = Vec::new();
    s.encode(3, TIMES, b"PING\r\n", &mut v3);
    assert_eq!(&v3[4..6], &3u16.to_le_bytes());
    let (restored, times, buf) = Session::decode(&v3).unwrap();
    assert_eq!(restored, s);
    assert_eq!(times, None, "format 3 has no times");
    assert_eq!(&buf[..], b"PING\r\n");
    // Format 4 is format 3 plus the two times (16 bytes).
    let v4 = encoded(&s, b"PING\r\n");
    assert_eq!(&v4[4..6], &4u16.to_le_bytes());
    assert_eq!(v4.len(), v3.len() + 16);
    // Asked for a format it does not write, the encoder writes the nearest it does.
    let mut v9 = Vec::new();
    s.encode(9, TIMES, b"", &mut v9);
    assert_eq!(&v9[4..6], &VERSION.to_le_bytes());
}

#[test]
fn the_newest_format_both_sides_read_is_chosen() {
    // A new process that does not say (an older binary) reads format 3 only.
    assert_eq!(common_version(None), Ok(3));
    assert_eq!(common_version(Some((3, 4))), Ok(4));
    assert_eq!(common_version(Some((3, 7))), Ok(4));
    assert_eq!(common_version(Some((4, 4))), Ok(4));
    assert_eq!(common_version(Some((2, 3))), Ok(3));
    assert_eq!(
        common_version(Some((5, 6))),
        Err("the new process reads session formats 5 to 6; this server writes 3 to 4".into())
    );
    assert!(common_version(Some((1, 2))).is_err());
    assert!(common_version(Some((4, 3))).is_err());
}
