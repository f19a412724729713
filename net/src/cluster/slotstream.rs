//! The data path of one CLUSTER MIGRATESLOTS job ([`super::slotmove`]): a slot range's
//! keys streamed to the target as a snapshot walk plus a catch-up of the keys written
//! meanwhile, then a short fence of the range for the tail and the hand-over.
//!
//! ```text
//!  source (the job's core; every step on each core is one job, atomic there)   target
//!  ─────────────────────────────────────────────────────────────────────────   ───────────
//!  every core: tap on (the write path notes each key of the range it
//!    changes: writes, expiry, eviction; see baton_engine::shard::tap)
//!  walk: every core scans its slab from a cursor, up to WALK_SCAN
//!    entries per job, and reads the range's keys (no fence)
//!    RESTORE-ASKING k ttl payload REPLACE, pipelined, acknowledged ──────────►  stored
//!  catch-up: every core takes up to CHUNK_KEYS noted keys and reads
//!    each one as it is now: present ─► RESTORE-ASKING ... REPLACE ───────────►  stored
//!                           absent  ─► ASKING + DEL k ───────────────────────►  deleted
//!    until a pass finds few keys (or CATCHUP_MS passed)
//!  fence: every core fences the whole range (commands on its keys wait)
//!  tail: catch-up passes until no core has a noted key ──────────────────────►  stored
//!  CLUSTER BATON-SLOTS NODE <target> <ranges> ───────────────────────────────►  owner,
//!  here: slots assigned to the target, markers gone                              epoch
//!  every core: installs the new view, tap off, fence lifted (waiting              bumped
//!    commands now get -MOVED)
//!  every core: deletes the range's keys in chunks
//! ```
//!
//! Why the target ends with every key as it is here: the tap is on before the walk
//! starts, so a key the walk reads was read after every change made before the tap, and
//! any change after the tap notes the key. A key's last send therefore carries its value
//! as of the last change, or it is noted and sent again. Sends go over one connection,
//! in the order they were read, so a later read of a key always lands after an earlier
//! one. The walk visits every key present from its first step to its last exactly once
//! (a key keeps its slab position for life, [`baton_engine::Store::scan`]); a key created
//! meanwhile is noted. Under the fence no command changes a key of the range, so once no
//! core has a noted key the target holds exactly what this node holds.
//!
//! The tap keeps key names, not effects: a catch-up sends a changed key's whole value,
//! read when it is sent, so every effect kind (a list push, a hash field delete, a
//! RENAME that changed the type, an expiry) is covered by one rule and nothing is
//! replayed on the target; a key written many times between two passes is sent once.
//!
//! Until the hand-over this node serves every key of the range as before: the slots show
//! as migrating in CLUSTER NODES, but no command is answered `-ASK` (the routing view
//! leaves out slots in [`super::state::State::streaming`]), so no client writes to the
//! target meanwhile, and the target's copies are seen by no one.
//!
//! Memory is bounded: a walk or catch-up step reads at most [`CHUNK_KEYS`] keys and about
//! [`CHUNK_BYTES`] of payload per core (a key past that is noted for the catch-up), and
//! a tap notes at most [`DIRTY_LIMIT`] keys per core; past that the job fails.
//!
//! A failed job (target unreachable or refusing, the tap overflowing, a flush of the
//! range) leaves this node the owner of every key it held: nothing was deleted here. The
//! markers are cleared here, and, if the target still answers, its copies are deleted
//! and its importing markers cleared too. One case stays ambiguous: the connection
//! breaking while the target handles `BATON-SLOTS NODE`. The target may then own the
//! slots (it bumped its epoch, and gossip makes every node agree within a second), so its
//! copies are kept, and the fence here stays until its deadline ([`FENCE_MS`]), by which
//! the gossip has told this node who owns them: the waiting commands then run here or get
//! `-MOVED`.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use baton_engine::commands::dump::encode_copy;
use baton_engine::exec::{fence, with_every_core};
use baton_engine::runtime::{now_ms, Core};
use baton_engine::shard::tap::SlotSet;
use baton_engine::Shard;
use bytes::Bytes;

