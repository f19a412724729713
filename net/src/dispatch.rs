//! From parsed RESP commands to replies: look the command up, check arity and auth, route
//! it, run it, encode the reply.
//!
//! Fast path: while every command of a pipeline runs on this core's shard (or is answered
//! by the connection), it runs inline and its reply is encoded at once. At the first
//! command that needs another core or must wait, the rest of the pipeline moves into one
//! task ([`slow_pipeline`]) that batches work per destination core, sends each batch once,
//! and encodes the replies in request order.
//!
//! Every command that runs is counted for INFO commandstats and checked against the slow
//! log ([`crate::stats`]) on this core: inline ones around their execution, others when
//! their reply (with the time the other core measured) comes back.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use baton_engine::clock;
use baton_engine::command::{command_index, lookup, subcommand, CommandSpec, Merge, Route};
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::{now_ms, turn_now, Core, Job, Out, NO_TXN};
use bytes::{Bytes, BytesMut};

use crate::admin;
use crate::atomic;
use crate::client::Client;
use crate::config::Shared;
use crate::resp;
use crate::stats;

/// Above this much encoded output, parsing pauses until the client reads.
pub(crate) const OUTPUT_PAUSE: usize = 8 * 1024 * 1024;
/// A slow pipeline answers this many commands at a time, then checks its output against
/// the hard output limit, so a long pipeline of big replies stops near the limit instead
/// of buffering all of them first.
pub(crate) const SLOW_FLUSH_EVERY: usize = 256;

/// The encoded replies of a slow pipeline and whether to close afterwards.
pub type SlowResult = (Vec<u8>, bool);

/// What processing a connection's input led to.
pub enum Outcome {
    /// Everything parsable was answered; read more.
    Continue,
    /// Answered what could be; close once the output is written.
    Close,
    /// The rest runs in this future.
    Slow(Pin<Box<dyn Future<Output = SlowResult>>>),
}

/// Post-processing of a single-core reply.
#[derive(Debug, Clone, Copy)]
pub enum Post {
    None,
    /// Turn a shard's SCAN cursor into the global cursor (shard cursor << CORE_BITS | core).
    Scan {
        core: usize,
        cores: usize,
    },
}

/// Where and how one command runs.
pub enum Plan {
    Reply(Reply),
    Run {
        core: usize,
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
        post: Post,
    },
    /// Split over several cores; `order[i]` = (part, index in part) for MGET.
    Split {
        spec: &'static CommandSpec,
        merge: Merge,
        parts: Vec<(usize, Job)>,
        order: Vec<(u32, u32)>,
    },
    /// Must run alone, after everything before it finished.
    Async(AsyncOp),
}

