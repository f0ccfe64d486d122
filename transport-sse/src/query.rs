//! The query string of `GET /sse`: the subscription's filter, the token,
//! the resume point and the subscription id.
//!
//! Lists (`event_types`, `tiers`, `symbols`, `patterns`, `market_regimes`)
//! take comma-separated values, repeated keys, or both
//! (`symbols=AAPL,MSFT&symbols=TSLA`); empty items are skipped and items are
//! trimmed, so `symbols=` means "any symbol". Items are split on `,` before
//! percent-decoding: a comma inside a value is written `%2C`. Scalars
//! (`min_confidence`, `min_priority`, `token`, `last_event_id`, `id`) may
//! appear once. Any other key is refused, so a typo never silently widens
//! the subscription.

use std::str::FromStr;

use tickcast_core::model::{Filter, MarketRegime, Offset, Priority, Tier};

/// Every key `GET /sse` understands.
pub(crate) const KEYS: [&str; 10] = [
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
];

/// The parsed query string of `GET /sse`: what [`sse_route`](crate::sse_route)
/// serves. Public so that fuzz targets and tools can check a query string
/// exactly as the endpoint would.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseQuery {
    /// The filter, not yet normalized (the hub checks it on subscribe).
    pub filter: Filter,
    /// `token`: a JWT.
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

impl SseQuery {
    /// Parses a raw (still percent-encoded) query string, without the `?`.
    /// Never panics, whatever the input; every refusal is a [`QueryError`].
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        let mut query = Self::default();
        let mut seen_scalars: Vec<&'static str> = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key)?;
            let Some(key) = KEYS.iter().copied().find(|k| *k == key) else {
                return Err(QueryError(format!(
                    "unknown query parameter `{}`; expected one of: {}",
                    truncate(&key),
                    KEYS.join(", ")
                )));
            };
            match key {
                "event_types" => push_items(&mut query.filter.event_types, raw_value, Ok)?,
                "symbols" => push_items(&mut query.filter.symbols, raw_value, Ok)?,
                "patterns" => push_items(&mut query.filter.patterns, raw_value, Ok)?,
                "tiers" => push_items(&mut query.filter.tiers, raw_value, parse_enum::<Tier>)?,
                "market_regimes" => push_items(
                    &mut query.filter.market_regimes,
                    raw_value,
                    parse_enum::<MarketRegime>,
                )?,
                scalar => {
                    if seen_scalars.contains(&scalar) {
                        return Err(QueryError(format!("`{scalar}` may be given only once")));
                    }
                    seen_scalars.push(scalar);
                    let value = decode(raw_value)?;
                    query.set_scalar(scalar, value)?;
                }
            }
        }
        Ok(query)
    }

    fn set_scalar(&mut self, key: &'static str, value: String) -> Result<(), QueryError> {
        let value = value.trim();
        if value.is_empty() {
            // `min_priority=` or `token=`: as if absent.
            return Ok(());
        }
        match key {
            "min_confidence" => {
                let confidence = value.parse::<f64>().map_err(|_| {
                    QueryError(format!(
                        "`min_confidence` must be a number in 0..1, not {:?}",
                        truncate(value)
                    ))
                })?;
                self.filter.min_confidence = Some(confidence);
            }
            "min_priority" => self.filter.min_priority = Some(parse_enum::<Priority>(value)?),
            "token" => self.token = Some(value.to_owned()),
            "last_event_id" => self.last_event_id = Some(parse_offset(value)?),
            _ => self.id = Some(value.to_owned()),
        }
        Ok(())
    }
}

/// Parses a resume point (`last_event_id` or the `Last-Event-ID` header).
pub(crate) fn parse_offset(value: &str) -> Result<Offset, QueryError> {
    value
        .trim()
        .parse::<Offset>()
        .map_err(|e| QueryError(format!("bad last event id: {e}")))
}

/// Appends the comma-separated items of `raw` to `list`.
fn push_items<T>(
    list: &mut Vec<T>,
    raw: &str,
    parse: impl Fn(String) -> Result<T, QueryError>,
) -> Result<(), QueryError> {
    for item in raw.split(',') {
        let item = decode(item)?;
        let item = item.trim();
        if !item.is_empty() {
            list.push(parse(item.to_owned())?);
        }
    }
    Ok(())
}

fn parse_enum<T>(value: impl AsRef<str>) -> Result<T, QueryError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value
        .as_ref()
        .parse::<T>()
        .map_err(|e| QueryError(e.to_string()))
}

/// Percent-decodes one key or value of `application/x-www-form-urlencoded`
/// (`+` is a space). Malformed escapes and invalid UTF-8 are refused.
pub(crate) fn decode(raw: &str) -> Result<String, QueryError> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                let Some(byte) = hex else {
                    return Err(QueryError(format!(
                        "malformed percent-encoding in {:?}",
                        truncate(raw)
                    )));
                };
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError("query values must be UTF-8".into()))
}

/// At most 64 characters of client input, for error messages.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_take_commas_and_repeated_keys() {
        let q = SseQuery::parse(
            "symbols=AAPL,msft&symbols=TSLA&tiers=daily,combo&event_types=pattern_detected\
             &patterns=Breakout%2CBO,Doji&market_regimes=bull&min_confidence=0.8\
             &min_priority=high&id=mine&last_event_id=5-7&token=a.b.c",
        )
        .unwrap();
        assert_eq!(q.filter.symbols, ["AAPL", "msft", "TSLA"]);
        assert_eq!(q.filter.tiers, [Tier::Daily, Tier::Combo]);
        assert_eq!(q.filter.event_types, ["pattern_detected"]);
        assert_eq!(q.filter.patterns, ["Breakout,BO", "Doji"]);
        assert_eq!(q.filter.market_regimes, [MarketRegime::Bull]);
        assert_eq!(q.filter.min_confidence, Some(0.8));
        assert_eq!(q.filter.min_priority, Some(Priority::High));
        assert_eq!(q.id.as_deref(), Some("mine"));
        assert_eq!(q.last_event_id, Some(Offset::new(5, 7)));
        assert_eq!(q.token.as_deref(), Some("a.b.c"));
    }

    #[test]
    fn empty_query_and_empty_values_mean_no_condition() {
        assert_eq!(SseQuery::parse("").unwrap(), SseQuery::default());
        let q = SseQuery::parse("symbols=&tiers=,&token=&&min_priority=").unwrap();
        assert_eq!(q, SseQuery::default());
        let q = SseQuery::parse("symbols=+AAPL+,%20MSFT").unwrap();
        assert_eq!(q.filter.symbols, ["AAPL", "MSFT"]);
    }

    #[test]
    fn bad_queries_are_refused() {
        for bad in [
            "symbol=AAPL",
            "tiers=weekly",
            "market_regimes=sideways",
            "min_priority=urgent",
            "min_confidence=high",
            "min_confidence=0.5&min_confidence=0.6",
            "id=a&id=b",
            "last_event_id=yesterday",
            "symbols=%ZZ",
            "symbols=%C3%28",
            "symbols=%4",
        ] {
            assert!(SseQuery::parse(bad).is_err(), "{bad}");
        }
        let err = SseQuery::parse("tierz=daily").unwrap_err();
        assert!(err.0.contains("`tierz`"), "{}", err.0);
    }

    #[test]
    fn decodes_form_encoding() {
        assert_eq!(decode("a%20b+c%2B").unwrap(), "a b c+");
        assert_eq!(decode("%E2%82%AC").unwrap(), "€");
        assert_eq!(decode("plain").unwrap(), "plain");
    }
}