use super::Cluster;
use crate::netcore::NetCore;
use crate::repl::link::{call, dial, encode_command, read_reply, Resp};

/// Connect and read/write timeout towards the target.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most keys one core reads in one step.
pub const CHUNK_KEYS: usize = 1024;
/// About the most payload bytes one core reads in one step.
pub const CHUNK_BYTES: usize = 4 << 20;
/// Most slab entries one walk step looks at per core (keys of other slots included).
const WALK_SCAN: usize = 16 * 1024;
/// Slab entries looked at between two checks of how many keys a walk step has.
const SCAN_BATCH: usize = 128;
/// Most keys one core's tap notes between two catch-up steps.
pub const DIRTY_LIMIT: usize = 1 << 20;
/// A catch-up pass that sends at most this many keys (all cores) ends the catch-up.
const SMALL_PASS: usize = 256;
/// How long catch-up passes may run before the range is fenced anyway.
const CATCHUP_MS: u64 = 10_000;
/// How long the hand-over's fence may live: the target's timeout plus the fence margin.
const FENCE_MS: u64 = 10_000 + fence::MARGIN_MS;

/// One key as a step read it: its value to store, or its absence.
enum Item {
    Put {
        key: Bytes,
        ttl: u64,
        payload: Vec<u8>,
    },
    Del(Bytes),
}

/// What one core's step read, and what its tap says.
#[derive(Default)]
struct Step {
    items: Vec<Item>,
    /// The walk's next cursor on this core (`None`: the walk is complete there).
    cursor: Option<u64>,
    overflowed: bool,
    flushed: bool,
}

/// Reads `key` as it is now: its value, or its absence.
fn read(shard: &mut Shard, key: Bytes, now: u64) -> (Item, usize) {
    let cas = shard.lookup(&key, now).map_or(0, |e| e.cas());
    match shard.copy_item(&key, now) {
        Some(copy) => {
            let ttl = match copy.expire_at {
                0 => 0,
                at => at.saturating_sub(now).max(1),
            };
            let payload = encode_copy(&copy, cas);
            let bytes = key.len() + payload.len();
            (Item::Put { key, ttl, payload }, bytes)
        }
        None => (Item::Del(key), 0),
    }
}

/// A walk step on one core for job `id`: slab entries from `cursor` (0 starts the walk)
/// until [`CHUNK_KEYS`] keys of `slots` were found or [`WALK_SCAN`] entries looked at;
/// each key found is read, or noted for the catch-up once [`CHUNK_BYTES`] were read.
fn walk_step(c: &Core, id: u64, slots: &SlotSet, mut cursor: u64, now: u64) -> Step {
    let mut shard = c.shard.borrow_mut();
    let mut keys = Vec::new();
    let mut looked = 0;
    loop {
        cursor = shard.store().scan(cursor, SCAN_BATCH, |k, e| {
            if !e.is_expired(now) && slots.has_key(k) {
                keys.push(Bytes::copy_from_slice(k));
            }
        });
        looked += SCAN_BATCH;
        if cursor == 0 || keys.len() >= CHUNK_KEYS || looked >= WALK_SCAN {
            break;
        }
    }
    Step {
        items: read_chunk(&mut shard, id, keys, now),
        cursor: (cursor != 0).then_some(cursor),
        ..Step::default()
    }
}

/// Reads `keys` as they are now, up to about [`CHUNK_BYTES`]; the keys past that are
/// noted again for a later step.
fn read_chunk(shard: &mut Shard, id: u64, keys: Vec<Bytes>, now: u64) -> Vec<Item> {
    let (mut items, mut bytes) = (Vec::with_capacity(keys.len()), 0);
    for key in keys {
        if bytes >= CHUNK_BYTES {
            shard.tap_note(id, &key);
            continue;
        }
        let (item, b) = read(shard, key, now);
        bytes += b;
        items.push(item);
    }
    items
}

