//! Who a client is and where it may connect from, the same for every
//! transport:
//!
//! - [`TokenVerifier`] ([`verifier`]): what a session asks who a client
//!   is ([`Identity`]), or why not ([`AuthError`]).
//! - `Authenticator` (module `jwt`, cargo feature `jwt`): the JWT
//!   [`TokenVerifier`] (`sub`, `exp`, `nbf`, `tiers`). Without the feature
//!   there is no JWT code at all: sessions are anonymous unless the
//!   embedder supplies a verifier of its own.
//! - [`presented_token`] ([`credentials`]): the one parser of the token a
//!   request carries (`?token=` or `Authorization: Bearer`), used by
//!   `/ws`, `/sse` and the HTTP API.
//! - [`AllowedOrigins`] ([`origins`]): the `Origin` allow-list of `/ws`
//!   and `/sse` (and the HTTP API's CORS).

pub mod credentials;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod origins;
pub mod verifier;

pub use credentials::{bearer_token, presented_token, query_token};
#[cfg(feature = "jwt")]
pub use jwt::{Authenticator, CLOCK_LEEWAY_SECS};
pub use origins::{AllowedOrigins, InvalidOrigin, Origin};
pub use verifier::{AuthError, Identity, TokenVerifier};
