//! The slot table: which node owns each of the 16384 hash slots, and since when.
//!
//! Every change bumps the epoch, so two tables for the same cluster can be compared and
//! the newer one kept (Redis Cluster's config epoch plays the same role).

use std::fmt;
use std::ops::RangeInclusive;

use crate::slot::SLOTS;

/// Identifies a node of the cluster. Node ids are assigned by the cluster layer; the
/// table only stores them.
pub type NodeId = u32;

/// Epoch-versioned map from each hash slot to the node that owns it.
///
/// One owner per slot, stored flat (64 KiB), so a lookup is one indexed load.
///
/// ```
/// use baton_ring::{slot, SlotTable};
/// let mut table = SlotTable::single(1);
/// assert_eq!(table.node_of(slot(b"foo")), 1);
/// assert!(table.assign(8192..=16383, 2));
/// assert_eq!(table.epoch(), 1);
/// let ranges: Vec<_> = table.ranges().collect();
/// assert_eq!(ranges, [(0..=8191, 1), (8192..=16383, 2)]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SlotTable {
    /// Bumped by every change that moves at least one slot.
    epoch: u64,
    /// `owners[slot]`; always exactly `SLOTS` long.
    owners: Box<[NodeId]>,
}

impl SlotTable {
    /// A table in which `node` owns every slot, at epoch 0: a single-node deployment.
    pub fn single(node: NodeId) -> SlotTable {
        SlotTable {
            epoch: 0,
            owners: vec![node; usize::from(SLOTS)].into_boxed_slice(),
        }
    }

    /// The node that owns `slot`.
    ///
    /// # Panics
    ///
    /// If `slot >= SLOTS` (never the case for a value from [`slot`](crate::slot)).
    #[inline]
    pub fn node_of(&self, slot: u16) -> NodeId {
        self.owners[usize::from(slot)]
    }

    /// The table's version: 0 when created, +1 for each [`assign`](Self::assign) that
    /// moved at least one slot.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Gives every slot in `slots` to `node`. Returns whether any slot changed owner;
    /// only then is the epoch bumped, so re-applying the same assignment is a no-op.
    ///
    /// # Panics
    ///
    /// If the range reaches past the last slot (`SLOTS - 1`).
    pub fn assign(&mut self, slots: RangeInclusive<u16>, node: NodeId) -> bool {
        let (first, last) = slots.into_inner();
        assert!(
            last < SLOTS,
            "slot range {first}..={last} ends past the last slot {}",
            SLOTS - 1
        );
        if first > last {
            return false;
        }
        let owners = &mut self.owners[usize::from(first)..=usize::from(last)];
        if owners.iter().all(|&owner| owner == node) {
            return false;
        }
        owners.fill(node);
        self.epoch += 1;
        true
    }

    /// Maximal runs of consecutive slots with the same owner, in slot order, covering
    /// every slot exactly once (the shape of `CLUSTER SLOTS`).
    pub fn ranges(&self) -> impl Iterator<Item = (RangeInclusive<u16>, NodeId)> + '_ {
        let mut start = 0usize;
        std::iter::from_fn(move || {
            let node = *self.owners.get(start)?;
            let run = self.owners[start..]
                .iter()
                .take_while(|&&owner| owner == node)
                .count();
            let range = start as u16..=(start + run - 1) as u16;
            start += run;
            Some((range, node))
        })
    }
}

impl Default for SlotTable {
    /// Every slot owned by node 0, which a cluster view reads as "unassigned".
    fn default() -> SlotTable {
        SlotTable::single(0)
    }
}

impl fmt::Debug for SlotTable {
    /// Prints the epoch and the ranges, not 16384 owners.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotTable")
            .field("epoch", &self.epoch)
            .field("ranges", &self.ranges().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn single_node_owns_every_slot() {
        let table = SlotTable::single(7);
        assert_eq!(table.epoch(), 0);
        assert!((0..SLOTS).all(|slot| table.node_of(slot) == 7));
        assert_eq!(table.ranges().collect::<Vec<_>>(), [(0..=16383, 7)]);
    }

    #[test]
    fn assign_moves_only_the_range_and_bumps_the_epoch() {
        let mut table = SlotTable::single(1);
        assert!(table.assign(100..=199, 2));
        assert_eq!(table.epoch(), 1);
        assert_eq!(table.node_of(99), 1);
        assert_eq!(table.node_of(100), 2);
        assert_eq!(table.node_of(199), 2);
        assert_eq!(table.node_of(200), 1);
        assert_eq!(
            table.ranges().collect::<Vec<_>>(),
            [(0..=99, 1), (100..=199, 2), (200..=16383, 1)]
        );

        // Re-applying, or assigning a slot to its current owner, changes nothing.
        assert!(!table.assign(100..=199, 2));
        assert!(!table.assign(0..=0, 1));
        assert_eq!(table.epoch(), 1);

        // Giving the hole back merges the runs again.
        assert!(table.assign(150..=199, 1));
        assert!(table.assign(100..=149, 1));
        assert_eq!(table.epoch(), 3);
        assert_eq!(table.ranges().collect::<Vec<_>>(), [(0..=16383, 1)]);
    }

    #[test]
    fn empty_range_is_a_no_op() {
        let mut table = SlotTable::single(1);
        #[allow(clippy::reversed_empty_ranges)]
        let changed = table.assign(10..=9, 2);
        assert!(!changed);
        assert_eq!(table, SlotTable::single(1));
    }

    #[test]
    #[should_panic(expected = "ends past the last slot")]
    fn assign_past_the_last_slot_panics() {
        SlotTable::single(1).assign(16000..=16384, 2);
    }

    #[test]
    fn debug_shows_ranges() {
        let mut table = SlotTable::single(1);
        table.assign(0..=9, 4);
        assert_eq!(
            format!("{table:?}"),
            "SlotTable { epoch: 1, ranges: [(0..=9, 4), (10..=16383, 1)] }"
        );
    }

    quickcheck! {
        /// Random assignments against a plain Vec model: same owners, ranges that tile the
        /// slot space with maximal runs, and one epoch step per effective change.
        fn matches_model(ops: Vec<(u16, u16, u8)>) -> bool {
            let mut table = SlotTable::single(0);
            let mut model = vec![0 as NodeId; usize::from(SLOTS)];
            let mut changes = 0;
            for (a, b, node) in ops {
                let (a, b) = (a % SLOTS, b % SLOTS);
                let (first, last) = (a.min(b), a.max(b));
                let node = NodeId::from(node % 4);
                let span = &mut model[usize::from(first)..=usize::from(last)];
                let changed = span.iter().any(|&owner| owner != node);
                span.fill(node);
                changes += u64::from(changed);
                if table.assign(first..=last, node) != changed {
                    return false;
                }
            }
            let owners_match = (0..SLOTS).all(|s| table.node_of(s) == model[usize::from(s)]);
            let ranges: Vec<_> = table.ranges().collect();
            let tiles = ranges.first().map(|r| *r.0.start()) == Some(0)
                && ranges.last().map(|r| *r.0.end()) == Some(SLOTS - 1)
                && ranges.windows(2).all(|w| {
                    *w[0].0.end() + 1 == *w[1].0.start() && w[0].1 != w[1].1
                });
            let runs_match = ranges.iter().all(|(range, node)| {
                range.clone().all(|s| model[usize::from(s)] == *node)
            });
            owners_match && tiles && runs_match && table.epoch() == changes
        }
    }
}
