//! CONFIG GET / SET: the table of parameters, with a getter each and, for those that can
//! change at run time, a parser that checks a value the way Redis 7 does and answers with
//! its exact error texts. (CONFIG RESETSTAT zeroes every core's counters: `crate::admin`.)
//!
//! Replication's settings (`replica-read-only`, `masterauth`, `repl-backlog-size`, ...) live
//! in `Shared::repl`, where the link and the feeds read them; Redis's `slave-*` names are
//! aliases of the `replica-*` ones.
//!
//! CONFIG SET with several `name value` pairs is atomic, as in Redis 7: every name is
//! looked up and every value parsed before anything changes. New values land in
//! [`Settings`](crate::config::Settings), where the rest of the server reads them;
//! `maxmemory` and `maxmemory-policy` are also handed to every shard.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use baton_engine::evict::EvictionPolicy;
use baton_engine::exec::on_every_core;
use baton_engine::glob::glob_match_nocase;
use baton_engine::reply::{errors, Reply};
use baton_engine::runtime::Core;
use bytes::Bytes;

use crate::config::{
    OutputLimit, Shared, DEFAULT_MAXCLIENTS, DEFAULT_REPLICA_PRIORITY, DEFAULT_REPL_BACKLOG_SIZE,
    DEFAULT_SLOWLOG_MAX_LEN, DEFAULT_SLOWLOG_SLOWER_THAN,
};
use crate::repl_state::{lock, Role};

/// The names `maxmemory-policy` accepts, in the order the error text lists them.
pub const POLICY_NAMES: [&str; 6] = EvictionPolicy::NAMES;

/// A checked new value, not yet applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    MaxClients(u64),
    Timeout(u64),
    /// `client-output-buffer-limit`: the classes it names (others keep their limits).
    OutputLimits {
        normal: Option<OutputLimit>,
        pubsub: Option<OutputLimit>,
        replica: Option<OutputLimit>,
    },
    SlowlogSlowerThan(i64),
    SlowlogMaxLen(u64),
    MaxMemory(u64),
    Policy(EvictionPolicy),
    /// `replica-read-only`.
    ReadOnly(bool),
    /// `masterauth` (empty: none).
    MasterAuth(Option<String>),
    /// `repl-backlog-size`: the total over all shards.
    BacklogSize(u64),
    /// `replica-priority`.
    Priority(u64),
    /// `replica-announce-ip` (empty: none).
    AnnounceIp(Option<String>),
    /// `replica-announce-port` (0: the port this server listens on).
    AnnouncePort(u64),
    /// `hash-max-listpack-entries`.
    HashMaxEntries(usize),
    /// `hash-max-listpack-value`.
    HashMaxValue(usize),
    /// `list-max-listpack-size`.
    ListMaxSize(i64),
    /// `set-max-intset-entries`.
    SetMaxIntset(usize),
    /// `zset-max-listpack-entries`.
    ZsetMaxEntries(usize),
    /// `zset-max-listpack-value`.
    ZsetMaxValue(usize),
    /// A value that is already in force (`appendonly no`, `save ""`).
    Unchanged,
}

type Getter = fn(&Shared) -> String;
/// Parses a value; the error is the text after `... - ` in Redis's reply.
type Parser = fn(&[u8]) -> Result<Change, String>;

/// One row of the table.
struct Param {
    name: &'static str,
    get: Getter,
    /// `None`: CONFIG SET answers "can't set immutable config".
    set: Option<Parser>,
    /// Its value is redacted in the slow log.
    sensitive: bool,
}

