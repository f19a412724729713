//! The bounded in-tree counterpart of the `replication_flow` fuzz target: arbitrary bytes,
//! and valid flows with bytes flipped or cut, fed to a replica's applier must give errors
//! or applied records, never a panic, and never an allocation a length field asked for
//! before its bytes arrived.

use baton_engine::shard::Effect;
use baton_engine::Shard;
use baton_replication::apply::{apply_op, Applier, FlowError};
use baton_replication::record::{encode, encode_hello, Hello, Limits, Record, VERSION};
use bytes::Bytes;
use quickcheck::{QuickCheck, TestResult};

fn feed(bytes: &[u8], cut: usize) -> Result<(), FlowError> {
    let mut shards: Vec<Shard> = (0..2).map(Shard::new).collect();
    let mut applier = Applier::new(2, 0, Limits::default());
    let cut = cut.min(bytes.len());
    for piece in [&bytes[..cut], &bytes[cut..]] {
        applier.feed(piece, |core, op| apply_op(&mut shards[core], &op))?;
    }
    Ok(())
}

/// A valid flow: a hello, a few puts, a hash and its field changes, a list and its
/// changes, a sorted set and its member changes, a delete, a flush and the end of a
/// snapshot.
fn valid_flow() -> Vec<u8> {
    let mut out = Vec::new();
    encode_hello(
        &Hello {
            version: VERSION,
            shard: 1,
            cores: 3,
            replid: [b'a'; 40],
            offset: 0,
            full: true,
        },
        &mut out,
    );
    for i in 0..5u8 {
        encode(
            &Record::Item(Effect::Put {
                key: Bytes::from(vec![b'k', i]),
                value: Bytes::from(vec![i; 10]),
                expire_at: u64::from(i) * 1000,
                flags: u32::from(i),
                cas: u64::from(i) << 16,
                bits: Default::default(),
            }),
            &mut out,
        );
    }
    // Hashes: a whole one in the snapshot, then fields set and removed.
    let pairs = Bytes::from(baton_engine::hash::packed::from_pairs([
        (&b"f"[..], &b"v"[..]),
        (b"g", b"w"),
    ]));
    encode(
        &Record::Item(Effect::HashPut {
            key: Bytes::from_static(b"h"),
            pairs: pairs.clone(),
            table: false,
            expire_at: 0,
            flags: 0,
            cas: 9 << 16,
            bits: Default::default(),
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::HashSet {
            key: Bytes::from_static(b"h"),
            pairs,
            cas: 10 << 16,
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::HashDel {
            key: Bytes::from_static(b"h"),
            fields: vec![Bytes::from_static(b"f")],
            cas: 11 << 16,
        }),
        &mut out,
    );
    // Lists: a whole one in the snapshot, then an element pushed, inserted in the middle
    // and two removed (LINSERT's and LREM's outcomes).
    encode(
        &Record::Item(Effect::ListPut {
            key: Bytes::from_static(b"l"),
            items: Bytes::from(baton_engine::list::packed::pack([&b"a"[..], b"b", b"c"])),
            expire_at: 0,
            flags: 0,
            cas: 12 << 16,
            bits: Default::default(),
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::ListPush {
            key: Bytes::from_static(b"l"),
            left: true,
            items: Bytes::from(baton_engine::list::packed::pack([&b"z"[..]])),
            cas: 13 << 16,
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::ListInsert {
            key: Bytes::from_static(b"l"),
            index: 2,
            value: Bytes::from_static(b"y"),
            cas: 14 << 16,
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::ListRem {
            key: Bytes::from_static(b"l"),
            indexes: vec![0, 3],
            cas: 15 << 16,
        }),
        &mut out,
    );
    // Sets (issue 14): a whole one in the snapshot, then members added and removed.
    let members = Bytes::from(baton_engine::set::packed::from_members([&b"1"[..], b"a"]));
    encode(
        &Record::Item(Effect::SetPut {
            key: Bytes::from_static(b"s"),
            members: members.clone(),
            enc: baton_engine::set::Encoding::Packed,
            expire_at: 0,
            flags: 0,
            cas: 12 << 16,
            bits: Default::default(),
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::SetAdd {
            key: Bytes::from_static(b"s"),
            members,
            cas: 13 << 16,
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::SetRem {
            key: Bytes::from_static(b"s"),
            members: vec![Bytes::from_static(b"1")],
            cas: 14 << 16,
        }),
        &mut out,
    );
    // Sorted sets: a whole one in the snapshot, then members set and removed.
    let entries = Bytes::from(baton_engine::zset::packed::from_entries([
        (&b"m"[..], 1.5),
        (b"n", -2.0),
    ]));
    encode(
        &Record::Item(Effect::ZsetPut {
            key: Bytes::from_static(b"z"),
            entries: entries.clone(),
            big: true,
            expire_at: 0,
            flags: 0,
            cas: 12 << 16,
            bits: Default::default(),
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::ZsetAdd {
            key: Bytes::from_static(b"z"),
            entries,
            cas: 13 << 16,
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::ZsetRem {
            key: Bytes::from_static(b"z"),
            members: vec![Bytes::from_static(b"m")],
            cas: 14 << 16,
        }),
        &mut out,
    );
    encode(
        &Record::Effect(Effect::Del {
            key: Bytes::from_static(b"k\x01"),
            cause: baton_engine::shard::DelCause::Deleted,
        }),
        &mut out,
    );
    encode(&Record::Effect(Effect::Flush), &mut out);
    encode(&Record::End, &mut out);
    out
}

#[test]
fn a_valid_flow_applies() {
    assert_eq!(feed(&valid_flow(), 17), Ok(()));
}

#[test]
fn arbitrary_bytes_never_panic() {
    fn prop(bytes: Vec<u8>, cut: usize) -> TestResult {
        let _ = feed(&bytes, cut);
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Vec<u8>, usize) -> TestResult);
}

#[test]
fn damaged_flows_never_panic() {
    fn prop(flips: Vec<(usize, u8)>, truncate: usize, cut: usize) -> TestResult {
        let mut flow = valid_flow();
        for (at, byte) in flips {
            let n = flow.len();
            flow[at % n] = byte;
        }
        flow.truncate(flow.len() - truncate % flow.len());
        let _ = feed(&flow, cut);
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Vec<(usize, u8)>, usize, usize) -> TestResult);
}
