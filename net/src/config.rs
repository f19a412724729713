//! Server-wide settings and counters, shared by every core (`Arc<Shared>`).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use baton_engine::evict::EvictionPolicy;

use crate::resp::Limits;

/// What the binary's flags decide.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The config file the server started with (`--config`); CONFIG REWRITE rewrites it.
    pub config_file: Option<std::path::PathBuf>,
    pub bind: String,
    pub port: u16,
    /// 0 turns the memcached listener off.
    pub memcache_port: u16,
    pub requirepass: Option<String>,
    pub limits: Limits,
    pub cores: usize,
    /// memcached's item size limit (-I), in bytes.
    pub max_item_size: usize,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    /// `--replicaof "<host> <port>"`: start as a replica of this primary.
    pub replicaof: Option<(String, u16)>,
    /// Initial values of the settings CONFIG SET can change at run time.
    pub settings: SettingsInit,
}

impl Default for ServerConfig {
    /// The binary's defaults, on loopback with both ports 0 (the kernel picks them), one
    /// core and no config file: what a test or an embedder starts from.
    fn default() -> ServerConfig {
        ServerConfig {
            config_file: None,
            bind: "127.0.0.1".into(),
            port: 0,
            memcache_port: 0,
            requirepass: None,
            limits: Limits::default(),
            cores: 1,
            max_item_size: 1 << 20,
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::default().name().into(),
            replicaof: None,
            settings: SettingsInit::default(),
        }
    }
}

/// `--maxclients` when neither flag nor config file sets it.
pub const DEFAULT_MAXCLIENTS: u64 = 10_000;
/// `--slowlog-log-slower-than` (microseconds) when nothing sets it.
pub const DEFAULT_SLOWLOG_SLOWER_THAN: i64 = 10_000;
/// `--slowlog-max-len` when nothing sets it.
pub const DEFAULT_SLOWLOG_MAX_LEN: u64 = 128;
/// `--replica-priority` when nothing sets it (Redis's default).
pub const DEFAULT_REPLICA_PRIORITY: u64 = 100;
/// `--repl-backlog-size` when nothing sets it: the total over all shards.
pub const DEFAULT_REPL_BACKLOG_SIZE: u64 = baton_replication::journal::DEFAULT_BACKLOG_SIZE as u64;

/// Start values of [`Settings`], as the flags give them.
#[derive(Debug, Clone)]
pub struct SettingsInit {
    pub maxclients: u64,
    /// Idle seconds before a client is closed; 0 = never.
    pub timeout_secs: u64,
    pub output_limit: OutputLimit,
    /// The limit for clients subscribed to Pub/Sub channels or patterns.
    pub pubsub_output_limit: OutputLimit,
    /// Microseconds; negative disables the slow log, 0 logs every command.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// The limit for replicas' flow connections (Redis's `replica` class).
    pub replica_output_limit: OutputLimit,
    /// Replication settings (their run-time values live in `Shared::repl`):
    /// `replica-read-only`, `masterauth`, `repl-backlog-size` (total over all shards),
    /// `replica-priority`, `replica-announce-ip`, `replica-announce-port` (0 = the port
    /// this server listens on).
    pub replica_read_only: bool,
    pub masterauth: Option<String>,
    pub repl_backlog_size: u64,
    pub replica_priority: u64,
    pub replica_announce_ip: Option<String>,
    pub replica_announce_port: u16,
}

impl Default for SettingsInit {
    fn default() -> Self {
        SettingsInit {
            maxclients: 10_000,
            timeout_secs: 0,
            output_limit: OutputLimit::default(),
            pubsub_output_limit: OutputLimit::PUBSUB,
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            replica_output_limit: OutputLimit::REPLICA,
            replica_read_only: true,
            masterauth: None,
            repl_backlog_size: DEFAULT_REPL_BACKLOG_SIZE,
            replica_priority: DEFAULT_REPLICA_PRIORITY,
            replica_announce_ip: None,
            replica_announce_port: 0,
        }
    }
}

/// Redis's `client-output-buffer-limit` for normal clients: disconnect once unsent
/// output exceeds `hard` bytes, or stays above `soft` bytes for `soft_secs` seconds.
/// 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

impl OutputLimit {
    /// Redis's default for the pubsub class: `32mb 8mb 60`.
    pub const PUBSUB: OutputLimit = OutputLimit {
        hard: 32 << 20,
        soft: 8 << 20,
        soft_secs: 60,
    };

    /// Redis's default for the replica class: `256mb 64mb 60`.
    pub const REPLICA: OutputLimit = OutputLimit {
        hard: 256 << 20,
        soft: 64 << 20,
        soft_secs: 60,
    };
}

impl Default for OutputLimit {
    fn default() -> Self {
        OutputLimit {
            hard: 256 << 20,
            soft: 64 << 20,
            soft_secs: 60,
        }
    }
}

/// The settings CONFIG SET changes while the server runs; every core reads them.
#[derive(Debug)]
pub struct Settings {
    pub maxclients: AtomicU64,
    pub timeout_secs: AtomicU64,
    pub output_hard: AtomicU64,
    pub output_soft: AtomicU64,
    pub output_soft_secs: AtomicU64,
    pub pubsub_hard: AtomicU64,
    pub pubsub_soft: AtomicU64,
    pub pubsub_soft_secs: AtomicU64,
    pub replica_hard: AtomicU64,
    pub replica_soft: AtomicU64,
    pub replica_soft_secs: AtomicU64,
    pub slowlog_log_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// Bytes for the whole server (split evenly over the shards); 0 = no limit.
    pub maxmemory: AtomicU64,
    pub maxmemory_policy: Mutex<String>,
}

