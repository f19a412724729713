//! The new process's side: `--takeover PATH`. It asks the old process for its listeners,
//! copies its shards as a replica does, and on PROMOTE becomes the primary and adopts
//! the connections the old cores send (see [`crate::handoff`] for the protocol).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::fdpass::{self, read_line, send_line};
use super::lines;
use super::{IDLE, PROTO, TAKING};
use crate::config::Shared;
use crate::repl_state::{lock, FlowStart};
use crate::session::{Adopted, Protocol, Session};

/// What the old process handed over at TAKEOVER: its listeners and where it serves.
pub struct Takeover {
    conn: UnixStream,
    path: PathBuf,
    pub port: u16,
    pub memcache_port: u16,
    host: String,
    /// The old process's listening sockets (owned by this process now as well).
    pub listeners: Vec<(OwnedFd, Protocol)>,
    old_cores: usize,
    /// The old process's requirepass: the copy AUTHs with it.
    auth: Option<String>,
    /// The old process chose the per-shard cutover: flows open one by one (`CUT k`).
    cutover: bool,
    /// Where the old process forwards the requests on the shards it cut over.
    forward: Option<ForwardSocket>,
}

fn bad(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// Sends TAKEOVER (naming the session formats this binary reads, if `sessions`) and
/// reads the answer.
fn ask(
    path: &Path,
    cores: usize,
    sessions: bool,
) -> std::io::Result<(UnixStream, String, Vec<OwnedFd>)> {
    let conn = UnixStream::connect(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot reach the handoff socket {}: {e}", path.display()),
        )
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = format!("TAKEOVER {PROTO} pid {} cores {cores}", std::process::id());
    if sessions {
        use crate::session::{OLDEST_VERSION, VERSION};
        line.push_str(&format!(" sessions {OLDEST_VERSION} {VERSION} cutover"));
    }
    send_line(&conn, &line, &[])?;
    let (line, fds) =
        read_line(&conn)?.ok_or_else(|| bad("the old process closed the handoff socket"))?;
    Ok((conn, line, fds))
}

/// Connects to the old process's control socket and takes its listeners.
pub fn takeover(path: &Path, cores: usize) -> std::io::Result<Takeover> {
    let forward = ForwardSocket::bind(path);
    let (mut conn, mut line, mut fds) = ask(path, cores, true)?;
    if line == "ERR unknown handoff request" {
        // An old process from before session format 4 knows no `sessions`: ask as it
        // expects; it sends format 3, which this binary reads.
        (conn, line, fds) = ask(path, cores, false)?;
    }
    let ok = lines::parse_takeover_ok(&line).map_err(bad)?;
    let session = ok.session.unwrap_or(crate::session::OLDEST_VERSION);
    if !(crate::session::OLDEST_VERSION..=crate::session::VERSION).contains(&session) {
        return Err(bad(format!(
            "the old process would send session format {session}, which this binary does not read"
        )));
    }
    if ok.proto != PROTO {
        return Err(bad(format!(
            "the old process speaks handoff protocol {}, not {PROTO}",
            ok.proto
        )));
    }
    let (rn, mn) = (ok.redis_listeners, ok.memcache_listeners);
    if fds.len() != rn + mn {
        return Err(bad(format!(
            "the old process passed {} listeners, announced {rn} + {mn}",
            fds.len()
        )));
    }
    crate::session::reserve_ids_through(ok.next_client_id.saturating_sub(1));
    let auth = ok.auth.clone();
    let listeners = fds
        .into_iter()
        .enumerate()
        .map(|(i, fd)| {
            (
                fd,
                if i < rn {
                    Protocol::Redis
                } else {
                    Protocol::Memcache
                },
            )
        })
        .collect();
    Ok(Takeover {
        conn,
        path: path.to_path_buf(),
        port: ok.port,
        memcache_port: ok.memcache_port,
        host: ok.host,
        listeners,
        old_cores: ok.cores,
        auth,
        cutover: ok.cutover,
        forward: forward.filter(|_| ok.cutover),
    })
}

impl Takeover {
    /// Starts taking over: sends the connection sockets, starts copying from the old
    /// process, and drives the rest on a thread. The cores must start in [`TAKING`]
    /// (they accept nothing and run no adopted connection's command until the end).
    pub fn start(mut self, shared: &Arc<Shared>) -> std::io::Result<()> {
        let h = &shared.handoff;
        h.set_phase(TAKING);
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..self.old_cores {
            let (a, b) = UnixStream::pair()?;
            ours.push(a);
            theirs.push(b);
        }
        let forwarding = match self.forward.take() {
            Some(sock) if self.cutover => {
                let stop = Arc::new(AtomicBool::new(false));
                let (shared, stopped) = (shared.clone(), stop.clone());
                std::thread::Builder::new()
                    .name("baton-handoff-fwd".into())
                    .spawn(move || sock.serve(shared, stopped))?;
                Some(stop)
            }
            _ => None,
        };
        let fds: Vec<i32> = theirs.iter().map(|s| s.as_raw_fd()).collect();
        send_line(
            &self.conn,
            &format!("CONNS {} runid {}", self.old_cores, shared.run_id),
            &fds,
        )?;
        drop(theirs);
        let next = Arc::new(AtomicUsize::new(0));
        h.receiving.store(ours.len(), Ordering::Release);
        for (i, sock) in ours.into_iter().enumerate() {
            let shared = shared.clone();
            let next = next.clone();
            std::thread::Builder::new()
                .name(format!("baton-adopt-{i}"))
                .spawn(move || {
                    receive(&shared, sock, &next);
                    shared.handoff.receiving.fetch_sub(1, Ordering::AcqRel);
                })?;
        }
        // Copy the shards: this process is a replica of the old one until PROMOTE. With
        // the per-shard cutover, one flow at a time: the next opens at each `CUT`.
        if self.cutover {
            h.open_flows.store(1, Ordering::Release);
        }
        *lock(&shared.repl.masterauth) = self.auth.clone();
        crate::repl::link::start(shared, self.host.clone(), self.port);
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("baton-takeover".into())
            .spawn(move || {
                self.drive(&shared);
                if let Some(stop) = forwarding {
                    stop.store(true, Ordering::Release);
                }
            })?;
        Ok(())
    }

    fn drive(self, shared: &Arc<Shared>) {
        let h = &shared.handoff;
        let from_old = super::reader(&self.conn);
        let mut synced = false;
        // Per-shard cutover: the flows `SYNCED k` was sent for (0..synced_upto).
        let mut synced_upto = 0;
        let mut catch_up: Option<Vec<u64>> = None;
        let mut promoted = false;
        // How many connections the old process says it sent (its DONE), if it said.
        let mut sent: Option<u64> = None;
        loop {
            let line = match from_old.recv_timeout(Duration::from_millis(1)) {
                Ok(Some(line)) => Some(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    if promoted {
                        tracing::warn!("handoff: the old process went away while handing over its connections; the ones it still held are lost");
                    } else {
                        let copying = {
                            let l = lock(&shared.repl.link);
                            l.settled.iter().filter(|s| s.is_none()).count()
                        };
                        tracing::warn!(
                            "handoff: the old process went away before the handoff finished; serving the data copied so far{}",
                            if copying == 0 {
                                String::new()
                            } else {
                                format!(" ({copying} shards were still being copied: what they had not sent is lost)")
                            }
                        );
                        crate::repl::commands::promote(shared);
                    }
                    break;
                }
            };
            match line.as_deref() {
                None => {}
                Some("PROMOTE") => {
                    crate::repl::commands::promote(shared);
                    promoted = true;
                    tracing::info!("handoff: promoted; the old process hands over its connections");
                    if send_line(&self.conn, "PROMOTED", &[]).is_err() {
                        break;
                    }
                }
                Some(l) if l.starts_with("FOLLOW ") => {
                    // The old process is a replica: follow its primary, resuming each flow
                    // from the offsets copied (its journals mirror the primary's).
                    let (host, port) = match lines::parse_follow(l) {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::warn!("handoff: {e}");
                            break;
                        }
                    };
                    *lock(&shared.repl.masterauth) = shared.config.settings.masterauth.clone();
                    crate::repl::link::start(shared, host.clone(), port);
                    promoted = true;
                    tracing::info!("handoff: following {host}:{port}; the old process hands over its connections");
                    if send_line(&self.conn, "PROMOTED", &[]).is_err() {
                        break;
                    }
                }
                Some(l) if l.starts_with("CUT ") => match lines::parse_cut(l) {
                    Ok(k) => {
                        // Old shard k is ours now (its connections' requests for it wait
                        // in the old process until they move here): copy the next one.
                        tracing::info!("handoff: old shard {k} is cut over to this process");
                        h.open_flows.store(k + 2, Ordering::Release);
                    }
                    Err(e) => {
                        tracing::warn!("handoff: {e}");
                        break;
                    }
                },
                Some(l) if l.starts_with("CATCHUP") => match lines::parse_catchup(l) {
                    Ok(t) => catch_up = Some(t),
                    Err(e) => {
                        tracing::warn!("handoff: {e}");
                        break;
                    }
                },
                Some(l) if l.starts_with("DONE") => {
                    sent = lines::parse_done(l)
                        .map_err(|e| tracing::warn!("handoff: {e}"))
                        .ok();
                    tracing::info!("handoff: done ({l}); serving");
                    break;
                }
                Some(l) => tracing::warn!("handoff: unexpected line from the old process: {l:?}"),
            }
            let settled = lock(&shared.repl.link).settled.clone();
            let open = h.open_flows.load(Ordering::Acquire).min(settled.len());
            if self.cutover
                && !synced
                && open > synced_upto
                && open < settled.len()
                && settled[..open].iter().all(Option::is_some)
            {
                // Flows 0..open are copied; the rest wait for their cut.
                synced_upto = open;
                tracing::info!("handoff: old shard {} is copied", open - 1);
                if send_line(&self.conn, &format!("SYNCED {}", open - 1), &[]).is_err() {
                    continue;
                }
            }
            if !synced && !settled.is_empty() && settled.iter().all(Option::is_some) {
                synced = true;
                tracing::info!("handoff: every shard is copied");
                if send_line(&self.conn, "SYNCED", &[]).is_err() {
                    continue;
                }
            }
            if let Some(targets) = &catch_up {
                // Per-shard cutover: the targets name the flows copied so far.
                let caught_up = targets.len() <= settled.len()
                    && targets
                        .iter()
                        .zip(&settled)
                        .all(|(t, s)| s.is_some_and(|s| s >= *t));
                if caught_up {
                    catch_up = None;
                    let _ = send_line(&self.conn, "CAUGHTUP", &[]);
                }
            }
        }
        if promoted {
            adopt_all(h, sent);
        }
        h.open_flows.store(usize::MAX, Ordering::Release);
        h.set_phase(IDLE);
        shared.repl.ring_all();
        // The old process has let go of the control socket path: this process serves it.
        if let Err(e) = super::control::listen_at(shared, &self.path, true) {
            tracing::warn!("handoff: {e}; no further handoff from this process");
        }
    }
}

