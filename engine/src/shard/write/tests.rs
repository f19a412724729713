//! Tests of the write path: what each write does to the store and which effects it
//! reports, and `Shard::apply` replaying them.

use super::*;
use crate::shard::Collector;

#[test]
fn take_moves_the_entry_out() {
    let mut s = Shard::new(0);
    s.put(b"a", b"1", 500, 3);
    let e = s.take(b"a", 10).unwrap();
    assert_eq!(
        (e.value().to_vec(), e.expire_at(), e.flags()),
        (b"1".to_vec(), 500, 3)
    );
    assert!(!s.exists(b"a", 10));
    s.put(b"a", b"1", 500, 3);
    assert!(
        s.take(b"a", 500).is_none(),
        "an expired key is not handed out"
    );
}

#[test]
fn cas_changes_on_every_write() {
    let mut s = Shard::new(2);
    s.put(b"a", b"1", NO_EXPIRY, 0);
    let c1 = s.lookup(b"a", 0).unwrap().cas();
    s.update(b"a", 0, |v| v.push(b'2'));
    let c2 = s.lookup(b"a", 0).unwrap().cas();
    assert_ne!(c1, c2);
    assert_eq!(c1 & 0xffff, 2, "the shard id is in the low bits");
    let mut wide = Shard::new(300);
    wide.put(b"a", b"1", NO_EXPIRY, 0);
    let c = wide.lookup(b"a", 0).unwrap().cas();
    assert_eq!(
        c & 0xffff,
        300,
        "a core past 255 keeps its own CAS sequence"
    );
}

/// Every item a shard holds (expired-but-unreclaimed ones too), as replication must
/// reproduce it.
type Items = std::collections::BTreeMap<Vec<u8>, (Vec<u8>, u64, u32, u64, ItemBits)>;

fn items(s: &Shard) -> Items {
    s.store()
        .iter()
        .map(|(k, e)| {
            let item = (
                e.value().to_vec(),
                e.expire_at(),
                e.flags(),
                e.cas(),
                e.item_bits(),
            );
            (k.to_vec(), item)
        })
        .collect()
}

fn collecting(id: usize) -> (Shard, Collector) {
    let mut s = Shard::new(id);
    let c = Collector::new();
    s.set_effect_sink(Box::new(c.clone()));
    (s, c)
}

fn del(key: &str, cause: DelCause) -> Effect {
    Effect::Del {
        key: Bytes::copy_from_slice(key.as_bytes()),
        cause,
    }
}

#[test]
fn each_write_reports_its_effect() {
    let (mut s, fx) = collecting(1);
    s.put(b"a", b"1", 500, 7);
    let put = Effect::put(s.store().get(b"a", 0).unwrap());
    assert!(matches!(&put, Effect::Put { value, expire_at: 500, flags: 7, .. } if value == "1"));
    s.update(b"a", 0, |v| v.push(b'2'));
    let grown = Effect::put(s.store().get(b"a", 0).unwrap());
    s.set_expire(b"a", 900, 0);
    s.set_expire(b"a", 10, 20);
    assert_eq!(
        fx.take(),
        [
            put,
            grown,
            Effect::Expire {
                key: Bytes::from_static(b"a"),
                expire_at: 900,
            },
            del("a", DelCause::Deleted),
        ]
    );

    s.put(b"b", b"1", 100, 0);
    s.put(b"c", b"1", 100, 0);
    s.put(b"d", b"1", NO_EXPIRY, 0);
    fx.take();
    assert!(s.lookup(b"b", 100).is_none());
    s.expire_cycle(100, 10);
    assert!(s.take(b"d", 100).is_some());
    assert!(!s.delete(b"d", 100), "a miss reports nothing");
    s.flush();
    assert_eq!(
        fx.take(),
        [
            del("b", DelCause::Expired),
            del("c", DelCause::Expired),
            del("d", DelCause::Deleted),
            Effect::Flush,
        ]
    );
}

#[test]
fn item_state_changes_report_stamps() {
    let (mut s, fx) = collecting(0);
    s.put(b"k", b"v", NO_EXPIRY, 0);
    fx.take();
    let cas = s.mc_cas_after_write(b"k", 0, None);
    s.set_item_bits(b"k", 0, |b| b.won = false);
    assert_eq!(fx.take(), [], "nothing changed, nothing reported");
    assert_eq!(s.mc_cas_after_write(b"k", 0, Some(cas + 1)), cas + 1);
    s.set_item_bits(b"k", 0, |b| b.stale = true);
    let stamp = |cas, stale| Effect::Stamp {
        key: Bytes::from_static(b"k"),
        cas,
        bits: ItemBits { stale, won: false },
    };
    assert_eq!(fx.take(), [stamp(cas + 1, false), stamp(cas + 1, true)]);
}

