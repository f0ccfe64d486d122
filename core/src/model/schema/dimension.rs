//! [`Dimension`]: one declared field of a schema, and what it accepts.

use std::sync::Arc;

use crate::model::UnknownValue;

/// A dimension's position in its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DimId(u8);

impl DimId {
    /// The event type, present in every schema.
    pub const EVENT_TYPE: DimId = DimId(0);

    pub(crate) fn at(index: usize) -> Self {
        Self(index as u8)
    }

    /// Position in [`Schema::dimensions`](super::Schema::dimensions).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How text values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    /// As sent.
    #[default]
    Exact,
    /// Upper-cased in events and filters alike (ticker symbols).
    Upper,
    /// Lower-cased in events and filters alike.
    Lower,
}

impl Case {
    /// `value` in this case.
    pub fn apply(self, value: &str) -> Box<str> {
        // ASCII (every ticker symbol) folds in place: one allocation,
        // the size of the value.
        match self {
            Self::Exact => value.into(),
            Self::Upper if value.is_ascii() => value.to_ascii_uppercase().into(),
            Self::Lower if value.is_ascii() => value.to_ascii_lowercase().into(),
            Self::Upper => value.to_uppercase().into(),
            Self::Lower => value.to_lowercase().into(),
        }
    }
}

/// What values a dimension takes.
#[derive(Debug, Clone, PartialEq)]
pub enum DimKind {
    /// Any string of 1 to `max_chars` characters; filters list the values
    /// they accept.
    Text {
        /// Case folding applied on both sides.
        case: Case,
        /// Longest value, in characters.
        max_chars: usize,
    },
    /// One of a closed vocabulary (at most
    /// [`MAX_CHOICES`](super::MAX_CHOICES)); filters list the values they
    /// accept, and a token may narrow them (an entitlement).
    Choice {
        /// The vocabulary, in wire form.
        values: Vec<Box<str>>,
    },
    /// A number in `min..=max`; filters give an inclusive floor, ceiling or
    /// both.
    Number {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
}

/// What a filter key constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKey {
    /// A list of accepted values of a text or choice dimension.
    AnyOf(DimId),
    /// The inclusive floor of a number dimension.
    AtLeast(DimId),
    /// The inclusive ceiling of a number dimension.
    AtMost(DimId),
    /// The lowest accepted priority (`min_priority`, every schema).
    MinPriority,
}

/// One declared dimension.
#[derive(Debug, Clone)]
pub struct Dimension {
    pub(crate) name: Box<str>,
    pub(crate) kind: DimKind,
    /// Body fields it is read from, first present wins.
    pub(crate) fields: Vec<Box<str>>,
    /// Stable reason codes of the decode errors only this dimension has
    /// (`unknown_tier`, `confidence_out_of_range`), made once.
    pub(crate) unknown_reason: Arc<str>,
    pub(crate) range_reason: Arc<str>,
}

impl Dimension {
    pub(crate) fn new(name: &str, kind: DimKind, fields: Vec<Box<str>>) -> Self {
        Self {
            name: name.into(),
            kind,
            fields,
            unknown_reason: format!("unknown_{name}").into(),
            range_reason: format!("{name}_out_of_range").into(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What values it takes.
    pub fn kind(&self) -> &DimKind {
        &self.kind
    }

    /// The body fields it is read from, first present wins.
    pub fn fields(&self) -> &[Box<str>] {
        &self.fields
    }

    /// The code of a choice value.
    pub fn choice(&self, value: &str) -> Result<u8, UnknownValue> {
        let DimKind::Choice { values } = &self.kind else {
            return Err(self.unknown(value));
        };
        values
            .iter()
            .position(|v| &**v == value)
            .map(|i| i as u8)
            .ok_or_else(|| self.unknown(value))
    }

    /// The wire name of a choice code.
    pub fn choice_name(&self, code: u8) -> Option<&str> {
        match &self.kind {
            DimKind::Choice { values } => values.get(code as usize).map(|v| &**v),
            _ => None,
        }
    }

    pub(crate) fn unknown(&self, value: &str) -> UnknownValue {
        UnknownValue::new(self.name.clone(), value, self.unknown_reason.clone())
    }
}
