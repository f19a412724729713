//! CLIENT KILL, as Redis 7.2 parses and applies it:
//!
//! * old form `CLIENT KILL ip:port`: kills that client (the caller too), replies `+OK`
//!   or `-ERR No such client`;
//! * new form `CLIENT KILL <filter> <value> ...` with filters ID, ADDR, LADDR, TYPE, USER
//!   and SKIPME (default yes), all of which must match; replies with the number killed.
//!
//! Other clients are marked killed on their own core and closed by its loop at once, with
//! unsent output dropped; the caller, when it kills itself, closes after this reply.

use baton_engine::reply::{errors, Reply};
use bytes::Bytes;

use crate::client::{Client, ClientEntry, Clients};
use crate::netcore::NetCore;

/// Which clients a CLIENT KILL names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KillFilter {
    pub id: Option<u64>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    /// TYPE normal, pubsub, or one that names no client Baton has (master, replica).
    pub kind: Option<ClientKind>,
    /// Spare the caller.
    pub skipme: bool,
    /// The old form, `CLIENT KILL ip:port`.
    pub old_form: bool,
}

/// A client type as CLIENT KILL and CLIENT LIST TYPE name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Normal,
    /// Subscribed to at least one channel or pattern.
    Pubsub,
    /// A replica's flows on a primary (replica, slave): not in the client table.
    Replica,
    /// A replica's link to its primary (master): not in the client table.
    Master,
}

impl ClientKind {
    /// The type `name` names, or Redis's error reply.
    pub fn parse(name: &[u8]) -> Result<ClientKind, Reply> {
        if eq(name, "normal") {
            Ok(ClientKind::Normal)
        } else if eq(name, "pubsub") {
            Ok(ClientKind::Pubsub)
        } else if eq(name, "master") {
            Ok(ClientKind::Master)
        } else if eq(name, "replica") || eq(name, "slave") {
            Ok(ClientKind::Replica)
        } else {
            Err(Reply::error(format!(
                "ERR Unknown client type '{}'",
                text(name)
            )))
        }
    }

    /// Whether `c` is of this type.
    pub fn matches(self, c: &ClientEntry) -> bool {
        let subscribed = c.borrow().subscriptions() > 0;
        let replica = c.conn.replica.get();
        match self {
            ClientKind::Normal => !subscribed && !replica,
            ClientKind::Pubsub => subscribed && !replica,
            ClientKind::Replica => replica,
            ClientKind::Master => false,
        }
    }
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl KillFilter {
    /// Parses `CLIENT KILL ...` (`args[0]` is CLIENT, `args[1]` KILL; at least three
    /// arguments, which the caller checked), or returns Redis's error reply. Options are
    /// read left to right and the first bad one answers, as in Redis.
    pub fn parse(args: &[Bytes]) -> Result<KillFilter, Reply> {
        if args.len() == 3 {
            return Ok(KillFilter {
                addr: Some(text(&args[2])),
                skipme: false,
                old_form: true,
                ..KillFilter::default()
            });
        }
        let mut f = KillFilter {
            skipme: true,
            ..KillFilter::default()
        };
        let mut i = 2;
        while i < args.len() {
            let (opt, Some(value)) = (&args[i], args.get(i + 1)) else {
                return Err(errors::SYNTAX);
            };
            if eq(opt, "id") {
                match baton_engine::commands::parse_i64(value) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Err(Reply::err("ERR client-id should be greater than 0")),
                }
            } else if eq(opt, "type") {
                f.kind = Some(ClientKind::parse(value)?);
            } else if eq(opt, "addr") {
                f.addr = Some(text(value));
            } else if eq(opt, "laddr") {
                f.laddr = Some(text(value));
            } else if eq(opt, "user") {
                // Without ACLs every client is the user "default" (names are case-sensitive).
                if &value[..] != b"default" {
                    return Err(Reply::error(format!("ERR No such user '{}'", text(value))));
                }
            } else if eq(opt, "skipme") {
                f.skipme = if eq(value, "yes") {
                    true
                } else if eq(value, "no") {
                    false
                } else {
                    return Err(errors::SYNTAX);
                };
            } else {
                return Err(errors::SYNTAX);
            }
            i += 2;
        }
        Ok(f)
    }

