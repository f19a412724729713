//! RESTORE's payload decoder over arbitrary bytes (what a client may send): it must not
//! panic, and a payload it accepts must encode back to the same bytes.

#![no_main]

use baton_engine::commands::dump::{decode, decode_payload, encode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
    if let Some((value, flags)) = decode_payload(data) {
        assert_eq!(encode_payload(value, flags), data);
    }
});
