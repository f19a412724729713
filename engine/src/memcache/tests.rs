//! Text-command semantics against a real shard, with the clock passed in.

use super::text::parse_counter;
use super::*;
use crate::store::NO_EXPIRY;

const NOW: u64 = 1_700_000_000_000;

fn ctx(now_ms: u64) -> McCtx {
    McCtx::new(now_ms)
}

fn store(mode: StoreMode, key: &str, flags: u32, exptime: i64, data: &str, cas: u64) -> McOp {
    McOp::Store(StoreOp {
        mode,
        key: key.into(),
        flags,
        exptime,
        data: data.into(),
        cas,
    })
}

fn set(shard: &mut Shard, key: &str, data: &str, flags: u32, exptime: i64) -> McResult {
    execute(
        shard,
        store(StoreMode::Set, key, flags, exptime, data, 0),
        &ctx(NOW),
    )
}

fn get_at(shard: &mut Shard, key: &str, now: u64) -> Option<McItem> {
    let op = McOp::Get {
        key: key.into(),
        touch: None,
    };
    match execute(shard, op, &ctx(now)) {
        McResult::Value(item) => item,
        other => panic!("get answered {other:?}"),
    }
}

fn get(shard: &mut Shard, key: &str) -> Option<McItem> {
    get_at(shard, key, NOW)
}

fn value(shard: &mut Shard, key: &str) -> Option<String> {
    get(shard, key).map(|i| String::from_utf8(i.value).unwrap())
}

fn arith(shard: &mut Shard, key: &str, incr: bool, delta: u64) -> McResult {
    let op = McOp::Arith {
        key: key.into(),
        incr,
        delta,
    };
    execute(shard, op, &ctx(NOW))
}

#[test]
fn exptime_rules() {
    assert_eq!(expiry(0, NOW), Expiry::Never);
    assert_eq!(expiry(-1, NOW), Expiry::Expired);
    assert_eq!(expiry(i64::from(i32::MIN), NOW), Expiry::Expired);
    assert_eq!(expiry(10, NOW), Expiry::At(NOW + 10_000));
    // 30 days is still relative; one second more is an absolute unix time.
    assert_eq!(
        expiry(MAX_RELATIVE_EXPTIME, NOW),
        Expiry::At(NOW + MAX_RELATIVE_EXPTIME as u64 * 1000)
    );
    assert_eq!(expiry(MAX_RELATIVE_EXPTIME + 1, NOW), Expiry::Expired);
    let future = (NOW / 1000 + 60) as i64;
    assert_eq!(expiry(future, NOW), Expiry::At(future as u64 * 1000));
    assert_eq!(expiry((NOW / 1000) as i64, NOW), Expiry::Expired);
}

#[test]
fn flush_deadline_and_ttl() {
    assert_eq!(flush_deadline(0, NOW), None);
    assert_eq!(flush_deadline(-5, NOW), None);
    assert_eq!(flush_deadline(10, NOW), Some(NOW + 10_000));
    assert_eq!(ttl_seconds(NO_EXPIRY, NOW), -1);
    assert_eq!(ttl_seconds(NOW + 10_000, NOW), 10);
    assert_eq!(ttl_seconds(NOW + 9_001, NOW), 10, "rounds up");
    assert_eq!(ttl_seconds(NOW + 1, NOW), 1);
}

#[test]
fn set_then_get_returns_value_flags_and_cas() {
    let mut s = Shard::new(3);
    assert_eq!(set(&mut s, "k", "hello", 42, 0), McResult::Stored);
    let item = get(&mut s, "k").unwrap();
    assert_eq!(item.key, b"k");
    assert_eq!(item.value, b"hello");
    assert_eq!(item.flags, 42);
    assert_eq!(item.cas, s.store().get(b"k", NOW).unwrap().cas());
    assert_eq!(item.cas & 0xff, 3, "the CAS names the shard");
    assert_eq!(get(&mut s, "missing"), None);
    assert_eq!(s.stats.keyspace_hits, 1);
    assert_eq!(s.stats.keyspace_misses, 1);
}

