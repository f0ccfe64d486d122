//! Proptest strategies over schemas: generated schemas, and filters and
//! events of any schema, so that the index and the route cache are checked
//! against the reference semantics on schemas nobody wrote by hand.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};

use super::{DimKind, DimensionDecl, FilterKey, Schema, SchemaDecl};
use crate::model::{Event, Filter, FilterValue, Priority};

/// Text values a generated dimension draws from (few, so they collide).
const WORDS: [&str; 4] = ["a", "b", "c", "d"];
/// Event types of generated events.
pub(crate) const TYPES: [&str; 3] = ["t0", "t1", "t2"];
/// Users of private events.
pub(crate) const USERS: [&str; 3] = ["u0", "u1", "u2"];

fn arb_dimension(i: usize) -> impl Strategy<Value = DimensionDecl> {
    let name = format!("d{i}");
    prop_oneof![
        Just(DimensionDecl::text(&name)),
        (2usize..=4).prop_map({
            let name = name.clone();
            move |n| DimensionDecl::choice(&name, WORDS[..n].iter().copied())
        }),
        Just(DimensionDecl::number(&name, 0.0, 1.0)),
    ]
}

/// A schema of 1 to 4 dimensions of any kind, the first choice (if any)
/// an entitlement.
pub(crate) fn arb_schema() -> impl Strategy<Value = Arc<Schema>> {
    (1usize..=4)
        .prop_flat_map(|n| (0..n).map(arb_dimension).collect::<Vec<_>>())
        .prop_map(|dims| {
            let entitled = dims
                .iter()
                .find(|d| d.kind == super::KindDecl::Choice)
                .map(|d| d.name.clone());
            let mut decl = dims
                .into_iter()
                .fold(SchemaDecl::new("generated"), SchemaDecl::dimension);
            if let Some(dim) = entitled {
                decl = decl.entitlement(&dim, "claim");
            }
            decl.build().expect("generated schemas are valid")
        })
}

/// Values a dimension may hold in generated events and filters.
fn words(schema: &Schema, key: &str) -> Vec<String> {
    let Some(FilterKey::AnyOf(dim)) = schema.filter_key(key) else {
        return Vec::new();
    };
    match schema.dimension(dim).kind() {
        DimKind::Choice { values } => values.iter().map(|v| v.to_string()).collect(),
        _ if dim.index() == 0 => TYPES.iter().map(|t| t.to_string()).collect(),
        _ => WORDS.iter().map(|w| w.to_string()).collect(),
    }
}

/// A filter of `schema`: any subset of its keys, each with up to two
/// values, a bound, or a priority.
pub(crate) fn arb_filter(schema: &Arc<Schema>) -> BoxedStrategy<Filter> {
    let keys: Vec<(String, FilterKey)> = schema
        .filter_keys()
        .map(|(k, role)| (k.to_owned(), role))
        .collect();
    let per_key: Vec<BoxedStrategy<Option<(String, FilterValue)>>> = keys
        .into_iter()
        .map(|(key, role)| {
            let value: BoxedStrategy<FilterValue> = match role {
                FilterKey::AnyOf(_) => proptest::sample::subsequence(words(schema, &key), 0..=2)
                    .prop_map(FilterValue::Values)
                    .boxed(),
                FilterKey::AtLeast(_) | FilterKey::AtMost(_) => {
                    (0.0f64..1.0).prop_map(FilterValue::Number).boxed()
                }
                FilterKey::MinPriority => proptest::sample::select(&Priority::ALL[..])
                    .prop_map(|p| FilterValue::Text(p.as_str().into()))
                    .boxed(),
            };
            proptest::option::weighted(0.4, value.prop_map(move |v| (key.clone(), v))).boxed()
        })
        .collect();
    per_key
        .prop_map(|pairs| {
            let mut filter = Filter::new();
            for (key, value) in pairs.into_iter().flatten() {
                filter.set(&key, value);
            }
            filter
        })
        .boxed()
}

/// An event of `schema`: each dimension present or not, maybe private.
pub(crate) fn arb_event(schema: &Arc<Schema>) -> BoxedStrategy<Event> {
    let dims: Vec<BoxedStrategy<Option<(String, Json)>>> = schema
        .dimensions()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = d.fields()[0].to_string();
            let value: BoxedStrategy<Json> = match d.kind() {
                DimKind::Choice { values } => {
                    let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                    proptest::sample::select(values)
                        .prop_map(Json::from)
                        .boxed()
                }
                DimKind::Number { .. } => (0.0f64..1.0).prop_map(Json::from).boxed(),
                DimKind::Text { .. } if i == 0 => proptest::sample::select(&TYPES[..])
                    .prop_map(Json::from)
                    .boxed(),
                DimKind::Text { .. } => proptest::sample::select(&WORDS[..])
                    .prop_map(Json::from)
                    .boxed(),
            };
            let pair = value.prop_map(move |v| (field.clone(), v));
            if i == 0 {
                // Always typed: a default type may require dimensions.
                pair.prop_map(Some).boxed()
            } else {
                proptest::option::weighted(0.8, pair).boxed()
            }
        })
        .collect();
    let schema = schema.clone();
    (
        dims,
        proptest::option::weighted(0.2, proptest::sample::select(&USERS[..])),
        proptest::option::weighted(0.2, proptest::sample::select(&Priority::ALL[..])),
    )
        .prop_map(move |(fields, user, priority)| {
            let mut body: Map<String, Json> = fields.into_iter().flatten().collect();
            if let Some(u) = user {
                body.insert("user_id".into(), json!(u));
            }
            if let Some(p) = priority {
                body.insert("priority".into(), json!(p.as_str()));
            }
            let body = Bytes::from(Json::Object(body).to_string());
            schema
                .decode(body, None, 1 << 20)
                .expect("generated events are valid")
        })
        .boxed()
}

/// Entitlement bits for a connection: none, or some of the vocabulary.
pub(crate) fn entitlement_of(schema: &Schema, conn: u64) -> Option<u64> {
    schema.entitlement()?;
    (conn % 2 == 1).then_some(0b101)
}
