//! Why an ingested body was rejected.

/// A body that is not a valid TickStockPL event. Every variant names one
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
    /// A pattern event lacks a required field.
    #[error("pattern event without `{0}`")]
    MissingField(&'static str),
    /// A field that must not be empty is.
    #[error("`{0}` must not be empty")]
    EmptyField(&'static str),
    /// A string field is over its length limit (in characters).
    #[error("`{field}` longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `confidence` is a number outside 0..=1.
    #[error("`confidence` {0} is outside 0..1")]
    ConfidenceOutOfRange(f64),
    /// `tier`, `priority` or `market_regime` is not one of its values.
    #[error(transparent)]
    UnknownValue(#[from] super::UnknownValue),
    /// A bincode envelope that does not decode.
    #[error("invalid bincode envelope: {0}")]
    Bincode(String),
}

impl DecodeError {
    /// Stable snake_case code of the rule that was broken, for metrics labels
    /// and logs (`"not_json"`, `"too_large"`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotUtf8 => "not_utf8",
            Self::TooDeep { .. } => "too_deep",
            Self::NotJson(_) => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingField(_) => "missing_field",
            Self::EmptyField(_) => "empty_field",
            Self::TooLong { .. } => "too_long",
            Self::WrongType { .. } => "wrong_type",
            Self::ConfidenceOutOfRange(_) => "confidence_out_of_range",
            Self::UnknownValue(v) => match v.kind {
                "tier" => "unknown_tier",
                "priority" => "unknown_priority",
                _ => "unknown_market_regime",
            },
            Self::Bincode(_) => "bad_bincode",
        }
    }
}
