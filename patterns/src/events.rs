//! The typed events of the tier-pattern API and the TickStock JSON each
//! becomes, with the market context (session, regime) added.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::market::MarketSession;
use tickcast_core::model::{
    DecodeError, Event, MarketRegime, Priority, Tier, DEFAULT_MAX_BODY_BYTES,
};

/// Event type of market-state updates (broadcast to every subscriber).
pub const MARKET_STATE_EVENT_TYPE: &str = "market_state";
/// Event type of private pattern alerts.
pub const PATTERN_ALERT_EVENT_TYPE: &str = "pattern_alert";
/// Event type of health events (broadcast to every subscriber).
pub const SYSTEM_HEALTH_EVENT_TYPE: &str = "system_health";
/// `source` of the events this API builds.
const SOURCE: &str = "tickcast";

/// The market context stamped on each event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketContext {
    /// The session at publish time.
    pub session: MarketSession,
    /// The latest regime published with a [`MarketStateEvent`], if any.
    pub regime: Option<MarketRegime>,
    /// Publish time, seconds since the Unix epoch.
    pub timestamp: f64,
}

/// A pattern detected on a symbol in one tier.
#[derive(Debug, Clone, PartialEq)]
pub struct TierPatternEvent {
    /// Pattern name (`BreakoutBO`).
    pub pattern: String,
    /// Symbol (upper-cased on decoding).
    pub symbol: String,
    /// Tier it was detected in.
    pub tier: Tier,
    /// Confidence, 0..=1; gives the priority (>= 0.9 critical, >= 0.8
    /// high, >= 0.6 medium, else low).
    pub confidence: f64,
    /// When the engine detected it (seconds since the epoch), if known.
    pub detection_timestamp: Option<f64>,
    /// Anything else, passed on as `metadata`.
    pub metadata: Map<String, Value>,
}

impl TierPatternEvent {
    /// A detection with no detection time and empty metadata.
    pub fn new(pattern: &str, symbol: &str, tier: Tier, confidence: f64) -> Self {
        Self {
            pattern: pattern.to_owned(),
            symbol: symbol.to_owned(),
            tier,
            confidence,
            detection_timestamp: None,
            metadata: Map::new(),
        }
    }

    /// With the engine's detection time.
    pub fn detected_at(mut self, timestamp: f64) -> Self {
        self.detection_timestamp = Some(timestamp);
        self
    }

    /// With one metadata field.
    pub fn with_metadata(mut self, key: &str, value: Value) -> Self {
        self.metadata.insert(key.to_owned(), value);
        self
    }

    pub(crate) fn to_event(&self, context: &MarketContext) -> Result<Event, DecodeError> {
        let mut body = base(
            tickcast_core::model::schema::tickstock::PATTERN_DETECTED,
            context,
        );
        body.insert("pattern".into(), json!(self.pattern));
        body.insert("symbol".into(), json!(self.symbol));
        body.insert("tier".into(), json!(self.tier));
        body.insert("confidence".into(), json!(self.confidence));
        if let Some(at) = self.detection_timestamp {
            body.insert("detection_timestamp".into(), json!(at));
        }
        body.insert("metadata".into(), Value::Object(self.metadata.clone()));
        decode(body)
    }
}

/// The market's state: its regime and any figures worth showing.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketStateEvent {
    /// The regime now; becomes the context of later events.
    pub regime: MarketRegime,
    /// Figures (index levels, breadth, volatility), passed on as `metrics`.
    pub metrics: Map<String, Value>,
}

impl MarketStateEvent {
    /// A state with no figures.
    pub fn new(regime: MarketRegime) -> Self {
        Self {
            regime,
            metrics: Map::new(),
        }
    }

    /// With one figure.
    pub fn with_metric(mut self, key: &str, value: Value) -> Self {
        self.metrics.insert(key.to_owned(), value);
        self
    }

    pub(crate) fn to_event(&self, context: &MarketContext) -> Result<Event, DecodeError> {
        let context = MarketContext {
            regime: Some(self.regime),
            ..*context
        };
        let mut body = base(MARKET_STATE_EVENT_TYPE, &context);
        body.insert("metrics".into(), Value::Object(self.metrics.clone()));
        decode(body)
    }
}

/// An alert for one user about a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternAlertEvent {
    /// The only user who receives it.
    pub user_id: String,
    /// The pattern the alert is about.
    pub pattern: TierPatternEvent,
    /// Text for the user.
    pub message: String,
}

impl PatternAlertEvent {
    /// An alert to `user_id` about `pattern`.
    pub fn new(user_id: &str, pattern: TierPatternEvent, message: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            pattern,
            message: message.to_owned(),
        }
    }

    /// Critical at confidence >= 0.9, high at >= 0.8, else medium.
    pub fn priority(&self) -> Priority {
        match self.pattern.confidence {
            c if c >= 0.9 => Priority::Critical,
            c if c >= 0.8 => Priority::High,
            _ => Priority::Medium,
        }
    }

    pub(crate) fn to_event(&self, context: &MarketContext) -> Result<Event, DecodeError> {
        let mut body = base(PATTERN_ALERT_EVENT_TYPE, context);
        let p = &self.pattern;
        body.insert("user_id".into(), json!(self.user_id));
        body.insert("priority".into(), json!(self.priority()));
        body.insert("pattern".into(), json!(p.pattern));
        body.insert("symbol".into(), json!(p.symbol));
        body.insert("tier".into(), json!(p.tier));
        body.insert("confidence".into(), json!(p.confidence));
        body.insert("message".into(), json!(self.message));
        body.insert("metadata".into(), Value::Object(p.metadata.clone()));
        decode(body)
    }
}

