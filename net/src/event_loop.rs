//! The per-core connection loop. One glommio task per core drives every client socket of
//! that core through the core's own io_uring ([`Uring`]):
//!
//! ```text
//!  turn:  tasks woken since the last turn? yield to glommio so they run first
//!         finished pipelines ─► output buffers; due timers ─► wake their tasks
//!         inbox: other cores' requests run on this shard, their replies wake our tasks
//!         Pub/Sub: messages the jobs queued ─► subscribers' output ([`crate::pubsub`])
//!         enter ring (submit queued sends/recvs/accepts, run pending task work)
//!         reap completions ─► accept: new Conn, arm recv
//!                             recv:   parse ─► fast path (local shard, inline)
//!                                           └► slow path task (other cores, waits)
//!                             send:   advance, send the rest / next buffer
//!                             doorbell: re-arm (mail or a stop request is waiting)
//!         (a core with few connections sends each reply as it is made: `Loop::flush`)
//!         outbox: this turn's messages, one post per destination core
//!         once a second: idle timeouts, soft output limits ([`crate::protect`])
//!         nothing happened? sleep in the ring until an event or the next deadline
//! ```
//!
//! The loop sleeps in its own ring ([`Uring::wait`]: submit and wait in one syscall), not
//! through glommio, whose park costs several syscalls and a process-wide membarrier.
//! glommio only runs the other tasks of the core, when the loop yields to it
//! (`baton_engine::runtime::wake` says how the loop knows they are ready).
//!
//! A connection lives on the core that accepted it. While a slow-path task runs its
//! pipeline, the connection parses nothing more, so replies stay in request order.
//!
//! Protections: an accept beyond `maxclients` is answered with the rejection line and
//! closed; a connection whose unsent output passes the output limit, that stays idle past
//! the timeout, or that CLIENT KILL names, is closed at once with its output dropped.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::reply::Reply;
use baton_engine::runtime::{now_ms, wake, Core, LoopReply, Out};
use bytes::BytesMut;
use io_uring::{opcode, types};

use crate::client::{self, ClientEntry, ConnInfo};
use crate::config::Shared;
use crate::dispatch;
use crate::listener;
use crate::netcore::NetCore;
use crate::protect::{self, Breach};
use crate::repl::feed::FeedState;
use crate::repl::link::{pace, read_pause, Ack, ApplyState};
use crate::repl_state::{FeedRequest, FlowStart};
use crate::session::{Protocol, Session, NO_COMMAND};
use crate::uring::{Completion, Uring};

const OP_ACCEPT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;
const OP_CANCEL: u64 = 4;
const OP_DOORBELL: u64 = 5;
const OP_FLOW_RECV: u64 = 6;
const OP_FLOW_SEND: u64 = 7;

/// Bytes of free space a receive asks for.
const READ_CHUNK: usize = 16 * 1024;
/// How many turns in a row may leave their submissions to the loop's wait (`Loop::run`).
const DEFERRED_TURNS_MAX: u32 = 2;
/// A core that serves at most this many connections hands each reply to its socket as
/// soon as it is made ([`Loop::flush`]); one that serves more leaves the replies of a turn
/// to one submission at its end.
const DIRECT_SEND_CONNS: usize = 8;
/// The most output [`Loop::flush`] hands straight to the socket; more goes through the
/// ring (far below `dispatch::OUTPUT_PAUSE`, so parsing never waits on output that a
/// direct send took).
const DIRECT_SEND_MAX: usize = 256 * 1024;
/// A replication flow's receive buffer.
const FLOW_READ: usize = 64 * 1024;
/// A replica flow ships its journal records at most once per this span (or sooner when
/// this many bytes gather), so that a busy primary sends each replica flow a buffer every
/// quarter millisecond at most rather than one per turn: each send costs the core about
/// what answering a client does, and over loopback the receiver's TCP work too. The span
/// runs from the last shipment, so a write after a quiet spell ships in the turn that
/// made it (no added lag, and WAIT answers as soon as the replica does); only writes that
/// follow a shipment closely wait for the next. The replica paces its ACKs the same way
/// (`link::ACK_INTERVAL`), and the reads of a steady stream (`link::READ_PAUSE`).
/// benches/RESULTS.md (session 8) has what 250 and 500 µs cost.
const FLOW_COALESCE: Duration = Duration::from_micros(250);
const FLOW_COALESCE_BYTES: u64 = 16 * 1024;
/// A replica's loop, awake for other work during a flow's read pause
/// (`link::READ_PAUSE`), peeks at the flow at most this often.
const FLOW_PEEK_EVERY: Duration = Duration::from_micros(50);
const RING_ENTRIES: u32 = 1024;
/// Most loop turns a busy core lets pass before it rings a sleeping core it posted mail
/// to ([`baton_engine::runtime::Core::flush_outbox_owing`]); it rings at once when it
/// goes to sleep itself.
const OWED_TURNS: u32 = 4;
/// IORING_RECVSEND_POLL_FIRST: arm the socket's poll at once instead of trying the
/// receive first (the crate keeps the constant private).
const RECVSEND_POLL_FIRST: u16 = 1;
/// IORING_CQE_F_SOCK_NONEMPTY: the socket still had data after this receive.
const CQE_F_SOCK_NONEMPTY: u32 = 1 << 2;
/// How often a core checks its clients for idle timeouts and the soft output limit.
const CRON_INTERVAL_MS: u64 = 1000;

/// A connection's token: its index in the loop's connection table (`Loop::conns`). A
/// closed connection's token is reused for a later one, with the next generation, so an
/// operation's `user_data` names a connection by token and generation: a completion that
/// arrives for a closed connection never reaches the one that took its token over.
pub type Token = u32;

/// An operation's `user_data`: the op in bits 0-7, the token in bits 8-39 (for an accept,
/// the listener's index instead), the generation (24 bits) in bits 40-63.
fn user_data(op: u64, token: Token, generation: u32) -> u64 {
    ((generation as u64 & 0xff_ffff) << 40) | ((token as u64) << 8) | op
}

/// `(op, token, generation)` of a `user_data`.
fn decode(ud: u64) -> (u64, Token, u32) {
    (
        ud & 0xff,
        ((ud >> 8) & 0xffff_ffff) as u32,
        (ud >> 40) as u32,
    )
}

/// The send of a connection's output: what is left of `inflight` (the buffer a send is
/// working through), or else `out`, swapped in. `None` when there is nothing to send. The
/// caller arms it, and must leave `inflight` untouched until it completes.
fn next_send(
    fd: RawFd,
    out: &mut Vec<u8>,
    inflight: &mut Vec<u8>,
    sent: &mut usize,
    user_data: u64,
) -> Option<io_uring::squeue::Entry> {
    if inflight.is_empty() {
        if out.is_empty() {
            return None;
        }
        std::mem::swap(inflight, out);
        *sent = 0;
    }
    let rest = &inflight[*sent..];
    Some(
        opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data),
    )
}

/// The sockets one core serves.
pub struct CoreListeners {
    pub redis: OwnedFd,
    pub memcache: Option<OwnedFd>,
    /// More listeners (a handoff to fewer cores than the old process had: no listener
    /// is ever closed, so some core takes two).
    pub extra: Vec<(OwnedFd, Protocol)>,
}

/// Where a connection is going once its output is out.
enum Move {
    /// FLOWSYNC made it a replica's flow: it leaves the client table for the core of the
    /// shard it asked for.
    Flow(FeedRequest),
    /// A handoff: it goes to the new process with its session.
    Handoff,
}

struct Conn {
    fd: OwnedFd,
    generation: u32,
    /// Received input not yet parsed (a partial request, or requests waiting their turn).
    rbuf: BytesMut,
    /// Replies not yet handed to the kernel.
    out: Vec<u8>,
    /// The buffer a send is working through; untouched while a send is armed.
    inflight: Vec<u8>,
    sent: usize,
    recv_armed: bool,
    /// The last receive left the socket empty: the next one waits for data before it
    /// tries, sparing a receive that would only say "no data yet".
    drained: bool,
    send_armed: bool,
    /// A pipeline of this connection is running in a slow-path task.
    busy: bool,
    /// While `busy`: the output waits for the task's, to go out in one send.
    hold: bool,
    /// While `busy`: another core answers this connection's request itself, so a
    /// receive stays armed (one at most) for the next request, which then waits in
    /// `rbuf` until the task ends.
    answered: bool,
    /// While `busy` with a lone request sent to another core: the command's row in the
    /// command statistics.
    lane_row: usize,
    /// While `busy` with a pipeline the loop drives ([`dispatch::Outcome::Pipe`]): the
    /// pipeline, waiting for the other cores' responses.
    pipe: Option<Box<dispatch::LoopPipe>>,
    /// No more reading: close once the output is written.
    draining: bool,
    /// Closing: cancel what is armed and drop the connection (freeing its token) once
    /// nothing is.
    closing: bool,
    /// A cancel for the armed operation is on its way.
    cancel_sent: bool,
    /// When unsent output first reached the soft limit (0 = it is below).
    soft_since_ms: u64,
    /// Pub/Sub messages that arrived while a slow-path pipeline ran; they follow its
    /// replies, so that a confirmation is never overtaken by a message.
    held_pushes: Vec<u8>,
    /// The session and the facts CLIENT LIST shows, shared with the core's registry and
    /// with a running slow-path pipeline.
    client: client::Client,
    /// Once its output is out, the socket leaves this loop ([`Move`]).
    moving: Option<Move>,
}

