//! The one place that decides where a key lives: key → hash slot → node → core.
//!
//! A standalone server (every server until the cluster exists) owns every slot, so the
//! slot step is skipped and a key goes straight to its core: one hash, as before. With a
//! cluster view the router also answers for slots this node does not serve: MOVED when
//! another node owns the slot, ASK while a slot this node owns is migrating and the key
//! is no longer here, CROSSSLOT when one command names keys of several slots.
//!
//! Which core of a node holds a key does not depend on the slot: keys of one slot spread
//! over all cores, so moving a slot between nodes never moves keys between cores.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::core::core_of;
use crate::slot::slot;
use crate::table::{NodeId, SlotTable};

/// Where a key (or the keys of one command) must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A core of this node (possibly the asking one).
    Core(usize),
    /// Another node owns the slot (`-MOVED <slot> <addr>`).
    Moved { slot: u16, node: NodeId },
    /// The slot is migrating and the key has left (`-ASK <slot> <addr>`).
    Ask { slot: u16, node: NodeId },
    /// The keys of one command hash to different slots (cluster mode only).
    CrossSlot,
    /// No node serves the slot (`-CLUSTERDOWN Hash slot not served`).
    Unassigned { slot: u16 },
    /// This node refuses every key while it is cut off from the majority of the
    /// primaries that serve slots (`-CLUSTERDOWN The cluster is down`, Redis's rule).
    Down,
}

/// The owner recorded for a slot no node serves (a [`ClusterView`]'s table holds it).
pub const UNASSIGNED: NodeId = 0;

/// This node's view of the cluster: who owns which slot and which slots are leaving.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub me: NodeId,
    /// Owner of every slot; [`UNASSIGNED`] for a slot nobody serves.
    pub table: SlotTable,
    /// Slots this node owns that are being moved to another node.
    pub migrating: HashMap<u16, NodeId>,
    /// Slots another node owns that are being moved here: served to a client that sent
    /// ASKING just before.
    pub importing: HashMap<u16, NodeId>,
    /// `ip:port` of every node a redirection may name.
    pub addrs: HashMap<NodeId, String>,
    /// The primary this node replicates ([`UNASSIGNED`] on a primary): its slots are
    /// read here by a client that sent READONLY.
    pub replica_of: NodeId,
    /// The cluster is down for this node (it is a primary in a minority partition):
    /// every key is refused ([`Target::Down`]).
    pub down: bool,
}

impl ClusterView {
    /// The `ip:port` clients are sent to for `node` (empty when unknown).
    pub fn addr(&self, node: NodeId) -> &str {
        self.addrs.get(&node).map_or("", String::as_str)
    }
}

/// Routes keys for one core.
///
/// The cluster view sits in a `RefCell` so that the core owning the router can swap in a
/// new view when the cluster changes ([`Router::set_cluster`]) without a lock: the router
/// is never shared between threads, and a route reads the cell without any atomic.
#[derive(Debug, Clone)]
pub struct Router {
    /// The core this router serves.
    core: usize,
    cores: usize,
    cluster: RefCell<Option<Arc<ClusterView>>>,
}

impl Router {
    /// The router of core `core` of a standalone server with `cores` cores.
    pub fn standalone(core: usize, cores: usize) -> Router {
        assert!(core < cores, "core {core} of {cores}");
        Router {
            core,
            cores,
            cluster: RefCell::new(None),
        }
    }

    /// The same router with a cluster view: slots owned elsewhere are redirected.
    pub fn with_cluster(self, view: ClusterView) -> Router {
        self.set_cluster(Some(Arc::new(view)));
        self
    }

    /// Replaces the cluster view (`None`: standalone again). Called by the core that owns
    /// the router, between commands.
    pub fn set_cluster(&self, view: Option<Arc<ClusterView>>) {
        *self.cluster.borrow_mut() = view;
    }

    /// The cluster view in use, if any.
    pub fn view(&self) -> Option<Arc<ClusterView>> {
        self.cluster.borrow().clone()
    }

