//! tickcast: the server binary's library, so that tests (and anyone who
//! wants the whole server in their process) can start it with [`serve`].
//!
//! # Layout
//!
//! - [`config`]: [`config::Config`], every key of design.md's
//!   Configuration section, loaded from defaults < TOML file <
//!   `TICKCAST_*` environment < flags, validated, and turned into the
//!   engine's [`tickcast_core::HubConfig`].
//! - [`cli`]: the command line (`tickcast`, `tickcast check-config`,
//!   `tickcast demo`).
//! - [`http`]: the warp routes: `GET /` (demo page), `POST /api/publish`,
//!   `GET /health`, `/ready`, `/metrics`, `/api/stats`, JSON errors, and
//!   [`http::mount_transports`], where the transports' endpoints join.
//! - [`transports`]: the one list of client transports (WebSocket, SSE,
//!   Socket.IO), each behind its cargo feature.
//! - [`ingest`]: the one list of brokers (`[ingest.redis]`,
//!   `[ingest.amqp]`), each behind its cargo feature: their sources and the
//!   broker `POST /api/publish` goes through.
//! - [`demo`]: the generator of `tickcast demo`.
//! - [`metrics`]: hub stats as Prometheus text.
//! - [`server`]: [`serve`] binds, runs and, on the shutdown signal, drains.
//! - [`logging`]: text or JSON logs.
//!
//! # Cargo features
//!
//! `ws`, `sse`, `socketio`, `redis`, `amqp`, all on by default; each pulls
//! in its transport or ingest crate (tickcast-transport-ws,
//! -transport-sse, -transport-socketio, -ingest-redis, -ingest-amqp) and
//! adds its entry to [`transports::built`] or [`ingest`]'s broker list. Any subset builds, down to
//! `--no-default-features` (HTTP publish, no client transport).
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod transports;

pub use config::Config;
pub use server::{serve, shutdown, ServeError, Server};
