//! Meta-command semantics against a real shard.

use super::*;

const NOW: u64 = 1_700_000_000_000;

fn run(shard: &mut Shard, op: McOp) -> MetaResult {
    match execute(shard, op, &McCtx::new(NOW)) {
        McResult::Meta(r) => r,
        other => panic!("expected a meta result, got {other:?}"),
    }
}

fn ms(key: &str, data: &str) -> MetaSet {
    MetaSet {
        key: key.into(),
        data: data.into(),
        mode: StoreMode::Set,
        flags: 0,
        exptime: 0,
        compare_cas: None,
        new_cas: None,
        vivify: None,
        invalidate: false,
    }
}

fn mg(key: &str) -> MetaGet {
    MetaGet {
        key: key.into(),
        value: true,
        ..MetaGet::default()
    }
}

fn cas_of(shard: &mut Shard, key: &str) -> u64 {
    shard.lookup(key.as_bytes(), NOW).map_or(0, |e| e.cas())
}

fn value_of(shard: &mut Shard, key: &str) -> Option<Vec<u8>> {
    shard
        .lookup(key.as_bytes(), NOW)
        .map(|e| e.value().to_vec())
}

#[test]
fn mg_hit_miss_and_fields() {
    let mut s = Shard::new(1);
    assert_eq!(run(&mut s, McOp::MetaGet(mg("k"))).status, MetaStatus::Miss);
    let set = MetaSet {
        flags: 12,
        exptime: 30,
        ..ms("k", "hello")
    };
    assert_eq!(run(&mut s, McOp::MetaSet(set)).status, MetaStatus::Ok);
    let r = run(&mut s, McOp::MetaGet(mg("k")));
    assert_eq!(r.status, MetaStatus::Ok);
    assert_eq!(r.value.as_deref(), Some(&b"hello"[..]));
    assert_eq!((r.flags, r.size, r.ttl), (12, 5, 30));
    assert_eq!(r.cas, cas_of(&mut s, "k"));
    let no_value = MetaGet {
        value: false,
        ..mg("k")
    };
    let r = run(&mut s, McOp::MetaGet(no_value));
    assert_eq!((r.status, r.value, r.size), (MetaStatus::Ok, None, 5));
    assert_eq!((s.stats.keyspace_hits, s.stats.keyspace_misses), (2, 1));
}

