//! [`Filter`]: what a subscription asks for, as a client sends it.
//!
//! A filter is a JSON object of *filter keys* (`{"symbols":["AAPL"],
//! "min_confidence":0.8}`). Which keys exist and what they constrain is
//! the schema's business: [`Schema::criteria`](super::schema::Schema::criteria)
//! checks a filter against the schema and resolves it into the
//! [`Criteria`](super::schema::Criteria) the index and the router work
//! with. A filter on its own is only data, so it can travel (client
//! operations, Socket.IO recovery, the load generator) without a schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::values::UnknownValue;

/// Default of `limits.max_values_per_list`.
pub const DEFAULT_MAX_VALUES_PER_LIST: usize = 256;

/// A subscription's conditions by filter key, as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Filter(BTreeMap<String, FilterValue>);

/// The value of one filter key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FilterValue {
    /// Accepted values of a text or choice dimension.
    Values(Vec<String>),
    /// A floor or ceiling of a number dimension.
    Number(f64),
    /// A single word (`min_priority`).
    Text(String),
}

impl Filter {
    /// An empty filter: matches every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to a list of accepted values.
    pub fn values<S: Into<String>>(
        mut self,
        key: &str,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        let values = values.into_iter().map(Into::into).collect();
        self.0.insert(key.into(), FilterValue::Values(values));
        self
    }

    /// Sets `key` to a number (a floor or ceiling).
    pub fn number(mut self, key: &str, value: f64) -> Self {
        self.0.insert(key.into(), FilterValue::Number(value));
        self
    }

    /// Sets `key` to a word (`min_priority`).
    pub fn text(mut self, key: &str, value: &str) -> Self {
        self.0.insert(key.into(), FilterValue::Text(value.into()));
        self
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: &str, value: FilterValue) {
        self.0.insert(key.into(), value);
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&FilterValue> {
        self.0.get(key)
    }

    /// The values listed under `key` (empty when it is not a list).
    pub fn list(&self, key: &str) -> &[String] {
        match self.0.get(key) {
            Some(FilterValue::Values(v)) => v,
            _ => &[],
        }
    }

    /// The keys and their values, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FilterValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A filter that breaks a rule of its schema; the message is meant for
/// the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The schema has no such filter key.
    #[error("unknown filter key `{0}`")]
    UnknownKey(String),
    /// The key's value has the wrong JSON type.
    #[error("`{key}` must be {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A list holds more values than allowed.
    #[error("`{key}` has {len} values, more than the limit of {max}")]
    TooManyValues {
        /// The list.
        key: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is empty or too long.
    #[error("`{key}` values must be 1 to {max} characters")]
    BadValue {
        /// The list.
        key: String,
        /// The limit.
        max: usize,
    },
    /// A value is not in its dimension's vocabulary.
    #[error(transparent)]
    UnknownValue(#[from] UnknownValue),
    /// A bound is outside its dimension's range.
    #[error("`{key}` must be a number in {min}..{max}")]
    OutOfRange {
        /// The key.
        key: String,
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_the_json_object_a_client_sends() {
        let json = r#"{"min_confidence":0.8,"min_priority":"high","symbols":["AAPL"]}"#;
        let f: Filter = serde_json::from_str(json).unwrap();
        assert_eq!(f.list("symbols"), ["AAPL"]);
        assert_eq!(f.get("min_confidence"), Some(&FilterValue::Number(0.8)));
        assert_eq!(
            f.get("min_priority"),
            Some(&FilterValue::Text("high".into()))
        );
        assert_eq!(serde_json::to_string(&f).unwrap(), json);
        let built = Filter::new()
            .values("symbols", ["AAPL"])
            .number("min_confidence", 0.8)
            .text("min_priority", "high");
        assert_eq!(built, f);
        assert!(serde_json::from_str::<Filter>(r#"{"symbols":{"a":1}}"#).is_err());
        assert!(serde_json::from_str::<Filter>("[]").is_err());
    }
}
