//! Routing: which connections get an event, and how ([`Strategy`]).
//!
//! The hub's router asks a
//! [`SubscriptionIndex`](crate::index::SubscriptionIndex) and keeps the
//! answers in a route cache that is exact: equal cache keys imply equal
//! recipients, and every subscription change invalidates it. Public here
//! is what a hub is configured with: the [`RoutingRules`] that choose a
//! [`Strategy`] per event, and the [`CacheConfig`].

mod cache;
mod key;
pub(crate) mod router;
mod strategy;
mod thresholds;

pub use router::CacheConfig;
pub(crate) use router::{IndexRouter, Route};
pub use strategy::{RoutingRule, RoutingRules, Strategy};
