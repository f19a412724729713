//! A Redis connection's requests: parse, look the command up, check arity and auth,
//! answer connection commands, hand the rest to the execution layer
//! ([`baton_engine::exec`]), encode the replies.
//!
//! Fast path: while every command of a pipeline runs on this core's shard (or is answered
//! by the connection), it runs inline and its reply is encoded at once. At the first
//! command that needs another core or must wait, the rest of the pipeline moves into one
//! task ([`slow_pipeline`]) that queues it in an [`exec::Pipeline`]: one batch per
//! destination core, replies in request order.
//!
//! Shortcuts for the most common request, GET, where the general path would do the same:
//! a GET of this core's key is answered from the read buffer with no argument list
//! ([`get_from_buffer`]), and one inside a pipeline that spans cores is planned without
//! the general checks ([`step_get`]).
//!
//! Every command that runs is counted for INFO commandstats and checked against the slow
//! log ([`NetCore::executed`]) on this core: inline ones around their execution, others
//! when their reply (with the time the other core measured) comes back.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use baton_engine::clock;
use baton_engine::command::{command_index, lookup, subcommand, CommandSpec, Conn, Route};
use baton_engine::exec::{self, Outputs, Pipeline, Plan, RedisDone, RedisEntry};
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::{Answer, Core, Job, Out};
use bytes::{Buf, Bytes, BytesMut};

use crate::admin;
use crate::client::Client;
use crate::multi;
use crate::netcore::NetCore;
use crate::resp;

/// Above this much unsent output a connection stops parsing and reading until its client
/// catches up (both protocols).
pub(crate) const OUTPUT_PAUSE: usize = 8 * 1024 * 1024;
/// A slow pipeline answers this many commands at a time, then checks its output against
/// the hard output limit, so a long pipeline of big replies stops near the limit instead
/// of buffering all of them first.
pub(crate) const SLOW_FLUSH_EVERY: usize = 256;
/// The most buffered requests one slow-path task takes over; the rest wait in the read
/// buffer for the next one (both protocols).
pub(crate) const MAX_SLOW_REQUESTS: usize = 65_536;

/// Room the slow path's list of buffered requests gets with its first one.
const REST_ROOM: usize = 32;

/// The encoded replies of a slow pipeline and whether to close afterwards.
pub type SlowResult = (Vec<u8>, bool);

/// What processing a connection's input led to.
pub enum Outcome {
    /// Everything parsable was answered; read more.
    Continue,
    /// Answered what could be; close once the output is written.
    Close,
    /// The rest runs in this future. With `hold`, the connection's replies already
    /// encoded wait for the future's, so the client gets them in one send: the rest
    /// needs no other client's action and no clock to finish (no blocking command, no
    /// WAIT, no pause).
    Slow {
        task: Pin<Box<dyn Future<Output = SlowResult>>>,
        hold: bool,
    },
    /// A lone command for another core, sent there by the loop itself with no task
    /// ([`baton_engine::runtime::Core::call_for_loop`]); the loop finishes it when the
    /// response comes. `row` is its row in the command statistics. With `answered`, that
    /// core sends the reply itself ([`Job::Answer`], [`answer`]) and the response comes
    /// lazily: the connection's next request may arrive first, so a receive stays armed.
    Lane {
        core: usize,
        job: Job,
        row: usize,
        answered: bool,
    },
    /// A pipeline whose commands all finish on their own (shard commands and answered
    /// ones) and whose shard work is all for other cores: its commands for this core ran
    /// already, and the loop sends the rest there itself, with no task
    /// ([`LoopPipe::send`]), then finishes it when every response is back. The output
    /// held meanwhile goes out with its replies, in one send.
    Pipe(Box<LoopPipe>),
    /// The connection is a replica's flow (FLOWSYNC): it leaves the client table for the
    /// core of the shard it asked for.
    Flow(crate::repl_state::FeedRequest),
}

/// A pipeline the event loop drives without a task ([`Outcome::Pipe`]): its requests in
/// order, with their shard work queued per other core, and the responses come so far.
pub struct LoopPipe {
    work: Box<dyn PipeWork>,
    waiting: usize,
    responses: Vec<(usize, Vec<Out>)>,
}

/// What a protocol's pipeline does for [`LoopPipe`].
pub(crate) trait PipeWork {
    /// Sends the queued shard work for the loop to collect ([`Pipeline::send_for_loop`]).
    fn send(&mut self, core: &Core, tag: u64) -> usize;
    /// Finishes the requests in order with their outputs and encodes their replies.
    fn finish(&mut self, outs: Outputs, nc: &NetCore, client: &Client, out: &mut Vec<u8>);
}

impl PipeWork for Pipeline<Queued> {
    fn send(&mut self, core: &Core, tag: u64) -> usize {
        self.send_for_loop(core, tag)
    }

    fn finish(&mut self, outs: Outputs, nc: &NetCore, client: &Client, out: &mut Vec<u8>) {
        self.finish_each(outs, |done| finished(done, nc, client, out));
    }
}

