//! Model-based test of sorted sets: random ZADD (with NX/XX/GT/LT/CH), ZINCRBY, ZREM,
//! ZPOPMIN/ZPOPMAX, ZREMRANGEBYSCORE/RANK, DEL and SET over a few keys drive a real
//! [`Shard`] and a plain model (a member -> score map per key, ordered as a
//! `BTreeSet<(score, member)>` when compared, plus whether the set left the packed form).
//! Every reply must match the model's, and after every step so must ZRANGE WITHSCORES,
//! ZCARD, ZRANK of every member, a ZCOUNT, a ZRANGEBYSCORE with LIMIT, TYPE and OBJECT
//! ENCODING.
//!
//! The packed thresholds are set low (16 entries, 8 bytes) so conversions happen often,
//! and bulk adds of up to 300 members make the large form split and merge its chunks;
//! this test binary is the only one that changes them.

use std::collections::{BTreeMap, HashMap};

use baton_engine::command::COMMANDS;
use baton_engine::{zset, Reply, Shard};
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const MAX_ENTRIES: usize = 16;
const MAX_VALUE: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    ZAdd {
        key: u8,
        flag: u8,
        items: Vec<(i8, u16)>,
    },
    Bulk {
        key: u8,
        from: u16,
        n: u16,
    },
    ZIncrBy {
        key: u8,
        by: i8,
        member: u16,
    },
    ZRem {
        key: u8,
        members: Vec<u16>,
    },
    Pop {
        key: u8,
        max: bool,
        count: u8,
    },
    RemScore {
        key: u8,
        min: i8,
        max: i8,
    },
    RemRank {
        key: u8,
        start: i16,
        stop: i16,
    },
    Del {
        key: u8,
    },
    Set {
        key: u8,
    },
}