#[test]
fn mg_c_leaves_out_an_unchanged_value() {
    let mut s = Shard::new(0);
    run(&mut s, McOp::MetaSet(ms("k", "v")));
    let cas = cas_of(&mut s, "k");
    let same = MetaGet {
        unless_cas: Some(cas),
        ..mg("k")
    };
    assert_eq!(run(&mut s, McOp::MetaGet(same)).value, None);
    let changed = MetaGet {
        unless_cas: Some(cas + 1),
        ..mg("k")
    };
    assert_eq!(
        run(&mut s, McOp::MetaGet(changed)).value.as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn mg_t_updates_the_ttl_and_reports_both() {
    let mut s = Shard::new(0);
    run(&mut s, McOp::MetaSet(ms("k", "v")));
    let cas = cas_of(&mut s, "k");
    let touch = MetaGet {
        touch: Some(60),
        ..mg("k")
    };
    let r = run(&mut s, McOp::MetaGet(touch));
    assert_eq!((r.ttl_before, r.ttl), (-1, 60));
    assert_eq!(s.store().get(b"k", NOW).unwrap().expire_at(), NOW + 60_000);
    assert_eq!(cas_of(&mut s, "k"), cas, "a touch is not a new version");
}

#[test]
fn ms_modes() {
    let mut s = Shard::new(0);
    let mode = |m, data| {
        McOp::MetaSet(MetaSet {
            mode: m,
            ..ms("k", data)
        })
    };
    assert_eq!(
        run(&mut s, mode(StoreMode::Replace, "r")).status,
        MetaStatus::NotStored
    );
    assert_eq!(
        run(&mut s, mode(StoreMode::Append, "a")).status,
        MetaStatus::NotStored
    );
    assert_eq!(
        run(&mut s, mode(StoreMode::Add, "1")).status,
        MetaStatus::Ok
    );
    assert_eq!(
        run(&mut s, mode(StoreMode::Add, "2")).status,
        MetaStatus::NotStored
    );
    let r = run(&mut s, mode(StoreMode::Append, "34"));
    assert_eq!(
        (r.status, r.size),
        (MetaStatus::Ok, 3),
        "s is the final size"
    );
    assert_eq!(r.cas, cas_of(&mut s, "k"));
    assert_eq!(
        run(&mut s, mode(StoreMode::Prepend, "0")).status,
        MetaStatus::Ok
    );
    assert_eq!(value_of(&mut s, "k").as_deref(), Some(&b"0134"[..]));
    let r = run(&mut s, mode(StoreMode::Replace, "x"));
    assert_eq!((r.status, r.size), (MetaStatus::Ok, 1));
}

#[test]
fn ms_failures_report_cas_zero_and_the_sent_size() {
    let mut s = Shard::new(0);
    run(&mut s, McOp::MetaSet(ms("k", "v")));
    let add = MetaSet {
        mode: StoreMode::Add,
        ..ms("k", "four")
    };
    let r = run(&mut s, McOp::MetaSet(add));
    assert_eq!((r.status, r.cas, r.size), (MetaStatus::NotStored, 0, 4));
}

#[test]
fn ms_compare_cas() {
    let mut s = Shard::new(0);
    let with_cas = |c| {
        McOp::MetaSet(MetaSet {
            compare_cas: Some(c),
            ..ms("k", "new")
        })
    };
    assert_eq!(run(&mut s, with_cas(5)).status, MetaStatus::Miss, "NF");
    run(&mut s, McOp::MetaSet(ms("k", "old")));
    let cas = cas_of(&mut s, "k");
    assert_eq!(run(&mut s, with_cas(cas + 1)).status, MetaStatus::Exists);
    assert_eq!(run(&mut s, with_cas(0)).status, MetaStatus::Exists);
    let r = run(&mut s, with_cas(cas));
    assert_eq!(r.status, MetaStatus::Ok);
    assert_ne!(r.cas, cas);
    assert_eq!(value_of(&mut s, "k").as_deref(), Some(&b"new"[..]));
    // Add ignores C.
    let add = MetaSet {
        mode: StoreMode::Add,
        compare_cas: Some(r.cas),
        ..ms("k", "x")
    };
    assert_eq!(
        run(&mut s, McOp::MetaSet(add)).status,
        MetaStatus::NotStored
    );
}

#[test]
fn ms_append_compares_cas_unless_zero() {
    let mut s = Shard::new(0);
    run(&mut s, McOp::MetaSet(ms("k", "a")));
    let cas = cas_of(&mut s, "k");
    let append = |c| {
        McOp::MetaSet(MetaSet {
            mode: StoreMode::Append,
            compare_cas: Some(c),
            ..ms("k", "b")
        })
    };
    assert_eq!(run(&mut s, append(cas + 1)).status, MetaStatus::Exists);
    assert_eq!(run(&mut s, append(cas)).status, MetaStatus::Ok);
    assert_eq!(run(&mut s, append(0)).status, MetaStatus::Ok);
    assert_eq!(value_of(&mut s, "k").as_deref(), Some(&b"abb"[..]));
}

#[test]
fn ms_e_sets_the_cas() {
    let mut s = Shard::new(0);
    let set = MetaSet {
        new_cas: Some(777),
        ..ms("k", "v")
    };
    assert_eq!(run(&mut s, McOp::MetaSet(set)).cas, 777);
    assert_eq!(cas_of(&mut s, "k"), 777);
    let append = MetaSet {
        mode: StoreMode::Append,
        new_cas: Some(778),
        ..ms("k", "w")
    };
    assert_eq!(run(&mut s, McOp::MetaSet(append)).cas, 778);
    assert_eq!(cas_of(&mut s, "k"), 778);
}

#[test]
fn ms_append_vivifies_with_n() {
    let mut s = Shard::new(0);
    let viv = MetaSet {
        mode: StoreMode::Prepend,
        flags: 9,
        exptime: 5,
        vivify: Some(50),
        ..ms("k", "seed")
    };
    assert_eq!(run(&mut s, McOp::MetaSet(viv)).status, MetaStatus::Ok);
    let e = s.lookup(b"k", NOW).unwrap();
    assert_eq!((e.value(), e.flags()), (&b"seed"[..], 9));
    assert_eq!(e.expire_at(), NOW + 50_000, "N's TTL, not T's");
}

#[test]
fn md_deletes_compares_and_empties() {
    let mut s = Shard::new(0);
    let md = |key: &str| MetaDelete {
        key: key.into(),
        ..MetaDelete::default()
    };
    assert_eq!(
        run(&mut s, McOp::MetaDelete(md("k"))).status,
        MetaStatus::Miss
    );
    run(&mut s, McOp::MetaSet(ms("k", "v")));
    let cas = cas_of(&mut s, "k");
    let wrong = MetaDelete {
        compare_cas: Some(cas + 1),
        ..md("k")
    };
    assert_eq!(
        run(&mut s, McOp::MetaDelete(wrong)).status,
        MetaStatus::Exists
    );
    assert!(value_of(&mut s, "k").is_some());
    let right = MetaDelete {
        compare_cas: Some(cas),
        ..md("k")
    };
    assert_eq!(run(&mut s, McOp::MetaDelete(right)).status, MetaStatus::Ok);
    assert!(value_of(&mut s, "k").is_none());

    let set = MetaSet {
        flags: 3,
        ..ms("t", "value")
    };
    run(&mut s, McOp::MetaSet(set));
    let cas = cas_of(&mut s, "t");
    let empty = MetaDelete {
        remove_value: true,
        flags: 8,
        ..md("t")
    };
    assert_eq!(run(&mut s, McOp::MetaDelete(empty)).status, MetaStatus::Ok);
    let e = s.lookup(b"t", NOW).unwrap();
    assert_eq!(
        (e.value().len(), e.flags(), e.cas()),
        (0, 8, cas),
        "x keeps the CAS"
    );
    let with_e = MetaDelete {
        remove_value: true,
        new_cas: Some(99),
        ..md("t")
    };
    run(&mut s, McOp::MetaDelete(with_e));
    assert_eq!(cas_of(&mut s, "t"), 99);
}

#[test]
fn ma_counts_and_vivifies() {
    let mut s = Shard::new(0);
    assert_eq!(
        run(&mut s, McOp::MetaArith(MetaArith::incr(b"n".to_vec()))).status,
        MetaStatus::Miss
    );
    let viv = MetaArith {
        vivify: Some(0),
        initial: 10,
        value: true,
        ..MetaArith::incr(b"n".to_vec())
    };
    let r = run(&mut s, McOp::MetaArith(viv));
    assert_eq!(
        (r.status, r.value.as_deref()),
        (MetaStatus::Ok, Some(&b"10"[..])),
        "J, not J+D"
    );
    assert_eq!(r.cas, cas_of(&mut s, "n"));
    let r = run(
        &mut s,
        McOp::MetaArith(MetaArith {
            value: true,
            ..MetaArith::incr(b"n".to_vec())
        }),
    );
    assert_eq!(r.value.as_deref(), Some(&b"11"[..]));
    let decr = MetaArith {
        incr: false,
        delta: 100,
        value: true,
        ..MetaArith::incr(b"n".to_vec())
    };
    assert_eq!(
        run(&mut s, McOp::MetaArith(decr)).value.as_deref(),
        Some(&b"0"[..])
    );
    let wrap = MetaArith {
        delta: u64::MAX,
        ..MetaArith::incr(b"n".to_vec())
    };
    let r = run(&mut s, McOp::MetaArith(wrap));
    assert_eq!((r.value, r.size), (None, 20), "no v, no value");
    assert_eq!(
        value_of(&mut s, "n").as_deref(),
        Some(&b"18446744073709551615"[..])
    );
}

#[test]
fn ma_cas_ttl_and_errors() {
    let mut s = Shard::new(0);
    run(
        &mut s,
        McOp::MetaSet(MetaSet {
            exptime: 100,
            ..ms("n", "5")
        }),
    );
    let cas = cas_of(&mut s, "n");
    let op = |m: MetaArith| McOp::MetaArith(m);
    let base = || MetaArith::incr(b"n".to_vec());
    let r = run(
        &mut s,
        op(MetaArith {
            compare_cas: Some(cas + 1),
            ..base()
        }),
    );
    assert_eq!(r.status, MetaStatus::Exists);
    let r = run(
        &mut s,
        op(MetaArith {
            compare_cas: Some(0),
            ..base()
        }),
    );
    assert_eq!(r.status, MetaStatus::Ok, "C0 compares with nothing");
    let r = run(
        &mut s,
        op(MetaArith {
            new_cas: Some(4242),
            touch: Some(7),
            ..base()
        }),
    );
    assert_eq!((r.cas, r.ttl_before, r.ttl), (4242, 100, 7));
    assert_eq!(cas_of(&mut s, "n"), 4242);

    run(&mut s, McOp::MetaSet(ms("txt", "abc")));
    let bad = McOp::MetaArith(MetaArith::incr(b"txt".to_vec()));
    assert_eq!(execute(&mut s, bad, &McCtx::new(NOW)), McResult::NonNumeric);
}

#[test]
fn me_reports_metadata() {
    let mut s = Shard::new(0);
    let me = || McOp::MetaDebug { key: b"k".to_vec() };
    assert_eq!(
        execute(&mut s, me(), &McCtx::new(NOW)),
        McResult::Debug(None)
    );
    run(
        &mut s,
        McOp::MetaSet(MetaSet {
            exptime: 10,
            ..ms("k", "vvv")
        }),
    );
    let cas = cas_of(&mut s, "k");
    let want = McDebug {
        key: b"k".to_vec(),
        ttl: 10,
        cas,
        size: 4,
        last_access: 0,
        fetched: false,
    };
    assert_eq!(
        execute(&mut s, me(), &McCtx::new(NOW)),
        McResult::Debug(Some(want))
    );
}

#[test]
fn mg_reports_hit_before_and_last_access() {
    let mut s = Shard::new(0);
    run(&mut s, McOp::MetaSet(ms("k", "v")));
    let first = run(&mut s, McOp::MetaGet(mg("k")));
    assert_eq!((first.hit_before, first.last_access), (false, 0));
    let later = McCtx::new(NOW + 7_000);
    let McResult::Meta(second) = execute(&mut s, McOp::MetaGet(mg("k")), &later) else {
        panic!("meta")
    };
    assert_eq!((second.hit_before, second.last_access), (true, 7));
}

#[test]
fn mg_vivify_wins_once_then_reports_the_token_sent() {
    let mut s = Shard::new(0);
    let viv = MetaGet {
        vivify: Some(30),
        ..mg("k")
    };
    let first = run(&mut s, McOp::MetaGet(viv.clone()));
    assert_eq!(
        (
            first.status,
            first.value.as_deref(),
            first.ttl,
            first.won,
            first.token_sent
        ),
        (MetaStatus::Ok, Some(&b""[..]), 30, true, false)
    );
    let second = run(&mut s, McOp::MetaGet(viv));
    assert_eq!((second.won, second.token_sent), (false, true));
    assert_eq!(s.stats.keyspace_misses, 1, "the vivifying miss counts");
    // Writing the item clears the win state.
    run(&mut s, McOp::MetaSet(ms("k", "fresh")));
    let after = run(&mut s, McOp::MetaGet(mg("k")));
    assert_eq!(
        (after.won, after.token_sent, after.value.as_deref()),
        (false, false, Some(&b"fresh"[..]))
    );
}

#[test]
fn mg_recache_wins_when_the_ttl_runs_low() {
    let mut s = Shard::new(0);
    run(
        &mut s,
        McOp::MetaSet(MetaSet {
            exptime: 100,
            ..ms("k", "v")
        }),
    );
    run(&mut s, McOp::MetaSet(ms("p", "v")));
    let r = |s: &mut Shard, key: &str, secs| {
        run(
            s,
            McOp::MetaGet(MetaGet {
                recache: Some(secs),
                ..mg(key)
            }),
        )
    };
    assert!(!r(&mut s, "k", 50).won, "TTL 100 is not below 50");
    assert!(r(&mut s, "k", 200).won, "TTL 100 is below 200");
    let again = r(&mut s, "k", 200);
    assert_eq!((again.won, again.token_sent), (false, true));
    assert!(!r(&mut s, "p", 200).won, "no TTL never wins a recache");
}

#[test]
fn md_invalidate_marks_stale_and_the_next_reader_wins() {
    let mut s = Shard::new(0);
    let md = MetaDelete {
        key: b"k".to_vec(),
        invalidate: true,
        exptime: 30,
        ..MetaDelete::default()
    };
    assert_eq!(
        run(&mut s, McOp::MetaDelete(md.clone())).status,
        MetaStatus::Miss
    );
    run(
        &mut s,
        McOp::MetaSet(MetaSet {
            exptime: 100,
            ..ms("k", "old")
        }),
    );
    let cas = cas_of(&mut s, "k");
    assert_eq!(run(&mut s, McOp::MetaDelete(md)).status, MetaStatus::Ok);
    assert_ne!(cas_of(&mut s, "k"), cas, "invalidation bumps the CAS");
    let first = run(&mut s, McOp::MetaGet(mg("k")));
    assert_eq!(
        (
            first.value.as_deref(),
            first.ttl,
            first.stale,
            first.won,
            first.token_sent
        ),
        (Some(&b"old"[..]), 30, true, true, false)
    );
    let second = run(&mut s, McOp::MetaGet(mg("k")));
    assert_eq!(
        (second.stale, second.won, second.token_sent),
        (true, false, true)
    );
    run(&mut s, McOp::MetaSet(ms("k", "new")));
    let fresh = run(&mut s, McOp::MetaGet(mg("k")));
    assert!(
        !fresh.stale && !fresh.won && !fresh.token_sent,
        "a write makes it fresh"
    );
}

#[test]
fn ms_invalidate_with_an_older_cas_stores_stale() {
    let mut s = Shard::new(0);
    run(
        &mut s,
        McOp::MetaSet(MetaSet {
            exptime: 100,
            ..ms("k", "1")
        }),
    );
    let old = cas_of(&mut s, "k");
    run(
        &mut s,
        McOp::MetaSet(MetaSet {
            exptime: 100,
            ..ms("k", "2")
        }),
    );
    let newer = cas_of(&mut s, "k");
    let stale_set = |data: &str, c| MetaSet {
        compare_cas: Some(c),
        invalidate: true,
        exptime: 50,
        ..ms("k", data)
    };
    assert_eq!(
        run(&mut s, McOp::MetaSet(stale_set("x", newer + 1))).status,
        MetaStatus::Exists,
        "a newer CAS than the item's is a plain mismatch"
    );
    assert_eq!(
        run(&mut s, McOp::MetaSet(stale_set("3", old))).status,
        MetaStatus::Ok
    );
    let got = run(&mut s, McOp::MetaGet(mg("k")));
    assert_eq!(
        (got.value.as_deref(), got.stale, got.won, got.ttl),
        (Some(&b"3"[..]), true, true, 100),
        "stored, stale, keeping the item's TTL (memcached ignores T here)"
    );
}
