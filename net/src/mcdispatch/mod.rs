//! memcached connections: parse with [`crate::memcache::McParser`], route each per-key op
//! to the core that owns its key (the core's [`baton_engine::exec::Router`]), execute it
//! there, encode the results in request order.
//!
//! Same shape as the RESP path ([`crate::dispatch`]): requests whose keys live on this
//! core run inline; from the first one that needs another core, the rest of the pipeline
//! is queued in an [`exec::Pipeline`], one batch per destination core. When every request
//! of it finishes on its own (no `stats`, `flush_all` or `quit`), its ops for this core
//! run at once and the event loop sends the batches itself ([`Outcome::Pipe`]); otherwise
//! one task runs it.
//!
//! Commands are counted (`stats`) on the core of the connection that sent them, in that
//! core's [`NetCore::memcache`].

mod cluster;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use baton_engine::exec::{self, Entry, Outputs, Pipeline, Ticket};
use baton_engine::memcache::{execute, flush_deadline, McCtx, McOpKind};
use baton_engine::runtime::{now_ms, Core, Job, Out};
use bytes::BytesMut;

use crate::client::Client;
use crate::config::Shared;
use crate::dispatch::{
    LoopPipe, Outcome, PipeWork, MAX_SLOW_REQUESTS, OUTPUT_PAUSE, SLOW_FLUSH_EVERY,
};
use crate::memcache::{
    encode, encode_end, encode_error, encode_item, encode_multi, encode_noop, encode_ok,
    encode_refusal, encode_reset, encode_stats, encode_value, encode_version, McConn, McLimits,
    McOp, McReply, McRequest, McResult, McStats, PAUSED, READONLY,
};
use crate::netcore::NetCore;

pub(crate) fn limits(shared: &Shared) -> McLimits {
    McLimits {
        max_item_size: shared.config.max_item_size,
        ..McLimits::default()
    }
}

pub(crate) fn ctx(nc: &NetCore) -> McCtx {
    McCtx {
        now_ms: nc.core.turn_now(),
        max_item_size: nc.shared.config.max_item_size,
    }
}

/// Parses the next request ([`parse_unless_waiting`] with the plain parse).
fn parse_here(
    nc: &NetCore,
    client: &Client,
    rbuf: &mut BytesMut,
    limits: &McLimits,
) -> Result<Option<McRequest>, crate::memcache::McError> {
    parse_unless_waiting(nc, client, rbuf, |p, b| p.parse(b, limits), |r| r)
}

/// Parses the next request with `parse` (the plain parse, or cluster mode's with the
/// request's text) and the client's parser state. During a handoff's per-shard cutover,
/// a request that must wait for its connection to move (`request` names it) goes back
/// into the input, the parser state as it was, and counts as not there yet
/// ([`crate::handoff::cutover`]).
pub(crate) fn parse_unless_waiting<T>(
    nc: &NetCore,
    client: &Client,
    rbuf: &mut BytesMut,
    parse: impl FnOnce(
        &mut crate::memcache::McParser,
        &mut BytesMut,
    ) -> Result<Option<T>, crate::memcache::McError>,
    request: impl Fn(&T) -> &McRequest,
) -> Result<Option<T>, crate::memcache::McError> {
    use crate::handoff::cutover;
    let h = &nc.shared.handoff;
    let kept = cutover::keep_memcache_input(h, rbuf);
    let mut parser = client.borrow().mc_parser;
    let res = parse(&mut parser, rbuf);
    if let (Some(kept), Ok(Some(parsed))) = (kept, &res) {
        if cutover::memcache_waits(h, &nc.core.router, request(parsed)) {
            *rbuf = kept;
            return Ok(None);
        }
    }
    client.borrow_mut().mc_parser = parser;
    res
}

/// Runs one op on the local shard and counts it.
pub(crate) fn run_local(nc: &NetCore, op: McOp, ctx: &McCtx) -> McResult {
    let kind = op.kind();
    let r = execute(&mut nc.core.shard.borrow_mut(), op, ctx);
    nc.memcache.borrow_mut().record(kind, &r);
    r
}

