//! The life of one client connection, whatever carries it.
//!
//! Every transport runs the same session: [`open`] (identify the client by
//! its token, apply the connection limits, register with the hub), then
//! [`serve`] (frames out, client operations in, keep-alives, idle timeout,
//! token expiry, write deadline) until the connection ends. A transport
//! supplies only its handshake and its wire format:
//!
//! - a [`WireCodec`]: how an [`Outbound`](crate::broadcast::Outbound)
//!   becomes what its sink takes (a WebSocket message, an SSE chunk);
//! - a sink of those items (any `futures` `Sink`);
//! - a stream of [`Inbound`] items, what its client sent, decoded as far
//!   as its own framing goes (a WebSocket text frame, a ping);
//! - for a socket it does not own, a [`SocketAbort`] its server honours.
//!
//! # Deadlines
//!
//! The session never waits on the socket alone: while a write is pending
//! it still sends nothing new but keeps counting the idle timeout, the
//! token's expiry and the write deadline. A round of writes (at most
//! 64 queue items, 256 KiB) that the
//! socket does not take within [`SessionConfig::write_timeout`] ends the
//! session at once: the hub connection, its queue and the socket are
//! dropped without waiting for a close the client would never read.

mod abort;
mod activity;
mod codec;
mod config;
mod inbound;
mod open;
mod outgoing;
mod reader_link;
mod serve;

pub use abort::SocketAbort;
pub use codec::WireCodec;
pub use config::SessionConfig;
pub use inbound::Inbound;
pub use open::{open, OpenError, Opened};
pub use serve::{refuse, serve, SessionEnd, Transport};