/// A catch-up step on one core: takes up to [`CHUNK_KEYS`] noted keys and reads each as
/// it is now (a key past [`CHUNK_BYTES`] is noted again).
fn catch_up_step(c: &Core, id: u64, now: u64) -> Step {
    let mut shard = c.shard.borrow_mut();
    let Some(drained) = shard.tap_drain(id, CHUNK_KEYS) else {
        return Step::default();
    };
    Step {
        items: read_chunk(&mut shard, id, drained.keys, now),
        cursor: None,
        overflowed: drained.overflowed,
        flushed: drained.flushed,
    }
}

/// Sends the steps' items to the target, acknowledged; returns how many keys went.
async fn send(link: &Link, steps: &[Step]) -> Result<usize, String> {
    let (commands, keys) = encode(steps);
    if !commands.is_empty() {
        link.all_ok(commands).await?;
    }
    Ok(keys)
}

/// The commands that store the steps' items at the target, and how many keys they name.
fn encode(steps: &[Step]) -> (Vec<Vec<u8>>, usize) {
    let mut commands = Vec::new();
    let mut keys = 0;
    for item in steps.iter().flat_map(|s| &s.items) {
        keys += 1;
        match item {
            Item::Put { key, ttl, payload } => {
                let ttl = ttl.to_string();
                commands.push(encode_command(&[
                    &b"RESTORE-ASKING"[..],
                    key,
                    ttl.as_bytes(),
                    payload,
                    b"REPLACE",
                ]));
            }
            Item::Del(key) => {
                commands.push(encode_command(&["ASKING"]));
                commands.push(encode_command(&[&b"DEL"[..], key]));
            }
        }
    }
    (commands, keys)
}

/// One walk step's commands handed to the target, not yet acknowledged: how many
/// commands and keys.
struct InFlight {
    sent: bool,
    keys: usize,
}

impl InFlight {
    /// Waits for the target's replies; fails on an error reply.
    async fn land(self, link: &Link) -> Result<usize, String> {
        first_error(link.answer(self.sent).await?)?;
        Ok(self.keys)
    }
}

/// Fails on what a step's tap reported.
fn check(steps: &[Step]) -> Result<(), String> {
    if steps.iter().any(|s| s.flushed) {
        return Err("the slots were flushed during the move".into());
    }
    if steps.iter().any(|s| s.overflowed) {
        return Err(format!(
            "more than {DIRTY_LIMIT} keys of the slots changed on one core between two \
             catch-up steps"
        ));
    }
    Ok(())
}

/// One catch-up pass: steps on every core until none has a noted key (or, unfenced, until
/// a pass of steps sent little); returns how many keys the pass sent.
async fn catch_up(core: &Rc<Core>, link: &Link, id: u64) -> Result<usize, String> {
    let steps = with_every_core(core, move |c, now| catch_up_step(c, id, now)).await;
    check(&steps)?;
    send(link, &steps).await
}

