//! Property tests: every eviction policy against a HashMap model of the live items.
//!
//! Random insert/access/remove/resize/evict sequences over a small id space (so ids are
//! reused and queues fill with tombstones) must keep `bytes()` equal to the sum of the
//! live sizes and `len()` to their count; `evict()` must only return live ids, each at
//! most once per insertion, and `None` only when nothing is live.

use std::collections::HashMap;

use baton_engine::evict::{ExactLru, Policy, Random, S3Fifo, S3FifoConfig};
use quickcheck::{Arbitrary, Gen, QuickCheck};

#[derive(Clone, Debug)]
enum Op {
    Insert {
        id: u32,
        key: u32,
        size: u32,
    },
    Access(u32),
    Remove(u32),
    Resize(u32, u32),
    Evict,
    /// Evict until `bytes() <= budget`, as the store does.
    EvictTo(u64),
}

const IDS: u32 = 96;
const KEYS: u32 = 160;

fn size(g: &mut Gen) -> u32 {
    match u8::arbitrary(g) % 8 {
        0 => 0,
        1 => u32::arbitrary(g) % 100_000,
        _ => u32::arbitrary(g) % 1_000,
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let id = u32::arbitrary(g) % IDS;
        match u8::arbitrary(g) % 16 {
            0..=4 => Op::Insert {
                id,
                key: u32::arbitrary(g) % KEYS,
                size: size(g),
            },
            5..=8 => Op::Access(id),
            9 | 10 => Op::Remove(id),
            11 => Op::Resize(id, size(g)),
            12..=14 => Op::Evict,
            _ => Op::EvictTo(u64::from(u32::arbitrary(g) % 20_000)),
        }
    }
}

#[derive(Clone, Debug)]
struct Ops(Vec<Op>);

