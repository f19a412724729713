//! The write path of sets: members added and removed, each change reported as one
//! `SetAdd` or `SetRem` effect naming only the members it touched (the outcome, so SPOP's
//! random picks replay exactly), whole sets stored as one `SetPut`, and the conversions
//! from intset to packed to table at the thresholds.

use bytes::Bytes;

use super::super::effect::{DelCause, Effect};
use super::super::Shard;
use crate::entry::{Big, Kind};
use crate::set::{self, as_int, intset, packed, BigSet, Built, Encoding};
use crate::store::{Entry, NO_EXPIRY};

/// A new entry holding a set built from distinct members.
/// The entry kind of a set form kept in the value bytes.
fn kind_of(enc: Encoding) -> Kind {
    match enc {
        Encoding::Ints => Kind::SetInts,
        _ => Kind::SetPacked,
    }
}

fn set_entry(key: &[u8], built: Built, expire_at: u64, flags: u32, cas: u64) -> Entry {
    match built {
        Built::Bytes(enc, b) => Entry::new_kind(kind_of(enc), key, &b, expire_at, flags, cas),
        Built::Table(t) => Entry::new_big(key, Box::new(Big::Set(t)), expire_at, flags, cas),
    }
}

/// `old` with a new set value, keeping key, expiry, flags and item bits.
fn with_built(old: &Entry, built: Built, cas: u64) -> Entry {
    match built {
        Built::Bytes(enc, b) => {
            old.with_kind_value(kind_of(enc), b.len(), cas, |v| v.copy_from_slice(&b))
        }
        Built::Table(t) => old.with_big(Box::new(Big::Set(t)), cas),
    }
}

/// `old` with `members` added, as version `cas` (members already present are skipped,
/// so replaying an add twice changes nothing).
fn add_on(mut old: Entry, members: &[&[u8]], cas: u64) -> Entry {
    let Some(cur) = old.set() else {
        // Not a set (only a stream out of order could ask): it becomes one.
        let enc = Encoding::for_members(members.iter().copied());
        return set_entry(
            old.key(),
            set::build(enc, members.iter().copied()),
            NO_EXPIRY,
            0,
            cas,
        );
    };
    let new: Vec<&[u8]> = members
        .iter()
        .copied()
        .filter(|m| !cur.contains(m))
        .collect();
    let n = cur.len() + new.len();
    match old.kind() {
        Kind::SetInts => {
            let ints: Option<Vec<i64>> = new.iter().map(|m| as_int(m)).collect();
            match ints {
                Some(ints) if n <= set::max_intset_entries() => {
                    let mut b = old.value().to_vec();
                    for v in ints {
                        intset::insert(&mut b, v);
                    }
                    old.with_kind_value(Kind::SetInts, b.len(), cas, |v| v.copy_from_slice(&b))
                }
                _ => {
                    // A non-integer or one too many: a hashtable in Redis, packed or a
                    // table here.
                    let all: Vec<Vec<u8>> = cur.iter().map(|m| m.into_owned()).collect();
                    let members = all.iter().map(|m| &m[..]).chain(new.iter().copied());
                    with_built(&old, set::build(Encoding::Packed, members), cas)
                }
            }
        }
        Kind::SetPacked => {
            if n <= set::MAX_PACKED_ENTRIES && new.iter().all(|m| m.len() <= set::MAX_PACKED_VALUE)
            {
                let mut b = old.value().to_vec();
                for m in &new {
                    packed::push(&mut b, m);
                }
                old.with_kind_value(Kind::SetPacked, b.len(), cas, |v| v.copy_from_slice(&b))
            } else {
                let mut t = BigSet::from_members(packed::members(old.value()));
                for m in &new {
                    t.insert(m);
                }
                old.with_big(Box::new(Big::Set(t)), cas)
            }
        }
        _ => {
            if let Some(Big::Set(t)) = old.big_mut() {
                for m in &new {
                    t.insert(m);
                }
            }
            old.set_cas(cas);
            old
        }
    }
}

/// `old` without `members`, as version `cas`.
fn rem_on(mut old: Entry, members: &[&[u8]], cas: u64) -> Entry {
    match old.kind() {
        Kind::SetInts => {
            let mut b = old.value().to_vec();
            for v in members.iter().filter_map(|m| as_int(m)) {
                intset::remove(&mut b, v);
            }
            old.with_kind_value(Kind::SetInts, b.len(), cas, |v| v.copy_from_slice(&b))
        }
        Kind::SetPacked => {
            let mut b = old.value().to_vec();
            for m in members {
                packed::remove(&mut b, m);
            }
            old.with_kind_value(Kind::SetPacked, b.len(), cas, |v| v.copy_from_slice(&b))
        }
        _ => {
            if let Some(Big::Set(t)) = old.big_mut() {
                for m in members {
                    t.remove(m);
                }
            }
            old.set_cas(cas);
            old
        }
    }
}