/// A replication flow's connection: a replica's flow fed by this core's shard (primary
/// side), or a primary's flow applied here (replica side).
struct FlowConn {
    fd: OwnedFd,
    generation: u32,
    rbuf: Vec<u8>,
    out: Vec<u8>,
    inflight: Vec<u8>,
    sent: usize,
    recv_armed: bool,
    send_armed: bool,
    closing: bool,
    cancel_sent: bool,
    /// When a replica's unsent output first passed the soft limit (0 = it is below).
    soft_since_ms: u64,
    /// When journal records were last shipped: the next ones wait until
    /// `FLOW_COALESCE` after it.
    last_shipped: Option<Instant>,
    /// A replica's flow whose reads are paced (`link::read_pause`): when to arm the next
    /// receive, and when the last one completed.
    rearm_at: Option<Instant>,
    last_recv: Option<Instant>,
    /// When a paused flow was last peeked at (`FLOW_PEEK_EVERY`).
    last_peek: Option<Instant>,
    kind: FlowKind,
}

enum FlowKind {
    Feed(FeedState),
    Apply(ApplyState),
    /// A connection to another cluster node for the memcached requests this core
    /// forwards ([`crate::cluster::mclink`]).
    Forward(crate::cluster::mclink::Link),
}

impl FlowKind {
    /// What the flow is, for the log.
    fn name(&self) -> &'static str {
        match self {
            FlowKind::Forward(_) => "link to another node",
            FlowKind::Feed(_) | FlowKind::Apply(_) => "replication flow",
        }
    }
}

impl Conn {
    fn pending_output(&self) -> usize {
        self.out.len() + self.inflight.len() - self.sent + self.held_pushes.len()
    }

    /// Closes at once: nothing more is read, parsed or sent (a send in flight is
    /// cancelled), as Redis's freeClient does for killed and over-limit clients.
    fn abort(&mut self) {
        // `rbuf` and `inflight` may be lent to the kernel; they are dropped with the
        // connection, once nothing is armed.
        self.out = Vec::new();
        self.held_pushes = Vec::new();
        self.draining = true;
        self.closing = true;
    }
}

/// A slow-path pipeline's encoded replies, handed back to the loop.
pub struct Finished {
    pub token: Token,
    pub generation: u32,
    pub bytes: Vec<u8>,
    pub close: bool,
}

struct Listener {
    fd: OwnedFd,
    protocol: Protocol,
    armed: bool,
    /// Out of descriptors or memory: accept again at this time (0 = not waiting).
    retry_at_ms: u64,
}

struct Loop {
    /// This core's net state (with its engine core and the shared settings).
    nc: Rc<NetCore>,
    ring: Uring,
    conns: Vec<Option<Conn>>,
    generations: Vec<u32>,
    /// Tokens of closed connections, for reuse.
    free: Vec<Token>,
    listeners: Vec<Listener>,
    completions: Vec<Completion>,
    /// Turns in a row that left their submissions to the loop's wait (see `run`).
    deferred_turns: u32,
    /// A send is queued in the ring (not yet submitted).
    send_queued: bool,
    finished: Rc<RefCell<Vec<Finished>>>,
    /// The mesh doorbell's eventfd and the 8 bytes its armed read fills.
    doorbell: RawFd,
    doorbell_buf: &'static mut [u8; 8],
    doorbell_armed: bool,
    stopping: bool,
    /// Slow-path tasks still running, and lone requests sent to other cores whose
    /// responses have not come back (`Outcome::Lane`).
    tasks: Rc<Cell<usize>>,
    /// This turn's time (unix ms).
    now: u64,
    next_cron_ms: u64,
    /// Whether the once-a-second checks have anything to look at; a sleeping loop wakes
    /// for them only then.
    cron_wanted: bool,
    /// Replication flows and forwarding links (cluster mode) driven by this core, by
    /// token (their own table).
    flows: Vec<Option<FlowConn>>,
    flow_generations: Vec<u32>,
    /// The replication epoch this core last acted on, and whether it was a replica then.
    repl_epoch: u64,
    was_replica: bool,
    /// `Repl::feed_kills` as this core last acted on it.
    feed_kills: u64,
    /// When a replica flow's waiting records are due.
    flow_due: Option<Instant>,
    /// The handoff phase this core last acted on.
    handoff_phase: u8,
    /// Whether some shard was cut over when this core last looked (a handoff's
    /// per-shard cutover: requests on cut shards wait in their connections' input).
    saw_cut: bool,
    /// Connections that got input while their task waits for a lazy response.
    waiting_lazy: Vec<Token>,
    /// Responses to lone requests sent to other cores (kept for its allocation).
    lane_replies: Vec<LoopReply>,
    /// The requests this core's tasks forward (memcached requests to other nodes in
    /// cluster mode, requests on cut shards to a handoff's new process), which the loop
    /// sends on its `FlowKind::Forward` flows.
    forwards: Rc<crate::cluster::mclink::Queue>,
}

/// Serves this core's listeners until the server is asked to stop and every connection
/// of this core has been answered and closed. Creates the core's [`NetCore`] and attaches
/// it to the core, where jobs from other cores find it.
pub async fn serve(core: Rc<Core>, shared: Arc<Shared>, listeners: CoreListeners) {
    // Commands another core sends here for its clients are answered from here.
    baton_engine::runtime::set_answerer(dispatch::answer);
    let ring = match Uring::new(RING_ENTRIES) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(core = core.id, error = %e, "cannot set up io_uring; this core serves no clients");
            return;
        }
    };
    let doorbell = core.mesh().doorbell(core.id);
    shared.wakeups.lock().unwrap().push(doorbell);
    {
        let mut shard = core.shard.borrow_mut();
        shard.set_max_value_len(shared.config.limits.max_bulk_len);
        if shared.cluster.get().is_some() {
            shard.index_slots();
        }
        // Policy first: the budget then builds the policy's state once, for that policy.
        let policy = shared.settings.maxmemory_policy.lock().unwrap().clone();
        if let Some(p) = baton_engine::evict::EvictionPolicy::parse(&policy) {
            shard.set_policy(p);
        }
        let maxmemory = shared.settings.maxmemory.load(Ordering::Relaxed);
        shard.set_maxmemory(
            crate::config_command::shard_budget(maxmemory, core.cores),
            now_ms(),
        );
    }
    let nc = Rc::new(NetCore::new(core, shared, Some(doorbell)));
    NetCore::attach(&nc);
    // Cluster mode forwards memcached requests to other nodes; any server forwards the
    // requests on shards a handoff cut over to its new process.
    let forwards = crate::cluster::mclink::Queue::install(&nc.core);
    wake::spawn(nc.clone().run_sampler());
    let mut ls = vec![Listener {
        fd: listeners.redis,
        protocol: Protocol::Redis,
        armed: false,
        retry_at_ms: 0,
    }];
    if let Some(fd) = listeners.memcache {
        ls.push(Listener {
            fd,
            protocol: Protocol::Memcache,
            armed: false,
            retry_at_ms: 0,
        });
    }
    for (fd, protocol) in listeners.extra {
        ls.push(Listener {
            fd,
            protocol,
            armed: false,
            retry_at_ms: 0,
        });
    }
    let now = nc.core.tick();
    let shared_phase = nc.shared.handoff.phase();
    let mut lp = Loop {
        nc,
        ring,
        conns: Vec::new(),
        generations: Vec::new(),
        free: Vec::new(),
        listeners: ls,
        completions: Vec::with_capacity(256),
        finished: Rc::new(RefCell::new(Vec::new())),
        doorbell,
        // Leaked on purpose: the kernel may still hold the armed read when the ring is torn
        // down at exit, so the buffer must never be freed. 8 bytes per core, once.
        doorbell_buf: Box::leak(Box::new([0u8; 8])),
        doorbell_armed: false,
        deferred_turns: 0,
        send_queued: false,
        stopping: false,
        tasks: Rc::new(Cell::new(0)),
        now,
        next_cron_ms: now + CRON_INTERVAL_MS,
        cron_wanted: false,
        flows: Vec::new(),
        flow_generations: Vec::new(),
        repl_epoch: u64::MAX,
        was_replica: false,
        feed_kills: 0,
        flow_due: None,
        // The new process of a handoff starts its cores in TAKING: they must not arm an
        // accept even for a moment. The listeners are the old process's own sockets, and
        // this process's copy connects to them (its FLOWSYNC connections) before the
        // cores start: a core that armed an accept here, before its first turn cancelled
        // it, could take those connections itself and, running no command until the
        // handoff ends, stall the copy until the tool's timeout.
        handoff_phase: shared_phase,
        saw_cut: false,
        waiting_lazy: Vec::new(),
        lane_replies: Vec::new(),
        forwards,
    };
    lp.nc.shared.repl.set_doorbell(lp.nc.core.id, doorbell);
    for i in 0..lp.listeners.len() {
        lp.arm_accept(i);
    }
    lp.arm_doorbell();
    lp.run().await;
}

