//! Graceful shutdown: the signal that starts it and the drain that follows.
//!
//! On the signal the hub is shut down (every connection queue sends what it
//! holds, then closes with 1001, and publishes are refused), `/ready`
//! answers 503, and the server waits up to [`DRAIN_TIMEOUT`] for client
//! connections to finish; then it closes the listener and gives in-flight
//! requests a last few seconds.

use std::future::Future;
use std::time::Duration;

use tickcast_core::Hub;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::listener::{self, Endpoints, ListenerLimits};

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

/// Serves `endpoints` on `listener` until `shutdown` resolves, then drains.
///
/// The listener stays open during the drain: `/ready` answers 503 at once
/// (so load balancers stop sending), and new clients get a definite refusal
/// (WebSocket close 1001, SSE 503) instead of a connection nobody answers.
/// It closes when the last client connection has gone or `drain_timeout`
/// has passed; in-flight HTTP requests then get [`HTTP_DRAIN`](super::HTTP_DRAIN) more.
pub(crate) async fn run(
    listener: TcpListener,
    endpoints: Endpoints,
    limits: ListenerLimits,
    hub: Hub,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) {
    let (close_listener, closed) = oneshot::channel::<()>();
    let server = listener::serve(listener, endpoints, limits, async move {
        // A dropped sender closes the listener too.
        let _ = closed.await;
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
        "shutting down: /ready answers 503; open connections get their queued frames, then close 1001"
    );
    hub.shutdown();
    let drained = async {
        while hub.connection_count() > 0 {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    };
    tokio::select! {
        drained = tokio::time::timeout(drain_timeout, drained) => if drained.is_err() {
            tracing::warn!(
                connections = hub.connection_count(),
                "connections still open after {drain_timeout:?}; closing them"
            );
        },
        () = &mut server => return,
    }
    let _ = close_listener.send(());
    server.await;
    tracing::info!("shutdown complete");
}
