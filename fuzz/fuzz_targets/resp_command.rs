//! `parse_command` over arbitrary bytes: it must not panic, must make progress, and must
//! return the same commands and the same error whether the input arrives whole or in pieces
//! (stateless, and through one `ParseState`). Through one `ParseState`, a GET that
//! `ParseState::short_get` finds in place must be the command `parse_command` then reads.
//!
//! The first input byte picks the setting: bit 0 authenticated, bit 1 tiny limits (so the
//! limit checks are reached with short inputs), bits 2..8 the piece size (1..=64 bytes).

#![no_main]

use baton_net::resp::{parse_command, Limits, ParseState, ProtocolError};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<Vec<Vec<u8>>>, Option<String>);

fn run(input: &[u8], piece: usize, limits: &Limits, auth: bool, stateful: bool) -> Outcome {
    let mut state = ParseState::default();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            // A GET the server answers in place must be what the parser reads.
            let in_place = if stateful {
                state
                    .short_get(&buf, limits)
                    .map(|g| (vec![buf[8..11].to_vec(), buf[g.key].to_vec()], g.end))
            } else {
                None
            };
            let result = if stateful {
                state.parse_command(&mut buf, limits, auth)
            } else {
                parse_command(&mut buf, limits, auth)
            };
            if let Some((args, end)) = in_place {
                let read = result.as_ref().ok().and_then(|r| r.as_ref());
                let read: Option<Vec<Vec<u8>>> =
                    read.map(|a| a.iter().map(|x| x.to_vec()).collect());
                assert_eq!(read, Some(args), "a GET found in place");
                assert_eq!(before - buf.len(), end, "where the GET found in place ends");
            }
            match result {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "a command without a name");
                    assert!(buf.len() < before, "a command that consumed nothing");
                    commands.push(args.iter().map(|a| a.to_vec()).collect());
                }
                Ok(None) => break,
                Err(ProtocolError(text)) => {
                    assert!(text.starts_with("ERR Protocol error: "), "{text}");
                    return (commands, Some(text));
                }
            }
        }
    }
    assert!(
        input.ends_with(&buf),
        "the leftover is not the input's tail"
    );
    (commands, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&setting, input)) = data.split_first() else {
        return;
    };
    let auth = setting & 1 != 0;
    let limits = if setting & 2 != 0 {
        Limits {
            max_bulk_len: 16,
            max_multibulk_len: 8,
            max_inline_len: 12,
        }
    } else {
        Limits::default()
    };
    let piece = usize::from(setting >> 2) + 1;
    let whole = run(input, input.len(), &limits, auth, false);
    assert_eq!(
        whole,
        run(input, piece, &limits, auth, false),
        "split, stateless"
    );
    assert_eq!(
        whole,
        run(input, piece, &limits, auth, true),
        "split, resumed"
    );
});
