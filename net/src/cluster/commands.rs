//! CLUSTER and its subcommands, ASKING, READONLY and READWRITE, in Redis 7's formats and
//! with its error texts.
//!
//! [`handle`] answers what needs only the cluster state; [`run_async`] what needs every
//! core (key counts: COUNTKEYSINSLOT, GETKEYSINSLOT, SETSLOT NODE, RESET) or the network
//! (MEET). The dispatcher has checked the subcommand's arity.

use std::sync::Arc;

use baton_engine::exec::with_every_core;
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::now_ms;
use baton_ring::{slot, SLOTS};
use bytes::Bytes;

use super::state::State;
use super::{slot_arg, wire, Cluster};
use crate::client::Client;
use crate::netcore::NetCore;

/// The answer to every cluster command on a server without cluster mode.
pub const DISABLED: &str = "ERR This instance has cluster support disabled";

/// Most keys one GETKEYSINSLOT returns (bounds the reply).
pub const MAX_GETKEYS: i64 = 1 << 20;

/// Redis 7's answer to an unknown CLUSTER subcommand.
fn unknown_subcommand(sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try CLUSTER HELP.",
        String::from_utf8_lossy(sub)
    ))
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

fn text(s: String) -> Reply {
    Reply::Verbatim(Bytes::from(s))
}

fn cluster_of(nc: &NetCore) -> Result<&Arc<Cluster>, Reply> {
    nc.shared.cluster.get().ok_or(Reply::err(DISABLED))
}

fn node_arg(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// ASKING, READONLY, READWRITE.
pub fn connection_flag(nc: &NetCore, client: &Client, name: &str) -> Reply {
    if nc.shared.cluster.get().is_none() {
        return Reply::err(DISABLED);
    }
    match name {
        "asking" => client.conn.asking.set(true),
        "readonly" => client.conn.readonly.set(true),
        _ => client.conn.readonly.set(false),
    }
    Reply::Ok
}

/// CLUSTER <subcommand> ...: the answer, or `None` when [`run_async`] must finish it.
pub fn handle(nc: &NetCore, client: &Client, args: &[Bytes]) -> Option<Reply> {
    if client.conn.handoff_link.get() && eq(&args[1], "baton-mc") {
        // The old process of a handoff forwards memcached requests for the shards it cut
        // over, cluster mode or not ([`crate::handoff::cutover`]).
        return None;
    }
    let cluster = match cluster_of(nc) {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let timeout = cluster.config.node_timeout_ms;
    let r = match sub.as_str() {
        "help" => Reply::help_lines(HELP),
        "myid" => cluster.read(|st| bulk(st.myself.clone())),
        "info" => cluster.read(|st| text(info(st, now_ms(), timeout))),
        "nodes" => cluster.read(|st| text(st.render_nodes(now_ms(), timeout))),
        "slots" => cluster.read(slots),
        "shards" => {
            let progress = super::replicas::repl_progress(&nc.shared);
            cluster.read(|st| shards(st, now_ms(), timeout, progress))
        }
        "keyslot" => Reply::Int(i64::from(slot(&args[2]))),
        "addslots" | "delslots" => {
            let add = sub == "addslots";
            match args[2..]
                .iter()
                .map(|a| slot_arg(a))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(list) => update_slots(cluster, &list, add),
                Err(e) => e,
            }
        }
        "addslotsrange" | "delslotsrange" => {
            let add = sub == "addslotsrange";
            if args.len() % 2 == 1 {
                return Some(errors::wrong_arity(&format!("cluster|{sub}")));
            }
            let mut list = Vec::new();
            for pair in args[2..].chunks(2) {
                let (a, b) = match (slot_arg(&pair[0]), slot_arg(&pair[1])) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => return Some(e),
                };
                if a > b {
                    return Some(Reply::error(format!(
                        "ERR start slot number {a} is greater than end slot number {b}"
                    )));
                }
                list.extend(a..=b);
            }
            update_slots(cluster, &list, add)
        }
        "set-config-epoch" => set_config_epoch(cluster, &args[2]),
        "bumpepoch" => match cluster.change(|st| {
            let bumped = st.bump_epoch();
            Ok((bumped, st.me().config_epoch))
        }) {
            Ok((true, e)) => Reply::Simple(Bytes::from(format!("BUMPED {e}"))),
            Ok((false, e)) => Reply::Simple(Bytes::from(format!("STILL {e}"))),
            Err(e) => e,
        },
        "forget" => {
            let id = node_arg(&args[2]);
            cluster
                .change(|st| {
                    if id == st.myself {
                        return Err(Reply::err("ERR I tried hard but I can't forget myself..."));
                    }
                    if !st.nodes.contains_key(&id) {
                        return Err(Reply::error(format!("ERR Unknown node {id}")));
                    }
                    st.forget(&id, now_ms());
                    Ok(Reply::Ok)
                })
                .unwrap_or_else(|e| e)
        }
        "baton-view" => match args.get(3) {
            None => baton_view(cluster, client, &args[2], false),
            Some(a) if eq(a, "meet") && args.len() == 4 => {
                baton_view(cluster, client, &args[2], true)
            }
            Some(_) => errors::SYNTAX,
        },
        "replicas" | "slaves" => {
            cluster.read(|st| super::replicas::list(st, &args[2], now_ms(), timeout))
        }
        "failover" => super::replicas::failover(&nc.shared, cluster, args),
        "getslotmigrations" => super::slotmove::list(cluster),
        "cancelslotmigrations" => super::slotmove::cancel(cluster),
        "baton-slotjob" => super::slotmove::record_import(cluster, args),
        "meet" | "setslot" | "reset" | "countkeysinslot" | "getkeysinslot" | "replicate"
        | "baton-mfstart" | "baton-mc" | "migrateslots" | "baton-slots" => return None,
        _ => unknown_subcommand(&args[1]),
    };
    Some(r)
}

