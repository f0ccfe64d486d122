//! The accept loop: hyper over every accepted socket, with the deadlines
//! and bounds that keep slow or silent clients from holding the server.
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
//!   transport's lean upgrade path.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use warp::filters::BoxedFilter;
use warp::hyper::body::Incoming;
use warp::hyper::service::service_fn;
use warp::reply::Response;

use tickcast_core::session::SocketAbort;

use super::head_errors::JsonHeadErrors;
use super::pending::{PendingConnections, Place};

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

/// Serves `routes` on `listener` until `stop` resolves, then closes the
/// listener and lets in-flight requests finish (at most [`HTTP_DRAIN`]).
pub(crate) async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    limits: ListenerLimits,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = builder(limits);
    let pending = PendingConnections::new(limits.max_pending);
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
        let waiting_of_task = waiting.clone();
        let routes = routes.clone();
        let abort = SocketAbort::new();
        let abort_of_task = abort.clone();
        let service = service_fn(move |mut request: warp::http::Request<Incoming>| {
            arrived(&waiting);
            request.extensions_mut().insert(abort.clone());
            let request = lean_upgrade(request);
            let mut warp_service = warp::service(routes.clone());
            async move { tower_call(&mut warp_service, request).await }
        });
        let io = TokioIo::new(JsonHeadErrors::new(stream));
        let connection = builder.serve_connection_with_upgrades(io, service);
        let connection = graceful.watch(connection.into_owned());
        let unwanted = unwanted(waiting_of_task, evicted, limits.header_timeout);
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!("http connection ended: {e}");
                },
                why = unwanted => tracing::debug!("closed a connection that sent no request: {why}"),
                () = abort_of_task.aborted() => tracing::debug!("dropped a connection that took no data (http.write_timeout_ms)"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(HTTP_DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight HTTP requests still running after {HTTP_DRAIN:?}");
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

/// With the `ws` feature, moves a WebSocket upgrade onto the transport's
/// lean path (small buffers per connection).
fn lean_upgrade<B>(
    #[cfg_attr(not(feature = "ws"), allow(unused_mut))] mut request: warp::http::Request<B>,
) -> warp::http::Request<B> {
    #[cfg(feature = "ws")]
    tickcast_transport_ws::prepare_upgrade(&mut request);
    request
}

/// Resolves, with the reason, when the connection is to be dropped: it was
/// evicted from the waiting ones, or sent no request head within
/// `timeout`; never once its first request has arrived.
async fn unwanted(
    waiting: Waiting,
    evicted: oneshot::Receiver<()>,
    timeout: Duration,
) -> &'static str {
    // `evicted` also completes when the place is given up on arrival:
    // whether the connection still waits tells the two apart.
    let why = tokio::select! {
        _ = evicted => "evicted by a newer one (http.max_pending_connections)",
        () = tokio::time::sleep(timeout) => "http.header_timeout_ms passed",
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
