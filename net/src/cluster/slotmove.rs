//! CLUSTER MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node-id>
//! [SLOTSRANGE ... NODE <node-id> ...] and CLUSTER GETSLOTMIGRATIONS (Valkey 9's syntax):
//! the source node moves whole slot ranges to a target by itself, streaming their keys
//! over one connection, instead of an operator tool's GETKEYSINSLOT + MIGRATE per batch
//! and SETSLOT per slot per node.
//!
//! As in Valkey, the command checks everything, marks the slots, answers `+OK` and moves
//! the data in the background; CLUSTER GETSLOTMIGRATIONS shows each job's state
//! (`running`, `success` or `failed`, with a message) on the source node.
//!
//! ```text
//!  source (the job, on the core that got the command)        target
//!  ──────────────────────────────────────────────────        ──────────────────────────
//!  check: target known, a primary, reachable (PING);
//!    every slot mine, none migrating or importing
//!  CLUSTER BATON-SLOTS IMPORTING <me> <ranges> ───────────►  importing markers (one
//!  migrating markers here (one state change)                  change; CLUSTER NODES
//!                                                             shows both ends' markers)
//!  +OK to the caller
//!  loop, in rounds:
//!    every core: fence + read up to CHUNK_KEYS keys of the
//!      range (DUMP payload, TTL, CAS), one job per core
//!    RESTORE-ASKING k ttl payload REPLACE, all pipelined ───►  keys stored
//!    every core: delete each key whose CAS is unchanged,
//!      lift the round's fences (parked commands on a
//!      deleted key then get -ASK)
//!  until no core holds a key of the range
//!  CLUSTER BATON-SLOTS NODE <target> <ranges> ────────────►  owner, epoch bumped
//!  here: every slot assigned to the target, markers gone
//!    (this node's CLUSTER SLOTS names the target before
//!     it answers MOVED); gossip spreads the new view
//! ```
//!
//! The key guarantee is MIGRATE's ([`super::migrate`], [`baton_engine::exec::fence`]):
//! a command on a key runs either before the round read it (its effect travels with the
//! copy) or after the key was deleted here (at the target, after ASK); a key changed in
//! between (an expiry, a FLUSHALL, a write after a fence's deadline) stays here and is
//! sent again in a later round with REPLACE. A key of the range that is absent here gets
//! `-ASK` (the slot is migrating), so no new key appears here once the job runs.
//!
//! Memory is bounded: a round holds at most [`CHUNK_KEYS`] keys and about
//! [`CHUNK_BYTES`] of payload per core, never a whole slot.
//!
//! Not done: CLUSTER CANCELSLOTMIGRATIONS; AUTH towards the target (a target with
//! `requirepass` refuses the PING, so the command fails and changes nothing); the job
//! list lives on the source only. A job that
//! fails half way leaves the slots migrating here and importing at the target, as an
//! interrupted `redis-cli --cluster reshard` does; `redis-cli --cluster fix` closes them.

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use baton_engine::commands::dump::encode_copy;
use baton_engine::exec::{fence, with_every_core};
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::{now_ms, Core};
use bytes::Bytes;

use super::{slot_arg, Cluster};
use crate::netcore::NetCore;
use crate::repl::link::{dial, encode_command, read_reply, Resp};

/// Most keys one core reads in one round.
pub const CHUNK_KEYS: usize = 1024;
/// About the most payload bytes one core reads in one round (one key may pass it).
pub const CHUNK_BYTES: usize = 4 << 20;
/// Connect and read/write timeout towards the target.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a round's fences may live: the target's timeout plus the fence margin.
const FENCE_MS: u64 = 10_000 + fence::MARGIN_MS;
/// How long rounds may move nothing (every key read changed before its delete, or every
/// key held by a MIGRATE's fence) before the job fails.
const STALLED_MS: u64 = 30_000;
/// Finished jobs kept for CLUSTER GETSLOTMIGRATIONS.
const KEPT: usize = 32;

