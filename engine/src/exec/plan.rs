//! Planning: where and how one checked command runs, and how the replies of a command
//! that ran on several cores become one.
//!
//! The caller (a connection) has looked the command up, checked its arity and the
//! client's auth, and answered connection commands itself; everything else comes here.

use baton_ring::{Router, Target};
use bytes::Bytes;

use crate::command::{CommandSpec, Merge, Route};
use crate::reply::{errors, Reply};
use crate::runtime::{now_ms, Job};

/// Post-processing of a single-core reply.
#[derive(Debug, Clone, Copy)]
pub enum Post {
    None,
    /// Turn a shard's SCAN cursor into the global cursor (shard cursor << CORE_BITS | core).
    Scan {
        core: usize,
        cores: usize,
    },
}

/// Where and how one command runs.
pub enum Plan {
    /// Answered without running on any shard, but counted as run (an MSET with an odd
    /// argument count, a SCAN cursor of another server): Redis fails these inside the
    /// command. The arguments come back for the statistics and the slow log.
    Done(Reply, Vec<Bytes>),
    /// Refused before running (a cluster redirect or CROSSSLOT).
    Refused(Reply),
    /// Runs on one core.
    Run {
        core: usize,
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
        post: Post,
    },
    /// Split over several cores; `order[i]` = (part, index in part) for MGET.
    Split {
        spec: &'static CommandSpec,
        merge: Merge,
        parts: Vec<(usize, Job)>,
        order: Vec<(u32, u32)>,
    },
    /// A multi-key command whose keys live on several cores: a cross-core transaction
    /// ([`super::txn`]) that must run alone, after everything before it.
    Txn(&'static CommandSpec, Vec<Bytes>),
    /// Cluster: a command naming several keys of a slot that is migrating away, or being
    /// imported here after ASKING. Which of its keys are here decides between running it,
    /// `-ASK` and `-TRYAGAIN` ([`super::multi::run_open`]), under the locks of their cores.
    Open {
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
        asking: bool,
    },
}

/// Redis's answer to a multi-key command on an open slot when only some of its keys are
/// here (or, importing, any is missing).
pub const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
/// Redis's refusal of every key while the cluster is down for this node.
pub const CLUSTER_DOWN: &str = "CLUSTERDOWN The cluster is down";

/// Whether a command that passed [`redirect`] names several keys of a slot that is open
/// here: migrating away, or importing for a client that sent ASKING. (Redis's
/// getNodeByQuery: one key, or the same key twice, is not "multiple keys".)
fn is_open(router: &Router, spec: &CommandSpec, args: &[Bytes], asking: bool) -> bool {
    let Some(view) = router.view() else {
        return false;
    };
    if view.migrating.is_empty() && (!asking || view.importing.is_empty()) {
        return false;
    }
    let positions = spec.keys_in(args);
    let mut keys = positions.iter().map(|&i| &args[i][..]);
    let Some(first) = keys.next() else {
        return false;
    };
    if !keys.any(|k| k != first) {
        return false;
    }
    let s = baton_ring::slot(first);
    view.migrating.contains_key(&s) || (asking && view.importing.contains_key(&s))
}

/// What an open slot means for a command with several keys, once it is known how many
/// of them this node holds: `None` runs it, else the refusal (Redis's rules).
pub fn open_verdict(
    router: &Router,
    key: &[u8],
    asking: bool,
    held: usize,
    missing: usize,
) -> Option<Reply> {
    let view = router.view()?;
    let s = baton_ring::slot(key);
    if let Some(&node) = view.migrating.get(&s) {
        return match (held, missing) {
            (_, 0) => None,
            (0, _) => Some(Reply::error(format!("ASK {s} {}", view.addr(node)))),
            _ => Some(Reply::err(TRYAGAIN)),
        };
    }
    (asking && missing > 0 && view.importing.contains_key(&s)).then(|| Reply::err(TRYAGAIN))
}

/// Decides how a shard command (any route but [`Route::Connection`]) runs.
pub fn plan(router: &Router, spec: &'static CommandSpec, args: Vec<Bytes>) -> Plan {
    plan_asking(router, spec, args, false)
}

/// [`plan`] for a command that may follow ASKING (`asking`): in a cluster, a slot being
/// imported here is then served instead of redirected.
pub fn plan_asking(
    router: &Router,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
    asking: bool,
) -> Plan {
    if let Some(refused) = redirect(router, spec, &args, asking) {
        return Plan::Refused(refused);
    }
    if router.clustered() && is_open(router, spec, &args, asking) {
        return Plan::Open { spec, args, asking };
    }
    plan_here(router, spec, args)
}

/// [`plan_asking`] after the cluster's checks: how the command runs on this node.
pub fn plan_here(router: &Router, spec: &'static CommandSpec, args: Vec<Bytes>) -> Plan {
    let cores = router.cores();
    match spec.route {
        // OBJECT and MEMORY name their key second; their HELP names none and runs on any
        // core.
        Route::Key | Route::Connection(_) => Plan::Run {
            core: args
                .get(spec.first_key.max(1) as usize)
                .map_or(router.core(), |k| router.core_of(k)),
            spec,
            args,
            post: Post::None,
        },
        Route::MultiKey(merge) => {
            let step = spec.step.max(1) as usize;
            if step > 1 && !(args.len() - 1).is_multiple_of(step) {
                // Runs and fails, as Redis's MSET does with an odd argument count.
                return Plan::Done(errors::wrong_arity(spec.name), args);
            }
            split(router, spec, merge, args)
        }
        Route::AllCores(Merge::Scan) => match scan_cursor(&args[1], cores) {
            // A number this server never handed out (its core bits name no core, e.g.
            // after a restart with fewer cores): the walk is over, as Redis answers any
            // number rather than an error.
            None if std::str::from_utf8(&args[1]).is_ok_and(|c| c.parse::<u64>().is_ok()) => {
                Plan::Done(
                    Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]),
                    args,
                )
            }
            None => Plan::Done(Reply::err("ERR invalid cursor"), args),
            Some((core, shard_cursor)) => {
                let mut args = args;
                args[1] = Bytes::from(shard_cursor.to_string());
                Plan::Run {
                    core,
                    spec,
                    args,
                    post: Post::Scan { core, cores },
                }
            }
        },
        Route::AllCores(_) if cores == 1 => Plan::Run {
            core: 0,
            spec,
            args,
            post: Post::None,
        },
        Route::AllCores(merge) => Plan::Split {
            spec,
            merge,
            parts: (0..cores)
                .map(|c| (c, Job::Cmd(spec, args.clone())))
                .collect(),
            order: Vec::new(),
        },
        Route::Atomic(_) => {
            let keys = spec.keys_in(&args);
            let mut owners = keys.iter().map(|&i| router.core_of(&args[i]));
            let first = owners.next().unwrap_or(router.core());
            if owners.all(|c| c == first) {
                Plan::Run {
                    core: first,
                    spec,
                    args,
                    post: Post::None,
                }
            } else {
                Plan::Txn(spec, args)
            }
        }
    }
}