impl Loop {
    async fn run(&mut self) {
        // Tasks spawned before the loop (active expiry, the sampler) run first.
        let mut seen_wakes = wake::wakes().wrapping_sub(1);
        loop {
            if wake::wakes() != seen_wakes {
                // Tasks of this core were woken or spawned: let them run, then go on.
                seen_wakes = wake::wakes();
                futures_lite::future::yield_now().await;
                continue;
            }
            if self.nc.shared.stopping() && !self.stopping {
                self.begin_stop();
            }
            self.now = self.nc.core.tick();
            let mut progress = self.handoff_turn();
            progress |= self.repl_turn();
            progress |= self.take_finished();
            progress |= self.nc.core.timers.fire(self.now);
            if self.now >= self.next_cron_ms {
                self.next_cron_ms = self.now + CRON_INTERVAL_MS;
                self.cron();
            }
            // A cluster view changed on another core: this core's jobs route by it too
            // (the change happened before the request that brings them).
            self.nc.sync_cluster();
            progress |= self.nc.core.drain_inbox();
            progress |= self.take_lane_replies();
            // Jobs from other cores (and this core's tasks) may have queued Pub/Sub
            // messages: send them this turn.
            progress |= self.deliver_pushes();
            // A turn with nothing else to do so far and no task work pending in the
            // kernel leaves its submissions (the receives the last turn armed) to the
            // wait below, which submits and sleeps in one system call: entering here
            // would only submit them and find nothing. The turn after a wake-up (whose
            // completions the wait already posted) and the one after it may both leave
            // them so; a third turn in a row submits.
            let defer = !progress
                && !self.send_queued
                && self.deferred_turns < DEFERRED_TURNS_MAX
                && !self.ring.task_work_pending();
            if defer {
                self.deferred_turns += 1;
            } else if self.ring.needs_enter() {
                self.deferred_turns = 0;
                if let Err(e) = self.ring.enter() {
                    tracing::error!(core = self.nc.core.id, error = %e, "io_uring enter failed");
                }
                self.send_queued &= self.ring.has_queued();
            }
            self.completions.clear();
            self.ring.reap(&mut self.completions);
            progress |= !self.completions.is_empty();
            for i in 0..self.completions.len() {
                let c = self.completions[i];
                self.on_completion(c);
            }
            if self.nc.clients.take_kill_request() {
                for token in 0..self.conns.len() as Token {
                    self.maybe_finish(token);
                }
                progress = true;
            }
            progress |= self.deliver_pushes();
            progress |= self.pump_flows(progress);
            // Blocked clients whose keys filled this turn are woken (BLPOP ...).
            baton_engine::exec::blocking::turn(&self.nc.core);
            // Mail for a sleeping core waits for its ring until this core sleeps, or
            // OWED_TURNS turns: a busy core's turns share one ring per sleeper.
            self.nc.core.flush_outbox_owing();
            self.nc.core.ring_owed_after(OWED_TURNS);
            if self.stopping
                && self.live_conns() == 0
                && self.flows.iter().all(Option::is_none)
                && self.tasks.get() == 0
                && !self.listeners.iter().any(|l| l.armed)
            {
                self.nc.core.ring_owed();
                break;
            }
            if progress || wake::wakes() != seen_wakes || !self.finished.borrow().is_empty() {
                continue;
            }
            // Nothing happened this turn: sleep until something does. Every way work
            // reaches a sleeping core ends its wait:
            // - a socket event: its task work wakes this thread inside the wait and posts
            //   the completion there;
            // - mail from another core: the sender rings the doorbell, whose read is armed
            //   in the ring (`Mesh::may_sleep` for why no ring is missed). A sender that
            //   found this core asleep may owe the ring for a few of its own turns, but
            //   gives every ring it owes before it sleeps itself (just below, on its
            //   side), so mail never waits for two sleepers. Lazy mail (the
            //   response for a request another core answered itself) rings only if
            //   `lazy_ok` says this core waits for it; otherwise the connection's task
            //   has nothing to do until its next request, whose receive is armed and
            //   wakes this core like any socket event;
            // - receives armed in the turns before: the wait submits what those turns left
            //   to it (`defer` above) before it sleeps;
            // - this core's timers and the once-a-second checks: the wait's timeout;
            // - a task woken or a pipeline finished: only this thread does either, within
            //   a turn, and both are checked just above;
            // - a stop signal or CLIENT KILL: each rings the doorbell.
            // Mail posted to sleeping cores in the turns before gets its rings now.
            self.nc.core.ring_owed();
            let lazy_ok = self.lazy_ok();
            if !self.nc.core.mesh().may_sleep_with(self.nc.core.id, lazy_ok) {
                continue;
            }
            let mut timeout = self.next_deadline().map(|at| {
                Duration::from_millis(at.saturating_sub(baton_engine::runtime::now_ms()))
            });
            if let Some(due) = self.flow_due {
                let left = due.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if let Err(e) = self.ring.wait(timeout) {
                tracing::error!(core = self.nc.core.id, error = %e, "io_uring wait failed");
            }
            self.deferred_turns = 0;
            self.send_queued &= self.ring.has_queued();
            self.nc.core.mesh().awake(self.nc.core.id);
        }
        self.nc
            .shared
            .wakeups
            .lock()
            .unwrap()
            .retain(|&fd| fd != self.doorbell);
    }

    /// When a sleeping loop must wake on its own (unix ms): the earliest timer of this
    /// core, the once-a-second checks when they have work, and replica flows whose
    /// waiting records fall due.
    fn next_deadline(&self) -> Option<u64> {
        let timeout = self.nc.shared.settings.timeout_secs.load(Ordering::Relaxed) > 0;
        let cron = (self.cron_wanted || timeout).then_some(self.next_cron_ms);
        match (self.nc.core.timers.next(), cron) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Keeps a read armed on the mesh doorbell, so that a ring ends the loop's wait.
    fn arm_doorbell(&mut self) {
        if self.doorbell_armed {
            return;
        }
        let buf = self.doorbell_buf.as_mut_ptr();
        let sqe = opcode::Read::new(types::Fd(self.doorbell), buf, 8)
            .build()
            .user_data(OP_DOORBELL);
        self.doorbell_armed = true;
        // SAFETY: the buffer is leaked ('static) and the eventfd lives as long as the mesh,
        // which outlives every core.
        unsafe { self.ring.push(&sqe) };
    }

    fn live_conns(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    /// Whether a handoff's freeze holds: this core starts no command.
    #[inline]
    fn frozen(&self) -> bool {
        crate::handoff::Handoff::frozen(self.handoff_phase)
    }

    /// Follows the handoff ([`crate::handoff`]): freezes (starts no command), thaws,
    /// stops or starts accepting, hands the connections over, and tells the driver when
    /// this core is quiet or done. True if anything happened.
    fn handoff_turn(&mut self) -> bool {
        use crate::handoff::{Handoff, FREEZING, MOVING};
        let nc = self.nc.clone();
        let h = &nc.shared.handoff;
        let me = nc.core.id;
        let phase = h.phase();
        let mut progress = false;
        if phase != self.handoff_phase {
            let was_frozen = self.frozen();
            self.handoff_phase = phase;
            progress = true;
            for i in 0..self.listeners.len() {
                if Handoff::accepting(phase) {
                    if !self.listeners[i].armed {
                        self.arm_accept(i);
                    }
                } else if self.listeners[i].armed {
                    self.push_cancel(user_data(OP_ACCEPT, i as u32, 0));
                }
            }
            if phase == MOVING {
                // The new process serves now: replicas (the new process's own copy among
                // them) reconnect to it, and every client goes to it.
                for token in 0..self.flows.len() as Token {
                    self.close_flow(token);
                }
                for token in 0..self.conns.len() as Token {
                    if let Some(c) = self.conns[token as usize].as_mut() {
                        if c.client.conn.replica.get() {
                            // A replica's control connection: the replica reconnects to
                            // the new process and resumes there.
                            c.draining = true;
                        } else if !c.draining && !c.closing && c.moving.is_none() {
                            c.moving = Some(Move::Handoff);
                        }
                    }
                    self.maybe_finish(token);
                }
            } else if was_frozen && !self.frozen() {
                // Thawed (an aborted handoff, or the new process's start): run what waited.
                for token in 0..self.conns.len() as Token {
                    self.process(token);
                    self.maybe_finish(token);
                }
            }
        }
        if h.is_cut(me) && !h.dropped[me].load(Ordering::Acquire) {
            // Per-shard cutover: the new process holds this shard now. Its data goes,
            // unjournalled, and the allocator gives the pages back at once.
            nc.core.shard.borrow_mut().hand_over();
            baton_engine::trim::release_now();
            h.dropped[me].store(true, Ordering::Release);
            tracing::info!(
                core = me,
                "handoff: shard cut over to the new process; its data is dropped here"
            );
            progress = true;
        }
        let cut = h.any_cut();
        if self.saw_cut && !cut {
            // The cuts were undone (the new process went away past the commit point):
            // the requests that waited for their connection to move run here.
            for token in 0..self.conns.len() as Token {
                self.process(token);
                self.maybe_finish(token);
            }
            progress = true;
        }
        self.saw_cut = cut;
        if phase == FREEZING {
            // A client waiting in BLPOP would keep this core from ever being quiet: it is
            // answered as if its timeout had passed (it pops nothing), and its connection
            // moves like the others.
            crate::blocking::release_all(&nc);
        }
        if phase == FREEZING && self.tasks.get() == 0 && !h.quiet[me].load(Ordering::Acquire) {
            h.quiet[me].store(true, Ordering::Release);
        }
        if phase == MOVING
            && !h.done[me].load(Ordering::Acquire)
            && self.live_conns() == 0
            && self.flows.iter().all(Option::is_none)
            && !self.listeners.iter().any(|l| l.armed)
        {
            h.done[me].store(true, Ordering::Release);
        }
        progress
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        for token in 0..self.flows.len() as Token {
            self.close_flow(token);
        }
        for i in 0..self.listeners.len() {
            if self.listeners[i].armed {
                let target = user_data(OP_ACCEPT, i as u32, 0);
                self.push_cancel(target);
            }
        }
        for token in 0..self.conns.len() {
            if let Some(c) = self.conns[token].as_mut() {
                // Answer what was read, then close.
                c.draining = true;
            }
            self.process(token as Token);
            self.maybe_finish(token as Token);
        }
    }

    fn push_cancel(&mut self, target: u64) {
        let sqe = opcode::AsyncCancel::new(target)
            .build()
            .user_data(OP_CANCEL);
        // SAFETY: a cancel refers to no buffer.
        unsafe { self.ring.push(&sqe) };
    }

    fn arm_accept(&mut self, i: usize) {
        if self.stopping || !crate::handoff::Handoff::accepting(self.handoff_phase) {
            return;
        }
        let l = &mut self.listeners[i];
        let sqe = opcode::AcceptMulti::new(types::Fd(l.fd.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(OP_ACCEPT, i as u32, 0));
        l.armed = true;
        l.retry_at_ms = 0;
        // SAFETY: the listener fd lives in `self.listeners` for the loop's whole life.
        unsafe { self.ring.push(&sqe) };
    }

    fn on_completion(&mut self, c: Completion) {
        if c.user_data == OP_DOORBELL {
            self.doorbell_armed = false;
            if c.result < 0 && c.result != -libc::EINTR {
                tracing::warn!(core = self.nc.core.id, error = %std::io::Error::from_raw_os_error(-c.result), "mesh doorbell read failed");
            }
            self.arm_doorbell();
            return;
        }
        if c.user_data == OP_CANCEL {
            if c.result < 0 && c.result != -libc::ENOENT && c.result != -libc::EALREADY {
                tracing::debug!(error = %std::io::Error::from_raw_os_error(-c.result), "cancel failed");
            }
            tracing::trace!(result = c.result, "cancel completed");
            return;
        }
        let (op, token, generation) = decode(c.user_data);
        match op {
            // An accept's token is its listener's index.
            OP_ACCEPT => self.on_accept(token as usize, c),
            OP_FLOW_RECV | OP_FLOW_SEND => {
                let live = matches!(self.flows.get(token as usize), Some(Some(f)) if f.generation == generation);
                if live {
                    if op == OP_FLOW_RECV {
                        self.on_flow_recv(token, c.result);
                    } else {
                        self.on_flow_send(token, c.result);
                    }
                    self.finish_flow(token);
                }
            }
            OP_RECV | OP_SEND => {
                let live = matches!(self.conns.get(token as usize), Some(Some(conn)) if conn.generation == generation);
                if !live {
                    return;
                }
                if op == OP_RECV {
                    self.on_recv(token, c.result, c.flags);
                } else {
                    self.on_send(token, c.result);
                }
                self.maybe_finish(token);
            }
            _ => {}
        }
    }

    fn on_accept(&mut self, i: usize, c: Completion) {
        if !c.more() {
            self.listeners[i].armed = false;
        }
        let protocol = self.listeners[i].protocol;
        if c.result >= 0 {
            // SAFETY: a successful accept returns a new descriptor that we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(c.result) };
            if self.stopping {
                drop(fd);
            } else if protect::admit(&self.nc.shared) {
                self.add_conn(fd, protocol);
            } else {
                tracing::debug!(core = self.nc.core.id, peer = ?listener::peer_addr(fd.as_raw_fd()).ok(), "refusing a connection: max number of clients reached");
                // Best effort, as Redis: a fresh socket's send buffer takes the line.
                listener::refuse(fd, protect::rejection(protocol));
            }
        } else if c.result != -libc::ECANCELED {
            let error = std::io::Error::from_raw_os_error(-c.result);
            let exhausted =
                [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM].contains(&-c.result);
            if exhausted && !self.listeners[i].armed {
                // Accepting again at once would fail at once, in a loop: wait a second.
                tracing::warn!(core = self.nc.core.id, %error, "accept failed; retrying in a second (raise 'ulimit -n' or lower --maxclients)");
                self.listeners[i].retry_at_ms = self.now + CRON_INTERVAL_MS;
                self.cron_wanted = true;
                return;
            }
            tracing::warn!(core = self.nc.core.id, %error, "accept failed");
        }
        if !self.listeners[i].armed {
            self.arm_accept(i);
        }
    }

    fn add_conn(&mut self, fd: OwnedFd, protocol: Protocol) {
        listener::set_nodelay(fd.as_raw_fd());
        let authenticated = self.nc.shared.config.requirepass.is_none();
        // `connected_clients` counted it already, in protect::admit.
        self.nc
            .shared
            .total_connections
            .fetch_add(1, Ordering::Relaxed);
        let session = Session::new(protocol, authenticated);
        let token = self.insert_conn(fd, session, BytesMut::with_capacity(READ_CHUNK), None);
        if self.handoff_phase == crate::handoff::MOVING {
            // Accepted just before the accepts were cancelled: it moves like the rest.
            if let Some(c) = self.conns[token as usize].as_mut() {
                c.moving = Some(Move::Handoff);
            }
            self.maybe_finish(token);
        }
    }

    /// Takes a connection the old process of a handoff sent, with its session and the
    /// input it had not parsed yet. Its commands run once the handoff is over.
    fn adopt(&mut self, a: crate::session::Adopted) {
        self.nc
            .shared
            .connected_clients
            .fetch_add(1, Ordering::Relaxed);
        let token = self.insert_conn(a.fd, a.session, a.unparsed, a.times);
        if let Some(conn) = self.conns[token as usize].as_ref() {
            self.nc.pubsub.restore(&conn.client);
        }
        self.process(token);
    }

    /// New process of a handoff: takes a link of the old process's
    /// ([`crate::handoff::cutover`]) as a client that needs no AUTH and runs while the
    /// handoff holds the other connections.
    fn adopt_link(&mut self, fd: OwnedFd) {
        // A client like any other while it lives: its close counts it out.
        self.nc
            .shared
            .connected_clients
            .fetch_add(1, Ordering::Relaxed);
        let mut session = Session::new(Protocol::Redis, true);
        session.name = Some(bytes::Bytes::from_static(b"baton-handoff-link"));
        let token = self.insert_conn(fd, session, BytesMut::new(), None);
        if let Some(conn) = self.conns[token as usize].as_ref() {
            conn.client.conn.handoff_link.set(true);
        }
        // (`insert_conn` armed no receive: the handoff held the connection until now.)
        self.arm_recv(token);
    }

    /// Old process of a handoff: sends a connection that has nothing in flight to the
    /// new process, with its session and unparsed input. The socket itself is never shut
    /// down: the new process holds it before this one lets go.
    fn hand_over(&mut self, conn: Conn) {
        let me = self.nc.core.id;
        let mut payload = Vec::with_capacity(256 + conn.rbuf.len());
        let h = &self.nc.shared.handoff;
        let times = crate::session::ConnTimes {
            created_ms: conn.client.conn.created_ms,
            last_ms: conn.client.conn.last_ms.get(),
        };
        conn.client
            .borrow()
            .encode(h.session_version(), times, &conn.rbuf, &mut payload);
        match h.send_conn(me, conn.fd.as_raw_fd(), &payload) {
            Ok(()) => {
                h.moved[me].fetch_add(1, Ordering::Relaxed);
                tracing::debug!(core = me, client = %conn.client.ident(), "handoff: moved");
            }
            Err(e) => {
                tracing::warn!(core = me, client = %conn.client.ident(), error = %e, "handoff: a connection could not be handed over; it is closed");
            }
        }
    }

    /// Adds a connection to this loop's table and starts reading it; returns its token.
    /// `times`: when a connection handed over from another process was accepted and last
    /// used there (none in the future); a new connection's are now.
    fn insert_conn(
        &mut self,
        fd: OwnedFd,
        session: Session,
        rbuf: BytesMut,
        times: Option<crate::session::ConnTimes>,
    ) -> Token {
        let raw = fd.as_raw_fd();
        let now = now_ms();
        let mut info = ConnInfo::new(
            raw,
            listener::peer_addr(raw).ok(),
            listener::local_addr(&fd).ok(),
            now,
        );
        if let Some(t) = times {
            info.created_ms = t.created_ms.min(now);
            info.last_ms.set(t.last_ms.clamp(info.created_ms, now));
        }
        let client = ClientEntry::new(session, info);
        self.nc.clients.register(&client);
        let token = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.generations.push(0);
                (self.conns.len() - 1) as Token
            }
        };
        let generation = self.generations[token as usize].wrapping_add(1) & 0xff_ffff;
        self.generations[token as usize] = generation;
        self.conns[token as usize] = Some(Conn {
            fd,
            generation,
            rbuf,
            out: Vec::new(),
            inflight: Vec::new(),
            sent: 0,
            recv_armed: false,
            drained: true,
            send_armed: false,
            busy: false,
            hold: false,
            answered: false,
            lane_row: 0,
            pipe: None,
            draining: false,
            closing: false,
            cancel_sent: false,
            soft_since_ms: 0,
            held_pushes: Vec::new(),
            client,
            moving: None,
        });
        self.conns[token as usize]
            .as_ref()
            .expect("just added")
            .client
            .conn
            .token
            .set(token);
        self.arm_recv(token);
        token
    }

    fn arm_recv(&mut self, token: Token) {
        let Some(conn) = self.conns[token as usize].as_mut() else {
            return;
        };
        if conn.recv_armed
            || (conn.busy && !conn.answered)
            || conn.draining
            || conn.closing
            || conn.moving.is_some()
            || (crate::handoff::Handoff::frozen(self.handoff_phase)
                && !conn.client.conn.handoff_link.get())
        {
            return;
        }
        if conn.out.len() + conn.inflight.len() - conn.sent > dispatch::OUTPUT_PAUSE {
            return;
        }
        conn.rbuf.reserve(READ_CHUNK);
        let spare = conn.rbuf.spare_capacity_mut();
        let sqe = opcode::Recv::new(
            types::Fd(conn.fd.as_raw_fd()),
            spare.as_mut_ptr().cast::<u8>(),
            spare.len() as u32,
        )
        .ioprio(if conn.drained { RECVSEND_POLL_FIRST } else { 0 })
        .build()
        .user_data(user_data(OP_RECV, token, conn.generation));
        conn.recv_armed = true;
        // SAFETY: the spare capacity of `rbuf` stays allocated and untouched until this
        // receive completes: `rbuf` is only resized or read while `recv_armed` is false,
        // and the connection is dropped only after every armed operation completed.
        unsafe { self.ring.push(&sqe) };
    }

    fn on_recv(&mut self, token: Token, result: i32, flags: u32) {
        tracing::trace!(token, result, "recv completed");
        let now = self.now;
        let conn = self.conns[token as usize].as_mut().expect("live conn");
        conn.recv_armed = false;
        conn.cancel_sent = false;
        conn.drained = flags & CQE_F_SOCK_NONEMPTY == 0;
        if conn.busy && conn.answered {
            // Input (or a hang-up) for a connection whose task waits for a lazy
            // response: this core must not sleep through that response.
            self.waiting_lazy.push(token);
        }
        if result > 0 {
            // Reads and writes both count as interaction (idle= and the timeout), as in Redis.
            conn.client.conn.last_ms.set(now);
        }
        if result <= 0 {
            if result < 0 && result != -libc::ECANCELED && result != -libc::ECONNRESET {
                tracing::debug!(error = %std::io::Error::from_raw_os_error(-result), "recv failed");
            }
            // EOF or error: nothing more will be read; answer what was, then close.
            conn.draining = true;
            if conn.busy {
                // A command waiting for a key (BLPOP) stops waiting and pops nothing.
                crate::blocking::hangup(&self.nc, &conn.client);
            }
            self.process(token);
            return;
        }
        // SAFETY: the kernel wrote `result` bytes into the spare capacity we lent it.
        unsafe { conn.rbuf.set_len(conn.rbuf.len() + result as usize) };
        // A memcached connection whose input starts with 0x80 before any command speaks
        // the binary protocol, unless the parser is skipping the data block of a rejected
        // first command that `noreply` muted: the block's bytes may be anything.
        let binary_start = || {
            let st = conn.client.borrow();
            st.protocol == Protocol::Memcache
                && st.last_cmd == NO_COMMAND
                && st.mc_parser.swallowing() == 0
        };
        if conn
            .rbuf
            .first()
            .is_some_and(|&b| crate::memcache::is_binary_protocol(b))
            && binary_start()
        {
            tracing::info!(peer = ?conn.client.conn.peer, "closing a connection that speaks memcached's binary protocol, which is not supported");
            conn.rbuf.clear();
            conn.draining = true;
            return;
        }
        self.process(token);
    }

    fn on_send(&mut self, token: Token, result: i32) {
        let now = self.now;
        let conn = self.conns[token as usize].as_mut().expect("live conn");
        conn.send_armed = false;
        conn.cancel_sent = false;
        if result > 0 {
            conn.client.conn.last_ms.set(now);
        }
        if result < 0 {
            // The peer is gone; what is left cannot be delivered.
            conn.inflight.clear();
            conn.out.clear();
            conn.sent = 0;
            conn.draining = true;
            conn.closing = true;
            return;
        }
        conn.sent += result as usize;
        if conn.sent >= conn.inflight.len() {
            conn.inflight.clear();
            conn.sent = 0;
        }
        self.flush(token);
        // Output drained below the high-water mark: resume parsing and reading.
        self.process(token);
    }

    /// Whether this core may sleep through lazy mail ([`baton_engine::runtime::mesh`]):
    /// not while a connection waiting for a lazily answered request has input or a
    /// hang-up buffered, nor during a handoff or a stop, whose steps wait for busy
    /// connections.
    fn lazy_ok(&mut self) -> bool {
        let conns = &self.conns;
        self.waiting_lazy.retain(|&t| {
            conns
                .get(t as usize)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.busy && c.answered)
        });
        self.waiting_lazy.is_empty() && self.handoff_phase == crate::handoff::IDLE && !self.stopping
    }

    fn flush(&mut self, token: Token) {
        let live = self.conns.len() - self.free.len();
        let Some(conn) = self.conns[token as usize].as_mut() else {
            return;
        };
        if conn.send_armed || conn.closing || (conn.busy && conn.hold) {
            return;
        }
        let fd = conn.fd.as_raw_fd();
        if live <= DIRECT_SEND_CONNS
            && conn.inflight.is_empty()
            && !conn.out.is_empty()
            && conn.out.len() <= DIRECT_SEND_MAX
        {
            // Nothing is in flight: hand the replies to the socket now, as memcached
            // does, rather than with the turn's other sends at its end. The client starts
            // on them while this core works through the other connections, and the usual
            // case needs no ring operation and no completion.
            if let Ok(n @ 1..) = crate::listener::send_now(fd, &conn.out) {
                conn.client.conn.last_ms.set(self.now);
                if n == conn.out.len() {
                    conn.out.clear();
                    return;
                }
                // The socket took part of it: the ring's send waits for room for the rest.
                std::mem::swap(&mut conn.inflight, &mut conn.out);
                conn.sent = n;
            }
            // Nothing taken (a full socket, or an error that the ring's send then reports
            // as its completion, which closes the connection): the ring's send goes on.
        }
        let ud = user_data(OP_SEND, token, conn.generation);
        let Some(sqe) = next_send(fd, &mut conn.out, &mut conn.inflight, &mut conn.sent, ud) else {
            return;
        };
        conn.send_armed = true;
        self.send_queued = true;
        // SAFETY: `inflight` is neither written nor dropped while `send_armed` is true
        // (new output goes to `out`), and the connection is dropped only after the send
        // completes.
        unsafe { self.ring.push(&sqe) };
    }

    /// Parses and runs what the connection has buffered, as far as it can right now,
    /// then sends what that produced and keeps a receive armed.
    fn process(&mut self, token: Token) {
        let Some(conn) = self.conns[token as usize].as_mut() else {
            return;
        };
        if conn.busy || conn.closing || conn.moving.is_some() {
            return;
        }
        // A handoff's freeze starts no command: the input waits, buffered.
        if !conn.rbuf.is_empty()
            && (!crate::handoff::Handoff::frozen(self.handoff_phase)
                || conn.client.conn.handoff_link.get())
        {
            let protocol = conn.client.borrow().protocol;
            let idle_fd =
                (conn.pending_output() == 0 && !conn.send_armed).then(|| conn.fd.as_raw_fd());
            let outcome = match protocol {
                Protocol::Redis => dispatch::run_redis(
                    &self.nc,
                    &conn.client,
                    &mut conn.rbuf,
                    &mut conn.out,
                    idle_fd,
                ),
                Protocol::Memcache => {
                    crate::mcdispatch::run(&self.nc, &conn.client, &mut conn.rbuf, &mut conn.out)
                }
            };
            match outcome {
                dispatch::Outcome::Continue => {}
                dispatch::Outcome::Flow(req) => conn.moving = Some(Move::Flow(req)),
                dispatch::Outcome::Close => {
                    // QUIT or a protocol error: whatever else the client sent goes unanswered.
                    conn.rbuf.clear();
                    conn.draining = true;
                }
                dispatch::Outcome::Lane {
                    core,
                    job,
                    row,
                    answered,
                } => {
                    conn.busy = true;
                    conn.hold = true;
                    conn.answered = answered;
                    conn.lane_row = row;
                    let tag = (u64::from(token) << 32) | u64::from(conn.generation);
                    // In flight like a task: a handoff's freeze and a stop wait for it.
                    self.tasks.set(self.tasks.get() + 1);
                    self.nc.core.call_for_loop(core, vec![job], tag);
                }
                dispatch::Outcome::Pipe(mut pipe) => {
                    conn.busy = true;
                    conn.hold = true;
                    let tag = (u64::from(token) << 32) | u64::from(conn.generation);
                    let calls = pipe.send(&self.nc.core, tag);
                    if calls == 0 {
                        // Everything was answered here: it finishes next turn, as a task
                        // that ended would.
                        let mut bytes = Vec::new();
                        pipe.finish(&self.nc, &conn.client, &mut bytes);
                        self.finished.borrow_mut().push(Finished {
                            token,
                            generation: conn.generation,
                            bytes,
                            close: false,
                        });
                    } else {
                        // In flight like a task: a handoff's freeze and a stop wait for it.
                        self.tasks.set(self.tasks.get() + calls);
                        conn.pipe = Some(pipe);
                    }
                }
                dispatch::Outcome::Slow { task, hold } => {
                    conn.busy = true;
                    conn.hold = hold;
                    let (finished, tasks) = (self.finished.clone(), self.tasks.clone());
                    let generation = conn.generation;
                    tasks.set(tasks.get() + 1);
                    wake::spawn(async move {
                        let (bytes, close) = task.await;
                        finished.borrow_mut().push(Finished {
                            token,
                            generation,
                            bytes,
                            close,
                        });
                        tasks.set(tasks.get() - 1);
                    });
                }
            }
        }
        let limit = self.nc.shared.settings.output_limit();
        if self.check_output(token, limit) {
            return;
        }
        self.flush(token);
        self.arm_recv(token);
    }

    /// Applies the output buffer limit to the connection's unsent output; closes it and
    /// returns true when the limit is broken.
    fn check_output(&mut self, token: Token, limit: crate::config::OutputLimit) -> bool {
        let Some(conn) = self.conns[token as usize].as_mut() else {
            return false;
        };
        let pending = conn.pending_output() as u64;
        if pending > 0 {
            // The soft limit is timed: the once-a-second checks must look at it.
            self.cron_wanted = true;
        }
        // Subscribers have their own class of limit, as in Redis.
        let limit = if conn.client.borrow().subscriptions() > 0 {
            self.nc.shared.settings.pubsub_output_limit()
        } else {
            limit
        };
        let Some(breach) =
            protect::output_breach(pending, limit, &mut conn.soft_since_ms, self.now)
        else {
            return false;
        };
        let detail = match breach {
            Breach::Hard => format!("{pending} bytes unsent, hard limit {} bytes", limit.hard),
            Breach::Soft => format!(
                "{pending} bytes unsent, above the soft limit of {} bytes for more than {} s",
                limit.soft, limit.soft_secs
            ),
        };
        tracing::warn!(
            core = self.nc.core.id,
            limit = breach.name(),
            "Client {} closed for overcoming of output buffer limits ({detail}).",
            conn.client.ident()
        );
        self.nc
            .shared
            .client_output_limit_disconnections
            .fetch_add(1, Ordering::Relaxed);
        conn.abort();
        true
    }

    /// The once-a-second checks: retry paused listeners, close clients idle past the
    /// timeout, and apply the soft output limit to clients whose output is not moving.
    fn cron(&mut self) {
        let now = self.now;
        let timeout = self.nc.shared.settings.timeout_secs.load(Ordering::Relaxed);
        let limit = self.nc.shared.settings.output_limit();
        let mut wanted = false;
        for i in 0..self.listeners.len() {
            match self.listeners[i].retry_at_ms {
                0 => {}
                at if now >= at => self.arm_accept(i),
                _ => wanted = true,
            }
        }
        for token in 0..self.conns.len() as Token {
            let Some(conn) = self.conns[token as usize].as_mut() else {
                continue;
            };
            wanted |= conn.closing || conn.pending_output() > 0;
            if conn.closing {
                continue;
            }
            // A connection waiting for its slow-path pipeline is not idle.
            let last = conn.client.conn.last_ms.get();
            if !conn.busy && protect::idle_expired(last, now, timeout) {
                tracing::debug!(
                    core = self.nc.core.id,
                    "Closing idle client {}",
                    conn.client.ident()
                );
                conn.abort();
            } else {
                self.check_output(token, limit);
            }
            self.maybe_finish(token);
        }
        wanted |= self.check_replica_limits();
        self.cron_wanted = wanted;
    }

    /// Applies `client-output-buffer-limit replica` to the replica flows this core feeds:
    /// their unsent output is the journal they have not shipped plus what waits in their
    /// buffers. Past the hard limit, or past the soft one for its seconds, a flow is
    /// dropped (the replica resyncs). True while any flow has output waiting.
    fn check_replica_limits(&mut self) -> bool {
        let limit = self.nc.shared.settings.replica_output_limit();
        let mut waiting = false;
        for token in 0..self.flows.len() as Token {
            let Some(f) = self.flows[token as usize].as_mut() else {
                continue;
            };
            let FlowKind::Feed(feed) = &f.kind else {
                continue;
            };
            if f.closing {
                continue;
            }
            let pending = feed.unshipped() + (f.out.len() + f.inflight.len() - f.sent) as u64;
            waiting |= pending > 0;
            let Some(breach) =
                protect::output_breach(pending, limit, &mut f.soft_since_ms, self.now)
            else {
                continue;
            };
            tracing::warn!(
                core = self.nc.core.id,
                limit = breach.name(),
                "Replica {} closed for overcoming of output buffer limits ({pending} bytes unsent).",
                feed.replica_addr()
            );
            self.nc
                .shared
                .client_output_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            self.close_flow(token);
        }
        waiting
    }

    /// Moves finished slow-path output into its connection and resumes it.
    fn take_finished(&mut self) -> bool {
        let done: Vec<Finished> = std::mem::take(&mut *self.finished.borrow_mut());
        let any = !done.is_empty();
        for f in done {
            self.resume(f);
        }
        any
    }

    /// Takes the responses to this turn's lone requests for other cores
    /// ([`dispatch::Outcome::Lane`]), finishes each (its reply, or what the other core's
    /// send left of it) and resumes its connection. True if there were any.
    fn take_lane_replies(&mut self) -> bool {
        let mut replies = std::mem::take(&mut self.lane_replies);
        self.nc.core.take_loop_replies(&mut replies);
        let any = !replies.is_empty();
        for LoopReply { tag, from, outs } in replies.drain(..) {
            self.tasks.set(self.tasks.get() - 1);
            let (token, generation) = ((tag >> 32) as Token, tag as u32);
            let Some(Some(conn)) = self.conns.get_mut(token as usize) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            let (client, row) = (conn.client.clone(), conn.lane_row);
            if let Some(pipe) = conn.pipe.as_mut() {
                if !pipe.take(from, outs) {
                    continue;
                }
                let pipe = conn.pipe.take().expect("checked just above");
                // Encoded after what the connection holds back already, in its own
                // buffer (`resume` puts it back); a closing connection's output goes
                // nowhere, and what it held is kept as before.
                let mut bytes = if conn.closing {
                    Vec::new()
                } else {
                    std::mem::take(&mut conn.out)
                };
                pipe.finish(&self.nc, &client, &mut bytes);
                self.resume(Finished {
                    token,
                    generation,
                    bytes,
                    close: false,
                });
                continue;
            }
            let mut bytes = Vec::new();
            match outs.into_iter().next() {
                Some(Out::Answered {
                    ticks,
                    args,
                    unsent,
                    ..
                }) => {
                    // Counted and sent where it ran, but for what the socket left.
                    self.nc.log_if_slow(&client, ticks, || args);
                    bytes = unsent;
                }
                Some(Out::Cmd { reply, ticks, args }) => {
                    self.nc.executed(&client, row, ticks, &reply, &args);
                    crate::resp::encode(&reply, client.borrow().resp, &mut bytes);
                }
                other => {
                    let reply = other.map_or(Reply::err("ERR internal: missing reply"), |o| {
                        o.into_reply()
                    });
                    crate::resp::encode(&reply, client.borrow().resp, &mut bytes);
                }
            }
            self.resume(Finished {
                token,
                generation,
                bytes,
                close: false,
            });
        }
        self.lane_replies = replies;
        any
    }

    /// A connection's slow-path work ended with `f`: its output goes out, and what it
    /// buffered meanwhile is processed.
    fn resume(&mut self, f: Finished) {
        {
            let Some(Some(conn)) = self.conns.get_mut(f.token as usize) else {
                return;
            };
            if conn.generation != f.generation {
                return;
            }
            conn.busy = false;
            conn.hold = false;
            conn.answered = false;
            if conn.closing {
                // Killed or over a limit while the pipeline ran: its replies go nowhere.
            } else if conn.out.is_empty() {
                conn.out = f.bytes;
            } else {
                conn.out.extend_from_slice(&f.bytes);
            }
            if !conn.held_pushes.is_empty() {
                let held = std::mem::take(&mut conn.held_pushes);
                conn.out.extend_from_slice(&held);
            }
            if f.close {
                conn.rbuf.clear();
                conn.draining = true;
            }
        }
        self.process(f.token);
        self.flush(f.token);
        self.maybe_finish(f.token);
    }

    /// Moves the Pub/Sub messages queued for this core's subscribers into their
    /// connections' output (held back while a slow-path pipeline runs), applies the
    /// output limit and sends. True if there were any.
    fn deliver_pushes(&mut self) -> bool {
        let pending = self.nc.pubsub.take_pending();
        if pending.is_empty() {
            return false;
        }
        let mut touched: Vec<Token> = Vec::new();
        for (client, bytes) in pending {
            let token = client.conn.token.get();
            let Some(Some(conn)) = self.conns.get_mut(token as usize) else {
                continue;
            };
            if !Rc::ptr_eq(&conn.client, &client) || conn.closing {
                continue;
            }
            if conn.busy {
                conn.held_pushes.extend_from_slice(&bytes);
            } else {
                conn.out.extend_from_slice(&bytes);
            }
            if touched.last() != Some(&token) {
                touched.push(token);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let limit = self.nc.shared.settings.output_limit();
        for token in touched {
            if !self.check_output(token, limit) {
                self.flush(token);
            }
            self.maybe_finish(token);
        }
        true
    }

    /// Closes a connection that is done: draining with nothing left to send, or closing.
    fn maybe_finish(&mut self, token: Token) {
        let Some(conn) = self.conns[token as usize].as_mut() else {
            return;
        };
        if conn.client.conn.killed.get() && !conn.closing {
            // CLIENT KILL: close now, unsent output is dropped (Redis frees the client).
            conn.abort();
            if conn.busy {
                crate::blocking::hangup(&self.nc, &conn.client);
            }
        }
        if conn.moving.is_some() && !conn.closing {
            if conn.recv_armed {
                if !conn.cancel_sent {
                    conn.cancel_sent = true;
                    let target = user_data(OP_RECV, token, conn.generation);
                    self.push_cancel(target);
                }
                return;
            }
            if conn.send_armed || conn.busy || conn.pending_output() > 0 {
                return;
            }
            let mut conn = self.conns[token as usize].take().expect("live conn");
            self.nc.clients.unregister(&conn.client);
            self.nc.pubsub.forget(&conn.client);
            self.nc
                .shared
                .connected_clients
                .fetch_sub(1, Ordering::Relaxed);
            self.free.push(token);
            match conn.moving.take().expect("moving") {
                Move::Flow(req) => {
                    let shard = req.shard;
                    self.nc
                        .shared
                        .repl
                        .post(shard, FlowStart::Feed(req, conn.fd));
                }
                Move::Handoff => self.hand_over(conn),
            }
            return;
        }
        if conn.draining
            && !conn.busy
            && !conn.send_armed
            && conn.out.is_empty()
            && conn.inflight.is_empty()
        {
            conn.closing = true;
        }
        if !conn.draining && !conn.closing {
            return;
        }
        // Nothing more is read once draining: take back an armed receive.
        let mut cancel = None;
        if conn.recv_armed {
            cancel = Some(user_data(OP_RECV, token, conn.generation));
        } else if conn.closing && conn.send_armed {
            cancel = Some(user_data(OP_SEND, token, conn.generation));
        }
        if let Some(target) = cancel {
            if !conn.cancel_sent {
                conn.cancel_sent = true;
                self.push_cancel(target);
            }
            return;
        }
        if !conn.closing || conn.busy {
            return;
        }
        let conn = self.conns[token as usize].take().expect("live conn");
        self.nc.clients.unregister(&conn.client);
        self.nc.pubsub.forget(&conn.client);
        self.nc
            .shared
            .connected_clients
            .fetch_sub(1, Ordering::Relaxed);
        self.free.push(token);
        drop(conn);
    }
}

impl Loop {
    /// Acts on replication changes (role, link) and takes the flow sockets handed to
    /// this core. True if anything happened.
    fn repl_turn(&mut self) -> bool {
        let nc = self.nc.clone();
        let repl = &nc.shared.repl;
        let mut progress = false;
        let epoch = repl.epoch.load(Ordering::Acquire);
        if epoch != self.repl_epoch {
            self.repl_epoch = epoch;
            progress = true;
            let replica = repl.is_replica();
            let me = nc.core.id;
            {
                let mut shard = nc.core.shard.borrow_mut();
                shard.set_replica(replica);
                if replica {
                    // A replica keeps a journal from the start: its own replicas and a
                    // promotion continue from it.
                    let (journal, created) = repl.journal_or_new(me);
                    if created {
                        shard.set_effect_sink(Box::new(journal.clone()));
                    }
                }
            }
            let generation = crate::repl_state::lock(&repl.link).generation;
            let mut drop_feeds = replica && !self.was_replica;
            self.was_replica = replica;
            let kills = repl.feed_kills.load(Ordering::Acquire);
            if kills != self.feed_kills {
                self.feed_kills = kills;
                drop_feeds = true;
            }
            for token in 0..self.flows.len() as Token {
                let stale = match self.flows[token as usize].as_ref().map(|f| &f.kind) {
                    Some(FlowKind::Apply(a)) => a.start.generation != generation || !replica,
                    // This server's history is about to be replaced: its replicas
                    // start again from the new one.
                    Some(FlowKind::Feed(_)) => drop_feeds,
                    Some(FlowKind::Forward(_)) | None => false,
                };
                if stale {
                    self.close_flow(token);
                }
            }
        }
        for start in repl.take(nc.core.id) {
            progress = true;
            match start {
                FlowStart::Feed(req, fd) => {
                    // A handoff that is moving the connections serves no new flow: the
                    // replica reconnects to the new process.
                    if self.stopping || self.handoff_phase == crate::handoff::MOVING {
                        continue;
                    }
                    let mut out = Vec::new();
                    let state = {
                        let mut shard = nc.core.shard.borrow_mut();
                        FeedState::start(repl, &mut shard, req, self.now, &mut out)
                    };
                    let token = self.add_flow(fd, FlowKind::Feed(state));
                    if let Some(f) = self.flows[token as usize].as_mut() {
                        f.out = out;
                    }
                    self.flow_flush(token);
                }
                FlowStart::Adopt(adopted) => {
                    if !self.stopping {
                        self.adopt(*adopted);
                    }
                    // Registered here (subscriptions included) or closed: the handoff
                    // lets the cores run commands only once every connection is settled.
                    nc.shared.handoff.settled_one();
                }
                FlowStart::HandoffLink(fd) => {
                    if !self.stopping {
                        self.adopt_link(fd);
                    }
                }
                FlowStart::Apply(start, fd) => {
                    let current =
                        crate::repl_state::lock(&repl.link).generation == start.generation;
                    let mut state = ApplyState::new(start, nc.core.cores);
                    if !current || self.stopping {
                        state.on_close(repl);
                        continue;
                    }
                    self.add_flow(fd, FlowKind::Apply(state));
                }
            }
        }
        progress
    }

    fn add_flow(&mut self, fd: OwnedFd, kind: FlowKind) -> Token {
        listener::set_nodelay(fd.as_raw_fd());
        let token = match self.flows.iter().position(Option::is_none) {
            Some(t) => t as Token,
            None => {
                self.flows.push(None);
                self.flow_generations.push(0);
                (self.flows.len() - 1) as Token
            }
        };
        let generation = self.flow_generations[token as usize].wrapping_add(1) & 0xff_ffff;
        self.flow_generations[token as usize] = generation;
        self.flows[token as usize] = Some(FlowConn {
            fd,
            generation,
            rbuf: vec![0; FLOW_READ],
            out: Vec::new(),
            inflight: Vec::new(),
            sent: 0,
            recv_armed: false,
            send_armed: false,
            closing: false,
            cancel_sent: false,
            soft_since_ms: 0,
            last_shipped: None,
            rearm_at: None,
            last_recv: None,
            last_peek: None,
            kind,
        });
        self.flow_arm_recv(token);
        token
    }

    fn flow_arm_recv(&mut self, token: Token) {
        let Some(f) = self.flows[token as usize].as_mut() else {
            return;
        };
        if f.recv_armed || f.closing {
            return;
        }
        let sqe = opcode::Recv::new(
            types::Fd(f.fd.as_raw_fd()),
            f.rbuf.as_mut_ptr(),
            f.rbuf.len() as u32,
        )
        .build()
        .user_data(user_data(OP_FLOW_RECV, token, f.generation));
        f.recv_armed = true;
        // SAFETY: `rbuf` is neither resized nor dropped while the receive is armed: the
        // flow is dropped only once nothing is armed.
        unsafe { self.ring.push(&sqe) };
    }

    fn flow_flush(&mut self, token: Token) {
        let Some(f) = self.flows[token as usize].as_mut() else {
            return;
        };
        if f.send_armed || f.closing {
            return;
        }
        let ud = user_data(OP_FLOW_SEND, token, f.generation);
        let fd = f.fd.as_raw_fd();
        let Some(sqe) = next_send(fd, &mut f.out, &mut f.inflight, &mut f.sent, ud) else {
            return;
        };
        f.send_armed = true;
        // SAFETY: `inflight` is untouched while the send is armed (new output goes to
        // `out`), and the flow is dropped only once nothing is armed.
        unsafe { self.ring.push(&sqe) };
    }

    fn on_flow_recv(&mut self, token: Token, result: i32) {
        let nc = self.nc.clone();
        let now = self.now;
        let f = self.flows[token as usize].as_mut().expect("live flow");
        f.recv_armed = false;
        if f.closing {
            return;
        }
        if result == -libc::EAGAIN {
            // A peek during a read pause found nothing (an armed receive never answers
            // EAGAIN): the pause goes on, or the receive is armed if it ended meanwhile.
            if f.rearm_at.is_none() {
                self.flow_arm_recv(token);
            }
            return;
        }
        if result <= 0 {
            if result < 0 && result != -libc::ECANCELED {
                tracing::info!(core = nc.core.id, error = %std::io::Error::from_raw_os_error(-result), "{}: receive failed", f.kind.name());
            }
            f.closing = true;
            return;
        }
        let n = result as usize;
        let outcome = match &mut f.kind {
            FlowKind::Feed(feed) => feed.on_input(&nc.shared.repl, &f.rbuf[..n], now),
            FlowKind::Apply(apply) => apply.on_input(&nc, &f.rbuf[..n], &mut f.out),
            FlowKind::Forward(link) => link.on_input(&nc.core, &f.rbuf[..n]),
        };
        if let Err(e) = outcome {
            tracing::warn!(core = nc.core.id, "{} dropped: {e}", f.kind.name());
            f.closing = true;
            return;
        }
        self.flow_flush(token);
        let f = self.flows[token as usize].as_mut().expect("live flow");
        if let FlowKind::Apply(apply) = &f.kind {
            // A steady stream is read once per pause; the flow pump arms the receive when
            // it falls due.
            let more = !apply.streaming() || n >= f.rbuf.len() / 2;
            f.rearm_at = read_pause(&mut f.last_recv, Instant::now(), more);
            if f.rearm_at.is_some() {
                return;
            }
        }
        self.flow_arm_recv(token);
    }

    /// Arms the receives of replica flows whose read pause is over; the others' pauses
    /// bound the loop's sleep. In a `busy` turn (the loop is awake for other work anyway)
    /// a paused flow is also peeked at, at most once per `FLOW_PEEK_EVERY`, with a
    /// receive that completes at once, empty or not, and never waits: a shipment that
    /// arrived during the pause is read then instead of at its end, and none wakes the
    /// replica. True if any receive was armed.
    fn rearm_paused_reads(&mut self, busy: bool) -> bool {
        let mut armed = false;
        let mut now = None;
        for token in 0..self.flows.len() as Token {
            let Some(f) = self.flows[token as usize].as_mut() else {
                continue;
            };
            let Some(at) = f.rearm_at else { continue };
            if f.closing {
                f.rearm_at = None;
                continue;
            }
            let now = *now.get_or_insert_with(Instant::now);
            if now < at {
                if busy && !f.recv_armed && pace(&mut f.last_peek, now, FLOW_PEEK_EVERY).is_ok() {
                    // MSG_DONTWAIT: io_uring completes the receive with -EAGAIN rather
                    // than arming a poll on the socket.
                    let sqe = opcode::Recv::new(
                        types::Fd(f.fd.as_raw_fd()),
                        f.rbuf.as_mut_ptr(),
                        f.rbuf.len() as u32,
                    )
                    .flags(libc::MSG_DONTWAIT)
                    .build()
                    .user_data(user_data(OP_FLOW_RECV, token, f.generation));
                    f.recv_armed = true;
                    // SAFETY: as in `flow_arm_recv`: `rbuf` stays put while armed.
                    unsafe { self.ring.push(&sqe) };
                }
                self.flow_due_by(at);
                continue;
            }
            f.rearm_at = None;
            self.flow_arm_recv(token);
            armed = true;
        }
        armed
    }

    fn on_flow_send(&mut self, token: Token, result: i32) {
        let f = self.flows[token as usize].as_mut().expect("live flow");
        f.send_armed = false;
        if result < 0 {
            f.closing = true;
            return;
        }
        f.sent += result as usize;
        if f.sent >= f.inflight.len() {
            f.inflight.clear();
            f.sent = 0;
        }
        self.flow_flush(token);
    }

    /// Makes the loop's wait end by `due` at the latest (a paced flow's next turn).
    fn flow_due_by(&mut self, due: Instant) {
        self.flow_due = Some(self.flow_due.map_or(due, |d| d.min(due)));
    }

    /// Feeds every replica flow of this core what is due. True if anything was queued.
    fn pump_flows(&mut self, busy: bool) -> bool {
        self.flow_due = None;
        let mut progress = self.rearm_paused_reads(busy);
        progress |= self.pump_forwards();
        let mut now = None;
        for token in 0..self.flows.len() as Token {
            let nc = self.nc.clone();
            let Some(f) = self.flows[token as usize].as_mut() else {
                continue;
            };
            if f.closing || f.send_armed || !f.inflight.is_empty() {
                continue;
            }
            let feed = match &mut f.kind {
                FlowKind::Feed(feed) => feed,
                FlowKind::Forward(_) => continue,
                FlowKind::Apply(apply) => {
                    // A replica's ACK, once its other cores applied what it acknowledges.
                    apply.settle(&nc.shared.repl);
                    match apply.take_ack(&mut f.out) {
                        Ack::Queued => {
                            progress = true;
                            self.flow_flush(token);
                        }
                        Ack::Later(due) => self.flow_due_by(due),
                        Ack::Nothing => {}
                    }
                    continue;
                }
            };
            if !feed.walking() {
                // Journal records only: send them once enough gathered or the oldest
                // waited long enough.
                let unshipped = feed.unshipped();
                if unshipped == 0 {
                    continue;
                }
                let now = *now.get_or_insert_with(Instant::now);
                if unshipped >= FLOW_COALESCE_BYTES {
                    f.last_shipped = Some(now);
                } else if let Err(due) = pace(&mut f.last_shipped, now, FLOW_COALESCE) {
                    self.flow_due_by(due);
                    continue;
                }
            }
            let shard = nc.core.shard.borrow();
            if let Err(e) = feed.fill(&nc.shared.repl, &shard, &mut f.out) {
                tracing::warn!(core = nc.core.id, "replica flow dropped: {e}");
                f.closing = true;
                drop(shard);
                self.finish_flow(token);
                progress = true;
                continue;
            }
            drop(shard);
            if !f.out.is_empty() {
                progress = true;
                // The once-a-second checks watch its output limit.
                self.cron_wanted = true;
                self.flow_flush(token);
            }
        }
        progress
    }

    fn close_flow(&mut self, token: Token) {
        if let Some(f) = self.flows[token as usize].as_mut() {
            f.closing = true;
        }
        self.finish_flow(token);
    }

    /// Drops a closing flow once nothing is armed (cancelling what is).
    fn finish_flow(&mut self, token: Token) {
        let Some(f) = self.flows[token as usize].as_mut() else {
            return;
        };
        if !f.closing {
            return;
        }
        if f.recv_armed || f.send_armed {
            if !f.cancel_sent {
                f.cancel_sent = true;
                let op = if f.recv_armed {
                    OP_FLOW_RECV
                } else {
                    OP_FLOW_SEND
                };
                let target = user_data(op, token, f.generation);
                // Shut the socket too: a cancel alone may race a receive that is about
                // to complete, and the peer must see the flow end.
                // SAFETY: plain shutdown(2) on a descriptor this flow owns.
                unsafe { libc::shutdown(f.fd.as_raw_fd(), libc::SHUT_RDWR) };
                self.push_cancel(target);
            }
            return;
        }
        let mut f = self.flows[token as usize].take().expect("live flow");
        let repl = &self.nc.shared.repl;
        match &mut f.kind {
            FlowKind::Feed(feed) => feed.on_close(repl),
            FlowKind::Apply(apply) => apply.on_close(repl),
            FlowKind::Forward(link) => {
                let why = format!("lost the owner {}", link.addr);
                link.fail(&self.nc.core, &why);
            }
        }
    }

    /// The memcached requests this core forwards to other nodes: each queued request
    /// goes out on the link to its owner (opened if there is none), and a link whose
    /// oldest request has waited past `cluster-node-timeout` fails its requests and
    /// closes. A stopping loop closes its links. True if anything happened.
    fn pump_forwards(&mut self) -> bool {
        use crate::cluster::mclink;
        let queue = self.forwards.clone();
        let mut progress = false;
        let mut now = None;
        for token in 0..self.flows.len() as Token {
            let Some(f) = self.flows[token as usize].as_mut() else {
                continue;
            };
            let FlowKind::Forward(link) = &mut f.kind else {
                continue;
            };
            if f.closing {
                continue;
            }
            let mut due = None;
            let why = if self.stopping {
                Some("the server is shutting down".to_string())
            } else {
                match link.deadline() {
                    Some(at) if at <= *now.get_or_insert_with(Instant::now) => {
                        Some(link.timed_out())
                    }
                    at => {
                        due = at;
                        None
                    }
                }
            };
            if let Some(why) = why {
                link.fail(&self.nc.core, &why);
                self.close_flow(token);
                progress = true;
            } else if let Some(at) = due {
                self.flow_due_by(at);
            }
        }
        let work = queue.take();
        if work.is_empty() {
            return progress;
        }
        let now = now.unwrap_or_else(Instant::now);
        let timeout = mclink::timeout(&self.nc);
        let mut used: Vec<Token> = Vec::new();
        for (addr, w) in work {
            if self.stopping {
                w.fail(&self.nc.core, "the server is shutting down");
                continue;
            }
            let live = self.flows.iter().position(|f| {
                matches!(f, Some(f) if !f.closing
                    && matches!(&f.kind, FlowKind::Forward(l) if l.addr == addr))
            });
            let token = match live {
                Some(t) => t as Token,
                None => {
                    let auth = crate::repl_state::lock(&self.nc.shared.repl.masterauth).clone();
                    let opened = if crate::handoff::cutover::is_link(&addr) {
                        match self.nc.shared.handoff.forward_path() {
                            Some(path) => mclink::Link::handoff(&path, &addr, timeout),
                            None => Err("the handoff forwards no more".to_string()),
                        }
                    } else {
                        mclink::Link::connect(&addr, auth.as_deref(), timeout)
                    };
                    match opened {
                        Ok((fd, link, hello)) => {
                            let t = self.add_flow(fd, FlowKind::Forward(link));
                            if let Some(f) = self.flows[t as usize].as_mut() {
                                f.out = hello;
                            }
                            t
                        }
                        Err(e) => {
                            w.fail(&self.nc.core, &e);
                            continue;
                        }
                    }
                }
            };
            let f = self.flows[token as usize].as_mut().expect("live flow");
            if let FlowKind::Forward(link) = &mut f.kind {
                link.push(w, &mut f.out, now);
            }
            if !used.contains(&token) {
                used.push(token);
            }
        }
        for token in used {
            self.flow_flush(token);
        }
        self.flow_due_by(now + timeout);
        true
    }
}
