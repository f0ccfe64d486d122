//! The tier-pattern API through real hub connections.

use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use parking_lot::Mutex;
use serde_json::Value;
use tickcast_core::broadcast::{encode_batch, FrameReceiver, Outbound};
use tickcast_core::hub::HubConfig;
use tickcast_core::model::{MarketRegime, Tier, UserId};
use tickcast_core::protocol::ServerMessage;
use tickcast_core::Connection;
use tickcast_patterns::{
    HealthStatus, MarketSession, MarketStateEvent, PatternAlertEvent, SystemHealthEvent,
    TierPatternEvent, TierPatternHub, UserPreferences, ALERT_SUBSCRIPTION, PATTERN_SUBSCRIPTION,
};

/// What a client saw: its events and its other messages.
#[derive(Debug, Default)]
struct Seen {
    events: Vec<Value>,
    messages: Vec<ServerMessage>,
}

/// Everything queued for a connection now, decoded as the WebSocket
/// transport would write it.
fn drain(rx: &mut FrameReceiver) -> Seen {
    let mut seen = Seen::default();
    while let Some(out) = rx.try_recv() {
        match out {
            Outbound::Event(f) => seen
                .events
                .push(serde_json::from_slice(&f.to_json()).unwrap()),
            Outbound::Batch(frames) => {
                let batch: Value = serde_json::from_slice(&encode_batch(&frames)).unwrap();
                seen.events
                    .extend(batch["events"].as_array().unwrap().iter().cloned());
            }
            Outbound::Message(m) => seen.messages.push(m),
            Outbound::Close(_) => {}
        }
    }
    seen
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct FakeClock(Arc<Mutex<DateTime<Utc>>>);

impl FakeClock {
    /// Tue 2026-01-13 10:00 Eastern (15:00 UTC): regular session.
    fn market_open() -> Self {
        Self(Arc::new(Mutex::new(
            Utc.with_ymd_and_hms(2026, 1, 13, 15, 0, 0).unwrap(),
        )))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock() += by;
    }
}

fn hub(clock: &FakeClock) -> TierPatternHub {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    let clock = clock.clone();
    TierPatternHub::builder()
        .config(config)
        .clock(move || *clock.0.lock())
        .build()
}

fn connect(patterns: &TierPatternHub, user: &str) -> Connection {
    let hub = patterns.hub();
    hub.connect(Some(UserId::from(user)), hub.default_limits())
        .unwrap()
}

fn pattern(symbol: &str, tier: Tier, confidence: f64) -> TierPatternEvent {
    TierPatternEvent::new("BreakoutBO", symbol, tier, confidence)
}

fn event_types(seen: &Seen) -> Vec<String> {
    seen.events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn preferences_filter_the_pattern_feed_per_user() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    patterns
        .subscribe_user("daily", UserPreferences::daily())
        .unwrap();
    patterns
        .subscribe_user(
            "aapl",
            UserPreferences {
                symbols: vec!["AAPL".into()],
                ..UserPreferences::default()
            },
        )
        .unwrap();
    let mut daily = connect(&patterns, "daily");
    let mut aapl = connect(&patterns, "aapl");
    drain(&mut daily.frames);
    drain(&mut aapl.frames);

    patterns
        .publish_pattern(pattern("MSFT", Tier::Daily, 0.7))
        .unwrap();
    patterns
        .publish_pattern(pattern("AAPL", Tier::Intraday, 0.7))
        .unwrap();
    // Below the default minimum confidence of 0.6: nobody.
    patterns
        .publish_pattern(pattern("AAPL", Tier::Daily, 0.5))
        .unwrap();

    let seen = drain(&mut daily.frames);
    assert_eq!(seen.events.len(), 1);
    assert_eq!(seen.events[0]["data"]["symbol"], "MSFT");
    assert_eq!(
        seen.events[0]["subs"],
        serde_json::json!([PATTERN_SUBSCRIPTION])
    );
    assert_eq!(seen.events[0]["data"]["market_session"], "regular");
    let seen = drain(&mut aapl.frames);
    assert_eq!(seen.events.len(), 1);
    assert_eq!(seen.events[0]["data"]["tier"], "intraday");
    assert_eq!(patterns.stats().patterns, 3);
}

#[test]
fn alerts_reach_only_their_user_with_priority_from_confidence() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    for user in ["u1", "u2"] {
        patterns
            .subscribe_user(user, UserPreferences::daily())
            .unwrap();
    }
    let mut u1 = connect(&patterns, "u1");
    let mut u2 = connect(&patterns, "u2");
    drain(&mut u1.frames);
    drain(&mut u2.frames);
    let alert = |c| PatternAlertEvent::new("u1", pattern("NVDA", Tier::Combo, c), "watch NVDA");
    patterns.publish_alert(alert(0.95)).unwrap();
    patterns.publish_alert(alert(0.82)).unwrap();

    let seen = drain(&mut u1.frames);
    let priorities: Vec<_> = seen.events.iter().map(|e| e["priority"].clone()).collect();
    assert_eq!(priorities, ["critical", "high"]);
    assert_eq!(
        seen.events[0]["subs"],
        serde_json::json!([ALERT_SUBSCRIPTION])
    );
    assert!(drain(&mut u2.frames).events.is_empty());
    let stats = patterns.stats();
    assert_eq!((stats.alerts, stats.critical_alerts), (2, 1));
}

