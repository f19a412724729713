//! REPLICAOF (and SLAVEOF), ROLE, WAIT, REPLCONF and FLOWSYNC, and INFO's replication
//! section, in Redis 7's formats.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use baton_engine::reply::Reply;
use baton_engine::runtime::now_ms;
use bytes::Bytes;

use super::link;
use crate::client::Client;
use crate::config::Shared;
use crate::netcore::NetCore;
use crate::repl_state::{lock, new_replid, FeedRequest, ReplicaInfo, Role};

fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `REPLICAOF host port | NO ONE` (and `SLAVEOF`).
pub fn replicaof(shared: &Arc<Shared>, args: &[Bytes]) -> Reply {
    let repl = &shared.repl;
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        if repl.is_replica() {
            promote(shared);
            tracing::info!("MASTER MODE enabled (user request)");
        }
        return Reply::Ok;
    }
    let Some(port) = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|p| p.parse::<i64>().ok())
    else {
        return Reply::error("ERR value is not an integer or out of range");
    };
    if !(0..=65535).contains(&port) {
        return Reply::error("ERR Invalid master port");
    }
    let host = text(&args[1]);
    if repl.role()
        == (Role::Replica {
            host: host.clone(),
            port: port as u16,
        })
    {
        return Reply::simple("OK Already connected to specified master");
    }
    tracing::info!("REPLICAOF {host}:{port} enabled (user request)");
    link::start(shared, host, port as u16);
    Reply::Ok
}

/// Makes this replica a primary: the link stops, and the replication id it served moves
/// to `master_replid2`, valid up to each flow's current offset, so that the old
/// primary's other replicas resume from this one.
pub fn promote(shared: &Shared) {
    let repl = &shared.repl;
    link::stop(repl);
    let at = repl.ends();
    lock(&repl.ids).promote(new_replid(), at);
    repl.set_role(Role::Primary);
}

/// `ROLE`.
pub fn role(shared: &Shared) -> Reply {
    let repl = &shared.repl;
    match repl.role() {
        Role::Primary => {
            let replicas = repl
                .listed_replicas()
                .iter()
                .map(|r| {
                    Reply::Array(vec![
                        bulk(r.ip.clone()),
                        bulk(r.port.to_string()),
                        bulk(r.offset().to_string()),
                    ])
                })
                .collect();
            Reply::Array(vec![
                bulk("master"),
                Reply::Int(repl.offset() as i64),
                Reply::Array(replicas),
            ])
        }
        Role::Replica { host, port } => {
            let l = lock(&repl.link);
            let state = if l.up {
                "connected"
            } else if l.sync_in_progress {
                "sync"
            } else if l.live_flows > 0 {
                "connecting"
            } else {
                "connect"
            };
            Reply::Array(vec![
                bulk("slave"),
                bulk(host),
                Reply::Int(port as i64),
                bulk(state),
                Reply::Int(l.offsets.iter().sum::<u64>() as i64),
            ])
        }
    }
}

/// `REPLCONF option value ...`: what a replica tells its primary on the control
/// connection. `REPLCONF flows` answers the primary's shape: its core count and
/// replication id.
pub fn replconf(shared: &Shared, client: &Client, args: &[Bytes]) -> Reply {
    if args.len() == 2 && args[1].eq_ignore_ascii_case(b"flows") {
        let id = lock(&shared.repl.ids).id;
        return Reply::Array(vec![
            Reply::Int(shared.repl.cores as i64),
            Reply::Bulk(Bytes::copy_from_slice(&id)),
        ]);
    }
    if args.len().is_multiple_of(2) {
        return Reply::error("ERR syntax error");
    }
    for pair in args[1..].chunks(2) {
        if pair[0].eq_ignore_ascii_case(b"listening-port") {
            client.conn.replica.set(true);
        }
        let known = [
            "listening-port",
            "ip-address",
            "capa",
            "ack",
            "getack",
            "rdb-only",
        ];
        if !known
            .iter()
            .any(|k| pair[0].eq_ignore_ascii_case(k.as_bytes()))
        {
            return Reply::error(format!(
                "ERR Unrecognized REPLCONF option: {}",
                text(&pair[0])
            ));
        }
    }
    Reply::Ok
}

