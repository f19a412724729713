//! The propagation thread: sends this node's view to every node it knows, every
//! [`PERIOD`] and at once after a change, and merges each peer's answer (its own view).
//!
//! Plain blocking sockets on one thread, as the replication link's, with short timeouts
//! so that a dead peer delays the others by at most [`CONNECT_TIMEOUT`] per round.
//! Connections are kept between rounds and re-made after any error.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use baton_engine::runtime::now_ms;

use super::{wire, Cluster};
use crate::config::Shared;
use crate::repl::link::{read_reply, Resp};
use crate::repl_state::lock;

/// How often every peer gets this node's view.
pub const PERIOD: Duration = Duration::from_millis(100);
/// Connect timeout towards a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Read/write timeout of one exchange.
pub const IO_TIMEOUT: Duration = Duration::from_millis(1000);

/// Starts the thread; it ends when the server stops.
pub fn start(shared: &Arc<Shared>, cluster: Arc<Cluster>) {
    let shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("baton-cluster".into())
        .spawn(move || run(&shared, &cluster));
    if let Err(e) = spawned {
        tracing::error!("cannot start the cluster thread: {e}");
    }
}

fn run(shared: &Shared, cluster: &Cluster) {
    let mut links: HashMap<String, BufReader<TcpStream>> = HashMap::new();
    while !shared.stopping() {
        let (message, peers) = cluster.read(|st| {
            let peers: Vec<(String, String, u16)> = st
                .nodes
                .values()
                .filter(|n| n.id != st.myself && !n.ip.is_empty() && n.port != 0)
                .map(|n| (n.id.clone(), n.ip.clone(), n.port))
                .collect();
            (st.render_message(), peers)
        });
        links.retain(|id, _| peers.iter().any(|p| &p.0 == id));
        for (id, ip, port) in peers {
            let now = now_ms();
            let _ = cluster.change(|st| {
                st.pinged(&id, now);
                Ok(())
            });
            match exchange(shared, &mut links, &id, &ip, port, &message) {
                Ok((reply, local_ip)) => apply(cluster, &id, &ip, port, &reply, &local_ip),
                Err(e) => {
                    tracing::debug!(peer = %id, "cluster view exchange failed: {e}");
                    links.remove(&id);
                }
            }
        }
        cluster.wait(PERIOD);
    }
}

/// Merges a peer's answer. A peer that answers with another id than the one this node
/// knows it by was reset (or the address now belongs to another node): the old entry
/// goes, the answer is merged as a new node's.
fn apply(cluster: &Cluster, id: &str, ip: &str, port: u16, reply: &[u8], local_ip: &str) {
    let view = match wire::parse_message(reply) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("{ip}:{port} answered with a malformed cluster view: {e}");
            return;
        }
    };
    let now = now_ms();
    let res = cluster.change(|st| {
        st.learn_my_ip(local_ip);
        let sender = view.myself().map(|n| n.id.clone()).unwrap_or_default();
        if sender != id {
            st.drop_node(id);
        }
        if sender == st.myself {
            return Ok(());
        }
        st.merge(&view, Some((ip, port)), now)
            .map(|_| ())
            .map_err(|e| baton_engine::reply::Reply::error(format!("ERR {e}")))
    });
    if let Err(e) = res {
        tracing::warn!("cannot merge the view of {ip}:{port}: {e:?}");
    }
}

/// Connects to a peer with short timeouts and authenticates with `masterauth` when it is
/// set (the cluster's nodes share one password, as Redis's replicas do).
pub fn connect(shared: &Shared, ip: &str, port: u16) -> std::io::Result<BufReader<TcpStream>> {
    let addr = (ip, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{ip} resolves to no address")))?;
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut s = BufReader::new(s);
    let auth = lock(&shared.repl.masterauth).clone();
    if let Some(pw) = auth {
        if let Resp::Error(e) = call(&mut s, &["AUTH", &pw])? {
            return Err(std::io::Error::other(format!("AUTH failed: {e}")));
        }
    }
    Ok(s)
}

/// Sends one command and reads its reply (errors are replies here).
pub fn call(s: &mut BufReader<TcpStream>, args: &[&str]) -> std::io::Result<Resp> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    s.get_mut().write_all(&out)?;
    read_reply(s, 0)
}

/// One exchange with a peer: this node's view out, the peer's view back, and the local
/// address of the connection (this node's ip as the peer sees it).
fn exchange(
    shared: &Shared,
    links: &mut HashMap<String, BufReader<TcpStream>>,
    id: &str,
    ip: &str,
    port: u16,
    message: &str,
) -> std::io::Result<(Vec<u8>, String)> {
    if !links.contains_key(id) {
        links.insert(id.to_string(), connect(shared, ip, port)?);
    }
    let link = links.get_mut(id).expect("just inserted");
    let local_ip = link.get_ref().local_addr()?.ip().to_string();
    match call(link, &["CLUSTER", "BATON-VIEW", message])? {
        Resp::Bulk(b) => Ok((b, local_ip)),
        Resp::Error(e) => Err(std::io::Error::other(e)),
        _ => Err(std::io::Error::other("not a Baton cluster view")),
    }
}

/// MEET: one exchange with a node that is not known yet, on a fresh connection. The
/// answer must be a Baton view; anything else is an error and changes nothing.
pub fn meet(shared: &Shared, ip: &str, port: u16, message: &str) -> Result<Vec<u8>, String> {
    let mut s = connect(shared, ip, port).map_err(|e| format!("cannot reach {ip}:{port}: {e}"))?;
    match call(&mut s, &["CLUSTER", "BATON-VIEW", message]) {
        Ok(Resp::Bulk(b)) if wire::parse_message(&b).is_ok() => Ok(b),
        Ok(Resp::Error(e)) => Err(format!("{ip}:{port} is not a Baton cluster node ({e})")),
        Ok(_) => Err(format!(
            "{ip}:{port} is not a Baton cluster node (its answer is not a cluster view)"
        )),
        Err(e) => Err(format!("{ip}:{port} is not a Baton cluster node ({e})")),
    }
}
