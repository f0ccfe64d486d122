//! [`serve`]: runs a warp filter with the lean WebSocket upgrade path and
//! graceful shutdown, on a hyper accept loop of its own.
//!
//! `warp::serve` would work too (the `/ws` filter then uses warp's
//! WebSocket buffers); this loop exists so that every request passes
//! through [`prepare_upgrade`](crate::prepare_upgrade) first.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use warp::filters::BoxedFilter;
use warp::hyper::body::Incoming;
use warp::hyper::service::service_fn;
use warp::reply::Response;

use crate::prepare_upgrade;

/// Longest wait, after `shutdown`, for in-flight HTTP requests to finish.
/// WebSocket connections are not waited for here: the hub's shutdown closes
/// them after their queued frames.
pub const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// Serves `routes` on `listener` until `shutdown` resolves, then stops
/// accepting and lets in-flight requests finish (at most [`HTTP_DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
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
        let routes = routes.clone();
        let service = service_fn(move |mut request: warp::http::Request<Incoming>| {
            prepare_upgrade(&mut request);
            let mut warp_service = warp::service(routes.clone());
            async move { tower_call(&mut warp_service, request).await }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("http connection ended: {e}");
            }
        });
    }
    if tokio::time::timeout(HTTP_DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight HTTP requests still running after {HTTP_DRAIN:?}");
    }
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
