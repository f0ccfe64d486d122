//! TickStock's schema, the default one: pattern detections, market state,
//! backtests and health events from TickStockPL.
//!
//! | dimension | kind | body field(s) | filter key |
//! |---|---|---|---|
//! | `event_type` | text | `event_type`, else the channel | `event_types` |
//! | `symbol` | text, upper-cased, <= 32 chars | `symbol` | `symbols` |
//! | `pattern` | text | `pattern`, `pattern_name` | `patterns` |
//! | `tier` | choice of [`Tier`] | `tier` | `tiers` |
//! | `market_regime` | choice of [`MarketRegime`] | `market_regime` | `market_regimes` |
//! | `confidence` | number in 0..=1 | `confidence` | `min_confidence`, `max_confidence` |
//!
//! Priority follows confidence when a body names none (at least 0.9
//! critical, 0.8 high, 0.6 medium, else low; medium without confidence).
//! `pattern_detected` events must carry a symbol and a pattern. A token's
//! `tiers` claim narrows the tiers a user receives. Rate-limited events
//! conflate on symbol, pattern and tier.

use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

use super::{Case, DimensionDecl, Schema, SchemaDecl};
use crate::model::{Event, Filter, Priority};

/// Event type of pattern detections, also the default when nothing names one.
pub const PATTERN_DETECTED: &str = "pattern_detected";

/// Longest accepted `symbol`, in characters.
pub const MAX_SYMBOL_CHARS: usize = 32;

/// The channels TickStockPL publishes on, with the event type each implies.
pub const KNOWN_CHANNELS: [(&str, &str); 4] = [
    ("tickstock.events.patterns", PATTERN_DETECTED),
    ("tickstock.events.backtesting.progress", "backtest_progress"),
    ("tickstock.events.backtesting.results", "backtest_result"),
    ("tickstock.health.status", "system_health"),
];

/// TickStock's schema as a declaration (to extend it, or to print it).
pub fn declaration() -> SchemaDecl {
    let mut decl = SchemaDecl::new("tickstock")
        .default_event_type(PATTERN_DETECTED)
        .dimension(
            DimensionDecl::text("symbol")
                .case(Case::Upper)
                .max_chars(MAX_SYMBOL_CHARS)
                .required_for([PATTERN_DETECTED]),
        )
        .dimension(
            DimensionDecl::text("pattern")
                .fields(["pattern", "pattern_name"])
                .required_for([PATTERN_DETECTED]),
        )
        .dimension(DimensionDecl::choice("tier", Tier::ALL.map(Tier::as_str)))
        .dimension(DimensionDecl::choice(
            "market_regime",
            MarketRegime::ALL.map(MarketRegime::as_str),
        ))
        .dimension(DimensionDecl::number("confidence", 0.0, 1.0))
        .priority_from("confidence", 0.6, 0.8, 0.9)
        .entitlement("tier", "tiers")
        .conflate(["symbol", "pattern", "tier"]);
    for (channel, event_type) in KNOWN_CHANNELS {
        decl = decl.channel(channel, event_type);
    }
    decl
}

static SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| match declaration().build() {
    Ok(schema) => schema,
    // The declaration is a constant, checked by the tests below.
    Err(e) => unreachable!("the TickStock schema is valid: {e}"),
});

/// The TickStock schema, shared.
pub fn schema() -> Arc<Schema> {
    SCHEMA.clone()
}

/// The priority TickStock gives an event that names none.
pub fn priority_from_confidence(confidence: Option<f64>) -> Priority {
    match confidence {
        Some(c) if c >= 0.9 => Priority::Critical,
        Some(c) if c >= 0.8 => Priority::High,
        Some(c) if c >= 0.6 => Priority::Medium,
        Some(_) => Priority::Low,
        None => Priority::Medium,
    }
}

/// TickStock's pattern tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// End-of-day patterns.
    Daily,
    /// Patterns detected during the session.
    Intraday,
    /// Patterns confirmed on several timeframes.
    Combo,
}

impl Tier {
    /// All tiers.
    pub const ALL: [Tier; 3] = [Self::Daily, Self::Intraday, Self::Combo];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Intraday => "intraday",
            Self::Combo => "combo",
        }
    }
}

/// The market regime an event was detected in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarketRegime {
    /// Rising market.
    Bull,
    /// Falling market.
    Bear,
    /// No clear direction.
    Neutral,
    /// Range-bound market.
    Consolidation,
}

impl MarketRegime {
    /// All regimes.
    pub const ALL: [MarketRegime; 4] = [Self::Bull, Self::Bear, Self::Neutral, Self::Consolidation];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bull => "bull",
            Self::Bear => "bear",
            Self::Neutral => "neutral",
            Self::Consolidation => "consolidation",
        }
    }
}

