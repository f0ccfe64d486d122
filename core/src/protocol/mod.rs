//! The client protocol shared by every transport: what clients send
//! ([`ClientOp`]), what the server answers ([`ServerMessage`]), error codes
//! and close codes. Transports only map these onto their wire.

mod client;
mod server;

pub use client::{ClientOp, ProtocolError};
pub use server::{CloseCode, ErrorCode, ServerMessage};

/// The version string sent in `welcome`.
pub const SERVER_NAME: &str = concat!("tickcast/", env!("CARGO_PKG_VERSION"));

/// The WebSocket subprotocol tickcast speaks.
pub const SUBPROTOCOL: &str = "tickcast.v1.json";