    /// Whether `c` is named by every filter (SKIPME aside).
    pub fn matches(&self, c: &ClientEntry) -> bool {
        let addr_is = |want: &Option<String>, have: &Option<std::net::SocketAddr>| {
            want.as_ref()
                .is_none_or(|w| have.is_some_and(|h| h.to_string() == *w))
        };
        self.kind.is_none_or(|k| k.matches(c))
            && self.id.is_none_or(|id| id == c.borrow().id)
            && addr_is(&self.addr, &c.conn.peer)
            && addr_is(&self.laddr, &c.conn.local)
    }
}

/// Runs CLIENT KILL for `client` over every core.
pub async fn client_kill(nc: &NetCore, client: &Client, args: &[Bytes]) -> Reply {
    let filter = match KillFilter::parse(args) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let caller = client.borrow().id;
    let old_form = filter.old_form;
    // A replica's flows are not clients of the table: the replication state closes them
    // (only TYPE names them; an address or id never does). Its control connection is a
    // client of type replica; a replica counts once.
    let repl = &nc.shared.repl;
    let links = match filter.kind {
        Some(ClientKind::Replica) if filter.id.is_none() && filter.addr.is_none() => {
            repl.kill_feeds() as i64
        }
        Some(ClientKind::Master) if filter.id.is_none() && filter.addr.is_none() => {
            repl.kill_link() as i64
        }
        _ => 0,
    };
    let clients: i64 = nc
        .on_every_core(move |nc, _now| kill(&nc.clients, &filter, caller))
        .await
        .into_iter()
        .sum::<i64>();
    let killed = clients.max(links);
    match (old_form, killed) {
        (true, 0) => Reply::err("ERR No such client"),
        (true, _) => Reply::Ok,
        (false, n) => Reply::Int(n),
    }
}

