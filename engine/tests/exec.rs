//! The execution layer on a real two-core runtime, with no sockets: pipelines that span
//! cores finish in request order, cross-core transactions apply atomically, memcached
//! ops and delayed flushes run on the core that owns the shard, a job sent to every
//! core reaches what a layer above attached to that core, and a command on a key MIGRATE
//! fenced waits until the fence is lifted or its deadline passes.

use std::rc::Rc;
use std::time::Duration;

use baton_engine::command::lookup;
use baton_engine::exec::{
    self, on_every_core, with_every_core, Pipeline, Plan, RedisDone, RedisEntry,
};
use baton_engine::memcache::{McCtx, McOp, McResult, StoreMode, StoreOp};
use baton_engine::runtime::{self, now_ms, Core, Job, Out};
use baton_engine::Reply;
use bytes::Bytes;

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

/// Two keys owned by different cores.
fn apart(core: &Core) -> (String, String) {
    let a = "k0".to_string();
    let b = (1..)
        .map(|i| format!("k{i}"))
        .find(|k| core.router.core_of(k.as_bytes()) != core.router.core_of(a.as_bytes()))
        .expect("some key lands on the other core");
    (a, b)
}

/// Plans `words` and queues it in `p`, as a connection's slow path does.
fn queue(core: &Core, p: &mut Pipeline<RedisEntry>, words: &[&str]) {
    let a = args(words);
    let spec = lookup(&a[0]).expect("a known command");
    let entry = match exec::plan(&core.router, spec, a) {
        Plan::Run {
            core: c,
            spec,
            args,
            post,
        } => RedisEntry::one(p, c, spec, args, post),
        Plan::Split {
            spec,
            merge,
            parts,
            order,
        } => RedisEntry::multi(p, spec, merge, parts, order),
        Plan::Done(r, _) | Plan::Refused(r) => RedisEntry::Ready(r),
        Plan::Txn(..) | Plan::Open { .. } => panic!("{words:?} needs a transaction"),
    };
    p.queue(entry);
}

async fn run(core: &Rc<Core>, words: &[&str]) -> Reply {
    let mut p = Pipeline::new(core.cores);
    queue(core, &mut p, words);
    p.flush(core).await.pop().unwrap().reply().clone()
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// Runs `test` on core 0 of a two-core runtime while both cores answer the mesh and fire
/// their timers, as their connection loops would.
fn on_two_cores<F, Fut>(test: F)
where
    F: Fn(Rc<Core>) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    if let Err(failure) = runtime::run_test(2, Rc::clone, test) {
        panic!("{failure}");
    }
}

#[test]
fn a_pipeline_over_two_cores_answers_in_request_order() {
    on_two_cores(|core| async move {
        let (a, b) = apart(&core);
        let mut p = Pipeline::new(core.cores);
        queue(&core, &mut p, &["SET", &a, "1"]);
        queue(&core, &mut p, &["SET", &b, "2"]);
        queue(&core, &mut p, &["MGET", &b, "nokey", &a]);
        queue(&core, &mut p, &["DBSIZE"]);
        queue(&core, &mut p, &["MSET", &a]);
        let done = p.flush(&core).await;
        let replies: Vec<Reply> = done.iter().map(|d| d.reply().clone()).collect();
        assert_eq!(
            replies,
            vec![
                Reply::Ok,
                Reply::Ok,
                Reply::Array(vec![bulk("2"), Reply::Nil, bulk("1")]),
                Reply::Int(2),
                Reply::err("ERR wrong number of arguments for 'mset' command"),
            ]
        );
        match &done[2] {
            RedisDone::Merged { parts, .. } => assert_eq!(parts.len(), 2, "one part per core"),
            _ => panic!("MGET over two cores merges"),
        }
    });
}

