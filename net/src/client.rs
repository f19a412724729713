//! Per-connection state that commands can see and change (protocol version, auth, name),
//! and the per-core registry of clients used by CLIENT LIST / INFO clients.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Which protocol a connection speaks, decided by the port it arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Redis,
    Memcache,
}

/// What CLIENT and HELLO read and write.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub core: usize,
    pub protocol: Protocol,
    /// RESP version: 2 or 3.
    pub resp: u8,
    pub authenticated: bool,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub db: u32,
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    pub fd: i32,
    /// Unix ms of the connection's creation and of its last interaction (the loop sets it
    /// whenever it reads or writes bytes; CLIENT LIST's idle= and the timeout use it).
    pub created_ms: u64,
    pub last_ms: u64,
    pub last_cmd: &'static str,
    /// Set by QUIT or CLIENT KILL: the connection closes once its replies are written.
    pub close_after_reply: bool,
    pub killed: bool,
    /// memcached parser state (the rest of a rejected data block to skip).
    pub mc_parser: crate::memcache::McParser,
    /// RESP parser state, so a request trickling in is not re-read from its start.
    pub resp_parser: crate::resp::ParseState,
}

pub type Client = Rc<RefCell<ClientState>>;

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

impl ClientState {
    pub fn new(
        core: usize,
        protocol: Protocol,
        fd: i32,
        authenticated: bool,
        now_ms: u64,
    ) -> ClientState {
        ClientState {
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            core,
            protocol,
            resp: 2,
            authenticated,
            name: None,
            lib_name: None,
            lib_ver: None,
            db: 0,
            peer: None,
            local: None,
            fd,
            created_ms: now_ms,
            last_ms: now_ms,
            last_cmd: "NULL",
            close_after_reply: false,
            killed: false,
            mc_parser: crate::memcache::McParser::new(),
            resp_parser: crate::resp::ParseState::default(),
        }
    }

    /// `id=.. addr=.. laddr=.. name=..`: who a client is, for log lines.
    pub fn ident(&self) -> String {
        let addr = |a: &Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        format!(
            "id={} addr={} laddr={} name={}",
            self.id,
            addr(&self.peer),
            addr(&self.local),
            self.name
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        )
    }

    /// One line of CLIENT LIST, in Redis's field order.
    pub fn info_line(&self, now_ms: u64) -> String {
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let addr = |a: &Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            addr(&self.peer),
            addr(&self.local),
            self.fd,
            text(&self.name),
            now_ms.saturating_sub(self.created_ms) / 1000,
            now_ms.saturating_sub(self.last_ms) / 1000,
            self.db,
            self.last_cmd,
            self.resp,
            text(&self.lib_name),
            text(&self.lib_ver),
        )
    }
}

thread_local! {
    /// Every live client of this core, for CLIENT LIST, CLIENT KILL and INFO.
    pub static CLIENTS: RefCell<Vec<Client>> = const { RefCell::new(Vec::new()) };
}

pub fn register(client: &Client) {
    CLIENTS.with(|c| c.borrow_mut().push(client.clone()));
}

pub fn unregister(client: &Client) {
    CLIENTS.with(|c| c.borrow_mut().retain(|x| !Rc::ptr_eq(x, client)));
}

thread_local! {
    static LOOP_EVENTFD: std::cell::Cell<i32> = const { std::cell::Cell::new(-1) };
    static KILL_REQUESTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tells this core's client registry which eventfd wakes the core's connection loop.
pub fn set_loop_eventfd(fd: i32) {
    LOOP_EVENTFD.with(|c| c.set(fd));
}

/// Marks clients of this core as killed and wakes the loop so it closes them.
pub fn request_kill() {
    KILL_REQUESTED.with(|k| k.set(true));
    let fd = LOOP_EVENTFD.with(|c| c.get());
    if fd >= 0 {
        baton_engine::runtime::mesh::ring(fd);
    }
}

/// Whether a kill was requested since the last call.
pub fn take_kill_request() -> bool {
    KILL_REQUESTED.with(|k| k.replace(false))
}
