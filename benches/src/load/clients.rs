//! The WebSocket clients: one task per connection that connects from its
//! loopback source address, reads its welcome, subscribes, reports ready,
//! then counts what it receives until the run stops it.
//!
//! A connection's state is small: the socket, and a Roaring bitmap of the
//! event numbers it received (a duplicate is an insert that finds the
//! number already there).

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roaring::RoaringBitmap;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::filters::Filters;
use super::frame::{self, Frame, Scanned, Stamp};
use super::stats::{epoch_ns, record_latency, Shared};

/// The subprotocol the clients offer.
const SUBPROTOCOL: &str = "tickcast.v1.json";

/// What every client of a run shares.
#[derive(Debug)]
pub struct ClientContext {
    /// The server.
    pub server: SocketAddr,
    /// Source addresses to spread the sockets over (empty: the kernel
    /// picks).
    pub sources: Vec<Ipv4Addr>,
    /// Everyone's subscriptions.
    pub filters: Arc<Filters>,
    /// The run's counters.
    pub shared: Arc<Shared>,
    /// Longest connect + welcome + subscribe.
    pub connect_timeout: Duration,
    /// tungstenite's read buffer per connection: small when there are many
    /// mostly idle connections, larger when few carry much traffic.
    pub read_buffer: usize,
}

/// A connection's answer to the ramp: the mask of its acknowledged
/// subscriptions (bit `k` for `s{k}`), or why it failed.
#[derive(Debug)]
pub struct Ready {
    /// Connection number.
    pub conn: u32,
    /// Acknowledged subscriptions, or the failure.
    pub result: Result<u64, String>,
}

/// How a connection ended.
#[derive(Debug)]
pub struct Outcome {
    /// Connection number.
    pub conn: u32,
    /// Event numbers received.
    pub received: RoaringBitmap,
    /// Why it ended before the run stopped it (`None`: it lasted).
    pub ended_early: Option<String>,
}

thread_local! {
    /// Stamps of the frame being handled: one buffer per thread, not per
    /// connection.
    static STAMPS: RefCell<Vec<Option<Stamp>>> = const { RefCell::new(Vec::new()) };
}

type Ws = WebSocketStream<TcpStream>;

/// Runs connection `conn` until `stop` turns true (or the connection
/// ends), reporting once on `ready` when it is subscribed or has failed.
pub async fn run(
    ctx: Arc<ClientContext>,
    conn: u32,
    ready: mpsc::UnboundedSender<Ready>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut received = RoaringBitmap::new();
    let shared = &ctx.shared;
    let setup = tokio::time::timeout(ctx.connect_timeout, open(&ctx, conn, &mut received)).await;
    let (mut ws, mask) = match setup {
        Ok(Ok(open)) => open,
        Ok(Err(reason)) => return failed(&ctx, conn, &ready, received, reason),
        Err(_) => return failed(&ctx, conn, &ready, received, "timeout".to_owned()),
    };
    let subs = ctx.filters.of(conn as usize).len() as u64;
    Shared::add(&shared.established, 1);
    Shared::add(&shared.subscribed, u64::from(mask.count_ones()));
    Shared::add(&shared.refused, subs - u64::from(mask.count_ones()));
    let _ = ready.send(Ready {
        conn,
        result: Ok(mask),
    });
    drop(ready);

    // One future for the whole loop: registering a new one per frame costs.
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
    };
    tokio::pin!(stopped);
    let ended_early = loop {
        tokio::select! {
            biased;
            () = &mut stopped => break None,
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    on_text(shared, &mut received, text.as_str(), true);
                }
                Some(Ok(Message::Close(frame))) => {
                    break Some(match frame {
                        Some(f) => format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                        None => "closed by the server".to_owned(),
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(format!("read error: {e}")),
                None => break Some("connection closed".to_owned()),
            },
        }
    };
    match ended_early {
        Some(_) => Shared::add(&shared.closed_early, 1),
        None => {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        }
    }
    Outcome {
        conn,
        received,
        ended_early,
    }
}

fn failed(
    ctx: &ClientContext,
    conn: u32,
    ready: &mpsc::UnboundedSender<Ready>,
    received: RoaringBitmap,
    reason: String,
) -> Outcome {
    Shared::add(&ctx.shared.failed, 1);
    let _ = ready.send(Ready {
        conn,
        result: Err(reason.clone()),
    });
    Outcome {
        conn,
        received,
        ended_early: Some(reason),
    }
}

