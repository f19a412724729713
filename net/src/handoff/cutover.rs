//! The old process's side of the per-shard cutover ([`crate::handoff`], "Memory"): which
//! requests must wait once some shard is cut over to the new process, and how a request
//! that waits goes back into its connection's input, unparsed.
//!
//! A request waits when it may touch a shard that is cut: a key of it lives on a cut
//! core, or it reaches every core (DBSIZE, SCAN, KEYS, FLUSHALL, memcached `stats`), or it
//! is a connection command that is not known to stay on the connection (EXEC, INFO,
//! DEBUG, ...: they may run closures on every core). A request that waits stops its
//! connection's pipeline at that request boundary: it and everything after it stay in the
//! connection's input and move with the session to the new process, which runs them.
//!
//! Unless it is forwarded: when the new process listens on its forwarding socket
//! ([`forward_socket_path`]), a request whose keys all live on cut shards goes there and
//! its answer comes back in its place in the pipeline ([`redis_forwards`]; each core keeps
//! one link per kind, [`LINKS`], on its own io_uring: `crate::cluster::mclink`). A
//! memcached request is split by key as in cluster mode, and its keys on cut shards go
//! as `CLUSTER BATON-MC` ([`memcache_forwards`]). What is not forwarded still waits: a
//! request over every core, a connection command that may run closures on the cores,
//! a blocking command, a command queued in a transaction, a command over both cut and
//! kept shards.

use std::path::{Path, PathBuf};

use baton_engine::command::{lookup, Route};
use baton_ring::Router;
use bytes::{Bytes, BytesMut};

use super::Handoff;
use crate::memcache::{McConn, McRequest};

/// Connection commands that touch no shard, so they run while shards are cut. FLOWSYNC
/// and REPLCONF are the new process's copy asking for the next shard's flow.
const STAYS_ON_THE_CONNECTION: &[&str] = &[
    "flowsync",
    "replconf",
    "ping",
    "echo",
    "client",
    "hello",
    "auth",
    "quit",
    "time",
    "select",
    "multi",
    "publish",
    "spublish",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
];

/// The old process's links to the new one's forwarding socket, by what they carry:
/// RESP2 commands, RESP3 commands (the link says `HELLO 3` first), and memcached
/// requests (`CLUSTER BATON-MC` on a RESP2 link). Their names stand where a cluster
/// link names its peer's address.
pub const LINK_RESP2: &str = "handoff/resp2";
pub const LINK_RESP3: &str = "handoff/resp3";
pub const LINK_MC: &str = "handoff/memcached";
pub const LINKS: [&str; 3] = [LINK_RESP2, LINK_RESP3, LINK_MC];

/// Whether the link name `addr` is one of [`LINKS`].
pub fn is_link(addr: &str) -> bool {
    LINKS.contains(&addr)
}

/// The new process's forwarding socket: next to the control socket it took over
/// through, named after its pid (so a stale file of an earlier handoff is never taken
/// for it). The old process forwards only if this file exists: a new process of a
/// binary without forwarding has none, and its requests wait.
pub fn forward_socket_path(control: &Path, new_pid: u32) -> PathBuf {
    let mut p = control.as_os_str().to_owned();
    p.push(format!(".fwd.{new_pid}"));
    PathBuf::from(p)
}

/// Whether the Redis request `args` goes to the new process: forwarding is on, the
/// client is not queueing a transaction, and it is a key command whose every key lives
/// on a cut shard. (A command with the wrong arity is answered here, as any other.)
pub fn redis_forwards(h: &Handoff, router: &Router, args: &[Bytes], in_multi: bool) -> bool {
    if !h.any_cut() || !h.forwarding() || in_multi {
        return false;
    }
    let Some(spec) = args.first().and_then(|name| lookup(name)) else {
        return false;
    };
    if !spec.arity_ok(args.len()) {
        return false;
    }
    match spec.route {
        Route::Key | Route::MultiKey(_) | Route::Atomic(_) => {
            let keys = spec.keys_in(args);
            !keys.is_empty()
                && keys
                    .iter()
                    .all(|&i| args.get(i).is_some_and(|k| h.is_cut(router.core_of(k))))
        }
        Route::Connection(_) | Route::AllCores(_) => false,
    }
}

/// Whether memcached requests take the forwarding path now: their keys on cut shards go
/// to the new process (`crate::mcdispatch`'s cluster path, which splits a request by key).
pub fn memcache_forwards(h: &Handoff) -> bool {
    h.any_cut() && h.forwarding()
}

/// Whether the memcached key `key` lives on a cut shard (it is forwarded).
pub fn memcache_key_cut(h: &Handoff, router: &Router, key: &[u8]) -> bool {
    h.any_cut() && h.is_cut(router.core_of(key))
}

