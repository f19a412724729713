//! The old process's side: the control socket, and the thread that drives a handoff from
//! a new process's TAKEOVER to the last connection moved (see the module doc of
//! [`crate::handoff`] for the protocol).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fdpass::{self, read_line, send_line};
use super::lines::{self, Request, TakeoverOk};
use super::{Handoff, COPYING, FREEZING, IDLE, MOVING, PROTO};
use crate::config::Shared;
use crate::repl_state::{lock, Role};
use crate::session::Protocol;

/// How long the cores may take to finish the commands running when the freeze begins.
const QUIET_WITHIN: Duration = Duration::from_secs(5);
/// How long the new process may take to apply the last writes, and to promote itself.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(5);
const PROMOTE_WITHIN: Duration = Duration::from_secs(10);
/// How long the cores may take to hand over their connections (each waits for its
/// output to be written first).
const MOVE_WITHIN: Duration = Duration::from_secs(30);
/// How often the driver looks at the copy and the cores.
const POLL: Duration = Duration::from_millis(2);
/// Copy progress goes to the tool at most this often per core.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The control socket a server on `port` listens on unless told otherwise.
pub fn default_socket_path(port: u16) -> PathBuf {
    PathBuf::from(format!("/tmp/baton-{port}.handoff"))
}

/// Listens on the control socket at `path` (mode 0600, replacing a stale file) and
/// serves it on a thread.
pub fn listen(shared: &Arc<Shared>, path: &Path) -> std::io::Result<()> {
    listen_at(shared, path, false)
}

/// [`listen`]; `replace` takes the path over even from a live process (the old process
/// of a handoff, about to exit).
pub(super) fn listen_at(shared: &Arc<Shared>, path: &Path, replace: bool) -> std::io::Result<()> {
    if path.exists() {
        if !replace && UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "another server listens on the handoff socket {}",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot listen on the handoff socket {}: {e}",
                path.display()
            ),
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let inode = std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
    *lock(&shared.handoff.socket_path) = Some((path.to_path_buf(), inode));
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("baton-handoff".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("baton-handoff-conn".into())
                    .spawn(move || serve(&shared, conn));
            }
        })?;
    Ok(())
}

