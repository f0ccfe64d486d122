//! The session loop: frames out, keep-alives, idle timeout, token expiry
//! and the write deadline, the same for every transport.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream};
use tokio::time::{Instant, Sleep};

use super::activity::Activity;
use super::inbound::{read_loop, Inbound};
use super::outgoing::Outgoing;
use super::reader_link::{self, FromReader, WriterSide};
use super::{OpenError, Opened, SessionConfig, SocketAbort, WireCodec};
use crate::auth::Identity;
use crate::broadcast::{FrameReceiver, Outbound};
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};
use crate::ConnectionHandle;

/// Most queue items written in one round (one flush): bounds how long one
/// busy connection keeps its task from the others.
pub const MAX_ITEMS_PER_WRITE: usize = 64;
/// A round stops taking items beyond this many bytes.
pub const MAX_WRITE_BYTES: usize = 256 * 1024;

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
    codec.encode(&Outbound::Message(error.to_message()), &mut items);
    codec.encode(&Outbound::Close(error.close_code()), &mut items);
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
pub async fn serve<C, K, R>(
    opened: Opened,
    transport: Transport<C, K, R>,
    config: &SessionConfig,
) -> SessionEnd
where
    C: WireCodec,
    K: Sink<C::Item> + Unpin,
    R: Stream<Item = Inbound> + Send + Unpin + 'static,
{
    let Opened {
        connection,
        identity,
    } = opened;
    let handle = Arc::new(connection.handle);
    let activity = Activity::new();
    // A client that cannot speak cannot be idle.
    let idle_timeout = config.idle_timeout.filter(|_| transport.inbound.is_some());
    // Pings to answer; the channel closes when the reader ends.
    let (reader_side, writer_side) = reader_link::link();
    // Without a reader, its side lives as long as the session.
    let (reader, _no_reader) = match transport.inbound {
        Some(inbound) => {
            let task = tokio::spawn(read_loop(
                handle.clone(),
                inbound,
                config.max_frame_bytes,
                activity.clone(),
                reader_side,
            ));
            (Some(task), None)
        }
        None => (None, Some(reader_side)),
    };
    let mut writer = Writer {
        codec: transport.codec,
        sink: transport.sink,
        out: Outgoing::new(),
        scratch: Vec::new(),
        closing: false,
    };
    let timers = Timers {
        ping_interval: config.ping_interval,
        idle_timeout,
        write_timeout: config.write_timeout,
        expires_in: identity.as_ref().map(Identity::time_left),
    };
    let end = run(
        &handle,
        connection.frames,
        &mut writer,
        &activity,
        &writer_side,
        timers,
    )
    .await;
    match end {
        SessionEnd::WriteTimeout => {
            handle.hub().count_write_timeout();
            if let Some(abort) = &transport.abort {
                abort.abort();
            }
        }
        SessionEnd::Closed | SessionEnd::ClientGone => {
            let _ = tokio::time::timeout(config.write_timeout, writer.sink.close()).await;
        }
    }
    if let Some(reader) = reader {
        reader.abort();
        // Its handle on the hub connection is gone when this returns.
        let _ = reader.await;
    }
    end
}

/// The deadlines of one session.
struct Timers {
    ping_interval: Duration,
    idle_timeout: Option<Duration>,
    write_timeout: Duration,
    /// Time left on the client's token; `None` without one.
    expires_in: Option<Duration>,
}

