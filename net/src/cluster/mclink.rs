//! The connections a core keeps to the other nodes of the cluster, for the memcached
//! requests it forwards ([`crate::mcdispatch`]'s cluster mode).
//!
//! One persistent connection per peer per core, to the peer's client (Redis) port, driven
//! by a helper thread of its own with blocking sockets, as MIGRATE's and the gossip's
//! connections are: the core's loop never blocks, and no thread is started per request.
//! It authenticates with `--masterauth` when that is set, as the gossip does.
//!
//! ```text
//!  core task ── Work{id, commands} ──► mpsc ──► link thread (one per core x peer)
//!      ▲                                          │ write every queued command at once,
//!      │                                          │ read the answers in order
//!      └── Msg::Resp{id} ◄── core's mesh inbox ◄──┘ (rings the core's doorbell if it sleeps)
//! ```
//!
//! Each command is `CLUSTER BATON-MC <asking 0|1> <memcached request>`; the answer is an
//! array with one element per key of the request: the memcached reply for that key, or a
//! redirection (`MOVED`, `ASK`) or a cluster error. Every wait is bounded by the
//! connection's timeouts (`cluster-node-timeout`): an owner that is down or stalled
//! makes the request fail with a reason, never hang.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use baton_engine::runtime::mesh::Mesh;
use baton_engine::runtime::{Msg, Out};
use bytes::Bytes;

use crate::config::Shared;
use crate::netcore::NetCore;
use crate::repl::link::{connect_within, encode_command};

/// One element of a node's answer: the memcached reply for one key, or an error line
/// (`MOVED 123 host:port`, `ASK ...`, `CLUSTERDOWN ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Reply(Vec<u8>),
    Error(String),
}

/// A node's answer to one forwarded command, or why there is none (the text that follows
/// `SERVER_ERROR`).
pub type Answer = Result<Vec<Part>, String>;

/// Bounds on an answer, so that a confused peer cannot make this node allocate without
/// limit: elements per answer (a multi-get's keys) and bytes per element.
const MAX_PARTS: usize = 1 << 20;
const MAX_PART_LEN: usize = 512 << 20;
/// Commands one link writes before it reads their answers.
const MAX_BATCH: usize = 1024;

/// A request for the link thread: its commands, and where to post their answers.
struct Work {
    core: usize,
    id: u64,
    commands: Vec<Vec<u8>>,
}

/// This core's links, by peer address (attached to the core).
#[derive(Default)]
pub struct Links {
    by_addr: RefCell<HashMap<String, mpsc::Sender<Work>>>,
}

/// The `CLUSTER BATON-MC` command that forwards `request` (one memcached request).
pub fn command(asking: bool, request: &[u8]) -> Vec<u8> {
    let asking: &[u8] = if asking { b"1" } else { b"0" };
    encode_command(&[&b"CLUSTER"[..], b"BATON-MC", asking, request])
}

/// Sends `commands` to the node at `addr` (`ip:port`) on this core's link to it; the
/// future resolves to one answer per command, in order. The work is queued at once, so
/// several calls run at the same time.
pub fn send(
    nc: &NetCore,
    addr: &str,
    commands: Vec<Vec<u8>>,
) -> impl std::future::Future<Output = Vec<Answer>> {
    let core = &nc.core;
    let n = commands.len();
    let links = core.attached::<Links>().unwrap_or_else(|| {
        let l = std::rc::Rc::new(Links::default());
        core.attach(l.clone());
        l
    });
    let (id, rx) = core.expect_reply();
    let mut work = Some(Work {
        core: core.id,
        id,
        commands,
    });
    let mut failed = None;
    for _ in 0..2 {
        let tx = {
            let mut by_addr = links.by_addr.borrow_mut();
            match by_addr.get(addr) {
                Some(tx) => tx.clone(),
                None => match start(addr, core.mesh_handle(), nc.shared.clone(), timeout(nc)) {
                    Ok(tx) => {
                        by_addr.insert(addr.to_string(), tx.clone());
                        tx
                    }
                    Err(e) => {
                        failed = Some(format!("cannot start a link to {addr}: {e}"));
                        break;
                    }
                },
            }
        };
        match tx.send(work.take().expect("work")) {
            Ok(()) => break,
            // The thread is gone (it never should be): start a new one once.
            Err(mpsc::SendError(w)) => {
                work = Some(w);
                links.by_addr.borrow_mut().remove(addr);
            }
        }
    }
    if work.is_some() {
        // Answered through this core's own inbox, as the link would have, so the reply
        // awaited is never left pending.
        let why = failed.unwrap_or_else(|| format!("the link to {addr} is down"));
        let answers: Vec<Answer> = vec![Err(why); n];
        core.mesh_handle().post(
            core.id,
            core.id,
            [Msg::Resp {
                id,
                outs: vec![Out::Value(Box::new(answers))],
            }],
        );
    }
    async move {
        let outs = rx.await;
        outs.into_iter()
            .next()
            .and_then(|o| o.into_value::<Vec<Answer>>())
            .unwrap_or_else(|| vec![Err("the link answered nothing".into()); n])
    }
}