fn load(a: &std::sync::atomic::AtomicU64) -> String {
    a.load(Ordering::Relaxed).to_string()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// A string setting where empty means none, as Redis's `EMPTY_STRING_IS_NULL` configs.
fn optional_string(v: &[u8]) -> Option<String> {
    (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned())
}

/// Redis's other names for some parameters (`slave-*`): (alias, parameter).
static ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("slave-announce-ip", "replica-announce-ip"),
    ("slave-announce-port", "replica-announce-port"),
    ("slave-priority", "replica-priority"),
    ("slave-read-only", "replica-read-only"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
];

/// Every parameter, sorted by name.
static PARAMS: &[Param] = &[
    Param {
        name: "appendonly",
        get: |_| "no".into(),
        set: Some(|v| match parse_bool(v)? {
            false => Ok(Change::Unchanged),
            true => Err("Baton keeps no append-only file".into()),
        }),
        sensitive: false,
    },
    Param {
        name: "bind",
        get: |s| s.config.bind.clone(),
        set: None,
        sensitive: false,
    },
    Param {
        name: "client-output-buffer-limit",
        get: |s| {
            let l = s.settings.output_limit();
            let p = s.settings.pubsub_output_limit();
            let r = s.settings.replica_output_limit();
            format!(
                "normal {} {} {} slave {} {} {} pubsub {} {} {}",
                l.hard,
                l.soft,
                l.soft_secs,
                r.hard,
                r.soft,
                r.soft_secs,
                p.hard,
                p.soft,
                p.soft_secs
            )
        },
        set: Some(parse_output_limit),
        sensitive: false,
    },
    Param {
        name: "databases",
        get: |_| "1".into(),
        set: None,
        sensitive: false,
    },
    Param {
        name: "hash-max-listpack-entries",
        get: |_| baton_engine::hash::limits().max_entries.to_string(),
        set: Some(|v| int_in(v, 0, i64::MAX).map(|n| Change::HashMaxEntries(n as usize))),
        sensitive: false,
    },
    Param {
        name: "hash-max-listpack-value",
        get: |_| baton_engine::hash::limits().max_value.to_string(),
        set: Some(|v| byte_size(v).map(Change::HashMaxValue)),
        sensitive: false,
    },
    Param {
        name: "io-threads",
        get: |_| "1".into(),
        set: None,
        sensitive: false,
    },
    Param {
        name: "list-max-listpack-size",
        get: |_| baton_engine::list::max_size().to_string(),
        set: Some(|v| int_in(v, i32::MIN.into(), i32::MAX.into()).map(Change::ListMaxSize)),
        sensitive: false,
    },
    Param {
        name: "masterauth",
        get: |s| lock(&s.repl.masterauth).clone().unwrap_or_default(),
        set: Some(|v| Ok(Change::MasterAuth(optional_string(v)))),
        sensitive: true,
    },
    Param {
        name: "maxclients",
        get: |s| load(&s.settings.maxclients),
        set: Some(|v| {
            let n = int_in(v, 1, u32::MAX as i64)? as u64;
            fd_room_for(n)?;
            Ok(Change::MaxClients(n))
        }),
        sensitive: false,
    },
    Param {
        name: "maxmemory",
        get: |s| load(&s.settings.maxmemory),
        set: Some(|v| {
            parse_memory(v)
                .map(Change::MaxMemory)
                .ok_or_else(|| "argument must be a memory value".into())
        }),
        sensitive: false,
    },
    Param {
        name: "maxmemory-policy",
        get: |s| s.settings.maxmemory_policy.lock().unwrap().clone(),
        set: Some(|v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|n| {
                    let p = EvictionPolicy::parse(n)?;
                    if EvictionPolicy::is_alias(n) {
                        tracing::warn!(
                            "maxmemory-policy {n} is served by {}: Baton evicts with S3-FIFO",
                            p.name()
                        );
                    }
                    Some(p)
                })
                .map(Change::Policy)
                .ok_or_else(|| {
                    format!(
                        "argument(s) must be one of the following: {}",
                        POLICY_NAMES.join(", ")
                    )
                })
        }),
        sensitive: false,
    },
    Param {
        name: "port",
        get: |s| s.redis_port.to_string(),
        set: None,
        sensitive: false,
    },
    Param {
        name: "proto-max-bulk-len",
        get: |s| s.config.limits.max_bulk_len.to_string(),
        set: None,
        sensitive: false,
    },
    Param {
        name: "repl-backlog-size",
        get: |s| load(&s.repl.backlog_size),
        set: Some(|v| match parse_memory(v) {
            None => Err("argument must be a memory value".into()),
            Some(0) => Err(format!(
                "argument must be between 1 and {} inclusive",
                i64::MAX
            )),
            Some(n) => Ok(Change::BacklogSize(n)),
        }),
        sensitive: false,
    },
    Param {
        name: "replica-announce-ip",
        get: |s| lock(&s.repl.announce_ip).clone().unwrap_or_default(),
        set: Some(|v| Ok(Change::AnnounceIp(optional_string(v)))),
        sensitive: false,
    },
    Param {
        name: "replica-announce-port",
        get: |s| load(&s.repl.announce_port),
        set: Some(|v| int_in(v, 0, 65535).map(|n| Change::AnnouncePort(n as u64))),
        sensitive: false,
    },
    Param {
        name: "replica-priority",
        get: |s| load(&s.repl.priority),
        set: Some(|v| int_in(v, 0, i32::MAX as i64).map(|n| Change::Priority(n as u64))),
        sensitive: false,
    },
    Param {
        name: "replica-read-only",
        get: |s| yes_no(s.repl.read_only.load(Ordering::Relaxed)),
        set: Some(|v| parse_bool(v).map(Change::ReadOnly)),
        sensitive: false,
    },
    Param {
        name: "requirepass",
        get: |s| s.config.requirepass.clone().unwrap_or_default(),
        set: None,
        sensitive: true,
    },
    Param {
        name: "save",
        get: |_| String::new(),
        set: Some(|v| match v {
            b"" => Ok(Change::Unchanged),
            _ => Err("Baton does not save snapshots; only \"\" is accepted".into()),
        }),
        sensitive: false,
    },
    // Sets (issue 14). Redis 7.0 has no set-max-listpack-* (7.2 added them).
    Param {
        name: "set-max-intset-entries",
        get: |_| baton_engine::set::max_intset_entries().to_string(),
        set: Some(|v| int_in(v, 0, i64::MAX).map(|n| Change::SetMaxIntset(n as usize))),
        sensitive: false,
    },
    Param {
        name: "slowlog-log-slower-than",
        get: |s| {
            s.settings
                .slowlog_log_slower_than
                .load(Ordering::Relaxed)
                .to_string()
        },
        set: Some(|v| int_in(v, -1, i64::MAX).map(Change::SlowlogSlowerThan)),
        sensitive: false,
    },
    Param {
        name: "slowlog-max-len",
        get: |s| load(&s.settings.slowlog_max_len),
        set: Some(|v| int_in(v, 0, i64::MAX).map(|n| Change::SlowlogMaxLen(n as u64))),
        sensitive: false,
    },
    Param {
        name: "timeout",
        get: |s| load(&s.settings.timeout_secs),
        set: Some(|v| int_in(v, 0, i32::MAX as i64).map(|n| Change::Timeout(n as u64))),
        sensitive: false,
    },
    Param {
        name: "zset-max-listpack-entries",
        get: |_| baton_engine::zset::limits().max_entries.to_string(),
        set: Some(|v| int_in(v, 0, i64::MAX).map(|n| Change::ZsetMaxEntries(n as usize))),
        sensitive: false,
    },
    Param {
        name: "zset-max-listpack-value",
        get: |_| baton_engine::zset::limits().max_value.to_string(),
        set: Some(|v| byte_size(v).map(Change::ZsetMaxValue)),
        sensitive: false,
    },
];

