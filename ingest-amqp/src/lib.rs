//! RabbitMQ (AMQP 0-9-1) ingest for tickcast, via lapin.
//!
//! Producers publish TickStockPL events to a topic exchange
//! (`tickstock.events`) with the Redis channel name as routing key. Every
//! tickcast node declares its own durable queue bound to that exchange
//! (never one shared queue, which would split events between nodes),
//! consumes it with manual acks, and acks each message only after its hub
//! accepted the event; malformed messages are rejected to a dead-letter
//! exchange and kept in `<queue>.dead` for inspection.
//!
//! # Layout
//!
//! - [`AmqpConfig`]: URL, exchange, the node's queue, binding keys,
//!   prefetch, dead-letter exchange, limits and reconnect backoff.
//! - [`AmqpSource`]: the node's queue as an
//!   [`IngestSource`](tickcast_core::ingest::IngestSource) for
//!   [`run_source`](tickcast_core::ingest::run_source): a core
//!   [`Link`](tickcast_core::ingest::Link) that core's
//!   [`Reconnecting`](tickcast_core::ingest::Reconnecting) reconnects
//!   forever; it declares everything again after each reconnect and drops
//!   redelivered copies of events already accepted.
//! - [`AmqpPublisher`], the
//!   [`BrokerPublisher`](tickcast_core::ingest::BrokerPublisher) of AMQP:
//!   persistent messages with publisher confirms, so that every node
//!   delivers them (the HTTP API's path when AMQP is configured).
//! - Inside: `topology` (connect and declare), `decode` (JSON or bincode by
//!   content type), `acker` (ack / dead-letter one delivery), `dedup`
//!   (recently accepted message ids).
//!
//! TLS (`amqps://`) is not supported by this build.
//!
//! # Example
//!
//! ```no_run
//! use tickcast_core::ingest::run_source;
//! use tickcast_core::{Hub, HubConfig};
//! use tickcast_ingest_amqp::{AmqpConfig, AmqpSource};
//!
//! # async fn run() -> Result<(), tickcast_ingest_amqp::ConfigError> {
//! let hub = Hub::new(HubConfig::default());
//! let config = AmqpConfig {
//!     url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
//!     ..AmqpConfig::for_node("node-1")
//! };
//! // Registers "amqp" with the hub; refused if the hub took its offsets from
//! // an ingest (AMQP messages have none).
//! let ingest = run_source(hub.clone(), AmqpSource::new(config)?)
//!     .expect("the hub numbers events itself");
//! tokio::spawn(ingest);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod acker;
mod config;
mod decode;
mod dedup;
mod publisher;
mod source;
mod topology;

pub use config::{AmqpConfig, ConfigError, Overflow};
pub use decode::{BINCODE_CONTENT_TYPE, JSON_CONTENT_TYPE};
pub use publisher::AmqpPublisher;
pub use source::AmqpSource;
