//! Cross-core transactions: multi-key commands whose keys live on different cores, made
//! atomic as in Redis. Every shard involved is locked (in ascending core order, so two
//! such commands never deadlock), the command is checked and applied, and the locks are
//! released. While a shard is locked, other work for it waits; nobody observes a
//! half-applied command.
//!
//! Each step runs on its shard through the shard's own write path (`delete`, `restore`,
//! MSET), so what a transaction changes is journaled like any other write.

use std::rc::Rc;

use bytes::Bytes;

use crate::command::{lookup, CommandSpec, Route, Txn};
use crate::commands::keyspace::parse_copy_options;
use crate::commands::lcs::lcs_reply;
use crate::commands::lists;
use crate::entry::Kind;
use crate::reply::{errors, Reply};
use crate::runtime::{Core, Job, Out};
use crate::shard::Shard;
use crate::store::ItemCopy;

/// A transaction over the shards of `cores` (sorted, unique), holding their locks.
struct Locked<'a> {
    core: &'a Rc<Core>,
    id: u64,
    /// The locks this transaction took itself and releases on commit; empty when it runs
    /// inside an outer transaction's locks (a MULTI's EXEC).
    cores: Vec<usize>,
}

impl<'a> Locked<'a> {
    /// Locks `cores` once none of the keys in `args` is fenced by MIGRATE
    /// ([`super::fence::lock_unfenced`]), or, within an outer transaction (`outer`, which
    /// already holds every lock this command needs and checked the fences), takes
    /// nothing and runs with the outer id.
    async fn begin(
        core: &'a Rc<Core>,
        outer: Option<u64>,
        cores: Vec<usize>,
        args: &[Bytes],
    ) -> Locked<'a> {
        if let Some(id) = outer {
            return Locked {
                core,
                id,
                cores: Vec::new(),
            };
        }
        let keys = lookup(&args[0]).map_or_else(Vec::new, |spec| super::fence::keys_of(spec, args));
        let (id, cores) = super::fence::lock_unfenced(core, cores, &keys).await;
        Locked { core, id, cores }
    }

    /// Runs `f` on shard `c` within the transaction and returns what it computed.
    async fn run<T: Send + 'static>(
        &self,
        c: usize,
        f: impl FnOnce(&mut Shard, u64) -> T + Send + 'static,
    ) -> T {
        let job = Job::Call(Box::new(move |s, now| Out::Value(Box::new(f(s, now)))));
        self.core
            .call(c, self.id, vec![job])
            .await
            .pop()
            .and_then(Out::into_value::<T>)
            .expect("a core answers a call with the value it was built to give")
    }

    async fn copy_item(&self, c: usize, key: Bytes) -> Option<ItemCopy> {
        self.run(c, move |s, now| s.copy_item(&key, now)).await
    }

    async fn exists(&self, c: usize, keys: Vec<Bytes>) -> bool {
        self.run(c, move |s, now| keys.iter().any(|k| s.exists(k, now)))
            .await
    }

    async fn commit(self) {
        for &c in self.cores.iter().rev() {
            self.core.call(c, self.id, vec![Job::Unlock]).await;
        }
    }
}

/// Whether two copies hold the same value, type, expiry and flags.
fn same_item(a: &Option<ItemCopy>, b: &Option<ItemCopy>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            (&a.value, a.expire_at, a.flags, a.vtype) == (&b.value, b.expire_at, b.flags, b.vtype)
        }
        _ => false,
    }
}

/// Runs MSETNX, RENAME, RENAMENX, COPY, LCS, SMOVE or a set-algebra command whose keys
/// span several cores.
pub async fn run(core: &Rc<Core>, spec: &'static CommandSpec, args: &[Bytes]) -> Reply {
    apply(core, None, spec, args).await
}