fn find(name: &[u8]) -> Option<&'static Param> {
    let by_name = |n: &[u8]| {
        PARAMS
            .iter()
            .find(|p| p.name.as_bytes().eq_ignore_ascii_case(n))
    };
    by_name(name).or_else(|| {
        ALIASES
            .iter()
            .find(|(alias, _)| alias.as_bytes().eq_ignore_ascii_case(name))
            .and_then(|(_, canonical)| by_name(canonical.as_bytes()))
    })
}

/// Every name CONFIG GET knows, aliases included, with its parameter.
fn names() -> impl Iterator<Item = (&'static str, &'static Param)> {
    PARAMS.iter().map(|p| (p.name, p)).chain(
        ALIASES
            .iter()
            .filter_map(|(alias, canonical)| Some((*alias, find(canonical.as_bytes())?))),
    )
}

/// Whether CONFIG SET `name`'s value is a secret (kept out of the slow log).
pub fn is_sensitive(name: &[u8]) -> bool {
    find(name).is_some_and(|p| p.sensitive)
}

/// Raises the open-files limit for `maxclients` clients if it must (as Redis does on
/// CONFIG SET maxclients), or says how many clients the system allows.
fn fd_room_for(maxclients: u64) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let reserved = crate::protect::reserved_fds(cores);
    let wanted = maxclients.saturating_add(reserved);
    match crate::protect::raise_open_files_limit(wanted) {
        Ok(lim) if lim.after < wanted => Err(format!(
            "The operating system is not able to handle the specified number of clients, try with {}",
            lim.after.saturating_sub(reserved)
        )),
        _ => Ok(()),
    }
}

/// An integer as Redis's numeric configs take it (no sign, spaces or leading zeros),
/// within `min..=max`; the error is Redis's text after `... - `.
pub fn int_in(v: &[u8], min: i64, max: i64) -> Result<i64, String> {
    match baton_engine::commands::parse_i64(v) {
        None => Err("argument couldn't be parsed into an integer".into()),
        Some(n) if n < min || n > max => Err(format!(
            "argument must be between {min} and {max} inclusive"
        )),
        Some(n) => Ok(n),
    }
}

fn parse_bool(v: &[u8]) -> Result<bool, String> {
    if v.eq_ignore_ascii_case(b"yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case(b"no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

/// A byte count with Redis's units within `0..=i64::MAX`, as Redis's `ssize_t` memory
/// configs take it (`hash-max-listpack-value 1kb`); the error is Redis's text.
pub fn byte_size(v: &[u8]) -> Result<usize, String> {
    match parse_memory(v) {
        None => Err("argument must be a memory value".into()),
        Some(n) if n > i64::MAX as u64 => Err(format!(
            "argument must be between 0 and {} inclusive",
            i64::MAX
        )),
        Some(n) => Ok(n as usize),
    }
}

/// A byte count with Redis's units (`100mb`); empty means 0, as in Redis.
fn parse_memory(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return Some(0);
    }
    crate::units::parse_bytes(std::str::from_utf8(v).ok()?).ok()
}

/// `<class> <hard> <soft> <soft-seconds>` for one or more classes: `normal`, `pubsub`, and
/// `replica` (or `slave`) for replicas' flow connections.
fn parse_output_limit(v: &[u8]) -> Result<Change, String> {
    let text = std::str::from_utf8(v).map_err(|_| {
        "Error in hard, soft or soft_seconds setting in buffer limit configuration."
    })?;
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let (mut normal, mut pubsub, mut replica) = (None, None, None);
    for group in words.chunks(4) {
        let class = group[0].to_ascii_lowercase();
        if !["normal", "replica", "slave", "pubsub"].contains(&class.as_str()) {
            return Err("Invalid client class specified in buffer limit configuration.".into());
        }
        let nums: Option<Vec<u64>> = group[1..]
            .iter()
            .map(|w| parse_memory(w.as_bytes()))
            .collect();
        let Some(nums) = nums else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            );
        };
        let limit = Some(OutputLimit {
            hard: nums[0],
            soft: nums[1],
            soft_secs: nums[2],
        });
        match class.as_str() {
            "normal" => normal = limit,
            "pubsub" => pubsub = limit,
            _ => replica = limit,
        }
    }
    if normal.is_none() && pubsub.is_none() && replica.is_none() {
        return Ok(Change::Unchanged);
    }
    Ok(Change::OutputLimits {
        normal,
        pubsub,
        replica,
    })
}

/// CONFIG GET pattern [pattern ...]: every parameter matching any pattern, once.
pub fn get(shared: &Shared, patterns: &[Bytes]) -> Reply {
    Reply::Map(
        names()
            .filter(|(name, _)| {
                patterns
                    .iter()
                    .any(|pat| glob_match_nocase(pat, name.as_bytes()))
            })
            .map(|(name, p)| {
                (
                    Reply::Bulk(Bytes::from_static(name.as_bytes())),
                    Reply::Bulk(Bytes::from((p.get)(shared))),
                )
            })
            .collect(),
    )
}