/// The subcommands that need every core or the network.
pub async fn run_async(nc: &NetCore, client: &Client, args: &[Bytes]) -> Reply {
    if client.conn.handoff_link.get() && eq(&args[1], "baton-mc") {
        return super::mcserve::serve(nc, args).await;
    }
    let cluster = match cluster_of(nc) {
        Ok(c) => c.clone(),
        Err(e) => return e,
    };
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "meet" => meet(nc, &cluster, args).await,
        "baton-mc" => super::mcserve::serve(nc, args).await,
        "countkeysinslot" => match slot_arg(&args[2]) {
            Ok(s) => Reply::Int(count_keys(nc, s).await as i64),
            Err(_) => Reply::err("ERR Invalid slot"),
        },
        "getkeysinslot" => {
            let s = slot_arg(&args[2]);
            let n = baton_engine::commands::parse_i64(&args[3])
                .filter(|n| (0..=MAX_GETKEYS).contains(n));
            match (s, n) {
                (Ok(s), Some(n)) => Reply::Array(
                    keys_in_slot(nc, s, n as usize)
                        .await
                        .into_iter()
                        .map(Reply::Bulk)
                        .collect(),
                ),
                _ => Reply::err("ERR Invalid slot or number of keys"),
            }
        }
        "setslot" => setslot(nc, &cluster, args).await,
        "migrateslots" => super::slotmove::start(nc, &cluster, args).await,
        "baton-slots" => super::slotmove::bulk_setslot(nc, &cluster, args).await,
        "replicate" => super::replicas::replicate(nc, &cluster, &args[2]).await,
        "baton-mfstart" => super::replicas::mf_start_command(nc, &cluster, args).await,
        "reset" => {
            let hard = match args.get(2) {
                None => false,
                Some(a) if eq(a, "hard") => true,
                Some(a) if eq(a, "soft") => false,
                Some(_) => return errors::SYNTAX,
            };
            if args.len() > 3 {
                return errors::SYNTAX;
            }
            // A replica is made an empty primary (Redis flushes it); a primary must be
            // empty already.
            let replica = cluster.read(|st| st.me().primary.is_some());
            if !replica && total_keys(nc).await > 0 {
                return Reply::err(
                    "ERR CLUSTER RESET can't be called with master nodes containing keys",
                );
            }
            let r = cluster
                .change(|st| {
                    st.reset(hard, crate::ids::new_run_id());
                    Ok(Reply::Ok)
                })
                .unwrap_or_else(|e| e);
            if replica {
                super::replicas::sync_role(&nc.shared, &cluster);
                super::replicas::flush(nc).await;
            }
            r
        }
        _ => unknown_subcommand(&args[1]),
    }
}

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "BUMPEPOCH",
    "CANCELSLOTMIGRATIONS",
    "COUNTKEYSINSLOT <slot>",
    "DELSLOTS <slot> [<slot> ...]",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "FAILOVER [FORCE|TAKEOVER]",
    "FORGET <node-id>",
    "GETKEYSINSLOT <slot> <count>",
    "GETSLOTMIGRATIONS",
    "INFO",
    "KEYSLOT <key>",
    "MEET <ip> <port> [<bus-port>]",
    "MIGRATESLOTS SLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...] NODE <node-id> [SLOTSRANGE ... NODE <node-id> ...]",
    "MYID",
    "NODES",
    "REPLICATE <node-id>",
    "REPLICAS <node-id>",
    "RESET [HARD|SOFT]",
    "SET-CONFIG-EPOCH <epoch>",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "SHARDS",
    "SLAVES <node-id>",
    "SLOTS",
    "BATON-VIEW <payload> [MEET] (between Baton nodes only)",
    "BATON-MFSTART <replica-id> <pause-ms> (between Baton nodes only)",
    "BATON-SLOTS IMPORTING|NODE|STABLE <node-id> <start slot> <end slot> [...] (between Baton nodes only)",
    "BATON-SLOTJOB <name> <state> <keys moved> <message> <source-id> <start slot> <end slot> [...] (between Baton nodes only)",
];

