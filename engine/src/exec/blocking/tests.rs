//! [`block`] on a bare two-core runtime: a client of core 0 waits for a key of core 1.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::command::lookup;
use crate::exec::args;
use crate::runtime::run_test;

/// Every core's setup: what the server's loop does each turn for blocked clients
/// ([`turn`]), which the test runtime's pump (below `exec`) does not.
fn setup(core: &Rc<Core>) -> Rc<Core> {
    let c = core.clone();
    glommio::spawn_local(async move {
        loop {
            turn(&c);
            c.flush_outbox();
            glommio::timer::sleep(Duration::from_micros(200)).await;
        }
    })
    .detach();
    core.clone()
}

/// A key that core `owner` of a two-core runtime owns.
fn key_of(core: &Core, owner: usize) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| core.router.core_of(k.as_bytes()) == owner)
        .expect("a key of that core")
}

/// Runs one command on the core that owns its first key.
async fn cmd(core: &Rc<Core>, words: &[&str]) -> Reply {
    let spec = lookup(words[0].as_bytes()).expect("a command");
    let owner = core.router.core_of(words[1].as_bytes());
    core.call(owner, NO_TXN, vec![Job::Cmd(spec, args(words))])
        .await
        .pop()
        .map_or(Reply::Nil, Out::into_reply)
}

/// Waiters registered on core `owner`.
async fn waiting_on(core: &Rc<Core>, owner: usize) -> usize {
    let job = Job::OnCore(Box::new(|c: &Core, _| {
        Out::Value(Box::new(Blocking::of(c).waiting_keys()))
    }));
    core.call(owner, NO_TXN, vec![job])
        .await
        .pop()
        .and_then(Out::into_value::<usize>)
        .unwrap_or(usize::MAX)
}

async fn until_waiting(core: &Rc<Core>, owner: usize, n: usize) {
    for _ in 0..20_000 {
        if waiting_on(core, owner).await == n {
            return;
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    panic!("never {n} waiters on core {owner}");
}

fn spawn_block(core: &Rc<Core>, id: u64, words: &[&str]) -> glommio::task::JoinHandle<Reply> {
    let form = parse(&args(words)).expect("a blocking command");
    let core = core.clone();
    glommio::spawn_local(async move { block(&core, id, &form, || (), || true).await }).detach()
}

fn pair(key: &str, v: &str) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::copy_from_slice(key.as_bytes())),
        Reply::Bulk(Bytes::copy_from_slice(v.as_bytes())),
    ])
}

#[test]
fn waiters_of_another_core_are_woken_in_order_and_leave_no_trace() {
    run_test(2, setup, |core: Rc<Core>| async move {
        let k = key_of(&core, 1);
        let first = spawn_block(&core, 1, &["BLPOP", &k, "0"]);
        until_waiting(&core, 1, 1).await;
        let second = spawn_block(&core, 2, &["BRPOP", &k, "0"]);
        until_waiting(&core, 1, 2).await;
        assert_eq!(cmd(&core, &["RPUSH", &k, "a", "b"]).await, Reply::Int(2));
        assert_eq!(first.await, Some(pair(&k, "a")));
        assert_eq!(second.await, Some(pair(&k, "b")));
        until_waiting(&core, 1, 0).await;
        assert_eq!(Blocking::of(&core).blocked(), 0);
    })
    .unwrap();
}

#[test]
fn timeouts_and_interrupts_pop_nothing() {
    run_test(2, setup, |core: Rc<Core>| async move {
        let k = key_of(&core, 1);
        let timed = spawn_block(&core, 7, &["BLPOP", &k, "0.05"]);
        assert_eq!(timed.await, Some(Reply::NilArray));
        let waiting = spawn_block(&core, 8, &["BLMOVE", &k, "dst", "LEFT", "LEFT", "0"]);
        until_waiting(&core, 1, 1).await;
        assert!(Blocking::of(&core).interrupt(8, Interrupt::Hangup));
        assert_eq!(waiting.await, Some(Reply::NilArray));
        until_waiting(&core, 1, 0).await;
        assert!(!Blocking::of(&core).interrupt(8, Interrupt::Error));
        assert_eq!(cmd(&core, &["RPUSH", &k, "stays"]).await, Reply::Int(1));
        assert_eq!(cmd(&core, &["LLEN", &k]).await, Reply::Int(1));
        let unblocked = spawn_block(&core, 9, &["BZPOPMIN", "z", "0"]);
        until_waiting(&core, core.router.core_of(b"z"), 1).await;
        assert!(Blocking::of(&core).interrupt(9, Interrupt::Error));
        assert_eq!(unblocked.await, Some(UNBLOCKED));
    })
    .unwrap();
}
