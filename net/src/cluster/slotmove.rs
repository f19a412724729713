//! CLUSTER MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node-id>
//! [SLOTSRANGE ... NODE <node-id> ...] and CLUSTER GETSLOTMIGRATIONS (Valkey 9's syntax):
//! the source node moves whole slot ranges to a target by itself, streaming their keys
//! over one connection, instead of an operator tool's GETKEYSINSLOT + MIGRATE per batch
//! and SETSLOT per slot per node.
//!
//! As in Valkey, the command checks everything, marks the slots, answers `+OK` and moves
//! the data in the background; CLUSTER GETSLOTMIGRATIONS shows each job's state
//! (`running`, `success`, `failed` or `canceled`, with a message) on the source node
//! (operation `EXPORT`) and on the target (`IMPORT`, same name), which the source tells
//! with `CLUSTER BATON-SLOTJOB` when the job starts and when it ends. A target that did
//! not hear the end (the connection broke) settles its entry by its own view: once no
//! slot of the job is importing here any more, `success` if it owns them all, `failed`
//! otherwise.
//!
//! ```text
//!  source (the job, on the core that got the command)        target
//!  ──────────────────────────────────────────────────        ──────────────────────────
//!  check: target known, a primary, reachable (PING);
//!    every slot mine, none migrating or importing
//!  CLUSTER BATON-SLOTS IMPORTING <me> <ranges> ───────────►  importing markers (one
//!  migrating markers here (one state change), but the         change; CLUSTER NODES
//!    slots keep being served here: no -ASK                    shows both ends' markers)
//!  +OK to the caller
//!  the stream (super::slotstream): snapshot walk + catch-up
//!    of the keys written meanwhile, RESTORE-ASKING ... ───►  keys stored, seen by no
//!    REPLACE / ASKING + DEL, pipelined                         client yet
//!  the range fenced on every core, the tail sent ─────────►  stored
//!  CLUSTER BATON-SLOTS NODE <target> <ranges> ────────────►  owner, epoch bumped
//!  here: every slot assigned to the target, markers gone
//!    (this node's view names the target before the fence
//!     lifts, so waiting commands get -MOVED); gossip
//!     spreads the new view; the range's keys deleted here
//! ```
//!
//! No write is lost and no client sees an error other than a redirection: until the
//! hand-over this node serves every key of the range (writes included) and nobody is sent
//! to the target; the tail is sent under a fence of the whole range, and the fence lifts
//! only once this node's view names the target. [`super::slotstream`] says why the target
//! ends with exactly the keys held here.
//!
//! Memory is bounded: a step holds at most [`slotstream::CHUNK_KEYS`] keys and about
//! [`slotstream::CHUNK_BYTES`] of payload per core, and the keys written meanwhile are
//! noted by name, at most [`slotstream::DIRTY_LIMIT`] per core, never a whole slot.
//!
//! A job that fails (the target dies or refuses, too many keys written meanwhile, a
//! FLUSHALL) deleted nothing here: this node stays the owner of every key, its markers
//! are cleared, and the target's copies and markers too if it still answers (all but one
//! case: the connection breaking during the hand-over, see [`super::slotstream`]).
//!
//! CLUSTER CANCELSLOTMIGRATIONS stops the running jobs that have not fenced their range
//! yet (state `canceled`, nothing moved). Towards the target the job authenticates with
//! this node's `masterauth`, as the gossip does.
//!
//! memcached CAS uniques travel with the keys (in the RESTORE payload), as with MIGRATE.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use baton_engine::exec::with_every_core;
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::now_ms;
use bytes::Bytes;

use super::slotstream::{self, setslots, Link};
use super::{slot_arg, Cluster};
use crate::netcore::NetCore;
use crate::repl::link::encode_command;

/// Finished jobs kept for CLUSTER GETSLOTMIGRATIONS.
const KEPT: usize = 32;

