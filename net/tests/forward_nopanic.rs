//! The answers an old process reads on its forwarding links (`mclink::resp_value` for a
//! handoff link's raw RESP values, `mclink::parse_answer` for `CLUSTER BATON-MC` arrays) on
//! hostile input: RESP-flavoured noise and valid answers with damage. Neither may panic or
//! claim more bytes than it was given; a complete answer keeps its length in a longer
//! buffer; no shorter prefix of a raw value is complete. (The `forward_answer` fuzz target
//! explores the same ground without a time bound.)

use baton_net::cluster::mclink::{parse_answer, resp_value};
use quickcheck::{Arbitrary, Gen, QuickCheck};

/// Bytes these parsers have opinions about.
const ALPHABET: &[u8] = b"*$%~>|_,#(!=+-:\r\n\r\n0123456789-1 ";

/// Valid answers of every RESP type, to damage.
const VALID: &[&[u8]] = &[
    b"+OK\r\n",
    b"-ERR no\r\n",
    b":42\r\n",
    b"$5\r\nhello\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b"*2\r\n$1\r\na\r\n:1\r\n",
    b"%1\r\n+k\r\n~2\r\n,1.5\r\n#t\r\n",
    b"|1\r\n+a\r\n:1\r\n_\r\n",
    b"=7\r\ntxt:abc\r\n",
    b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n",
    b"*3\r\n$5\r\nEND\r\n\r\n-MOVED 1 h:1\r\n$0\r\n\r\n",
];

#[derive(Clone, Debug)]
struct Input(Vec<u8>);

impl Arbitrary for Input {
    fn arbitrary(g: &mut Gen) -> Input {
        let mut out: Vec<u8> = if bool::arbitrary(g) {
            let len = usize::arbitrary(g) % (g.size() * 2 + 1);
            (0..len).map(|_| *g.choose(ALPHABET).unwrap()).collect()
        } else {
            let mut v = Vec::new();
            for _ in 0..usize::arbitrary(g) % 3 + 1 {
                v.extend_from_slice(g.choose(VALID).unwrap());
            }
            v
        };
        for _ in 0..usize::arbitrary(g) % 3 {
            if out.is_empty() {
                break;
            }
            let at = usize::arbitrary(g) % out.len();
            match u8::arbitrary(g) % 3 {
                0 => out[at] = *g.choose(ALPHABET).unwrap(),
                1 => {
                    out.remove(at);
                }
                _ => out.insert(at, *g.choose(ALPHABET).unwrap()),
            }
        }
        Input(out)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Input>> {
        Box::new(self.0.shrink().map(Input))
    }
}

fn holds(input: Input) -> bool {
    let data = &input.0;
    if let Ok(Some(n)) = resp_value(data, 0) {
        if n == 0 || n > data.len() {
            return false;
        }
        let mut longer = data[..n].to_vec();
        longer.extend_from_slice(b"+tail\r\n");
        if resp_value(&longer, 0) != Ok(Some(n)) {
            return false;
        }
        if (0..n).any(|cut| matches!(resp_value(&data[..cut], 0), Ok(Some(_)))) {
            return false;
        }
    }
    if let Ok(Some((_, n))) = parse_answer(data) {
        if n == 0 || n > data.len() {
            return false;
        }
        if parse_answer(&data[..n]).map(|a| a.map(|(_, m)| m)) != Ok(Some(n)) {
            return false;
        }
    }
    true
}

#[test]
fn forwarded_answers_never_panic_and_frame_consistently() {
    QuickCheck::new()
        .tests(20_000)
        .quickcheck(holds as fn(Input) -> bool);
}

#[test]
fn the_valid_answers_are_whole_values() {
    for v in VALID {
        assert_eq!(resp_value(v, 0), Ok(Some(v.len())), "{v:?}");
    }
}
