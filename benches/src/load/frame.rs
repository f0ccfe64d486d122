//! Cheap parsing of server frames.
//!
//! [`parse`] is one pass of serde_json over the text, borrowing the few
//! strings it keeps, reading of each event only `data.load_seq` and
//! `data.load_sent_ns` and skipping everything else (offsets, subs, the
//! rest of the body) with `IgnoredAny`. No allocation per frame: the
//! events' stamps go into a buffer the caller reuses.
//!
//! [`scan`] is the fast path for `event` and `batch` frames whose events
//! are all the generator's own: their bodies start with
//! `{"load_seq":N,"load_sent_ns":T,` and are delivered verbatim, so the
//! stamps can be found with a SIMD substring search instead of a parse.
//! An `event` frame's stamp must open its top-level `data`, the frame's
//! first `"data":` (the keys before it hold only strings, in which a `"`
//! is escaped): one short search that stops there, instead of two over
//! the whole frame. In a batch it checks that it found one stamp per
//! event (one per `"offset":"`, a key every event object has). It gives
//! up otherwise; the caller then uses [`parse`].

use std::fmt;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// What the generator stamped on a published event (extra body fields,
/// delivered verbatim in `data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// `load_seq`: the event's number in this run.
    pub seq: u64,
    /// `load_sent_ns`: when its request was sent, ns since the Unix epoch.
    pub sent_ns: u64,
}

/// The top-level fields of a frame that the generator looks at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// `type`: `event`, `batch`, `dropped`, `welcome`, `subscribed`, ...
    pub kind: &'a str,
    /// `id` (`subscribed`, `error`).
    pub id: Option<&'a str>,
    /// `code` (`error`).
    pub code: Option<&'a str>,
    /// `count` (`dropped`).
    pub count: Option<u64>,
}

/// Parses `text`, appending one entry per event it carries to `stamps`
/// (`None` for an event without both stamps: someone else's).
pub fn parse<'a>(
    text: &'a str,
    stamps: &mut Vec<Option<Stamp>>,
) -> Result<Frame<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let frame = FrameSeed { stamps }.deserialize(&mut de)?;
    de.end()?;
    Ok(frame)
}

/// What [`scan`] recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// Not an `event` or `batch` frame of this run's events only: parse it.
    No,
    /// An `event` or `batch` frame; its stamps were appended.
    Events,
}

const STAMP: &[u8] = br#"{"load_seq":"#;
const SENT: &[u8] = br#","load_sent_ns":"#;
const OFFSET: &[u8] = br#""offset":""#;
const DATA: &[u8] = br#""data":"#;

/// Searchers built once (building one costs more than a search).
static STAMPS_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(STAMP));
static OFFSETS_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(OFFSET));
static DATA_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(DATA));

/// The fast path: appends the stamps of an `event` or `batch` frame whose
/// events all carry them at the start of their body; leaves `stamps`
/// untouched and answers [`Scanned::No`] for anything else.
pub fn scan(text: &str, stamps: &mut Vec<Option<Stamp>>) -> Scanned {
    let bytes = text.as_bytes();
    if bytes.starts_with(br#"{"type":"event","#) {
        scan_event(bytes, stamps)
    } else if bytes.starts_with(br#"{"type":"batch","#) {
        scan_batch(bytes, stamps)
    } else {
        Scanned::No
    }
}

/// One event: the stamp right after the first `"data":`.
fn scan_event(bytes: &[u8], stamps: &mut Vec<Option<Stamp>>) -> Scanned {
    let stamp = DATA_FINDER
        .find(bytes)
        .and_then(|at| bytes[at + DATA.len()..].strip_prefix(STAMP))
        .and_then(stamp_at);
    match stamp {
        Some(stamp) => {
            stamps.push(Some(stamp));
            Scanned::Events
        }
        None => Scanned::No,
    }
}

/// A batch: every stamp, as many as events.
fn scan_batch(bytes: &[u8], stamps: &mut Vec<Option<Stamp>>) -> Scanned {
    let start = stamps.len();
    let mut found = 0;
    for at in STAMPS_FINDER.find_iter(bytes) {
        match stamp_at(&bytes[at + STAMP.len()..]) {
            Some(stamp) => stamps.push(Some(stamp)),
            None => {
                stamps.truncate(start);
                return Scanned::No;
            }
        }
        found += 1;
    }
    let events = OFFSETS_FINDER.find_iter(bytes).count();
    if found == 0 || found != events {
        stamps.truncate(start);
        return Scanned::No;
    }
    Scanned::Events
}

/// `N,"load_sent_ns":T` followed by `,` or `}`.
fn stamp_at(rest: &[u8]) -> Option<Stamp> {
    let (seq, used) = number(rest)?;
    let rest = rest[used..].strip_prefix(SENT)?;
    let (sent_ns, used) = number(rest)?;
    matches!(rest.get(used), Some(b',' | b'}')).then_some(Stamp { seq, sent_ns })
}

/// A non-negative decimal integer at the start of `bytes`, and its length.
fn number(bytes: &[u8]) -> Option<(u64, usize)> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some((value, digits))
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Type,
    Id,
    Code,
    Count,
    Data,
    Events,
    #[serde(other)]
    Other,
}

/// `data`, of which only the stamps are read.
#[derive(Deserialize)]
struct Data {
    load_seq: Option<u64>,
    load_sent_ns: Option<u64>,
}

impl Data {
    fn stamp(&self) -> Option<Stamp> {
        Some(Stamp {
            seq: self.load_seq?,
            sent_ns: self.load_sent_ns?,
        })
    }
}

/// One element of a batch's `events`.
#[derive(Deserialize)]
struct Item {
    data: Option<Data>,
}