/// One job as CLUSTER GETSLOTMIGRATIONS shows it.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub ranges: Vec<(u16, u16)>,
    pub source: String,
    pub target: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// `running`, `success` or `failed`.
    pub state: &'static str,
    pub message: String,
    pub keys_moved: u64,
}

/// This node's slot migration jobs, newest last.
#[derive(Default)]
pub struct Jobs(Mutex<VecDeque<Migration>>);

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Migration>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, m: Migration) {
        let mut jobs = self.lock();
        jobs.push_back(m);
        while jobs.len() > KEPT {
            match jobs.iter().position(|j| j.state != "running") {
                Some(i) => {
                    jobs.remove(i);
                }
                None => break,
            }
        }
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut Migration)) {
        if let Some(j) = self.lock().iter_mut().find(|j| j.name == name) {
            f(j);
            j.updated_ms = now_ms();
        }
    }

    /// A copy of every job.
    pub fn list(&self) -> Vec<Migration> {
        self.lock().iter().cloned().collect()
    }
}

/// One SLOTSRANGE ... NODE block.
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    pub ranges: Vec<(u16, u16)>,
    pub node: String,
}

fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// Parses `SLOTSRANGE <start> <end> [...] NODE <id>` blocks (`args` from the
/// subcommand's first argument on); a slot named twice is an error.
pub fn parse(args: &[Bytes]) -> Result<Vec<Block>, Reply> {
    let mut blocks = Vec::new();
    let mut seen = BTreeSet::new();
    let mut i = 0;
    while i < args.len() {
        if !is(&args[i], "SLOTSRANGE") {
            return Err(errors::SYNTAX);
        }
        i += 1;
        let mut ranges = Vec::new();
        while i < args.len() && !is(&args[i], "NODE") {
            let (Some(a), Some(b)) = (args.get(i), args.get(i + 1)) else {
                return Err(errors::SYNTAX);
            };
            if is(b, "NODE") {
                return Err(errors::SYNTAX);
            }
            let (a, b) = (slot_arg(a)?, slot_arg(b)?);
            if a > b {
                return Err(Reply::error(format!(
                    "ERR start slot number {a} is greater than end slot number {b}"
                )));
            }
            for s in a..=b {
                if !seen.insert(s) {
                    return Err(Reply::error(format!(
                        "ERR Slot {s} specified multiple times"
                    )));
                }
            }
            ranges.push((a, b));
            i += 2;
        }
        let node = match args.get(i + 1) {
            Some(n) if !ranges.is_empty() => String::from_utf8_lossy(n).into_owned(),
            _ => return Err(errors::SYNTAX),
        };
        blocks.push(Block { ranges, node });
        i += 2;
    }
    if blocks.is_empty() {
        return Err(errors::SYNTAX);
    }
    Ok(blocks)
}