impl LoopPipe {
    /// A pipeline of requests queued already, none of them for this core's shard.
    pub(crate) fn new(work: Box<dyn PipeWork>) -> LoopPipe {
        LoopPipe {
            work,
            waiting: 0,
            responses: Vec::new(),
        }
    }

    /// Sends the queued shard work to the other cores, for this core's loop to collect
    /// under `tag` ([`Core::call_for_loop`]). Returns how many responses will come (one
    /// per core involved; none if every command was answered here).
    pub fn send(&mut self, core: &Core, tag: u64) -> usize {
        self.waiting = self.work.send(core, tag);
        self.waiting
    }

    /// Takes the response of core `from`; true once every response is in.
    pub fn take(&mut self, from: usize, outs: Vec<Out>) -> bool {
        self.responses.push((from, outs));
        self.waiting = self.waiting.saturating_sub(1);
        self.waiting == 0
    }

    /// Finishes the requests in order: each counted (and, for Redis, checked against the
    /// slow log), and its reply encoded onto `out` (the connection's own output, whose
    /// room then serves again instead of a new buffer's grown reply by reply).
    pub fn finish(mut self, nc: &NetCore, client: &Client, out: &mut Vec<u8>) {
        let outs = Outputs::from_responses(nc.core.cores, std::mem::take(&mut self.responses));
        self.work.finish(outs, nc, client, out);
    }
}

/// How one request of a connection goes on, once the connection has looked at it.
enum Step {
    /// Answered by the connection (or refused, or failed in planning).
    Reply(Reply),
    /// A shard command, planned by the execution layer.
    Exec(Plan),
    /// A connection command that needs every core (INFO, CLIENT LIST, ...), with its row
    /// in the command statistics (its subcommand's, for CLIENT LIST).
    Admin(Conn, usize, Vec<Bytes>),
    /// EXEC or WATCH, which need other cores ([`multi`]), with its row in the command
    /// statistics.
    Multi(multi::Action, usize, Vec<Bytes>),
    /// A write while FAILOVER pauses writes: it waits, then is looked at again.
    Paused(Vec<Bytes>),
    /// FLOWSYNC: the connection becomes a replica's flow, if it sent nothing else.
    Flow(Vec<Bytes>),
    /// A key command on shards cut over to the new process of a handoff: it runs there
    /// ([`crate::handoff::cutover::redis_forwards`]), with its row in the statistics.
    Forward(usize, Vec<Bytes>),
}

/// Looks a command up and checks its arity and the client's auth: the command's spec and
/// its row in the command statistics (its subcommand's), or the refusal.
fn check(
    nc: &NetCore,
    client: &Client,
    args: &[Bytes],
) -> Result<(&'static CommandSpec, usize), Reply> {
    let Some(spec) = baton_engine::command::lookup_arg(&args[0]) else {
        return Err(errors::unknown_command(&args[0], &args[1..]));
    };
    let mut row = command_index(spec);
    {
        let mut st = client.borrow_mut();
        st.last_cmd = spec.name;
        // A container's subcommand is looked up and checked like a command (Redis 7).
        if matches!(spec.route, Route::Connection(_)) && args.len() > 1 {
            match subcommand(spec, &args[1]) {
                Some((sub_row, sub)) => {
                    st.last_cmd = sub.name;
                    if !sub.arity_ok(args.len()) {
                        nc.stats.reject(sub_row);
                        return Err(admin::sub_arity(spec.name, &args[1]));
                    }
                    row = sub_row;
                }
                None if is_container(spec) => {
                    return Err(admin::unknown_subcommand(spec.name, &args[1]));
                }
                None => {}
            }
        }
        if !spec.arity_ok(args.len()) {
            nc.stats.reject(row);
            return Err(errors::wrong_arity(spec.name));
        }
        if !st.authenticated && !spec.has(baton_engine::command::flags::NO_AUTH) {
            nc.stats.reject(row);
            return Err(errors::NOAUTH);
        }
        if spec.has(baton_engine::command::flags::WRITE)
            && nc.shared.repl.refuses_writes()
            && !client.conn.handoff_link.get()
            && !crate::cluster::replicas::redirects_writes(&nc.shared, spec, args)
        {
            nc.stats.reject(row);
            return Err(Reply::err(
                "READONLY You can't write against a read only replica.",
            ));
        }
        if let Some(refused) = crate::pubsub::refused_in_context(&st, spec, st.last_cmd) {
            nc.stats.reject(row);
            return Err(refused);
        }
    }
    Ok((spec, row))
}

