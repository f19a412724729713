//! The handoff's control lines (`baton_net::handoff::lines`) over arbitrary text, as the
//! old process and the new one read them from each other: no parser may panic, and a
//! TAKEOVER answer that parses must format back to a line that parses the same.

#![no_main]

use baton_net::handoff::lines;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let _ = lines::request(line);
    let _ = lines::parse_conns(line);
    let _ = lines::parse_catchup(line);
    let _ = lines::parse_follow(line);
    if let Ok(ok) = lines::parse_takeover_ok(line) {
        let again = lines::takeover_ok(&ok);
        assert_eq!(lines::parse_takeover_ok(&again), Ok(ok));
    }
});
