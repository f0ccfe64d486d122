//! Target `publish`: `POST /api/publish` as the server answers it: the
//! binary's own routes ([`tickcast::http::routes`]) in process, driven by
//! `warp::test`, so query parsing, body reading, the array split, decoding,
//! publishing to the hub and the JSON answer all run.
//!
//! Input: the request body. An input whose first line starts with `#` puts
//! the rest of that line in `?channel=` (percent-encoded here, as a client
//! library would) and the remaining lines are the body.
//!
//! Properties, against an independent reading of the body (split as a
//! JSON array of raw items, each judged by [`Event::from_json`]):
//! the answer is JSON and never a 5xx, and at most twice the size of the
//! request plus 64 KiB (no error amplification); 413 when the body is over
//! the limit; an accepted publish answers 202 with one offset per item; a
//! partly refused one answers 400 with one offset per good item and the
//! errors of the first bad items, in order, the others counted in
//! `errors_omitted`; a request refused as a whole (too many items, an
//! array that does not parse) says why in `error`; offsets parse and
//! increase, also from one request to the next.

use std::cell::RefCell;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::Value;
use tickcast::http::{routes, AppState};
use tickcast::Config;
use tickcast_core::model::{Event, Offset};
use tickcast_core::Hub;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::event_json::{self, MAX_BYTES};
use super::{sample, FIXTURE_SAMPLE};
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "publish",
    about: "POST /api/publish through the server's routes: single events, arrays, errors",
    run,
    generate,
    built_seeds,
    dictionary: PUBLISH_DICTIONARY,
};

const PUBLISH_DICTIONARY: &[&str] = &[
    "[",
    "]",
    ",",
    "[]",
    "[{}]",
    "#tickstock.health.status\n",
    "#\n",
    "\"symbol\":",
    "\"pattern\":",
    "\"confidence\":",
    "\"user_id\":",
    "\"priority\":\"critical\"",
    "1e400",
    "[[[[[[[[",
];

/// A server's routes and the runtime that drives them.
struct Server {
    runtime: tokio::runtime::Runtime,
    routes: BoxedFilter<(Response,)>,
    /// The newest offset answered so far.
    last_offset: Option<Offset>,
}

thread_local! {
    static SERVER: RefCell<Option<Server>> = const { RefCell::new(None) };
}

fn build_server() -> Server {
    let mut config = Config::default();
    // Every accepted event stays in the history otherwise; a long run
    // publishes millions.
    config.history.capacity = 1_000;
    let hub = Hub::new(config.hub_config());
    let state = AppState::new(hub, config, None, None);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => panic!("no Tokio runtime: {e}"),
    };
    Server {
        runtime,
        routes: routes(&state),
        last_offset: None,
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let (channel, body) = split_input(data);
    let path = match &channel {
        Some(channel) => format!(
            "/api/publish?channel={}",
            percent_encoding::utf8_percent_encode(channel, percent_encoding::NON_ALPHANUMERIC)
        ),
        None => "/api/publish".to_owned(),
    };
    if path.parse::<warp::http::Uri>().is_err() {
        // Not a request line hyper would pass on (a channel of 64 KiB);
        // the server answers it with 414 before any route runs.
        return;
    }
    // A panic below leaves the runtime in an unknown state: the next input
    // builds a new server.
    let server = SERVER
        .with(|cell| cell.borrow_mut().take())
        .unwrap_or_else(build_server);
    let request = warp::test::request()
        .method("POST")
        .path(&path)
        .header("content-type", "application/json")
        .body(body);
    let response = server.runtime.block_on(request.reply(&server.routes));
    let mut server = server;
    check(&mut server, channel.as_deref(), body, &response);
    SERVER.with(|cell| *cell.borrow_mut() = Some(server));
}

/// The channel line (lossily UTF-8: a client library encodes text) and
/// the body.
fn split_input(data: &[u8]) -> (Option<String>, &[u8]) {
    match data.strip_prefix(b"#") {
        Some(rest) => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let channel = String::from_utf8_lossy(&rest[..end]).into_owned();
            (Some(channel), rest.get(end + 1..).unwrap_or_default())
        }
        None => (None, data),
    }
}

/// What the body holds, read independently of the handler.
enum Expected {
    /// Over the limit: 413.
    TooLarge,
    /// An array that does not parse (or is not UTF-8): 400 for the whole
    /// request.
    Broken,
    /// These items, each good (`true`) or bad.
    Items(Vec<bool>),
}