fn timeout(nc: &NetCore) -> Duration {
    let ms = nc
        .shared
        .cluster
        .get()
        .map_or(super::DEFAULT_NODE_TIMEOUT_MS, |c| c.config.node_timeout_ms);
    Duration::from_millis(ms.max(100))
}

/// Starts the thread of a link to `addr`.
fn start(
    addr: &str,
    mesh: Arc<Mesh<Msg>>,
    shared: Arc<Shared>,
    timeout: Duration,
) -> std::io::Result<mpsc::Sender<Work>> {
    let (tx, rx) = mpsc::channel();
    let addr = addr.to_string();
    std::thread::Builder::new()
        .name("baton-mclink".into())
        .spawn(move || link(&addr, &rx, &mesh, &shared, timeout))?;
    Ok(tx)
}

/// The link thread: takes what the core queued, exchanges it with the peer, posts the
/// answers back to the core. Ends when the core drops its sender.
fn link(
    addr: &str,
    rx: &mpsc::Receiver<Work>,
    mesh: &Mesh<Msg>,
    shared: &Shared,
    timeout: Duration,
) {
    let mut conn: Option<BufReader<TcpStream>> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut commands = batch[0].commands.len();
        while commands < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => {
                    commands += w.commands.len();
                    batch.push(w);
                }
                Err(_) => break,
            }
        }
        let answers = exchange(&mut conn, shared, addr, &batch, timeout);
        let core = batch[0].core;
        let msgs: Vec<Msg> = batch
            .iter()
            .zip(answers)
            .map(|(w, a)| Msg::Resp {
                id: w.id,
                outs: vec![Out::Value(Box::new(a))],
            })
            .collect();
        mesh.post(core, core, msgs);
    }
}

/// Whether a pooled connection was closed by the peer (it restarted, or closed an idle
/// client): then a new one is opened before anything is sent, so no request is lost.
fn closed_by_peer(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: recv(2) into a live 1-byte buffer on a descriptor the stream owns.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    // 0: orderly close; data: the peer said something unasked (nothing is pending
    // between batches), so the stream cannot be trusted either.
    n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
}