/// ADDSLOTS / DELSLOTS (and their RANGE forms) of parsed slots, all or nothing.
fn update_slots(cluster: &Cluster, list: &[u16], add: bool) -> Reply {
    cluster
        .change(|st| {
            let mut seen = vec![false; usize::from(SLOTS)];
            for &s in list {
                match (add, st.owner(s).is_some()) {
                    (false, false) => {
                        return Err(Reply::error(format!("ERR Slot {s} is already unassigned")))
                    }
                    (true, true) => {
                        return Err(Reply::error(format!("ERR Slot {s} is already busy")))
                    }
                    _ => {}
                }
                if std::mem::replace(&mut seen[usize::from(s)], true) {
                    return Err(Reply::error(format!(
                        "ERR Slot {s} specified multiple times"
                    )));
                }
            }
            st.set_slots(list, add);
            Ok(Reply::Ok)
        })
        .unwrap_or_else(|e| e)
}

/// CLUSTER SET-CONFIG-EPOCH <epoch>
fn set_config_epoch(cluster: &Cluster, arg: &[u8]) -> Reply {
    let Some(epoch) = baton_engine::commands::parse_i64(arg) else {
        return errors::NOT_INTEGER;
    };
    cluster
        .change(|st| {
            if epoch < 0 {
                Err(Reply::error(format!("ERR Invalid config epoch specified: {epoch}")))
            } else if st.nodes.len() > 1 {
                Err(Reply::err(
                    "ERR The user can assign a config epoch only when the node does not know any other node.",
                ))
            } else if st.me().config_epoch != 0 {
                Err(Reply::err("ERR Node config epoch is already non-zero"))
            } else {
                st.set_config_epoch(epoch as u64);
                Ok(Reply::Ok)
            }
        })
        .unwrap_or_else(|e| e)
}

