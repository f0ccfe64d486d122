//! Target `offset`: offsets as clients send them (`since` of a subscribe,
//! `last_event_id` and `Last-Event-ID` of SSE), parsed with
//! [`Offset::from_str`](std::str::FromStr), and the history lookup that
//! compares them ([`History::since`]).
//!
//! Input: up to 8 offset strings, one per line. Properties, per string:
//! it parses exactly when it is `<digits>-<digits>` with both numbers in
//! `u64` (checked against a separate digit-by-digit reading); a parsed
//! offset prints as the input without leading zeros and parses back equal,
//! through `FromStr`, `write_to` and serde alike; its predecessor is the
//! next smaller offset (`0-0` its own, never a wrap); a history answers `since` it exactly with the
//! events after it, or `history_gone` when it cannot. Between strings:
//! offsets order as their numbers do.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use tickcast_core::broadcast::PreparedEvent;
use tickcast_core::history::HistoryConfig;
use tickcast_core::internals::History;
use tickcast_core::model::{Event, Offset};

use crate::gen;
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "offset",
    about: "offset strings (since, last_event_id): parse, print, order, history lookup",
    run,
    generate,
    built_seeds: Vec::new,
    dictionary: &[
        "-",
        "0",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775808",
        "00000000000000000000001",
        " ",
        "+",
        "\n",
        "1732460000123-42",
    ],
};

/// Epoch of the test history.
const EPOCH: u64 = 1_732_460_000_123;
/// The test history held events `EPOCH-1` to `EPOCH-LAST`, of which the
/// first `EVICTED` were evicted.
const LAST: u64 = 50;
const EVICTED: u64 = 10;

thread_local! {
    static HISTORY: RefCell<Option<History>> = const { RefCell::new(None) };
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed: Vec<(String, Offset)> = text
        .split('\n')
        .take(8)
        .filter_map(|s| check_one(s).map(|o| (s.to_owned(), o)))
        .collect();
    for (a_text, a) in &parsed {
        for (b_text, b) in &parsed {
            assert_eq!(
                a.cmp(b),
                numeric_order(a_text, b_text),
                "{a_text:?} vs {b_text:?}"
            );
        }
    }
}

/// Checks one string; the offset when it parses.
fn check_one(s: &str) -> Option<Offset> {
    let parsed = s.parse::<Offset>();
    let reference = reference(s);
    assert_eq!(parsed.clone().ok(), reference, "parse of {s:?}");
    let offset = match parsed {
        Ok(offset) => offset,
        Err(error) => {
            // The message quotes at most 64 characters of client input.
            assert!(error.0.chars().count() <= 64, "{error}");
            let as_json = serde_json::from_value::<Offset>(serde_json::Value::String(s.into()));
            assert!(as_json.is_err(), "serde accepted {s:?}");
            return None;
        }
    };
    let printed = offset.to_string();
    assert_eq!(printed, canonical(s), "display of {s:?}");
    assert_eq!(printed.parse::<Offset>(), Ok(offset));
    let mut written = Vec::new();
    offset.write_to(&mut written);
    assert_eq!(written, printed.as_bytes());
    let json = serde_json::to_string(&offset).unwrap_or_default();
    assert_eq!(json, format!("\"{printed}\""));
    assert_eq!(serde_json::from_str::<Offset>(&json).ok(), Some(offset));
    check_predecessor(offset);
    check_history(offset);
    Some(offset)
}

/// `<digits>-<digits>` with both numbers in `u64`, read digit by digit.
fn reference(s: &str) -> Option<Offset> {
    let (major, minor) = s.split_once('-')?;
    Some(Offset::new(number(major)?, number(minor)?))
}

fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// The input with leading zeros dropped from both numbers.
fn canonical(s: &str) -> String {
    let strip = |p: &str| {
        let t = p.trim_start_matches('0');
        if t.is_empty() {
            "0".to_owned()
        } else {
            t.to_owned()
        }
    };
    let (major, minor) = s.split_once('-').unwrap_or((s, ""));
    format!("{}-{}", strip(major), strip(minor))
}

