//! [`Schema`]: the event fields the engine knows, declared once.
//!
//! A schema names the *dimensions* of its events: the fields subscriptions
//! filter on and the index is built over. Each has a [`DimKind`] (free text
//! with a case rule, a closed vocabulary, or a number with a range), the
//! body fields it is read from, and the filter keys that constrain it.
//! Everything that reads an event's fields is derived from this one
//! declaration: decoding ([`Schema::decode`]), filters
//! ([`Schema::criteria`]), the index's posting lists and anchors, the route
//! cache's key, and the SSE query. Adding a dimension is one declaration.
//!
//! [`tickstock`] holds the default schema, TickStock's patterns; a service
//! declares its own with [`SchemaDecl`] (in code or in the binary's
//! `[schema]` config section).

#[cfg(test)]
pub(crate) mod arbitrary;
mod build;
mod criteria;
mod decl;
mod decode;
mod dimension;
pub mod tickstock;

pub use criteria::{Bound, Condition, Criteria, Test};
pub use decl::{
    ChannelDecl, DimensionDecl, EntitlementDecl, KindDecl, PriorityDecl, SchemaDecl, SchemaError,
};
pub use dimension::{Case, DimId, DimKind, Dimension, FilterKey};

use super::Priority;

/// Most dimensions a schema may declare (bit sets and small arrays size
/// with it).
pub const MAX_DIMENSIONS: usize = 16;

/// Most values a [`DimKind::Choice`] vocabulary may hold: a filter keeps
/// its choices as bits of a `u64`.
pub const MAX_CHOICES: usize = 64;

/// The dimension every schema has at [`DimId::EVENT_TYPE`]: the event's
/// type, from its `event_type` field, else its channel, else the schema's
/// default type.
pub const EVENT_TYPE: &str = "event_type";

/// A validated schema. Build one with [`SchemaDecl::build`], or take
/// [`tickstock::schema`].
#[derive(Debug)]
pub struct Schema {
    name: Box<str>,
    dims: Vec<Dimension>,
    /// Dimensions a subscription may be posted under, most selective first.
    anchors: Vec<DimId>,
    /// Body field name -> what it feeds, for the decoder.
    fields: Vec<(Box<str>, FieldRole)>,
    /// Filter key -> what it constrains.
    filter_keys: Vec<(Box<str>, FilterKey)>,
    channels: Vec<(Box<str>, Box<str>)>,
    default_event_type: Box<str>,
    /// Dimensions an event of a type must carry.
    required: Vec<(Box<str>, Vec<DimId>)>,
    priority: PriorityRule,
    entitlement: Option<Entitlement>,
    conflation: Vec<DimId>,
}

/// What a body field feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldRole {
    /// A dimension; the rank orders its aliases (0 wins).
    Dim(DimId, u8),
    /// The producer's id, also the idempotency key.
    EventId,
    /// The user a private event is for.
    UserId,
    /// The event's priority.
    Priority,
}

/// How an event's priority is found when its body names none.
#[derive(Debug, Clone)]
pub(crate) struct PriorityRule {
    /// A number dimension and the floors of medium, high and critical.
    from: Option<(DimId, [f64; 3])>,
}

/// The dimension a token may narrow, and the claim that lists its values.
#[derive(Debug, Clone)]
pub struct Entitlement {
    /// A [`DimKind::Choice`] dimension.
    pub dim: DimId,
    /// The token claim listing the values the user may receive.
    pub claim: Box<str>,
}

impl Schema {
    /// The schema's name (`tickstock`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every dimension, in [`DimId`] order ([`EVENT_TYPE`] first).
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dims
    }

    /// One dimension.
    pub fn dimension(&self, id: DimId) -> &Dimension {
        &self.dims[id.index()]
    }

    /// The dimension called `name`.
    pub fn dim(&self, name: &str) -> Option<DimId> {
        self.dims
            .iter()
            .position(|d| &*d.name == name)
            .map(DimId::at)
    }

    /// Dimensions a subscription may be anchored on in the index, most
    /// selective first: text dimensions in declaration order, then choices
    /// with larger vocabularies first, then the event type.
    pub fn anchors(&self) -> &[DimId] {
        &self.anchors
    }

    /// What a filter key constrains, if the schema knows it.
    pub fn filter_key(&self, key: &str) -> Option<FilterKey> {
        self.filter_keys
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, role)| *role)
    }

    /// Every filter key, in declaration order.
    pub fn filter_keys(&self) -> impl Iterator<Item = (&str, FilterKey)> {
        self.filter_keys.iter().map(|(k, role)| (&**k, *role))
    }

    /// The event type a channel (Redis channel, AMQP routing key,
    /// `?channel=`) implies, for bodies without one.
    pub fn event_type_for_channel(&self, channel: &str) -> Option<&str> {
        self.channels
            .iter()
            .find(|(c, _)| &**c == channel)
            .map(|(_, t)| &**t)
    }

    /// The channel an event type is published on through a broker, when
    /// the schema names one.
    pub fn channel_for_event_type(&self, event_type: &str) -> Option<&str> {
        self.channels
            .iter()
            .find(|(_, t)| &**t == event_type)
            .map(|(c, _)| &**c)
    }

    /// The channels the schema maps, with their event types.
    pub fn channels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.channels.iter().map(|(c, t)| (&**c, &**t))
    }

    /// The type of events that name none and came on no known channel.
    pub fn default_event_type(&self) -> &str {
        &self.default_event_type
    }

    /// The dimension tokens may narrow, if any.
    pub fn entitlement(&self) -> Option<&Entitlement> {
        self.entitlement.as_ref()
    }

    /// The dimensions whose values make two events the same subject for
    /// rate-limit conflation (empty: never conflate).
    pub fn conflation(&self) -> &[DimId] {
        &self.conflation
    }

    pub(crate) fn field_roles(&self) -> &[(Box<str>, FieldRole)] {
        &self.fields
    }

    pub(crate) fn required_for(&self, event_type: &str) -> &[DimId] {
        self.required
            .iter()
            .find(|(t, _)| &**t == event_type)
            .map_or(&[], |(_, dims)| dims)
    }

    /// The priority of an event that names none.
    pub(crate) fn derived_priority(&self, values: &[Option<super::Value>]) -> Priority {
        let Some((dim, [medium, high, critical])) = self.priority.from else {
            return Priority::Medium;
        };
        match values[dim.index()].as_ref().and_then(super::Value::number) {
            Some(v) if v >= critical => Priority::Critical,
            Some(v) if v >= high => Priority::High,
            Some(v) if v >= medium => Priority::Medium,
            Some(_) => Priority::Low,
            None => Priority::Medium,
        }
    }

    /// The entitlement values of a token's claim as a bit set of choices:
    /// `Ok(None)` when the schema has no entitlement dimension.
    pub fn entitled(&self, values: &[String]) -> Result<Option<u64>, super::UnknownValue> {
        let Some(ent) = &self.entitlement else {
            return Ok(None);
        };
        let dim = self.dimension(ent.dim);
        let mut mask = 0;
        for value in values {
            mask |= 1 << dim.choice(value)?;
        }
        Ok(Some(mask))
    }
}

/// Schemas compare by identity: two hubs share a schema or they don't.
impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
