//! [`Criteria`]: a filter checked against its schema, and the reference
//! semantics of matching.
//!
//! Criteria are a conjunction of [`Condition`]s, one per constrained
//! dimension, plus a priority floor. A dimension without a condition
//! matches anything; one with a condition matches only events that carry
//! the dimension with an accepted value. [`Criteria::matches`] is the
//! definition the index, the route cache and history replay must all agree
//! with.

use smallvec::SmallVec;

use super::dimension::{DimId, DimKind, FilterKey};
use super::Schema;
use crate::model::{Event, Filter, FilterError, FilterValue, Priority, Value};

/// A filter resolved against a schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Criteria {
    /// Sorted by dimension, one per dimension.
    conditions: SmallVec<[Condition; 3]>,
    min_priority: Option<Priority>,
}

/// The condition on one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The dimension.
    pub dim: DimId,
    /// What its value must pass.
    pub test: Test,
}

/// What a dimension's value must pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// A text value in this list (case-folded, sorted, no repeats).
    Texts(Vec<Box<str>>),
    /// A choice whose bit is set.
    Choices(u64),
    /// A number within the bounds.
    Range {
        /// Inclusive floor.
        min: Option<f64>,
        /// Inclusive ceiling.
        max: Option<f64>,
    },
}

/// A floor or a ceiling, for the router's threshold ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    /// `value >= bound` passes.
    Floor,
    /// `value <= bound` passes.
    Ceiling,
}

impl Test {
    fn passes(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Self::Texts(list), Some(Value::Text(v))) => list.iter().any(|x| x == v),
            (Self::Choices(mask), Some(Value::Choice(c))) => mask & (1 << c) != 0,
            (Self::Range { min, max }, Some(Value::Number(v))) => {
                min.is_none_or(|m| *v >= m) && max.is_none_or(|m| *v <= m)
            }
            _ => false,
        }
    }
}

impl Criteria {
    /// Criteria that match every event.
    pub fn any() -> Self {
        Self::default()
    }

    /// The conditions, sorted by dimension.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The condition on `dim`, if any.
    pub fn condition(&self, dim: DimId) -> Option<&Test> {
        self.conditions
            .iter()
            .find(|c| c.dim == dim)
            .map(|c| &c.test)
    }

    /// The lowest accepted priority.
    pub fn min_priority(&self) -> Option<Priority> {
        self.min_priority
    }

    /// The number bounds in use, for the router's threshold ranks.
    pub fn bounds(&self) -> impl Iterator<Item = (DimId, Bound, f64)> + '_ {
        self.conditions.iter().flat_map(|c| {
            let (min, max) = match c.test {
                Test::Range { min, max } => (min, max),
                _ => (None, None),
            };
            let floor = min.map(|m| (c.dim, Bound::Floor, m));
            let ceiling = max.map(|m| (c.dim, Bound::Ceiling, m));
            floor.into_iter().chain(ceiling)
        })
    }

    /// Whether `event` passes every condition. The reference semantics: a
    /// straight reading of the rules, with no indexing.
    pub fn matches(&self, event: &Event) -> bool {
        self.min_priority.is_none_or(|min| event.priority() >= min)
            && self
                .conditions
                .iter()
                .all(|c| c.test.passes(event.value(c.dim)))
    }

    fn slot(&mut self, dim: DimId) -> &mut Test {
        let at = self.conditions.partition_point(|c| c.dim < dim);
        if self.conditions.get(at).is_none_or(|c| c.dim != dim) {
            let test = Test::Range {
                min: None,
                max: None,
            };
            self.conditions.insert(at, Condition { dim, test });
        }
        &mut self.conditions[at].test
    }
}

impl Schema {
    /// Checks `filter` against this schema and resolves it: values
    /// case-folded, sorted and deduplicated (so equal filters compare
    /// equal), choices as bits, bounds within their dimension's range. An
    /// empty list constrains nothing. `max_values` is
    /// `limits.max_values_per_list`.
    pub fn criteria(&self, filter: &Filter, max_values: usize) -> Result<Criteria, FilterError> {
        let mut out = Criteria::default();
        for (key, value) in filter.iter() {
            let role = self
                .filter_key(key)
                .ok_or_else(|| FilterError::UnknownKey(key.into()))?;
            match role {
                FilterKey::MinPriority => out.min_priority = Some(priority(key, value)?),
                FilterKey::AnyOf(dim) => {
                    if let Some(test) = self.list_test(dim, key, value, max_values)? {
                        *out.slot(dim) = test;
                    }
                }
                FilterKey::AtLeast(dim) | FilterKey::AtMost(dim) => {
                    let bound = self.bound(dim, key, value)?;
                    let Test::Range { min, max } = out.slot(dim) else {
                        continue;
                    };
                    match role {
                        FilterKey::AtLeast(_) => *min = Some(bound),
                        _ => *max = Some(bound),
                    }
                }
            }
        }
        Ok(out)
    }