#[test]
fn market_state_goes_to_everyone_and_sets_the_regime_of_later_events() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    patterns
        .subscribe_user("u1", UserPreferences::daily())
        .unwrap();
    let mut u1 = connect(&patterns, "u1");
    let mut anonymous = patterns
        .hub()
        .connect(None, patterns.hub().default_limits())
        .unwrap();
    anonymous
        .handle
        .subscribe(
            "health",
            serde_json::from_str(r#"{"event_types":["system_health"]}"#).unwrap(),
            None,
        )
        .unwrap();
    drain(&mut u1.frames);
    drain(&mut anonymous.frames);

    patterns
        .publish_market_state(MarketStateEvent::new(MarketRegime::Bear))
        .unwrap();
    patterns
        .publish_health(SystemHealthEvent::new("engine", HealthStatus::Ok, "fine"))
        .unwrap();
    patterns
        .publish_pattern(pattern("AMD", Tier::Daily, 0.7))
        .unwrap();

    let seen = drain(&mut u1.frames);
    // A connection gets its events in offset order, whatever their
    // priority.
    assert_eq!(
        event_types(&seen),
        ["market_state", "system_health", "pattern_detected"]
    );
    assert_eq!(seen.events[2]["data"]["market_regime"], "bear");
    assert_eq!(
        event_types(&drain(&mut anonymous.frames)),
        ["market_state", "system_health"]
    );
    assert_eq!(patterns.stats().regime, Some(MarketRegime::Bear));
    assert_eq!(patterns.stats().market_updates, 1);
}

#[test]
fn the_hourly_limit_of_the_preferences_is_enforced_per_user() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    patterns
        .subscribe_user(
            "u1",
            UserPreferences {
                max_events_per_hour: NonZeroU32::new(2),
                ..UserPreferences::default()
            },
        )
        .unwrap();
    let mut a = connect(&patterns, "u1");
    drain(&mut a.frames);
    for symbol in ["A", "B", "C", "D"] {
        patterns
            .publish_pattern(pattern(symbol, Tier::Daily, 0.7))
            .unwrap();
    }
    let seen = drain(&mut a.frames);
    assert_eq!(seen.events.len(), 2);
    assert!(seen
        .messages
        .iter()
        .any(|m| matches!(m, ServerMessage::Dropped { count: 2, .. })));
}

