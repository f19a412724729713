//! One node's view of the cluster and the rules that change it: pure data, no I/O, so
//! every rule is tested without a socket.
//!
//! Merging a peer's view follows Redis Cluster's rules, reduced to what a view carries:
//! - the sender is authoritative about itself (address, config epoch, the slots it
//!   claims); a claimed slot moves to it when its recorded owner has a lower config epoch
//!   (or none), and slots it stops claiming are unassigned once its config epoch is at
//!   least the one recorded;
//! - `currentEpoch` is the highest seen;
//! - two primaries with the same config epoch: the one with the smaller node id takes a
//!   new epoch (Redis's `clusterHandleConfigEpochCollision`);
//! - other nodes the sender knows become known here (MEET spreads transitively); their
//!   slots are learnt from themselves, as Redis learns them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use baton_ring::{ClusterView, NodeId, SlotTable, SLOTS, UNASSIGNED};

use super::wire::{self, NodeLine, ViewText};

/// How long a forgotten node stays ignored (Redis's blacklist TTL).
pub const FORGET_TTL_MS: u64 = 60_000;

/// A node this one knows.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub config_epoch: u64,
    /// The primary this node replicates (CLUSTER REPLICATE); `None` for a primary.
    pub primary: Option<String>,
    /// The small number the slot table stores for this node (never [`UNASSIGNED`]).
    pub handle: NodeId,
    /// When this node last answered a view (unix ms; 0 = never).
    pub pong_ms: u64,
    /// When a view was sent that is still unanswered (unix ms; 0 = none).
    pub ping_ms: u64,
    /// Its replication offset and whether it is a replica in its first full sync, as
    /// its last view said (not saved; CLUSTER SHARDS).
    pub repl_offset: u64,
    pub loading: bool,
}

/// One node as the config file saves it: id, ip, port, bus port, config epoch, handle,
/// and the primary it replicates.
type SavedNode = (String, String, u16, u16, u64, NodeId, Option<String>);

/// [`State::saved_facts`].
#[derive(Debug, PartialEq, Eq)]
pub struct SavedFacts {
    nodes: Vec<SavedNode>,
    owners: Vec<NodeId>,
    migrating: BTreeMap<u16, String>,
    importing: BTreeMap<u16, String>,
    epochs: (u64, u64),
    myself: String,
}

impl SavedFacts {
    /// Whether an epoch differs between the two (the cluster's current epoch, the last
    /// vote, or any node's config epoch; a node that came or went counts, since its
    /// epoch came or went with it): such a change is saved durably, with fsync, as Redis
    /// saves it; slot changes and address updates are saved without.
    pub fn epochs_differ(&self, other: &SavedFacts) -> bool {
        self.epochs != other.epochs
            || self.nodes.len() != other.nodes.len()
            || self
                .nodes
                .iter()
                .zip(&other.nodes)
                .any(|(a, b)| a.0 != b.0 || a.4 != b.4)
    }
}

/// The whole view.
#[derive(Debug, Clone)]
pub struct State {
    pub myself: String,
    pub nodes: BTreeMap<String, Node>,
    /// Owner handle of every slot ([`UNASSIGNED`] when none).
    owners: Vec<NodeId>,
    /// Slots this node is moving away, to the named node.
    pub migrating: BTreeMap<u16, String>,
    /// Slots this node is taking in, from the named node.
    pub importing: BTreeMap<u16, String>,
    /// Migrating slots whose keys a CLUSTER MIGRATESLOTS job streams: shown as migrating,
    /// but this node still serves every key of them (no -ASK) until the job hands them
    /// over. Not saved: a restarted node has no job.
    pub streaming: BTreeSet<u16>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    next_handle: NodeId,
    /// FORGET: node id -> until when (unix ms) it is ignored.
    pub forgotten: HashMap<String, u64>,
    pub sent: u64,
    pub received: u64,
    /// The minority guard's memory (its rules: `super::health`).
    pub health: Health,
    /// This node's replication offset and first-sync flag, as its messages carry them
    /// (set by the gossip thread every round).
    pub my_repl: (u64, bool),
}

