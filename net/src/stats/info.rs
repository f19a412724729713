//! INFO [section ...]: gathers each core's numbers (one job per core) and renders Redis's
//! `# Section` / `field:value` text. Rendering is a pure function of what was gathered.
//!
//! Sections: server, clients, memory, stats, cpu, commandstats, keyspace, and Baton's
//! own `cores` (one line per core). `default` (or no argument) is all but commandstats;
//! `all` and `everything` are all of them. Names are case-insensitive; unknown ones add
//! nothing.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use baton_engine::clock;
use baton_engine::command::row_name;
use baton_engine::runtime::Core;
use bytes::Bytes;

use super::CommandCounts;
use crate::config::Shared;
use crate::netcore::NetCore;

/// The Redis version Baton reports (INFO, HELLO), for clients that gate features on it.
pub const REDIS_VERSION: &str = "7.2.0";

/// One core's numbers.
#[derive(Debug, Default, Clone)]
pub struct CoreInfo {
    pub keys: u64,
    pub expires: u64,
    /// Mean remaining TTL of this shard's volatile keys, ms.
    pub avg_ttl: u64,
    pub used_memory: u64,
    pub maxmemory: u64,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
    pub clients: u64,
    pub processed: u64,
    pub ops_per_sec: u64,
    pub commands: Vec<(usize, CommandCounts)>,
    /// Channels and patterns with subscribers on this core (INFO counts distinct ones).
    pub pubsub_channels: Vec<bytes::Bytes>,
    pub pubsub_patterns: Vec<bytes::Bytes>,
}

impl CoreInfo {
    /// Reads the numbers of the core this runs on.
    fn collect(nc: &NetCore, now: u64) -> CoreInfo {
        let shard = nc.core.shard.borrow();
        CoreInfo {
            keys: shard.len() as u64,
            expires: shard.expires() as u64,
            avg_ttl: shard.avg_ttl(now),
            used_memory: shard.used_memory() as u64,
            maxmemory: shard.maxmemory() as u64,
            hits: shard.stats.keyspace_hits,
            misses: shard.stats.keyspace_misses,
            expired: shard.stats.expired_keys,
            evicted: shard.stats.evicted_keys,
            clients: nc.clients.len() as u64,
            processed: nc.stats.processed(),
            ops_per_sec: nc.stats.ops_per_sec(),
            commands: nc.stats.counts(),
            pubsub_channels: nc.pubsub.channel_names(None),
            pubsub_patterns: nc.pubsub.pattern_names(),
        }
    }
}

/// Process-wide facts, read on the core that answers.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub port: u16,
    pub pid: u32,
    pub run_id: String,
    pub config_file: String,
    pub now_us: u64,
    pub uptime_secs: u64,
    pub executable: String,
    pub cores: usize,
    pub connected_clients: u64,
    pub blocked_clients: u64,
    pub maxclients: u64,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub rss: u64,
    pub total_system_memory: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    /// getrusage(2) of the process and of its children, microseconds.
    pub cpu: Cpu,
    /// The `# Replication` lines ([`crate::repl::commands::info_lines`]).
    pub replication: Vec<String>,
    /// `sync_full`, `sync_partial_ok`, `sync_partial_err`.
    pub syncs: [u64; 3],
    /// `--cluster-enabled yes`.
    pub cluster_enabled: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Cpu {
    pub sys: u64,
    pub user: u64,
    pub sys_children: u64,
    pub user_children: u64,
}

impl Facts {
    fn read(core: &Core, shared: &Shared) -> Facts {
        let now_us = now_us();
        let s = &shared.settings;
        Facts {
            cluster_enabled: shared.cluster.get().is_some(),
            port: shared.redis_port,
            pid: std::process::id(),
            run_id: shared.run_id.clone(),
            config_file: shared
                .config
                .config_file
                .as_ref()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            now_us,
            uptime_secs: (now_us / 1000).saturating_sub(shared.started_ms) / 1000,
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            cores: core.cores,
            connected_clients: shared.connected_clients.load(Ordering::Relaxed),
            blocked_clients: shared.blocked_clients.load(Ordering::Relaxed),
            maxclients: s.maxclients.load(Ordering::Relaxed),
            total_connections: shared.total_connections.load(Ordering::Relaxed),
            rejected_connections: shared.rejected_connections.load(Ordering::Relaxed),
            rss: rss_bytes(),
            total_system_memory: total_system_memory(),
            maxmemory: s.maxmemory.load(Ordering::Relaxed),
            maxmemory_policy: s.maxmemory_policy.lock().unwrap().clone(),
            cpu: cpu_usage(),
            replication: crate::repl::commands::info_lines(shared),
            syncs: {
                let st = &shared.repl.stats;
                [
                    st.full.load(Ordering::Relaxed),
                    st.partial_ok.load(Ordering::Relaxed),
                    st.partial_err.load(Ordering::Relaxed),
                ]
            },
        }
    }
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size())
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages > 0 {
        pages as u64 * page_size()
    } else {
        0
    }
}