fn member(g: &mut Gen) -> u16 {
    // Mostly short members; 1000 and up are past MAX_VALUE bytes.
    match u8::arbitrary(g) % 10 {
        0 => 1000 + u16::arbitrary(g) % 3,
        _ => u16::arbitrary(g) % 400,
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let key = u8::arbitrary(g) % 3;
        match u8::arbitrary(g) % 14 {
            0..=3 => Op::ZAdd {
                key,
                flag: u8::arbitrary(g) % 8,
                items: (0..1 + usize::arbitrary(g) % 3)
                    .map(|_| (i8::arbitrary(g) % 20, member(g)))
                    .collect(),
            },
            4 => Op::Bulk {
                key,
                from: u16::arbitrary(g) % 400,
                n: u16::arbitrary(g) % 300,
            },
            5 => Op::ZIncrBy {
                key,
                by: i8::arbitrary(g) % 5,
                member: member(g),
            },
            6 | 7 => Op::ZRem {
                key,
                members: (0..1 + usize::arbitrary(g) % 40)
                    .map(|_| member(g))
                    .collect(),
            },
            8 => Op::Pop {
                key,
                max: bool::arbitrary(g),
                count: u8::arbitrary(g) % 5,
            },
            9 => Op::RemScore {
                key,
                min: i8::arbitrary(g) % 20,
                max: i8::arbitrary(g) % 20,
            },
            10 => Op::RemRank {
                key,
                start: i16::arbitrary(g) % 300,
                stop: i16::arbitrary(g) % 300,
            },
            11 => Op::Del { key },
            12 if u8::arbitrary(g) % 4 == 0 => Op::Set { key },
            _ => Op::Bulk {
                key,
                from: u16::arbitrary(g) % 400,
                n: u16::arbitrary(g) % 40,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str,
    Zset {
        scores: HashMap<Vec<u8>, f64>,
        big: bool,
    },
}

fn k(key: u8) -> Vec<u8> {
    format!("k{key}").into_bytes()
}

fn m(member: u16) -> Vec<u8> {
    if member >= 1000 {
        format!("long-member-{member}").into_bytes()
    } else {
        format!("m{member}").into_bytes()
    }
}

fn sc(x: impl std::fmt::Display) -> Vec<u8> {
    x.to_string().into_bytes()
}

fn run(s: &mut Shard, words: &[Vec<u8>]) -> Reply {
    let args: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w)).collect();
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let spec = COMMANDS.iter().find(|c| c.name == name).expect("known");
    assert!(spec.arity_ok(args.len()), "{name} arity");
    s.execute(spec, &args, 1_000)
}

fn wrongtype() -> Reply {
    Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

/// The model's entries in Redis's order.
fn ordered(scores: &HashMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
    let mut v: Vec<(Vec<u8>, f64)> = scores.iter().map(|(m, s)| (m.clone(), *s)).collect();
    v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
    v
}

/// The model's set at `key`, created empty if absent.
fn zset_of(mm: &mut BTreeMap<u8, Val>, key: u8) -> (&mut HashMap<Vec<u8>, f64>, &mut bool) {
    let e = mm.entry(key).or_insert(Val::Zset {
        scores: HashMap::new(),
        big: false,
    });
    match e {
        Val::Zset { scores, big } => (scores, big),
        Val::Str => unreachable!("checked by the caller"),
    }
}

/// Sets scores, converting as Redis does: a long member or too many makes the large form.
fn model_set(mm: &mut BTreeMap<u8, Val>, key: u8, items: &[(Vec<u8>, f64)]) {
    if items.is_empty() {
        return;
    }
    let (scores, big) = zset_of(mm, key);
    for (mem, s) in items {
        scores.insert(mem.clone(), *s);
        if mem.len() > MAX_VALUE || scores.len() > MAX_ENTRIES {
            *big = true;
        }
    }
}

/// Removes members; drops the key when it empties. Returns how many were present.
fn model_rem(mm: &mut BTreeMap<u8, Val>, key: u8, members: &[Vec<u8>]) -> usize {
    let Some(Val::Zset { scores, .. }) = mm.get_mut(&key) else {
        return 0;
    };
    let n = members
        .iter()
        .filter(|x| scores.remove(*x).is_some())
        .count();
    if scores.is_empty() {
        mm.remove(&key);
    }
    n
}

fn pairs_reply(items: &[(Vec<u8>, f64)]) -> Reply {
    Reply::Pairs(
        items
            .iter()
            .map(|(mem, s)| (Reply::bulk(mem), Reply::Double(*s)))
            .collect(),
    )
}

fn step(s: &mut Shard, mm: &mut BTreeMap<u8, Val>, op: &Op) -> Result<(), String> {
    let is_str = |mm: &BTreeMap<u8, Val>, key: u8| mm.get(&key) == Some(&Val::Str);
    let current = |mm: &BTreeMap<u8, Val>, key: u8| match mm.get(&key) {
        Some(Val::Zset { scores, .. }) => scores.clone(),
        _ => HashMap::new(),
    };
    let (got, want) = match op {
        Op::ZAdd { key, flag, items } => {
            let flags: &[&str] = match flag {
                0 | 1 => &[],
                2 => &["NX"],
                3 => &["XX"],
                4 => &["GT", "CH"],
                5 => &["LT"],
                6 => &["CH"],
                _ => &["XX", "CH"],
            };
            let mut words = vec![b"ZADD".to_vec(), k(*key)];
            words.extend(flags.iter().map(|f| f.as_bytes().to_vec()));
            for (score, mem) in items {
                words.extend([sc(score), m(*mem)]);
            }
            let want = if is_str(mm, *key) {
                wrongtype()
            } else {
                let mut cur = current(mm, *key);
                let (mut added, mut changed) = (0, 0);
                let mut writes = Vec::new();
                for (score, mem) in items {
                    let (new, mem) = (f64::from(*score), m(*mem));
                    match cur.get(&mem).copied() {
                        Some(old) => {
                            let skip = flags.contains(&"NX")
                                || (flags.contains(&"GT") && new <= old)
                                || (flags.contains(&"LT") && new >= old);
                            if !skip && new != old {
                                changed += 1;
                                cur.insert(mem.clone(), new);
                                writes.push((mem, new));
                            }
                        }
                        None if flags.contains(&"XX") => {}
                        None => {
                            added += 1;
                            cur.insert(mem.clone(), new);
                            writes.push((mem, new));
                        }
                    }
                }
                model_set(mm, *key, &writes);
                Reply::Int(if flags.contains(&"CH") {
                    added + changed
                } else {
                    added
                })
            };
            (run(s, &words), want)
        }
        Op::Bulk { key, from, n } => {
            let mut words = vec![b"ZADD".to_vec(), k(*key)];
            let mut items = Vec::new();
            for i in 0..*n {
                let mem = (from + i) % 400;
                let score = f64::from((mem * 7) % 50) / 2.0;
                words.extend([sc(score), m(mem)]);
                items.push((m(mem), score));
            }
            if items.is_empty() {
                return Ok(());
            }
            let want = if is_str(mm, *key) {
                wrongtype()
            } else {
                let cur = current(mm, *key);
                let added = items
                    .iter()
                    .map(|(x, _)| x)
                    .collect::<std::collections::HashSet<_>>()
                    .into_iter()
                    .filter(|x| !cur.contains_key(*x))
                    .count();
                let writes: Vec<_> = items
                    .iter()
                    .filter(|(x, s)| cur.get(x) != Some(s))
                    .cloned()
                    .collect();
                model_set(mm, *key, &writes);
                Reply::Int(added as i64)
            };
            (run(s, &words), want)
        }
        Op::ZIncrBy { key, by, member } => {
            let words = vec![b"ZINCRBY".to_vec(), k(*key), sc(by), m(*member)];
            let want = if is_str(mm, *key) {
                wrongtype()
            } else {
                let new =
                    current(mm, *key).get(&m(*member)).copied().unwrap_or(0.0) + f64::from(*by);
                model_set(mm, *key, &[(m(*member), new)]);
                Reply::Double(new)
            };
            (run(s, &words), want)
        }
        Op::ZRem { key, members } => {
            let mut words = vec![b"ZREM".to_vec(), k(*key)];
            let members: Vec<Vec<u8>> = members.iter().map(|x| m(*x)).collect();
            words.extend(members.iter().cloned());
            let want = if is_str(mm, *key) {
                wrongtype()
            } else {
                let mut uniq = members.clone();
                uniq.sort();
                uniq.dedup();
                Reply::Int(model_rem(mm, *key, &uniq) as i64)
            };
            (run(s, &words), want)
        }
        Op::Pop { key, max, count } => {
            let name: &[u8] = if *max { b"ZPOPMAX" } else { b"ZPOPMIN" };
            let words = vec![name.to_vec(), k(*key), sc(count)];
            let want = if is_str(mm, *key) {
                wrongtype()
            } else {
                let mut all = ordered(&current(mm, *key));
                if *max {
                    all.reverse();
                }
                all.truncate(usize::from(*count));
                let gone: Vec<Vec<u8>> = all.iter().map(|(x, _)| x.clone()).collect();
                model_rem(mm, *key, &gone);
                pairs_reply(&all)
            };
            (run(s, &words), want)
        }
        Op::RemScore { key, min, max } => {
            let words = vec![
                b"ZREMRANGEBYSCORE".to_vec(),
                k(*key),
                sc(min),
                format!("({max}").into_bytes(),
            ];
            let want = if is_str(mm, *key) {
                wrongtype()
            } else {
                let (lo, hi) = (f64::from(*min), f64::from(*max));
                let gone: Vec<Vec<u8>> = current(mm, *key)
                    .into_iter()
                    .filter(|(_, s)| *s >= lo && *s < hi)
                    .map(|(x, _)| x)
                    .collect();
                Reply::Int(model_rem(mm, *key, &gone) as i64)
            };
            (run(s, &words), want)
        }
        Op::RemRank { key, start, stop } => {
            let words = vec![b"ZREMRANGEBYRANK".to_vec(), k(*key), sc(start), sc(stop)];
            let want = if is_str(mm, *key) {
                wrongtype()
            } else {
                let all = ordered(&current(mm, *key));
                let len = all.len() as i64;
                let norm = |x: i16| {
                    if x < 0 {
                        len + i64::from(x)
                    } else {
                        i64::from(x)
                    }
                };
                let (a, b) = (norm(*start).max(0), norm(*stop).min(len - 1));
                let gone: Vec<Vec<u8>> = if a > b || a >= len {
                    Vec::new()
                } else {
                    all[a as usize..=b as usize]
                        .iter()
                        .map(|(x, _)| x.clone())
                        .collect()
                };
                Reply::Int(model_rem(mm, *key, &gone) as i64)
            };
            (run(s, &words), want)
        }
        Op::Del { key } => {
            let want = Reply::Int(mm.remove(key).is_some() as i64);
            (run(s, &[b"DEL".to_vec(), k(*key)]), want)
        }
        Op::Set { key } => {
            mm.insert(*key, Val::Str);
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
        let Some(Val::Zset { scores, big }) = mm.get(&key) else {
            continue;
        };
        let all = ordered(scores);
        let got = run(
            s,
            &[
                b"ZRANGE".to_vec(),
                k(key),
                b"0".to_vec(),
                b"-1".to_vec(),
                b"WITHSCORES".to_vec(),
            ],
        );
        if got != pairs_reply(&all) {
            return Err(format!("after {op:?}, k{key} holds {got:?}, want {all:?}"));
        }
        let enc = run(s, &[b"OBJECT".to_vec(), b"ENCODING".to_vec(), k(key)]);
        let want_enc = Reply::bulk(if *big { "skiplist" } else { "listpack" });
        let card = run(s, &[b"ZCARD".to_vec(), k(key)]);
        if enc != want_enc || card != Reply::Int(all.len() as i64) {
            return Err(format!(
                "after {op:?}, k{key}: {enc:?} {card:?}, want {want_enc:?} {}",
                all.len()
            ));
        }
        for (i, (mem, _)) in all.iter().enumerate().step_by(7) {
            let r = run(s, &[b"ZRANK".to_vec(), k(key), mem.clone()]);
            if r != Reply::Int(i as i64) {
                return Err(format!(
                    "after {op:?}, ZRANK k{key} {mem:?} = {r:?}, want {i}"
                ));
            }
        }
        let count = all.iter().filter(|(_, s)| *s > 3.0 && *s <= 12.5).count();
        let got = run(
            s,
            &[b"ZCOUNT".to_vec(), k(key), b"(3".to_vec(), b"12.5".to_vec()],
        );
        if got != Reply::Int(count as i64) {
            return Err(format!(
                "after {op:?}, ZCOUNT k{key} = {got:?}, want {count}"
            ));
        }
        let window: Vec<(Vec<u8>, f64)> = all
            .iter()
            .filter(|(_, s)| *s >= 2.0)
            .skip(3)
            .take(5)
            .cloned()
            .collect();
        let got = run(
            s,
            &[
                b"ZRANGEBYSCORE".to_vec(),
                k(key),
                b"2".to_vec(),
                b"+inf".to_vec(),
                b"WITHSCORES".to_vec(),
                b"LIMIT".to_vec(),
                b"3".to_vec(),
                b"5".to_vec(),
            ],
        );
        if got != pairs_reply(&window) {
            return Err(format!(
                "after {op:?}, ZRANGEBYSCORE k{key} = {got:?}, want {window:?}"
            ));
        }
    }
    Ok(())
}

fn check(ops: Vec<Op>) -> TestResult {
    let mut s = Shard::new(0);
    let mut mm = BTreeMap::new();
    for op in &ops {
        if let Err(e) = step(&mut s, &mut mm, op) {
            return TestResult::error(e);
        }
    }
    TestResult::passed()
}

#[test]
fn sorted_sets_behave_like_the_model() {
    zset::set_max_entries(MAX_ENTRIES);
    zset::set_max_value(MAX_VALUE);
    QuickCheck::new()
        .tests(300)
        .rng(Gen::new(40))
        .quickcheck(check as fn(Vec<Op>) -> TestResult);
}
