//! Who a client is and where it may connect from, the same for every
//! transport:
//!
//! - [`Authenticator`] ([`token`]): JWT verification (`sub`, `exp`, `nbf`,
//!   `tiers`).
//! - [`presented_token`] ([`credentials`]): the one parser of the token a
//!   request carries (`?token=` or `Authorization: Bearer`), used by
//!   `/ws`, `/sse` and the HTTP API.
//! - [`AllowedOrigins`] ([`origins`]): the `Origin` allow-list of `/ws`
//!   and `/sse` (and the HTTP API's CORS).

pub mod credentials;
pub mod origins;
pub mod token;

pub use credentials::{bearer_token, presented_token, query_token};
pub use origins::{AllowedOrigins, InvalidOrigin, Origin};
pub use token::{AuthError, Authenticator, Identity, CLOCK_LEEWAY_SECS};
