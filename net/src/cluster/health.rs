//! The minority guard: a primary cut off from the cluster stops serving keys, so that
//! the writes it could still take under its old config epoch (and lose when it rejoins
//! and follows the replica promoted in its place) are bounded by `cluster-node-timeout`.
//!
//! Redis's `clusterUpdateState` rule, on the failure flags Baton's gossip already keeps
//! (a node is `fail?` once a view sent to it went unanswered for longer than the node
//! timeout, [`State::pfail`]):
//!
//! ```text
//!   size      = primaries that serve at least one slot (this node included)
//!   reachable = those of them not flagged fail? (this node always is)
//!   reachable < size/2 + 1  ─► down: CLUSTER INFO cluster_state:fail, every key command
//!                               -CLUSTERDOWN The cluster is down (memcached port:
//!                               SERVER_ERROR CLUSTERDOWN The cluster is down)
//!   a majority again        ─► ok, but only once the rejoin delay (the node timeout,
//!                               clamped to 500..5000 ms) has passed since the minority
//!                               was last seen: time to hear of a failover first
//! ```
//!
//! Only a primary that serves slots is ever down here (Redis applies the rule to replicas
//! too): a node that learns that its slots went to another node is no longer one, so it
//! serves at once again, redirecting its old slots' keys to their new owner. One primary
//! is always its own majority, and a cluster whose primaries all answer is never down.

use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use super::state::Health;
use super::state::State;
use super::{lock, Cluster};

/// Redis's `CLUSTER_MIN_REJOIN_DELAY`, in milliseconds.
pub const MIN_REJOIN_DELAY_MS: u64 = 500;
/// Redis's `CLUSTER_MAX_REJOIN_DELAY`, in milliseconds.
pub const MAX_REJOIN_DELAY_MS: u64 = 5000;

/// How long a primary that was in a minority waits, once it reaches a majority again,
/// before it serves keys.
pub fn rejoin_delay_ms(node_timeout_ms: u64) -> u64 {
    node_timeout_ms.clamp(MIN_REJOIN_DELAY_MS, MAX_REJOIN_DELAY_MS)
}

/// `(size, reachable)`: the primaries serving slots, and how many of them this node
/// reaches (itself included).
pub fn quorum(st: &State, now: u64, timeout_ms: u64) -> (usize, usize) {
    st.nodes
        .values()
        .filter(|n| n.primary.is_none() && st.owns_slots(n))
        .fold((0, 0), |(size, reachable), n| {
            let up = !st.pfail(n, now, timeout_ms);
            (size + 1, reachable + usize::from(up))
        })
}

impl State {
    /// Re-evaluates the guard at `now`; returns whether [`Health::down`] changed.
    pub fn update_health(&mut self, now: u64, timeout_ms: u64) -> bool {
        let me = self.me();
        let down = if me.primary.is_some() || !self.owns_slots(me) {
            // Not a primary serving slots (any more): nothing to guard.
            false
        } else {
            let (size, reachable) = quorum(self, now, timeout_ms);
            if reachable < size / 2 + 1 {
                self.health.minority_ms = now;
                true
            } else {
                self.health.down
                    && now.saturating_sub(self.health.minority_ms) < rejoin_delay_ms(timeout_ms)
            }
        };
        let changed = down != self.health.down;
        self.health.down = down;
        changed
    }
}

impl Cluster {
    /// Re-evaluates the guard now (the gossip thread, every round: a peer turns `fail?`
    /// with time alone); when it changed, the cores get a new routing view.
    pub fn check_health(&self, now: u64) {
        let st = &mut *lock(&self.state);
        if st.update_health(now, self.config.node_timeout_ms) {
            self.publish(st);
        }
    }