impl Settings {
    pub fn new(config: &ServerConfig) -> Settings {
        let init = &config.settings;
        Settings {
            maxmemory: AtomicU64::new(config.maxmemory),
            maxmemory_policy: Mutex::new(config.maxmemory_policy.clone()),
            maxclients: AtomicU64::new(init.maxclients),
            timeout_secs: AtomicU64::new(init.timeout_secs),
            output_hard: AtomicU64::new(init.output_limit.hard),
            output_soft: AtomicU64::new(init.output_limit.soft),
            output_soft_secs: AtomicU64::new(init.output_limit.soft_secs),
            pubsub_hard: AtomicU64::new(init.pubsub_output_limit.hard),
            pubsub_soft: AtomicU64::new(init.pubsub_output_limit.soft),
            pubsub_soft_secs: AtomicU64::new(init.pubsub_output_limit.soft_secs),
            replica_hard: AtomicU64::new(init.replica_output_limit.hard),
            replica_soft: AtomicU64::new(init.replica_output_limit.soft),
            replica_soft_secs: AtomicU64::new(init.replica_output_limit.soft_secs),
            slowlog_log_slower_than: AtomicI64::new(init.slowlog_log_slower_than),
            slowlog_max_len: AtomicU64::new(init.slowlog_max_len),
        }
    }

    pub fn output_limit(&self) -> OutputLimit {
        OutputLimit {
            hard: self.output_hard.load(Ordering::Relaxed),
            soft: self.output_soft.load(Ordering::Relaxed),
            soft_secs: self.output_soft_secs.load(Ordering::Relaxed),
        }
    }

    /// The output limit of clients in Pub/Sub mode.
    pub fn pubsub_output_limit(&self) -> OutputLimit {
        OutputLimit {
            hard: self.pubsub_hard.load(Ordering::Relaxed),
            soft: self.pubsub_soft.load(Ordering::Relaxed),
            soft_secs: self.pubsub_soft_secs.load(Ordering::Relaxed),
        }
    }

    /// The output limit of replicas' flow connections (Redis's `replica` class).
    pub fn replica_output_limit(&self) -> OutputLimit {
        OutputLimit {
            hard: self.replica_hard.load(Ordering::Relaxed),
            soft: self.replica_soft.load(Ordering::Relaxed),
            soft_secs: self.replica_soft_secs.load(Ordering::Relaxed),
        }
    }
}

/// Settings plus the counters and signals every core shares.
pub struct Shared {
    pub config: ServerConfig,
    /// The ports actually bound (port 0 resolved).
    pub redis_port: u16,
    pub memcache_port: u16,
    pub started_ms: u64,
    /// 40 random hex characters naming this run of the server (INFO's `run_id`; sentinel
    /// tells a restarted server from the same one by it).
    pub run_id: String,
    /// Run-time settable values (CONFIG SET).
    pub settings: Settings,
    pub stop: AtomicBool,
    /// Each core's mesh doorbell: a write wakes that core's loop (used by signals).
    pub wakeups: Mutex<Vec<RawFd>>,
    pub total_connections: AtomicU64,
    pub connected_clients: AtomicU64,
    /// Clients waiting in a blocking command (INFO's `blocked_clients`).
    pub blocked_clients: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Clients closed for passing the output buffer limit (INFO's
    /// `client_output_buffer_limit_disconnections`).
    pub client_output_limit_disconnections: AtomicU64,
    /// Replication: role, journals, replicas, the link to a primary.
    pub repl: crate::repl_state::Repl,
    /// The zero-downtime handoff's shared state.
    pub handoff: crate::handoff::Handoff,
    /// Cluster mode's state (`--cluster-enabled yes`), set once at start; unset
    /// otherwise.
    pub cluster: std::sync::OnceLock<std::sync::Arc<crate::cluster::Cluster>>,
}

impl Shared {
    pub fn new(
        config: ServerConfig,
        redis_port: u16,
        memcache_port: u16,
        started_ms: u64,
    ) -> Shared {
        let cores = config.cores;
        Shared {
            settings: Settings::new(&config),
            config,
            redis_port,
            memcache_port,
            started_ms,
            run_id: crate::ids::new_run_id(),
            stop: AtomicBool::new(false),
            wakeups: Mutex::new(Vec::new()),
            total_connections: AtomicU64::new(0),
            connected_clients: AtomicU64::new(0),
            blocked_clients: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            client_output_limit_disconnections: AtomicU64::new(0),
            repl: crate::repl_state::Repl::new(cores),
            handoff: crate::handoff::Handoff::new(cores),
            cluster: std::sync::OnceLock::new(),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Asks every core to stop: no new connections, answer what was read, close.
    /// Async-signal-safe: an atomic store and write(2) on eventfds.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Ok(fds) = self.wakeups.try_lock() {
            for &fd in fds.iter() {
                baton_engine::runtime::mesh::ring(fd);
            }
        }
    }
}
