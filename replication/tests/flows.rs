//! Flows end-to-end, without sockets: primary shards take random writes while full syncs
//! walk them, the flows reach the replica cut at random points and interleaved in random
//! order, links break and resume from the backlog, and at the end the replica's shards
//! hold exactly the primary's items (value, expiry, flags, CAS, item bits), whatever the
//! two core counts.

use std::collections::BTreeMap;

use baton_engine::command::lookup;
use baton_engine::entry::ItemBits;
use baton_engine::memcache::{self, McCtx, McOp, StoreMode, StoreOp};
use baton_engine::Shard;
use baton_replication::apply::{apply_op, Applier, Op};
use baton_replication::record::Limits;
use baton_replication::{Feeder, Journal, ReplIds};
use baton_ring::core_of;
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const START: u64 = 1_700_000_000_000;
const REPLID: [u8; 40] = [b'f'; 40];

/// One step of the primary's life.
#[derive(Debug, Clone)]
enum Step {
    /// A Redis command (single key, or FLUSHALL on every shard).
    Redis(Vec<String>),
    /// A memcached `set` with flags and exptime (seconds), or a `touch`.
    McSet {
        key: u8,
        flags: u32,
        ttl: i8,
    },
    McTouch {
        key: u8,
        ttl: i8,
    },
    /// The clock moves and every shard runs a step of active expiry.
    Advance(u16),
    /// One primary shard's walk sends about this many bytes.
    Walk {
        shard: u8,
        bytes: u16,
    },
    /// The replica receives up to this many bytes of one flow.
    Deliver {
        shard: u8,
        bytes: u16,
    },
    /// One flow's link breaks; it resumes from the replica's offset.
    Break {
        shard: u8,
    },
}

fn key(k: u8) -> String {
    format!("key:{k}")
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Step {
        let k = u8::arbitrary(g) % 12;
        let v = format!("v{}", u16::arbitrary(g));
        let ttl = i64::from(u8::arbitrary(g) % 5) * 100 + 1;
        match u8::arbitrary(g) % 20 {
            0..=2 => Step::Redis(vec!["SET".into(), key(k), v]),
            3 => Step::Redis(vec!["SET".into(), key(k), v, "PX".into(), ttl.to_string()]),
            4 => Step::Redis(vec!["DEL".into(), key(k)]),
            5 => Step::Redis(vec!["APPEND".into(), key(k), v]),
            6 => Step::Redis(vec!["INCR".into(), format!("n:{k}")]),
            7 => Step::Redis(vec!["PEXPIRE".into(), key(k), ttl.to_string()]),
            8 => Step::Redis(vec!["PERSIST".into(), key(k)]),
            9 if u8::arbitrary(g) % 4 == 0 => Step::Redis(vec!["FLUSHALL".into()]),
            9 => Step::Redis(vec!["GETDEL".into(), key(k)]),
            10 => Step::McSet {
                key: k,
                flags: u32::arbitrary(g) % 100,
                ttl: i8::arbitrary(g) % 3,
            },
            11 => Step::McTouch {
                key: k,
                ttl: i8::arbitrary(g) % 3,
            },
            12 => Step::Advance(u16::arbitrary(g) % 400),
            13 | 14 => Step::Walk {
                shard: u8::arbitrary(g),
                bytes: u16::arbitrary(g) % 300 + 1,
            },
            15..=18 => Step::Deliver {
                shard: u8::arbitrary(g),
                bytes: u16::arbitrary(g) % 200 + 1,
            },
            _ => Step::Break {
                shard: u8::arbitrary(g),
            },
        }
    }
}

/// One primary shard with what feeds its flow to the replica.
struct PrimaryShard {
    shard: Shard,
    journal: Journal,
    /// The flow's bytes not yet delivered.
    wire: Vec<u8>,
    feeder: Feeder,
}

struct World {
    now: u64,
    primary: Vec<PrimaryShard>,
    replica: Vec<Shard>,
    appliers: Vec<Applier>,
    full_syncs: usize,
}