    fn list_test(
        &self,
        dim: DimId,
        key: &str,
        value: &FilterValue,
        max_values: usize,
    ) -> Result<Option<Test>, FilterError> {
        let FilterValue::Values(values) = value else {
            return Err(wrong(key, "a list of strings"));
        };
        if values.len() > max_values {
            return Err(FilterError::TooManyValues {
                key: key.into(),
                len: values.len(),
                max: max_values,
            });
        }
        if values.is_empty() {
            return Ok(None);
        }
        let d = self.dimension(dim);
        Ok(Some(match d.kind() {
            DimKind::Text { case, max_chars } => {
                if values
                    .iter()
                    .any(|v| v.is_empty() || v.chars().count() > *max_chars)
                {
                    return Err(FilterError::BadValue {
                        key: key.into(),
                        max: *max_chars,
                    });
                }
                let mut list: Vec<Box<str>> = values.iter().map(|v| case.apply(v)).collect();
                list.sort_unstable();
                list.dedup();
                Test::Texts(list)
            }
            _ => {
                let mut mask = 0u64;
                for v in values {
                    mask |= 1 << d.choice(v)?;
                }
                Test::Choices(mask)
            }
        }))
    }

    fn bound(&self, dim: DimId, key: &str, value: &FilterValue) -> Result<f64, FilterError> {
        let FilterValue::Number(n) = value else {
            return Err(wrong(key, "a number"));
        };
        let DimKind::Number { min, max } = *self.dimension(dim).kind() else {
            return Err(wrong(key, "a list of strings"));
        };
        if !(min..=max).contains(n) {
            return Err(FilterError::OutOfRange {
                key: key.into(),
                min,
                max,
            });
        }
        Ok(*n + 0.0)
    }
}

fn priority(key: &str, value: &FilterValue) -> Result<Priority, FilterError> {
    match value {
        FilterValue::Text(t) => Ok(t.parse::<Priority>()?),
        _ => Err(wrong(key, "a priority name")),
    }
}

fn wrong(key: &str, expected: &'static str) -> FilterError {
    FilterError::WrongType {
        key: key.into(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tickstock;
    use super::*;
    use bytes::Bytes;

    fn event(json: &str) -> Event {
        Event::from_json(Bytes::copy_from_slice(json.as_bytes()), None, 1 << 20).unwrap()
    }

    fn criteria(json: &str) -> Criteria {
        let filter: Filter = serde_json::from_str(json).unwrap();
        tickstock::schema().criteria(&filter, 16).unwrap()
    }

    fn refused(json: &str) -> FilterError {
        let filter: Filter = serde_json::from_str(json).unwrap();
        tickstock::schema().criteria(&filter, 16).unwrap_err()
    }

    #[test]
    fn empty_criteria_match_everything() {
        let c = criteria("{}");
        assert!(c.matches(&event(r#"{"symbol":"A","pattern":"P"}"#)));
        assert!(c.matches(&event(r#"{"event_type":"system_health"}"#)));
        assert_eq!(criteria(r#"{"symbols":[]}"#), c);
    }

    #[test]
    fn a_set_field_requires_the_event_to_carry_it() {
        let c = criteria(r#"{"tiers":["daily"]}"#);
        assert!(c.matches(&event(r#"{"symbol":"A","pattern":"P","tier":"daily"}"#)));
        assert!(!c.matches(&event(r#"{"symbol":"A","pattern":"P","tier":"combo"}"#)));
        assert!(!c.matches(&event(r#"{"event_type":"backtest_progress"}"#)));
        let c = criteria(r#"{"min_confidence":0.5}"#);
        assert!(!c.matches(&event(r#"{"event_type":"system_health"}"#)));
    }

    #[test]
    fn symbols_fold_case_and_bounds_are_inclusive() {
        let c = criteria(r#"{"symbols":["aapl"],"min_confidence":0.8,"min_priority":"high"}"#);
        let symbol = tickstock::schema().dim("symbol").unwrap();
        assert_eq!(c.condition(symbol), Some(&Test::Texts(vec!["AAPL".into()])));
        assert!(c.matches(&event(
            r#"{"symbol":"Aapl","pattern":"P","confidence":0.8}"#
        )));
        assert!(!c.matches(&event(
            r#"{"symbol":"AAPL","pattern":"P","confidence":0.79}"#
        )));
        assert!(!c.matches(&event(
            r#"{"symbol":"AAPL","pattern":"P","confidence":0.95,"priority":"low"}"#
        )));
        let band = criteria(r#"{"min_confidence":0.6,"max_confidence":0.7}"#);
        assert!(band.matches(&event(r#"{"symbol":"A","pattern":"P","confidence":0.7}"#)));
        assert!(!band.matches(&event(r#"{"symbol":"A","pattern":"P","confidence":0.71}"#)));
    }

    #[test]
    fn filters_that_break_the_schema_are_refused() {
        assert_eq!(
            refused(r#"{"tierz":["daily"]}"#),
            FilterError::UnknownKey("tierz".into())
        );
        assert!(matches!(
            refused(r#"{"tiers":["weekly"]}"#),
            FilterError::UnknownValue(_)
        ));
        assert!(matches!(
            refused(r#"{"tiers":"daily"}"#),
            FilterError::WrongType { .. }
        ));
        assert!(matches!(
            refused(r#"{"min_confidence":"x"}"#),
            FilterError::WrongType { .. }
        ));
        assert!(matches!(
            refused(r#"{"min_priority":"urgent"}"#),
            FilterError::UnknownValue(_)
        ));
        let many: Vec<String> = (0..17).map(|i| format!("S{i}")).collect();
        let f = Filter::new().values("symbols", many);
        assert!(matches!(
            tickstock::schema().criteria(&f, 16),
            Err(FilterError::TooManyValues { .. })
        ));
        let err = refused(r#"{"min_confidence":1.5}"#);
        assert_eq!(err.to_string(), "`min_confidence` must be a number in 0..1");
        assert!(matches!(
            refused(r#"{"patterns":[""]}"#),
            FilterError::BadValue { .. }
        ));
    }
}
