//! Helpers of the Socket.IO tests: the endpoint on a hyper accept loop
//! (the lean upgrade path, as the binary serves it), a raw Engine.IO
//! WebSocket client, and plain HTTP requests for polling.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use serde_json::{json, Value};
use tickcast_core::model::Event;
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_socketio::{prepare_upgrade, socketio_route, SocketIoConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use warp::Filter;

pub const SECRET: &[u8] = b"test-secret";
const WAIT: Duration = Duration::from_secs(10);

/// The endpoint on its own accept loop, every request passing
/// `prepare_upgrade` first.
pub async fn server(hub: Hub, config: SocketIoConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = socketio_route(hub, config).boxed();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let routes = routes.clone();
            let service = hyper::service::service_fn(
                move |mut request: warp::http::Request<hyper::body::Incoming>| {
                    prepare_upgrade(&mut request);
                    let mut warp_service = warp::service(routes.clone());
                    async move {
                        let response =
                            tower_service::Service::call(&mut warp_service, request).await;
                        Ok::<_, Infallible>(response.unwrap())
                    }
                },
            );
            tokio::spawn(async move {
                let builder = Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

pub fn hub_config() -> HubConfig {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config
}

pub fn event(json: Value) -> Event {
    Event::from_json(
        Bytes::from(json.to_string()),
        Some("tickstock.events.patterns"),
        1 << 20,
    )
    .unwrap()
}

pub fn pattern(symbol: &str, confidence: f64) -> Event {
    event(json!({"symbol": symbol, "pattern": "Doji", "tier": "daily", "confidence": confidence}))
}

/// A raw Engine.IO client over WebSocket.
pub struct Eio {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Eio {
    /// Opens `/socket.io/?EIO=4&transport=websocket<extra>`.
    pub async fn connect(addr: SocketAddr, extra: &str) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{extra}");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self { ws }
    }

    /// Opens a connection and reads its open packet.
    pub async fn open(addr: SocketAddr) -> (Self, Value) {
        let mut eio = Self::connect(addr, "").await;
        let open = eio.next().await;
        let json = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
        (eio, json)
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// The next text packet, pings answered and skipped.
    pub async fn next(&mut self) -> String {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a packet in time");
            match next {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => self.send("3").await,
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(Message::Close(frame))) => {
                    return format!("close {}", frame.map_or(0, |f| u16::from(f.code)))
                }
                Some(Ok(_)) => {}
                other => return format!("gone {other:?}"),
            }
        }
    }

    /// The next Socket.IO event's arguments (`42[...]`).
    pub async fn event(&mut self) -> Vec<Value> {
        let packet = self.next().await;
        let args = packet
            .strip_prefix("42")
            .unwrap_or_else(|| panic!("not an event: {packet}"));
        serde_json::from_str(args).unwrap()
    }

    /// CONNECT with `auth`; returns the answer's JSON (`sid`, `pid`).
    pub async fn sio_connect(&mut self, auth: Value) -> Value {
        self.send(&format!("40{auth}")).await;
        let answer = self.next().await;
        let json = answer
            .strip_prefix("40")
            .unwrap_or_else(|| panic!("not a CONNECT answer: {answer}"));
        serde_json::from_str(json).unwrap()
    }

    /// CONNECT, then the `welcome` event: its offset.
    pub async fn welcomed(&mut self, auth: Value) -> (Value, String) {
        let answer = self.sio_connect(auth).await;
        let welcome = self.event().await;
        assert_eq!(welcome[0], "welcome", "{welcome:?}");
        (answer, welcome[2].as_str().unwrap().to_owned())
    }

    /// `subscribe` with ack `ack`; returns the ack's object.
    pub async fn subscribe(&mut self, ack: u64, args: Value) -> Value {
        self.send(&format!(r#"42{ack}["subscribe",{args}]"#)).await;
        self.ack(ack).await
    }

    /// The next packet, which must be the ack `ack`: its object.
    pub async fn ack(&mut self, ack: u64) -> Value {
        let packet = self.next().await;
        let prefix = format!("43{ack}");
        let args = packet
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("not ack {ack}: {packet}"));
        let args: Vec<Value> = serde_json::from_str(args).unwrap();
        args[0].clone()
    }
}

/// One HTTP/1.1 request on a connection of its own: status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("an answer in time")
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A polling connection's packets: the GET body split at `\x1e`.
pub fn packets(body: &str) -> Vec<String> {
    body.split('\u{1e}').map(str::to_owned).collect()
}