    /// Installs `st`'s routing view for the cores (no save: nothing saved changed).
    pub(super) fn publish(&self, st: &State) {
        if st.health.down {
            tracing::warn!(
                "cluster state changed: fail (a minority of the primaries is reachable)"
            );
        } else {
            tracing::info!("cluster state changed: ok");
        }
        *lock(&self.view) = Arc::new(st.cluster_view());
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::tests::{exchange, id, node};

    const TIMEOUT: u64 = 1000;

    /// Three primaries a, b, c with 5461 slots each (c 5462), all known to each other.
    fn three() -> (State, State, State) {
        let (mut a, mut b, mut c) = (node('a', 1), node('b', 2), node('c', 3));
        let all: Vec<u16> = (0..baton_ring::SLOTS).collect();
        a.set_slots(&all[..5461], true);
        b.set_slots(&all[5461..10922], true);
        c.set_slots(&all[10922..], true);
        a.set_config_epoch(1);
        b.set_config_epoch(2);
        c.set_config_epoch(3);
        for _ in 0..2 {
            exchange(&mut a, &mut b, 1);
            exchange(&mut a, &mut c, 1);
            exchange(&mut b, &mut c, 1);
        }
        (a, b, c)
    }

    #[test]
    fn a_primary_cut_off_from_the_majority_goes_down_and_rejoins_after_the_delay() {
        let (mut a, b, _) = three();
        assert!(!a.update_health(10, TIMEOUT));
        assert!(!a.cluster_view().down);
        // Views to b and c go unanswered from t=100.
        a.pinged(&id('b'), 100);
        a.pinged(&id('c'), 100);
        assert!(
            !a.update_health(100 + TIMEOUT, TIMEOUT),
            "not past the timeout yet"
        );
        assert!(a.update_health(101 + TIMEOUT, TIMEOUT));
        assert!(a.health.down && a.cluster_view().down);
        assert!(!a.update_health(4999, TIMEOUT), "still a minority at 4999");
        // b answers at 5000: a majority (a and b of three), served only after the
        // rejoin delay counted from the last minority seen (4999).
        let msg = crate::cluster::wire::parse_message(b.render_message().as_bytes()).unwrap();
        a.merge(&msg, None, 5000).unwrap();
        assert_eq!(quorum(&a, 5000, TIMEOUT), (3, 2));
        assert!(!a.update_health(5000, TIMEOUT));
        assert!(!a.update_health(4999 + rejoin_delay_ms(TIMEOUT) - 1, TIMEOUT));
        assert!(a.health.down, "within the rejoin delay");
        assert!(a.update_health(4999 + rejoin_delay_ms(TIMEOUT), TIMEOUT));
        assert!(!a.health.down && !a.cluster_view().down);
    }

    #[test]
    fn one_unreachable_primary_of_three_and_a_lone_primary_are_never_down() {
        let (mut a, _, _) = three();
        a.pinged(&id('c'), 100);
        assert!(!a.update_health(100 + 10 * TIMEOUT, TIMEOUT));
        assert!(!a.health.down);
        let mut lone = node('z', 9);
        lone.set_slots(&(0..baton_ring::SLOTS).collect::<Vec<_>>(), true);
        assert!(!lone.update_health(1_000_000, TIMEOUT));
        assert!(!lone.health.down);
    }

    #[test]
    fn a_down_primary_that_lost_its_slots_to_its_replica_serves_at_once() {
        let (mut a, mut b, mut c) = three();
        // r replicates a.
        let mut r = node('d', 4);
        exchange(&mut r, &mut a, 1);
        r.set_primary(&id('a'));
        exchange(&mut r, &mut a, 2);
        exchange(&mut r, &mut b, 2);
        exchange(&mut r, &mut c, 2);
        a.pinged(&id('b'), 100);
        a.pinged(&id('c'), 100);
        a.pinged(&id('d'), 100);
        assert!(a.update_health(200 + TIMEOUT, TIMEOUT));
        // r is promoted (FORCE) and a hears of it: a follows r and is no longer down,
        // without any rejoin delay.
        assert!(r.take_over());
        let msg = crate::cluster::wire::parse_message(r.render_message().as_bytes()).unwrap();
        a.merge(&msg, None, 300 + TIMEOUT).unwrap();
        assert_eq!(a.me().primary.as_deref(), Some(id('d').as_str()));
        assert!(a.update_health(300 + TIMEOUT, TIMEOUT));
        assert!(!a.health.down);
    }

    #[test]
    fn the_rejoin_delay_is_the_node_timeout_clamped() {
        assert_eq!(rejoin_delay_ms(100), MIN_REJOIN_DELAY_MS);
        assert_eq!(rejoin_delay_ms(1000), 1000);
        assert_eq!(rejoin_delay_ms(15_000), MAX_REJOIN_DELAY_MS);
    }
}