#[test]
fn a_cross_core_rename_moves_the_value_atomically() {
    on_two_cores(|core| async move {
        let (a, b) = apart(&core);
        assert_eq!(
            run(&core, &["SET", &a, "v", "PX", "60000"]).await,
            Reply::Ok
        );
        let rename = lookup(b"rename").unwrap();
        let plan = exec::plan(&core.router, rename, args(&["RENAME", &a, &b]));
        let Plan::Txn(spec, argv) = plan else {
            panic!("keys on two cores need a transaction");
        };
        assert_eq!(exec::txn::run(&core, spec, &argv).await, Reply::Ok);
        assert_eq!(run(&core, &["GET", &b]).await, bulk("v"));
        assert_eq!(run(&core, &["EXISTS", &a]).await, Reply::Int(0));
        match run(&core, &["PTTL", &b]).await {
            Reply::Int(ms) => assert!(ms > 50_000 && ms <= 60_000, "the TTL moved: {ms}"),
            other => panic!("PTTL: {other:?}"),
        }
        assert!(core.is_unlocked(), "the transaction released its locks");
    });
}

#[test]
fn memcached_ops_and_a_delayed_flush_run_on_the_owning_core() {
    on_two_cores(|core| async move {
        let (a, b) = apart(&core);
        let ctx = McCtx {
            now_ms: now_ms(),
            max_item_size: 1 << 20,
        };
        let set = |k: &str| {
            Job::Mc(
                McOp::Store(StoreOp {
                    mode: StoreMode::Set,
                    key: k.as_bytes().to_vec(),
                    flags: 5,
                    exptime: 0,
                    data: b"x".to_vec(),
                    cas: 0,
                }),
                ctx,
            )
        };
        let mut batch = exec::Batch::new(core.cores);
        let ta = batch.push(core.router.core_of(a.as_bytes()), set(&a));
        let tb = batch.push(core.router.core_of(b.as_bytes()), set(&b));
        let mut outs = batch.run(&core).await;
        for t in [ta, tb] {
            assert!(matches!(outs.take(t), Some(Out::Mc(McResult::Stored))));
        }
        let lens = on_every_core(&core, |s, _| s.len()).await;
        assert_eq!(
            lens,
            vec![1, 1],
            "one key on each core, answered in core order"
        );

        let mut flush = exec::Batch::new(core.cores);
        for c in 0..core.cores {
            flush.push(c, Job::FlushAt(now_ms() + 300));
        }
        flush.run(&core).await;
        assert_eq!(on_every_core(&core, |s, _| s.len()).await, vec![1, 1]);
        glommio::timer::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            on_every_core(&core, |s, _| s.len()).await,
            vec![0, 0],
            "each core flushed its shard from its own timer"
        );
    });
}

/// Per-core state of a layer above the engine, as net's `NetCore` is.
struct Tag(usize);

#[test]
fn a_job_on_every_core_reaches_what_each_core_attached() {
    on_two_cores(|core| async move {
        assert!(core.attached::<Tag>().is_none(), "nothing attached yet");
        with_every_core(&core, |c, _| c.attach(Rc::new(Tag(c.id + 10)))).await;
        let tags = with_every_core(&core, |c, _| c.attached::<Tag>().map(|t| t.0)).await;
        assert_eq!(tags, vec![Some(10), Some(11)], "each core's own value");
        // One value per type: attaching again replaces it; other types are apart.
        core.attach(Rc::new(Tag(7)));
        core.attach(Rc::new(String::from("other layer")));
        assert_eq!(core.attached::<Tag>().map(|t| t.0), Some(7));
        assert_eq!(
            core.attached::<String>().as_deref().map(String::as_str),
            Some("other layer")
        );
        assert!(core.attached::<u64>().is_none());
        // The job gets the whole core: the shard too, not borrowed.
        let lens = with_every_core(&core, |c, _| c.shard.borrow().len()).await;
        assert_eq!(lens, vec![0, 0]);
    });
}

