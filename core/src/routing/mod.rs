//! Routing: which connections get an event, and how ([`Strategy`]).
//!
//! [`IndexRouter`] asks a [`SubscriptionIndex`](crate::index::SubscriptionIndex)
//! and keeps the answers in a route cache that is exact: equal cache keys
//! imply equal recipients, and every subscription change invalidates it.

mod cache;
mod router;
mod strategy;
mod thresholds;

pub use cache::CacheCounts;
pub use router::{CacheConfig, IndexRouter, Route, Router};
pub use strategy::{RoutingRule, RoutingRules, Strategy};