/// CLUSTER BATON-VIEW <payload> [MEET]: a peer's view, answered with this node's. It is
/// merged only when its sender is known here or it comes from a MEET: as in Redis, where
/// only a MEET makes a node known, so a node that was forgotten (or reset) and still
/// sends its view does not join again.
fn baton_view(cluster: &Cluster, client: &Client, payload: &[u8], meet: bool) -> Reply {
    let view = match wire::parse_message(payload) {
        Ok(v) => v,
        Err(e) => return Reply::error(format!("ERR malformed cluster view: {e}")),
    };
    let peer_ip = client.conn.peer.map(|a| a.ip().to_string());
    let local_ip = client.conn.local.map(|a| a.ip().to_string());
    let now = now_ms();
    cluster
        .change(|st| {
            let known = view.myself().is_some_and(|n| st.nodes.contains_key(&n.id));
            if !known && !meet {
                return Ok(bulk(st.render_message()));
            }
            if let Some(ip) = &local_ip {
                st.learn_my_ip(ip);
            }
            st.merge(&view, peer_ip.as_deref().map(|ip| (ip, 0)), now)
                .map_err(|e| Reply::error(format!("ERR {e}")))?;
            Ok(bulk(st.render_message()))
        })
        .unwrap_or_else(|e| e)
}

/// CLUSTER INFO
fn info(st: &State, now: u64, timeout: u64) -> String {
    let assigned = st.slots_assigned();
    let pfail: usize = st
        .nodes
        .values()
        .filter(|n| st.pfail(n, now, timeout))
        .map(|n| {
            st.ranges_of(n)
                .iter()
                .map(|(a, b)| usize::from(b - a) + 1)
                .sum::<usize>()
        })
        .sum();
    let size = st
        .nodes
        .values()
        .filter(|n| !st.ranges_of(n).is_empty())
        .count();
    let state = if assigned == usize::from(SLOTS) && !st.health.down {
        "ok"
    } else {
        "fail"
    };
    [
        format!("cluster_state:{state}"),
        format!("cluster_slots_assigned:{assigned}"),
        format!("cluster_slots_ok:{}", assigned - pfail),
        format!("cluster_slots_pfail:{pfail}"),
        "cluster_slots_fail:0".into(),
        format!("cluster_known_nodes:{}", st.nodes.len()),
        format!("cluster_size:{size}"),
        format!("cluster_current_epoch:{}", st.current_epoch),
        format!("cluster_my_epoch:{}", st.me().config_epoch),
        format!("cluster_stats_messages_ping_sent:{}", st.sent),
        format!("cluster_stats_messages_sent:{}", st.sent),
        format!("cluster_stats_messages_pong_received:{}", st.received),
        format!("cluster_stats_messages_received:{}", st.received),
        "total_cluster_links_buffer_limit_exceeded:0".into(),
    ]
    .iter()
    .map(|l| format!("{l}\r\n"))
    .collect()
}

/// CLUSTER SLOTS: [start, end, [ip, port, id, {}], replicas...] per owned range, in
/// slot order; each range lists the owner, then its replicas.
fn slots(st: &State) -> Reply {
    let entry = |n: &super::state::Node| {
        Reply::Array(vec![
            bulk(n.ip.clone()),
            Reply::Int(i64::from(n.port)),
            bulk(n.id.clone()),
            Reply::Map(Vec::new()),
        ])
    };
    let mut out = Vec::new();
    for n in st.nodes.values().filter(|n| n.primary.is_none()) {
        let replicas = st.replicas_of(&n.id);
        for (a, b) in st.ranges_of(n) {
            let mut range = vec![Reply::Int(i64::from(a)), Reply::Int(i64::from(b)), entry(n)];
            range.extend(replicas.iter().map(|r| entry(r)));
            out.push((a, Reply::Array(range)));
        }
    }
    out.sort_by_key(|(a, _)| *a);
    Reply::Array(out.into_iter().map(|(_, r)| r).collect())
}