impl Arbitrary for Ops {
    fn arbitrary(g: &mut Gen) -> Ops {
        let n = usize::arbitrary(g) % (g.size() * 8 + 1);
        // One sequence in three is DEL/SET churn without eviction pressure, which piles
        // tombstones into the queues and so exercises ring compaction.
        let churn = u8::arbitrary(g) % 3 == 0;
        Ops((0..n)
            .map(|_| match Op::arbitrary(g) {
                Op::Evict | Op::EvictTo(_) | Op::Access(_) if churn => {
                    Op::Remove(u32::arbitrary(g) % IDS)
                }
                op => op,
            })
            .collect())
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Ops>> {
        Box::new(self.0.shrink().map(Ops))
    }
}

fn key_hash(key: u32) -> u64 {
    let mut z = u64::from(key).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `ops` against `p` and the model; returns a description of the first violation.
fn check(p: &mut dyn Policy, ops: &[Op]) -> Result<(), String> {
    let mut live: HashMap<u32, u32> = HashMap::new();
    let mut sum = 0u64; // of the sizes in `live`
    let forget = |live: &mut HashMap<u32, u32>, sum: &mut u64, id: u32| {
        let old = live.remove(&id);
        *sum -= u64::from(old.unwrap_or(0));
        old.is_some()
    };
    for (step, op) in ops.iter().enumerate() {
        let fail = |what: String| Err(format!("step {step} {op:?}: {what}"));
        match *op {
            Op::Insert { id, key, size } => {
                p.insert(id, key_hash(key), size);
                forget(&mut live, &mut sum, id);
                live.insert(id, size);
                sum += u64::from(size);
            }
            Op::Access(id) => p.access(id),
            Op::Remove(id) => {
                p.remove(id);
                forget(&mut live, &mut sum, id);
            }
            Op::Resize(id, size) => {
                p.resize(id, size);
                if let Some(s) = live.get_mut(&id) {
                    sum = sum - u64::from(*s) + u64::from(size);
                    *s = size;
                }
            }
            Op::Evict => match p.evict() {
                Some(v) if !forget(&mut live, &mut sum, v) => {
                    return fail(format!("evicted {v}, which is not live"));
                }
                None if !live.is_empty() => return fail("None with live items".into()),
                _ => {}
            },
            Op::EvictTo(budget) => {
                while p.bytes() > budget {
                    match p.evict() {
                        Some(v) if forget(&mut live, &mut sum, v) => {}
                        other => return fail(format!("evict loop got {other:?}")),
                    }
                }
            }
        }
        if p.bytes() != sum || p.len() != live.len() {
            return fail(format!(
                "bytes {} len {} vs model {sum} {}",
                p.bytes(),
                p.len(),
                live.len()
            ));
        }
        let touched = match *op {
            Op::Insert { id, .. } | Op::Access(id) | Op::Remove(id) | Op::Resize(id, _) => id,
            Op::Evict | Op::EvictTo(_) => step as u32 % IDS,
        };
        let all = step % 61 == 0 || step + 1 == ops.len();
        for id in (0..IDS).filter(|&id| all || id == touched) {
            if p.contains(id) != live.contains_key(&id) {
                return fail(format!("contains({id}) disagrees"));
            }
        }
    }
    let total: u64 = live.values().map(|&s| u64::from(s)).sum();
    if total != sum {
        return Err(format!("model bookkeeping: {total} != {sum}"));
    }
    // Draining returns every live id exactly once.
    while let Some(v) = p.evict() {
        if live.remove(&v).is_none() {
            return Err(format!("drain evicted {v}, not live or twice"));
        }
    }
    if !live.is_empty() || p.bytes() != 0 {
        return Err(format!("drain left {live:?}, bytes {}", p.bytes()));
    }
    Ok(())
}

fn s3fifo_configs() -> Vec<S3FifoConfig> {
    let d = S3FifoConfig::default();
    vec![
        d,
        S3FifoConfig::fixed(),
        S3FifoConfig {
            small_ratio: 0.25,
            promote_at: 2,
            ghost_ratio: 0.5,
            small_min: 0.0,
            small_max: 1.0,
            ..d
        },
        S3FifoConfig {
            small_ratio: 0.0,
            ghost_ratio: 0.0,
            ..S3FifoConfig::fixed()
        },
        S3FifoConfig {
            small_ratio: 1.0,
            promote_at: 3,
            ghost_ratio: 4.0,
            small_max: 1.0,
            ..d
        },
    ]
}

fn qc() -> QuickCheck {
    QuickCheck::new().tests(300).rng(Gen::new(200))
}

#[test]
fn s3fifo_matches_model() {
    fn prop(ops: Ops, budget: u16) -> Result<(), String> {
        for cfg in s3fifo_configs() {
            let mut p = S3Fifo::with_config(u64::from(budget) * 8, cfg);
            check(&mut p, &ops.0).map_err(|e| format!("{cfg:?}: {e}"))?;
        }
        Ok(())
    }
    qc().quickcheck(prop as fn(Ops, u16) -> Result<(), String>);
}

#[test]
fn lru_matches_model() {
    fn prop(ops: Ops) -> Result<(), String> {
        check(&mut ExactLru::new(), &ops.0)
    }
    qc().quickcheck(prop as fn(Ops) -> Result<(), String>);
}

#[test]
fn random_matches_model() {
    fn prop(ops: Ops, seed: u64) -> Result<(), String> {
        check(&mut Random::new(seed), &ops.0)
    }
    qc().quickcheck(prop as fn(Ops, u64) -> Result<(), String>);
}

/// One long deterministic run, long enough for ring growth, compaction, shrinking and
/// ghost resizing to happen many times.
#[test]
fn long_random_run_matches_model() {
    let mut x = 0x1234_5678_9ABC_DEF0u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ops: Vec<Op> = (0..150_000)
        .map(|i| {
            let r = next();
            let id = (r % 4096) as u32;
            // Phases: growth, churn without eviction, eviction-heavy.
            let phase = (i / 20_000) % 3;
            match (r >> 20) % 10 {
                0..=3 => Op::Insert {
                    id,
                    key: (r >> 32) as u32 % 8192,
                    size: (r >> 44) as u32 % 512,
                },
                4..=6 => Op::Access(id),
                7 if phase != 0 => Op::Remove(id),
                8 => Op::Resize(id, (r >> 40) as u32 % 512),
                _ if phase == 2 => Op::EvictTo(200_000 + (r >> 50) % 100_000),
                _ => Op::Access(id ^ 1),
            }
        })
        .collect();
    for cfg in s3fifo_configs() {
        let mut p = S3Fifo::with_config(300_000, cfg);
        check(&mut p, &ops).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
    }
    check(&mut ExactLru::new(), &ops).unwrap();
    check(&mut Random::new(3), &ops).unwrap();
}
