//! The propagation thread: sends this node's view to every node it knows, every
//! [`PERIOD`] and at once after a change, and merges each peer's answer (its own view).
//!
//! Plain blocking sockets on one thread, as the replication link's, with short timeouts
//! so that a dead peer delays the others by at most [`CONNECT_TIMEOUT`] per round.
//! Connections are kept between rounds and re-made after any error.

use std::collections::HashMap;
use std::io::BufReader;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use baton_engine::runtime::now_ms;

use super::{wire, Cluster};
use crate::config::Shared;
use crate::repl::link::Resp;

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

fn run(shared: &Arc<Shared>, cluster: &Cluster) {
    let mut links: HashMap<String, BufReader<TcpStream>> = HashMap::new();
    while !shared.stopping() {
        let progress = super::replicas::repl_progress(shared);
        let _ = cluster.change(|st| {
            st.my_repl = progress;
            Ok(())
        });
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
        cluster.check_health(now_ms());
        super::replicas::tick(shared, cluster);
        cluster.wait(PERIOD);
    }
}

/// Merges a peer's answer, if the peer is still known. A peer that answers with another id than the one this node
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
        if !st.nodes.contains_key(id) {
            // Forgotten, or this node was reset, since the round began: Redis merges
            // only what known nodes say (MEET is how a node becomes known), and a reset
            // node that merged its old peers' answers would rejoin the cluster.
            return Ok(());
        }
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
        links.insert(
            id.to_string(),
            crate::repl::link::connect_within(shared, ip, port, CONNECT_TIMEOUT, IO_TIMEOUT)?,
        );
    }
    let link = links.get_mut(id).expect("just inserted");
    let local_ip = link.get_ref().local_addr()?.ip().to_string();
    match crate::repl::link::call_raw(link, &["CLUSTER", "BATON-VIEW", message])? {
        Resp::Bulk(b) => Ok((b, local_ip)),
        Resp::Error(e) => Err(std::io::Error::other(e)),
        _ => Err(std::io::Error::other("not a Baton cluster view")),
    }
}

/// MEET: one exchange with a node that is not known yet, on a fresh connection. The
/// answer must be a Baton view; anything else is an error and changes nothing.
pub fn meet(shared: &Shared, ip: &str, port: u16, message: &str) -> Result<Vec<u8>, String> {
    let mut s = crate::repl::link::connect_within(shared, ip, port, CONNECT_TIMEOUT, IO_TIMEOUT)
        .map_err(|e| format!("cannot reach {ip}:{port}: {e}"))?;
    match crate::repl::link::call_raw(&mut s, &["CLUSTER", "BATON-VIEW", message, "MEET"]) {
        Ok(Resp::Bulk(b)) if wire::parse_message(&b).is_ok() => Ok(b),
        Ok(Resp::Error(e)) => Err(format!("{ip}:{port} is not a Baton cluster node ({e})")),
        Ok(_) => Err(format!(
            "{ip}:{port} is not a Baton cluster node (its answer is not a cluster view)"
        )),
        Err(e) => Err(format!("{ip}:{port} is not a Baton cluster node ({e})")),
    }
}
