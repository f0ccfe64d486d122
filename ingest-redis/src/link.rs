//! [`LinkError`]: why a session with Redis ended.

use std::time::Duration;

/// A session with Redis is over; the source reports it as
/// `IngestItem::Disconnected` (its `Display` is the reason) and reconnects.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// A command failed: the connection broke, or the server answered
    /// with an error the session cannot work around.
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    /// The server did not answer in time.
    #[error("redis did not answer {what} within {after:?}")]
    Timeout {
        /// The operation that timed out.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The connection closed (the pub/sub stream ended, or there is no
    /// connection to send on).
    #[error("the connection closed")]
    Closed,
    /// The cluster's shape changed under the session (a node dropped, a
    /// slot moved) or does not cover a key it needs.
    #[error("redis cluster: {0}")]
    Topology(String),
}

/// Runs `future` with a deadline, mapping both failure kinds to
/// [`LinkError`]. Used for every command that the Redis client itself does
/// not bound (pub/sub setup, connecting).
pub(crate) async fn bounded<T>(
    what: &'static str,
    after: Duration,
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LinkError> {
    match tokio::time::timeout(after, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(LinkError::Timeout { what, after }),
    }
}
