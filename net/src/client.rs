//! The per-core registry of clients ([`Clients`]), for CLIENT LIST / INFO / KILL and log
//! lines: each client's [`Session`] joined with what its connection's I/O knows about it
//! ([`ConnInfo`]).

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;

use bytes::Bytes;

use crate::session::Session;

/// What the connection loop knows about a connection that CLIENT LIST, CLIENT KILL and log
/// lines also show. Not part of the session: a connection handed to another process gets
/// these anew from its socket there.
#[derive(Debug)]
pub struct ConnInfo {
    /// The socket's descriptor number, as CLIENT LIST shows it (the loop owns the socket).
    pub fd: RawFd,
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    /// Unix ms of the connection's creation.
    pub created_ms: u64,
    /// Unix ms of the last interaction: the loop sets it whenever it reads or writes bytes
    /// (CLIENT LIST's idle= and the idle timeout use it).
    pub last_ms: Cell<u64>,
    /// Set by CLIENT KILL from any task of the core; the loop closes the connection.
    pub killed: Cell<bool>,
    /// The connection's token in its core's loop (`u32::MAX` until the loop sets it), so
    /// that Pub/Sub messages queued for this client find its connection.
    pub token: Cell<u32>,
    /// A replica's control connection (it sent `REPLCONF listening-port`): CLIENT KILL and
    /// CLIENT LIST count it as type `replica`, not `normal`.
    pub replica: Cell<bool>,
    /// ASKING was the previous command: the next one may touch a slot being imported.
    pub asking: Cell<bool>,
    /// READONLY (cluster): reads may be served by a replica.
    pub readonly: Cell<bool>,
    /// Waiting in a blocking command (BLPOP ...): CLIENT LIST's `b` flag.
    pub blocked: Cell<bool>,
    /// New process of a handoff: the old process's link for the requests on the shards
    /// it cut over ([`crate::handoff::cutover`]). It runs while the handoff holds the
    /// other connections, and writes although this process is still a replica.
    pub handoff_link: Cell<bool>,
}

impl ConnInfo {
    pub fn new(
        fd: RawFd,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        now_ms: u64,
    ) -> ConnInfo {
        ConnInfo {
            fd,
            peer,
            local,
            created_ms: now_ms,
            last_ms: Cell::new(now_ms),
            killed: Cell::new(false),
            token: Cell::new(u32::MAX),
            replica: Cell::new(false),
            asking: Cell::new(false),
            readonly: Cell::new(false),
            blocked: Cell::new(false),
            handoff_link: Cell::new(false),
        }
    }
}

/// One client of this core: its session, which commands borrow and change, and the facts
/// of its connection.
#[derive(Debug)]
pub struct ClientEntry {
    session: RefCell<Session>,
    pub conn: ConnInfo,
}

/// A client as the connection loop, the dispatcher and the registry share it.
pub type Client = Rc<ClientEntry>;

impl ClientEntry {
    pub fn new(session: Session, conn: ConnInfo) -> Client {
        Rc::new(ClientEntry {
            session: RefCell::new(session),
            conn,
        })
    }

    #[inline]
    pub fn borrow(&self) -> Ref<'_, Session> {
        self.session.borrow()
    }

    #[inline]
    pub fn borrow_mut(&self) -> RefMut<'_, Session> {
        self.session.borrow_mut()
    }

    /// `id=.. addr=.. laddr=.. name=..`: who a client is, for log lines.
    pub fn ident(&self) -> String {
        let st = self.borrow();
        format!(
            "id={} addr={} laddr={} name={}",
            st.id,
            addr(&self.conn.peer),
            addr(&self.conn.local),
            text(&st.name)
        )
    }

    /// One line of CLIENT LIST, in Redis's field order.
    pub fn info_line(&self, now_ms: u64) -> String {
        let st = self.borrow();
        let conn = &self.conn;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            st.id,
            addr(&conn.peer),
            addr(&conn.local),
            conn.fd,
            text(&st.name),
            now_ms.saturating_sub(conn.created_ms) / 1000,
            now_ms.saturating_sub(conn.last_ms.get()) / 1000,
            if conn.replica.get() {
                "S"
            } else if st.subscriptions() > 0 {
                "P"
            } else if conn.blocked.get() {
                "b"
            } else {
                "N"
            },
            st.db,
            st.channels.len(),
            st.patterns.len(),
            st.last_cmd,
            st.resp,
            text(&st.lib_name),
            text(&st.lib_ver),
        )
    }
}

fn addr(a: &Option<SocketAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

fn text(b: &Option<Bytes>) -> String {
    b.as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// Every live client of one core, for CLIENT LIST, CLIENT KILL and INFO, and the way CLIENT
/// KILL (run on this core for a caller on any core) gets the core's loop to close the
/// clients it marked.
#[derive(Debug)]
pub struct Clients {
    all: RefCell<Vec<Client>>,
    /// The eventfd that wakes this core's connection loop (`None` without a loop).
    doorbell: Option<RawFd>,
    /// Set by [`Clients::request_kill`], taken by the loop.
    kill_requested: Cell<bool>,
}

impl Clients {
    /// An empty registry whose kill requests ring `doorbell`.
    pub fn new(doorbell: Option<RawFd>) -> Clients {
        Clients {
            all: RefCell::new(Vec::new()),
            doorbell,
            kill_requested: Cell::new(false),
        }
    }

    pub fn register(&self, client: &Client) {
        self.all.borrow_mut().push(client.clone());
    }

    pub fn unregister(&self, client: &Client) {
        self.all.borrow_mut().retain(|x| !Rc::ptr_eq(x, client));
    }

    pub fn len(&self) -> usize {
        self.all.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.borrow().is_empty()
    }

    /// Every client, in the order they registered. The registry stays borrowed while
    /// `f` runs: `f` must not register or unregister.
    pub fn each(&self, mut f: impl FnMut(&Client)) {
        for c in self.all.borrow().iter() {
            f(c);
        }
    }

    /// Asks the loop to close the clients marked killed, and wakes it.
    pub fn request_kill(&self) {
        self.kill_requested.set(true);
        if let Some(fd) = self.doorbell {
            baton_engine::runtime::mesh::ring(fd);
        }
    }

    /// Whether a kill was requested since the last call.
    pub fn take_kill_request(&self) -> bool {
        self.kill_requested.replace(false)
    }
}
