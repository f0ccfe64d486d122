//! Target `client_op`: WebSocket text frames through
//! [`ClientOp::parse`], then what the transport does with the operation on
//! a real [`Hub`] connection (subscribe with `since` into a history,
//! unsubscribe, ping), as `transport-ws` does it.
//!
//! Input: the text of up to 16 frames of one connection, separated by the
//! byte 0x1E (ASCII record separator, which JSON text never holds
//! unescaped). Invalid UTF-8 is replaced (U+FFFD): the transport closes on
//! it before parsing (1007). Properties: a refused frame is a
//! `bad_request` whose `id` is the frame's `id` field, and its `error`
//! frame is JSON; a subscribe is refused only for the documented reasons
//! (bad filter or id, the subscription limit) and replays at most what the
//! history holds; an unsubscribe of an id the connection does not hold is
//! `unknown_subscription`; a ping's `pong` is JSON carrying its `ts`; the
//! connection's queue yields frames without panicking.

use std::cell::RefCell;
use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tickcast_core::hub::SubscribeError;
use tickcast_core::model::Event;
use tickcast_core::protocol::{ClientOp, ErrorCode, ServerMessage};
use tickcast_core::{Hub, HubConfig};

use super::{sample, FIXTURE_SAMPLE};
use crate::gen::{self, Field};
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "client_op",
    about: "ClientOp::parse on WebSocket text frames, then subscribe/unsubscribe/ping on a hub",
    run,
    generate,
    built_seeds,
    dictionary: &[
        "\"op\":",
        "\"subscribe\"",
        "\"unsubscribe\"",
        "\"ping\"",
        "\"id\":",
        "\"filter\":",
        "\"since\":",
        "\"ts\":",
        "\"symbols\":",
        "\"tiers\":",
        "\"min_confidence\":",
        "\"min_priority\":",
        "\"18446744073709551615-18446744073709551615\"",
        "\"0-0\"",
        "\u{1e}",
        "null",
        "[[[[",
    ],
};

/// Frames per connection in one input.
const MAX_FRAMES: usize = 16;
/// How many events the hub has published before the first input (its
/// history holds the last [`HISTORY`] of them).
const PUBLISHED: usize = 30;
const HISTORY: usize = 20;

thread_local! {
    static HUB: RefCell<Option<Hub>> = const { RefCell::new(None) };
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let hub = HUB.with(|cell| cell.borrow_mut().get_or_insert_with(build_hub).clone());
    let Ok(mut conn) = hub.connect(None, hub.default_limits()) else {
        panic!("the hub refused an anonymous connection");
    };
    let text = String::from_utf8_lossy(data);
    for frame in text.split('\u{1e}').take(MAX_FRAMES) {
        match ClientOp::parse(frame) {
            Err(error) => {
                assert_eq!(error.code, ErrorCode::BadRequest);
                // Raw values: the rest of a refused frame may nest deeper
                // than a `Value` may. (Only objects are checked: serde reads
                // a struct from an array too, so `["s1"]` names `s1`.)
                let object = serde_json::from_str::<BTreeMap<String, &RawValue>>(frame);
                if let (Some(id), Ok(fields)) = (&error.id, object) {
                    let sent = fields
                        .get("id")
                        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
                    assert_eq!(sent.as_deref(), Some(id.as_str()), "error names another id");
                }
                let message = ServerMessage::error(error.code, error.message, error.id);
                assert_json(&message.to_json());
            }
            Ok(ClientOp::Subscribe { id, filter, since }) => {
                let held = conn.handle.subscription_ids().len();
                match conn.handle.subscribe(&id, filter.clone(), since) {
                    Ok(replayed) => {
                        assert!(replayed <= HISTORY, "replayed {replayed}");
                        let chars = id.chars().count();
                        assert!((1..=tickcast_core::model::MAX_NAME_CHARS).contains(&chars));
                        let max = hub.config().limits.max_values_per_list;
                        let schema = &hub.config().schema;
                        assert!(
                            schema.criteria(&filter, max).is_ok(),
                            "accepted a bad filter"
                        );
                    }
                    Err(SubscribeError::LimitExceeded(limit)) => assert!(held >= limit),
                    Err(SubscribeError::BadFilter(_) | SubscribeError::BadId) => {}
                    Err(other) => panic!("subscribe refused with {other:?}"),
                }
            }
            Ok(ClientOp::Unsubscribe { id }) => {
                let held = conn.handle.subscription_ids().iter().any(|s| **s == *id);
                match conn.handle.unsubscribe(&id) {
                    Ok(()) => assert!(held, "unsubscribed an id it did not hold"),
                    Err(SubscribeError::UnknownSubscription) => assert!(!held),
                    Err(other) => panic!("unsubscribe refused with {other:?}"),
                }
            }
            Ok(ClientOp::Ping { ts }) => {
                let pong = ServerMessage::Pong { ts: ts.clone() };
                let json = assert_json(&pong.to_json());
                assert_eq!(json["type"], "pong");
                assert_eq!(json.get("ts").is_some(), ts.is_some());
            }
        }
    }
    // What the writer would send: every queued frame, then the close.
    while conn.frames.try_recv().is_some() {}
}

/// Parses a server frame, which must be JSON.
fn assert_json(frame: &Bytes) -> Value {
    match serde_json::from_slice(frame) {
        Ok(value) => value,
        Err(e) => panic!(
            "server frame is not JSON ({e}): {:?}",
            String::from_utf8_lossy(frame)
        ),
    }
}

