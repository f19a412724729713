//! A hash's packed pairs from arbitrary bytes, as a replication record could carry them:
//! `validate` must answer without panicking; bytes it accepts must read back as pairs that
//! encode to the same bytes, and stored as a hash (packed or as a table) they must serve
//! every read command without panicking.

#![no_main]

use baton_engine::entry::ItemBits;
use baton_engine::hash::packed;
use baton_engine::shard::Effect;
use baton_engine::{lookup, Shard};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = packed::get(data, b"f");
    let Ok(n) = packed::validate(data, 1 << 16) else {
        return;
    };
    assert_eq!(packed::len(data), n);
    let mut again = Vec::new();
    for (f, v) in packed::pairs(data) {
        packed::push(&mut again, f, v);
    }
    assert_eq!(&again[..], data);
    for table in [false, true] {
        let mut s = Shard::new(0);
        s.apply(&Effect::HashPut {
            key: Bytes::from_static(b"h"),
            pairs: Bytes::copy_from_slice(data),
            table,
            expire_at: 0,
            flags: 0,
            cas: 1,
            bits: ItemBits::default(),
        });
        for cmd in [
            &["HGETALL", "h"][..],
            &["HLEN", "h"],
            &["HGET", "h", "f"],
            &["HRANDFIELD", "h", "-3", "WITHVALUES"],
            &["HRANDFIELD", "h", "2"],
            &["HSCAN", "h", "0", "COUNT", "2"],
            &["HDEL", "h", "f", ""],
            &["HSET", "h", "f", "v"],
        ] {
            let args: Vec<Bytes> = cmd.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
            let spec = lookup(cmd[0].as_bytes()).expect("a known command");
            s.execute(spec, &args, 0);
        }
    }
});
