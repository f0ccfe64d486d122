//! [`SessionConfig`]: the settings every transport's sessions share.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::TokenVerifier;
use crate::hub::ConnectionLimits;

/// How a connection is identified, limited and kept alive, the same on
/// every transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Token verification (the JWT `Authenticator` of cargo feature `jwt`,
    /// or a verifier of the embedder's); `None` serves everyone as
    /// anonymous.
    pub auth: Option<Arc<dyn TokenVerifier>>,
    /// What one connection may do; `None`: the hub's defaults
    /// ([`Hub::default_limits`](crate::Hub::default_limits)). A token's
    /// `tiers` claim replaces `allowed_tiers`.
    pub limits: Option<ConnectionLimits>,
    /// How often the server sends a keep-alive (a WebSocket ping, an SSE
    /// comment).
    pub ping_interval: Duration,
    /// A client that sends nothing (not even a pong) for this long is
    /// closed (1000). `None` for transports whose clients cannot speak
    /// (SSE), which are kept alive by the keep-alive writes alone.
    pub idle_timeout: Option<Duration>,
    /// A socket that accepts no byte for this long is dropped at once,
    /// without waiting for the client to read a close: its memory, its
    /// file descriptor and its hub connection are freed.
    pub write_timeout: Duration,
    /// Largest client message handled; a larger one gets a
    /// `frame_too_large` error and is skipped.
    pub max_frame_bytes: usize,
}

setters!(SessionConfig {
    with_auth => auth: Option<Arc<dyn TokenVerifier>>,
    with_limits => limits: Option<ConnectionLimits>,
    with_ping_interval => ping_interval: Duration,
    with_idle_timeout => idle_timeout: Option<Duration>,
    with_write_timeout => write_timeout: Duration,
    with_max_frame_bytes => max_frame_bytes: usize,
});

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            auth: None,
            limits: None,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Some(Duration::from_secs(60)),
            write_timeout: Duration::from_secs(10),
            max_frame_bytes: 64 * 1024,
        }
    }
}
