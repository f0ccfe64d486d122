//! One WebSocket connection: a reader task for client operations, and the
//! writer (this task) for engine frames, server pings, the idle timeout and
//! token expiry.
//!
//! Everything the server says goes through the connection's queue in the
//! hub, even protocol errors and closes, so the client sees them in the
//! order they happened. The reader has a task of its own so that the socket
//! is read only when it is readable: polling it after every write would
//! cost a read attempt per frame sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tickcast_core::auth::{AuthError, Identity};
use tickcast_core::broadcast::{FrameReceiver, Outbound};
use tickcast_core::protocol::{ClientOp, CloseCode, ErrorCode, ServerMessage};
use tickcast_core::{Connection, ConnectionHandle, Hub};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::wire::{self, WsMessage};
use crate::{handshake, WsConfig};

/// Most items written before one flush: bounds how long a busy connection
/// keeps its writer from other work.
const MAX_ITEMS_PER_FLUSH: usize = 64;

/// Serves one upgraded socket (warp's or tokio-tungstenite's) until it
/// closes.
pub(crate) async fn run<S, M, E>(socket: S, hub: Hub, config: Arc<WsConfig>, token: Option<String>)
where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Send + Unpin + 'static,
    M: WsMessage,
    E: std::error::Error + Send + Sync + 'static,
{
    let (mut sink, stream) = socket.split();
    let identity = match handshake::identify(config.auth.as_ref(), token.as_deref()) {
        Ok(identity) => identity,
        Err(e) => {
            let code = match e {
                AuthError::Expired => CloseCode::TokenExpired,
                _ => CloseCode::Unauthorized,
            };
            refuse(&mut sink, code, e.to_string()).await;
            return;
        }
    };
    let mut limits = hub.default_limits();
    limits.allowed_tiers = identity.as_ref().and_then(|i| i.tiers.clone());
    let user = identity.as_ref().map(|i| i.user.clone());
    let connection = match hub.connect(user, limits) {
        Ok(connection) => connection,
        Err(e) => {
            refuse(&mut sink, e.close_code(), e.to_string()).await;
            return;
        }
    };
    serve(connection, sink, stream, config, identity.as_ref()).await;
}

/// Sends a final `error` and the close, for a connection the hub never saw.
async fn refuse<K, M>(sink: &mut K, code: CloseCode, message: String)
where
    K: Sink<M> + Unpin,
    M: WsMessage,
{
    let error_code = match code {
        CloseCode::TokenExpired => ErrorCode::TokenExpired,
        CloseCode::LimitExceeded => ErrorCode::LimitExceeded,
        _ => ErrorCode::Unauthorized,
    };
    let error = ServerMessage::error(error_code, message, None);
    if let Some(text) = wire::message::<M>(&Outbound::Message(error)) {
        let _ = sink.send(text).await;
    }
    let _ = sink.send(M::close(code.code(), code.reason())).await;
    let _ = sink.close().await;
}

async fn serve<K, R, M, E>(
    connection: Connection,
    sink: K,
    stream: R,
    config: Arc<WsConfig>,
    identity: Option<&Identity>,
) where
    K: Sink<M> + Send + Unpin,
    R: Stream<Item = Result<M, E>> + Send + Unpin + 'static,
    M: WsMessage,
    E: std::error::Error + Send + Sync + 'static,
{
    let Connection { handle, frames } = connection;
    let handle = Arc::new(handle);
    let activity = Activity::new();
    let (reader_done, reader_ended) = oneshot::channel::<()>();
    let reader = tokio::spawn(read_loop(
        handle.clone(),
        stream,
        config.clone(),
        activity.clone(),
        reader_done,
    ));
    write_loop(
        &handle,
        frames,
        sink,
        &config,
        identity,
        &activity,
        reader_ended,
    )
    .await;
    reader.abort();
}

/// When the peer was last heard from, shared by the reader and the writer.
#[derive(Clone)]
struct Activity {
    clock: Instant,
    /// Milliseconds since `clock`.
    last_seen: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            clock: Instant::now(),
            last_seen: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = self.clock.elapsed().as_millis() as u64;
        self.last_seen.store(ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let seen = Duration::from_millis(self.last_seen.load(Ordering::Relaxed));
        self.clock.elapsed().saturating_sub(seen)
    }
}

/// Reads client frames until the client leaves; dropping `_done` tells the
/// writer.
async fn read_loop<R, M, E>(
    handle: Arc<ConnectionHandle>,
    mut stream: R,
    config: Arc<WsConfig>,
    activity: Activity,
    _done: oneshot::Sender<()>,
) where
    R: Stream<Item = Result<M, E>> + Unpin,
    M: WsMessage,
    E: std::error::Error + 'static,
{
    while let Some(incoming) = stream.next().await {
        match incoming {
            Ok(message) => {
                activity.touch();
                if !on_message(&handle, &config, message) {
                    return;
                }
            }
            Err(e) => {
                if let Some(code) = close_code_for(&e) {
                    handle.close(code, None);
                    // The writer sends the close and ends the connection.
                    std::future::pending::<()>().await;
                }
                return;
            }
        }
    }
}

async fn write_loop<K, M>(
    handle: &ConnectionHandle,
    mut frames: FrameReceiver,
    mut sink: K,
    config: &WsConfig,
    identity: Option<&Identity>,
    activity: &Activity,
    mut reader_ended: oneshot::Receiver<()>,
) where
    K: Sink<M> + Unpin,
    M: WsMessage,
{
    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    // No token, no expiry: a deadline far enough never to fire.
    let expires_in = identity.map_or(Duration::from_secs(86_400 * 365), Identity::time_left);
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    let mut expired = false;
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
                } else if sink.send(M::ping()).await.is_err() {
                    break;
                }
            }
            () = &mut expiry, if !expired => {
                expired = true;
                let error = ServerMessage::error(ErrorCode::TokenExpired, "token expired", None);
                handle.close(CloseCode::TokenExpired, Some(error));
            }
        }
    }
    let _ = sink.close().await;
}

/// Writes `first` and whatever else is ready, with one flush (one syscall
/// for all of them). Returns false after writing a close.
async fn write<K, M>(
    sink: &mut K,
    frames: &mut FrameReceiver,
    first: Outbound,
) -> Result<bool, K::Error>
where
    K: Sink<M> + Unpin,
    M: WsMessage,
{
    let mut next = Some(first);
    let mut written = 0;
    while let Some(out) = next.take() {
        let last = matches!(out, Outbound::Close(_));
        if let Some(message) = wire::message::<M>(&out) {
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
fn on_message<M: WsMessage>(handle: &ConnectionHandle, config: &WsConfig, message: M) -> bool {
    if message.is_close() {
        return false;
    }
    if message.is_binary() {
        handle.close(CloseCode::Unsupported, None);
        return true;
    }
    let Some(text) = message.as_text() else {
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

/// The close code owed to a peer whose frame could not be read: 1009 for
/// more than the hard limit, 1007 for a text frame (or close reason) that
/// is not UTF-8. `None` for I/O and protocol errors, where the socket is
/// just dropped. warp wraps tungstenite's error, hence the walk down the
/// sources.
fn close_code_for(error: &(dyn std::error::Error + 'static)) -> Option<CloseCode> {
    let mut current = Some(error);
    while let Some(e) = current {
        match e.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(_)) => return Some(CloseCode::TooBig),
            Some(tungstenite::Error::Utf8(_)) => return Some(CloseCode::InvalidUtf8),
            _ => {}
        }
        current = e.source();
    }
    None
}