#[test]
fn every_write_changes_the_cas() {
    let mut s = Shard::new(0);
    set(&mut s, "k", "1", 0, 0);
    let c1 = get(&mut s, "k").unwrap().cas;
    set(&mut s, "k", "1", 0, 0);
    let c2 = get(&mut s, "k").unwrap().cas;
    execute(
        &mut s,
        store(StoreMode::Append, "k", 0, 0, "2", 0),
        &ctx(NOW),
    );
    let c3 = get(&mut s, "k").unwrap().cas;
    arith(&mut s, "k", true, 1);
    let c4 = get(&mut s, "k").unwrap().cas;
    let mut all = vec![c1, c2, c3, c4];
    all.dedup();
    assert_eq!(all.len(), 4, "{all:?}");
}

#[test]
fn redis_and_memcached_items_are_the_same_items() {
    let mut s = Shard::new(0);
    // Written the way Redis SET writes: flags 0.
    s.put(b"r", b"from-redis", NO_EXPIRY, 0);
    let item = get(&mut s, "r").unwrap();
    assert_eq!((item.value.as_slice(), item.flags), (&b"from-redis"[..], 0));
    set(&mut s, "m", "from-mc", 7, 0);
    let e = s.lookup(b"m", NOW).unwrap();
    assert_eq!((e.value(), e.flags()), (&b"from-mc"[..], 7));
}

#[test]
fn add_only_stores_missing_keys() {
    let mut s = Shard::new(0);
    let add = |data| store(StoreMode::Add, "k", 1, 0, data, 0);
    assert_eq!(execute(&mut s, add("a"), &ctx(NOW)), McResult::Stored);
    assert_eq!(execute(&mut s, add("b"), &ctx(NOW)), McResult::NotStored);
    assert_eq!(value(&mut s, "k").as_deref(), Some("a"));
    // An expired item does not count as present.
    set(&mut s, "e", "old", 0, 5);
    let later = ctx(NOW + 5_000);
    let op = store(StoreMode::Add, "e", 0, 0, "new", 0);
    assert_eq!(execute(&mut s, op, &later), McResult::Stored);
}

#[test]
fn replace_only_stores_present_keys() {
    let mut s = Shard::new(0);
    let replace = |data| store(StoreMode::Replace, "k", 9, 0, data, 0);
    assert_eq!(
        execute(&mut s, replace("x"), &ctx(NOW)),
        McResult::NotStored
    );
    assert_eq!(get(&mut s, "k"), None);
    set(&mut s, "k", "a", 1, 0);
    assert_eq!(execute(&mut s, replace("b"), &ctx(NOW)), McResult::Stored);
    let item = get(&mut s, "k").unwrap();
    assert_eq!((item.value.as_slice(), item.flags), (&b"b"[..], 9));
}

#[test]
fn append_and_prepend_keep_flags_and_expiry() {
    let mut s = Shard::new(0);
    set(&mut s, "k", "mid", 5, 100);
    let exp = s.store().get(b"k", NOW).unwrap().expire_at();
    let r = execute(
        &mut s,
        store(StoreMode::Append, "k", 77, 0, "-end", 0),
        &ctx(NOW),
    );
    assert_eq!(r, McResult::Stored);
    let r = execute(
        &mut s,
        store(StoreMode::Prepend, "k", 88, 9, "start-", 0),
        &ctx(NOW),
    );
    assert_eq!(r, McResult::Stored);
    let e = s.lookup(b"k", NOW).unwrap();
    assert_eq!(e.value(), b"start-mid-end");
    assert_eq!((e.flags(), e.expire_at()), (5, exp));
}

#[test]
fn append_to_missing_key_is_not_stored() {
    let mut s = Shard::new(0);
    for mode in [StoreMode::Append, StoreMode::Prepend] {
        let r = execute(&mut s, store(mode, "k", 0, 0, "x", 0), &ctx(NOW));
        assert_eq!(r, McResult::NotStored);
    }
    assert_eq!(get(&mut s, "k"), None);
}

#[test]
fn append_beyond_the_item_size_limit_is_not_stored() {
    let mut s = Shard::new(0);
    let small = McCtx {
        now_ms: NOW,
        max_item_size: 8,
    };
    set(&mut s, "k", "12345", 0, 0);
    let r = execute(
        &mut s,
        store(StoreMode::Append, "k", 0, 0, "678", 0),
        &small,
    );
    assert_eq!(r, McResult::Stored);
    let r = execute(&mut s, store(StoreMode::Append, "k", 0, 0, "9", 0), &small);
    assert_eq!(r, McResult::NotStored);
    assert_eq!(value(&mut s, "k").as_deref(), Some("12345678"));
}