/// The minority guard's memory (not saved: a restarted node starts ok).
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Whether the cluster is down for this node (the routing view refuses every key).
    pub down: bool,
    /// When (unix ms) this node last found itself in a minority; 0: never.
    pub minority_ms: u64,
}

/// Redis's `cluster-port` default: the client port + 10000.
pub fn bus_port(port: u16) -> u16 {
    port.checked_add(10000).unwrap_or(0)
}

impl State {
    /// A node that knows only itself, owns no slot, at epoch 0.
    pub fn fresh(id: String, ip: String, port: u16) -> State {
        let mut s = State {
            myself: id.clone(),
            nodes: BTreeMap::new(),
            owners: vec![UNASSIGNED; usize::from(SLOTS)],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            streaming: BTreeSet::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            next_handle: 1,
            forgotten: HashMap::new(),
            sent: 0,
            received: 0,
            health: Default::default(),
            my_repl: (0, false),
        };
        s.add(id, ip, port, bus_port(port), 0);
        s
    }

    /// The state a config file describes; `ip`/`port` (the announced ones) replace the
    /// file's address of myself.
    pub fn from_view(view: ViewText, ip: String, port: u16) -> Result<State, String> {
        let me = view
            .myself()
            .ok_or_else(|| "the file names no myself node".to_string())?;
        let mut s = State::fresh(me.id.clone(), ip, port);
        s.current_epoch = view.current_epoch;
        s.last_vote_epoch = view.last_vote_epoch;
        for n in &view.nodes {
            let handle = if n.myself {
                s.me().handle
            } else {
                s.add(n.id.clone(), n.ip.clone(), n.port, n.cport, n.config_epoch)
            };
            if let Some(node) = s.nodes.get_mut(&n.id) {
                node.config_epoch = n.config_epoch;
                node.primary = n.primary.clone();
            }
            for &(a, b) in &n.slots {
                s.owners[usize::from(a)..=usize::from(b)].fill(handle);
            }
            if n.myself {
                s.migrating = n.migrating.iter().map(|(k, v)| (*k, v.clone())).collect();
                s.importing = n.importing.iter().map(|(k, v)| (*k, v.clone())).collect();
            }
        }
        Ok(s)
    }

