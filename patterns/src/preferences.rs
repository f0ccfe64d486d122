//! [`UserPreferences`]: what one user wants from the tier-pattern feed,
//! and the presets TickStock offers.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use tickcast_core::model::schema::tickstock::TickStockFilter;
use tickcast_core::model::{Filter, Priority, Tier};

/// Event type of tier-pattern detections.
pub const PATTERN_EVENT_TYPE: &str = tickcast_core::model::schema::tickstock::PATTERN_DETECTED;

/// Default lowest confidence of a preference.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.6;

/// One user's tier-pattern preferences. Empty lists match anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserPreferences {
    /// Pattern names (`BreakoutBO`, `Doji`, ...).
    pub pattern_types: Vec<String>,
    /// Symbols (matched case-insensitively).
    pub symbols: Vec<String>,
    /// Tiers.
    pub tiers: Vec<Tier>,
    /// Lowest confidence, 0..=1 (default 0.6).
    pub min_confidence: f64,
    /// Lowest priority.
    pub min_priority: Option<Priority>,
    /// Most events delivered per hour to all of the user's connections
    /// together; `None`: no hourly cap. Critical events are exempt.
    pub max_events_per_hour: Option<NonZeroU32>,
    /// Deliver pattern events only in the regular session (09:30-16:00
    /// US/Eastern, weekdays).
    pub market_hours_only: bool,
}

impl Default for UserPreferences {
    fn default() -> Self {
        Self {
            pattern_types: Vec::new(),
            symbols: Vec::new(),
            tiers: Vec::new(),
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            min_priority: None,
            max_events_per_hour: None,
            market_hours_only: false,
        }
    }
}

impl UserPreferences {
    /// Daily-tier patterns of any symbol.
    pub fn daily() -> Self {
        Self {
            tiers: vec![Tier::Daily],
            ..Self::default()
        }
    }

    /// Every tier, confidence 0.8 and up, high priority and up.
    pub fn high_confidence() -> Self {
        Self {
            min_confidence: 0.8,
            min_priority: Some(Priority::High),
            ..Self::default()
        }
    }

    /// Intraday patterns during market hours, at most 200 per hour.
    pub fn intraday_scalping() -> Self {
        Self {
            tiers: vec![Tier::Intraday],
            max_events_per_hour: NonZeroU32::new(200),
            market_hours_only: true,
            ..Self::default()
        }
    }

    /// Daily and combo patterns, confidence 0.7 and up, at most 25 per
    /// hour.
    pub fn swing_trading() -> Self {
        Self {
            tiers: vec![Tier::Daily, Tier::Combo],
            min_confidence: 0.7,
            max_events_per_hour: NonZeroU32::new(25),
            ..Self::default()
        }
    }

    /// Only what is high priority or critical, from every tier, any time.
    pub fn risk_monitoring() -> Self {
        Self {
            min_confidence: 0.0,
            min_priority: Some(Priority::High),
            ..Self::default()
        }
    }

    /// A preset by name (`daily`, `high_confidence`, `intraday_scalping`,
    /// `swing_trading`, `risk_monitoring`).
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "daily" => Self::daily(),
            "high_confidence" => Self::high_confidence(),
            "intraday_scalping" => Self::intraday_scalping(),
            "swing_trading" => Self::swing_trading(),
            "risk_monitoring" => Self::risk_monitoring(),
            _ => return None,
        })
    }

    /// The subscription filter of the pattern feed: pattern detections
    /// with these tiers, symbols, patterns, confidence and priority.
    pub fn to_filter(&self) -> Filter {
        TickStockFilter {
            event_types: vec![PATTERN_EVENT_TYPE.to_owned()],
            tiers: self.tiers.clone(),
            symbols: self.symbols.clone(),
            patterns: self.pattern_types.clone(),
            market_regimes: Vec::new(),
            min_confidence: (self.min_confidence > 0.0).then_some(self.min_confidence),
            min_priority: self.min_priority,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickcast_core::model::schema::Test;
    use tickcast_core::model::FilterValue;

    #[test]
    fn preferences_become_a_pattern_filter() {
        let prefs = UserPreferences {
            pattern_types: vec!["BreakoutBO".into()],
            symbols: vec!["aapl".into()],
            tiers: vec![Tier::Daily, Tier::Combo],
            min_priority: Some(Priority::High),
            ..UserPreferences::default()
        };
        let filter = prefs.to_filter();
        assert_eq!(filter.list("event_types"), ["pattern_detected"]);
        assert_eq!(filter.list("tiers"), ["daily", "combo"]);
        assert_eq!(filter.list("patterns"), ["BreakoutBO"]);
        assert_eq!(
            filter.get("min_confidence"),
            Some(&FilterValue::Number(0.6))
        );
        assert_eq!(
            filter.get("min_priority"),
            Some(&FilterValue::Text("high".into()))
        );
        let schema = tickcast_core::model::schema::tickstock::schema();
        let criteria = schema.criteria(&filter, 16).unwrap();
        let symbol = schema.dim("symbol").unwrap();
        assert_eq!(
            criteria.condition(symbol),
            Some(&Test::Texts(vec!["AAPL".into()]))
        );
        assert_eq!(
            UserPreferences::risk_monitoring()
                .to_filter()
                .get("min_confidence"),
            None
        );
    }

    #[test]
    fn presets_are_what_their_names_say() {
        let scalping = UserPreferences::preset("intraday_scalping").unwrap();
        assert_eq!(scalping.max_events_per_hour, NonZeroU32::new(200));
        assert!(scalping.market_hours_only);
        assert_eq!(scalping.tiers, [Tier::Intraday]);
        let swing = UserPreferences::preset("swing_trading").unwrap();
        assert_eq!(swing.max_events_per_hour, NonZeroU32::new(25));
        assert_eq!(
            UserPreferences::preset("daily").unwrap().tiers,
            [Tier::Daily]
        );
        assert!(
            UserPreferences::preset("high_confidence")
                .unwrap()
                .min_confidence
                >= 0.8
        );
        assert_eq!(
            UserPreferences::preset("risk_monitoring")
                .unwrap()
                .min_priority,
            Some(Priority::High)
        );
        assert!(UserPreferences::preset("yolo").is_none());
        assert_eq!(UserPreferences::default().min_confidence, 0.6);
    }

    #[test]
    fn preferences_read_from_json_with_defaults() {
        let prefs: UserPreferences =
            serde_json::from_str(r#"{"tiers":["intraday"],"max_events_per_hour":50}"#).unwrap();
        assert_eq!(prefs.min_confidence, 0.6);
        assert_eq!(prefs.max_events_per_hour, NonZeroU32::new(50));
        assert!(serde_json::from_str::<UserPreferences>(r#"{"tier":["daily"]}"#).is_err());
    }
}
