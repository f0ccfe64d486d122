//! The query string of `GET /sse`: the subscription's filter, the token,
//! the resume point and the subscription id.
//!
//! The filter keys are the hub's schema's (for TickStock: `event_types`,
//! `tiers`, `symbols`, `patterns`, `market_regimes`, `min_confidence`,
//! `max_confidence`, `min_priority`). Lists take comma-separated values,
//! repeated keys, or both (`symbols=AAPL,MSFT&symbols=TSLA`); empty items
//! are skipped and items are trimmed, so `symbols=` means "any symbol".
//! Values are percent-decoded first and split on `,` after, so
//! `symbols=AAPL%2CMSFT` (what a browser's `URLSearchParams` writes for
//! `AAPL,MSFT`) is two symbols: list values never contain a comma. Scalars
//! (number bounds, `min_priority`, `token`, `last_event_id`, `id`) may
//! appear once. Any other key is refused, so a typo never silently widens
//! the subscription; the filter is checked against the schema before the
//! stream opens.

use tickcast_core::model::schema::{FilterKey, Schema};
use tickcast_core::model::{Filter, FilterValue, Offset};

/// The keys `GET /sse` understands besides the schema's filter keys.
pub(crate) const OWN_KEYS: [&str; 3] = ["token", "last_event_id", "id"];

/// The parsed query string of `GET /sse`: what [`sse_route`](crate::sse_route)
/// serves. Public so that fuzz targets and tools can check a query string
/// exactly as the endpoint would.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseQuery {
    /// The filter, checked against the schema (the hub normalizes it on
    /// subscribe).
    pub filter: Filter,
    /// `token`: a JWT. The endpoint reads the token with
    /// [`presented_token`](tickcast_core::auth::presented_token), as every
    /// transport does; on a query this parser accepts, both agree.
    pub token: Option<String>,
    /// `last_event_id`: resume after this offset.
    pub last_event_id: Option<Offset>,
    /// `id`: the subscription id.
    pub id: Option<String>,
}

/// A query string that cannot be served; the endpoint answers it with 400
/// `bad_request` and this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// What a query key is.
#[derive(Clone, Copy)]
enum Key<'a> {
    List(&'a str),
    Scalar(&'a str, Option<FilterKey>),
}

impl SseQuery {
    /// Parses a raw (still percent-encoded) query string, without the `?`,
    /// with `schema`'s filter keys. Never panics, whatever the input; every
    /// refusal is a [`QueryError`].
    pub fn parse(raw: &str, schema: &Schema) -> Result<Self, QueryError> {
        let mut query = Self::default();
        let mut seen_scalars: Vec<String> = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key)?;
            match classify(schema, &key)? {
                Key::List(key) => push_items(&mut query.filter, key, raw_value)?,
                Key::Scalar(key, role) => {
                    if seen_scalars.iter().any(|k| k == key) {
                        return Err(QueryError(format!("`{key}` may be given only once")));
                    }
                    seen_scalars.push(key.to_owned());
                    let value = decode(raw_value)?;
                    query.set_scalar(key, role, value)?;
                }
            }
        }
        schema
            .criteria(&query.filter, usize::MAX)
            .map_err(|e| QueryError(e.to_string()))?;
        Ok(query)
    }

    fn set_scalar(
        &mut self,
        key: &str,
        role: Option<FilterKey>,
        value: String,
    ) -> Result<(), QueryError> {
        let value = value.trim();
        if value.is_empty() {
            // `min_priority=` or `token=`: as if absent.
            return Ok(());
        }
        match (role, key) {
            (Some(FilterKey::MinPriority), _) => {
                self.filter.set(key, FilterValue::Text(value.to_owned()));
            }
            (Some(_), _) => {
                let number = value.parse::<f64>().map_err(|_| {
                    QueryError(format!(
                        "`{key}` must be a number, not {:?}",
                        truncate(value)
                    ))
                })?;
                self.filter.set(key, FilterValue::Number(number));
            }
            (None, "token") => self.token = Some(value.to_owned()),
            (None, "last_event_id") => self.last_event_id = Some(parse_offset(value)?),
            (None, _) => self.id = Some(value.to_owned()),
        }
        Ok(())
    }
}

/// Whether `key` is a list of the schema, one of its scalars, or ours.
fn classify<'a>(schema: &'a Schema, key: &str) -> Result<Key<'a>, QueryError> {
    if let Some(own) = OWN_KEYS.iter().find(|k| **k == key) {
        return Ok(Key::Scalar(own, None));
    }
    match schema.filter_keys().find(|(k, _)| *k == key) {
        Some((key, FilterKey::AnyOf(_))) => Ok(Key::List(key)),
        Some((key, role)) => Ok(Key::Scalar(key, Some(role))),
        None => {
            let known: Vec<&str> = schema
                .filter_keys()
                .map(|(k, _)| k)
                .chain(OWN_KEYS)
                .collect();
            Err(QueryError(format!(
                "unknown query parameter `{}`; expected one of: {}",
                truncate(key),
                known.join(", ")
            )))
        }
    }
}

/// Parses a resume point (`last_event_id` or the `Last-Event-ID` header).
pub(crate) fn parse_offset(value: &str) -> Result<Offset, QueryError> {
    value
        .trim()
        .parse::<Offset>()
        .map_err(|e| QueryError(format!("bad last event id: {e}")))
}

