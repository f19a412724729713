//! Replication state every core and the link thread share ([`Repl`], in
//! [`crate::config::Shared`]), and what moves between them. [`crate::repl`] runs
//! replication with it.

use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use baton_replication::journal::DEFAULT_BACKLOG_SIZE;
use baton_replication::{Journal, ReplId, ReplIds};

/// What a replica asked for on a flow connection (FLOWSYNC's arguments).
#[derive(Debug, Clone)]
pub struct FeedRequest {
    pub shard: usize,
    /// The replication id and offset the replica holds for this flow, if any.
    pub asked: Option<(ReplId, u64)>,
    /// The replica's run id and where it listens (INFO's `slaveN`).
    pub replica_id: String,
    pub ip: String,
    pub port: u16,
}

/// What a core needs to drive the flow of primary shard `shard`.
#[derive(Debug, Clone)]
pub struct ApplyStart {
    pub shard: usize,
    /// The journal offset this replica holds for the flow.
    pub offset: u64,
    /// The link generation the flow belongs to; a later one closes it.
    pub generation: u64,
}

/// Redis's default hard output limit for replicas (`client-output-buffer-limit replica
/// 256mb 64mb 60`).
pub const DEFAULT_REPLICA_HARD_LIMIT: u64 = 256 << 20;

/// Each shard's part of `repl-backlog-size` (a total), never under 16 KiB.
pub fn backlog_per_shard(total: u64, cores: usize) -> usize {
    ((total / cores.max(1) as u64).min(usize::MAX as u64) as usize).max(16 * 1024)
}

/// Who this server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Primary,
    /// A replica of this primary.
    Replica {
        host: String,
        port: u16,
    },
}

/// A flow socket on its way to the core that will drive it.
pub enum FlowStart {
    /// Primary side: a replica's flow connection for this core's shard.
    Feed(FeedRequest, OwnedFd),
    /// Replica side: the flow of primary shard `shard`, after its FLOWSYNC was sent.
    Apply(ApplyStart, OwnedFd),
    /// A client connection handed over by the old process of a handoff.
    Adopt(Box<crate::session::Adopted>),
    /// New process of a handoff: a link the old process opened to forward the requests
    /// on the shards it cut over ([`crate::handoff::cutover`]).
    HandoffLink(OwnedFd),
}

/// One replica as the primary sees it (INFO's `slaveN`, WAIT).
#[derive(Debug, Clone)]
pub struct ReplicaInfo {
    /// The replica's run id: one entry per replica, whatever its flows.
    pub id: String,
    pub ip: String,
    pub port: u16,
    /// Per primary shard: the offset the replica acknowledged (0 until it does).
    pub acked: Vec<u64>,
    /// Per primary shard: whether that flow is connected, and still in its snapshot.
    pub connected: Vec<bool>,
    pub loading: Vec<bool>,
    pub last_ack_ms: u64,
    /// Per primary shard: keys and bytes of the full sync's snapshot sent so far.
    pub copied_keys: Vec<u64>,
    pub copied_bytes: Vec<u64>,
    /// Flows started in the sync being counted, whether any of them is a full sync, and
    /// whether the replica asked to resume (INFO's `sync_*` counters).
    pub pending: usize,
    pub any_full: bool,
    pub asked_partial: bool,
}

impl ReplicaInfo {
    /// Redis's states: `wait_bgsave` until every flow is up, `send_bulk` while any
    /// snapshot is being sent, then `online`.
    pub fn state(&self) -> &'static str {
        if !self.connected.iter().all(|c| *c) {
            "wait_bgsave"
        } else if self.loading.iter().any(|l| *l) {
            "send_bulk"
        } else {
            "online"
        }
    }

    pub fn offset(&self) -> u64 {
        self.acked.iter().sum()
    }
}

