//! [`SchemaDecl`]: a schema as written (in code or in the binary's
//! `[schema]` config section), checked by [`SchemaDecl::build`].

use serde::{Deserialize, Serialize};

use super::dimension::Case;

/// A schema declaration.
///
/// ```
/// use tickcast_core::model::schema::{DimensionDecl, SchemaDecl};
///
/// let schema = SchemaDecl::new("iot")
///     .default_event_type("reading")
///     .dimension(DimensionDecl::text("sensor").filter_key("sensors"))
///     .dimension(DimensionDecl::choice("site", ["north", "south"]))
///     .dimension(DimensionDecl::number("celsius", -60.0, 200.0).range_keys("min_celsius", "max_celsius"))
///     .build()
///     .unwrap();
/// assert_eq!(schema.dimensions().len(), 4); // event_type comes first
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SchemaDecl {
    /// Shown in logs and `check-config`.
    pub name: String,
    /// Type of events that name none and came on no known channel.
    #[serde(default = "default_event_type")]
    pub default_event_type: String,
    /// The dimensions, besides the event type every schema has.
    #[serde(default)]
    pub dimensions: Vec<DimensionDecl>,
    /// Channels (Redis channel, AMQP routing key) and the event type each
    /// implies.
    #[serde(default)]
    pub channels: Vec<ChannelDecl>,
    /// How priority follows a number when a body names none.
    #[serde(default)]
    pub priority: Option<PriorityDecl>,
    /// The choice dimension a token's claim may narrow.
    #[serde(default)]
    pub entitlement: Option<EntitlementDecl>,
    /// Dimensions that make two events the same subject for rate-limit
    /// conflation (all must be present).
    #[serde(default)]
    pub conflate: Vec<String>,
    /// Body field of the producer's id (idempotency key).
    #[serde(default = "default_event_id_field")]
    pub event_id_field: String,
    /// Body field naming the one user a private event is for.
    #[serde(default = "default_user_field")]
    pub user_field: String,
    /// Body field of an explicit priority.
    #[serde(default = "default_priority_field")]
    pub priority_field: String,
}

fn default_event_type() -> String {
    "event".into()
}
fn default_event_id_field() -> String {
    "event_id".into()
}
fn default_user_field() -> String {
    "user_id".into()
}
fn default_priority_field() -> String {
    "priority".into()
}

/// One dimension as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DimensionDecl {
    /// Its name.
    pub name: String,
    /// `text`, `choice` or `number`.
    pub kind: KindDecl,
    /// Body fields it is read from, first present wins (default: its name).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Text: case folding (`exact`, `upper`, `lower`).
    #[serde(default)]
    pub case: Case,
    /// Text: longest value in characters (default 128).
    #[serde(default)]
    pub max_chars: Option<usize>,
    /// Choice: the vocabulary.
    #[serde(default)]
    pub values: Vec<String>,
    /// Number: smallest and largest accepted values.
    #[serde(default)]
    pub min: Option<f64>,
    /// See `min`.
    #[serde(default)]
    pub max: Option<f64>,
    /// Text or choice: the filter key listing accepted values (default:
    /// the name plus `s`).
    #[serde(default)]
    pub filter: Option<String>,
    /// Number: the filter key of the inclusive floor (default `min_<name>`).
    #[serde(default)]
    pub filter_min: Option<String>,
    /// Number: the filter key of the inclusive ceiling (default
    /// `max_<name>`).
    #[serde(default)]
    pub filter_max: Option<String>,
    /// Event types whose events must carry this dimension.
    #[serde(default)]
    pub required_for: Vec<String>,
}

/// The kind of a declared dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindDecl {
    /// Free text.
    Text,
    /// A closed vocabulary.
    Choice,
    /// A number with a range.
    Number,
}

/// A channel and the event type it implies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ChannelDecl {
    /// Redis channel or AMQP routing key.
    pub channel: String,
    /// The event type of bodies that name none.
    pub event_type: String,
}

/// Priority from a number dimension: at or above `critical` is critical,
/// and so on down; below `medium` is low; without the number, medium.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PriorityDecl {
    /// A number dimension.
    pub from: String,
    /// Floor of medium.
    pub medium: f64,
    /// Floor of high.
    pub high: f64,
    /// Floor of critical.
    pub critical: f64,
}

