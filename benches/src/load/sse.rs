//! SSE clients: a connection that uses `GET /sse` instead of `/ws`. SSE
//! carries one filter per connection, so such a connection subscribes only
//! its first filter (`s0`); its ready mask says so, and the ledger expects
//! only what that filter matches. Events arrive as `data:` lines holding
//! the same event objects as WebSocket frames, and are counted by the same
//! code.

use std::fmt::Write as _;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tickcast_core::model::{Filter, FilterValue};
use tokio::net::TcpStream;

/// An open SSE response: its body, and what was read but not yet split
/// into events.
pub struct SseStream {
    body: Incoming,
    buffer: BytesMut,
    /// Kept with the body: the connection lives as long as the stream.
    _sender: SendRequest<Empty<Bytes>>,
}

impl SseStream {
    /// Opens `GET /sse` with `filter` (as subscription `id`) on `stream`.
    pub async fn open(
        stream: TcpStream,
        server: &str,
        id: &str,
        filter: &Filter,
    ) -> Result<Self, String> {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::get(format!("/sse?{}", query(id, filter)))
            .header("host", server)
            .header("accept", "text/event-stream")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response.into_body();
        if !status.is_success() {
            let text = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&text)));
        }
        Ok(Self {
            body,
            buffer: BytesMut::new(),
            _sender: sender,
        })
    }

    /// The data of the next SSE event (its `data:` lines joined), or why
    /// the stream ended.
    pub async fn next_data(&mut self) -> Result<String, String> {
        loop {
            if let Some(data) = self.take_event() {
                if !data.is_empty() {
                    return Ok(data);
                }
                continue;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(mut chunk) = frame.into_data() {
                        while chunk.has_remaining() {
                            let piece = chunk.chunk();
                            self.buffer.extend_from_slice(piece);
                            let n = piece.len();
                            chunk.advance(n);
                        }
                    }
                }
                Some(Err(e)) => return Err(format!("read: {e}")),
                None => return Err("stream ended".to_owned()),
            }
        }
    }

    /// Splits one event (up to a blank line) off the buffer: its data, or
    /// an empty string for comments and data-less events.
    fn take_event(&mut self) -> Option<String> {
        let end = self.buffer.windows(2).position(|w| w == b"\n\n")?;
        let block = self.buffer.split_to(end + 2);
        let text = String::from_utf8_lossy(&block);
        let mut data = String::new();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        Some(data)
    }
}

/// The query of a filter: lists comma-separated, as `/sse` reads them.
fn query(id: &str, filter: &Filter) -> String {
    let mut q = format!("id={}", encode(id));
    for (key, value) in filter.iter() {
        let _ = match value {
            FilterValue::Values(values) if values.is_empty() => Ok(()),
            FilterValue::Values(values) => {
                let joined: Vec<String> = values.iter().map(|v| encode(v)).collect();
                write!(q, "&{key}={}", joined.join(","))
            }
            FilterValue::Number(n) => write!(q, "&{key}={n}"),
            FilterValue::Text(t) => write!(q, "&{key}={}", encode(t)),
        };
    }
    q
}

/// Percent-encodes what is not unreserved.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_becomes_the_sse_query() {
        let filter: Filter = serde_json::from_str(
            r#"{"symbols":["S001","S002"],"tiers":["daily"],"min_confidence":0.7,"min_priority":"high"}"#,
        )
        .unwrap();
        assert_eq!(
            query("s0", &filter),
            "id=s0&min_confidence=0.7&min_priority=high&symbols=S001,S002&tiers=daily"
        );
        assert_eq!(encode("a b"), "a%20b");
    }
}
