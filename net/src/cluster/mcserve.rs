//! The owner's side of a forwarded memcached request (see `crate::mcdispatch::cluster`):
//! `CLUSTER BATON-MC <asking 0|1> <request>` runs the request's keys on this node's cores
//! if this node serves their slots, and answers one array element per key: the memcached
//! reply, or `MOVED`/`ASK`/`CLUSTERDOWN` for a key it does not serve (never a second hop).
//! [`run_checked`] is also what the forwarding node runs its own keys with.

use std::sync::atomic::Ordering;

use baton_engine::exec::Batch;
use baton_engine::memcache::{execute, McCtx};
use baton_engine::reply::Reply;
use baton_engine::runtime::{Core, Job, Out};
use baton_ring::Target;
use bytes::{Bytes, BytesMut};

use crate::memcache::{
    encode, encode_error, encode_item, encode_refusal, McLimits, McOp, McParser, McReply,
    McRequest, McResult, PAUSED,
};
use crate::netcore::NetCore;

/// The parser's limits on this node.
pub fn limits(nc: &NetCore) -> McLimits {
    McLimits {
        max_item_size: nc.shared.config.max_item_size,
        ..McLimits::default()
    }
}

/// What an op runs with.
pub fn ctx(nc: &NetCore) -> McCtx {
    McCtx {
        now_ms: nc.core.turn_now(),
        max_item_size: nc.shared.config.max_item_size,
    }
}

/// What running an op on the core that holds its key gave.
pub enum Ran {
    Done(McResult),
    /// Not this node's (the view changed since the op was routed).
    Moved(u16, String),
    /// The slot is migrating and the key has left: ask the importing node.
    Ask(u16, String),
    Unassigned,
    /// This node is cut off from the majority ([`baton_ring::Target::Down`]).
    Down,
}

/// Runs `op` on this core's shard if this node serves its key now (checked on this core,
/// whose view may be newer than the one the op was routed with).
pub fn run_checked(core: &Core, op: McOp, asking: bool, ctx: &McCtx, now: u64) -> Ran {
    let key = op.key();
    let addr = |node| {
        core.router
            .view()
            .map_or_else(String::new, |v| v.addr(node).to_string())
    };
    let target = core
        .router
        .route_asking(key, asking, || core.shard.borrow_mut().exists(key, now));
    match target {
        Target::Core(_) | Target::CrossSlot => {
            Ran::Done(execute(&mut core.shard.borrow_mut(), op, ctx))
        }
        Target::Moved { slot, node } => Ran::Moved(slot, addr(node)),
        Target::Ask { slot, node } => Ran::Ask(slot, addr(node)),
        Target::Unassigned { .. } => Ran::Unassigned,
        Target::Down => Ran::Down,
    }
}

/// The job that runs `op` where its key lives ([`run_checked`]).
pub fn job(op: McOp, asking: bool, ctx: McCtx) -> Job {
    Job::OnCore(Box::new(move |core, now| {
        Out::Value(Box::new(run_checked(core, op, asking, &ctx, now)))
    }))
}

pub fn ran(out: Option<Out>) -> Ran {
    out.and_then(|o| o.into_value::<Ran>())
        .expect("a core answers every forwarded op")
}

/// How an op's result is written.
#[derive(Clone)]
pub enum Shape {
    /// A request of its own.
    One(McReply),
    /// One key of a retrieval (`get`/`gets`/`gat`/`gats`).
    Item { cas: bool, touch: Option<i64> },
}

impl Shape {
    pub fn encode(&self, r: &McResult, out: &mut Vec<u8>) {
        match self {
            Shape::One(reply) => encode(reply, r, out),
            Shape::Item { cas, .. } => encode_item(*cas, r, out),
        }
    }
}

/// `CLUSTER BATON-MC <asking 0|1> <request>`: serves one memcached request forwarded by
/// another node, for keys this node serves, with one answer element per key: the
/// memcached reply, or the redirection for a key it does not serve (see the module doc).
pub async fn serve(nc: &NetCore, args: &[Bytes]) -> Reply {
    const USAGE: &str = "ERR CLUSTER BATON-MC takes 0|1 and one memcached key request";
    let asking = match &args[2][..] {
        b"0" => false,
        b"1" => true,
        _ => return Reply::err(USAGE),
    };
    let mut buf = BytesMut::from(&args[3][..]);
    let mut parser = McParser::new();
    let req = match parser.parse(&mut buf, &limits(nc)) {
        Ok(Some(r)) if buf.is_empty() && parser.swallowing() == 0 => r,
        _ => return Reply::err(USAGE),
    };
    // A write this node takes no more (paused for a failover) is refused here, for the
    // forwarding node to pass on (only a single-key request writes).
    if let McRequest::Single { reply, .. } = &req {
        let paused = || nc.shared.repl.writes_paused.load(Ordering::Acquire);
        if req.writes() && paused() {
            let mut b = Vec::new();
            encode_refusal(reply, PAUSED, &mut b);
            return Reply::Array(vec![Reply::Bulk(Bytes::from(b))]);
        }
    }
    let (ops, shapes): (Vec<McOp>, Vec<Shape>) = match req {
        // A one-key retrieval is answered as one item (no END): the forwarding node may
        // be merging it into a retrieval of several keys.
        McRequest::Single {
            op: McOp::Get { key, touch },
            reply: McReply::Get { cas },
        } => (
            vec![McOp::Get { key, touch }],
            vec![Shape::Item { cas, touch }],
        ),
        McRequest::Single { op, reply } => (vec![op], vec![Shape::One(reply)]),
        McRequest::Multi { ops, cas } => {
            let shapes = ops
                .iter()
                .map(|op| Shape::Item {
                    cas,
                    touch: match op {
                        McOp::Get { touch, .. } => *touch,
                        _ => None,
                    },
                })
                .collect();
            (ops, shapes)
        }
        McRequest::Error(text) => {
            let mut b = Vec::new();
            encode_error(text, &mut b);
            return Reply::Array(vec![Reply::Bulk(Bytes::from(b))]);
        }
        McRequest::Conn(_) => return Reply::err(USAGE),
    };
    let core = &nc.core;
    let ctx = ctx(nc);
    let mut batch = Batch::new(core.cores);
    let jobs: Vec<_> = ops
        .into_iter()
        .map(|op| {
            let kind = op.kind();
            (
                kind,
                batch.push(core.router.core_of(op.key()), job(op, asking, ctx)),
            )
        })
        .collect();
    let mut outs = batch.run(core).await;
    let parts = jobs
        .into_iter()
        .zip(shapes)
        .map(|((kind, t), shape)| match ran(outs.take(t)) {
            Ran::Done(r) => {
                nc.memcache.borrow_mut().record(kind, &r);
                let mut b = Vec::new();
                shape.encode(&r, &mut b);
                Reply::Bulk(Bytes::from(b))
            }
            Ran::Moved(slot, addr) => Reply::error(format!("MOVED {slot} {addr}")),
            Ran::Ask(slot, addr) => Reply::error(format!("ASK {slot} {addr}")),
            Ran::Unassigned => Reply::err("CLUSTERDOWN Hash slot not served"),
            Ran::Down => Reply::err(baton_engine::exec::plan::CLUSTER_DOWN),
        })
        .collect();
    Reply::Array(parts)
}
