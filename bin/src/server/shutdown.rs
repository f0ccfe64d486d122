//! Graceful shutdown: the signal that starts it and the drain that follows.
//!
//! On the signal the server stops accepting connections, the hub is shut
//! down (every connection queue sends what it holds, then closes with
//! 1001, and publishes are refused), and the server waits up to
//! [`DRAIN_TIMEOUT`] for client connections and in-flight requests to
//! finish before it gives up on the rest.

use std::future::Future;
use std::time::Duration;

use tickcast_core::Hub;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// Longest wait for connections to drain after the shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the drain looks at the connection count.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// Listens for SIGINT (Ctrl-C) and SIGTERM from this call on; the future
/// resolves on the first one, with its name. Call it before the server
/// starts listening, so that no signal falls between the two and kills the
/// process the hard way. Needs a Tokio runtime.
pub fn signal() -> impl Future<Output = &'static str> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                },
                (interrupt, terminate) => {
                    for error in [interrupt.err(), terminate.err()].into_iter().flatten() {
                        tracing::error!("cannot listen for a shutdown signal: {error}");
                    }
                    ctrl_c().await
                }
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c()
}

/// Ctrl-C alone; never resolves when even that cannot be listened for.
async fn ctrl_c() -> &'static str {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!("cannot listen for Ctrl-C ({error}); the server runs until killed");
        std::future::pending::<()>().await;
    }
    "SIGINT"
}

/// Serves `routes` on `listener` until `shutdown` resolves, then drains.
pub(crate) async fn run(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    hub: Hub,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) {
    let (stop_accepting, stopped) = oneshot::channel::<()>();
    let server = http_server(listener, routes, async move {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    });
    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = shutdown => {}
        () = &mut server => {
            tracing::error!("the HTTP server stopped by itself; shutting the hub down");
            hub.shutdown();
            return;
        }
    }
    tracing::info!(
        connections = hub.connection_count(),
        "shutting down: no new connections; open ones get their queued frames, then close 1001"
    );
    let _ = stop_accepting.send(());
    hub.shutdown();
    let drain = async {
        while hub.connection_count() > 0 {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        (&mut server).await;
    };
    match tokio::time::timeout(drain_timeout, drain).await {
        Ok(()) => tracing::info!("shutdown complete"),
        Err(_) => tracing::warn!(
            connections = hub.connection_count(),
            "connections still open after {drain_timeout:?}; closing them"
        ),
    }
}

/// The accept loop: with the `ws` feature, the WebSocket transport's own
/// (every request passes through its lean upgrade path); else warp's.
async fn http_server(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    #[cfg(feature = "ws")]
    tickcast_transport_ws::serve(listener, routes, stop).await;
    #[cfg(not(feature = "ws"))]
    warp::serve(routes)
        .incoming(listener)
        .graceful(stop)
        .run()
        .await;
}
