//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//! [AUTH password | AUTH2 username password] [KEYS key ...]: moves keys to another Baton
//! (what `redis-cli --cluster reshard` calls for each batch of a slot's keys).
//!
//! 1. Each key is fenced and read on its own core, in one job (value, flags, TTL and
//!    CAS, as DUMP's payload: the target gives the key the same CAS unique, so a
//!    memcached client's `gets` before the move and `cas` after it still match). From
//!    then on, a command touching the key (from any connection and core, MULTI/EXEC and
//!    multi-key commands included) is parked where the key lives: not run, not
//!    answered, its connection's later commands behind it; other keys and connections
//!    are served ([`baton_engine::exec::fence`]).
//! 2. The batch goes to the target as RESTORE-ASKING (RESTORE outside cluster mode) on a
//!    blocking connection of a helper thread.
//! 3. Once the target has answered every one, each key is deleted here (not with COPY)
//!    and its fence lifted, again in one job on its core: the parked commands go on,
//!    find the key gone in a migrating slot and answer `-ASK`. If the target fails or
//!    times out, the fences are lifted and the parked commands run here on the keys,
//!    which stayed.
//!
//! The guarantee: a command on a migrated key runs either wholly before MIGRATE read it
//! (and its effect is in the copy) or after the key was deleted here (at the target,
//! after ASK), never in between; so no write is lost and no read sees a value older than
//! one already acknowledged. A fence never outlives MIGRATE's `timeout` plus
//! [`fence::MARGIN_MS`]: MIGRATE gives up on the target before that, and each core lifts
//! a fence whose deadline passed by its own timer (also the fences of a MIGRATE whose
//! connection died).
//!
//! A fence cannot stop a FLUSHALL, an expiry or an eviction, nor a write after its
//! deadline: the delete happens only when the CAS (which every write changes) is still
//! the one read; a key changed in between stays, is read again and sent again with
//! REPLACE, up to [`ROUNDS`] times, and after that MIGRATE fails (`-IOERR`), so
//! redis-cli stops instead of giving the slot away.

use std::io::Write;
use std::time::Duration;

use std::rc::Rc;

use baton_engine::commands::dump::encode_copy;
use baton_engine::commands::{is_opt, parse_i64};
use baton_engine::exec::{fence, with_every_core, Batch};
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::{now_ms, Core, Job, Out};
use bytes::Bytes;

use crate::netcore::NetCore;
use crate::repl::link::{dial, encode_command, read_reply, Resp};

/// MIGRATE's parsed arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub host: String,
    pub port: u16,
    pub timeout_ms: u64,
    pub copy: bool,
    pub replace: bool,
    /// `AUTH password` or `AUTH2 username password`.
    pub auth: Option<(Option<Bytes>, Bytes)>,
    pub keys: Vec<Bytes>,
}