/// Checks CONFIG SET's `name value` pairs (`pairs` = the arguments after `SET`) and
/// returns the changes to apply, or Redis's error reply. Nothing is applied here.
pub fn check_set(pairs: &[Bytes]) -> Result<Vec<Change>, Reply> {
    if !pairs.len().is_multiple_of(2) {
        return Err(errors::SYNTAX);
    }
    let failed = |name: &str, why: &str| {
        Reply::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    // Names first, in order; the first problem is the answer (as Redis's loop).
    let mut params: Vec<&'static Param> = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        let given = String::from_utf8_lossy(&pair[0]);
        let Some(p) = find(&pair[0]) else {
            return Err(Reply::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{given}'"
            )));
        };
        if p.set.is_none() {
            return Err(failed(&given, "can't set immutable config"));
        }
        if params.iter().any(|q| std::ptr::eq(*q, p)) {
            return Err(failed(&given, "duplicate parameter"));
        }
        params.push(p);
    }
    params
        .iter()
        .zip(pairs.chunks(2))
        .map(|(p, pair)| match p.set {
            Some(parse) => parse(&pair[1]).map_err(|why| failed(p.name, &why)),
            None => Err(failed(p.name, "can't set immutable config")),
        })
        .collect()
}

/// Applies checked changes: settings first, then what the shards must know.
pub async fn apply(core: &Rc<Core>, shared: &Arc<Shared>, changes: Vec<Change>) {
    let s = &shared.settings;
    for change in changes {
        match change {
            Change::MaxClients(n) => s.maxclients.store(n, Ordering::Relaxed),
            Change::Timeout(n) => s.timeout_secs.store(n, Ordering::Relaxed),
            Change::OutputLimits {
                normal,
                pubsub,
                replica,
            } => {
                if let Some(l) = normal {
                    s.output_hard.store(l.hard, Ordering::Relaxed);
                    s.output_soft.store(l.soft, Ordering::Relaxed);
                    s.output_soft_secs.store(l.soft_secs, Ordering::Relaxed);
                }
                if let Some(l) = pubsub {
                    s.pubsub_hard.store(l.hard, Ordering::Relaxed);
                    s.pubsub_soft.store(l.soft, Ordering::Relaxed);
                    s.pubsub_soft_secs.store(l.soft_secs, Ordering::Relaxed);
                }
                if let Some(l) = replica {
                    s.replica_hard.store(l.hard, Ordering::Relaxed);
                    s.replica_soft.store(l.soft, Ordering::Relaxed);
                    s.replica_soft_secs.store(l.soft_secs, Ordering::Relaxed);
                    shared
                        .repl
                        .replica_hard_limit
                        .store(l.hard, Ordering::Relaxed);
                    shared.repl.resize_backlogs();
                }
            }
            Change::SlowlogSlowerThan(n) => s.slowlog_log_slower_than.store(n, Ordering::Relaxed),
            Change::SlowlogMaxLen(n) => s.slowlog_max_len.store(n, Ordering::Relaxed),
            Change::MaxMemory(bytes) => {
                s.maxmemory.store(bytes, Ordering::Relaxed);
                let per_shard = shard_budget(bytes, core.cores);
                on_every_core(core, move |shard, now| shard.set_maxmemory(per_shard, now)).await;
            }
            Change::Policy(policy) => {
                *s.maxmemory_policy.lock().unwrap() = policy.name().to_string();
                on_every_core(core, move |shard, _| shard.set_policy(policy)).await;
            }
            Change::ReadOnly(on) => shared.repl.read_only.store(on, Ordering::Relaxed),
            Change::MasterAuth(auth) => *lock(&shared.repl.masterauth) = auth,
            Change::BacklogSize(total) => set_backlog_size(shared, total),
            Change::Priority(n) => shared.repl.priority.store(n, Ordering::Relaxed),
            Change::AnnounceIp(ip) => *lock(&shared.repl.announce_ip) = ip,
            Change::AnnouncePort(n) => shared.repl.announce_port.store(n, Ordering::Relaxed),
            // Process-wide: every shard reads them when a hash is written.
            Change::HashMaxEntries(n) => baton_engine::hash::set_max_entries(n),
            Change::HashMaxValue(n) => baton_engine::hash::set_max_value(n),
            Change::ListMaxSize(n) => baton_engine::list::set_max_size(n),
            Change::SetMaxIntset(n) => baton_engine::set::set_max_intset_entries(n),
            Change::ZsetMaxEntries(n) => baton_engine::zset::set_max_entries(n),
            Change::ZsetMaxValue(n) => baton_engine::zset::set_max_value(n),
            Change::Unchanged => {}
        }
    }
}

/// Sets `repl-backlog-size` (the total over all shards): journals created from now on get
/// their part, and every shard's existing journal is resized to it.
pub fn set_backlog_size(shared: &Shared, total: u64) {
    let repl = &shared.repl;
    repl.backlog_size.store(total, Ordering::Relaxed);
    repl.resize_backlogs();
}

/// Each shard's part of `maxmemory` (0 = no limit stays 0).
/// A non-zero limit smaller than the number of cores still gives every shard a byte.
pub fn shard_budget(maxmemory: u64, cores: usize) -> usize {
    match maxmemory {
        0 => 0,
        m => (m / cores.max(1) as u64).clamp(1, usize::MAX as u64) as usize,
    }
}

/// One setting CONFIG REWRITE keeps in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// What names its lines (see [`line_key`]): the setting's name, and for
    /// `client-output-buffer-limit` the class too.
    pub key: String,
    /// Its line as things are now; `None` drops every line of it.
    pub line: Option<String>,
    /// Whether a file without such a line gets it appended: the value differs from what
    /// the binary starts with.
    pub append: bool,
}

impl Rewrite {
    /// `name value`, appended only when `value` is not `default`.
    fn value(name: &str, value: String, default: &str) -> Rewrite {
        Rewrite {
            key: name.to_string(),
            append: value != default,
            line: Some(format!("{name} {}", quote(&value))),
        }
    }

    /// `name value` when there is a value; no line at all when there is none.
    fn optional(name: &str, value: Option<String>) -> Rewrite {
        Rewrite {
            key: name.to_string(),
            append: value.is_some(),
            line: value.map(|v| format!("{name} {}", quote(&v))),
        }
    }