/// The distinct members of `members` for which `keep` holds, in order.
fn distinct<'a>(members: &[&'a [u8]], mut keep: impl FnMut(&[u8]) -> bool) -> Vec<&'a [u8]> {
    if members.len() <= 8 {
        // The common case (SADD of a member or a few): no table to build.
        // Allocated only once a member is new (a SADD of a present member allocates none).
        let mut out: Vec<&[u8]> = Vec::new();
        for &m in members {
            if !out.contains(&m) && keep(m) {
                out.push(m);
            }
        }
        return out;
    }
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    members
        .iter()
        .copied()
        .filter(|m| keep(m) && seen.insert(*m))
        .collect()
}

impl Shard {
    /// Adds `members` to the set at `key`, creating it if absent (the caller has checked
    /// that the key holds no other type); returns how many were new. Reported as one
    /// `SetAdd` of the new members; nothing is written when none is new.
    pub fn set_add(&mut self, key: &[u8], members: &[&[u8]], now: u64) -> usize {
        // One probe of the keyspace for a live key: its expiry and its members.
        let found = match self.store.index_of(key) {
            Some(idx) if self.store.entry_at(idx).is_expired(now) => {
                self.reclaim_expired(idx);
                // Gone, except on a replica, which leaves expiry to its primary.
                self.store.index_of(key)
            }
            found => found,
        };
        let cur = found.and_then(|i| self.store.entry_at(i).set());
        let new = distinct(members, |m| !cur.is_some_and(|s| s.contains(m)));
        if new.is_empty() {
            return 0;
        }
        let cas = self.bump_cas();
        self.set_add_at(key, &new, cas, now);
        self.emit(|_| Effect::SetAdd {
            key: Bytes::copy_from_slice(key),
            members: Bytes::from(packed::from_members(new.iter().copied())),
            cas,
        });
        self.enforce_budget();
        new.len()
    }

    fn set_add_at(&mut self, key: &[u8], members: &[&[u8]], cas: u64, now: u64) {
        match self.store.index_of(key) {
            None => {
                let enc = Encoding::for_members(members.iter().copied());
                let built = set::build(enc, members.iter().copied());
                let mut e = set_entry(key, built, NO_EXPIRY, 0, cas);
                e.set_accessed(now);
                self.link(e);
            }
            Some(idx) => self.relink(idx, |old| {
                let mut e = add_on(old, members, cas);
                e.set_accessed(now);
                e
            }),
        }
    }

    /// Removes `members` from the set at `key`; returns how many were present. Removing
    /// the last member removes the key (reported as a `Del`, else as one `SetRem` of the
    /// members that were present).
    pub fn set_rem(&mut self, key: &[u8], members: &[&[u8]], now: u64) -> usize {
        self.expire_if_needed(key, now);
        let Some(idx) = self.store.index_of(key) else {
            return 0;
        };
        let Some(cur) = self.store.entry_at(idx).set() else {
            return 0;
        };
        let gone = distinct(members, |m| cur.contains(m));
        if gone.is_empty() {
            return 0;
        }
        let cas = self.bump_cas();
        self.set_rem_at(idx, &gone, cas, now);
        if self.store.entry_at(idx).set().is_some_and(|s| s.is_empty()) {
            self.remove_at(idx, DelCause::Deleted);
        } else {
            self.emit(|_| Effect::SetRem {
                key: Bytes::copy_from_slice(key),
                members: gone.iter().map(|m| Bytes::copy_from_slice(m)).collect(),
                cas,
            });
        }
        gone.len()
    }

    fn set_rem_at(&mut self, idx: u32, members: &[&[u8]], cas: u64, now: u64) {
        self.relink(idx, |old| {
            let mut e = rem_on(old, members, cas);
            e.set_accessed(now);
            e
        });
    }

    /// Stores a whole set given as packed distinct members (SINTERSTORE and friends,
    /// COPY, RENAME, RESTORE), in the form `enc`, or the one the thresholds pick when
    /// `None`; it replaces whatever `key` held.
    pub fn put_set(
        &mut self,
        key: &[u8],
        members: &[u8],
        enc: Option<Encoding>,
        expire_at: u64,
        flags: u32,
    ) {
        let cas = self.bump_cas();
        let enc = enc.unwrap_or_else(|| Encoding::for_members(packed::members(members)));
        let mut e = set_entry(
            key,
            set::build(enc, packed::members(members)),
            expire_at,
            flags,
            cas,
        );
        e.set_accessed(self.now);
        let idx = self.link(e);
        self.emit_put(idx);
        self.enforce_budget();
    }