/// Runs a one-core command on its key's shard (`router` is that core's). In a cluster,
/// a key missing from a slot this node is migrating away is asked for at the node it goes
/// to (`-ASK slot ip:port`, Redis's rule), since MIGRATE may have moved it already.
pub fn execute(
    router: &Router,
    shard: &mut crate::Shard,
    spec: &CommandSpec,
    args: &[Bytes],
    now: u64,
) -> Reply {
    if router.clustered() {
        let first = spec.keys_in(args).first().copied();
        // Planned on another core with an older view: this core's may already name the
        // new owner (the slot changed hands in between), and then the key is not here.
        if let Some((slot, addr)) = first.and_then(|i| router.moved_away(&args[i])) {
            // A replica's READONLY read of its primary's slot passed the planner.
            if spec.has(crate::command::flags::WRITE) || !router.replica_serves(slot) {
                return Reply::error(format!("MOVED {slot} {addr}"));
            }
        }
        if let Some((slot, addr)) = first.and_then(|i| router.migrating(&args[i])) {
            let i = first.expect("a key");
            if !shard.exists(&args[i], now) {
                return Reply::error(format!("ASK {slot} {addr}"));
            }
        }
    }
    shard.execute(spec, args, now)
}

/// [`execute`] for GET, with the value in place ([`crate::Shard::execute_get`]). In a
/// cluster it is [`execute`] itself, whose checks may answer instead.
#[inline]
pub fn execute_get<'s>(
    router: &Router,
    shard: &'s mut crate::Shard,
    spec: &CommandSpec,
    args: &[Bytes],
    now: u64,
) -> Result<Option<&'s [u8]>, Reply> {
    if router.clustered() {
        return Err(execute(router, shard, spec, args, now));
    }
    shard.execute_get(&args[1], now)
}