/// One job as CLUSTER GETSLOTMIGRATIONS shows it.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    /// `EXPORT` on the source, `IMPORT` on the target.
    pub operation: &'static str,
    pub ranges: Vec<(u16, u16)>,
    pub source: String,
    pub target: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// `running`, `success` or `failed`.
    pub state: &'static str,
    pub message: String,
    /// Keys handed over (while running: keys the snapshot walk sent so far).
    pub keys_moved: u64,
    /// CLUSTER CANCELSLOTMIGRATIONS asked this running job to stop.
    pub cancel: bool,
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

    pub(super) fn update(&self, name: &str, f: impl FnOnce(&mut Migration)) {
        if let Some(j) = self.lock().iter_mut().find(|j| j.name == name) {
            f(j);
            j.updated_ms = now_ms();
        }
    }

    /// Asks every running job this node exports to stop (CLUSTER CANCELSLOTMIGRATIONS).
    fn cancel_running(&self) {
        for j in self
            .lock()
            .iter_mut()
            .filter(|j| j.state == "running" && j.operation == "EXPORT")
        {
            j.cancel = true;
        }
    }

    /// Whether job `name` was asked to stop.
    pub(super) fn canceled(&self, name: &str) -> bool {
        self.lock().iter().any(|j| j.name == name && j.cancel)
    }

    /// A copy of job `name`.
    fn get(&self, name: &str) -> Option<Migration> {
        self.lock().iter().find(|j| j.name == name).cloned()
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

/// CLUSTER CANCELSLOTMIGRATIONS (Valkey 9): stops every job this node runs that has not
/// started its hand-over. A stopped job moved nothing: this node keeps every key, the
/// markers go, and its state becomes `canceled`.
pub fn cancel(cluster: &Cluster) -> Reply {
    cluster.slot_jobs.cancel_running();
    Reply::Ok
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
    settle_imports(cluster);
    let bulk = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Reply::Array(
        cluster
            .slot_jobs
            .list()
            .into_iter()
            .map(|m| {
                Reply::Map(vec![
                    (bulk("name"), bulk(&m.name)),
                    (bulk("operation"), bulk(m.operation)),
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

/// The states a job ends in, as the source tells the target.
const END_STATES: [&str; 3] = ["success", "failed", "canceled"];

/// `CLUSTER BATON-SLOTJOB <name> <state> <keys moved> <message> <source-id> <start> <end>
/// [...]`: what the source tells the target of job `m`.
fn slotjob_command(m: &Migration) -> Vec<u8> {
    let mut args = vec![
        "CLUSTER".to_string(),
        "BATON-SLOTJOB".into(),
        m.name.clone(),
        m.state.into(),
        m.keys_moved.to_string(),
        m.message.clone(),
        m.source.clone(),
    ];
    for &(a, b) in &m.ranges {
        args.push(a.to_string());
        args.push(b.to_string());
    }
    encode_command(&args)
}

/// Tells the target of job `m` its state (best effort: an older Baton does not know the
/// command, and a target that missed the end settles its entry by itself).
async fn tell_target(link: &Link, m: &Migration) {
    if let Err(e) = link.all_ok(vec![slotjob_command(m)]).await {
        tracing::debug!("slot migration {}: the target's job list: {e}", m.name);
    }
}

/// CLUSTER BATON-SLOTJOB (between Baton nodes only; see [`slotjob_command`]): records
/// or updates the import side of a job on its target.
pub fn record_import(cluster: &Cluster, args: &[Bytes]) -> Reply {
    let text = |a: &Bytes| String::from_utf8_lossy(a).into_owned();
    let state = match &text(&args[3])[..] {
        "running" => "running",
        s => match END_STATES.iter().find(|e| **e == s) {
            Some(e) => e,
            None => return errors::SYNTAX,
        },
    };
    let Some(keys_moved) = baton_engine::commands::parse_i64(&args[4]).filter(|n| *n >= 0) else {
        return errors::NOT_INTEGER;
    };
    if args.len().is_multiple_of(2) {
        return errors::SYNTAX;
    }
    let mut ranges = Vec::new();
    for pair in args[7..].chunks(2) {
        match (slot_arg(&pair[0]), slot_arg(&pair[1])) {
            (Ok(a), Ok(b)) if a <= b => ranges.push((a, b)),
            (Err(e), _) | (_, Err(e)) => return e,
            _ => return errors::SYNTAX,
        }
    }
    let name = text(&args[2]);
    let (message, source) = (text(&args[5]), text(&args[6]));
    let me = cluster.read(|st| st.myself.clone());
    let known = cluster.slot_jobs.lock().iter().any(|j| j.name == name);
    if known {
        cluster.slot_jobs.update(&name, |j| {
            j.state = state;
            j.keys_moved = keys_moved as u64;
            j.message = message;
        });
    } else {
        let now = now_ms();
        cluster.slot_jobs.add(Migration {
            name,
            operation: "IMPORT",
            ranges,
            source,
            target: me,
            created_ms: now,
            updated_ms: now,
            state,
            message,
            keys_moved: keys_moved as u64,
            cancel: false,
        });
    }
    Reply::Ok
}

/// Ends the running import entries whose slots are no longer importing here: the source
/// finished (or gave up on) the job without telling this node.
fn settle_imports(cluster: &Cluster) {
    let running: Vec<(String, Vec<(u16, u16)>)> = cluster
        .slot_jobs
        .list()
        .into_iter()
        .filter(|j| j.operation == "IMPORT" && j.state == "running")
        .map(|j| (j.name, j.ranges))
        .collect();
    for (name, ranges) in running {
        let slots = || ranges.iter().flat_map(|&(a, b)| a..=b);
        let ended = cluster.read(|st| {
            if slots().any(|s| st.importing.contains_key(&s)) {
                return None;
            }
            Some(slots().all(|s| st.owner(s).is_some_and(|n| n.id == st.myself)))
        });
        if let Some(owned) = ended {
            cluster.slot_jobs.update(&name, |j| {
                if owned {
                    j.state = "success";
                } else {
                    j.state = "failed";
                    j.message = "the source ended the migration".into();
                }
            });
        }
    }
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
    // As MIGRATE: a primary cut off from the majority moves no slot.
    if nc.core.router.view().is_some_and(|v| v.down) {
        return Reply::err(baton_engine::exec::plan::CLUSTER_DOWN);
    }
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
        let auth = crate::repl_state::lock(&nc.shared.repl.masterauth).clone();
        let link = match Link::open(nc.core.clone(), p.host.clone(), p.port, auth) {
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
                st.streaming.insert(s);
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
            operation: "EXPORT",
            ranges: p.ranges.clone(),
            source: me.clone(),
            target: p.target.clone(),
            created_ms: now,
            updated_ms: now,
            state: "running",
            message: String::new(),
            keys_moved: 0,
            cancel: false,
        });
        let (core, cluster) = (nc.core.clone(), cluster.clone());
        baton_engine::runtime::wake::spawn(async move {
            if let Some(m) = cluster.slot_jobs.get(&p.name) {
                tell_target(&link, &m).await;
            }
            let r = slotstream::run(&core, &cluster, &link, &p.name, &p.slots, &p.target).await;
            let id = p.name.clone();
            cluster.slot_jobs.update(&id, |j| match r {
                Ok(handed) => {
                    j.state = "success";
                    j.keys_moved = handed;
                }
                Err(e) if j.cancel => {
                    j.state = "canceled";
                    j.message = e;
                }
                Err(e) => {
                    tracing::warn!("slot migration {id} failed: {e}");
                    j.state = "failed";
                    j.message = e;
                }
            });
            if let Some(m) = cluster.slot_jobs.get(&id) {
                tell_target(&link, &m).await;
            }
        });
    }
    Reply::Ok
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
        assert_eq!(
            slotstream::runs(&[0, 1, 2, 5, 7, 8]),
            vec![(0, 2), (5, 5), (7, 8)]
        );
    }
}