/// [`run_local`] and [`encode`] for a `get` or `gets` of one key: a hit goes from the
/// shard straight into `out`, with no copy of the value in a [`McResult`].
fn get_local(nc: &NetCore, key: &[u8], cas: bool, out: &mut Vec<u8>) {
    let hit = {
        let mut shard = nc.core.shard.borrow_mut();
        match baton_engine::memcache::execute_get(&mut shard, key, &ctx(nc)) {
            Some((value, flags, unique)) => {
                encode_value(key, flags, value, cas.then_some(unique), out);
                true
            }
            None => false,
        }
    };
    encode_end(out);
    nc.memcache.borrow_mut().record_get(hit);
}

/// Answers a write that a replica under `replica-read-only` refuses, as Redis's `-READONLY`
/// (or one that comes while FAILOVER pauses writes)
/// (nothing under `noreply`), without running it. Returns whether it did.
pub(crate) fn refused(shared: &Shared, req: &McRequest, out: &mut Vec<u8>) -> bool {
    if !req.writes() {
        return false;
    }
    let why = if shared.repl.refuses_writes() {
        READONLY
    } else if shared
        .repl
        .writes_paused
        .load(std::sync::atomic::Ordering::Acquire)
    {
        // FAILOVER pauses writes; a memcached connection cannot wait the way a Redis one
        // does, and a write taken now could be lost with the switch: refused instead.
        PAUSED
    } else {
        return false;
    };
    match req {
        McRequest::Single { reply, .. } => encode_refusal(reply, why, out),
        McRequest::Conn(McConn::FlushAll { noreply: true, .. }) => {}
        _ => encode_error(why, out),
    }
    true
}

/// Whether a request can run inline on this core right now.
fn is_local(core: &Core, req: &McRequest) -> bool {
    // While MIGRATE fences keys of this core, ops take the path through a job, where the
    // core checks them (`exec::fence`).
    if !core.is_unlocked() || core.fence.is_active() {
        return false;
    }
    let mine = |op: &McOp| core.router.is_local(op.key());
    match req {
        McRequest::Single { op, .. } => mine(op),
        McRequest::Multi { ops, .. } => ops.iter().all(mine),
        McRequest::Conn(McConn::Stats | McConn::StatsReset | McConn::FlushAll { .. }) => false,
        McRequest::Conn(_) | McRequest::Error(_) => true,
    }
}

