//! The replica's side: the link thread that connects to the primary and starts every
//! flow ([`start`]), and each flow's applier as a core's loop drives it ([`ApplyState`]).
//!
//! The link thread uses blocking sockets off the cores: it connects, authenticates, asks
//! the primary for its core count (`REPLCONF flows`), opens one connection per primary
//! shard, sends each its `FLOWSYNC` (resuming from the offset this replica holds for the
//! flow, under the replication id that flow last came with) and hands the socket to a
//! core. From then on the flow's bytes move through that core's io_uring. The thread then
//! pings the primary on the control connection once a second; when a flow or the control
//! connection breaks, it closes the others and starts again with a backoff, resuming each
//! flow where it stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::cell::Cell;
use std::rc::Rc;

use baton_engine::exec::Batch;
use baton_engine::runtime::{now_ms, wake, Job, Out};
use baton_engine::Shard;
use baton_replication::apply::{apply_op, Op};
use baton_replication::{Applier, Journal, Limits, ReplId};

use crate::config::Shared;
use crate::netcore::NetCore;
use crate::repl_state::{lock, ApplyStart, FlowStart, Repl, Role};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const PING_EVERY: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Makes this server a replica of `host:port` and starts the link thread. An earlier link
/// (of an earlier REPLICAOF) stops: its thread and flows see they are no longer current.
pub fn start(shared: &Arc<Shared>, host: String, port: u16) {
    let repl = &shared.repl;
    let was_primary = !repl.is_replica();
    let me = {
        let mut l = lock(&repl.link);
        if was_primary {
            // A primary that becomes a replica resumes from its own history, as Redis's
            // does: its journals are where it stands, under its own id (a new primary
            // that was its replica holds that id as its second one). A shard that never
            // kept a journal has nothing to resume from.
            let id = lock(&repl.ids).id;
            l.primary_cores = repl.cores;
            l.offsets = repl.ends();
            l.flow_ids = (0..repl.cores)
                .map(|k| repl.journal(k).map(|_| id))
                .collect();
        }
        l.thread += 1;
        l.generation += 1;
        l.broken = false;
        l.up = false;
        l.sync_in_progress = false;
        l.down_since_ms = now_ms();
        l.thread
    };
    repl.set_role(Role::Replica {
        host: host.clone(),
        port,
    });
    let shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("baton-link".into())
        .spawn(move || run(&shared, &host, port, me));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the replication link thread");
    }
}

/// Stops being a replica (REPLICAOF NO ONE): the link thread and the flows stop.
pub fn stop(repl: &Repl) {
    let mut l = lock(&repl.link);
    l.thread += 1;
    l.generation += 1;
    l.up = false;
    l.sync_in_progress = false;
    l.broken = false;
}

fn current(shared: &Shared, me: u64) -> bool {
    !shared.stopping() && lock(&shared.repl.link).thread == me
}

