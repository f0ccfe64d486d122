//! The accept loop: hyper over every accepted socket (but `GET /sse`, see
//! below), with the deadlines and bounds that keep slow or silent clients
//! from holding the server.
//!
//! - A request head must arrive within `http.header_timeout_ms` of its
//!   first byte (hyper's timer), and a new connection's first request
//!   within the same time of the accept, whatever protocol it speaks.
//! - At most `http.max_pending_connections` accepted connections may be
//!   waiting for their first request head; a new one beyond that closes the
//!   oldest waiting one once it has waited a second ([`PendingConnections`]),
//!   so sockets trickling headers cannot take every file descriptor while
//!   `/health` and WebSocket clients wait. While all of them are younger
//!   (a reconnect storm the server is slow to read) the loop stops
//!   accepting and newcomers wait in the kernel's backlog instead.
//! - hyper's own answers to unparsable heads get JSON bodies
//!   ([`JsonHeadErrors`]).
//! - Every request carries the connection's [`SocketAbort`]: a stream
//!   (SSE) whose client takes no data for `http.write_timeout_ms` fires it,
//!   and the connection is dropped here, since hyper, blocked on the full
//!   socket, would never poll the stream again.
//! - With the `ws` feature every request first passes the WebSocket
//!   transport's lean upgrade path (with `socketio`, upgrades to
//!   `/socket.io/` pass Socket.IO's instead).
//! - With the `sse` feature a connection whose first request is
//!   `GET /sse` (HTTP/1.x, the path exactly, with or without a query) never
//!   reaches hyper: [`LeanSse`](tickcast_transport_sse::LeanSse) reads its
//!   head (hyper's limits, the same header deadline and place among the
//!   waiting connections, the same JSON answers to heads it cannot read),
//!   answers as the `/sse` filter would, and streams on the socket itself,
//!   without hyper's per-connection buffers. Anything else (including the
//!   HTTP/2 preface) goes to hyper with the bytes read to decide given
//!   back, and so does a keep-alive connection after an error answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use warp::filters::BoxedFilter;
use warp::hyper::body::Incoming;
use warp::hyper::service::service_fn;
use warp::reply::Response;

use tickcast_core::session::SocketAbort;

use super::head_errors::JsonHeadErrors;
use super::pending::{PendingConnections, Place};
use crate::transports::{self, Transport};

/// Longest wait, once the listener is closed, for in-flight HTTP requests
/// to finish.
pub const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// What the accept loop enforces (`[http]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenerLimits {
    /// Deadline of a request head, and of a connection's first request.
    pub header_timeout: Duration,
    /// Connections waiting for their first request head.
    pub max_pending: usize,
}

/// What answers the connections: the routes through hyper, and with the
/// `sse` feature the lean `/sse` path.
#[derive(Clone)]
pub(crate) struct Endpoints {
    /// Every endpoint, as one warp filter.
    pub routes: BoxedFilter<(Response,)>,
    /// `GET /sse` outside hyper.
    #[cfg(feature = "sse")]
    pub sse: tickcast_transport_sse::LeanSse,
}

/// Serves `endpoints` on `listener` until `stop` resolves, then closes the
/// listener and lets in-flight requests finish (at most [`HTTP_DRAIN`]).
pub(crate) async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    limits: ListenerLimits,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let server = Arc::new(ConnectionServer {
        builder: builder(limits),
        endpoints,
        transports: transports::built().into(),
        #[cfg(feature = "sse")]
        limits,
    });
    let pending = PendingConnections::new(limits.max_pending);
    // Tells connections still waiting for their first request that the
    // listener closed (hyper's graceful shutdown does that for its own).
    let (closing, closed) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        if let Some(wait) = pending.crowded(tokio::time::Instant::now()) {
            // A storm the server is slow to read: leave newcomers in the
            // kernel's backlog rather than evict clients that did nothing
            // wrong. Looked at again every few ms, as requests arrive.
            tokio::select! {
                () = tokio::time::sleep(wait.min(CROWDED_RECHECK)) => continue,
                () = &mut stop => break,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the
                // connections we have, retry shortly.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (place, evicted) = pending.admit(tokio::time::Instant::now());
        let waiting: Waiting = Arc::new(Mutex::new(Some(place)));
        let unwanted = Box::pin(unwanted(
            waiting.clone(),
            evicted,
            closed.clone(),
            limits.header_timeout,
        ));
        // Taken here, before any shutdown: a watcher made after it would
        // miss it.
        let watcher = graceful.watcher();
        tokio::spawn(server.clone().run(stream, waiting, unwanted, watcher));
    }
    drop(listener);
    let _ = closing.send(());
    if tokio::time::timeout(HTTP_DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight HTTP requests still running after {HTTP_DRAIN:?}");
    }
}

