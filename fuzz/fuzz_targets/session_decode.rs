//! `Session::decode` over arbitrary bytes, as a process taking over a connection would run
//! it on what it was handed: it must not panic, a session it accepts must encode back to
//! bytes that decode to the same session, and the restored parsers must be able to read
//! the restored input (whatever their offsets say) without panicking.

#![no_main]

use baton_net::memcache::McLimits;
use baton_net::resp::Limits;
use baton_net::session::Session;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((mut session, times, unparsed)) = Session::decode(data) else {
        return;
    };
    // Re-encoded in the format it came in (bytes 4..6): the same session, the same times.
    let version = u16::from_le_bytes([data[4], data[5]]);
    let mut again = Vec::new();
    session.encode(version, times.unwrap_or_default(), &unparsed, &mut again);
    let (copy, copy_times, copy_unparsed) =
        Session::decode(&again).expect("a re-encoded session decodes");
    assert_eq!(copy, session);
    assert_eq!(copy_times, times);
    assert_eq!(copy_unparsed, unparsed);

    let mut buf = unparsed.clone();
    while let Ok(Some(_)) =
        session
            .resp_parser
            .parse_command(&mut buf, &Limits::default(), session.authenticated)
    {}
    let mut buf = unparsed;
    while let Ok(Some(_)) = session.mc_parser.parse(&mut buf, &McLimits::default()) {}
});