impl World {
    fn new(p: usize, r: usize, backlog: usize) -> World {
        let ids = ReplIds::new(REPLID);
        let primary: Vec<PrimaryShard> = (0..p)
            .map(|id| {
                let journal = Journal::new(backlog, 0);
                let mut shard = Shard::new(id);
                shard.set_effect_sink(Box::new(journal.clone()));
                let mut wire = Vec::new();
                let feeder = Feeder::start(&journal, &ids, id as u32, p as u32, None, &mut wire);
                PrimaryShard {
                    shard,
                    journal,
                    wire,
                    feeder,
                }
            })
            .collect();
        let replica = (0..r)
            .map(|id| {
                let mut s = Shard::new(id);
                s.set_replica(true);
                s
            })
            .collect();
        let appliers = (0..p)
            .map(|_| Applier::new(r, 0, Limits::default()))
            .collect();
        World {
            now: START,
            primary,
            replica,
            appliers,
            full_syncs: p,
        }
    }

    fn cores(&self) -> usize {
        self.primary.len()
    }

    fn run(&mut self, step: &Step) {
        self.step(step);
        // The feeder puts each write's effects on the wire as they happen.
        for ps in &mut self.primary {
            ps.feeder
                .fill(&ps.shard, &mut ps.wire, 0)
                .expect("the feeder keeps up");
        }
    }

    fn step(&mut self, step: &Step) {
        let p = self.cores();
        match step {
            Step::Redis(words) => {
                let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.clone())).collect();
                let spec = lookup(&args[0]).expect("a known command");
                if words[0] == "FLUSHALL" {
                    for ps in &mut self.primary {
                        ps.shard.execute(spec, &args, self.now);
                    }
                } else {
                    let c = core_of(&args[1], p);
                    self.primary[c].shard.execute(spec, &args, self.now);
                }
            }
            Step::McSet { key: k, flags, ttl } => {
                let key = key(*k).into_bytes();
                let c = core_of(&key, p);
                let op = McOp::Store(StoreOp {
                    mode: StoreMode::Set,
                    key,
                    flags: *flags,
                    exptime: i64::from(*ttl),
                    data: b"mc".to_vec(),
                    cas: 0,
                });
                let ctx = self.ctx();
                memcache::execute(&mut self.primary[c].shard, op, &ctx);
            }
            Step::McTouch { key: k, ttl } => {
                let key = key(*k).into_bytes();
                let c = core_of(&key, p);
                let op = McOp::Touch {
                    key,
                    exptime: i64::from(*ttl),
                };
                let ctx = self.ctx();
                memcache::execute(&mut self.primary[c].shard, op, &ctx);
            }
            Step::Advance(ms) => {
                self.now += u64::from(*ms);
                for ps in &mut self.primary {
                    ps.shard.expire_cycle(self.now, 8);
                }
                for s in &mut self.replica {
                    assert_eq!(
                        s.expire_cycle(self.now, 8),
                        (0, 0),
                        "a replica never expires"
                    );
                }
            }
            Step::Walk { shard, bytes } => {
                let ps = &mut self.primary[*shard as usize % p];
                let budget = ps.wire.len() + usize::from(*bytes);
                ps.feeder
                    .fill(&ps.shard, &mut ps.wire, budget)
                    .expect("the feeder keeps up");
            }
            Step::Deliver { shard, bytes } => self.deliver(*shard as usize % p, *bytes as usize),
            Step::Break { shard } => {
                let k = *shard as usize % p;
                let r = self.replica.len();
                let ps = &mut self.primary[k];
                // Whatever was on the wire is lost with the link. A replica that had not
                // finished loading holds no offset worth resuming from.
                ps.wire.clear();
                let applier = &self.appliers[k];
                let asked = applier
                    .hello()
                    .filter(|_| !applier.loading())
                    .map(|h| (h.replid, applier.offset()));
                let ids = ReplIds::new(REPLID);
                ps.feeder =
                    Feeder::start(&ps.journal, &ids, k as u32, p as u32, asked, &mut ps.wire);
                if ps.feeder.is_full() {
                    self.full_syncs += 1;
                }
                let offset = asked.map_or(0, |(_, o)| o);
                self.appliers[k] = Applier::new(r, offset, Limits::default());
            }
        }
    }

    fn ctx(&self) -> McCtx {
        McCtx {
            now_ms: self.now,
            max_item_size: 1 << 20,
        }
    }

    fn deliver(&mut self, k: usize, max: usize) {
        let ps = &mut self.primary[k];
        ps.feeder
            .fill(&ps.shard, &mut ps.wire, 0)
            .expect("the feeder keeps up");
        let n = max.min(ps.wire.len());
        let bytes: Vec<u8> = ps.wire.drain(..n).collect();
        let replica = &mut self.replica;
        self.appliers[k]
            .feed(&bytes, |core, op: Op| apply_op(&mut replica[core], &op))
            .expect("a well-formed flow");
    }

    /// Lets every walk finish and every flow arrive.
    fn settle(&mut self) {
        for k in 0..self.cores() {
            let ps = &mut self.primary[k];
            while ps.feeder.walking() {
                let budget = ps.wire.len() + (1 << 20);
                ps.feeder
                    .fill(&ps.shard, &mut ps.wire, budget)
                    .expect("the feeder keeps up");
            }
            self.deliver(k, usize::MAX);
            assert!(
                !self.appliers[k].loading(),
                "flow {k} finished its snapshot"
            );
        }
    }
}