    /// The core asking.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Whether this node is part of a cluster (only then can a key be refused).
    #[inline]
    pub fn clustered(&self) -> bool {
        self.cluster.borrow().is_some()
    }

    /// In a cluster, for a key whose slot this node is migrating away: the slot and the
    /// `ip:port` of the node it goes to (where a missing key is asked for, `-ASK`).
    pub fn migrating(&self, key: &[u8]) -> Option<(u16, String)> {
        let cluster = self.cluster.borrow();
        let view = cluster.as_deref()?;
        if view.migrating.is_empty() {
            return None;
        }
        let s = slot(key);
        view.migrating
            .get(&s)
            .map(|&node| (s, view.addr(node).to_string()))
    }

    /// In a cluster, for a key whose slot another node owns and this node does not import:
    /// the slot and the owner's `ip:port` (`-MOVED`). Asked again on the core that runs a
    /// command, whose view may be newer than the one it was planned with.
    pub fn moved_away(&self, key: &[u8]) -> Option<(u16, String)> {
        let cluster = self.cluster.borrow();
        let view = cluster.as_deref()?;
        let s = slot(key);
        let owner = view.table.node_of(s);
        (owner != UNASSIGNED && owner != view.me && !view.importing.contains_key(&s))
            .then(|| (s, view.addr(owner).to_string()))
    }

    /// Whether this node is a replica of the owner of `slot`: a read of a client that
    /// sent READONLY is served here (Redis's rule); everything else is MOVED.
    pub fn replica_serves(&self, slot: u16) -> bool {
        let cluster = self.cluster.borrow();
        cluster
            .as_deref()
            .is_some_and(|v| v.replica_of != UNASSIGNED && v.table.node_of(slot) == v.replica_of)
    }

    /// How many cores this node runs.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// The core of this node that holds `key`, whichever node serves its slot.
    #[inline]
    pub fn core_of(&self, key: &[u8]) -> usize {
        core_of(key, self.cores)
    }

    /// Whether `key` lives on the asking core.
    #[inline]
    pub fn is_local(&self, key: &[u8]) -> bool {
        self.cores == 1 || self.core_of(key) == self.core
    }

    /// Where `key` must go. `held` tells whether the key is still on this node; it is
    /// asked only for a slot that is migrating away (the ASK case).
    #[inline]
    pub fn route(&self, key: &[u8], held: impl FnOnce() -> bool) -> Target {
        self.route_asking(key, false, held)
    }

    /// [`Router::route`] for a client that sent ASKING just before: a slot being imported
    /// here is served instead of redirected.
    #[inline]
    pub fn route_asking(&self, key: &[u8], asking: bool, held: impl FnOnce() -> bool) -> Target {
        let cluster = self.cluster.borrow();
        let Some(view) = cluster.as_deref() else {
            return Target::Core(self.core_of(key));
        };
        if view.down {
            return Target::Down;
        }
        let s = slot(key);
        let owner = view.table.node_of(s);
        if asking && view.importing.contains_key(&s) {
            return Target::Core(self.core_of(key));
        }
        if owner == UNASSIGNED {
            return Target::Unassigned { slot: s };
        }
        if owner != view.me {
            return Target::Moved {
                slot: s,
                node: owner,
            };
        }
        match view.migrating.get(&s) {
            Some(&node) if !held() => Target::Ask { slot: s, node },
            _ => Target::Core(self.core_of(key)),
        }
    }

