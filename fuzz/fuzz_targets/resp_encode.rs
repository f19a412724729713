//! Encoding: replies built from arbitrary input encode without panicking, in RESP2 and
//! RESP3, and read back as themselves; argument lists framed as a multibulk request parse
//! back identically.

#![no_main]

use baton_net::resp::testing::{as_seen_on_wire, encode_command, parse_reply, same_reply};
use baton_net::resp::{encode_to_vec, parse_command, Limits, Reply};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A reply nested at most `depth` deep.
fn reply(u: &mut Unstructured, depth: usize) -> Result<Reply> {
    let bytes =
        |u: &mut Unstructured| -> Result<Bytes> { Ok(Bytes::copy_from_slice(u.arbitrary()?)) };
    let kinds = if depth == 0 { 10 } else { 13 };
    Ok(match u.int_in_range(0..=kinds - 1)? {
        0 => Reply::Ok,
        1 => Reply::Simple(bytes(u)?),
        2 => Reply::Error(bytes(u)?),
        3 => Reply::Int(u.arbitrary()?),
        4 => Reply::Bulk(bytes(u)?),
        5 => Reply::Nil,
        6 => Reply::NilArray,
        7 => Reply::Double(u.arbitrary()?),
        8 => Reply::Bool(u.arbitrary()?),
        9 => Reply::Verbatim(bytes(u)?),
        kind => {
            let n = u.int_in_range(0..=6)?;
            match kind {
                10 => Reply::Array((0..n).map(|_| reply(u, depth - 1)).collect::<Result<_>>()?),
                11 => Reply::Set((0..n).map(|_| reply(u, depth - 1)).collect::<Result<_>>()?),
                _ => Reply::Map(
                    (0..n)
                        .map(|_| Ok((reply(u, depth - 1)?, reply(u, depth - 1)?)))
                        .collect::<Result<_>>()?,
                ),
            }
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if u.arbitrary::<bool>().unwrap_or(false) {
        let Ok(r) = reply(&mut u, 4) else { return };
        for proto in [2, 3] {
            let wire = encode_to_vec(&r, proto);
            let (back, used) = parse_reply(&wire).expect("encoded reply does not parse back");
            assert_eq!(used, wire.len(), "trailing bytes after the reply");
            assert!(
                same_reply(&back, &as_seen_on_wire(&r, proto)),
                "{r:?} came back as {back:?}"
            );
        }
    } else {
        let Ok(args) = u.arbitrary::<Vec<Vec<u8>>>() else {
            return;
        };
        let mut buf = BytesMut::from(&encode_command(&args)[..]);
        let parsed =
            parse_command(&mut buf, &Limits::default(), true).expect("valid frame rejected");
        match parsed {
            Some(parsed) => assert_eq!(parsed.iter().map(|a| a.to_vec()).collect::<Vec<_>>(), args),
            None => assert!(args.is_empty(), "complete frame reported incomplete"),
        }
        assert!(buf.is_empty(), "frame not fully consumed");
    }
});
