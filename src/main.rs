//! `baton`: the server binary. Parses flags (and an optional config file), opens the
//! listeners, starts one executor per core and serves until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use baton_engine::evict::EvictionPolicy;
use baton_engine::runtime;
use baton_net::config::{self, OutputLimit, ServerConfig, SettingsInit, Shared};
use baton_net::event_loop::{serve, CoreListeners};
use baton_net::handoff;
use baton_net::protect;
use baton_net::repl_state::lock;
use baton_net::session::Protocol;
use clap::Parser;

use baton_net::units;

mod alloc;

#[global_allocator]
static GLOBAL: alloc::Alloc = alloc::Alloc;

extern "C" {
    /// mimalloc's own API (linked in with the global allocator): frees what the calling
    /// thread's heap holds unused, and with `force` purges freed pages to the OS now.
    fn mi_collect(force: bool);
}

/// The engine's hook after a store's table or slab array was replaced by a larger one:
/// the old array's pages go back to the OS now rather than after mimalloc's purge delay.
fn purge_freed() {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time.
    unsafe { mi_collect(true) }
}

/// Baton: a thread-per-core cache server that speaks the Redis and memcached protocols.
#[derive(Parser, Debug)]
#[command(name = "baton", version, about, args_override_self = true)]
struct Args {
    /// Config file with one `name value` pair per line (names as the flags, without
    /// dashes; `#` starts a comment). Flags given on the command line win.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,

    /// Address to listen on (both protocols).
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,

    /// Redis protocol port (0 picks a free port).
    #[arg(long, default_value_t = 6379)]
    port: u16,

    /// memcached protocol port (0 turns the memcached listener off).
    #[arg(long, default_value_t = 11211)]
    memcache_port: u16,

    /// Number of cores (one pinned executor and one shard each). Default: all online CPUs.
    #[arg(long)]
    cores: Option<usize>,

    /// Require clients to AUTH with this password.
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,

    /// Largest bulk string a client may send (Redis units: 512mb, 1gb, ...).
    #[arg(long, default_value = "512mb", value_parser = units::parse_bytes)]
    proto_max_bulk_len: u64,

    /// Largest memcached item value (memcached's -I; units as above, so memcached's own
    /// `-I 1m` is `1mb` here).
    #[arg(long, default_value = "1mb", value_parser = units::parse_bytes)]
    max_item_size: u64,

    /// Memory limit for the data (0 = none; units as above).
    #[arg(long, default_value = "0", value_parser = units::parse_bytes)]
    maxmemory: u64,

    /// What to do when maxmemory is reached.
    #[arg(long, default_value = "allkeys-s3fifo")]
    maxmemory_policy: String,

    /// Most clients connected at once, over both protocols; further connections get
    /// `-ERR max number of clients reached` (memcached port: `ERROR Too many open
    /// connections`) and are closed. The open-files limit is raised to fit, or this is
    /// lowered to fit it, with a warning.
    #[arg(long, default_value_t = config::DEFAULT_MAXCLIENTS, value_parser = clap::value_parser!(u64).range(1..))]
    maxclients: u64,

    /// Close a client after this many idle seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    timeout: u64,

    /// Output limit for a class of clients, as Redis's `client-output-buffer-limit`:
    /// `[<class>] <hard> <soft> <soft-seconds>` (units as above; 0 turns a limit off),
    /// where the class is `normal` (the default), `pubsub` or `replica` (`slave`); give it
    /// once per class. A client whose unsent output passes the hard limit, or stays past
    /// the soft limit for the given seconds, is disconnected and logged. Defaults: normal
    /// `256mb 64mb 60`, pubsub `32mb 8mb 60`, replica `256mb 64mb 60`.
    #[arg(long, action = clap::ArgAction::Append, value_name = "[CLASS] HARD SOFT SECS", value_parser = parse_classed_limit)]
    client_output_buffer_limit: Vec<(LimitClass, OutputLimit)>,

    /// Output limit for clients subscribed to Pub/Sub channels or patterns (Redis's
    /// `client-output-buffer-limit pubsub`): `<hard> <soft> <soft-seconds>`. Default
    /// `32mb 8mb 60`.
    #[arg(long, value_name = "HARD SOFT SECS", value_parser = parse_pubsub_output_limit)]
    client_output_buffer_limit_pubsub: Option<OutputLimit>,