/// Resolves, with the reason, when a connection that has not sent its first
/// request is to be dropped (see [`unwanted`]). Boxed: the lean `/sse`
/// path drops it as soon as the request head is in.
type Unwanted = Pin<Box<dyn Future<Output = &'static str> + Send>>;

/// Serves accepted connections; shared by all of them.
struct ConnectionServer {
    builder: Builder<TokioExecutor>,
    endpoints: Endpoints,
    /// Their lean upgrade paths.
    transports: Arc<[Transport]>,
    /// Bounds the lean path's answers to heads it cannot read.
    #[cfg(feature = "sse")]
    limits: ListenerLimits,
}

impl ConnectionServer {
    /// Serves one accepted connection until it ends.
    async fn run(
        self: Arc<Self>,
        stream: TcpStream,
        waiting: Waiting,
        unwanted: Unwanted,
        watcher: Watcher,
    ) {
        #[cfg(feature = "sse")]
        let Some((stream, unwanted, watcher)) =
            self.lean_sse(stream, &waiting, unwanted, watcher).await
        else {
            return;
        };
        // Boxed: a lean stream's task does not carry room for hyper's
        // connection.
        Box::pin(self.hyper(stream, waiting, unwanted, watcher)).await;
    }

    /// Serves the connection on the lean `/sse` path when its first request
    /// is `GET /sse`; otherwise (or after an error answer on a keep-alive
    /// connection) returns it for hyper, with what was read of it given
    /// back, and the deadline and graceful-shutdown watcher hyper's
    /// connection goes on with.
    #[cfg(feature = "sse")]
    async fn lean_sse(
        &self,
        mut stream: TcpStream,
        waiting: &Waiting,
        mut unwanted: Unwanted,
        watcher: Watcher,
    ) -> Option<(tickcast_transport_sse::Replay<TcpStream>, Unwanted, Watcher)> {
        use tickcast_transport_sse::{FirstBytes, Replay, Served};
        use tokio::io::AsyncWriteExt;

        let first = tokio::select! {
            first = FirstBytes::read(&mut stream) => first.ok()?,
            why = &mut unwanted => {
                tracing::debug!("closed a connection that sent no request: {why}");
                return None;
            }
        };
        if !first.is_sse() {
            let replay = Replay::new(bytes::Bytes::copy_from_slice(first.as_bytes()), stream);
            return Some((replay, unwanted, watcher));
        }
        let sse = &self.endpoints.sse;
        let head = tokio::select! {
            head = sse.read_head(&mut stream, &first) => head,
            why = &mut unwanted => {
                tracing::debug!("closed a connection that sent no request: {why}");
                return None;
            }
        };
        let head = match head {
            Ok(head) => head,
            Err(error) => {
                // The JSON answer hyper's would have been replaced with.
                let answer = error
                    .status()
                    .and_then(|status| super::head_errors::answer(status.as_u16()));
                if let Some(answer) = answer {
                    let write = async {
                        stream.write_all(&answer).await?;
                        stream.shutdown().await
                    };
                    let _ = tokio::time::timeout(self.limits.header_timeout, write).await;
                }
                tracing::debug!("closed a connection whose /sse request head is bad: {error}");
                return None;
            }
        };
        arrived(waiting);
        // Its deadline is met: nothing of it is kept while the stream lasts.
        drop(unwanted);
        // `watcher` stays with the stream, as with a stream hyper serves:
        // the listener's graceful shutdown waits for it (the hub's shutdown,
        // which comes first, ends it with 1001), and a keep-alive
        // connection handed back to hyper is watched on.
        match sse.serve(stream, head).await {
            Served::Closed => None,
            Served::KeepAlive { io, leftover } => {
                let unwanted: Unwanted = Box::pin(std::future::pending());
                Some((Replay::new(leftover, io), unwanted, watcher))
            }
        }
    }

