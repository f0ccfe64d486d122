//! Clients that behave like real ones across node failures: each keeps
//! the last `resume` it saw (WebSocket `resume`, SSE `id:`) and, when its
//! connection ends, reconnects to the next node of its list with that
//! offset (`since`, `Last-Event-ID`). Everything it receives is logged for
//! the test to check: which events, how often, from which node, and every
//! `subscribed` / `history_gone` answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// How a client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /ws`, one subscription, resuming with `since`.
    Ws,
    /// `GET /sse`, resuming with `Last-Event-ID`.
    Sse,
}

/// One event as a client received it.
#[derive(Debug, Clone)]
pub struct Got {
    /// The body's `event_id`.
    pub id: String,
    /// Its offset.
    pub offset: String,
    /// Index (in the client's node list) of the node that sent it.
    pub node: usize,
    /// Index of the session (in [`Log::sessions`]) it arrived in.
    pub session: usize,
}

/// What one connection of a client was answered on subscribing.
#[derive(Debug, Clone)]
pub struct Session {
    /// Index of the node.
    pub node: usize,
    /// The `since` it subscribed with.
    pub since: Option<String>,
    /// `subscribed.recovered`.
    pub recovered: u64,
    /// Whether the subscription was answered `history_gone`.
    pub history_gone: bool,
}

/// Everything a client received.
#[derive(Debug, Default)]
pub struct Log {
    /// Events, in arrival order.
    pub events: Vec<Got>,
    /// The safe resume offset of the last event or batch.
    pub resume: Option<String>,
    /// One per successful subscribe, in order.
    pub sessions: Vec<Session>,
    /// Errors other than `history_gone`, and why connections ended.
    pub notes: Vec<String>,
}

impl Log {
    /// How often each `event_id` arrived.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for got in &self.events {
            *counts.entry(got.id.clone()).or_default() += 1;
        }
        counts
    }

    fn has(&self, id: &str) -> bool {
        self.events.iter().any(|g| g.id == id)
    }
}

/// A client running in its own task until dropped.
pub struct Roamer {
    /// Its name in failure messages.
    pub name: String,
    /// `symbols` filter (`None`: everything).
    pub symbol: Option<String>,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

/// Longest wait for any condition on clients.
pub const WAIT: Duration = Duration::from_secs(30);

impl Roamer {
    /// Starts a client on `nodes[0]`; when a connection ends it moves to
    /// the next node of `nodes` (cycling), resuming from its last `resume`.
    pub fn spawn(
        name: &str,
        transport: Transport,
        symbol: Option<&str>,
        nodes: Vec<SocketAddr>,
    ) -> Self {
        Self::spawn_with(name, transport, symbol, nodes, false)
    }

    /// [`Roamer::spawn`] for a client behind a load balancer that routes
    /// only to ready nodes: it (re)connects to a node once its `/ready`
    /// answers 200.
    pub fn spawn_ready(
        name: &str,
        transport: Transport,
        symbol: Option<&str>,
        nodes: Vec<SocketAddr>,
    ) -> Self {
        Self::spawn_with(name, transport, symbol, nodes, true)
    }

    fn spawn_with(
        name: &str,
        transport: Transport,
        symbol: Option<&str>,
        nodes: Vec<SocketAddr>,
        ready_first: bool,
    ) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let symbol_owned = symbol.map(str::to_owned);
        let task = tokio::spawn(roam(
            transport,
            symbol_owned,
            nodes,
            ready_first,
            log.clone(),
        ));
        Self {
            name: name.to_owned(),
            symbol: symbol.map(str::to_owned),
            log,
            task,
        }
    }

    /// What it received so far.
    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an event with this `symbol` is one this client asked for.
    pub fn wants(&self, symbol: &str) -> bool {
        self.symbol.as_deref().is_none_or(|s| s == symbol)
    }

