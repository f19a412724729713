//! A set's packed members and an intset from arbitrary bytes, as a replication record or
//! a DUMP payload could carry them: `validate` must answer without panicking; bytes it
//! accepts must read back as members that encode to the same bytes, and stored as a set
//! in each form (intset, packed, table) they must serve every set command without
//! panicking.

#![no_main]

use baton_engine::entry::ItemBits;
use baton_engine::set::{intset, packed, Encoding};
use baton_engine::shard::Effect;
use baton_engine::{lookup, Shard};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if intset::validate(data) {
        assert_eq!(intset::iter(data).count(), intset::len(data));
    }
    let _ = packed::contains(data, b"m");
    let Ok(n) = packed::validate(data, 1 << 16) else {
        return;
    };
    assert_eq!(packed::len(data), n);
    assert_eq!(packed::from_members(packed::members(data)), data);
    for enc in [Encoding::Ints, Encoding::Packed, Encoding::Table] {
        let mut s = Shard::new(0);
        s.apply(&Effect::SetPut {
            key: Bytes::from_static(b"s"),
            members: Bytes::copy_from_slice(data),
            enc,
            expire_at: 0,
            flags: 0,
            cas: 1,
            bits: ItemBits::default(),
        });
        for cmd in [
            &["SMEMBERS", "s"][..],
            &["SCARD", "s"],
            &["SISMEMBER", "s", "1"],
            &["SRANDMEMBER", "s", "-3"],
            &["SRANDMEMBER", "s", "2"],
            &["SSCAN", "s", "0", "COUNT", "2"],
            &["SINTER", "s", "s"],
            &["SUNIONSTORE", "t", "s"],
            &["DUMP", "s"],
            &["SPOP", "s", "2"],
            &["SREM", "s", "1", ""],
            &["SADD", "s", "m", "2"],
        ] {
            let args: Vec<Bytes> = cmd.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
            let spec = lookup(cmd[0].as_bytes()).expect("a known command");
            s.execute(spec, &args, 0);
        }
    }
});
