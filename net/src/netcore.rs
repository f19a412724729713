//! [`NetCore`]: everything the net layer keeps for one core — the core's clients, its
//! command counters and slow log, its memcached counters — next to the engine's [`Core`]
//! and the server-wide [`Shared`], as the one context that the connection loop, the
//! dispatchers and the connection commands take.
//!
//! The connection loop ([`crate::event_loop::serve`]) creates it and attaches it to its
//! [`Core`] ([`Core::attach`]). Work that needs every core's numbers (INFO, CLIENT LIST and
//! KILL, SLOWLOG, CONFIG RESETSTAT, memcached `stats`) runs a job on every core
//! ([`NetCore::on_every_core`]) that finds that core's `NetCore` through the core it runs
//! on:
//!
//! ```text
//!  core 0: CLIENT LIST ─► on_every_core ─► Job::OnCore ─┬─► core 0: NetCore::of(core) ─► clients
//!                                         (mesh)        └─► core 1: NetCore::of(core) ─► clients
//! ```

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;

use baton_engine::exec::with_every_core;
use baton_engine::reply::Reply;
use baton_engine::runtime::{now_ms, Core};
use bytes::Bytes;

use crate::client::{Client, Clients};
use crate::config::Shared;
use crate::memcache::McStats;
use crate::pubsub::registry::PubSub;
use crate::stats::slowlog::SlowLog;
use crate::stats::{self, CommandStats};

/// One core's net state. Owned as `Rc<NetCore>` by the core's connection loop, its
/// slow-path tasks and its sampler, and attached to the core for jobs from other cores.
pub struct NetCore {
    pub core: Rc<Core>,
    pub shared: Arc<Shared>,
    /// This core's clients (CLIENT LIST / KILL, INFO's per-core client count).
    pub clients: Clients,
    /// What this core's connections ran (INFO commandstats, stats, ops/sec).
    pub stats: CommandStats,
    pub slowlog: SlowLog,
    /// memcached's command counters for this core's connections; `stats` sums them.
    pub memcache: RefCell<McStats>,
    /// This core's Pub/Sub subscribers and the messages its loop has yet to send them.
    pub pubsub: PubSub,
    /// The cluster view version this core's Router holds (see [`NetCore::sync_cluster`]).
    cluster_seen: Cell<u64>,
}

impl NetCore {
    /// The net state of `core`, with an empty registry and zeroed counters. CLIENT KILL
    /// rings `doorbell` (the core loop's eventfd) to have the loop close killed clients.
    pub fn new(core: Rc<Core>, shared: Arc<Shared>, doorbell: Option<RawFd>) -> NetCore {
        NetCore {
            core,
            shared,
            clients: Clients::new(doorbell),
            stats: CommandStats::new(),
            slowlog: SlowLog::default(),
            memcache: RefCell::new(McStats::default()),
            pubsub: PubSub::new(),
            cluster_seen: Cell::new(0),
        }
    }

    /// In cluster mode, installs the cluster's current routing view in this core's
    /// Router when it changed since the last call: one atomic load when it did not.
    #[inline]
    pub fn sync_cluster(&self) {
        if let Some(cluster) = self.shared.cluster.get() {
            let version = cluster.version();
            if version != self.cluster_seen.get() {
                self.core.router.set_cluster(Some(cluster.view()));
                self.cluster_seen.set(version);
            }
        }
    }

    /// Makes `nc` the net state its core's jobs find ([`NetCore::of`]).
    pub fn attach(nc: &Rc<NetCore>) {
        nc.core.attach(nc.clone());
    }

    /// The net state attached to `core`: that core's, on whichever core asks. `None`
    /// before the core's loop has started.
    pub fn of(core: &Core) -> Option<Rc<NetCore>> {
        core.attached::<NetCore>()
    }

    /// Runs `f` with every core's `NetCore`, on that core, and returns the results in
    /// core order. A core whose loop has not started yet (so it has no `NetCore`) gives
    /// `T::default()`.
    pub async fn on_every_core<T, F>(&self, f: F) -> Vec<T>
    where
        T: Default + Send + 'static,
        F: Fn(&NetCore, u64) -> T + Clone + Send + 'static,
    {
        with_every_core(&self.core, move |core, now| {
            NetCore::of(core).map_or_else(T::default, |nc| f(&nc, now))
        })
        .await
    }

    /// Counts an executed command of table row `row` that ran for `ticks`, and logs it if
    /// it was slow.
    #[inline]
    pub fn executed(&self, client: &Client, row: usize, ticks: u64, reply: &Reply, args: &[Bytes]) {
        self.ran(client, row, ticks, reply.is_error(), || args);
    }

    /// [`NetCore::executed`] for a command whose reply went out with no [`Reply`] made
    /// (a GET answered in place): `failed` says whether it was an error, and `args` gives
    /// its arguments for the slow log, built only if it was slow.
    #[inline]
    pub fn ran<A: AsRef<[Bytes]>>(
        &self,
        client: &Client,
        row: usize,
        ticks: u64,
        failed: bool,
        args: impl FnOnce() -> A,
    ) {
        self.stats.record(row, ticks, failed);
        self.log_if_slow(client, ticks, args);
    }

    /// Logs a command of `client` that ran for `ticks` in the slow log if that is slow;
    /// `args` gives its arguments, built only then.
    #[inline]
    pub fn log_if_slow<A: AsRef<[Bytes]>>(
        &self,
        client: &Client,
        ticks: u64,
        args: impl FnOnce() -> A,
    ) {
        if let Some(us) = stats::slow_us(&self.shared, ticks) {
            self.slowlog.push(&self.shared, client, args().as_ref(), us);
        }
    }

    /// Samples this core's command count every [`stats::SAMPLE_EVERY`] until the server
    /// stops (`instantaneous_ops_per_sec`). Spawn one per core, on that core (its
    /// connection loop drives the core's timers).
    pub async fn run_sampler(self: Rc<Self>) {
        self.stats.start_sampling(now_ms());
        while !self.shared.stopping() {
            let next = now_ms() + stats::SAMPLE_EVERY.as_millis() as u64;
            self.core.timers.sleep_until(next).await;
            self.stats.sample(now_ms());
        }
    }
}
