//! Model test of a shard under a memory budget: random writes, reads, deletes, expiries
//! and clock moves against every eviction policy, checking after each step that
//!
//! - a write never returns with the shard over budget while the policy could evict
//!   something (allkeys: any key; volatile: a key with a TTL), and `noeviction` refuses
//!   `denyoom` writes with Redis's OOM error exactly when the shard is over budget;
//! - every key the shard still holds has exactly the value and expiry last written (no
//!   eviction corrupts a key), and no expired key is ever returned;
//! - keys vanish only by DEL, expiry or eviction, and `evicted_keys` counts exactly the
//!   evicted ones; volatile policies never evict a key without a TTL.

use std::collections::HashMap;

use baton_engine::command::COMMANDS;
use baton_engine::evict::EvictionPolicy;
use baton_engine::shard::OOM_ERROR;
use baton_engine::{Reply, Shard};
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const START: u64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Set { key: u8, len: u16, px: Option<u16> },
    Get { key: u8 },
    Del { key: u8 },
    Expire { key: u8, ms: u16 },
    Append { key: u8, len: u8 },
    Advance { ms: u16 },
    ActiveExpire,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let key = u8::arbitrary(g) % 40;
        match u8::arbitrary(g) % 10 {
            0..=3 => Op::Set {
                key,
                len: u16::arbitrary(g) % 400,
                px: bool::arbitrary(g).then(|| u16::arbitrary(g) % 2000 + 1),
            },
            4 | 5 => Op::Get { key },
            6 => Op::Del { key },
            7 => Op::Expire {
                key,
                ms: u16::arbitrary(g) % 2000 + 1,
            },
            8 => Op::Append {
                key,
                len: u8::arbitrary(g),
            },
            _ => {
                if bool::arbitrary(g) {
                    Op::Advance {
                        ms: u16::arbitrary(g) % 700,
                    }
                } else {
                    Op::ActiveExpire
                }
            }
        }
    }
}

fn exec(shard: &mut Shard, args: Vec<Vec<u8>>, now: u64) -> Reply {
    let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let spec = COMMANDS.iter().find(|c| c.name == name).expect("known");
    shard.execute(spec, &args, now)
}

/// key -> (value, absolute expiry or 0)
type Model = HashMap<Vec<u8>, (Vec<u8>, u64)>;

fn value_of(key: u8, len: usize, version: u32) -> Vec<u8> {
    let tag = format!("{key}:{version}:");
    tag.bytes()
        .chain(std::iter::repeat(b'v'))
        .take(len.max(tag.len()))
        .collect()
}

