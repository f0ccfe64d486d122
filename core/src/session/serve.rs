//! The session loop: frames out, keep-alives, idle timeout, token expiry
//! and the write deadline, the same for every transport.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use super::activity::Activity;
use super::inbound::{read_loop, Inbound};
use super::outgoing::Outgoing;
use super::reader_link::{self, FromReader, ReaderSide, WriterSide};
use super::{OpenError, Opened, SessionConfig, SocketAbort, WireCodec};
use crate::auth::Identity;
use crate::broadcast::{FrameReceiver, Outbound, Polled};
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};
use crate::ConnectionHandle;

/// Most queue items written in one round (one flush): bounds how long one
/// busy connection keeps its task from the others.
const MAX_ITEMS_PER_WRITE: usize = 64;
/// A round stops taking items beyond this many bytes.
const MAX_WRITE_BYTES: usize = 256 * 1024;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The server's close was written (slow consumer, idle, token expiry,
    /// shutdown, a protocol violation).
    Closed,
    /// The client left, or its socket failed.
    ClientGone,
    /// The socket took nothing for the write timeout: dropped without a
    /// close.
    WriteTimeout,
}

/// The transport's side of a session: how frames are encoded, where they
/// go, and what the client sends.
pub struct Transport<C, K, R> {
    /// Encodes engine output for this transport.
    pub codec: C,
    /// Takes the encoded items (a WebSocket sink, an HTTP body channel).
    pub sink: K,
    /// Client messages, read by a task of their own; `None` for
    /// transports the client cannot write to. The session ends when this
    /// stream does.
    pub inbound: Option<R>,
    /// Fired when the session drops the client at the write deadline, for
    /// a socket the session does not own (see [`SocketAbort`]).
    pub abort: Option<SocketAbort>,
}

/// Sends a refused client the `error` that explains it and the close,
/// within the write deadline.
pub async fn refuse<C, K>(codec: &mut C, sink: &mut K, error: &OpenError, write_timeout: Duration)
where
    C: WireCodec,
    K: Sink<C::Item> + Unpin,
{
    let mut items = Vec::new();
    codec.encode(Outbound::Message(error.to_message()), &mut items);
    codec.encode(Outbound::Close(error.close_code()), &mut items);
    codec.seal(&mut items);
    let write = async {
        for item in items {
            sink.feed(item).await?;
        }
        sink.close().await
    };
    let _ = tokio::time::timeout(write_timeout, write).await;
}

/// Serves an admitted connection until it ends: writes its frames,
/// applies client operations, sends keep-alives, closes idle clients and
/// expired tokens, and drops a socket that takes nothing for
/// [`SessionConfig::write_timeout`] whatever it is doing.
///
/// The future holds one `Session` and one timer: an idle connection's
/// writer costs a few hundred bytes (an `async fn` here would keep its
/// arguments beside the state it builds from them).
pub fn serve<C, K, R>(
    opened: Opened,
    transport: Transport<C, K, R>,
    config: &SessionConfig,
) -> impl Future<Output = SessionEnd> + Send
where
    C: WireCodec,
    K: Sink<C::Item> + Unpin + Send + 'static,
    K::Error: Send,
    R: Stream<Item = Inbound> + Send + Unpin + 'static,
{
    let session = Session::new(opened, transport, config);
    session.run()
}

/// One connection's writer side: everything the session loop works on.
struct Session<C: WireCodec, K, R> {
    handle: Arc<ConnectionHandle>,
    frames: FrameReceiver,
    writer: Writer<C, K>,
    activity: Activity,
    /// The client's stream until the reader task takes it.
    inbound: Option<R>,
    max_frame_bytes: usize,
    reader: Option<JoinHandle<()>>,
    from_reader: WriterSide,
    /// The reader's side of the link while no reader holds it.
    reader_side: Option<ReaderSide>,
    deadlines: Deadlines,
    abort: Option<SocketAbort>,
}