crate::wire_enum_traits!(Tier, "tier");
crate::wire_enum_traits!(MarketRegime, "market_regime");

/// TickStock's dimensions of an [`Event`], typed.
pub trait TickStockEvent {
    /// The symbol, upper-cased.
    fn symbol(&self) -> Option<&str>;
    /// The pattern name (`pattern` or its alias `pattern_name`).
    fn pattern(&self) -> Option<&str>;
    /// The tier.
    fn tier(&self) -> Option<Tier>;
    /// The market regime.
    fn market_regime(&self) -> Option<MarketRegime>;
    /// Detection confidence in 0..=1.
    fn confidence(&self) -> Option<f64>;
}

impl TickStockEvent for Event {
    fn symbol(&self) -> Option<&str> {
        self.text("symbol")
    }
    fn pattern(&self) -> Option<&str> {
        self.text("pattern")
    }
    fn tier(&self) -> Option<Tier> {
        self.text("tier")?.parse().ok()
    }
    fn market_regime(&self) -> Option<MarketRegime> {
        self.text("market_regime")?.parse().ok()
    }
    fn confidence(&self) -> Option<f64> {
        self.number("confidence")
    }
}

/// A TickStock filter with typed fields, for code that builds filters
/// (tests, the tier-pattern layer, the load generator); it becomes the
/// [`Filter`] a client would send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickStockFilter {
    /// Allowed event types.
    pub event_types: Vec<String>,
    /// Allowed tiers.
    pub tiers: Vec<Tier>,
    /// Allowed symbols.
    pub symbols: Vec<String>,
    /// Allowed pattern names.
    pub patterns: Vec<String>,
    /// Allowed market regimes.
    pub market_regimes: Vec<MarketRegime>,
    /// Lowest accepted confidence.
    pub min_confidence: Option<f64>,
    /// Lowest accepted priority.
    pub min_priority: Option<Priority>,
}

impl From<TickStockFilter> for Filter {
    fn from(f: TickStockFilter) -> Self {
        let mut out = Filter::new();
        let lists = [
            ("event_types", f.event_types),
            ("tiers", f.tiers.iter().map(|t| t.as_str().into()).collect()),
            ("symbols", f.symbols),
            ("patterns", f.patterns),
            (
                "market_regimes",
                f.market_regimes.iter().map(|r| r.as_str().into()).collect(),
            ),
        ];
        for (key, values) in lists {
            if !values.is_empty() {
                out = out.values(key, values);
            }
        }
        if let Some(c) = f.min_confidence {
            out = out.number("min_confidence", c);
        }
        if let Some(p) = f.min_priority {
            out = out.text("min_priority", p.as_str());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn the_declaration_builds_with_todays_keys() {
        let s = declaration().build().unwrap();
        let keys: Vec<&str> = s.filter_keys().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "min_priority",
                "event_types",
                "symbols",
                "patterns",
                "tiers",
                "market_regimes",
                "min_confidence",
                "max_confidence"
            ]
        );
        let anchors: Vec<&str> = s.anchors().iter().map(|d| s.dimension(*d).name()).collect();
        assert_eq!(
            anchors,
            ["symbol", "pattern", "market_regime", "tier", "event_type"]
        );
    }

    #[test]
    fn priority_follows_confidence_thresholds() {
        for (c, p) in [
            (Some(0.95), Priority::Critical),
            (Some(0.9), Priority::Critical),
            (Some(0.85), Priority::High),
            (Some(0.8), Priority::High),
            (Some(0.6), Priority::Medium),
            (Some(0.59), Priority::Low),
            (None, Priority::Medium),
        ] {
            assert_eq!(priority_from_confidence(c), p);
            let body = match c {
                Some(c) => format!(r#"{{"symbol":"A","pattern":"P","confidence":{c}}}"#),
                None => r#"{"symbol":"A","pattern":"P"}"#.to_owned(),
            };
            let event = Event::from_json(Bytes::from(body), None, 1024).unwrap();
            assert_eq!(event.priority(), p);
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>().unwrap(), t);
        }
        for r in MarketRegime::ALL {
            assert_eq!(r.as_str().parse::<MarketRegime>().unwrap(), r);
        }
        let err = "weekly".parse::<Tier>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown tier "weekly""#);
        assert_eq!(err.reason(), "unknown_tier");
    }

    #[test]
    fn typed_filters_become_what_a_client_sends() {
        let f: Filter = TickStockFilter {
            symbols: vec!["AAPL".into()],
            tiers: vec![Tier::Daily],
            min_confidence: Some(0.8),
            ..TickStockFilter::default()
        }
        .into();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"min_confidence":0.8,"symbols":["AAPL"],"tiers":["daily"]}"#
        );
    }
}
