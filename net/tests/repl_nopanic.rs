//! The replication handshake's parsers on hostile input, bounded (the fuzz target
//! `replication_handshake` explores the same without a bound): the primary's reader of
//! ACK lines and the replica's reader of the primary's replies answer or err, never
//! panic, and never buffer past their limits.

use baton_net::repl::feed::take_acks;
use baton_net::repl::link::read_reply;
use quickcheck::{Arbitrary, Gen, QuickCheck};

const ALPHABET: &[u8] = b"REPLCONF ACK 0123456789\r\n*$:+-";

fn noise(g: &mut Gen) -> Vec<u8> {
    let len = usize::arbitrary(g) % 300;
    if bool::arbitrary(g) {
        (0..len).map(|_| u8::arbitrary(g)).collect()
    } else {
        (0..len).map(|_| *g.choose(ALPHABET).unwrap()).collect()
    }
}

#[test]
fn ack_lines_and_replies_never_panic() {
    fn prop(seed: u64) -> bool {
        let mut g = Gen::new(64 + (seed % 64) as usize);
        let data = noise(&mut g);
        let cut = usize::arbitrary(&mut g) % (data.len() + 1);
        let mut line = Vec::new();
        for piece in [&data[..cut], &data[cut..]] {
            if take_acks(&mut line, piece).is_err() {
                break;
            }
            if line.len() > 64 {
                return false;
            }
        }
        let mut reader = std::io::BufReader::new(&data[..]);
        for _ in 0..data.len() + 1 {
            if read_reply(&mut reader, 0).is_err() {
                break;
            }
        }
        true
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(u64) -> bool);
}

#[test]
fn well_formed_acks_and_replies_are_read() {
    let mut line = Vec::new();
    assert_eq!(
        take_acks(&mut line, b"REPLCONF ACK 5\r\nREPLCONF ACK 9\r\n"),
        Ok(Some(9))
    );
    let mut r = std::io::BufReader::new(&b"*2\r\n:2\r\n$3\r\nabc\r\n+PONG\r\n-ERR no\r\n"[..]);
    assert!(matches!(
        read_reply(&mut r, 0),
        Ok(baton_net::repl::link::Resp::Array(a)) if a.len() == 2
    ));
    assert!(matches!(
        read_reply(&mut r, 0),
        Ok(baton_net::repl::link::Resp::Simple(s)) if s == "PONG"
    ));
    assert!(matches!(
        read_reply(&mut r, 0),
        Ok(baton_net::repl::link::Resp::Error(s)) if s == "ERR no"
    ));
    assert!(
        read_reply(&mut r, 0).is_err(),
        "the end of input is an error"
    );
}