fn expected(body: &[u8], channel: Option<&str>) -> Expected {
    if body.len() > MAX_BYTES {
        return Expected::TooLarge;
    }
    let decode =
        |raw: &[u8]| Event::from_json(Bytes::copy_from_slice(raw), channel, MAX_BYTES).is_ok();
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return Expected::Items(vec![decode(body)]);
    }
    match serde_json::from_slice::<Vec<&RawValue>>(body) {
        Ok(items) => Expected::Items(
            items
                .iter()
                .map(|raw| decode(raw.get().as_bytes()))
                .collect(),
        ),
        Err(_) => Expected::Broken,
    }
}

fn check(
    server: &mut Server,
    channel: Option<&str>,
    body: &[u8],
    response: &warp::http::Response<Bytes>,
) {
    let status = response.status().as_u16();
    let expected = expected(body, channel);
    // Bad items are answered with their errors, but the answer stays in
    // proportion to the request: at most twice its size (escaping can
    // double a quoted value), plus an offset per good item (`[{},{}]` on
    // the health channel is two events), plus a fixed allowance.
    let good = match &expected {
        Expected::Items(items) => items.iter().filter(|g| **g).count(),
        _ => 0,
    };
    let limit = body
        .len()
        .saturating_mul(2)
        .saturating_add(good.saturating_mul(OFFSET_BYTES))
        .saturating_add(ANSWER_ALLOWANCE);
    assert!(
        response.body().len() <= limit,
        "answer of {} bytes to a request of {} bytes with {good} good items",
        response.body().len(),
        body.len()
    );
    let answer: Value = match serde_json::from_slice(response.body()) {
        Ok(answer) => answer,
        Err(e) => panic!("{status} answer is not JSON: {e}"),
    };
    assert!(status < 500, "{status}: {answer}");
    match expected {
        Expected::TooLarge => {
            assert_eq!(status, 413, "{answer}");
            assert_eq!(answer["error"], "too_large");
        }
        Expected::Broken => {
            // 413 when the array holds more items than allowed before the
            // point where it stops parsing.
            assert!(matches!(status, 400 | 413), "{status}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }
        Expected::Items(items) => {
            let good = items.iter().filter(|g| **g).count();
            if matches!(status, 400 | 413) && answer.get("accepted").is_none() {
                // A refusal of the request as a whole (a bound on what one
                // request may hold, such as the number of items).
                assert!(answer["error"].is_string(), "{answer}");
                return;
            }
            let accepted = answer["accepted"]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok());
            assert_eq!(accepted, Some(good), "{answer}");
            let offsets = offsets(&answer);
            assert_eq!(
                offsets.len(),
                good,
                "one offset per accepted item: {answer}"
            );
            // A repeated idempotency key (`event_id`) answers the first
            // event's offset again: only those may not increase.
            let duplicates = answer["duplicates"].as_u64().unwrap_or(0);
            let mut repeated = 0;
            for offset in &offsets {
                if server.last_offset < Some(*offset) {
                    server.last_offset = Some(*offset);
                } else {
                    repeated += 1;
                }
            }
            assert!(
                repeated <= duplicates,
                "offsets must increase but for duplicates: {answer}"
            );
            if good == items.len() {
                assert_eq!(status, 202, "{answer}");
                assert!(answer.get("errors").is_none(), "{answer}");
            } else {
                assert_eq!(status, 400, "{answer}");
                check_errors(&items, &answer);
            }
            if let (Some(event), [true]) = (body_event(body, channel), items.as_slice()) {
                event_json::check_event(&event, body, channel);
            }
        }
    }
}

/// Bytes an answer may have beyond twice the request's and its offsets:
/// the listed errors' fixed text (a hundred at most), the envelope.
const ANSWER_ALLOWANCE: usize = 64 * 1024;
/// The longest offset in an answer: two `u64`s, a dash, quotes, a comma.
const OFFSET_BYTES: usize = 2 * 20 + 4;

/// The errors list names bad items only, in order, starting with the
/// first; those not listed are counted in `errors_omitted`.
fn check_errors(items: &[bool], answer: &Value) {
    let bad: Vec<usize> = (0..items.len()).filter(|&i| !items[i]).collect();
    let Some(errors) = answer["errors"].as_array() else {
        panic!("400 without errors: {answer}");
    };
    assert!(!errors.is_empty(), "{answer}");
    let omitted = answer.get("errors_omitted").and_then(Value::as_u64);
    let counted = errors
        .len()
        .saturating_add(omitted.map_or(0, |n| n as usize));
    assert_eq!(counted, bad.len(), "errors + errors_omitted: {answer}");
    for (error, &index) in errors.iter().zip(&bad) {
        assert_eq!(
            error["index"].as_u64(),
            u64::try_from(index).ok(),
            "{answer}"
        );
        assert!(
            error["reason"].is_string() && error["error"].is_string(),
            "{answer}"
        );
    }
}

fn offsets(answer: &Value) -> Vec<Offset> {
    let Some(list) = answer["offsets"].as_array() else {
        panic!("no offsets: {answer}");
    };
    list.iter()
        .map(|o| match o.as_str().map(str::parse::<Offset>) {
            Some(Ok(offset)) => offset,
            _ => panic!("bad offset {o} in {answer}"),
        })
        .collect()
}

/// A single-object body as an event, to check its fields too.
fn body_event(body: &[u8], channel: Option<&str>) -> Option<Event> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return None;
    }
    Event::from_json(Bytes::copy_from_slice(body), channel, MAX_BYTES).ok()
}