    /// Replays a `SetPut`, `SetAdd` or `SetRem` (see [`Shard::apply_quiet`]).
    pub(super) fn apply_set(&mut self, effect: &Effect) {
        match effect {
            Effect::SetPut {
                key,
                members,
                enc,
                expire_at,
                flags,
                cas,
                bits,
            } => {
                let built = set::build(*enc, packed::members(members));
                let mut e = set_entry(key, built, *expire_at, *flags, *cas);
                e.set_item_bits(*bits);
                e.set_accessed(self.now);
                self.link(e);
                self.witness_cas(*cas);
            }
            Effect::SetAdd { key, members, cas } => {
                let members: Vec<&[u8]> = packed::members(members).collect();
                self.set_add_at(key, &members, *cas, self.now);
                self.witness_cas(*cas);
            }
            Effect::SetRem { key, members, cas } => {
                if let Some(idx) = self.store.index_of(key) {
                    let members: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
                    self.set_rem_at(idx, &members, *cas, self.now);
                    if self.store.entry_at(idx).set().is_some_and(|s| s.is_empty()) {
                        self.unlink(idx);
                    }
                    self.witness_cas(*cas);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Collector;

    fn enc(s: &mut Shard, key: &[u8]) -> Option<Encoding> {
        s.lookup(key, 0).and_then(|e| e.set()).map(|s| s.encoding())
    }

    #[test]
    fn adds_and_removes_replay_exactly_across_every_conversion() {
        let mut a = Shard::new(0);
        let fx = Collector::new();
        a.set_effect_sink(Box::new(fx.clone()));
        assert_eq!(a.set_add(b"s", &[b"1", b"2", b"2"], 0), 2);
        assert_eq!(enc(&mut a, b"s"), Some(Encoding::Ints));
        assert_eq!(a.set_add(b"s", &[b"x"], 0), 1);
        assert_eq!(enc(&mut a, b"s"), Some(Encoding::Packed));
        let many: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        let many: Vec<&[u8]> = many.iter().map(|m| m.as_bytes()).collect();
        assert_eq!(a.set_add(b"s", &many, 0), 200);
        assert_eq!(enc(&mut a, b"s"), Some(Encoding::Table));
        assert_eq!(
            a.set_add(b"s", &[b"x"], 0),
            0,
            "nothing new: nothing written"
        );
        assert_eq!(a.set_rem(b"s", &[b"1", b"nope", b"1"], 0), 1);
        let mut b = Shard::new(1);
        for e in fx.take() {
            b.apply(&e);
            b.apply(&e);
        }
        assert_eq!(a.lookup(b"s", 0), b.lookup(b"s", 0));
        let all: Vec<Vec<u8>> = a
            .lookup(b"s", 0)
            .unwrap()
            .set()
            .unwrap()
            .iter()
            .map(|m| m.into_owned())
            .collect();
        let all: Vec<&[u8]> = all.iter().map(|m| &m[..]).collect();
        assert_eq!(a.set_rem(b"s", &all, 0), 202);
        assert!(a.lookup(b"s", 0).is_none(), "the last member takes the key");
        let effects = fx.take();
        assert!(matches!(effects[..], [Effect::Del { .. }]), "{effects:?}");
        b.apply(&effects[0]);
        assert!(b.is_empty());
        assert_eq!(a.used_memory(), b.used_memory());
    }

    #[test]
    fn a_whole_set_keeps_its_form() {
        let mut a = Shard::new(0);
        let m = packed::from_members([&b"1"[..], b"2"]);
        a.put_set(b"s", &m, Some(Encoding::Packed), NO_EXPIRY, 0);
        assert_eq!(enc(&mut a, b"s"), Some(Encoding::Packed));
        a.put_set(b"s", &m, None, NO_EXPIRY, 0);
        assert_eq!(enc(&mut a, b"s"), Some(Encoding::Ints));
        a.put_set(b"s", &m, Some(Encoding::Table), NO_EXPIRY, 0);
        assert_eq!(enc(&mut a, b"s"), Some(Encoding::Table));
        let e = Effect::put(a.lookup(b"s", 0).unwrap());
        let mut b = Shard::new(1);
        b.apply(&e);
        assert_eq!(a.lookup(b"s", 0), b.lookup(b"s", 0));
    }

    quickcheck::quickcheck! {
        /// Any bytes as a stored set's members (a malformed or duplicated record), in any
        /// form: every set command answers without panicking.
        fn any_members_serve_every_command(b: Vec<u8>, form: u8) -> bool {
            let enc = [Encoding::Ints, Encoding::Packed, Encoding::Table][usize::from(form % 3)];
            let mut s = Shard::new(0);
            s.apply(&Effect::SetPut {
                key: Bytes::from_static(b"s"),
                members: Bytes::from(b),
                enc,
                expire_at: NO_EXPIRY,
                flags: 0,
                cas: 1,
                bits: Default::default(),
            });
            for cmd in [
                &["SMEMBERS", "s"][..],
                &["SRANDMEMBER", "s", "-3"],
                &["SSCAN", "s", "0"],
                &["SINTER", "s", "s"],
                &["SPOP", "s", "2"],
                &["SADD", "s", "1", "x"],
                &["SREM", "s", "1"],
                &["SCARD", "s"],
            ] {
                crate::commands::run(&mut s, cmd, 0);
            }
            true
        }
    }
}