/// Writes every command of `batch` and reads their answers; on any failure the
/// connection is dropped and the answers not read fail with the reason.
fn exchange(
    conn: &mut Option<BufReader<TcpStream>>,
    shared: &Shared,
    addr: &str,
    batch: &[Work],
    timeout: Duration,
) -> Vec<Vec<Answer>> {
    let fail = |why: String| -> Vec<Vec<Answer>> {
        batch
            .iter()
            .map(|w| vec![Err(why.clone()); w.commands.len()])
            .collect()
    };
    if conn.as_ref().is_some_and(|c| closed_by_peer(c.get_ref())) {
        *conn = None;
    }
    if conn.is_none() {
        let Some((host, port)) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        else {
            return fail(format!("the owner's address {addr:?} is not host:port"));
        };
        match connect_within(shared, host, port, timeout, timeout) {
            Ok(c) => *conn = Some(c),
            Err(e) => return fail(format!("cannot reach the owner {addr}: {e}")),
        }
    }
    let c = conn.as_mut().expect("connected");
    let mut out = Vec::new();
    for w in batch {
        for cmd in &w.commands {
            out.extend_from_slice(cmd);
        }
    }
    if let Err(e) = c.get_mut().write_all(&out) {
        *conn = None;
        return fail(format!("cannot send to the owner {addr}: {e}"));
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut broken: Option<String> = None;
    for w in batch {
        let mut these = Vec::with_capacity(w.commands.len());
        for _ in &w.commands {
            if let Some(why) = &broken {
                these.push(Err(why.clone()));
                continue;
            }
            match read_answer(c) {
                Ok(a) => these.push(a),
                Err(e) => {
                    let why = if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        format!("the owner {addr} did not answer within {timeout:?}")
                    } else {
                        format!("lost the owner {addr}: {e}")
                    };
                    these.push(Err(why.clone()));
                    broken = Some(why);
                }
            }
        }
        answers.push(these);
    }
    if broken.is_some() {
        *conn = None;
    }
    answers
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// One line without its `\r\n` (at most 64 KiB).
fn read_line(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.by_ref().take(64 * 1024).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the connection closed",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad("a malformed answer line"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn read_len(text: &[u8], max: usize) -> std::io::Result<usize> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n <= max)
        .ok_or_else(|| bad("a malformed or oversized length"))
}

/// Reads one answer to `CLUSTER BATON-MC`: an array of bulk strings and errors, or one
/// error for the whole command (the peer refused it: an old version, authentication...).
pub fn read_answer(r: &mut impl BufRead) -> std::io::Result<Answer> {
    let line = read_line(r)?;
    match line.first() {
        Some(b'-') => {
            return Ok(Err(format!(
                "the owner refused the forwarded request: {}",
                String::from_utf8_lossy(&line[1..])
            )))
        }
        Some(b'*') => {}
        _ => return Err(bad("an unexpected answer")),
    }
    let n = read_len(&line[1..], MAX_PARTS)?;
    let mut parts = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let line = read_line(r)?;
        match line.first() {
            Some(b'-') => parts.push(Part::Error(
                String::from_utf8_lossy(&line[1..]).into_owned(),
            )),
            Some(b'$') => {
                let len = read_len(&line[1..], MAX_PART_LEN)?;
                let mut b = Vec::new();
                r.by_ref().take(len as u64 + 2).read_to_end(&mut b)?;
                if b.len() != len + 2 || !b.ends_with(b"\r\n") {
                    return Err(bad("a truncated answer"));
                }
                b.truncate(len);
                parts.push(Part::Reply(b));
            }
            _ => return Err(bad("an unexpected answer element")),
        }
    }
    Ok(Ok(parts))
}

/// The text of a forwarded request for one or more keys of a retrieval, as the
/// connection received it (`get`/`gets`, or `gat`/`gats <exptime>`).
pub fn retrieval(cas: bool, touch: Option<i64>, keys: &[&[u8]]) -> Bytes {
    let mut t = Vec::new();
    match (cas, touch) {
        (false, None) => t.extend_from_slice(b"get"),
        (true, None) => t.extend_from_slice(b"gets"),
        (false, Some(e)) => t.extend_from_slice(format!("gat {e}").as_bytes()),
        (true, Some(e)) => t.extend_from_slice(format!("gats {e}").as_bytes()),
    }
    for k in keys {
        t.push(b' ');
        t.extend_from_slice(k);
    }
    t.extend_from_slice(b"\r\n");
    Bytes::from(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(bytes: &[u8]) -> std::io::Result<Answer> {
        read_answer(&mut std::io::Cursor::new(bytes.to_vec()))
    }

    #[test]
    fn reads_parts_errors_and_refusals() {
        assert_eq!(
            answer(b"*3\r\n$5\r\nEND\r\n\r\n-MOVED 1 h:1\r\n$0\r\n\r\n").unwrap(),
            Ok(vec![
                Part::Reply(b"END\r\n".to_vec()),
                Part::Error("MOVED 1 h:1".into()),
                Part::Reply(Vec::new()),
            ])
        );
        assert!(answer(b"-ERR unknown subcommand\r\n").unwrap().is_err());
        assert!(answer(b"*1\r\n$10\r\nshort\r\n").is_err(), "truncated");
        assert!(answer(b"*99999999999\r\n").is_err(), "too many parts");
        assert!(answer(b"+OK\r\n").is_err());
        assert!(answer(b"").is_err());
    }

    #[test]
    fn retrieval_texts() {
        assert_eq!(&retrieval(false, None, &[b"a", b"b"])[..], b"get a b\r\n");
        assert_eq!(&retrieval(true, Some(-1), &[b"a"])[..], b"gats -1 a\r\n");
    }
}