/// Parses and answers a connection's buffered memcached input, inline while it can.
pub fn run(nc: &Rc<NetCore>, client: &Client, rbuf: &mut BytesMut, out: &mut Vec<u8>) -> Outcome {
    let (core, shared) = (&nc.core, &nc.shared);
    if shared.cluster.get().is_some() || crate::handoff::cutover::memcache_forwards(&shared.handoff)
    {
        // (A handoff's per-shard cutover forwards the keys on cut shards as cluster mode
        // forwards another node's: [`crate::handoff::cutover`].)
        return cluster::run(nc, client, rbuf, out);
    }
    let limits = limits(shared);
    loop {
        if out.len() > OUTPUT_PAUSE {
            return Outcome::Continue;
        }
        let req = match parse_here(nc, client, rbuf, &limits) {
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
        if refused(shared, &req, out) {
            continue;
        }
        if !is_local(core, &req) {
            let mut rest = vec![req];
            let mut trailing_close = false;
            while rest.len() < MAX_SLOW_REQUESTS {
                match parse_here(nc, client, rbuf, &limits) {
                    Ok(Some(r)) => rest.push(r),
                    Ok(None) => break,
                    Err(e) => {
                        trailing_close = true;
                        if let Some(r) = e.reply() {
                            rest.push(McRequest::Error(
                                std::str::from_utf8(r).unwrap_or("ERROR").trim_end(),
                            ));
                        }
                        break;
                    }
                }
            }
            // While MIGRATE fences keys of this core (or a transaction holds it), its own
            // ops too go through jobs, which the task path queues.
            if !trailing_close
                && core.is_unlocked()
                && !core.fence.is_active()
                && rest.iter().all(finishes_alone)
            {
                let p = queue_for_loop(nc, rest);
                return Outcome::Pipe(Box::new(LoopPipe::new(Box::new(p))));
            }
            return Outcome::Slow {
                task: Box::pin(slow(nc.clone(), rest, trailing_close)),
                hold: true,
            };
        }
        if answer_inline(nc, req, out) {
            return Outcome::Close;
        }
    }
}

/// Answers a request that [`is_local`] (or, in cluster mode, its own check) let run
/// inline; true when the connection must close (`quit`).
pub(crate) fn answer_inline(nc: &NetCore, req: McRequest, out: &mut Vec<u8>) -> bool {
    match req {
        McRequest::Single {
            op: McOp::Get { key, touch: None },
            reply: McReply::Get { cas },
        } => get_local(nc, &key, cas, out),
        McRequest::Single { op, reply } => {
            let r = run_local(nc, op, &ctx(nc));
            encode(&reply, &r, out);
        }
        McRequest::Multi { ops, cas } => {
            let ctx = ctx(nc);
            let results: Vec<McResult> =
                ops.into_iter().map(|op| run_local(nc, op, &ctx)).collect();
            encode_multi(cas, &results, out);
        }
        McRequest::Error(text) => {
            nc.memcache.borrow_mut().record_error(text);
            encode_error(text, out);
        }
        McRequest::Conn(McConn::Quit) => return true,
        McRequest::Conn(McConn::Version) => encode_version(env!("CARGO_PKG_VERSION"), out),
        McRequest::Conn(McConn::Verbosity { noreply }) => encode_ok(noreply, out),
        McRequest::Conn(McConn::NoOp) => encode_noop(out),
        McRequest::Conn(_) => {
            unreachable!("is_local sends stats and flush_all to the slow path")
        }
    }
    false
}

/// A memcached request's place in a pipeline, and the core whose counters its results go
/// to (the connection's).
struct McEntry {
    request: McQueued,
    nc: Rc<NetCore>,
}

enum McQueued {
    /// Encoded already.
    Ready(Vec<u8>),
    One {
        ticket: Ticket,
        kind: McOpKind,
        reply: McReply,
    },
    /// A multi-key get: one op per key, answered together.
    Multi { parts: Vec<McPart>, cas: bool },
}

/// One key of a multi-key get: queued for its core, or run here already (and counted).
enum McPart {
    Queued(Ticket, McOpKind),
    Done(McResult),
}

/// How a memcached request ended: encoded output.
struct McDone(Vec<u8>);

/// The result of one op's job, counted in `counters`.
fn result(
    outs: &mut Outputs,
    ticket: Ticket,
    kind: McOpKind,
    counters: &RefCell<McStats>,
) -> McResult {
    let r = match outs.take(ticket) {
        Some(Out::Mc(r)) => r,
        _ => unreachable!("a core answers every memcached job with its result"),
    };
    counters.borrow_mut().record(kind, &r);
    r
}

impl Entry for McEntry {
    type Done = McDone;

    fn finish(self, outs: &mut Outputs) -> McDone {
        let mut out = Vec::new();
        let counters = &self.nc.memcache;
        match self.request {
            McQueued::Ready(b) => out = b,
            McQueued::One {
                ticket,
                kind,
                reply,
            } => encode(&reply, &result(outs, ticket, kind, counters), &mut out),
            McQueued::Multi { parts, cas } => {
                for part in parts {
                    let r = match part {
                        McPart::Queued(t, kind) => result(outs, t, kind, counters),
                        McPart::Done(r) => r,
                    };
                    encode_item(cas, &r, &mut out);
                }
                encode_end(&mut out);
            }
        }
        McDone(out)
    }
}

/// Whether a request finishes without waiting for anything but the cores' shards: the
/// loop may then drive its pipeline ([`Outcome::Pipe`]); `stats`, `flush_all` and `quit`
/// take the task.
fn finishes_alone(req: &McRequest) -> bool {
    matches!(
        req,
        McRequest::Single { .. }
            | McRequest::Multi { .. }
            | McRequest::Error(_)
            | McRequest::Conn(McConn::Version | McConn::Verbosity { .. } | McConn::NoOp)
    )
}

/// Queues a pipeline of requests that all [`finishes_alone`] for the loop: ops of this
/// core's shard run at once (this core is unlocked and unfenced: none is queued for it),
/// the others are queued for their cores, and answers are encoded in their place.
fn queue_for_loop(nc: &Rc<NetCore>, reqs: Vec<McRequest>) -> Pipeline<McEntry> {
    let mut p: Pipeline<McEntry> = Pipeline::new(nc.core.cores);
    for req in reqs {
        if let Some(c) = queue(nc, &mut p, req, true) {
            // `version`, `verbosity` or `mn`: `finishes_alone` let no other through.
            let mut b = Vec::new();
            answer_inline(nc, McRequest::Conn(c), &mut b);
            p.queue(McEntry {
                request: McQueued::Ready(b),
                nc: nc.clone(),
            });
        }
    }
    p
}

/// Queues one request in `p`: its ops for their cores' shards, a refusal or an error
/// encoded in its place. With `inline`, ops of this core's shard run at once (the caller
/// made sure none waits in `p` for this core). Gives a connection request back to the
/// caller.
fn queue(
    nc: &Rc<NetCore>,
    p: &mut Pipeline<McEntry>,
    req: McRequest,
    inline: bool,
) -> Option<McConn> {
    let (core, shared) = (&nc.core, &nc.shared);
    let entry = |request| McEntry {
        request,
        nc: nc.clone(),
    };
    let ctx = ctx(nc);
    let mut refusal = Vec::new();
    if refused(shared, &req, &mut refusal) {
        if !refusal.is_empty() {
            p.queue(entry(McQueued::Ready(refusal)));
        }
        return None;
    }
    let here = |op: &McOp| inline && core.router.core_of(op.key()) == core.id;
    match req {
        McRequest::Single { op, reply } if here(&op) => {
            let mut b = Vec::new();
            encode(&reply, &run_local(nc, op, &ctx), &mut b);
            p.queue(entry(McQueued::Ready(b)));
        }
        McRequest::Single { op, reply } => {
            let (ticket, kind) = job(core, p, op, ctx);
            p.queue(entry(McQueued::One {
                ticket,
                kind,
                reply,
            }));
        }
        McRequest::Multi { ops, cas } => {
            let mut parts = Vec::with_capacity(ops.len());
            for op in ops {
                parts.push(if here(&op) {
                    McPart::Done(run_local(nc, op, &ctx))
                } else {
                    let (t, kind) = job(core, p, op, ctx);
                    McPart::Queued(t, kind)
                });
            }
            p.queue(entry(McQueued::Multi { parts, cas }));
        }
        McRequest::Error(text) => {
            nc.memcache.borrow_mut().record_error(text);
            let mut b = Vec::new();
            encode_error(text, &mut b);
            p.queue(entry(McQueued::Ready(b)));
        }
        McRequest::Conn(c) => return Some(c),
    }
    None
}

impl PipeWork for Pipeline<McEntry> {
    fn send(&mut self, core: &Core, tag: u64) -> usize {
        self.send_for_loop(core, tag)
    }

    fn finish(&mut self, outs: Outputs, _: &NetCore, _: &Client, out: &mut Vec<u8>) {
        self.finish_each(outs, |McDone(bytes)| out.extend_from_slice(&bytes));
    }
}

/// Queues `op` for the core that owns its key.
fn job(core: &Core, p: &mut Pipeline<McEntry>, op: McOp, ctx: McCtx) -> (Ticket, McOpKind) {
    let kind = op.kind();
    let owner = core.router.core_of(op.key());
    (p.job(owner, Job::Mc(op, ctx)), kind)
}

/// Runs a memcached pipeline that needs other cores, preserving reply order.
async fn slow(nc: Rc<NetCore>, reqs: Vec<McRequest>, close_at_end: bool) -> (Vec<u8>, bool) {
    let (core, shared) = (&nc.core, &nc.shared);
    let mut out = Vec::new();
    let mut p: Pipeline<McEntry> = Pipeline::new(core.cores);
    let mut close = close_at_end;
    for req in reqs {
        match queue(&nc, &mut p, req, false) {
            None => {}
            Some(McConn::Quit) => {
                close = true;
                break;
            }
            Some(c) => {
                flush(core, &mut p, &mut out).await;
                out.extend(conn_command(&nc, c).await);
            }
        }
        if p.len() >= SLOW_FLUSH_EVERY {
            flush(core, &mut p, &mut out).await;
            if crate::protect::over_hard_limit(shared, out.len()) {
                // The loop closes this client for its output; the rest is never run.
                return (out, true);
            }
        }
    }
    flush(core, &mut p, &mut out).await;
    (out, close)
}

/// Runs the queued requests and appends their encoded results in order.
async fn flush(core: &Rc<Core>, p: &mut Pipeline<McEntry>, out: &mut Vec<u8>) {
    p.flush_each(core, |McDone(bytes)| out.extend_from_slice(&bytes))
        .await;
}

/// What one core contributes to `stats`.
#[derive(Default)]
struct CoreNumbers {
    stats: McStats,
    items: u64,
    bytes: u64,
    evicted: u64,
}

impl CoreNumbers {
    /// Reads the numbers of the core this runs on.
    fn collect(nc: &NetCore, _now: u64) -> CoreNumbers {
        let shard = nc.core.shard.borrow();
        CoreNumbers {
            stats: nc.memcache.borrow().clone(),
            items: shard.len() as u64,
            bytes: shard
                .store()
                .iter()
                .map(|(k, e)| (k.len() + e.value().len()) as u64)
                .sum(),
            evicted: shard.stats.evicted_keys,
        }
    }
}

/// Answers `version`, `verbosity`, `stats`, `stats reset`, `flush_all` and `mn`.
pub(crate) async fn conn_command(nc: &NetCore, c: McConn) -> Vec<u8> {
    let (core, shared) = (&nc.core, &nc.shared);
    let mut out = Vec::new();
    match c {
        McConn::Version => encode_version(env!("CARGO_PKG_VERSION"), &mut out),
        McConn::Verbosity { noreply } => encode_ok(noreply, &mut out),
        McConn::NoOp => encode_noop(&mut out),
        McConn::Quit => {}
        McConn::StatsReset => {
            nc.on_every_core(|nc, _| *nc.memcache.borrow_mut() = McStats::default())
                .await;
            encode_reset(&mut out);
        }
        McConn::FlushAll { delay, noreply } => {
            nc.memcache.borrow_mut().cmd_flush += 1;
            // Each shard flushes on its own core: now, or from its timer when the delay
            // is up.
            let at = flush_deadline(delay, now_ms()).unwrap_or(0);
            let mut batch = exec::Batch::new(core.cores);
            for c in 0..core.cores {
                batch.push(c, Job::FlushAt(at));
            }
            batch.run(core).await;
            encode_ok(noreply, &mut out);
        }
        McConn::Stats => {
            let mut total = McStats::default();
            let mut items = 0;
            let mut bytes = 0;
            let per_core = nc.on_every_core(CoreNumbers::collect).await;
            for n in per_core {
                add(&mut total, &n.stats);
                items += n.items;
                bytes += n.bytes;
                total.evictions += n.evicted;
            }
            let now = now_ms();
            let (user, system) = rusage_us();
            total.pid = std::process::id();
            total.uptime = now.saturating_sub(shared.started_ms) / 1000;
            total.time = now / 1000;
            total.version = env!("CARGO_PKG_VERSION").to_string();
            total.rusage_user_us = user;
            total.rusage_system_us = system;
            total.max_connections = shared.settings.maxclients.load(Ordering::Relaxed);
            total.curr_connections = shared.connected_clients.load(Ordering::Relaxed);
            total.total_connections = shared.total_connections.load(Ordering::Relaxed);
            total.rejected_connections = shared.rejected_connections.load(Ordering::Relaxed);
            total.limit_maxbytes = shared.settings.maxmemory.load(Ordering::Relaxed);
            total.threads = core.cores as u64;
            total.curr_items = items;
            total.bytes = bytes;
            encode_stats(&total, &mut out);
        }
    }
    out
}

/// Adds one core's counters into the total.
fn add(t: &mut McStats, s: &McStats) {
    t.cmd_get += s.cmd_get;
    t.cmd_set += s.cmd_set;
    t.cmd_flush += s.cmd_flush;
    t.cmd_touch += s.cmd_touch;
    t.get_hits += s.get_hits;
    t.get_misses += s.get_misses;
    t.delete_misses += s.delete_misses;
    t.delete_hits += s.delete_hits;
    t.incr_misses += s.incr_misses;
    t.incr_hits += s.incr_hits;
    t.decr_misses += s.decr_misses;
    t.decr_hits += s.decr_hits;
    t.cas_misses += s.cas_misses;
    t.cas_hits += s.cas_hits;
    t.cas_badval += s.cas_badval;
    t.touch_hits += s.touch_hits;
    t.touch_misses += s.touch_misses;
    t.store_too_large += s.store_too_large;
    t.store_no_memory += s.store_no_memory;
    t.bytes_read += s.bytes_read;
    t.bytes_written += s.bytes_written;
    t.total_items += s.total_items;
    t.evictions += s.evictions;
}

fn rusage_us() -> (u64, u64) {
    // SAFETY: getrusage fills the struct we pass; all-zero is a valid starting value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}