/// Compares two valid offset strings by their numbers, as digit strings.
fn numeric_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |s: &str| {
        let canonical = canonical(s);
        let (major, minor) = canonical
            .split_once('-')
            .map_or((String::new(), String::new()), |(x, y)| {
                (x.to_owned(), y.to_owned())
            });
        ((major.len(), major), (minor.len(), minor))
    };
    key(a).cmp(&key(b))
}

fn check_predecessor(offset: Offset) {
    if offset == Offset::new(0, 0) {
        // No offset is smaller: it is its own, never a wrap to the largest.
        assert_eq!(offset.predecessor(), offset, "predecessor of 0-0");
        return;
    }
    let p = offset.predecessor();
    assert!(p < offset, "predecessor {p} of {offset}");
    let expected = if offset.minor == 0 {
        Offset::new(offset.major - 1, u64::MAX)
    } else {
        Offset::new(offset.major, offset.minor - 1)
    };
    assert_eq!(p, expected, "predecessor of {offset}");
}

/// `since` against a history that holds events after `EPOCH-EVICTED` up to
/// `EPOCH-LAST`.
fn check_history(since: Offset) {
    HISTORY.with(|cell| {
        let mut guard = cell.borrow_mut();
        let history = guard.get_or_insert_with(build_history);
        let floor = Offset::new(EPOCH, EVICTED);
        let latest = Offset::new(EPOCH, LAST);
        match history.since(since) {
            Ok(events) => {
                assert!(floor <= since && since <= latest, "replayed from {since}");
                let replayed: Vec<Offset> = events.map(|e| e.offset).collect();
                let expected: Vec<Offset> = (EVICTED + 1..=LAST)
                    .map(|seq| Offset::new(EPOCH, seq))
                    .filter(|o| *o > since)
                    .collect();
                assert_eq!(replayed, expected, "replay after {since}");
            }
            Err(gone) => {
                assert!(since < floor || since > latest, "history_gone for {since}");
                assert_eq!(gone.since, since);
            }
        };
    });
}

fn build_history() -> History {
    let config = HistoryConfig::default()
        .with_capacity((LAST - EVICTED) as usize)
        .with_max_age(Duration::from_secs(24 * 3600));
    let mut history = History::new(config, Some(Offset::new(EPOCH, 0)));
    for seq in 1..=LAST {
        let body = Bytes::from(format!(r#"{{"event_type":"x","seq":{seq}}}"#));
        if let Ok(event) = Event::from_json(body, None, 1 << 10) {
            history.push(Arc::new(PreparedEvent::new(event, Offset::new(EPOCH, seq))));
        }
    }
    history
}

/// Offsets near the history's floor and latest, at the `u64` edges, with
/// leading zeros, signs, spaces and extra separators.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let count = u.int_in_range(1..=4)?;
    let mut lines = Vec::with_capacity(count);
    for _ in 0..count {
        let part = |u: &mut Unstructured<'_>| -> Result<String> {
            Ok(match u.int_in_range(0..=6)? {
                0 => EPOCH.to_string(),
                1 => u.int_in_range(0..=LAST + 1)?.to_string(),
                2 => u.choose(&gen::EDGE_INTEGERS)?.to_string(),
                3 => format!(
                    "{}{}",
                    "0".repeat(u.int_in_range(1..=30)?),
                    u.arbitrary::<u16>()?
                ),
                4 => (*u.choose(&gen::ODD_NUMBER_TEXTS)?).to_owned(),
                5 => u.arbitrary::<u64>()?.to_string(),
                _ => u
                    .choose(&["", " 1", "+1", "1_000", "٣", "0x10", "1-2"])?
                    .to_string(),
            })
        };
        let line = format!("{}-{}", part(u)?, part(u)?);
        lines.push(line);
    }
    Ok(lines.join("\n").into_bytes())
}
