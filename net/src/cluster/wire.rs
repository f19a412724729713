//! The text form of a node's cluster view: `CLUSTER NODES` lines plus a `vars` line.
//!
//! One parser serves the config file (`nodes-<port>.conf`, as Redis writes it) and the
//! Baton-to-Baton propagation message (`CLUSTER BATON-VIEW <payload>`, the same text after
//! a [`MAGIC`] line). It is a pure function over bytes with limits on everything it
//! reads, so a malformed or hostile message is an error, never a panic or a large
//! allocation (fuzzed by `fuzz/fuzz_targets/cluster_view.rs`).
//!
//! ```text
//! baton-view 1
//! <id> <ip>:<port>@<cport> myself,master - 0 0 <config-epoch> connected 0-5460 [93->-<id>]
//! <id> <ip>:<port>@<cport> master - 0 0 <config-epoch> connected 5461-10922
//! vars currentEpoch 3 lastVoteEpoch 0
//! ```

use std::fmt;

use baton_ring::SLOTS;

/// First line of a propagation message; anything else is not a Baton node.
pub const MAGIC: &str = "baton-view 1";
/// Largest view accepted (the replies a node reads are limited to 1 MiB too).
pub const MAX_VIEW_BYTES: usize = 1 << 20;
/// Most nodes in one view.
pub const MAX_NODES: usize = 1000;
/// Most slot tokens (ranges, single slots, markers) on one line.
pub const MAX_SLOT_TOKENS: usize = SLOTS as usize;

/// One node as a view names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLine {
    /// 40 lowercase hex characters.
    pub id: String,
    /// Empty while the node does not know its own address.
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    /// The node that wrote the view.
    pub myself: bool,
    /// The primary this node replicates (`slave <id>`); `None` for a primary.
    pub primary: Option<String>,
    pub config_epoch: u64,
    /// Owned slots as inclusive ranges, in the order given.
    pub slots: Vec<(u16, u16)>,
    /// `[slot->-id]`: slots this node is moving to `id` (myself line only).
    pub migrating: Vec<(u16, String)>,
    /// `[slot-<-id]`: slots this node is taking from `id` (myself line only).
    pub importing: Vec<(u16, String)>,
}

/// A parsed view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ViewText {
    pub nodes: Vec<NodeLine>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    /// The sender's replication offset (propagation message only; CLUSTER SHARDS).
    pub repl_offset: u64,
    /// Whether the sender is a replica still in its first full sync (message only).
    pub loading: bool,
}

impl ViewText {
    /// The node that wrote the view.
    pub fn myself(&self) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.myself)
    }
}

/// Why a view was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewError(pub String);

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(line: usize, what: impl fmt::Display) -> Result<T, ViewError> {
    Err(ViewError(format!("line {line}: {what}")))
}

/// Whether `s` is a node id: 40 lowercase hex characters.
pub fn is_node_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn slot_of(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&n| n < SLOTS)
}

/// Parses a propagation message: [`MAGIC`], then a view naming exactly one `myself`.
pub fn parse_message(payload: &[u8]) -> Result<ViewText, ViewError> {
    let rest = payload
        .strip_prefix(MAGIC.as_bytes())
        .and_then(|r| r.strip_prefix(b"\n"))
        .ok_or_else(|| ViewError("not a Baton cluster view".into()))?;
    let view = parse_view(rest)?;
    if view.nodes.iter().filter(|n| n.myself).count() != 1 {
        return Err(ViewError("a view names exactly one myself node".into()));
    }
    Ok(view)
}

/// Parses a view (config file or message body).
pub fn parse_view(text: &[u8]) -> Result<ViewText, ViewError> {
    if text.len() > MAX_VIEW_BYTES {
        return Err(ViewError(format!(
            "a view is at most {MAX_VIEW_BYTES} bytes"
        )));
    }
    let text = std::str::from_utf8(text).map_err(|_| ViewError("a view is UTF-8".into()))?;
    let mut view = ViewText::default();
    let mut owned = vec![false; usize::from(SLOTS)];
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(vars) = line.strip_prefix("vars ") {
            let fields: Vec<&str> = vars.split_whitespace().take(16).collect();
            for pair in fields.chunks(2) {
                let [name, value] = pair else {
                    return bad(n, "vars are name value pairs");
                };
                let Ok(v) = value.parse::<u64>() else {
                    return bad(n, format!("{name} is not a number"));
                };
                match *name {
                    "currentEpoch" => view.current_epoch = v,
                    "lastVoteEpoch" => view.last_vote_epoch = v,
                    "replOffset" => view.repl_offset = v,
                    "loading" => view.loading = v != 0,
                    _ => {}
                }
            }
            continue;
        }
        if view.nodes.len() >= MAX_NODES {
            return bad(n, format!("a view names at most {MAX_NODES} nodes"));
        }
        let node = parse_node(n, line, &mut owned)?;
        if view.nodes.iter().any(|o| o.id == node.id) {
            return bad(n, format!("node {} appears twice", node.id));
        }
        if node.myself && view.nodes.iter().any(|o| o.myself) {
            return bad(n, "two nodes are flagged myself");
        }
        view.nodes.push(node);
    }
    if view
        .nodes
        .iter()
        .any(|n| n.config_epoch > view.current_epoch)
    {
        // Redis keeps currentEpoch >= every config epoch; a view that does not is repaired
        // the same way Redis repairs it when loading.
        view.current_epoch = view.nodes.iter().map(|n| n.config_epoch).max().unwrap_or(0);
    }
    Ok(view)
}