    /// `client-output-buffer-limit <class> <hard> <soft> <secs>`, as Redis writes it.
    fn output_limit(class: &str, now: OutputLimit, default: OutputLimit) -> Rewrite {
        let name = "client-output-buffer-limit";
        Rewrite {
            key: format!("{name} {class}"),
            append: now != default,
            line: Some(format!(
                "{name} {class} {} {} {}",
                now.hard, now.soft, now.soft_secs
            )),
        }
    }
}

/// The settings CONFIG REWRITE writes: each run-time setting whose config-file line is a
/// flag of the binary, with its value as that flag reads it, and `replicaof` while this
/// server is a replica (none while it is a primary: sentinel's `SLAVEOF NO ONE` then
/// `CONFIG REWRITE` must leave a file that starts a primary).
fn rewritable(s: &Shared) -> Vec<Rewrite> {
    let repl = &s.repl;
    let replicaof = match repl.role() {
        Role::Primary => None,
        Role::Replica { host, port } => Some(format!("{host} {port}")),
    };
    let mut out = vec![
        Rewrite::output_limit("normal", s.settings.output_limit(), OutputLimit::default()),
        Rewrite::output_limit(
            "pubsub",
            s.settings.pubsub_output_limit(),
            OutputLimit::PUBSUB,
        ),
        Rewrite::output_limit(
            "replica",
            s.settings.replica_output_limit(),
            OutputLimit::REPLICA,
        ),
        Rewrite::optional("masterauth", lock(&repl.masterauth).clone()),
        Rewrite::value(
            "maxclients",
            load(&s.settings.maxclients),
            &DEFAULT_MAXCLIENTS.to_string(),
        ),
        Rewrite::value("maxmemory", load(&s.settings.maxmemory), "0"),
        Rewrite::value(
            "maxmemory-policy",
            s.settings.maxmemory_policy.lock().unwrap().clone(),
            EvictionPolicy::default().name(),
        ),
        Rewrite::value(
            "repl-backlog-size",
            load(&repl.backlog_size),
            &DEFAULT_REPL_BACKLOG_SIZE.to_string(),
        ),
        Rewrite::optional("replica-announce-ip", lock(&repl.announce_ip).clone()),
        Rewrite::value("replica-announce-port", load(&repl.announce_port), "0"),
        Rewrite::value(
            "replica-priority",
            load(&repl.priority),
            &DEFAULT_REPLICA_PRIORITY.to_string(),
        ),
        Rewrite::value(
            "replica-read-only",
            yes_no(repl.read_only.load(Ordering::Relaxed)),
            "yes",
        ),
        Rewrite {
            key: "replicaof".into(),
            append: replicaof.is_some(),
            line: replicaof.map(|r| format!("replicaof {r}")),
        },
        Rewrite::value(
            "slowlog-log-slower-than",
            s.settings
                .slowlog_log_slower_than
                .load(Ordering::Relaxed)
                .to_string(),
            &DEFAULT_SLOWLOG_SLOWER_THAN.to_string(),
        ),
        Rewrite::value(
            "slowlog-max-len",
            load(&s.settings.slowlog_max_len),
            &DEFAULT_SLOWLOG_MAX_LEN.to_string(),
        ),
        Rewrite::value("timeout", load(&s.settings.timeout_secs), "0"),
    ];
    out.extend(type_thresholds());
    out
}

/// The data-type thresholds (`hash-max-listpack-entries`, ...) as CONFIG REWRITE writes
/// them, each appended only when it differs from Redis's default.
fn type_thresholds() -> [Rewrite; 6] {
    use baton_engine::{hash, list, set, zset};
    let n = |v: usize| v.to_string();
    let (h, z) = (hash::limits(), zset::limits());
    [
        Rewrite::value(
            "hash-max-listpack-entries",
            n(h.max_entries),
            &n(hash::DEFAULT_MAX_ENTRIES),
        ),
        Rewrite::value(
            "hash-max-listpack-value",
            n(h.max_value),
            &n(hash::DEFAULT_MAX_VALUE),
        ),
        Rewrite::value(
            "list-max-listpack-size",
            list::max_size().to_string(),
            &list::DEFAULT_MAX_SIZE.to_string(),
        ),
        Rewrite::value(
            "set-max-intset-entries",
            n(set::max_intset_entries()),
            &n(set::DEFAULT_MAX_INTSET_ENTRIES),
        ),
        Rewrite::value(
            "zset-max-listpack-entries",
            n(z.max_entries),
            &n(zset::DEFAULT_MAX_ENTRIES),
        ),
        Rewrite::value(
            "zset-max-listpack-value",
            n(z.max_value),
            &n(zset::DEFAULT_MAX_VALUE),
        ),
    ]
}

/// What setting a config-file line sets, by the name [`Rewrite::key`] uses: Redis's
/// `slave*` names are their `replica*` names, `*-ziplist-*` their `*-listpack-*` names,
/// and `client-output-buffer-limit` lines are told apart by class (`normal` when none is given, as the flag reads them).
pub fn line_key(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let name = words.next()?.to_ascii_lowercase();
    let class = |c: &str| match c {
        "slave" => "replica".to_string(),
        c => c.to_string(),
    };
    Some(match name.as_str() {
        "slaveof" => "replicaof".into(),
        "slave-read-only" | "slave-priority" | "slave-announce-ip" | "slave-announce-port" => {
            name.replacen("slave", "replica", 1)
        }
        "hash-max-ziplist-entries"
        | "hash-max-ziplist-value"
        | "list-max-ziplist-size"
        | "zset-max-ziplist-entries"
        | "zset-max-ziplist-value" => name.replacen("ziplist", "listpack", 1),
        "client-output-buffer-limit-pubsub"
        | "client-output-buffer-limit-replica"
        | "client-output-buffer-limit-slave" => {
            let (base, c) = name.rsplit_once('-').expect("a dash in the name");
            format!("{base} {}", class(c))
        }
        "client-output-buffer-limit" => {
            let first = words
                .next()
                .unwrap_or("")
                .trim_start_matches('"')
                .to_ascii_lowercase();
            let c = match first.as_str() {
                "normal" | "pubsub" | "replica" | "slave" => class(&first),
                _ => "normal".into(),
            };
            format!("{name} {c}")
        }
        _ => name,
    })
}

