//! The connections a core keeps to the other nodes of the cluster, for the memcached
//! requests it forwards ([`crate::mcdispatch`]'s cluster mode).
//!
//! One persistent connection per peer per core, to the peer's client (Redis) port, on the
//! core's own io_uring: the event loop drives it as one of its flows
//! (`event_loop.rs`, `FlowKind::Forward`), next to the replication flows. No thread, no
//! blocking socket: the loop sends what the tasks queued and reads the answers in the
//! same submissions as its clients' I/O. It authenticates with `--masterauth` when that
//! is set, as the gossip does.
//!
//! ```text
//!  task ── send(addr, commands) ─► Queue (this core) ─► loop turn: the link to addr
//!   ▲                                                    (opened if none), commands
//!   │                                                    appended to its output
//!   └── Core::resolve_reply(id) ◄── answers parsed in order ◄── recv completions
//! ```
//!
//! Each command is `CLUSTER BATON-MC <asking 0|1> <memcached request>`; the answer is an
//! array with one element per key of the request: the memcached reply for that key, or a
//! redirection (`MOVED`, `ASK`) or a cluster error. The requests of every task are
//! pipelined on the link and answered in the order sent. Every wait is bounded by
//! `cluster-node-timeout`: once the oldest request on a link has waited that long, every
//! request on it fails with a reason and the link is closed. A link the peer closed
//! (it restarted) is dropped, and the next request opens a new one.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use baton_engine::runtime::{Core, Out};
use bytes::Bytes;

use crate::netcore::NetCore;
use crate::repl::link::encode_command;

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
/// limit: elements per answer (a multi-get's keys), bytes per element, bytes per line.
const MAX_PARTS: usize = 1 << 20;
const MAX_PART_LEN: usize = 512 << 20;
const MAX_LINE: usize = 64 * 1024;

/// A request of a task: its commands, and the reply id their answers resolve.
pub struct Work {
    id: u64,
    commands: Vec<Vec<u8>>,
}

impl Work {
    /// Resolves the request with `why` for every command (it never reached a link).
    pub fn fail(self, core: &Core, why: &str) {
        let answers: Vec<Answer> = vec![Err(why.to_string()); self.commands.len()];
        core.resolve_reply(self.id, vec![Out::Value(Box::new(answers))]);
    }
}

/// This core's forwarded requests not yet on a link, with their owners' addresses: the
/// tasks queue them ([`send`]) and the event loop takes them every turn.
#[derive(Default)]
pub struct Queue(RefCell<Vec<(String, Work)>>);

impl Queue {
    /// Makes this core's queue (cluster mode): [`send`] finds it.
    pub fn install(core: &Core) -> Rc<Queue> {
        let q = Rc::new(Queue::default());
        core.attach(q.clone());
        q
    }

