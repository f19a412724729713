//! Each core's `NetCore` on a real two-core runtime, with no sockets: a job sent to every
//! core reaches that core's own clients and counters, so what INFO, CLIENT KILL and CONFIG
//! RESETSTAT see is each core's, summed.

use std::rc::Rc;
use std::sync::Arc;

use baton_engine::command::{command_index, lookup, Conn};
use baton_engine::runtime::{self, Core};
use baton_engine::Reply;
use baton_net::admin;
use baton_net::client::{Client, ClientEntry, ConnInfo};
use baton_net::config::{ServerConfig, Shared};
use baton_net::netcore::NetCore;
use baton_net::session::{Protocol, Session};
use baton_net::stats::info;
use bytes::Bytes;

fn shared() -> Arc<Shared> {
    let config = ServerConfig {
        cores: 2,
        ..Default::default()
    };
    Arc::new(Shared::new(config, 0, 0, runtime::now_ms()))
}

fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn client(port: u16) -> Client {
    let peer = format!("127.0.0.1:{port}").parse().ok();
    ClientEntry::new(
        Session::new(Protocol::Redis, true),
        ConnInfo::new(9, peer, None, 0),
    )
}

fn row(name: &str) -> usize {
    command_index(lookup(name.as_bytes()).unwrap())
}

/// Runs `test` on core 0 of a two-core runtime with core 0's `NetCore` (not attached:
/// the test attaches it), while core 1, with its `NetCore` attached, answers the mesh.
fn on_two_cores<F, Fut>(test: F)
where
    F: Fn(Rc<NetCore>) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let shared = shared();
    let setup = move |core: &Rc<Core>| {
        let nc = Rc::new(NetCore::new(core.clone(), shared.clone(), None));
        if core.id != 0 {
            NetCore::attach(&nc);
        }
        nc
    };
    if let Err(failure) = runtime::run_test(2, setup, test) {
        panic!("{failure}");
    }
}

#[test]
fn every_core_job_reaches_that_cores_clients_and_counters() {
    on_two_cores(|nc| async move {
        // Core 0 has no NetCore attached yet: its share is the default.
        let ids = nc.on_every_core(|nc, _| nc.core.id + 100).await;
        assert_eq!(ids, vec![0, 101]);
        NetCore::attach(&nc);
        assert_eq!(
            nc.on_every_core(|nc, _| nc.core.id + 100).await,
            vec![100, 101]
        );

        // Counted where they ran: two GETs here, one SET on core 1 (a job there counts
        // into core 1's table, not the sender's).
        nc.stats.record(row("get"), 10, false);
        nc.stats.record(row("get"), 10, false);
        let set = row("set");
        nc.on_every_core(move |nc, _| {
            if nc.core.id == 1 {
                nc.stats.record(set, 5, true);
            }
        })
        .await;
        let processed = nc.on_every_core(|nc, _| nc.stats.processed()).await;
        assert_eq!(processed, vec![2, 1]);
        let text = info::info(&nc, &args("commandstats stats")).await;
        for want in [
            "total_commands_processed:3\r\n",
            "cmdstat_get:calls=2,",
            "cmdstat_set:calls=1,",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }

        // Clients: the caller here, two on core 1 (made there, as its loop would).
        let caller = client(5000);
        nc.clients.register(&caller);
        nc.on_every_core(|nc, _| {
            if nc.core.id == 1 {
                nc.clients.register(&client(5001));
                nc.clients.register(&client(5002));
            }
        })
        .await;
        assert_eq!(nc.on_every_core(|nc, _| nc.clients.len()).await, vec![1, 2]);
        let kill = args("CLIENT KILL ADDR 127.0.0.1:5001");
        let reply = admin::run_async(&nc, &caller, Conn::Client, &kill).await;
        assert_eq!(reply, Reply::Int(1));
        let marked = nc
            .on_every_core(|nc, _| {
                let mut killed = Vec::new();
                nc.clients.each(|c| killed.push(c.conn.killed.get()));
                (killed, nc.clients.take_kill_request())
            })
            .await;
        assert_eq!(
            marked,
            vec![(vec![false], false), (vec![true, false], true)],
            "core 1 marked its client and asked its own loop to close it"
        );

        // CONFIG RESETSTAT zeroes every core's counters.
        let reset = args("CONFIG RESETSTAT");
        let reply = admin::run_async(&nc, &caller, Conn::Config, &reset).await;
        assert_eq!(reply, Reply::Ok);
        assert_eq!(
            nc.on_every_core(|nc, _| nc.stats.processed()).await,
            vec![0, 0]
        );
    });
}