/// The forwarding socket of a new process (per-shard cutover): the old process opens a
/// link to it per core and kind for the requests on the shards it cut over
/// ([`super::cutover`]). Mode 0600; its peers are checked as the control socket's are.
/// The file goes when this does.
struct ForwardSocket {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl Drop for ForwardSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ForwardSocket {
    /// Listens next to the control socket `control`, before TAKEOVER: the old process
    /// chooses the per-shard cutover by default only if this file exists. `None` if it
    /// cannot listen (a path too long for a Unix socket, say): the old process then takes
    /// the one-freeze path, unless the tool insisted on the cutover.
    fn bind(control: &Path) -> Option<ForwardSocket> {
        use std::os::unix::fs::PermissionsExt;
        let path = super::cutover::forward_socket_path(control, std::process::id());
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path);
        let sock = match listener {
            Ok(listener) => ForwardSocket { listener, path },
            Err(e) => {
                tracing::warn!(
                    "handoff: cannot listen on the forwarding socket {}: {e}",
                    path.display()
                );
                return None;
            }
        };
        let ready = std::fs::set_permissions(&sock.path, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| sock.listener.set_nonblocking(true));
        match ready {
            Ok(()) => Some(sock),
            Err(e) => {
                tracing::warn!("handoff: cannot set up the forwarding socket: {e}");
                None
            }
        }
    }