    /// Everything queued since the last call.
    pub fn take(&self) -> Vec<(String, Work)> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// The `CLUSTER BATON-MC` command that forwards `request` (one memcached request).
pub fn command(asking: bool, request: &[u8]) -> Vec<u8> {
    let asking: &[u8] = if asking { b"1" } else { b"0" };
    encode_command(&[&b"CLUSTER"[..], b"BATON-MC", asking, request])
}

/// Sends `commands` to the node at `addr` (`ip:port`) on this core's link to it; the
/// future resolves to one answer per command, in order. The work is queued at once (the
/// loop sends it this turn), so several calls run at the same time.
pub fn send(
    nc: &NetCore,
    addr: &str,
    commands: Vec<Vec<u8>>,
) -> impl std::future::Future<Output = Vec<Answer>> {
    let core = &nc.core;
    let n = commands.len();
    let (id, rx) = core.expect_reply();
    let work = Work { id, commands };
    match core.attached::<Queue>() {
        Some(q) => q.0.borrow_mut().push((addr.to_string(), work)),
        None => work.fail(core, "this core forwards nothing"),
    }
    async move {
        let outs = rx.await;
        outs.into_iter()
            .next()
            .and_then(|o| o.into_value::<Vec<Answer>>())
            .unwrap_or_else(|| vec![Err("the link answered nothing".into()); n])
    }
}

/// How long a forwarded request may wait for its answer (`cluster-node-timeout`).
pub fn timeout(nc: &NetCore) -> Duration {
    let ms = nc
        .shared
        .cluster
        .get()
        .map_or(super::DEFAULT_NODE_TIMEOUT_MS, |c| c.config.node_timeout_ms);
    Duration::from_millis(ms.max(100))
}

/// A request sent on a link, waiting for its answers.
struct Waiting {
    id: u64,
    /// Answers still to come.
    left: usize,
    answers: Vec<Answer>,
    since: Instant,
}

/// One connection to a peer, as the event loop drives it: what was sent and waits for
/// an answer, and the bytes received but not yet parsed.
pub struct Link {
    pub addr: String,
    timeout: Duration,
    buf: Vec<u8>,
    waiting: VecDeque<Waiting>,
    /// The answer to AUTH comes first.
    auth_pending: bool,
    /// A link to the new process of a handoff that carries plain Redis commands
    /// ([`Link::handoff`]): each answer is one RESP value, passed on as it came.
    raw: bool,
    /// Raw link: answers to discard first (the reply to `HELLO 3`).
    skip: usize,
}

/// A non-blocking TCP socket connecting to `ip:port` (the connection completes while
/// the first send waits for it).
fn connect_socket(ip: IpAddr, port: u16) -> std::io::Result<OwnedFd> {
    let domain = if ip.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) with constant arguments; the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let r = match ip {
        IpAddr::V4(v4) => {
            // SAFETY: a zeroed sockaddr_in is valid; the fields are then set.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = port.to_be();
            sa.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            // SAFETY: connect(2) with a pointer to a live sockaddr_in and its size.
            unsafe {
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        IpAddr::V6(v6) => {
            // SAFETY: a zeroed sockaddr_in6 is valid; the fields are then set.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = port.to_be();
            sa.sin6_addr.s6_addr = v6.octets();
            // SAFETY: connect(2) with a pointer to a live sockaddr_in6 and its size.
            unsafe {
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(owned)
}

impl Link {
    /// Starts a connection to `addr` (`ip:port`, as a cluster view names a node): its
    /// socket, the link, and its first output (AUTH with `auth`, when set).
    pub fn connect(
        addr: &str,
        auth: Option<&str>,
        timeout: Duration,
    ) -> Result<(OwnedFd, Link, Vec<u8>), String> {
        let Some((ip, port)) = addr.rsplit_once(':').and_then(|(h, p)| {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            Some((h.parse::<IpAddr>().ok()?, p.parse::<u16>().ok()?))
        }) else {
            return Err(format!("the owner's address {addr:?} is not ip:port"));
        };
        let fd =
            connect_socket(ip, port).map_err(|e| format!("cannot reach the owner {addr}: {e}"))?;
        let hello = auth.map_or_else(Vec::new, |pw| encode_command(&["AUTH", pw]));
        let link = Link {
            addr: addr.to_string(),
            timeout,
            buf: Vec::new(),
            waiting: VecDeque::new(),
            auth_pending: auth.is_some(),
            raw: false,
            skip: 0,
        };
        Ok((fd, link, hello))
    }

    /// A link to the new process of a handoff's per-shard cutover, for the requests on
    /// the shards cut over to it ([`crate::handoff::cutover`]): a connection to its
    /// forwarding socket at `path`, which it serves as an authenticated client. `name` is
    /// one of [`crate::handoff::cutover::LINKS`]: RESP2 or RESP3 commands passed on
    /// whole (their answers come back as they are), or memcached requests as
    /// `CLUSTER BATON-MC`.
    pub fn handoff(
        path: &std::path::Path,
        name: &str,
        timeout: Duration,
    ) -> Result<(OwnedFd, Link, Vec<u8>), String> {
        use crate::handoff::cutover::{LINK_MC, LINK_RESP3};
        let sock = std::os::unix::net::UnixStream::connect(path)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("cannot reach the new process at {}: {e}", path.display()))?;
        let resp3 = name == LINK_RESP3;
        let hello = if resp3 {
            encode_command(&["HELLO", "3"])
        } else {
            Vec::new()
        };
        let link = Link {
            addr: name.to_string(),
            timeout,
            buf: Vec::new(),
            waiting: VecDeque::new(),
            auth_pending: false,
            raw: name != LINK_MC,
            skip: usize::from(resp3),
        };
        Ok((OwnedFd::from(sock), link, hello))
    }

    /// Appends `w`'s commands to the link's output; their answers resolve `w`.
    pub fn push(&mut self, w: Work, out: &mut Vec<u8>, now: Instant) {
        for c in &w.commands {
            out.extend_from_slice(c);
        }
        self.waiting.push_back(Waiting {
            id: w.id,
            left: w.commands.len(),
            answers: Vec::with_capacity(w.commands.len()),
            since: now,
        });
    }

    /// When the oldest request waiting on this link times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.waiting.front().map(|w| w.since + self.timeout)
    }

    /// The reason every request fails with once the link timed out.
    pub fn timed_out(&self) -> String {
        format!(
            "the owner {} did not answer within {:?}",
            self.addr, self.timeout
        )
    }

    /// Takes received bytes: every complete answer resolves its request, in order. An
    /// error means the stream cannot be trusted any more (the link must close).
    pub fn on_input(&mut self, core: &Core, bytes: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            if self.auth_pending {
                match line(&self.buf[at..]) {
                    Ok(Some((l, used))) => {
                        at += used;
                        self.auth_pending = false;
                        if !l.starts_with(b"+") {
                            break Err(format!(
                                "cannot authenticate to the owner {}: {}",
                                self.addr,
                                String::from_utf8_lossy(l)
                            ));
                        }
                        continue;
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
            let parsed = if self.raw {
                resp_value(&self.buf[at..], 0).map(|end| {
                    end.map(|n| (Ok(vec![Part::Reply(self.buf[at..at + n].to_vec())]), n))
                })
            } else {
                parse_answer(&self.buf[at..])
            };
            match parsed {
                Ok(Some((_, used))) if self.skip > 0 => {
                    at += used;
                    self.skip -= 1;
                }
                Ok(Some((answer, used))) => {
                    at += used;
                    let Some(w) = self.waiting.front_mut() else {
                        break Err(format!("the owner {} answered unasked", self.addr));
                    };
                    w.answers.push(answer);
                    w.left -= 1;
                    if w.left == 0 {
                        let w = self.waiting.pop_front().expect("front");
                        core.resolve_reply(w.id, vec![Out::Value(Box::new(w.answers))]);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("a bad answer from the owner {}: {e}", self.addr)),
            }
        };
        self.buf.drain(..at);
        result
    }

    /// Fails every request waiting on the link with `why` (it closes).
    pub fn fail(&mut self, core: &Core, why: &str) {
        for mut w in self.waiting.drain(..) {
            w.answers
                .resize(w.answers.len() + w.left, Err(why.to_string()));
            core.resolve_reply(w.id, vec![Out::Value(Box::new(w.answers))]);
        }
    }
}

/// One line without its `\r\n`, and the bytes it took; `None` while incomplete.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    match buf.iter().take(MAX_LINE).position(|&b| b == b'\n') {
        Some(i) if i > 0 && buf[i - 1] == b'\r' => Ok(Some((&buf[..i - 1], i + 1))),
        Some(_) => Err("a malformed answer line".into()),
        None if buf.len() >= MAX_LINE => Err("an answer line too long".into()),
        None => Ok(None),
    }
}

fn len_of(text: &[u8], max: usize) -> Result<usize, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n <= max)
        .ok_or_else(|| "a malformed or oversized length".to_string())
}

/// How deep RESP aggregates may nest in a raw answer.
const MAX_DEPTH: usize = 64;

/// The length of the one complete RESP2 or RESP3 value at the start of `buf` (a raw
/// link's answer), `None` while incomplete. Lines are bounded by `MAX_LINE`, bulk
/// strings by `MAX_PART_LEN`, nesting by `MAX_DEPTH`; nothing is allocated.
pub fn resp_value(buf: &[u8], depth: usize) -> Result<Option<usize>, String> {
    if depth > MAX_DEPTH {
        return Err("an answer nested too deep".into());
    }
    let Some((head, mut at)) = line(buf)? else {
        return Ok(None);
    };
    let count = |text: &[u8]| -> Result<Option<usize>, String> {
        if text == b"-1" {
            return Ok(None);
        }
        len_of(text, u32::MAX as usize).map(Some)
    };
    let (kind, rest) = match head.split_first() {
        Some((k, rest)) => (*k, rest),
        None => return Err("an empty answer line".into()),
    };
    let elements = match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => return Ok(Some(at)),
        b'$' | b'!' | b'=' => {
            let Some(len) = count(rest)? else {
                return Ok(Some(at));
            };
            if len > MAX_PART_LEN {
                return Err("a malformed or oversized length".into());
            }
            if buf.len() < at + len + 2 {
                return Ok(None);
            }
            if &buf[at + len..at + len + 2] != b"\r\n" {
                return Err("a truncated answer".into());
            }
            return Ok(Some(at + len + 2));
        }
        b'*' | b'~' | b'>' => count(rest)?.unwrap_or(0),
        b'%' => count(rest)?.unwrap_or(0).saturating_mul(2),
        // Attributes come before the value they describe: their pairs, then that value.
        b'|' => count(rest)?
            .unwrap_or(0)
            .saturating_mul(2)
            .saturating_add(1),
        _ => return Err("an unexpected answer".into()),
    };
    for _ in 0..elements {
        match resp_value(&buf[at..], depth + 1)? {
            Some(n) => at += n,
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}

/// Parses one answer to `CLUSTER BATON-MC` from the start of `buf`: an array of bulk
/// strings and errors, or one error for the whole command (the peer refused it: an old
/// version, authentication...). `None` while incomplete; the bytes it took.
pub fn parse_answer(buf: &[u8]) -> Result<Option<(Answer, usize)>, String> {
    let Some((head, mut at)) = line(buf)? else {
        return Ok(None);
    };
    match head.first() {
        Some(b'-') => {
            let why = format!(
                "the owner refused the forwarded request: {}",
                String::from_utf8_lossy(&head[1..])
            );
            return Ok(Some((Err(why), at)));
        }
        Some(b'*') => {}
        _ => return Err("an unexpected answer".into()),
    }
    let n = len_of(&head[1..], MAX_PARTS)?;
    let mut parts = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let Some((l, used)) = line(&buf[at..])? else {
            return Ok(None);
        };
        match l.first() {
            Some(b'-') => {
                parts.push(Part::Error(String::from_utf8_lossy(&l[1..]).into_owned()));
                at += used;
            }
            Some(b'$') => {
                let len = len_of(&l[1..], MAX_PART_LEN)?;
                let body = at + used;
                if buf.len() < body + len + 2 {
                    return Ok(None);
                }
                if &buf[body + len..body + len + 2] != b"\r\n" {
                    return Err("a truncated answer".into());
                }
                parts.push(Part::Reply(buf[body..body + len].to_vec()));
                at = body + len + 2;
            }
            _ => return Err("an unexpected answer element".into()),
        }
    }
    Ok(Some((Ok(parts), at)))
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

    fn answer(bytes: &[u8]) -> Result<Option<(Answer, usize)>, String> {
        parse_answer(bytes)
    }

    #[test]
    fn reads_parts_errors_and_refusals_whole_or_not_yet() {
        let full = b"*3\r\n$5\r\nEND\r\n\r\n-MOVED 1 h:1\r\n$0\r\n\r\n";
        assert_eq!(
            answer(full).unwrap(),
            Some((
                Ok(vec![
                    Part::Reply(b"END\r\n".to_vec()),
                    Part::Error("MOVED 1 h:1".into()),
                    Part::Reply(Vec::new()),
                ]),
                full.len()
            ))
        );
        // Every cut of it is incomplete, never an error; bytes after it stay.
        for cut in 0..full.len() {
            assert_eq!(answer(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        let mut two = full.to_vec();
        two.extend_from_slice(b"*0\r\n");
        assert_eq!(answer(&two).unwrap().unwrap().1, full.len());
        let (refused, used) = answer(b"-ERR unknown subcommand\r\n").unwrap().unwrap();
        assert!(refused.is_err());
        assert_eq!(used, 25);
        assert!(answer(b"*1\r\n$3\r\nabcde\r\n").is_err(), "wrong length");
        assert!(answer(b"*99999999999\r\n").is_err(), "too many parts");
        assert!(
            answer(b"*1\r\n$999999999999\r\n").is_err(),
            "too long a part"
        );
        assert!(answer(b"+OK\r\n").is_err());
        assert!(answer(b"*1\n").is_err(), "no \\r");
        assert!(answer(&vec![b'*'; MAX_LINE]).is_err(), "an endless line");
        assert_eq!(answer(b"").unwrap(), None);
    }

    #[test]
    fn raw_answers_are_whole_resp_values_or_not_yet() {
        let values: [&[u8]; 9] = [
            b"+OK\r\n",
            b"-ERR no\r\n",
            b":12\r\n",
            b"$3\r\nabc\r\n",
            b"$-1\r\n",
            b"*2\r\n$1\r\na\r\n*-1\r\n",
            b"%1\r\n+k\r\n~2\r\n,1.5\r\n#t\r\n",
            b"|1\r\n+a\r\n:1\r\n_\r\n",
            b"=7\r\ntxt:a\r\n\r\n",
        ];
        for v in values {
            assert_eq!(resp_value(v, 0).unwrap(), Some(v.len()), "{v:?}");
            for cut in 0..v.len() {
                assert_eq!(
                    resp_value(&v[..cut], 0).unwrap(),
                    None,
                    "{v:?} cut at {cut}"
                );
            }
            let mut two = v.to_vec();
            two.extend_from_slice(b":1\r\n");
            assert_eq!(resp_value(&two, 0).unwrap(), Some(v.len()));
        }
        assert!(resp_value(b"$3\r\nabcde\r\n", 0).is_err(), "wrong length");
        assert!(resp_value(b"$999999999999\r\n", 0).is_err(), "too long");
        assert!(resp_value(b"?\r\n", 0).is_err());
        assert!(resp_value(b"\r\n", 0).is_err());
        assert!(resp_value(&b"*1\r\n".repeat(100), 0).is_err(), "too deep");
    }

    #[test]
    fn retrieval_texts() {
        assert_eq!(&retrieval(false, None, &[b"a", b"b"])[..], b"get a b\r\n");
        assert_eq!(&retrieval(true, Some(-1), &[b"a"])[..], b"gats -1 a\r\n");
    }

    #[test]
    fn addresses_must_be_ip_and_port() {
        for bad in ["nohost", "localhost:1", "1.2.3.4:x", "1.2.3.4:70000"] {
            assert!(
                Link::connect(bad, None, Duration::from_secs(1)).is_err(),
                "{bad}"
            );
        }
    }
}
