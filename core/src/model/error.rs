//! Why an ingested body was rejected.

use std::sync::Arc;

/// A body that is not a valid event of its schema. Every variant names one
/// rule of the event format; [`DecodeError::reason`] gives a stable short
/// code for metrics labels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The body is larger than `max_publish_bytes`.
    #[error("body of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the body.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The body is not valid UTF-8.
    #[error("body is not valid UTF-8")]
    NotUtf8,
    /// The body nests arrays/objects deeper than allowed.
    #[error("JSON nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The body is not JSON (including an empty body).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("event must be a JSON object")]
    NotAnObject,
    /// An event lacks a dimension its type requires.
    #[error("{event_type} event without `{field}`")]
    MissingField {
        /// The event's type.
        event_type: Box<str>,
        /// The missing dimension.
        field: Box<str>,
    },
    /// A field that must not be empty is.
    #[error("`{0}` must not be empty")]
    EmptyField(Box<str>),
    /// A string field is over its length limit (in characters).
    #[error("`{field}` longer than {max} characters")]
    TooLong {
        /// The field.
        field: Box<str>,
        /// Its limit.
        max: usize,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: Box<str>,
        /// What it must be.
        expected: &'static str,
    },
    /// A number dimension's value is outside its range.
    #[error("`{field}` {value} is outside {min}..{max}")]
    OutOfRange {
        /// The dimension.
        field: Box<str>,
        /// The value sent.
        value: f64,
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
        /// `<field>_out_of_range`.
        reason: Arc<str>,
    },
    /// A choice dimension or `priority` is not one of its values.
    #[error(transparent)]
    UnknownValue(#[from] super::UnknownValue),
    /// A bincode envelope that does not decode.
    #[error("invalid bincode envelope: {0}")]
    Bincode(String),
}

impl DecodeError {
    /// Stable snake_case code of the rule that was broken, for metrics labels
    /// and logs (`"not_json"`, `"too_large"`, ...).
    pub fn reason(&self) -> &str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotUtf8 => "not_utf8",
            Self::TooDeep { .. } => "too_deep",
            Self::NotJson(_) => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingField { .. } => "missing_field",
            Self::EmptyField(_) => "empty_field",
            Self::TooLong { .. } => "too_long",
            Self::WrongType { .. } => "wrong_type",
            Self::OutOfRange { reason, .. } => reason,
            Self::UnknownValue(v) => v.reason(),
            Self::Bincode(_) => "bad_bincode",
        }
    }
}
