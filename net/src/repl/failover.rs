//! `FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | ABORT`, as Redis 7's: the primary
//! pauses writes (they wait, they are not refused), waits until the target replica has
//! acknowledged every shard's journal end, tells it to become a primary, and becomes its
//! replica. A write that was acknowledged before the pause is on the target, so none is
//! lost; writes that waited during the pause then answer -READONLY.
//!
//! The driver is a thread of its own: it only reads shared state, sleeps, and makes one
//! blocking connection to the target, none of which may stall a core.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::reply::Reply;
use bytes::Bytes;

use super::link;
use crate::config::Shared;
use crate::repl_state::{lock, Repl, ReplicaInfo};

/// What FAILOVER was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    to: Option<(String, u16)>,
    force: bool,
    timeout_ms: u64,
}

fn parse(args: &[Bytes]) -> Result<Option<Request>, Reply> {
    let eq = |a: &Bytes, b: &str| a.eq_ignore_ascii_case(b.as_bytes());
    let mut req = Request {
        to: None,
        force: false,
        timeout_ms: 0,
    };
    let mut abort = false;
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "to") && i + 2 < args.len() && req.to.is_none() {
            let port = std::str::from_utf8(&args[i + 2])
                .ok()
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| Reply::error("ERR value is not an integer or out of range"))?;
            req.to = Some((String::from_utf8_lossy(&args[i + 1]).into_owned(), port));
            i += 3;
        } else if eq(a, "timeout") && i + 1 < args.len() && req.timeout_ms == 0 {
            let t = std::str::from_utf8(&args[i + 1])
                .ok()
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or_else(|| Reply::error("ERR value is not an integer or out of range"))?;
            if t <= 0 {
                return Err(Reply::error("ERR FAILOVER timeout must be greater than 0"));
            }
            req.timeout_ms = t as u64;
            i += 2;
        } else if eq(a, "force") && !req.force {
            req.force = true;
            i += 1;
        } else if eq(a, "abort") && !abort {
            abort = true;
            i += 1;
        } else {
            return Err(Reply::error("ERR syntax error"));
        }
    }
    if abort {
        if req.to.is_some() || req.force || req.timeout_ms > 0 {
            return Err(Reply::error("ERR syntax error"));
        }
        return Ok(None);
    }
    if req.force && (req.to.is_none() || req.timeout_ms == 0) {
        return Err(Reply::error(
            "ERR FAILOVER with force option requires both a timeout and target HOST and PORT.",
        ));
    }
    Ok(Some(req))
}

/// Runs the FAILOVER command.
pub fn failover(shared: &Arc<Shared>, args: &[Bytes]) -> Reply {
    let repl = &shared.repl;
    let req = match parse(args) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(req) = req else {
        // ABORT.
        let mut state = lock(&repl.failover_state);
        if *state == "no-failover" {
            return Reply::error("ERR No failover in progress.");
        }
        *state = "aborting";
        return Reply::Ok;
    };
    if repl.is_replica() {
        return Reply::error("ERR FAILOVER is not valid when server is a replica.");
    }
    let replicas = repl.listed_replicas();
    if replicas.is_empty() {
        return Reply::error("ERR FAILOVER requires connected replicas.");
    }
    if let Some((host, port)) = &req.to {
        if !replicas.iter().any(|r| names(r, host, *port)) {
            return Reply::error("ERR FAILOVER target HOST and PORT is not a replica.");
        }
    }
    {
        let mut state = lock(&repl.failover_state);
        if *state != "no-failover" {
            return Reply::error("ERR FAILOVER already in progress.");
        }
        *state = "waiting-for-sync";
    }
    repl.writes_paused.store(true, Ordering::Release);
    tracing::info!("FAILOVER requested to {:?}", req.to);
    let shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("baton-failover".into())
        .spawn(move || drive(&shared, req));
    if let Err(e) = spawned {
        end(repl);
        return Reply::error(format!("ERR cannot start the failover: {e}"));
    }
    Reply::Ok
}

fn names(r: &ReplicaInfo, host: &str, port: u16) -> bool {
    r.port == port && (r.ip == host || (host == "localhost" && r.ip == "127.0.0.1"))
}

/// The failover is over (done or not): writes go on, the state is cleared.
fn end(repl: &Repl) {
    *lock(&repl.failover_state) = "no-failover";
    repl.writes_paused.store(false, Ordering::Release);
}

fn drive(shared: &Arc<Shared>, req: Request) {
    let repl = &shared.repl;
    let started = Instant::now();
    let targets = repl.ends();
    // Wait until a replica (the one named, or any) holds every shard's offset.
    let chosen = loop {
        if *lock(&repl.failover_state) == "aborting" {
            tracing::info!("FAILOVER aborted by the user");
            return end(repl);
        }
        let replicas = repl.listed_replicas();
        let caught_up = replicas.iter().find(|r| {
            req.to.as_ref().is_none_or(|(h, p)| names(r, h, *p))
                && r.state() == "online"
                && targets
                    .iter()
                    .enumerate()
                    .all(|(k, &t)| r.acked.get(k).is_some_and(|&a| a >= t))
        });
        if let Some(r) = caught_up {
            break (r.ip.clone(), r.port);
        }
        if req.timeout_ms > 0 && started.elapsed() >= Duration::from_millis(req.timeout_ms) {
            if req.force {
                let (h, p) = req.to.clone().expect("FORCE needs a target");
                tracing::warn!("FAILOVER timed out waiting for the target; forcing it");
                break (h, p);
            }
            tracing::warn!("FAILOVER to the replica timed out waiting for it to catch up; aborted");
            return end(repl);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    *lock(&repl.failover_state) = "failover-in-progress";
    let (host, port) = chosen;
    if let Err(e) = promote_target(shared, &host, port) {
        tracing::warn!("FAILOVER could not promote {host}:{port}: {e}; aborted");
        return end(repl);
    }
    tracing::info!("FAILOVER: {host}:{port} is the primary now; following it");
    link::start(shared, host, port);
    end(repl);
}

/// Tells the target to become a primary (`REPLICAOF NO ONE`, authenticated with
/// masterauth when set), over a connection like the replication link's.
fn promote_target(shared: &Shared, host: &str, port: u16) -> std::io::Result<()> {
    let mut s = link::connect(shared, host, port)?;
    link::call(&mut s, &["REPLICAOF", "NO", "ONE"])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn parses_redis_forms() {
        assert_eq!(
            parse(&args("FAILOVER")).unwrap(),
            Some(Request {
                to: None,
                force: false,
                timeout_ms: 0
            })
        );
        assert_eq!(
            parse(&args("FAILOVER TO h 7000 FORCE TIMEOUT 50")).unwrap(),
            Some(Request {
                to: Some(("h".into(), 7000)),
                force: true,
                timeout_ms: 50
            })
        );
        assert_eq!(parse(&args("FAILOVER ABORT")).unwrap(), None);
        let err = |l: &str| match parse(&args(l)) {
            Err(Reply::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("{l}: {other:?}"),
        };
        assert!(err("FAILOVER FORCE").contains("requires both a timeout and target"));
        assert!(err("FAILOVER TIMEOUT 0").contains("greater than 0"));
        assert!(err("FAILOVER ABORT TIMEOUT 5").contains("syntax error"));
        assert!(err("FAILOVER TO h").contains("syntax error"));
        assert!(err("FAILOVER BOGUS").contains("syntax error"));
    }
}
