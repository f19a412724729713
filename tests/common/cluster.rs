//! Cluster helpers shared by tests/cluster.rs and tests/cluster_ops.rs: Baton nodes in
//! cluster mode, redis-cli under a deadline, and the checks of agreement between nodes.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// How long redis-cli may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(240);
/// How long nodes may take to agree after a change (the target is one second; the
/// bound leaves room for a loaded CI machine, and the measured time is printed).
pub const CONVERGE: Duration = Duration::from_secs(5);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "baton-cluster-{tag}-{}-{}",
            std::process::id(),
            unix_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A cluster node with its own config file and `--cluster-node-timeout timeout_ms`: with
/// its memcached port open when `memcache`, on `port` when given.
pub fn timeout_node(
    config_file: &str,
    timeout_ms: u64,
    memcache: bool,
    port: Option<u16>,
) -> Server {
    let timeout = timeout_ms.to_string();
    let port = port.map(|p| p.to_string());
    let mut args = Vec::new();
    if let Some(p) = &port {
        args.extend(["--port", p.as_str()]);
    }
    args.extend([
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        config_file,
        "--cluster-node-timeout",
        &timeout,
    ]);
    let mut b = Server::builder(2);
    if memcache {
        b = b.memcache();
    }
    b.args(&args).start()
}

/// A cluster node on `port` (0: any) with its own config file.
pub fn node(config_file: &str, port: u16) -> Server {
    Server::builder(2)
        .args(&[
            "--port",
            &port.to_string(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            config_file,
        ])
        .start()
}

pub fn redis_cli_present() -> bool {
    Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs redis-cli with `args` under [`CLI_TIMEOUT`]: (exit success, stdout + stderr).
pub fn redis_cli(args: &[&str]) -> (bool, String) {
    let mut child = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().unwrap_or_default();
    match status {
        Some(s) => (s.success(), text),
        None => panic!("redis-cli {args:?} ran past {CLI_TIMEOUT:?}:\n{text}"),
    }
}

/// The cluster made by hand, with the commands redis-cli sends: slots, config epochs,
/// MEET to the first node, then a wait for agreement.
pub fn create_by_hand(nodes: &[Server]) {
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (i, (n, (a, b))) in nodes.iter().zip(ranges).enumerate() {
        let mut c = n.redis();
        assert_eq!(q(&mut c, &format!("CLUSTER ADDSLOTSRANGE {a} {b}")), ok());
        assert_eq!(
            q(&mut c, &format!("CLUSTER SET-CONFIG-EPOCH {}", i + 1)),
            ok()
        );
    }
    for n in &nodes[1..] {
        let mut c = n.redis();
        assert_eq!(
            q(&mut c, &format!("CLUSTER MEET 127.0.0.1 {}", nodes[0].port)),
            ok()
        );
    }
}

/// Makes the three nodes a cluster, with redis-cli when it is installed.
pub fn create(nodes: &[Server]) {
    if !redis_cli_present() {
        eprintln!(
            "\n!!!!!!!! redis-cli is not installed: the cluster is created by hand and \
             `redis-cli --cluster create/check` are NOT tested (apt-get install redis-tools) !!!!!!!!\n"
        );
        create_by_hand(nodes);
        assert!(
            eventually(CONVERGE, || agree(nodes)),
            "nodes never agreed: {:#?}",
            all_nodes(nodes)
        );
        return;
    }
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(nodes.iter().map(|n| n.addr()));
    args.push("--cluster-yes".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = redis_cli(&args);
    assert!(ok, "redis-cli --cluster create failed:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
}

/// CLUSTER NODES of a node, one normalized line per node: id, address, flags without
/// `myself`, config epoch and slots (the ping/pong times and the link differ per node).
pub fn nodes_of(s: &Server) -> Vec<String> {
    let text = as_str(&q(&mut s.redis(), "CLUSTER NODES"));
    assert!(text.ends_with('\n'), "every line ends with \\n: {text:?}");
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let flags = f[2].replace("myself,", "");
            let slots: Vec<&str> = f[8..]
                .iter()
                .copied()
                .filter(|s| !s.starts_with('['))
                .collect();
            format!("{} {} {} {} {}", f[0], f[1], flags, f[6], slots.join(" "))
        })
        .collect();
    lines.sort();
    lines
}

pub fn all_nodes(nodes: &[Server]) -> Vec<Vec<String>> {
    nodes.iter().map(nodes_of).collect()
}

pub fn agree(nodes: &[Server]) -> bool {
    let views = all_nodes(nodes);
    views
        .iter()
        .all(|v| v == &views[0] && v.len() == nodes.len())
}

pub fn myid(s: &Server) -> String {
    as_str(&q(&mut s.redis(), "CLUSTER MYID"))
}

/// A key whose slot is owned by node `i` of the standard 3-way split.
pub fn key_on(i: usize) -> String {
    key_in("key", i)
}

/// A key `<prefix>:<n>` whose slot is owned by node `i` of the standard 3-way split.
pub fn key_in(prefix: &str, i: usize) -> String {
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    let (a, b) = ranges[i];
    (0..)
        .map(|n| format!("{prefix}:{n}"))
        .find(|k| (a..=b).contains(&slot_of(k)))
        .unwrap()
}

pub fn slot_of(key: &str) -> u16 {
    baton_ring::slot(key.as_bytes())
}

/// Runs a command through a client that follows MOVED (at most 5 hops), starting at
/// `start`; returns the reply and the port that answered it.
pub fn follow(start: u16, args: &[&str]) -> (Value, u16) {
    let mut port = start;
    for _ in 0..5 {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client.get_connection_with_timeout(IO_TIMEOUT).unwrap();
        con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let v = run(&mut con, args);
        if let Value::ServerError(_) = &v {
            let text = err_text(&v);
            if let Some(rest) = text.strip_prefix("MOVED ") {
                let addr = rest.split(' ').nth(1).unwrap();
                port = addr.rsplit(':').next().unwrap().parse().unwrap();
                continue;
            }
        }
        return (v, port);
    }
    panic!("{args:?}: too many redirections");
}

/// Makes `nodes` a cluster (`redis-cli --cluster create`) and waits until they agree on
/// its view.
pub fn create_agreeing(nodes: &[Server]) {
    create(nodes);
    assert!(
        eventually(CONVERGE, || agree(nodes)),
        "{:#?}",
        all_nodes(nodes)
    );
}

/// Three nodes with their config files in `dir`, made a cluster, agreeing on its view.
pub fn three_agreeing_nodes(dir: &TempDir) -> Vec<Server> {
    let nodes: Vec<Server> = (0..3)
        .map(|i| node(&dir.file(&format!("n{i}.conf")), 0))
        .collect();
    create_agreeing(&nodes);
    nodes
}

/// How long a MIGRATESLOTS job may take on a loaded two-CPU machine (debug build).
pub const JOB_BOUND: Duration = Duration::from_secs(120);

/// A node's CLUSTER GETSLOTMIGRATIONS jobs, as (field -> value) maps.
pub fn slot_jobs(c: &mut redis::Connection) -> Vec<std::collections::HashMap<String, String>> {
    as_array(&q(c, "CLUSTER GETSLOTMIGRATIONS"))
        .iter()
        .map(|j| {
            as_pairs(j)
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        redis::Value::Int(n) => n.to_string(),
                        other => as_str(&other),
                    };
                    (k, v)
                })
                .collect()
        })
        .collect()
}