/// The replica's view of its link (INFO's `master_*` fields).
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// Whether every flow is connected and past its snapshot.
    pub up: bool,
    /// Whether a full sync is still loading on some flow.
    pub sync_in_progress: bool,
    /// When the link went down (unix ms); 0 while up or before it ever was.
    pub down_since_ms: u64,
    pub last_io_ms: u64,
    /// The primary's replication id and core count, from its hello.
    pub replid: Option<ReplId>,
    pub primary_cores: usize,
    /// Per primary flow: the journal offset applied (what a resync asks for), and what
    /// was received.
    pub offsets: Vec<u64>,
    /// Flows of the current link still open on some core.
    pub live_flows: usize,
    /// A flow broke: the link thread starts over.
    pub broken: bool,
    /// The link thread that is current (each REPLICAOF starts a new one).
    pub thread: u64,
    /// The flows that are current: a flow of another generation is closed.
    pub generation: u64,
    /// Per primary flow: the replication id its last hello came with (what a resync of
    /// that flow asks under), whether it is connected, and whether its snapshot is
    /// still loading.
    pub flow_ids: Vec<Option<ReplId>>,
    pub connected: Vec<bool>,
    pub loading: Vec<bool>,
    /// Per primary flow: the offset every core of this replica has applied, once the
    /// flow's snapshot (if any) is applied on every core too; `None` before that. A
    /// handoff waits on it.
    pub settled: Vec<Option<u64>>,
}

/// What a primary counts about syncs (INFO stats).
#[derive(Debug, Default)]
pub struct SyncStats {
    pub full: AtomicU64,
    pub partial_ok: AtomicU64,
    pub partial_err: AtomicU64,
}

/// Replication state shared by every core and the link thread.
pub struct Repl {
    pub cores: usize,
    /// One journal per shard, created on the shard's own core when it first needs one (a
    /// replica connected, or this server became a replica): no encoding cost before.
    journals: Vec<OnceLock<Journal>>,
    pub ids: Mutex<ReplIds>,
    role: Mutex<Role>,
    /// Whether `role` is a replica, readable without a lock on every write.
    replica: AtomicBool,
    /// Bumped on every role or link change; each core's loop compares it with the value
    /// it last acted on (journals, replica mode, stale flows).
    pub epoch: AtomicU64,
    pub link: Mutex<LinkState>,
    pub replicas: Mutex<Vec<ReplicaInfo>>,
    /// Old process of a handoff: the run id of the new process, which copies the shards
    /// as a replica would. It is not a replica to clients: WAIT does not count it, and
    /// INFO, ROLE and FAILOVER do not list it (after the handoff it *is* this server).
    pub handoff_copy: Mutex<Option<String>>,
    pub stats: SyncStats,
    /// Per core: flow sockets waiting for that core's loop, and whether there are any.
    inbox: Vec<Mutex<Vec<FlowStart>>>,
    inbox_ready: Vec<AtomicBool>,
    /// Each core's doorbell, to wake its loop.
    doorbells: Mutex<Vec<Option<RawFd>>>,
    pub read_only: AtomicBool,
    pub masterauth: Mutex<Option<String>>,
    /// `repl-backlog-size`: the total over all shards.
    pub backlog_size: AtomicU64,
    pub priority: AtomicU64,
    pub announce_ip: Mutex<Option<String>>,
    pub announce_port: AtomicU64,
    /// Redis's `master_failover_state`.
    pub failover_state: Mutex<&'static str>,
    /// `client-output-buffer-limit replica`'s hard limit (0: none): what a backlog keeps
    /// beyond its size for a slow replica, split over the shards.
    pub replica_hard_limit: AtomicU64,
    /// FAILOVER paused writes: they wait until it ends.
    pub writes_paused: AtomicBool,
    /// Bumped by `CLIENT KILL TYPE replica`: each core closes the replica flows it feeds.
    pub feed_kills: AtomicU64,
}

/// A fresh replication id: 40 random hex characters.
pub fn new_replid() -> ReplId {
    let id = crate::ids::new_run_id();
    let mut out = [b'0'; 40];
    out.copy_from_slice(&id.as_bytes()[..40]);
    out
}