/// A hub with node offsets that has published [`PUBLISHED`] fixture-like
/// events and keeps the last [`HISTORY`].
fn build_hub() -> Hub {
    let mut config = HubConfig::immediate();
    config.history.capacity = HISTORY;
    let hub = Hub::new(config);
    for i in 0..PUBLISHED {
        let body = format!(
            r#"{{"symbol":"{}","pattern":"Doji","tier":"daily","confidence":0.{i}}}"#,
            ["AAPL", "MSFT", "TSLA"][i % 3]
        );
        if let Ok(event) = Event::from_json(Bytes::from(body), None, 1 << 10) {
            let _ = hub.publish(event);
        }
    }
    hub
}

/// Frames of the protocol with hostile values: subscribes with odd
/// filters, ids and `since`, unsubscribes, pings with any `ts`, unknown
/// ops and fields.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let count = u.int_in_range(1..=4)?;
    let mut frames = Vec::with_capacity(count);
    for _ in 0..count {
        frames.push(frame(u)?);
    }
    Ok(frames.join("\u{1e}").into_bytes())
}

fn frame(u: &mut Unstructured<'_>) -> Result<String> {
    let op = match u.int_in_range(0..=9)? {
        0..=5 => "subscribe",
        6 => "unsubscribe",
        7 => "ping",
        8 => "dance",
        _ => "Subscribe",
    };
    let mut fields = vec![("op".to_owned(), Field::Json(Value::from(op)))];
    if u.ratio(7, 8)? {
        fields.push(("id".to_owned(), gen::string_field(u)?));
    }
    if u.ratio(2, 3)? {
        fields.push(("filter".to_owned(), filter(u)?));
    }
    if u.ratio(1, 2)? {
        fields.push(("since".to_owned(), since(u)?));
    }
    if u.ratio(1, 4)? {
        fields.push(("ts".to_owned(), Field::Json(gen::value(u, 4)?)));
    }
    if u.ratio(1, 8)? {
        fields.push((gen::string(u)?, Field::Json(gen::value(u, 2)?)));
    }
    Ok(gen::object_text(&fields))
}

fn filter(u: &mut Unstructured<'_>) -> Result<Field> {
    if u.ratio(1, 8)? {
        return Ok(Field::Raw(gen::nested(u, "{}")?));
    }
    let mut fields = Vec::new();
    for list in [
        "event_types",
        "tiers",
        "symbols",
        "patterns",
        "market_regimes",
    ] {
        if u.ratio(1, 3)? {
            let len = *u.choose(&[0usize, 1, 2, 3, 256, 257])?;
            let mut items = Vec::with_capacity(len);
            let word = gen::string(u)?;
            for i in 0..len {
                items.push(if i < 3 {
                    Value::from(gen::string(u)?)
                } else {
                    Value::from(format!("{word}{i}"))
                });
            }
            fields.push((list.to_owned(), Field::Json(Value::Array(items))));
        }
    }
    if u.ratio(1, 3)? {
        fields.push(("min_confidence".to_owned(), gen::numeric_field(u)?));
    }
    if u.ratio(1, 4)? {
        fields.push(("min_priority".to_owned(), gen::string_field(u)?));
    }
    Ok(Field::Raw(gen::object_text(&fields)))
}

/// A `since`: around the hub's history (its offsets are `<epoch>-<seq>`
/// with `seq` up to [`PUBLISHED`]), at the edges of `u64`, or malformed.
fn since(u: &mut Unstructured<'_>) -> Result<Field> {
    let epoch = HUB.with(|cell| {
        cell.borrow()
            .as_ref()
            .and_then(Hub::latest_offset)
            .map_or(0, |o| o.major)
    });
    let text = match u.int_in_range(0..=5)? {
        0 | 1 => format!("{epoch}-{}", u.int_in_range(0..=PUBLISHED as u64 + 2)?),
        2 => format!(
            "{}-{}",
            u.choose(&gen::EDGE_INTEGERS)?,
            u.choose(&gen::EDGE_INTEGERS)?
        ),
        3 => format!("{epoch}-{}", u.choose(&gen::ODD_NUMBER_TEXTS)?),
        4 => return Ok(Field::Json(gen::value(u, 2)?)),
        _ => gen::string(u)?,
    };
    Ok(Field::Json(Value::from(text)))
}

/// Subscribes to each sampled fixture event's symbol, pattern and tier,
/// from the start of the history; then an unsubscribe and a ping.
fn built_seeds() -> Vec<Vec<u8>> {
    let events = sample(tickcast_testkit::good_events(), FIXTURE_SAMPLE / 4);
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let mut filter = serde_json::Map::new();
            for (key, list) in [
                ("symbol", "symbols"),
                ("pattern", "patterns"),
                ("tier", "tiers"),
            ] {
                if let Some(value) = event.body.get(key) {
                    filter.insert(list.into(), json!([value]));
                }
            }
            let subscribe =
                json!({"op": "subscribe", "id": format!("s{i}"), "filter": filter, "since": "0-0"});
            let unsubscribe = json!({"op": "unsubscribe", "id": format!("s{i}")});
            let ping = json!({"op": "ping", "ts": i});
            format!("{subscribe}\u{1e}{unsubscribe}\u{1e}{ping}").into_bytes()
        })
        .collect()
}