/// CLUSTER SHARDS: one shard per primary, its replicas after it (a replica whose
/// primary is not known here is a shard of its own). `mine`: this node's replication
/// offset and first-sync flag ([`super::replicas::repl_progress`]); the others' come from
/// their last view. Health as Redis's: `fail` when flagged, `loading` for a replica still
/// in its first full sync, else `online`.
fn shards(st: &State, now: u64, timeout: u64, mine: (u64, bool)) -> Reply {
    let pair = |k: &str, v: Reply| (bulk(k), v);
    let node = |n: &super::state::Node| {
        let (off, loading) = if n.id == st.myself {
            mine
        } else {
            (n.repl_offset, n.loading)
        };
        let health = if st.pfail(n, now, timeout) {
            "fail"
        } else if n.primary.is_some() && loading {
            "loading"
        } else {
            "online"
        };
        let role = if n.primary.is_some() {
            "replica"
        } else {
            "master"
        };
        Reply::Map(vec![
            pair("id", bulk(n.id.clone())),
            pair("port", Reply::Int(i64::from(n.port))),
            pair("ip", bulk(n.ip.clone())),
            pair("endpoint", bulk(n.ip.clone())),
            pair("role", bulk(role)),
            pair("replication-offset", Reply::Int(off as i64)),
            pair("health", bulk(health)),
        ])
    };
    Reply::Array(
        st.nodes
            .values()
            .filter(|n| n.primary.as_ref().is_none_or(|p| !st.nodes.contains_key(p)))
            .map(|n| {
                let mut slots = Vec::new();
                for (a, b) in st.ranges_of(n) {
                    slots.push(Reply::Int(i64::from(a)));
                    slots.push(Reply::Int(i64::from(b)));
                }
                let mut nodes = vec![node(n)];
                if n.primary.is_none() {
                    nodes.extend(st.replicas_of(&n.id).into_iter().map(node));
                }
                Reply::Map(vec![
                    pair("slots", Reply::Array(slots)),
                    pair("nodes", Reply::Array(nodes)),
                ])
            })
            .collect(),
    )
}

/// Keys of `slot` on every core (one read of each shard's per-slot index).
async fn count_keys(nc: &NetCore, s: u16) -> usize {
    with_every_core(&nc.core, move |core, _| {
        core.shard.borrow().store().count_in_slot(s)
    })
    .await
    .into_iter()
    .sum()
}

/// Up to `max` keys of `slot` (a walk of each shard's list for the slot).
async fn keys_in_slot(nc: &NetCore, s: u16, max: usize) -> Vec<Bytes> {
    let per_core = with_every_core(&nc.core, move |core, _| {
        core.shard
            .borrow()
            .store()
            .keys_in_slot(s, max)
            .into_iter()
            .map(Bytes::copy_from_slice)
            .collect::<Vec<_>>()
    })
    .await;
    per_core.into_iter().flatten().take(max).collect()
}

async fn total_keys(nc: &NetCore) -> usize {
    with_every_core(&nc.core, |core, _| core.shard.borrow().len())
        .await
        .into_iter()
        .sum()
}

