//! Meta-protocol conversations, byte for byte, against a real shard.

use super::testing::Session;
use super::*;

fn cas(s: &mut Session, key: &str) -> u64 {
    s.shard.lookup(key.as_bytes(), s.now_ms).unwrap().cas()
}

#[test]
fn mg_miss_and_quiet_miss() {
    let mut s = Session::new();
    assert_eq!(s.talk("mg k\r\n"), "EN\r\n");
    assert_eq!(s.talk("mg k v q\r\nmn\r\n"), "MN\r\n");
    assert_eq!(s.talk("mg k k Oab v s\r\n"), "EN kk Oab\r\n");
}

#[test]
fn mg_hit_return_flags_in_request_order() {
    let mut s = Session::new();
    assert_eq!(s.talk("ms k 5 F3\r\nhello\r\n"), "HD\r\n");
    let c = cas(&mut s, "k");
    assert_eq!(s.talk("mg k\r\n"), "HD\r\n");
    assert_eq!(s.talk("mg k v\r\n"), "VA 5\r\nhello\r\n");
    assert_eq!(
        s.talk("mg k s v t c f\r\n"),
        format!("VA 5 s5 t-1 c{c} f3\r\nhello\r\n")
    );
    assert_eq!(s.talk("mg k f c\r\n"), format!("HD f3 c{c}\r\n"));
    assert_eq!(s.talk("mg k Oxyz k v q u\r\n"), "VA 5 Oxyz kk\r\nhello\r\n");
    assert_eq!(s.talk("mg k Pproxy Lhint\r\n"), "HD\r\n");
}

#[test]
fn mg_ttl_before_and_after_t() {
    let mut s = Session::new();
    s.talk("ms k 1\r\nv\r\n");
    assert_eq!(s.talk("mg k t T30\r\n"), "HD t-1\r\n");
    assert_eq!(s.talk("mg k T60 t\r\n"), "HD t60\r\n");
    assert_eq!(s.talk("mg k t\r\n"), "HD t60\r\n");
    s.advance(60_000);
    assert_eq!(s.talk("mg k t\r\n"), "EN\r\n");
}

#[test]
fn mg_c_suppresses_an_unchanged_value() {
    let mut s = Session::new();
    s.talk("ms k 1\r\nv\r\n");
    let c = cas(&mut s, "k");
    assert_eq!(s.talk(&format!("mg k v C{c}\r\n")), "HD\r\n");
    assert_eq!(s.talk(&format!("mg k v C{}\r\n", c + 1)), "VA 1\r\nv\r\n");
}

#[test]
fn base64_keys() {
    let mut s = Session::new();
    assert_eq!(s.talk("ms Zm9v 1 b k\r\nx\r\n"), "HD kZm9v b\r\n");
    assert_eq!(s.talk("get foo\r\n"), "VALUE foo 0 1\r\nx\r\nEND\r\n");
    assert_eq!(s.talk("mg Zm9v b k v\r\n"), "VA 1 kZm9v b\r\nx\r\n");
    assert_eq!(s.talk("md Zm9v b q\r\nget foo\r\n"), "END\r\n");
    assert_eq!(
        s.talk("mg !!!! b\r\n"),
        "CLIENT_ERROR error decoding key\r\n"
    );
    assert_eq!(
        s.talk("ms Zm9 1 b\r\nx\r\nmn\r\n"),
        "CLIENT_ERROR error decoding key\r\nMN\r\n"
    );
}

