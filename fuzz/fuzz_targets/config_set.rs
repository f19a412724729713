//! `CONFIG SET`'s value parsers (memory units, integers, yes/no, client-output-buffer-limit,
//! policy names) over arbitrary arguments: they must not panic, and every accepted pair
//! list must hold exactly one change per pair.
//!
//! The input is split on NUL bytes into the `name value [name value ...]` arguments.

#![no_main]

use baton_net::config_command::check_set;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<Bytes> = data
        .split(|&b| b == 0)
        .map(Bytes::copy_from_slice)
        .collect();
    if let Ok(changes) = check_set(&args) {
        assert_eq!(changes.len() * 2, args.len());
    }
});
