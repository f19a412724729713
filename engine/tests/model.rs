//! Model-based test: random operations drive a real [`Shard`] and a plain `HashMap`
//! model (value + absolute expiry) side by side, with a clock that moves forward by
//! random amounts. Every reply must be identical, and no expired key may ever be
//! returned by GET, EXISTS, PTTL, KEYS or SCAN.

use std::collections::{BTreeSet, HashMap};

use baton_engine::command::COMMANDS;
use baton_engine::{Reply, Shard};
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const START: u64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: u8,
        value: Vec<u8>,
        px: Option<u16>,
    },
    Get {
        key: u8,
    },
    Del {
        key: u8,
    },
    Exists {
        key: u8,
    },
    Expire {
        key: u8,
        secs: i8,
    },
    PExpire {
        key: u8,
        ms: i16,
    },
    Persist {
        key: u8,
    },
    Pttl {
        key: u8,
    },
    Incr {
        key: u8,
    },
    Append {
        key: u8,
        value: Vec<u8>,
    },
    Keys,
    Scan {
        count: u8,
    },
    Advance {
        ms: u16,
    },
}

fn gen_value(g: &mut Gen) -> Vec<u8> {
    let picks: [&[u8]; 7] = [
        b"0",
        b"1",
        b"-5",
        b"abc",
        b"",
        b"9223372036854775806",
        b"007",
    ];
    if bool::arbitrary(g) {
        g.choose(&picks).unwrap().to_vec()
    } else {
        (0..u8::arbitrary(g) % 5)
            .map(|_| *g.choose(b"0123456789x-").unwrap())
            .collect()
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let key = u8::arbitrary(g) % 6;
        match u8::arbitrary(g) % 13 {
            0 | 1 => Op::Set {
                key,
                value: gen_value(g),
                px: bool::arbitrary(g).then(|| u16::arbitrary(g) % 3000 + 1),
            },
            2 | 3 => Op::Get { key },
            4 => Op::Del { key },
            5 => Op::Exists { key },
            6 => Op::Expire {
                key,
                secs: i8::arbitrary(g) % 4,
            },
            7 => Op::PExpire {
                key,
                ms: i16::arbitrary(g) % 2500,
            },
            8 => Op::Persist { key },
            9 => Op::Pttl { key },
            10 => Op::Incr { key },
            11 => Op::Append {
                key,
                value: gen_value(g),
            },
            _ => match u8::arbitrary(g) % 4 {
                0 => Op::Keys,
                1 => Op::Scan {
                    count: u8::arbitrary(g) % 4 + 1,
                },
                _ => Op::Advance {
                    ms: u16::arbitrary(g) % 1500,
                },
            },
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Op>> {
        match self.clone() {
            Op::Set {
                key,
                value,
                px: Some(_),
            } => Box::new(std::iter::once(Op::Set {
                key,
                value,
                px: None,
            })),
            Op::Advance { ms } if ms > 1 => Box::new(std::iter::once(Op::Advance { ms: ms / 2 })),
            _ => Box::new(std::iter::empty()),
        }
    }
}

/// The model: key -> (value, absolute expiry in ms).
#[derive(Default)]
struct Model {
    map: HashMap<Vec<u8>, (Vec<u8>, Option<u64>)>,
}

impl Model {
    /// The live entry, dropping it first if its deadline has passed.
    fn live(&mut self, key: &[u8], now: u64) -> Option<&mut (Vec<u8>, Option<u64>)> {
        if matches!(self.map.get(key), Some((_, Some(at))) if *at <= now) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn live_keys(&self, now: u64) -> BTreeSet<Vec<u8>> {
        self.map
            .iter()
            .filter(|(_, (_, at))| at.is_none_or(|at| at > now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn expire_at(&mut self, key: &[u8], when: i64, now: u64) -> Reply {
        if self.live(key, now).is_none() {
            return Reply::Int(0);
        }
        if when <= now as i64 {
            self.map.remove(key);
        } else {
            self.live(key, now).unwrap().1 = Some(when as u64);
        }
        Reply::Int(1)
    }

    fn apply(&mut self, op: &Op, now: u64) -> Reply {
        match op {
            Op::Set { key, value, px } => {
                self.map
                    .insert(vec![*key], (value.clone(), px.map(|ms| now + ms as u64)));
                Reply::Ok
            }
            Op::Get { key } => match self.live(&[*key], now) {
                Some((v, _)) => Reply::Bulk(Bytes::from(v.clone())),
                None => Reply::Nil,
            },
            Op::Del { key } => {
                let existed = self.live(&[*key], now).is_some();
                self.map.remove(&[*key][..]);
                Reply::Int(existed as i64)
            }
            Op::Exists { key } => Reply::Int(self.live(&[*key], now).is_some() as i64),
            Op::Expire { key, secs } => {
                self.expire_at(&[*key], now as i64 + *secs as i64 * 1000, now)
            }
            Op::PExpire { key, ms } => self.expire_at(&[*key], now as i64 + *ms as i64, now),
            Op::Persist { key } => match self.live(&[*key], now) {
                Some((_, at @ Some(_))) => {
                    *at = None;
                    Reply::Int(1)
                }
                _ => Reply::Int(0),
            },
            Op::Pttl { key } => match self.live(&[*key], now) {
                None => Reply::Int(-2),
                Some((_, None)) => Reply::Int(-1),
                Some((_, Some(at))) => Reply::Int((*at - now) as i64),
            },
            Op::Incr { key } => {
                let entry = self.live(&[*key], now);
                let old = match &entry {
                    None => 0,
                    Some((v, _)) => {
                        // Redis accepts exactly the canonical decimal form of an i64.
                        let text = String::from_utf8_lossy(v);
                        match text.parse::<i64>() {
                            Ok(n) if n.to_string() == text => n,
                            _ => {
                                return Reply::error("ERR value is not an integer or out of range")
                            }
                        }
                    }
                };
                let Some(new) = old.checked_add(1) else {
                    return Reply::error("ERR increment or decrement would overflow");
                };
                let at = entry.and_then(|(_, at)| *at);
                self.map
                    .insert(vec![*key], (new.to_string().into_bytes(), at));
                Reply::Int(new)
            }
            Op::Append { key, value } => {
                let len = match self.live(&[*key], now) {
                    Some((v, _)) => {
                        v.extend_from_slice(value);
                        v.len()
                    }
                    None => {
                        self.map.insert(vec![*key], (value.clone(), None));
                        value.len()
                    }
                };
                Reply::Int(len as i64)
            }
            Op::Keys | Op::Scan { .. } | Op::Advance { .. } => {
                unreachable!("handled by the driver")
            }
        }
    }
}

fn words(op: &Op) -> Vec<Vec<u8>> {
    let k = |key: &u8| vec![*key];
    let w = |s: &str| s.as_bytes().to_vec();
    match op {
        Op::Set {
            key,
            value,
            px: None,
        } => vec![w("SET"), k(key), value.clone()],
        Op::Set {
            key,
            value,
            px: Some(ms),
        } => {
            vec![w("SET"), k(key), value.clone(), w("PX"), w(&ms.to_string())]
        }
        Op::Get { key } => vec![w("GET"), k(key)],
        Op::Del { key } => vec![w("DEL"), k(key)],
        Op::Exists { key } => vec![w("EXISTS"), k(key)],
        Op::Expire { key, secs } => vec![w("EXPIRE"), k(key), w(&secs.to_string())],
        Op::PExpire { key, ms } => vec![w("PEXPIRE"), k(key), w(&ms.to_string())],
        Op::Persist { key } => vec![w("PERSIST"), k(key)],
        Op::Pttl { key } => vec![w("PTTL"), k(key)],
        Op::Incr { key } => vec![w("INCR"), k(key)],
        Op::Append { key, value } => vec![w("APPEND"), k(key), value.clone()],
        Op::Keys => vec![w("KEYS"), w("*")],
        Op::Scan { .. } | Op::Advance { .. } => unreachable!("handled by the driver"),
    }
}

fn exec(shard: &mut Shard, args: Vec<Vec<u8>>, now: u64) -> Reply {
    let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let spec = COMMANDS
        .iter()
        .find(|c| c.name == name)
        .expect("known command");
    assert!(spec.arity_ok(args.len()));
    shard.execute(spec, &args, now)
}

fn key_set(r: Reply) -> Result<BTreeSet<Vec<u8>>, String> {
    let Reply::Array(items) = r else {
        return Err(format!("array expected: {r:?}"));
    };
    let mut set = BTreeSet::new();
    for item in items {
        let Reply::Bulk(k) = item else {
            return Err(format!("bulk expected: {item:?}"));
        };
        if !set.insert(k.to_vec()) {
            return Err(format!("key {k:?} returned twice"));
        }
    }
    Ok(set)
}

/// A full SCAN with COUNT `count`: every live key exactly once.
fn full_scan(shard: &mut Shard, count: u8, now: u64) -> Result<BTreeSet<Vec<u8>>, String> {
    let mut cursor = b"0".to_vec();
    let mut all = BTreeSet::new();
    loop {
        let args = vec![
            b"SCAN".to_vec(),
            cursor,
            b"COUNT".to_vec(),
            count.to_string().into_bytes(),
        ];
        let Reply::Array(mut parts) = exec(shard, args, now) else {
            return Err("scan reply".into());
        };
        let keys = key_set(parts.pop().ok_or("no keys")?)?;
        let Some(Reply::Bulk(next)) = parts.pop() else {
            return Err("no cursor".into());
        };
        for k in keys {
            if !all.insert(k.clone()) {
                return Err(format!("scan returned {k:?} twice"));
            }
        }
        if &next[..] == b"0" {
            return Ok(all);
        }
        cursor = next.to_vec();
    }
}

fn check(ops: Vec<Op>) -> TestResult {
    let mut shard = Shard::new(0);
    let mut model = Model::default();
    let mut now = START;
    for (i, op) in ops.iter().enumerate() {
        let outcome = match op {
            Op::Advance { ms } => {
                now += *ms as u64;
                Ok(())
            }
            Op::Keys => key_set(exec(&mut shard, words(op), now)).and_then(|got| {
                let want = model.live_keys(now);
                (got == want)
                    .then_some(())
                    .ok_or(format!("KEYS {got:?} != {want:?}"))
            }),
            Op::Scan { count } => full_scan(&mut shard, *count, now).and_then(|got| {
                let want = model.live_keys(now);
                (got == want)
                    .then_some(())
                    .ok_or(format!("SCAN {got:?} != {want:?}"))
            }),
            _ => {
                let got = exec(&mut shard, words(op), now);
                let want = model.apply(op, now);
                (got == want)
                    .then_some(())
                    .ok_or(format!("got {got:?}, want {want:?}"))
            }
        };
        if let Err(msg) = outcome {
            return TestResult::error(format!("op #{i} {op:?} at +{}ms: {msg}", now - START));
        }
        // Nothing expired is visible through the shard's own read path either.
        for (k, e) in shard.store().iter() {
            let live = model.live_keys(now).contains(k);
            if !e.is_expired(now) && !live {
                return TestResult::error(format!("shard holds live {k:?} the model lacks"));
            }
        }
        if shard.len() < model.live_keys(now).len() {
            return TestResult::error("DBSIZE below the live key count".to_string());
        }
    }
    TestResult::passed()
}

#[test]
fn shard_matches_hashmap_model() {
    QuickCheck::new()
        .tests(400)
        .rng(Gen::new(120))
        .quickcheck(check as fn(Vec<Op>) -> TestResult);
}

/// Minimised cases kept as regressions.
#[test]
fn regressions() {
    // An expiry of exactly now deletes, and INCR of an expired counter starts from 0.
    let ops = vec![
        Op::Set {
            key: 1,
            value: b"41".to_vec(),
            px: Some(10),
        },
        Op::Advance { ms: 10 },
        Op::Incr { key: 1 },
        Op::Pttl { key: 1 },
        Op::PExpire { key: 1, ms: 0 },
        Op::Exists { key: 1 },
    ];
    assert!(!check(ops).is_failure());
}
