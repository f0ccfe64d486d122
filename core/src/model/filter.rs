//! [`Filter`]: what a subscription wants, and its reference semantics.
//!
//! A filter is a conjunction of fields. A missing or empty list matches
//! anything; a field that is set matches only events that carry that field
//! with an allowed value. [`Filter::matches`] is the definition the index,
//! the route cache and history replay must all agree with.

use serde::{Deserialize, Serialize};

use super::event::{Event, MAX_NAME_CHARS, MAX_SYMBOL_CHARS};
use super::values::{MarketRegime, Priority, Tier};

/// Default of `limits.max_values_per_list`.
pub const DEFAULT_MAX_VALUES_PER_LIST: usize = 256;

/// The conditions of one subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    /// Allowed event types.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Allowed tiers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// Allowed symbols; matched case-insensitively (stored upper-cased).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
    /// Allowed pattern names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// Allowed market regimes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub market_regimes: Vec<MarketRegime>,
    /// Lowest accepted confidence; events without confidence never match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    /// Lowest accepted priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_priority: Option<Priority>,
}

/// A filter that breaks a rule; the message is meant for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// A list holds more values than allowed.
    #[error("`{field}` has {len} values, more than the limit of {max}")]
    TooManyValues {
        /// The list.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is empty or too long.
    #[error("`{field}` values must be 1 to {max} characters")]
    BadValue {
        /// The list.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// `min_confidence` is not in 0..=1.
    #[error("`min_confidence` must be a number in 0..1")]
    BadConfidence,
}

impl Filter {
    /// Checks the limits and normalizes the filter: symbols upper-cased, list
    /// values sorted and deduplicated (so equal filters compare equal).
    pub fn normalized(mut self, max_values_per_list: usize) -> Result<Self, FilterError> {
        let lists: [(&'static str, &mut Vec<String>, usize); 3] = [
            ("event_types", &mut self.event_types, MAX_NAME_CHARS),
            ("symbols", &mut self.symbols, MAX_SYMBOL_CHARS),
            ("patterns", &mut self.patterns, MAX_NAME_CHARS),
        ];
        for (field, values, max_chars) in lists {
            check_len(field, values.len(), max_values_per_list)?;
            if values
                .iter()
                .any(|v| v.is_empty() || v.chars().count() > max_chars)
            {
                return Err(FilterError::BadValue {
                    field,
                    max: max_chars,
                });
            }
            if field == "symbols" {
                values.iter_mut().for_each(|s| *s = s.to_uppercase());
            }
            values.sort_unstable();
            values.dedup();
        }
        check_len("tiers", self.tiers.len(), max_values_per_list)?;
        check_len(
            "market_regimes",
            self.market_regimes.len(),
            max_values_per_list,
        )?;
        self.tiers.sort_unstable();
        self.tiers.dedup();
        self.market_regimes.sort_unstable();
        self.market_regimes.dedup();
        if let Some(c) = self.min_confidence {
            if !(0.0..=1.0).contains(&c) {
                return Err(FilterError::BadConfidence);
            }
        }
        Ok(self)
    }

    /// Whether `event` passes every condition. The reference semantics: this
    /// is a straight reading of the filter rules, with no indexing.
    pub fn matches(&self, event: &Event) -> bool {
        list_allows(&self.event_types, Some(event.event_type()))
            && enum_allows(&self.tiers, event.tier())
            && symbol_allows(&self.symbols, event.symbol())
            && list_allows(&self.patterns, event.pattern())
            && enum_allows(&self.market_regimes, event.market_regime())
            && self
                .min_confidence
                .is_none_or(|min| event.confidence().is_some_and(|c| c >= min))
            && self.min_priority.is_none_or(|min| event.priority() >= min)
    }
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), FilterError> {
    if len > max {
        return Err(FilterError::TooManyValues { field, len, max });
    }
    Ok(())
}

fn list_allows(list: &[String], value: Option<&str>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
}

fn symbol_allows(list: &[String], value: Option<&str>) -> bool {
    // Both sides are upper-cased at the edges; compare case-insensitively
    // anyway so a filter built by hand (not normalized) still behaves.
    list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
}

fn enum_allows<T: PartialEq>(list: &[T], value: Option<T>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.contains(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(json: &str) -> Event {
        Event::from_json(Bytes::copy_from_slice(json.as_bytes()), None, 1 << 20).unwrap()
    }

    fn filter(json: &str) -> Filter {
        serde_json::from_str::<Filter>(json)
            .unwrap()
            .normalized(16)
            .unwrap()
    }

    #[test]
    fn empty_filter_matches_everything() {
        let f = Filter::default();
        assert!(f.matches(&event(r#"{"symbol":"A","pattern":"P"}"#)));
        assert!(f.matches(&event(r#"{"event_type":"system_health"}"#)));
    }

    #[test]
    fn a_set_field_requires_the_event_to_carry_it() {
        let f = filter(r#"{"tiers":["daily"]}"#);
        assert!(f.matches(&event(r#"{"symbol":"A","pattern":"P","tier":"daily"}"#)));
        assert!(!f.matches(&event(r#"{"symbol":"A","pattern":"P","tier":"combo"}"#)));
        assert!(!f.matches(&event(r#"{"event_type":"backtest_progress"}"#)));
        let c = filter(r#"{"min_confidence":0.5}"#);
        assert!(!c.matches(&event(r#"{"event_type":"system_health"}"#)));
    }

    #[test]
    fn symbols_are_case_insensitive_and_thresholds_inclusive() {
        let f = filter(r#"{"symbols":["aapl"],"min_confidence":0.8,"min_priority":"high"}"#);
        assert_eq!(f.symbols, vec!["AAPL".to_string()]);
        assert!(f.matches(&event(
            r#"{"symbol":"Aapl","pattern":"P","confidence":0.8}"#
        )));
        assert!(!f.matches(&event(
            r#"{"symbol":"AAPL","pattern":"P","confidence":0.79}"#
        )));
        assert!(!f.matches(&event(
            r#"{"symbol":"AAPL","pattern":"P","confidence":0.95,"priority":"low"}"#
        )));
    }

    #[test]
    fn validation_rejects_bad_filters() {
        let parse = |j: &str| serde_json::from_str::<Filter>(j);
        assert!(parse(r#"{"tierz":["daily"]}"#).is_err());
        assert!(parse(r#"{"tiers":["weekly"]}"#).is_err());
        let many = Filter {
            symbols: (0..17).map(|i| format!("S{i}")).collect(),
            ..Filter::default()
        };
        assert!(matches!(
            many.normalized(16),
            Err(FilterError::TooManyValues { .. })
        ));
        let conf = Filter {
            min_confidence: Some(1.5),
            ..Filter::default()
        };
        assert_eq!(conf.normalized(16), Err(FilterError::BadConfidence));
        let empty = Filter {
            patterns: vec![String::new()],
            ..Filter::default()
        };
        assert!(matches!(
            empty.normalized(16),
            Err(FilterError::BadValue { .. })
        ));
    }
}
