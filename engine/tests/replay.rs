//! Replay property: a shard reports every change it makes as an effect, and applying
//! those effects in order to another shard reproduces it exactly.
//!
//! Random sequences of Redis commands (through the command table) and memcached text and
//! meta operations (through `memcache::execute`) run over six keys on shard A, whose
//! clock jumps forward at random so that keys expire both lazily and in the active expiry
//! cycle, and whose memory budget, when one is set, is small enough that keys get evicted.
//! After every step the effects A reported are applied to shard B, which has another id
//! (so CAS values must be carried, not bumped), and twice each to shard C. A, B and C must
//! then hold the same items, expired-but-unreclaimed ones included: value, expiry, flags,
//! CAS and memcached's item bits.

use std::collections::BTreeMap;

use baton_engine::entry::ItemBits;
use baton_engine::evict::EvictionPolicy;
use baton_engine::memcache::{
    self, McCtx, McOp, MetaArith, MetaDelete, MetaGet, MetaSet, StoreMode, StoreOp,
};
use baton_engine::shard::{Collector, Effect};
use baton_engine::Shard;
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const START: u64 = 1_700_000_000_000;

/// One argument of a Redis command; times are resolved against the clock when it runs.
#[derive(Debug, Clone)]
enum Arg {
    Lit(&'static str),
    Key(u8),
    Val(Vec<u8>),
    /// Unix ms: now plus this many ms.
    AtMs(i16),
    /// Unix seconds: now plus this many seconds.
    AtSecs(i8),
}

/// Which CAS a memcached compare names, picked when the op runs.
#[derive(Debug, Clone, Copy)]
enum CasPick {
    /// The item's current CAS (a compare that succeeds).
    Current,
    /// One below it (an older version: fails, or makes `ms I` store a stale item).
    Older,
    Lit(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Redis(Vec<Arg>),
    /// A memcached op; `cas` replaces its compare CAS, if any, when it runs.
    Mc {
        op: McOp,
        cas: Option<CasPick>,
    },
    /// memcached's `flush_all`: the server flushes every shard.
    FlushAll,
    Advance {
        ms: u16,
    },
    /// A step of active expiry over this many slots.
    ExpireCycle {
        slots: u8,
    },
    /// CONFIG SET maxmemory (per shard), 0 for none: evicts at once when lowered.
    Budget {
        bytes: u16,
    },
}

fn key(g: &mut Gen) -> u8 {
    u8::arbitrary(g) % 6
}

fn value(g: &mut Gen) -> Vec<u8> {
    let picks: [&[u8]; 8] = [
        b"0",
        b"7",
        b"-3",
        b"1.5",
        b"abc",
        b"",
        b"18446744073709551615",
        b"a longer value that costs memory",
    ];
    g.choose(&picks).unwrap().to_vec()
}

fn pick<T: Clone>(g: &mut Gen, from: &[T]) -> T {
    g.choose(from).unwrap().clone()
}

/// SET's options: an expiry (or KEEPTTL), a condition and GET, each maybe.
fn set_options(g: &mut Gen) -> Vec<Arg> {
    use Arg::*;
    let mut args = match u8::arbitrary(g) % 7 {
        0 => vec![Lit("EX"), Lit(pick(g, &["1", "2"]))],
        1 => vec![Lit("PX"), Lit(pick(g, &["300", "1500", "2500"]))],
        2 => vec![Lit("PXAT"), AtMs(i16::arbitrary(g) % 3000)],
        3 => vec![Lit("EXAT"), AtSecs(i8::arbitrary(g) % 3)],
        4 => vec![Lit("KEEPTTL")],
        _ => vec![],
    };
    if bool::arbitrary(g) {
        args.push(Lit(pick(g, &["NX", "XX"])));
    }
    if bool::arbitrary(g) {
        args.push(Lit("GET"));
    }
    args
}

fn redis(g: &mut Gen) -> Vec<Arg> {
    use Arg::*;
    let (k, k2, v) = (Key(key(g)), Key(key(g)), Val(value(g)));
    let field = |g: &mut Gen| Lit(pick(g, &["f0", "f1", "f2", "f3"]));
    // Now and then a value past hash-max-listpack-value, which converts a hash to a table.
    let hval = |g: &mut Gen| match u8::arbitrary(g) % 6 {
        0 => Val(vec![b'x'; 70]),
        _ => Val(value(g)),
    };
    // Now and then a long element: three of them pass a packed list's 8 KiB.
    let lval = |g: &mut Gen| match u8::arbitrary(g) % 5 {
        0 => Val(vec![b'y'; 3000]),
        _ => Val(value(g)),
    };
    // Sets (issue 14): integers keep an intset, a word or a long member converts it.
    let member = |g: &mut Gen| match u8::arbitrary(g) % 8 {
        0 => Val(vec![b'x'; 70]),
        n @ 1..=4 => Lit(["1", "2", "3", "-7"][usize::from(n - 1)]),
        n => Lit(["a", "b", "c"][usize::from(n - 5)]),
    };
    // Sorted sets: a few members, now and then one past zset-max-listpack-value.
    let zmember = |g: &mut Gen| match u8::arbitrary(g) % 6 {
        0 => Val(vec![b'z'; 70]),
        _ => Lit(pick(g, &["m0", "m1", "m2", "m3"])),
    };
    let score = |g: &mut Gen| Lit(pick(g, &["0", "1.5", "-2", "inf", "0.1"]));
    match u8::arbitrary(g) % 46 {
        0..=2 => [vec![Lit("SET"), k, v], set_options(g)].concat(),
        3 => vec![Lit(pick(g, &["SETEX", "PSETEX"])), k, Lit("1500"), v],
        4 => vec![Lit(pick(g, &["SETNX", "GETSET"])), k, v],
        5 => vec![Lit("APPEND"), k, v],
        6 => vec![Lit("SETRANGE"), k, Lit(pick(g, &["0", "2", "6"])), v],
        7 => vec![Lit(pick(g, &["INCR", "DECR"])), k],
        8 => vec![Lit(pick(g, &["INCRBY", "DECRBY"])), k, Lit("5")],
        9 => vec![Lit("INCRBYFLOAT"), k, Lit(pick(g, &["1.5", "-2"]))],
        10 => vec![Lit(pick(g, &["DEL", "UNLINK"])), k, k2],
        11 => {
            let cond: &[&str] = &["NX", "XX", "GT", "LT"];
            let mut args = vec![Lit("EXPIRE"), k, Lit(pick(g, &["-1", "1", "2", "3"]))];
            if bool::arbitrary(g) {
                args.push(Lit(pick(g, cond)));
            }
            args
        }
        12 => vec![Lit("PEXPIRE"), k, Lit(pick(g, &["0", "400", "2000"]))],
        13 => vec![Lit("PEXPIREAT"), k, AtMs(i16::arbitrary(g) % 3000)],
        14 => vec![Lit("EXPIREAT"), k, AtSecs(i8::arbitrary(g) % 3)],
        15 => vec![Lit("PERSIST"), k],
        16 => vec![Lit("GETDEL"), k],
        17 => {
            let opt = match u8::arbitrary(g) % 5 {
                0 => vec![Lit("EX"), Lit("2")],
                1 => vec![Lit("PX"), Lit("700")],
                2 => vec![Lit("PXAT"), AtMs(i16::arbitrary(g) % 3000)],
                3 => vec![Lit("PERSIST")],
                _ => vec![],
            };
            [vec![Lit("GETEX"), k], opt].concat()
        }
        18 => vec![Lit(pick(g, &["RENAME", "RENAMENX"])), k, k2],
        19 => {
            let mut args = vec![Lit("COPY"), k, k2];
            if bool::arbitrary(g) {
                args.push(Lit("REPLACE"));
            }
            args
        }
        20 => vec![Lit(pick(g, &["MSET", "MSETNX"])), k, v, k2, Val(value(g))],
        // Rarer than the rest: a flush leaves little to compare.
        21 if u8::arbitrary(g) % 4 == 0 => vec![Lit(pick(g, &["FLUSHDB", "FLUSHALL"]))],
        21 | 22 => vec![Lit(pick(g, &["GET", "EXISTS", "TTL", "STRLEN"])), k],
        23 => vec![Lit("RANDOMKEY")],
        24 => vec![Lit("OBJECT"), Lit("FREQ"), k],
        26 | 27 => {
            let mut args = vec![Lit(pick(g, &["HSET", "HMSET"])), k, field(g), hval(g)];
            if bool::arbitrary(g) {
                args.extend([field(g), hval(g)]);
            }
            args
        }
        28 => vec![Lit("HDEL"), k, field(g), field(g)],
        29 => match u8::arbitrary(g) % 3 {
            0 => vec![Lit("HINCRBY"), k, field(g), Lit("3")],
            1 => vec![Lit("HINCRBYFLOAT"), k, field(g), Lit("1.5")],
            _ => vec![Lit("HSETNX"), k, field(g), hval(g)],
        },
        30 if bool::arbitrary(g) => vec![Lit("HGET"), k, field(g)],
        30 => vec![Lit(pick(g, &["HLEN", "HGETALL", "TYPE", "HRANDFIELD"])), k],
        31 | 32 => {
            let mut args = vec![
                Lit(pick(g, &["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"])),
                k,
                lval(g),
            ];
            if bool::arbitrary(g) {
                args.push(lval(g));
            }
            args
        }
        33 => match u8::arbitrary(g) % 3 {
            0 => vec![Lit(pick(g, &["LPOP", "RPOP"])), k],
            _ => vec![
                Lit(pick(g, &["LPOP", "RPOP"])),
                k,
                Lit(pick(g, &["0", "1", "2", "9"])),
            ],
        },
        34 => match u8::arbitrary(g) % 4 {
            0 => vec![Lit("LSET"), k, Lit(pick(g, &["0", "-1", "1"])), lval(g)],
            1 => vec![
                Lit("LINSERT"),
                k,
                Lit(pick(g, &["BEFORE", "AFTER"])),
                v,
                lval(g),
            ],
            2 => vec![Lit("LREM"), k, Lit(pick(g, &["0", "1", "-1"])), v],
            _ => vec![
                Lit("LTRIM"),
                k,
                Lit(pick(g, &["0", "1", "-2"])),
                Lit(pick(g, &["-1", "-2", "0", "2"])),
            ],
        },
        35 => match u8::arbitrary(g) % 3 {
            0 => vec![
                Lit("LMOVE"),
                k,
                k2,
                Lit(pick(g, &["LEFT", "RIGHT"])),
                Lit(pick(g, &["LEFT", "RIGHT"])),
            ],
            1 => vec![Lit("RPOPLPUSH"), k, k2],
            _ => vec![
                Lit("LMPOP"),
                Lit("2"),
                k,
                k2,
                Lit(pick(g, &["LEFT", "RIGHT"])),
                Lit("COUNT"),
                Lit("2"),
            ],
        },
        36 | 37 => {
            let mut args = vec![Lit("SADD"), k, member(g)];
            if bool::arbitrary(g) {
                args.extend([member(g), member(g)]);
            }
            args
        }
        38 => vec![Lit("SREM"), k, member(g), member(g)],
        39 => match u8::arbitrary(g) % 3 {
            0 => vec![Lit("SPOP"), k],
            1 => vec![Lit("SPOP"), k, Lit("2")],
            _ => vec![Lit("SMOVE"), k, k2, member(g)],
        },
        40 => vec![
            Lit(pick(g, &["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])),
            k,
            k2,
            Key(key(g)),
        ],
        41 | 42 => {
            let flags: &[&[&str]] = &[&[], &[], &["NX"], &["XX", "CH"], &["GT"], &["LT", "CH"]];
            let mut args = vec![Lit("ZADD"), k];
            args.extend(pick(g, flags).iter().map(|f| Lit(f)));
            args.extend([score(g), zmember(g)]);
            if bool::arbitrary(g) {
                args.extend([score(g), zmember(g)]);
            }
            args
        }
        43 => match u8::arbitrary(g) % 3 {
            0 => vec![Lit("ZINCRBY"), k, score(g), zmember(g)],
            1 => vec![Lit("ZADD"), k, Lit("INCR"), score(g), zmember(g)],
            _ => vec![Lit("ZREM"), k, zmember(g), zmember(g)],
        },
        44 => match u8::arbitrary(g) % 4 {
            0 => vec![
                Lit(pick(g, &["ZPOPMIN", "ZPOPMAX"])),
                k,
                Lit(pick(g, &["1", "2"])),
            ],
            1 => vec![Lit("ZREMRANGEBYSCORE"), k, Lit("(0"), Lit("+inf")],
            2 => vec![Lit("ZREMRANGEBYRANK"), k, Lit("0"), Lit("0")],
            _ => vec![Lit("ZRANGESTORE"), k2, k, Lit("0"), Lit("1")],
        },
        45 if bool::arbitrary(g) => vec![Lit("ZCARD"), k],
        45 => vec![Lit("ZRANGE"), k, Lit("0"), Lit("-1"), Lit("WITHSCORES")],
        _ => vec![Lit("TOUCH"), k, k2],
    }
}

/// A memcached exptime: none, relative seconds, negative (already expired), or absolute
/// unix seconds in the past or the near future.
fn exptime(g: &mut Gen) -> i64 {
    let now_s = (START / 1000) as i64;
    pick(g, &[0, 0, 1, 2, 3, -1, now_s - 10, now_s + 4])
}

fn compare(g: &mut Gen) -> Option<CasPick> {
    match u8::arbitrary(g) % 8 {
        0..=2 => Some(CasPick::Current),
        3 => Some(CasPick::Older),
        4 => Some(CasPick::Lit(pick(g, &[0, 1, 1 << 16]))),
        _ => None,
    }
}

/// A client-chosen CAS (the meta `E` flag), sometimes.
fn new_cas(g: &mut Gen) -> Option<u64> {
    bool::arbitrary(g).then(|| pick(g, &[1, 42 << 16, 1 << 40, u64::MAX]))
}

fn maybe<T>(g: &mut Gen, f: impl FnOnce(&mut Gen) -> T) -> Option<T> {
    bool::arbitrary(g).then(|| f(g))
}

fn memcached(g: &mut Gen) -> (McOp, Option<CasPick>) {
    let key = format!("k{}", key(g)).into_bytes();
    let flags = pick(g, &[0, 1, 0xdead_beef]);
    match u8::arbitrary(g) % 12 {
        0 | 1 => {
            use StoreMode::*;
            let mode = pick(g, &[Set, Add, Replace, Append, Prepend, Cas]);
            let op = McOp::Store(StoreOp {
                mode,
                key,
                flags,
                exptime: exptime(g),
                data: value(g),
                cas: 0,
            });
            (
                op,
                (mode == Cas).then(|| compare(g).unwrap_or(CasPick::Current)),
            )
        }
        2 => (
            McOp::Get {
                key,
                touch: maybe(g, exptime),
            },
            None,
        ),
        3 => (McOp::Delete { key }, None),
        4 => {
            let delta = pick(g, &[1, 5, u64::MAX]);
            let incr = bool::arbitrary(g);
            (McOp::Arith { key, incr, delta }, None)
        }
        5 => (
            McOp::Touch {
                key,
                exptime: exptime(g),
            },
            None,
        ),
        6 | 7 => {
            let op = McOp::MetaGet(MetaGet {
                key,
                value: bool::arbitrary(g),
                touch: maybe(g, exptime),
                unless_cas: None,
                vivify: maybe(g, exptime),
                recache: maybe(g, |g| pick(g, &[1, 30])),
            });
            (op, compare(g))
        }
        8 | 9 => {
            use StoreMode::*;
            let op = McOp::MetaSet(MetaSet {
                key,
                data: value(g),
                mode: pick(g, &[Set, Set, Add, Replace, Append, Prepend]),
                flags,
                exptime: exptime(g),
                compare_cas: None,
                new_cas: new_cas(g),
                vivify: maybe(g, exptime),
                invalidate: bool::arbitrary(g),
            });
            (op, compare(g))
        }
        10 => {
            let op = McOp::MetaDelete(MetaDelete {
                key,
                compare_cas: None,
                new_cas: new_cas(g),
                remove_value: bool::arbitrary(g),
                flags,
                exptime: pick(g, &[0, 0, 2, -1]),
                invalidate: bool::arbitrary(g),
            });
            (op, compare(g))
        }
        _ => {
            let op = McOp::MetaArith(MetaArith {
                incr: bool::arbitrary(g),
                delta: pick(g, &[1, 10, u64::MAX]),
                initial: pick(g, &[0, 9]),
                vivify: maybe(g, exptime),
                touch: maybe(g, exptime),
                compare_cas: None,
                new_cas: new_cas(g),
                value: bool::arbitrary(g),
                ..MetaArith::incr(key)
            });
            (op, compare(g))
        }
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        match u8::arbitrary(g) % 20 {
            0..=7 => Op::Redis(redis(g)),
            8..=15 => {
                let (op, cas) = memcached(g);
                Op::Mc { op, cas }
            }
            16 | 17 => Op::Advance {
                ms: u16::arbitrary(g) % 1500,
            },
            18 => Op::ExpireCycle {
                slots: u8::arbitrary(g) % 8 + 1,
            },
            _ => match u8::arbitrary(g) % 8 {
                0 => Op::FlushAll,
                1 | 2 => Op::Budget { bytes: 0 },
                _ => Op::Budget {
                    bytes: pick(g, &[300, 450, 700, 1_200]),
                },
            },
        }
    }
}

/// The shard-wide setup of one case: the eviction policy used whenever a budget is set.
#[derive(Debug, Clone)]
struct Setup {
    policy: EvictionPolicy,
}

impl Arbitrary for Setup {
    fn arbitrary(g: &mut Gen) -> Setup {
        use EvictionPolicy::*;
        Setup {
            policy: pick(
                g,
                &[
                    NoEviction,
                    AllkeysS3Fifo,
                    VolatileS3Fifo,
                    AllkeysRandom,
                    VolatileRandom,
                    VolatileTtl,
                ],
            ),
        }
    }
}

fn redis_args(args: &[Arg], now: u64) -> Vec<Bytes> {
    args.iter()
        .map(|a| match a {
            Arg::Lit(s) => Bytes::from_static(s.as_bytes()),
            Arg::Key(k) => Bytes::from(format!("k{k}")),
            Arg::Val(v) => Bytes::from(v.clone()),
            Arg::AtMs(d) => Bytes::from((now as i64 + i64::from(*d)).to_string()),
            Arg::AtSecs(d) => Bytes::from((now as i64 / 1000 + i64::from(*d)).to_string()),
        })
        .collect()
}

fn run_redis(shard: &mut Shard, args: &[Arg], now: u64) {
    let args = redis_args(args, now);
    let spec = baton_engine::lookup(&args[0]).expect("a command in the table");
    assert!(spec.handler.is_some(), "{} runs on a shard", spec.name);
    assert!(spec.arity_ok(args.len()), "{} arity", spec.name);
    shard.execute(spec, &args, now);
}

/// Puts the picked CAS into the op's compare field.
fn with_compare(op: &McOp, pick: Option<CasPick>, shard: &Shard, now: u64) -> McOp {
    let mut op = op.clone();
    let Some(pick) = pick else {
        return op;
    };
    let current = shard.store().get(op.key(), now).map_or(0, |e| e.cas());
    let cas = match pick {
        CasPick::Current => current,
        CasPick::Older => current.saturating_sub(1),
        CasPick::Lit(c) => c,
    };
    match &mut op {
        McOp::Store(s) => s.cas = cas,
        McOp::MetaGet(m) => m.unless_cas = Some(cas),
        McOp::MetaSet(m) => m.compare_cas = Some(cas),
        McOp::MetaDelete(m) => m.compare_cas = Some(cas),
        McOp::MetaArith(m) => m.compare_cas = Some(cas),
        _ => {}
    }
    op
}

/// What replication must reproduce of one item: value (a hash's packed pairs), kind
/// (string, packed hash or table), expiry, flags, CAS, item bits.
type Item = (Bytes, String, u64, u32, u64, ItemBits);

/// Every item the shard holds, expired-but-unreclaimed ones included.
fn items(s: &Shard) -> BTreeMap<Bytes, Item> {
    let bytes = Bytes::copy_from_slice;
    s.store()
        .iter()
        .map(|(k, e)| {
            let item = (
                bytes(&e.value_bytes()),
                format!("{:?}", e.kind()),
                e.expire_at(),
                e.flags(),
                e.cas(),
                e.item_bits(),
            );
            (bytes(k), item)
        })
        .collect()
}

fn same(a: &Shard, b: &Shard, who: &str) -> Result<(), String> {
    let (want, got) = (items(a), items(b));
    if want != got {
        return Err(format!("{who} holds {got:?}\n  A holds {want:?}"));
    }
    if (a.len(), a.expires()) != (b.len(), b.expires()) {
        return Err(format!("{who}'s key and expiry counts differ from A's"));
    }
    Ok(())
}

fn check(setup: Setup, ops: Vec<Op>) -> TestResult {
    let mut a = Shard::new(1);
    let fx = Collector::new();
    a.set_effect_sink(Box::new(fx.clone()));
    a.set_policy(setup.policy);
    let (mut b, mut c) = (Shard::new(2), Shard::new(3));
    let mut now = START;
    let mut applied = 0usize;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Redis(args) => run_redis(&mut a, args, now),
            Op::Mc { op, cas } => {
                let op = with_compare(op, *cas, &a, now);
                memcache::execute(&mut a, op, &McCtx::new(now));
            }
            Op::FlushAll => a.flush(),
            Op::Advance { ms } => now += u64::from(*ms),
            Op::ExpireCycle { slots } => {
                a.expire_cycle(now, usize::from(*slots));
            }
            Op::Budget { bytes } => a.set_maxmemory(usize::from(*bytes), now),
        }
        let effects: Vec<Effect> = fx.take();
        applied += effects.len();
        for e in &effects {
            b.apply(e);
            c.apply(e);
            c.apply(e);
        }
        let outcome = same(&a, &b, "B").and_then(|()| same(&a, &c, "C (each effect twice)"));
        if let Err(msg) = outcome {
            let msg = format!("after op #{i} {op:?} at +{}ms: {msg}", now - START);
            return TestResult::error(format!("{msg}\n  effects of that op: {effects:?}"));
        }
    }
    // A sequence that changed nothing proves nothing.
    if applied == 0 {
        return TestResult::discard();
    }
    TestResult::passed()
}

#[test]
fn replay_of_effects_reproduces_the_shard() {
    QuickCheck::new()
        .tests(500)
        .rng(Gen::new(150))
        .quickcheck(check as fn(Setup, Vec<Op>) -> TestResult);
}

/// One session by hand, both protocols on the same keys: Redis writes, memcached's
/// client-chosen CAS, stale items and win tokens, expiry and a flush.
#[test]
fn replay_of_a_mixed_session() {
    use Arg::*;
    let ms = |data: &str| MetaSet {
        key: b"k0".to_vec(),
        data: data.into(),
        mode: StoreMode::Set,
        flags: 5,
        exptime: 0,
        compare_cas: None,
        new_cas: None,
        vivify: None,
        invalidate: false,
    };
    let mg = |key: &str, vivify| MetaGet {
        key: key.into(),
        vivify,
        ..MetaGet::default()
    };
    let mc = |op| Op::Mc { op, cas: None };
    let ops = vec![
        Op::Redis(vec![
            Lit("SET"),
            Key(0),
            Val(b"10".to_vec()),
            Lit("PX"),
            Lit("900"),
        ]),
        Op::Redis(vec![Lit("INCRBY"), Key(0), Lit("5")]),
        Op::Redis(vec![Lit("COPY"), Key(0), Key(1)]),
        mc(McOp::MetaSet(MetaSet {
            new_cas: Some(42 << 16),
            ..ms("v1")
        })),
        Op::Mc {
            op: McOp::MetaSet(MetaSet {
                invalidate: true,
                ..ms("v0")
            }),
            cas: Some(CasPick::Older),
        },
        mc(McOp::MetaGet(mg("k0", None))),
        mc(McOp::Arith {
            key: b"k1".to_vec(),
            incr: false,
            delta: 1,
        }),
        Op::Advance { ms: 1000 },
        Op::ExpireCycle { slots: 8 },
        mc(McOp::MetaGet(mg("k2", Some(30)))),
        Op::Redis(vec![Lit("RENAME"), Key(2), Key(3)]),
        Op::FlushAll,
        Op::Redis(vec![
            Lit("MSET"),
            Key(0),
            Val(b"a".to_vec()),
            Key(1),
            Val(b"b".to_vec()),
        ]),
    ];
    let setup = Setup {
        policy: EvictionPolicy::AllkeysS3Fifo,
    };
    let result = check(setup, ops);
    assert!(!result.is_failure(), "{result:?}");
}