/// Whether the Redis request `args` must wait for its connection to move (see the module
/// doc). One atomic load when no shard is cut.
pub fn redis_waits(h: &Handoff, router: &Router, args: &[Bytes]) -> bool {
    if !h.any_cut() {
        return false;
    }
    let Some(spec) = args.first().and_then(|name| lookup(name)) else {
        // Unknown: answered with an error, touching nothing.
        return false;
    };
    let cut_key = |k: &Bytes| h.is_cut(router.core_of(k));
    match spec.route {
        Route::Connection(_) => !STAYS_ON_THE_CONNECTION.contains(&spec.name),
        // No key (OBJECT HELP and the like): it runs on this core.
        Route::Key if spec.first_key <= 0 || args.len() <= spec.first_key as usize => {
            h.is_cut(router.core())
        }
        // Every key, not only the first: a blocking pop names several.
        Route::Key | Route::MultiKey(_) | Route::Atomic(_) => spec
            .keys_in(args)
            .iter()
            .any(|&i| args.get(i).is_some_and(cut_key)),
        Route::AllCores(_) => true,
    }
}

/// Whether the memcached request `req` must wait for its connection to move.
pub fn memcache_waits(h: &Handoff, router: &Router, req: &McRequest) -> bool {
    if !h.any_cut() {
        return false;
    }
    let cut = |key: &[u8]| h.is_cut(router.core_of(key)) && !h.forwarding();
    match req {
        McRequest::Single { op, .. } => cut(op.key()),
        McRequest::Multi { ops, .. } => ops.iter().any(|op| cut(op.key())),
        McRequest::Conn(McConn::Stats | McConn::StatsReset | McConn::FlushAll { .. }) => true,
        McRequest::Conn(_) | McRequest::Error(_) => false,
    }
}

/// Puts a parsed Redis request back at the front of its connection's input, as a
/// multibulk (an inline request comes back in that form: it means the same).
pub fn put_back_redis(rbuf: &mut BytesMut, args: &[Bytes]) {
    let mut front = BytesMut::from(&crate::repl::link::encode_command(args)[..]);
    front.extend_from_slice(rbuf);
    *rbuf = front;
}

/// The input as it was before a memcached request was parsed out of it, to put back if
/// the request waits: a copy, taken only while some shard is cut.
pub fn keep_memcache_input(h: &Handoff, rbuf: &BytesMut) -> Option<BytesMut> {
    h.any_cut().then(|| rbuf.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// A key that lives on `core` of 2.
    fn key_on(router: &Router, core: usize) -> String {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| router.core_of(k.as_bytes()) == core)
            .expect("some key lives on every core")
    }

    #[test]
    fn a_request_waits_only_when_it_may_touch_a_cut_shard() {
        let h = Handoff::new(2);
        let r = Router::standalone(1, 2);
        let (k0, k1) = (key_on(&r, 0), key_on(&r, 1));
        let waits = |w: &[&str]| redis_waits(&h, &r, &args(w));
        assert!(!waits(&["GET", &k0]), "nothing is cut yet");
        assert!(!waits(&["DBSIZE"]), "nothing is cut yet");
        h.set_cut(0);
        assert!(waits(&["GET", &k0]));
        assert!(!waits(&["GET", &k1]));
        assert!(waits(&["MGET", &k1, &k0]));
        assert!(!waits(&["MGET", &k1, &k1]));
        assert!(waits(&["RENAME", &k1, &k0]));
        assert!(waits(&["BLPOP", &k1, &k0, "0"]));
        assert!(waits(&["DBSIZE"]));
        assert!(waits(&["EXEC"]));
        assert!(waits(&["INFO"]));
        assert!(!waits(&["PING"]));
        assert!(!waits(&["CLIENT", "ID"]));
        assert!(!waits(&["PUBLISH", "ch", "m"]));
        assert!(!waits(&["FLOWSYNC", "1", "?", "-1", "id", "0"]));
        assert!(!waits(&["NOSUCHCOMMAND", &k0]));
        let forwards = |w: &[&str], multi: bool| redis_forwards(&h, &r, &args(w), multi);
        assert!(!forwards(&["GET", &k0], false), "no forwarding socket");
        h.set_forward_path(Some(PathBuf::from("/nonexistent")));
        assert!(forwards(&["GET", &k0], false));
        assert!(forwards(&["MGET", &k0, &k0], false));
        assert!(!forwards(&["GET", &k0], true), "queued in a transaction");
        assert!(!forwards(&["GET", &k1], false), "not cut");
        assert!(!forwards(&["MGET", &k1, &k0], false), "cut and kept keys");
        assert!(!forwards(&["GET"], false), "wrong arity: answered here");
        assert!(!forwards(&["BLPOP", &k0, "0"], false), "blocking");
        assert!(!forwards(&["DBSIZE"], false));
        assert!(!forwards(&["EXEC"], false));
        h.set_forward_path(None);
        h.clear_cuts();
        assert!(!waits(&["GET", &k0]));
    }

    #[test]
    fn a_request_that_waits_goes_back_in_front_of_the_input() {
        let mut rbuf = BytesMut::from(&b"GET b\r\n"[..]);
        put_back_redis(&mut rbuf, &args(&["SET", "a", "1"]));
        assert_eq!(
            &rbuf[..],
            b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nGET b\r\n"
        );
    }
}
