//! [`HubConfig`]: everything a [`Hub`](super::Hub) can be tuned with.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::dedup::DedupConfig;
use crate::broadcast::QueueSettings;
use crate::history::HistoryConfig;
use crate::model::schema::{tickstock, Schema};
use crate::model::{OffsetMode, DEFAULT_MAX_VALUES_PER_LIST};
use crate::routing::{CacheConfig, RoutingRules};

/// Settings of a hub. `HubConfig::default()` is the documented default
/// configuration of tickcast.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HubConfig {
    /// What events carry and filters may ask for; TickStock's by default.
    pub schema: Arc<Schema>,
    /// Per-connection queues and batching.
    pub queue: QueueSettings,
    /// Events per second per user (per connection for anonymous users);
    /// 0 turns rate limiting off.
    pub rate_limit_per_user: u32,
    /// Connection and subscription limits.
    pub limits: Limits,
    /// History bounds.
    pub history: HistoryConfig,
    /// Strategy rules.
    pub rules: RoutingRules,
    /// Route cache.
    pub cache: CacheConfig,
    /// Broadcast worker shards (threads) for `load_balanced` events.
    pub shards: usize,
    /// Who assigns offsets.
    pub offsets: OffsetMode,
    /// The window of idempotency keys a repeated event is recognised in.
    pub dedup: DedupConfig,
    /// [`OffsetMode::Node`]: the start time the run's offset epoch is made
    /// from (see [`epoch`](super::epoch)); `None`, the usual, takes the
    /// time the hub is created. Set it to reproduce a start (tests).
    pub started_at: Option<SystemTime>,
    /// Refuse clients ([`ConnectError::Starting`](super::ConnectError))
    /// until [`Hub::history_loaded`](super::Hub::history_loaded) is called.
    /// For an ingest that reloads the history at start (Redis Streams): a
    /// client resuming before it is loaded would find its offset unknown
    /// (`history_gone`) or get reloaded entries twice. `false` (the
    /// default): clients are admitted at once.
    pub await_history: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            schema: tickstock::schema(),
            queue: QueueSettings::default(),
            rate_limit_per_user: 100,
            limits: Limits::default(),
            history: HistoryConfig::default(),
            rules: RoutingRules::default(),
            cache: CacheConfig::default(),
            shards: std::thread::available_parallelism().map_or(2, |n| n.get()),
            offsets: OffsetMode::Node,
            dedup: DedupConfig::default(),
            started_at: None,
            await_history: false,
        }
    }
}

/// Limits on what clients may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Subscriptions one connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// Connections one user may hold (anonymous connections: unlimited).
    pub max_connections_per_user: usize,
    /// Values in one filter list.
    pub max_values_per_list: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_subscriptions_per_connection: 64,
            max_connections_per_user: 16,
            max_values_per_list: DEFAULT_MAX_VALUES_PER_LIST,
        }
    }
}

/// What one connection may do, fixed at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Subscriptions it may hold.
    pub max_subscriptions: usize,
    /// Values in one filter list.
    pub max_values_per_list: usize,
    /// The values of the schema's entitlement dimension its user may
    /// receive, as choice bits ([`Schema::entitled`] of the token's claim);
    /// `None`: all.
    pub entitled: Option<u64>,
}

setters!(HubConfig {
    with_schema => schema: Arc<Schema>,
    with_queue => queue: QueueSettings,
    with_rate_limit_per_user => rate_limit_per_user: u32,
    with_limits => limits: Limits,
    with_history => history: HistoryConfig,
    with_rules => rules: RoutingRules,
    with_cache => cache: CacheConfig,
    with_shards => shards: usize,
    with_offsets => offsets: OffsetMode,
    with_dedup => dedup: DedupConfig,
    with_started_at => started_at: Option<SystemTime>,
    with_await_history => await_history: bool,
});

setters!(Limits {
    with_max_subscriptions_per_connection => max_subscriptions_per_connection: usize,
    with_max_connections_per_user => max_connections_per_user: usize,
    with_max_values_per_list => max_values_per_list: usize,
});

setters!(ConnectionLimits {
    with_max_subscriptions => max_subscriptions: usize,
    with_max_values_per_list => max_values_per_list: usize,
    with_entitled => entitled: Option<u64>,
});

/// The limits [`Limits::default`] gives each connection.
impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from(&Limits::default())
    }
}

impl From<&Limits> for ConnectionLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            max_subscriptions: limits.max_subscriptions_per_connection,
            max_values_per_list: limits.max_values_per_list,
            entitled: None,
        }
    }
}

impl HubConfig {
    /// A config with no batching delay, the usual choice for tests and
    /// latency-sensitive deployments.
    pub fn immediate() -> Self {
        let mut config = Self::default();
        config.queue.batch_window = Duration::ZERO;
        config
    }
}
