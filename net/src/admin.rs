//! Commands the connection answers itself: PING, ECHO, QUIT, HELLO, AUTH, SELECT, COMMAND,
//! CLIENT, CONFIG, INFO, SLOWLOG, TIME. Those that need every core (INFO, CLIENT LIST/KILL,
//! CONFIG SET/RESETSTAT, SLOWLOG GET/LEN/RESET) are left to [`run_async`], which reads and
//! changes each core's [`NetCore`] with a job on that core ([`NetCore::on_every_core`]).
//!
//! The dispatcher has checked the arity of the command and of its subcommand, and that
//! the subcommand exists, before any handler here runs.

use std::sync::atomic::Ordering;

use baton_engine::command::{flags, lookup, CommandSpec, Conn, COMMANDS};
use baton_engine::reply::{errors, Reply};
use baton_engine::shard::ShardStats;
use bytes::Bytes;

use crate::client::Client;
use crate::config::Shared;
use crate::config_command;
use crate::kill::ClientKind;
use crate::netcore::NetCore;
use crate::stats::info::{self, REDIS_VERSION};
use crate::stats::slowlog::{self, Entry};

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

/// `ERR wrong number of arguments for 'client|setname' command`, as Redis 7 words it.
pub(crate) fn sub_arity(cmd: &str, sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{}|{}' command",
        cmd,
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    ))
}

pub(crate) fn unknown_subcommand(cmd: &str, sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd.to_ascii_uppercase()
    ))
}

/// Answers a connection command, or returns `None` when it needs every core and must be
/// finished by [`run_async`].
pub fn handle(
    nc: &NetCore,
    client: &Client,
    conn: Conn,
    args: &[Bytes],
    now: u64,
) -> Option<Reply> {
    let shared = &nc.shared;
    let r = match conn {
        Conn::Ping => match crate::pubsub::ping(&client.borrow(), args) {
            Some(in_pubsub_mode) => in_pubsub_mode,
            None if args.len() == 1 => Reply::simple("PONG"),
            None if args.len() == 2 => Reply::Bulk(args[1].clone()),
            None => errors::wrong_arity("ping"),
        },
        Conn::Echo => Reply::Bulk(args[1].clone()),
        Conn::Quit => {
            client.borrow_mut().close_after_reply = true;
            Reply::Ok
        }
        Conn::Shutdown => shutdown(shared, client, args),
        Conn::Reset => reset(nc, client),
        Conn::Select => match baton_engine::commands::parse_i64(&args[1]) {
            Some(0) => Reply::Ok,
            Some(_) => Reply::err("ERR DB index is out of range"),
            None => errors::NOT_INTEGER,
        },
        Conn::Time => {
            let us = info::now_us();
            Reply::Array(vec![
                bulk((us / 1_000_000).to_string()),
                bulk((us % 1_000_000).to_string()),
            ])
        }
        Conn::Auth => auth(shared, client, args),
        Conn::Hello => hello(shared, client, args),
        Conn::Command => command(args),
        Conn::Client => return client_cmd(client, args, now),
        Conn::Config => return config(shared, args),
        Conn::Slowlog if eq(&args[1], "help") => slowlog::help(),
        // Cluster mode: the view decides who replicates whom (CLUSTER REPLICATE).
        Conn::Replicaof if shared.cluster.get().is_some() => {
            Reply::err("ERR REPLICAOF not allowed in cluster mode.")
        }
        Conn::Failover if shared.cluster.get().is_some() => {
            Reply::err("ERR FAILOVER not allowed in cluster mode.")
        }
        Conn::Replicaof => crate::repl::commands::replicaof(shared, args),
        Conn::Role => crate::repl::commands::role(shared),
        Conn::Failover => crate::repl::failover::failover(shared, args),
        Conn::Psync => Reply::err(
            "ERR Baton replicates only to Baton replicas (its flows are not RDB): run a Baton replica with REPLICAOF",
        ),
        Conn::Replconf => crate::repl::commands::replconf(shared, client, args),
        // The loop takes a flow connection over before its FLOWSYNC gets here; one that
        // does was queued in a transaction.
        Conn::Flowsync => crate::repl::commands::FLOWSYNC_NOT_ALONE,
        Conn::Cluster => return crate::cluster::commands::handle(nc, client, args),
        Conn::Asking => crate::cluster::commands::connection_flag(nc, client, "asking"),
        Conn::Readonly => crate::cluster::commands::connection_flag(nc, client, "readonly"),
        Conn::Readwrite => crate::cluster::commands::connection_flag(nc, client, "readwrite"),
        Conn::Info | Conn::Slowlog | Conn::Wait | Conn::Migrate | Conn::Blocking => return None,
        // `crate::multi` answers these before a command reaches here.
        Conn::Multi | Conn::Exec | Conn::Discard | Conn::Watch | Conn::Unwatch => return None,
        Conn::Subscribe
        | Conn::Psubscribe
        | Conn::Unsubscribe
        | Conn::Punsubscribe
        | Conn::Publish
        | Conn::Pubsub => return crate::pubsub::handle(nc, client, conn, args),
    };
    Some(r)
}