/// CLUSTER MEET <ip> <port> [<bus-port>]: one exchange of views with the node, on a
/// thread (blocking sockets), while this core keeps serving.
async fn meet(nc: &NetCore, cluster: &Arc<Cluster>, args: &[Bytes]) -> Reply {
    let ip = String::from_utf8_lossy(&args[2]).into_owned();
    let port_text = String::from_utf8_lossy(&args[3]).into_owned();
    let Some(port) = port_text.parse::<u16>().ok().filter(|&p| p != 0) else {
        return Reply::error(format!("ERR Invalid base port specified: {port_text}"));
    };
    if let Some(b) = args.get(4) {
        let text = String::from_utf8_lossy(b).into_owned();
        if text.parse::<u16>().is_err() {
            return Reply::error(format!("ERR Invalid bus port specified: {text}"));
        }
    }
    if args.len() > 5 {
        return errors::SYNTAX;
    }
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Reply::error(format!(
            "ERR Invalid node address specified: {ip}:{port_text}"
        ));
    }
    let message = cluster.read(|st| st.render_message());
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = nc.shared.clone();
    let (ip2, message2) = (ip.clone(), message);
    let spawned = std::thread::Builder::new()
        .name("baton-meet".into())
        .spawn(move || {
            let _ = tx.send(super::gossip::meet(&shared, &ip2, port, &message2));
        });
    if let Err(e) = spawned {
        return Reply::error(format!("ERR cannot start MEET: {e}"));
    }
    let answer = loop {
        match rx.try_recv() {
            Ok(answer) => break answer,
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                nc.core.timers.sleep_until(now_ms() + 2).await;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                break Err("MEET ended without an answer".to_string())
            }
        }
    };
    let payload = match answer {
        Ok(p) => p,
        Err(e) => return Reply::error(format!("ERR {e}")),
    };
    let Ok(view) = wire::parse_message(&payload) else {
        return Reply::error(format!("ERR {ip}:{port} is not a Baton cluster node"));
    };
    let now = now_ms();
    cluster
        .change(|st| {
            if view.myself().is_some_and(|n| n.id == st.myself) {
                // Meeting oneself: nothing to learn, as Redis accepts it.
                return Ok(Reply::Ok);
            }
            st.merge(&view, Some((&ip, port)), now)
                .map_err(|e| Reply::error(format!("ERR {e}")))?;
            Ok(Reply::Ok)
        })
        .unwrap_or_else(|e| e)
}

/// CLUSTER SETSLOT <slot> IMPORTING <id> | MIGRATING <id> | STABLE | NODE <id>
async fn setslot(nc: &NetCore, cluster: &Cluster, args: &[Bytes]) -> Reply {
    let s = match slot_arg(&args[2]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let action = String::from_utf8_lossy(&args[3]).to_ascii_lowercase();
    let id = args.get(4).map(|a| node_arg(a));
    let bad =
        Reply::err("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP");
    let id = match (action.as_str(), id, args.len()) {
        ("stable", None, 4) => String::new(),
        ("importing" | "migrating" | "node", Some(id), 5) => id,
        _ => return bad,
    };
    // Keys of the slot, for NODE: counted before taking the state's lock.
    let keys = if action == "node" {
        count_keys(nc, s).await
    } else {
        0
    };
    cluster
        .change(|st| {
            if st.me().primary.is_some() {
                return Err(Reply::err("ERR Please use SETSLOT only with masters."));
            }
            let mine = st.owner(s).is_some_and(|n| n.id == st.myself);
            match action.as_str() {
                "migrating" => {
                    if !mine {
                        return Err(Reply::error(format!("ERR I'm not the owner of hash slot {s}")));
                    }
                    if !st.nodes.contains_key(&id) {
                        return Err(Reply::error(format!("ERR I don't know about node {id}")));
                    }
                    st.migrating.insert(s, id);
                }
                "importing" => {
                    if mine {
                        return Err(Reply::error(format!(
                            "ERR I'm already the owner of hash slot {s}"
                        )));
                    }
                    if !st.nodes.contains_key(&id) {
                        return Err(Reply::error(format!("ERR I don't know about node {id}")));
                    }
                    st.importing.insert(s, id);
                }
                "stable" => {
                    st.migrating.remove(&s);
                    st.importing.remove(&s);
                }
                _ => {
                    if !st.nodes.contains_key(&id) {
                        return Err(Reply::error(format!("ERR Unknown node {id}")));
                    }
                    if mine && id != st.myself && keys != 0 {
                        return Err(Reply::error(format!(
                            "ERR Can't assign hashslot {s} to a different node while I still hold keys for this hash slot."
                        )));
                    }
                    if keys == 0 {
                        st.migrating.remove(&s);
                    }
                    st.assign(s, &id);
                    if id == st.myself && st.importing.remove(&s).is_some() {
                        // Redis's clusterBumpConfigEpochWithoutConsensus: the new owner
                        // needs the highest epoch for the others to accept its claim.
                        st.bump_epoch();
                    }
                }
            }
            Ok(Reply::Ok)
        })
        .unwrap_or_else(|e| e)
}
