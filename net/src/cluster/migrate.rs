//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//! [AUTH password | AUTH2 username password] [KEYS key ...]: moves keys to another Baton
//! (what `redis-cli --cluster reshard` calls for each batch of a slot's keys).
//!
//! Each key is read on its own core (value, flags and TTL, as DUMP's payload), the batch
//! goes to the target as RESTORE-ASKING (RESTORE outside cluster mode) on a blocking
//! connection of a helper thread, and once the target has answered every one, the keys
//! are deleted here (not with COPY). Not fenced, but no write is lost: each key's CAS
//! (which every write changes) is read with its value, and the delete happens only when
//! the CAS is still the same (on the key's core, atomically). A key written in between
//! stays, is read again and sent again with REPLACE, up to [`ROUNDS`] times; a key still
//! changing after that is left here and MIGRATE fails (`-IOERR`), so redis-cli stops
//! instead of giving the slot away. Commands on the keys are not held meanwhile, as a
//! real fence would do.

use std::io::Write;
use std::time::Duration;

use baton_engine::commands::dump::encode_copy;
use baton_engine::commands::{is_opt, parse_i64};
use baton_engine::exec::Batch;
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::{now_ms, Job, Out};
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

/// How many times MIGRATE sends a key again that was written while it was being sent.
pub const ROUNDS: usize = 8;

/// One key as read for sending: its TTL (0 = none), DUMP payload and CAS.
type Read = (Bytes, u64, Vec<u8>, u64);

/// Reads `keys` on their cores: value, TTL and CAS of those present.
async fn read_keys(nc: &NetCore, keys: &[Bytes]) -> Vec<Read> {
    let core = &nc.core;
    let mut batch = Batch::new(core.cores);
    let tickets: Vec<_> = keys
        .iter()
        .map(|k| {
            let key = k.clone();
            batch.push(
                core.router.core_of(k),
                Job::Call(Box::new(move |shard, now| {
                    let cas = shard.lookup(&key, now).map(|e| e.cas());
                    let item = shard.copy_item(&key, now).zip(cas).map(|(c, cas)| {
                        let ttl = match c.expire_at {
                            0 => 0,
                            at => at.saturating_sub(now).max(1),
                        };
                        (ttl, encode_copy(&c), cas)
                    });
                    Out::Value(Box::new(item))
                })),
            )
        })
        .collect();
    let mut outs = batch.run(core).await;
    let mut items = Vec::new();
    for (key, t) in keys.iter().zip(tickets) {
        let item = outs
            .take(t)
            .and_then(|o| o.into_value::<Option<(u64, Vec<u8>, u64)>>())
            .flatten();
        if let Some((ttl, payload, cas)) = item {
            items.push((key.clone(), ttl, payload, cas));
        }
    }
    items
}

/// Deletes each key whose CAS is still the one read; returns the keys that changed.
async fn delete_unchanged(nc: &NetCore, items: &[Read]) -> Vec<Bytes> {
    let core = &nc.core;
    let mut batch = Batch::new(core.cores);
    let tickets: Vec<_> = items
        .iter()
        .map(|(k, _, _, cas)| {
            let (key, cas) = (k.clone(), *cas);
            batch.push(
                core.router.core_of(k),
                Job::Call(Box::new(move |shard, now| {
                    let same = shard.lookup(&key, now).map(|e| e.cas()) == Some(cas);
                    if same {
                        shard.delete(&key, now);
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

/// Sends `items` from a helper thread (blocking sockets) while this core keeps serving.
async fn send_off(
    nc: &NetCore,
    req: &Request,
    items: &[Read],
    restore: &'static [u8],
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
                nc.core.timers.sleep_until(now_ms() + 1).await;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err("ERR MIGRATE's sender went away".into())
            }
        }
    }
}

/// MIGRATE (see the module doc).
pub async fn migrate(nc: &NetCore, args: &[Bytes]) -> Reply {
    let mut req = match parse(args) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut items = read_keys(nc, &req.keys).await;
    if items.is_empty() {
        return Reply::simple("NOKEY");
    }
    let restore: &'static [u8] = if nc.shared.cluster.get().is_some() {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    for _ in 0..ROUNDS {
        if let Err(e) = send_off(nc, &req, &items, restore).await {
            return Reply::error(e);
        }
        if req.copy {
            return Reply::Ok;
        }
        let changed = delete_unchanged(nc, &items).await;
        if changed.is_empty() {
            return Reply::Ok;
        }
        // The target holds this node's older copy of these now: replace it.
        req.replace = true;
        items = read_keys(nc, &changed).await;
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