fn serve(shared: &Arc<Shared>, conn: UnixStream) {
    if !fdpass::peer_allowed(&conn) {
        let _ = send_line(&conn, "ERR permission denied", &[]);
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(Some((line, _))) = read_line(&conn) else {
        return;
    };
    let h = &shared.handoff;
    let request = match lines::request(&line) {
        Ok(r) => r,
        Err(e) => {
            let _ = send_line(&conn, &format!("ERR {e}"), &[]);
            return;
        }
    };
    let proto = match request {
        Request::Hello { proto, .. } | Request::Takeover { proto, .. } => proto,
    };
    if proto != PROTO {
        let _ = send_line(
            &conn,
            &format!("ERR protocol version {proto} is not supported (this server speaks {PROTO})"),
            &[],
        );
        return;
    }
    match request {
        Request::Hello { cutover, .. } => {
            {
                let mut watchers = lock(&h.watchers);
                if !watchers.is_empty() || h.phase() != IDLE || h.busy.load(Ordering::Acquire) {
                    let _ = send_line(&conn, "ERR a handoff is already in progress", &[]);
                    return;
                }
                let hello = format!(
                    "OK {PROTO} pid {} port {} cores {} version {}",
                    std::process::id(),
                    shared.redis_port,
                    shared.config.cores,
                    env!("CARGO_PKG_VERSION")
                );
                if send_line(&conn, &hello, &[]).is_err() {
                    return;
                }
                let Ok(events) = conn.try_clone() else { return };
                watchers.push(events);
                h.ask(cutover);
            }
            // The tool may ask to abort; its going away changes nothing but the list of
            // watchers (a tool that left must not make the next one look like a second).
            let _ = conn.set_read_timeout(None);
            while let Ok(Some((line, _))) = read_line(&conn) {
                if line == "ABORT" {
                    if h.phase() == MOVING || h.committed() {
                        let _ = send_line(&conn, "ERR too late", &[]);
                    } else {
                        h.abort.store(true, Ordering::Release);
                    }
                }
            }
            let me = fdpass::inode(&conn);
            lock(&h.watchers).retain(|w| fdpass::inode(w) != me);
        }
        Request::Takeover {
            pid,
            cores,
            sessions,
            cutover,
            ..
        } => {
            let session = crate::session::common_version(sessions);
            if let Some(reason) = session.as_ref().err().cloned().or_else(|| not_now(shared)) {
                let _ = send_line(&conn, &format!("ERR {reason}"), &[]);
                h.event(&format!("ABORT {reason}"));
                lock(&h.watchers).clear();
                return;
            }
            if h.busy.swap(true, Ordering::AcqRel) {
                let _ = send_line(&conn, "ERR a handoff is already in progress", &[]);
                return;
            }
            let session = session.expect("checked above");
            // A new process that named its formats is told the one chosen; one that did
            // not (an older binary) reads format 3, and its OK line has no such field.
            let announced = sessions.map(|_| session);
            h.session_version.store(session, Ordering::Release);
            let outcome = drive(shared, &conn, pid, cores, announced, cutover);
            if let Err(reason) = outcome {
                abort(shared, pid, &reason);
            }
            *lock(&shared.repl.handoff_copy) = None;
            h.ask(lines::Cutover::Never);
            h.busy.store(false, Ordering::Release);
        }
    }
}

/// Why this server cannot be handed over right now, if it cannot.
fn not_now(shared: &Shared) -> Option<String> {
    let repl = &shared.repl;
    if *lock(&repl.failover_state) != "no-failover" {
        return Some("a FAILOVER is in progress".into());
    }
    if repl.is_replica() && !lock(&repl.link).up {
        return Some(
            "this replica's link to its primary is down (the new process could not copy it)".into(),
        );
    }
    None
}

/// Aborts a handoff before its commit point: the new process is stopped (it may be
/// alive, copying), the cores serve as before.
fn abort(shared: &Shared, pid: i32, reason: &str) {
    let h = &shared.handoff;
    if pid > 0 {
        // SAFETY: kill(2) with a pid the new process announced; at worst it is gone.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // Past the commit point (the per-shard cutover's first cut): the shards cut over
    // went with the new process. They serve again here, empty.
    let cut: Vec<String> = (0..h.cut.len())
        .filter(|&k| h.is_cut(k))
        .map(|k| k.to_string())
        .collect();
    h.set_forward_path(None);
    h.clear_cuts();
    h.committed.store(false, Ordering::Release);
    let lost;
    let reason = if cut.is_empty() {
        reason
    } else {
        lost = format!(
            "{reason}, past the commit point: the data of shard(s) {} went with it and is lost; \
             those shards serve again here, empty",
            cut.join(" ")
        );
        tracing::error!("handoff: {lost}");
        &lost
    };
    for s in lock(&h.conn_socks).iter_mut() {
        *s = None;
    }
    h.set_phase(IDLE);
    shared.repl.ring_all();
    h.abort.store(false, Ordering::Release);
    h.event(&format!("ABORT {reason}"));
    lock(&h.watchers).clear();
    tracing::warn!("handoff aborted: {reason}; serving on");
}

/// Fails if the operator aborted or the new process went away; returns its next line.
fn check(h: &Handoff, from_new: &mpsc::Receiver<Option<String>>) -> Result<Option<String>, String> {
    if h.abort.load(Ordering::Acquire) {
        return Err("aborted by the operator".into());
    }
    match from_new.try_recv() {
        Ok(Some(line)) => Ok(Some(line)),
        Ok(None) | Err(mpsc::TryRecvError::Disconnected) => Err("the new process went away".into()),
        Err(mpsc::TryRecvError::Empty) => Ok(None),
    }
}

/// The copy's progress as last reported to the tools, per old core.
struct Copy {
    /// The new process's run id (its copy is a replica with that id).
    runid: String,
    last_sent: Vec<(u64, u64, bool)>,
    last_at: Vec<Instant>,
}

impl Copy {
    /// Reports progress until the new process says `SYNCED <k>` (`want` = `Some(k)`:
    /// flows 0..=k copied) or `SYNCED` (`None`: every flow copied).
    fn until(
        &mut self,
        shared: &Shared,
        from_new: &mpsc::Receiver<Option<String>>,
        want: Option<usize>,
    ) -> Result<(), String> {
        let h = &shared.handoff;
        loop {
            let info = lock(&shared.repl.replicas)
                .iter()
                .find(|r| r.id == self.runid)
                .cloned();
            if let Some(r) = &info {
                for k in 0..self.last_sent.len() {
                    let now = (
                        r.copied_keys.get(k).copied().unwrap_or(0),
                        r.copied_bytes.get(k).copied().unwrap_or(0),
                        r.connected[k] && !r.loading[k],
                    );
                    let changed = now != self.last_sent[k];
                    if changed && (now.2 || self.last_at[k].elapsed() >= PROGRESS_EVERY) {
                        h.event(&format!("COPY {k} {} {} {}", now.0, now.1, now.2 as u8));
                        self.last_sent[k] = now;
                        self.last_at[k] = Instant::now();
                    }
                }
            }
            std::thread::sleep(POLL);
            if let Some(l) = check(h, from_new)? {
                if lines::parse_synced(&l)? != want {
                    return Err(format!("unexpected line from the new process: {l:?}"));
                }
                return Ok(());
            }
        }
    }
}

/// How far behind the journals' ends the new process may be when a freeze starts: the
/// freeze waits for the rest, so this bounds its catch-up (at ~50 B a record, about a
/// thousand writes).
const LAG_AT_FREEZE: u64 = 64 * 1024;
/// How long to wait for the new process to come that close before freezing anyway.
const NEAR_WITHIN: Duration = Duration::from_secs(1);

/// Before a freeze: waits (at most [`NEAR_WITHIN`]) until the new process (replica run id
/// `runid`) has acknowledged flows `0..flows` to within [`LAG_AT_FREEZE`] of their
/// journals' ends. At `SYNCED` it has applied the snapshot, but the writes made while the
/// snapshot streamed may still be on their way; applied inside the freeze they made it
/// last 25 ms once under load, where a caught-up new process needs 2-4 ms.
fn come_near(shared: &Shared, runid: &str, flows: usize) {
    let started = Instant::now();
    while started.elapsed() < NEAR_WITHIN {
        let ends = shared.repl.ends();
        let near = lock(&shared.repl.replicas)
            .iter()
            .find(|r| r.id == runid)
            .is_some_and(|r| {
                (0..flows).all(|k| {
                    let acked = r.acked.get(k).copied().unwrap_or(0);
                    ends.get(k)
                        .is_some_and(|&e| e.saturating_sub(acked) <= LAG_AT_FREEZE)
                })
            });
        if near {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Freezes every core (no command starts; the running ones finish), then waits until the
/// new process has applied flows `0..flows` up to their journals' ends. Returns when the
/// freeze began; the cores stay frozen.
fn freeze_and_catch_up(
    shared: &Shared,
    conn: &UnixStream,
    from_new: &mpsc::Receiver<Option<String>>,
    flows: usize,
) -> Result<Instant, String> {
    let h = &shared.handoff;
    for q in &h.quiet {
        q.store(false, Ordering::Release);
    }
    let frozen_at = Instant::now();
    h.set_phase(FREEZING);
    shared.repl.ring_all();
    while !h.quiet.iter().all(|q| q.load(Ordering::Acquire)) {
        check(h, from_new)?;
        if frozen_at.elapsed() > QUIET_WITHIN {
            return Err(format!(
                "commands were still running {} s into the freeze (a blocked client?)",
                QUIET_WITHIN.as_secs()
            ));
        }
        std::thread::yield_now();
    }
    let targets: Vec<String> = shared.repl.ends()[..flows]
        .iter()
        .map(u64::to_string)
        .collect();
    send_line(conn, &format!("CATCHUP {}", targets.join(" ")), &[])
        .map_err(|e| format!("cannot reach the new process: {e}"))?;
    loop {
        match check(h, from_new)? {
            Some(l) if l == "CAUGHTUP" => return Ok(frozen_at),
            Some(l) => return Err(format!("unexpected line from the new process: {l:?}")),
            None => {}
        }
        if frozen_at.elapsed() > QUIET_WITHIN + CATCH_UP_WITHIN {
            return Err("the new process did not catch up with the last writes".into());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Why this handoff takes today's one-freeze path instead of the per-shard cutover, if it
/// does (`offered`: the new process knows the cutover).
fn one_freeze_reason(shared: &Shared, offered: bool, forwards: bool) -> Option<&'static str> {
    let repl = &shared.repl;
    let asked = shared.handoff.asked();
    if asked == lines::Cutover::Never {
        Some("baton-handoff asked for it")
    } else if !offered {
        Some("the new process does not take shards over one by one")
    } else if asked == lines::Cutover::IfForwarded && !forwards {
        Some("the new process cannot take the requests on shards cut over to it, which would wait")
    } else if shared.config.cores == 1 {
        Some("one core: one shard, nothing to free before the end")
    } else if shared.cluster.get().is_some() {
        Some("cluster mode")
    } else if repl.is_replica() {
        Some("this server is a replica (its primary's stream feeds every shard)")
    } else if !lock(&repl.replicas).is_empty() {
        Some("replicas are attached (their flows would stop at each cut)")
    } else {
        None
    }
}

fn drive(
    shared: &Arc<Shared>,
    conn: &UnixStream,
    pid: i32,
    new_cores: usize,
    session: Option<u16>,
    offered_cutover: bool,
) -> Result<(), String> {
    let h = &shared.handoff;
    let repl = &shared.repl;
    let started = Instant::now();
    h.abort.store(false, Ordering::Release);
    h.clear_cuts();
    for d in &h.dropped {
        d.store(false, Ordering::Release);
    }
    h.committed.store(false, Ordering::Release);
    h.set_forward_path(None);
    // A new process that takes the requests on cut shards listens on its forwarding
    // socket before it asks (`takeover`).
    let control = lock(&h.socket_path).as_ref().map(|(p, _)| p.clone());
    let forward = control
        .map(|c| super::cutover::forward_socket_path(&c, pid as u32))
        .filter(|p| p.exists());
    let one_freeze = one_freeze_reason(shared, offered_cutover, forward.is_some());
    let cutover = one_freeze.is_none();
    if let Some(reason) = one_freeze {
        h.event(&format!("STEP path: one freeze for all shards ({reason})"));
        tracing::info!("handoff: one freeze for all shards: {reason}");
    }
    h.set_phase(COPYING);
    h.event(&format!(
        "STEP new process pid {pid} ({new_cores} cores) connected; passing the listeners"
    ));
    let (fds, redis_n, mc_n) = {
        let ls = lock(&h.listeners);
        let redis: Vec<i32> = ls
            .iter()
            .filter(|l| l.1 == Protocol::Redis)
            .map(|l| l.0)
            .collect();
        let mc: Vec<i32> = ls
            .iter()
            .filter(|l| l.1 == Protocol::Memcache)
            .map(|l| l.0)
            .collect();
        let (rn, mn) = (redis.len(), mc.len());
        ([redis, mc].concat(), rn, mn)
    };
    let host = match shared.config.bind.as_str() {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" => "::1".to_string(),
        b => b.to_string(),
    };
    let ok = lines::takeover_ok(&TakeoverOk {
        proto: PROTO,
        port: shared.redis_port,
        memcache_port: shared.memcache_port,
        cores: shared.config.cores,
        host,
        next_client_id: crate::session::next_client_id(),
        redis_listeners: redis_n,
        memcache_listeners: mc_n,
        auth: shared.config.requirepass.clone(),
        session,
        cutover,
    });
    send_line(conn, &ok, &fds).map_err(|e| format!("cannot pass the listeners: {e}"))?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let (line, socks) = read_line(conn)
        .map_err(|e| format!("the new process did not answer: {e}"))?
        .ok_or("the new process went away")?;
    let (m, runid) = lines::parse_conns(&line)?;
    *lock(&repl.handoff_copy) = Some(runid.clone());
    if m != shared.config.cores || socks.len() != shared.config.cores {
        return Err(format!(
            "the new process sent {} connection sockets for {} cores",
            socks.len(),
            shared.config.cores
        ));
    }
    {
        let mut slots = lock(&h.conn_socks);
        for (slot, fd) in slots.iter_mut().zip(socks) {
            *slot = Some(UnixStream::from(fd));
        }
    }
    if cutover {
        match &forward {
            Some(p) => tracing::info!(
                "handoff: requests on cut shards are forwarded to {}",
                p.display()
            ),
            None => tracing::info!(
                "handoff: the new process takes no forwarded requests; those on cut shards wait for their connections to move"
            ),
        }
        h.set_forward_path(forward);
    }
    let from_new = super::reader(conn);
    let cores = shared.config.cores;
    let mut copy = Copy {
        runid,
        last_sent: vec![(u64::MAX, 0, false); cores],
        last_at: vec![Instant::now() - PROGRESS_EVERY; cores],
    };
    if cutover {
        h.event("STEP path: per-shard cutover (each shard is copied, frozen and cut over in turn; the commit point is the first cut)");
        // 1-2. Per shard but the last: copy it, freeze, catch up, cut it over.
        for k in 0..cores - 1 {
            h.event(&format!("STEP copying shard {k} to the new process"));
            copy.until(shared, &from_new, Some(k))?;
            come_near(shared, &copy.runid, k + 1);
            let frozen_at = freeze_and_catch_up(shared, conn, &from_new, k + 1)?;
            h.set_cut(k);
            if k == 0 {
                h.committed.store(true, Ordering::Release);
            }
            h.set_phase(COPYING);
            repl.ring_all();
            let freeze = frozen_at.elapsed();
            send_line(conn, &format!("CUT {k}"), &[])
                .map_err(|e| format!("cannot reach the new process: {e}"))?;
            if k == 0 {
                h.event("STEP commit point: shard 0 cut over; no abort from here (if the new process fails now, the shards cut over to it are lost)");
            }
            h.event(&format!(
                "STEP shard {k} cut over (freeze {:.1} ms); {}",
                freeze.as_secs_f64() * 1000.0,
                if h.forwarding() {
                    "its requests are forwarded to the new process"
                } else {
                    "its requests wait for their connections to move"
                }
            ));
        }
        h.event(&format!(
            "STEP copying shard {} to the new process",
            cores - 1
        ));
    } else {
        h.event("STEP copying the shards to the new process");
    }

    // 1. The copy (of the last shard, or of all): wait until the new process has it.
    copy.until(shared, &from_new, None)?;
    let (keys, bytes) = copy
        .last_sent
        .iter()
        .fold((0u64, 0u64), |(k, b), s| (k + s.0, b + s.1));

    // 2. The freeze: no command starts; wait for the running ones, then for the copy.
    h.event("STEP freezing: no new command starts; waiting for the new process to catch up");
    come_near(shared, &copy.runid, cores);
    let frozen_at = freeze_and_catch_up(shared, conn, &from_new, cores)?;

    // 3. The commit point: the new process promotes itself, or, when this server is a
    // replica, follows this server's primary from where it stands (a partial resync).
    let commit = match repl.role() {
        Role::Primary => "PROMOTE".to_string(),
        Role::Replica { host, port } => format!("FOLLOW {host} {port}"),
    };
    send_line(conn, &commit, &[]).map_err(|e| format!("cannot reach the new process: {e}"))?;
    let asked = Instant::now();
    loop {
        match check(h, &from_new)? {
            Some(l) if l == "PROMOTED" => break,
            Some(l) => return Err(format!("unexpected answer from the new process: {l:?}")),
            None => {}
        }
        if asked.elapsed() > PROMOTE_WITHIN {
            return Err("the new process did not take over in time".into());
        }
        std::thread::sleep(Duration::from_micros(100));
    }

    // 4. The connections move; nothing can be undone from here on.
    h.event("STEP the new process holds the data; moving the connections");
    for d in &h.done {
        d.store(false, Ordering::Release);
    }
    if repl.is_replica() {
        // The new process follows the primary now; this one must not reconnect to it.
        crate::repl::link::stop(repl);
    }
    h.set_phase(MOVING);
    repl.ring_all();
    let moving = Instant::now();
    let mut reported = vec![false; cores];
    while reported.iter().any(|r| !r) {
        for (k, reported) in reported.iter_mut().enumerate() {
            if !*reported && h.done[k].load(Ordering::Acquire) {
                *reported = true;
                h.event(&format!("MOVED {k} {}", h.moved[k].load(Ordering::Acquire)));
            }
        }
        if moving.elapsed() > MOVE_WITHIN {
            tracing::warn!(
                "handoff: connections still not moved after {} s; going on",
                MOVE_WITHIN.as_secs()
            );
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let moved: u64 = h.moved.iter().map(|m| m.load(Ordering::Acquire)).sum();
    // The new process runs the moved connections' commands from now on.
    for s in lock(&h.conn_socks).iter_mut() {
        *s = None;
    }
    let _ = send_line(conn, &format!("DONE {moved}"), &[]);
    let freeze_us = frozen_at.elapsed().as_micros();
    h.event(&format!("FREEZE {freeze_us}"));
    h.event(&format!(
        "DONE new pid {pid}: {keys} keys and {bytes} bytes copied, {moved} connections moved, freeze {:.1} ms, {:.2} s in all",
        freeze_us as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    ));
    lock(&h.watchers).clear();
    tracing::info!("handoff done: the new process (pid {pid}) serves; exiting");
    shared.request_stop();
    Ok(())
}
