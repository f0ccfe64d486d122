//! HTTP long-polling (`transport=polling`) and its upgrade to WebSocket.
//!
//! - `GET` without `sid`: a new Engine.IO connection. The answer is its
//!   open packet (`upgrades: ["websocket"]`); its session runs in a task
//!   of its own, writing into the connection's buffer ([`PollSink`]) and
//!   reading what `POST`s deliver.
//! - `GET` with `sid`: waits until the buffer holds something (a ping
//!   comes every `pingInterval`), at most `pingInterval + pingTimeout`
//!   (then a noop `6`), and answers every buffered packet, joined with
//!   `\x1e`. After the session's close, the answer ends with Engine.IO's
//!   `1` and the `sid` is forgotten.
//! - `POST` with `sid`: the body (at most `maxPayload`) is split at
//!   `\x1e` and each packet goes to the session; answered `ok`.
//! - One `GET` and one `POST` at a time per `sid`: a second concurrent one
//!   is answered 400 and closes the connection, as Engine.IO does.
//! - Memory per connection is bounded: the buffer holds at most
//!   [`MAX_BUFFERED`] bytes; past it the session waits, and a client that
//!   does not poll for the write timeout is dropped by core's session.
//! - Upgrade: a WebSocket with the `sid` sends `2probe`, is answered
//!   `3probe`; a waiting `GET` is answered at once (with what is buffered,
//!   or a noop) so that the client pauses polling; the client's `5` moves
//!   the connection onto the WebSocket: what is still buffered is written
//!   there first, then every later packet.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use crate::handshake::{engine_error, engine_error_with};
use crate::packet::{EngineIn, Out, Packet, SEPARATOR};
use crate::{new_id, session, Endpoint};

/// Bytes a polling connection buffers for its client before the session
/// waits for a `GET`.
pub(crate) const MAX_BUFFERED: usize = 256 * 1024;
/// Client packets queued for the session: a `POST` waits past it.
const INBOUND_CAPACITY: usize = 64;

/// The WebSocket a connection moved to.
type WsSink = Pin<Box<dyn Sink<Out, Error = ()> + Send>>;

/// The open polling connections, by `sid`.
pub(crate) struct Table {
    max: usize,
    sessions: Mutex<HashMap<String, Arc<Connection>>>,
}

impl Table {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn contains(&self, sid: &str) -> bool {
        self.sessions.lock().contains_key(sid)
    }

    fn get(&self, sid: &str) -> Option<Arc<Connection>> {
        self.sessions.lock().get(sid).cloned()
    }

    fn remove(&self, sid: &str) {
        self.sessions.lock().remove(sid);
    }
}

/// Where the connection's packets go.
enum Carrier {
    Polling,
    /// Probed: `GET`s are answered at once.
    Upgrading,
    WebSocket(WsSink),
}

struct State {
    buffer: Vec<Packet>,
    buffered: usize,
    carrier: Carrier,
    get_waiting: bool,
    post_waiting: bool,
    /// The session wrote its last packet.
    ended: bool,
    /// Engine.IO's close (`1`) is in the buffer.
    close_sent: bool,
    /// The session waits for room in the buffer, or for the WebSocket.
    writer: Option<Waker>,
}

/// One polling connection.
pub(crate) struct Connection {
    state: Mutex<State>,
    /// Wakes the waiting `GET` (and the end's `linger`): every waiter
    /// makes its `notified()` before it looks at the state, and every
    /// change is announced with `notify_waiters`, so none is missed.
    readable: Notify,
    inbound: mpsc::Sender<EngineIn>,
}

impl Connection {
    /// Ends the session: it reads a failure next.
    fn fail(&self) {
        let _ = self.inbound.try_send(EngineIn::Failed(None));
    }

    fn wake_writer(state: &mut State) {
        if let Some(waker) = state.writer.take() {
            waker.wake();
        }
    }
}

/// `GET` without `sid`: opens a connection and answers its open packet.
pub(crate) fn open(endpoint: &Arc<Endpoint>, token: Option<String>) -> Response {
    let sid = new_id();
    let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
    let connection = Arc::new(Connection {
        state: Mutex::new(State {
            buffer: Vec::new(),
            buffered: 0,
            carrier: Carrier::Polling,
            get_waiting: false,
            post_waiting: false,
            ended: false,
            close_sent: false,
            writer: None,
        }),
        readable: Notify::new(),
        inbound: tx,
    });
    {
        let mut sessions = endpoint.polling.sessions.lock();
        if sessions.len() >= endpoint.polling.max {
            return engine_error_with(StatusCode::SERVICE_UNAVAILABLE, 3, "Too many sessions");
        }
        sessions.insert(sid.clone(), connection.clone());
    }
    let mut rx = rx;
    let packets = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let sink = PollSink {
        connection: connection.clone(),
    };
    let task_endpoint = endpoint.clone();
    let task_sid = sid.clone();
    tokio::spawn(async move {
        let session = session::run(task_endpoint.clone(), sink, Box::pin(packets), token).await;
        if let Some(session) = session {
            let _ = session.await;
        }
        finish(&connection);
        linger(&task_endpoint, &task_sid, &connection).await;
    });
    let open = endpoint.open_packet(&sid, true);
    text_answer(open.to_bytes())
}

