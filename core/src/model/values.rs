//! The values of the event model: [`Priority`], which every schema has,
//! and [`Value`], one dimension's value in an event.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Delivery priority of an event. Ordered: `Low < Medium < High < Critical`.
///
/// Critical events bypass batching and rate limits; under queue pressure low
/// events are dropped first, then medium (see `broadcast`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Informational; first to go under pressure.
    Low,
    /// The default for events that name none.
    #[default]
    Medium,
    /// Important; never dropped silently (a queue that would drop it is closed).
    High,
    /// Written at once, never batched, never rate-limited.
    Critical,
}

impl Priority {
    /// All priorities, lowest first.
    pub const ALL: [Priority; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

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

/// A value that is not one of an enum's wire names.
///
/// The message quotes at most 64 characters of the value: it goes back
/// to whoever sent it (a publish answer, an SSE 400), and quoting a
/// megabyte value whole, escaped, would answer more than was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {:?}", quoted(.value))]
pub struct UnknownValue {
    /// Which vocabulary (`"tier"`, `"priority"`, a dimension's name).
    pub kind: Box<str>,
    /// The rejected value.
    pub value: String,
    /// Stable code for metrics and answers (`unknown_tier`).
    reason: Arc<str>,
}

impl UnknownValue {
    /// `value` is not in the vocabulary `kind`; `reason` is its code.
    pub fn new(kind: impl Into<Box<str>>, value: &str, reason: Arc<str>) -> Self {
        Self {
            kind: kind.into(),
            value: value.to_owned(),
            reason,
        }
    }

    /// Stable code of the error (`unknown_<kind>`).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// One dimension's value in an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A text value, case-folded as its dimension says.
    Text(Box<str>),
    /// The code of a choice (its position in the vocabulary).
    Choice(u8),
    /// A number within its dimension's range.
    Number(f64),
}

impl Value {
    /// The text, for text values.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The choice code, for choice values.
    pub fn choice(&self) -> Option<u8> {
        match self {
            Self::Choice(c) => Some(*c),
            _ => None,
        }
    }

    /// The number, for number values.
    pub fn number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// Most characters of a rejected value that [`UnknownValue`]'s message
/// quotes.
const QUOTED_CHARS: usize = 64;

fn quoted(value: &str) -> String {
    value.chars().take(QUOTED_CHARS).collect()
}

/// `FromStr` (by wire name) and `Display` for a closed enum with `ALL`
/// and `as_str`.
#[macro_export]
#[doc(hidden)]
macro_rules! wire_enum_traits {
    ($ty:ty, $kind:literal) => {
        impl ::std::str::FromStr for $ty {
            type Err = $crate::model::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        $crate::model::UnknownValue::new(
                            $kind,
                            s,
                            ::std::sync::Arc::from(concat!("unknown_", $kind)),
                        )
                    })
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum_traits!(Priority, "priority");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_quoted_short() {
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown priority "urgent""#);
        assert_eq!(err.reason(), "unknown_priority");
        // Found by the sse_query fuzz target: control characters escape
        // to up to six bytes each, so a value quoted whole answered up to
        // six times its size.
        let hostile = "\u{7f}".repeat(100_000);
        let err = hostile.parse::<Priority>().unwrap_err();
        assert_eq!(err.value.len(), 100_000);
        assert_eq!(
            err.to_string(),
            format!("unknown priority {:?}", "\u{7f}".repeat(64))
        );
    }

    #[test]
    fn priorities_are_ordered_and_named() {
        assert!(Priority::Low < Priority::Medium);
        assert!(Priority::High < Priority::Critical);
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
        }
        assert_eq!(
            serde_json::to_string(&Priority::Critical).unwrap(),
            "\"critical\""
        );
    }
}