    /// Where a command naming `keys` must go, by its first key, or CROSSSLOT when a
    /// cluster node sees keys of several slots. `None` for a command with no key.
    /// Standalone, keys of any slots may meet in one command (it may still span cores).
    pub fn route_keys<'a>(&self, keys: impl Iterator<Item = &'a [u8]>) -> Option<Target> {
        self.route_keys_asking(keys, false)
    }

    /// [`Router::route_keys`] for a client that may have sent ASKING just before.
    pub fn route_keys_asking<'a>(
        &self,
        mut keys: impl Iterator<Item = &'a [u8]>,
        asking: bool,
    ) -> Option<Target> {
        let first = keys.next()?;
        if self.clustered() {
            let s = slot(first);
            if keys.any(|k| slot(k) != s) {
                return Some(Target::CrossSlot);
            }
        }
        Some(self.route_asking(first, asking, || true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_routes_by_key_hash() {
        let r = Router::standalone(1, 2);
        for key in [&b"a"[..], b"b", b"user:1", b"{tag}x"] {
            assert_eq!(r.route(key, || true), Target::Core(core_of(key, 2)));
            assert_eq!(r.is_local(key), core_of(key, 2) == 1);
        }
        let one = Router::standalone(0, 1);
        assert!(one.is_local(b"anything"));
        assert_eq!(
            r.route_keys([&b"a"[..], b"zzz"].into_iter()),
            Some(Target::Core(core_of(b"a", 2))),
            "standalone has no CROSSSLOT"
        );
        assert_eq!(r.route_keys(std::iter::empty()), None);
    }

    #[test]
    fn cluster_view_redirects() {
        let mut table = SlotTable::single(1);
        table.assign(0..=8191, 2);
        let foo = slot(b"foo"); // 12182: stays on node 1
        let bar = slot(b"bar"); // 5061: moves to node 2
        let mut migrating = HashMap::new();
        migrating.insert(foo, 3);
        let r = Router::standalone(0, 2).with_cluster(ClusterView {
            me: 1,
            table,
            migrating,
            ..Default::default()
        });
        assert_eq!(
            r.route(b"bar", || true),
            Target::Moved { slot: bar, node: 2 }
        );
        assert_eq!(
            r.route(b"foo", || true),
            Target::Core(core_of(b"foo", 2)),
            "a key still here is served during migration"
        );
        assert_eq!(
            r.route(b"foo", || false),
            Target::Ask { slot: foo, node: 3 }
        );
        assert_eq!(r.moved_away(b"bar"), Some((bar, String::new())));
        assert_eq!(r.moved_away(b"foo"), None, "migrating, still owned here");
        assert_eq!(
            r.route_keys([&b"{foo}a"[..], b"{foo}b"].into_iter()),
            Some(Target::Core(core_of(b"{foo}a", 2)))
        );
        assert_eq!(
            r.route_keys([&b"foo"[..], b"bar"].into_iter()),
            Some(Target::CrossSlot)
        );
    }

    #[test]
    fn unassigned_and_importing_slots() {
        let mut table = SlotTable::single(2);
        table.assign(0..=99, UNASSIGNED);
        let key = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| slot(k.as_bytes()) < 100)
            .unwrap();
        let mut importing = HashMap::new();
        importing.insert(slot(b"foo"), 2);
        let r = Router::standalone(0, 1).with_cluster(ClusterView {
            me: 1,
            table,
            importing,
            ..Default::default()
        });
        assert_eq!(
            r.route(key.as_bytes(), || true),
            Target::Unassigned {
                slot: slot(key.as_bytes())
            }
        );
        assert!(matches!(r.route(b"foo", || true), Target::Moved { .. }));
        assert_eq!(r.route_asking(b"foo", true, || true), Target::Core(0));
        r.set_cluster(None);
        assert!(!r.clustered());
        assert_eq!(r.route(key.as_bytes(), || true), Target::Core(0));
    }

    #[test]
    fn a_down_view_refuses_every_key_but_still_sees_cross_slot() {
        let mut table = SlotTable::single(1);
        table.assign(0..=99, 2);
        let r = Router::standalone(0, 1).with_cluster(ClusterView {
            me: 1,
            table,
            down: true,
            ..Default::default()
        });
        assert_eq!(r.route(b"foo", || true), Target::Down);
        assert_eq!(r.route_asking(b"foo", true, || true), Target::Down);
        let low = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| slot(k.as_bytes()) < 100)
            .unwrap();
        assert_eq!(r.route(low.as_bytes(), || true), Target::Down);
        assert_eq!(
            r.route_keys([&b"foo"[..], b"bar"].into_iter()),
            Some(Target::CrossSlot)
        );
    }
}