/// Arrays of events (good, bad, mixed), single events, deep and broken
/// arrays, bodies around the size limit, with or without a channel.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if u.ratio(1, 4)? {
        let channel = u.choose(&[
            "tickstock.health.status",
            "tickstock.events.patterns",
            "unknown.channel",
            "",
            "a&b=c",
            "é,%2C",
        ])?;
        out.extend_from_slice(format!("#{channel}\n").as_bytes());
    }
    match u.int_in_range(0..=10)? {
        0..=3 => {
            let count = *u.choose(&[0usize, 1, 2, 5, 50, 2_000])?;
            out.push(b'[');
            for i in 0..count {
                if i > 0 {
                    out.push(b',');
                }
                let item = if i < 8 {
                    event_json::event_object(u)?
                } else {
                    GOOD.to_owned()
                };
                out.extend_from_slice(item.as_bytes());
            }
            out.push(b']');
            if u.ratio(1, 8)? {
                out.pop();
            }
        }
        4 => {
            // Many minimal events: `{}` is a whole event on the health
            // channel; around the item limit.
            let count = *u.choose(&[1_000usize, 9_999, 10_000, 10_001])?;
            if out.is_empty() {
                out.extend_from_slice(b"#tickstock.health.status\n");
            }
            out.push(b'[');
            out.extend_from_slice(&vec![&b"{}"[..]; count].join(&b","[..]));
            out.push(b']');
        }
        5 => out.extend(event_json::generate(u)?),
        6 => out.extend_from_slice(crate::gen::nested(u, GOOD)?.as_bytes()),
        _ => out.extend_from_slice(event_json::event_object(u)?.as_bytes()),
    }
    Ok(out)
}

/// An event every server accepts.
const GOOD: &str = r#"{"symbol":"AAPL","pattern":"Doji","tier":"daily","confidence":0.9}"#;

/// Fixture bodies alone, in arrays (all good, and good mixed with bad), on
/// their channels.
fn built_seeds() -> Vec<Vec<u8>> {
    let good = sample(tickcast_testkit::good_events(), FIXTURE_SAMPLE / 2);
    let bad = tickcast_testkit::bad_events();
    let mut seeds: Vec<Vec<u8>> = good
        .iter()
        .map(|e| [format!("#{}\n", e.channel).as_bytes(), &e.raw].concat())
        .collect();
    seeds.extend(bad.iter().map(|e| e.raw.clone()));
    let array = |items: &[&[u8]]| [b"[".as_slice(), &items.join(&b","[..]), b"]"].concat();
    let goods: Vec<&[u8]> = good.iter().take(50).map(|e| e.raw.as_slice()).collect();
    seeds.push(array(&goods));
    let mut mixed = goods.clone();
    for (i, e) in bad.iter().filter(|e| e.raw.len() < 4096).enumerate() {
        mixed.insert((i * 3).min(mixed.len()), &e.raw);
    }
    seeds.push(array(&mixed));
    // Unknown tiers of control characters, which escape to six bytes each
    // when quoted: a regression seed for error amplification (500 KB, too
    // large to commit as a file).
    let item = format!(
        r#"{{"symbol":"A","pattern":"P","tier":"{}"}}"#,
        "\u{7f}".repeat(50_000)
    );
    seeds.push(array(&[item.as_bytes(); 10]));
    seeds
}
