//! [`SocketAbort`]: how a session drops a socket it does not own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A switch between a session and whatever owns its socket.
///
/// A WebSocket session owns its socket: when it gives up on a client
/// (write deadline), dropping the socket frees it. An SSE session writes
/// into an HTTP response body that the HTTP server owns, and that server
/// stops polling the body while the socket is full, so the session cannot
/// end it from inside. A server that runs its own accept loop hands each
/// request a `SocketAbort` (as a request extension); the session fires it,
/// and the accept loop drops the connection.
#[derive(Debug, Clone, Default)]
pub struct SocketAbort(Arc<Switch>);

#[derive(Debug, Default)]
struct Switch {
    fired: AtomicBool,
    notify: Notify,
}

impl SocketAbort {
    /// A switch that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the socket's owner to drop it.
    pub fn abort(&self) {
        self.0.fired.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }

    /// True once [`abort`](Self::abort) was called.
    pub fn is_aborted(&self) -> bool {
        self.0.fired.load(Ordering::Acquire)
    }

    /// Resolves once [`abort`](Self::abort) is called (at once if it was).
    pub async fn aborted(&self) {
        loop {
            // Created before the check: `notify_waiters` reaches it even
            // if it fires between the check and the first poll.
            let notified = self.0.notify.notified();
            if self.is_aborted() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_sees_an_abort_fired_before_or_after_it_waits() {
        let before = SocketAbort::new();
        before.abort();
        before.aborted().await;

        let after = SocketAbort::new();
        let waiter = tokio::spawn({
            let after = after.clone();
            async move { after.aborted().await }
        });
        tokio::task::yield_now().await;
        assert!(!after.is_aborted());
        after.abort();
        waiter.await.unwrap();
    }
}
