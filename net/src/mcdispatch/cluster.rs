//! The memcached port in cluster mode. memcached clients cannot follow redirections, so
//! the node a client talks to answers for every key itself: keys of slots it serves run
//! here as always, and a key of a slot another node owns is forwarded to that node
//! ([`crate::cluster::mclink`]), whose answer goes back to the client as if it came from here.
//!
//! ```text
//!  get a b c ─► route each key by its slot ─┬─ a: served here ──► this node's cores
//!                                           ├─ b, c: node 2 ──► CLUSTER BATON-MC 0 "get b c"
//!                                           │                   (one element per key back)
//!                                           └─ merge in the request's key order, one END
//! ```
//!
//! * Every key is routed as the Redis port routes it (CRC16 slot, hash tags). A node
//!   serves a forwarded request only if it serves the slot itself
//!   ([`crate::cluster::mcserve`]); for a key
//!   it does not, it answers `MOVED`/`ASK` for that key instead, and the forwarding node
//!   follows: `ASK` with ASKING semantics (the importing node serves it), as a Redis
//!   cluster client would, so a slot migration shows memcached clients no error.
//! * A key of a slot this node migrates away and no longer holds is forwarded, with
//!   ASKING, to the node importing it.
//! * Replies keep the request order: a pipeline whose requests are all local runs inline;
//!   otherwise the whole pipeline runs in one task ([`slow`]) that runs the local part and
//!   the forwarded parts at the same time, then writes every reply in order.
//! * A request whose owner cannot be reached, or does not answer within
//!   `cluster-node-timeout`, is answered `SERVER_ERROR <reason>` (nothing under
//!   `noreply`); a multi-get with one such key is answered with that one line.
//! * The ops a node serves for another are counted in its own `stats`.
//! * A replica forwards every key to its slot's primary, writes included: memcached has
//!   no READONLY, and a read served from the replica's copy could miss a write the same
//!   client just made through it.

use std::rc::Rc;

use baton_engine::exec::Batch;
use baton_engine::runtime::{now_ms, Core};
use baton_ring::Target;
use bytes::{Bytes, BytesMut};

use super::{answer_inline, conn_command, ctx, limits, refused};
use crate::client::Client;
use crate::cluster::mclink::{self, Answer, Part};
use crate::cluster::mcserve::{job, ran, Ran, Shape};
use crate::config::Shared;
use crate::dispatch::{Outcome, SlowResult, MAX_SLOW_REQUESTS, OUTPUT_PAUSE};
use crate::handoff::{cutover, Handoff};
use crate::memcache::{
    encode_end, encode_error, encode_refusal, McConn, McError, McOp, McOpKind, McParser, McReply,
    McRequest,
};
use crate::netcore::NetCore;

/// Redirections one op may follow before it fails (each is a node saying "not mine").
const MAX_HOPS: u8 = 8;
/// How long an op told `TRYAGAIN` waits before it asks again.
const TRYAGAIN_WAIT_MS: u64 = 20;

/// Where an op goes next.
#[derive(Clone, PartialEq, Eq)]
enum Dest {
    Here { asking: bool },
    Node { addr: String, asking: bool },
}

/// One key's op of a pipeline on its way to an answer.
struct Op {
    /// The request it belongs to (a retrieval's keys share one).
    req: usize,
    key: Vec<u8>,
    kind: McOpKind,
    /// The op, until it runs here.
    op: Option<McOp>,
    /// The request as forwarded (for a retrieval's key, rebuilt with its siblings).
    text: Bytes,
    shape: Shape,
    dest: Dest,
    hops: u8,
    /// The encoded reply, or why there is none (after `SERVER_ERROR `).
    done: Option<Result<Vec<u8>, String>>,
}