/// CPU time of the process and of its waited-for children, from getrusage(2).
pub fn cpu_usage() -> Cpu {
    fn usage(who: libc::c_int) -> (u64, u64) {
        // SAFETY: all-zero is a valid rusage; getrusage only writes into it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a live, writable rusage.
        if unsafe { libc::getrusage(who, &mut ru) } != 0 {
            return (0, 0);
        }
        let us = |t: libc::timeval| t.tv_sec.max(0) as u64 * 1_000_000 + t.tv_usec.max(0) as u64;
        (us(ru.ru_stime), us(ru.ru_utime))
    }
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (sys_children, user_children) = usage(libc::RUSAGE_CHILDREN);
    Cpu {
        sys,
        user,
        sys_children,
        user_children,
    }
}

/// The sections in output order, and whether `default` includes each.
const SECTIONS: [(&str, bool); 10] = [
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("commandstats", false),
    ("cluster", true),
    ("keyspace", true),
    ("cores", true),
];

/// Which sections the arguments ask for, in output order (server, clients, ..., cores).
pub fn wanted(args: &[Bytes]) -> [bool; SECTIONS.len()] {
    let mut want = [false; SECTIONS.len()];
    let asked = |name: &str| args.iter().any(|a| a.eq_ignore_ascii_case(name.as_bytes()));
    let all = asked("all") || asked("everything");
    let default = args.is_empty() || asked("default");
    for (i, (name, in_default)) in SECTIONS.iter().enumerate() {
        want[i] = all || (default && *in_default) || asked(name);
    }
    want
}

/// INFO [section ...]
pub async fn info(nc: &NetCore, args: &[Bytes]) -> String {
    let cores = nc.on_every_core(CoreInfo::collect).await;
    render(&wanted(args), &Facts::read(&nc.core, &nc.shared), &cores)
}

/// Redis's bytesToHuman: `1023B`, `1.50K`, `2.00M`, ...
pub fn human(n: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2}{}", UNITS[unit])
}

