//! Failover under unmodified redis-sentinel 7: a Baton primary and a Baton replica, three
//! real `redis-server --sentinel` processes watching them; the primary is SIGKILLed and
//! the sentinels must promote the replica, which keeps every write a `WAIT 1` acknowledged
//! and takes writes. Then the old primary comes back on its port and the sentinels turn
//! it into a replica of the new one.
//!
//! What sentinel needs from Baton on the way (sentinel.c): INFO's `run_id` and
//! `# Replication` fields (`role`, `slaveN:ip=,port=,...`, `master_link_down_since_seconds`,
//! `slave_priority`, `slave_repl_offset`), PING, CLIENT SETNAME, PUBLISH/SUBSCRIBE on
//! `__sentinel__:hello` across cores, and the transactions it sends to reconfigure a node:
//! `MULTI; SLAVEOF NO ONE | SLAVEOF host port; CONFIG REWRITE; CLIENT KILL TYPE normal;
//! CLIENT KILL TYPE pubsub; EXEC` (so each node runs with a `--config` file).
//!
//! Known server gap (the test marked `#[ignore]` below): `CONFIG REWRITE` after
//! `SLAVEOF host port` does not write a `replicaof host port` line to the config file
//! (and the config file does not accept one), so a node sentinel turned into a replica
//! forgets it on restart; Redis persists it (sentinel.c, `sentinelSendSlaveOf`: "CONFIG
//! REWRITE ... so that the configuration is persisted").
//!
//! Skipped, with a note, when `redis-server` is not installed. Every child (Baton and the
//! sentinels) is killed when the test ends, panics included.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// How long the sentinels may take to see the replica and each other.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the failover may take once the primary is dead.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the sentinels may take to turn the returning old primary into a replica
/// (sentinel waits 4 hello periods, 8 s, after it sees the wrong role, and refreshes a
/// replica's INFO every 10 s).
const CONVERT_TIMEOUT: Duration = Duration::from_secs(40);
const SENTINELS: usize = 3;
const MASTER: &str = "mymaster";