/// One job: the stream, then the hand-over, then the deletes here. Returns the number of
/// keys handed over.
pub(super) async fn run(
    core: &Rc<Core>,
    cluster: &Cluster,
    link: &Link,
    name: &str,
    slots: &[u16],
    target: &str,
) -> Result<u64, String> {
    let p = &Job {
        name,
        slots,
        target,
    };
    let slots = Arc::new(SlotSet::of(p.slots));
    let id = core.new_txn();
    {
        let slots = slots.clone();
        with_every_core(core, move |c, _| {
            c.shard
                .borrow_mut()
                .start_tap(id, (*slots).clone(), DIRTY_LIMIT)
        })
        .await;
    }
    let streamed = stream(core, cluster, link, p, &slots, id).await;
    // After CLUSTER BATON-SLOTS NODE was sent the target may own the slots (its reply
    // may be what got lost): its copies are then the data, and are never deleted.
    let (handed, sent_node) = match streamed {
        Ok(()) => (hand_over(cluster, link, p).await, true),
        Err(e) => (Err(e), false),
    };
    // Whatever happened: every core sees the view (the new owner, or the markers gone),
    // then no tap and no fence of this job is left (parked commands go on, -MOVED).
    if handed.is_err() {
        let _ = cluster.change(|st| {
            for s in p.slots {
                st.streaming.remove(s);
                st.migrating.remove(s);
            }
            Ok(())
        });
    }
    // The ambiguous hand-over keeps the fence to its deadline, by which gossip has told
    // this node who owns the slots.
    let lift = !(sent_node && handed.is_err());
    with_every_core(core, move |c, now| {
        if let Some(nc) = NetCore::of(c) {
            nc.sync_cluster();
        }
        c.shard.borrow_mut().stop_tap(id);
        if lift {
            fence::lift(c, id, None, now);
        }
    })
    .await;
    if let Err(e) = handed {
        if !sent_node {
            forget_copies(link, p.slots).await;
        }
        return Err(e);
    }
    Ok(delete_here(core, p.slots).await)
}

/// What a job moves: its name, slots and target node.
struct Job<'a> {
    name: &'a str,
    slots: &'a [u16],
    target: &'a str,
}

/// The walk, the catch-up and the fenced tail.
async fn stream(
    core: &Rc<Core>,
    cluster: &Cluster,
    link: &Link,
    p: &Job<'_>,
    slots: &Arc<SlotSet>,
    id: u64,
) -> Result<(), String> {
    // The walk: per core, a cursor (0 starts it) until the core's walk is complete. The
    // target stores one step while the cores read the next (at most two in memory).
    let mut cursors: Vec<Option<u64>> = vec![Some(0); core.cores];
    let mut flying: Option<InFlight> = None;
    while cursors.iter().any(Option::is_some) {
        let at: Arc<[Option<u64>]> = cursors.clone().into();
        let slots = slots.clone();
        let steps = with_every_core(core, move |c, now| match at[c.id] {
            Some(cursor) => walk_step(c, id, &slots, cursor, now),
            None => Step::default(),
        })
        .await;
        for (i, s) in steps.iter().enumerate() {
            cursors[i] = s.cursor;
        }
        if let Some(f) = flying.take() {
            let sent = f.land(link).await?;
            cluster
                .slot_jobs
                .update(p.name, |j| j.keys_moved += sent as u64);
        }
        canceled(cluster, p)?;
        let (commands, keys) = encode(&steps);
        if keys != 0 {
            let n = commands.len();
            flying = Some(InFlight {
                sent: link.submit(commands.concat(), n),
                keys,
            });
        }
    }
    if let Some(f) = flying.take() {
        let sent = f.land(link).await?;
        cluster
            .slot_jobs
            .update(p.name, |j| j.keys_moved += sent as u64);
    }
    // The catch-up, unfenced, until a pass is small.
    let started = now_ms();
    while catch_up(core, link, id).await? > SMALL_PASS && now_ms() < started + CATCHUP_MS {
        canceled(cluster, p)?;
    }
    canceled(cluster, p)?;
    // The fence: every core (jobs' slot sets are disjoint, so no job waits for another).
    let fenced_at = now_ms();
    let deadline = fenced_at + FENCE_MS;
    let set = slots.clone();
    with_every_core(core, move |c, _| {
        fence::fence_slots(c, set.clone(), id, deadline)
    })
    .await;
    // The tail: until no core has a noted key.
    loop {
        let steps = with_every_core(core, move |c, now| catch_up_step(c, id, now)).await;
        check(&steps)?;
        if send(link, &steps).await? == 0 {
            return Ok(());
        }
        if now_ms() > fenced_at + FENCE_MS - fence::MARGIN_MS {
            return Err("the tail did not end before the fence's deadline".into());
        }
    }
}

