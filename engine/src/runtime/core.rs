//! [`Core`]: what one executor owns — its shard, its end of the mesh, the requests it is
//! waiting on, the shard lock that makes multi-core commands atomic, and the per-core state
//! of the layers above ([`Core::attach`]), which a [`Job::OnCore`] sent from another core
//! reaches.
//!
//! Cross-core protocol: a [`Msg::Req`] carries a batch of [`Job`]s for one shard; the
//! receiving core runs them in order and answers with one [`Msg::Resp`]. A connection
//! sends at most one batch per destination core per pipeline, so one pipeline costs one
//! round trip per core it touches. Messages wait in the core's outbox until its event
//! loop ends the turn ([`Core::flush_outbox`]): every message of a turn for one core then
//! crosses as one post to its inbox, which rings that core's doorbell at most once, and
//! only when it sleeps ([`super::mesh`]). The receiving loop drains its inbox every turn
//! ([`Core::drain_inbox`]).
//!
//! Atomic multi-core commands (RENAME across cores, MSETNX, ...) lock every shard they
//! touch, in ascending core order (so two of them can never deadlock), with a transaction
//! id. While a shard is locked, batches without that id wait in arrival order; `Resp`s are
//! never held back, so a coordinator always hears its answers.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_ring::Router;
use bytes::Bytes;

use super::mesh::Mesh;
use super::oneshot;
use super::wake::{self, Timers};
use crate::clock;
use crate::command::CommandSpec;
use crate::exec::fence::{Fence, Parked, ReplyTo};
use crate::exec::gets::{Gets, Got};
use crate::memcache::{execute, McCtx, McOp, McResult};
use crate::prefetch;
use crate::reply::Reply;
use crate::shard::Shard;

/// Unix time in milliseconds.
/// How often each core runs its active expiry cycle (Redis's default `hz 10`).
pub const EXPIRE_TICK: Duration = Duration::from_millis(100);
/// Slab positions one expiry slice walks before it may yield.
pub const EXPIRE_SLICE: usize = 4096;
/// CPU one expiry tick may spend at most.
pub const EXPIRE_BUDGET: Duration = Duration::from_millis(25);

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A function run on a shard; crosses cores, so it must be `Send`.
pub type ShardFn = Box<dyn FnOnce(&mut Shard, u64) -> Out + Send>;

/// A function run with a whole core: its shard (not borrowed; borrow it if needed) and
/// what a layer above the engine attached to it ([`Core::attach`]). Crosses cores, so it
/// must be `Send`.
pub type CoreFn = Box<dyn FnOnce(&Core, u64) -> Out + Send>;

/// Where a command's reply goes when the core that runs it answers the client itself
/// ([`Job::Answer`]): the client's socket (the connection's core keeps it open until the
/// batch's response is back) and the RESP version to encode in.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub fd: std::os::fd::RawFd,
    pub proto: u8,
}

