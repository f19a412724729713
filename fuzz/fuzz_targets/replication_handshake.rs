//! The two small parsers of a replication link's handshake, fed arbitrary bytes: the
//! primary's reader of a replica's ACK lines (in two pieces cut anywhere), and the
//! replica's reader of the primary's replies. Each answers or errs, never panics.

#![no_main]

use baton_net::repl::feed::take_acks;
use baton_net::repl::link::read_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut line = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        if take_acks(&mut line, piece).is_err() {
            break;
        }
        assert!(line.len() <= 64, "an ACK line is bounded");
    }
    let mut reader = std::io::BufReader::new(data);
    while read_reply(&mut reader, 0).is_ok() {}
});
