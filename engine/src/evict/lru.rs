//! Exact LRU: an intrusive doubly-linked list threaded through side arrays indexed by id.
//! Every hit relinks the item at the head, which is what S3-FIFO avoids; it is here as
//! the baseline for the hit-ratio benchmark.

use super::{ensure, Policy, NIL};

/// `prev` of an untracked id.
const ABSENT: u32 = u32::MAX - 1;

#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    size: u32,
}

const EMPTY: Node = Node {
    prev: ABSENT,
    next: NIL,
    size: 0,
};

pub struct ExactLru {
    nodes: Vec<Node>,
    /// Most recently used.
    head: u32,
    /// Least recently used: the next victim.
    tail: u32,
    bytes: u64,
    len: usize,
}

impl Default for ExactLru {
    fn default() -> Self {
        ExactLru::new()
    }
}

impl ExactLru {
    pub fn new() -> ExactLru {
        ExactLru {
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            len: 0,
        }
    }

    fn tracked(&self, id: u32) -> bool {
        self.nodes
            .get(id as usize)
            .is_some_and(|n| n.prev != ABSENT)
    }

    fn unlink(&mut self, id: u32) {
        let Node { prev, next, .. } = self.nodes[id as usize];
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn link_front(&mut self, id: u32) {
        let old = self.head;
        let n = &mut self.nodes[id as usize];
        n.prev = NIL;
        n.next = old;
        match old {
            NIL => self.tail = id,
            h => self.nodes[h as usize].prev = id,
        }
        self.head = id;
    }

    /// Ids from least to most recently used (for tests and debugging).
    pub fn order(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len);
        let mut c = self.tail;
        while c != NIL {
            out.push(c);
            c = self.nodes[c as usize].prev;
        }
        out
    }
}

impl Policy for ExactLru {
    fn insert(&mut self, id: u32, _hash: u64, size: u32) {
        assert!(id < ABSENT, "id out of range");
        self.remove(id);
        ensure(&mut self.nodes, id, EMPTY);
        self.nodes[id as usize].size = size;
        self.link_front(id);
        self.bytes += u64::from(size);
        self.len += 1;
    }

    fn access(&mut self, id: u32) {
        if self.tracked(id) && self.head != id {
            self.unlink(id);
            self.link_front(id);
        }
    }

    fn remove(&mut self, id: u32) {
        if !self.tracked(id) {
            return;
        }
        self.unlink(id);
        let n = &mut self.nodes[id as usize];
        self.bytes -= u64::from(n.size);
        *n = EMPTY;
        self.len -= 1;
    }

    fn resize(&mut self, id: u32, size: u32) {
        if self.tracked(id) {
            let n = &mut self.nodes[id as usize];
            self.bytes = self.bytes - u64::from(n.size) + u64::from(size);
            n.size = size;
        }
    }

    fn evict(&mut self) -> Option<u32> {
        let victim = self.tail;
        if victim == NIL {
            return None;
        }
        self.remove(victim);
        Some(victim)
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn len(&self) -> usize {
        self.len
    }

    fn contains(&self, id: u32) -> bool {
        self.tracked(id)
    }

    fn clear(&mut self) {
        self.nodes.fill(EMPTY);
        self.head = NIL;
        self.tail = NIL;
        self.bytes = 0;
        self.len = 0;
    }

    fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut p = ExactLru::new();
        for id in 0..5 {
            p.insert(id, 0, 1);
        }
        p.access(0);
        p.access(2);
        p.access(0);
        assert_eq!(p.order(), vec![1, 3, 4, 2, 0]);
        let got: Vec<u32> = std::iter::from_fn(|| p.evict()).collect();
        assert_eq!(got, vec![1, 3, 4, 2, 0]);
        assert_eq!((p.len(), p.bytes()), (0, 0));
    }

    #[test]
    fn remove_resize_and_reuse() {
        let mut p = ExactLru::new();
        for id in 0..4 {
            p.insert(id, 0, 10);
        }
        p.remove(0); // the tail
        p.remove(3); // the head
        p.remove(3);
        p.resize(1, 25);
        p.resize(9, 1);
        p.access(9);
        assert_eq!(p.order(), vec![1, 2]);
        assert_eq!(p.bytes(), 35);
        p.insert(0, 0, 5);
        p.insert(2, 0, 7); // re-insert moves to the front with the new size
        assert_eq!(p.order(), vec![1, 0, 2]);
        assert_eq!(p.bytes(), 25 + 5 + 7);
        assert_eq!(p.evict(), Some(1));
        p.clear();
        assert_eq!((p.evict(), p.len(), p.bytes()), (None, 0, 0));
        p.insert(3, 0, 1);
        assert_eq!(p.order(), vec![3]);
    }
}
