//! WebSocket client helpers for tests.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
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
