//! tickcast-core: the transport- and broker-agnostic engine of tickcast.
//!
//! Producers publish TickStock events; tickcast matches each one against
//! every connection's subscriptions and queues it for delivery with
//! priorities, batching, per-user rate limits and resume. This crate is that
//! engine, without sockets: transports (WebSocket, SSE) and ingest sources
//! (HTTP, Redis, AMQP) plug into it.
//!
//! # Layout
//!
//! - [`model`]: the [`schema`] that declares what events carry (TickStock's
//!   by default, any other declared with [`schema::SchemaDecl`]), what is
//!   published ([`model::Event`], decoded once by the schema from JSON or a
//!   bincode [`model::Envelope`]) and what is wanted ([`model::Filter`],
//!   resolved into [`schema::Criteria`], held by a [`model::Subscription`]),
//!   plus offsets.
//! - [`index`]: the [`index::SubscriptionIndex`] trait and the
//!   [`index::InvertedIndex`], whose match cost follows the audience.
//! - [`routing`]: strategies chosen by rules ([`routing::RoutingRules`])
//!   and the exact route cache.
//! - [`broadcast`]: what a connection's queue yields to its transport
//!   ([`broadcast::FrameReceiver`], [`broadcast::Outbound`]); the queues
//!   themselves (priorities, batching, rate limit, conflation, slow
//!   consumers) and the fan-out that fills them are the hub's.
//! - [`history`]: the bounds of the ring of recent events that `since`
//!   replays ([`history::HistoryConfig`]), and [`history::HistoryGone`].
//! - [`hub`]: [`Hub`], all of the above assembled behind connect, subscribe
//!   and publish, with a stats snapshot.
//! - [`ingest`]: the [`ingest::IngestSource`] trait for brokers and the
//!   in-process [`ingest::ChannelSource`].
//! - [`protocol`]: the client protocol every transport speaks.
//! - [`session`]: one connection's life (admit, serve, deadlines, close),
//!   shared by every transport, which supplies only a handshake and a
//!   wire codec.
//! - [`auth`]: the token seam ([`auth::TokenVerifier`]; JWT with feature
//!   `jwt`), `Origin` allow-lists and token parsing, shared by the
//!   transports.
//! - [`stats`]: the latency percentiles a hub's stats report.
//!
//! # A surface to keep stable
//!
//! Public is what an embedder uses: the [`Hub`] and its configuration, the
//! model, the index seam, the session every transport runs, the ingest
//! seams, the protocol and the stats. The hub's own machinery (connection
//! queues, fan-out, rate limiter, router, history ring) is not: it may
//! change shape between releases. Configuration structs are
//! `#[non_exhaustive]`, so that a setting can be added without breaking
//! anyone: build them from `Default` and change what you need, through
//! the fields or the `with_*` setters:
//!
//! ```
//! use std::time::Duration;
//! use tickcast_core::broadcast::QueueSettings;
//! use tickcast_core::HubConfig;
//!
//! let mut config = HubConfig::default()
//!     .with_rate_limit_per_user(0)
//!     .with_queue(QueueSettings::default().with_batch_window(Duration::ZERO));
//! config.limits.max_subscriptions_per_connection = 8;
//! assert_eq!(config.queue.batch_window, Duration::ZERO);
//! ```
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use tickcast_core::broadcast::Outbound;
//! use tickcast_core::model::{Event, Filter};
//! use tickcast_core::{Hub, HubConfig};
//!
//! let hub = Hub::new(HubConfig::immediate());
//! let mut conn = hub.connect(None, hub.default_limits()).unwrap();
//! let filter: Filter = serde_json::from_str(r#"{"symbols":["AAPL"]}"#).unwrap();
//! conn.handle.subscribe("s1", filter, None).unwrap();
//!
//! let body = r#"{"pattern":"BreakoutBO","symbol":"AAPL","confidence":0.85,"tier":"daily"}"#;
//! let event = Event::from_json(Bytes::from(body), Some("tickstock.events.patterns"), 1 << 20).unwrap();
//! hub.publish(event).unwrap();
//!
//! // welcome, subscribed, then the event frame, ready to write.
//! let frames: Vec<Outbound> = std::iter::from_fn(|| conn.frames.try_recv()).collect();
//! match &frames[2] {
//!     Outbound::Event(frame) => assert!(frame.to_json().starts_with(br#"{"type":"event""#)),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
#![warn(missing_docs)]

// First: the macros the modules below use.
#[macro_use]
mod setters;

pub mod auth;
pub mod broadcast;
pub mod history;
pub mod hub;
pub mod index;
pub mod ingest;
// Hidden and behind a feature: the benches and fuzz targets reach the
// hub's private parts here, with no promise of stability (see the module).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals;
pub mod model;
pub mod protocol;
pub mod routing;
#[cfg(feature = "sample")]
pub mod sample;
pub mod session;
pub mod stats;

pub use hub::{Connection, ConnectionHandle, Hub, HubConfig};
pub use model::schema;