type Item = (Vec<u8>, u64, u32, u64, ItemBits);

fn items<'a>(shards: impl Iterator<Item = &'a Shard>) -> BTreeMap<Vec<u8>, Item> {
    let mut all = BTreeMap::new();
    for s in shards {
        for (k, e) in s.store().iter() {
            let old = all.insert(
                k.to_vec(),
                (
                    e.value().to_vec(),
                    e.expire_at(),
                    e.flags(),
                    e.cas(),
                    e.item_bits(),
                ),
            );
            assert!(old.is_none(), "a key lives on one shard only");
        }
    }
    all
}

fn check(primary_cores: u8, replica_cores: u8, steps: Vec<Step>, backlog: usize) -> TestResult {
    let (p, r) = (
        usize::from(primary_cores % 2 + 1),
        usize::from(replica_cores % 2 + 1),
    );
    let mut w = World::new(p, r, backlog);
    for step in &steps {
        w.run(step);
    }
    w.settle();
    let want = items(w.primary.iter().map(|ps| &ps.shard));
    let got = items(w.replica.iter());
    if want != got {
        return TestResult::error(format!(
            "{p} -> {r} cores: replica differs\nprimary {want:?}\nreplica {got:?}"
        ));
    }
    for (core, s) in w.replica.iter().enumerate() {
        for (k, _) in s.store().iter() {
            assert_eq!(core_of(k, r), core, "records go to the replica's own core");
        }
    }
    TestResult::passed()
}

#[test]
fn flows_cut_interleaved_and_resumed_reproduce_the_primary() {
    fn prop(p: u8, r: u8, steps: Vec<Step>) -> TestResult {
        check(p, r, steps, 1 << 20)
    }
    QuickCheck::new()
        .tests(400)
        .quickcheck(prop as fn(u8, u8, Vec<Step>) -> TestResult);
}

#[test]
fn a_backlog_overrun_falls_back_to_a_full_sync_and_still_converges() {
    fn prop(p: u8, r: u8, steps: Vec<Step>) -> TestResult {
        // A backlog of a few bytes: nearly every break needs a full sync.
        check(p, r, steps, 64)
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(u8, u8, Vec<Step>) -> TestResult);
}

#[test]
fn a_break_after_the_snapshot_resumes_without_a_second_full_sync() {
    let mut w = World::new(2, 1, 1 << 20);
    for i in 0..50u8 {
        w.run(&Step::Redis(vec!["SET".into(), key(i), format!("v{i}")]));
    }
    w.settle();
    let before = w.full_syncs;
    for i in 0..20u8 {
        w.run(&Step::Redis(vec!["SET".into(), key(i), "again".into()]));
        w.run(&Step::Deliver {
            shard: i % 2,
            bytes: 7,
        });
    }
    w.run(&Step::Break { shard: 0 });
    w.run(&Step::Break { shard: 1 });
    w.run(&Step::Redis(vec!["DEL".into(), key(3)]));
    w.settle();
    assert_eq!(w.full_syncs, before, "both flows resumed from the backlog");
    assert_eq!(
        items(w.primary.iter().map(|ps| &ps.shard)),
        items(w.replica.iter())
    );
}