/// Like [`run`], inside the transaction `txn` that already holds the lock of every core
/// the command's keys live on (a MULTI's EXEC, [`super::multi`]).
pub async fn run_within(
    core: &Rc<Core>,
    txn: u64,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Reply {
    apply(core, Some(txn), spec, args).await
}

async fn apply(
    core: &Rc<Core>,
    outer: Option<u64>,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Reply {
    let owner = |k: &Bytes| core.router.core_of(k);
    let Route::Atomic(kind) = spec.route else {
        return Reply::error(format!("ERR '{}' is not a cross-core command", spec.name));
    };
    match kind {
        Txn::MsetNx => {
            if !(args.len() - 1).is_multiple_of(2) {
                return errors::wrong_arity(spec.name);
            }
            let mut per_core: Vec<Vec<Bytes>> = vec![Vec::new(); core.cores];
            for pair in args[1..].chunks(2) {
                per_core[owner(&pair[0])].extend_from_slice(pair);
            }
            let involved: Vec<usize> = (0..core.cores)
                .filter(|&c| !per_core[c].is_empty())
                .collect();
            let txn = Locked::begin(core, outer, involved.clone(), args).await;
            let mut any = false;
            for &c in &involved {
                let keys: Vec<Bytes> = per_core[c].chunks(2).map(|p| p[0].clone()).collect();
                any |= txn.exists(c, keys).await;
            }
            if !any {
                let mset = lookup(b"mset").expect("mset is in the table");
                for &c in &involved {
                    let mut a = vec![Bytes::from_static(b"MSET")];
                    a.extend(std::mem::take(&mut per_core[c]));
                    core.call(c, txn.id, vec![Job::Cmd(mset, a)]).await;
                }
            }
            txn.commit().await;
            Reply::Int(if any { 0 } else { 1 })
        }
        Txn::Rename | Txn::RenameNx | Txn::Copy => {
            let copy = kind == Txn::Copy;
            let replace = if copy {
                match parse_copy_options(args) {
                    Ok(r) => r,
                    Err(e) => return e,
                }
            } else {
                true
            };
            let (src, dst) = (args[1].clone(), args[2].clone());
            let (a, b) = (owner(&src), owner(&dst));
            let txn = Locked::begin(core, outer, vec![a, b], args).await;
            let reply = match txn.copy_item(a, src.clone()).await {
                None if copy => Reply::Int(0),
                None => errors::NO_SUCH_KEY,
                Some(item) => {
                    let blocked = (kind == Txn::RenameNx || (copy && !replace))
                        && txn.exists(b, vec![dst.clone()]).await;
                    if blocked {
                        Reply::Int(0)
                    } else {
                        txn.run(b, move |s, now| {
                            s.delete(&dst, now);
                            s.put_copy(&dst, &item);
                        })
                        .await;
                        if !copy {
                            txn.run(a, move |s, now| s.delete(&src, now)).await;
                        }
                        if kind == Txn::Rename {
                            Reply::Ok
                        } else {
                            Reply::Int(1)
                        }
                    }
                }
            };
            txn.commit().await;
            reply
        }
        Txn::ZsetKeys => {
            // Every key the command names (sources and destination), each once.
            let mut keys: Vec<Bytes> = Vec::new();
            for i in spec.keys_in(args) {
                if !keys.contains(&args[i]) {
                    keys.push(args[i].clone());
                }
            }
            let cores: Vec<usize> = keys.iter().map(owner).collect();
            let txn = Locked::begin(core, outer, cores.clone(), args).await;
            let mut before = Vec::with_capacity(keys.len());
            for (k, &c) in keys.iter().zip(&cores) {
                before.push(txn.copy_item(c, k.clone()).await);
            }
            // The command runs on a scratch shard holding copies of its keys (on the first
            // key's core, for its clock); what it changed there is written back.
            let (owned, names) = (args.to_vec(), keys.clone());
            let first = cores.first().copied().unwrap_or(core.id);
            let (reply, before, after) = txn
                .run(first, move |_, now| {
                    let mut scratch = Shard::new(0);
                    for (k, item) in names.iter().zip(&before) {
                        if let Some(item) = item {
                            scratch.put_copy(k, item);
                        }
                    }
                    let reply = scratch.execute(spec, &owned, now);
                    let after: Vec<Option<ItemCopy>> =
                        names.iter().map(|k| scratch.copy_item(k, now)).collect();
                    (reply, before, after)
                })
                .await;
            for (((k, c), b), a) in keys.into_iter().zip(cores).zip(before).zip(after) {
                if !same_item(&b, &a) {
                    txn.run(c, move |s, now| {
                        s.delete(&k, now);
                        if let Some(a) = a {
                            s.put_copy(&k, &a);
                        }
                    })
                    .await;
                }
            }
            txn.commit().await;
            reply
        }
        Txn::ZrangeStore => {
            let (dst, src) = (args[1].clone(), args[2].clone());
            let (a, b) = (owner(&src), owner(&dst));
            let txn = Locked::begin(core, outer, vec![a, b], args).await;
            let owned: Vec<Bytes> = args.to_vec();
            let selected = txn
                .run(a, move |s, now| {
                    crate::commands::zsets::zrangestore_select(s, &owned, now)
                })
                .await;
            let reply = match selected {
                Err(e) => e,
                Ok(packed) => {
                    txn.run(b, move |s, _| {
                        crate::commands::zsets::zrangestore_put(s, &dst, &packed)
                    })
                    .await
                }
            };
            txn.commit().await;
            reply
        }
        Txn::Lcs => {
            let (k1, k2) = (args[1].clone(), args[2].clone());
            let (a, b) = (owner(&k1), owner(&k2));
            let txn = Locked::begin(core, outer, vec![a, b], args).await;
            let i1 = txn.copy_item(a, k1).await;
            let i2 = txn.copy_item(b, k2).await;
            txn.commit().await;
            let not_string = |i: &Option<ItemCopy>| i.as_ref().is_some_and(|i| i.kind != Kind::Str);
            if not_string(&i1) || not_string(&i2) {
                return Reply::err(crate::commands::lcs::NOT_STRINGS);
            }
            let v1 = i1.map(|s| s.value).unwrap_or_default();
            let v2 = i2.map(|s| s.value).unwrap_or_default();
            lcs_reply(&v1, &v2, args)
        }
        Txn::Lmove => {
            let (from, to) = match lists::move_sides(args) {
                Ok(d) => d,
                Err(e) => return e,
            };
            let (src, dst) = (args[1].clone(), args[2].clone());
            let (a, b) = (owner(&src), owner(&dst));
            let txn = Locked::begin(core, outer, vec![a, b], args).await;
            let reply = lmove_locked(&txn, a, b, src, dst, from, to).await;
            txn.commit().await;
            reply
        }
        Txn::Lmpop => {
            let m = match lists::mpop_args(args) {
                Ok(m) => m,
                Err(e) => return e,
            };
            let keys = &args[m.keys];
            let txn = Locked::begin(core, outer, keys.iter().map(owner).collect(), args).await;
            let mut reply = Reply::NilArray;
            for k in keys {
                let (key, left, count) = (k.clone(), m.left, m.count);
                let step = txn
                    .run(owner(k), move |s, now| {
                        lists::mpop_one(s, &key, left, count, now)
                    })
                    .await;
                match step {
                    Ok(None) => continue,
                    Ok(Some(popped)) => reply = lists::mpop_reply(k.clone(), popped),
                    Err(e) => reply = e,
                }
                break;
            }
            txn.commit().await;
            reply
        }
        Txn::SetAlgebra => set_algebra(core, outer, args).await,
        Txn::Smove => smove(core, outer, args).await,
    }
}

/// LMOVE's steps with `src` on core `a` and `dst` on core `b`, both locked: the checks of
/// both keys first (as Redis: the source's type, then the destination's), then the pop
/// and the push, each through its shard's write path.
async fn lmove_locked(
    txn: &Locked<'_>,
    a: usize,
    b: usize,
    src: Bytes,
    dst: Bytes,
    from: bool,
    to: bool,
) -> Reply {
    let key = src.clone();
    match txn
        .run(a, move |s, now| lists::source_state(s, &key, now))
        .await
    {
        Err(e) => return e,
        Ok(false) => return Reply::Nil,
        Ok(true) => {}
    }
    let key = dst.clone();
    if let Err(e) = txn
        .run(b, move |s, now| lists::check_list_or_absent(s, &key, now))
        .await
    {
        return e;
    }
    let popped = txn
        .run(a, move |s, now| s.list_pop(&src, from, 1, now).pop())
        .await;
    let Some(v) = popped else {
        return Reply::Nil;
    };
    let value = Bytes::from(v);
    let pushed = value.clone();
    txn.run(b, move |s, now| {
        s.list_push(&dst, to, &[&pushed], now);
    })
    .await;
    Reply::Bulk(value)
}

// ---- sets (issue 14) ----------------------------------------------------------------------

/// SINTER, SUNION, SDIFF, their STORE forms and SINTERCARD over keys on several cores:
/// every set is copied under the locks, combined here, and a STORE form's result written
/// on the destination's core through its write path.
async fn set_algebra(core: &Rc<Core>, outer: Option<u64>, args: &[Bytes]) -> Reply {
    use crate::commands::sets::{outcome, parse_algebra, store_result, Copied, Outcome};
    let owner = |k: &Bytes| core.router.core_of(k);
    let alg = match parse_algebra(args) {
        Ok(alg) => alg,
        Err(e) => return e,
    };
    let mut involved: Vec<usize> = alg.keys.iter().map(owner).collect();
    involved.extend(alg.dst.iter().map(owner));
    let txn = Locked::begin(core, outer, involved, args).await;
    let mut copies = Vec::with_capacity(alg.keys.len());
    let mut failed = None;
    for k in &alg.keys {
        match txn.copy_item(owner(k), k.clone()).await.map(Copied::of) {
            None => copies.push(None),
            Some(Ok(c)) => copies.push(Some(c)),
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
        }
    }
    let done = match failed {
        Some(e) => Outcome::Reply(e),
        None => {
            let sets: Vec<_> = copies
                .iter()
                .map(|c| c.as_ref().map(Copied::as_ref))
                .collect();
            outcome(&alg, &sets)
        }
    };
    let reply = match done {
        Outcome::Reply(r) => r,
        Outcome::Store { members, count } => {
            let dst = alg.dst.clone().expect("a store form has a destination");
            txn.run(owner(&dst), move |s, now| {
                store_result(s, &dst, &members, count, now)
            })
            .await
        }
    };
    txn.commit().await;
    reply
}

/// SMOVE source destination member with the two keys on different cores.
async fn smove(core: &Rc<Core>, outer: Option<u64>, args: &[Bytes]) -> Reply {
    let owner = |k: &Bytes| core.router.core_of(k);
    let (src, dst, m) = (args[1].clone(), args[2].clone(), args[3].clone());
    let (a, b) = (owner(&src), owner(&dst));
    let txn = Locked::begin(core, outer, vec![a, b], args).await;
    let (s1, m1) = (src.clone(), m.clone());
    // None: WRONGTYPE; Some(None): no source; Some(Some(has)): whether it holds `m`.
    let has = txn
        .run(a, move |s, now| match s.lookup(&s1, now) {
            None => Some(None),
            Some(e) => e.set().map(|t| Some(t.contains(&m1))),
        })
        .await;
    let d = dst.clone();
    let reply = match has {
        None => errors::WRONGTYPE,
        Some(None) => Reply::Int(0),
        Some(Some(has)) => {
            let dst_ok = txn
                .run(b, move |s, now| {
                    s.lookup(&d, now).is_none_or(|e| e.set().is_some())
                })
                .await;
            if !dst_ok {
                errors::WRONGTYPE
            } else if !has {
                Reply::Int(0)
            } else {
                let m2 = m.clone();
                txn.run(a, move |s, now| s.set_rem(&src, &[&m2], now)).await;
                txn.run(b, move |s, now| s.set_add(&dst, &[&m], now)).await;
                Reply::Int(1)
            }
        }
    };
    txn.commit().await;
    reply
}