    /// Output limit for replicas (Redis's `client-output-buffer-limit replica`): `<hard>
    /// <soft> <soft-seconds>`. Default `256mb 64mb 60`. Kept so that configuration written
    /// for Redis applies: a flow is fed only as fast as its replica reads, and a replica
    /// that falls behind the backlog resyncs.
    #[arg(long, alias = "client-output-buffer-limit-slave", value_name = "HARD SOFT SECS", value_parser = parse_replica_output_limit)]
    client_output_buffer_limit_replica: Option<OutputLimit>,

    /// Start as a replica of this primary: `"<host> <port>"` (Redis's `replicaof`;
    /// `"no one"`, as in Redis, starts a primary;
    /// `slaveof` is accepted). REPLICAOF NO ONE at run time makes it a primary.
    #[arg(long, alias = "slaveof", value_name = "HOST PORT", value_parser = parse_replicaof)]
    replicaof: Option<Replicaof>,

    /// Whether a replica refuses writes from clients (`-READONLY`, and `SERVER_ERROR
    /// READONLY` on the memcached port): yes or no.
    #[arg(long, alias = "slave-read-only", default_value = "yes", value_name = "yes|no", action = clap::ArgAction::Set, value_parser = parse_yes_no)]
    replica_read_only: bool,

    /// Cluster mode (Redis Cluster's protocol, driven by `redis-cli --cluster`): yes or no.
    #[arg(long, default_value = "no", value_name = "yes|no", action = clap::ArgAction::Set, value_parser = parse_yes_no)]
    cluster_enabled: bool,

    /// Where a cluster node keeps its id, epochs and view of the cluster (rewritten
    /// atomically on every change, reloaded at start). Default: nodes-<port>.conf in the
    /// working directory.
    #[arg(long, value_name = "FILE")]
    cluster_config_file: Option<std::path::PathBuf>,

    /// The IP address other cluster nodes and clients are told for this node (MOVED,
    /// CLUSTER SLOTS/NODES). Default: --bind, or the address peers reach it at when
    /// --bind is a wildcard.
    #[arg(long, value_name = "IP", value_parser = parse_announce_ip)]
    cluster_announce_ip: Option<String>,

    /// The client port other cluster nodes and clients are told (0 = --port).
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    cluster_announce_port: u16,

    /// Milliseconds after which a cluster node that does not answer is flagged `fail?`.
    #[arg(long, default_value_t = baton_net::cluster::DEFAULT_NODE_TIMEOUT_MS, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    cluster_node_timeout: u64,

    /// The private Unix socket `baton-handoff` drives a zero-downtime upgrade through
    /// (mode 0600; same user or root only). Default: /tmp/baton-<port>.handoff.
    #[arg(long, value_name = "PATH")]
    handoff_socket: Option<std::path::PathBuf>,

    /// Start by taking over from the server listening on this handoff socket: its
    /// listeners, data and client connections (`baton-handoff` passes this; see the
    /// README's "Upgrading without downtime").
    #[arg(long, value_name = "PATH")]
    takeover: Option<std::path::PathBuf>,

    /// The password a replica AUTHs with to its primary.
    #[arg(long, value_name = "PASSWORD")]
    masterauth: Option<String>,

    /// How much of the recent write stream a primary keeps for replicas that reconnect
    /// (partial resync), in total over all shards (units as above; at least 1).
    #[arg(long, default_value = "1mb", value_parser = parse_backlog_size)]
    repl_backlog_size: u64,

    /// The replica's priority, as redis-sentinel reads it (lower is promoted first; 0
    /// never).
    #[arg(long, alias = "slave-priority", allow_negative_numbers = true, default_value_t = config::DEFAULT_REPLICA_PRIORITY, value_parser = clap::value_parser!(u64).range(0..=i32::MAX as u64))]
    replica_priority: u64,

    /// The address a replica tells its primary to list it under (behind NAT).
    #[arg(long, alias = "slave-announce-ip", value_name = "IP")]
    replica_announce_ip: Option<String>,

