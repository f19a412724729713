//! Replicas in cluster mode: `CLUSTER REPLICATE`, `REPLICAS`/`SLAVES`, `FAILOVER
//! [FORCE|TAKEOVER]`, READONLY reads, and the node's replication role kept in line with
//! its cluster view.
//!
//! The view says who replicates whom (a replica's `CLUSTER NODES` line reads
//! `slave <primary-id>`); the replication itself is the replication issue's: [`sync_role`]
//! starts the REPLICAOF link towards the primary the view names, or promotes the node
//! when the view says it is a primary. The gossip thread calls it every round, so a node
//! that learns from a peer's view that it must follow someone else (its primary failed
//! over) does so within one round.
//!
//! A manual failover (`CLUSTER FAILOVER` on a replica) loses no acknowledged write:
//!
//! ```text
//!  replica R (failover thread)                      primary P
//!  CLUSTER BATON-MFSTART <R-id> <pause-ms>  ──────► pauses writes (they wait), answers
//!                                          ◄──────  its shards' journal ends
//!  waits until every flow settled >= the ends (every core of R applied them)
//!  asks again: the same ends (nothing was still in flight on P) ──► done, else wait again
//!  promotes itself: REPLICAOF NO ONE, takes P's slots under a new config epoch
//!  gossip ─────────────── R's view ─────────────►  P lost every slot to its replica:
//!                                                  follows R (its line: slave R), stops
//!                                                  pausing; the writes that waited are
//!                                                  now MOVED to R
//! ```
//!
//! FORCE and TAKEOVER skip the handshake (the primary may be unreachable) and promote at
//! once: Baton has no failure-detection votes, so the two are the same here.
//! The old primary, if it is only cut off, stops taking writes once it has not reached a
//! majority of the slot-owning primaries for the node timeout ([`super::health`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_engine::command::{flags, CommandSpec};
use baton_engine::exec::with_every_core;
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::now_ms;
use baton_ring::{slot, Router};
use bytes::Bytes;

use super::state::State;
use super::Cluster;
use crate::client::Client;
use crate::config::Shared;
use crate::netcore::NetCore;
use crate::repl::link::{self, Resp};
use crate::repl_state::{lock, Role};

/// How long a manual failover waits for the replica to catch up (Redis's
/// `CLUSTER_MF_TIMEOUT`).
pub const MF_TIMEOUT: Duration = Duration::from_millis(5000);
/// How long the primary holds writes back for it at most (Redis pauses twice as long).
pub const MF_PAUSE_MS: u64 = 10_000;
/// The longest pause a replica may ask for.
const MAX_PAUSE_MS: u64 = 60_000;

/// Serialises changes of the replication role (the gossip thread's [`sync_role`] and a
/// failover's promotion), so that one never undoes the other half-way.
static ROLE_CHANGE: Mutex<()> = Mutex::new(());
/// Bumped by every CLUSTER FAILOVER: a failover that is no longer the latest one gives
/// up (a FORCE sent while a manual failover waits replaces it, as in Redis).
static FAILOVER_GEN: AtomicU64 = AtomicU64::new(0);

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// Whether this node serves `args` as a replica's read for a client that sent READONLY:
/// a command that writes nothing, whose keys all hash to one slot of the primary this
/// node replicates (Redis's rule; everything else is redirected as usual).
pub fn readonly_read(router: &Router, client: &Client, spec: &CommandSpec, args: &[Bytes]) -> bool {
    if !client.conn.readonly.get() || spec.has(flags::WRITE) || !router.clustered() {
        return false;
    }
    let keys = spec.keys_in(args);
    let Some(&first) = keys.first() else {
        return false;
    };
    let s = slot(&args[first]);
    keys.iter().all(|&i| slot(&args[i]) == s) && router.replica_serves(s)
}