/// Looks a command up, checks arity and auth, answers connection commands, and has the
/// execution layer plan the rest. Refused commands are counted as rejected.
fn step(nc: &NetCore, client: &Client, args: Vec<Bytes>, now: u64) -> Step {
    // A changed cluster view reaches this core's Router before anything is planned
    // (also the commands EXEC runs): one atomic load when nothing changed.
    nc.sync_cluster();
    let (spec, row) = match check(nc, client, &args) {
        Ok(checked) => checked,
        Err(reply) => {
            multi::refused(client);
            return Step::Reply(reply);
        }
    };
    if nc
        .shared
        .repl
        .writes_paused
        .load(std::sync::atomic::Ordering::Acquire)
        && paused_here(spec, client.borrow().multi.is_some())
    {
        return Step::Paused(args);
    }
    // MULTI and its family, and every command while a transaction is being queued.
    let conn = match spec.route {
        Route::Connection(c) => Some(c),
        _ => None,
    };
    match multi::intercept(client, conn, &args) {
        Some(multi::Hook::Queued) => return Step::Reply(Reply::simple("QUEUED")),
        Some(multi::Hook::Reply(r)) => {
            nc.executed(client, row, 0, &r, &args);
            return Step::Reply(r);
        }
        Some(multi::Hook::Run(action)) => return Step::Multi(action, row, args),
        None => {}
    }
    if crate::handoff::cutover::redis_forwards(&nc.shared.handoff, &nc.core.router, &args, false) {
        return Step::Forward(row, args);
    }
    // ASKING holds for the one command after it.
    let asking = (client.conn.asking.replace(false) && conn != Some(Conn::Asking))
        || spec.flags & baton_engine::command::flags::ASKING != 0;
    let Route::Connection(conn) = spec.route else {
        let router = &nc.core.router;
        let planned = if crate::cluster::replicas::readonly_read(router, client, spec, &args) {
            exec::plan::plan_here(router, spec, args)
        } else {
            exec::plan_asking(router, spec, args, asking)
        };
        return match planned {
            Plan::Refused(reply) => {
                nc.stats.reject(row);
                Step::Reply(reply)
            }
            Plan::Done(reply, args) => {
                nc.executed(client, row, 0, &reply, &args);
                Step::Reply(reply)
            }
            plan => Step::Exec(plan),
        };
    };
    if conn == Conn::Flowsync {
        return Step::Flow(args);
    }
    let start = clock::ticks();
    match admin::handle(nc, client, conn, &args, now) {
        Some(reply) => {
            nc.executed(client, row, clock::since(start), &reply, &args);
            Step::Reply(reply)
        }
        None => Step::Admin(conn, row, args),
    }
}

/// Whether a paused server holds this command back: a write outside a transaction (one
/// inside is only queued), or the EXEC of a transaction.
fn paused_here(spec: &CommandSpec, in_multi: bool) -> bool {
    if in_multi {
        spec.name == "exec"
    } else {
        spec.has(baton_engine::command::flags::WRITE)
    }
}

/// Whether `spec` has subcommands (CLIENT, CONFIG, ...).
fn is_container(spec: &CommandSpec) -> bool {
    baton_engine::command::SUBCOMMANDS
        .iter()
        .any(|(name, _)| *name == spec.name)
}

/// Parses and answers a connection's buffered RESP input, inline while it can.
/// `idle_fd` is the connection's socket when it has no output pending or in flight: a
/// lone command for another core may then be answered from there ([`answer`]).
pub fn run_redis(
    nc: &Rc<NetCore>,
    client: &Client,
    rbuf: &mut BytesMut,
    out: &mut Vec<u8>,
    idle_fd: Option<std::os::fd::RawFd>,
) -> Outcome {
    let core = &nc.core;
    let limits = &nc.shared.config.limits;
    loop {
        if out.len() > OUTPUT_PAUSE {
            return Outcome::Continue;
        }
        if get_from_buffer(nc, client, rbuf, limits, out) {
            continue;
        }
        let args = match parse(nc, client, rbuf, limits) {
            Ok(Some(args)) => args,
            Ok(None) => return Outcome::Continue,
            Err(e) => {
                tracing::debug!(error = %e, "protocol error; closing the connection");
                resp::encode(&Reply::error(e.0), client.borrow().resp, out);
                return Outcome::Close;
            }
        };
        let reply = match step(nc, client, args, nc.core.turn_now()) {
            Step::Reply(r) => r,
            // A replica's flow connection: FLOWSYNC alone in its input (a subscriber's
            // was refused in `check`, as Redis refuses its PSYNC).
            Step::Flow(args) if rbuf.is_empty() => {
                match crate::repl::commands::flowsync(&nc.shared, client, &args) {
                    Ok(req) => return Outcome::Flow(req),
                    Err(reply) => reply,
                }
            }
            Step::Flow(_) => crate::repl::commands::FLOWSYNC_NOT_ALONE,
            Step::Exec(Plan::Run {
                core: c,
                spec,
                args,
                post,
            }) if c == core.id && core.is_unlocked() && !core.fence.is_active() => {
                // (While MIGRATE fences keys of this core, its commands take the path
                // through a job, where the core checks them: `exec::fence`.)
                if spec.name == "get" && matches!(post, exec::Post::None) {
                    get_here(nc, client, spec, &args, out);
                    continue;
                }
                run_here(nc, client, spec, &args, post)
            }
            other => {
                let fd = idle_fd.filter(|_| out.is_empty());
                return slow(nc, client, other, rbuf, fd);
            }
        };
        resp::encode(&reply, client.borrow().resp, out);
        if client.borrow().close_after_reply {
            return Outcome::Close;
        }
    }
}