/// The recache conversations, byte for byte as memcached 1.6.18 answers them.
#[test]
fn mg_hit_before_last_access_and_recache_flags() {
    let mut s = Session::new();
    assert_eq!(s.talk("ms k 2 T60\r\nhi\r\n"), "HD\r\n");
    assert_eq!(s.talk("mg k h l v\r\n"), "VA 2 h0 l0\r\nhi\r\n");
    assert_eq!(s.talk("mg k h l t v\r\n"), "VA 2 h1 l0 t60\r\nhi\r\n");
    // N: a miss creates an empty item and wins; later readers see Z until it is set.
    let first = s.talk("mg miss v N30 t c\r\n");
    let c = cas(&mut s, "miss");
    assert_eq!(first, format!("VA 0 t30 c{c} W\r\n\r\n"));
    assert_eq!(
        s.talk("mg miss v N30 t c\r\n"),
        format!("VA 0 t30 c{c} Z\r\n\r\n")
    );
    assert_eq!(
        s.talk("mg miss v t c\r\n"),
        format!("VA 0 t30 c{c} Z\r\n\r\n")
    );
    assert_eq!(s.talk("ms miss 3 T60\r\nnew\r\n"), "HD\r\n");
    let c = cas(&mut s, "miss");
    assert_eq!(
        s.talk("mg miss v c t\r\n"),
        format!("VA 3 c{c} t60\r\nnew\r\n")
    );
    assert_eq!(
        s.talk("mg viv N0 s\r\nmg viv s\r\n"),
        "HD s0 W\r\nHD s0 Z\r\n"
    );
    // R: the first reader to see the TTL below the token wins.
    s.talk("ms r 1 T100\r\nx\r\n");
    assert_eq!(s.talk("mg r v R200 t\r\n"), "VA 1 t100 W\r\nx\r\n");
    assert_eq!(s.talk("mg r v R200 t\r\n"), "VA 1 t100 Z\r\nx\r\n");
    assert_eq!(s.talk("mg r v R50 t\r\n"), "VA 1 t100 Z\r\nx\r\n");
    // md I: stale (X); the first reader wins, the next sees Z; a set makes it fresh.
    s.talk("ms st 1 T100\r\nx\r\n");
    assert_eq!(s.talk("md st I T30\r\n"), "HD\r\n");
    let c = cas(&mut s, "st");
    assert_eq!(
        s.talk("mg st v c t\r\n"),
        format!("VA 1 c{c} t30 X W\r\nx\r\n")
    );
    assert_eq!(
        s.talk("mg st v c t\r\n"),
        format!("VA 1 c{c} t30 Z X\r\nx\r\n")
    );
    s.talk("ms st 1 T100\r\ny\r\n");
    let c = cas(&mut s, "st");
    assert_eq!(
        s.talk("mg st v c t\r\n"),
        format!("VA 1 c{c} t100\r\ny\r\n")
    );
    // ms I with a CAS older than the item's: stored stale, keeping the item's TTL.
    s.talk("ms d 1\r\n1\r\n");
    let old = cas(&mut s, "d");
    s.talk("ms d 1\r\n2\r\n");
    assert_eq!(s.talk(&format!("ms d 1 I C{old} T50\r\n3\r\n")), "HD\r\n");
    let c = cas(&mut s, "d");
    assert_eq!(
        s.talk("mg d t c v\r\n"),
        format!("VA 1 t-1 c{c} X W\r\n3\r\n")
    );
    assert_eq!(s.talk(&format!("ms d 1 I C{}\r\n4\r\n", c + 1)), "EX\r\n");
}

