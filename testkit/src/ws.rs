//! WebSocket client helpers for tests: reading frames, sending frames a
//! well-behaved client library refuses to build, and handshakes whose
//! refusal (status and body) the test wants to see.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Longest wait for one frame before the test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(20);

/// The next text frame as JSON, skipping pings and other control frames;
/// fails the test on a close, an error or a silence of [`FRAME_TIMEOUT`].
pub async fn next_json<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("a JSON frame"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// Sends one text frame whose payload is `payload` as is, UTF-8 or not
/// (masked, as a client must): what a buggy or hostile client sends.
pub async fn send_raw_text<S>(ws: &mut WebSocketStream<S>, payload: Vec<u8>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frame = Frame::message(payload, OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(frame))
        .await
        .expect("send a raw frame");
}

/// The close code the server ends the connection with, skipping the
/// frames before it; `None` when the connection ends without a close
/// frame (or a status code). Fails the test after [`FRAME_TIMEOUT`].
pub async fn close_code<S>(ws: &mut WebSocketStream<S>) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let next = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("the server closes in time");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// An HTTP answer read off a raw socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; empty for 101 and bodiless answers).
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Sends a WebSocket upgrade request for `path` (with `headers` added) on
/// a plain TCP connection and reads the answer: the status, headers and,
/// unless it is 101, the body. For checking refused handshakes, whose body
/// a WebSocket client library does not reliably return.
pub async fn raw_handshake(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let first_lines = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    let mut reader = crate::http::send_head(addr, &first_lines, headers).await;
    let (status, headers) = crate::http::read_head(&mut reader).await;
    let mut answer = HttpAnswer {
        status,
        headers,
        body: Vec::new(),
    };
    if status != 101 {
        let length = answer
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        answer.body = vec![0; length];
        tokio::time::timeout(FRAME_TIMEOUT, reader.read_exact(&mut answer.body))
            .await
            .expect("the body in time")
            .expect("read the body");
    }
    answer
}