/// `seconds.micros`, as Redis prints CPU time.
fn secs(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Renders the wanted sections.
pub fn render(want: &[bool; SECTIONS.len()], f: &Facts, cores: &[CoreInfo]) -> String {
    let sum = |g: fn(&CoreInfo) -> u64| cores.iter().map(g).sum::<u64>();
    let mut out = String::new();
    for (i, (name, _)) in SECTIONS.iter().enumerate() {
        if !want[i] {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut lines: Vec<String> = Vec::new();
        let title = match *name {
            "server" => {
                lines.extend([
                    format!("redis_version:{REDIS_VERSION}"),
                    format!("baton_version:{}", env!("CARGO_PKG_VERSION")),
                    format!(
                        "redis_mode:{}",
                        if f.cluster_enabled {
                            "cluster"
                        } else {
                            "standalone"
                        }
                    ),
                    format!("os:{} {}", std::env::consts::OS, std::env::consts::ARCH),
                    "arch_bits:64".into(),
                    "multiplexing_api:io_uring".into(),
                    format!("process_id:{}", f.pid),
                    format!("run_id:{}", f.run_id),
                    format!("tcp_port:{}", f.port),
                    format!("server_time_usec:{}", f.now_us),
                    format!("uptime_in_seconds:{}", f.uptime_secs),
                    format!("uptime_in_days:{}", f.uptime_secs / 86400),
                    format!("executable:{}", f.executable),
                    format!("config_file:{}", f.config_file),
                    "io_threads_active:0".into(),
                    format!("cores:{}", f.cores),
                ]);
                "Server"
            }
            "clients" => {
                lines.extend([
                    format!("connected_clients:{}", f.connected_clients),
                    "cluster_connections:0".into(),
                    format!("maxclients:{}", f.maxclients),
                    format!("blocked_clients:{}", f.blocked_clients),
                    "tracking_clients:0".into(),
                ]);
                "Clients"
            }
            "memory" => {
                let used = sum(|c| c.used_memory);
                let ratio = if used > 0 {
                    f.rss as f64 / used as f64
                } else {
                    0.0
                };
                lines.extend([
                    format!("used_memory:{used}"),
                    format!("used_memory_human:{}", human(used)),
                    format!("used_memory_rss:{}", f.rss),
                    format!("used_memory_rss_human:{}", human(f.rss)),
                    format!("total_system_memory:{}", f.total_system_memory),
                    format!("total_system_memory_human:{}", human(f.total_system_memory)),
                    format!("maxmemory:{}", f.maxmemory),
                    format!("maxmemory_human:{}", human(f.maxmemory)),
                    format!("maxmemory_policy:{}", f.maxmemory_policy),
                    format!("mem_fragmentation_ratio:{ratio:.2}"),
                ]);
                "Memory"
            }
            "stats" => {
                lines.extend([
                    format!("total_connections_received:{}", f.total_connections),
                    format!("total_commands_processed:{}", sum(|c| c.processed)),
                    format!("instantaneous_ops_per_sec:{}", sum(|c| c.ops_per_sec)),
                    format!("rejected_connections:{}", f.rejected_connections),
                    format!("sync_full:{}", f.syncs[0]),
                    format!("sync_partial_ok:{}", f.syncs[1]),
                    format!("sync_partial_err:{}", f.syncs[2]),
                    format!("expired_keys:{}", sum(|c| c.expired)),
                    format!("evicted_keys:{}", sum(|c| c.evicted)),
                    format!("keyspace_hits:{}", sum(|c| c.hits)),
                    format!("keyspace_misses:{}", sum(|c| c.misses)),
                    format!(
                        "pubsub_channels:{}",
                        distinct(cores, |c| &c.pubsub_channels)
                    ),
                    format!(
                        "pubsub_patterns:{}",
                        distinct(cores, |c| &c.pubsub_patterns)
                    ),
                    "pubsubshard_channels:0".to_string(),
                ]);
                "Stats"
            }
            "replication" => {
                lines.extend(f.replication.iter().cloned());
                "Replication"
            }
            "cpu" => {
                lines.extend([
                    format!("used_cpu_sys:{}", secs(f.cpu.sys)),
                    format!("used_cpu_user:{}", secs(f.cpu.user)),
                    format!("used_cpu_sys_children:{}", secs(f.cpu.sys_children)),
                    format!("used_cpu_user_children:{}", secs(f.cpu.user_children)),
                ]);
                "CPU"
            }
            "commandstats" => {
                lines.extend(commandstats(cores));
                "Commandstats"
            }
            "cluster" => {
                lines.push(format!("cluster_enabled:{}", u8::from(f.cluster_enabled)));
                "Cluster"
            }
            "keyspace" => {
                let (keys, expires) = (sum(|c| c.keys), sum(|c| c.expires));
                if keys > 0 {
                    // Each shard's mean weighted by its volatile keys.
                    let weighted: u128 = cores
                        .iter()
                        .map(|c| c.avg_ttl as u128 * c.expires as u128)
                        .sum();
                    let avg_ttl = weighted.checked_div(expires as u128).unwrap_or(0);
                    lines.push(format!(
                        "db0:keys={keys},expires={expires},avg_ttl={avg_ttl}"
                    ));
                }
                "Keyspace"
            }
            _ => {
                for (i, c) in cores.iter().enumerate() {
                    lines.push(format!(
                        "core{i}:keys={},expires={},used_memory={},maxmemory={},clients={},ops={},ops_per_sec={}",
                        c.keys, c.expires, c.used_memory, c.maxmemory, c.clients, c.processed, c.ops_per_sec
                    ));
                }
                "Cores"
            }
        };
        let _ = write!(out, "# {title}\r\n");
        for l in lines {
            out.push_str(&l);
            out.push_str("\r\n");
        }
    }
    out
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`
/// for every command or subcommand that counted anything, in table order.
fn commandstats(cores: &[CoreInfo]) -> Vec<String> {
    let mut rows: std::collections::BTreeMap<usize, CommandCounts> = Default::default();
    for c in cores {
        for (row, n) in &c.commands {
            rows.entry(*row).or_default().add(n);
        }
    }
    rows.into_iter()
        .filter_map(|(row, n)| {
            let name = row_name(row)?;
            let usec = clock::to_us(n.ticks);
            let per_call = if n.calls > 0 {
                usec as f64 / n.calls as f64
            } else {
                0.0
            };
            Some(format!(
                "cmdstat_{name}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                n.calls, n.rejected, n.failed
            ))
        })
        .collect()
}

/// How many distinct names the cores' lists hold together (a channel with subscribers
/// on two cores is one channel).
fn distinct(cores: &[CoreInfo], names: impl Fn(&CoreInfo) -> &Vec<bytes::Bytes>) -> usize {
    cores
        .iter()
        .flat_map(|c| names(c).iter())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_engine::command::{command_index, lookup};

    fn want(args: &[&str]) -> Vec<&'static str> {
        let args: Vec<Bytes> = args.iter().map(|s| Bytes::from(s.to_string())).collect();
        let w = wanted(&args);
        SECTIONS
            .iter()
            .zip(w)
            .filter(|(_, on)| *on)
            .map(|((n, _), _)| *n)
            .collect()
    }

    #[test]
    fn section_selection() {
        let default = [
            "server",
            "clients",
            "memory",
            "stats",
            "replication",
            "cpu",
            "cluster",
            "keyspace",
            "cores",
        ];
        assert_eq!(want(&[]), default);
        assert_eq!(want(&["DEFAULT"]), default);
        assert_eq!(want(&["all"]).len(), SECTIONS.len());
        assert_eq!(want(&["everything"]).len(), SECTIONS.len());
        assert_eq!(want(&["Stats", "CPU"]), ["stats", "cpu"]);
        assert_eq!(want(&["default", "commandstats"]).len(), SECTIONS.len());
        assert!(want(&["nosuch"]).is_empty());
    }

    #[test]
    fn renders_sums_over_cores() {
        let get = command_index(lookup(b"get").unwrap());
        let core = |keys, expires, avg_ttl, calls| CoreInfo {
            keys,
            expires,
            avg_ttl,
            hits: 2,
            processed: calls,
            commands: vec![(
                get,
                CommandCounts {
                    calls,
                    ticks: 0,
                    rejected: 1,
                    failed: 0,
                },
            )],
            ..CoreInfo::default()
        };
        let mut cores = [core(3, 1, 1000, 4), core(5, 3, 3000, 6)];
        let names = |v: &[&'static str]| {
            v.iter()
                .map(|n| bytes::Bytes::from_static(n.as_bytes()))
                .collect::<Vec<_>>()
        };
        cores[0].pubsub_channels = names(&["a", "b"]);
        cores[1].pubsub_channels = names(&["b"]);
        cores[1].pubsub_patterns = names(&["p*"]);
        let all = [true; SECTIONS.len()];
        let text = render(&all, &Facts::default(), &cores);
        for want in [
            "# Server\r\nredis_version:",
            "\r\n\r\n# Stats\r\n",
            "\r\ntotal_commands_processed:10\r\n",
            "\r\nkeyspace_hits:4\r\n",
            "\r\npubsub_channels:2\r\npubsub_patterns:1\r\n",
            "\r\ncmdstat_get:calls=10,usec=0,usec_per_call=0.00,rejected_calls=2,failed_calls=0\r\n",
            "\r\n# Keyspace\r\ndb0:keys=8,expires=4,avg_ttl=2500\r\n",
            "\r\ncore1:keys=5,expires=3,",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        let mut only = [false; SECTIONS.len()];
        only[8] = true;
        assert_eq!(render(&only, &Facts::default(), &[]), "# Keyspace\r\n");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1536), "1.50K");
        assert_eq!(human(100 << 20), "100.00M");
        assert_eq!(human(u64::MAX), "16.00E");
        assert_eq!(secs(1_500_001), "1.500001");
    }
}