fn run(shared: &Shared, host: &str, port: u16, me: u64) {
    tracing::info!("Connecting to MASTER {host}:{port}");
    let mut backoff = Duration::from_millis(100);
    while current(shared, me) {
        match sync(shared, host, port, me) {
            Ok(control) => {
                backoff = Duration::from_millis(100);
                if let Err(e) = watch(shared, control, me) {
                    tracing::warn!("Connection with master lost: {e}");
                }
            }
            Err(e) => tracing::warn!("Error condition on socket for SYNC with {host}:{port}: {e}"),
        }
        end_flows(shared, me);
        let until = Instant::now() + backoff;
        while Instant::now() < until && current(shared, me) {
            std::thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if current(shared, me) {
            tracing::info!("Reconnecting to MASTER {host}:{port}");
        }
    }
}

/// Closes this link's flows (a new generation) and waits, a while, for every core to
/// have let go of them, so that their offsets are final before a resync asks for them.
fn end_flows(shared: &Shared, me: u64) {
    let repl = &shared.repl;
    {
        let mut l = lock(&repl.link);
        if l.thread == me {
            l.generation += 1;
            l.broken = false;
            l.up = false;
            l.sync_in_progress = false;
            if l.down_since_ms == 0 {
                l.down_since_ms = now_ms();
            }
        }
    }
    repl.bump();
    let deadline = Instant::now() + Duration::from_secs(5);
    while lock(&repl.link).live_flows > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A minimal RESP reply, as far as the handshake needs one.
#[derive(Debug)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Resp>),
    Nil,
}

/// Reads one reply of the primary's, within limits (lines of 64 KiB, bulks of 1 MiB,
/// arrays of 1024 items, nesting 4 deep): an error for anything else.
pub fn read_reply(r: &mut impl BufRead, depth: usize) -> std::io::Result<Resp> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = Vec::new();
    r.by_ref().take(64 * 1024).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the primary closed the connection",
        ));
    }
    let text = String::from_utf8_lossy(&line[1..]).trim_end().to_string();
    let int = || text.parse::<i64>().map_err(|_| bad("a malformed reply"));
    Ok(match line[0] {
        b'+' => Resp::Simple(text),
        b'-' => Resp::Error(text),
        b':' => Resp::Int(int()?),
        b'$' => {
            let n = int()?;
            if n < 0 {
                return Ok(Resp::Nil);
            }
            if n > 1 << 20 {
                return Err(bad("an over-long reply"));
            }
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n as usize);
            Resp::Bulk(buf)
        }
        b'*' if depth < 4 => {
            let n = int()?;
            if n < 0 {
                return Ok(Resp::Nil);
            }
            if n > 1024 {
                return Err(bad("an over-long reply"));
            }
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(read_reply(r, depth + 1)?);
            }
            Resp::Array(items)
        }
        _ => return Err(bad("a reply that is not RESP")),
    })
}

pub(crate) fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one command and reads its reply (an error reply is a reply here).
pub(crate) fn call_raw(s: &mut BufReader<TcpStream>, args: &[&str]) -> std::io::Result<Resp> {
    s.get_mut().write_all(&encode_command(args))?;
    read_reply(s, 0)
}

/// Sends one command and reads its reply; an error reply is an error.
pub(crate) fn call(s: &mut BufReader<TcpStream>, args: &[&str]) -> std::io::Result<Resp> {
    match call_raw(s, args)? {
        Resp::Error(e) => Err(std::io::Error::other(format!(
            "{} was answered with: {e}",
            args[0]
        ))),
        r => Ok(r),
    }
}

/// Connects to another Baton (this one's primary, a FAILOVER target, a cluster node), with
/// timeouts, and authenticates with `masterauth` when it is set.
pub(crate) fn connect(
    shared: &Shared,
    host: &str,
    port: u16,
) -> std::io::Result<BufReader<TcpStream>> {
    connect_within(shared, host, port, CONNECT_TIMEOUT, IO_TIMEOUT)
}

/// A TCP connection to `host:port` with no delay and these timeouts for the connect and
/// for each read and write; nothing is sent.
pub(crate) fn dial(
    host: &str,
    port: u16,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> std::io::Result<BufReader<TcpStream>> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} resolves to no address")))?;
    let s = TcpStream::connect_timeout(&addr, connect_timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(io_timeout))?;
    s.set_write_timeout(Some(io_timeout))?;
    Ok(BufReader::new(s))
}