#[test]
fn market_hours_only_feeds_follow_the_session() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    // 15:55 Eastern.
    clock.advance(Duration::minutes(5 * 60 + 55));
    assert_eq!(patterns.refresh_market_session(), MarketSession::Regular);
    patterns
        .subscribe_user("scalper", UserPreferences::intraday_scalping())
        .unwrap();
    let mut conn = connect(&patterns, "scalper");
    drain(&mut conn.frames);
    patterns
        .publish_pattern(pattern("TSLA", Tier::Intraday, 0.7))
        .unwrap();
    assert_eq!(drain(&mut conn.frames).events.len(), 1);

    // 16:05: after hours, the feed is off; alerts still come.
    clock.advance(Duration::minutes(10));
    patterns
        .publish_pattern(pattern("TSLA", Tier::Intraday, 0.7))
        .unwrap();
    patterns
        .publish_alert(PatternAlertEvent::new(
            "scalper",
            pattern("TSLA", Tier::Intraday, 0.7),
            "x",
        ))
        .unwrap();
    assert_eq!(event_types(&drain(&mut conn.frames)), ["pattern_alert"]);

    // Next morning 09:31: on again, for new connections too.
    clock.advance(Duration::minutes(17 * 60 + 26));
    assert_eq!(patterns.refresh_market_session(), MarketSession::Regular);
    let mut later = connect(&patterns, "scalper");
    drain(&mut later.frames);
    drain(&mut conn.frames);
    patterns
        .publish_pattern(pattern("TSLA", Tier::Intraday, 0.7))
        .unwrap();
    assert_eq!(drain(&mut conn.frames).events.len(), 1);
    assert_eq!(drain(&mut later.frames).events.len(), 1);
}

#[test]
fn unsubscribe_user_stops_everything_for_that_user() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    patterns
        .subscribe_user("u1", UserPreferences::daily())
        .unwrap();
    assert_eq!(
        patterns.user_subscriptions("u1"),
        Some(UserPreferences::daily())
    );
    let mut conn = connect(&patterns, "u1");
    assert!(patterns.unsubscribe_user("u1"));
    assert!(!patterns.unsubscribe_user("u1"));
    drain(&mut conn.frames);
    patterns
        .publish_pattern(pattern("A", Tier::Daily, 0.7))
        .unwrap();
    patterns
        .publish_alert(PatternAlertEvent::new(
            "u1",
            pattern("A", Tier::Daily, 0.9),
            "x",
        ))
        .unwrap();
    assert!(drain(&mut conn.frames).events.is_empty());
    assert_eq!(patterns.user_subscriptions("u1"), None);
    assert_eq!(patterns.stats().users, 0);
}

#[test]
fn invalid_preferences_and_events_are_refused() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    let bad = UserPreferences {
        min_confidence: 1.5,
        ..UserPreferences::default()
    };
    assert!(patterns.subscribe_user("u1", bad.clone()).is_err());
    let bad_later = UserPreferences {
        market_hours_only: true,
        ..bad
    };
    assert!(patterns.subscribe_user("u1", bad_later).is_err());
    assert!(patterns.user_subscriptions("u1").is_none());
    assert!(patterns
        .publish_pattern(pattern(&"X".repeat(40), Tier::Daily, 0.7))
        .is_err());
    assert_eq!(patterns.stats().patterns, 0);
}

#[test]
fn health_warns_after_ten_silent_minutes_of_market_hours_only() {
    let clock = FakeClock::market_open();
    let patterns = hub(&clock);
    assert_eq!(patterns.health().status, HealthStatus::Ok);
    clock.advance(Duration::minutes(9));
    patterns
        .publish_pattern(pattern("A", Tier::Daily, 0.7))
        .unwrap();
    clock.advance(Duration::minutes(9));
    assert_eq!(patterns.health().status, HealthStatus::Ok);
    clock.advance(Duration::minutes(2));
    let health = patterns.health();
    assert_eq!(health.status, HealthStatus::Warning);
    assert!(health.silent_for_s >= 600.0);
    assert_eq!(patterns.stats().last_event_age_s, Some(660.0));
    // After the close, silence is normal: 16:30 Eastern.
    clock.advance(Duration::hours(6));
    assert_eq!(patterns.health().session, MarketSession::AfterHours);
    assert_eq!(patterns.health().status, HealthStatus::Ok);
}