fn parse_node(n: usize, line: &str, owned: &mut [bool]) -> Result<NodeLine, ViewError> {
    let mut fields = line.split(' ').filter(|f| !f.is_empty());
    let mut next = |what: &str| match fields.next() {
        Some(f) => Ok(f),
        None => bad(n, format!("missing {what}")),
    };
    let id = next("node id")?;
    if !is_node_id(id) {
        return bad(n, "a node id is 40 lowercase hex characters");
    }
    let addr = next("address")?;
    let (ip, port, cport) = parse_addr(addr)
        .ok_or_else(|| ViewError(format!("line {n}: an address is ip:port@cport")))?;
    let flags = next("flags")?;
    if flags.len() > 128 {
        return bad(n, "flags too long");
    }
    let myself = flags.split(',').any(|f| f == "myself");
    let master = next("master id")?;
    if master != "-" && !is_node_id(master) {
        return bad(n, "a master id is - or a node id");
    }
    for what in ["ping time", "pong time"] {
        if next(what)?.parse::<u64>().is_err() {
            return bad(n, format!("the {what} is not a number"));
        }
    }
    let Ok(config_epoch) = next("config epoch")?.parse::<u64>() else {
        return bad(n, "the config epoch is not a number");
    };
    match next("link state")? {
        "connected" | "disconnected" => {}
        _ => return bad(n, "the link state is connected or disconnected"),
    }
    let mut node = NodeLine {
        id: id.to_string(),
        ip: ip.to_string(),
        port,
        cport,
        myself,
        primary: (master != "-").then(|| master.to_string()),
        config_epoch,
        slots: Vec::new(),
        migrating: Vec::new(),
        importing: Vec::new(),
    };
    for (i, token) in fields.enumerate() {
        if i >= MAX_SLOT_TOKENS {
            return bad(n, "too many slot ranges");
        }
        if let Some(marker) = token.strip_prefix('[') {
            let Some(marker) = marker.strip_suffix(']') else {
                return bad(n, format!("unclosed slot marker {token}"));
            };
            let (slot, id, migrating) = if let Some((s, id)) = marker.split_once("->-") {
                (s, id, true)
            } else if let Some((s, id)) = marker.split_once("-<-") {
                (s, id, false)
            } else {
                return bad(n, format!("bad slot marker {token}"));
            };
            let (Some(slot), true) = (slot_of(slot), is_node_id(id)) else {
                return bad(n, format!("bad slot marker {token}"));
            };
            let list = if migrating {
                &mut node.migrating
            } else {
                &mut node.importing
            };
            list.push((slot, id.to_string()));
            continue;
        }
        let (first, last) = match token.split_once('-') {
            Some((a, b)) => (slot_of(a), slot_of(b)),
            None => (slot_of(token), slot_of(token)),
        };
        let (Some(first), Some(last)) = (first, last) else {
            return bad(n, format!("bad slot {token}"));
        };
        if first > last {
            return bad(n, format!("bad slot range {token}"));
        }
        for s in first..=last {
            if std::mem::replace(&mut owned[usize::from(s)], true) {
                return bad(n, format!("slot {s} has two owners"));
            }
        }
        node.slots.push((first, last));
    }
    Ok(node)
}

/// `ip:port@cport[,hostname]` -> (ip, port, cport). The ip may be empty (a node that
/// does not know its address yet) or IPv6 (the port follows the last colon).
pub fn parse_addr(addr: &str) -> Option<(&str, u16, u16)> {
    if addr.len() > 300 {
        return None;
    }
    let addr = addr.split(',').next()?;
    let (host, cport) = addr.split_once('@')?;
    let (ip, port) = host.rsplit_once(':')?;
    if ip
        .bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b':' || b == b'-'))
    {
        return None;
    }
    Some((ip, port.parse().ok()?, cport.parse().ok()?))
}