fn redis_server_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A scratch directory for config files and logs; removed when the test passes, kept
/// (and named on stderr) when it fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("baton-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the test's files in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One `redis-server --sentinel`; SIGKILLed and reaped on drop.
struct Sentinel {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sentinel {
    /// Starts sentinel `i` monitoring `127.0.0.1:primary_port` as [`MASTER`] with a quorum
    /// of 2, on a free port (another one, a few times, when it could not listen there).
    fn start(dir: &Scratch, i: usize, primary_port: u16) -> Sentinel {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.file(&format!("sentinel-{i}.conf"));
            let log = dir.file(&format!("sentinel-{i}.log"));
            let _ = std::fs::remove_file(&log);
            std::fs::write(
                &conf,
                format!(
                    "port {port}\n\
                     bind 127.0.0.1\n\
                     dir {dir}\n\
                     logfile {log}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 5000\n\
                     sentinel parallel-syncs {MASTER} 1\n",
                    dir = dir.0.display(),
                    log = log.display(),
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server --sentinel");
            let mut s = Sentinel { child, port, log };
            let up = eventually(READY_TIMEOUT, || {
                matches!(s.child.try_wait(), Ok(Some(_)))
                    || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            match s.child.try_wait() {
                Ok(None) if up => return s,
                _ => failures.push(format!("port {port}: {}", s.log_text())),
            }
        }
        panic!("sentinel {i} did not start:\n{}", failures.join("\n"))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn con(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let con = client
            .get_connection_with_timeout(IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to sentinel {}: {e}", self.port));
        con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        con.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        con
    }

    /// `SENTINEL <what> mymaster` as one field map per entry.
    fn entries(&self, what: &str) -> Vec<Vec<(String, Value)>> {
        let v = run(&mut self.con(), &["SENTINEL", what, MASTER]);
        as_array(&v).iter().map(as_pairs).collect()
    }

    /// The ports of the replicas this sentinel knows, and whether each is up (no
    /// `s_down`/`disconnected` flag).
    fn replicas(&self) -> Vec<(u16, bool)> {
        self.entries("REPLICAS")
            .iter()
            .map(|e| {
                let get = |k: &str| {
                    e.iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, v)| as_str(v))
                        .unwrap_or_default()
                };
                let flags = get("flags");
                (
                    get("port").parse().unwrap_or(0),
                    !flags.contains("s_down") && !flags.contains("disconnected"),
                )
            })
            .collect()
    }

    fn other_sentinels(&self) -> usize {
        self.entries("SENTINELS").len()
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME mymaster` as (ip, port).
    fn master_addr(&self) -> Option<(String, u16)> {
        let v = run(
            &mut self.con(),
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER],
        );
        match v {
            Value::Array(items) if items.len() == 2 => {
                Some((as_str(&items[0]), as_str(&items[1]).parse().ok()?))
            }
            _ => None,
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the failure messages show: each sentinel's log and each Baton's stderr.
fn report(sentinels: &[Sentinel], servers: &[(&str, &Server)]) -> String {
    let mut out = String::new();
    for (i, s) in sentinels.iter().enumerate() {
        out.push_str(&format!(
            "\n--- sentinel {i} (port {}) log:\n{}",
            s.port,
            s.log_text()
        ));
    }
    for (name, s) in servers {
        out.push_str(&format!(
            "\n--- baton {name} (port {}) stderr:\n{}",
            s.port,
            s.stderr()
        ));
    }
    out
}

/// `ROLE`'s first element.
fn role(server: &Server) -> String {
    let v = q(&mut server.redis(), "ROLE");
    as_str(&as_array(&v)[0])
}

/// A Baton started with `--config <dir>/<name>.conf` (CONFIG REWRITE needs one), plus
/// `extra` flags.
fn baton(dir: &Scratch, name: &str, extra: &[&str]) -> (Server, PathBuf) {
    let conf = dir.file(&format!("{name}.conf"));
    if !conf.exists() {
        std::fs::write(&conf, format!("# baton {name}, for the sentinel test\n")).unwrap();
    }
    let mut args = vec!["--config", conf.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Server::builder(2).args(&args).start(), conf)
}

/// Starts a primary, a replica of it, and three sentinels, and waits until every
/// sentinel sees the replica up and the two other sentinels.
fn setup(dir: &Scratch) -> (Server, Server, Vec<Sentinel>) {
    let (primary, _) = baton(dir, "primary", &[]);
    let (replica, _) = baton(dir, "replica", &[]);
    assert_eq!(
        q(
            &mut replica.redis(),
            &format!("REPLICAOF 127.0.0.1 {}", primary.port)
        ),
        ok()
    );
    let linked = eventually(DISCOVERY_TIMEOUT, || {
        let v = q(&mut replica.redis(), "ROLE");
        as_str(&as_array(&v)[3]) == "connected"
    });
    assert!(
        linked,
        "the replica did not connect{}",
        report(&[], &[("primary", &primary), ("replica", &replica)])
    );

    let sentinels: Vec<Sentinel> = (0..SENTINELS)
        .map(|i| Sentinel::start(dir, i, primary.port))
        .collect();
    let discovered = eventually(DISCOVERY_TIMEOUT, || {
        sentinels.iter().all(|s| {
            s.replicas() == vec![(replica.port, true)] && s.other_sentinels() == SENTINELS - 1
        })
    });
    assert!(
        discovered,
        "the sentinels did not all see the replica and each other within {DISCOVERY_TIMEOUT:?}: {:?}{}",
        sentinels
            .iter()
            .map(|s| (s.replicas(), s.other_sentinels()))
            .collect::<Vec<_>>(),
        report(&sentinels, &[("primary", &primary), ("replica", &replica)])
    );
    (primary, replica, sentinels)
}

/// Writes `n` keys on `server`, each acknowledged by `WAIT 1` before the next.
fn write_acknowledged(server: &Server, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut con = server.redis();
    (0..n)
        .map(|i| {
            let (k, v) = (format!("{prefix}:{i}"), format!("value-{prefix}-{i}"));
            assert_eq!(run(&mut con, &["SET", &k, &v]), ok());
            assert_eq!(
                q(&mut con, "WAIT 1 5000"),
                int(1),
                "WAIT after SET {k}{}",
                server.stderr()
            );
            (k, v)
        })
        .collect()
}

#[test]
fn sentinel_promotes_the_replica_when_the_primary_dies() {
    if !redis_server_installed() {
        eprintln!("redis-server is not installed: skipping the sentinel failover test");
        return;
    }
    if !baton_only("Baton under redis-sentinel") {
        return;
    }
    let dir = Scratch::new("sentinel-failover");
    let (mut primary, replica, sentinels) = setup(&dir);
    let acked = write_acknowledged(&primary, "before", 100);

    primary.signal(libc::SIGKILL);
    assert!(primary.wait_exit(EXIT_TIMEOUT).is_some());
    let promoted = eventually(FAILOVER_TIMEOUT, || {
        sentinels
            .iter()
            .all(|s| s.master_addr() == Some(("127.0.0.1".into(), replica.port)))
    });
    assert!(
        promoted,
        "the sentinels did not all name the replica as the master within {FAILOVER_TIMEOUT:?}: {:?}{}",
        sentinels.iter().map(Sentinel::master_addr).collect::<Vec<_>>(),
        report(&sentinels, &[("primary", &primary), ("replica", &replica)])
    );

    assert_eq!(role(&replica), "master");
    let mut con = replica.redis();
    let info = as_str(&q(&mut con, "INFO replication"));
    assert!(info.contains("role:master\r\n"), "{info}");
    for (k, v) in &acked {
        assert_eq!(
            run(&mut con, &["GET", k]),
            bulk(v),
            "acknowledged key {k} after the failover"
        );
    }
    assert_eq!(q(&mut con, "SET after-failover yes"), ok());
    assert_eq!(q(&mut con, "GET after-failover"), bulk("yes"));
}

#[test]
fn sentinel_turns_the_returning_old_primary_into_a_replica() {
    if !redis_server_installed() {
        eprintln!("redis-server is not installed: skipping the sentinel failover test");
        return;
    }
    if !baton_only("Baton under redis-sentinel") {
        return;
    }
    let dir = Scratch::new("sentinel-return");
    let (mut primary, replica, sentinels) = setup(&dir);
    let old_port = primary.port.to_string();
    let mut acked = write_acknowledged(&primary, "before", 20);

    primary.signal(libc::SIGKILL);
    assert!(primary.wait_exit(EXIT_TIMEOUT).is_some());
    let promoted = eventually(FAILOVER_TIMEOUT, || {
        sentinels
            .iter()
            .all(|s| s.master_addr() == Some(("127.0.0.1".into(), replica.port)))
    });
    assert!(
        promoted,
        "no failover{}",
        report(&sentinels, &[("primary", &primary), ("replica", &replica)])
    );
    drop(primary);

    // Back on its old port, with its old config file: it starts as an empty primary, and
    // the sentinels, which list it as a replica of the new primary by now, reconfigure it.
    let (old, _) = baton(&dir, "primary", &["--port", &old_port]);
    let converted = eventually(CONVERT_TIMEOUT, || {
        let v = q(&mut old.redis(), "ROLE");
        let r = as_array(&v);
        as_str(&r[0]) == "slave"
            && as_int(&r[2]) == replica.port as i64
            && as_str(&r[3]) == "connected"
    });
    assert!(
        converted,
        "the sentinels did not make the old primary a replica of the new one within {CONVERT_TIMEOUT:?}: ROLE {:?}{}",
        q(&mut old.redis(), "ROLE"),
        report(&sentinels, &[("old primary", &old), ("new primary", &replica)])
    );
    acked.extend(write_acknowledged(&replica, "after", 20));
    let mut con = old.redis();
    for (k, v) in &acked {
        assert_eq!(
            run(&mut con, &["GET", k]),
            bulk(v),
            "key {k} on the old primary"
        );
    }
    let refused = q(&mut con, "SET x 1");
    assert_eq!(
        err_text(&refused),
        "READONLY You can't write against a read only replica."
    );
    // Every sentinel lists it as the new primary's replica, up.
    let listed = eventually(CONVERT_TIMEOUT, || {
        sentinels
            .iter()
            .all(|s| s.replicas().contains(&(old.port, true)))
    });
    assert!(
        listed,
        "{:?}{}",
        sentinels.iter().map(Sentinel::replicas).collect::<Vec<_>>(),
        report(
            &sentinels,
            &[("old primary", &old), ("new primary", &replica)]
        )
    );
}

/// Server gap: `CONFIG REWRITE` (which sentinel sends after `SLAVEOF host port`) must
/// persist the replica role as `replicaof host port`, and the config file must accept it,
/// so that a node sentinel reconfigured comes back as a replica after a restart.
#[test]
#[ignore = "server gap: CONFIG REWRITE does not persist replicaof, the config file does not accept it"]
fn config_rewrite_persists_replicaof_for_sentinel() {
    if !baton_only("Baton's config file") {
        return;
    }
    let dir = Scratch::new("sentinel-rewrite");
    let (primary, _) = baton(&dir, "primary", &[]);
    let (replica, conf) = baton(&dir, "replica", &[]);
    let mut con = replica.redis();
    let reply = run(
        &mut con,
        &["SLAVEOF", "127.0.0.1", &primary.port.to_string()],
    );
    assert_eq!(reply, ok());
    assert_eq!(q(&mut con, "CONFIG REWRITE"), ok());
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains(&format!("\nreplicaof 127.0.0.1 {}\n", primary.port)),
        "{text}"
    );
    drop(con);
    drop(replica);
    let again = Server::builder(2)
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    assert!(eventually(DISCOVERY_TIMEOUT, || role(&again) == "slave"));
}
