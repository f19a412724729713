//! RESTORE's payload decoder over arbitrary bytes (what a client may send): it must not
//! panic, and what it accepts as a string encodes back to a payload that decodes the same.

#![no_main]

use baton_engine::commands::dump::{decode, decode_payload, encode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
    if let Some((value, flags)) = decode_payload(data) {
        let again = encode_payload(value, flags);
        assert_eq!(decode_payload(&again), Some((value, flags)));
    }
});
