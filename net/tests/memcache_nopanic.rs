//! The memcached codec never panics, whatever the bytes and however they are split, and
//! its output does not depend on the split: a request is either whole or untouched.
//! Inputs are random bytes and mutated valid requests, run through a whole in-process
//! session (parse, execute on a real shard, encode).

use baton_net::memcache::testing::Session;
use baton_net::memcache::{McLimits, McParser, McRequest};
use bytes::BytesMut;
use quickcheck::{Arbitrary, Gen, QuickCheck};

/// Small limits so that the size and length paths are reached often.
fn limits() -> McLimits {
    McLimits {
        max_item_size: 64,
        max_line: 96,
        max_get_line: 256,
    }
}

fn run_whole(input: &[u8]) -> (Vec<u8>, bool) {
    let mut s = Session::with_limits(limits());
    let out = s.feed(input);
    (out, s.closed)
}

fn run_split(input: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
    let mut s = Session::with_limits(limits());
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    let mut at = 0;
    for p in points.into_iter().chain([input.len()]) {
        out.extend(s.feed(&input[at..p]));
        at = p;
        assert!(s.pending() <= input.len());
    }
    (out, s.closed)
}

fn same_whole_and_split(input: &[u8], cuts: &[usize]) -> bool {
    let whole = run_whole(input);
    let split = run_split(input, cuts);
    if whole != split {
        eprintln!(
            "input {:?}\nwhole {:?}\nsplit {:?}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&whole.0),
            String::from_utf8_lossy(&split.0)
        );
    }
    whole == split
}

/// Requests a client might send, data blocks included.
const TEMPLATES: &[&str] = &[
    "set k 1 0 5\r\nhello\r\n",
    "set k2 0 100 3 noreply\r\nabc\r\n",
    "add k 0 0 1\r\nx\r\n",
    "replace k 4294967295 -1 2\r\nyz\r\n",
    "append k 0 0 3\r\n123\r\n",
    "prepend k 0 0 3\r\n000\r\n",
    "cas k 0 0 1 256\r\nq\r\n",
    "set n 0 0 2\r\n42\r\n",
    "get k\r\n",
    "get k k2 n missing\r\n",
    "gets k n\r\n",
    "gat 10 k n\r\n",
    "gats -1 k\r\n",
    "delete k\r\n",
    "delete k 0 noreply\r\n",
    "incr n 5\r\n",
    "decr n 18446744073709551615\r\n",
    "touch n 0\r\n",
    "flush_all 1\r\n",
    "flush_all noreply\r\n",
    "version\r\n",
    "verbosity 1\r\n",
    "stats\r\n",
    "stats reset\r\n",
    "mn\r\n",
    "mg k v t c f s k Oop\r\n",
    "mg k q v\r\n",
    "mg k T30 t C256\r\n",
    "mg Zm9v b k v\r\n",
    "ms k 3 T10 F5 c s k\r\nabc\r\n",
    "ms k 1 MA N0 q\r\nz\r\n",
    "ms k 2 C256 E9 I\r\nzz\r\n",
    "ms Zm9v 1 b\r\nx\r\n",
    "md k q\r\n",
    "md k x F3 C1 Oa k\r\n",
    "ma n\r\n",
    "ma n N0 J9 D3 MD v t c\r\n",
    "ma n M+ T5 q\r\n",
    "me k\r\n",
    "me Zm9v b\r\n",
    "quit\r\n",
];

/// A pipeline of valid requests with a few byte-level mutations.
#[derive(Clone, Debug)]
struct Mutated(Vec<u8>);

impl Arbitrary for Mutated {
    fn arbitrary(g: &mut Gen) -> Mutated {
        let mut bytes = Vec::new();
        let n = 1 + usize::arbitrary(g) % 12;
        for _ in 0..n {
            let t = g.choose(TEMPLATES).unwrap();
            // quit ends everything; keep it rare.
            if t.starts_with("quit") && !bool::arbitrary(g) {
                continue;
            }
            bytes.extend_from_slice(t.as_bytes());
        }
        let mutations = usize::arbitrary(g) % 4;
        for _ in 0..mutations {
            if bytes.is_empty() {
                break;
            }
            let at = usize::arbitrary(g) % bytes.len();
            match u8::arbitrary(g) % 7 {
                0 => bytes[at] = u8::arbitrary(g),
                1 => bytes.insert(at, u8::arbitrary(g)),
                2 => {
                    bytes.remove(at);
                }
                3 => bytes.truncate(at),
                4 => bytes
                    .splice(at..at, b" 99999999999".iter().copied())
                    .for_each(drop),
                5 => bytes.splice(at..at, b"\r\n".iter().copied()).for_each(drop),
                _ => bytes[at] = *g.choose(b" \r\n0-b").unwrap(),
            }
        }
        Mutated(bytes)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Mutated>> {
        Box::new(self.0.shrink().map(Mutated))
    }
}

#[test]
fn random_bytes_any_split() {
    fn prop(input: Vec<u8>, cuts: Vec<usize>) -> bool {
        same_whole_and_split(&input, &cuts)
    }
    QuickCheck::new()
        .tests(3000)
        .quickcheck(prop as fn(Vec<u8>, Vec<usize>) -> bool);
}

#[test]
fn mutated_requests_any_split() {
    fn prop(input: Mutated, cuts: Vec<usize>) -> bool {
        same_whole_and_split(&input.0, &cuts)
    }
    QuickCheck::new()
        .tests(3000)
        .quickcheck(prop as fn(Mutated, Vec<usize>) -> bool);
}

#[test]
fn byte_at_a_time_matches_whole() {
    let script: Vec<u8> = TEMPLATES
        .iter()
        .filter(|t| !t.starts_with("quit"))
        .flat_map(|t| t.bytes())
        .collect();
    let whole = run_whole(&script);
    let cuts: Vec<usize> = (0..script.len()).collect();
    assert_eq!(run_split(&script, &cuts), whole);
    assert!(!whole.1);
    assert!(!whole.0.is_empty());
}

#[test]
fn claimed_lengths_reserve_nothing() {
    let mut p = McParser::new();
    for header in [
        &b"set k 0 0 2147483645\r\n"[..],
        b"ms k 2147483645 T0\r\n",
        b"set k 0 0 900000\r\n",
    ] {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(header);
        let cap = buf.capacity();
        let r = p.parse(&mut buf, &McLimits::default()).unwrap();
        assert!(
            buf.capacity() <= cap,
            "{:?}",
            String::from_utf8_lossy(header)
        );
        match r {
            Some(McRequest::Error(text)) => {
                assert_eq!(text, "SERVER_ERROR object too large for cache")
            }
            None => assert_eq!(buf.len(), header.len(), "waits without consuming"),
            other => panic!("{other:?}"),
        }
        p = McParser::new();
    }
}