fn check(policy: EvictionPolicy, budget: usize, ops: Vec<Op>) -> TestResult {
    let mut shard = Shard::new(0);
    shard.set_policy(policy);
    shard.set_maxmemory(budget, START);
    let mut model = Model::new();
    let mut now = START;
    let mut version = 0u32;
    let mut evicted_seen = 0u64;
    for (i, op) in ops.iter().enumerate() {
        let fail = |msg: String| TestResult::error(format!("op #{i} {op:?} ({policy:?}): {msg}"));
        let over_before = shard.used_memory() > budget;
        let can_evict = |m: &Model| match policy {
            EvictionPolicy::NoEviction => false,
            p if p.volatile() => m.values().any(|(_, at)| *at != 0),
            _ => !m.is_empty(),
        };
        let evictable_before = can_evict(&model);
        let k = |key: &u8| vec![b'k', *key];
        let write = |args: Vec<Vec<u8>>, shard: &mut Shard| exec(shard, args, now);
        match op {
            Op::Set { key, len, px } => {
                version += 1;
                let v = value_of(*key, *len as usize, version);
                let mut args = vec![b"SET".to_vec(), k(key), v.clone()];
                if let Some(ms) = px {
                    args.extend([b"PX".to_vec(), ms.to_string().into_bytes()]);
                }
                let r = write(args, &mut shard);
                if policy == EvictionPolicy::NoEviction && over_before {
                    if r != Reply::err(OOM_ERROR) {
                        return fail(format!("over budget, noeviction answered {r:?}"));
                    }
                } else if r == Reply::err(OOM_ERROR) {
                    if evictable_before && policy != EvictionPolicy::NoEviction {
                        return fail("OOM although something was evictable".into());
                    }
                } else if r != Reply::Ok {
                    return fail(format!("SET answered {r:?}"));
                } else {
                    let at = px.map_or(0, |ms| now + u64::from(ms));
                    model.insert(k(key), (v, at));
                }
            }
            Op::Append { key, len } => {
                let tail = vec![b'a'; *len as usize];
                let r = write(vec![b"APPEND".to_vec(), k(key), tail.clone()], &mut shard);
                match r {
                    Reply::Int(n) => {
                        let live = model
                            .get(&k(key))
                            .filter(|(_, at)| *at == 0 || *at > now)
                            .cloned();
                        let (mut v, at) = live.unwrap_or_default();
                        v.extend_from_slice(&tail);
                        if n as usize != v.len() {
                            return fail(format!("APPEND length {n} != {}", v.len()));
                        }
                        model.insert(k(key), (v, at));
                    }
                    r if r == Reply::err(OOM_ERROR) => {
                        if policy != EvictionPolicy::NoEviction && evictable_before {
                            return fail("OOM although something was evictable".into());
                        }
                    }
                    r => return fail(format!("APPEND answered {r:?}")),
                }
            }
            Op::Get { key } => {
                let r = exec(&mut shard, vec![b"GET".to_vec(), k(key)], now);
                let want = model.get(&k(key)).filter(|(_, at)| *at == 0 || *at > now);
                match (&r, want) {
                    (Reply::Bulk(got), Some((v, _))) if got[..] == v[..] => {}
                    (Reply::Nil, None) => {}
                    // Evicted earlier: the sync below has dropped it from the model.
                    _ => return fail(format!("GET {r:?}, model {want:?}")),
                }
            }
            Op::Del { key } => {
                exec(&mut shard, vec![b"DEL".to_vec(), k(key)], now);
                model.remove(&k(key));
            }
            Op::Expire { key, ms } => {
                let r = exec(
                    &mut shard,
                    vec![b"PEXPIRE".to_vec(), k(key), ms.to_string().into_bytes()],
                    now,
                );
                if r == Reply::Int(1) {
                    model.get_mut(&k(key)).expect("shard had it").1 = now + u64::from(*ms);
                }
            }
            Op::Advance { ms } => now += u64::from(*ms),
            Op::ActiveExpire => {
                shard.expire_cycle(now, 64);
            }
        }
        // Writes leave the shard within budget whenever something could be evicted.
        let writes = matches!(op, Op::Set { .. } | Op::Append { .. } | Op::Expire { .. });
        if writes
            && policy != EvictionPolicy::NoEviction
            && shard.used_memory() > budget
            && can_evict(&model_after(&shard, &model, now))
        {
            return fail(format!(
                "over budget after a write: {} > {budget}",
                shard.used_memory()
            ));
        }
        // Sync: keys the shard no longer holds were deleted, expired or evicted.
        let mut vanished = 0;
        let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        for key in keys {
            let (v, at) = model[&key].clone();
            let expired = at != 0 && at <= now;
            match shard.store().get(&key, now) {
                Some(e) => {
                    if e.value() != &v[..] || e.expire_at() != at {
                        return fail(format!("key {key:?} corrupted"));
                    }
                }
                None if expired => {
                    model.remove(&key);
                }
                None => {
                    if policy.volatile() && at == 0 {
                        return fail(format!("volatile policy evicted {key:?} without TTL"));
                    }
                    vanished += 1;
                    model.remove(&key);
                }
            }
        }
        let evicted = shard.stats.evicted_keys;
        if evicted - evicted_seen < vanished {
            return fail(format!(
                "{vanished} keys vanished, evicted_keys moved {}",
                evicted - evicted_seen
            ));
        }
        evicted_seen = evicted;
        for (key, e) in shard.store().iter() {
            if !e.is_expired(now) && !model.contains_key(key) {
                return fail(format!("shard holds {key:?} the model lacks"));
            }
        }
    }
    TestResult::passed()
}

/// The model restricted to what the shard still holds (for the evictability check).
fn model_after(shard: &Shard, model: &Model, now: u64) -> Model {
    model
        .iter()
        .filter(|(k, _)| shard.store().get(k, now).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

thread_local! {
    /// The policy and budget the current test thread checks (quickcheck takes plain fns).
    static CASE: std::cell::Cell<(EvictionPolicy, usize)> =
        const { std::cell::Cell::new((EvictionPolicy::NoEviction, 0)) };
}

fn prop(ops: Vec<Op>) -> TestResult {
    let (policy, budget) = CASE.with(|c| c.get());
    check(policy, budget, ops)
}

fn run(policy: EvictionPolicy) {
    for budget in [3_000usize, 8_000] {
        CASE.with(|c| c.set((policy, budget)));
        QuickCheck::new()
            .tests(150)
            .rng(Gen::new(80))
            .quickcheck(prop as fn(Vec<Op>) -> TestResult);
    }
}

#[test]
fn allkeys_s3fifo_stays_within_budget() {
    run(EvictionPolicy::AllkeysS3Fifo);
}

#[test]
fn volatile_s3fifo_evicts_only_ttl_keys() {
    run(EvictionPolicy::VolatileS3Fifo);
}

#[test]
fn allkeys_random_stays_within_budget() {
    run(EvictionPolicy::AllkeysRandom);
}

#[test]
fn volatile_ttl_evicts_only_ttl_keys() {
    run(EvictionPolicy::VolatileTtl);
}

#[test]
fn volatile_random_evicts_only_ttl_keys() {
    run(EvictionPolicy::VolatileRandom);
}

#[test]
fn noeviction_refuses_writes_over_budget() {
    run(EvictionPolicy::NoEviction);
}
