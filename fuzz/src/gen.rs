//! Structure-aware generation: the values a hostile client would send,
//! drawn from [`Unstructured`] so that libFuzzer and the stable engine can
//! both steer them.
//!
//! Random bytes rarely get past a JSON parser; these helpers build inputs
//! that do, and then put the hostile part where the code under test reads
//! it: numbers at the edges of `u64`/`i64`/`f64`, strings at and over the
//! length limits, multi-byte and control characters, commas and
//! percent-escapes, deep nesting.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};

/// Integers at the edges of the types the server converts them to.
pub const EDGE_INTEGERS: [u64; 12] = [
    0,
    1,
    59,
    (1 << 31) - 1,
    1 << 32,
    1 << 53,
    (1 << 62) + 1,
    (1 << 63) - 1,
    1 << 63,
    (1 << 63) + 1,
    u64::MAX - 1,
    u64::MAX,
];

/// Numbers as JSON text that no `u64` or finite `f64` holds exactly, or
/// that are spelled unusually.
pub const ODD_NUMBER_TEXTS: [&str; 14] = [
    "-1",
    "-0",
    "18446744073709551616",
    "99999999999999999999999999",
    "-9223372036854775809",
    "1e400",
    "-1e400",
    "1e-400",
    "1E2",
    "0.0000001",
    "1.0000000000000002",
    "4.9e-324",
    "1.7976931348623157e308",
    "9223372036854775807.5",
];

/// Words the server knows, so generated input hits the accepted paths too.
pub const WORDS: [&str; 24] = [
    "AAPL",
    "msft",
    "BreakoutBO",
    "Doji",
    "daily",
    "intraday",
    "combo",
    "weekly",
    "bull",
    "bear",
    "neutral",
    "consolidation",
    "low",
    "medium",
    "high",
    "critical",
    "pattern_detected",
    "system_health",
    "market_state",
    "tickstock.events.patterns",
    "tickstock.health.status",
    "u1",
    "s1",
    "null",
];

/// A number at an edge, as a JSON value (the 2^64-and-up ones become
/// floats, as serde_json reads them).
pub fn edge_number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0 => Value::from(*u.choose(&EDGE_INTEGERS)?),
        1 => {
            let magnitude = i128::from(*u.choose(&EDGE_INTEGERS)?);
            Value::from(i64::try_from(-magnitude).unwrap_or(i64::MIN))
        }
        2 => Value::from(u.arbitrary::<u64>()?),
        3 => Value::from(u.arbitrary::<i64>()?),
        4 => Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        _ => Value::from(*u.choose(&[0.0, 0.5, 1.0, 1.0000001, -0.0, 1e308, -1e308, 1e-308])?),
    })
}

/// A string: a known word, an empty or over-long one, multi-byte or
/// control characters, separators and escapes.
pub fn string(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=9)? {
        0..=3 => (*u.choose(&WORDS)?).to_owned(),
        4 => String::new(),
        5 => {
            let unit = u.choose(&["A", "é", "€", "𝄞", " ", ",", "%2C", "\u{0}"])?;
            let len = *u.choose(&[31, 32, 33, 64, 127, 128, 129, 1000])?;
            unit.repeat(len)
        }
        6 => u
            .choose(&[
                " AAPL ",
                "AAPL,MSFT",
                "a%2Cb",
                "\"",
                "\\",
                "\u{202e}x",
                "\r\n",
                "💥",
            ])?
            .to_string(),
        7 => format!("{}{}", u.choose(&WORDS)?, u.arbitrary::<char>()?),
        _ => u.arbitrary::<String>()?,
    })
}

/// Any JSON value, at most `depth` levels deep, biased towards the
/// values above.
pub fn value(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    let choices = if depth == 0 { 5 } else { 7 };
    Ok(match u.int_in_range(0..=choices)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 | 3 => edge_number(u)?,
        4 | 5 => Value::String(string(u)?),
        6 => {
            let len = u.int_in_range(0..=4)?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(value(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let len = u.int_in_range(0..=4)?;
            let mut map = Map::new();
            for _ in 0..len {
                map.insert(string(u)?, value(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

/// JSON text nested around `inner` (arrays, objects or both), around the
/// depth limits (64 in tickcast, 128 in serde_json) or far beyond: the
/// input that overflows recursive parsers.
pub fn nested(u: &mut Unstructured<'_>, inner: &str) -> Result<String> {
    let depth = *u.choose(&[1, 63, 64, 65, 127, 128, 129, 5_000, 100_000])?;
    let mut open = String::new();
    let mut close = Vec::new();
    for _ in 0..depth {
        if u.arbitrary()? {
            open.push('[');
            close.push(']');
        } else {
            open.push_str("{\"a\":");
            close.push('}');
        }
    }
    close.reverse();
    Ok(format!(
        "{open}{inner}{}",
        close.into_iter().collect::<String>()
    ))
}

/// `value` as JSON text, compact or pretty-printed.
pub fn render(u: &mut Unstructured<'_>, value: &Value) -> Result<String> {
    let text = if u.ratio(1, 4)? {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_default();
    Ok(text)
}

/// The JSON text of an object with `fields`, where each value is either a
/// JSON value or raw number text (so `1e400` and `-0` reach the parser
/// spelled as they are).
pub fn object_text(fields: &[(String, Field)]) -> String {
    let mut out = String::from("{");
    for (i, (key, field)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        match field {
            Field::Json(v) => out.push_str(&v.to_string()),
            Field::Raw(text) => out.push_str(text),
        }
    }
    out.push('}');
    out
}

/// One field value for [`object_text`].
#[derive(Debug, Clone)]
pub enum Field {
    /// A JSON value.
    Json(Value),
    /// Raw JSON text, written as is.
    Raw(String),
}

/// A field value for a numeric field: an edge number, odd number text,
/// or a value of the wrong type.
pub fn numeric_field(u: &mut Unstructured<'_>) -> Result<Field> {
    Ok(match u.int_in_range(0..=5)? {
        0..=2 => Field::Json(edge_number(u)?),
        3 => Field::Raw((*u.choose(&ODD_NUMBER_TEXTS)?).to_owned()),
        4 => Field::Raw(nested(u, "1")?),
        _ => Field::Json(value(u, 2)?),
    })
}

/// A field value for a string field: usually a string, sometimes another
/// type or deep nesting.
pub fn string_field(u: &mut Unstructured<'_>) -> Result<Field> {
    Ok(match u.int_in_range(0..=7)? {
        0..=5 => Field::Json(Value::String(string(u)?)),
        6 => Field::Raw(nested(u, "\"x\"")?),
        _ => Field::Json(value(u, 2)?),
    })
}
