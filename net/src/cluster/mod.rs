//! Cluster mode (`--cluster-enabled yes`): this node's view of the cluster, its config
//! file, the CLUSTER commands, and the propagation of views between Baton nodes.
//!
//! Redis's binary gossip bus is not implemented (redis-cli never talks to it). Instead a
//! node sends its whole view as text (`CLUSTER BATON-VIEW <payload>`, [`wire`]) on the
//! client port of every node it knows, from one background thread ([`gossip`]), every
//! [`gossip::PERIOD`] and at once after a change; the receiver merges it with Redis's
//! epoch rules ([`state`]) and answers with its own view, which the sender merges too.
//! A view also says who replicates whom; [`replicas`] keeps the node's replication role
//! in line with it and runs `CLUSTER REPLICATE` and `CLUSTER FAILOVER`.
//!
//! ```text
//!   CLUSTER ADDSLOTS/SETSLOT/... (any core) ─┐
//!   CLUSTER BATON-VIEW from a peer (any core)├─► Cluster { Mutex<State> } ─► nodes-<port>.conf
//!   gossip thread (replies of peers) ────────┘        │  (temp + rename; fsync for epochs)
//!                                                     ▼
//!                          version += 1, Arc<ClusterView> (slot -> node -> address)
//!                                                     ▼
//!              each core, before planning a command: one atomic load of `version`;
//!              when it moved, the core's Router swaps in the new view (no lock per command)
//! ```

pub mod commands;
pub mod gossip;
pub mod health;
pub mod mclink;
pub mod mcserve;
pub mod migrate;
pub mod replicas;
pub mod slotmove;
pub mod slotstream;
pub mod state;
pub mod wire;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use baton_engine::reply::Reply;
use baton_ring::ClusterView;

use self::state::State;

/// A slot number argument, as Redis's getSlotOrReply reads it (SETSLOT, COUNTKEYSINSLOT,
/// MIGRATESLOTS ...).
pub(crate) fn slot_arg(arg: &[u8]) -> Result<u16, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&n| (0..i64::from(baton_ring::SLOTS)).contains(&n))
        .map(|n| n as u16)
        .ok_or(Reply::err("ERR Invalid or out of range slot"))
}

/// `--cluster-node-timeout` when nothing sets it (Redis's default), in milliseconds.
pub const DEFAULT_NODE_TIMEOUT_MS: u64 = 15_000;

/// What the cluster flags decide.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `--cluster-config-file` (default `nodes-<port>.conf` in the working directory).
    pub config_file: PathBuf,
    /// `--cluster-announce-ip`: the address other nodes and clients are told.
    pub announce_ip: Option<String>,
    /// `--cluster-announce-port` (0 = the port this server listens on).
    pub announce_port: u16,
    /// `--cluster-node-timeout`, in milliseconds.
    pub node_timeout_ms: u64,
}

/// The node's cluster state, shared by every core and the gossip thread.
pub struct Cluster {
    pub config: ClusterConfig,
    state: Mutex<State>,
    /// Bumped after every change of the routing view; cores compare it per command.
    version: AtomicU64,
    view: Mutex<Arc<ClusterView>>,
    /// Wakes the gossip thread early (a change to spread).
    wake: (Mutex<bool>, Condvar),
    /// Until when (unix ms) writes are paused for a replica's manual failover; 0: not
    /// paused ([`replicas`]).
    pub pause_until: AtomicU64,
    /// CLUSTER MIGRATESLOTS jobs started here ([`slotmove`]).
    pub slot_jobs: slotmove::Jobs,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    /// Loads the config file, or creates it with a fresh node id; `bind` and `port` are
    /// where this server listens (the announced address defaults to them).
    pub fn open(config: ClusterConfig, bind: &str, port: u16) -> Result<Cluster, String> {
        let ip = match &config.announce_ip {
            Some(ip) => ip.clone(),
            // A wildcard bind says nothing about the address peers reach: learnt later.
            None if bind == "0.0.0.0" || bind == "::" || bind == "*" => String::new(),
            None => bind.to_string(),
        };
        let port = if config.announce_port != 0 {
            config.announce_port
        } else {
            port
        };
        let path = &config.config_file;
        let state = match std::fs::read(path) {
            Ok(text) => {
                let view = wire::parse_view(&text)
                    .map_err(|e| format!("cluster config file {}: {e}", path.display()))?;
                State::from_view(view, ip, port)
                    .map_err(|e| format!("cluster config file {}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                State::fresh(crate::ids::new_run_id(), ip, port)
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let cluster = Cluster {
            config,
            view: Mutex::new(Arc::new(state.cluster_view())),
            state: Mutex::new(state),
            version: AtomicU64::new(1),
            wake: (Mutex::new(false), Condvar::new()),
            pause_until: AtomicU64::new(0),
            slot_jobs: slotmove::Jobs::default(),
        };
        cluster
            .save(&lock(&cluster.state), true)
            .map_err(|e| format!("cannot write {}: {e}", cluster.config.config_file.display()))?;
        Ok(cluster)
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&lock(&self.state))
    }

    /// Changes the state with `f`; when it succeeds and the view changed, the config file
    /// is rewritten, the cores' routing view replaced and the peers told.
    pub fn change<R>(&self, f: impl FnOnce(&mut State) -> Result<R, Reply>) -> Result<R, Reply> {
        let mut st = lock(&self.state);
        let before = st.saved_facts();
        let r = f(&mut st)?;
        // A change may end or start the minority guard at once (the node lost its slots).
        let health = st.update_health(baton_engine::runtime::now_ms(), self.config.node_timeout_ms);
        let after = st.saved_facts();
        if after != before {
            let durable = after.epochs_differ(&before);
            self.changed(&st, durable).map_err(|e| {
                Reply::error(format!("ERR error saving the cluster node config: {e}"))
            })?;
        } else if health {
            self.publish(&st);
        }
        Ok(r)
    }

    /// After a change: save, publish the routing view, wake the gossip thread.
    fn changed(&self, st: &State, durable: bool) -> std::io::Result<()> {
        *lock(&self.view) = Arc::new(st.cluster_view());
        self.version.fetch_add(1, Ordering::Release);
        self.notify();
        self.save(st, durable)
    }

    /// The routing view's version (see the module doc).
    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The routing view.
    pub fn view(&self) -> Arc<ClusterView> {
        lock(&self.view).clone()
    }

    /// Rewrites the config file atomically: a temporary file beside it, renamed over the
    /// file. A `durable` save (an epoch changed, or the first one) also fsyncs the file
    /// before the rename and the directory after it, as Redis fsyncs only for epochs: a
    /// slot change lost in a crash comes back from the peers' views, an epoch must not go
    /// backwards. (Two fsyncs per SETSLOT made a reshard move about 12 slots a second.)
    fn save(&self, st: &State, durable: bool) -> std::io::Result<()> {
        let path = &self.config.config_file;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let name = path
            .file_name()
            .map_or_else(|| "nodes.conf".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(st.render_file().as_bytes())?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)?;
        if durable {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Wakes the gossip thread.
    pub fn notify(&self) {
        *lock(&self.wake.0) = true;
        self.wake.1.notify_all();
    }

    /// Waits until [`Cluster::notify`] or `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let mut woken = lock(&self.wake.0);
        if !*woken {
            woken = self
                .wake
                .1
                .wait_timeout(woken, timeout)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
        }
        *woken = false;
    }
}