impl<C, K, R> Session<C, K, R>
where
    C: WireCodec,
    K: Sink<C::Item> + Unpin + Send + 'static,
    K::Error: Send,
    R: Stream<Item = Inbound> + Send + Unpin + 'static,
{
    fn new(opened: Opened, transport: Transport<C, K, R>, config: &SessionConfig) -> Self {
        let Opened {
            connection,
            identity,
        } = opened;
        let (reader_side, from_reader) = reader_link::link();
        // A client that cannot speak cannot be idle.
        let idle_timeout = config.idle_timeout.filter(|_| transport.inbound.is_some());
        let expires_in = identity.as_ref().map(Identity::time_left);
        Self {
            handle: Arc::new(connection.handle),
            frames: connection.frames,
            writer: Writer {
                codec: transport.codec,
                sink: transport.sink,
                out: Outgoing::new(),
                scratch: Vec::new(),
                closing: false,
            },
            activity: Activity::new(),
            inbound: transport.inbound,
            max_frame_bytes: config.max_frame_bytes,
            reader: None,
            from_reader,
            reader_side: Some(reader_side),
            deadlines: Deadlines::new(config, idle_timeout, expires_in, Instant::now()),
            abort: transport.abort,
        }
    }

    async fn run(mut self) -> SessionEnd {
        self.start_reader();
        let timer = tokio::time::sleep_until(self.deadlines.next());
        tokio::pin!(timer);
        let end = poll_fn(|cx| self.poll_run(timer.as_mut(), cx)).await;
        match end {
            SessionEnd::WriteTimeout => {
                self.handle.hub().count_write_timeout();
                if let Some(abort) = &self.abort {
                    abort.abort();
                }
            }
            SessionEnd::Closed | SessionEnd::ClientGone => {
                // The close frame, within the write deadline.
                timer
                    .as_mut()
                    .reset(Instant::now() + self.deadlines.write_timeout);
                let sink = &mut self.writer.sink;
                poll_fn(|cx| match sink.poll_close_unpin(cx) {
                    Poll::Ready(_) => Poll::Ready(()),
                    Poll::Pending => timer.as_mut().poll(cx),
                })
                .await;
            }
        }
        if let Some(reader) = self.reader.take() {
            reader.abort();
            // Its handle on the hub connection is gone when this returns.
            let _ = reader.await;
        }
        end
    }

    /// Reads the client's frames in a task of their own, so that a client
    /// flooding the socket never delays its own deliveries.
    fn start_reader(&mut self) {
        let Some(inbound) = self.inbound.take() else {
            // Without a reader, its side lives as long as the session.
            return;
        };
        let Some(reader_side) = self.reader_side.take() else {
            return;
        };
        self.reader = Some(tokio::spawn(read_loop(
            self.handle.clone(),
            inbound,
            self.max_frame_bytes,
            self.activity.clone(),
            reader_side,
        )));
    }

    /// The session loop as one poll: writes the round in flight, takes the
    /// next one from the queue, answers the reader, and keeps the
    /// deadlines, all on one timer. The queue's own waits (a batch window,
    /// the rate limit) move that timer earlier instead of arming another.
    fn poll_run(&mut self, mut timer: Pin<&mut Sleep>, cx: &mut Context<'_>) -> Poll<SessionEnd> {
        loop {
            if let Some(end) = self.poll_write(timer.as_mut(), cx) {
                return Poll::Ready(end);
            }
            let writing = !self.writer.out.is_idle();
            if !writing && !self.writer.closing {
                match self.frames.poll_recv(cx) {
                    Polled::Ready(Some(out)) => {
                        self.writer.fill(out, &mut self.frames);
                        continue;
                    }
                    Polled::Ready(None) => return Poll::Ready(SessionEnd::Closed),
                    Polled::Pending { until: Some(at) } if at < timer.deadline() => {
                        timer.as_mut().reset(at);
                    }
                    Polled::Pending { .. } => {}
                }
            }
            match self.from_reader.poll_recv(cx) {
                Poll::Ready(FromReader::Ping(payload)) => {
                    if !self.writer.closing {
                        self.writer.pong(payload);
                    }
                    continue;
                }
                Poll::Ready(FromReader::Ended) => return Poll::Ready(SessionEnd::ClientGone),
                Poll::Pending => {}
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some(end) = self.on_timer(timer.as_mut(), writing) {
                return Poll::Ready(end);
            }
        }
    }

    /// Moves the round in flight into the socket. Most rounds are written
    /// at once and never touch the timer; one the socket does not take
    /// arms the write deadline.
    fn poll_write(
        &mut self,
        mut timer: Pin<&mut Sleep>,
        cx: &mut Context<'_>,
    ) -> Option<SessionEnd> {
        if self.writer.out.is_idle() {
            return None;
        }
        match self.writer.out.poll_write(&mut self.writer.sink, cx) {
            Poll::Ready(Ok(())) => {
                self.deadlines.stall_at = None;
                self.writer.closing.then_some(SessionEnd::Closed)
            }
            Poll::Ready(Err(_)) => Some(SessionEnd::ClientGone),
            Poll::Pending => {
                if self.deadlines.stall(Instant::now()) {
                    timer.as_mut().reset(self.deadlines.next());
                }
                None
            }
        }
    }

    /// The timer fired: whatever is due (a ping, the idle timeout, the
    /// token's expiry, the write deadline), or only a queue's wait.
    fn on_timer(&mut self, mut timer: Pin<&mut Sleep>, writing: bool) -> Option<SessionEnd> {
        let due = self.deadlines.due(Instant::now());
        timer.as_mut().reset(self.deadlines.next());
        if due.stalled {
            return Some(SessionEnd::WriteTimeout);
        }
        if due.expiry {
            let error = ServerMessage::error(ErrorCode::TokenExpired, "token expired", None);
            self.handle.close(CloseCode::TokenExpired, Some(error));
        }
        if due.ping {
            let idle = self.deadlines.idle_timeout;
            if idle.is_some_and(|idle| self.activity.silent_for() >= idle) {
                self.handle.close(CloseCode::Idle, None);
            } else if !writing && !self.writer.closing {
                self.writer.ping();
            }
        }
        None
    }
}

/// The keep-alive, the idle timeout, the token's expiry and the write
/// deadline, behind one timer: a writer woken per delivery polls one
/// sleep, and each session holds one.
struct Deadlines {
    ping_interval: Duration,
    next_ping: Instant,
    /// Checked at each ping; `None` for a client that cannot speak.
    idle_timeout: Option<Duration>,
    /// `None` without a token, or once it expired.
    expires_at: Option<Instant>,
    write_timeout: Duration,
    /// Armed while a round waits on the socket.
    stall_at: Option<Instant>,
}

/// What [`Deadlines::due`] found due.
struct Due {
    ping: bool,
    expiry: bool,
    stalled: bool,
}

impl Deadlines {
    fn new(
        config: &SessionConfig,
        idle_timeout: Option<Duration>,
        expires_in: Option<Duration>,
        now: Instant,
    ) -> Self {
        let ping_interval = config.ping_interval.max(Duration::from_millis(1));
        Self {
            ping_interval,
            next_ping: now + ping_interval,
            idle_timeout,
            // An expiry beyond what the clock can count never comes.
            expires_at: expires_in.and_then(|left| now.checked_add(left)),
            write_timeout: config.write_timeout,
            stall_at: None,
        }
    }

    fn next(&self) -> Instant {
        [self.expires_at, self.stall_at]
            .into_iter()
            .flatten()
            .fold(self.next_ping, Instant::min)
    }

    /// A round has started waiting on the socket at `now`; true when that
    /// moved the next deadline (a round already waiting keeps its own).
    fn stall(&mut self, now: Instant) -> bool {
        if self.stall_at.is_some() {
            return false;
        }
        self.stall_at = Some(now + self.write_timeout);
        true
    }

    /// What is due at `now`; the next ping is one interval after it (a
    /// late tick is not caught up), and an expiry is reported once.
    fn due(&mut self, now: Instant) -> Due {
        let ping = now >= self.next_ping;
        if ping {
            self.next_ping = now + self.ping_interval;
        }
        let expiry = self.expires_at.is_some_and(|at| now >= at);
        if expiry {
            self.expires_at = None;
        }
        let stalled = self.stall_at.is_some_and(|at| now >= at);
        Due {
            ping,
            expiry,
            stalled,
        }
    }
}

/// The sending half: the codec, the sink and the round in flight.
struct Writer<C: WireCodec, K> {
    codec: C,
    sink: K,
    out: Outgoing<C::Item>,
    scratch: Vec<C::Item>,
    /// The close is in the round: the session ends once it is written.
    closing: bool,
}

impl<C, K> Writer<C, K>
where
    C: WireCodec,
    K: Sink<C::Item> + Unpin,
{
    /// Encodes `first` and whatever else the queue has ready, up to the
    /// round's limits.
    fn fill(&mut self, first: Outbound, frames: &mut FrameReceiver) {
        let mut next = Some(first);
        let (mut items, mut bytes) = (0, 0);
        while let Some(out) = next.take() {
            let closing = matches!(out, Outbound::Close(_));
            bytes += self.codec.encode(out, &mut self.scratch);
            items += 1;
            if closing {
                self.closing = true;
                break;
            }
            if items < MAX_ITEMS_PER_WRITE && bytes < MAX_WRITE_BYTES {
                next = frames.try_recv();
            }
        }
        self.codec.seal(&mut self.scratch);
        self.out.append(std::mem::take(&mut self.scratch));
    }

    fn ping(&mut self) {
        let ping = self.codec.ping();
        self.out.extend([ping]);
    }

    fn pong(&mut self, payload: Bytes) {
        let pong = self.codec.pong(payload);
        self.out.extend(pong);
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
