//! One WebSocket connection: client operations in, engine frames out,
//! server pings, the idle timeout and token expiry, in one task.
//!
//! Everything the server says goes through the connection's queue in the
//! hub, even protocol errors and closes, so the client sees them in the
//! order they happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tickcast_core::auth::{AuthError, Identity};
use tickcast_core::broadcast::{FrameReceiver, Outbound};
use tickcast_core::protocol::{ClientOp, CloseCode, ErrorCode, ServerMessage};
use tickcast_core::{Connection, ConnectionHandle, Hub};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use warp::ws::{Message, WebSocket};

use crate::{handshake, wire, WsConfig};

/// Serves one upgraded socket until it closes.
pub(crate) async fn run(socket: WebSocket, hub: Hub, config: Arc<WsConfig>, token: Option<String>) {
    let (mut sink, stream) = socket.split();
    let identity = match handshake::identify(config.auth.as_ref(), token.as_deref()) {
        Ok(identity) => identity,
        Err(e) => {
            let code = match e {
                AuthError::Expired => CloseCode::TokenExpired,
                _ => CloseCode::Unauthorized,
            };
            let error = ServerMessage::error(error_code(code), e.to_string(), None);
            refuse(&mut sink, error, code).await;
            return;
        }
    };
    let mut limits = hub.default_limits();
    limits.allowed_tiers = identity.as_ref().and_then(|i| i.tiers.clone());
    let user = identity.as_ref().map(|i| i.user.clone());
    let connection = match hub.connect(user, limits) {
        Ok(connection) => connection,
        Err(e) => {
            let code = e.close_code();
            refuse(
                &mut sink,
                ServerMessage::error(error_code(code), e.to_string(), None),
                code,
            )
            .await;
            return;
        }
    };
    serve(connection, sink, stream, config, identity.as_ref()).await;
}

fn error_code(code: CloseCode) -> ErrorCode {
    match code {
        CloseCode::TokenExpired => ErrorCode::TokenExpired,
        CloseCode::LimitExceeded => ErrorCode::LimitExceeded,
        _ => ErrorCode::Unauthorized,
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;
type Stream = futures_util::stream::SplitStream<WebSocket>;

async fn refuse(sink: &mut Sink, error: ServerMessage, code: CloseCode) {
    if let Some(text) = wire::message(&Outbound::Message(error)) {
        let _ = sink.send(text).await;
    }
    let _ = sink
        .send(Message::close_with(code.code(), code.reason()))
        .await;
    let _ = sink.close().await;
}

async fn serve(
    connection: Connection,
    sink: Sink,
    stream: Stream,
    config: Arc<WsConfig>,
    identity: Option<&Identity>,
) {
    let Connection { handle, frames } = connection;
    let handle = Arc::new(handle);
    let clock = Instant::now();
    let last_seen = Arc::new(AtomicU64::new(0));
    let (reader_done, reader_ended) = oneshot::channel::<()>();
    // The reader has a task of its own so that the socket is read only when
    // it is readable: polling it after every write would cost a read
    // attempt (and tungstenite's buffer preparation) per frame sent.
    let reader = tokio::spawn(read_loop(
        handle.clone(),
        stream,
        config.clone(),
        Activity {
            clock,
            last_seen: last_seen.clone(),
        },
        reader_done,
    ));
    let activity = Activity { clock, last_seen };
    write_loop(
        &handle,
        frames,
        sink,
        &config,
        identity,
        activity,
        reader_ended,
    )
    .await;
    reader.abort();
}

/// When the peer was last heard from, shared by the reader and the writer.
struct Activity {
    clock: Instant,
    /// Milliseconds since `clock`.
    last_seen: Arc<AtomicU64>,
}

impl Activity {
    fn touch(&self) {
        let ms = self.clock.elapsed().as_millis() as u64;
        self.last_seen.store(ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let seen = Duration::from_millis(self.last_seen.load(Ordering::Relaxed));
        self.clock.elapsed().saturating_sub(seen)
    }
}

async fn read_loop(
    handle: Arc<ConnectionHandle>,
    mut stream: Stream,
    config: Arc<WsConfig>,
    activity: Activity,
    _done: oneshot::Sender<()>,
) {
    while let Some(incoming) = stream.next().await {
        match incoming {
            Ok(message) => {
                activity.touch();
                if !on_message(&handle, &config, message) {
                    return;
                }
            }
            Err(e) => {
                if is_too_large(&e) {
                    handle.close(CloseCode::TooBig, None);
                    // Let the writer send the close before the task ends.
                    std::future::pending::<()>().await;
                }
                return;
            }
        }
    }
}

async fn write_loop(
    handle: &ConnectionHandle,
    mut frames: FrameReceiver,
    mut sink: Sink,
    config: &WsConfig,
    identity: Option<&Identity>,
    activity: Activity,
    mut reader_ended: oneshot::Receiver<()>,
) {
    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    // No token, no expiry: a deadline far enough never to fire.
    let expires_in = identity.map_or(Duration::from_secs(86_400 * 365), Identity::time_left);
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            out = frames.recv() => {
                let Some(out) = out else { break };
                match write(&mut sink, &mut frames, out).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => break,
                }
            }
            _ = &mut reader_ended => break,
            _ = ping.tick() => {
                if activity.silent_for() >= config.idle_timeout {
                    handle.close(CloseCode::Idle, None);
                } else if sink.send(Message::ping(Vec::new())).await.is_err() {
                    break;
                }
            }
            () = &mut expiry, if !handle.is_closed() => {
                let error = ServerMessage::error(ErrorCode::TokenExpired, "token expired", None);
                handle.close(CloseCode::TokenExpired, Some(error));
            }
        }
    }
    let _ = sink.close().await;
}