#[test]
fn cas_semantics() {
    let mut s = Shard::new(0);
    let cas = |unique| store(StoreMode::Cas, "k", 3, 0, "new", unique);
    assert_eq!(execute(&mut s, cas(1), &ctx(NOW)), McResult::NotFound);
    set(&mut s, "k", "old", 0, 0);
    let unique = get(&mut s, "k").unwrap().cas;
    assert_eq!(
        execute(&mut s, cas(unique + 1), &ctx(NOW)),
        McResult::Exists
    );
    assert_eq!(execute(&mut s, cas(0), &ctx(NOW)), McResult::Exists);
    assert_eq!(value(&mut s, "k").as_deref(), Some("old"));
    assert_eq!(execute(&mut s, cas(unique), &ctx(NOW)), McResult::Stored);
    let item = get(&mut s, "k").unwrap();
    assert_eq!((item.value.as_slice(), item.flags), (&b"new"[..], 3));
    assert_ne!(item.cas, unique);
    // The old unique is spent.
    assert_eq!(execute(&mut s, cas(unique), &ctx(NOW)), McResult::Exists);
}

#[test]
fn relative_and_absolute_exptimes() {
    let mut s = Shard::new(0);
    set(&mut s, "rel", "v", 0, 10);
    assert!(get_at(&mut s, "rel", NOW + 9_999).is_some());
    assert!(get_at(&mut s, "rel", NOW + 10_000).is_none());
    let abs = (NOW / 1000 + 20) as i64;
    set(&mut s, "abs", "v", 0, abs);
    assert!(get_at(&mut s, "abs", NOW + 19_999).is_some());
    assert!(get_at(&mut s, "abs", NOW + 20_000).is_none());
    set(&mut s, "never", "v", 0, 0);
    assert!(get_at(&mut s, "never", u64::MAX / 2).is_some());
}

#[test]
fn negative_exptime_stores_an_already_expired_item() {
    let mut s = Shard::new(0);
    set(&mut s, "k", "old", 0, 0);
    assert_eq!(set(&mut s, "k", "new", 0, -1), McResult::Stored);
    assert_eq!(get(&mut s, "k"), None, "the old value is gone too");
    let past = (NOW / 1000 - 1) as i64;
    assert_eq!(set(&mut s, "p", "v", 0, past), McResult::Stored);
    assert_eq!(get(&mut s, "p"), None);
    assert_eq!(s.len(), 0);
}

#[test]
fn incr_and_decr() {
    let mut s = Shard::new(0);
    assert_eq!(arith(&mut s, "n", true, 1), McResult::NotFound);
    set(&mut s, "n", "10", 4, 100);
    let exp = s.store().get(b"n", NOW).unwrap().expire_at();
    assert_eq!(arith(&mut s, "n", true, 5), McResult::Number(15));
    assert_eq!(arith(&mut s, "n", false, 6), McResult::Number(9));
    assert_eq!(
        value(&mut s, "n").as_deref(),
        Some("9"),
        "shrinks, no padding"
    );
    let e = s.lookup(b"n", NOW).unwrap();
    assert_eq!(
        (e.flags(), e.expire_at()),
        (4, exp),
        "flags and expiry kept"
    );
}

#[test]
fn incr_wraps_and_decr_floors_at_zero() {
    let mut s = Shard::new(0);
    set(&mut s, "n", "18446744073709551615", 0, 0);
    assert_eq!(arith(&mut s, "n", true, 2), McResult::Number(1));
    assert_eq!(arith(&mut s, "n", false, 5), McResult::Number(0));
    assert_eq!(
        arith(&mut s, "n", true, u64::MAX),
        McResult::Number(u64::MAX)
    );
    assert_eq!(value(&mut s, "n").as_deref(), Some("18446744073709551615"));
}

#[test]
fn incr_on_non_numbers() {
    let mut s = Shard::new(0);
    for bad in ["", "abc", "12abc", "-1", "18446744073709551616", "1.5", " "] {
        set(&mut s, "n", bad, 0, 0);
        let cas = get(&mut s, "n").unwrap().cas;
        assert_eq!(arith(&mut s, "n", true, 1), McResult::NonNumeric, "{bad:?}");
        assert_eq!(
            get(&mut s, "n").unwrap().cas,
            cas,
            "a failed incr writes nothing"
        );
    }
    // memcached reads the number up to the first whitespace.
    set(&mut s, "n", " 7 trailing", 0, 0);
    assert_eq!(arith(&mut s, "n", true, 1), McResult::Number(8));
}