pub enum AsyncOp {
    /// A multi-key command whose keys live on several cores.
    Atomic(&'static CommandSpec, Vec<Bytes>),
    /// A connection command that needs every core (INFO, CLIENT LIST, ...), with its row
    /// in the command statistics (its subcommand's, for CLIENT LIST).
    Admin(&'static CommandSpec, usize, Vec<Bytes>),
}

/// Decides how a command runs. Connection commands are answered (and counted) here;
/// refused commands are counted as rejected.
pub fn plan(
    core: &Rc<Core>,
    shared: &Arc<Shared>,
    client: &Client,
    args: Vec<Bytes>,
    now: u64,
) -> Plan {
    let Some(spec) = lookup(&args[0]) else {
        return Plan::Reply(errors::unknown_command(&args[0], &args[1..]));
    };
    let mut row = command_index(spec);
    {
        let mut st = client.borrow_mut();
        st.last_cmd = spec.name;
        // A container's subcommand is looked up and checked like a command (Redis 7).
        if spec.route == Route::Connection && args.len() > 1 {
            match subcommand(spec, &args[1]) {
                Some((sub_row, sub)) => {
                    st.last_cmd = sub.name;
                    if !sub.arity_ok(args.len()) {
                        stats::reject(sub_row);
                        return Plan::Reply(admin::sub_arity(spec.name, &args[1]));
                    }
                    row = sub_row;
                }
                None if is_container(spec) => {
                    return Plan::Reply(admin::unknown_subcommand(spec.name, &args[1]));
                }
                None => {}
            }
        }
        if !spec.arity_ok(args.len()) {
            stats::reject(row);
            return Plan::Reply(errors::wrong_arity(spec.name));
        }
        if !st.authenticated && !spec.has(baton_engine::command::flags::NO_AUTH) {
            stats::reject(row);
            return Plan::Reply(errors::NOAUTH);
        }
    }
    let cores = core.cores;
    match spec.route {
        Route::Connection => {
            let start = clock::ticks();
            match admin::handle(core, shared, client, spec, &args, now) {
                Some(reply) => {
                    stats::executed(shared, client, row, clock::since(start), &reply, &args);
                    Plan::Reply(reply)
                }
                None => Plan::Async(AsyncOp::Admin(spec, row, args)),
            }
        }
        Route::Key => Plan::Run {
            // OBJECT and MEMORY name their key second; their HELP names none and runs
            // on any core.
            core: args
                .get(spec.first_key.max(1) as usize)
                .map_or(core.id, |k| baton_ring::core_of(k, cores)),
            spec,
            args,
            post: Post::None,
        },
        Route::MultiKey(merge) => {
            let step = spec.step.max(1) as usize;
            if step > 1 && !(args.len() - 1).is_multiple_of(step) {
                // Runs and fails, as Redis's MSET does with an odd argument count.
                let reply = errors::wrong_arity(spec.name);
                stats::executed(shared, client, row, 0, &reply, &args);
                return Plan::Reply(reply);
            }
            split(spec, merge, args, cores)
        }
        Route::AllCores(Merge::Scan) => {
            if scan_cursor(&args[1], cores).is_none() {
                let reply = Reply::err("ERR invalid cursor");
                stats::executed(shared, client, row, 0, &reply, &args);
                return Plan::Reply(reply);
            }
            plan_scan(spec, args, cores)
        }
        Route::AllCores(merge) => {
            if cores == 1 {
                return Plan::Run {
                    core: 0,
                    spec,
                    args,
                    post: Post::None,
                };
            }
            let parts = (0..cores)
                .map(|c| (c, Job::Cmd(spec, args.clone())))
                .collect();
            Plan::Split {
                spec,
                merge,
                parts,
                order: Vec::new(),
            }
        }
        Route::Atomic => {
            let mut keys = spec
                .key_positions(args.len())
                .map(|i| baton_ring::core_of(&args[i], cores));
            let first = keys.next().unwrap_or(0);
            if keys.all(|c| c == first) {
                Plan::Run {
                    core: first,
                    spec,
                    args,
                    post: Post::None,
                }
            } else {
                Plan::Async(AsyncOp::Atomic(spec, args))
            }
        }
    }
}

/// A global SCAN cursor (shard cursor << CORE_BITS | core) split into core and shard cursor;
/// `None` when it is not a cursor of this server.
fn scan_cursor(arg: &[u8], cores: usize) -> Option<(usize, u64)> {
    let global = std::str::from_utf8(arg).ok()?.parse::<u64>().ok()?;
    let core = (global & (baton_engine::MAX_CORES as u64 - 1)) as usize;
    (core < cores).then_some((core, global >> baton_engine::CORE_BITS))
}

fn plan_scan(spec: &'static CommandSpec, mut args: Vec<Bytes>, cores: usize) -> Plan {
    let Some((core, shard_cursor)) = scan_cursor(&args[1], cores) else {
        return Plan::Reply(Reply::err("ERR invalid cursor"));
    };
    args[1] = Bytes::from(shard_cursor.to_string());
    Plan::Run {
        core,
        spec,
        args,
        post: Post::Scan { core, cores },
    }
}

/// Splits a multi-key command by core (MGET, MSET, DEL, EXISTS, TOUCH, UNLINK).
fn split(spec: &'static CommandSpec, merge: Merge, args: Vec<Bytes>, cores: usize) -> Plan {
    let step = spec.step.max(1) as usize;
    let positions: Vec<usize> = spec.key_positions(args.len()).collect();
    if step > 1 && !(args.len() - 1).is_multiple_of(step) {
        // `plan` answers this before splitting; kept so a split is never malformed.
        return Plan::Reply(errors::wrong_arity(spec.name));
    }
    let owners: Vec<usize> = positions
        .iter()
        .map(|&i| baton_ring::core_of(&args[i], cores))
        .collect();
    if owners.windows(2).all(|w| w[0] == w[1]) {
        let core = owners.first().copied().unwrap_or(0);
        return Plan::Run {
            core,
            spec,
            args,
            post: Post::None,
        };
    }
    let mut part_of_core = vec![u32::MAX; cores];
    let mut parts: Vec<(usize, Vec<Bytes>)> = Vec::new();
    let mut order = Vec::with_capacity(positions.len());
    for (&pos, &c) in positions.iter().zip(&owners) {
        if part_of_core[c] == u32::MAX {
            part_of_core[c] = parts.len() as u32;
            parts.push((c, vec![args[0].clone()]));
        }
        let part = &mut parts[part_of_core[c] as usize].1;
        order.push((part_of_core[c], ((part.len() - 1) / step) as u32));
        part.extend_from_slice(&args[pos..pos + step]);
    }
    let parts = parts
        .into_iter()
        .map(|(c, a)| (c, Job::Cmd(spec, a)))
        .collect();
    Plan::Split {
        spec,
        merge,
        parts,
        order,
    }
}

/// Whether `spec` has subcommands (CLIENT, CONFIG, ...).
fn is_container(spec: &CommandSpec) -> bool {
    baton_engine::command::SUBCOMMANDS
        .iter()
        .any(|(name, _)| *name == spec.name)
}

/// Applies a [`Post`] to a shard's reply.
pub fn post_process(post: Post, reply: Reply) -> Reply {
    match (post, reply) {
        (Post::Scan { core, cores }, Reply::Array(mut items)) if items.len() == 2 => {
            let shard_cursor = match &items[0] {
                Reply::Bulk(b) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0),
                _ => 0,
            };
            let global = if shard_cursor != 0 {
                (shard_cursor << baton_engine::CORE_BITS) | core as u64
            } else if core + 1 < cores {
                core as u64 + 1
            } else {
                0
            };
            items[0] = Reply::Bulk(Bytes::from(global.to_string()));
            Reply::Array(items)
        }
        (_, reply) => reply,
    }
}

/// Parses and answers a connection's buffered RESP input, inline while it can.
pub fn run_redis(
    core: &Rc<Core>,
    shared: &Arc<Shared>,
    client: &Client,
    rbuf: &mut BytesMut,
    out: &mut Vec<u8>,
) -> Outcome {
    let limits = &shared.config.limits;
    loop {
        if out.len() > OUTPUT_PAUSE {
            return Outcome::Continue;
        }
        let args = match parse(client, rbuf, limits) {
            Ok(Some(args)) => args,
            Ok(None) => return Outcome::Continue,
            Err(e) => {
                tracing::debug!(error = %e, "protocol error; closing the connection");
                resp::encode(&Reply::error(e.0), client.borrow().resp, out);
                return Outcome::Close;
            }
        };
        let now = turn_now();
        let plan = plan(core, shared, client, args, now);
        let reply = match plan {
            Plan::Reply(r) => r,
            Plan::Run {
                core: c,
                spec,
                args,
                post,
            } if c == core.id => {
                let start = clock::ticks();
                match core.run_local(spec, &args, now) {
                    Some(r) => {
                        let ticks = clock::since(start);
                        stats::executed(shared, client, command_index(spec), ticks, &r, &args);
                        post_process(post, r)
                    }
                    None => {
                        return slow(
                            core,
                            shared,
                            client,
                            Plan::Run {
                                core: c,
                                spec,
                                args,
                                post,
                            },
                            rbuf,
                        )
                    }
                }
            }
            other => return slow(core, shared, client, other, rbuf),
        };
        resp::encode(&reply, client.borrow().resp, out);
        if client.borrow().close_after_reply {
            return Outcome::Close;
        }
    }
}

/// Parses the next command with the connection's own parser state.
fn parse(
    client: &Client,
    rbuf: &mut BytesMut,
    limits: &resp::Limits,
) -> Result<Option<Vec<Bytes>>, resp::ProtocolError> {
    let mut st = client.borrow_mut();
    let authenticated = st.authenticated;
    st.resp_parser.parse_command(rbuf, limits, authenticated)
}

/// Moves the rest of the pipeline (this plan and every complete command still buffered)
/// into a slow-path task.
fn slow(
    core: &Rc<Core>,
    shared: &Arc<Shared>,
    client: &Client,
    first: Plan,
    rbuf: &mut BytesMut,
) -> Outcome {
    let mut rest = Vec::new();
    let mut trailing = None;
    while rest.len() < 65_536 {
        match parse(client, rbuf, &shared.config.limits) {
            Ok(Some(args)) => rest.push(args),
            Ok(None) => break,
            Err(e) => {
                trailing = Some(e.0);
                break;
            }
        }
    }
    Outcome::Slow(Box::pin(slow_pipeline(
        core.clone(),
        shared.clone(),
        client.clone(),
        first,
        rest,
        trailing,
    )))
}

enum Pending {
    Ready(Reply),
    One {
        core: usize,
        pos: usize,
        post: Post,
        row: usize,
    },
    Multi {
        spec: &'static CommandSpec,
        merge: Merge,
        parts: Vec<(usize, usize)>,
        order: Vec<(u32, u32)>,
    },
}

/// Work queued per destination core, flushed as one batch each.
struct Batches {
    jobs: Vec<Vec<Job>>,
    entries: Vec<(Pending, u8)>,
}

/// A command's output from its batch: reply, ticks it ran, and its arguments (empty when
/// the output is missing or not a command's).
fn command_out(out: Option<Out>) -> (Reply, u64, Vec<Bytes>) {
    match out {
        Some(Out::Cmd { reply, ticks, args }) => (reply, ticks, args),
        Some(other) => (other.into_reply(), 0, Vec::new()),
        None => (Reply::err("ERR internal: missing reply"), 0, Vec::new()),
    }
}

impl Batches {
    fn push(&mut self, core: usize, job: Job) -> usize {
        self.jobs[core].push(job);
        self.jobs[core].len() - 1
    }