/// The cluster's answer for a command whose keys this node does not serve.
#[inline]
pub fn redirect(
    router: &Router,
    spec: &CommandSpec,
    args: &[Bytes],
    asking: bool,
) -> Option<Reply> {
    if !router.clustered() {
        return None;
    }
    let positions = spec.keys_in(args);
    let keys = positions.iter().map(|&i| &args[i][..]);
    let addr = |node| {
        router
            .view()
            .map_or_else(String::new, |v| v.addr(node).to_string())
    };
    match router.route_keys_asking(keys, asking)? {
        Target::Core(_) => None,
        Target::CrossSlot => Some(Reply::err(
            "CROSSSLOT Keys in request don't hash to the same slot",
        )),
        Target::Unassigned { .. } => Some(Reply::err("CLUSTERDOWN Hash slot not served")),
        Target::Down => Some(Reply::err(CLUSTER_DOWN)),
        Target::Moved { slot, node } => Some(Reply::error(format!("MOVED {slot} {}", addr(node)))),
        Target::Ask { slot, node } => Some(Reply::error(format!("ASK {slot} {}", addr(node)))),
    }
}

/// A global SCAN cursor (shard cursor << CORE_BITS | core) split into core and shard
/// cursor; `None` when it is not a cursor of this server.
pub fn scan_cursor(arg: &[u8], cores: usize) -> Option<(usize, u64)> {
    let global = std::str::from_utf8(arg).ok()?.parse::<u64>().ok()?;
    let core = (global & (crate::MAX_CORES as u64 - 1)) as usize;
    (core < cores).then_some((core, global >> crate::CORE_BITS))
}

/// Splits a multi-key command by core (MGET, MSET, DEL, EXISTS, TOUCH, UNLINK).
fn split(router: &Router, spec: &'static CommandSpec, merge: Merge, args: Vec<Bytes>) -> Plan {
    let step = spec.step.max(1) as usize;
    let positions: Vec<usize> = spec.keys_in(&args);
    let owners: Vec<usize> = positions
        .iter()
        .map(|&i| router.core_of(&args[i]))
        .collect();
    if owners.windows(2).all(|w| w[0] == w[1]) {
        return Plan::Run {
            core: owners.first().copied().unwrap_or(router.core()),
            spec,
            args,
            post: Post::None,
        };
    }
    let mut part_of_core = vec![u32::MAX; router.cores()];
    let mut parts: Vec<(usize, Vec<Bytes>)> = Vec::new();
    let mut order = Vec::with_capacity(positions.len());
    for (&pos, &c) in positions.iter().zip(&owners) {
        if part_of_core[c] == u32::MAX {
            part_of_core[c] = parts.len() as u32;
            parts.push((c, vec![args[0].clone()]));
        }
        let part = &mut parts[part_of_core[c] as usize].1;
        order.push((part_of_core[c], ((part.len() - 1) / step) as u32));
        part.extend_from_slice(&args[pos..pos + step]);
    }
    Plan::Split {
        spec,
        merge,
        parts: parts
            .into_iter()
            .map(|(c, a)| (c, Job::Cmd(spec, a)))
            .collect(),
        order,
    }
}

/// Applies a [`Post`] to a shard's reply.
#[inline]
pub fn post_process(post: Post, reply: Reply) -> Reply {
    match post {
        Post::None => reply,
        _ => post_process_slow(post, reply),
    }
}

fn post_process_slow(post: Post, reply: Reply) -> Reply {
    match (post, reply) {
        (Post::Scan { core, cores }, Reply::Array(mut items)) if items.len() == 2 => {
            let shard_cursor = match &items[0] {
                Reply::Bulk(b) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0),
                _ => 0,
            };
            let global = if shard_cursor != 0 {
                (shard_cursor << crate::CORE_BITS) | core as u64
            } else if core + 1 < cores {
                core as u64 + 1
            } else {
                0
            };
            items[0] = Reply::Bulk(Bytes::from(global.to_string()));
            Reply::Array(items)
        }
        (_, reply) => reply,
    }
}

