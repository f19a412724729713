//! Model-based test of hashes: random HSET, HSETNX, HDEL, HINCRBY, DEL and SET over a few
//! keys and fields drive a real [`Shard`] and a plain model (a map of field maps, plus
//! whether each hash has left the packed form). Every reply must match the model's, and so
//! must HGETALL (as a set of pairs), HLEN, TYPE and OBJECT ENCODING after every step.
//!
//! The packed-form thresholds are set low (4 entries, 8 bytes) so conversions happen
//! often; this test binary is the only one that changes them.

use std::collections::{BTreeMap, BTreeSet};

use baton_engine::command::COMMANDS;
use baton_engine::{hash, Reply, Shard};
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const MAX_ENTRIES: usize = 4;
const MAX_VALUE: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    HSet { key: u8, pairs: Vec<(u8, Vec<u8>)> },
    HSetNx { key: u8, field: u8, value: Vec<u8> },
    HDel { key: u8, fields: Vec<u8> },
    HIncrBy { key: u8, field: u8, by: i8 },
    Del { key: u8 },
    Set { key: u8 },
}

fn value(g: &mut Gen) -> Vec<u8> {
    let len = [0usize, 1, 3, 8, 9, 20][usize::arbitrary(g) % 6];
    vec![b'a' + u8::arbitrary(g) % 3; len]
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let key = u8::arbitrary(g) % 3;
        let field = |g: &mut Gen| u8::arbitrary(g) % 7;
        match u8::arbitrary(g) % 10 {
            0..=3 => Op::HSet {
                key,
                pairs: (0..1 + usize::arbitrary(g) % 3)
                    .map(|_| (field(g), value(g)))
                    .collect(),
            },
            4 => Op::HSetNx {
                key,
                field: field(g),
                value: value(g),
            },
            5 | 6 => Op::HDel {
                key,
                fields: (0..1 + usize::arbitrary(g) % 3).map(|_| field(g)).collect(),
            },
            7 => Op::HIncrBy {
                key,
                field: field(g),
                by: i8::arbitrary(g),
            },
            8 => Op::Del { key },
            _ => Op::Set { key },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str,
    Hash {
        fields: BTreeMap<Vec<u8>, Vec<u8>>,
        table: bool,
    },
}

fn k(key: u8) -> Vec<u8> {
    format!("k{key}").into_bytes()
}

fn f(field: u8) -> Vec<u8> {
    format!("f{field}").into_bytes()
}

fn run(s: &mut Shard, words: &[Vec<u8>]) -> Reply {
    let args: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w)).collect();
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let spec = COMMANDS.iter().find(|c| c.name == name).expect("known");
    assert!(spec.arity_ok(args.len()), "{name} arity");
    s.execute(spec, &args, 1_000)
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn wrongtype() -> Reply {
    Reply::error(WRONGTYPE)
}

/// Sets pairs on the model's hash, converting as Redis does: a pair too long, or more
/// fields than allowed, makes a table for good.
fn model_set(m: &mut BTreeMap<u8, Val>, key: u8, pairs: &[(Vec<u8>, Vec<u8>)]) -> usize {
    let entry = m.entry(key).or_insert(Val::Hash {
        fields: BTreeMap::new(),
        table: false,
    });
    let Val::Hash { fields, table } = entry else {
        unreachable!("checked by the caller")
    };
    if pairs
        .iter()
        .any(|(f, v)| f.len() > MAX_VALUE || v.len() > MAX_VALUE)
    {
        *table = true;
    }
    let mut added = 0;
    for (f, v) in pairs {
        if fields.insert(f.clone(), v.clone()).is_none() {
            added += 1;
        }
        if fields.len() > MAX_ENTRIES {
            *table = true;
        }
    }
    added
}