/// Connects, reads the welcome, subscribes and waits for every answer.
async fn open(
    ctx: &ClientContext,
    conn: u32,
    received: &mut RoaringBitmap,
) -> Result<(Ws, u64), String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {}", io_reason(&e)))?;
    if !ctx.sources.is_empty() {
        let source = ctx.sources[conn as usize % ctx.sources.len()];
        socket
            .bind(SocketAddr::from((source, 0)))
            .map_err(|e| format!("bind: {}", io_reason(&e)))?;
    }
    let stream = socket
        .connect(ctx.server)
        .await
        .map_err(|e| format!("connect: {}", io_reason(&e)))?;
    let _ = stream.set_nodelay(true);
    let mut request = format!("ws://{}/ws", ctx.server)
        .into_client_request()
        .map_err(|e| format!("request: {e}"))?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        SUBPROTOCOL.parse().expect("a valid header value"),
    );
    let config = WebSocketConfig::default().read_buffer_size(ctx.read_buffer);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;

    match next_text(&mut ws).await? {
        text if text.contains(r#""type":"welcome""#) => {}
        text => return Err(format!("expected a welcome, got {}", shorten(&text))),
    }
    let filters = &ctx.filters;
    let count = filters.of(conn as usize).len();
    for k in 0..count {
        ws.feed(Message::text(filters.subscribe_op(conn as usize, k)))
            .await
            .map_err(|e| format!("subscribe: {e}"))?;
    }
    ws.flush().await.map_err(|e| format!("subscribe: {e}"))?;

    let mut answered = 0u64;
    let mut mask = 0u64;
    let all = if count == 64 {
        u64::MAX
    } else {
        (1u64 << count) - 1
    };
    while answered != all {
        let text = next_text(&mut ws).await?;
        let Some(frame) = on_text(&ctx.shared, received, &text, false) else {
            continue;
        };
        let bit = frame
            .id
            .and_then(|id| id.strip_prefix('s'))
            .and_then(|k| k.parse::<u32>().ok())
            .filter(|&k| (k as usize) < count)
            .map(|k| 1u64 << k);
        match (frame.kind, bit) {
            ("subscribed", Some(bit)) => {
                answered |= bit;
                mask |= bit;
            }
            ("error", Some(bit)) => answered |= bit,
            _ => {}
        }
    }
    Ok((ws, mask))
}

/// The next text frame.
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(f) => format!("closed by the server: {}", u16::from(f.code)),
                    None => "closed by the server".to_owned(),
                })
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("connection closed".to_owned()),
        }
    }
}

/// Handles one text frame: counts its deliveries and notices. Returns the
/// frame's top-level fields (`None` if it did not parse).
/// `error` frames are counted only when `count_errors` (not those that
/// answer subscribes: they are counted as refused subscriptions).
fn on_text<'t>(
    shared: &Shared,
    received: &mut RoaringBitmap,
    text: &'t str,
    count_errors: bool,
) -> Option<Frame<'t>> {
    Shared::add(&shared.frames, 1);
    STAMPS.with(|stamps| {
        let mut stamps = stamps.borrow_mut();
        stamps.clear();
        let frame = if frame::scan(text, &mut stamps) == Scanned::Events {
            Frame {
                kind: "event",
                ..Frame::default()
            }
        } else {
            match frame::parse(text, &mut stamps) {
                Ok(frame) => frame,
                Err(_) => {
                    Shared::add(&shared.bad_frames, 1);
                    return None;
                }
            }
        };
        match frame.kind {
            "event" | "batch" => {
                let now = epoch_ns();
                let (mut duplicates, mut foreign) = (0, 0);
                shared.delivered(|histogram| {
                    let mut new = 0;
                    for stamp in stamps.iter() {
                        match stamp {
                            Some(s) if s.seq <= u64::from(u32::MAX) => {
                                if received.insert(s.seq as u32) {
                                    new += 1;
                                    record_latency(histogram, now, s.sent_ns);
                                } else {
                                    duplicates += 1;
                                }
                            }
                            _ => foreign += 1,
                        }
                    }
                    new
                });
                Shared::add(&shared.duplicates, duplicates);
                Shared::add(&shared.foreign, foreign);
            }
            "dropped" => {
                Shared::add(&shared.dropped_notices, 1);
                Shared::add(&shared.dropped_events, frame.count.unwrap_or(0));
            }
            "error" if count_errors => Shared::add(&shared.error_frames, 1),
            _ => {}
        }
        Some(frame)
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("{:?} (os error {code})", e.kind()),
        None => format!("{:?}", e.kind()),
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(120).collect()
}