    fn add(&mut self, id: String, ip: String, port: u16, cport: u16, epoch: u64) -> NodeId {
        if let Some(n) = self.nodes.get(&id) {
            return n.handle;
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        self.nodes.insert(
            id.clone(),
            Node {
                id,
                ip,
                port,
                cport,
                config_epoch: epoch,
                primary: None,
                handle,
                pong_ms: 0,
                ping_ms: 0,
                repl_offset: 0,
                loading: false,
            },
        );
        handle
    }

    pub fn me(&self) -> &Node {
        &self.nodes[&self.myself]
    }

    fn me_mut(&mut self) -> &mut Node {
        self.nodes.get_mut(&self.myself).expect("myself is known")
    }

    /// The node that owns `slot`.
    pub fn owner(&self, slot: u16) -> Option<&Node> {
        let h = self.owners[usize::from(slot)];
        (h != UNASSIGNED)
            .then(|| self.nodes.values().find(|n| n.handle == h))
            .flatten()
    }

    /// The canonical slot ranges of each handle, in slot order.
    fn ranges_by_handle(&self) -> HashMap<NodeId, Vec<(u16, u16)>> {
        // One walk over the runs of equal owners: a map operation per run, not per slot
        // (16384 hashes made every config save and CLUSTER NODES cost about a millisecond).
        let mut out: HashMap<NodeId, Vec<(u16, u16)>> = HashMap::new();
        let mut start = 0;
        while start < self.owners.len() {
            let h = self.owners[start];
            let len = self.owners[start..].iter().take_while(|&&o| o == h).count();
            if h != UNASSIGNED {
                let end = start + len - 1;
                out.entry(h).or_default().push((start as u16, end as u16));
            }
            start += len;
        }
        out
    }

    /// Canonical slot ranges of `node`.
    pub fn ranges_of(&self, node: &Node) -> Vec<(u16, u16)> {
        wire::ranges(
            self.owners
                .iter()
                .enumerate()
                .filter(|(_, &h)| h == node.handle)
                .map(|(s, _)| s as u16),
        )
    }

    /// Whether `node` serves at least one slot.
    pub fn owns_slots(&self, node: &Node) -> bool {
        self.owners.contains(&node.handle)
    }

    pub fn slots_assigned(&self) -> usize {
        self.owners.iter().filter(|&&h| h != UNASSIGNED).count()
    }

    /// Whether the node is presumed down: a view sent to it went unanswered for longer
    /// than `timeout_ms`.
    pub fn pfail(&self, node: &Node, now: u64, timeout_ms: u64) -> bool {
        node.id != self.myself && node.ping_ms != 0 && now.saturating_sub(node.ping_ms) > timeout_ms
    }

    /// `CLUSTER NODES` (`now` = 0 renders the config file / message form: no times).
    pub fn render_nodes(&self, now: u64, timeout_ms: u64) -> String {
        let mut by = self.ranges_by_handle();
        let mut out = String::new();
        for n in self.nodes.values() {
            let ranges = by.remove(&n.handle).unwrap_or_default();
            out.push_str(&self.render_line(n, &ranges, now, timeout_ms));
            out.push('\n');
        }
        out
    }

    /// One node's `CLUSTER NODES` line, without its newline (CLUSTER REPLICAS lists
    /// these). A replica's line shows its primary's config epoch, as Redis's does.
    pub fn render_line(
        &self,
        n: &Node,
        ranges: &[(u16, u16)],
        now: u64,
        timeout_ms: u64,
    ) -> String {
        let myself = n.id == self.myself;
        let pfail = now != 0 && self.pfail(n, now, timeout_ms);
        let role = if n.primary.is_some() {
            "slave"
        } else {
            "master"
        };
        let mut flags = if myself {
            format!("myself,{role}")
        } else {
            role.to_string()
        };
        if pfail {
            flags.push_str(",fail?");
        }
        let (ping, pong) = if now == 0 || myself {
            (0, 0)
        } else {
            (n.ping_ms, n.pong_ms)
        };
        let link = if pfail { "disconnected" } else { "connected" };
        let epoch = n
            .primary
            .as_ref()
            .and_then(|p| self.nodes.get(p))
            .map_or(n.config_epoch, |p| p.config_epoch);
        let master = n.primary.as_deref().unwrap_or("-");
        let mut out = format!(
            "{} {}:{}@{} {flags} {master} {ping} {pong} {epoch} {link}",
            n.id, n.ip, n.port, n.cport
        );
        for &(a, b) in ranges {
            if a == b {
                let _ = write!(out, " {a}");
            } else {
                let _ = write!(out, " {a}-{b}");
            }
        }
        if myself {
            for (s, id) in &self.migrating {
                let _ = write!(out, " [{s}->-{id}]");
            }
            for (s, id) in &self.importing {
                let _ = write!(out, " [{s}-<-{id}]");
            }
        }
        out
    }

    /// What the config file holds, cheap to take and compare (a change saves only when
    /// this differs; ping and pong times are not in it).
    pub fn saved_facts(&self) -> SavedFacts {
        SavedFacts {
            nodes: self
                .nodes
                .values()
                .map(|n| {
                    (
                        n.id.clone(),
                        n.ip.clone(),
                        n.port,
                        n.cport,
                        n.config_epoch,
                        n.handle,
                        n.primary.clone(),
                    )
                })
                .collect(),
            owners: self.owners.clone(),
            migrating: self.migrating.clone(),
            importing: self.importing.clone(),
            epochs: (self.current_epoch, self.last_vote_epoch),
            myself: self.myself.clone(),
        }
    }

    /// The config file's text.
    pub fn render_file(&self) -> String {
        let mut out = self.render_nodes(0, 0);
        let _ = writeln!(
            out,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        );
        out
    }

    /// The propagation message this node sends: the config file's text, whose vars also
    /// carry this node's replication offset and first-sync flag.
    pub fn render_message(&self) -> String {
        let (offset, loading) = self.my_repl;
        format!(
            "{}\n{}vars currentEpoch {} lastVoteEpoch {} replOffset {offset} loading {}\n",
            wire::MAGIC,
            self.render_nodes(0, 0),
            self.current_epoch,
            self.last_vote_epoch,
            u8::from(loading)
        )
    }

    /// The routing view the cores install.
    pub fn cluster_view(&self) -> ClusterView {
        let handle = |id: &String| self.nodes.get(id).map_or(UNASSIGNED, |n| n.handle);
        let mut table = SlotTable::default();
        for (s, &h) in self.owners.iter().enumerate() {
            if h != UNASSIGNED {
                table.assign(s as u16..=s as u16, h);
            }
        }
        ClusterView {
            me: self.me().handle,
            replica_of: self.me().primary.as_ref().map_or(UNASSIGNED, handle),
            down: self.health.down,
            table,
            migrating: self
                .migrating
                .iter()
                .filter(|(s, _)| !self.streaming.contains(s))
                .map(|(s, id)| (*s, handle(id)))
                .collect(),
            importing: self
                .importing
                .iter()
                .map(|(s, id)| (*s, handle(id)))
                .collect(),
            addrs: self
                .nodes
                .values()
                .map(|n| (n.handle, format!("{}:{}", n.ip, n.port)))
                .collect(),
        }
    }

    /// ADDSLOTS / DELSLOTS of already validated slots.
    pub fn set_slots(&mut self, slots: &[u16], add: bool) {
        let h = if add { self.me().handle } else { UNASSIGNED };
        for &s in slots {
            self.owners[usize::from(s)] = h;
            if !add {
                self.importing.remove(&s);
                self.migrating.remove(&s);
            }
        }
    }

    /// SETSLOT NODE: gives `slot` to `id` (a known node).
    pub fn assign(&mut self, slot: u16, id: &str) {
        if let Some(h) = self.nodes.get(id).map(|n| n.handle) {
            self.owners[usize::from(slot)] = h;
        }
    }

    /// CLUSTER BUMPEPOCH: a new config epoch for myself unless it is already the highest
    /// and unique. Returns whether it bumped.
    pub fn bump_epoch(&mut self) -> bool {
        let mine = self.me().config_epoch;
        let unique_max = mine != 0
            && self
                .nodes
                .values()
                .all(|n| n.id == self.myself || n.config_epoch < mine);
        if unique_max && mine >= self.current_epoch {
            return false;
        }
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        true
    }

    /// FORGET `id` (known and not myself: checked by the caller).
    pub fn forget(&mut self, id: &str, now: u64) {
        if let Some(n) = self.nodes.remove(id) {
            for h in self.owners.iter_mut().filter(|h| **h == n.handle) {
                *h = UNASSIGNED;
            }
        }
        self.migrating.retain(|_, v| v != id);
        self.importing.retain(|_, v| v != id);
        self.forgotten.insert(id.to_string(), now + FORGET_TTL_MS);
    }

    /// Drops a node without remembering it (its address now answers with another id).
    pub fn drop_node(&mut self, id: &str) {
        if id == self.myself {
            return;
        }
        if let Some(n) = self.nodes.remove(id) {
            for h in self.owners.iter_mut().filter(|h| **h == n.handle) {
                *h = UNASSIGNED;
            }
        }
    }

    /// CLUSTER RESET: forget every other node and every slot; HARD also takes a new id
    /// and zeroes the epochs.
    pub fn reset(&mut self, hard: bool, new_id: String) {
        let me = self.me().clone();
        let mut fresh = State::fresh(
            if hard { new_id } else { me.id.clone() },
            me.ip.clone(),
            me.port,
        );
        if !hard {
            fresh.current_epoch = self.current_epoch;
            fresh.last_vote_epoch = self.last_vote_epoch;
            fresh.me_mut().config_epoch = me.config_epoch;
        }
        *self = fresh;
    }

    /// SET-CONFIG-EPOCH (checked by the caller).
    pub fn set_config_epoch(&mut self, epoch: u64) {
        self.me_mut().config_epoch = epoch;
        self.current_epoch = self.current_epoch.max(epoch);
    }

    /// Sets myself's ip when it is not known yet (learnt from a connection's local
    /// address). Returns whether it changed.
    pub fn learn_my_ip(&mut self, ip: &str) -> bool {
        if !self.me().ip.is_empty() || ip.is_empty() {
            return false;
        }
        self.me_mut().ip = ip.to_string();
        true
    }

    /// Merges a peer's view (parsed with [`wire::parse_message`], so it names exactly one
    /// myself). `addr`: the address this node reached the peer at, used when the peer
    /// does not know its own. Returns whether anything persistent changed; `Err` when the
    /// view is not one to merge (it comes from this node itself).
    pub fn merge(
        &mut self,
        view: &ViewText,
        addr: Option<(&str, u16)>,
        now: u64,
    ) -> Result<bool, String> {
        self.forgotten.retain(|_, until| *until > now);
        let sender = view.myself().ok_or("the view names no sender")?;
        if sender.id == self.myself {
            return Err("the view is this node's own".into());
        }
        if self.forgotten.contains_key(&sender.id) {
            return Ok(false);
        }
        self.received += 1;
        let before = self.render_file();
        // Whom this node follows when a replica takes its primary's slots: the primary
        // it replicates, or itself when it is a primary (Redis's
        // clusterUpdateSlotsConfigWith).
        let anchor = self
            .me()
            .primary
            .clone()
            .unwrap_or_else(|| self.myself.clone());
        let sender_was_replica_of = self.nodes.get(&sender.id).and_then(|n| n.primary.clone());
        let ip = match (sender.ip.is_empty(), addr) {
            (true, Some((ip, _))) => ip.to_string(),
            _ => sender.ip.clone(),
        };
        let handle = self.add(
            sender.id.clone(),
            ip.clone(),
            sender.port,
            sender.cport,
            sender.config_epoch,
        );
        let recorded = {
            let n = self.nodes.get_mut(&sender.id).expect("just added");
            let recorded = n.config_epoch;
            if !ip.is_empty() {
                n.ip = ip;
            }
            n.port = sender.port;
            n.cport = sender.cport;
            n.config_epoch = sender.config_epoch;
            n.primary = sender.primary.clone();
            n.pong_ms = now;
            n.ping_ms = 0;
            n.repl_offset = view.repl_offset;
            n.loading = view.loading;
            recorded
        };
        self.current_epoch = self.current_epoch.max(view.current_epoch);
        self.merge_slots(sender, handle, recorded);
        // A failover: a replica of the anchor took every slot of it, so follow that
        // replica; or my primary says it follows another node now, so follow that one.
        let owns = |st: &State, id: &str| {
            st.nodes
                .get(id)
                .is_some_and(|n| st.owners.contains(&n.handle))
        };
        if sender.primary.is_none()
            && sender_was_replica_of.as_deref() == Some(anchor.as_str())
            && !owns(self, &anchor)
            && owns(self, &sender.id)
        {
            self.set_primary(&sender.id);
        } else if let Some(next) = &sender.primary {
            if sender.id == anchor && anchor != self.myself && *next != self.myself {
                self.set_primary(next);
            }
        }
        // Epoch collision between two primaries: the smaller id moves on.
        let mine = self.me().config_epoch;
        if sender.config_epoch == mine
            && sender.id > self.myself
            && sender.primary.is_none()
            && self.me().primary.is_none()
        {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
        }
        for n in view.nodes.iter().filter(|n| !n.myself) {
            self.learn(n);
        }
        Ok(self.render_file() != before)
    }

    fn merge_slots(&mut self, sender: &NodeLine, handle: NodeId, recorded: u64) {
        if let Some(primary) = &sender.primary {
            // A replica serves no slot: what it was recorded with (it was a primary that
            // failed over) goes to its primary, whose own view will claim it anyway.
            if primary != &self.myself {
                let to = self.nodes.get(primary).map_or(UNASSIGNED, |n| n.handle);
                for h in self.owners.iter_mut().filter(|h| **h == handle) {
                    *h = to;
                }
            }
            return;
        }
        let epoch_of: HashMap<NodeId, u64> = self
            .nodes
            .values()
            .map(|n| (n.handle, n.config_epoch))
            .collect();
        let mut claimed = vec![false; usize::from(SLOTS)];
        for &(a, b) in &sender.slots {
            for s in a..=b {
                claimed[usize::from(s)] = true;
                if self.importing.contains_key(&s) {
                    continue;
                }
                let owner = self.owners[usize::from(s)];
                if owner == handle {
                    continue;
                }
                let owner_epoch = epoch_of.get(&owner).copied();
                if owner == UNASSIGNED || owner_epoch.is_none_or(|e| e < sender.config_epoch) {
                    self.owners[usize::from(s)] = handle;
                    if owner == self.me().handle {
                        self.migrating.remove(&s);
                    }
                }
            }
        }
        // A sender drops slots it no longer claims only with a newer config epoch than
        // the one recorded: a view it sent before a SETSLOT NODE gave it a slot (same
        // epoch, slot not claimed yet) must not unassign the slot here.
        if sender.config_epoch > recorded {
            for (s, h) in self.owners.iter_mut().enumerate() {
                if *h == handle && !claimed[s] {
                    *h = UNASSIGNED;
                }
            }
        }
    }

    /// A third node named in a peer's view: known from now on (not its slots).
    fn learn(&mut self, n: &NodeLine) {
        if n.id == self.myself
            || self.nodes.contains_key(&n.id)
            || self.forgotten.contains_key(&n.id)
            || n.ip.is_empty()
            || n.port == 0
        {
            return;
        }
        self.add(n.id.clone(), n.ip.clone(), n.port, n.cport, 0);
    }

    /// CLUSTER REPLICATE (checked by the caller), or following a replica that took this
    /// node's slots: myself replicates `id` from now on and moves no slot.
    pub fn set_primary(&mut self, id: &str) {
        self.me_mut().primary = Some(id.to_string());
        self.migrating.clear();
        self.importing.clear();
    }

    /// The end of a failover on this replica: it takes every slot of its primary under a
    /// new config epoch (the highest, so every node's merge gives it the slots) and is a
    /// primary from now on. Returns whether it was a replica.
    pub fn take_over(&mut self) -> bool {
        let Some(old) = self.me_mut().primary.take() else {
            return false;
        };
        let me = self.me().handle;
        if let Some(h) = self.nodes.get(&old).map(|n| n.handle) {
            for o in self.owners.iter_mut().filter(|o| **o == h) {
                *o = me;
            }
        }
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        true
    }

    /// The replicas of `id` that this node knows, in id order.
    pub fn replicas_of(&self, id: &str) -> Vec<&Node> {
        self.nodes
            .values()
            .filter(|n| n.primary.as_deref() == Some(id))
            .collect()
    }

    /// Records that a view is being sent to `id` now (for the failure flag).
    pub fn pinged(&mut self, id: &str, now: u64) {
        self.sent += 1;
        if let Some(n) = self.nodes.get_mut(id) {
            if n.ping_ms == 0 {
                n.ping_ms = now;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cluster::wire::parse_message;

    /// A node id of 40 times `c`.
    pub(crate) fn id(c: char) -> String {
        std::iter::repeat_n(c, 40).collect()
    }

    /// A fresh node `c` on loopback at `port`.
    pub(crate) fn node(c: char, port: u16) -> State {
        State::fresh(id(c), "127.0.0.1".into(), port)
    }

    /// One round of gossip between `a` and `b`: each merges the other's message.
    pub(crate) fn exchange(a: &mut State, b: &mut State, now: u64) {
        let msg = parse_message(a.render_message().as_bytes()).unwrap();
        b.merge(&msg, None, now).unwrap();
        let back = parse_message(b.render_message().as_bytes()).unwrap();
        a.merge(&back, None, now).unwrap();
    }

    #[test]
    fn three_nodes_converge_after_meet() {
        let (mut a, mut b, mut c) = (node('a', 1), node('b', 2), node('c', 3));
        let all: Vec<u16> = (0..SLOTS).collect();
        a.set_slots(&all[..5000], true);
        b.set_slots(&all[5000..10000], true);
        c.set_slots(&all[10000..], true);
        a.set_config_epoch(1);
        b.set_config_epoch(2);
        c.set_config_epoch(3);
        // b and c meet a; then everyone talks to everyone they know.
        exchange(&mut b, &mut a, 1);
        exchange(&mut c, &mut a, 1);
        for _ in 0..2 {
            exchange(&mut a, &mut b, 2);
            exchange(&mut a, &mut c, 2);
            exchange(&mut b, &mut c, 2);
        }
        let strip = |s: &State| s.render_nodes(0, 0).replace("myself,", "");
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(strip(&b), strip(&c));
        assert_eq!(a.slots_assigned(), usize::from(SLOTS));
        assert_eq!(a.current_epoch, 3);
        let round = State::from_view(
            crate::cluster::wire::parse_view(a.render_file().as_bytes()).unwrap(),
            "127.0.0.1".into(),
            1,
        )
        .unwrap();
        assert_eq!(round.render_file(), a.render_file());
    }

    #[test]
    fn higher_config_epoch_wins_a_slot_and_collisions_resolve() {
        let (mut a, mut b) = (node('a', 1), node('b', 2));
        a.set_slots(&[7], true);
        a.set_config_epoch(1);
        exchange(&mut a, &mut b, 1);
        assert_eq!(b.owner(7).unwrap().id, id('a'));
        // b takes slot 7 with a higher epoch: a loses it.
        b.set_slots(&[7], true);
        b.set_config_epoch(5);
        exchange(&mut b, &mut a, 2);
        assert_eq!(a.owner(7).unwrap().id, id('b'));
        // Same epochs: the smaller id ('a') moves on.
        let (mut x, mut y) = (node('a', 1), node('b', 2));
        exchange(&mut x, &mut y, 1);
        assert_ne!(x.me().config_epoch, y.me().config_epoch);
        assert_eq!(x.me().config_epoch, 1);
    }

    /// A random node line: id digit, port, bus port, config epoch, slot ranges.
    type RandomLine = (u8, u16, u16, u64, Vec<(u16, u16)>);

    quickcheck::quickcheck! {
        /// Bounded no-panic property of merging whatever parses (the fuzz target
        /// `cluster_view` explores further): the state renders back to a view that parses.
        fn merging_never_panics(lines: Vec<RandomLine>) -> bool {
            let mut text = format!("{}\n", wire::MAGIC);
            for (i, (c, port, cport, epoch, slots)) in lines.iter().take(8).enumerate() {
                let flags = if i == 0 { "myself,master" } else { "master" };
                let hex = format!("{:x}", c % 16).repeat(40);
                text.push_str(&format!("{hex} 127.0.0.1:{port}@{cport} {flags} - 0 0 {epoch} connected"));
                for (a, b) in slots.iter().take(4) {
                    text.push_str(&format!(" {}-{}", a % SLOTS, b % SLOTS));
                }
                text.push('\n');
            }
            let Ok(view) = parse_message(text.as_bytes()) else {
                return true;
            };
            let mut st = node('f', 1);
            let _ = st.merge(&view, None, 1);
            parse_message(st.render_message().as_bytes()).is_ok()
        }
    }

    #[test]
    fn own_view_and_forgotten_nodes_are_not_merged() {
        let (mut a, mut b) = (node('a', 1), node('b', 2));
        let own = parse_message(a.render_message().as_bytes()).unwrap();
        assert!(a.merge(&own, None, 1).is_err());
        exchange(&mut a, &mut b, 1);
        a.forget(&id('b'), 1);
        let msg = parse_message(b.render_message().as_bytes()).unwrap();
        assert_eq!(a.merge(&msg, None, 2), Ok(false));
        assert_eq!(a.nodes.len(), 1);
        assert!(a.merge(&msg, None, 2 + FORGET_TTL_MS).unwrap());
        assert_eq!(a.nodes.len(), 2);
    }
}
