//! Target `sse_query`: the query string of `GET /sse` through
//! [`SseQuery::parse`], exactly as the endpoint parses it.
//!
//! Input: the raw query string (after the `?`, still percent-encoded;
//! invalid UTF-8 is replaced, as a URI holds ASCII only). Properties: a
//! parsed list item is never empty, never padded with spaces and never
//! holds a comma (lists split on commas after decoding, so `%2C` separates
//! too); a parsed query written back with every item percent-encoded
//! parses to the same query; a refusal's message quotes at most 64
//! characters of the input (1 KiB in all).

use arbitrary::{Result, Unstructured};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use tickcast_core::model::schema::tickstock;
use tickcast_core::model::FilterValue;
use tickcast_transport_sse::SseQuery;

use crate::gen;
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "sse_query",
    about: "SseQuery::parse: the query string of GET /sse (lists, %2C, token, last_event_id)",
    run,
    generate,
    built_seeds: Vec::new,
    dictionary: &[
        "&",
        "=",
        ",",
        "%2C",
        "%2c",
        "%",
        "%ZZ",
        "%C3%28",
        "+",
        "symbols=",
        "tiers=",
        "patterns=",
        "event_types=",
        "market_regimes=",
        "min_confidence=",
        "min_priority=",
        "token=",
        "last_event_id=",
        "id=",
        "18446744073709551615-18446744073709551615",
    ],
};

/// Longest refusal message: a fixed text, the list of keys, and at most
/// 64 characters of the input, escaped (up to 10 bytes each).
const MAX_MESSAGE_BYTES: usize = 1024;

/// Runs one input.
pub fn run(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let schema = tickstock::schema();
    let query = match SseQuery::parse(&raw, &schema) {
        Ok(query) => query,
        Err(error) => {
            let bytes = error.0.len();
            assert!(bytes <= MAX_MESSAGE_BYTES, "message of {bytes} bytes");
            return;
        }
    };
    let items = query.filter.iter().flat_map(|(_, value)| match value {
        FilterValue::Values(values) => values.as_slice(),
        _ => &[],
    });
    for item in items {
        assert!(!item.is_empty(), "empty item in {raw:?}");
        assert_eq!(item, item.trim(), "untrimmed item in {raw:?}");
        assert!(!item.contains(','), "item {item:?} holds a comma: {raw:?}");
    }
    for scalar in [&query.token, &query.id].into_iter().flatten() {
        assert!(
            !scalar.is_empty() && scalar.trim() == scalar,
            "scalar {scalar:?}"
        );
    }
    let written = write(&query);
    match SseQuery::parse(&written, &schema) {
        // Debug, not ==: a `min_confidence` of NaN is not equal to itself.
        Ok(again) => assert_eq!(
            format!("{again:?}"),
            format!("{query:?}"),
            "{raw:?} -> {written:?}"
        ),
        Err(e) => panic!(
            "{raw:?} parsed, but written back as {written:?} it does not: {}",
            e.0
        ),
    }
}

/// The query as a client library would write it: every value
/// percent-encoded, list items joined with commas.
fn write(query: &SseQuery) -> String {
    let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let mut pairs = Vec::new();
    let filter = &query.filter;
    for (key, value) in filter.iter() {
        match value {
            FilterValue::Values(items) if items.is_empty() => {}
            FilterValue::Values(items) => {
                let items: Vec<String> = items.iter().map(|i| encode(i)).collect();
                pairs.push(format!("{key}={}", items.join(",")));
            }
            FilterValue::Number(n) => pairs.push(format!("{key}={}", encode(&n.to_string()))),
            FilterValue::Text(t) => pairs.push(format!("{key}={}", encode(t))),
        }
    }
    if let Some(t) = &query.token {
        pairs.push(format!("token={}", encode(t)));
    }
    if let Some(o) = query.last_event_id {
        pairs.push(format!("last_event_id={o}"));
    }
    if let Some(id) = &query.id {
        pairs.push(format!("id={}", encode(id)));
    }
    pairs.join("&")
}

/// Queries of known keys (and a few unknown ones) with values encoded in
/// every way a client might: raw commas, `%2C`, `+` for spaces, repeated
/// keys, malformed escapes, huge offsets and odd numbers.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    const KEYS: [&str; 12] = [
        "event_types",
        "tiers",
        "symbols",
        "patterns",
        "market_regimes",
        "min_confidence",
        "min_priority",
        "token",
        "last_event_id",
        "id",
        "symbol",
        "%73ymbols",
    ];
    let count = u.int_in_range(1..=6)?;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let key = *u.choose(&KEYS)?;
        let value = match key {
            "min_confidence" => (*u.choose(&[
                "0.5",
                "1",
                "0",
                "-0",
                "NaN",
                "inf",
                "1e400",
                "1.0000000000000002",
                "",
            ])?)
            .to_owned(),
            "last_event_id" => format!(
                "{}-{}",
                u.choose(&gen::EDGE_INTEGERS)?,
                u.choose(&gen::ODD_NUMBER_TEXTS)?
            ),
            _ => {
                let items = u.int_in_range(0..=4)?;
                let mut values = Vec::with_capacity(items);
                for _ in 0..items {
                    let item = gen::string(u)?;
                    values.push(encode_item(u, &item)?);
                }
                let separator = *u.choose(&[",", "%2C", "%2c", ",%20", "+,+"])?;
                values.join(separator)
            }
        };
        pairs.push(if u.ratio(1, 16)? {
            key.to_owned()
        } else {
            format!("{key}={value}")
        });
    }
    Ok(pairs.join("&").into_bytes())
}

/// One value, left raw, fully percent-encoded, or half-encoded with a
/// broken escape.
fn encode_item(u: &mut Unstructured<'_>, item: &str) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 => item.to_owned(),
        1 => utf8_percent_encode(item, NON_ALPHANUMERIC).to_string(),
        2 => item.replace(' ', "+"),
        _ => format!(
            "{item}%{}",
            u.choose(&["", "4", "ZZ", "C3", "C3%28", "00"])?
        ),
    })
}