/// Fences `key` on its core for MIGRATE `id` until `deadline`, as MIGRATE's first job does
/// (announced first, the announcement taken back when the key is not fenced).
async fn fence(core: &Rc<Core>, key: &str, id: u64, deadline: u64) -> bool {
    exec::fence::announce(1);
    let k = Bytes::copy_from_slice(key.as_bytes());
    let job = Job::OnCore(Box::new(move |c, now| {
        Out::Value(Box::new(exec::fence::fence_key(c, &k, id, deadline, now)))
    }));
    let owner = core.router.core_of(key.as_bytes());
    let mut outs = core.call(owner, runtime::NO_TXN, vec![job]).await;
    let fenced = outs.pop().and_then(Out::into_value::<bool>) == Some(true);
    if !fenced {
        exec::fence::retract(1);
    }
    fenced
}

/// Lifts MIGRATE `id`'s fence on `key`'s core, as MIGRATE does once the key is gone or
/// stays, then waits (up to 5 s) for what it parked to be `done`.
async fn lift<T>(core: &Rc<Core>, key: &str, id: u64, done: &std::cell::RefCell<Option<T>>) {
    let owner = core.router.core_of(key.as_bytes());
    let job = Job::OnCore(Box::new(move |c, now| {
        exec::fence::lift(c, id, None, now);
        Out::Value(Box::new(()))
    }));
    core.call(owner, runtime::NO_TXN, vec![job]).await;
    for _ in 0..1000 {
        if done.borrow().is_some() {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_fenced_key_parks_its_commands_until_lifted_or_its_deadline() {
    on_two_cores(|core| async move {
        let (a, b) = apart(&core);
        assert_eq!(run(&core, &["SET", &a, "1"]).await, Reply::Ok);
        assert_eq!(run(&core, &["SET", &b, "1"]).await, Reply::Ok);

        // Lifted by MIGRATE: the parked INCR waits, another key is served meanwhile.
        assert!(fence(&core, &a, 8, now_ms() + 60_000).await);
        assert!(
            !fence(&core, &a, 9, now_ms() + 60_000).await,
            "another MIGRATE's key"
        );
        let done: Rc<std::cell::RefCell<Option<Reply>>> = Rc::default();
        let (c2, d2, a2) = (core.clone(), done.clone(), a.clone());
        runtime::wake::spawn(async move {
            let r = run(&c2, &["INCR", &a2]).await;
            *d2.borrow_mut() = Some(r);
        });
        assert_eq!(run(&core, &["INCR", &b]).await, Reply::Int(2));
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert!(done.borrow().is_none(), "a command on a fenced key ran");
        lift(&core, &a, 8, &done).await;
        assert_eq!(done.borrow().clone(), Some(Reply::Int(2)));

        // Nobody lifts it: the core's own timer does, at the deadline.
        let deadline = now_ms() + 300;
        assert!(fence(&core, &a, 10, deadline).await);
        assert_eq!(run(&core, &["INCR", &a]).await, Reply::Int(3));
        assert!(now_ms() >= deadline, "answered before the fence's deadline");
        assert!(!exec::fence::any_active(), "every fence was lifted");
    });
}

/// `n` keys owned by another core than `core`.
fn far_keys(core: &Core, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("far{i}"))
        .filter(|k| core.router.core_of(k.as_bytes()) != core.id)
        .take(n)
        .collect()
}

/// Queues `GET key` (sent as `name`) for another core, packed as a connection's
/// pipeline packs it ([`RedisEntry::get`]).
fn queue_get(core: &Core, p: &mut Pipeline<RedisEntry>, name: &str, key: &str) {
    let c = core.router.core_of(key.as_bytes());
    assert_ne!(c, core.id, "{key} is this core's");
    let e = RedisEntry::get(p, c, args(&[name, key]));
    p.queue(e);
}

/// A GET's name and key as the slow log would get them.
type Logged = Option<(Vec<u8>, Vec<u8>)>;

/// A GET's reply, and its name and key as the slow log would get them.
fn got(done: &RedisDone) -> (Reply, Logged) {
    match done {
        RedisDone::Got {
            reply, name, key, ..
        } => (reply.clone(), Some((name.to_vec(), key.to_vec()))),
        other => (other.reply().clone(), None),
    }
}

/// GETs for another core travel packed, one job per run of them (`exec::gets`): each
/// still reads what the commands queued before it for that core left (a write between
/// two runs starts a new job), a miss, a value and a wrong type each get their own
/// reply, a key too long to pack goes as a command, and the slow log gets each GET's
/// name as sent and its key.
#[test]
fn packed_gets_keep_their_place_among_their_cores_jobs() {
    on_two_cores(|core| async move {
        let far = far_keys(&core, 4);
        let long = (0..)
            .map(|i| format!("{}{i}", "L".repeat(1100)))
            .find(|k| core.router.core_of(k.as_bytes()) != core.id)
            .unwrap();
        assert_eq!(run(&core, &["SET", &long, "big"]).await, Reply::Ok);
        let mut p = Pipeline::new(core.cores);
        queue_get(&core, &mut p, "GET", &far[0]);
        queue(&core, &mut p, &["SET", &far[0], ""]);
        queue_get(&core, &mut p, "gEt", &far[0]);
        queue_get(&core, &mut p, "get", &far[1]);
        queue(&core, &mut p, &["RPUSH", &far[2], "x"]);
        queue_get(&core, &mut p, "GET", &far[2]);
        queue(&core, &mut p, &["SET", &far[0], "second"]);
        queue_get(&core, &mut p, "GET", &far[0]);
        queue_get(&core, &mut p, "GET", &long);
        queue_get(&core, &mut p, "GET", &far[3]);
        let done = p.flush(&core).await;
        let replies: Vec<_> = done.iter().map(got).collect();
        let wrongtype =
            Reply::err("WRONGTYPE Operation against a key holding the wrong kind of value");
        let g = |r: Reply, name: &str, key: &str| {
            (r, Some((name.as_bytes().to_vec(), key.as_bytes().to_vec())))
        };
        assert_eq!(
            replies,
            vec![
                g(Reply::Nil, "GET", &far[0]),
                (Reply::Ok, None),
                g(bulk(""), "gEt", &far[0]),
                g(Reply::Nil, "get", &far[1]),
                (Reply::Int(1), None),
                g(wrongtype, "GET", &far[2]),
                (Reply::Ok, None),
                g(bulk("second"), "GET", &far[0]),
                // Too long to pack: a command of its own.
                (bulk("big"), None),
                g(Reply::Nil, "GET", &far[3]),
            ]
        );
    });
}

/// A run of packed GETs with a fenced key among them waits, whole, until MIGRATE lifts
/// the fence, as the key's own command would; then each reads what is there.
#[test]
fn packed_gets_wait_for_a_fenced_key() {
    on_two_cores(|core| async move {
        let far = far_keys(&core, 3);
        for k in &far {
            assert_eq!(run(&core, &["SET", k, k]).await, Reply::Ok);
        }
        assert!(fence(&core, &far[1], 21, now_ms() + 60_000).await);
        let done: Rc<std::cell::RefCell<Option<Vec<Reply>>>> = Rc::default();
        let (c2, d2, f2) = (core.clone(), done.clone(), far.clone());
        runtime::wake::spawn(async move {
            let mut p = Pipeline::new(c2.cores);
            for k in &f2 {
                queue_get(&c2, &mut p, "GET", k);
            }
            let replies = p
                .flush(&c2)
                .await
                .iter()
                .map(|d| d.reply().clone())
                .collect();
            *d2.borrow_mut() = Some(replies);
        });
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert!(
            done.borrow().is_none(),
            "GETs with a fenced key among them ran"
        );
        lift(&core, &far[1], 21, &done).await;
        let want: Vec<Reply> = far.iter().map(|k| bulk(k)).collect();
        assert_eq!(done.borrow().clone(), Some(want));
        assert!(!exec::fence::any_active(), "every fence was lifted");
    });
}
