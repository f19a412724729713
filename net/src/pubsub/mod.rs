//! Pub/Sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB, across
//! cores, as Redis 7 answers them.
//!
//! A subscriber lives on the core that accepted it. Each core keeps a [`registry::PubSub`]
//! in its [`NetCore`]: channel -> clients, pattern -> clients. The client's own session
//! holds the same subscriptions by name ([`crate::session::Session::channels`]), for its
//! replies' counts, CLIENT LIST and a handoff.
//!
//! PUBLISH runs in the publisher's slow path: a job on every core ([`NetCore::on_every_core`])
//! finds that core's subscribers, queues the encoded message for each of them in the
//! registry ([`registry::PubSub::take_pending`]) and counts them; PUBLISH answers the sum. The
//! connection loop of each core moves the queued messages into the subscribers' output
//! once per turn, right after it has run the jobs from other cores, and sends them:
//!
//! ```text
//!  core 0: PUBLISH ─► on_every_core ─┬─► core 0 job: registry ─► pending ─┐
//!          (awaits every count)      └─► core 1 job: registry ─► pending ─┤ (same turn)
//!                                                                          ▼
//!                                  each core's loop: pending ─► subscriber output ─► send
//! ```
//!
//! A job from another core arrives by the mesh, which wakes a sleeping core; the loop
//! drains the inbox and then the pending messages in the same turn, so nothing waits for
//! a later event. PUBLISHes of one connection run one after another, each waiting for every
//! core, and the mesh keeps each pair of cores in order: a subscriber sees one publisher's
//! messages in the order it published them.
//!
//! Subscribers' unsent output counts against `client-output-buffer-limit pubsub` (checked
//! by the loop each time messages are added).

pub mod registry;

use std::collections::BTreeSet;

use baton_engine::command::{CommandSpec, Conn};
use baton_engine::reply::Reply;
use bytes::Bytes;

use crate::client::Client;
use crate::netcore::NetCore;
use crate::session::Session;

fn bulk(s: &'static str) -> Reply {
    Reply::Bulk(Bytes::from_static(s.as_bytes()))
}

/// `[kind, channel, count]`: one (un)subscribe confirmation.
fn confirm(kind: &'static str, channel: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        bulk(kind),
        channel.map_or(Reply::Nil, Reply::Bulk),
        Reply::Int(count as i64),
    ])
}

/// The error a RESP2 client in Pub/Sub mode gets for a command it may not run there, or
/// `None` when the command may run. `name` is the command's full name (`client|list`).
pub fn refused_in_context(st: &Session, spec: &CommandSpec, name: &str) -> Option<Reply> {
    const ALLOWED: [&str; 7] = [
        "ping",
        "subscribe",
        "psubscribe",
        "unsubscribe",
        "punsubscribe",
        "quit",
        "reset",
    ];
    if st.resp != 2 || st.subscriptions() == 0 || ALLOWED.contains(&spec.name) {
        return None;
    }
    Some(Reply::error(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )))
}

/// PING of a RESP2 client in Pub/Sub mode: `["pong", message or ""]`. `None` otherwise.
pub fn ping(st: &Session, args: &[Bytes]) -> Option<Reply> {
    if st.resp != 2 || st.subscriptions() == 0 || args.len() > 2 {
        return None;
    }
    Some(Reply::Array(vec![
        bulk("pong"),
        Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
    ]))
}

