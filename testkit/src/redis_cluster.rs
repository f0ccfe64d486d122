//! Redis Cluster for tests: [`redis_cluster_urls`] finds the shared one of
//! `scripts/brokers.sh cluster start`, and [`RedisCluster`] starts a
//! private one that a fault test may kill masters of.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The variable `scripts/brokers.sh cluster env` prints: the cluster's
/// node URLs, comma-separated.
pub const CLUSTER_URLS_VAR: &str = "TESTKIT_REDIS_CLUSTER_URLS";

/// The shared cluster's node URLs if `TESTKIT_REDIS_CLUSTER_URLS` names
/// some and the first answers. Without it the test is skipped with a
/// message saying how to start one, except under `CI=true`, where it
/// fails.
pub fn redis_cluster_urls() -> Option<Vec<String>> {
    let urls: Vec<String> = std::env::var(CLUSTER_URLS_VAR)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    let first = urls.first().and_then(|u| super::host_port(u));
    if first.as_deref().is_some_and(super::reachable) {
        return Some(urls);
    }
    let message = match first {
        Some(addr) => format!("the Redis Cluster of {CLUSTER_URLS_VAR} is not running at {addr}"),
        None => format!("{CLUSTER_URLS_VAR} is not set"),
    };
    let message = format!(
        "{message}; start it with `scripts/brokers.sh cluster start` and \
         `eval \"$(scripts/brokers.sh cluster env)\"`"
    );
    if super::in_ci() {
        panic!("CI=true and {message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// One master of a [`RedisCluster`].
struct Node {
    port: u16,
    bus: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A private Redis Cluster of `n` masters (no replicas) on free ports,
/// each node's files in a temporary directory; killed on drop. A killed
/// master restarted on its port rejoins with its slots (its `nodes.conf`
/// stays) but without data.
pub struct RedisCluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts `masters` nodes and creates the cluster over them; panics
    /// (with why) when it cannot. Only where `redis_cluster_urls` finds
    /// the shared cluster is redis-server known to support clusters.
    pub fn start(masters: usize) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let nodes = (0..masters)
            .map(|i| {
                let node_dir = dir.path().join(i.to_string());
                std::fs::create_dir_all(&node_dir).expect("node directory");
                Node {
                    port: super::free_port(),
                    bus: super::free_port(),
                    dir: node_dir,
                    child: None,
                }
            })
            .collect();
        let mut cluster = Self { nodes, _dir: dir };
        for i in 0..masters {
            cluster.restart(i);
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_ok();
        cluster
    }

    /// `redis://127.0.0.1:<port>` of every master.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// SIGKILLs master `i` (what a crash looks like).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts master `i` again on its port (killing it first if it runs)
    /// and waits until it answers.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let node = &mut self.nodes[i];
        node.child = Some(spawn(node.port, node.bus, &node.dir));
        let addr = format!("127.0.0.1:{}", node.port);
        assert!(
            super::wait_for(&addr, Duration::from_secs(10)),
            "redis-server did not start on {addr}"
        );
    }

    /// Waits until every running master says `cluster_state:ok`; panics
    /// after 30 s.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                let out = Command::new("redis-cli")
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli");
                if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster node {} never reached cluster_state:ok",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The index of the master that owns `key`'s slot.
    pub fn master_of(&self, key: &str) -> usize {
        let port = self.nodes[0].port.to_string();
        let slot = cli(&["-p", &port, "cluster", "keyslot", key]);
        let slot: u16 = slot.trim().parse().expect("a slot number");
        // `CLUSTER SLOTS` in redis-cli's plain output is one value per
        // line: start, end, host, port, id, (metadata, replicas)...
        let slots = cli(&["-p", &port, "cluster", "slots"]);
        let lines: Vec<&str> = slots.lines().map(str::trim).collect();
        let mut i = 0;
        while i + 3 < lines.len() {
            let (start, end) = (lines[i].parse::<u16>(), lines[i + 1].parse::<u16>());
            if let (Ok(start), Ok(end)) = (start, end) {
                let owner: u16 = lines[i + 3].parse().expect("a port");
                if start <= slot && slot <= end {
                    return self
                        .nodes
                        .iter()
                        .position(|n| n.port == owner)
                        .expect("a master of this cluster");
                }
                i += 4;
            } else {
                i += 1;
            }
        }
        panic!("no master owns slot {slot}");
    }
}

impl RedisCluster {
    /// Moves `key`'s slot, with its keys, to master `to` the way
    /// `redis-cli --cluster reshard` does (IMPORTING, MIGRATING, MIGRATE,
    /// then SETSLOT NODE on every master), and waits until the cluster is
    /// ok again. Returns the master it came from.
    pub fn move_slot_of(&self, key: &str, to: usize) -> usize {
        let from = self.master_of(key);
        assert_ne!(from, to, "{key} already lives on master {to}");
        let port = |i: usize| self.nodes[i].port.to_string();
        let slot = cli(&["-p", &port(from), "cluster", "keyslot", key]);
        let slot = slot.trim();
        let id = |i: usize| cli(&["-p", &port(i), "cluster", "myid"]).trim().to_owned();
        let (from_id, to_id) = (id(from), id(to));
        let ok = |out: String| assert!(out.contains("OK"), "{out}");
        ok(cli(&[
            "-p",
            &port(to),
            "cluster",
            "setslot",
            slot,
            "importing",
            &from_id,
        ]));
        ok(cli(&[
            "-p",
            &port(from),
            "cluster",
            "setslot",
            slot,
            "migrating",
            &to_id,
        ]));
        loop {
            let keys = cli(&["-p", &port(from), "cluster", "getkeysinslot", slot, "100"]);
            let keys: Vec<&str> = keys
                .lines()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect();
            if keys.is_empty() {
                break;
            }
            let (from_port, to_port) = (port(from), port(to));
            let mut args = vec!["-p", from_port.as_str()];
            args.extend(["migrate", "127.0.0.1", &to_port, "", "0", "5000", "keys"]);
            args.extend(keys);
            ok(cli(&args));
        }
        for i in 0..self.nodes.len() {
            ok(cli(&[
                "-p",
                &port(i),
                "cluster",
                "setslot",
                slot,
                "node",
                &to_id,
            ]));
        }
        self.wait_ok();
        from
    }
}

fn cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spawn(port: u16, bus: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus.to_string(),
        ])
        .args(["--cluster-node-timeout", "2000"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--cluster-config-file")
        .arg(dir.join("nodes.conf"))
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (install it with `scripts/brokers.sh install`)")
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
