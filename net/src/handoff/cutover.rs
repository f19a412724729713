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
//! Nothing is forwarded: the cost is latency (until the connections move) for the
//! requests on cut shards, never an error.

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
    let cut = |key: &[u8]| h.is_cut(router.core_of(key));
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