    /// The port a replica tells its primary to list it under (0: the port it listens on).
    #[arg(
        long,
        alias = "slave-announce-port",
        default_value_t = 0,
        value_name = "PORT"
    )]
    replica_announce_port: u16,

    /// Log commands slower than this many microseconds in SLOWLOG (negative: off,
    /// 0: every command).
    #[arg(long, default_value_t = config::DEFAULT_SLOWLOG_SLOWER_THAN, allow_negative_numbers = true)]
    slowlog_log_slower_than: i64,

    /// Entries SLOWLOG keeps.
    #[arg(long, default_value_t = config::DEFAULT_SLOWLOG_MAX_LEN)]
    slowlog_max_len: u64,

    /// Turn transparent huge pages off for this process (as Redis's `disable-thp`): with
    /// THP the allocator's arenas fault in 2 MiB at a time, which costs RSS per key.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    disable_thp: bool,

    /// A hash stays packed (`OBJECT ENCODING` listpack) up to this many fields; past it,
    /// a hash table (`hashtable`). Redis's `hash-max-ziplist-entries` is accepted.
    #[arg(long, alias = "hash-max-ziplist-entries", default_value_t = baton_engine::hash::DEFAULT_MAX_ENTRIES, value_name = "N", allow_negative_numbers = true, value_parser = parse_type_count)]
    hash_max_listpack_entries: usize,

    /// A hash stays packed while every field and value is at most this many bytes (units
    /// as above). Redis's `hash-max-ziplist-value` is accepted.
    #[arg(long, alias = "hash-max-ziplist-value", default_value_t = baton_engine::hash::DEFAULT_MAX_VALUE, value_name = "BYTES", allow_negative_numbers = true, value_parser = parse_type_bytes)]
    hash_max_listpack_value: usize,

    /// A list's packed nodes hold at most this many elements when positive, or at most
    /// 4, 8, 16, 32 or 64 KiB for -1..-5 (`OBJECT ENCODING` is `quicklist` either way,
    /// as in Redis 7.0). Redis's `list-max-ziplist-size` is accepted.
    #[arg(long, alias = "list-max-ziplist-size", default_value_t = baton_engine::list::DEFAULT_MAX_SIZE, value_name = "N", allow_negative_numbers = true, value_parser = parse_list_size)]
    list_max_listpack_size: i64,

    /// A set of integers stays an `intset` up to this many members.
    #[arg(long, default_value_t = baton_engine::set::DEFAULT_MAX_INTSET_ENTRIES, value_name = "N", allow_negative_numbers = true, value_parser = parse_type_count)]
    set_max_intset_entries: usize,

    /// A sorted set stays packed (`listpack`) up to this many members; past it, a
    /// `skiplist`. Redis's `zset-max-ziplist-entries` is accepted.
    #[arg(long, alias = "zset-max-ziplist-entries", default_value_t = baton_engine::zset::DEFAULT_MAX_ENTRIES, value_name = "N", allow_negative_numbers = true, value_parser = parse_type_count)]
    zset_max_listpack_entries: usize,

    /// A sorted set stays packed while every member is at most this many bytes (units as
    /// above). Redis's `zset-max-ziplist-value` is accepted.
    #[arg(long, alias = "zset-max-ziplist-value", default_value_t = baton_engine::zset::DEFAULT_MAX_VALUE, value_name = "BYTES", allow_negative_numbers = true, value_parser = parse_type_bytes)]
    zset_max_listpack_value: usize,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive); RUST_LOG wins.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// Turns transparent huge pages off for the whole process (future faults), as Redis does
/// at start; failure only means huge pages stay as the system configured them.
fn disable_thp() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "baton: cannot disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A class of clients `client-output-buffer-limit` sets a limit for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitClass {
    Normal,
    Pubsub,
    Replica,
}

impl LimitClass {
    fn parse(word: &str) -> Option<LimitClass> {
        match word.to_ascii_lowercase().as_str() {
            "normal" => Some(LimitClass::Normal),
            "pubsub" => Some(LimitClass::Pubsub),
            "replica" | "slave" => Some(LimitClass::Replica),
            _ => None,
        }
    }
}