    /// Hands each link the old process opens to a core of this process, which serves it
    /// as a client while the handoff holds the others, until `stop` is set.
    fn serve(self, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
        let cores = shared.config.cores;
        let mut next = 0usize;
        while !stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if !fdpass::peer_allowed(&sock) {
                        continue;
                    }
                    let link = FlowStart::HandoffLink(OwnedFd::from(sock));
                    shared.repl.post(next % cores, link);
                    next += 1;
                }
                // A link opens once per old core and kind: a short nap costs nothing.
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

/// How long the new process waits, after the old one's DONE, for the connections it sent
/// to be adopted (they are in the CONNS sockets already: this is a bound, not a pace).
const ADOPT_WITHIN: Duration = Duration::from_secs(10);

/// Waits until every connection the old process sent is adopted by a core of this one
/// (or closed, unreadable): `sent` of them, as its DONE said, or, when it did not say,
/// every one the CONNS sockets held until the old process closed them.
///
/// Only then may the cores start commands (leave [`TAKING`]). The old process sends DONE
/// once its cores have written every connection into the CONNS sockets, but this
/// process's receiving threads read those sockets, and the cores adopt what they post,
/// on their own time. A moved publisher whose core ran its first PUBLISH before the core
/// of a moved subscriber had adopted it (registering its channels in that core's Pub/Sub
/// registry) reached no subscriber there: a message published after the commit point
/// missed a subscriber that had been subscribed all along (`PUBLISH` answered 0).
fn adopt_all(h: &super::Handoff, sent: Option<u64>) {
    let started = std::time::Instant::now();
    loop {
        // In this order: once no socket is read, `arrived` is final.
        let receiving = h.receiving.load(Ordering::Acquire);
        let arrived = h.arrived.load(Ordering::Acquire);
        let settled = h.settled.load(Ordering::Acquire);
        let all_read = receiving == 0 && settled >= arrived;
        match sent {
            Some(n) if settled >= n => return,
            Some(n) if all_read => {
                tracing::warn!("handoff: the old process sent {n} connections; {settled} arrived");
                return;
            }
            None if all_read => return,
            _ => {}
        }
        if started.elapsed() > ADOPT_WITHIN {
            tracing::warn!(
                "handoff: {settled} of {} connections adopted after {} s; serving",
                sent.map_or_else(|| arrived.to_string(), |n| n.to_string()),
                ADOPT_WITHIN.as_secs()
            );
            return;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Receives the connections one old core sends, and hands each to a core of this process.
fn receive(shared: &Shared, sock: UnixStream, next: &AtomicUsize) {
    let cores = shared.config.cores;
    loop {
        let (fd, payload) = match fdpass::recv_frame(&sock) {
            Ok(Some(f)) => {
                shared.handoff.arrived.fetch_add(1, Ordering::AcqRel);
                f
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("handoff: a connection could not be received: {e}");
                return;
            }
        };
        let (session, times, unparsed) = match Session::decode(&payload) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "handoff: a connection's session could not be read ({e}); closing it"
                );
                shared.handoff.settled_one();
                continue;
            }
        };
        crate::session::reserve_ids_through(session.id);
        let core = next.fetch_add(1, Ordering::Relaxed) % cores;
        shared.repl.post(
            core,
            FlowStart::Adopt(Box::new(Adopted {
                fd,
                session,
                times,
                unparsed,
            })),
        );
    }
}