    /// Sends every batch, waits for all, and encodes the queued replies in order, counting
    /// each command for the statistics and the slow log.
    async fn flush(
        &mut self,
        core: &Rc<Core>,
        shared: &Shared,
        client: &Client,
        out: &mut Vec<u8>,
    ) {
        let mut results = run_batches(core, &mut self.jobs).await;
        let mut take = |c: usize, p: usize| command_out(results[c][p].take());
        for (pending, proto) in self.entries.drain(..) {
            let reply = match pending {
                Pending::Ready(r) => r,
                Pending::One {
                    core,
                    pos,
                    post,
                    row,
                } => {
                    let (reply, ticks, args) = take(core, pos);
                    stats::executed(shared, client, row, ticks, &reply, &args);
                    post_process(post, reply)
                }
                Pending::Multi {
                    spec,
                    merge,
                    parts,
                    order,
                } => {
                    let mut ticks = 0;
                    let mut replies = Vec::with_capacity(parts.len());
                    let mut part_args = Vec::with_capacity(parts.len());
                    for &(c, p) in &parts {
                        let (reply, t, args) = take(c, p);
                        ticks += t;
                        replies.push(reply);
                        part_args.push(args);
                    }
                    let reply = merge_replies(merge, replies, &order);
                    stats::record(command_index(spec), ticks, reply.is_error());
                    if let Some(us) = stats::slow_us(shared, ticks) {
                        let args = joined_args(spec, &part_args, &order);
                        stats::slowlog::push(shared, client, &args, us);
                    }
                    reply
                }
            };
            resp::encode(&reply, proto, out);
        }
    }
}

/// The arguments of a command that was split over cores, put back together from its
/// parts: keys (with their values) in request order, or the first part's arguments when
/// every core ran the same command.
fn joined_args(spec: &CommandSpec, parts: &[Vec<Bytes>], order: &[(u32, u32)]) -> Vec<Bytes> {
    if order.is_empty() {
        return parts.first().cloned().unwrap_or_default();
    }
    let step = spec.step.max(1) as usize;
    let mut args: Vec<Bytes> = parts
        .first()
        .and_then(|p| p.first())
        .cloned()
        .into_iter()
        .collect();
    for &(part, i) in order {
        let start = 1 + i as usize * step;
        if let Some(group) = parts
            .get(part as usize)
            .and_then(|p| p.get(start..start + step))
        {
            args.extend_from_slice(group);
        }
    }
    args
}

/// A batch's future: the core it ran on and its outputs.
type BatchCall = Pin<Box<dyn Future<Output = (usize, Vec<Out>)>>>;

/// Sends each core its batch (emptying `jobs`), runs them concurrently, and returns every
/// core's outputs, indexed by core and then by position in its batch.
pub(crate) async fn run_batches(core: &Rc<Core>, jobs: &mut [Vec<Job>]) -> Vec<Vec<Option<Out>>> {
    let mut calls: Vec<BatchCall> = Vec::new();
    for (c, batch) in jobs.iter_mut().enumerate() {
        if !batch.is_empty() {
            let (core, batch) = (core.clone(), std::mem::take(batch));
            calls.push(Box::pin(
                async move { (c, core.call(c, NO_TXN, batch).await) },
            ));
        }
    }
    let mut results: Vec<Vec<Option<Out>>> = (0..jobs.len()).map(|_| Vec::new()).collect();
    for (c, outs) in JoinAll::new(calls).await {
        results[c] = outs.into_iter().map(Some).collect();
    }
    results
}

/// Runs `f` on every core's shard (concurrently, one batch each) and returns the
/// results in core order.
pub(crate) async fn on_every_core<T, F>(core: &Rc<Core>, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(&mut baton_engine::Shard, u64) -> T + Clone + Send + 'static,
{
    let mut jobs: Vec<Vec<Job>> = (0..core.cores)
        .map(|_| {
            let f = f.clone();
            vec![Job::Call(Box::new(move |s, now| {
                Out::Value(Box::new(f(s, now)))
            }))]
        })
        .collect();
    run_batches(core, &mut jobs)
        .await
        .into_iter()
        .filter_map(|mut outs| outs.pop().flatten().and_then(Out::into_value::<T>))
        .collect()
}

/// Runs a pipeline that needs other cores or must wait, preserving reply order.
async fn slow_pipeline(
    core: Rc<Core>,
    shared: Arc<Shared>,
    client: Client,
    first: Plan,
    rest: Vec<Vec<Bytes>>,
    trailing: Option<String>,
) -> SlowResult {
    let mut out = Vec::new();
    let mut b = Batches {
        jobs: (0..core.cores).map(|_| Vec::new()).collect(),
        entries: Vec::new(),
    };
    let mut next = Some(first);
    let mut rest = rest.into_iter();
    let mut close = false;
    loop {
        let planned = match next.take() {
            Some(p) => p,
            None => match rest.next() {
                Some(args) => plan(&core, &shared, &client, args, turn_now()),
                None => break,
            },
        };
        let proto = client.borrow().resp;
        match planned {
            Plan::Reply(r) => b.entries.push((Pending::Ready(r), proto)),
            Plan::Run {
                core: c,
                spec,
                args,
                post,
            } => {
                let pos = b.push(c, Job::Cmd(spec, args));
                let row = command_index(spec);
                b.entries.push((
                    Pending::One {
                        core: c,
                        pos,
                        post,
                        row,
                    },
                    proto,
                ));
            }
            Plan::Split {
                spec,
                merge,
                parts,
                order,
            } => {
                let parts = parts
                    .into_iter()
                    .map(|(c, job)| (c, b.push(c, job)))
                    .collect();
                b.entries.push((
                    Pending::Multi {
                        spec,
                        merge,
                        parts,
                        order,
                    },
                    proto,
                ));
            }
            Plan::Async(op) => {
                // A barrier: everything before it completes first.
                b.flush(&core, &shared, &client, &mut out).await;
                // Timed here, waits for the other cores included.
                let start = clock::ticks();
                let (reply, row, args) = match op {
                    AsyncOp::Atomic(spec, args) => {
                        let reply = atomic::run(&core, spec, &args).await;
                        (reply, command_index(spec), args)
                    }
                    AsyncOp::Admin(spec, row, args) => {
                        let reply = admin::run_async(&core, &shared, &client, spec, &args).await;
                        (reply, row, args)
                    }
                };
                stats::executed(&shared, &client, row, clock::since(start), &reply, &args);
                resp::encode(&reply, client.borrow().resp, &mut out);
            }
        }
        if client.borrow().close_after_reply {
            close = true;
            break;
        }
        if b.entries.len() >= SLOW_FLUSH_EVERY {
            b.flush(&core, &shared, &client, &mut out).await;
            if crate::protect::over_hard_limit(&shared, out.len()) {
                // The loop closes this client for its output; the rest is never run, as
                // Redis runs nothing more for a client it is closing.
                return (out, true);
            }
        }
    }
    b.flush(&core, &shared, &client, &mut out).await;
    if let Some(e) = trailing {
        if !close {
            resp::encode(&Reply::error(e), client.borrow().resp, &mut out);
            close = true;
        }
    }
    (out, close)
}

/// Merges per-core replies of a split command.
pub fn merge_replies(merge: Merge, replies: Vec<Reply>, order: &[(u32, u32)]) -> Reply {
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        return e.clone();
    }
    match merge {
        Merge::Sum => Reply::Int(
            replies
                .iter()
                .map(|r| if let Reply::Int(n) = r { *n } else { 0 })
                .sum(),
        ),
        Merge::Ok | Merge::Scan => Reply::Ok,
        Merge::Concat => {
            let mut all = Vec::new();
            for r in replies {
                if let Reply::Array(items) = r {
                    all.extend(items);
                }
            }
            Reply::Array(all)
        }
        Merge::Random => {
            let live: Vec<Reply> = replies
                .into_iter()
                .filter(|r| !matches!(r, Reply::Nil))
                .collect();
            if live.is_empty() {
                Reply::Nil
            } else {
                let pick = (now_ms() as usize ^ live.len().wrapping_mul(0x9E37)) % live.len();
                live.into_iter().nth(pick).unwrap_or(Reply::Nil)
            }
        }
        Merge::Array => {
            let mut parts: Vec<Vec<Option<Reply>>> = replies
                .into_iter()
                .map(|r| match r {
                    Reply::Array(items) => items.into_iter().map(Some).collect(),
                    _ => Vec::new(),
                })
                .collect();
            Reply::Array(
                order
                    .iter()
                    .map(|&(p, i)| {
                        parts
                            .get_mut(p as usize)
                            .and_then(|v| v.get_mut(i as usize))
                            .and_then(Option::take)
                            .unwrap_or(Reply::Nil)
                    })
                    .collect(),
            )
        }
    }
}

/// Polls several futures together; resolves to their outputs once all are done.
struct JoinAll<T> {
    futures: Vec<Option<Pin<Box<dyn Future<Output = T>>>>>,
    outputs: Vec<T>,
}

impl<T: Unpin> JoinAll<T> {
    fn new(futures: Vec<Pin<Box<dyn Future<Output = T>>>>) -> JoinAll<T> {
        JoinAll {
            outputs: Vec::with_capacity(futures.len()),
            futures: futures.into_iter().map(Some).collect(),
        }
    }
}

impl<T: Unpin> Future for JoinAll<T> {
    type Output = Vec<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        // Only boxed (already pinned) futures inside, so JoinAll is Unpin.
        let this = Pin::into_inner(self);
        for slot in this.futures.iter_mut() {
            if let Some(f) = slot {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    this.outputs.push(v);
                    *slot = None;
                }
            }
        }
        if this.futures.iter().all(Option::is_none) {
            Poll::Ready(std::mem::take(&mut this.outputs))
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor_of(reply: Reply) -> Bytes {
        match reply {
            Reply::Array(items) => match &items[0] {
                Reply::Bulk(b) => b.clone(),
                other => panic!("cursor is not a bulk: {other:?}"),
            },
            other => panic!("SCAN reply is not an array: {other:?}"),
        }
    }

    fn scan_reply(shard_cursor: &str) -> Reply {
        Reply::Array(vec![
            Reply::Bulk(Bytes::from(shard_cursor.to_string())),
            Reply::Array(Vec::new()),
        ])
    }

    #[test]
    fn scan_cursors_round_trip_for_cores_past_255() {
        let cores = 512;
        let global = cursor_of(post_process(
            Post::Scan { core: 300, cores },
            scan_reply("12345"),
        ));
        assert_eq!(scan_cursor(&global, cores), Some((300, 12345)));
        // A shard that is done hands the walk to the next core, from its start.
        let next = cursor_of(post_process(
            Post::Scan { core: 300, cores },
            scan_reply("0"),
        ));
        assert_eq!(scan_cursor(&next, cores), Some((301, 0)));
        let last = cursor_of(post_process(
            Post::Scan { core: 511, cores },
            scan_reply("0"),
        ));
        assert_eq!(&last[..], b"0");
        // A cursor naming a core this server does not run is refused.
        assert_eq!(scan_cursor(b"400", 256), None);
    }
}
