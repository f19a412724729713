//! After a promotion the old primary's other replicas resume from the promoted one by a
//! partial sync (equal core counts): a replica keeps its own journal byte for byte its
//! primary's (journal records go on, snapshot items and the flush that starts a full
//! sync do not), and the promoted replica keeps the old replication id as its second one.

use baton_engine::command::lookup;
use baton_engine::Shard;
use baton_replication::apply::{apply_op, Applier, Op};
use baton_replication::record::Limits;
use baton_replication::{Feeder, Journal, ReplIds};
use baton_ring::core_of;
use bytes::Bytes;
use quickcheck::{QuickCheck, TestResult};

const A_ID: [u8; 40] = [b'a'; 40];
const B_ID: [u8; 40] = [b'b'; 40];
const NOW: u64 = 1_700_000_000_000;

/// A server's shards, each with its journal.
struct Node {
    shards: Vec<Shard>,
    journals: Vec<Journal>,
}

impl Node {
    fn new(cores: usize, replica: bool) -> Node {
        let journals: Vec<Journal> = (0..cores).map(|_| Journal::new(1 << 20, 0)).collect();
        let shards = (0..cores)
            .map(|id| {
                let mut s = Shard::new(id);
                s.set_replica(replica);
                s.set_effect_sink(Box::new(journals[id].clone()));
                s
            })
            .collect();
        Node { shards, journals }
    }

    fn write(&mut self, i: u16) {
        let key = format!("k{}", i % 40);
        let words: Vec<String> = match i % 5 {
            0 => vec!["DEL".into(), key],
            1 => vec!["APPEND".into(), key, "+".into()],
            _ => vec!["SET".into(), key, format!("v{i}")],
        };
        let args: Vec<Bytes> = words.into_iter().map(Bytes::from).collect();
        let spec = lookup(&args[0]).unwrap();
        let c = core_of(&args[1], self.shards.len());
        self.shards[c].execute(spec, &args, NOW);
    }
}

/// One flow from a primary's shard to a replica node, delivered whole.
struct Link {
    feeder: Feeder,
    applier: Applier,
    wire: Vec<u8>,
}

impl Link {
    fn open(
        from: &Node,
        ids: &ReplIds,
        k: usize,
        to_cores: usize,
        asked: Option<([u8; 40], u64)>,
    ) -> Link {
        let mut wire = Vec::new();
        let feeder = Feeder::start(
            &from.journals[k],
            ids,
            k as u32,
            from.shards.len() as u32,
            asked,
            &mut wire,
        );
        let offset = asked.map_or(0, |(_, o)| o);
        Link {
            feeder,
            applier: Applier::new(to_cores, offset, Limits::default()),
            wire,
        }
    }

    /// Ships what is due and delivers the first `max` bytes of it.
    fn pump(&mut self, from: &Node, k: usize, to: &mut Node, max: usize) {
        let budget = self.wire.len() + (1 << 20);
        self.feeder
            .fill(&from.shards[k], &mut self.wire, budget)
            .expect("the backlog reaches");
        let n = max.min(self.wire.len());
        let bytes: Vec<u8> = self.wire.drain(..n).collect();
        let Node { shards, journals } = to;
        self.applier
            .feed(&bytes, |core, op| {
                if let Op::Restart { offset } = op {
                    journals[core].restart(offset);
                }
                apply_op(&mut shards[core], &op);
            })
            .expect("a well-formed flow");
    }
}

fn items(n: &Node) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    let mut all: Vec<_> = n
        .shards
        .iter()
        .flat_map(|s| {
            s.store()
                .iter()
                .map(|(k, e)| (k.to_vec(), e.value().to_vec(), e.cas()))
        })
        .collect();
    all.sort();
    all
}

fn promote_and_resume(cores: u8, before: Vec<u16>, lag: Vec<u16>, after: Vec<u16>) -> TestResult {
    let p = usize::from(cores % 2 + 1);
    let mut a = Node::new(p, false);
    let mut b = Node::new(p, true);
    let mut c = Node::new(p, true);
    let a_ids = ReplIds::new(A_ID);
    let mut ab: Vec<Link> = (0..p).map(|k| Link::open(&a, &a_ids, k, p, None)).collect();
    let mut ac: Vec<Link> = (0..p).map(|k| Link::open(&a, &a_ids, k, p, None)).collect();
    for i in before {
        a.write(i);
    }
    for (k, (to_b, to_c)) in ab.iter_mut().zip(ac.iter_mut()).enumerate() {
        to_b.pump(&a, k, &mut b, usize::MAX);
        to_c.pump(&a, k, &mut c, usize::MAX);
    }
    // More writes that reach B in full and C only in part; then A dies.
    for (n, i) in lag.iter().enumerate() {
        a.write(*i);
        let k = n % p;
        ab[k].pump(&a, k, &mut b, usize::MAX);
        ac[k].pump(&a, k, &mut c, usize::from(*i % 64));
    }
    for (k, to_b) in ab.iter_mut().enumerate() {
        to_b.pump(&a, k, &mut b, usize::MAX);
    }
    // B is promoted at its offsets; C asks B with A's id and its own offsets.
    let at: Vec<u64> = ab.iter().map(|l| l.applier.offset()).collect();
    let mut b_ids = a_ids.clone();
    b_ids.promote(B_ID, at);
    for s in &mut b.shards {
        s.set_replica(false);
    }
    let mut bc: Vec<Link> = (0..p)
        .map(|k| {
            let asked = Some((A_ID, ac[k].applier.offset()));
            Link::open(&b, &b_ids, k, p, asked)
        })
        .collect();
    if bc.iter().any(|l| l.feeder.is_full()) {
        return TestResult::error("C needed a full sync from the promoted B");
    }
    for i in after {
        b.write(i);
    }
    for (k, link) in bc.iter_mut().enumerate() {
        link.pump(&b, k, &mut c, usize::MAX);
    }
    if items(&b) != items(&c) {
        return TestResult::error(format!(
            "C differs from B\nB {:?}\nC {:?}",
            items(&b),
            items(&c)
        ));
    }
    TestResult::passed()
}

#[test]
fn replicas_of_a_dead_primary_resume_from_the_promoted_one() {
    QuickCheck::new()
        .tests(300)
        .quickcheck(promote_and_resume as fn(u8, Vec<u16>, Vec<u16>, Vec<u16>) -> TestResult);
}
