//! MULTI / EXEC / DISCARD / WATCH / UNWATCH, with Redis 7's semantics.
//!
//! The queue and the watch list are the connection's ([`crate::session::MultiQueue`],
//! `Session::watched`). While a connection is inside MULTI, every command but EXEC,
//! DISCARD, MULTI, WATCH and QUIT is checked (unknown command, arity, NOAUTH: the checks
//! `dispatch` makes) and queued with `+QUEUED`; one that fails its check is answered with
//! its error and marks the transaction, which EXEC then refuses with EXECABORT.
//!
//! EXEC locks every core the queued commands and the watched keys touch
//! ([`baton_engine::exec::multi`]), compares each watched key's version (present, CAS)
//! with the one WATCH saw, runs the commands in order inside the locks (connection
//! commands too, at their place), and unlocks. A connection command that must ask every
//! core (INFO, CONFIG SET, CLIENT LIST/KILL, SLOWLOG) would wait on the held locks, so the
//! locks are released around it and taken again after: the key commands before it and
//! after it are each atomic, but not together. redis-sentinel's failover transaction has
//! no key commands, so nothing is lost for it.

use std::rc::Rc;

use baton_engine::clock;
use baton_engine::command::{command_index, lookup, Conn, Route};
use baton_engine::exec;
use baton_engine::exec::multi::{self as shard_multi, Held};
use baton_engine::reply::Reply;
use baton_engine::runtime::NO_TXN;
use bytes::Bytes;

use crate::admin;
use crate::client::Client;
use crate::netcore::NetCore;
use crate::session::MultiQueue;

/// EXEC's answer to a transaction that had a queuing error.
const EXECABORT: Reply = Reply::err("EXECABORT Transaction discarded because of previous errors.");

/// What must run on the slow path, with the cores.
pub(crate) enum Action {
    /// EXEC of these queued commands.
    Exec(Vec<Vec<Bytes>>),
    /// WATCH these keys.
    Watch(Vec<Bytes>),
}

impl Action {
    /// EXEC is left out of the slow log, as in Redis (`skip_slowlog`): the commands it ran
    /// are counted and logged one by one.
    pub(crate) fn skips_slowlog(&self) -> bool {
        matches!(self, Action::Exec(_))
    }
}

/// How the transaction commands, and every command while queuing, go on.
pub(crate) enum Hook {
    /// MULTI, DISCARD, UNWATCH, or EXEC or WATCH refused: answered at once.
    Reply(Reply),
    /// Queued (`+QUEUED`): counted in the statistics when EXEC runs it.
    Queued,
    /// Needs other cores: run [`run`].
    Run(Action),
}

/// Marks the connection's transaction, if it is queuing one, as failed: a command was
/// refused by the checks before it could be queued.
pub(crate) fn refused(client: &Client) {
    if let Some(q) = client.borrow_mut().multi.as_mut() {
        q.dirty = true;
    }
}

/// Takes a checked command first: MULTI and its family, and any command while queuing.
/// `None` for a command outside a transaction that is not one of MULTI's.
pub(crate) fn intercept(client: &Client, conn: Option<Conn>, args: &[Bytes]) -> Option<Hook> {
    let mut st = client.borrow_mut();
    let queuing = st.multi.is_some();
    let reply = match conn {
        Some(Conn::Multi) if queuing => Reply::err("ERR MULTI calls can not be nested"),
        Some(Conn::Multi) => {
            st.multi = Some(MultiQueue::default());
            Reply::Ok
        }
        Some(Conn::Exec) => match st.multi.take() {
            None => Reply::err("ERR EXEC without MULTI"),
            Some(q) if q.dirty => {
                st.watched.clear();
                EXECABORT
            }
            Some(q) => return Some(Hook::Run(Action::Exec(q.commands))),
        },
        Some(Conn::Discard) => match st.multi.take() {
            None => Reply::err("ERR DISCARD without MULTI"),
            Some(_) => {
                st.watched.clear();
                Reply::Ok
            }
        },
        Some(Conn::Watch) if queuing => Reply::err("ERR WATCH inside MULTI is not allowed"),
        // SHUTDOWN is not allowed inside a transaction (Redis's no-multi flag): refused,
        // and the transaction with it.
        Some(Conn::Shutdown) if queuing => {
            if let Some(q) = st.multi.as_mut() {
                q.dirty = true;
            }
            Reply::err("ERR Command not allowed inside a transaction")
        }
        Some(Conn::Watch) => return Some(Hook::Run(Action::Watch(args[1..].to_vec()))),
        Some(Conn::Unwatch) if !queuing => {
            st.watched.clear();
            Reply::Ok
        }
        // QUIT runs at once and closes the connection, which drops the queue; RESET runs
        // at once and drops it too.
        Some(Conn::Quit | Conn::Reset) => return None,
        _ if queuing => {
            if let Some(q) = st.multi.as_mut() {
                q.commands.push(args.to_vec());
            }
            return Some(Hook::Queued);
        }
        _ => return None,
    };
    Some(Hook::Reply(reply))
}