/// Parses `[<class>] <hard> <soft> <soft-seconds>`; no class is `normal`.
fn parse_classed_limit(s: &str) -> Result<(LimitClass, OutputLimit), String> {
    let class = s
        .split_whitespace()
        .next()
        .and_then(LimitClass::parse)
        .unwrap_or(LimitClass::Normal);
    let names: &[&str] = match class {
        LimitClass::Normal => &["normal"],
        LimitClass::Pubsub => &["pubsub"],
        LimitClass::Replica => &["replica", "slave"],
    };
    match parse_class_limit(s, names) {
        Ok(l) => Ok((class, l)),
        Err(e) if e.starts_with("expected") => Err(
            "expected [normal|pubsub|replica] <hard> <soft> <soft-seconds>, e.g. 'replica 256mb 64mb 60'"
                .into(),
        ),
        Err(e) => Err(e),
    }
}

/// Parses `<hard> <soft> <soft-seconds>`, optionally led by Redis's class name `pubsub`.
fn parse_pubsub_output_limit(s: &str) -> Result<OutputLimit, String> {
    parse_class_limit(s, &["pubsub"])
}

/// Parses `<hard> <soft> <soft-seconds>`, optionally led by `replica` or `slave`.
fn parse_replica_output_limit(s: &str) -> Result<OutputLimit, String> {
    parse_class_limit(s, &["replica", "slave"])
}

fn parse_class_limit(s: &str, classes: &[&str]) -> Result<OutputLimit, String> {
    let mut words: Vec<&str> = s.split_whitespace().collect();
    if words
        .first()
        .is_some_and(|w| classes.iter().any(|c| w.eq_ignore_ascii_case(c)))
    {
        words.remove(0);
    }
    let [hard, soft, secs] = words[..] else {
        return Err(format!(
            "expected [{}] <hard> <soft> <soft-seconds>, e.g. '256mb 64mb 60'",
            classes.join("|")
        ));
    };
    Ok(OutputLimit {
        hard: units::parse_bytes(hard)?,
        soft: units::parse_bytes(soft)?,
        soft_secs: secs
            .parse()
            .map_err(|_| format!("soft-seconds must be a whole number, not '{secs}'"))?,
    })
}

/// The limit given for `class` last, if any.
fn last_limit(given: &[(LimitClass, OutputLimit)], class: LimitClass) -> Option<OutputLimit> {
    given
        .iter()
        .rev()
        .find(|(c, _)| *c == class)
        .map(|(_, l)| *l)
}

/// `--replicaof`'s value: the primary's host and port, or none (`no one`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replicaof(Option<(String, u16)>);

/// Parses `"<host> <port>"`, or `"no one"`.
fn parse_replicaof(s: &str) -> Result<Replicaof, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    if let [no, one] = words[..] {
        if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") {
            return Ok(Replicaof(None));
        }
    }
    let [host, port] = words[..] else {
        return Err(format!(
            "expected \"<host> <port>\" (the primary's address), not '{s}'"
        ));
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(Replicaof(Some((host.to_string(), p)))),
        _ => Err(format!("'{port}' is not a port (1-65535)")),
    }
}

/// An IP address (v4 or v6) for --cluster-announce-ip.
fn parse_announce_ip(s: &str) -> Result<String, String> {
    s.parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("'{s}' is not an IP address"))
}

/// Parses `yes` or `no`, as Redis's boolean settings.
fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, not '{s}'")),
    }
}

/// Parses a data-type threshold counted in entries or bytes (`hash-max-listpack-entries`,
/// ...): what CONFIG SET takes, with its error texts.
fn parse_type_count(s: &str) -> Result<usize, String> {
    baton_net::config_command::int_in(s.as_bytes(), 0, i64::MAX).map(|n| n as usize)
}

/// Parses a data-type threshold in bytes (`hash-max-listpack-value`, ...): a memory value
/// (`1kb`), as CONFIG SET takes it, with its error texts.
fn parse_type_bytes(s: &str) -> Result<usize, String> {
    baton_net::config_command::byte_size(s.as_bytes())
}

/// Parses `--list-max-listpack-size`: any 32-bit integer, as CONFIG SET takes it.
fn parse_list_size(s: &str) -> Result<i64, String> {
    baton_net::config_command::int_in(s.as_bytes(), i32::MIN.into(), i32::MAX.into())
}

