//! The client protocol shared by every transport: what clients send
//! ([`ClientOp`]), what the server answers ([`ServerMessage`]), error codes
//! and close codes. Transports only map these onto their wire.

mod client;
mod server;
mod subs;

pub use client::{ClientOp, ProtocolError};
pub use server::{CloseCode, ErrorCode, ServerMessage};
pub use subs::subs_field;
pub(crate) use subs::{json_len, subs_field_len};

/// The version string sent in `welcome`.
pub const SERVER_NAME: &str = concat!("tickcast/", env!("CARGO_PKG_VERSION"));

/// The WebSocket subprotocol tickcast speaks.
pub const SUBPROTOCOL: &str = "tickcast.v1.json";