/// Runs what [`intercept`] could not answer at once.
pub(crate) async fn run(nc: &Rc<NetCore>, client: &Client, action: Action) -> Reply {
    match action {
        Action::Watch(keys) => {
            let versions = shard_multi::versions(&nc.core, NO_TXN, &keys).await;
            let mut st = client.borrow_mut();
            for (key, version) in keys.into_iter().zip(versions) {
                // Like Redis, a key watched twice keeps its first version.
                if !st.watched.iter().any(|(k, _)| *k == key) {
                    st.watched.push((key, version));
                }
            }
            Reply::Ok
        }
        Action::Exec(commands) => exec(nc, client, commands).await,
    }
}

/// EXEC: locks, checks the watched keys, runs the queue in order, unlocks.
async fn exec(nc: &Rc<NetCore>, client: &Client, commands: Vec<Vec<Bytes>>) -> Reply {
    let core = &nc.core;
    let watched = std::mem::take(&mut client.borrow_mut().watched);
    let mut cores: Vec<usize> = watched
        .iter()
        .map(|(k, _)| core.router.core_of(k))
        .collect();
    for args in &commands {
        if let Some(spec) = lookup(&args[0]) {
            cores.extend(shard_multi::cores_of(&core.router, spec, args));
            if spec.route == Route::Connection(Conn::Blocking) {
                cores.extend(baton_engine::exec::blocking::cores_in_multi(core, args));
            }
        }
    }
    // MIGRATE's fences are checked under the locks: a key being moved waits for it.
    let mut keys: Vec<Bytes> = watched.iter().map(|(k, _)| k.clone()).collect();
    for args in &commands {
        if let Some(spec) = lookup(&args[0]) {
            keys.extend(exec::fence::keys_of(spec, args));
        }
    }
    let held = Held::lock_unfenced(core, cores, &keys).await;
    if !watched.is_empty() {
        let keys: Vec<Bytes> = watched.iter().map(|(k, _)| k.clone()).collect();
        let now = shard_multi::versions(core, held.id, &keys).await;
        if watched.iter().map(|(_, v)| *v).ne(now) {
            held.release(core).await;
            return Reply::NilArray;
        }
    }
    let mut replies = Vec::with_capacity(commands.len());
    for args in commands {
        // Every queued command was looked up when it was queued.
        let Some(spec) = lookup(&args[0]) else {
            replies.push(baton_engine::reply::errors::unknown_command(
                &args[0],
                &args[1..],
            ));
            continue;
        };
        let row = command_index(spec);
        let start = clock::ticks();
        let reply = match spec.route {
            Route::Connection(Conn::Unwatch) => Reply::Ok,
            // Inside MULTI a blocking pop does not block: its non-blocking form, once.
            Route::Connection(Conn::Blocking) => {
                baton_engine::exec::blocking::in_multi(core, held.id, &args).await
            }
            Route::Connection(conn) => {
                match admin::handle(nc, client, conn, &args, nc.core.turn_now()) {
                    Some(r) => r,
                    None => {
                        held.release(core).await;
                        let r = admin::run_async(nc, client, conn, &args).await;
                        held.relock(core).await;
                        r
                    }
                }
            }
            _ => shard_multi::run_queued(core, held.id, spec, args.clone()).await,
        };
        nc.executed(client, row, clock::since(start), &reply, &args);
        replies.push(reply);
    }
    held.release(core).await;
    Reply::Array(replies)
}