/// Marks the connection ended, with Engine.IO's close for its client, even
/// when the session could not close its sink (dropped at the write
/// deadline).
fn finish(connection: &Connection) {
    {
        let mut state = connection.state.lock();
        state.ended = true;
        let polling = !matches!(state.carrier, Carrier::WebSocket(_));
        if polling && !state.close_sent {
            state.close_sent = true;
            state.buffered += 1;
            state.buffer.push(Packet::fixed("1"));
        }
    }
    connection.readable.notify_waiters();
}

/// Keeps an ended connection until its client has polled what is left
/// (its close), at most a heartbeat, then forgets it.
async fn linger(endpoint: &Endpoint, sid: &str, connection: &Connection) {
    let deadline = Instant::now() + endpoint.heartbeat();
    loop {
        let notified = connection.readable.notified();
        {
            let state = connection.state.lock();
            let drained = state.buffer.is_empty() && !state.get_waiting;
            if drained || matches!(state.carrier, Carrier::WebSocket(_)) {
                break;
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break;
        }
    }
    endpoint.polling.remove(sid);
}

/// `GET` with `sid`: the buffered packets, once there are some.
pub(crate) async fn get(endpoint: &Endpoint, sid: &str) -> Response {
    let Some(connection) = endpoint.polling.get(sid) else {
        return engine_error(1, "Session ID unknown");
    };
    {
        let mut state = connection.state.lock();
        if matches!(state.carrier, Carrier::WebSocket(_)) {
            return engine_error(3, "Bad request");
        }
        if state.get_waiting {
            drop(state);
            connection.fail();
            return engine_error(3, "Bad request");
        }
        state.get_waiting = true;
    }
    let deadline = Instant::now() + endpoint.heartbeat();
    let body = loop {
        let notified = connection.readable.notified();
        {
            let mut state = connection.state.lock();
            // Upgrading (or upgraded): the client is to stop polling.
            let upgrading = !matches!(state.carrier, Carrier::Polling);
            if !state.buffer.is_empty() || state.ended || upgrading {
                break take(&mut state);
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break take(&mut connection.state.lock());
        }
    };
    {
        let mut state = connection.state.lock();
        state.get_waiting = false;
        Connection::wake_writer(&mut state);
    }
    // `linger` waits for this answer.
    connection.readable.notify_waiters();
    text_answer(body)
}

/// The buffer as one payload (a noop when empty).
fn take(state: &mut State) -> Bytes {
    let packets = std::mem::take(&mut state.buffer);
    state.buffered = 0;
    Connection::wake_writer(state);
    if packets.is_empty() {
        return Bytes::from_static(b"6");
    }
    let size = packets.iter().map(|p| p.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size);
    for (i, p) in packets.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&[SEPARATOR]);
        }
        p.write_to(&mut out);
    }
    out.freeze()
}

/// `POST` with `sid`: the client's packets, to the session.
pub(crate) async fn post(endpoint: &Endpoint, sid: &str, body: Bytes) -> Response {
    let Some(connection) = endpoint.polling.get(sid) else {
        return engine_error(1, "Session ID unknown");
    };
    {
        let mut state = connection.state.lock();
        if state.post_waiting {
            drop(state);
            connection.fail();
            return engine_error(3, "Bad request");
        }
        state.post_waiting = true;
    }
    let deliver = async {
        for packet in body.split(|b| *b == SEPARATOR) {
            let item = if packet.first() == Some(&b'b') {
                EngineIn::Binary
            } else {
                EngineIn::Text(body.slice_ref(packet))
            };
            if connection.inbound.send(item).await.is_err() {
                return false;
            }
        }
        true
    };
    let delivered = tokio::time::timeout(endpoint.session.write_timeout, deliver).await;
    connection.state.lock().post_waiting = false;
    match delivered {
        Ok(true) => text_answer(Bytes::from_static(b"ok")),
        // The session ended, or does not read: the client is told so.
        _ => engine_error(1, "Session ID unknown"),
    }
}