/// The config file `old` with the first line of each rewritable setting set to its value
/// now (later duplicates go, and every line of a setting that has no value now), and the
/// settings the file did not name appended when they differ from the start value, as
/// Redis's CONFIG REWRITE does. Comments, blank lines and every other line stay as they
/// were.
pub fn rewritten(old: &str, values: &[Rewrite]) -> String {
    let mut seen = vec![false; values.len()];
    let mut out = String::with_capacity(old.len() + 256);
    for line in old.lines() {
        let key = line_key(line);
        match values.iter().position(|v| Some(&v.key) == key.as_ref()) {
            Some(i) if seen[i] => continue,
            Some(i) => {
                seen[i] = true;
                if let Some(l) = &values[i].line {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let mut header = false;
    for (i, v) in values.iter().enumerate() {
        let Some(line) = &v.line else { continue };
        if seen[i] || !v.append {
            continue;
        }
        if !header {
            out.push_str("# Generated by CONFIG REWRITE\n");
            header = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A value as a config line carries it: quoted when it has spaces.
fn quote(v: &str) -> String {
    if v.contains(char::is_whitespace) || v.is_empty() {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// CONFIG REWRITE: writes the current settings into the config file the server started
/// with (a new file renamed over the old one, so a crash leaves one or the other whole).
pub fn rewrite(s: &Shared) -> Reply {
    let Some(path) = &s.config.config_file else {
        return Reply::err("ERR The server is running without a config file");
    };
    let result = std::fs::read_to_string(path).and_then(|old| {
        let text = rewritten(&old, &rewritable(s));
        let tmp = path.with_extension("rewrite-tmp");
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    });
    match result {
        Ok(()) => {
            tracing::info!(file = %path.display(), "CONFIG REWRITE executed with success");
            Reply::Ok
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "CONFIG REWRITE failed");
            Reply::error(format!("ERR Rewriting config file: {e}"))
        }
    }
}

/// CONFIG HELP
pub fn help() -> Reply {
    let lines = [
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    ];
    Reply::help_lines(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_keeps_other_lines_updates_and_appends() {
        let old = "# my server\nport 7000\nmaxmemory 1mb\n\nmaxmemory 2mb\ntimeout 5\n";
        let limit = |n| OutputLimit {
            hard: n,
            soft: n + 1,
            soft_secs: n + 2,
        };
        let values = vec![
            Rewrite::value("maxmemory", "10485760".into(), "0"),
            Rewrite::value("timeout", "0".into(), "0"),
            Rewrite::value("maxclients", "10000".into(), "10000"),
            Rewrite::output_limit("normal", limit(1), limit(4)),
        ];
        assert_eq!(
            rewritten(old, &values),
            "# my server\nport 7000\nmaxmemory 10485760\n\ntimeout 0\n\
             # Generated by CONFIG REWRITE\nclient-output-buffer-limit normal 1 2 3\n"
        );
        assert_eq!(rewritten("", &values[2..3]), "", "defaults are not written");
    }

    #[test]
    fn value_thresholds_are_memory_values() {
        let ok = |v: &[&str]| check_set(&args(v)).unwrap();
        let failed = |name: &str, why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
        };
        assert_eq!(
            ok(&[
                "hash-max-listpack-value",
                "1kb",
                "zset-max-ziplist-value",
                "2K"
            ]),
            vec![Change::HashMaxValue(1024), Change::ZsetMaxValue(2000)]
        );
        assert_eq!(
            ok(&["hash-max-ziplist-value", ""]),
            vec![Change::HashMaxValue(0)]
        );
        for bad in ["-1", "+3", "1.5", "abc", "99999999999999999999"] {
            assert_eq!(
                err(&["zset-max-listpack-value", bad]),
                failed("zset-max-listpack-value", "argument must be a memory value")
            );
        }
        assert_eq!(
            err(&["hash-max-listpack-value", "9223372036854775808"]),
            failed(
                "hash-max-listpack-value",
                "argument must be between 0 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            err(&["hash-max-listpack-entries", "1kb"]),
            failed(
                "hash-max-listpack-entries",
                "argument couldn't be parsed into an integer"
            )
        );
    }

    #[test]
    fn rewrite_writes_ziplist_lines_under_their_listpack_names() {
        let values = vec![
            Rewrite::value("hash-max-listpack-entries", "10".into(), "128"),
            Rewrite::value("list-max-listpack-size", "-2".into(), "-2"),
            Rewrite::value("zset-max-listpack-value", "9".into(), "64"),
        ];
        assert_eq!(
            rewritten(
                "# c\nhash-max-ziplist-entries 5\nlist-max-ziplist-size 3\nHASH-MAX-LISTPACK-ENTRIES 6\n",
                &values
            ),
            "# c\nhash-max-listpack-entries 10\nlist-max-listpack-size -2\n\
             # Generated by CONFIG REWRITE\nzset-max-listpack-value 9\n"
        );
    }

    #[test]
    fn rewrite_tells_output_limit_classes_and_aliases_apart() {
        let limit = |n| OutputLimit {
            hard: n,
            soft: n,
            soft_secs: n,
        };
        let values = vec![
            Rewrite::output_limit("normal", limit(1), limit(1)),
            Rewrite::output_limit("pubsub", limit(2), limit(0)),
            Rewrite::output_limit("replica", limit(3), limit(0)),
            Rewrite::value("replica-priority", "7".into(), "100"),
            Rewrite::optional("masterauth", None),
        ];
        let old = "client-output-buffer-limit \"9 9 9\"\n\
                   client-output-buffer-limit slave 8 8 8\n\
                   client-output-buffer-limit-pubsub \"7 7 7\"\n\
                   slave-priority 5\nmasterauth secret\nreplica-priority 6\n";
        assert_eq!(
            rewritten(old, &values),
            "client-output-buffer-limit normal 1 1 1\n\
             client-output-buffer-limit replica 3 3 3\n\
             client-output-buffer-limit pubsub 2 2 2\n\
             replica-priority 7\n"
        );
        assert_eq!(line_key("SLAVEOF 1.2.3.4 5").as_deref(), Some("replicaof"));
        assert_eq!(
            line_key("client-output-buffer-limit-slave 1 2 3").as_deref(),
            Some("client-output-buffer-limit replica")
        );
        assert_eq!(
            line_key("client-output-buffer-limit \"pubsub 1 2 3\"").as_deref(),
            Some("client-output-buffer-limit pubsub")
        );
        assert_eq!(line_key("   "), None);
    }

    #[test]
    fn rewrite_writes_replicaof_only_on_a_replica() {
        let replica = |at: Option<&str>| Rewrite {
            key: "replicaof".into(),
            append: at.is_some(),
            line: at.map(|a| format!("replicaof {a}")),
        };
        let old = "port 7001\nslaveof 10.0.0.1 6379\n";
        assert_eq!(rewritten(old, &[replica(None)]), "port 7001\n");
        assert_eq!(
            rewritten(old, &[replica(Some("127.0.0.1 7000"))]),
            "port 7001\nreplicaof 127.0.0.1 7000\n"
        );
        assert_eq!(
            rewritten("port 7001\n", &[replica(Some("h 1"))]),
            "port 7001\n# Generated by CONFIG REWRITE\nreplicaof h 1\n"
        );
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    fn err(v: &[&str]) -> String {
        match check_set(&args(v)) {
            Err(Reply::Error(e)) => String::from_utf8(e.to_vec()).unwrap(),
            other => panic!("{v:?}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn table_is_sorted() {
        for w in PARAMS.windows(2) {
            assert!(w[0].name < w[1].name, "{}", w[1].name);
        }
        for (alias, canonical) in ALIASES {
            assert_eq!(find(alias.as_bytes()).map(|p| p.name), Some(*canonical));
            assert_eq!(
                find(alias.to_ascii_uppercase().as_bytes()).map(|p| p.name),
                Some(*canonical)
            );
        }
        for name in POLICY_NAMES {
            assert_eq!(EvictionPolicy::parse(name).map(|p| p.name()), Some(name));
        }
    }

    #[test]
    fn values_parse_like_redis() {
        let ok = |v: &[&str]| check_set(&args(v)).unwrap();
        assert_eq!(ok(&["maxclients", "5"]), vec![Change::MaxClients(5)]);
        assert_eq!(
            ok(&["MAXMEMORY", "100mb"]),
            vec![Change::MaxMemory(100 << 20)]
        );
        assert_eq!(
            ok(&["maxmemory", "1G"]),
            vec![Change::MaxMemory(1_000_000_000)]
        );
        assert_eq!(ok(&["maxmemory", ""]), vec![Change::MaxMemory(0)]);
        assert_eq!(
            ok(&["slowlog-log-slower-than", "-1", "slowlog-max-len", "0"]),
            vec![Change::SlowlogSlowerThan(-1), Change::SlowlogMaxLen(0)]
        );
        assert_eq!(
            ok(&["maxmemory-policy", "ALLKEYS-RANDOM"]),
            vec![Change::Policy(EvictionPolicy::AllkeysRandom)]
        );
        assert_eq!(
            ok(&["client-output-buffer-limit", "normal 1mb 2k 3 pubsub 1 2 3"]),
            vec![Change::OutputLimits {
                normal: Some(OutputLimit {
                    hard: 1 << 20,
                    soft: 2000,
                    soft_secs: 3
                }),
                pubsub: Some(OutputLimit {
                    hard: 1,
                    soft: 2,
                    soft_secs: 3
                }),
                replica: None,
            }]
        );
        assert_eq!(
            ok(&["client-output-buffer-limit", ""]),
            vec![Change::Unchanged]
        );
        assert_eq!(
            ok(&["client-output-buffer-limit", "slave 1 2 3"]),
            vec![Change::OutputLimits {
                normal: None,
                pubsub: None,
                replica: Some(OutputLimit {
                    hard: 1,
                    soft: 2,
                    soft_secs: 3
                }),
            }]
        );
        assert_eq!(
            ok(&[
                "slave-read-only",
                "no",
                "masterauth",
                "pw",
                "repl-backlog-size",
                "2mb",
                "slave-priority",
                "0",
                "replica-announce-ip",
                "",
                "replica-announce-port",
                "6380",
            ]),
            vec![
                Change::ReadOnly(false),
                Change::MasterAuth(Some("pw".into())),
                Change::BacklogSize(2 << 20),
                Change::Priority(0),
                Change::AnnounceIp(None),
                Change::AnnouncePort(6380),
            ]
        );
        assert_eq!(
            ok(&["appendonly", "NO", "save", ""]),
            vec![Change::Unchanged; 2]
        );
        assert!(ok(&[]).is_empty());
    }

    #[test]
    fn errors_match_redis() {
        let failed = |name: &str, why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
        };
        assert_eq!(
            err(&["foo", "bar"]),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(err(&["maxclients", "1", "timeout"]), "ERR syntax error");
        assert_eq!(
            err(&["MAXCLIENTS", "abc"]),
            failed("maxclients", "argument couldn't be parsed into an integer")
        );
        for bad in ["0", "-5", "4294967296"] {
            assert_eq!(
                err(&["maxclients", bad]),
                failed(
                    "maxclients",
                    "argument must be between 1 and 4294967295 inclusive"
                )
            );
        }
        for bad in ["05", "+5", " 5", "1.5", ""] {
            assert_eq!(
                err(&["timeout", bad]),
                failed("timeout", "argument couldn't be parsed into an integer"),
                "{bad:?}"
            );
        }
        assert_eq!(
            err(&["slowlog-log-slower-than", "-2"]),
            failed(
                "slowlog-log-slower-than",
                "argument must be between -1 and 9223372036854775807 inclusive"
            )
        );
        for bad in ["-1", "1.5gb", "100xb", "99999999999999999999gb"] {
            assert_eq!(
                err(&["maxmemory", bad]),
                failed("maxmemory", "argument must be a memory value")
            );
        }
        assert!(err(&["maxmemory-policy", "lru"]).starts_with(&failed(
            "maxmemory-policy",
            "argument(s) must be one of the following: noeviction, allkeys-s3fifo"
        )));
        assert!(
            matches!(check_set(&args(&["maxmemory-policy", "allkeys-lru"])), Ok(c) if c == [Change::Policy(EvictionPolicy::AllkeysS3Fifo)]),
            "Redis's LRU name maps to S3-FIFO"
        );
        assert_eq!(
            err(&["maxclients", "1", "MaxClients", "2"]),
            failed("MaxClients", "duplicate parameter")
        );
        assert_eq!(
            err(&["replica-read-only", "yes", "SLAVE-READ-ONLY", "no"]),
            failed("SLAVE-READ-ONLY", "duplicate parameter")
        );
        assert_eq!(
            err(&["slave-read-only", "maybe"]),
            failed("replica-read-only", "argument must be 'yes' or 'no'")
        );
        assert_eq!(
            err(&["repl-backlog-size", "0"]),
            failed(
                "repl-backlog-size",
                "argument must be between 1 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            err(&["repl-backlog-size", "lots"]),
            failed("repl-backlog-size", "argument must be a memory value")
        );
        assert_eq!(
            err(&["replica-announce-port", "65536"]),
            failed(
                "replica-announce-port",
                "argument must be between 0 and 65535 inclusive"
            )
        );
        assert_eq!(
            err(&["databases", "2"]),
            failed("databases", "can't set immutable config")
        );
        assert_eq!(
            err(&["appendonly", "maybe"]),
            failed("appendonly", "argument must be 'yes' or 'no'")
        );
        // Names are checked before values, and the first problem wins.
        assert_eq!(
            err(&["maxclients", "abc", "foo", "1"]),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(
            err(&["databases", "1", "foo", "1"]),
            failed("databases", "can't set immutable config")
        );
        let cobl = |v: &str| err(&["client-output-buffer-limit", v]);
        assert_eq!(
            cobl("normal 1 2"),
            failed(
                "client-output-buffer-limit",
                "Wrong number of arguments in buffer limit configuration."
            )
        );
        for bad in ["foo 1 2 3", "master 1 2 3"] {
            assert_eq!(
                cobl(bad),
                failed(
                    "client-output-buffer-limit",
                    "Invalid client class specified in buffer limit configuration."
                )
            );
        }
        for bad in ["normal 1x 2 3", "normal 1 2 -3"] {
            assert_eq!(
                cobl(bad),
                failed(
                    "client-output-buffer-limit",
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                )
            );
        }
    }

    #[test]
    fn budgets_split_over_cores() {
        assert_eq!(shard_budget(0, 4), 0);
        assert_eq!(shard_budget(100, 3), 33);
        assert_eq!(shard_budget(100, 0), 100);
        assert!(is_sensitive(b"REQUIREPASS"));
        assert!(is_sensitive(b"masterauth"));
        assert_eq!(crate::repl_state::backlog_per_shard(1 << 20, 4), 256 << 10);
        assert_eq!(
            crate::repl_state::backlog_per_shard(1, 4),
            16 << 10,
            "at least 16 KiB a shard"
        );
        assert!(!is_sensitive(b"maxclients"));
    }

    quickcheck::quickcheck! {
        /// The value parsers never panic, and an accepted list holds one change a pair.
        fn check_set_never_panics(pairs: Vec<(u8, Vec<u8>)>) -> bool {
            let mut args = Vec::new();
            for (name, value) in pairs {
                let p = &PARAMS[name as usize % PARAMS.len()];
                args.push(Bytes::from(p.name.as_bytes().to_vec()));
                args.push(Bytes::from(value));
            }
            match check_set(&args) {
                Ok(changes) => changes.len() * 2 == args.len(),
                Err(Reply::Error(e)) => e.starts_with(b"ERR "),
                Err(_) => false,
            }
        }

        fn memory_and_limit_values_never_panic(words: Vec<String>) -> bool {
            let v = words.join(" ");
            let _ = parse_memory(v.as_bytes());
            let _ = parse_output_limit(v.as_bytes());
            true
        }
    }
}