/// Canonical slot ranges of a sorted slot list: `0-5460 5462 5464-5465`.
pub fn ranges(slots: impl IntoIterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for s in slots {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == s => *last = s,
            _ => out.push((s, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    const A: &str = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca";
    const B: &str = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1";

    #[test]
    fn parses_redis_lines() {
        let text = format!(
            "{A} 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 5462 [5461->-{B}] [16000-<-{B}]\n\
             {B} 127.0.0.1:30002@40002,host master - 0 1426238316232 2 connected 5463-10922\n\
             vars currentEpoch 6 lastVoteEpoch 0\n"
        );
        let v = parse_view(text.as_bytes()).unwrap();
        assert_eq!(v.current_epoch, 6);
        assert_eq!(v.nodes.len(), 2);
        let me = v.myself().unwrap();
        assert_eq!(me.id, A);
        assert_eq!(
            (me.ip.as_str(), me.port, me.cport),
            ("127.0.0.1", 30001, 40001)
        );
        assert_eq!(me.slots, [(0, 5460), (5462, 5462)]);
        assert_eq!(me.migrating, [(5461, B.to_string())]);
        assert_eq!(me.importing, [(16000, B.to_string())]);
        assert_eq!(v.nodes[1].slots, [(5463, 10922)]);
        let msg = format!("{MAGIC}\n{text}");
        assert_eq!(parse_message(msg.as_bytes()).unwrap(), v);
    }

    #[test]
    fn refuses_malformed_views() {
        let ok = format!("{A} 1.2.3.4:1@2 myself,master - 0 0 1 connected");
        for bad in [
            "hello".to_string(),
            format!("{A} 1.2.3.4:1 master - 0 0 1 connected"),
            format!("{A} 1.2.3.4:1@2 master - 0 0 x connected"),
            format!("{A} 1.2.3.4:1@2 master - 0 0 1 connected 16384"),
            format!("{A} 1.2.3.4:1@2 master - 0 0 1 connected 9-3"),
            format!("{A} 1.2.3.4:1@2 master - 0 0 1 connected [3->-zz]"),
            format!(
                "{A} 1.2.3.4:1@2 master - 0 0 1 connected 1\n{B} :1@2 master - 0 0 1 connected 1"
            ),
            format!("{ok}\n{ok}"),
            format!("{}X 1.2.3.4:1@2 master - 0 0 1 connected", &A[..39]),
        ] {
            assert!(parse_view(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_message(ok.as_bytes()).is_err(), "no magic line");
        let no_myself = format!("{MAGIC}\n{A} 1.2.3.4:1@2 master - 0 0 1 connected");
        assert!(parse_message(no_myself.as_bytes()).is_err());
        assert!(parse_message(format!("{MAGIC}\n{ok}").as_bytes()).is_ok());
    }

    #[test]
    fn canonical_ranges() {
        assert_eq!(ranges([0, 1, 2, 5, 7, 8]), [(0, 2), (5, 5), (7, 8)]);
        assert_eq!(ranges(std::iter::empty()), []);
    }

    quickcheck! {
        /// Bounded no-panic property (the fuzz target explores further).
        fn never_panics(bytes: Vec<u8>, lines: Vec<String>) -> bool {
            let _ = parse_message(&bytes);
            let _ = parse_view(&bytes);
            let mut text = format!("{MAGIC}\n");
            for l in lines.iter().take(20) {
                text.push_str(&format!("{A} {l}\n"));
            }
            let _ = parse_message(text.as_bytes());
            true
        }
    }

    #[test]
    fn the_message_carries_the_replication_progress_and_the_file_does_not() {
        let mut st = crate::cluster::state::tests::node('a', 7000);
        st.my_repl = (42, true);
        let msg = parse_message(st.render_message().as_bytes()).unwrap();
        assert_eq!((msg.repl_offset, msg.loading), (42, true));
        let file = parse_view(st.render_file().as_bytes()).unwrap();
        assert_eq!((file.repl_offset, file.loading), (0, false));
        let mut b = crate::cluster::state::tests::node('b', 7001);
        b.merge(&msg, None, 1).unwrap();
        let a = &b.nodes[&st.myself];
        assert_eq!((a.repl_offset, a.loading), (42, true));
    }
}