    /// Serves the connection with hyper until it ends, is unwanted, or a
    /// stream on it takes no data for the write deadline.
    async fn hyper<I>(&self, io: I, waiting: Waiting, unwanted: Unwanted, watcher: Watcher)
    where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let routes = self.endpoints.routes.clone();
        let transports = self.transports.clone();
        let abort = SocketAbort::new();
        let abort_of_task = abort.clone();
        let service = service_fn(move |mut request: warp::http::Request<Incoming>| {
            arrived(&waiting);
            request.extensions_mut().insert(abort.clone());
            transports::lean_upgrade(&transports, &mut request);
            let mut warp_service = warp::service(routes.clone());
            async move { tower_call(&mut warp_service, request).await }
        });
        let io = TokioIo::new(JsonHeadErrors::new(io));
        let connection = self.builder.serve_connection_with_upgrades(io, service);
        let connection = watcher.watch(connection.into_owned());
        tokio::select! {
            ended = connection => if let Err(e) = ended {
                tracing::debug!("http connection ended: {e}");
            },
            why = unwanted => tracing::debug!("closed a connection that sent no request: {why}"),
            () = abort_of_task.aborted() => tracing::debug!("dropped a connection that took no data (http.write_timeout_ms)"),
        }
    }
}

/// How often a crowded accept loop looks whether it may accept again.
const CROWDED_RECHECK: Duration = Duration::from_millis(5);

/// Most waiting connections when `http.max_pending_connections` is unset.
const DEFAULT_MAX_PENDING: u64 = 1024;

/// `http.max_pending_connections`, or when unset a quarter of the
/// process's file-descriptor limit (at most [`DEFAULT_MAX_PENDING`]): the
/// waiting connections must never take so many descriptors that accepts
/// fail before the eviction can run.
pub(crate) fn max_pending(configured: Option<usize>) -> usize {
    let fd_limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _hard)| soft);
    if let Some(max) = configured {
        if let Ok(&soft) = fd_limit.as_ref() {
            if (max as u64).saturating_mul(4) > soft {
                tracing::warn!(
                    max_pending = max,
                    fd_limit = soft,
                    "http.max_pending_connections is over a quarter of the file-descriptor limit: \
                     slow clients could take every descriptor; lower it or raise the limit (ulimit -n)"
                );
            }
        }
        return max;
    }
    let auto = fd_limit.map_or(DEFAULT_MAX_PENDING, |soft| {
        (soft / 4).clamp(1, DEFAULT_MAX_PENDING)
    });
    usize::try_from(auto).unwrap_or(1)
}

/// hyper's connection settings: HTTP/1 with the header deadline, HTTP/2
/// with pings that find dead peers.
fn builder(limits: ListenerLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    builder
}

/// A connection's place among the waiting ones until its first request
/// arrives (then `None`).
type Waiting = Arc<Mutex<Option<Place>>>;

/// The first request of the connection `waiting` belongs to has arrived.
fn arrived(waiting: &Waiting) {
    if let Ok(mut waiting) = waiting.lock() {
        waiting.take();
    }
}

/// Resolves, with the reason, when the connection is to be dropped: it was
/// evicted from the waiting ones, sent no request head within `timeout`, or
/// the listener closed before it did; never once its first request has
/// arrived.
async fn unwanted(
    waiting: Waiting,
    evicted: oneshot::Receiver<()>,
    mut closed: watch::Receiver<()>,
    timeout: Duration,
) -> &'static str {
    // `evicted` also completes when the place is given up on arrival:
    // whether the connection still waits tells the two apart.
    let why = tokio::select! {
        _ = evicted => "evicted by a newer one (http.max_pending_connections)",
        () = tokio::time::sleep(timeout) => "http.header_timeout_ms passed",
        _ = closed.changed() => "the server is shutting down",
    };
    let still_waiting = waiting.lock().is_ok_and(|w| w.is_some());
    if !still_waiting {
        std::future::pending::<()>().await;
    }
    why
}

async fn tower_call<S>(
    service: &mut S,
    request: warp::http::Request<Incoming>,
) -> Result<Response, Infallible>
where
    S: tower_service::Service<
        warp::http::Request<Incoming>,
        Response = Response,
        Error = Infallible,
    >,
{
    service.call(request).await
}