/// Answers a client from the core that ran its command: records the command in that
/// core's statistics, encodes the reply and sends it on the socket without waiting, and
/// returns what the socket did not take (empty when all of it went). Provided by the
/// layer that owns connections ([`set_answerer`]).
pub type AnswerFn = fn(&Core, &'static CommandSpec, &Reply, u64, Answer) -> Vec<u8>;

static ANSWERER: std::sync::OnceLock<AnswerFn> = std::sync::OnceLock::new();

/// Installs the function that runs [`Job::Answer`]s (once per process; later calls are
/// ignored). Without one, a `Job::Answer` runs as a [`Job::Cmd`].
pub fn set_answerer(f: AnswerFn) {
    let _ = ANSWERER.set(f);
}

/// One unit of work for a shard.
pub enum Job {
    /// A command whose arity was checked; `args[0]` is the name.
    Cmd(&'static CommandSpec, Vec<Bytes>),
    /// A command whose reply this core sends to the client itself ([`AnswerFn`]): the
    /// client's core need not wake for it (its response is posted lazily, see
    /// [`super::mesh`]). Gives [`Out::Answered`].
    Answer(&'static CommandSpec, Vec<Bytes>, Answer),
    /// GETs queued in a row, packed ([`crate::exec::gets`]). Gives [`Out::Got`].
    Gets(Gets),
    /// A memcached operation, run with the asking core's clock and limits.
    Mc(McOp, McCtx),
    /// Any work on the shard (cross-core transaction steps, all-core statistics).
    Call(ShardFn),
    /// Any work with the whole core, for a layer above the engine that must reach its own
    /// per-core state on that core ([`Core::attached`]): net's clients and counters.
    OnCore(CoreFn),
    /// Flush the shard now, or at this unix-ms time if it is later (memcached's delayed
    /// `flush_all`): the flush then runs on this core's timer, through the write path.
    FlushAt(u64),
    /// Take this shard's lock for the batch's transaction (sent alone in its batch).
    Lock,
    /// Release this shard's lock held by the batch's transaction.
    Unlock,
}

/// The result of one [`Job`].
pub enum Out {
    Reply(Reply),
    /// What a [`Job::Cmd`] gives back: its reply, how long it ran (in [`clock`] ticks,
    /// measured on the core that ran it) and its arguments, returned to the caller for
    /// the slow log (a move, not a copy).
    ///
    /// [`clock`]: crate::clock
    Cmd {
        reply: Reply,
        ticks: u64,
        args: Vec<Bytes>,
    },
    /// What a [`Job::Answer`] gives back: like [`Out::Cmd`] (the command is counted in
    /// the statistics of the core that ran it already), and the encoded reply's bytes the
    /// socket did not take, which the client's core sends before anything else.
    Answered {
        reply: Reply,
        ticks: u64,
        args: Vec<Bytes>,
        unsent: Vec<u8>,
    },
    /// What a [`Job::Gets`] gives back: every GET's reply and ticks.
    Got(Got),
    /// What a [`Job::Mc`] gives back.
    Mc(McResult),
    /// What a [`Job::Call`] or [`Job::OnCore`] computed; the caller that built the call
    /// reads it back as the type it built it with ([`Out::into_value`]).
    Value(Box<dyn Any + Send>),
}

impl Out {
    /// The reply inside, or an internal error reply if this was not a reply.
    pub fn into_reply(self) -> Reply {
        match self {
            Out::Reply(r) | Out::Cmd { reply: r, .. } | Out::Answered { reply: r, .. } => r,
            Out::Got(_) | Out::Mc(_) | Out::Value(_) => {
                Reply::err("ERR internal: expected a reply")
            }
        }
    }

    /// The value inside, downcast to `T`.
    pub fn into_value<T: 'static>(self) -> Option<T> {
        match self {
            Out::Value(v) => v.downcast::<T>().ok().map(|b| *b),
            Out::Reply(_) | Out::Cmd { .. } | Out::Answered { .. } | Out::Got(_) | Out::Mc(_) => {
                None
            }
        }
    }
}

/// What travels over the mesh.
pub enum Msg {
    Req { id: u64, txn: u64, jobs: Vec<Job> },
    Resp { id: u64, outs: Vec<Out> },
}

/// Transaction id meaning "no transaction".
pub const NO_TXN: u64 = 0;

struct Deferred {
    from: usize,
    id: u64,
    txn: u64,
    jobs: Vec<Job>,
}

/// A ring owed to a destination core ([`Core::flush_outbox_owing`]): none, for lazy
/// mail only, or for mail that must wake it.
const OWED_NONE: u8 = 0;
const OWED_LAZY: u8 = 1;
const OWED_URGENT: u8 = 2;

/// Everything one core owns. Lives in an `Rc` on its executor; never crosses threads.
pub struct Core {
    pub id: usize,
    pub cores: usize,
    pub shard: RefCell<Shard>,
    /// Where keys live: which core, and (in a cluster) which node.
    pub router: Router,
    /// This core itself, for work a job schedules for later (a delayed flush).
    this: Weak<Core>,
    mesh: Arc<Mesh<Msg>>,
    /// Messages of this turn, per destination core.
    outbox: RefCell<Vec<Vec<Msg>>>,
    /// Per destination core: whether this turn's messages include one that must wake it
    /// (anything but a response whose clients were all answered here).
    urgent: RefCell<Vec<bool>>,
    /// Per destination core: a ring this core owes it for mail posted while it slept
    /// ([`Core::flush_outbox_owing`]): `OWED_NONE`, `OWED_LAZY` or `OWED_URGENT`.
    owed: RefCell<Vec<u8>>,
    /// Loop turns since the oldest ring owed ([`Core::ring_owed_after`]).
    owed_turns: Cell<u32>,
    /// This core's timers; its event loop drives them.
    pub timers: Timers,
    next_id: Cell<u64>,
    /// The time this core's loop read at the start of its current turn (unix ms; 0
    /// before the first turn).
    turn: Cell<u64>,
    pending: RefCell<HashMap<u64, Waiting>>,
    /// Responses to [`Core::call_for_loop`], for the event loop to take.
    loop_replies: RefCell<Vec<LoopReply>>,
    /// The transaction holding this shard's lock, or [`NO_TXN`].
    lock: Cell<u64>,
    deferred: RefCell<VecDeque<Deferred>>,
    lock_waiters: RefCell<Vec<Waker>>,
    finished: Arc<AtomicUsize>,
    /// Per-core state of the layers above the engine, at most one value per type
    /// ([`Core::attach`]).
    attached: RefCell<Vec<Rc<dyn Any>>>,
    /// MIGRATE's fences on this core's keys and the batches parked behind them
    /// ([`crate::exec::fence`]).
    pub fence: Fence,
}

/// A response to [`Core::call_for_loop`]: the caller's tag, the core that ran the jobs
/// and their outputs.
pub struct LoopReply {
    pub tag: u64,
    pub from: usize,
    pub outs: Vec<Out>,
}

/// Who waits for the response to a request this core sent.
enum Waiting {
    /// A task, through a oneshot channel.
    Task(oneshot::Sender<Vec<Out>>),
    /// The event loop, which takes it by this tag ([`Core::take_loop_replies`]).
    Loop(u64),
}

/// How running a batch went.
enum Ran {
    Done(Vec<Out>),
    /// Another transaction holds the lock: the jobs, untouched.
    Locked(Vec<Job>),
    /// Stopped at a command on a fenced key: the jobs left (that one first) and the
    /// outputs so far.
    Fenced(VecDeque<Job>, Vec<Out>),
}

impl Core {
    pub(super) fn new(
        id: usize,
        cores: usize,
        mesh: Arc<Mesh<Msg>>,
        finished: Arc<AtomicUsize>,
    ) -> Rc<Core> {
        Rc::new_cyclic(|this| Core {
            id,
            cores,
            shard: RefCell::new(Shard::new(id)),
            router: Router::standalone(id, cores),
            this: this.clone(),
            mesh,
            outbox: RefCell::new((0..cores).map(|_| Vec::new()).collect()),
            urgent: RefCell::new(vec![false; cores]),
            owed: RefCell::new(vec![OWED_NONE; cores]),
            owed_turns: Cell::new(0),
            timers: Timers::default(),
            next_id: Cell::new(1),
            turn: Cell::new(0),
            pending: RefCell::new(HashMap::new()),
            loop_replies: RefCell::new(Vec::new()),
            lock: Cell::new(NO_TXN),
            deferred: RefCell::new(VecDeque::new()),
            lock_waiters: RefCell::new(Vec::new()),
            finished,
            attached: RefCell::new(Vec::new()),
            fence: Fence::default(),
        })
    }

    /// Attaches `value` to this core, in place of an earlier value of the same type.
    ///
    /// This is where a layer above the engine keeps its per-core state (net keeps its
    /// `NetCore` here: the core's clients, command counters, slow log), so that a job that
    /// runs on this core for another core ([`Job::OnCore`], [`crate::exec::with_every_core`])
    /// reaches this core's state, not the sender's. Attachments are dropped when the core
    /// finishes (after every core's loop has ended), so a value may hold its `Rc<Core>`.
    pub fn attach<T: Any>(&self, value: Rc<T>) {
        let mut attached = self.attached.borrow_mut();
        attached.retain(|v| !v.is::<T>());
        attached.push(value);
    }

    /// The value of type `T` attached to this core, if any.
    pub fn attached<T: Any>(&self) -> Option<Rc<T>> {
        let attached = self.attached.borrow();
        let value = attached.iter().find(|v| v.is::<T>())?;
        value.clone().downcast::<T>().ok()
    }

    /// This core's own `Rc`, for work it schedules for later.
    pub fn this(&self) -> Option<Rc<Core>> {
        self.this.upgrade()
    }

    /// Reads the clock and keeps it as this core's time for the current loop turn: one
    /// clock read per turn instead of one per command.
    pub fn tick(&self) -> u64 {
        let now = now_ms();
        self.turn.set(now);
        now
    }

    /// This core's time for the current loop turn (the real clock before the first tick).
    pub fn turn_now(&self) -> u64 {
        match self.turn.get() {
            0 => now_ms(),
            now => now,
        }
    }

    /// Whether the local shard can run work outside any transaction right now.
    pub fn is_unlocked(&self) -> bool {
        self.lock.get() == NO_TXN
    }

    /// A new transaction id, unique across cores.
    pub fn new_txn(&self) -> u64 {
        ((self.id as u64 + 1) << 48) | self.next_request_id()
    }

    fn next_request_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1) & ((1 << 48) - 1));
        id
    }

    /// Runs `jobs` on the shard of `core` (this one or another) within `txn` (or
    /// [`NO_TXN`]) and returns their outputs in order.
    pub async fn call(self: &Rc<Self>, core: usize, txn: u64, jobs: Vec<Job>) -> Vec<Out> {
        if core == self.id {
            let mut jobs = jobs;
            loop {
                match self.try_run(txn, jobs) {
                    Ran::Done(outs) => return outs,
                    Ran::Locked(back) => {
                        jobs = back;
                        self.unlocked().await;
                    }
                    Ran::Fenced(jobs, outs) => {
                        let (tx, rx) = oneshot::channel();
                        self.park(txn, jobs, outs, ReplyTo::Local(tx));
                        return rx.await;
                    }
                }
            }
        }
        let id = self.next_request_id();
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, Waiting::Task(tx));
        self.send(core, Msg::Req { id, txn, jobs });
        rx.await
    }

    /// Sends `jobs` to another core for the event loop itself, with no task: the
    /// response waits under `tag` until the loop takes it ([`Core::take_loop_replies`]),
    /// in the turn that drained it.
    pub fn call_for_loop(&self, core: usize, jobs: Vec<Job>, tag: u64) {
        debug_assert_ne!(core, self.id, "a loop call goes to another core");
        let id = self.next_request_id();
        self.pending.borrow_mut().insert(id, Waiting::Loop(tag));
        self.send(
            core,
            Msg::Req {
                id,
                txn: NO_TXN,
                jobs,
            },
        );
    }

    /// Moves the responses to [`Core::call_for_loop`] received so far into `out`, with
    /// their tags.
    pub fn take_loop_replies(&self, out: &mut Vec<LoopReply>) {
        let mut replies = self.loop_replies.borrow_mut();
        if !replies.is_empty() {
            out.append(&mut replies);
        }
    }

    /// An id for a reply that comes from outside the cores: a helper thread (a
    /// connection to another node, say) posts it to this core's inbox as a
    /// [`Msg::Resp`] with this id, through [`Core::mesh_handle`], and the receiver
    /// resolves on this core with the outputs posted.
    pub fn expect_reply(&self) -> (u64, oneshot::Receiver<Vec<Out>>) {
        let id = self.next_request_id();
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, Waiting::Task(tx));
        (id, rx)
    }

    /// Resolves reply `id` of this core ([`Core::expect_reply`]) with `outs` at once,
    /// without a trip through the mesh: for what the event loop itself answers (its
    /// connections to other nodes).
    pub fn resolve_reply(&self, id: u64, outs: Vec<Out>) {
        self.on_message(self.id, Msg::Resp { id, outs });
    }

    /// The mesh, for a helper thread that posts replies ([`Core::expect_reply`]).
    pub fn mesh_handle(&self) -> Arc<Mesh<Msg>> {
        self.mesh.clone()
    }

    /// Resolves once the local shard's lock is free.
    pub fn unlocked(self: &Rc<Self>) -> impl Future<Output = ()> {
        Unlocked { core: self.clone() }
    }

    fn send(&self, to: usize, msg: Msg) {
        self.urgent.borrow_mut()[to] = true;
        self.outbox.borrow_mut()[to].push(msg);
    }

    /// Sends a batch's response; lazily when every job of it answered its client here
    /// in full, since then nothing waits for it but the connection's next request.
    fn respond(&self, to: usize, id: u64, outs: Vec<Out>) {
        let lazy = !outs.is_empty()
            && outs
                .iter()
                .all(|o| matches!(o, Out::Answered { unsent, .. } if unsent.is_empty()));
        if lazy {
            self.outbox.borrow_mut()[to].push(Msg::Resp { id, outs });
        } else {
            self.send(to, Msg::Resp { id, outs });
        }
    }

    /// Posts this turn's messages, one post per destination core. The event loop calls
    /// this at the end of every turn.
    pub fn flush_outbox(&self) {
        for to in 0..self.cores {
            let batch = std::mem::take(&mut self.outbox.borrow_mut()[to]);
            if !batch.is_empty() {
                let urgent = std::mem::take(&mut self.urgent.borrow_mut()[to]);
                self.mesh.post_with(self.id, to, batch, !urgent);
            }
        }
    }

    /// Like [`Core::flush_outbox`], but a core that sleeps is not rung at once: the ring
    /// is owed, and given by [`Core::ring_owed`], which the event loop calls before it
    /// sleeps and after a few turns ([`Core::ring_owed_after`]). A busy core's turns then
    /// share one ring per sleeping destination, and the sleeper wakes to more mail.
    pub fn flush_outbox_owing(&self) {
        for to in 0..self.cores {
            let batch = std::mem::take(&mut self.outbox.borrow_mut()[to]);
            if !batch.is_empty() {
                let urgent = std::mem::take(&mut self.urgent.borrow_mut()[to]);
                if self.mesh.post_owing(self.id, to, batch, !urgent) {
                    let mut owed = self.owed.borrow_mut();
                    let was = owed[to];
                    owed[to] = was.max(if urgent { OWED_URGENT } else { OWED_LAZY });
                }
            }
        }
    }

    /// Gives every ring this core owes ([`Core::flush_outbox_owing`]). True if any was
    /// owed.
    pub fn ring_owed(&self) -> bool {
        self.owed_turns.set(0);
        let mut owed = self.owed.borrow_mut();
        let mut any = false;
        for (to, o) in owed.iter_mut().enumerate() {
            if *o != OWED_NONE {
                any = true;
                self.mesh.ring_owed(to, *o == OWED_LAZY);
                *o = OWED_NONE;
            }
        }
        any
    }

    /// Counts a loop turn; gives the rings owed once `turns` turns have passed since
    /// the first of them, so that a core that stays busy delays its peers' mail by at
    /// most that many turns.
    pub fn ring_owed_after(&self, turns: u32) {
        if self.owed.borrow().iter().all(|&o| o == OWED_NONE) {
            return;
        }
        let n = self.owed_turns.get() + 1;
        if n >= turns {
            self.ring_owed();
        } else {
            self.owed_turns.set(n);
        }
    }

    /// Handles every message waiting in this core's inbox: runs requests on the shard
    /// (their replies go to the outbox) and hands replies to the tasks awaiting them.
    /// True if there was any.
    pub fn drain_inbox(&self) -> bool {
        let mut mail = Vec::new();
        self.mesh.take(self.id, &mut mail);
        let any = !mail.is_empty();
        for (from, msg) in mail {
            self.on_message(from, msg);
        }
        any
    }

    /// The mesh this core belongs to (its doorbell, the sleep handshake).
    pub fn mesh(&self) -> &Mesh<Msg> {
        &self.mesh
    }

    /// Runs a batch if the lock allows it; gives the jobs back otherwise.
    fn try_run(&self, txn: u64, jobs: Vec<Job>) -> Ran {
        let held = self.lock.get();
        if held != NO_TXN && held != txn {
            return Ran::Locked(jobs);
        }
        let outs = Vec::with_capacity(jobs.len());
        self.run_jobs(txn, jobs.into(), outs)
    }

    /// Whether a command outside a transaction names a key MIGRATE fences on this core.
    /// The hot path's one test while no MIGRATE runs: a `Cell` load.
    fn fenced(&self, txn: u64, spec: &'static CommandSpec, args: &[Bytes], now: u64) -> bool {
        txn == NO_TXN && self.fence.is_active() && self.fence.blocks(spec, args, now)
    }

    /// Runs a command on this core's shard; with `answer`, also answers its client from
    /// here ([`Job::Answer`]).
    fn command(
        &self,
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
        answer: Option<Answer>,
        now: u64,
    ) -> Out {
        let start = clock::ticks();
        let reply = crate::exec::plan::execute(
            &self.router,
            &mut self.shard.borrow_mut(),
            spec,
            &args,
            now,
        );
        let ticks = clock::since(start);
        match (answer, ANSWERER.get()) {
            (Some(to), Some(answer_fn)) => Out::Answered {
                unsent: answer_fn(self, spec, &reply, ticks, to),
                reply,
                ticks,
                args,
            },
            _ => Out::Cmd { reply, ticks, args },
        }
    }

    /// Runs `jobs` in order after the outputs `outs` of those before them, until a
    /// command outside a transaction names a fenced key ([`crate::exec::fence`]).
    fn run_jobs(&self, txn: u64, mut jobs: VecDeque<Job>, mut outs: Vec<Out>) -> Ran {
        // This core's turn time: one clock read per loop turn, not one per batch.
        let now = self.turn_now();
        let mut released = false;
        while let Some(job) = jobs.pop_front() {
            prefetch_ahead(&jobs, &self.shard.borrow());
            outs.push(match job {
                Job::Cmd(spec, args) => {
                    if self.fenced(txn, spec, &args, now) {
                        jobs.push_front(Job::Cmd(spec, args));
                        return Ran::Fenced(jobs, outs);
                    }
                    self.command(spec, args, None, now)
                }
                Job::Answer(spec, args, answer) => {
                    if self.fenced(txn, spec, &args, now) {
                        jobs.push_front(Job::Answer(spec, args, answer));
                        return Ran::Fenced(jobs, outs);
                    }
                    self.command(spec, args, Some(answer), now)
                }
                Job::Gets(gets) => {
                    if txn == NO_TXN
                        && self.fence.is_active()
                        && gets.keys().any(|key| self.fence.holds(key, now))
                    {
                        jobs.push_front(Job::Gets(gets));
                        return Ran::Fenced(jobs, outs);
                    }
                    Out::Got(gets.run(&self.router, &mut self.shard.borrow_mut(), now))
                }
                Job::Mc(op, ctx) => {
                    if txn == NO_TXN && self.fence.is_active() && self.fence.holds(op.key(), now) {
                        jobs.push_front(Job::Mc(op, ctx));
                        return Ran::Fenced(jobs, outs);
                    }
                    Out::Mc(execute(&mut self.shard.borrow_mut(), op, &ctx))
                }
                Job::Call(f) => f(&mut self.shard.borrow_mut(), now),
                Job::OnCore(f) => f(self, now),
                Job::FlushAt(at) => {
                    self.flush_at(at, now);
                    Out::Reply(Reply::Ok)
                }
                Job::Lock => {
                    self.lock.set(txn);
                    Out::Reply(Reply::Ok)
                }
                Job::Unlock => {
                    if self.lock.get() == txn {
                        self.lock.set(NO_TXN);
                        released = true;
                    }
                    Out::Reply(Reply::Ok)
                }
            });
        }
        if released {
            self.after_unlock();
        }
        Ran::Done(outs)
    }

    /// Keeps a batch stopped at a fenced key until [`Core::resume_parked`].
    fn park(&self, txn: u64, jobs: VecDeque<Job>, outs: Vec<Out>, to: ReplyTo) {
        self.fence.parked.borrow_mut().push(Parked {
            txn,
            jobs,
            outs,
            to,
        });
    }

    /// Runs on the parked batches (in the order they parked) after a fence was lifted;
    /// one that meets another fenced key parks again. Waits while a transaction holds
    /// the lock ([`Core::after_unlock`] calls it again).
    pub fn resume_parked(&self) {
        if !self.is_unlocked() || self.fence.parked.borrow().is_empty() {
            return;
        }
        let parked = std::mem::take(&mut *self.fence.parked.borrow_mut());
        for p in parked {
            if !self.is_unlocked() {
                self.fence.parked.borrow_mut().push(p);
                continue;
            }
            match self.run_jobs(p.txn, p.jobs, p.outs) {
                Ran::Done(outs) => match p.to {
                    ReplyTo::Remote { from, id } => self.send(from, Msg::Resp { id, outs }),
                    ReplyTo::Local(tx) => tx.send(outs),
                },
                Ran::Fenced(jobs, outs) => self.park(p.txn, jobs, outs, p.to),
                Ran::Locked(_) => unreachable!("run_jobs does not check the lock"),
            }
        }
    }

    /// Runs the batches that waited for the lock, in arrival order, until one takes the
    /// lock again; then wakes local waiters.
    fn after_unlock(&self) {
        loop {
            if !self.is_unlocked() {
                break;
            }
            let Some(d) = self.deferred.borrow_mut().pop_front() else {
                break;
            };
            match self.try_run(d.txn, d.jobs) {
                Ran::Done(outs) => self.send(d.from, Msg::Resp { id: d.id, outs }),
                Ran::Locked(jobs) => {
                    self.deferred
                        .borrow_mut()
                        .push_front(Deferred { jobs, ..d });
                    break;
                }
                Ran::Fenced(jobs, outs) => self.park(
                    d.txn,
                    jobs,
                    outs,
                    ReplyTo::Remote {
                        from: d.from,
                        id: d.id,
                    },
                ),
            }
        }
        self.resume_parked();
        if self.is_unlocked() {
            let waiters = std::mem::take(&mut *self.lock_waiters.borrow_mut());
            for w in waiters {
                wake::wake(w);
            }
        }
    }

    fn on_message(&self, from: usize, msg: Msg) {
        match msg {
            Msg::Resp { id, outs } => {
                let waiting = self.pending.borrow_mut().remove(&id);
                match waiting {
                    Some(Waiting::Task(tx)) => tx.send(outs),
                    Some(Waiting::Loop(tag)) => {
                        self.loop_replies
                            .borrow_mut()
                            .push(LoopReply { tag, from, outs })
                    }
                    None => {}
                }
            }
            Msg::Req { id, txn, jobs } => {
                // Keep each peer's order: once anything waits, later batches wait too.
                if !self.deferred.borrow().is_empty() && self.lock.get() != txn {
                    self.deferred.borrow_mut().push_back(Deferred {
                        from,
                        id,
                        txn,
                        jobs,
                    });
                    return;
                }
                match self.try_run(txn, jobs) {
                    Ran::Done(outs) => self.respond(from, id, outs),
                    Ran::Locked(jobs) => self.deferred.borrow_mut().push_back(Deferred {
                        from,
                        id,
                        txn,
                        jobs,
                    }),
                    Ran::Fenced(jobs, outs) => {
                        self.park(txn, jobs, outs, ReplyTo::Remote { from, id })
                    }
                }
            }
        }
    }

    /// Flushes the shard at `at` (unix ms): now if that has passed, else from this core's
    /// timer when it comes.
    fn flush_at(&self, at: u64, now: u64) {
        if at <= now {
            self.shard.borrow_mut().flush();
            return;
        }
        let Some(core) = self.this.upgrade() else {
            return;
        };
        wake::spawn(async move {
            core.timers.sleep_until(at).await;
            core.shard.borrow_mut().flush();
        });
    }

    /// Starts the shard's active expiry: every [`EXPIRE_TICK`] a bounded walk over the
    /// store reclaims expired keys, like Redis's active expire cycle.
    ///
    /// Each tick walks a twentieth of the slab (so every key is looked at within about
    /// two seconds), in slices of [`EXPIRE_SLICE`] positions with a yield between them
    /// so that connections are served in between. While more than a tenth of the keys
    /// with a TTL that a slice met had expired, it keeps going, up to [`EXPIRE_BUDGET`]
    /// of CPU per tick (a quarter of the tick, Redis's slow-cycle share).
    pub(super) fn start_active_expiry(self: Rc<Self>) {
        wake::spawn(async move {
            loop {
                let next = now_ms() + EXPIRE_TICK.as_millis() as u64;
                self.timers.sleep_until(next).await;
                if self.shard.borrow().expires() == 0 {
                    continue;
                }
                let started = std::time::Instant::now();
                let mut walked = 0;
                let target = self.shard.borrow().store().slab_len() / 20;
                loop {
                    let (volatile, reclaimed) =
                        self.shard.borrow_mut().expire_cycle(now_ms(), EXPIRE_SLICE);
                    walked += EXPIRE_SLICE;
                    let busy = volatile > 0 && reclaimed * 10 > volatile;
                    if (walked >= target && !busy) || started.elapsed() >= EXPIRE_BUDGET {
                        break;
                    }
                    wake::yield_now().await;
                }
            }
        });
    }

    /// Marks this core finished and waits, still answering the mesh, until every core is:
    /// a connection on another core may still need this shard to answer what it read.
    pub(super) async fn finish(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
        // The event loop has ended: glommio drives this core now, so its timer serves.
        loop {
            self.tick();
            self.drain_inbox();
            self.flush_outbox();
            if self.finished.load(Ordering::Acquire) >= self.cores {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        // No job can reach this core any more: let attachments that hold it go.
        self.attached.borrow_mut().clear();
    }
}

struct Unlocked {
    core: Rc<Core>,
}

impl Future for Unlocked {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.core.is_unlocked() {
            Poll::Ready(())
        } else {
            self.core.lock_waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// How many jobs ahead [`run_jobs`](Core::run_jobs) asks for a command's argument list,
/// (one job nearer) for its key's bytes, and (one nearer again) for the table group its
/// lookup reads first.
const ARGS_AHEAD: usize = 3;
const KEY_AHEAD: usize = 2;
const GROUP_AHEAD: usize = 1;

/// Asks the cache for what the next jobs of a batch will read first. A batch comes from
/// another core, which wrote every job's argument list (one heap block each) and read
/// its key off the socket: each is a cache miss here, paid one after the other, and a
/// command's first touch of them was the single most sampled instruction of a remote
/// GET. Asked for a job or two ahead, they arrive while the job before runs. `jobs` are
/// the jobs after the one about to run.
#[inline]
fn prefetch_ahead(jobs: &VecDeque<Job>, shard: &Shard) {
    if let Some(Job::Cmd(_, args) | Job::Answer(_, args, _)) = jobs.get(ARGS_AHEAD - 1) {
        let list = args.as_ptr().cast::<u8>();
        prefetch::line(list);
        // The key (`args[1]`) ends in the next cache line when the list does not start
        // at one; a prefetch never faults, whatever the address.
        prefetch::line(list.wrapping_add(2 * std::mem::size_of::<Bytes>() - 1));
    }
    if let Some(Job::Cmd(_, args) | Job::Answer(_, args, _)) = jobs.get(KEY_AHEAD - 1) {
        if let Some(key) = args.get(1) {
            prefetch::line(key.as_ptr());
        }
    }
    if let Some(Job::Cmd(spec, args) | Job::Answer(spec, args, _)) = jobs.get(GROUP_AHEAD - 1) {
        // Only a key command's first key is looked up first (hashing it is the price).
        if spec.first_key == 1 {
            if let Some(key) = args.get(1) {
                shard.store().prefetch(key);
            }
        }
    }
}
