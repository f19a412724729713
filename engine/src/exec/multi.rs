//! The shard side of MULTI/EXEC and WATCH: which cores a transaction must lock, the locks
//! themselves, the version of a watched key, and one queued command run inside the locks.
//!
//! EXEC locks every core that a queued command or a watched key touches (all cores for
//! all-core commands such as DBSIZE or FLUSHALL), in ascending order like every cross-core
//! transaction ([`super::txn`]), so EXEC and RENAME across cores never deadlock. While the
//! locks are held, other clients' work for those shards waits, so nobody observes a
//! transaction half-applied. Connections own the queue and the watch list (`baton-net`).
//!
//! A watched key's version is `(present, CAS)`: the CAS of an entry changes on every write
//! and is never reused within a shard, so a write, a delete, a delete-then-recreate, an
//! expiry or a flush all change it.

use std::rc::Rc;

use baton_ring::Router;
use bytes::Bytes;

use super::plan::{merge_replies, open_verdict, plan, plan_here, post_process, redirect, Plan};
use crate::command::{CommandSpec, Route};
use crate::reply::Reply;
use crate::runtime::{Core, Job, Out};

/// A watched key's version: the CAS of its live entry, `None` when it has none.
pub type Version = Option<u64>;

/// The cores one command must hold locked to run as part of a transaction.
pub fn cores_of(router: &Router, spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
    match spec.route {
        Route::Connection(_) => Vec::new(),
        Route::AllCores(_) => (0..router.cores()).collect(),
        Route::Key | Route::MultiKey(_) | Route::Atomic(_) => {
            let owners: Vec<usize> = spec
                .keys_in(args)
                .into_iter()
                .map(|i| router.core_of(&args[i]))
                .collect();
            if owners.is_empty() {
                // OBJECT HELP and friends run on this core.
                vec![router.core()]
            } else {
                owners
            }
        }
    }
}

/// The locks of a running EXEC.
pub struct Held {
    /// The transaction id every job of the EXEC carries.
    pub id: u64,
    /// Sorted, unique.
    cores: Vec<usize>,
}

impl Held {
    /// Locks `cores` (any order, duplicates allowed) in ascending order.
    pub async fn lock(core: &Rc<Core>, mut cores: Vec<usize>) -> Held {
        cores.sort_unstable();
        cores.dedup();
        let held = Held {
            id: core.new_txn(),
            cores,
        };
        held.relock(core).await;
        held
    }

    /// [`Held::lock`] once none of `keys` is fenced by MIGRATE
    /// ([`super::fence::lock_unfenced`]).
    pub async fn lock_unfenced(core: &Rc<Core>, cores: Vec<usize>, keys: &[Bytes]) -> Held {
        let (id, cores) = super::fence::lock_unfenced(core, cores, keys).await;
        Held { id, cores }
    }

    /// Takes the locks again after [`Held::release`].
    pub async fn relock(&self, core: &Rc<Core>) {
        for &c in &self.cores {
            core.call(c, self.id, vec![Job::Lock]).await;
        }
    }

    /// Releases the locks (in descending order); [`Held::relock`] takes them again.
    pub async fn release(&self, core: &Rc<Core>) {
        for &c in self.cores.iter().rev() {
            core.call(c, self.id, vec![Job::Unlock]).await;
        }
    }
}

/// The versions of `keys`, each read on its own core within `txn` (or
/// [`crate::runtime::NO_TXN`]). A key that has expired reads as absent.
pub async fn versions(core: &Rc<Core>, txn: u64, keys: &[Bytes]) -> Vec<Version> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let owner = core.router.core_of(key);
        let k = key.clone();
        let job = Job::Call(Box::new(move |s, now| {
            Out::Value(Box::new(s.lookup(&k, now).map(|e| e.cas())))
        }));
        let v = core
            .call(owner, txn, vec![job])
            .await
            .pop()
            .and_then(Out::into_value::<Version>)
            .flatten();
        out.push(v);
    }
    out
}

