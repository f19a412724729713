//! The per-core key/value table. Knows entries and their absolute expiry; knows nothing
//! about commands, protocols or threads. Time is always passed in (`now`, unix ms).

use ahash::RandomState;
use bytes::Bytes;
use hashbrown::HashMap;

/// Absolute expiry in unix milliseconds; `NO_EXPIRY` means the key is persistent.
pub const NO_EXPIRY: u64 = 0;

/// One stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    /// Absolute expiry in unix ms, or [`NO_EXPIRY`].
    pub expire_at: u64,
    /// memcached's opaque 32-bit client flags.
    pub flags: u32,
    /// memcached's CAS unique; bumped on every write to the item.
    pub cas: u64,
}

impl Entry {
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != NO_EXPIRY && self.expire_at <= now
    }
}

/// A value lifted out of one shard to be written into another (cross-core RENAME, COPY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSnapshot {
    pub value: Bytes,
    pub expire_at: u64,
    pub flags: u32,
}

/// The table itself. Expired entries may still sit in it until touched; every lookup
/// through [`Store::get`] treats them as absent.
#[derive(Default)]
pub struct Store {
    map: HashMap<Box<[u8]>, Entry, RandomState>,
    expires: usize,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Number of entries held, expired-but-unreclaimed ones included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of entries that carry an expiry.
    pub fn expires(&self) -> usize {
        self.expires
    }

    /// The live entry for `key`, or `None` (an expired entry counts as absent).
    pub fn get(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| !e.is_expired(now))
    }

    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.map.get_mut(key).filter(|e| !e.is_expired(now))
    }

    /// Whether `key` holds an expired entry (to be reclaimed by the caller's write path).
    pub fn is_expired(&self, key: &[u8], now: u64) -> bool {
        self.map.get(key).is_some_and(|e| e.is_expired(now))
    }

    /// Inserts or replaces; returns the previous entry, expired or not.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let has_ttl = entry.expire_at != NO_EXPIRY;
        let old = match self.map.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, entry)),
            None => {
                self.map.insert(key.into(), entry);
                None
            }
        };
        if has_ttl {
            self.expires += 1;
        }
        if let Some(o) = &old {
            if o.expire_at != NO_EXPIRY {
                self.expires -= 1;
            }
        }
        old
    }

    /// Removes `key`, expired or not.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let old = self.map.remove(key);
        if let Some(o) = &old {
            if o.expire_at != NO_EXPIRY {
                self.expires -= 1;
            }
        }
        old
    }

    /// Sets the absolute expiry of a present key (expired or not); returns false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64) -> bool {
        match self.map.get_mut(key) {
            Some(e) => {
                match (e.expire_at != NO_EXPIRY, expire_at != NO_EXPIRY) {
                    (false, true) => self.expires += 1,
                    (true, false) => self.expires -= 1,
                    _ => {}
                }
                e.expire_at = expire_at;
                true
            }
            None => false,
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.expires = 0;
    }

    /// Visits entries from bucket position `cursor`, calling `f` for each, until `count`
    /// buckets were walked; returns the next cursor, 0 when the walk is complete.
    ///
    /// The cursor is a position in the table's current layout; keys present for the whole
    /// walk are seen at least once unless the table is resized mid-walk, as with Redis's
    /// SCAN guarantee relaxed to "at least once per stable table".
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        let skip = cursor as usize;
        let mut seen = 0usize;
        for (k, e) in self.map.iter().skip(skip) {
            f(k, e);
            seen += 1;
            if seen >= count {
                let next = skip + seen;
                return if next >= self.map.len() {
                    0
                } else {
                    next as u64
                };
            }
        }
        0
    }

    /// Iterates every entry (expired ones included; callers filter with `now`).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.map.iter().map(|(k, e)| (&**k, e))
    }

    /// The `n`th entry in iteration order, for RANDOMKEY.
    pub fn nth(&self, n: usize) -> Option<(&[u8], &Entry)> {
        self.map.iter().nth(n).map(|(k, e)| (&**k, e))
    }
}