/// A token claim that narrows a choice dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EntitlementDecl {
    /// A choice dimension.
    pub dimension: String,
    /// The claim listing the values the user may receive.
    pub claim: String,
}

/// A declaration that cannot be a schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("schema `{schema}`: {message}")]
pub struct SchemaError {
    pub(super) schema: String,
    pub(super) message: String,
}

impl DimensionDecl {
    fn new(name: &str, kind: KindDecl) -> Self {
        Self {
            name: name.into(),
            kind,
            fields: Vec::new(),
            case: Case::Exact,
            max_chars: None,
            values: Vec::new(),
            min: None,
            max: None,
            filter: None,
            filter_min: None,
            filter_max: None,
            required_for: Vec::new(),
        }
    }

    /// A text dimension, exact case, at most 128 characters.
    pub fn text(name: &str) -> Self {
        Self::new(name, KindDecl::Text)
    }

    /// A closed vocabulary.
    pub fn choice<S: Into<String>>(name: &str, values: impl IntoIterator<Item = S>) -> Self {
        Self {
            values: values.into_iter().map(Into::into).collect(),
            ..Self::new(name, KindDecl::Choice)
        }
    }

    /// A number in `min..=max`.
    pub fn number(name: &str, min: f64, max: f64) -> Self {
        Self {
            min: Some(min),
            max: Some(max),
            ..Self::new(name, KindDecl::Number)
        }
    }

    /// Body fields to read it from, first present wins.
    pub fn fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Case folding of a text dimension.
    pub fn case(mut self, case: Case) -> Self {
        self.case = case;
        self
    }

    /// Longest text value.
    pub fn max_chars(mut self, max: usize) -> Self {
        self.max_chars = Some(max);
        self
    }

    /// The filter key listing accepted values.
    pub fn filter_key(mut self, key: &str) -> Self {
        self.filter = Some(key.into());
        self
    }

    /// The filter keys of a number's floor and ceiling.
    pub fn range_keys(mut self, min: &str, max: &str) -> Self {
        self.filter_min = Some(min.into());
        self.filter_max = Some(max.into());
        self
    }

    /// Event types whose events must carry this dimension.
    pub fn required_for<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.required_for = types.into_iter().map(Into::into).collect();
        self
    }
}

impl SchemaDecl {
    /// A schema with only the event type.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            default_event_type: default_event_type(),
            dimensions: Vec::new(),
            channels: Vec::new(),
            priority: None,
            entitlement: None,
            conflate: Vec::new(),
            event_id_field: default_event_id_field(),
            user_field: default_user_field(),
            priority_field: default_priority_field(),
        }
    }

    /// The type of events that name none.
    pub fn default_event_type(mut self, event_type: &str) -> Self {
        self.default_event_type = event_type.into();
        self
    }

    /// Adds a dimension.
    pub fn dimension(mut self, dim: DimensionDecl) -> Self {
        self.dimensions.push(dim);
        self
    }

    /// Maps a channel to the event type of bodies that name none.
    pub fn channel(mut self, channel: &str, event_type: &str) -> Self {
        self.channels.push(ChannelDecl {
            channel: channel.into(),
            event_type: event_type.into(),
        });
        self
    }

    /// Derives priority from a number dimension.
    pub fn priority_from(mut self, dim: &str, medium: f64, high: f64, critical: f64) -> Self {
        self.priority = Some(PriorityDecl {
            from: dim.into(),
            medium,
            high,
            critical,
        });
        self
    }

    /// Lets a token claim narrow a choice dimension.
    pub fn entitlement(mut self, dim: &str, claim: &str) -> Self {
        self.entitlement = Some(EntitlementDecl {
            dimension: dim.into(),
            claim: claim.into(),
        });
        self
    }

    /// Conflates rate-limited events equal on these dimensions.
    pub fn conflate<S: Into<String>>(mut self, dims: impl IntoIterator<Item = S>) -> Self {
        self.conflate = dims.into_iter().map(Into::into).collect();
        self
    }
}