#[test]
fn evictions_report_dels() {
    let (mut s, fx) = collecting(0);
    s.set_maxmemory(4_000, 0);
    for i in 0..100u32 {
        s.put(&i.to_be_bytes(), &[b'v'; 40], NO_EXPIRY, 0);
    }
    let evicted = fx
        .take()
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Del {
                    cause: DelCause::Evicted,
                    ..
                }
            )
        })
        .count() as u64;
    assert!(evicted > 0);
    assert_eq!(evicted, s.stats.evicted_keys);
}

#[test]
fn without_a_sink_nothing_is_reported() {
    let (mut s, fx) = collecting(0);
    assert!(s.clear_effect_sink().is_some());
    s.put(b"a", b"1", NO_EXPIRY, 0);
    s.flush();
    assert_eq!(fx.take(), []);
}

/// A primary's writes, applied to a replica with another id, give the same items with
/// the primary's CAS values; the replica's own later writes get CAS values above them.
#[test]
fn apply_reproduces_items_and_carries_cas() {
    let (mut a, fx) = collecting(1);
    a.put(b"a", b"1", 500, 3);
    a.put(b"b", b"x", NO_EXPIRY, 0);
    a.update(b"b", 0, |v| v.push(b'y'));
    a.set_expire(b"b", 700, 0);
    a.mc_cas_after_write(b"b", 0, Some(42 << crate::CORE_BITS));
    a.set_item_bits(b"b", 0, |b| b.stale = true);
    a.put(b"c", b"1", 10, 0);
    a.put(b"d", b"1", NO_EXPIRY, 0);
    a.delete(b"d", 0);
    let mut b = Shard::new(2);
    for e in fx.take() {
        b.apply(&e);
    }
    assert_eq!(items(&b), items(&a));
    assert_eq!(b.expires(), a.expires());
    b.put(b"e", b"1", NO_EXPIRY, 0);
    let cas = b.store().get(b"e", 0).unwrap().cas();
    assert_eq!(cas & 0xffff, 2);
    assert!(
        a.store().iter().all(|(_, e)| e.cas() < cas),
        "a local write outranks every applied CAS"
    );
}

#[test]
fn applying_twice_changes_nothing() {
    let (mut a, fx) = collecting(0);
    a.put(b"a", b"1", NO_EXPIRY, 0);
    a.put(b"b", b"2", 50, 5);
    a.set_expire(b"a", 90, 0);
    a.flush();
    a.put(b"a", b"3", NO_EXPIRY, 0);
    a.set_item_bits(b"a", 0, |b| b.won = true);
    a.put(b"c", b"4", 30, 0);
    a.delete(b"c", 0);
    let effects = fx.take();
    let (mut once, mut doubled, mut twice) = (Shard::new(0), Shard::new(0), Shard::new(0));
    for e in &effects {
        once.apply(e);
        doubled.apply(e);
        doubled.apply(e);
    }
    for e in effects.iter().chain(&effects) {
        twice.apply(e);
    }
    assert_eq!(items(&once), items(&a));
    assert_eq!(items(&doubled), items(&a), "each effect applied twice");
    assert_eq!(items(&twice), items(&a), "the whole stream applied twice");
}

#[test]
fn apply_relays_to_the_replicas_own_sink() {
    let (mut a, from_a) = collecting(0);
    let (mut b, from_b) = collecting(1);
    a.put(b"a", b"1", NO_EXPIRY, 0);
    a.delete(b"a", 0);
    let effects = from_a.take();
    for e in &effects {
        b.apply(e);
    }
    assert_eq!(from_b.take(), effects);
}

/// A replica's SET of a value as long as the one it holds rewrites the block in place;
/// either way it ends with the primary's items, expiry count and memory count.
#[test]
fn apply_writes_a_value_as_long_in_place() {
    let (mut a, fx) = collecting(1);
    a.put(b"a", b"11", 500, 3);
    a.put(b"b", b"xx", NO_EXPIRY, 0);
    let mut b = Shard::new(2);
    for e in fx.take() {
        b.apply(&e);
    }
    let block = |s: &Shard| s.store().get(b"a", 0).unwrap().value().as_ptr();
    let before = block(&b);
    a.put(b"a", b"22", 600, 4);
    a.set_item_bits(b"a", 0, |x| x.stale = true);
    a.put(b"b", b"yy", NO_EXPIRY, 0);
    a.put(b"b", b"zzz", 900, 0);
    for e in fx.take() {
        b.apply(&e);
    }
    assert_eq!(items(&b), items(&a));
    assert_eq!(b.expires(), a.expires());
    assert_eq!(b.store().entry_bytes(), a.store().entry_bytes());
    assert_eq!(block(&b), before, "the same block, rewritten");
}