/// RESET, as Redis 7's: the connection goes back to how it began — no transaction or
/// watched keys, no subscriptions, RESP2, no name, db 0, and unauthenticated when the
/// server wants a password.
fn reset(nc: &NetCore, client: &Client) -> Reply {
    nc.pubsub.forget(client);
    let mut st = client.borrow_mut();
    st.multi = None;
    st.watched.clear();
    st.channels.clear();
    st.patterns.clear();
    st.resp = 2;
    st.name = None;
    st.db = 0;
    st.authenticated = nc.shared.config.requirepass.is_none();
    Reply::simple("RESET")
}

fn check_password(shared: &Shared, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
    let Some(expected) = &shared.config.requirepass else {
        return Err(Reply::err(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    };
    let user_ok = user.is_none_or(|u| u == b"default");
    if user_ok && pass == expected.as_bytes() {
        Ok(())
    } else {
        Err(Reply::err(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

/// AUTH [username] password
fn auth(shared: &Shared, client: &Client, args: &[Bytes]) -> Reply {
    let (user, pass) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1][..]), &args[2]),
        _ => return errors::SYNTAX,
    };
    if shared.config.requirepass.is_none() && user.is_some() {
        // With a username Redis checks the ACL user, whose password "nopass" accepts anything
        // only for "default"; without a configured password any username but default fails.
        return match user {
            Some(b"default") => Reply::Ok,
            _ => Reply::err("WRONGPASS invalid username-password pair or user is disabled."),
        };
    }
    match check_password(shared, user, pass) {
        Ok(()) => {
            client.borrow_mut().authenticated = true;
            Reply::Ok
        }
        Err(e) => e,
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(shared: &Shared, client: &Client, args: &[Bytes]) -> Reply {
    let mut proto = client.borrow().resp;
    let mut i = 1;
    if args.len() > 1 {
        match baton_engine::commands::parse_i64(&args[1]) {
            Some(v @ 2..=3) => proto = v as u8,
            Some(_) => return Reply::err("NOPROTO unsupported protocol version"),
            None => return Reply::err("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq(&args[i], "auth") && more >= 2 {
            // Without requirepass the default user has no password: any password passes.
            let open = shared.config.requirepass.is_none() && args[i + 1][..] == b"default"[..];
            if !open {
                if let Err(e) = check_password(shared, Some(&args[i + 1]), &args[i + 2]) {
                    return e;
                }
            }
            client.borrow_mut().authenticated = true;
            i += 3;
        } else if eq(&args[i], "setname") && more >= 1 {
            if let Err(e) = valid_name(&args[i + 1]) {
                return e;
            }
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if !client.borrow().authenticated {
        return Reply::err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    let mut st = client.borrow_mut();
    st.resp = proto;
    if let Some(n) = name {
        st.name = if n.is_empty() { None } else { Some(n) };
    }
    Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (bulk("proto"), Reply::Int(proto as i64)),
        (bulk("id"), Reply::Int(st.id as i64)),
        (bulk("mode"), bulk("standalone")),
        (bulk("role"), bulk("master")),
        (bulk("modules"), Reply::Array(Vec::new())),
    ])
}

fn valid_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn command_info(c: &CommandSpec) -> Reply {
    let fl = flags::NAMES
        .iter()
        .filter(|(f, _)| c.flags & f != 0)
        .map(|(_, n)| Reply::Simple(Bytes::from_static(n.as_bytes())))
        .collect();
    // A command whose keys a count argument gives (LMPOP, SINTERCARD) has no fixed key range: Redis
    // lists 0 0 0 and the movablekeys flag.
    let (first, last, step) = if c.has(flags::NUMKEYS) {
        (0, 0, 0)
    } else {
        (c.first_key, c.last_key, c.step)
    };
    Reply::Array(vec![
        bulk(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(fl),
        Reply::Int(first as i64),
        Reply::Int(last as i64),
        Reply::Int(step as i64),
        Reply::Set(vec![Reply::Simple(Bytes::from(format!("@{}", c.group)))]),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn command_docs(c: &CommandSpec) -> Reply {
    Reply::Map(vec![
        (bulk("summary"), bulk(c.summary)),
        (bulk("since"), bulk(c.since)),
        (bulk("group"), bulk(c.group)),
    ])
}

/// COMMAND GETKEYS <command> [arg ...]: the keys the command table finds in a command
/// line (cluster clients route by them), with Redis 7's errors.
fn command_getkeys(line: &[Bytes]) -> Reply {
    let Some(spec) = lookup(&line[0]) else {
        return Reply::err("ERR Invalid command specified");
    };
    if !spec.arity_ok(line.len()) {
        return Reply::err("ERR Invalid number of arguments specified for command");
    }
    let keys: Vec<Reply> = spec
        .keys_in(line)
        .into_iter()
        .map(|i| Reply::Bulk(line[i].clone()))
        .collect();
    if keys.is_empty() {
        return Reply::err("ERR The command has no key arguments");
    }
    Reply::Array(keys)
}

/// COMMAND [COUNT | INFO [name ...] | DOCS [name ...] | LIST | GETKEYS command [arg ...]]
fn command(args: &[Bytes]) -> Reply {
    if args.len() == 1 {
        return Reply::Array(COMMANDS.iter().map(command_info).collect());
    }
    let sub = &args[1];
    if eq(sub, "count") && args.len() == 2 {
        Reply::Int(COMMANDS.len() as i64)
    } else if eq(sub, "info") {
        if args.len() == 2 {
            return Reply::Array(COMMANDS.iter().map(command_info).collect());
        }
        Reply::Array(
            args[2..]
                .iter()
                .map(|n| lookup(n).map_or(Reply::NilArray, command_info))
                .collect(),
        )
    } else if eq(sub, "docs") {
        let pick: Vec<&CommandSpec> = if args.len() == 2 {
            COMMANDS.iter().collect()
        } else {
            args[2..].iter().filter_map(|n| lookup(n)).collect()
        };
        Reply::Map(
            pick.into_iter()
                .map(|c| (bulk(c.name), command_docs(c)))
                .collect(),
        )
    } else if eq(sub, "list") && args.len() == 2 {
        Reply::Array(COMMANDS.iter().map(|c| bulk(c.name)).collect())
    } else if eq(sub, "getkeys") {
        command_getkeys(&args[2..])
    } else if eq(sub, "help") {
        help(
            "COMMAND",
            &[
                "COUNT",
                "DOCS [<command-name> ...]",
                "INFO [<command-name> ...]",
                "LIST",
            ],
        )
    } else if eq(sub, "count") || eq(sub, "list") {
        sub_arity("command", sub)
    } else {
        unknown_subcommand("command", sub)
    }
}

fn help(cmd: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Simple(Bytes::from(format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    out.extend(
        lines
            .iter()
            .map(|l| Reply::Simple(Bytes::from(l.to_string()))),
    );
    Reply::Array(out)
}

/// CLIENT ID | SETNAME | GETNAME | INFO | SETINFO | LIST | KILL | NO-EVICT | NO-TOUCH | HELP
fn client_cmd(client: &Client, args: &[Bytes], now: u64) -> Option<Reply> {
    let sub = &args[1];
    let r = if eq(sub, "id") && args.len() == 2 {
        Reply::Int(client.borrow().id as i64)
    } else if eq(sub, "setname") && args.len() == 3 {
        match valid_name(&args[2]) {
            Ok(()) => {
                client.borrow_mut().name = if args[2].is_empty() {
                    None
                } else {
                    Some(args[2].clone())
                };
                Reply::Ok
            }
            Err(e) => e,
        }
    } else if eq(sub, "getname") && args.len() == 2 {
        client.borrow().name.clone().map_or(Reply::Nil, Reply::Bulk)
    } else if eq(sub, "info") && args.len() == 2 {
        Reply::Verbatim(Bytes::from(client.info_line(now) + "\n"))
    } else if eq(sub, "setinfo") && args.len() == 4 {
        let value = args[3].clone();
        if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
            Reply::error(format!(
                "ERR {} cannot contain spaces, newlines or special characters.",
                String::from_utf8_lossy(&args[2]).to_ascii_lowercase()
            ))
        } else if eq(&args[2], "lib-name") {
            client.borrow_mut().lib_name = Some(value);
            Reply::Ok
        } else if eq(&args[2], "lib-ver") {
            client.borrow_mut().lib_ver = Some(value);
            Reply::Ok
        } else {
            Reply::error(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(&args[2])
            ))
        }
    } else if (eq(sub, "list") && (args.len() == 2 || args.len() >= 4))
        || (eq(sub, "kill") && args.len() >= 3)
    {
        return None;
    } else if eq(sub, "unblock") && (args.len() == 3 || args.len() == 4) {
        match crate::blocking::check_unblock(args) {
            Ok(_) => return None,
            Err(e) => e,
        }
    } else if (eq(sub, "no-evict") || eq(sub, "no-touch")) && args.len() == 3 {
        if eq(&args[2], "on") || eq(&args[2], "off") {
            Reply::Ok
        } else {
            errors::SYNTAX
        }
    } else if eq(sub, "help") {
        help(
            "CLIENT",
            &[
                "ID",
                "INFO",
                "LIST [TYPE normal] [ID id ...]",
                "KILL <ip:port> | <filter> <value> ... (ID, ADDR, LADDR, TYPE, USER, SKIPME)",
                "GETNAME",
                "SETNAME <name>",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "NO-EVICT (ON|OFF)",
                "NO-TOUCH (ON|OFF)",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            ],
        )
    } else if [
        "id", "setname", "getname", "info", "setinfo", "list", "kill", "no-evict", "no-touch",
        "unblock",
    ]
    .iter()
    .any(|s| eq(sub, s))
    {
        sub_arity("client", sub)
    } else {
        unknown_subcommand("client", sub)
    };
    Some(r)
}

/// CONFIG GET pattern [pattern ...] | CONFIG HELP; `None` for SET and RESETSTAT, which
/// need every core.
fn config(shared: &Shared, args: &[Bytes]) -> Option<Reply> {
    let sub = &args[1];
    Some(if eq(sub, "get") {
        config_command::get(shared, &args[2..])
    } else if eq(sub, "help") {
        config_command::help()
    } else if eq(sub, "rewrite") {
        config_command::rewrite(shared)
    } else if eq(sub, "set") || eq(sub, "resetstat") {
        return None;
    } else {
        unknown_subcommand("config", sub)
    })
}

/// Finishes the connection commands that need every core.
pub async fn run_async(nc: &NetCore, client: &Client, conn: Conn, args: &[Bytes]) -> Reply {
    match conn {
        Conn::Info => Reply::Verbatim(Bytes::from(info::info(nc, &args[1..]).await)),
        Conn::Slowlog => slowlog_command(nc, args).await,
        Conn::Wait => crate::repl::commands::wait(nc, args).await,
        Conn::Blocking => crate::blocking::run(nc, client, args).await,
        Conn::Client if eq(&args[1], "unblock") => crate::blocking::unblock(nc, args).await,
        Conn::Migrate => crate::cluster::migrate::migrate(nc, args).await,
        Conn::Config if eq(&args[1], "resetstat") => {
            reset_stats(nc).await;
            Reply::Ok
        }
        Conn::Config => match config_command::check_set(&args[2..]) {
            Ok(changes) => {
                config_command::apply(&nc.core, &nc.shared, changes).await;
                Reply::Ok
            }
            Err(e) => e,
        },
        Conn::Client if eq(&args[1], "list") => client_list(nc, args).await,
        Conn::Client => crate::kill::client_kill(nc, client, args).await,
        Conn::Publish | Conn::Pubsub => crate::pubsub::run_async(nc, conn, args).await,
        Conn::Cluster => crate::cluster::commands::run_async(nc, client, args).await,
        other => Reply::error(format!("ERR {other:?} is answered by the connection")),
    }
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]: every core's clients, by id.
async fn client_list(nc: &NetCore, args: &[Bytes]) -> Reply {
    let lines = nc
        .on_every_core(|nc, _| {
            let now = baton_engine::runtime::now_ms();
            let mut lines = Vec::with_capacity(nc.clients.len());
            nc.clients.each(|cl| {
                let kind = if cl.borrow().subscriptions() > 0 {
                    ClientKind::Pubsub
                } else {
                    ClientKind::Normal
                };
                lines.push((cl.borrow().id, kind, cl.info_line(now)))
            });
            lines
        })
        .await;
    let mut ids: Option<Vec<u64>> = None;
    let mut kind = None;
    if args.len() >= 4 {
        if eq(&args[2], "id") {
            let mut v = Vec::new();
            for a in &args[3..] {
                match baton_engine::commands::parse_i64(a) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => return Reply::err("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
        } else if eq(&args[2], "type") && args.len() == 4 {
            match ClientKind::parse(&args[3]) {
                Ok(k) => kind = Some(k),
                Err(e) => return e,
            }
        } else {
            return errors::SYNTAX;
        }
    }
    let mut all: Vec<(u64, ClientKind, String)> = lines.into_iter().flatten().collect();
    all.sort_by_key(|(id, _, _)| *id);
    let mut text = String::new();
    for (id, k, line) in all {
        if ids.as_ref().is_none_or(|v| v.contains(&id)) && kind.is_none_or(|want| want == k) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    Reply::Verbatim(Bytes::from(text))
}

/// `SLOWLOG GET [count]` | LEN | RESET over every core's log (HELP is answered without
/// the other cores). The arity of each subcommand was checked by the dispatcher.
async fn slowlog_command(nc: &NetCore, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    let max = slowlog::max_len(&nc.shared);
    if eq(sub, "get") && args.len() <= 3 {
        let count = match args.get(2) {
            None => slowlog::DEFAULT_COUNT,
            Some(a) => match baton_engine::commands::parse_i64(a) {
                Some(-1) => usize::MAX,
                Some(n) if n >= 0 => n as usize,
                _ => return Reply::err("ERR count should be greater than or equal to -1"),
            },
        };
        let count = count.min(max);
        let mut all: Vec<Entry> = nc
            .on_every_core(move |nc, _| nc.slowlog.newest(count))
            .await
            .into_iter()
            .flatten()
            .collect();
        all.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
        all.truncate(count);
        Reply::Array(all.iter().map(Entry::reply).collect())
    } else if eq(sub, "len") {
        let len: usize = nc
            .on_every_core(|nc, _| nc.slowlog.len())
            .await
            .into_iter()
            .sum();
        Reply::Int(len.min(max) as i64)
    } else if eq(sub, "reset") {
        nc.on_every_core(|nc, _| nc.slowlog.clear()).await;
        Reply::Ok
    } else {
        Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(sub)
        ))
    }
}

/// CONFIG RESETSTAT: zeroes what INFO counts (commandstats, keyspace hits and misses,
/// expired and evicted keys, commands processed, connections received and rejected). The
/// slow log stays, as in Redis.
async fn reset_stats(nc: &NetCore) {
    nc.on_every_core(|nc, now| {
        nc.core.shard.borrow_mut().stats = ShardStats::default();
        nc.stats.reset(now);
    })
    .await;
    nc.shared.total_connections.store(0, Ordering::Relaxed);
    nc.shared.rejected_connections.store(0, Ordering::Relaxed);
}

/// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`: the server stops as on SIGTERM (every
/// core answers what it read and closes), and the asking connection closes with no reply,
/// as Redis's does. Baton keeps nothing on disk, so `NOSAVE` changes nothing and `SAVE`
/// is refused (Redis refuses when its save fails); no shutdown ever waits, so `ABORT`
/// finds none in progress.
fn shutdown(shared: &crate::config::Shared, client: &Client, args: &[Bytes]) -> Reply {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for a in &args[1..] {
        if a.eq_ignore_ascii_case(b"save") {
            save = true;
        } else if a.eq_ignore_ascii_case(b"nosave") {
            nosave = true;
        } else if a.eq_ignore_ascii_case(b"abort") {
            abort = true;
        } else if !(a.eq_ignore_ascii_case(b"now") || a.eq_ignore_ascii_case(b"force")) {
            return errors::SYNTAX;
        }
    }
    if (save && nosave) || (abort && args.len() > 2) {
        return errors::SYNTAX;
    }
    if abort {
        return Reply::err("ERR No shutdown in progress.");
    }
    if save {
        tracing::warn!("SHUTDOWN SAVE refused: Baton keeps no data on disk to save to");
        return Reply::err("ERR Errors trying to SHUTDOWN. Check logs.");
    }
    tracing::warn!("User requested shutdown...");
    shared.request_stop();
    client.borrow_mut().close_after_reply = true;
    Reply::Sequence(Vec::new())
}