/// Whether a replica's `-READONLY` refusal of a write gives way to the cluster's answer:
/// in cluster mode a command with keys is redirected to the slot's owner first, as in
/// Redis (only keyless writes, such as FLUSHALL, get -READONLY).
pub fn redirects_writes(shared: &Shared, spec: &CommandSpec, args: &[Bytes]) -> bool {
    shared.cluster.get().is_some() && !spec.keys_in(args).is_empty()
}

/// Makes the replication role what the cluster view says: a replica of the primary it
/// names (the REPLICAOF link), or a primary.
pub fn sync_role(shared: &Arc<Shared>, cluster: &Cluster) {
    let _g = lock(&ROLE_CHANGE);
    let want = cluster.read(|st| {
        st.me()
            .primary
            .as_ref()
            .map(|p| st.nodes.get(p).map(|n| (n.ip.clone(), n.port)))
    });
    match want {
        None if shared.repl.is_replica() => {
            crate::repl::commands::promote(shared);
            tracing::info!("cluster: this node is a primary now");
        }
        Some(Some((ip, port))) if !ip.is_empty() && port != 0 => {
            let role = Role::Replica {
                host: ip.clone(),
                port,
            };
            if shared.repl.role() != role {
                tracing::info!("cluster: replicating {ip}:{port}");
                link::start(shared, ip, port);
            }
        }
        // A primary already, or a primary whose address is not known yet.
        _ => {}
    }
}

/// This node's replication offset, and whether its replication link is loading a full
/// sync, or is not up and has applied nothing of its primary: a node the view calls a
/// replica is then still in its first full sync (or has not started it, right after
/// CLUSTER REPLICATE), which CLUSTER SHARDS shows as `health loading` (Redis: a replica
/// whose replication offset is still 0).
pub fn repl_progress(shared: &Shared) -> (u64, bool) {
    let loading = {
        let l = lock(&shared.repl.link);
        l.sync_in_progress || (!l.up && l.offsets.iter().sum::<u64>() == 0)
    };
    (shared.repl.offset(), loading)
}

/// One round of the gossip thread: the role follows the view, and a pause this node
/// took for a replica's manual failover ends once it follows that replica or times out.
pub fn tick(shared: &Arc<Shared>, cluster: &Cluster) {
    sync_role(shared, cluster);
    let until = cluster.pause_until.load(Ordering::Acquire);
    if until != 0
        && (now_ms() >= until || cluster.read(|st| st.me().primary.is_some()))
        && cluster
            .pause_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        shared.repl.writes_paused.store(false, Ordering::Release);
        tracing::info!("cluster: manual failover pause over");
    }
}

/// CLUSTER REPLICATE <node-id>
pub async fn replicate(nc: &NetCore, cluster: &Arc<Cluster>, arg: &[u8]) -> Reply {
    let id = String::from_utf8_lossy(arg).into_owned();
    let keys: usize = with_every_core(&nc.core, |core, _| core.shard.borrow().len())
        .await
        .into_iter()
        .sum();
    let r = cluster.change(|st| {
        let Some(n) = st.nodes.get(&id) else {
            return Err(Reply::error(format!("ERR Unknown node {id}")));
        };
        if id == st.myself {
            return Err(Reply::err("ERR Can't replicate myself"));
        }
        if n.primary.is_some() {
            return Err(Reply::err(
                "ERR I can only replicate a master, not a replica.",
            ));
        }
        if st.me().primary.is_none() && (!st.ranges_of(st.me()).is_empty() || keys != 0) {
            return Err(Reply::err(
                "ERR To set a master the node must be empty and without assigned slots.",
            ));
        }
        st.set_primary(&id);
        Ok(())
    });
    match r {
        Ok(()) => {
            sync_role(&nc.shared, cluster);
            Reply::Ok
        }
        Err(e) => e,
    }
}