/// Waits (at most [`JOB_BOUND`]) until the node's last slot-migration job is no longer
/// running; returns it.
pub fn finished_job(c: &mut redis::Connection) -> std::collections::HashMap<String, String> {
    let mut last = std::collections::HashMap::new();
    let done = eventually(JOB_BOUND, || {
        last = slot_jobs(c).pop().expect("a job");
        last["state"] != "running"
    });
    assert!(done, "the job never ended: {last:?}");
    last
}

/// The node's own (`myself`) CLUSTER NODES line.
pub fn myself_line(c: &mut redis::Connection) -> String {
    as_str(&q(c, "CLUSTER NODES"))
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap()
        .to_string()
}

/// Writes `n` keys `<prefix><i>` whose slots `keep` accepts, pipelined 5,000 at a time,
/// each with the value `value(key)`; returns them.
pub fn fill_keys(
    c: &mut redis::Connection,
    prefix: &str,
    n: usize,
    keep: impl Fn(&str) -> bool,
    value: impl Fn(&str) -> String,
) -> Vec<String> {
    let keys: Vec<String> = (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| keep(k))
        .take(n)
        .collect();
    for chunk in keys.chunks(5000) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("SET").arg(k).arg(value(k)).ignore();
        }
        pipe.query::<()>(c).unwrap();
    }
    keys
}
