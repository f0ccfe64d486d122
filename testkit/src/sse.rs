//! [`SseStream`]: a `GET /sse` read message by message over a raw socket,
//! for tests that check what an SSE client receives.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::TcpStream;

use crate::http::{read_head, read_line, send_head};

/// One message of an event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseMessage {
    /// `event:` (empty when the message has none).
    pub event: String,
    /// `id:`, if any.
    pub id: Option<String>,
    /// `data:` lines joined, as JSON.
    pub data: Value,
}

/// An open event stream. The request is HTTP/1.0, so the body comes
/// unchunked and is read line by line.
pub struct SseStream(BufReader<TcpStream>);

impl SseStream {
    /// Opens `path` (e.g. `/sse?symbols=AAPL`); fails the test unless the
    /// answer is 200.
    pub async fn open(addr: SocketAddr, path: &str) -> Self {
        let mut reader = send_head(addr, &format!("GET {path} HTTP/1.0\r\n"), &[]).await;
        let (status, _) = read_head(&mut reader).await;
        assert_eq!(status, 200, "GET {path}");
        Self(reader)
    }

    /// The next message with data, skipping comments (`: ping`).
    pub async fn next(&mut self) -> SseMessage {
        let (mut event, mut id, mut data) = (String::new(), None, String::new());
        loop {
            let line = read_line(&mut self.0).await;
            if line.is_empty() && !data.is_empty() {
                let data = serde_json::from_str(&data).expect("JSON data");
                return SseMessage { event, id, data };
            }
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_owned();
            } else if let Some(value) = line.strip_prefix("id: ") {
                id = Some(value.to_owned());
            } else if let Some(text) = line.strip_prefix("data: ") {
                data.push_str(text);
            }
        }
    }
}
