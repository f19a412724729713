//! A replica's applier fed arbitrary bytes as one flow, in two pieces cut anywhere, as a
//! replica would receive a malformed, truncated or hostile stream: it must answer with an
//! error or apply records, never panic; every record it decodes must encode back to the
//! same bytes. The same bytes are also read as the body of each record whose body holds
//! counts, indexes or varints (HDEL, LINS, LREM, SREM, ZREM), so that the fuzzer reaches
//! those decoders without first having to find their tags.

#![no_main]

use baton_engine::Shard;
use baton_replication::apply::{apply_op, Applier};
use baton_replication::record::{decode, encode, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_key: 1 << 16,
        max_value: 1 << 20,
    };
    let mut at = 0;
    while let Ok(Some((record, used))) = decode(&data[at..], &limits) {
        let mut again = Vec::new();
        encode(&record, &mut again);
        assert_eq!(&again[..], &data[at..at + used]);
        at += used;
    }

    for tag in [0x0a, 0x11, 0x1e, 0x14, 0x1a] {
        let mut body = vec![tag];
        body.extend_from_slice(data);
        if let Ok(Some((record, used))) = decode(&body, &limits) {
            let mut again = Vec::new();
            encode(&record, &mut again);
            assert_eq!(&again[..], &body[..used]);
        }
    }

    let mut shards: Vec<Shard> = (0..2).map(Shard::new).collect();
    let mut applier = Applier::new(2, 0, limits);
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for piece in [&data[..cut], &data[cut..]] {
        if applier
            .feed(piece, |core, op| apply_op(&mut shards[core], &op))
            .is_err()
        {
            break;
        }
    }
});