/// Fails once CLUSTER CANCELSLOTMIGRATIONS asked for it (checked up to the fence).
fn canceled(cluster: &Cluster, p: &Job<'_>) -> Result<(), String> {
    match cluster.slot_jobs.canceled(p.name) {
        true => Err("Canceled by user".into()),
        false => Ok(()),
    }
}

/// Gives the slots to the target, there first, then here.
async fn hand_over(cluster: &Cluster, link: &Link, p: &Job<'_>) -> Result<(), String> {
    // The target first: from then on it owns the slots (and has the highest epoch). Here
    // the fence still holds every command on the range until this node's view names it.
    link.all_ok(setslots(p.slots, "NODE", p.target)).await?;
    cluster
        .change(|st| {
            for &s in p.slots.iter() {
                st.streaming.remove(&s);
                st.migrating.remove(&s);
                st.importing.remove(&s);
                st.assign(s, p.target);
            }
            Ok(())
        })
        .map_err(|e| format!("cannot hand the slots over here: {e:?}"))
}

/// Deletes every key of `slots` here, [`CHUNK_KEYS`] per core at a time; returns how
/// many went.
async fn delete_here(core: &Rc<Core>, slots: &[u16]) -> u64 {
    let slots: Arc<[u16]> = slots.into();
    let mut deleted = 0u64;
    loop {
        let slots = slots.clone();
        let n: usize = with_every_core(core, move |c, now| {
            let mut shard = c.shard.borrow_mut();
            let mut n = 0;
            for &s in slots.iter() {
                if n >= CHUNK_KEYS {
                    break;
                }
                if shard.store().count_in_slot(s) == 0 {
                    continue;
                }
                let keys: Vec<Bytes> = shard
                    .store()
                    .keys_in_slot(s, CHUNK_KEYS - n)
                    .into_iter()
                    .map(Bytes::copy_from_slice)
                    .collect();
                for k in keys {
                    // An expired key goes too (its reclaim counts as the delete).
                    shard.delete(&k, now);
                    n += 1;
                }
            }
            n
        })
        .await
        .into_iter()
        .sum();
        if n == 0 {
            return deleted;
        }
        deleted += n as u64;
    }
}

/// After a failure: deletes the target's copies of `slots` and clears its importing
/// markers, if it still answers (best effort: a target that died lost them anyway).
async fn forget_copies(link: &Link, slots: &[u16]) {
    for _ in 0..64 {
        let asks: Vec<Vec<u8>> = slots
            .iter()
            .map(|s| encode_command(&["CLUSTER", "GETKEYSINSLOT", &s.to_string(), "1000"]))
            .collect();
        let Ok(replies) = link.call(asks.concat(), asks.len()).await else {
            return;
        };
        let mut dels = Vec::new();
        for r in replies {
            if let Resp::Array(keys) = r {
                for k in keys {
                    if let Resp::Bulk(k) = k {
                        dels.push(encode_command(&["ASKING"]));
                        dels.push(encode_command(&[&b"DEL"[..], &k]));
                    }
                }
            }
        }
        if dels.is_empty() {
            break;
        }
        if link.all_ok(dels).await.is_err() {
            return;
        }
    }
    let _ = link.all_ok(setslots(slots, "STABLE", "-")).await;
}

/// A pipelined connection to the target, driven by a helper thread (blocking sockets)
/// while the core keeps serving: each request is a buffer of commands and how many
/// replies to read.
pub struct Link {
    tx: Option<mpsc::Sender<(Vec<u8>, usize)>>,
    rx: mpsc::Receiver<Result<Vec<Resp>, String>>,
    core: Rc<Core>,
}

