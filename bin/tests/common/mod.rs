//! Helpers of the server tests: start the real server on an ephemeral
//! port, talk to it over real sockets with a plain HTTP/1.1 client. The
//! shared fixtures come from `tickcast_testkit`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tickcast::{Config, Server};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub mod browser;
pub mod group;
pub mod keepalive;
pub mod nodes;
pub mod roaming;
pub mod traffic;

/// Longest any single step of a test may take before it fails.
pub const STEP: Duration = Duration::from_secs(20);

/// A config for tests: ephemeral port, no batching delay.
pub fn test_config() -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        node_id: "test-node".to_owned(),
        ..Config::default()
    };
    config.delivery.batch_window_ms = 0;
    config
}

/// [`test_config`] consuming Redis at `url` in `mode` (`stream` for
/// Streams), without rate limits and with room for bursts.
pub fn redis_config(url: &str, mode: tickcast::config::RedisMode, stream: &str) -> Config {
    let mut config = test_config();
    config.delivery.rate_limit_per_user = 0;
    config.delivery.queue_capacity = 100_000;
    config.ingest.redis = Some(tickcast::config::RedisIngest {
        url: url.to_owned(),
        mode,
        stream: stream.to_owned(),
        ..tickcast::config::RedisIngest::default()
    });
    config
}

/// A server running in this process, stopped by [`TestServer::stop`] (or
/// when dropped, by the dropped shutdown sender).
pub struct TestServer {
    pub server: Server,
    stop: oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tickcast::serve(config, async move {
            let _ = stopped.await;
        })
        .await
        .expect("server starts");
        Self { server, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Sends the shutdown signal and waits for the server to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(STEP, self.server.wait())
            .await
            .expect("server stops in time")
            .expect("server stops cleanly");
    }

    pub async fn get(&self, path: &str) -> Answer {
        request(self.addr(), "GET", path, &[], Vec::new()).await
    }

    pub async fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        request(self.addr(), "POST", path, &[], body.into()).await
    }

    /// Waits (bounded) until `/ready` answers 200: its brokers are up.
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.get("/ready").await.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not ready: {}", self.get("/ready").await.text());
    }

    pub async fn stats(&self) -> Value {
        let answer = self.get("/api/stats").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An open HTTP/1.1 connection.
pub struct Client {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Self { addr, sender }
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        // Publishes are JSON unless a test says otherwise.
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if method == "POST" && !typed {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder.body(Full::new(Bytes::from(body))).expect("request");
        let exchange = async {
            let response = self.sender.send_request(request).await.expect("response");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(STEP, exchange)
            .await
            .expect("answer in time")
    }
}

/// One request on a new connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    Client::connect(addr)
        .await
        .send(method, path, headers, body)
        .await
}

/// The `http` source in an `/api/stats` answer.
pub fn http_source(stats: &Value) -> Value {
    stats["ingest"]
        .as_array()
        .expect("ingest is a list")
        .iter()
        .find(|s| s["name"] == "http")
        .cloned()
        .expect("the http source is listed")
}

/// Writes `request` on a new connection as raw bytes and reads until the
/// server closes it (or [`STEP`] passes): what the server answered, as text.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(STEP, stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// The JSON body of a raw HTTP/1.1 answer.
pub fn raw_json(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").unwrap_or(("", ""));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {response}"))
}