/// The keep-alive, the token's expiry and the write deadline, behind one
/// timer: a writer woken per delivery polls one sleep, and each session
/// holds one.
struct Deadlines {
    ping_interval: Duration,
    next_ping: Instant,
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
    fn new(timers: &Timers, now: Instant) -> Self {
        let ping_interval = timers.ping_interval.max(Duration::from_millis(1));
        Self {
            ping_interval,
            next_ping: now + ping_interval,
            // An expiry beyond what the clock can count never comes.
            expires_at: timers.expires_in.and_then(|left| now.checked_add(left)),
            write_timeout: timers.write_timeout,
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
            bytes += self.codec.encode(&out, &mut self.scratch);
            items += 1;
            if matches!(out, Outbound::Close(_)) {
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

    /// One attempt at the round, without waiting: most rounds are written
    /// here and never touch the write deadline's timer.
    async fn try_write(&mut self) -> Poll<Result<(), K::Error>> {
        poll_fn(|cx| Poll::Ready(self.out.poll_write(&mut self.sink, cx))).await
    }
}

/// What the loop does after a branch.
enum Next {
    Continue,
    End(SessionEnd),
}

async fn run<C, K>(
    handle: &ConnectionHandle,
    mut frames: FrameReceiver,
    writer: &mut Writer<C, K>,
    activity: &Activity,
    from_reader: &WriterSide,
    timers: Timers,
) -> SessionEnd
where
    C: WireCodec,
    K: Sink<C::Item> + Unpin,
{
    let mut deadlines = Deadlines::new(&timers, Instant::now());
    let timer = tokio::time::sleep_until(deadlines.next());
    tokio::pin!(timer);
    loop {
        let writing = !writer.out.is_idle();
        let next = tokio::select! {
            biased;
            written = poll_fn(|cx| writer.out.poll_write(&mut writer.sink, cx)), if writing => {
                deadlines.stall_at = None;
                match written {
                    Ok(()) if writer.closing => Next::End(SessionEnd::Closed),
                    Ok(()) => Next::Continue,
                    Err(_) => Next::End(SessionEnd::ClientGone),
                }
            }
            out = frames.recv(), if !writing && !writer.closing => match out {
                Some(out) => {
                    writer.fill(out, &mut frames);
                    attempt(writer, &mut deadlines, timer.as_mut()).await
                }
                None => Next::End(SessionEnd::Closed),
            },
            heard = from_reader.recv() => match heard {
                FromReader::Ping(payload) if !writer.closing => {
                    writer.pong(payload);
                    attempt(writer, &mut deadlines, timer.as_mut()).await
                }
                FromReader::Ping(_) => Next::Continue,
                FromReader::Ended => Next::End(SessionEnd::ClientGone),
            },
            () = &mut timer => {
                let due = deadlines.due(Instant::now());
                timer.as_mut().reset(deadlines.next());
                if due.stalled {
                    return SessionEnd::WriteTimeout;
                }
                if due.expiry {
                    let error = ServerMessage::error(ErrorCode::TokenExpired, "token expired", None);
                    handle.close(CloseCode::TokenExpired, Some(error));
                }
                if !due.ping {
                    Next::Continue
                } else if timers.idle_timeout.is_some_and(|idle| activity.silent_for() >= idle) {
                    handle.close(CloseCode::Idle, None);
                    Next::Continue
                } else if !writing && !writer.closing {
                    writer.ping();
                    attempt(writer, &mut deadlines, timer.as_mut()).await
                } else {
                    Next::Continue
                }
            }
        };
        if let Next::End(end) = next {
            return end;
        }
    }
}

/// Writes a fresh round at once if the socket takes it; otherwise arms the
/// write deadline and leaves the rest to the loop.
async fn attempt<C, K>(
    writer: &mut Writer<C, K>,
    deadlines: &mut Deadlines,
    timer: Pin<&mut Sleep>,
) -> Next
where
    C: WireCodec,
    K: Sink<C::Item> + Unpin,
{
    match writer.try_write().await {
        Poll::Ready(Ok(())) if writer.closing => Next::End(SessionEnd::Closed),
        Poll::Ready(Ok(())) => Next::Continue,
        Poll::Ready(Err(_)) => Next::End(SessionEnd::ClientGone),
        Poll::Pending => {
            if deadlines.stall(Instant::now()) {
                timer.reset(deadlines.next());
            }
            Next::Continue
        }
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