/// Appends the comma-separated items of the still-encoded `raw` to the
/// list under `key`, splitting after decoding (an encoded comma separates
/// items too).
fn push_items(filter: &mut Filter, key: &str, raw: &str) -> Result<(), QueryError> {
    let decoded = decode(raw)?;
    let items = decoded
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty());
    let mut list = filter.list(key).to_vec();
    list.extend(items.map(str::to_owned));
    if !list.is_empty() {
        filter.set(key, FilterValue::Values(list));
    }
    Ok(())
}

/// Percent-decodes one key or value of `application/x-www-form-urlencoded`
/// (`+` is a space). Stricter than a browser: a `%` not followed by two hex
/// digits and bytes that do not decode to UTF-8 are refused, so a client
/// bug gets a 400 instead of a filter that silently matches nothing.
pub(crate) fn decode(raw: &str) -> Result<String, QueryError> {
    let malformed = raw.split('%').skip(1).any(|after| {
        !after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(QueryError(format!(
            "malformed percent-encoding in {:?}",
            truncate(raw)
        )));
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| QueryError("query values must be UTF-8".into()))
}

/// At most 64 characters of client input, for error messages.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickcast_core::model::schema::tickstock;

    fn parse(raw: &str) -> Result<SseQuery, QueryError> {
        SseQuery::parse(raw, &tickstock::schema())
    }

    fn number(q: &SseQuery, key: &str) -> Option<f64> {
        match q.filter.get(key) {
            Some(FilterValue::Number(n)) => Some(*n),
            _ => None,
        }
    }

    #[test]
    fn lists_take_commas_and_repeated_keys() {
        let q = parse(
            "symbols=AAPL,msft&symbols=TSLA&tiers=daily,combo&event_types=pattern_detected\
             &patterns=Breakout%2CBO,Doji&market_regimes=bull&min_confidence=0.8\
             &min_priority=high&id=mine&last_event_id=5-7&token=a.b.c",
        )
        .unwrap();
        assert_eq!(q.filter.list("symbols"), ["AAPL", "msft", "TSLA"]);
        assert_eq!(q.filter.list("tiers"), ["daily", "combo"]);
        assert_eq!(q.filter.list("event_types"), ["pattern_detected"]);
        assert_eq!(q.filter.list("patterns"), ["Breakout", "BO", "Doji"]);
        assert_eq!(q.filter.list("market_regimes"), ["bull"]);
        assert_eq!(number(&q, "min_confidence"), Some(0.8));
        assert_eq!(
            q.filter.get("min_priority"),
            Some(&FilterValue::Text("high".into()))
        );
        assert_eq!(q.id.as_deref(), Some("mine"));
        assert_eq!(q.last_event_id, Some(Offset::new(5, 7)));
        assert_eq!(q.token.as_deref(), Some("a.b.c"));
    }

    #[test]
    fn empty_query_and_empty_values_mean_no_condition() {
        assert_eq!(parse("").unwrap(), SseQuery::default());
        let q = parse("symbols=&tiers=,&token=&&min_priority=").unwrap();
        assert_eq!(q, SseQuery::default());
        let q = parse("symbols=+AAPL+,%20MSFT").unwrap();
        assert_eq!(q.filter.list("symbols"), ["AAPL", "MSFT"]);
    }

    #[test]
    fn encoded_commas_separate_items_like_plain_ones() {
        let q = parse(
            "symbols=AAPL%2CMSFT&symbols=TSLA%2c+NVDA&tiers=daily%2Ccombo\
             &event_types=pattern_detected%2Csystem_health&market_regimes=bull%2Cbear\
             &patterns=Doji%2C%2CHammer",
        )
        .unwrap();
        assert_eq!(q.filter.list("symbols"), ["AAPL", "MSFT", "TSLA", "NVDA"]);
        assert_eq!(q.filter.list("tiers"), ["daily", "combo"]);
        assert_eq!(
            q.filter.list("event_types"),
            ["pattern_detected", "system_health"]
        );
        assert_eq!(q.filter.list("market_regimes"), ["bull", "bear"]);
        assert_eq!(q.filter.list("patterns"), ["Doji", "Hammer"]);
        // Scalars are not lists: an encoded comma stays in them.
        let q = parse("id=a%2Cb").unwrap();
        assert_eq!(q.id.as_deref(), Some("a,b"));
    }

    #[test]
    fn bad_queries_are_refused() {
        for bad in [
            "symbol=AAPL",
            "tiers=weekly",
            "market_regimes=sideways",
            "min_priority=urgent",
            "min_confidence=high",
            "min_confidence=1.5",
            "min_confidence=0.5&min_confidence=0.6",
            "id=a&id=b",
            "last_event_id=yesterday",
            "last_event_id=18446744073709551616-0",
            "last_event_id=1-99999999999999999999999",
            "symbols=%ZZ",
            "symbols=%C3%28",
            "symbols=%4",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let err = parse("tierz=daily").unwrap_err();
        assert!(err.0.contains("`tierz`"), "{}", err.0);
    }

    #[test]
    fn decodes_form_encoding() {
        assert_eq!(decode("a%20b+c%2B").unwrap(), "a b c+");
        assert_eq!(decode("%E2%82%AC").unwrap(), "€");
        assert_eq!(decode("plain").unwrap(), "plain");
        assert_eq!(decode("%2c%2C").unwrap(), ",,");
        for bad in ["%", "a%", "%4", "%G0", "%%41", "%C3%28", "%FF"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
