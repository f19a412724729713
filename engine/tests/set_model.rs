//! Model-based test of sets: random SADD, SREM, SPOP, SMOVE, the STORE forms, DEL and SET
//! over a few keys drive a real [`Shard`] and a plain model (a map of member sets, plus
//! whether each set is still an intset). Every reply must match the model's (SPOP's picks
//! must be members, as many as asked, and are then removed from the model), and so must
//! SMEMBERS (as a set), SCARD, TYPE and OBJECT ENCODING after every step.
//!
//! `set-max-intset-entries` is set low (4) so conversions happen often, and some members
//! are longer than the packed form holds (70 bytes), so sets also go from packed to table;
//! this test binary is the only one that changes the threshold.

use std::collections::{BTreeMap, BTreeSet};

use baton_engine::command::COMMANDS;
use baton_engine::{set, Reply, Shard};
use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const MAX_INTSET: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    SAdd { key: u8, members: Vec<u8> },
    SRem { key: u8, members: Vec<u8> },
    SPop { key: u8, count: Option<u8> },
    SMove { src: u8, dst: u8, member: u8 },
    Store { op: u8, dst: u8, a: u8, b: u8 },
    Del { key: u8 },
    Set { key: u8 },
}

/// Member names: integers (some not canonical), short strings, one too long to pack.
fn member(i: u8) -> Vec<u8> {
    match i % 12 {
        0..=5 => (i % 12).to_string().into_bytes(),
        6 => b"-1".to_vec(),
        7 => b"007".to_vec(),
        8 => b"a".to_vec(),
        9 => b"b".to_vec(),
        10 => vec![b'x'; 70],
        _ => b"9223372036854775808".to_vec(),
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let key = u8::arbitrary(g) % 3;
        let members = |g: &mut Gen| -> Vec<u8> {
            (0..1 + usize::arbitrary(g) % 4)
                .map(|_| u8::arbitrary(g) % 12)
                .collect()
        };
        match u8::arbitrary(g) % 12 {
            0..=3 => Op::SAdd {
                key,
                members: members(g),
            },
            4 | 5 => Op::SRem {
                key,
                members: members(g),
            },
            6 => Op::SPop {
                key,
                count: bool::arbitrary(g).then(|| u8::arbitrary(g) % 6),
            },
            7 => Op::SMove {
                src: key,
                dst: u8::arbitrary(g) % 3,
                member: u8::arbitrary(g) % 12,
            },
            8 | 9 => Op::Store {
                op: u8::arbitrary(g) % 3,
                dst: key,
                a: u8::arbitrary(g) % 3,
                b: u8::arbitrary(g) % 3,
            },
            10 => Op::Del { key },
            _ => Op::Set { key },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str,
    Set {
        members: BTreeSet<Vec<u8>>,
        intset: bool,
    },
}

fn k(key: u8) -> Vec<u8> {
    format!("k{key}").into_bytes()
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

fn is_int(m: &[u8]) -> bool {
    baton_engine::commands::parse_i64(m).is_some()
}

fn all_ints<'a>(mut it: impl Iterator<Item = &'a Vec<u8>>) -> bool {
    it.all(|m| is_int(m))
}

/// Adds to the model's set, converting as Redis 7.0 does: a non-integer or one member
/// too many makes a hashtable for good. Returns how many were new.
fn model_add(m: &mut BTreeMap<u8, Val>, key: u8, new: &[Vec<u8>]) -> usize {
    let entry = m.entry(key).or_insert(Val::Set {
        members: BTreeSet::new(),
        intset: true,
    });
    let Val::Set { members, intset } = entry else {
        unreachable!("checked by the caller")
    };
    let added = new.iter().filter(|x| members.insert((*x).clone())).count();
    if !all_ints(members.iter()) || members.len() > MAX_INTSET {
        *intset = false;
    }
    added
}

fn members_of(r: &Reply) -> Option<BTreeSet<Vec<u8>>> {
    let (Reply::Set(v) | Reply::Array(v)) = r else {
        return None;
    };
    v.iter()
        .map(|m| match m {
            Reply::Bulk(b) => Some(b.to_vec()),
            _ => None,
        })
        .collect()
}

fn step(s: &mut Shard, m: &mut BTreeMap<u8, Val>, op: &Op) -> Result<(), String> {
    let set_of = |m: &BTreeMap<u8, Val>, key: u8| -> Result<Option<BTreeSet<Vec<u8>>>, Reply> {
        match m.get(&key) {
            None => Ok(None),
            Some(Val::Str) => Err(wrongtype()),
            Some(Val::Set { members, .. }) => Ok(Some(members.clone())),
        }
    };
    let (got, want) = match op {
        Op::SAdd { key, members } => {
            let ms: Vec<Vec<u8>> = members.iter().map(|&i| member(i)).collect();
            let mut words = vec![b"SADD".to_vec(), k(*key)];
            words.extend(ms.iter().cloned());
            let want = match set_of(m, *key) {
                Err(e) => e,
                Ok(_) => Reply::Int(model_add(m, *key, &ms) as i64),
            };
            (run(s, &words), want)
        }
        Op::SRem { key, members } => {
            let ms: Vec<Vec<u8>> = members.iter().map(|&i| member(i)).collect();
            let mut words = vec![b"SREM".to_vec(), k(*key)];
            words.extend(ms.iter().cloned());
            let want = match m.get_mut(key) {
                Some(Val::Str) => wrongtype(),
                None => Reply::Int(0),
                Some(Val::Set { members, .. }) => {
                    let n = ms.iter().filter(|x| members.remove(*x)).count();
                    if members.is_empty() {
                        m.remove(key);
                    }
                    Reply::Int(n as i64)
                }
            };
            (run(s, &words), want)
        }
        Op::SPop { key, count } => {
            let mut words = vec![b"SPOP".to_vec(), k(*key)];
            words.extend(count.map(|c| c.to_string().into_bytes()));
            let got = run(s, &words);
            match m.get_mut(key) {
                Some(Val::Str) => (got, wrongtype()),
                None => {
                    let want = if count.is_some() {
                        Reply::Set(vec![])
                    } else {
                        Reply::Nil
                    };
                    (got, want)
                }
                Some(Val::Set { members, .. }) => {
                    let picked = match (&got, count) {
                        (Reply::Bulk(b), None) => BTreeSet::from([b.to_vec()]),
                        (Reply::Set(_), Some(_)) => members_of(&got).unwrap_or_default(),
                        _ => return Err(format!("{op:?}: got {got:?}")),
                    };
                    let want_n = count.map_or(1, |c| usize::from(c).min(members.len()));
                    if picked.len() != want_n || !picked.is_subset(members) {
                        return Err(format!("{op:?}: got {got:?} from {members:?}"));
                    }
                    for p in &picked {
                        members.remove(p);
                    }
                    if members.is_empty() {
                        m.remove(key);
                    }
                    (got.clone(), got)
                }
            }
        }
        Op::SMove {
            src,
            dst,
            member: i,
        } => {
            let x = member(*i);
            let words = vec![b"SMOVE".to_vec(), k(*src), k(*dst), x.clone()];
            let want = match (set_of(m, *src), set_of(m, *dst)) {
                (Ok(None), _) => Reply::Int(0),
                (Err(e), _) | (_, Err(e)) => e,
                (Ok(Some(ms)), _) if !ms.contains(&x) => Reply::Int(0),
                _ if src == dst => Reply::Int(1),
                _ => {
                    if let Some(Val::Set { members, .. }) = m.get_mut(src) {
                        members.remove(&x);
                        if members.is_empty() {
                            m.remove(src);
                        }
                    }
                    model_add(m, *dst, &[x]);
                    Reply::Int(1)
                }
            };
            (run(s, &words), want)
        }
        Op::Store { op: o, dst, a, b } => {
            let name = ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"][usize::from(*o)];
            let words = vec![name.as_bytes().to_vec(), k(*dst), k(*a), k(*b)];
            let want = match (set_of(m, *a), set_of(m, *b)) {
                (Err(e), _) | (_, Err(e)) => e,
                (Ok(sa), Ok(sb)) => {
                    let (sa, sb) = (sa.unwrap_or_default(), sb.unwrap_or_default());
                    let result: BTreeSet<Vec<u8>> = match o {
                        0 => sa.intersection(&sb).cloned().collect(),
                        1 => sa.union(&sb).cloned().collect(),
                        _ => sa.difference(&sb).cloned().collect(),
                    };
                    let n = result.len();
                    if n == 0 {
                        m.remove(dst);
                    } else {
                        let intset = all_ints(result.iter()) && n <= MAX_INTSET;
                        m.insert(
                            *dst,
                            Val::Set {
                                members: result,
                                intset,
                            },
                        );
                    }
                    Reply::Int(n as i64)
                }
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
        let (want_ty, want_enc, want_members) = match m.get(&key) {
            None => ("none", Reply::Nil, BTreeSet::new()),
            Some(Val::Str) => continue,
            Some(Val::Set { members, intset }) => (
                "set",
                Reply::bulk(if *intset { "intset" } else { "hashtable" }),
                members.clone(),
            ),
        };
        let ty = run(s, &[b"TYPE".to_vec(), k(key)]);
        let card = run(s, &[b"SCARD".to_vec(), k(key)]);
        let enc = run(s, &[b"OBJECT".to_vec(), b"ENCODING".to_vec(), k(key)]);
        let all = members_of(&run(s, &[b"SMEMBERS".to_vec(), k(key)]));
        let want = (
            Reply::Simple(Bytes::from_static(want_ty.as_bytes())),
            Reply::Int(want_members.len() as i64),
            want_enc,
            Some(want_members),
        );
        if (ty.clone(), card.clone(), enc.clone(), all.clone()) != want {
            return Err(format!(
                "after {op:?}, k{key}: {ty:?} {card:?} {enc:?} {all:?}, want {want:?}"
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
fn sets_behave_like_the_model() {
    set::set_max_intset_entries(MAX_INTSET);
    QuickCheck::new()
        .tests(500)
        .rng(Gen::new(60))
        .quickcheck(check as fn(Vec<Op>) -> TestResult);
}

/// A set grown past the packed form's 128 members and shrunk again answers the same as
/// the model at every size.
#[test]
fn large_sets_cross_the_packed_limit_both_ways() {
    let mut s = Shard::new(0);
    let mut m = BTreeMap::new();
    let names: Vec<Vec<u8>> = (0..300).map(|i| format!("m{i}").into_bytes()).collect();
    for chunk in names.chunks(7) {
        let mut words = vec![b"SADD".to_vec(), k(0)];
        words.extend(chunk.iter().cloned());
        let want = model_add(&mut m, 0, chunk);
        assert_eq!(run(&mut s, &words), Reply::Int(want as i64));
    }
    for chunk in names.chunks(11) {
        let mut words = vec![b"SREM".to_vec(), k(0)];
        words.extend(chunk.iter().cloned());
        assert_eq!(run(&mut s, &words), Reply::Int(chunk.len() as i64));
        let Some(Val::Set { members, .. }) = m.get_mut(&0) else {
            panic!()
        };
        for x in chunk {
            members.remove(x);
        }
        let got = members_of(&run(&mut s, &[b"SMEMBERS".to_vec(), k(0)])).unwrap();
        assert_eq!(&got, members);
    }
    assert_eq!(run(&mut s, &[b"EXISTS".to_vec(), k(0)]), Reply::Int(0));
}
