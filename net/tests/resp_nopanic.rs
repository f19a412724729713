//! The RESP request parser on hostile input: random bytes, RESP-flavoured noise and mutated
//! valid frames, fed in random pieces. It must never panic, always make progress, and give
//! the same commands and the same error however the input is split, with or without a
//! `ParseState`. (The fuzz targets in `fuzz/` explore the same ground without a time bound.)

use baton_net::resp::testing::encode_command;
use baton_net::resp::{parse_command, Limits, ParseState, ProtocolError};
use bytes::BytesMut;
use quickcheck::{Arbitrary, Gen, QuickCheck};

/// Bytes a RESP parser has opinions about, so noise reaches deep states often.
const ALPHABET: &[u8] = b"*$\r\n\r\n0123456789-+ \t\"'\\xaF\0\x0b:";

/// Input for the parser: pure noise, RESP-flavoured noise, or valid frames with damage.
#[derive(Clone, Debug)]
struct Input(Vec<u8>);

impl Arbitrary for Input {
    fn arbitrary(g: &mut Gen) -> Input {
        let len = usize::arbitrary(g) % (g.size() * 4 + 1);
        let bytes = match u8::arbitrary(g) % 3 {
            0 => (0..len).map(|_| u8::arbitrary(g)).collect(),
            1 => (0..len).map(|_| *g.choose(ALPHABET).unwrap()).collect(),
            _ => mutated_frames(g),
        };
        Input(bytes)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Input>> {
        Box::new(self.0.shrink().map(Input))
    }
}

fn mutated_frames(g: &mut Gen) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..usize::arbitrary(g) % 4 + 1 {
        let args: Vec<Vec<u8>> = Arbitrary::arbitrary(g);
        if bool::arbitrary(g) {
            out.extend(encode_command(&args));
        } else {
            // An inline line with some quoting.
            for arg in &args {
                out.push(b' ');
                out.push(*g.choose(b"\"'a").unwrap());
                out.extend(arg.iter().filter(|&&b| b != b'\n'));
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    for _ in 0..usize::arbitrary(g) % 4 {
        if out.is_empty() {
            break;
        }
        let at = usize::arbitrary(g) % out.len();
        match u8::arbitrary(g) % 4 {
            0 => out[at] = *g.choose(ALPHABET).unwrap(),
            1 => {
                out.remove(at);
            }
            2 => out.insert(at, *g.choose(ALPHABET).unwrap()),
            _ => out.truncate(at),
        }
    }
    out
}

/// What parsing a stream yielded: its commands, then the error that ended it (if any),
/// then the bytes left over.
type Outcome = (Vec<Vec<Vec<u8>>>, Option<String>, Vec<u8>);

fn run(input: &[u8], cuts: &[usize], limits: &Limits, auth: bool, stateful: bool) -> Outcome {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut state = ParseState::default();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    let mut from = 0;
    for cut in cuts {
        buf.extend_from_slice(&input[from..cut]);
        from = cut;
        // Each command consumes at least one byte, so this bounds a livelocked parser.
        for calls in 0.. {
            assert!(calls <= input.len(), "parser stopped making progress");
            let before = buf.len();
            let result = if stateful {
                state.parse_command(&mut buf, limits, auth)
            } else {
                parse_command(&mut buf, limits, auth)
            };
            match result {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "a command without a name");
                    assert!(buf.len() < before, "a command that consumed nothing");
                    let total: usize = args.iter().map(|a| a.len()).sum();
                    assert!(
                        total <= before - buf.len(),
                        "arguments larger than their frame"
                    );
                    commands.push(args.into_iter().map(|a| a.to_vec()).collect());
                }
                Ok(None) => break,
                Err(ProtocolError(text)) => {
                    assert!(text.starts_with("ERR Protocol error: "), "{text}");
                    return (commands, Some(text), buf.to_vec());
                }
            }
        }
    }
    assert!(
        input.ends_with(&buf),
        "the leftover is not the input's tail"
    );
    (commands, None, buf.to_vec())
}

fn limits_for(small: bool) -> Limits {
    if small {
        Limits {
            max_bulk_len: 16,
            max_multibulk_len: 8,
            max_inline_len: 12,
        }
    } else {
        Limits::default()
    }
}

fn consistent(input: Input, cuts: Vec<usize>, small: bool, auth: bool) -> bool {
    let limits = limits_for(small);
    let whole = run(&input.0, &[], &limits, auth, false);
    let split = run(&input.0, &cuts, &limits, auth, false);
    let resumed = run(&input.0, &cuts, &limits, auth, true);
    // After an error the connection closes, so only what came before it must agree.
    let agree =
        |a: &Outcome, b: &Outcome| a.0 == b.0 && a.1 == b.1 && (a.1.is_some() || a.2 == b.2);
    agree(&whole, &split) && agree(&whole, &resumed)
}

#[test]
fn parser_never_panics_and_ignores_how_input_is_split() {
    QuickCheck::new()
        .tests(2000)
        .quickcheck(consistent as fn(Input, Vec<usize>, bool, bool) -> bool);
}

#[test]
fn byte_at_a_time_matches_whole() {
    fn prop(input: Input, small: bool, auth: bool) -> bool {
        let limits = limits_for(small);
        let cuts: Vec<usize> = (0..input.0.len()).collect();
        let whole = run(&input.0, &[], &limits, auth, false);
        let trickled = run(&input.0, &cuts, &limits, auth, true);
        whole.0 == trickled.0 && whole.1 == trickled.1
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(Input, bool, bool) -> bool);
}

/// Regression inputs for edge cases worth keeping in view.
#[test]
fn known_nasty_inputs() {
    let cases: &[&[u8]] = &[
        b"*",
        b"*\r",
        b"*\r\n",
        b"*1\r\n$",
        b"*1\r\n$\r\n",
        b"*1\r\n$-9223372036854775808\r\n",
        b"*9223372036854775807\r\n",
        b"*-9223372036854775808\r\n",
        b"*1\r\n$18446744073709551615\r\n",
        b"\"",
        b"'\\",
        b"\"\\x",
        b"\"\\x4",
        b"\0\r\n",
        b"\r",
        b"\n\n\n",
    ];
    for input in cases {
        for (small, auth) in [(false, false), (false, true), (true, false), (true, true)] {
            let cuts: Vec<usize> = (0..input.len()).collect();
            let limits = limits_for(small);
            let whole = run(input, &[], &limits, auth, false);
            let trickled = run(input, &cuts, &limits, auth, true);
            assert_eq!(whole.0, trickled.0, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(whole.1, trickled.1, "{:?}", String::from_utf8_lossy(input));
        }
    }
}