    /// Waits (at most [`WAIT`]) until `done` holds for its log; fails the
    /// test with `what` and the log otherwise.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Log) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let log = self.log();
                if done(&log) {
                    return;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "{}: {what} did not happen; sessions {:?}, {} events, notes {:?}",
                        self.name,
                        log.sessions,
                        log.events.len(),
                        log.notes
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until it has subscribed `n` times in all.
    pub async fn wait_sessions(&self, n: usize) {
        self.wait_until(&format!("{n} subscriptions"), |log| log.sessions.len() >= n)
            .await;
    }

    /// Waits until it received the event `id`.
    pub async fn wait_for(&self, id: &str) {
        self.wait_until(&format!("event {id}"), |log| log.has(id))
            .await;
    }
}

impl Drop for Roamer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The client's life: one session after another, each on the next node.
async fn roam(
    transport: Transport,
    symbol: Option<String>,
    nodes: Vec<SocketAddr>,
    ready_first: bool,
    log: Arc<Mutex<Log>>,
) {
    let mut node = 0;
    loop {
        if ready_first && !ready(nodes[node]).await {
            node = (node + 1) % nodes.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let since = lock(&log).resume.clone();
        let ended = match transport {
            Transport::Ws => ws_session(&nodes, node, symbol.as_deref(), since, &log).await,
            Transport::Sse => sse_session(&nodes, node, symbol.as_deref(), since, &log).await,
        };
        lock(&log).notes.push(format!("node {node}: {ended}"));
        node = (node + 1) % nodes.len();
        // A reconnecting client waits a little (the next node may be the
        // dead one too, refusing at once).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the node's `/ready` answers 200.
async fn ready(addr: SocketAddr) -> bool {
    matches!(
        super::keepalive::http(addr, "GET", "/ready", None).await,
        Ok((200, _))
    )
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// Longest silence while connecting (a node that stopped answering).
const CONNECT: Duration = Duration::from_secs(10);

/// One WebSocket connection: subscribe (with `since`), then log frames
/// until it ends. Returns why it ended.
async fn ws_session(
    nodes: &[SocketAddr],
    node: usize,
    symbol: Option<&str>,
    since: Option<String>,
    log: &Mutex<Log>,
) -> String {
    let url = format!("ws://{}/ws", nodes[node]);
    let mut ws = match tokio::time::timeout(CONNECT, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return format!("connect: {e}"),
        Err(_) => return "connect: timeout".to_owned(),
    };
    let filter = match symbol {
        Some(symbol) => json!({"symbols": [symbol]}),
        None => json!({}),
    };
    let mut op = json!({"op": "subscribe", "id": "s", "filter": filter});
    if let Some(since) = &since {
        op["since"] = json!(since);
    }
    if let Err(e) = ws.send(Message::text(op.to_string())).await {
        return format!("send: {e}");
    }
    let mut since = Some(since);
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return format!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return format!("error: {e}"),
            None => return "ended".to_owned(),
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            lock(log).notes.push(format!("not JSON: {text}"));
            continue;
        };
        let mut log = lock(log);
        match frame["type"].as_str() {
            Some("subscribed") => log.sessions.push(Session {
                node,
                since: since.take().flatten(),
                recovered: frame["recovered"].as_u64().unwrap_or(0),
                history_gone: false,
            }),
            Some("error") if frame["code"] == "history_gone" => {
                if let Some(session) = log.sessions.last_mut() {
                    session.history_gone = true;
                }
            }
            Some("event") => {
                let got = got(&frame, node, &log);
                log.events.push(got);
                log.resume = frame["resume"].as_str().map(str::to_owned);
            }
            Some("batch") => {
                for event in frame["events"].as_array().into_iter().flatten() {
                    let got = got(event, node, &log);
                    log.events.push(got);
                }
                log.resume = frame["resume"].as_str().map(str::to_owned);
            }
            Some("welcome") => {}
            _ => log.notes.push(format!("node {node}: {frame}")),
        }
    }
}

fn got(event: &Value, node: usize, log: &Log) -> Got {
    Got {
        id: event["data"]["event_id"].as_str().unwrap_or("").to_owned(),
        offset: event["offset"].as_str().unwrap_or("").to_owned(),
        node,
        session: log.sessions.len().saturating_sub(1),
    }
}

/// One SSE stream: `Last-Event-ID` = `since`, then log events until the
/// stream ends. Returns why it ended.
async fn sse_session(
    nodes: &[SocketAddr],
    node: usize,
    symbol: Option<&str>,
    since: Option<String>,
    log: &Mutex<Log>,
) -> String {
    let addr = nodes[node];
    let connected = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)
    };
    let (mut sender, connection) = match tokio::time::timeout(CONNECT, connected).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return format!("connect: {e}"),
        Err(_) => return "connect: timeout".to_owned(),
    };
    tokio::spawn(connection);
    let path = match symbol {
        Some(symbol) => format!("/sse?symbols={symbol}"),
        None => "/sse".to_owned(),
    };
    let mut request = hyper::Request::get(path).header("host", addr.to_string());
    if let Some(since) = &since {
        request = request.header("last-event-id", since.as_str());
    }
    let Ok(request) = request.body(Empty::<Bytes>::new()) else {
        return "bad request".to_owned();
    };
    let response = match tokio::time::timeout(CONNECT, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return format!("request: {e}"),
        Err(_) => return "request: timeout".to_owned(),
    };
    if response.status() != 200 {
        return format!("status {}", response.status());
    }
    let mut body = response.into_body();
    let mut text = String::new();
    let mut since = Some(since);
    loop {
        let chunk = match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(e)) => return format!("error: {e}"),
            None => return "ended".to_owned(),
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            sse_block(&block, node, &mut since, &mut lock(log));
        }
    }
}

/// Logs one SSE message (`id:`, `event:`, `data:` lines).
fn sse_block(block: &str, node: usize, since: &mut Option<Option<String>>, log: &mut Log) {
    let mut id = None;
    let mut name = None;
    let mut data = String::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("event: ") {
            name = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v);
        }
    }
    let Some(name) = name else {
        return; // a `: ping` comment
    };
    let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
    match name.as_str() {
        "subscribed" => log.sessions.push(Session {
            node,
            since: since.take().flatten(),
            recovered: data["recovered"].as_u64().unwrap_or(0),
            history_gone: false,
        }),
        "history_gone" => {
            if let Some(session) = log.sessions.last_mut() {
                session.history_gone = true;
            }
        }
        "welcome" | "close" | "dropped" | "error" if id.is_none() => {
            if name != "welcome" {
                log.notes.push(format!("node {node}: {name} {data}"));
            }
        }
        _ if data["type"] == "event" => {
            let got = got(&data, node, log);
            log.events.push(got);
            log.resume = id;
        }
        _ => log.notes.push(format!("node {node}: {block}")),
    }
}
