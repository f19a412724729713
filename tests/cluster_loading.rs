//! CLUSTER SHARDS's `health loading`: a replica still in its first full sync is shown
//! `loading` (Redis's rule: a replica whose replication offset is still 0), on itself and,
//! through the propagated views, on the other nodes; `online` once it has synced.
//!
//! The first sync is held back by stopping the primary (SIGSTOP). Every server is a child
//! killed on drop (also on panic), the stopped one continued first; waits are bounded.

mod common;

use std::time::Duration;

use common::cluster::*;
use common::*;

const WAIT: Duration = Duration::from_secs(40);

fn short_timeout_node(config_file: &str) -> Server {
    timeout_node(config_file, 1000, false, None)
}

/// Continues a stopped server when dropped (before the servers are).
struct Continue(i32);

impl Drop for Continue {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// `(health, replication-offset)` of node `id` in `s`'s CLUSTER SHARDS.
fn shard_entry(s: &Server, id: &str) -> Option<(String, i64)> {
    let shards = q(&mut s.redis(), "CLUSTER SHARDS");
    as_array(&shards).iter().find_map(|shard| {
        as_array(&field(shard, "nodes")).iter().find_map(|n| {
            (as_str(&field(n, "id")) == id).then(|| {
                (
                    as_str(&field(n, "health")),
                    as_int(&field(n, "replication-offset")),
                )
            })
        })
    })
}

#[test]
fn a_replica_in_its_first_sync_is_loading_then_online() {
    let dir = TempDir::new("loading");
    let mut nodes: Vec<Server> = (0..4)
        .map(|i| short_timeout_node(&dir.file(&format!("n{i}.conf"))))
        .collect();
    create_by_hand(&nodes[..3]);
    assert!(
        eventually(WAIT, || agree(&nodes[..3])),
        "{:#?}",
        all_nodes(&nodes[..3])
    );
    let (a_id, r_id) = (myid(&nodes[0]), myid(&nodes[3]));
    let key = key_on(0);
    assert_eq!(run(&mut nodes[0].redis(), &["SET", &key, "v"]), ok());

    // The primary stops; the new node meets b, learns of a from b's view, and is made
    // a's replica: it cannot sync while a is stopped.
    nodes[0].signal(libc::SIGSTOP);
    let cont = Continue(nodes[0].pid());
    let mut rc = nodes[3].redis();
    assert_eq!(
        q(
            &mut rc,
            &format!("CLUSTER MEET 127.0.0.1 {}", nodes[1].port)
        ),
        ok()
    );
    assert!(eventually(WAIT, || as_str(&q(
        &mut nodes[3].redis(),
        "CLUSTER NODES"
    ))
    .contains(&a_id)));
    assert_eq!(q(&mut rc, &format!("CLUSTER REPLICATE {a_id}")), ok());
    assert_eq!(
        shard_entry(&nodes[3], &r_id),
        Some(("loading".to_string(), 0))
    );
    assert!(
        eventually(WAIT, || shard_entry(&nodes[1], &r_id)
            == Some(("loading".to_string(), 0))),
        "b: {:?}",
        shard_entry(&nodes[1], &r_id)
    );

    // The primary runs again: the replica syncs and is online everywhere.
    drop(cont);
    assert!(
        eventually(WAIT, || shard_entry(&nodes[3], &r_id)
            .is_some_and(|(h, _)| h == "online")),
        "r: {:?}",
        shard_entry(&nodes[3], &r_id)
    );
    assert_eq!(q(&mut rc, "READONLY"), ok());
    assert!(eventually(WAIT, || run(&mut rc, &["GET", &key]) == bulk("v")));
    assert!(
        eventually(WAIT, || shard_entry(&nodes[1], &r_id)
            .is_some_and(|(h, _)| h == "online")),
        "b: {:?}",
        shard_entry(&nodes[1], &r_id)
    );
    let _ = nodes[0].wait_exit(Duration::ZERO);
}