/// Puts the data-type thresholds the flags gave in force. They are process-wide: every
/// shard reads them when it writes a collection, and CONFIG SET changes them later.
fn set_type_thresholds(args: &Args) {
    baton_engine::hash::set_max_entries(args.hash_max_listpack_entries);
    baton_engine::hash::set_max_value(args.hash_max_listpack_value);
    baton_engine::list::set_max_size(args.list_max_listpack_size);
    baton_engine::set::set_max_intset_entries(args.set_max_intset_entries);
    baton_engine::zset::set_max_entries(args.zset_max_listpack_entries);
    baton_engine::zset::set_max_value(args.zset_max_listpack_value);
}

/// Parses `--repl-backlog-size`: a size of at least one byte.
fn parse_backlog_size(s: &str) -> Result<u64, String> {
    match units::parse_bytes(s)? {
        0 => Err("the backlog must hold at least one byte".into()),
        n => Ok(n),
    }
}

/// Raises the open-files limit so `maxclients` clients fit, or lowers `maxclients` to what
/// the limit allows, logging as Redis's adjustOpenFilesLimit does.
fn fit_maxclients(maxclients: u64, cores: usize) -> Result<u64> {
    let reserved = protect::reserved_fds(cores);
    let wanted = maxclients.saturating_add(reserved);
    let lim = match protect::raise_open_files_limit(wanted) {
        Ok(lim) => lim,
        Err(e) => {
            tracing::warn!("Unable to obtain the current NOFILE limit ({e}); keeping maxclients at {maxclients}.");
            return Ok(maxclients);
        }
    };
    if lim.after >= wanted {
        if lim.after > lim.before {
            tracing::info!(
                "Increased maximum number of open files to {} (it was originally set to {}).",
                lim.after,
                lim.before
            );
        }
        return Ok(maxclients);
    }
    if lim.after <= reserved {
        bail!(
            "Your current 'ulimit -n' of {} is not enough for the server to start. Please increase your open file limit to at least {}.",
            lim.after,
            wanted
        );
    }
    let fitted = lim.after - reserved;
    tracing::warn!(
        "You requested maxclients of {maxclients} requiring at least {wanted} max file descriptors."
    );
    if let Some(e) = &lim.error {
        tracing::warn!("Server can't set maximum open files to {wanted} because of OS error: {e}.");
    }
    tracing::warn!(
        "Current maximum open files is {}. maxclients has been reduced to {fitted} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
        lim.after
    );
    Ok(fitted)
}

/// Reads `name value` lines into `--name value` arguments.
fn config_file_args(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if name == "config" {
            bail!(
                "{}:{}: a config file cannot include another",
                path.display(),
                n + 1
            );
        }
        out.push(format!("--{}", name.trim()));
        let value = value.trim().trim_matches('"');
        if !value.is_empty() {
            out.push(value.to_string());
        }
    }
    Ok(out)
}

fn parse_args() -> Result<Args> {
    let cli: Vec<String> = std::env::args().collect();
    let first = Args::parse_from(&cli);
    let Some(path) = &first.config else {
        return Ok(first);
    };
    let mut merged = vec![cli[0].clone()];
    merged.extend(config_file_args(path)?);
    merged.extend(cli[1..].iter().cloned());
    Args::try_parse_from(&merged)
        .map_err(|e| anyhow::anyhow!("in config file {}: {e}", path.display()))
}

/// Puts the replication settings the flags gave into `Shared::repl`, where the link, the
/// feeds and CONFIG read them, and starts the link to the primary under `--replicaof`.
/// Each core picks the replica role up on its first turn.
///
/// A process taking over (`--takeover`) starts no link here: the takeover links it to the
/// old process to copy the shards, and then to the old process's primary, if it has one,
/// from the copied offsets (FOLLOW). A link started here first was always replaced by the
/// takeover's, but it could get as far as asking the primary for a full sync first, and
/// the primary then counted the new process's later partial resync as a full one.
fn start_replication(shared: &Arc<Shared>, link: bool) {
    let init = &shared.config.settings;
    let repl = &shared.repl;
    repl.read_only
        .store(init.replica_read_only, Ordering::Relaxed);
    *lock(&repl.masterauth) = init.masterauth.clone();
    repl.backlog_size
        .store(init.repl_backlog_size, Ordering::Relaxed);
    repl.priority
        .store(init.replica_priority, Ordering::Relaxed);
    *lock(&repl.announce_ip) = init.replica_announce_ip.clone();
    repl.announce_port
        .store(u64::from(init.replica_announce_port), Ordering::Relaxed);
    repl.replica_hard_limit
        .store(init.replica_output_limit.hard, Ordering::Relaxed);
    if let Some((host, port)) = shared.config.replicaof.clone().filter(|_| link) {
        tracing::info!("starting as a replica of {host}:{port}");
        baton_net::repl::link::start(shared, host, port);
    }
}