/// Where a plain client's request for `key` goes. (During a handoff's per-shard
/// cutover, a key on a shard cut over goes to the new process: [`cutover`].)
fn route(core: &Core, h: &Handoff, key: &[u8]) -> Result<Dest, String> {
    if cutover::memcache_key_cut(h, &core.router, key) {
        return Ok(Dest::Node {
            addr: cutover::LINK_MC.to_string(),
            asking: false,
        });
    }
    match core.router.route(key, || true) {
        Target::Core(_) | Target::Ask { .. } | Target::CrossSlot => {
            Ok(Dest::Here { asking: false })
        }
        Target::Moved { node, .. } => {
            let addr = core
                .router
                .view()
                .map_or_else(String::new, |v| v.addr(node).to_string());
            Ok(to_node(core, addr, false))
        }
        Target::Unassigned { .. } => Err(unassigned()),
        Target::Down => Err(baton_engine::exec::plan::CLUSTER_DOWN.to_string()),
    }
}

fn unassigned() -> String {
    "CLUSTERDOWN Hash slot not served".to_string()
}

/// A redirection to `addr`: this node itself when it names this node.
fn to_node(core: &Core, addr: String, asking: bool) -> Dest {
    let me = core
        .router
        .view()
        .is_some_and(|v| !addr.is_empty() && v.addr(v.me) == addr);
    if me {
        Dest::Here { asking }
    } else {
        Dest::Node { addr, asking }
    }
}

/// Whether a request can run inline: every key on this core, of a slot this node serves
/// outright (not migrating, not another node's).
fn is_local(core: &Core, h: &Handoff, req: &McRequest) -> bool {
    if !core.is_unlocked() {
        return false;
    }
    let mine = |op: &McOp| {
        core.router.is_local(op.key())
            && !cutover::memcache_key_cut(h, &core.router, op.key())
            && matches!(core.router.route(op.key(), || false), Target::Core(_))
    };
    match req {
        McRequest::Single { op, .. } => mine(op),
        McRequest::Multi { ops, .. } => ops.iter().all(mine),
        McRequest::Conn(McConn::Stats | McConn::StatsReset | McConn::FlushAll { .. }) => false,
        McRequest::Conn(_) | McRequest::Error(_) => true,
    }
}

/// [`refused`] in cluster mode. A replica serves no slot: every key of a request goes to
/// its slot's primary (the node a Redis cluster client is sent to with `-MOVED`), which
/// decides there, so a replica's `READONLY` applies only to what runs here (`flush_all`).
/// A write paused by a failover is refused wherever it arrives (the owner checks it too,
/// [`crate::cluster::mcserve::serve`]).
fn refused_here(shared: &Shared, req: &McRequest, out: &mut Vec<u8>) -> bool {
    let keyed = matches!(req, McRequest::Single { .. } | McRequest::Multi { .. });
    if keyed && shared.repl.refuses_writes() {
        return false;
    }
    refused(shared, req, out)
}

/// Parses the next request with its text (during a handoff's per-shard cutover, one that
/// must wait for its connection to move, `stats` or `flush_all`, counts as not there
/// yet: [`super::parse_unless_waiting`]).
fn parse(
    nc: &NetCore,
    client: &Client,
    rbuf: &mut BytesMut,
    limits: &crate::memcache::McLimits,
) -> Result<Option<(McRequest, Bytes)>, McError> {
    super::parse_unless_waiting(nc, client, rbuf, |p, b| p.parse_framed(b, limits), |r| &r.0)
}