/// Empties every shard (FLUSHALL on each core, through the sealed write path): a
/// replica that CLUSTER RESET made a primary starts empty, as Redis's does.
pub async fn flush(nc: &NetCore) {
    let Some(spec) = baton_engine::command::lookup(b"flushall") else {
        return;
    };
    with_every_core(&nc.core, move |core, now| {
        let _ = core
            .shard
            .borrow_mut()
            .execute(spec, &[Bytes::from_static(b"FLUSHALL")], now);
    })
    .await;
}

/// CLUSTER REPLICAS|SLAVES <node-id>: the `CLUSTER NODES` line of each replica.
pub fn list(st: &State, arg: &[u8], now: u64, timeout: u64) -> Reply {
    let id = String::from_utf8_lossy(arg);
    let Some(n) = st.nodes.get(id.as_ref()) else {
        return Reply::error(format!("ERR Unknown node {id}"));
    };
    if n.primary.is_some() {
        return Reply::err("ERR The specified node is not a master");
    }
    Reply::Array(
        st.replicas_of(&n.id)
            .into_iter()
            .map(|r| Reply::Bulk(Bytes::from(st.render_line(r, &[], now, timeout))))
            .collect(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Manual,
    Force,
    Takeover,
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER]: answers at once; the failover runs on a thread.
pub fn failover(shared: &Arc<Shared>, cluster: &Arc<Cluster>, args: &[Bytes]) -> Reply {
    let mode = match args.get(2) {
        None => Mode::Manual,
        Some(a) if eq(a, "force") => Mode::Force,
        Some(a) if eq(a, "takeover") => Mode::Takeover,
        Some(_) => return errors::SYNTAX,
    };
    if args.len() > 3 {
        return errors::SYNTAX;
    }
    let timeout = cluster.config.node_timeout_ms;
    let primary = cluster.read(|st| {
        let Some(p) = &st.me().primary else {
            return Err(Reply::err(
                "ERR You should send CLUSTER FAILOVER to a replica",
            ));
        };
        let Some(n) = st.nodes.get(p) else {
            return Err(Reply::err(
                "ERR I'm a replica but my master is unknown to me",
            ));
        };
        if mode == Mode::Manual && st.pfail(n, now_ms(), timeout) {
            return Err(Reply::err(
                "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE",
            ));
        }
        Ok((n.id.clone(), n.ip.clone(), n.port))
    });
    let primary = match primary {
        Ok(p) => p,
        Err(e) => return e,
    };
    let gen = FAILOVER_GEN.fetch_add(1, Ordering::AcqRel) + 1;
    tracing::info!("cluster: {mode:?} failover requested by the user");
    let (shared, cluster) = (shared.clone(), cluster.clone());
    let spawned = std::thread::Builder::new()
        .name("baton-cl-failover".into())
        .spawn(move || drive(&shared, &cluster, mode, primary, gen));
    if let Err(e) = spawned {
        return Reply::error(format!("ERR cannot start the failover: {e}"));
    }
    Reply::Ok
}

fn current(gen: u64) -> bool {
    FAILOVER_GEN.load(Ordering::Acquire) == gen
}

fn drive(
    shared: &Arc<Shared>,
    cluster: &Cluster,
    mode: Mode,
    primary: (String, String, u16),
    gen: u64,
) {
    let (id, ip, port) = primary;
    if mode == Mode::Manual {
        if let Err(e) = catch_up(shared, cluster, &id, &ip, port, gen) {
            tracing::warn!("cluster: manual failover aborted: {e}");
            // The primary's writes wait no longer: a pause of 1 ms ends at its next round.
            if let Ok(mut s) = link::connect(shared, &ip, port) {
                let me = cluster.read(|st| st.myself.clone());
                let _ = mf_start(&mut s, &me, 1);
            }
            return;
        }
    }
    let _g = lock(&ROLE_CHANGE);
    if !current(gen) {
        tracing::info!("cluster: failover replaced by a later one");
        return;
    }
    let still = cluster.read(|st| st.me().primary.as_deref() == Some(id.as_str()));
    if !still {
        tracing::warn!("cluster: failover aborted: this node no longer replicates {id}");
        return;
    }
    // Replication first: once the view gives this node the slots, writes come here.
    if shared.repl.is_replica() {
        crate::repl::commands::promote(shared);
    }
    let r = cluster.change(|st| Ok(st.take_over()));
    match r {
        Ok(_) => tracing::info!("cluster: failover done, this node serves the slots of {id}"),
        Err(e) => tracing::warn!("cluster: failover could not save its view: {e:?}"),
    }
}

/// The manual failover's handshake with the primary (see the module doc): returns once
/// this replica applied everything the paused primary acknowledged.
fn catch_up(
    shared: &Shared,
    cluster: &Cluster,
    id: &str,
    ip: &str,
    port: u16,
    gen: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + MF_TIMEOUT;
    let me = cluster.read(|st| st.myself.clone());
    let mut s = link::connect(shared, ip, port).map_err(|e| format!("{ip}:{port}: {e}"))?;
    let mut ends = mf_start(&mut s, &me, MF_PAUSE_MS)?;
    loop {
        if Instant::now() >= deadline {
            return Err("the replica did not catch up with its primary in time".into());
        }
        if !current(gen) {
            return Err("a later CLUSTER FAILOVER replaced it".into());
        }
        if !cluster.read(|st| st.me().primary.as_deref() == Some(id)) {
            return Err(format!("this node no longer replicates {id}"));
        }
        let caught_up = {
            let l = lock(&shared.repl.link);
            ends.iter().enumerate().all(|(k, &end)| {
                end == 0
                    || l.settled
                        .get(k)
                        .copied()
                        .flatten()
                        .is_some_and(|a| a >= end)
            })
        };
        if caught_up {
            let again = mf_start(&mut s, &me, MF_PAUSE_MS)?;
            if again == ends {
                return Ok(());
            }
            ends = again;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Asks the primary to pause writes for `pause_ms` from now (again) and returns its
/// shards' journal ends.
fn mf_start(
    s: &mut std::io::BufReader<std::net::TcpStream>,
    me: &str,
    pause_ms: u64,
) -> Result<Vec<u64>, String> {
    let pause = pause_ms.to_string();
    match link::call_raw(s, &["CLUSTER", "BATON-MFSTART", me, &pause]) {
        Ok(Resp::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                Resp::Int(n) if n >= 0 => Ok(n as u64),
                _ => Err("the primary answered BATON-MFSTART with a non-offset".to_string()),
            })
            .collect(),
        Ok(Resp::Error(e)) => Err(format!("the primary refused the failover: {e}")),
        Ok(_) => Err("the primary answered BATON-MFSTART with something else".into()),
        Err(e) => Err(format!("the primary is unreachable: {e}")),
    }
}

/// CLUSTER BATON-MFSTART <replica-id> <pause-ms> (between Baton nodes only): a replica of
/// this primary starts a manual failover. Writes pause (they wait) until this node
/// follows the replica or `pause-ms` passes; the answer is each shard's journal end,
/// read after two rounds over every core, so that a write planned before the pause and
/// still on its way to another core has reached its journal (the replica also asks
/// again once it caught up, and waits more if an end still moved).
pub async fn mf_start_command(nc: &NetCore, cluster: &Cluster, args: &[Bytes]) -> Reply {
    let shared = &nc.shared;
    let id = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(pause) = baton_engine::commands::parse_i64(&args[3])
        .filter(|&n| n > 0)
        .map(|n| (n as u64).min(MAX_PAUSE_MS))
    else {
        return errors::NOT_INTEGER;
    };
    let ok = cluster.read(|st| {
        st.me().primary.is_none()
            && st
                .nodes
                .get(&id)
                .is_some_and(|n| n.primary.as_deref() == Some(st.myself.as_str()))
    });
    if !ok {
        return Reply::error(format!("ERR {id} is not a replica of this primary"));
    }
    cluster
        .pause_until
        .store(now_ms() + pause, Ordering::Release);
    shared.repl.writes_paused.store(true, Ordering::Release);
    for _ in 0..2 {
        with_every_core(&nc.core, |_, _| ()).await;
    }
    Reply::Array(
        shared
            .repl
            .ends()
            .into_iter()
            .map(|e| Reply::Int(e as i64))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::tests::{exchange, id, node};
    use crate::cluster::wire::parse_message;
    use baton_ring::SLOTS;

    fn gossip(nodes: &mut [&mut State], now: u64) {
        for _ in 0..2 {
            for i in 0..nodes.len() {
                for j in 0..nodes.len() {
                    if i < j {
                        let (x, y) = nodes.split_at_mut(j);
                        exchange(x[i], y[0], now);
                    }
                }
            }
        }
    }

    fn strip(s: &State) -> String {
        s.render_nodes(0, 0).replace("myself,", "")
    }

    /// a and b primaries, c replicates a: every view says so; then c takes over and a
    /// follows it, b learns the new owner, and the views agree again.
    #[test]
    fn replicate_then_failover_converges() {
        let (mut a, mut b, mut c) = (node('a', 1), node('b', 2), node('c', 3));
        let all: Vec<u16> = (0..SLOTS).collect();
        a.set_slots(&all[..8192], true);
        b.set_slots(&all[8192..], true);
        a.set_config_epoch(1);
        b.set_config_epoch(2);
        c.set_config_epoch(3);
        gossip(&mut [&mut a, &mut b, &mut c], 1);
        c.set_primary(&id('a'));
        gossip(&mut [&mut a, &mut b, &mut c], 2);
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(strip(&b), strip(&c));
        let line = |s: &State, who: char| {
            s.render_nodes(0, 0)
                .lines()
                .find(|l| l.starts_with(&id(who)))
                .unwrap()
                .to_string()
        };
        assert!(
            line(&b, 'c').contains(&format!(" slave {} 0 0 1 connected", id('a'))),
            "a replica shows its primary and its primary's epoch: {}",
            line(&b, 'c')
        );
        assert!(line(&c, 'c').contains(" myself,slave "));
        assert_eq!(a.replicas_of(&id('a')).len(), 1);
        assert_eq!(a.me().config_epoch, 1, "a replica's epoch is no collision");
        assert_eq!(c.cluster_view().replica_of, c.nodes[&id('a')].handle);

        // The failover: c takes a's slots under a new epoch.
        assert!(c.take_over());
        assert!(!c.take_over(), "a primary has nothing to take over");
        assert!(c.me().config_epoch > 3);
        exchange(&mut c, &mut a, 3);
        assert_eq!(a.me().primary.as_deref(), Some(id('c').as_str()));
        assert!(a.ranges_of(a.me()).is_empty());
        gossip(&mut [&mut a, &mut b, &mut c], 4);
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(strip(&b), strip(&c));
        assert_eq!(b.owner(0).unwrap().id, id('c'));
        assert_eq!(b.owner(16383).unwrap().id, id('b'));
        assert!(line(&b, 'a').contains(&format!(" slave {} ", id('c'))));
        assert_eq!(c.slots_assigned(), usize::from(SLOTS));
    }

    /// A second replica of the primary that failed over follows the new primary too; a
    /// primary that gave its slots away by resharding (not to its replica) does not
    /// become anyone's replica.
    #[test]
    fn siblings_follow_and_resharding_is_no_failover() {
        let (mut a, mut r1, mut r2, mut b) =
            (node('a', 1), node('1', 2), node('2', 3), node('b', 4));
        let all: Vec<u16> = (0..SLOTS).collect();
        a.set_slots(&all[..100], true);
        b.set_slots(&all[100..], true);
        a.set_config_epoch(1);
        b.set_config_epoch(2);
        gossip(&mut [&mut a, &mut r1, &mut r2, &mut b], 1);
        r1.set_primary(&id('a'));
        r2.set_primary(&id('a'));
        gossip(&mut [&mut a, &mut r1, &mut r2, &mut b], 2);
        r1.take_over();
        gossip(&mut [&mut a, &mut r1, &mut r2, &mut b], 3);
        assert_eq!(r2.me().primary.as_deref(), Some(id('1').as_str()));
        assert_eq!(a.me().primary.as_deref(), Some(id('1').as_str()));
        assert_eq!(strip(&a), strip(&b));

        // b gives every slot to r1 with SETSLOT NODE and a bumped epoch: b stays a primary.
        for s in 100..SLOTS {
            b.assign(s, &id('1'));
            r1.assign(s, &id('1'));
        }
        r1.bump_epoch();
        gossip(&mut [&mut a, &mut r1, &mut r2, &mut b], 4);
        assert!(b.me().primary.is_none());
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(strip(&r2), strip(&b));
    }

    #[test]
    fn replicas_list_and_errors() {
        let (mut a, mut c) = (node('a', 1), node('c', 3));
        exchange(&mut a, &mut c, 1);
        c.set_primary(&id('a'));
        exchange(&mut a, &mut c, 2);
        match list(&a, id('a').as_bytes(), 0, 1000) {
            Reply::Array(v) => {
                assert_eq!(v.len(), 1);
                let Reply::Bulk(l) = &v[0] else { panic!() };
                assert!(l.starts_with(id('c').as_bytes()));
                assert!(!l.ends_with(b"\n"));
            }
            other => panic!("{other:?}"),
        }
        let err = |r: Reply| match r {
            Reply::Error(e) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(list(&a, id('c').as_bytes(), 0, 1000)),
            "ERR The specified node is not a master"
        );
        assert_eq!(err(list(&a, b"nope", 0, 1000)), "ERR Unknown node nope");
        // The config file keeps the role.
        let round = State::from_view(
            crate::cluster::wire::parse_view(c.render_file().as_bytes()).unwrap(),
            "127.0.0.1".into(),
            3,
        )
        .unwrap();
        assert_eq!(round.me().primary.as_deref(), Some(id('a').as_str()));
    }

    /// A random node line: id digit, primary digit (none when it is the node's own),
    /// config epoch, slot ranges.
    type RandomLine = (u8, u8, u64, Vec<(u16, u16)>);

    quickcheck::quickcheck! {
        /// Bounded no-panic property of merging views with replicas in them, into a node
        /// that is a primary or a replica: the state renders back to a view that parses,
        /// and this node never replicates itself.
        fn merging_replica_lines_never_panics(lines: Vec<RandomLine>, replica: bool) -> bool {
            let mut text = format!("{}\n", crate::cluster::wire::MAGIC);
            for (i, (c, p, epoch, slots)) in lines.iter().take(8).enumerate() {
                let flags = if i == 0 { "myself," } else { "" };
                let hex = format!("{:x}", c % 16).repeat(40);
                let primary = format!("{:x}", p % 16).repeat(40);
                let (role, master) = if primary == hex {
                    ("master", "-".to_string())
                } else {
                    ("slave", primary)
                };
                text.push_str(&format!(
                    "{hex} 127.0.0.1:{}@1 {flags}{role} {master} 0 0 {epoch} connected",
                    1000 + i
                ));
                for (a, b) in slots.iter().take(4) {
                    text.push_str(&format!(" {}-{}", a % SLOTS, b % SLOTS));
                }
                text.push('\n');
            }
            let Ok(view) = parse_message(text.as_bytes()) else {
                return true;
            };
            let mut st = node('f', 1);
            if replica {
                let mut p = node('e', 2);
                exchange(&mut p, &mut st, 1);
                st.set_primary(&id('e'));
            }
            let _ = st.merge(&view, None, 2);
            let _ = st.take_over();
            let _ = st.merge(&view, None, 3);
            parse_message(st.render_message().as_bytes()).is_ok()
                && st.me().primary.as_deref() != Some(st.myself.as_str())
        }
    }
}