#[test]
fn meta_flag_errors() {
    let mut s = Session::new();
    assert_eq!(s.talk("mg\r\n"), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(s.talk("mg k v v\r\n"), "CLIENT_ERROR duplicate flag\r\n");
    assert_eq!(s.talk("mg k q !\r\n"), "CLIENT_ERROR invalid flag\r\n");
    assert_eq!(
        s.talk("mg k Tabc\r\n"),
        "CLIENT_ERROR bad token in command line format\r\n"
    );
    assert_eq!(
        s.talk("mg k C-1\r\n"),
        "CLIENT_ERROR bad token in command line format\r\n"
    );
    let opaque = "O".to_string() + &"x".repeat(31);
    assert_eq!(
        s.talk(&format!("mg k {opaque}\r\n")),
        format!("EN {opaque}\r\n")
    );
    assert_eq!(
        s.talk(&format!("mg k {opaque}x\r\n")),
        "CLIENT_ERROR opaque token too long\r\n"
    );
    let seventeen = "s t c f v k u Oa Pa La T1 E1 C1 x I F1 M1";
    assert_eq!(s.talk(&format!("mg k {seventeen}\r\n")), "EN kk Oa\r\n");
    assert_eq!(
        s.talk(&format!("mg k {seventeen} D1\r\n")),
        "CLIENT_ERROR options flags are too long\r\n"
    );
    let long = "k".repeat(251);
    assert_eq!(
        s.talk(&format!("mg {long} v\r\n")),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn ms_replies_and_flags() {
    let mut s = Session::new();
    assert_eq!(s.talk("ms k 2\r\nhi\r\n"), "HD\r\n");
    assert_eq!(s.talk("ms k 2 q\r\nhi\r\nmn\r\n"), "MN\r\n");
    let out = s.talk("ms k 2 c k s Oop\r\nhi\r\n");
    let c = cas(&mut s, "k");
    assert_eq!(out, format!("HD c{c} kk s2 Oop\r\n"));
    assert_eq!(s.talk("ms k 1 MA s\r\nX\r\n"), "HD s3\r\n");
    assert_eq!(
        s.talk("ms k 1 MP\r\n<\r\nget k\r\n"),
        "HD\r\nVALUE k 0 4\r\n<hiX\r\nEND\r\n"
    );
    assert_eq!(s.talk("ms new 1 MA\r\nX\r\n"), "NS\r\n");
    assert_eq!(
        s.talk("ms new 1 MA N0 F4\r\nX\r\nget new\r\n"),
        "HD\r\nVALUE new 4 1\r\nX\r\nEND\r\n"
    );
    assert_eq!(s.talk("ms k 1 ME c s\r\nX\r\n"), "NS c0 s1\r\n");
    assert_eq!(s.talk("ms k 1 MR q\r\nZ\r\n"), "");
    assert_eq!(s.talk("ms none 1 MR\r\nZ\r\n"), "NS\r\n");
    assert_eq!(
        s.talk("ms k 1 MS T10 F7\r\nV\r\nmg k f t v\r\n"),
        "HD\r\nVA 1 f7 t10\r\nV\r\n"
    );
}

#[test]
fn ms_cas() {
    let mut s = Session::new();
    assert_eq!(s.talk("ms none 1 C5\r\nZ\r\n"), "NF\r\n");
    s.talk("ms k 1\r\nA\r\n");
    let c = cas(&mut s, "k");
    assert_eq!(
        s.talk(&format!("ms k 1 q C{}\r\nZ\r\n", c + 1)),
        "EX\r\n",
        "q does not mute EX"
    );
    let out = s.talk(&format!("ms k 1 C{c} c\r\nY\r\n"));
    let c2 = cas(&mut s, "k");
    assert_ne!(c, c2);
    assert_eq!(out, format!("HD c{c2}\r\n"));
    assert_eq!(
        s.talk("ms k 1 E500 c\r\nW\r\nmg k c\r\n"),
        "HD c500\r\nHD c500\r\n"
    );
}

#[test]
fn ms_errors_skip_the_data_block() {
    let mut s = Session::with_limits(McLimits {
        max_item_size: 4,
        ..McLimits::default()
    });
    let cases = [
        (
            "ms k 5 T0 q\r\nhello\r\n",
            "SERVER_ERROR object too large for cache",
        ),
        (
            "ms k 1 MX\r\nz\r\n",
            "CLIENT_ERROR invalid mode for ms M token",
        ),
        (
            "ms k 1 MSS\r\nz\r\n",
            "CLIENT_ERROR incorrect length for M token",
        ),
        ("ms k 1 v v\r\nz\r\n", "CLIENT_ERROR duplicate flag"),
        ("ms k 1 Fx\r\nz\r\n", "CLIENT_ERROR bad command line format"),
        ("ms k 2 q\r\nabXY", "CLIENT_ERROR bad data chunk"),
    ];
    for (input, error) in cases {
        assert_eq!(
            s.talk(&format!("{input}mn\r\n")),
            format!("{error}\r\nMN\r\n"),
            "{input:?}"
        );
    }
    // Without a usable length there is nothing to skip.
    assert_eq!(
        s.talk("ms k\r\n"),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(
        s.talk("ms k x\r\nmn\r\n"),
        "CLIENT_ERROR bad command line format\r\nMN\r\n"
    );
    assert_eq!(s.talk("mg k\r\n"), "EN\r\n", "nothing was stored");
}

#[test]
fn md_replies() {
    let mut s = Session::new();
    assert_eq!(s.talk("md k\r\n"), "NF\r\n");
    assert_eq!(s.talk("md k q\r\n"), "NF\r\n");
    s.talk("ms k 1\r\nv\r\n");
    assert_eq!(s.talk("md k C1 Oz k\r\n"), "EX Oz kk\r\n");
    assert_eq!(s.talk("md k Oz k\r\n"), "HD Oz kk\r\n");
    assert_eq!(s.talk("mg k\r\n"), "EN\r\n");
    s.talk("ms k 1 F2\r\nv\r\n");
    assert_eq!(s.talk("md k q\r\nmn\r\n"), "MN\r\n");
    s.talk("ms k 3 F2\r\nabc\r\n");
    let c = cas(&mut s, "k");
    assert_eq!(
        s.talk("md k x F5\r\nmg k v f s c\r\n"),
        format!("HD\r\nVA 0 f5 s0 c{c}\r\n\r\n")
    );
    assert_eq!(s.talk("md nokey I\r\n"), "NF\r\n");
    assert_eq!(s.talk("md k I C1\r\n"), "EX\r\n");
    assert_eq!(s.talk("md k q I\r\nmg k v q k\r\n"), "VA 0 kk X W\r\n\r\n");
}

#[test]
fn ma_replies() {
    let mut s = Session::new();
    assert_eq!(s.talk("ma n\r\n"), "NF\r\n");
    assert_eq!(s.talk("ma n q Oa k\r\n"), "NF Oa kn\r\n");
    assert_eq!(s.talk("ma n N0 J13 v\r\n"), "VA 2\r\n13\r\n");
    assert_eq!(s.talk("ma n v\r\n"), "VA 2\r\n14\r\n");
    assert_eq!(s.talk("ma n MD D20 v t\r\n"), "VA 1 t-1\r\n0\r\n");
    assert_eq!(
        s.talk("ma n M+ q D5\r\nget n\r\n"),
        "VALUE n 0 1\r\n5\r\nEND\r\n"
    );
    let out = s.talk("ma n c Oa k\r\n");
    let c = cas(&mut s, "n");
    assert_eq!(out, format!("HD c{c} Oa kn\r\n"));
    assert_eq!(s.talk("ma n T30 t\r\n"), "HD t30\r\n");
    assert_eq!(s.talk("ma n t T40\r\n"), "HD t30\r\n");
    assert_eq!(s.talk("ma n C1\r\n"), "EX\r\n");
    assert_eq!(
        s.talk("ma n M-\r\nget n\r\n"),
        "HD\r\nVALUE n 0 1\r\n7\r\nEND\r\n"
    );
    assert_eq!(
        s.talk("ma n Mx\r\n"),
        "CLIENT_ERROR invalid mode for ma M token\r\n"
    );
    assert_eq!(
        s.talk("ma n Dx\r\n"),
        "CLIENT_ERROR invalid or duplicate flag\r\n"
    );
    assert_eq!(
        s.talk("ma n v v\r\n"),
        "CLIENT_ERROR invalid or duplicate flag\r\n"
    );
    s.talk("ms t 3\r\nabc\r\n");
    assert_eq!(
        s.talk("ma t q\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
}

#[test]
fn me_replies() {
    let mut s = Session::new();
    assert_eq!(s.talk("me k\r\n"), "EN\r\n");
    s.talk("ms k 3 T10\r\nabc\r\nms foo 1\r\nx\r\n");
    let (c, cf) = (cas(&mut s, "k"), cas(&mut s, "foo"));
    assert_eq!(
        s.talk("me k\r\n"),
        format!("ME k exp=10 la=0 cas={c} fetch=no size=4\r\n")
    );
    assert_eq!(
        s.talk("me Zm9v b\r\n"),
        format!("ME Zm9v exp=-1 la=0 cas={cf} fetch=no size=4\r\n")
    );
    assert_eq!(s.talk("me\r\n"), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(
        s.talk("me !!! b\r\n"),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn quiet_pipeline_ends_with_mn() {
    let mut s = Session::new();
    s.talk("ms b 1 q\r\nB\r\n");
    assert_eq!(
        s.talk("mg a q v\r\nmg b q v\r\nmg c q v\r\nmn\r\n"),
        "VA 1\r\nB\r\nMN\r\n"
    );
}
