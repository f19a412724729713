//! A list's packed elements from arbitrary bytes, as a replication record or a RESTORE
//! payload could carry them, followed by list commands whose arguments the same bytes
//! pick: `validate` must answer without panicking; bytes it accepts must read back as
//! elements that encode to the same bytes, and stored as a list (short or chunked) they
//! must serve every list command without panicking, and the effects the commands report
//! must rebuild the same list on another shard.

#![no_main]

use baton_engine::entry::ItemBits;
use baton_engine::list::packed;
use baton_engine::shard::{Collector, Effect};
use baton_engine::{lookup, Shard};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const WORDS: [&str; 16] = [
    "LEFT", "RIGHT", "COUNT", "RANK", "MAXLEN", "BEFORE", "AFTER", "0", "1", "-1", "3",
    "-9223372036854775808", "9223372036854775807", "l", "m", "",
];
const CMDS: [&str; 17] = [
    "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LLEN", "LINDEX", "LRANGE", "LSET",
    "LINSERT", "LREM", "LTRIM", "LPOS", "LMOVE", "RPOPLPUSH", "LMPOP",
];

fuzz_target!(|data: &[u8]| {
    let (items, script) = data.split_at(data.len() / 2);
    let Ok(n) = packed::validate(items, 1 << 16) else {
        return;
    };
    assert_eq!(packed::len(items), n);
    assert_eq!(packed::pack(packed::elems(items)), items);
    let mut s = Shard::new(0);
    let fx = Collector::new();
    s.set_effect_sink(Box::new(fx.clone()));
    s.apply(&Effect::ListPut {
        key: Bytes::from_static(b"l"),
        items: Bytes::copy_from_slice(items),
        expire_at: 0,
        flags: 0,
        cas: 1,
        bits: ItemBits::default(),
    });
    let mut r = Shard::new(1);
    for e in fx.take() {
        r.apply(&e);
    }
    for cmd in script.chunks(6) {
        let name = CMDS[cmd[0] as usize % CMDS.len()];
        let mut args = vec![Bytes::from_static(name.as_bytes())];
        args.extend(cmd[1..].iter().map(|b| Bytes::from_static(WORDS[*b as usize % WORDS.len()].as_bytes())));
        let spec = lookup(name.as_bytes()).expect("a known command");
        if spec.arity_ok(args.len()) {
            s.execute(spec, &args, 0);
        }
    }
    for e in fx.take() {
        r.apply(&e);
    }
    assert!(s.lookup(b"l", 0) == r.lookup(b"l", 0));
    assert!(s.lookup(b"m", 0) == r.lookup(b"m", 0));
});