/// Merges per-core replies of a split command.
pub fn merge_replies(merge: Merge, replies: Vec<Reply>, order: &[(u32, u32)]) -> Reply {
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        return e.clone();
    }
    match merge {
        Merge::Sum => Reply::Int(
            replies
                .iter()
                .map(|r| if let Reply::Int(n) = r { *n } else { 0 })
                .sum(),
        ),
        Merge::Ok | Merge::Scan => Reply::Ok,
        Merge::Concat => {
            let mut all = Vec::new();
            for r in replies {
                if let Reply::Array(items) = r {
                    all.extend(items);
                }
            }
            Reply::Array(all)
        }
        Merge::Random => {
            let live: Vec<Reply> = replies
                .into_iter()
                .filter(|r| !matches!(r, Reply::Nil))
                .collect();
            if live.is_empty() {
                Reply::Nil
            } else {
                let pick = (now_ms() as usize ^ live.len().wrapping_mul(0x9E37)) % live.len();
                live.into_iter().nth(pick).unwrap_or(Reply::Nil)
            }
        }
        Merge::Array => {
            let mut parts: Vec<Vec<Option<Reply>>> = replies
                .into_iter()
                .map(|r| match r {
                    Reply::Array(items) => items.into_iter().map(Some).collect(),
                    _ => Vec::new(),
                })
                .collect();
            Reply::Array(
                order
                    .iter()
                    .map(|&(p, i)| {
                        parts
                            .get_mut(p as usize)
                            .and_then(|v| v.get_mut(i as usize))
                            .and_then(Option::take)
                            .unwrap_or(Reply::Nil)
                    })
                    .collect(),
            )
        }
    }
}