/// Runs a planned command on this core's shard now, counts it, and post-processes its
/// reply (the fast path, and the slow path's commands for this core).
fn run_here(
    nc: &NetCore,
    client: &Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
    post: exec::plan::Post,
) -> Reply {
    let core = &nc.core;
    let start = clock::ticks();
    let r = exec::plan::execute(
        &core.router,
        &mut core.shard.borrow_mut(),
        spec,
        args,
        core.turn_now(),
    );
    nc.executed(client, command_index(spec), clock::since(start), &r, args);
    exec::plan::post_process(post, r)
}

/// [`run_here`] for a GET: the value goes from the shard straight into `out`, with no
/// copy of it in a [`Reply`] (the hottest read of every benchmark), and a miss builds no
/// reply at all. A GET leaves nothing to close after: only QUIT and a few admin commands
/// set `close_after_reply`.
fn get_here(
    nc: &NetCore,
    client: &Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
    out: &mut Vec<u8>,
) {
    let core = &nc.core;
    let start = clock::ticks();
    let mut shard = core.shard.borrow_mut();
    let value = exec::plan::execute_get(&core.router, &mut shard, spec, args, core.turn_now());
    let failed = encode_get(value, client.borrow().resp, out);
    drop(shard);
    nc.ran(
        client,
        command_index(spec),
        clock::since(start),
        failed,
        || args,
    );
}

/// Encodes GET's value, found in place, in RESP version `resp`; true for an error.
#[inline]
fn encode_get(value: Result<Option<&[u8]>, Reply>, resp: u8, out: &mut Vec<u8>) -> bool {
    match value {
        Ok(Some(value)) => {
            resp::bulk(out, value);
            false
        }
        Ok(None) => {
            resp::encode(&Reply::Nil, resp, out);
            false
        }
        Err(reply) => {
            resp::encode(&reply, resp, out);
            reply.is_error()
        }
    }
}

/// GET's statistics row.
static GET_ROW: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| command_index(*exec::gets::GET));

/// Whether a GET of this client goes the plain way, where [`step`]'s checks all pass
/// and its plan is to run on the key's core: the client is authenticated, queues no
/// transaction, is not a RESP2 subscriber and did not send ASKING; this server is no
/// cluster node (the view synced first, as `step` does) and no handoff has cut a shard
/// over.
#[inline]
fn plain_get(nc: &NetCore, client: &Client, st: &crate::session::Session) -> bool {
    if !st.authenticated || st.multi.is_some() || (st.resp == 2 && st.subscriptions() > 0) {
        return false;
    }
    nc.sync_cluster();
    !client.conn.asking.get() && !nc.core.router.clustered() && !nc.shared.handoff.any_cut()
}

/// [`step`] for a parsed `GET key` that goes the plain way ([`plain_get`]): its plan,
/// made without looking the command up or checking it again. Anything else comes back.
#[inline]
fn step_get(nc: &NetCore, client: &Client, args: Vec<Bytes>) -> Result<Step, Vec<Bytes>> {
    if args.len() != 2 || !args[0].eq_ignore_ascii_case(b"get") {
        return Err(args);
    }
    let mut st = client.borrow_mut();
    if !plain_get(nc, client, &st) {
        return Err(args);
    }
    st.last_cmd = "get";
    Ok(Step::Exec(Plan::Run {
        core: nc.core.router.core_of(&args[1]),
        spec: *exec::gets::GET,
        args,
        post: exec::Post::None,
    }))
}

/// [`step`] for a parsed request, through [`step_get`] when it is a plain GET.
#[inline]
fn step_any(nc: &NetCore, client: &Client, args: Vec<Bytes>) -> Step {
    step_get(nc, client, args).unwrap_or_else(|args| step(nc, client, args, nc.core.turn_now()))
}

/// Answers a `GET` at the front of `rbuf` from the buffer itself, with no argument list,
/// no command lookup and no plan: the key is a slice of the request, which is taken off
/// only once answered. Returns false, having taken nothing, unless the general path
/// ([`parse`], [`step`], [`get_here`]) would do exactly this: the request is whole and
/// short ([`resp::ParseState::short_get`]); the client is authenticated, queues no
/// transaction, is not a RESP2 subscriber and did not send ASKING; this server is no
/// cluster node and no handoff has cut a shard over; the key is this core's, and no
/// cross-core transaction or MIGRATE fence holds the core.
#[inline]
fn get_from_buffer(
    nc: &NetCore,
    client: &Client,
    rbuf: &mut BytesMut,
    limits: &resp::Limits,
    out: &mut Vec<u8>,
) -> bool {
    let core = &nc.core;
    let resp;
    let found = {
        let mut st = client.borrow_mut();
        let Some(found) = st.resp_parser.short_get(rbuf, limits) else {
            return false;
        };
        if !plain_get(nc, client, &st)
            || !core.is_unlocked()
            || core.fence.is_active()
            || !core.router.is_local(&rbuf[found.key.clone()])
        {
            return false;
        }
        st.last_cmd = "get";
        resp = st.resp;
        found
    };
    let start = clock::ticks();
    let key = &rbuf[found.key.clone()];
    let mut shard = core.shard.borrow_mut();
    let failed = encode_get(shard.execute_get(key, core.turn_now()), resp, out);
    drop(shard);
    nc.ran(client, *GET_ROW, clock::since(start), failed, || {
        [
            Bytes::copy_from_slice(&rbuf[8..11]),
            Bytes::copy_from_slice(&rbuf[found.key.clone()]),
        ]
    });
    rbuf.advance(found.end);
    true
}