/// Runs one queued shard command (any route but [`Route::Connection`]) inside `txn`, which
/// holds the lock of every core [`cores_of`] named for it. Runtime errors are replies.
pub async fn run_queued(
    core: &Rc<Core>,
    txn: u64,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
) -> Reply {
    let planned = match plan(&core.router, spec, args) {
        Plan::Open { spec, args, asking } => {
            if let Some(refused) = open_check(core, txn, spec, &args, asking).await {
                return refused;
            }
            plan_here(&core.router, spec, args)
        }
        planned => planned,
    };
    run_planned(core, txn, planned).await
}

/// Runs a planned command inside `txn` (see [`run_queued`]).
async fn run_planned(core: &Rc<Core>, txn: u64, planned: Plan) -> Reply {
    match planned {
        Plan::Done(reply, _) | Plan::Refused(reply) => reply,
        Plan::Open { .. } => unreachable!("plan_here leaves the cluster's checks to plan"),
        Plan::Run {
            core: c,
            spec,
            args,
            post,
        } => {
            let reply = one(core, c, txn, Job::Cmd(spec, args)).await;
            post_process(post, reply)
        }
        Plan::Split {
            merge,
            parts,
            order,
            ..
        } => {
            let mut replies = Vec::with_capacity(parts.len());
            for (c, job) in parts {
                replies.push(one(core, c, txn, job).await);
            }
            merge_replies(merge, replies, &order)
        }
        Plan::Txn(spec, args) => super::txn::run_within(core, txn, spec, &args).await,
    }
}

/// Runs a [`Plan::Open`] command: its keys' cores locked, the keys this node holds
/// counted, then the command or Redis's refusal (`-ASK`, `-TRYAGAIN`).
pub async fn run_open(
    core: &Rc<Core>,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
    asking: bool,
) -> Reply {
    let keys = super::fence::keys_of(spec, &args);
    let held = Held::lock_unfenced(core, cores_of(&core.router, spec, &args), &keys).await;
    let reply = match open_check(core, held.id, spec, &args, asking).await {
        Some(refused) => refused,
        None => run_planned(core, held.id, plan_here(&core.router, spec, args)).await,
    };
    held.release(core).await;
    reply
}

/// The refusal for a command on an open slot (see [`Plan::Open`]), its keys' presence
/// read within `txn`; `None` when it may run. Checked again against the view of the
/// moment, since the slot may have closed (or moved) while the locks were taken.
async fn open_check(
    core: &Rc<Core>,
    txn: u64,
    spec: &'static CommandSpec,
    args: &[Bytes],
    asking: bool,
) -> Option<Reply> {
    if let Some(refused) = redirect(&core.router, spec, args, asking) {
        return Some(refused);
    }
    let mut keys: Vec<Bytes> = spec
        .keys_in(args)
        .into_iter()
        .map(|i| args[i].clone())
        .collect();
    let first = keys.first()?.clone();
    keys.sort_unstable();
    keys.dedup();
    let held = versions(core, txn, &keys)
        .await
        .iter()
        .filter(|v| v.is_some())
        .count();
    open_verdict(&core.router, &first, asking, held, keys.len() - held)
}

async fn one(core: &Rc<Core>, c: usize, txn: u64, job: Job) -> Reply {
    core.call(c, txn, vec![job])
        .await
        .pop()
        .map_or(Reply::err("ERR internal: no reply"), Out::into_reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup;
    use crate::exec::args;

    #[test]
    fn a_transaction_locks_the_cores_its_commands_touch() {
        let r = Router::standalone(0, 4);
        let set = lookup(b"set").unwrap();
        assert_eq!(
            cores_of(&r, set, &args(&["SET", "k", "v"])),
            vec![r.core_of(b"k")]
        );
        let dbsize = lookup(b"dbsize").unwrap();
        assert_eq!(cores_of(&r, dbsize, &args(&["DBSIZE"])), vec![0, 1, 2, 3]);
        let ping = lookup(b"ping").unwrap();
        assert!(cores_of(&r, ping, &args(&["PING"])).is_empty());
        let mget = lookup(b"mget").unwrap();
        let owners = cores_of(&r, mget, &args(&["MGET", "a", "b"]));
        assert_eq!(owners, vec![r.core_of(b"a"), r.core_of(b"b")]);
    }
}