/// How a component is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working.
    Ok,
    /// Working, with something to look at.
    Warning,
    /// Not working.
    Error,
}

/// A component's health, broadcast to every subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemHealthEvent {
    /// The component (`tickstockpl`, `pattern_engine`, ...).
    pub component: String,
    /// Its state.
    pub status: HealthStatus,
    /// Text for people.
    pub message: String,
}

impl SystemHealthEvent {
    /// A health report of `component`.
    pub fn new(component: &str, status: HealthStatus, message: &str) -> Self {
        Self {
            component: component.to_owned(),
            status,
            message: message.to_owned(),
        }
    }

    pub(crate) fn to_event(&self, context: &MarketContext) -> Result<Event, DecodeError> {
        let mut body = base(SYSTEM_HEALTH_EVENT_TYPE, context);
        body.insert("component".into(), json!(self.component));
        body.insert("status".into(), json!(self.status));
        body.insert("message".into(), json!(self.message));
        // Health matters even when nothing else does.
        body.insert(
            "priority".into(),
            json!(match self.status {
                HealthStatus::Ok => Priority::Low,
                HealthStatus::Warning => Priority::High,
                HealthStatus::Error => Priority::Critical,
            }),
        );
        decode(body)
    }
}

/// The fields every event carries: source, type, time, market context.
fn base(event_type: &str, context: &MarketContext) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("source".into(), json!(SOURCE));
    body.insert("event_type".into(), json!(event_type));
    body.insert("timestamp".into(), json!(context.timestamp));
    body.insert("market_session".into(), json!(context.session.as_str()));
    if let Some(regime) = context.regime {
        body.insert("market_regime".into(), json!(regime));
    }
    body
}

/// The body as the hub's [`Event`], validated as any ingested event is.
fn decode(body: Map<String, Value>) -> Result<Event, DecodeError> {
    let bytes = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| DecodeError::NotJson(e.to_string()))?;
    Event::from_json(Bytes::from(bytes), None, DEFAULT_MAX_BODY_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickcast_core::model::schema::tickstock::TickStockEvent;

    fn context() -> MarketContext {
        MarketContext {
            session: MarketSession::Regular,
            regime: Some(MarketRegime::Bull),
            timestamp: 1_764_083_000.5,
        }
    }

    fn json_of(event: &Event) -> Value {
        serde_json::from_slice(event.body()).unwrap()
    }

    #[test]
    fn a_pattern_event_is_tickstock_json_with_market_context() {
        let event = TierPatternEvent::new("BreakoutBO", "aapl", Tier::Daily, 0.85)
            .detected_at(1_764_082_999.0)
            .with_metadata("volume", json!(1200))
            .to_event(&context())
            .unwrap();
        assert_eq!(event.event_type(), "pattern_detected");
        assert_eq!(event.symbol(), Some("AAPL"));
        assert_eq!(event.priority(), Priority::High);
        assert_eq!(event.market_regime(), Some(MarketRegime::Bull));
        let body = json_of(&event);
        assert_eq!(body["market_session"], "regular");
        assert_eq!(body["metadata"]["volume"], 1200);
        assert_eq!(body["detection_timestamp"], 1_764_082_999.0);
        assert_eq!(body["tier"], "daily");
    }

    #[test]
    fn alerts_are_private_with_priority_from_confidence() {
        let alert = |c| {
            PatternAlertEvent::new(
                "u1",
                TierPatternEvent::new("Doji", "MSFT", Tier::Intraday, c),
                "look",
            )
        };
        assert_eq!(alert(0.95).priority(), Priority::Critical);
        assert_eq!(alert(0.8).priority(), Priority::High);
        assert_eq!(alert(0.5).priority(), Priority::Medium);
        let event = alert(0.5).to_event(&context()).unwrap();
        assert_eq!(event.user_id(), Some("u1"));
        assert_eq!(event.priority(), Priority::Medium);
        assert_eq!(event.event_type(), "pattern_alert");
    }

    #[test]
    fn market_state_and_health_carry_their_fields() {
        let state = MarketStateEvent::new(MarketRegime::Bear)
            .with_metric("spy", json!(512.3))
            .to_event(&MarketContext {
                regime: None,
                ..context()
            })
            .unwrap();
        assert_eq!(state.market_regime(), Some(MarketRegime::Bear));
        assert_eq!(json_of(&state)["metrics"]["spy"], 512.3);
        let health = SystemHealthEvent::new("engine", HealthStatus::Error, "down")
            .to_event(&context())
            .unwrap();
        assert_eq!(health.priority(), Priority::Critical);
        assert_eq!(json_of(&health)["status"], "error");
    }

    #[test]
    fn invalid_values_are_refused_like_ingested_ones() {
        let too_long = "X".repeat(40);
        let error = TierPatternEvent::new("Doji", &too_long, Tier::Daily, 0.5)
            .to_event(&context())
            .unwrap_err();
        assert_eq!(error.reason(), "too_long");
        let error = TierPatternEvent::new("Doji", "A", Tier::Daily, 1.5)
            .to_event(&context())
            .unwrap_err();
        assert_eq!(error.reason(), "confidence_out_of_range");
    }
}