/// Parses the next command with the connection's own parser state. During a handoff's
/// per-shard cutover, a command that must wait for its connection to move goes back into
/// the input and counts as not there yet ([`crate::handoff::cutover`]).
fn parse(
    nc: &NetCore,
    client: &Client,
    rbuf: &mut BytesMut,
    limits: &resp::Limits,
) -> Result<Option<Vec<Bytes>>, resp::ProtocolError> {
    let mut st = client.borrow_mut();
    let authenticated = st.authenticated;
    let parsed = st.resp_parser.parse_command(rbuf, limits, authenticated);
    if let Ok(Some(args)) = &parsed {
        use crate::handoff::cutover;
        let (h, router) = (&nc.shared.handoff, &nc.core.router);
        if cutover::redis_waits(h, router, args)
            && !cutover::redis_forwards(h, router, args, st.multi.is_some())
        {
            cutover::put_back_redis(rbuf, args);
            st.resp_parser = resp::ParseState::default();
            return Ok(None);
        }
    }
    parsed
}

/// A request of a pipeline as read ([`slow`]): a whole, short `GET key` is kept as its
/// name and key (copied into the pipeline's key buffer), with no argument list.
enum Parsed {
    Args(Vec<Bytes>),
    Get {
        name: [u8; 3],
        key: std::ops::Range<usize>,
    },
}

impl Parsed {
    /// The argument list of a GET read as its name and key.
    fn args(name: [u8; 3], key: &[u8]) -> Vec<Bytes> {
        vec![Bytes::copy_from_slice(&name), Bytes::copy_from_slice(key)]
    }

    /// The request as an argument list (`keys`: the pipeline's key buffer).
    fn into_args(self, keys: &[u8]) -> Vec<Bytes> {
        match self {
            Parsed::Args(args) => args,
            Parsed::Get { name, key } => Parsed::args(name, &keys[key]),
        }
    }
}

/// Takes a whole, short `GET key` off the front of `rbuf` ([`resp::ParseState::short_get`])
/// with its key copied to `keys`: what [`parse`] would read, without the argument list.
/// Only while no shard is cut over by a handoff, where [`parse`] may leave a request in
/// the buffer.
#[inline]
fn short_get(
    nc: &NetCore,
    client: &Client,
    rbuf: &mut BytesMut,
    limits: &resp::Limits,
    keys: &mut Vec<u8>,
) -> Option<Parsed> {
    if nc.shared.handoff.any_cut() {
        return None;
    }
    let found = client.borrow_mut().resp_parser.short_get(rbuf, limits)?;
    let start = keys.len();
    keys.extend_from_slice(&rbuf[found.key]);
    let name = [rbuf[8], rbuf[9], rbuf[10]];
    rbuf.advance(found.end);
    Some(Parsed::Get {
        name,
        key: start..keys.len(),
    })
}

/// Queues a GET read as its name and key ([`short_get`]) in `p`, as [`step_get`] and
/// [`queue_step`] would, with no argument list: run at once when it is this core's (and
/// nothing of the pipeline waits to run here), else packed for its core. Anything the
/// plain way does not cover goes through [`step`] and [`queue_step`]; what they give
/// back comes back.
fn queue_get(
    nc: &NetCore,
    client: &Client,
    p: &mut Pipeline<Queued>,
    name: [u8; 3],
    key: &[u8],
) -> Option<Step> {
    let core = &nc.core;
    let plain = {
        let mut st = client.borrow_mut();
        let plain = plain_get(nc, client, &st);
        if plain {
            st.last_cmd = "get";
        }
        plain.then_some(st.resp)
    };
    if let Some(proto) = plain {
        let c = core.router.core_of(key);
        if c != core.id {
            if let Some(e) = RedisEntry::get_key(p, c, name, key) {
                p.queue((e, proto));
                return None;
            }
        } else if core.is_unlocked() && !core.fence.is_active() && !p.has_jobs_for(c) {
            let start = clock::ticks();
            let mut shard = core.shard.borrow_mut();
            let reply = match shard.execute_get(key, core.turn_now()) {
                Ok(Some(value)) => Reply::Bulk(Bytes::copy_from_slice(value)),
                Ok(None) => Reply::Nil,
                Err(reply) => reply,
            };
            drop(shard);
            nc.ran(
                client,
                *GET_ROW,
                clock::since(start),
                reply.is_error(),
                || Parsed::args(name, key),
            );
            p.queue((RedisEntry::Ready(reply), proto));
            return None;
        }
    }
    // Not the plain way, a job of this core's, or a key too long to pack: as parsed.
    let planned = step_any(nc, client, Parsed::args(name, key));
    queue_step(nc, client, p, planned)
}

