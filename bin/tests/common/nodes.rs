//! Nodes as real processes of the `tickcast` binary, configured through
//! `TICKCAST_*` variables, each on its own port: a test can SIGKILL one
//! mid-stream, as a crash or an OOM kill would. Every child is killed when
//! its [`Node`] is dropped, so a failing test leaves no process behind.
//!
//! [`Mode`] gives the variables of one ingest mode with names unique to
//! one test (stream key, channel, exchange, queues), so tests sharing the
//! brokers of `scripts/brokers.sh` never see each other's events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

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

/// The ingest mode nodes run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redis pub/sub: node offsets.
    PubSub,
    /// Redis Streams: stream ids as offsets, the same on every node.
    Streams,
    /// RabbitMQ, a queue per node: node offsets.
    Amqp,
}

impl Mode {
    /// The shared broker of this mode, or `None` (the test skips; under
    /// `CI=true` this fails instead).
    pub fn shared_broker(self) -> Option<String> {
        match self {
            Mode::PubSub | Mode::Streams => tickcast_testkit::redis_url(),
            Mode::Amqp => tickcast_testkit::amqp_url(),
        }
    }
}

/// A name no other test run uses: `<prefix>-<pid>-<ns>`.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// One group of nodes sharing a broker: the broker's URL, the names unique
/// to the group (stream, channel or exchange), and the variables each
/// node gets.
#[derive(Debug, Clone)]
pub struct Group {
    /// The ingest mode.
    pub mode: Mode,
    /// The broker's URL.
    pub url: String,
    /// The prefix of this group's broker names.
    pub tag: String,
    /// Variables every node gets besides the mode's (batch window, ...).
    pub extra: Vec<(String, String)>,
}

impl Group {
    /// A group of `mode` on the broker at `url`, its names made from
    /// `prefix`.
    pub fn new(mode: Mode, url: &str, prefix: &str) -> Self {
        Self {
            mode,
            url: url.to_owned(),
            tag: unique(&format!("tickcast-test.{prefix}")),
            extra: Vec::new(),
        }
    }

    /// Adds `TICKCAST_<key>=value` for every node.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.extra
            .push((format!("TICKCAST_{key}"), value.to_string()));
        self
    }

    /// The pub/sub channel of this group (also the publish `?channel=`);
    /// AMQP and Streams use the default channel within their own exchange
    /// or stream.
    pub fn channel(&self) -> Option<String> {
        (self.mode == Mode::PubSub).then(|| self.tag.clone())
    }

    /// The AMQP queue of node `name`.
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.tag)
    }

    /// Every variable node `name` of this group starts with.
    pub fn env(&self, name: &str) -> Vec<(String, String)> {
        let var = |k: &str, v: &str| (format!("TICKCAST_{k}"), v.to_owned());
        let mut env = match self.mode {
            Mode::PubSub => vec![
                var("INGEST__REDIS__URL", &self.url),
                var("INGEST__REDIS__MODE", "pubsub"),
                var("INGEST__REDIS__CHANNELS", &self.tag),
            ],
            Mode::Streams => vec![
                var("INGEST__REDIS__URL", &self.url),
                var("INGEST__REDIS__MODE", "streams"),
                var("INGEST__REDIS__STREAM", &self.tag),
            ],
            Mode::Amqp => vec![
                var("INGEST__AMQP__URL", &self.url),
                var("INGEST__AMQP__EXCHANGE", &self.tag),
                var("INGEST__AMQP__QUEUE", &self.queue(name)),
                var(
                    "INGEST__AMQP__DEAD_LETTER_EXCHANGE",
                    &format!("{}.dlx", self.tag),
                ),
                // Queues left on the shared broker by this test go away
                // by themselves (tests that need another value set it).
                var("INGEST__AMQP__QUEUE_EXPIRES_S", "30"),
            ],
        };
        env.extend(self.extra.iter().cloned());
        env
    }

    /// Starts node `name` of this group and waits until it is ready.
    pub async fn start(&self, name: &str) -> Node {
        let node = Node::start(name, &self.env(name)).await;
        node.wait_ready().await;
        node
    }

    /// Starts `n` nodes (`<prefix>-0`, ...), all ready.
    pub async fn start_nodes(&self, n: usize) -> Vec<Node> {
        let names: Vec<String> = (0..n).map(|i| format!("{}-{i}", self.tag)).collect();
        let started = futures_util::future::join_all(names.iter().map(|name| self.start(name)));
        started.await
    }

    /// `/api/publish` of this group (with `?channel=` in pub/sub mode).
    pub fn publish_path(&self) -> String {
        match self.channel() {
            Some(channel) => format!("/api/publish?channel={channel}"),
            None => "/api/publish".to_owned(),
        }
    }
}

/// Longest wait for one HTTP exchange with a node.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request on a new connection: the status and the body as
/// JSON (`Value::Null` when it is not JSON), or why there was no answer (a
/// node that is gone, a timeout). Never panics: callers decide.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&Value>,
) -> Result<(u16, Value), String> {
    KeepAlive::new(addr).request(method, path, json).await
}

/// HTTP/1.1 requests to one node over one kept-alive connection, opened
/// again after a failure. Producers use it: a new connection per request
/// would take a new ephemeral port each time, and a port a private broker
/// is about to bind (testkit picks it free, then the broker binds it,
/// seconds later for RabbitMQ) can be taken meanwhile.
pub struct KeepAlive {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl KeepAlive {
    /// Not connected yet: the first request connects.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// As [`http`]; the connection is dropped after any failure.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let answer = tokio::time::timeout(HTTP_TIMEOUT, self.exchange(method, path, json))
            .await
            .unwrap_or_else(|_| Err(format!("{method} {path}: no answer in {HTTP_TIMEOUT:?}")));
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let addr = self.addr;
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(connection);
                self.sender.insert(sender)
            }
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let body = json.map(Value::to_string).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// A redis-server of one test that keeps its data on disk the way a
/// production one would (append-only file, fsynced before each reply), so
/// a SIGKILL loses nothing it answered: what a broker restart must not
/// lose is then up to tickcast. Killed on drop.
pub struct DurableRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl DurableRedis {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let mut redis = Self {
            port: tickcast_testkit::free_port(),
            dir: tempfile::tempdir().expect("temporary directory"),
            child: None,
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: what a crash looks like.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts it on the same port and directory; it loads its
    /// append-only file.
    pub fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (install it with `scripts/brokers.sh install`)");
        self.child = Some(child);
        let deadline = Instant::now() + START;
        while Instant::now() < deadline {
            let pong = std::process::Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"));
            if pong {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