impl Link {
    /// Connects to `host:port` on a helper thread, authenticating with `auth` (this
    /// node's `masterauth`, as the gossip does) when set.
    pub(super) fn open(
        core: Rc<Core>,
        host: String,
        port: u16,
        auth: Option<String>,
    ) -> Result<Link, String> {
        let (tx, requests) = mpsc::channel::<(Vec<u8>, usize)>();
        let (answers, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("baton-slotmove".into())
            .spawn(move || {
                let mut s: BufReader<TcpStream> = match dial(&host, port, IO_TIMEOUT, IO_TIMEOUT) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = answers.send(Err(format!("cannot connect to {host}:{port}: {e}")));
                        return;
                    }
                };
                if let Some(pw) = auth {
                    if let Err(e) = call(&mut s, &["AUTH", &pw]) {
                        let _ = answers.send(Err(format!("cannot authenticate: {e}")));
                        return;
                    }
                }
                while let Ok((out, n)) = requests.recv() {
                    let answer = exchange(&mut s, &out, n);
                    let failed = answer.is_err();
                    if answers.send(answer).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(Link {
            tx: Some(tx),
            rx,
            core,
        })
    }

    /// Sends `out` (`n` commands) and waits for their `n` replies.
    pub(super) async fn call(&self, out: Vec<u8>, n: usize) -> Result<Vec<Resp>, String> {
        let sent = self.submit(out, n);
        self.answer(sent).await
    }

    /// Hands `out` (`n` commands) to the helper thread without waiting; false when the
    /// thread is gone. Its replies come with [`Link::answer`], in order.
    fn submit(&self, out: Vec<u8>, n: usize) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send((out, n)).is_ok())
    }

    /// The replies of the oldest submitted request (`sent`: whether it was handed over).
    async fn answer(&self, sent: bool) -> Result<Vec<Resp>, String> {
        loop {
            match self.rx.try_recv() {
                Ok(answer) => return answer,
                Err(mpsc::TryRecvError::Empty) => {
                    self.core.timers.sleep_until(now_ms() + 1).await;
                }
                Err(mpsc::TryRecvError::Disconnected) if !sent => {
                    return Err("the connection to the target is closed".into())
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err("the connection to the target broke".into())
                }
            }
        }
    }

    /// Sends commands and fails on the first error reply.
    pub(super) async fn all_ok(&self, commands: Vec<Vec<u8>>) -> Result<(), String> {
        let n = commands.len();
        first_error(self.call(commands.concat(), n).await?)
    }
}

/// Fails on the first error reply.
fn first_error(replies: Vec<Resp>) -> Result<(), String> {
    match replies.into_iter().find_map(|r| match r {
        Resp::Error(e) => Some(e),
        _ => None,
    }) {
        Some(e) => Err(format!("Target instance replied with error: {e}")),
        None => Ok(()),
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The helper thread ends when it finds the channel closed.
        self.tx.take();
    }
}

/// Writes `out` and reads `n` replies.
fn exchange(s: &mut BufReader<TcpStream>, out: &[u8], n: usize) -> Result<Vec<Resp>, String> {
    s.get_mut()
        .write_all(out)
        .map_err(|e| format!("error writing to the target: {e}"))?;
    (0..n)
        .map(|_| read_reply(s, 0).map_err(|e| format!("error reading from the target: {e}")))
        .collect()
}

/// `CLUSTER BATON-SLOTS <action> <id> <start> <end> ...` for `slots`, as runs.
pub(super) fn setslots(slots: &[u16], action: &str, id: &str) -> Vec<Vec<u8>> {
    let mut args = vec![
        "CLUSTER".to_string(),
        "BATON-SLOTS".into(),
        action.into(),
        id.into(),
    ];
    for (a, b) in runs(slots) {
        args.push(a.to_string());
        args.push(b.to_string());
    }
    vec![encode_command(&args)]
}

/// `slots` (ascending) as inclusive runs.
pub(super) fn runs(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some((_, z)) if *z + 1 == s => *z = s,
            _ => out.push((s, s)),
        }
    }
    out
}
