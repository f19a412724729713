//! The memcached codec over arbitrary bytes, through a whole in-process session (parse,
//! execute on a real shard, encode): it must not panic, and the replies and whether the
//! connection closed must not depend on how the bytes are split into reads.
//!
//! The first input byte picks the setting: bit 0 tiny limits (so the size and line-length
//! checks are reached with short inputs), bits 1..8 the read size (1..=128 bytes).

#![no_main]

use baton_net::memcache::testing::Session;
use baton_net::memcache::McLimits;
use libfuzzer_sys::fuzz_target;

/// The replies, whether the connection closed, and (while it is open) the bytes of a
/// partial request still buffered. A closed connection stops reading, so what it left
/// unread depends on the read size and is not compared.
fn run(input: &[u8], piece: usize, limits: McLimits) -> (Vec<u8>, bool, Option<usize>) {
    let mut session = Session::with_limits(limits);
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        out.extend(session.feed(chunk));
    }
    let pending = (!session.closed).then(|| session.pending());
    assert!(session.pending() <= input.len());
    (out, session.closed, pending)
}

fuzz_target!(|data: &[u8]| {
    let Some((&setting, input)) = data.split_first() else {
        return;
    };
    let limits = if setting & 1 == 1 {
        McLimits {
            max_item_size: 32,
            max_line: 64,
            max_get_line: 160,
        }
    } else {
        McLimits::default()
    };
    let piece = usize::from(setting >> 1) + 1;
    let whole = run(input, input.len(), limits);
    let split = run(input, piece, limits);
    assert_eq!(whole, split, "replies depend on how the input was split");
});