/// Moves the rest of the pipeline (this step and every complete command still buffered)
/// into a slow-path task.
fn slow(
    nc: &Rc<NetCore>,
    client: &Client,
    first: Step,
    rbuf: &mut BytesMut,
    idle_fd: Option<std::os::fd::RawFd>,
) -> Outcome {
    let mut rest = Vec::new();
    let mut keys = Vec::new();
    let mut trailing = None;
    let limits = &nc.shared.config.limits;
    while rest.len() < MAX_SLOW_REQUESTS {
        let parsed = match short_get(nc, client, rbuf, limits, &mut keys) {
            Some(get) => get,
            None => match parse(nc, client, rbuf, limits) {
                Ok(Some(args)) => Parsed::Args(args),
                Ok(None) => break,
                Err(e) => {
                    trailing = Some(e.0);
                    break;
                }
            },
        };
        if rest.capacity() == 0 {
            // A pipeline's worth at once, not four, eight, sixteen, ...
            rest.reserve(REST_ROOM);
        }
        rest.push(parsed);
    }
    let paused = nc
        .shared
        .repl
        .writes_paused
        .load(std::sync::atomic::Ordering::Acquire);
    // A lone command for one other core: the loop sends it there itself, without a task.
    // On a connection with no output waiting, that core also sends the reply itself, and
    // this one need not wake for it (the response comes back lazily; `Mesh::post_with`).
    if rest.is_empty() && trailing.is_none() && !client.borrow().close_after_reply {
        if let Step::Exec(Plan::Run {
            core: c,
            post: exec::plan::Post::None,
            ..
        }) = &first
        {
            if *c != nc.core.id {
                let Step::Exec(Plan::Run {
                    core, spec, args, ..
                }) = first
                else {
                    unreachable!("matched just above")
                };
                let job = match idle_fd {
                    Some(fd) => Job::Answer(
                        spec,
                        args,
                        Answer {
                            fd,
                            proto: client.borrow().resp,
                        },
                    ),
                    None => Job::Cmd(spec, args),
                };
                return Outcome::Lane {
                    core,
                    job,
                    row: command_index(spec),
                    answered: idle_fd.is_some(),
                };
            }
        }
    }
    // The rest queued in order here; while every step finishes on its own, the loop
    // drives the pipeline itself ([`Outcome::Pipe`]). At the first step that must wait
    // (or a command for this core that cannot run at once), a task takes over from there.
    let mut p: Pipeline<Queued> = Pipeline::new(nc.core.cores);
    p.expect(rest.len() + 1);
    let mut next = Some(first);
    let mut rest = rest.into_iter();
    if matches!(next, Some(Step::Exec(_))) && !paused && trailing.is_none() {
        loop {
            let waits = match next.take() {
                Some(s) => queue_step(nc, client, &mut p, s),
                None => match rest.next() {
                    Some(Parsed::Args(args)) => {
                        let planned = step_any(nc, client, args);
                        queue_step(nc, client, &mut p, planned)
                    }
                    Some(Parsed::Get { name, key }) => {
                        queue_get(nc, client, &mut p, name, &keys[key])
                    }
                    None => break,
                },
            };
            if let Some(waits) = waits {
                next = Some(waits);
                break;
            }
            if client.borrow().close_after_reply || p.len() >= SLOW_FLUSH_EVERY {
                break;
            }
        }
        if next.is_none()
            && rest.len() == 0
            && !p.has_jobs_for(nc.core.id)
            && !client.borrow().close_after_reply
        {
            return Outcome::Pipe(Box::new(LoopPipe::new(Box::new(p))));
        }
    }
    // Held back: only shard commands and answers, which finish on their own (a fenced
    // key waits for its MIGRATE, never for a client). Commands of the connection route
    // (blocking pops, WAIT, EXEC, admin) may wait on others, so what came before them
    // goes out at once.
    let rest: Vec<Vec<Bytes>> = rest.map(|r| r.into_args(&keys)).collect();
    let hold = !paused
        && next.as_ref().is_none_or(|s| matches!(s, Step::Exec(_)))
        && rest.iter().all(|args| {
            lookup(&args[0]).is_none_or(|spec| !matches!(spec.route, Route::Connection(_)))
        });
    Outcome::Slow {
        task: Box::pin(slow_pipeline(
            nc.clone(),
            client.clone(),
            p,
            next,
            rest.into_iter(),
            trailing,
        )),
        hold,
    }
}

