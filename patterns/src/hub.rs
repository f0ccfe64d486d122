//! [`TierPatternHub`]: the tier-pattern feed on top of a [`Hub`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use crate::events::{
    HealthStatus, MarketContext, MarketStateEvent, PatternAlertEvent, SystemHealthEvent,
    TierPatternEvent, MARKET_STATE_EVENT_TYPE, PATTERN_ALERT_EVENT_TYPE, SYSTEM_HEALTH_EVENT_TYPE,
};
use crate::market::MarketSession;
use crate::preferences::UserPreferences;
use tickcast_core::hub::{HubConfig, PublishError, SubscribeError};
use tickcast_core::model::{DecodeError, Event, Filter, MarketRegime, Offset, Priority, UserId};
use tickcast_core::routing::{RoutingRule, RoutingRules, Strategy};
use tickcast_core::Hub;

/// Id of the server-side subscription that carries a user's pattern feed.
pub const PATTERN_SUBSCRIPTION: &str = "tier-patterns";
/// Id of the server-side subscription that carries a user's alerts.
pub const ALERT_SUBSCRIPTION: &str = "tier-alerts";
/// How long without any published event, during market hours, before
/// [`TierPatternHub::health`] says `warning`.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(600);

/// What went wrong in the tier-pattern API.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// The event has a value the hub refuses (symbol too long, confidence
    /// out of 0..1, ...).
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] DecodeError),
    /// The preferences make no valid filter.
    #[error("invalid preferences: {0}")]
    InvalidPreferences(#[from] SubscribeError),
    /// The hub did not take the event.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Where "now" comes from (tests pass a fixed clock).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Builds a [`TierPatternHub`].
pub struct TierPatternHubBuilder {
    hub: Option<Hub>,
    config: HubConfig,
    clock: Clock,
    stale_after: Duration,
}

impl TierPatternHubBuilder {
    /// Runs on an existing hub (its routing rules should broadcast
    /// `market_state` and `system_health`, as [`tier_pattern_rules`] does).
    pub fn hub(mut self, hub: Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// The configuration of the hub to create (ignored with
    /// [`hub`](Self::hub)); its rules are replaced by
    /// [`tier_pattern_rules`].
    pub fn config(mut self, config: HubConfig) -> Self {
        self.config = config;
        self
    }

    /// Where "now" comes from; the system clock by default.
    pub fn clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Silence during market hours after which health is `warning`.
    pub fn stale_after(mut self, after: Duration) -> Self {
        self.stale_after = after;
        self
    }

    /// The tier-pattern hub.
    pub fn build(self) -> TierPatternHub {
        let hub = self
            .hub
            .unwrap_or_else(|| Hub::new(self.config.with_rules(tier_pattern_rules())));
        let now = (self.clock)();
        TierPatternHub {
            inner: Arc::new(Inner {
                hub,
                clock: self.clock,
                stale_after: self.stale_after,
                started_at: now,
                state: Mutex::new(State {
                    users: BTreeMap::new(),
                    regime: None,
                    session: MarketSession::at(now),
                    last_event_at: None,
                }),
                counts: Counts::default(),
            }),
        }
    }
}

/// TickStock's rules: health and market state to everyone, critical
/// events ahead of batches.
pub fn tier_pattern_rules() -> RoutingRules {
    let mut rules = RoutingRules::tickstock();
    rules.0.insert(
        0,
        RoutingRule::new(Strategy::BroadcastAll).with_event_types(vec![
            MARKET_STATE_EVENT_TYPE.into(),
            SYSTEM_HEALTH_EVENT_TYPE.into(),
        ]),
    );
    rules
}

/// The high-level API TickStock features use: user preferences become
/// server-side subscriptions and hourly limits on the hub; typed events are
/// published with the market session and the latest regime added. Cheap to
/// clone.
#[derive(Clone)]
pub struct TierPatternHub {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    clock: Clock,
    stale_after: Duration,
    started_at: DateTime<Utc>,
    state: Mutex<State>,
    counts: Counts,
}

struct State {
    users: BTreeMap<UserId, UserPreferences>,
    regime: Option<MarketRegime>,
    /// The session the market-hours-only subscriptions were last set for.
    session: MarketSession,
    last_event_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Counts {
    patterns: AtomicU64,
    alerts: AtomicU64,
    critical_alerts: AtomicU64,
    market_updates: AtomicU64,
    health_events: AtomicU64,
}

/// Counts of what the tier-pattern API published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternStats {
    /// Pattern events published.
    pub patterns: u64,
    /// Alerts published.
    pub alerts: u64,
    /// Alerts published as critical.
    pub critical_alerts: u64,
    /// Market-state updates published.
    pub market_updates: u64,
    /// Health events published.
    pub health_events: u64,
    /// Users with preferences.
    pub users: usize,
    /// Seconds since the last published event; `None` before the first.
    pub last_event_age_s: Option<f64>,
    /// The session now.
    pub session: MarketSession,
    /// The latest regime.
    pub regime: Option<MarketRegime>,
}

/// The tier-pattern API's own health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternHealth {
    /// `ok`, or `warning` when nothing was published for the stale period
    /// during market hours.
    pub status: HealthStatus,
    /// Why, for people.
    pub message: String,
    /// The session now.
    pub session: MarketSession,
    /// Seconds since the last published event (or since start).
    pub silent_for_s: f64,
}

impl TierPatternHub {
    /// A builder: a new hub with default settings and the system clock.
    pub fn builder() -> TierPatternHubBuilder {
        TierPatternHubBuilder {
            hub: None,
            config: HubConfig::default(),
            clock: Arc::new(Utc::now),
            stale_after: DEFAULT_STALE_AFTER,
        }
    }

    /// The hub below: mount transports on it (connections of a user get
    /// the user's subscriptions whatever the transport).
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Sets (or replaces) the preferences of `user`: the pattern feed
    /// (now, or at the next regular session if `market_hours_only`), its
    /// alerts, and its hourly limit, on every connection of the user.
    pub fn subscribe_user(
        &self,
        user: &str,
        preferences: UserPreferences,
    ) -> Result<(), PatternError> {
        let user = UserId::from(user);
        let hub = &self.inner.hub;
        let mut state = self.inner.state.lock();
        let session = MarketSession::at(self.now());
        let alerts = Filter::new().values("event_types", [PATTERN_ALERT_EVENT_TYPE]);
        if wants_feed(&preferences, session) {
            hub.subscribe_user(&user, PATTERN_SUBSCRIPTION, preferences.to_filter())?;
        } else {
            // Validate now rather than at the opening bell.
            let max = hub.config().limits.max_values_per_list;
            hub.config()
                .schema
                .criteria(&preferences.to_filter(), max)
                .map_err(SubscribeError::from)?;
            hub.unsubscribe_user(&user, PATTERN_SUBSCRIPTION);
        }
        hub.subscribe_user(&user, ALERT_SUBSCRIPTION, alerts)?;
        hub.set_user_hourly_limit(&user, preferences.max_events_per_hour);
        state.users.insert(user, preferences);
        Ok(())
    }

    /// Removes the preferences, subscriptions and hourly limit of `user`;
    /// false when it had none.
    pub fn unsubscribe_user(&self, user: &str) -> bool {
        let user = UserId::from(user);
        let hub = &self.inner.hub;
        let mut state = self.inner.state.lock();
        if state.users.remove(&user).is_none() {
            return false;
        }
        hub.unsubscribe_user(&user, PATTERN_SUBSCRIPTION);
        hub.unsubscribe_user(&user, ALERT_SUBSCRIPTION);
        hub.set_user_hourly_limit(&user, None);
        true
    }

    /// The preferences of `user`, if set.
    pub fn user_subscriptions(&self, user: &str) -> Option<UserPreferences> {
        self.inner.state.lock().users.get(user).cloned()
    }

    /// Publishes a pattern detection to the users whose preferences match.
    pub fn publish_pattern(&self, event: TierPatternEvent) -> Result<Offset, PatternError> {
        let offset = self.publish(|context| event.to_event(context))?;
        self.inner.counts.patterns.fetch_add(1, Ordering::Relaxed);
        Ok(offset)
    }

    /// Publishes the market's state to every subscriber; its regime becomes
    /// the context of later events.
    pub fn publish_market_state(&self, event: MarketStateEvent) -> Result<Offset, PatternError> {
        let offset = self.publish(|context| event.to_event(context))?;
        self.inner.state.lock().regime = Some(event.regime);
        self.inner
            .counts
            .market_updates
            .fetch_add(1, Ordering::Relaxed);
        Ok(offset)
    }

    /// Publishes an alert to its user only (on connections of users with
    /// preferences set).
    pub fn publish_alert(&self, event: PatternAlertEvent) -> Result<Offset, PatternError> {
        let offset = self.publish(|context| event.to_event(context))?;
        let counts = &self.inner.counts;
        counts.alerts.fetch_add(1, Ordering::Relaxed);
        if event.priority() == Priority::Critical {
            counts.critical_alerts.fetch_add(1, Ordering::Relaxed);
        }
        Ok(offset)
    }

    /// Publishes a component's health to every subscriber.
    pub fn publish_health(&self, event: SystemHealthEvent) -> Result<Offset, PatternError> {
        let offset = self.publish(|context| event.to_event(context))?;
        self.inner
            .counts
            .health_events
            .fetch_add(1, Ordering::Relaxed);
        Ok(offset)
    }

    fn publish(
        &self,
        build: impl FnOnce(&MarketContext) -> Result<Event, DecodeError>,
    ) -> Result<Offset, PatternError> {
        let now = self.now();
        self.refresh_market_session();
        let context = MarketContext {
            session: MarketSession::at(now),
            regime: self.inner.state.lock().regime,
            timestamp: now.timestamp_millis() as f64 / 1000.0,
        };
        let offset = self.inner.hub.publish(build(&context)?)?;
        self.inner.state.lock().last_event_at = Some(now);
        Ok(offset)
    }

    /// Turns the pattern feed of market-hours-only users on or off when the
    /// session changed since the last call; returns the session now. Called
    /// on each publish and by [`run_session_watch`](Self::run_session_watch).
    pub fn refresh_market_session(&self) -> MarketSession {
        let session = MarketSession::at(self.now());
        let mut state = self.inner.state.lock();
        if state.session.is_open() == session.is_open() {
            state.session = session;
            return session;
        }
        state.session = session;
        let hub = &self.inner.hub;
        for (user, preferences) in state.users.iter().filter(|(_, p)| p.market_hours_only) {
            if session.is_open() {
                // Checked when the preferences were set.
                let _ = hub.subscribe_user(user, PATTERN_SUBSCRIPTION, preferences.to_filter());
            } else {
                hub.unsubscribe_user(user, PATTERN_SUBSCRIPTION);
            }
        }
        session
    }

    /// Calls [`refresh_market_session`](Self::refresh_market_session) every
    /// `every`, forever: spawn it on the runtime so market-hours-only feeds
    /// open and close on time even when nothing is published.
    pub async fn run_session_watch(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.refresh_market_session();
        }
    }

    /// Counts and context.
    pub fn stats(&self) -> PatternStats {
        let now = self.now();
        let state = self.inner.state.lock();
        let counts = &self.inner.counts;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PatternStats {
            patterns: load(&counts.patterns),
            alerts: load(&counts.alerts),
            critical_alerts: load(&counts.critical_alerts),
            market_updates: load(&counts.market_updates),
            health_events: load(&counts.health_events),
            users: state.users.len(),
            last_event_age_s: state.last_event_at.map(|at| seconds(now - at)),
            session: MarketSession::at(now),
            regime: state.regime,
        }
    }

    /// `warning` when nothing was published for the stale period during
    /// market hours, else `ok`.
    pub fn health(&self) -> PatternHealth {
        let now = self.now();
        let since = self
            .inner
            .state
            .lock()
            .last_event_at
            .unwrap_or(self.inner.started_at);
        let silent_for_s = seconds(now - since);
        let session = MarketSession::at(now);
        let stale = session.is_open() && silent_for_s >= self.inner.stale_after.as_secs_f64();
        let (status, message) = if stale {
            (
                HealthStatus::Warning,
                format!("nothing published for {silent_for_s:.0} s during market hours"),
            )
        } else {
            (HealthStatus::Ok, "publishing".to_owned())
        };
        PatternHealth {
            status,
            message,
            session,
            silent_for_s,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }
}

/// Whether the pattern feed of `preferences` is on in `session`.
fn wants_feed(preferences: &UserPreferences, session: MarketSession) -> bool {
    !preferences.market_hours_only || session.is_open()
}

fn seconds(delta: chrono::TimeDelta) -> f64 {
    delta.num_milliseconds().max(0) as f64 / 1000.0
}