struct FrameSeed<'s> {
    stamps: &'s mut Vec<Option<Stamp>>,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tickcast server frame (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut frame = Frame::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => frame.kind = map.next_value()?,
                Key::Id => frame.id = map.next_value()?,
                Key::Code => frame.code = map.next_value()?,
                Key::Count => frame.count = map.next_value()?,
                Key::Data => {
                    let data: Option<Data> = map.next_value()?;
                    self.stamps.push(data.and_then(|d| d.stamp()));
                }
                Key::Events => map.next_value_seed(Events {
                    stamps: self.stamps,
                })?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(frame)
    }
}

struct Events<'s> {
    stamps: &'s mut Vec<Option<Stamp>>,
}

impl<'de> DeserializeSeed<'de> for Events<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Events<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Item>()? {
            self.stamps.push(item.data.and_then(|d| d.stamp()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_batch_frames_yield_their_stamps() {
        let mut stamps = Vec::new();
        let event = r#"{"type":"event","offset":"1-2","subs":["s0","s1"],"priority":"high","event_type":"pattern_detected","data":{"load_seq":7,"load_sent_ns":123,"source":"TickStockPL","metadata":{"a":[1,{"b":null}]}}}"#;
        let frame = parse(event, &mut stamps).unwrap();
        assert_eq!(frame.kind, "event");
        assert_eq!(
            stamps,
            vec![Some(Stamp {
                seq: 7,
                sent_ns: 123
            })]
        );

        stamps.clear();
        let batch = r#"{"type":"batch","events":[{"offset":"1-3","subs":[],"priority":"low","event_type":"x","data":{"symbol":"A","load_seq":8,"load_sent_ns":5}},{"offset":"1-4","subs":["s2"],"priority":"low","event_type":"x","data":{"symbol":"B"}}]}"#;
        let frame = parse(batch, &mut stamps).unwrap();
        assert_eq!(frame.kind, "batch");
        assert_eq!(stamps, vec![Some(Stamp { seq: 8, sent_ns: 5 }), None]);
    }

    #[test]
    fn scan_agrees_with_parse_on_own_events_and_gives_up_on_others() {
        let body = |seq: u64| {
            format!(
                r#"{{"load_seq":{seq},"load_sent_ns":17{seq},"source":"TickStockPL","symbol":"S001","metadata":{{"price":1.5}}}}"#
            )
        };
        let event = format!(
            r#"{{"type":"event","offset":"9-1","subs":["s0"],"priority":"low","event_type":"pattern_detected","data":{}}}"#,
            body(3)
        );
        let batch = format!(
            r#"{{"type":"batch","events":[{{"offset":"9-2","subs":["s0","s2"],"priority":"high","event_type":"pattern_detected","data":{}}},{{"offset":"9-3","subs":[],"priority":"low","event_type":"pattern_detected","data":{}}}]}}"#,
            body(4),
            body(5)
        );
        for frame in [&event, &batch] {
            let (mut fast, mut full) = (Vec::new(), Vec::new());
            assert_eq!(scan(frame, &mut fast), Scanned::Events);
            parse(frame, &mut full).unwrap();
            assert_eq!(fast, full);
        }
        // Someone else's event in the batch: one offset more than stamps.
        let mixed = batch.replacen(r#"{"load_seq":5,"load_sent_ns":175,"#, "{", 1);
        let mut stamps = vec![None];
        assert_eq!(scan(&mixed, &mut stamps), Scanned::No);
        assert_eq!(stamps, vec![None], "untouched");
        // Not an event frame, or stamps not where they should be.
        assert_eq!(
            scan(r#"{"type":"dropped","count":1}"#, &mut stamps),
            Scanned::No
        );
        let odd = event.replace(r#""load_sent_ns":173"#, r#""load_sent_ns":"x""#);
        assert_eq!(scan(&odd, &mut stamps), Scanned::No);
        assert_eq!(stamps, vec![None]);
        // Someone else's event carrying a stamp-like object deeper in its
        // body: not taken for one of ours.
        let nested = event.replace(
            r#""data":{"load_seq":3,"load_sent_ns":173,"#,
            r#""data":{"x":{"load_seq":3,"load_sent_ns":173,"y":1},"#,
        );
        assert_eq!(scan(&nested, &mut stamps), Scanned::No);
        parse(&nested, &mut stamps).unwrap();
        assert_eq!(stamps, vec![None, None], "parse: no stamp of ours");
        // The SSE form: `resume` after `data`.
        let sse = format!(r#"{},"resume":"9-1"}}"#, &event[..event.len() - 1]);
        let (mut fast, mut full) = (Vec::new(), Vec::new());
        assert_eq!(scan(&sse, &mut fast), Scanned::Events);
        parse(&sse, &mut full).unwrap();
        assert_eq!(fast, full);
    }

    #[test]
    fn control_frames_keep_their_fields() {
        let mut stamps = Vec::new();
        let f = parse(r#"{"type":"dropped","count":3,"since":"1-2"}"#, &mut stamps).unwrap();
        assert_eq!((f.kind, f.count), ("dropped", Some(3)));
        let f = parse(
            r#"{"type":"error","code":"limit_exceeded","message":"too many","id":"s9"}"#,
            &mut stamps,
        )
        .unwrap();
        assert_eq!(
            (f.kind, f.code, f.id),
            ("error", Some("limit_exceeded"), Some("s9"))
        );
        let f = parse(
            r#"{"type":"welcome","conn":"c-1","user":null,"offset":null,"server":"tickcast/0.1.0"}"#,
            &mut stamps,
        )
        .unwrap();
        assert_eq!(f.kind, "welcome");
        assert!(stamps.is_empty());
        assert!(parse("not json", &mut stamps).is_err());
        assert!(parse(r#"{"type":"event"} trailing"#, &mut stamps).is_err());
    }
}
