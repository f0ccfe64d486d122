//! A minimal WebSocket client: subscribes with a filter and prints every
//! frame the server sends.
//!
//! ```sh
//! cargo run -p tickcast-transport-ws --example subscribe -- \
//!     ws://127.0.0.1:8080/ws '{"symbols":["AAPL"],"min_confidence":0.8}'
//! ```
//!
//! Add `?token=JWT` to the URL when the server has auth on; pass a third
//! argument (the `resume` of the last frame it printed) to resume with
//! `since`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let filter: Value = serde_json::from_str(&args.next().unwrap_or_else(|| "{}".to_owned()))?;
    let since = args.next();

    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let mut subscribe = json!({"op": "subscribe", "id": "s1", "filter": filter});
    if let Some(since) = since {
        subscribe["since"] = since.into();
    }
    ws.send(Message::text(subscribe.to_string())).await?;
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => println!("{text}"),
            Message::Close(frame) => {
                println!("closed: {frame:?}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}
