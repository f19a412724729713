//! The owner side of blocking: which clients wait for which keys of this core's shard, in
//! order of arrival, and which of them to wake now. Pure data: the caller says whether a
//! key is ready, and sends the wake-ups.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// The type a waiter pops: a key is ready for it when it holds a value of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    List,
    Zset,
}

/// One blocked client waiting for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    /// The client id (unique in the process): names the waiter on every core.
    pub id: u64,
    /// The core the client lives on, where its wake-up goes.
    pub home: usize,
    pub want: Want,
    /// A wake-up was sent and the client has not yet said that it found nothing: it is
    /// not woken again meanwhile, and nobody behind it is woken instead.
    pub woken: bool,
}

/// Every key of one shard that blocked clients wait for, each with its FIFO of waiters.
#[derive(Debug, Default)]
pub struct Registry {
    keys: HashMap<Bytes, VecDeque<Waiter>>,
    /// Something changed (a waiter came, left or asked to be woken again) since the last
    /// [`Registry::wake_ready`]: look at the keys even if the shard did not change.
    dirty: bool,
    /// The shard's write version at the last look.
    seen_version: u64,
}

impl Registry {
    /// Appends a waiter to `key`'s queue (once: a key named twice waits once).
    pub fn add(&mut self, key: Bytes, id: u64, home: usize, want: Want) {
        let q = self.keys.entry(key).or_default();
        if !q.iter().any(|w| w.id == id) {
            q.push_back(Waiter {
                id,
                home,
                want,
                woken: false,
            });
        }
        self.dirty = true;
    }

    /// Takes waiter `id` off the queues of `keys` (served, timed out, unblocked or gone).
    pub fn remove(&mut self, id: u64, keys: &[Bytes]) {
        for k in keys {
            if let Some(q) = self.keys.get_mut(k) {
                q.retain(|w| w.id != id);
                if q.is_empty() {
                    self.keys.remove(k);
                }
            }
        }
        self.dirty = true;
    }

    /// Waiter `id` was woken but found nothing: it may be woken again (keeping its place).
    pub fn rearm(&mut self, id: u64, keys: &[Bytes]) {
        for k in keys {
            if let Some(w) = self
                .keys
                .get_mut(k)
                .and_then(|q| q.iter_mut().find(|w| w.id == id))
            {
                w.woken = false;
            }
        }
        self.dirty = true;
    }

    /// Whether a look at the keys is due: something changed here, or the shard was written
    /// since (`version` is its write version).
    pub fn due(&self, version: u64) -> bool {
        !self.keys.is_empty() && (self.dirty || version != self.seen_version)
    }

    /// Wakes the first waiter of every key that is ready for it (`ready(key, want)`)
    /// unless it was woken already: returns `(home, id)` of each to wake, marking them
    /// woken. Only a queue's head is ever woken, so waiters are served in arrival order.
    pub fn wake_ready(
        &mut self,
        version: u64,
        mut ready: impl FnMut(&[u8], Want) -> bool,
    ) -> Vec<(usize, u64)> {
        self.dirty = false;
        self.seen_version = version;
        let mut wake = Vec::new();
        for (key, q) in self.keys.iter_mut() {
            if let Some(head) = q.front_mut() {
                if !head.woken && ready(key, head.want) {
                    head.woken = true;
                    wake.push((head.home, head.id));
                }
            }
        }
        wake
    }

    /// Waiters over all keys (a client waiting for two keys counts twice).
    pub fn len(&self) -> usize {
        self.keys.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids waiting for `key`, first to last.
    pub fn queue(&self, key: &[u8]) -> Vec<u64> {
        self.keys
            .get(key)
            .map(|q| q.iter().map(|w| w.id).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn only_the_head_is_woken_and_the_next_after_it_leaves() {
        let mut r = Registry::default();
        r.add(k("a"), 1, 0, Want::List);
        r.add(k("a"), 2, 1, Want::List);
        r.add(k("a"), 3, 0, Want::List);
        assert_eq!(r.queue(b"a"), vec![1, 2, 3]);
        // Not ready: nobody is woken.
        assert!(r.due(0));
        assert!(r.wake_ready(0, |_, _| false).is_empty());
        assert!(!r.due(0), "nothing changed since the last look");
        assert!(r.due(1), "the shard was written");
        assert_eq!(r.wake_ready(1, |_, _| true), vec![(0, 1)]);
        // The head is busy: nobody else is woken, however ready the key is.
        assert!(r.wake_ready(2, |_, _| true).is_empty());
        r.remove(1, &[k("a")]);
        assert_eq!(r.wake_ready(2, |_, _| true), vec![(1, 2)]);
        // 2 found the key empty again: it keeps its place and is woken again later.
        r.rearm(2, &[k("a")]);
        assert!(r.wake_ready(3, |_, _| false).is_empty());
        assert_eq!(r.wake_ready(4, |_, _| true), vec![(1, 2)]);
        assert_eq!(r.queue(b"a"), vec![2, 3]);
    }

    #[test]
    fn readiness_follows_the_head_type_and_queues_drop_when_empty() {
        let mut r = Registry::default();
        r.add(k("z"), 7, 0, Want::Zset);
        r.add(k("z"), 7, 0, Want::Zset);
        r.add(k("l"), 7, 0, Want::List);
        assert_eq!(r.len(), 2, "a key named twice waits once");
        let woken = r.wake_ready(1, |key, want| key == b"z" && want == Want::Zset);
        assert_eq!(woken, vec![(0, 7)]);
        r.remove(7, &[k("z"), k("l")]);
        assert!(r.is_empty());
        assert!(!r.due(99), "no waiters: nothing to look at");
    }
}