/// `200 text/plain` with `body`.
fn text_answer(body: Bytes) -> Response {
    let mut response = warp::reply::Response::new(body.into());
    response.headers_mut().insert(
        "content-type",
        warp::http::HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response.into_response()
}

/// A WebSocket with the `sid` of a polling connection: the upgrade.
pub(crate) async fn upgrade<K, S>(endpoint: &Arc<Endpoint>, sid: &str, ws: K, mut packets: S)
where
    K: Sink<Out> + Send + Unpin + 'static,
    S: Stream<Item = EngineIn> + Send + Unpin + 'static,
{
    let mut ws = ws;
    let Some(connection) = endpoint.polling.get(sid) else {
        let _ = ws.close().await;
        return;
    };
    let deadline = Instant::now() + endpoint.heartbeat();
    let probe = tokio::time::timeout_at(deadline, packets.next()).await;
    let probed = matches!(&probe, Ok(Some(EngineIn::Text(t))) if &t[..] == b"2probe");
    let claimed = probed && {
        let mut state = connection.state.lock();
        let free = matches!(state.carrier, Carrier::Polling) && !state.ended;
        if free {
            state.carrier = Carrier::Upgrading;
        }
        free
    };
    if !claimed {
        let _ = tokio::time::timeout(endpoint.session.write_timeout, ws.close()).await;
        return;
    }
    connection.readable.notify_waiters();
    let answered = tokio::time::timeout(
        endpoint.session.write_timeout,
        ws.send(Out::Packet(Packet::fixed("3probe"))),
    )
    .await;
    let upgraded = matches!(answered, Ok(Ok(())))
        && matches!(
            tokio::time::timeout_at(deadline, packets.next()).await,
            Ok(Some(EngineIn::Text(t))) if &t[..] == b"5"
        );
    if !upgraded || !switch(endpoint, &connection, &mut ws).await {
        {
            let mut state = connection.state.lock();
            state.carrier = Carrier::Polling;
            Connection::wake_writer(&mut state);
        }
        let _ = tokio::time::timeout(endpoint.session.write_timeout, ws.close()).await;
        return;
    }
    let ws: WsSink = Box::pin(ws.sink_map_err(|_| ()));
    {
        let mut state = connection.state.lock();
        state.carrier = Carrier::WebSocket(ws);
        Connection::wake_writer(&mut state);
    }
    connection.readable.notify_waiters();
    endpoint.polling.remove(sid);
    // The client's packets now come over the WebSocket.
    while let Some(packet) = packets.next().await {
        let last = matches!(packet, EngineIn::Closed | EngineIn::Failed(_));
        if connection.inbound.send(packet).await.is_err() || last {
            return;
        }
    }
    let _ = connection.inbound.send(EngineIn::Closed).await;
}

/// Writes what the connection still buffers to the WebSocket until the
/// buffer is empty; false when the socket does not take it in time.
async fn switch<K>(endpoint: &Endpoint, connection: &Connection, ws: &mut K) -> bool
where
    K: Sink<Out> + Unpin,
{
    loop {
        let packets = {
            let mut state = connection.state.lock();
            state.buffered = 0;
            Connection::wake_writer(&mut state);
            std::mem::take(&mut state.buffer)
        };
        if packets.is_empty() {
            return true;
        }
        let sent =
            tokio::time::timeout(endpoint.session.write_timeout, ws.send(Out::Many(packets))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return false;
        }
    }
}

/// The session's sink on a polling connection: the buffer the `GET`s
/// drain, then the WebSocket once upgraded.
pub(crate) struct PollSink {
    connection: Arc<Connection>,
}

impl Sink<Out> for PollSink {
    type Error = ();

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut state = self.connection.state.lock();
        match &mut state.carrier {
            Carrier::WebSocket(ws) => ws.as_mut().poll_ready(cx),
            Carrier::Polling | Carrier::Upgrading => {
                // While upgrading, what is buffered goes to the WebSocket
                // first: the session waits for that.
                let upgrading = matches!(state.carrier, Carrier::Upgrading);
                if state.buffered >= MAX_BUFFERED || (upgrading && state.buffered > 0) {
                    state.writer = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(Ok(()))
            }
        }
    }

    fn start_send(self: Pin<&mut Self>, out: Out) -> Result<(), ()> {
        let mut state = self.connection.state.lock();
        if let Carrier::WebSocket(ws) = &mut state.carrier {
            return ws.as_mut().start_send(out);
        }
        let packets = match out {
            Out::Packet(p) => vec![p],
            Out::Many(ps) => ps,
            Out::Close(..) => {
                state.close_sent = true;
                vec![Packet::fixed("1")]
            }
        };
        state.buffered += packets.iter().map(Packet::len).sum::<usize>();
        state.buffer.extend(packets);
        drop(state);
        self.connection.readable.notify_waiters();
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut state = self.connection.state.lock();
        match &mut state.carrier {
            Carrier::WebSocket(ws) => ws.as_mut().poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut state = self.connection.state.lock();
        state.ended = true;
        let result = match &mut state.carrier {
            Carrier::WebSocket(ws) => ws.as_mut().poll_close(cx),
            _ => {
                if !state.close_sent {
                    // The client learns the connection is over at its
                    // next poll.
                    state.close_sent = true;
                    state.buffered += 1;
                    state.buffer.push(Packet::fixed("1"));
                }
                Poll::Ready(Ok(()))
            }
        };
        drop(state);
        self.connection.readable.notify_waiters();
        result
    }
}