/// Queues a step that finishes on its own in `p`: an answer, or a shard command (run at
/// once when it is for this core and nothing of the pipeline waits to run here before
/// it). Gives back a step that must wait (a barrier, an admin command, a paused write).
fn queue_step(
    nc: &NetCore,
    client: &Client,
    p: &mut Pipeline<Queued>,
    planned: Step,
) -> Option<Step> {
    let core = &nc.core;
    let proto = client.borrow().resp;
    match planned {
        Step::Reply(r) => p.queue((RedisEntry::Ready(r), proto)),
        // A command of this core's shard runs at once, as on the fast path, when nothing
        // of this pipeline waits to run on this core before it (the local part of a
        // split command, say): commands of other cores run concurrently with it either
        // way, and its reply waits in its place. It saves the job, the batch's output and
        // their moves for about half of a pipeline's commands on two cores.
        Step::Exec(Plan::Run {
            core: c,
            spec,
            args,
            post,
        }) if c == core.id
            && core.is_unlocked()
            && !core.fence.is_active()
            && !p.has_jobs_for(c) =>
        {
            let r = run_here(nc, client, spec, &args, post);
            p.queue((RedisEntry::Ready(r), proto));
        }
        // A GET for another core is packed with the GETs queued for it just before
        // (`exec::gets`: a few cache lines cross the cores per run of GETs, not four
        // blocks per GET).
        Step::Exec(Plan::Run {
            core: c,
            spec,
            args,
            post: exec::Post::None,
        }) if c != core.id && std::ptr::eq(spec, *exec::gets::GET) => {
            let e = RedisEntry::get(p, c, args);
            p.queue((e, proto));
        }
        Step::Exec(Plan::Run {
            core: c,
            spec,
            args,
            post,
        }) => {
            let e = RedisEntry::one(p, c, spec, args, post);
            p.queue((e, proto));
        }
        Step::Exec(Plan::Split {
            spec,
            merge,
            parts,
            order,
        }) => {
            let e = RedisEntry::multi(p, spec, merge, parts, order);
            p.queue((e, proto));
        }
        // `step` answers these itself.
        Step::Exec(Plan::Done(r, _) | Plan::Refused(r)) => p.queue((RedisEntry::Ready(r), proto)),
        Step::Flow(_) => {
            let r = crate::repl::commands::FLOWSYNC_NOT_ALONE;
            p.queue((RedisEntry::Ready(r), proto))
        }
        waits => return Some(waits),
    }
    None
}

/// The largest encoded reply another core sends to a client itself ([`answer`]).
const ANSWER_MAX: usize = 16 * 1024;

/// Runs on the core that ran a command for a client of another core ([`Answer`]): counts
/// the command in this core's statistics, encodes the reply and sends it without waiting.
/// Returns what the socket did not take (all of it if the socket was full), which the
/// client's core sends next. A failed send drops the reply: the connection is broken, and
/// its core finds out from its own receive.
pub fn answer(
    core: &Core,
    spec: &'static CommandSpec,
    reply: &Reply,
    ticks: u64,
    to: Answer,
) -> Vec<u8> {
    if let Some(nc) = NetCore::of(core) {
        nc.stats
            .record(command_index(spec), ticks, reply.is_error());
    }
    let mut bytes = Vec::new();
    resp::encode(reply, to.proto, &mut bytes);
    if bytes.len() > ANSWER_MAX {
        // A big reply goes through the client's core, which applies the output limits
        // to it as to any other.
        return bytes;
    }
    // The client's core keeps the socket open until this batch's response is back (a
    // busy connection is never dropped).
    match crate::listener::send_now(to.fd, &bytes) {
        Ok(n) => {
            bytes.drain(..n);
            bytes
        }
        Err(e) => match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => bytes,
            _ => Vec::new(),
        },
    }
}

/// A queued command and the RESP version to encode its reply in.
type Queued = (RedisEntry, u8);

/// Runs the queued commands, then counts and encodes each in order.
async fn flush(p: &mut Pipeline<Queued>, nc: &NetCore, client: &Client, out: &mut Vec<u8>) {
    p.flush_each(&nc.core, |done| finished(done, nc, client, out))
        .await;
}

/// Counts a finished command (checking it against the slow log) and encodes its reply.
fn finished((done, proto): (RedisDone, u8), nc: &NetCore, client: &Client, out: &mut Vec<u8>) {
    match &done {
        RedisDone::Ready(_) => {}
        RedisDone::Got {
            reply,
            ticks,
            name,
            key,
        } => nc.ran(client, *GET_ROW, *ticks, reply.is_error(), || {
            [Bytes::copy_from_slice(name), key.clone()]
        }),
        RedisDone::Ran {
            reply,
            row,
            ticks,
            args,
        } => nc.executed(client, *row, *ticks, reply, args),
        RedisDone::Merged {
            reply,
            spec,
            ticks,
            parts,
            order,
        } => {
            nc.stats
                .record(command_index(spec), *ticks, reply.is_error());
            nc.log_if_slow(client, *ticks, || {
                exec::plan::joined_args(spec, parts, order)
            });
        }
    }
    resp::encode(done.reply(), proto, out);
}