fn step(s: &mut Shard, m: &mut BTreeMap<u8, Val>, op: &Op) -> Result<(), String> {
    let is_str = |m: &BTreeMap<u8, Val>, key: u8| m.get(&key) == Some(&Val::Str);
    let (got, want) = match op {
        Op::HSet { key, pairs } => {
            let mut words = vec![b"HSET".to_vec(), k(*key)];
            let pairs: Vec<(Vec<u8>, Vec<u8>)> =
                pairs.iter().map(|(fi, v)| (f(*fi), v.clone())).collect();
            for (fi, v) in &pairs {
                words.extend([fi.clone(), v.clone()]);
            }
            let want = if is_str(m, *key) {
                wrongtype()
            } else {
                Reply::Int(model_set(m, *key, &pairs) as i64)
            };
            (run(s, &words), want)
        }
        Op::HSetNx { key, field, value } => {
            let words = vec![b"HSETNX".to_vec(), k(*key), f(*field), value.clone()];
            let want = match m.get(key) {
                Some(Val::Str) => wrongtype(),
                Some(Val::Hash { fields, .. }) if fields.contains_key(&f(*field)) => Reply::Int(0),
                _ => Reply::Int(model_set(m, *key, &[(f(*field), value.clone())]) as i64),
            };
            (run(s, &words), want)
        }
        Op::HDel { key, fields } => {
            let mut words = vec![b"HDEL".to_vec(), k(*key)];
            words.extend(fields.iter().map(|fi| f(*fi)));
            let want = match m.get_mut(key) {
                Some(Val::Str) => wrongtype(),
                None => Reply::Int(0),
                Some(Val::Hash { fields: map, .. }) => {
                    let n = fields
                        .iter()
                        .filter(|fi| map.remove(&f(**fi)).is_some())
                        .count();
                    if map.is_empty() {
                        m.remove(key);
                    }
                    Reply::Int(n as i64)
                }
            };
            (run(s, &words), want)
        }
        Op::HIncrBy { key, field, by } => {
            let words = vec![
                b"HINCRBY".to_vec(),
                k(*key),
                f(*field),
                by.to_string().into_bytes(),
            ];
            let current = match m.get(key) {
                Some(Val::Str) => Err(wrongtype()),
                Some(Val::Hash { fields, .. }) => Ok(fields.get(&f(*field)).cloned()),
                None => Ok(None),
            };
            let want = match current {
                Err(e) => e,
                Ok(v) => match v.map(|v| String::from_utf8(v).ok()?.parse::<i64>().ok()) {
                    Some(None) => Reply::error("ERR hash value is not an integer"),
                    old => {
                        let new = old.flatten().unwrap_or(0) + i64::from(*by);
                        model_set(m, *key, &[(f(*field), new.to_string().into_bytes())]);
                        Reply::Int(new)
                    }
                },
            };
            (run(s, &words), want)
        }
        Op::Del { key } => {
            let want = Reply::Int(m.remove(key).is_some() as i64);
            (run(s, &[b"DEL".to_vec(), k(*key)]), want)
        }
        Op::Set { key } => {
            m.insert(*key, Val::Str);
            (
                run(s, &[b"SET".to_vec(), k(*key), b"v".to_vec()]),
                Reply::Ok,
            )
        }
    };
    if got != want {
        return Err(format!("{op:?}: got {got:?}, want {want:?}"));
    }
    for key in 0..3u8 {
        let ty = run(s, &[b"TYPE".to_vec(), k(key)]);
        let (want_ty, want_len, want_enc, want_pairs) = match m.get(&key) {
            None => ("none", 0, Reply::Nil, BTreeSet::new()),
            Some(Val::Str) => continue,
            Some(Val::Hash { fields, table }) => (
                "hash",
                fields.len() as i64,
                Reply::bulk(if *table { "hashtable" } else { "listpack" }),
                fields.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            ),
        };
        let len = run(s, &[b"HLEN".to_vec(), k(key)]);
        let enc = run(s, &[b"OBJECT".to_vec(), b"ENCODING".to_vec(), k(key)]);
        let Reply::Map(all) = run(s, &[b"HGETALL".to_vec(), k(key)]) else {
            return Err("HGETALL is not a map".into());
        };
        let pairs: BTreeSet<(Vec<u8>, Vec<u8>)> = all
            .into_iter()
            .map(|(a, b)| match (a, b) {
                (Reply::Bulk(a), Reply::Bulk(b)) => (a.to_vec(), b.to_vec()),
                other => panic!("{other:?}"),
            })
            .collect();
        if (ty.clone(), len.clone(), enc.clone(), &pairs)
            != (
                Reply::Simple(Bytes::from_static(want_ty.as_bytes())),
                Reply::Int(want_len),
                want_enc.clone(),
                &want_pairs,
            )
        {
            return Err(format!(
                "after {op:?}, k{key}: {ty:?} {len:?} {enc:?} {pairs:?}, want {want_ty} {want_len} {want_enc:?} {want_pairs:?}"
            ));
        }
    }
    Ok(())
}

fn check(ops: Vec<Op>) -> TestResult {
    let mut s = Shard::new(0);
    let mut m = BTreeMap::new();
    for op in &ops {
        if let Err(e) = step(&mut s, &mut m, op) {
            return TestResult::error(e);
        }
    }
    TestResult::passed()
}

#[test]
fn hashes_behave_like_the_model() {
    hash::set_max_entries(MAX_ENTRIES);
    hash::set_max_value(MAX_VALUE);
    QuickCheck::new()
        .tests(500)
        .rng(Gen::new(60))
        .quickcheck(check as fn(Vec<Op>) -> TestResult);
}
