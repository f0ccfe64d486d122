//! tickcast-ingest-redis: Redis pub/sub and Redis Streams ingest for
//! tickcast.
//!
//! [`RedisSource`] is an [`IngestSource`](tickcast_core::ingest::IngestSource)
//! for [`run_source`](tickcast_core::ingest::run_source); [`RedisPublisher`]
//! is the [`BrokerPublisher`](tickcast_core::ingest::BrokerPublisher) that
//! `POST /api/publish` goes through when Redis is the broker. Both take a
//! [`RedisConfig`].
//!
//! # Layout
//!
//! - `config`: [`RedisConfig`], [`RedisMode`], [`ConfigError`].
//! - `source`: [`RedisSource`]: each mode's consumer as one core
//!   [`Link`](tickcast_core::ingest::Link), driven by core's
//!   [`Reconnecting`](tickcast_core::ingest::Reconnecting).
//! - `pubsub`: SUBSCRIBE / PSUBSCRIBE on a dedicated connection, with a
//!   keepalive PING.
//! - `sharded_pubsub`: pub/sub in a Redis Cluster: SSUBSCRIBE through a
//!   cluster connection, each channel on its shard.
//! - `cluster`: a cluster's slot map, for reading each stream shard from
//!   its master.
//! - `streams`: one consumer group per node, read with NOACK: group
//!   creation, the node's cursor (written with each read, the group put
//!   back at it at every session's start), backfill at start, lag; a
//!   sharded stream (several keys, or a cluster) merged into one offset
//!   order.
//! - `publisher`: [`RedisPublisher`]: PUBLISH or XADD, pipelined for a
//!   burst.
//! - `link`, `connect`: why a session ended, connections with timeouts.
//!
//! # Example
//!
//! ```no_run
//! use tickcast_core::hub::{HubConfig, OffsetMode};
//! use tickcast_core::ingest::run_source;
//! use tickcast_core::Hub;
//! use tickcast_ingest_redis::{RedisConfig, RedisMode, RedisSource};
//!
//! # async fn run() -> Result<(), tickcast_ingest_redis::ConfigError> {
//! let mut hub_config = HubConfig::default();
//! hub_config.offsets = OffsetMode::External; // stream ids are the offsets
//! let hub = Hub::new(hub_config);
//! let config = RedisConfig {
//!     mode: RedisMode::Streams,
//!     group: "tickcast-node-1".into(),
//!     ..RedisConfig::default()
//! };
//! // Registers "redis" with the hub (its lag shows in stats); refused if
//! // the hub's offset mode did not take stream ids.
//! let ingest = run_source(hub.clone(), RedisSource::new(config)?)
//!     .expect("an External hub takes stream ids");
//! tokio::spawn(ingest);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod cluster;
mod config;
mod connect;
mod link;
mod publisher;
mod pubsub;
mod sharded_pubsub;
mod source;
mod streams;

pub use config::{ConfigError, RedisConfig, RedisMode};
pub use publisher::RedisPublisher;
pub use source::{RedisSource, SOURCE_NAME};
pub use streams::cursor_key;