/// FLOWSYNC's answer when it came with other commands (pipelined, or in a transaction).
pub const FLOWSYNC_NOT_ALONE: Reply =
    Reply::err("ERR FLOWSYNC must be the only command of its connection");

/// `FLOWSYNC shard replid offset replica-id listening-port [announce-ip]`: the connection
/// becomes the flow of `shard`. Its arguments are checked here (the dispatcher checked
/// arity and auth); the loop then moves the socket to that shard's core.
pub fn flowsync(shared: &Shared, client: &Client, args: &[Bytes]) -> Result<FeedRequest, Reply> {
    if !(6..=7).contains(&args.len()) {
        return Err(Reply::error(
            "ERR wrong number of arguments for 'flowsync' command",
        ));
    }
    if shared.repl.is_replica() && !crate::repl_state::lock(&shared.repl.link).up {
        // As Redis's: a replica serves its own replicas only while its link is up, so a
        // loop of replicas (or one of itself) never feeds on its own stale data.
        return Err(Reply::error(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    let num = |b: &Bytes| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    let shard = num(&args[1])
        .filter(|s| (0..shared.repl.cores as i64).contains(s))
        .ok_or_else(|| {
            Reply::error(format!(
                "ERR FLOWSYNC shard must be between 0 and {}",
                shared.repl.cores - 1
            ))
        })? as usize;
    let offset =
        num(&args[3]).ok_or_else(|| Reply::error("ERR FLOWSYNC offset is not an integer"))?;
    let asked = if args[2].as_ref() == b"?" || offset < 0 {
        None
    } else if args[2].len() == 40 {
        let mut id = [0u8; 40];
        id.copy_from_slice(&args[2]);
        Some((id, offset as u64))
    } else {
        return Err(Reply::error(
            "ERR FLOWSYNC replication id must be 40 characters",
        ));
    };
    let port = num(&args[5])
        .filter(|p| (0..=65535).contains(p))
        .ok_or_else(|| Reply::error("ERR Invalid listening port"))? as u16;
    // The address the replica announces (`replica-announce-ip`), else the socket's.
    let ip = match args.get(6) {
        Some(ip) => text(ip),
        None => client
            .conn
            .peer
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "?".into()),
    };
    Ok(FeedRequest {
        shard,
        asked,
        replica_id: text(&args[4]),
        ip,
        port,
    })
}

/// `WAIT numreplicas timeout`: waits until that many replicas acknowledged, on every
/// shard, the journal offset the shard had reached when WAIT began (so every write this
/// client made before, and perhaps some of others'), or the timeout passed.
pub async fn wait(nc: &NetCore, args: &[Bytes]) -> Reply {
    let repl = &nc.shared.repl;
    if repl.is_replica() {
        return Reply::error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let num = |b: &Bytes| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    let Some(wanted) = num(&args[1]) else {
        return Reply::error("ERR value is not an integer or out of range");
    };
    let Some(timeout) = num(&args[2]) else {
        return Reply::error("ERR timeout is not an integer or out of range");
    };
    if timeout < 0 {
        return Reply::error("ERR timeout is negative");
    }
    let targets = repl.ends();
    let deadline = (timeout > 0).then(|| now_ms() + timeout as u64);
    loop {
        let n = repl.acked_count(&targets);
        if n as i64 >= wanted || deadline.is_some_and(|d| now_ms() >= d) {
            return Reply::Int(n as i64);
        }
        if crate::handoff::Handoff::frozen(nc.shared.handoff.phase()) {
            // A handoff is freezing this server: WAIT answers now with what it has, as a
            // timeout would, instead of holding the freeze (a `WAIT n 0` never returns).
            // The client's connection then moves to the new process like any other.
            return Reply::Int(n as i64);
        }
        nc.core.timers.sleep_until(now_ms() + 1).await;
    }
}

/// INFO's `connected_slaves` and `slaveN` lines: this server's own replicas (a
/// replica's too, when it has some).
fn replica_lines(repl: &crate::repl_state::Repl, now: u64, lines: &mut Vec<String>) {
    let replicas = repl.listed_replicas();
    lines.push(format!("connected_slaves:{}", replicas.len()));
    let ends = repl.ends();
    for (i, r) in replicas.iter().enumerate() {
        lines.push(replica_line(i, r, &ends, now));
    }
}

/// INFO's `slaveN` line for replica `i`. Its lag is the seconds since its last ACK, or 0
/// while it holds everything the primary wrote (an idle primary sends nothing to ack).
fn replica_line(i: usize, r: &ReplicaInfo, ends: &[u64], now: u64) -> String {
    let caught_up = ends
        .iter()
        .enumerate()
        .all(|(k, &e)| r.acked.get(k).is_some_and(|&a| a >= e));
    let lag = if caught_up {
        0
    } else {
        now.saturating_sub(r.last_ack_ms) / 1000
    };
    format!(
        "slave{i}:ip={},port={},state={},offset={},lag={lag}",
        r.ip,
        r.port,
        r.state(),
        r.offset(),
    )
}

/// INFO's `# Replication` lines, in Redis 7's order.
pub fn info_lines(shared: &Shared) -> Vec<String> {
    let repl = &shared.repl;
    let now = now_ms();
    let mut lines = Vec::new();
    let offset = repl.offset();
    match repl.role() {
        Role::Primary => {
            lines.push("role:master".into());
            replica_lines(repl, now, &mut lines);
        }
        Role::Replica { host, port } => {
            let l = lock(&repl.link).clone();
            lines.push("role:slave".into());
            lines.push(format!("master_host:{host}"));
            lines.push(format!("master_port:{port}"));
            lines.push(format!(
                "master_link_status:{}",
                if l.up { "up" } else { "down" }
            ));
            let last_io = if l.last_io_ms == 0 {
                -1
            } else {
                (now.saturating_sub(l.last_io_ms) / 1000) as i64
            };
            lines.push(format!("master_last_io_seconds_ago:{last_io}"));
            lines.push(format!(
                "master_sync_in_progress:{}",
                l.sync_in_progress as u8
            ));
            let applied = repl.applied_offset();
            lines.push(format!("slave_read_repl_offset:{applied}"));
            lines.push(format!("slave_repl_offset:{applied}"));
            if !l.up {
                let since = if l.down_since_ms == 0 {
                    -1
                } else {
                    (now.saturating_sub(l.down_since_ms) / 1000) as i64
                };
                lines.push(format!("master_link_down_since_seconds:{since}"));
            }
            lines.push(format!(
                "slave_priority:{}",
                repl.priority.load(Ordering::Relaxed)
            ));
            lines.push(format!(
                "slave_read_only:{}",
                repl.read_only.load(Ordering::Relaxed) as u8
            ));
            lines.push("replica_announced:1".into());
            replica_lines(repl, now, &mut lines);
        }
    }
    let ids = lock(&repl.ids).clone();
    let second = if ids.second_offsets.is_empty() {
        -1
    } else {
        ids.second_offsets.iter().sum::<u64>() as i64 + 1
    };
    let (active, size, first, histlen) = backlog_facts(shared);
    lines.extend([
        format!("master_failover_state:{}", *lock(&repl.failover_state)),
        format!("master_replid:{}", text(&ids.id)),
        format!("master_replid2:{}", text(&ids.id2)),
        format!("master_repl_offset:{offset}"),
        format!("second_repl_offset:{second}"),
        format!("repl_backlog_active:{}", active as u8),
        format!("repl_backlog_size:{size}"),
        format!("repl_backlog_first_byte_offset:{first}"),
        format!("repl_backlog_histlen:{histlen}"),
    ]);
    lines
}

/// Whether any shard keeps a backlog, its configured total size, and (summed over
/// shards) the first offset held plus one and the bytes held.
fn backlog_facts(shared: &Shared) -> (bool, u64, u64, u64) {
    let repl = &shared.repl;
    let mut active = false;
    let (mut first, mut len) = (0u64, 0u64);
    for k in 0..repl.cores {
        if let Some(j) = repl.journal(k) {
            active = true;
            let b = j.backlog();
            first += b.start();
            len += b.end() - b.start();
        }
    }
    let size = repl.backlog_size.load(Ordering::Relaxed);
    (active, size, if active { first + 1 } else { 0 }, len)
}