/// The arguments of a command that was split over cores, put back together from its
/// parts: keys (with their values) in request order, or the first part's arguments when
/// every core ran the same command.
pub fn joined_args(spec: &CommandSpec, parts: &[Vec<Bytes>], order: &[(u32, u32)]) -> Vec<Bytes> {
    if order.is_empty() {
        return parts.first().cloned().unwrap_or_default();
    }
    let step = spec.step.max(1) as usize;
    let mut args: Vec<Bytes> = parts
        .first()
        .and_then(|p| p.first())
        .cloned()
        .into_iter()
        .collect();
    for &(part, i) in order {
        let start = 1 + i as usize * step;
        if let Some(group) = parts
            .get(part as usize)
            .and_then(|p| p.get(start..start + step))
        {
            args.extend_from_slice(group);
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup;
    use crate::exec::args;

    fn cursor_of(reply: Reply) -> Bytes {
        match reply {
            Reply::Array(items) => match &items[0] {
                Reply::Bulk(b) => b.clone(),
                other => panic!("cursor is not a bulk: {other:?}"),
            },
            other => panic!("SCAN reply is not an array: {other:?}"),
        }
    }

    fn scan_reply(shard_cursor: &str) -> Reply {
        Reply::Array(vec![
            Reply::Bulk(Bytes::from(shard_cursor.to_string())),
            Reply::Array(Vec::new()),
        ])
    }

    #[test]
    fn scan_cursors_round_trip_for_cores_past_255() {
        let cores = 512;
        let global = cursor_of(post_process(
            Post::Scan { core: 300, cores },
            scan_reply("12345"),
        ));
        assert_eq!(scan_cursor(&global, cores), Some((300, 12345)));
        // A shard that is done hands the walk to the next core, from its start.
        let next = cursor_of(post_process(
            Post::Scan { core: 300, cores },
            scan_reply("0"),
        ));
        assert_eq!(scan_cursor(&next, cores), Some((301, 0)));
        let last = cursor_of(post_process(
            Post::Scan { core: 511, cores },
            scan_reply("0"),
        ));
        assert_eq!(&last[..], b"0");
        // A cursor naming a core this server does not run is refused.
        assert_eq!(scan_cursor(b"400", 256), None);
    }

    /// Two keys that live on different cores of a two-core server.
    fn apart(router: &Router) -> (String, String) {
        let a = "k0".to_string();
        let b = (1..)
            .map(|i| format!("k{i}"))
            .find(|k| router.core_of(k.as_bytes()) != router.core_of(a.as_bytes()))
            .expect("some key lands on the other core");
        (a, b)
    }

    #[test]
    fn plans_follow_the_router() {
        let r = Router::standalone(0, 2);
        let (a, b) = apart(&r);
        let get = lookup(b"get").unwrap();
        match plan(&r, get, args(&["GET", &b])) {
            Plan::Run { core, .. } => assert_eq!(core, r.core_of(b.as_bytes())),
            _ => panic!("GET runs on one core"),
        }
        let mget = lookup(b"mget").unwrap();
        match plan(&r, mget, args(&["MGET", &a, &b, &a])) {
            Plan::Split { parts, order, .. } => {
                assert_eq!(parts.len(), 2);
                assert_eq!(order, vec![(0, 0), (1, 0), (0, 1)]);
            }
            _ => panic!("MGET over two cores splits"),
        }
        let rename = lookup(b"rename").unwrap();
        assert!(matches!(
            plan(&r, rename, args(&["RENAME", &a, &b])),
            Plan::Txn(..)
        ));
        assert!(matches!(
            plan(&r, rename, args(&["RENAME", &a, &a])),
            Plan::Run { .. }
        ));
        let mset = lookup(b"mset").unwrap();
        assert!(matches!(
            plan(&r, mset, args(&["MSET", &a, "1", &b])),
            Plan::Done(Reply::Error(_), _)
        ));
        let dbsize = lookup(b"dbsize").unwrap();
        assert!(matches!(
            plan(&r, dbsize, args(&["DBSIZE"])),
            Plan::Split { .. }
        ));
    }

    #[test]
    fn a_cluster_node_refuses_keys_it_does_not_serve() {
        use baton_ring::{ClusterView, SlotTable};
        let mut table = SlotTable::single(2);
        table.assign(0..=0, baton_ring::UNASSIGNED);
        let r = Router::standalone(0, 1).with_cluster(ClusterView {
            me: 1,
            table,
            addrs: [(2, "10.0.0.2:7000".to_string())].into_iter().collect(),
            ..Default::default()
        });
        let get = lookup(b"get").unwrap();
        match plan(&r, get, args(&["GET", "foo"])) {
            Plan::Refused(Reply::Error(e)) => assert_eq!(&e[..], b"MOVED 12182 10.0.0.2:7000"),
            _ => panic!("another node's slot is redirected"),
        }
        let slot0 = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| baton_ring::slot(k.as_bytes()) == 0)
            .unwrap();
        match plan(&r, get, args(&["GET", &slot0])) {
            Plan::Refused(Reply::Error(e)) => {
                assert_eq!(&e[..], b"CLUSTERDOWN Hash slot not served")
            }
            _ => panic!("an unassigned slot is down"),
        }
        let mget = lookup(b"mget").unwrap();
        match plan(&r, mget, args(&["MGET", "foo", "bar"])) {
            Plan::Refused(Reply::Error(e)) => assert!(e.starts_with(b"CROSSSLOT")),
            _ => panic!("keys of two slots are refused"),
        }
    }

    #[test]
    fn split_arguments_join_back_in_request_order() {
        let mset = lookup(b"mset").unwrap();
        let parts = vec![
            args(&["MSET", "a", "1", "c", "3"]),
            args(&["MSET", "b", "2"]),
        ];
        let joined = joined_args(mset, &parts, &[(0, 0), (1, 0), (0, 1)]);
        assert_eq!(joined, args(&["MSET", "a", "1", "b", "2", "c", "3"]));
    }

    #[test]
    fn open_slots_plan_a_check_and_refuse_by_redis_rules() {
        use baton_ring::{slot, ClusterView, SlotTable};
        let foo = slot(b"foo");
        let bar = slot(b"bar");
        let mut view = ClusterView {
            me: 1,
            table: SlotTable::single(1),
            ..Default::default()
        };
        view.table.assign(bar..=bar, 2);
        view.migrating.insert(foo, 3);
        view.importing.insert(bar, 2);
        view.addrs.insert(3, "127.0.0.1:7003".into());
        let r = Router::standalone(0, 2).with_cluster(view);
        let mget = lookup(b"mget").unwrap();
        let open = |words: &[&str], asking| {
            matches!(
                plan_asking(&r, mget, args(words), asking),
                Plan::Open { .. }
            )
        };
        assert!(open(&["MGET", "{foo}a", "{foo}b"], false));
        assert!(!open(&["MGET", "{foo}a", "{foo}a"], false), "one key twice");
        assert!(
            !open(&["MGET", "{foo}a"], false),
            "one key: the shard decides"
        );
        assert!(!open(&["MGET", "x", "{x}y"], false), "a stable slot");
        assert!(open(&["MGET", "{bar}a", "{bar}b"], true));
        assert!(
            matches!(
                plan_asking(&r, mget, args(&["MGET", "{bar}a", "{bar}b"]), false),
                Plan::Refused(_)
            ),
            "importing without ASKING is MOVED"
        );
        let tryagain = Some(Reply::err(TRYAGAIN));
        assert_eq!(open_verdict(&r, b"foo", false, 2, 0), None);
        assert_eq!(
            open_verdict(&r, b"foo", false, 0, 2),
            Some(Reply::error(format!("ASK {foo} 127.0.0.1:7003")))
        );
        assert_eq!(open_verdict(&r, b"foo", false, 1, 1), tryagain);
        assert_eq!(open_verdict(&r, b"bar", true, 1, 1), tryagain);
        assert_eq!(open_verdict(&r, b"bar", true, 0, 2), tryagain);
        assert_eq!(open_verdict(&r, b"bar", true, 2, 0), None);
    }
}