/// [`super::run`] in cluster mode.
pub fn run(nc: &Rc<NetCore>, client: &Client, rbuf: &mut BytesMut, out: &mut Vec<u8>) -> Outcome {
    let (core, shared) = (&nc.core, &nc.shared);
    let limits = limits(shared);
    loop {
        if out.len() > OUTPUT_PAUSE {
            return Outcome::Continue;
        }
        let (req, raw) = match parse(nc, client, rbuf, &limits) {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::Continue,
            Err(e) => {
                tracing::debug!(error = %e, "memcached protocol error; closing the connection");
                if let Some(r) = e.reply() {
                    out.extend_from_slice(r);
                }
                return Outcome::Close;
            }
        };
        client.borrow_mut().last_cmd = "memcache";
        if refused_here(shared, &req, out) {
            continue;
        }
        if !is_local(core, &shared.handoff, &req) {
            let mut rest = vec![(req, raw)];
            let mut trailing_close = false;
            while rest.len() < MAX_SLOW_REQUESTS {
                match parse(nc, client, rbuf, &limits) {
                    Ok(Some(r)) => rest.push(r),
                    Ok(None) => break,
                    Err(e) => {
                        trailing_close = true;
                        if let Some(r) = e.reply() {
                            let text = std::str::from_utf8(r).unwrap_or("ERROR").trim_end();
                            rest.push((McRequest::Error(text), Bytes::new()));
                        }
                        break;
                    }
                }
            }
            return Outcome::Slow {
                task: Box::pin(slow(nc.clone(), rest, trailing_close)),
                hold: false,
            };
        }
        if answer_inline(nc, req, out) {
            return Outcome::Close;
        }
    }
}

/// A request's place in the replies.
enum Slot {
    Ready(Vec<u8>),
    One(usize),
    /// A retrieval: its keys' ops, in order.
    Items(std::ops::Range<usize>),
}

/// Runs a pipeline that forwards some of its requests, and writes every reply in order.
async fn slow(nc: Rc<NetCore>, reqs: Vec<(McRequest, Bytes)>, close_at_end: bool) -> SlowResult {
    let shared = &nc.shared;
    let mut out = Vec::new();
    let mut ops: Vec<Op> = Vec::new();
    let mut slots: Vec<Slot> = Vec::new();
    let mut close = close_at_end;
    for (n, (req, raw)) in reqs.into_iter().enumerate() {
        let mut refusal = Vec::new();
        if refused_here(shared, &req, &mut refusal) {
            slots.push(Slot::Ready(refusal));
            continue;
        }
        match req {
            McRequest::Single { op, reply } => {
                slots.push(Slot::One(ops.len()));
                ops.push(new_op(&nc, n, op, raw, Shape::One(reply)));
            }
            McRequest::Multi { ops: keys, cas } => {
                let start = ops.len();
                for op in keys {
                    let touch = match &op {
                        McOp::Get { touch, .. } => *touch,
                        _ => None,
                    };
                    let text = mclink::retrieval(cas, touch, &[op.key()]);
                    ops.push(new_op(&nc, n, op, text, Shape::Item { cas, touch }));
                }
                slots.push(Slot::Items(start..ops.len()));
            }
            McRequest::Error(text) => {
                nc.memcache.borrow_mut().record_error(text);
                let mut b = Vec::new();
                encode_error(text, &mut b);
                slots.push(Slot::Ready(b));
            }
            McRequest::Conn(McConn::Quit) => {
                close = true;
                break;
            }
            McRequest::Conn(c) => {
                // Everything before it is answered first (a flush_all follows the writes
                // ahead of it).
                resolve(&nc, &mut ops).await;
                write(&mut out, &mut ops, &mut slots);
                out.extend(conn_command(&nc, c).await);
            }
        }
    }
    resolve(&nc, &mut ops).await;
    write(&mut out, &mut ops, &mut slots);
    (out, close)
}

fn new_op(nc: &NetCore, req: usize, op: McOp, text: Bytes, shape: Shape) -> Op {
    let (dest, done) = match route(&nc.core, &nc.shared.handoff, op.key()) {
        Ok(d) => (d, None),
        Err(e) => (Dest::Here { asking: false }, Some(Err(e))),
    };
    Op {
        req,
        key: op.key().to_vec(),
        kind: op.kind(),
        op: Some(op),
        text,
        shape,
        dest,
        hops: 0,
        done,
    }
}

