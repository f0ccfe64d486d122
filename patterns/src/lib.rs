//! tickcast-patterns: the tier-pattern API, what TickStock features use
//! without knowing the layers below.
//!
//! An application of tickcast-core, not part of the engine: it knows
//! TickStock's tiers, pattern presets and US market hours (hence chrono-tz,
//! which the core does without).
//!
//! [`TierPatternHub`] wraps a [`Hub`](tickcast_core::Hub): a user's
//! [`UserPreferences`] become server-side subscriptions on every connection
//! of that user (whatever the transport) and an hourly delivery limit;
//! typed events ([`TierPatternEvent`], [`MarketStateEvent`],
//! [`PatternAlertEvent`], [`SystemHealthEvent`]) are published as TickStock
//! JSON with the [`MarketSession`] and the latest market regime added.
//!
//! ```
//! use tickcast_patterns::{TierPatternEvent, TierPatternHub, UserPreferences};
//! use tickcast_core::model::Tier;
//!
//! let patterns = TierPatternHub::builder().build();
//! patterns.subscribe_user("alice", UserPreferences::swing_trading()).unwrap();
//! let offset = patterns
//!     .publish_pattern(TierPatternEvent::new("BreakoutBO", "AAPL", Tier::Daily, 0.92))
//!     .unwrap();
//! assert_eq!(patterns.stats().patterns, 1);
//! # let _ = offset;
//! ```

#![warn(missing_docs)]

mod events;
mod hub;
mod market;
mod preferences;

pub use events::{
    HealthStatus, MarketContext, MarketStateEvent, PatternAlertEvent, SystemHealthEvent,
    TierPatternEvent, MARKET_STATE_EVENT_TYPE, PATTERN_ALERT_EVENT_TYPE, SYSTEM_HEALTH_EVENT_TYPE,
};
pub use hub::{
    tier_pattern_rules, Clock, PatternError, PatternHealth, PatternStats, TierPatternHub,
    TierPatternHubBuilder, ALERT_SUBSCRIPTION, DEFAULT_STALE_AFTER, PATTERN_SUBSCRIPTION,
};
pub use market::MarketSession;
pub use preferences::{UserPreferences, DEFAULT_MIN_CONFIDENCE, PATTERN_EVENT_TYPE};