/// Loads (or creates) the cluster config file and starts the propagation thread.
fn start_cluster(shared: &Arc<Shared>, args: &Args) -> Result<()> {
    use baton_net::cluster::{gossip, Cluster, ClusterConfig};
    let config = ClusterConfig {
        config_file: args
            .cluster_config_file
            .clone()
            .unwrap_or_else(|| format!("nodes-{}.conf", shared.redis_port).into()),
        announce_ip: args.cluster_announce_ip.clone(),
        announce_port: args.cluster_announce_port,
        node_timeout_ms: args.cluster_node_timeout,
    };
    let cluster =
        Arc::new(Cluster::open(config, &args.bind, shared.redis_port).map_err(anyhow::Error::msg)?);
    tracing::info!(
        id = %cluster.read(|st| st.myself.clone()),
        file = %cluster.config.config_file.display(),
        "cluster mode"
    );
    if shared.cluster.set(cluster.clone()).is_err() {
        bail!("cluster mode started twice");
    }
    gossip::start(shared, cluster);
    Ok(())
}

/// Deals the listeners a handoff passed out to `cores` cores: each core gets a Redis
/// listener (and a memcached one if there are any), shared by duplicating when the old
/// process had fewer cores; with more, some cores take the rest, since closing a
/// listener would drop the connections in its accept queue.
fn split_listeners(
    listeners: Vec<(OwnedFd, Protocol)>,
    cores: usize,
) -> Result<Vec<CoreListeners>> {
    let (redis, memcache): (Vec<_>, Vec<_>) = listeners
        .into_iter()
        .partition(|(_, p)| *p == Protocol::Redis);
    let redis: Vec<OwnedFd> = redis.into_iter().map(|(fd, _)| fd).collect();
    let memcache: Vec<OwnedFd> = memcache.into_iter().map(|(fd, _)| fd).collect();
    if redis.is_empty() {
        bail!("the old process passed no Redis listener");
    }
    let pick = |fds: &[OwnedFd], i: usize| fds[i % fds.len()].try_clone();
    let mut out = Vec::with_capacity(cores);
    for i in 0..cores {
        out.push(CoreListeners {
            redis: pick(&redis, i)?,
            memcache: if memcache.is_empty() {
                None
            } else {
                Some(pick(&memcache, i)?)
            },
            extra: Vec::new(),
        });
    }
    for (i, fd) in redis.into_iter().enumerate().skip(cores) {
        out[i % cores].extra.push((fd, Protocol::Redis));
    }
    for (i, fd) in memcache.into_iter().enumerate().skip(cores) {
        out[i % cores].extra.push((fd, Protocol::Memcache));
    }
    Ok(out)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("baton: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    if args.disable_thp {
        disable_thp();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log_level))
        .context("invalid --log-level")?;
    // A log line that cannot be written (stderr closed: the reader went away) is dropped;
    // tracing would otherwise report it with eprintln!, which panics on EPIPE and would
    // take the signal thread or a core down with it.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .init();

    let cores = runtime::resolve_cores(args.cores)?;
    set_type_thresholds(&args);
    baton_engine::trim::set_release_hook(purge_freed);
    let maxclients = fit_maxclients(args.maxclients, cores)?;
    let policy = args.maxmemory_policy.to_ascii_lowercase();
    let Some(parsed) = EvictionPolicy::parse(&policy) else {
        bail!(
            "unknown --maxmemory-policy '{}' (one of: {}; Redis's allkeys-lru, allkeys-lfu, \
             volatile-lru and volatile-lfu are accepted as the S3-FIFO policy of the same scope)",
            args.maxmemory_policy,
            EvictionPolicy::NAMES.join(", ")
        );
    };
    if EvictionPolicy::is_alias(&policy) {
        tracing::warn!(
            "maxmemory-policy {policy} is served by {}: Baton evicts with S3-FIFO",
            parsed.name()
        );
    }
    let limits = &args.client_output_buffer_limit;
    let mut takeover = None;
    let (per_core, redis_addr, memcache_addr) = match &args.takeover {
        None => {
            let (redis, redis_addr) =
                baton_net::listener::listen_group(&args.bind, args.port, cores)?;
            let (memcache, memcache_addr): (Vec<Option<OwnedFd>>, Option<SocketAddr>) =
                if args.memcache_port == 0 {
                    ((0..cores).map(|_| None).collect(), None)
                } else {
                    let (fds, addr) =
                        baton_net::listener::listen_group(&args.bind, args.memcache_port, cores)?;
                    (fds.into_iter().map(Some).collect(), Some(addr))
                };
            let per_core: Vec<CoreListeners> = redis
                .into_iter()
                .zip(memcache)
                .map(|(redis, memcache)| CoreListeners {
                    redis,
                    memcache,
                    extra: Vec::new(),
                })
                .collect();
            (per_core, redis_addr, memcache_addr)
        }
        Some(path) => {
            let mut t = handoff::takeover(path, cores)?;
            let per_core = split_listeners(std::mem::take(&mut t.listeners), cores)?;
            let ip: std::net::IpAddr = args.bind.parse().unwrap_or([127, 0, 0, 1].into());
            let redis_addr = SocketAddr::new(ip, t.port);
            let memcache_addr =
                (t.memcache_port != 0).then(|| SocketAddr::new(ip, t.memcache_port));
            takeover = Some(t);
            (per_core, redis_addr, memcache_addr)
        }
    };
    let config = ServerConfig {
        config_file: args.config.clone(),
        bind: args.bind.clone(),
        port: args.port,
        memcache_port: args.memcache_port,
        requirepass: args.requirepass.clone(),
        limits: baton_net::resp::Limits {
            max_bulk_len: args.proto_max_bulk_len.min(usize::MAX as u64) as usize,
            ..Default::default()
        },
        cores,
        max_item_size: args.max_item_size as usize,
        maxmemory: args.maxmemory,
        maxmemory_policy: policy,
        replicaof: args.replicaof.clone().and_then(|r| r.0),
        settings: SettingsInit {
            maxclients,
            timeout_secs: args.timeout,
            output_limit: last_limit(limits, LimitClass::Normal).unwrap_or_default(),
            pubsub_output_limit: args
                .client_output_buffer_limit_pubsub
                .or_else(|| last_limit(limits, LimitClass::Pubsub))
                .unwrap_or(OutputLimit::PUBSUB),
            replica_output_limit: args
                .client_output_buffer_limit_replica
                .or_else(|| last_limit(limits, LimitClass::Replica))
                .unwrap_or(OutputLimit::REPLICA),
            slowlog_log_slower_than: args.slowlog_log_slower_than,
            slowlog_max_len: args.slowlog_max_len,
            replica_read_only: args.replica_read_only,
            masterauth: args.masterauth.clone().filter(|p| !p.is_empty()),
            repl_backlog_size: args.repl_backlog_size,
            replica_priority: args.replica_priority,
            replica_announce_ip: args.replica_announce_ip.clone().filter(|ip| !ip.is_empty()),
            replica_announce_port: args.replica_announce_port,
        },
    };
    let shared = Arc::new(Shared::new(
        config,
        redis_addr.port(),
        memcache_addr.map_or(0, |a| a.port()),
        runtime::now_ms(),
    ));
    start_replication(&shared, takeover.is_none());
    if args.cluster_enabled {
        start_cluster(&shared, &args)?;
    }
    {
        let mut fds = lock(&shared.handoff.listeners);
        for l in &per_core {
            fds.push((l.redis.as_raw_fd(), Protocol::Redis));
            fds.extend(
                l.memcache
                    .iter()
                    .map(|m| (m.as_raw_fd(), Protocol::Memcache)),
            );
            fds.extend(l.extra.iter().map(|(fd, p)| (fd.as_raw_fd(), *p)));
        }
    }
    match takeover {
        Some(t) => t.start(&shared).context("cannot take over")?,
        None => {
            let path = args
                .handoff_socket
                .clone()
                .unwrap_or_else(|| handoff::default_socket_path(shared.redis_port));
            match handoff::listen(&shared, &path) {
                Ok(()) => {}
                // A path the operator named must work; the default is a convenience.
                Err(e) if args.handoff_socket.is_some() => return Err(e.into()),
                Err(e) => tracing::warn!("{e}; zero-downtime handoff is off"),
            }
        }
    }

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("cannot install signal handlers")?;
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("baton-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    tracing::info!(
                        signal = sig,
                        "shutting down: no new connections, answering what was read"
                    );
                    shared.request_stop();
                }
            })?;
    }

    let per_core: Arc<Mutex<Vec<Option<CoreListeners>>>> =
        Arc::new(Mutex::new(per_core.into_iter().map(Some).collect()));
    println!(
        "Ready to accept connections: redis={} memcache={}",
        redis_addr,
        memcache_addr.map_or_else(|| "off".to_string(), |a| a.to_string())
    );
    tracing::info!(cores, redis = %redis_addr, memcache = ?memcache_addr, "baton started");
    let shared_at_exit = shared.clone();
    runtime::run(cores, move |core| {
        let listeners = per_core.lock().unwrap()[core.id]
            .take()
            .expect("each core takes its listeners once");
        serve(core, shared.clone(), listeners)
    })?;
    shared_at_exit.handoff.remove_socket();
    tracing::info!("bye");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limit_lines_take_a_class() {
        let l = |h, s, t| OutputLimit {
            hard: h,
            soft: s,
            soft_secs: t,
        };
        assert_eq!(
            parse_classed_limit("1 2 3"),
            Ok((LimitClass::Normal, l(1, 2, 3)))
        );
        assert_eq!(
            parse_classed_limit("SLAVE 1kb 2 3"),
            Ok((LimitClass::Replica, l(1024, 2, 3)))
        );
        assert_eq!(
            parse_classed_limit("pubsub 1 2 3"),
            Ok((LimitClass::Pubsub, l(1, 2, 3)))
        );
        assert!(parse_classed_limit("master 1 2 3").is_err());
        assert_eq!(parse_replica_output_limit("replica 1 2 3"), Ok(l(1, 2, 3)));
        assert!(parse_replica_output_limit("pubsub 1 2 3").is_err());
        let given = [
            (LimitClass::Normal, l(1, 1, 1)),
            (LimitClass::Replica, l(2, 2, 2)),
            (LimitClass::Normal, l(3, 3, 3)),
        ];
        assert_eq!(last_limit(&given, LimitClass::Normal), Some(l(3, 3, 3)));
        assert_eq!(last_limit(&given, LimitClass::Pubsub), None);
    }

    #[test]
    fn replicaof_and_yes_no_values() {
        assert_eq!(
            parse_replicaof(" 10.0.0.1   6380 "),
            Ok(Replicaof(Some(("10.0.0.1".into(), 6380))))
        );
        assert_eq!(parse_replicaof("NO ONE"), Ok(Replicaof(None)));
        for bad in ["", "host", "host 0", "host x", "a b c"] {
            assert!(parse_replicaof(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_yes_no("YES"), Ok(true));
        assert_eq!(parse_yes_no("no"), Ok(false));
        assert!(parse_yes_no("true").is_err());
        assert!(parse_backlog_size("0").is_err());
        assert_eq!(parse_backlog_size("1mb"), Ok(1 << 20));
    }

    #[test]
    fn flags_parse_with_redis_aliases() {
        let args = Args::try_parse_from([
            "baton",
            "--slaveof",
            "h 1",
            "--slave-read-only",
            "no",
            "--slave-priority",
            "0",
            "--client-output-buffer-limit",
            "replica 1 2 3",
            "--client-output-buffer-limit",
            "4 5 6",
        ])
        .unwrap();
        assert_eq!(args.replicaof, Some(Replicaof(Some(("h".into(), 1)))));
        assert!(!args.replica_read_only);
        assert_eq!(args.replica_priority, 0);
        assert_eq!(args.client_output_buffer_limit.len(), 2);
        let defaults = Args::try_parse_from(["baton"]).unwrap();
        assert!(defaults.replica_read_only);
        assert_eq!(defaults.repl_backlog_size, 1 << 20);
        assert_eq!(defaults.replica_priority, 100);
        assert!(defaults.client_output_buffer_limit.is_empty());
    }
}