/// Appends the replies of `slots` (whose ops are all resolved) and clears both.
fn write(out: &mut Vec<u8>, ops: &mut Vec<Op>, slots: &mut Vec<Slot>) {
    let failed = |e: &str| format!("SERVER_ERROR {e}");
    for s in slots.drain(..) {
        match s {
            Slot::Ready(b) => out.extend_from_slice(&b),
            Slot::One(i) => match ops[i].done.take() {
                Some(Ok(b)) => out.extend_from_slice(&b),
                Some(Err(e)) => match &ops[i].shape {
                    Shape::One(reply) => encode_refusal(reply, &failed(&e), out),
                    Shape::Item { .. } => encode_error(&failed(&e), out),
                },
                None => encode_error(&failed("no answer"), out),
            },
            Slot::Items(range) => {
                let why = ops[range.clone()].iter().find_map(|o| match &o.done {
                    Some(Ok(_)) => None,
                    Some(Err(e)) => Some(e.clone()),
                    None => Some("no answer".to_string()),
                });
                match why {
                    Some(e) => encode_error(&failed(&e), out),
                    None => {
                        for o in &mut ops[range] {
                            if let Some(Ok(b)) = o.done.take() {
                                out.extend_from_slice(&b);
                            }
                        }
                        encode_end(out);
                    }
                }
            }
        }
    }
    ops.clear();
}

/// One command forwarded to a node: the ops it answers for, in order.
struct Forward {
    addr: String,
    asking: bool,
    ops: Vec<usize>,
    text: Bytes,
}

/// Groups the pending ops bound for other nodes into commands: a request of its own
/// each, and the keys of one retrieval that go to the same node, together.
fn forwards(ops: &[Op], pending: &[usize]) -> Vec<Forward> {
    let mut fwd: Vec<Forward> = Vec::new();
    for &i in pending {
        let Dest::Node { addr, asking } = &ops[i].dest else {
            continue;
        };
        if let Shape::Item { .. } = ops[i].shape {
            // Join this retrieval's command to the same node, if there is one already.
            if let Some(f) = fwd.iter_mut().rev().find(|f| {
                f.addr == *addr
                    && f.asking == *asking
                    && f.ops.last().is_some_and(|&j| ops[j].req == ops[i].req)
            }) {
                f.ops.push(i);
                continue;
            }
        }
        fwd.push(Forward {
            addr: addr.clone(),
            asking: *asking,
            ops: vec![i],
            text: ops[i].text.clone(),
        });
    }
    for f in &mut fwd {
        if f.ops.len() > 1 {
            if let Shape::Item { cas, touch } = ops[f.ops[0]].shape {
                let keys: Vec<&[u8]> = f.ops.iter().map(|&i| &ops[i].key[..]).collect();
                f.text = mclink::retrieval(cas, touch, &keys);
            }
        }
    }
    fwd
}

/// Answers every op: runs the local ones, forwards the others, and follows redirections
/// until each has its reply or fails.
async fn resolve(nc: &Rc<NetCore>, ops: &mut [Op]) {
    let core = &nc.core;
    loop {
        let pending: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].done.is_none()).collect();
        if pending.is_empty() {
            return;
        }
        // Forwarded first, so that the other nodes work while this one does.
        let fwd = forwards(ops, &pending);
        let mut by_addr: Vec<(String, Vec<usize>)> = Vec::new();
        for (n, f) in fwd.iter().enumerate() {
            match by_addr.iter_mut().find(|(a, _)| *a == f.addr) {
                Some((_, list)) => list.push(n),
                None => by_addr.push((f.addr.clone(), vec![n])),
            }
        }
        let calls: Vec<_> = by_addr
            .iter()
            .map(|(addr, list)| {
                let cmds = list
                    .iter()
                    .map(|&n| mclink::command(fwd[n].asking, &fwd[n].text))
                    .collect();
                mclink::send(nc, addr, cmds)
            })
            .collect();
        let ctx = ctx(nc);
        let mut batch = Batch::new(core.cores);
        let mut local = Vec::new();
        for &i in &pending {
            let Dest::Here { asking } = ops[i].dest else {
                continue;
            };
            let op = ops[i].op.take().or_else(|| reparse(nc, &ops[i].text));
            let Some(op) = op else {
                ops[i].done = Some(Err("cannot serve the key here".into()));
                continue;
            };
            local.push((
                i,
                batch.push(core.router.core_of(&ops[i].key), job(op, asking, ctx)),
            ));
        }
        let mut outs = batch.run(core).await;
        let mut again = false;
        for (i, t) in local {
            match ran(outs.take(t)) {
                Ran::Done(r) => {
                    nc.memcache.borrow_mut().record(ops[i].kind, &r);
                    let mut b = Vec::new();
                    ops[i].shape.encode(&r, &mut b);
                    ops[i].done = Some(Ok(b));
                }
                Ran::Moved(_, addr) => redirect(core, &mut ops[i], addr, false),
                Ran::Ask(_, addr) => redirect(core, &mut ops[i], addr, true),
                Ran::Unassigned => ops[i].done = Some(Err(unassigned())),
                Ran::Down => {
                    ops[i].done = Some(Err(baton_engine::exec::plan::CLUSTER_DOWN.to_string()))
                }
            }
        }
        for ((_, list), call) in by_addr.iter().zip(calls) {
            let answers = call.await;
            for (&n, answer) in list.iter().zip(answers) {
                again |= take_answer(core, ops, &fwd[n], answer);
            }
        }
        if again {
            core.timers.sleep_until(now_ms() + TRYAGAIN_WAIT_MS).await;
        }
    }
}

