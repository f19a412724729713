//! A sorted set's packed entries from arbitrary bytes, as a replication record or a
//! RESTORE payload could carry them: `validate` must answer without panicking; bytes it
//! accepts, stored as a sorted set (packed or large), must serve every read and write
//! command without panicking, and a large set built from them must list the same members
//! as a packed one. The first byte picks range arguments, so bounds like "(1", "-inf",
//! "[a", "-" and "+" are parsed too.

#![no_main]

use baton_engine::entry::ItemBits;
use baton_engine::shard::Effect;
use baton_engine::zset::packed;
use baton_engine::{lookup, Reply, Shard};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const BOUNDS: &[&str] = &["(1", "-inf", "+inf", "[a", "(a", "-", "+", "0", "-1", "1e400", "nan", "x", "(", "["];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let _ = packed::score(data, b"m");
    let Ok(n) = packed::validate(data, 1 << 16) else {
        return;
    };
    assert_eq!(packed::len(data), n);
    let (lo, hi) = (
        BOUNDS[usize::from(pick) % BOUNDS.len()],
        BOUNDS[usize::from(pick / 16) % BOUNDS.len()],
    );
    let mut listings = Vec::new();
    for big in [false, true] {
        let mut s = Shard::new(0);
        s.apply(&Effect::ZsetPut {
            key: Bytes::from_static(b"z"),
            entries: Bytes::copy_from_slice(data),
            big,
            expire_at: 0,
            flags: 0,
            cas: 1,
            bits: ItemBits::default(),
        });
        let mut run = |cmd: &[&str]| {
            let args: Vec<Bytes> = cmd.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
            let spec = lookup(cmd[0].as_bytes()).expect("a known command");
            s.execute(spec, &args, 0)
        };
        listings.push(run(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]));
        for cmd in [
            &["ZCARD", "z"][..],
            &["ZSCORE", "z", "m"],
            &["ZRANK", "z", "m"],
            &["ZCOUNT", "z", lo, hi],
            &["ZLEXCOUNT", "z", lo, hi],
            &["ZRANGE", "z", lo, hi, "BYSCORE", "REV", "LIMIT", "1", "2"],
            &["ZRANGE", "z", lo, hi, "BYLEX"],
            &["ZRANDMEMBER", "z", "-3", "WITHSCORES"],
            &["ZSCAN", "z", "0", "COUNT", "2"],
            &["ZRANGESTORE", "dst", "z", "0", "-1"],
            &["ZINCRBY", "z", "1", "m"],
            &["ZREMRANGEBYLEX", "z", lo, hi],
            &["ZPOPMIN", "z", "2"],
            &["ZREM", "z", "m", ""],
        ] {
            run(cmd);
        }
    }
    if let [Reply::Pairs(a), Reply::Pairs(b)] = &listings[..] {
        assert_eq!(a.len(), b.len());
    }
});