/// Runs `batch` in the new process of a handoff, on this core's link to it, and appends
/// the answers as they came (the link speaks the client's RESP version). A link that
/// fails (the new process went away, past the commit point) answers each with an error.
async fn forward(
    nc: &NetCore,
    client: &Client,
    batch: Vec<(usize, Vec<Bytes>)>,
    out: &mut Vec<u8>,
) {
    use crate::cluster::mclink::{self, Part};
    use crate::handoff::cutover::{LINK_RESP2, LINK_RESP3};
    let proto = client.borrow().resp;
    let link = if proto == 3 { LINK_RESP3 } else { LINK_RESP2 };
    let commands = batch
        .iter()
        .map(|(_, args)| crate::repl::link::encode_command(args))
        .collect();
    let start = clock::ticks();
    let answers = mclink::send(nc, link, commands).await;
    let ticks = clock::since(start) / batch.len().max(1) as u64;
    for ((row, _), answer) in batch.into_iter().zip(answers) {
        match answer.map(|parts| parts.into_iter().next()) {
            Ok(Some(Part::Reply(raw))) => {
                let error = matches!(raw.first(), Some(b'-' | b'!'));
                nc.stats.record(row, ticks, error);
                out.extend_from_slice(&raw);
            }
            Ok(_) => resp::encode(&Reply::err("ERR handoff: no answer"), proto, out),
            Err(why) => {
                nc.stats.record(row, ticks, true);
                resp::encode(&Reply::error(format!("ERR handoff: {why}")), proto, out);
            }
        }
    }
}

/// Runs a pipeline that needs other cores or must wait, preserving reply order: `p`
/// holds what was queued already, `next` the step to go on with (if any), then `rest`.
async fn slow_pipeline(
    nc: Rc<NetCore>,
    client: Client,
    mut p: Pipeline<Queued>,
    mut next: Option<Step>,
    mut rest: std::vec::IntoIter<Vec<Bytes>>,
    trailing: Option<String>,
) -> SlowResult {
    let (core, shared) = (&nc.core, &nc.shared);
    let mut out = Vec::new();
    let mut close = false;
    loop {
        if next.is_none() {
            if client.borrow().close_after_reply {
                close = true;
                break;
            }
            if p.len() >= SLOW_FLUSH_EVERY {
                flush(&mut p, &nc, &client, &mut out).await;
                if crate::protect::over_hard_limit(shared, out.len()) {
                    // The loop closes this client for its output; the rest is never run,
                    // as Redis runs nothing more for a client it is closing.
                    return (out, true);
                }
            }
        }
        let planned = match next.take() {
            Some(s) => s,
            None => match rest.next() {
                Some(args) => step(&nc, &client, args, nc.core.turn_now()),
                None => break,
            },
        };
        let Some(waits) = queue_step(&nc, &client, &mut p, planned) else {
            continue;
        };
        match waits {
            Step::Exec(Plan::Open { spec, args, asking }) => {
                // Like a cross-core transaction: a barrier, then the keys' cores locked.
                flush(&mut p, &nc, &client, &mut out).await;
                let start = clock::ticks();
                let reply = exec::multi::run_open(core, spec, args.clone(), asking).await;
                let row = command_index(spec);
                nc.executed(&client, row, clock::since(start), &reply, &args);
                resp::encode(&reply, client.borrow().resp, &mut out);
            }
            Step::Exec(Plan::Txn(spec, args)) => {
                // A barrier: everything before it completes first. Timed here, waits
                // for the other cores included.
                flush(&mut p, &nc, &client, &mut out).await;
                let start = clock::ticks();
                let reply = exec::txn::run(core, spec, &args).await;
                let row = command_index(spec);
                nc.executed(&client, row, clock::since(start), &reply, &args);
                resp::encode(&reply, client.borrow().resp, &mut out);
            }
            Step::Multi(action, row, args) => {
                flush(&mut p, &nc, &client, &mut out).await;
                let start = clock::ticks();
                let skip = action.skips_slowlog();
                let reply = multi::run(&nc, &client, action).await;
                let ticks = if skip { 0 } else { clock::since(start) };
                nc.executed(&client, row, ticks, &reply, &args);
                resp::encode(&reply, client.borrow().resp, &mut out);
            }
            Step::Paused(args) => {
                flush(&mut p, &nc, &client, &mut out).await;
                while shared
                    .repl
                    .writes_paused
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    core.timers
                        .sleep_until(baton_engine::runtime::now_ms() + 1)
                        .await;
                }
                next = Some(step(&nc, &client, args, nc.core.turn_now()));
            }
            Step::Admin(conn, row, args) => {
                flush(&mut p, &nc, &client, &mut out).await;
                let start = clock::ticks();
                let reply = admin::run_async(&nc, &client, conn, &args).await;
                nc.executed(&client, row, clock::since(start), &reply, &args);
                resp::encode(&reply, client.borrow().resp, &mut out);
            }
            Step::Forward(row, args) => {
                flush(&mut p, &nc, &client, &mut out).await;
                // The forwarded commands that follow go with it: one round trip.
                let mut batch = vec![(row, args)];
                while batch.len() < SLOW_FLUSH_EVERY {
                    let Some(args) = rest.next() else { break };
                    match step(&nc, &client, args, nc.core.turn_now()) {
                        Step::Forward(row, args) => batch.push((row, args)),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                forward(&nc, &client, batch, &mut out).await;
            }
            // Queued by `queue_step`, which never gives these back.
            Step::Reply(_) | Step::Exec(_) | Step::Flow(_) => {
                unreachable!("queue_step queues answers and shard commands")
            }
        }
    }
    flush(&mut p, &nc, &client, &mut out).await;
    if let Some(e) = trailing {
        if !close {
            resp::encode(&Reply::error(e), client.borrow().resp, &mut out);
            close = true;
        }
    }
    (out, close)
}