impl Repl {
    pub fn new(cores: usize) -> Repl {
        Repl {
            cores,
            journals: (0..cores).map(|_| OnceLock::new()).collect(),
            ids: Mutex::new(ReplIds::new(new_replid())),
            role: Mutex::new(Role::Primary),
            replica: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            link: Mutex::new(LinkState::default()),
            replicas: Mutex::new(Vec::new()),
            handoff_copy: Mutex::new(None),
            stats: SyncStats::default(),
            inbox: (0..cores).map(|_| Mutex::new(Vec::new())).collect(),
            inbox_ready: (0..cores).map(|_| AtomicBool::new(false)).collect(),
            doorbells: Mutex::new(vec![None; cores]),
            read_only: AtomicBool::new(true),
            masterauth: Mutex::new(None),
            backlog_size: AtomicU64::new(DEFAULT_BACKLOG_SIZE as u64),
            priority: AtomicU64::new(100),
            announce_ip: Mutex::new(None),
            announce_port: AtomicU64::new(0),
            failover_state: Mutex::new("no-failover"),
            feed_kills: AtomicU64::new(0),
            writes_paused: AtomicBool::new(false),
            replica_hard_limit: AtomicU64::new(DEFAULT_REPLICA_HARD_LIMIT),
        }
    }

    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Acquire)
    }

    /// Whether a write from a client must be refused (`replica-read-only`).
    pub fn refuses_writes(&self) -> bool {
        self.is_replica() && self.read_only.load(Ordering::Relaxed)
    }

    /// Changes the role and tells every core.
    pub fn set_role(&self, role: Role) {
        let mut r = lock(&self.role);
        self.replica
            .store(matches!(role, Role::Replica { .. }), Ordering::Release);
        *r = role;
        drop(r);
        self.bump();
    }

    /// Tells every core that something changed (role, link): each loop looks again.
    pub fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.ring_all();
    }

    /// Shard `shard`'s journal, if it has one yet.
    pub fn journal(&self, shard: usize) -> Option<&Journal> {
        self.journals.get(shard)?.get()
    }

    /// Shard `shard`'s journal, created if needed. The caller installs a new one as its
    /// shard's effect sink: it must run on that shard's core.
    pub fn journal_or_new(&self, shard: usize) -> (&Journal, bool) {
        let mut created = false;
        let j = self.journals[shard].get_or_init(|| {
            created = true;
            let per_shard =
                backlog_per_shard(self.backlog_size.load(Ordering::Relaxed), self.cores);
            let j = Journal::new(per_shard, 0);
            j.backlog().set_pin_limit(self.pin_limit());
            j
        });
        (j, created)
    }

    /// What each shard's backlog keeps for slow replicas beyond its size.
    fn pin_limit(&self) -> usize {
        match self.replica_hard_limit.load(Ordering::Relaxed) {
            // No limit: a replica is never dropped for its output; keep up to 1 GiB.
            0 => (1usize << 30) / self.cores,
            hard => hard as usize / self.cores,
        }
    }

    /// Applies `repl-backlog-size` and the replica output limit to the journals that
    /// exist (new ones read them when created).
    pub fn resize_backlogs(&self) {
        let per_shard = backlog_per_shard(self.backlog_size.load(Ordering::Relaxed), self.cores);
        for k in 0..self.cores {
            if let Some(j) = self.journal(k) {
                let mut b = j.backlog();
                b.set_capacity(per_shard);
                b.set_pin_limit(self.pin_limit());
            }
        }
    }

    /// Every shard's journal end (0 for a shard with none): the offsets a write is
    /// replicated at once every replica acknowledged them.
    pub fn ends(&self) -> Vec<u64> {
        (0..self.cores)
            .map(|k| self.journal(k).map_or(0, |j| j.backlog().end()))
            .collect()
    }

    /// What INFO's `master_repl_offset` and a primary's ROLE show: where this server's
    /// own history stands, summed over its flows. That is the position its own replicas
    /// acknowledge, so it is the number their `slaveN:offset` is compared with.
    ///
    /// - A primary: its journals' ends.
    /// - A replica with its primary's core count: its journals mirror the primary's flows
    ///   byte for byte under the primary's id, so this is the primary's offset it applied
    ///   (journals it has not created yet would read 0, so the applied offsets are used).
    /// - A replica with another core count: its journals are a history of its own, under
    ///   an id of its own, and its ends are that history's offset. (Redis has only one
    ///   shape, where the two numbers are the same.)
    pub fn offset(&self) -> u64 {
        if self.is_replica() {
            let l = lock(&self.link);
            if l.primary_cores == self.cores {
                return l.offsets.iter().sum();
            }
        }
        self.ends().iter().sum()
    }

    /// What a replica's `slave_repl_offset` and ROLE show: the primary's offset it
    /// applied, summed over the primary's flows, in the primary's numbers whatever this
    /// replica's core count. Sentinel compares it across a primary's replicas.
    pub fn applied_offset(&self) -> u64 {
        lock(&self.link).offsets.iter().sum()
    }

    /// Registers core `core`'s doorbell (its loop started).
    pub fn set_doorbell(&self, core: usize, fd: RawFd) {
        if let Some(slot) = lock(&self.doorbells).get_mut(core) {
            *slot = Some(fd);
        }
    }

    fn ring(&self, core: usize) {
        if let Some(Some(fd)) = lock(&self.doorbells).get(core) {
            baton_engine::runtime::mesh::ring(*fd);
        }
    }

    pub fn ring_all(&self) {
        for fd in lock(&self.doorbells).iter().flatten() {
            baton_engine::runtime::mesh::ring(*fd);
        }
    }

    /// Hands a flow socket to core `core`'s loop.
    pub fn post(&self, core: usize, start: FlowStart) {
        lock(&self.inbox[core]).push(start);
        self.inbox_ready[core].store(true, Ordering::Release);
        self.ring(core);
    }

    /// The flow sockets waiting for core `core`.
    pub fn take(&self, core: usize) -> Vec<FlowStart> {
        // A load first: every turn asks, and a write here would bounce the cache line
        // between cores.
        let ready = &self.inbox_ready[core];
        if !ready.load(Ordering::Acquire) || !ready.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.inbox[core]))
    }

    /// Closes every replica's flows (`CLIENT KILL TYPE replica`); they reconnect and
    /// resync. Returns how many replicas were connected.
    pub fn kill_feeds(&self) -> usize {
        let n = lock(&self.replicas).len();
        if n > 0 {
            self.feed_kills.fetch_add(1, Ordering::AcqRel);
            self.bump();
        }
        n
    }

    /// Breaks this replica's link to its primary (`CLIENT KILL TYPE master`); the link
    /// thread reconnects and resumes. Returns 1 if there was a link.
    pub fn kill_link(&self) -> usize {
        if !self.is_replica() {
            return 0;
        }
        let mut l = lock(&self.link);
        if l.live_flows == 0 {
            return 0;
        }
        l.broken = true;
        1
    }

    /// Changes the entry of replica `id`, if it has one.
    pub fn update_replica(&self, id: &str, change: impl FnOnce(&mut ReplicaInfo)) {
        if let Some(r) = lock(&self.replicas).iter_mut().find(|r| r.id == id) {
            change(r);
        }
    }

    /// The replicas clients see (INFO, ROLE, FAILOVER): every one but a handoff's copy.
    pub fn listed_replicas(&self) -> Vec<ReplicaInfo> {
        let copy = lock(&self.handoff_copy).clone();
        let mut replicas = lock(&self.replicas).clone();
        replicas.retain(|r| copy.as_ref() != Some(&r.id));
        replicas
    }

    /// How many replicas acknowledged every shard's offset in `targets` (a handoff's
    /// copy is not one).
    pub fn acked_count(&self, targets: &[u64]) -> usize {
        let copy = lock(&self.handoff_copy).clone();
        lock(&self.replicas)
            .iter()
            .filter(|r| copy.as_ref() != Some(&r.id))
            .filter(|r| {
                targets
                    .iter()
                    .enumerate()
                    .all(|(k, &t)| t == 0 || r.acked.get(k).is_some_and(|&a| a >= t))
            })
            .count()
    }
}

/// Locks a mutex, past a poisoning (a panicked holder left plain data behind).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