/// Most items written before one flush: bounds how long a busy connection
/// keeps its writer from reading.
const MAX_ITEMS_PER_FLUSH: usize = 64;

/// Writes `first` and whatever else is ready, with one flush (one syscall
/// for all of them). Returns false after writing a close.
async fn write(
    sink: &mut Sink,
    frames: &mut FrameReceiver,
    first: Outbound,
) -> Result<bool, warp::Error> {
    let mut next = Some(first);
    let mut written = 0;
    while let Some(out) = next.take() {
        let last = matches!(out, Outbound::Close(_));
        if let Some(message) = wire::message(&out) {
            sink.feed(message).await?;
        }
        if last {
            sink.flush().await?;
            return Ok(false);
        }
        written += 1;
        if written < MAX_ITEMS_PER_FLUSH {
            next = frames.try_recv();
        }
    }
    sink.flush().await?;
    Ok(true)
}

/// Handles one client message; false when the client closed.
fn on_message(handle: &ConnectionHandle, config: &WsConfig, message: Message) -> bool {
    if message.is_close() {
        return false;
    }
    if message.is_binary() {
        handle.close(CloseCode::Unsupported, None);
        return true;
    }
    let Ok(text) = message.to_str() else {
        // Ping and pong frames: tungstenite answers pings itself.
        return true;
    };
    if text.len() > config.max_frame_bytes {
        handle.send(ServerMessage::error(
            ErrorCode::FrameTooLarge,
            format!("frames are limited to {} bytes", config.max_frame_bytes),
            None,
        ));
        return true;
    }
    match ClientOp::parse(text) {
        Ok(op) => apply(handle, op),
        Err(e) => handle.send(ServerMessage::error(e.code, e.message, e.id)),
    }
    true
}

fn apply(handle: &ConnectionHandle, op: ClientOp) {
    match op {
        ClientOp::Subscribe { id, filter, since } => {
            if let Err(e) = handle.subscribe(&id, filter, since) {
                handle.send(e.to_message(&id));
            }
        }
        ClientOp::Unsubscribe { id } => {
            if let Err(e) = handle.unsubscribe(&id) {
                handle.send(e.to_message(&id));
            }
        }
        ClientOp::Ping { ts } => handle.send(ServerMessage::Pong { ts }),
    }
}

/// Whether a read failed because the peer sent more than the hard limit.
fn is_too_large(error: &warp::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}