/// Marks the clients of one core that `filter` names (the caller `caller` only closes
/// after its reply), asks that core's loop to close the others, and says how many.
fn kill(clients: &Clients, filter: &KillFilter, caller: u64) -> i64 {
    let (mut n, mut others) = (0i64, false);
    clients.each(|c| {
        // A client killed a moment ago is as good as gone.
        if c.conn.killed.get() || !filter.matches(c) {
            return;
        }
        if c.borrow().id == caller {
            if filter.skipme {
                return;
            }
            c.borrow_mut().close_after_reply = true;
        } else {
            c.conn.killed.set(true);
            others = true;
        }
        n += 1;
    });
    if others {
        clients.request_kill();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ConnInfo;
    use crate::session::{Protocol, Session};

    fn args(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|w| Bytes::from(w.to_string()))
            .collect()
    }

    fn err(line: &str) -> String {
        match KillFilter::parse(&args(line)) {
            Err(Reply::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("{line}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn old_form_kills_the_caller_too() {
        let f = KillFilter::parse(&args("CLIENT KILL 127.0.0.1:5000")).unwrap();
        assert!(f.old_form && !f.skipme);
        assert_eq!(f.addr.as_deref(), Some("127.0.0.1:5000"));
    }

    #[test]
    fn new_form_filters() {
        let f = KillFilter::parse(&args(
            "client kill id 7 ADDR 1.2.3.4:5 laddr 1.2.3.4:6 type NORMAL user default skipme NO",
        ))
        .unwrap();
        assert_eq!(
            f,
            KillFilter {
                id: Some(7),
                addr: Some("1.2.3.4:5".into()),
                laddr: Some("1.2.3.4:6".into()),
                kind: Some(ClientKind::Normal),
                skipme: false,
                old_form: false,
            }
        );
        assert!(
            KillFilter::parse(&args("CLIENT KILL SKIPME yes"))
                .unwrap()
                .skipme
        );
        assert_eq!(
            KillFilter::parse(&args("CLIENT KILL TYPE replica"))
                .unwrap()
                .kind,
            Some(ClientKind::Replica)
        );
    }

    #[test]
    fn errors_match_redis() {
        for id in ["0", "-1", "abc", "+5", "99999999999999999999", "1.5"] {
            assert_eq!(
                err(&format!("CLIENT KILL ID {id}")),
                "ERR client-id should be greater than 0",
                "ID {id}"
            );
        }
        assert_eq!(err("CLIENT KILL TYPE foo"), "ERR Unknown client type 'foo'");
        assert_eq!(
            err("CLIENT KILL USER Default"),
            "ERR No such user 'Default'"
        );
        assert_eq!(err("CLIENT KILL SKIPME maybe"), "ERR syntax error");
        assert_eq!(err("CLIENT KILL FOO bar"), "ERR syntax error");
        assert_eq!(err("CLIENT KILL MAXAGE 5"), "ERR syntax error");
        assert_eq!(err("CLIENT KILL ID 5 ADDR"), "ERR syntax error");
        // Left to right: the bad ID answers before the missing value is noticed.
        assert_eq!(
            err("CLIENT KILL ID 0 ADDR"),
            "ERR client-id should be greater than 0"
        );
    }

    #[test]
    fn matching() {
        let client = |peer: Option<&str>| {
            let info = ConnInfo::new(
                9,
                peer.map(|p| p.parse().unwrap()),
                Some("127.0.0.1:6379".parse().unwrap()),
                0,
            );
            ClientEntry::new(Session::new(Protocol::Redis, true), info)
        };
        let c = client(Some("127.0.0.1:5000"));
        let id = c.borrow().id;
        let f = |line: &str| KillFilter::parse(&args(line)).unwrap();
        assert!(f("CLIENT KILL 127.0.0.1:5000").matches(&c));
        assert!(!f("CLIENT KILL 127.0.0.1:5001").matches(&c));
        assert!(f(&format!("CLIENT KILL ID {id} LADDR 127.0.0.1:6379")).matches(&c));
        assert!(!f(&format!("CLIENT KILL ID {}", id + 1)).matches(&c));
        assert!(f("CLIENT KILL TYPE normal").matches(&c));
        assert!(!f("CLIENT KILL TYPE pubsub").matches(&c));
        c.borrow_mut().channels.insert(Bytes::from_static(b"ch"));
        assert!(f("CLIENT KILL TYPE pubsub").matches(&c));
        assert!(!f("CLIENT KILL TYPE normal").matches(&c));
        assert!(!f("CLIENT KILL TYPE master").matches(&c));
        c.borrow_mut().channels.clear();
        assert!(f("CLIENT KILL USER default").matches(&c));
        assert!(!f("CLIENT KILL ADDR 127.0.0.1:5000").matches(&client(None)));
    }

    #[test]
    fn kill_marks_one_cores_clients_and_asks_its_loop_to_close_them() {
        // A registry of its own, as each core has (no doorbell: no loop to wake).
        let clients = Clients::new(None);
        let new = |port: u16| {
            let peer = format!("127.0.0.1:{port}").parse().ok();
            ClientEntry::new(
                Session::new(Protocol::Redis, true),
                ConnInfo::new(9, peer, None, 0),
            )
        };
        let (caller, other, third) = (new(5000), new(5001), new(5002));
        for c in [&caller, &other, &third] {
            clients.register(c);
        }
        let id = |c: &Client| c.borrow().id;
        let f = |line: &str| KillFilter::parse(&args(line)).unwrap();

        assert_eq!(
            kill(&clients, &f("CLIENT KILL TYPE normal"), id(&caller)),
            2
        );
        assert!(other.conn.killed.get() && third.conn.killed.get());
        assert!(!caller.conn.killed.get(), "SKIPME yes spares the caller");
        assert!(
            clients.take_kill_request(),
            "the loop is asked to close them"
        );
        assert!(!clients.take_kill_request(), "once");

        // Killed clients are as good as gone; the caller closes after its reply.
        let me = format!("CLIENT KILL ID {} SKIPME no", id(&caller));
        assert_eq!(kill(&clients, &f(&me), id(&caller)), 1);
        assert!(caller.borrow().close_after_reply && !caller.conn.killed.get());
        assert!(
            !clients.take_kill_request(),
            "only the caller: no loop wake-up"
        );
        assert_eq!(
            kill(&clients, &f("CLIENT KILL 127.0.0.1:5001"), id(&caller)),
            0
        );

        clients.unregister(&other);
        assert_eq!(clients.len(), 2);
    }
}