/// Follows a redirection of op `o` (or fails it after [`MAX_HOPS`]).
fn redirect(core: &Core, o: &mut Op, addr: String, asking: bool) {
    o.hops += 1;
    if o.hops > MAX_HOPS {
        o.done = Some(Err(format!(
            "too many redirections for the key (last to {addr})"
        )));
        return;
    }
    if addr.is_empty() {
        o.done = Some(Err("the owner's address is unknown".into()));
        return;
    }
    o.dest = to_node(core, addr, asking);
}

/// Files a node's answer to one forwarded command; true if an op must ask again later.
fn take_answer(core: &Core, ops: &mut [Op], f: &Forward, answer: Answer) -> bool {
    let parts = match answer {
        Ok(p) if p.len() == f.ops.len() => p,
        Ok(_) => fail_all(
            ops,
            f,
            "the owner answered for a different number of keys".into(),
        ),
        Err(e) => fail_all(ops, f, e),
    };
    let mut again = false;
    for (&i, part) in f.ops.iter().zip(parts) {
        match part {
            Part::Reply(mut b) => {
                // A retrieval's items come without END (see `serve`).
                if let Shape::One(McReply::Get { .. }) = ops[i].shape {
                    encode_end(&mut b);
                }
                ops[i].done = Some(Ok(b));
            }
            Part::Error(e) => {
                let mut w = e.split(' ');
                let (kind, addr) = (w.next().unwrap_or(""), w.nth(1).map(str::to_string));
                match (kind, addr) {
                    ("MOVED", Some(a)) => redirect(core, &mut ops[i], a, false),
                    ("ASK", Some(a)) => redirect(core, &mut ops[i], a, true),
                    ("TRYAGAIN", _) => {
                        ops[i].hops += 1;
                        if ops[i].hops > MAX_HOPS {
                            ops[i].done = Some(Err(e));
                        } else {
                            again = true;
                        }
                    }
                    _ => ops[i].done = Some(Err(e)),
                }
            }
        }
    }
    again
}

/// Fails every op of `f` with `why`; no parts are left to file.
fn fail_all(ops: &mut [Op], f: &Forward, why: String) -> Vec<Part> {
    for &i in &f.ops {
        ops[i].done = Some(Err(why.clone()));
    }
    Vec::new()
}

/// The op of a forwarded text, parsed again (an op sent away that came back).
fn reparse(nc: &NetCore, text: &Bytes) -> Option<McOp> {
    let mut buf = BytesMut::from(&text[..]);
    match McParser::new().parse(&mut buf, &limits(&nc.shared)) {
        Ok(Some(McRequest::Single { op, .. })) => Some(op),
        Ok(Some(McRequest::Multi { ops, .. })) => ops.into_iter().next(),
        _ => None,
    }
}
