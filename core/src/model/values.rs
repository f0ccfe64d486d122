//! The closed vocabularies of the event model: [`Priority`], [`Tier`] and
//! [`MarketRegime`].
//!
//! Each is a small `Copy` enum so that filters and the index compare them as
//! integers; their wire form is the lower-case name used by TickStockPL.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Delivery priority of an event. Ordered: `Low < Medium < High < Critical`.
///
/// Critical events bypass batching and rate limits; under queue pressure low
/// events are dropped first, then medium (see `broadcast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Informational; first to go under pressure.
    Low,
    /// The default for events without confidence.
    Medium,
    /// Important; never dropped silently (a queue that would drop it is closed).
    High,
    /// Written at once, never batched, never rate-limited.
    Critical,
}

impl Priority {
    /// All priorities, lowest first.
    pub const ALL: [Priority; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The priority an event gets when it names none: derived from its
    /// confidence (>= 0.9 critical, >= 0.8 high, >= 0.6 medium, else low), and
    /// medium when it has no confidence either.
    pub fn from_confidence(confidence: Option<f64>) -> Self {
        match confidence {
            Some(c) if c >= 0.9 => Self::Critical,
            Some(c) if c >= 0.8 => Self::High,
            Some(c) if c >= 0.6 => Self::Medium,
            Some(_) => Self::Low,
            None => Self::Medium,
        }
    }

    /// Wire name (`"low"`, `"medium"`, `"high"`, `"critical"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Dense index 0..4, lowest first; used for per-priority arrays.
    pub fn index(self) -> usize {
        self as usize
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

/// A value that is not one of an enum's wire names.
///
/// The message quotes at most 64 characters of the value: it goes back
/// to whoever sent it (a publish answer, an SSE 400), and quoting a
/// megabyte value whole, escaped, would answer more than was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {:?}", quoted(.value))]
pub struct UnknownValue {
    /// Which vocabulary (`"tier"`, `"priority"`, `"market_regime"`).
    pub kind: &'static str,
    /// The rejected value.
    pub value: String,
}

/// Most characters of a rejected value that [`UnknownValue`]'s message
/// quotes.
const QUOTED_CHARS: usize = 64;

fn quoted(value: &str) -> String {
    value.chars().take(QUOTED_CHARS).collect()
}

macro_rules! wire_enum_traits {
    ($ty:ty, $kind:literal) => {
        impl FromStr for $ty {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownValue {
                        kind: $kind,
                        value: s.to_owned(),
                    })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum_traits!(Priority, "priority");
wire_enum_traits!(Tier, "tier");
wire_enum_traits!(MarketRegime, "market_regime");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_quoted_short() {
        let err = "weekly".parse::<Tier>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown tier "weekly""#);
        // Found by the sse_query fuzz target: control characters escape
        // to up to six bytes each, so a value quoted whole answered up to
        // six times its size.
        let hostile = "\u{7f}".repeat(100_000);
        let err = hostile.parse::<Tier>().unwrap_err();
        assert_eq!(err.value.len(), 100_000);
        assert_eq!(
            err.to_string(),
            format!("unknown tier {:?}", "\u{7f}".repeat(64))
        );
    }

    #[test]
    fn priority_follows_confidence_thresholds() {
        assert_eq!(Priority::from_confidence(Some(0.95)), Priority::Critical);
        assert_eq!(Priority::from_confidence(Some(0.9)), Priority::Critical);
        assert_eq!(Priority::from_confidence(Some(0.85)), Priority::High);
        assert_eq!(Priority::from_confidence(Some(0.8)), Priority::High);
        assert_eq!(Priority::from_confidence(Some(0.6)), Priority::Medium);
        assert_eq!(Priority::from_confidence(Some(0.59)), Priority::Low);
        assert_eq!(Priority::from_confidence(None), Priority::Medium);
    }

    #[test]
    fn priorities_are_ordered() {
        assert!(Priority::Low < Priority::Medium);
        assert!(Priority::High < Priority::Critical);
    }

    #[test]
    fn wire_names_round_trip() {
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>().unwrap(), t);
        }
        for r in MarketRegime::ALL {
            assert_eq!(r.as_str().parse::<MarketRegime>().unwrap(), r);
        }
        assert!("weekly".parse::<Tier>().is_err());
        assert_eq!(
            serde_json::to_string(&Priority::Critical).unwrap(),
            "\"critical\""
        );
    }
}
