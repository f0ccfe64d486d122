//! Nodes as real processes of the `tickcast` binary, configured through
//! `TICKCAST_*` variables, each on its own port: a test can SIGKILL one
//! mid-stream, as a crash or an OOM kill would, SIGSTOP it, or restart it.
//! Every child is killed when its [`Node`] is dropped, so a failing test
//! leaves no process behind.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::keepalive::http;

/// Longest wait for a node to listen, or to be ready.
pub const START: Duration = Duration::from_secs(20);

/// Log lines kept per node, shown when a test fails.
const LOG_LINES: usize = 60;

/// A `tickcast` process.
pub struct Node {
    /// Its `node_id`.
    pub name: String,
    env: Vec<(String, String)>,
    addr: SocketAddr,
    child: Option<Child>,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Node {
    /// Starts the binary with `env` (on top of: listen on a free port,
    /// `node_id` = `name`, JSON logs, no rate limit, room for bursts) and
    /// returns once it listens. Fails the test (with the node's logs) when
    /// it does not.
    pub async fn start(name: &str, env: &[(String, String)]) -> Node {
        Self::start_on(name, env, "127.0.0.1:0").await
    }

    /// Starts it again after [`Node::kill`]: the same `node_id` and
    /// variables, on the same port (clients that retry it find it there).
    pub async fn restart(&mut self) {
        self.kill().await;
        let again = Self::start_on(&self.name, &self.env, &self.addr.to_string()).await;
        *self = again;
    }

    async fn start_on(name: &str, env: &[(String, String)], listen: &str) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tickcast"));
        // Only what the test sets: nothing from the caller's environment.
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("TICKCAST_") {
                command.env_remove(var);
            }
        }
        command
            .env("TICKCAST_LISTEN", listen)
            .env("TICKCAST_NODE_ID", name)
            .env("TICKCAST_LOG_FORMAT", "json")
            .env("TICKCAST_DELIVERY__RATE_LIMIT_PER_USER", "0")
            .env("TICKCAST_DELIVERY__QUEUE_CAPACITY", "100000")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start the tickcast binary");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (found, listening) = tokio::sync::oneshot::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(keep_lines(stdout, log.clone(), Some(found)));
        tokio::spawn(keep_lines(stderr, log.clone(), None));
        let mut node = Node {
            name: name.to_owned(),
            env: env.to_vec(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: Some(child),
            log,
        };
        match tokio::time::timeout(START, listening).await {
            Ok(Ok(addr)) => node.addr = addr,
            _ => panic!("node {name} did not listen; its log:\n{}", node.log_tail()),
        }
        node
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// SIGKILL, and waits until the process is gone: its sockets are
    /// closed by the kernel, nothing is flushed or acknowledged.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(START, child.wait()).await;
        }
    }

    /// SIGSTOP (`stop = true`) or SIGCONT: a node that falls behind (a
    /// long pause, a starved CPU) while its connections stay open.
    pub fn pause(&self, stop: bool) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("a running node");
        let signal = if stop { "-STOP" } else { "-CONT" };
        let sent = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill {signal} {pid}");
    }

    /// Waits until `/ready` answers 200 (its broker source is connected:
    /// subscribed, group created, or queue bound and consumed).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + START;
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(self.addr, "GET", "/ready", None).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "node {} is not ready; its log:\n{}",
            self.name,
            self.log_tail()
        );
    }

    /// The node's last log lines (stdout and stderr).
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Keeps the last lines of `pipe` in `log`; the first JSON line carrying
/// the listening `addr` is sent to `listening`.
async fn keep_lines(
    pipe: impl AsyncRead + Unpin,
    log: Arc<Mutex<VecDeque<String>>>,
    mut listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if listening.is_some() && line.contains("listening") {
            let addr = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()));
            if let (Some(addr), Some(tx)) = (addr, listening.take()) {
                let _ = tx.send(addr);
            }
        }
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }
}