#[test]
fn counter_parsing() {
    assert_eq!(parse_counter(b"0"), Some(0));
    assert_eq!(parse_counter(b"+5"), Some(5));
    assert_eq!(parse_counter(b"  42\r\n"), Some(42));
    assert_eq!(parse_counter(b"007"), Some(7));
    assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
    for bad in [
        &b""[..],
        b"x",
        b"+",
        b"-0",
        b"1x",
        b"99999999999999999999",
        b"\t",
    ] {
        assert_eq!(parse_counter(bad), None, "{bad:?}");
    }
}

#[test]
fn touch_and_gat_update_expiry() {
    let mut s = Shard::new(0);
    let touch = |exptime| McOp::Touch {
        key: b"k".to_vec(),
        exptime,
    };
    assert_eq!(execute(&mut s, touch(10), &ctx(NOW)), McResult::NotFound);
    set(&mut s, "k", "v", 0, 5);
    let cas = get(&mut s, "k").unwrap().cas;
    assert_eq!(execute(&mut s, touch(100), &ctx(NOW)), McResult::Touched);
    assert!(get_at(&mut s, "k", NOW + 99_000).is_some());
    assert_eq!(get(&mut s, "k").unwrap().cas, cas, "touch keeps the CAS");
    assert_eq!(execute(&mut s, touch(0), &ctx(NOW)), McResult::Touched);
    assert_eq!(s.store().get(b"k", NOW).unwrap().expire_at(), NO_EXPIRY);

    let gat = McOp::Get {
        key: b"k".to_vec(),
        touch: Some(2),
    };
    match execute(&mut s, gat, &ctx(NOW)) {
        McResult::Value(Some(item)) => assert_eq!(item.value, b"v"),
        other => panic!("{other:?}"),
    }
    assert!(get_at(&mut s, "k", NOW + 2_000).is_none());
    let gat_miss = McOp::Get {
        key: b"k".to_vec(),
        touch: Some(2),
    };
    assert_eq!(execute(&mut s, gat_miss, &ctx(NOW)), McResult::Value(None));
}

#[test]
fn negative_touch_expires_the_item() {
    let mut s = Shard::new(0);
    set(&mut s, "k", "v", 0, 0);
    let op = McOp::Touch {
        key: b"k".to_vec(),
        exptime: -1,
    };
    assert_eq!(execute(&mut s, op, &ctx(NOW)), McResult::Touched);
    assert_eq!(get(&mut s, "k"), None);
    // gat returns the value, then the item is gone.
    set(&mut s, "g", "v", 0, 0);
    let gat = McOp::Get {
        key: b"g".to_vec(),
        touch: Some(-1),
    };
    assert!(matches!(
        execute(&mut s, gat, &ctx(NOW)),
        McResult::Value(Some(_))
    ));
    assert_eq!(get(&mut s, "g"), None);
}

#[test]
fn delete_present_missing_and_expired() {
    let mut s = Shard::new(0);
    let del = || McOp::Delete { key: b"k".to_vec() };
    assert_eq!(execute(&mut s, del(), &ctx(NOW)), McResult::NotFound);
    set(&mut s, "k", "v", 0, 0);
    assert_eq!(execute(&mut s, del(), &ctx(NOW)), McResult::Deleted);
    assert_eq!(get(&mut s, "k"), None);
    set(&mut s, "k", "v", 0, 1);
    assert_eq!(
        execute(&mut s, del(), &ctx(NOW + 1_000)),
        McResult::NotFound
    );
}

#[test]
fn ops_name_their_key_and_kind() {
    let op = store(StoreMode::Prepend, "key1", 0, 0, "", 0);
    assert_eq!(
        (op.key(), op.kind()),
        (&b"key1"[..], McOpKind::Store(StoreMode::Prepend))
    );
    let op = McOp::Arith {
        key: b"n".to_vec(),
        incr: false,
        delta: 1,
    };
    assert_eq!((op.key(), op.kind()), (&b"n"[..], McOpKind::Decr));
    let op = McOp::Get {
        key: b"g".to_vec(),
        touch: Some(1),
    };
    assert_eq!(op.kind(), McOpKind::GetAndTouch);
    let op = McOp::MetaArith(MetaArith::incr(b"m".to_vec()));
    assert_eq!((op.key(), op.kind()), (&b"m"[..], McOpKind::MetaArith));
}

#[test]
fn ops_and_results_cross_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<McOp>();
    assert_send::<McResult>();
}