/// [`connect`] with its own timeouts for the connect and for each read and write.
pub(crate) fn connect_within(
    shared: &Shared,
    host: &str,
    port: u16,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> std::io::Result<BufReader<TcpStream>> {
    let mut s = dial(host, port, connect_timeout, io_timeout)?;
    let auth = lock(&shared.repl.masterauth).clone();
    if let Some(pw) = auth {
        call(&mut s, &["AUTH", &pw])?;
    }
    Ok(s)
}

fn hex(id: &ReplId) -> String {
    String::from_utf8_lossy(id).into_owned()
}

/// Connects, says hello, and starts every flow. Returns the control connection.
fn sync(shared: &Shared, host: &str, port: u16, me: u64) -> std::io::Result<BufReader<TcpStream>> {
    let repl = &shared.repl;
    let mut ctl = connect(shared, host, port)?;
    let my_port = match repl
        .announce_port
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        0 => shared.redis_port.to_string(),
        p => p.to_string(),
    };
    call(&mut ctl, &["REPLCONF", "listening-port", &my_port])?;
    if let Some(ip) = lock(&repl.announce_ip).clone() {
        call(&mut ctl, &["REPLCONF", "ip-address", &ip])?;
    }
    let (cores, replid) = match call(&mut ctl, &["REPLCONF", "flows"])? {
        Resp::Array(a) => match a.as_slice() {
            [Resp::Int(c), Resp::Bulk(id)] if (1..=65_536).contains(c) && id.len() == 40 => {
                let mut replid = [0u8; 40];
                replid.copy_from_slice(id);
                (*c as usize, replid)
            }
            _ => return Err(std::io::Error::other("a malformed REPLCONF flows reply")),
        },
        _ => {
            return Err(std::io::Error::other(
                "the primary is not a Baton server with flows (REPLCONF flows)",
            ))
        }
    };
    let generation = {
        let mut l = lock(&repl.link);
        if l.thread != me {
            return Err(std::io::Error::other("the link was replaced"));
        }
        if l.primary_cores != cores {
            // Another primary shape: no flow can resume.
            l.primary_cores = cores;
            l.offsets = vec![0; cores];
            l.flow_ids = vec![None; cores];
        }
        l.connected = vec![false; cores];
        l.loading = vec![false; cores];
        l.settled = vec![None; cores];
        l.replid = Some(replid);
        l.generation
    };
    if cores == repl.cores {
        // The same shape: this replica's journals mirror the primary's flows byte for
        // byte, so its own replicas and a promotion continue the primary's history.
        lock(&repl.ids).id = replid;
    }
    let run_id = shared.run_id.clone();
    for k in 0..cores {
        // A handoff's per-shard cutover: flow k opens once old shard k - 1 is cut over.
        while k
            >= shared
                .handoff
                .open_flows
                .load(std::sync::atomic::Ordering::Acquire)
        {
            if !current(shared, me) {
                return Err(std::io::Error::other("the link was replaced"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let (asked_id, offset) = {
            let l = lock(&repl.link);
            (l.flow_ids[k], l.offsets[k])
        };
        let mut s = connect(shared, host, port)?;
        let (id, off) = match asked_id {
            Some(id) => (hex(&id), offset.to_string()),
            None => ("?".to_string(), "-1".to_string()),
        };
        let k_text = k.to_string();
        let mut cmd = vec!["FLOWSYNC", &k_text, &id, &off, &run_id, &my_port];
        let announce = lock(&repl.announce_ip).clone();
        if let Some(ip) = &announce {
            cmd.push(ip);
        }
        s.get_mut().write_all(&encode_command(&cmd))?;
        if !s.buffer().is_empty() {
            return Err(std::io::Error::other("the primary answered FLOWSYNC early"));
        }
        let stream = s.into_inner();
        stream.set_nonblocking(true)?;
        let fd: OwnedFd = stream.into();
        {
            let mut l = lock(&repl.link);
            if l.generation != generation {
                return Err(std::io::Error::other("the link was replaced"));
            }
            l.live_flows += 1;
        }
        repl.post(
            k % repl.cores,
            FlowStart::Apply(
                ApplyStart {
                    shard: k,
                    offset: if asked_id.is_some() { offset } else { 0 },
                    generation,
                },
                fd,
            ),
        );
    }
    tracing::info!("MASTER <-> REPLICA sync started: {cores} flows");
    Ok(ctl)
}

/// Pings the primary once a second until the control connection or a flow breaks, or
/// the link is replaced.
fn watch(shared: &Shared, mut ctl: BufReader<TcpStream>, me: u64) -> std::io::Result<()> {
    let mut last_ping = Instant::now();
    loop {
        if !current(shared, me) {
            return Ok(());
        }
        if lock(&shared.repl.link).broken {
            return Err(std::io::Error::other("a flow broke"));
        }
        if last_ping.elapsed() >= PING_EVERY {
            last_ping = Instant::now();
            match call(&mut ctl, &["PING"])? {
                Resp::Simple(s) if s == "PONG" => lock(&shared.repl.link).last_io_ms = now_ms(),
                other => {
                    return Err(std::io::Error::other(format!(
                        "the primary answered PING with {other:?}"
                    )))
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A replica acknowledges each flow at most this often. An ACK is a receive the
/// primary's core must complete and parse: acknowledging every buffer the primary sends
/// (up to one per `FLOW_COALESCE`, a quarter millisecond) cost a loaded primary about as
/// many receives as it made sends. An idle link still acknowledges at once (the first
/// ACK after a quiet millisecond goes out immediately), so WAIT waits at most this much
/// longer under load. Redis's replicas acknowledge once a second, and on GETACK.
pub const ACK_INTERVAL: Duration = Duration::from_millis(1);

/// An ACK held back by [`ACK_INTERVAL`] goes with the first input that arrives once the
/// interval is over; the loop wakes on its own for it only this much later. A busy
/// primary ships at least every `FLOW_COALESCE` (a quarter millisecond), so under load
/// the ACK rides on a wake-up the replica makes anyway instead of costing one of its
/// own (a wake-up of an idle replica costs it about as much as applying a shipment).
/// When the stream stops, the last ACK goes at most this much later.
pub const ACK_WAKE_SLACK: Duration = Duration::from_micros(500);

/// A replica reads a flow that streams steadily at most once per this span: after a
/// short receive it arms the next one only this much later. While no receive is armed, a
/// shipment from the primary lands in the socket and wakes nobody; armed, each shipment
/// runs the replica's wake-up in the primary's send (over loopback, its TCP receive too),
/// a cross-CPU wake-up that was the largest part of a loaded primary's extra CPU with a
/// replica (benches/RESULTS.md, sessions 8 and 11). The primary ships a steady stream once
/// per `FLOW_COALESCE` (a quarter millisecond), so a read finds about four shipments
/// waiting, and the replica wakes on its own timer, once a millisecond, instead of on the
/// primary's sends: each wake-up costs the replica about what applying a shipment does,
/// and a replica sharing a CPU with the primary's clients slows them (session 12: a
/// quarter less replica CPU per primary op than a 250 µs pause). A record waits at most
/// this much longer, and only while the replica sleeps: a loop awake for other work (a
/// replica serving reads) peeks at the flow every `FLOW_PEEK_EVERY`, so what its clients
/// see lags no more than with a shorter pause.
pub const READ_PAUSE: Duration = Duration::from_millis(1);

/// Receives at most this far apart make a steady stream (longer than [`READ_PAUSE`], so
/// that paced reads stay paced). A receive after a quiet spell is followed by an armed
/// receive at once, so an idle link's next write is read as soon as it arrives (no added
/// lag, and WAIT answers as fast as before).
pub const STEADY_GAP: Duration = Duration::from_millis(2);

/// When a replica's flow should arm its next receive, after one at `now` (`last`: when
/// the one before it was, updated here). `None`: at once, because the stream is not
/// steady or `more` says more is surely waiting (a full sync's snapshot, a receive that
/// filled much of the buffer).
pub(crate) fn read_pause(last: &mut Option<Instant>, now: Instant, more: bool) -> Option<Instant> {
    let steady = last.is_some_and(|at| now.saturating_duration_since(at) <= STEADY_GAP);
    *last = Some(now);
    (steady && !more).then(|| now + READ_PAUSE)
}

/// What [`ApplyState::take_ack`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Nothing new to acknowledge.
    Nothing,
    /// An ACK was appended to the output.
    Queued,
    /// An ACK is owed but the last one was too recent: ask again at the next input, or
    /// at this instant at the latest (the interval's end plus [`ACK_WAKE_SLACK`]).
    Later(Instant),
}

/// Whether something paced to once per `every` (a replica's ACK, a primary's shipment
/// to a flow) may go at `now`, given when it last went (recorded here when it may), or
/// the instant it may.
pub(crate) fn pace(
    last: &mut Option<Instant>,
    now: Instant,
    every: Duration,
) -> Result<(), Instant> {
    if let Some(at) = *last {
        let due = at + every;
        if now < due {
            return Err(due);
        }
    }
    *last = Some(now);
    Ok(())
}

/// One flow being applied, on the core its link handed it to.
pub struct ApplyState {
    pub start: ApplyStart,
    applier: Applier,
    /// Ops for other cores, gathered during one input and posted together.
    remote: Vec<Vec<Op>>,
    /// The offset whose records every core of this replica has applied: what may be
    /// acknowledged (a WAIT that counts this replica means a read here sees the write).
    applied: Rc<Cell<u64>>,
    /// The offset whose records were handed to the cores.
    posted: u64,
    /// The offset last acknowledged to the primary, and when.
    acked: u64,
    last_ack: Option<Instant>,
    hello_seen: bool,
    /// Barriers posted to the other cores and not answered yet.
    inflight: Rc<Cell<usize>>,
    /// What [`ApplyState::settle`] last published.
    settled: Option<u64>,
}

/// Applies an op to a replica shard, restarting its journal where a full sync says.
fn apply_here(shard: &mut Shard, journal: Option<&Journal>, op: &Op) {
    apply_op(shard, op);
    if let (Op::Restart { offset }, Some(j)) = (op, journal) {
        j.restart(*offset);
    }
}

impl ApplyState {
    pub fn new(start: ApplyStart, cores: usize) -> ApplyState {
        ApplyState {
            applier: Applier::new(cores, start.offset, Limits::default()),
            remote: (0..cores).map(|_| Vec::new()).collect(),
            applied: Rc::new(Cell::new(start.offset)),
            posted: start.offset,
            acked: start.offset,
            last_ack: None,
            start,
            hello_seen: false,
            inflight: Rc::new(Cell::new(0)),
            settled: None,
        }
    }

    /// Takes bytes from the primary: applies what is complete (here, or posted to the
    /// key's core) and appends an ACK of the new offset to `out`. An error ends the flow.
    pub fn on_input(
        &mut self,
        nc: &NetCore,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let repl = &nc.shared.repl;
        let me = nc.core.id;
        if self.applier.hello().is_none() && bytes.first() == Some(&b'-') {
            // The primary refused FLOWSYNC with an error reply instead of a hello.
            let line = bytes
                .split(|&b| b == b'\r' || b == b'\n')
                .next()
                .unwrap_or(bytes);
            return Err(format!(
                "the primary refused the flow: {}",
                String::from_utf8_lossy(&line[1..])
            ));
        }
        let result = {
            let mut shard = nc.core.shard.borrow_mut();
            let journal = repl.journal(me);
            let remote = &mut self.remote;
            self.applier.feed(bytes, |c, op| {
                if c == me {
                    apply_here(&mut shard, journal, &op);
                } else {
                    remote[c].push(op);
                }
            })
        };
        let offset = self.applier.offset();
        self.post_remote(nc, offset);
        result.map_err(|e| e.to_string())?;
        let k = self.start.shard;
        let full_hello = !self.hello_seen && self.applier.hello().is_some_and(|h| h.full);
        if full_hello {
            // This replica's data is being replaced: its own replicas start again from
            // the new history (as Redis's do), under a new id unless its journals mirror
            // the primary's (equal core counts: the journal restarts at the primary's
            // offsets and the id is the primary's).
            if self
                .applier
                .hello()
                .is_some_and(|h| h.cores as usize != repl.cores)
            {
                lock(&repl.ids).id = crate::repl_state::new_replid();
            }
            repl.kill_feeds();
        }
        {
            let mut l = lock(&repl.link);
            if l.generation == self.start.generation && k < l.offsets.len() {
                l.last_io_ms = now_ms();
                if let Some(h) = self.applier.hello() {
                    if !self.hello_seen {
                        self.hello_seen = true;
                        l.flow_ids[k] = Some(h.replid);
                        l.connected[k] = true;
                        tracing::info!(
                            "MASTER <-> REPLICA flow {k}: {}",
                            if h.full {
                                "full sync".to_string()
                            } else {
                                format!("partial resync accepted from offset {}", h.offset)
                            }
                        );
                    }
                }
                l.offsets[k] = offset;
                l.loading[k] = self.applier.loading();
                l.sync_in_progress = l.loading.iter().any(|x| *x);
                let was_up = l.up;
                l.up = l.connected.iter().all(|x| *x) && !l.sync_in_progress;
                if l.up && !was_up {
                    l.down_since_ms = 0;
                    tracing::info!("MASTER <-> REPLICA sync: finished with success");
                }
            }
        }
        // Queued now, or by the loop's flow pump when it falls due.
        let _ = self.take_ack(out);
        Ok(())
    }

    /// Hands the other cores their ops of this input, with a barrier: every other core
    /// gets a request (empty when it has no op), and once all have answered, everything
    /// up to `offset` is applied everywhere (each core runs one peer's requests in order,
    /// so this input's answers come after every earlier input's). Then `offset` may be
    /// acknowledged. With one core, at once.
    fn post_remote(&mut self, nc: &NetCore, offset: u64) {
        let me = nc.core.id;
        let any_ops = self.remote.iter().any(|ops| !ops.is_empty());
        if !any_ops && offset == self.posted {
            return;
        }
        self.posted = offset;
        if nc.core.cores == 1 {
            self.applied.set(offset);
            return;
        }
        let mut batch = Batch::new(nc.core.cores);
        for (c, ops) in self.remote.iter_mut().enumerate() {
            if c == me {
                continue;
            }
            let ops = std::mem::take(ops);
            let journal = nc.shared.repl.journal(c).cloned();
            batch.push(
                c,
                Job::Call(Box::new(move |shard, _| {
                    for op in &ops {
                        apply_here(shard, journal.as_ref(), op);
                    }
                    Out::Value(Box::new(()))
                })),
            );
        }
        let (core, applied, inflight) =
            (nc.core.clone(), self.applied.clone(), self.inflight.clone());
        inflight.set(inflight.get() + 1);
        wake::spawn(async move {
            batch.run(&core).await;
            applied.set(applied.get().max(offset));
            inflight.set(inflight.get() - 1);
        });
    }

    /// Whether the flow streams journal records (its hello came and its snapshot, if
    /// any, is in): only then may its reads be paced ([`read_pause`]).
    pub fn streaming(&self) -> bool {
        self.hello_seen && !self.applier.loading()
    }

    /// Publishes, when it changed, the offset every core applied once the snapshot is in
    /// on every core ([`crate::repl_state::LinkState::settled`]).
    pub fn settle(&mut self, repl: &Repl) {
        let settled = (self.hello_seen && !self.applier.loading() && self.inflight.get() == 0)
            .then(|| self.applied.get());
        if settled == self.settled {
            return;
        }
        self.settled = settled;
        let mut l = lock(&repl.link);
        let k = self.start.shard;
        if l.generation == self.start.generation && k < l.settled.len() {
            l.settled[k] = settled;
        }
    }

    /// Appends an ACK of what every core applied, if it moved since the last one.
    /// True if it did.
    pub fn take_ack(&mut self, out: &mut Vec<u8>) -> Ack {
        let applied = self.applied.get();
        if applied <= self.acked {
            return Ack::Nothing;
        }
        if let Err(due) = pace(&mut self.last_ack, Instant::now(), ACK_INTERVAL) {
            return Ack::Later(due + ACK_WAKE_SLACK);
        }
        self.acked = applied;
        out.extend_from_slice(format!("REPLCONF ACK {applied}\r\n").as_bytes());
        Ack::Queued
    }

    /// The flow's connection closed: the link starts over unless it was being replaced.
    pub fn on_close(&mut self, repl: &Repl) {
        let mut l = lock(&repl.link);
        l.live_flows = l.live_flows.saturating_sub(1);
        if self.applier.loading() {
            // The snapshot was cut short: what this flow holds is incomplete, and only a
            // full sync makes it whole again.
            if let Some(id) = l.flow_ids.get_mut(self.start.shard) {
                *id = None;
            }
        }
        if l.generation == self.start.generation {
            if let Some(s) = l.settled.get_mut(self.start.shard) {
                *s = None;
            }
            l.broken = true;
            if let Some(c) = l.connected.get_mut(self.start.shard) {
                *c = false;
            }
            l.up = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_paced_to_one_per_interval() {
        let t0 = Instant::now();
        let mut last = None;
        // The first ACK after a quiet spell goes at once.
        assert_eq!(pace(&mut last, t0, ACK_INTERVAL), Ok(()));
        // Another within the interval waits for its end...
        let soon = t0 + ACK_INTERVAL / 4;
        assert_eq!(pace(&mut last, soon, ACK_INTERVAL), Err(t0 + ACK_INTERVAL));
        assert_eq!(last, Some(t0), "a refused ACK does not move the clock");
        // ...and goes once it has passed.
        assert_eq!(pace(&mut last, t0 + ACK_INTERVAL, ACK_INTERVAL), Ok(()));
        assert_eq!(last, Some(t0 + ACK_INTERVAL));
    }

    #[test]
    fn a_steady_stream_is_read_once_per_pause() {
        let t0 = Instant::now();
        let mut last = None;
        assert_eq!(read_pause(&mut last, t0, false), None, "the first read");
        let t1 = t0 + Duration::from_micros(300);
        assert_eq!(
            read_pause(&mut last, t1, false),
            Some(t1 + READ_PAUSE),
            "a read soon after another: the next waits"
        );
        let t2 = t1 + Duration::from_micros(300);
        assert_eq!(
            read_pause(&mut last, t2, true),
            None,
            "more is waiting: read again at once"
        );
        let t2 = t2 + READ_PAUSE + Duration::from_micros(100);
        assert_eq!(
            read_pause(&mut last, t2, false),
            Some(t2 + READ_PAUSE),
            "a read at the end of a pause: the stream is still steady"
        );
        let t3 = t2 + STEADY_GAP + Duration::from_micros(1);
        assert_eq!(
            read_pause(&mut last, t3, false),
            None,
            "after a quiet spell: at once"
        );
        assert_eq!(last, Some(t3));
    }

    #[test]
    fn a_held_back_ack_wakes_the_loop_only_after_the_slack() {
        let start = ApplyStart {
            shard: 0,
            offset: 10,
            generation: 1,
        };
        let mut a = ApplyState::new(start, 1);
        let mut out = Vec::new();
        assert_eq!(a.take_ack(&mut out), Ack::Nothing, "nothing new applied");
        a.applied.set(20);
        let before = Instant::now();
        assert_eq!(a.take_ack(&mut out), Ack::Queued, "the first goes at once");
        assert_eq!(out, b"REPLCONF ACK 20\r\n");
        a.applied.set(30);
        let Ack::Later(wake) = a.take_ack(&mut out) else {
            panic!("a second ACK within the interval waits");
        };
        assert!(wake >= before + ACK_INTERVAL + ACK_WAKE_SLACK, "{wake:?}");
        // Any turn after the interval (an input arriving) sends it, before the wake-up.
        a.last_ack = Some(Instant::now() - ACK_INTERVAL);
        assert_eq!(a.take_ack(&mut out), Ack::Queued);
        assert_eq!(out, b"REPLCONF ACK 20\r\nREPLCONF ACK 30\r\n");
    }
}