/// `0-99 200-299`: ranges as GETSLOTMIGRATIONS shows them.
fn ranges_text(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// CLUSTER GETSLOTMIGRATIONS: one map per job.
pub fn list(cluster: &Cluster) -> Reply {
    let bulk = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Reply::Array(
        cluster
            .slot_jobs
            .list()
            .into_iter()
            .map(|m| {
                Reply::Map(vec![
                    (bulk("name"), bulk(&m.name)),
                    (bulk("operation"), bulk("EXPORT")),
                    (bulk("slot_ranges"), bulk(&ranges_text(&m.ranges))),
                    (bulk("target_node"), bulk(&m.target)),
                    (bulk("source_node"), bulk(&m.source)),
                    (bulk("create_time"), Reply::Int(m.created_ms as i64)),
                    (bulk("last_update_time"), Reply::Int(m.updated_ms as i64)),
                    (bulk("state"), bulk(m.state)),
                    (bulk("message"), bulk(&m.message)),
                    (bulk("keys_moved"), Reply::Int(m.keys_moved as i64)),
                ])
            })
            .collect(),
    )
}

/// A pipelined connection to the target, driven by a helper thread (blocking sockets)
/// while the core keeps serving: each request is a buffer of commands and how many
/// replies to read.
struct Link {
    tx: Option<mpsc::Sender<(Vec<u8>, usize)>>,
    rx: mpsc::Receiver<Result<Vec<Resp>, String>>,
    core: Rc<Core>,
}

impl Link {
    /// Connects to `host:port` on a helper thread.
    fn open(core: Rc<Core>, host: String, port: u16) -> Result<Link, String> {
        let (tx, requests) = mpsc::channel::<(Vec<u8>, usize)>();
        let (answers, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("baton-slotmove".into())
            .spawn(move || {
                let mut s: BufReader<TcpStream> = match dial(&host, port, IO_TIMEOUT, IO_TIMEOUT) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = answers.send(Err(format!("cannot connect to {host}:{port}: {e}")));
                        return;
                    }
                };
                while let Ok((out, n)) = requests.recv() {
                    let answer = exchange(&mut s, &out, n);
                    let failed = answer.is_err();
                    if answers.send(answer).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(Link {
            tx: Some(tx),
            rx,
            core,
        })
    }

    /// Sends `out` (`n` commands) and waits for their `n` replies.
    async fn call(&self, out: Vec<u8>, n: usize) -> Result<Vec<Resp>, String> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send((out, n)).is_ok());
        loop {
            match self.rx.try_recv() {
                Ok(answer) => return answer,
                Err(mpsc::TryRecvError::Empty) => {
                    self.core.timers.sleep_until(now_ms() + 1).await;
                }
                Err(mpsc::TryRecvError::Disconnected) if !sent => {
                    return Err("the connection to the target is closed".into())
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err("the connection to the target broke".into())
                }
            }
        }
    }

    /// Sends commands and fails on the first error reply.
    async fn all_ok(&self, commands: Vec<Vec<u8>>) -> Result<(), String> {
        let n = commands.len();
        let replies = self.call(commands.concat(), n).await?;
        match replies.into_iter().find_map(|r| match r {
            Resp::Error(e) => Some(e),
            _ => None,
        }) {
            Some(e) => Err(format!("Target instance replied with error: {e}")),
            None => Ok(()),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The helper thread ends when it finds the channel closed.
        self.tx.take();
    }
}

/// Writes `out` and reads `n` replies.
fn exchange(s: &mut BufReader<TcpStream>, out: &[u8], n: usize) -> Result<Vec<Resp>, String> {
    s.get_mut()
        .write_all(out)
        .map_err(|e| format!("error writing to the target: {e}"))?;
    (0..n)
        .map(|_| read_reply(s, 0).map_err(|e| format!("error reading from the target: {e}")))
        .collect()
}

/// What CLUSTER MIGRATESLOTS found out before changing anything: per block, the job.
struct Plan {
    name: String,
    slots: Vec<u16>,
    ranges: Vec<(u16, u16)>,
    target: String,
    host: String,
    port: u16,
}

/// CLUSTER MIGRATESLOTS (see the module doc): checks every block, opens a connection to
/// each target, marks the slots on both sides and starts the jobs; `+OK` once they run.
/// Any error changes nothing.
pub async fn start(nc: &NetCore, cluster: &Arc<Cluster>, args: &[Bytes]) -> Reply {
    let blocks = match parse(&args[2..]) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let plans = cluster.read(|st| -> Result<Vec<Plan>, Reply> {
        if st.me().primary.is_some() {
            return Err(Reply::err(
                "ERR Please use CLUSTER MIGRATESLOTS only with masters.",
            ));
        }
        let mut plans = Vec::new();
        for b in &blocks {
            let Some(node) = st.nodes.get(&b.node) else {
                return Err(Reply::error(format!("ERR Unknown node {}", b.node)));
            };
            if node.id == st.myself {
                return Err(Reply::err("ERR Can't migrate slots to myself"));
            }
            if node.primary.is_some() {
                return Err(Reply::error(format!(
                    "ERR Target node {} is not a master",
                    node.id
                )));
            }
            let mut slots = Vec::new();
            for &(a, z) in &b.ranges {
                for s in a..=z {
                    if st.owner(s).is_none_or(|n| n.id != st.myself) {
                        return Err(Reply::error(format!(
                            "ERR I'm not the owner of hash slot {s}"
                        )));
                    }
                    if st.migrating.contains_key(&s) || st.importing.contains_key(&s) {
                        return Err(Reply::error(format!(
                            "ERR Slot {s} is already being migrated or imported"
                        )));
                    }
                    slots.push(s);
                }
            }
            plans.push(Plan {
                name: crate::ids::new_run_id(),
                slots,
                ranges: b.ranges.clone(),
                target: node.id.clone(),
                host: node.ip.clone(),
                port: node.port,
            });
        }
        Ok(plans)
    });
    let plans = match plans {
        Ok(p) => p,
        Err(e) => return e,
    };
    let me = cluster.read(|st| st.myself.clone());
    // Every target reachable, and importing, before anything changes here.
    let mut links: Vec<Link> = Vec::new();
    for p in &plans {
        let link = match Link::open(nc.core.clone(), p.host.clone(), p.port) {
            Ok(l) => l,
            Err(e) => return Reply::error(format!("ERR {e}")),
        };
        let ping = link.all_ok(vec![encode_command(&["PING"])]).await;
        let importing = match ping {
            Ok(()) => link.all_ok(setslots(&p.slots, "IMPORTING", &me)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = importing {
            // Undo the markers of the targets already told (this one's IMPORTING is all
            // or nothing).
            for (q, l) in plans.iter().zip(&links) {
                let _ = l.all_ok(setslots(&q.slots, "STABLE", "-")).await;
            }
            return Reply::error(format!(
                "ERR target node {} at {}:{} failed: {e}",
                p.target, p.host, p.port
            ));
        }
        links.push(link);
    }
    let marked = cluster.change(|st| {
        for p in &plans {
            for &s in &p.slots {
                if st.owner(s).is_none_or(|n| n.id != st.myself) || st.migrating.contains_key(&s) {
                    return Err(Reply::error(format!(
                        "ERR Slot {s} changed while the migration started"
                    )));
                }
            }
        }
        for p in &plans {
            for &s in &p.slots {
                st.migrating.insert(s, p.target.clone());
            }
        }
        Ok(())
    });
    if let Err(e) = marked {
        for (p, l) in plans.iter().zip(&links) {
            let _ = l.all_ok(setslots(&p.slots, "STABLE", "-")).await;
        }
        return e;
    }
    let now = now_ms();
    for (p, link) in plans.into_iter().zip(links) {
        cluster.slot_jobs.add(Migration {
            name: p.name.clone(),
            ranges: p.ranges.clone(),
            source: me.clone(),
            target: p.target.clone(),
            created_ms: now,
            updated_ms: now,
            state: "running",
            message: String::new(),
            keys_moved: 0,
        });
        let (core, cluster) = (nc.core.clone(), cluster.clone());
        baton_engine::runtime::wake::spawn(async move {
            let r = run(&core, &cluster, &link, &p).await;
            let id = p.name.clone();
            cluster.slot_jobs.update(&id, |j| match r {
                Ok(()) => j.state = "success",
                Err(e) => {
                    tracing::warn!("slot migration {id} failed: {e}");
                    j.state = "failed";
                    j.message = e;
                }
            });
        });
    }
    Reply::Ok
}

/// `CLUSTER BATON-SLOTS <action> <id> <start> <end> ...` for `slots`, as runs.
fn setslots(slots: &[u16], action: &str, id: &str) -> Vec<Vec<u8>> {
    let mut args = vec![
        "CLUSTER".to_string(),
        "BATON-SLOTS".into(),
        action.into(),
        id.into(),
    ];
    for (a, b) in runs(slots) {
        args.push(a.to_string());
        args.push(b.to_string());
    }
    vec![encode_command(&args)]
}

/// `slots` (ascending) as inclusive runs.
fn runs(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some((_, z)) if *z + 1 == s => *z = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// CLUSTER BATON-SLOTS IMPORTING|NODE|STABLE <node-id> <start> <end> [<start> <end> ...]
/// (between Baton nodes only): SETSLOT's action on every slot of the ranges, checked
/// first and then done in one change of the state (one config file write, not one per
/// slot), with SETSLOT's errors. NODE bumps this node's epoch once when it takes slots
/// it imported.
pub async fn bulk_setslot(nc: &NetCore, cluster: &Cluster, args: &[Bytes]) -> Reply {
    let action = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
    if !matches!(action.as_str(), "importing" | "node" | "stable") || args.len() % 2 == 1 {
        return errors::SYNTAX;
    }
    let id = String::from_utf8_lossy(&args[3]).into_owned();
    let mut slots = Vec::new();
    for pair in args[4..].chunks(2) {
        let (a, b) = match (slot_arg(&pair[0]), slot_arg(&pair[1])) {
            (Ok(a), Ok(b)) if a <= b => (a, b),
            (Err(e), _) | (_, Err(e)) => return e,
            _ => return errors::SYNTAX,
        };
        slots.extend(a..=b);
    }
    let counts: Arc<[u16]> = slots.clone().into();
    let held: Vec<usize> = if action == "node" {
        let per_core = with_every_core(&nc.core, move |c, _| {
            let shard = c.shard.borrow();
            counts
                .iter()
                .map(|&s| shard.store().count_in_slot(s))
                .collect::<Vec<_>>()
        })
        .await;
        (0..slots.len())
            .map(|i| per_core.iter().map(|v| v[i]).sum())
            .collect()
    } else {
        vec![0; slots.len()]
    };
    cluster
        .change(|st| {
            if st.me().primary.is_some() {
                return Err(Reply::err("ERR Please use SETSLOT only with masters."));
            }
            if action != "stable" && !st.nodes.contains_key(&id) {
                return Err(Reply::error(format!("ERR I don't know about node {id}")));
            }
            for (&s, &keys) in slots.iter().zip(&held) {
                let mine = st.owner(s).is_some_and(|n| n.id == st.myself);
                match action.as_str() {
                    "importing" if mine => {
                        return Err(Reply::error(format!(
                            "ERR I'm already the owner of hash slot {s}"
                        )))
                    }
                    "node" if mine && id != st.myself && keys != 0 => {
                        return Err(Reply::error(format!(
                            "ERR Can't assign hashslot {s} to a different node while I still hold keys for this hash slot."
                        )))
                    }
                    _ => {}
                }
            }
            let mut took = false;
            for (&s, &keys) in slots.iter().zip(&held) {
                match action.as_str() {
                    "importing" => {
                        st.importing.insert(s, id.clone());
                    }
                    "stable" => {
                        st.migrating.remove(&s);
                        st.importing.remove(&s);
                    }
                    _ => {
                        if keys == 0 {
                            st.migrating.remove(&s);
                        }
                        st.assign(s, &id);
                        took |= id == st.myself && st.importing.remove(&s).is_some();
                    }
                }
            }
            if took {
                st.bump_epoch();
            }
            Ok(Reply::Ok)
        })
        .unwrap_or_else(|e| e)
}

/// One key read for sending: key, TTL (ms, 0 = none), DUMP payload, CAS.
type Item = (Bytes, u64, Vec<u8>, u64);

/// What one core's round read: the keys fenced and read, and how many keys of the range
/// another MIGRATE's fence held.
type Round = (Vec<Item>, usize);

/// One job: the keys in rounds, then the slots.
async fn run(core: &Rc<Core>, cluster: &Cluster, link: &Link, p: &Plan) -> Result<(), String> {
    let id = core.new_txn();
    let moved = stream_keys(core, cluster, link, p, id).await;
    // Whatever happened, no fence of this job outlives it.
    with_every_core(core, move |c, now| fence::lift(c, id, None, now)).await;
    moved?;
    // The target first: from then on it owns the slots (and has the highest epoch);
    // this node still answers -ASK for them, then -MOVED once its own view says so.
    link.all_ok(setslots(&p.slots, "NODE", &p.target)).await?;
    let slots: Arc<[u16]> = p.slots.clone().into();
    let held: usize = {
        let slots = slots.clone();
        with_every_core(core, move |c, _| {
            let shard = c.shard.borrow();
            slots
                .iter()
                .map(|&s| shard.store().count_in_slot(s))
                .sum::<usize>()
        })
        .await
        .into_iter()
        .sum()
    };
    if held != 0 {
        return Err(format!(
            "{held} keys of the slots appeared here during the move"
        ));
    }
    cluster
        .change(|st| {
            for &s in p.slots.iter() {
                st.migrating.remove(&s);
                st.importing.remove(&s);
                st.assign(s, &p.target);
            }
            Ok(())
        })
        .map_err(|e| format!("cannot hand the slots over here: {e:?}"))
}

/// Moves every key of the plan's slots, round after round, until no core holds one.
async fn stream_keys(
    core: &Rc<Core>,
    cluster: &Cluster,
    link: &Link,
    p: &Plan,
    id: u64,
) -> Result<(), String> {
    let slots: Arc<[u16]> = p.slots.clone().into();
    let mut progress_at = now_ms();
    loop {
        let deadline = now_ms() + FENCE_MS;
        let announced = CHUNK_KEYS * core.cores;
        // Raised before any fence exists (see fence::announce), lowered by the unused part.
        fence::announce(announced);
        let rounds: Vec<Round> = {
            let slots = slots.clone();
            with_every_core(core, move |c, now| read_round(c, &slots, id, deadline, now)).await
        };
        let fenced: usize = rounds.iter().map(|(items, _)| items.len()).sum();
        fence::retract(announced - fenced);
        let busy: usize = rounds.iter().map(|(_, b)| b).sum();
        if fenced == 0 && busy == 0 {
            return Ok(());
        }
        let mut moved = 0;
        if fenced != 0 {
            let mut commands = Vec::with_capacity(fenced);
            for (key, ttl, payload, _) in rounds.iter().flat_map(|(items, _)| items) {
                let ttl = ttl.to_string();
                commands.push(encode_command(&[
                    &b"RESTORE-ASKING"[..],
                    key,
                    ttl.as_bytes(),
                    payload,
                    b"REPLACE",
                ]));
            }
            link.all_ok(commands).await?;
            moved = delete_sent(core, rounds, id).await;
        }
        if moved == 0 {
            if now_ms() > progress_at + STALLED_MS {
                return Err("keys kept changing or stayed fenced by MIGRATE".into());
            }
            core.timers.sleep_until(now_ms() + 1).await;
        } else {
            progress_at = now_ms();
            cluster
                .slot_jobs
                .update(&p.name, |j| j.keys_moved += moved as u64);
        }
    }
}

/// On one core: fences and reads up to [`CHUNK_KEYS`] keys (about [`CHUNK_BYTES`]) of
/// `slots` for job `id`.
fn read_round(c: &Core, slots: &[u16], id: u64, deadline: u64, now: u64) -> Round {
    let (mut items, mut busy, mut bytes) = (Vec::new(), 0, 0);
    for &s in slots {
        let room = CHUNK_KEYS - items.len() - busy;
        if room == 0 || bytes >= CHUNK_BYTES {
            break;
        }
        let keys: Vec<Bytes> = {
            let shard = c.shard.borrow();
            if shard.store().count_in_slot(s) == 0 {
                continue;
            }
            shard
                .store()
                .keys_in_slot(s, room)
                .into_iter()
                .map(Bytes::copy_from_slice)
                .collect()
        };
        for key in keys {
            if bytes >= CHUNK_BYTES {
                break;
            }
            let mut shard = c.shard.borrow_mut();
            let Some(cas) = shard.lookup(&key, now).map(|e| e.cas()) else {
                continue;
            };
            let Some(copy) = shard.copy_item(&key, now) else {
                continue;
            };
            drop(shard);
            if !fence::fence_key(c, &key, id, deadline, now) {
                busy += 1;
                continue;
            }
            let ttl = match copy.expire_at {
                0 => 0,
                at => at.saturating_sub(now).max(1),
            };
            let payload = encode_copy(&copy);
            bytes += key.len() + payload.len();
            items.push((key, ttl, payload, cas));
        }
    }
    (items, busy)
}

/// On each core: deletes the round's keys whose CAS is still the one read and lifts the
/// round's fences (a changed key stays, unfenced, for a later round). Returns how many
/// keys were deleted.
async fn delete_sent(core: &Rc<Core>, rounds: Vec<Round>, id: u64) -> usize {
    // Each core's own keys, by core index (with_every_core sends one closure to all).
    let per_core: Arc<Vec<Vec<(Bytes, u64)>>> = Arc::new(
        rounds
            .into_iter()
            .map(|(items, _)| items.into_iter().map(|(k, _, _, cas)| (k, cas)).collect())
            .collect(),
    );
    with_every_core(core, move |c, now| {
        let mine = &per_core[c.id];
        let mut deleted = 0;
        let mut shard = c.shard.borrow_mut();
        for (key, cas) in mine {
            if shard.lookup(key, now).map(|e| e.cas()) == Some(*cas) {
                shard.delete(key, now);
                deleted += 1;
            }
        }
        drop(shard);
        let keys: Vec<Bytes> = mine.iter().map(|(k, _)| k.clone()).collect();
        fence::lift(c, id, Some(&keys), now);
        deleted
    })
    .await
    .into_iter()
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::from(w.to_string()))
            .collect()
    }

    #[test]
    fn parses_valkey_blocks_and_refuses_bad_ones() {
        let b = parse(&args("SLOTSRANGE 0 9 20 29 NODE a slotsrange 10 19 node b")).unwrap();
        assert_eq!(
            b,
            vec![
                Block {
                    ranges: vec![(0, 9), (20, 29)],
                    node: "a".into()
                },
                Block {
                    ranges: vec![(10, 19)],
                    node: "b".into()
                }
            ]
        );
        for bad in [
            "SLOTSRANGE 0 9",
            "SLOTSRANGE NODE a",
            "SLOTSRANGE 0 NODE a",
            "SLOTSRANGE 0 9 NODE",
            "NODE a SLOTSRANGE 0 9",
            "SLOTSRANGE 0 9 NODE a EXTRA",
        ] {
            assert_eq!(parse(&args(bad)), Err(errors::SYNTAX), "{bad}");
        }
        assert!(parse(&args("SLOTSRANGE 5 4 NODE a")).is_err());
        assert!(parse(&args("SLOTSRANGE 0 16384 NODE a")).is_err());
        assert!(parse(&args("SLOTSRANGE 0 -1 NODE a")).is_err());
        assert!(
            parse(&args("SLOTSRANGE 0 9 NODE a SLOTSRANGE 9 9 NODE b")).is_err(),
            "slot 9 twice"
        );
        assert_eq!(ranges_text(&[(0, 9), (20, 20)]), "0-9 20-20");
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), vec![(0, 2), (5, 5), (7, 8)]);
    }
}