/// Answers SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE and PUBSUB HELP on this core;
/// `None` for PUBLISH and the other PUBSUB subcommands, which need every core
/// ([`run_async`]).
pub fn handle(nc: &NetCore, client: &Client, conn: Conn, args: &[Bytes]) -> Option<Reply> {
    let reg = &nc.pubsub;
    let replies = match conn {
        // SUBSCRIBE channel [channel ...]
        Conn::Subscribe | Conn::Psubscribe => {
            let pattern = conn == Conn::Psubscribe;
            let kind = if pattern { "psubscribe" } else { "subscribe" };
            let mut out = Vec::with_capacity(args.len() - 1);
            for ch in &args[1..] {
                let mut st = client.borrow_mut();
                let set = if pattern {
                    &mut st.patterns
                } else {
                    &mut st.channels
                };
                if set.insert(ch.clone()) {
                    reg.subscribe(pattern, ch, client);
                }
                out.push(confirm(kind, Some(ch.clone()), st.subscriptions()));
            }
            out
        }
        // UNSUBSCRIBE [channel ...]
        Conn::Unsubscribe | Conn::Punsubscribe => {
            let pattern = conn == Conn::Punsubscribe;
            let kind = if pattern {
                "punsubscribe"
            } else {
                "unsubscribe"
            };
            let names: Vec<Bytes> = if args.len() > 1 {
                args[1..].to_vec()
            } else {
                let st = client.borrow();
                let set: &BTreeSet<Bytes> = if pattern { &st.patterns } else { &st.channels };
                set.iter().cloned().collect()
            };
            if names.is_empty() {
                let count = client.borrow().subscriptions();
                return Some(confirm(kind, None, count));
            }
            let mut out = Vec::with_capacity(names.len());
            for ch in names {
                let mut st = client.borrow_mut();
                let set = if pattern {
                    &mut st.patterns
                } else {
                    &mut st.channels
                };
                if set.remove(&ch) {
                    reg.unsubscribe(pattern, &ch, client);
                }
                out.push(confirm(kind, Some(ch), st.subscriptions()));
            }
            out
        }
        Conn::Pubsub if args[1].eq_ignore_ascii_case(b"help") => return Some(help()),
        _ => return None,
    };
    Some(if replies.len() == 1 {
        replies.into_iter().next().expect("one reply")
    } else {
        Reply::Sequence(replies)
    })
}

fn help() -> Reply {
    Reply::help_lines(&[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Print this help.",
    ])
}

/// PUBLISH and PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB, over every
/// core.
pub async fn run_async(nc: &NetCore, conn: Conn, args: &[Bytes]) -> Reply {
    if conn == Conn::Publish {
        // PUBLISH channel message
        let (channel, message) = (args[1].clone(), args[2].clone());
        let n: usize = nc
            .on_every_core(move |nc, _| nc.pubsub.publish(&channel, &message))
            .await
            .into_iter()
            .sum();
        return Reply::Int(n as i64);
    }
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        // PUBSUB CHANNELS [pattern]
        b"channels" | b"shardchannels" if args.len() <= 3 => {
            if sub == b"shardchannels" {
                // No sharded channels (SSUBSCRIBE) yet.
                return Reply::Array(Vec::new());
            }
            let pattern = args.get(2).cloned();
            let names: BTreeSet<Bytes> = nc
                .on_every_core(move |nc, _| nc.pubsub.channel_names(pattern.as_deref()))
                .await
                .into_iter()
                .flatten()
                .collect();
            Reply::Array(names.into_iter().map(Reply::Bulk).collect())
        }
        // PUBSUB NUMSUB [channel ...]
        b"numsub" | b"shardnumsub" => {
            let channels: Vec<Bytes> = args[2..].to_vec();
            let mut sums = vec![0usize; channels.len()];
            if sub == b"numsub" {
                let asked = channels.clone();
                for counts in nc
                    .on_every_core(move |nc, _| nc.pubsub.numsub(&asked))
                    .await
                {
                    for (s, c) in sums.iter_mut().zip(counts) {
                        *s += c;
                    }
                }
            }
            Reply::Array(
                channels
                    .into_iter()
                    .zip(sums)
                    .flat_map(|(ch, n)| [Reply::Bulk(ch), Reply::Int(n as i64)])
                    .collect(),
            )
        }
        // PUBSUB NUMPAT: distinct patterns, as Redis counts them.
        b"numpat" => {
            let names: BTreeSet<Bytes> = nc
                .on_every_core(|nc, _| nc.pubsub.pattern_names())
                .await
                .into_iter()
                .flatten()
                .collect();
            Reply::Int(names.len() as i64)
        }
        _ => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::registry::tests::{b, client};
    use super::*;

    #[test]
    fn resp2_context_restriction() {
        let c = client(2);
        let get = baton_engine::command::lookup(b"get").unwrap();
        let ping = baton_engine::command::lookup(b"ping").unwrap();
        assert!(refused_in_context(&c.borrow(), get, "get").is_none());
        c.borrow_mut().channels.insert(b("a"));
        assert_eq!(
            refused_in_context(&c.borrow(), get, "get"),
            Some(Reply::err("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"))
        );
        assert!(refused_in_context(&c.borrow(), ping, "ping").is_none());
        assert_eq!(
            ping_reply(&c),
            Reply::Array(vec![bulk("pong"), Reply::Bulk(Bytes::new())])
        );
        c.borrow_mut().resp = 3;
        assert!(refused_in_context(&c.borrow(), get, "get").is_none());
    }

    fn ping_reply(c: &Client) -> Reply {
        ping(&c.borrow(), &[b("ping")]).unwrap()
    }
}