/// Parses MIGRATE's arguments with Redis's errors.
pub fn parse(args: &[Bytes]) -> Result<Request, Reply> {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let mut req = Request {
        host: text(&args[1]),
        port: 0,
        timeout_ms: 0,
        copy: false,
        replace: false,
        auth: None,
        keys: Vec::new(),
    };
    let mut keys_at = None;
    let mut i = 6;
    while i < args.len() {
        let a = &args[i];
        if is_opt(a, "COPY") {
            req.copy = true;
        } else if is_opt(a, "REPLACE") {
            req.replace = true;
        } else if is_opt(a, "AUTH") && i + 1 < args.len() {
            req.auth = Some((None, args[i + 1].clone()));
            i += 1;
        } else if is_opt(a, "AUTH2") && i + 2 < args.len() {
            req.auth = Some((Some(args[i + 1].clone()), args[i + 2].clone()));
            i += 2;
        } else if is_opt(a, "KEYS") {
            if !args[3].is_empty() {
                return Err(Reply::err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys_at = Some(i + 1);
            break;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    let port = parse_i64(&args[2]).ok_or(errors::NOT_INTEGER)?;
    req.port = u16::try_from(port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| Reply::err("ERR Invalid port"))?;
    match parse_i64(&args[4]) {
        Some(0) => {}
        Some(_) => return Err(Reply::err("ERR DB index is out of range")),
        None => return Err(errors::NOT_INTEGER),
    }
    let timeout = parse_i64(&args[5]).ok_or(errors::NOT_INTEGER)?;
    req.timeout_ms = if timeout <= 0 { 1000 } else { timeout as u64 };
    req.keys = match keys_at {
        Some(at) => args[at..].to_vec(),
        None => vec![args[3].clone()],
    };
    Ok(req)
}

/// Sends the batch to the target and reads every answer; the error MIGRATE replies with
/// when anything fails.
fn send(req: &Request, items: &[(Bytes, u64, Vec<u8>)], restore: &[u8]) -> Result<(), String> {
    let timeout = Duration::from_millis(req.timeout_ms);
    let mut s = dial(&req.host, req.port, timeout, timeout)
        .map_err(|_| "IOERR error or timeout connecting to the client".to_string())?;
    let mut out = Vec::new();
    let mut answers = items.len();
    if let Some((user, pass)) = &req.auth {
        match user {
            Some(u) => out.extend(encode_command(&[&b"AUTH"[..], u, pass])),
            None => out.extend(encode_command(&[&b"AUTH"[..], pass])),
        }
        answers += 1;
    }
    for (key, ttl, payload) in items {
        let ttl = ttl.to_string();
        let mut args: Vec<&[u8]> = vec![restore, key, ttl.as_bytes(), payload];
        if req.replace {
            args.push(b"REPLACE");
        }
        out.extend(encode_command(&args));
    }
    s.get_mut()
        .write_all(&out)
        .map_err(|_| "IOERR error or timeout writing to target instance".to_string())?;
    let mut first_error = None;
    for _ in 0..answers {
        match read_reply(&mut s, 0) {
            Ok(Resp::Error(e)) => {
                first_error.get_or_insert(format!("ERR Target instance replied with error: {e}"));
            }
            Ok(_) => {}
            Err(_) => return Err("IOERR error or timeout reading to target instance".into()),
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// How many times MIGRATE sends a key again that changed while it was being sent (a
/// fence cannot stop a FLUSHALL, an expiry or an eviction, or a write after the fence's
/// deadline).
pub const ROUNDS: usize = 8;

/// One key as read for sending: its TTL (0 = none), DUMP payload and CAS.
type Read = (Bytes, u64, Vec<u8>, u64);

/// What fencing and reading one key found.
enum Taken {
    /// Fenced and read: TTL, payload, CAS.
    Item(u64, Vec<u8>, u64),
    /// Not here: nothing to move, nothing fenced.
    Absent,
    /// Another MIGRATE fences it.
    Busy,
}

/// Fences `keys` for MIGRATE `id` until `deadline` on their cores and reads those present
/// (value, TTL and CAS), in the same job on each key's core, so that no command on a key
/// runs between its read and its delete ([`baton_engine::exec::fence`]). `Err` lists
/// keys another MIGRATE holds (those of this call stay fenced; lift them).
async fn fence_and_read(
    nc: &NetCore,
    keys: &[Bytes],
    id: u64,
    deadline: u64,
) -> Result<Vec<Read>, Vec<Bytes>> {
    let core = &nc.core;
    // Raised before any fence exists, so that a locking command that sees zero knows
    // no core holds one; lowered below by the keys left unfenced.
    fence::announce(keys.len());
    let mut batch = Batch::new(core.cores);
    let tickets: Vec<_> = keys
        .iter()
        .map(|k| {
            let key = k.clone();
            batch.push(
                core.router.core_of(k),
                Job::OnCore(Box::new(move |c, now| {
                    let mut shard = c.shard.borrow_mut();
                    let Some(cas) = shard.lookup(&key, now).map(|e| e.cas()) else {
                        return Out::Value(Box::new(Taken::Absent));
                    };
                    let Some(copy) = shard.copy_item(&key, now) else {
                        return Out::Value(Box::new(Taken::Absent));
                    };
                    drop(shard);
                    if !fence::fence_key(c, &key, id, deadline, now) {
                        return Out::Value(Box::new(Taken::Busy));
                    }
                    let ttl = match copy.expire_at {
                        0 => 0,
                        at => at.saturating_sub(now).max(1),
                    };
                    Out::Value(Box::new(Taken::Item(ttl, encode_copy(&copy, cas), cas)))
                })),
            )
        })
        .collect();
    let mut outs = batch.run(core).await;
    let (mut items, mut busy) = (Vec::new(), Vec::new());
    for (key, t) in keys.iter().zip(tickets) {
        match outs.take(t).and_then(|o| o.into_value::<Taken>()) {
            Some(Taken::Item(ttl, payload, cas)) => items.push((key.clone(), ttl, payload, cas)),
            Some(Taken::Busy) => busy.push(key.clone()),
            Some(Taken::Absent) | None => {}
        }
    }
    fence::retract(keys.len() - items.len());
    if busy.is_empty() {
        Ok(items)
    } else {
        Err(busy)
    }
}

/// Deletes each key whose CAS is still the one read and lifts its fence, on its core in
/// one job: the commands parked behind it go on and find it gone (`-ASK` in a migrating
/// slot). Returns the keys that changed (they stay fenced).
async fn delete_unchanged(nc: &NetCore, items: &[Read], id: u64) -> Vec<Bytes> {
    let core = &nc.core;
    let mut batch = Batch::new(core.cores);
    let tickets: Vec<_> = items
        .iter()
        .map(|(k, _, _, cas)| {
            let (key, cas) = (k.clone(), *cas);
            batch.push(
                core.router.core_of(k),
                Job::OnCore(Box::new(move |c, now| {
                    let mut shard = c.shard.borrow_mut();
                    let same = shard.lookup(&key, now).map(|e| e.cas()) == Some(cas);
                    if same {
                        shard.delete(&key, now);
                    }
                    drop(shard);
                    if same {
                        fence::lift(c, id, Some(std::slice::from_ref(&key)), now);
                    }
                    Out::Value(Box::new(same))
                })),
            )
        })
        .collect();
    let mut outs = batch.run(core).await;
    items
        .iter()
        .zip(tickets)
        .filter(|(_, t)| {
            !outs
                .take(*t)
                .and_then(|o| o.into_value::<bool>())
                .unwrap_or(false)
        })
        .map(|(i, _)| i.0.clone())
        .collect()
}

/// Lifts every fence of MIGRATE `id` on every core (the parked commands then run here).
async fn lift_all(core: &Rc<Core>, id: u64) {
    with_every_core(core, move |c, now| fence::lift(c, id, None, now)).await;
}

/// Sends `items` from a helper thread (blocking sockets) while this core keeps serving;
/// gives up at `give_up` (unix ms), before the fences' deadline.
async fn send_off(
    nc: &NetCore,
    req: &Request,
    items: &[Read],
    restore: &'static [u8],
    give_up: u64,
) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let req = Request {
        host: req.host.clone(),
        auth: req.auth.clone(),
        keys: Vec::new(),
        ..*req
    };
    let items: Vec<(Bytes, u64, Vec<u8>)> = items
        .iter()
        .map(|(k, ttl, p, _)| (k.clone(), *ttl, p.clone()))
        .collect();
    std::thread::Builder::new()
        .name("baton-migrate".into())
        .spawn(move || {
            let _ = tx.send(send(&req, &items, restore));
        })
        .map_err(|e| format!("ERR cannot start MIGRATE: {e}"))?;
    loop {
        match rx.try_recv() {
            Ok(o) => return o,
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                let now = now_ms();
                if now >= give_up {
                    return Err("IOERR error or timeout reading to target instance".into());
                }
                nc.core.timers.sleep_until(now + 1).await;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err("ERR MIGRATE's sender went away".into())
            }
        }
    }
}

/// MIGRATE (see the module doc).
pub async fn migrate(nc: &NetCore, args: &[Bytes]) -> Reply {
    let req = match parse(args) {
        Ok(r) => r,
        Err(e) => return e,
    };
    // Redis refuses a command with keys while the cluster is down for this node
    // (`getNodeByQuery`), MIGRATE included: a primary cut off from the majority gives no
    // key away either.
    if !req.keys.is_empty() && nc.core.router.view().is_some_and(|v| v.down) {
        return Reply::err(baton_engine::exec::plan::CLUSTER_DOWN);
    }
    // If this task is dropped (its connection closed) before the end, the cores' reapers
    // lift its fences at their deadline (spawning from a drop could run outside the
    // executor, at shutdown).
    let id = nc.core.new_txn();
    let reply = run(nc, req, id).await;
    lift_all(&nc.core, id).await;
    reply
}

/// MIGRATE's work between fencing its keys and lifting what is left of the fences.
async fn run(nc: &NetCore, mut req: Request, id: u64) -> Reply {
    let start = now_ms();
    let deadline = start + req.timeout_ms + fence::MARGIN_MS;
    let give_up = start + req.timeout_ms + fence::MARGIN_MS / 2;
    let mut items =
        loop {
            match fence_and_read(nc, &req.keys, id, deadline).await {
                Ok(items) => break items,
                // Another MIGRATE moves some of these keys: wait for it, within the timeout.
                Err(_) if now_ms() < start + req.timeout_ms => {
                    lift_all(&nc.core, id).await;
                    nc.core.timers.sleep_until(now_ms() + 1).await;
                }
                Err(_) => return Reply::err(
                    "IOERR error or timeout writing to target instance: keys are being migrated",
                ),
            }
        };
    if items.is_empty() {
        return Reply::simple("NOKEY");
    }
    let restore: &'static [u8] = if nc.shared.cluster.get().is_some() {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    for _ in 0..ROUNDS {
        if let Err(e) = send_off(nc, &req, &items, restore, give_up).await {
            return Reply::error(e);
        }
        if req.copy {
            return Reply::Ok;
        }
        let changed = delete_unchanged(nc, &items, id).await;
        if changed.is_empty() {
            return Reply::Ok;
        }
        // The target holds this node's older copy of these now: replace it.
        req.replace = true;
        items = match fence_and_read(nc, &changed, id, deadline).await {
            Ok(items) => items,
            Err(_) => break,
        };
        if items.is_empty() {
            // Deleted meanwhile: the copy sent is the only one left, as after a delete
            // that follows the move.
            return Reply::Ok;
        }
    }
    Reply::err(
        "IOERR error or timeout writing to target instance: keys kept changing during MIGRATE",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(if w == "\"\"" { b"" } else { w.as_bytes() }))
            .collect()
    }

    #[test]
    fn parses_redis_forms_and_refuses_bad_ones() {
        let r = parse(&args(
            "MIGRATE 127.0.0.1 7001 \"\" 0 5000 REPLACE AUTH pw KEYS a b",
        ))
        .unwrap();
        assert_eq!(r.port, 7001);
        assert!(r.replace && !r.copy);
        assert_eq!(r.auth, Some((None, Bytes::from("pw"))));
        assert_eq!(r.keys, vec![Bytes::from("a"), Bytes::from("b")]);
        let r = parse(&args("MIGRATE h 1 k 0 0 COPY AUTH2 u p")).unwrap();
        assert_eq!(r.keys, vec![Bytes::from("k")]);
        assert_eq!(r.timeout_ms, 1000);
        assert_eq!(r.auth, Some((Some(Bytes::from("u")), Bytes::from("p"))));
        assert!(parse(&args("MIGRATE h 1 k 0 10 KEYS a")).is_err());
        assert!(parse(&args("MIGRATE h 1 k 1 10")).is_err());
        assert!(parse(&args("MIGRATE h x k 0 10")).is_err());
        assert!(parse(&args("MIGRATE h 70000 k 0 10")).is_err());
        assert!(parse(&args("MIGRATE h 1 k 0 10 BOGUS")).is_err());
    }
}
