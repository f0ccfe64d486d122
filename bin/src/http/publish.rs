//! `POST /api/publish[?channel=C]`: the embedded HTTP ingest.
//!
//! The body is one event object or an array of them. Each event is decoded
//! from its own raw bytes (no re-serialization: clients receive exactly what
//! was published) and published in order. All accepted: 202
//! `{"accepted":n,"offsets":[..]}`. Any rejected: 400 with the same plus
//! `"errors":[{"index":i,"error":"...","reason":"..."}]`; the good ones are
//! published all the same. Errors about the request as a whole (too large,
//! an array that does not parse) are `{"error":"<code>","message":"..."}`.
//! Every outcome is counted on the hub's `http` source.
//!
//! Idempotency: an event's `event_id`, or the `Idempotency-Key` header of a
//! single-event publish, is its idempotency key. It travels with the event
//! (in the body, or beside it: AMQP `message_id`, a stream entry's `id`),
//! and every node drops a second event with a key it has seen within
//! `[ingest] dedup_window_s`; published straight to this node's hub, a
//! repeat answers 202 with the first one's offset (`duplicates` counts it).

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tickcast_core::hub::PublishError;
use tickcast_core::ingest::{BrokerError, BrokerPublisher, Outgoing, SourceCounters};
use tickcast_core::model::schema::Schema;
use tickcast_core::model::{DecodeError, Event};
use tickcast_core::Hub;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::error::{json, ApiError};
use super::{auth, cors, AppState};

/// The name of the hub source HTTP publishes are counted under.
pub const SOURCE: &str = "http";

/// The header that gives a single-event publish its idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest idempotency key, in bytes (AMQP's `message_id` holds 255).
pub const MAX_KEY_BYTES: usize = 255;

/// Query of `POST /api/publish`.
#[derive(Debug, Deserialize)]
struct PublishQuery {
    /// The channel the events are published on; gives the event type of
    /// items without `event_type`.
    channel: Option<String>,
}

/// The route.
pub fn route(state: &AppState) -> BoxedFilter<(Response,)> {
    let limits = &state.config.limits;
    let publisher = Publisher {
        hub: state.hub.clone(),
        broker: state.broker.clone(),
        counters: state.hub.register_source(SOURCE),
        max_bytes: limits.max_publish_bytes,
        max_items: limits.max_publish_items,
        body_timeout: Duration::from_millis(state.config.http.body_timeout_ms),
    };
    warp::path!("api" / "publish")
        .and(warp::post())
        .and(cors::guard(state.cors.clone()))
        .and(auth::publisher(state.publish_access.clone()))
        .and(json_content_type())
        .and(warp::query::<PublishQuery>())
        .and(warp::header::headers_cloned())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(
            move |query: PublishQuery,
                  headers: warp::http::HeaderMap,
                  length: Option<u64>,
                  body| {
                let publisher = publisher.clone();
                async move {
                    let key = match idempotency_key(&headers) {
                        Ok(key) => key,
                        Err(error) => return error.into_response(),
                    };
                    publisher.handle(query.channel, key, length, body).await
                }
            },
        )
        .boxed()
}

/// The `Idempotency-Key` header: absent, or 1 to [`MAX_KEY_BYTES`] bytes
/// of visible ASCII (it may travel as an AMQP `message_id`); 400
/// `bad_idempotency_key` otherwise, or when given twice.
fn idempotency_key(headers: &warp::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_idempotency_key",
            format!("Idempotency-Key {why}"),
        )
    };
    if values.next().is_some() {
        return Err(bad("must be given once"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_BYTES {
        return Err(bad(&format!("must be 1 to {MAX_KEY_BYTES} bytes")));
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must be visible ASCII characters (no spaces)"));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Passes `Content-Type: application/json` (any parameters); 415 otherwise.
/// Besides telling producers early that a body is not what we decode, it
/// keeps browsers from publishing cross-origin: a page can send `text/plain`
/// anywhere without asking, but `application/json` only after a CORS
/// preflight the server answers (see `cors`).
fn json_content_type() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|value: Option<String>| async move {
            let essence = value
                .as_deref()
                .map(|v| v.split(';').next().unwrap_or_default().trim());
            match essence {
                Some(e) if e.eq_ignore_ascii_case("application/json") => Ok(()),
                _ => Err(warp::reject::custom(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "POST /api/publish takes Content-Type: application/json (got {})",
                        value.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
                    ),
                ))),
            }
        })
        .untuple_one()
}

/// What a publish needs, cheap to clone per request.
#[derive(Clone)]
struct Publisher {
    hub: Hub,
    /// Where publishes go when a broker is configured (every node consuming
    /// it delivers them); `None`: straight to this node's hub.
    broker: Option<Arc<dyn BrokerPublisher>>,
    counters: Arc<SourceCounters>,
    max_bytes: usize,
    /// Most items in one array body.
    max_items: usize,
    /// Longest wait for the whole body.
    body_timeout: Duration,
}

/// The answer to a publish whose events could be told apart.
#[derive(Debug, Default, Serialize)]
struct Outcome {
    accepted: usize,
    offsets: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ItemError>,
    /// Rejected items beyond the first [`MAX_LISTED_ERRORS`], counted only:
    /// a body of a million bad items must not answer a million errors.
    #[serde(skip_serializing_if = "is_zero")]
    errors_omitted: usize,
    /// Accepted events that repeated the idempotency key of an event
    /// published within the window: not delivered again (their offset is
    /// the first one's).
    #[serde(skip_serializing_if = "is_zero")]
    duplicates: usize,
    /// Some event met a hub that is shutting down or a broker that is
    /// unreachable (503).
    #[serde(skip)]
    unavailable: bool,
}

/// Most item errors listed in one answer.
pub const MAX_LISTED_ERRORS: usize = 100;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Outcome {
    fn status(&self) -> StatusCode {
        if self.errors.is_empty() {
            StatusCode::ACCEPTED
        } else if self.unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

/// One rejected event of a publish.
#[derive(Debug, Serialize)]
struct ItemError {
    /// Position in the request (0 for a single object).
    index: usize,
    /// What is wrong.
    error: String,
    /// Stable code ([`DecodeError::reason`], or `shutting_down`).
    reason: Cow<'static, str>,
}

impl Publisher {
    async fn handle<S, B>(
        self,
        channel: Option<String>,
        key: Option<String>,
        length: Option<u64>,
        body: S,
    ) -> Response
    where
        S: Stream<Item = Result<B, warp::Error>>,
        B: Buf,
    {
        if let Some(length) = length.filter(|&n| n > self.max_bytes as u64) {
            return self.too_large(length).into_response();
        }
        let read = read_limited(body, self.max_bytes, length);
        let body = match tokio::time::timeout(self.body_timeout, read).await {
            Ok(Ok(body)) => body,
            Err(_elapsed) => return self.body_timed_out().into_response(),
            Ok(Err(BodyError::TooLarge(seen))) => {
                return self.too_large(seen as u64).into_response()
            }
            Ok(Err(BodyError::Read(e))) => {
                return ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string())
                    .into_response()
            }
        };
        match self.publish(body, channel, key).await {
            Ok(outcome) => json(outcome.status(), &outcome),
            Err(error) => error.into_response(),
        }
    }

    fn body_timed_out(&self) -> ApiError {
        self.counters.rejected("body_timeout");
        tracing::warn!(
            source = SOURCE,
            reason = "body_timeout",
            "rejected publish: the body did not arrive within {:?}",
            self.body_timeout
        );
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within http.body_timeout_ms = {}",
                self.body_timeout.as_millis()
            ),
        )
    }

    fn too_large(&self, size: u64) -> ApiError {
        self.counters.rejected("too_large");
        tracing::warn!(
            source = SOURCE,
            reason = "too_large",
            size,
            "rejected publish body"
        );
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "body of {size} bytes or more exceeds limits.max_publish_bytes = {}",
                self.max_bytes
            ),
        )
    }

    /// Decodes every item, hands the good ones to the broker or the hub,
    /// and accounts for each.
    async fn publish(
        &self,
        body: Bytes,
        channel: Option<String>,
        key: Option<String>,
    ) -> Result<Outcome, ApiError> {
        if key.is_some() && is_array(&body) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_with_array",
                "Idempotency-Key names one event: give each event of an array its own `event_id`",
            ));
        }
        let decoded = {
            let this = self.clone();
            let channel = channel.clone();
            // Decoding is CPU work: keep it off the async workers.
            tokio::task::spawn_blocking(move || this.decode(&body, channel.as_deref()))
                .await
                .map_err(|join| {
                    tracing::error!("publish task failed: {join}");
                    ApiError::internal("publish failed")
                })??
        };
        let mut items = Vec::with_capacity(decoded.len());
        let mut good = Vec::new();
        for item in decoded {
            match item {
                Ok(event) => {
                    let event = match &key {
                        Some(key) => self.keyed(event, key)?,
                        None => event,
                    };
                    good.push(event);
                    items.push(None);
                }
                Err(e) => items.push(Some((e.to_string(), Cow::Owned(e.reason().to_owned())))),
            }
        }
        let published = match &self.broker {
            Some(broker) => forward(broker.as_ref(), good, channel.as_deref()).await,
            None => self.publish_here(good).await?,
        };
        Ok(self.account(items, published))
    }

    /// The event with the header's key: refused when its own `event_id`
    /// says otherwise, or when the broker would carry neither to the nodes
    /// (Redis pub/sub sends the body alone).
    fn keyed(&self, event: Event, key: &str) -> Result<Event, ApiError> {
        match event.event_id() {
            Some(id) if id == key => Ok(event),
            Some(id) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_mismatch",
                format!("Idempotency-Key {key:?} differs from the event's event_id {id:?}"),
            )),
            None if self.broker.as_ref().is_some_and(|b| !b.carries_keys()) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_unsupported",
                "Redis pub/sub carries only the event body: put the key in the event's \
                     `event_id` instead of Idempotency-Key",
            )),
            None => Ok(event.with_idempotency_key(key)),
        }
    }

    /// Splits the body into events and decodes each.
    fn decode(
        &self,
        body: &Bytes,
        channel: Option<&str>,
    ) -> Result<Vec<Result<Event, DecodeError>>, ApiError> {
        let items = split(body, self.max_items).inspect_err(|error| {
            self.counters.rejected(error.code);
            tracing::warn!(
                source = SOURCE,
                reason = error.code,
                "rejected publish body: {}",
                error.message
            );
        })?;
        Ok(items
            .into_iter()
            .map(|raw| {
                self.hub
                    .config()
                    .schema
                    .decode(raw, channel, self.max_bytes)
            })
            .collect())
    }

    /// Straight to this node's hub, as one burst so each subscriber's
    /// writer is woken once for the whole body. Routing is CPU work under
    /// the publish lock: off the async workers.
    async fn publish_here(&self, good: Vec<Event>) -> Result<Vec<Published>, ApiError> {
        let hub = self.hub.clone();
        let results = tokio::task::spawn_blocking(move || hub.publish_all(good))
            .await
            .map_err(|join| {
                tracing::error!("publish task failed: {join}");
                ApiError::internal("publish failed")
            })?;
        Ok(results
            .into_iter()
            .map(|result| match result {
                Ok(offset) => Ok(Accepted::new(Some(offset.to_string()))),
                Err(PublishError::Duplicate { offset }) => Ok(Accepted {
                    offset: Some(offset.to_string()),
                    duplicate: true,
                }),
                Err(error) => Err(hub_error(error)),
            })
            .collect())
    }

    /// Merges decode errors (`items`, `Some` where malformed) with the
    /// results of the good ones, in request order, and counts them.
    fn account(
        &self,
        items: Vec<Option<(String, Cow<'static, str>)>>,
        published: Vec<Published>,
    ) -> Outcome {
        let mut published = published.into_iter();
        let mut outcome = Outcome::default();
        for (index, item) in items.into_iter().enumerate() {
            let result = match item {
                None => published
                    .next()
                    .unwrap_or_else(|| Err(hub_error(PublishError::ShuttingDown))),
                Some(malformed) => Err(malformed),
            };
            match result {
                Ok(accepted) => {
                    if accepted.duplicate {
                        self.counters.duplicate();
                        outcome.duplicates += 1;
                    } else {
                        self.counters.accepted();
                    }
                    outcome.accepted += 1;
                    outcome.offsets.extend(accepted.offset);
                }
                Err((error, reason)) => {
                    if UNAVAILABLE.contains(&&*reason) {
                        outcome.unavailable = true;
                    } else {
                        self.counters.rejected(&reason);
                    }
                    if outcome.errors.len() < MAX_LISTED_ERRORS {
                        outcome.errors.push(ItemError {
                            index,
                            error,
                            reason,
                        });
                    } else {
                        outcome.errors_omitted += 1;
                    }
                }
            }
        }
        if let Some(first) = outcome.errors.first() {
            tracing::warn!(
                source = SOURCE,
                rejected = outcome.errors.len() + outcome.errors_omitted,
                accepted = outcome.accepted,
                reason = &*first.reason,
                "rejected published event(s); first at index {}: {}",
                first.index,
                first.error
            );
        }
        outcome
    }
}

/// The result of publishing one good event, or the error text and reason
/// code.
type Published = Result<Accepted, (String, Cow<'static, str>)>;

/// A good event taken by the hub or the broker.
#[derive(Debug)]
struct Accepted {
    /// Its offset, where one is known now.
    offset: Option<String>,
    /// It repeated a key seen within the window: not delivered again.
    duplicate: bool,
}

impl Accepted {
    fn new(offset: Option<String>) -> Self {
        Self {
            offset,
            duplicate: false,
        }
    }
}

const SHUTTING_DOWN: &str = "shutting_down";
const BROKER_UNAVAILABLE: &str = "broker_unavailable";
const NO_RECEIVER: &str = "no_receiver";
/// Reasons that are the server's state, not the item's fault (503).
const UNAVAILABLE: [&str; 3] = [SHUTTING_DOWN, BROKER_UNAVAILABLE, NO_RECEIVER];

fn hub_error(error: PublishError) -> (String, Cow<'static, str>) {
    let reason = match error {
        PublishError::ShuttingDown => SHUTTING_DOWN,
        // The server runs its hub with node offsets when it publishes
        // straight to it, so the others cannot happen; say what they are if
        // they ever do.
        PublishError::OffsetRequired => "offset_required",
        PublishError::OffsetNotAccepted => "offset_not_accepted",
        PublishError::Stale { .. } => "stale",
        // Answered as accepted before it gets here.
        PublishError::Duplicate { .. } => "duplicate",
    };
    (error.to_string(), Cow::Borrowed(reason))
}

/// Publishes the good events' bodies, byte for byte, through the broker,
/// so every node consuming it delivers them. The channel (routing key) is
/// the request's, else the TickStockPL channel of the event's type, else
/// the patterns channel (the body then names its own `event_type`, which
/// wins over the channel).
async fn forward(
    broker: &dyn BrokerPublisher,
    good: Vec<Event>,
    channel: Option<&str>,
) -> Vec<Published> {
    let items = good
        .iter()
        .map(|event| {
            let channel = channel.unwrap_or_else(|| broker_channel(event.schema(), event));
            Outgoing {
                channel: channel.to_owned(),
                body: event.body().clone(),
                key: event.idempotency_key().map(str::to_owned),
            }
        })
        .collect();
    broker
        .publish_keyed(items)
        .await
        .into_iter()
        .map(|result| {
            result
                .map(|offset| Accepted::new(offset.map(|o| o.to_string())))
                .map_err(|error| {
                    let reason = match error {
                        BrokerError::Unavailable(_) => BROKER_UNAVAILABLE,
                        BrokerError::Refused(_) => "broker_refused",
                        BrokerError::NoReceiver(_) => NO_RECEIVER,
                    };
                    (format!("{}: {error}", broker.name()), Cow::Borrowed(reason))
                })
        })
        .collect()
}

/// True when the body is a JSON array (its first non-blank byte is `[`).
fn is_array(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// The raw bytes of each event: the items of a top-level array (at most
/// `max_items`), else the whole body (which [`Event::from_json`] then
/// judges, so a body that is not JSON, not UTF-8 or too deep is a rejected
/// item 0 with its reason).
/// The channel an event goes out on through a broker when the request
/// names none: its type's channel in the schema, else the schema's first
/// channel (the body names its own type, which wins), else the type itself.
fn broker_channel<'a>(schema: &'a Schema, event: &'a Event) -> &'a str {
    schema
        .channel_for_event_type(event.event_type())
        .or_else(|| schema.channels().next().map(|(c, _)| c))
        .unwrap_or(event.event_type())
}

fn split(body: &Bytes, max_items: usize) -> Result<Vec<Bytes>, ApiError> {
    if !is_array(body) {
        return Ok(vec![body.clone()]);
    }
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            DecodeError::NotUtf8.reason(),
            DecodeError::NotUtf8.to_string(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let exceeded = Cell::new(false);
    let seed = LimitedItems {
        max: max_items,
        exceeded: &exceeded,
    };
    let items = seed
        .deserialize(&mut deserializer)
        .and_then(|items| deserializer.end().map(|()| items))
        .map_err(|e| match exceeded.get() {
            true => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_items",
                format!("an array of more than limits.max_publish_items = {max_items} events"),
            ),
            false => ApiError::new(
                StatusCode::BAD_REQUEST,
                "not_json",
                DecodeError::NotJson(e.to_string()).to_string(),
            ),
        })?;
    Ok(items
        .into_iter()
        .map(|raw| share(body, raw.get().as_bytes()))
        .collect())
}

/// A JSON array of raw items, refused as soon as it holds more than `max`
/// (and `exceeded` set): the count is known before the rest of a huge
/// array is looked at.
struct LimitedItems<'a> {
    max: usize,
    exceeded: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for LimitedItems<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LimitedItems<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an array of at most {} events", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max {
                self.exceeded.set(true);
                return Err(serde::de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// `item` as a view into `body` when it lies inside it (serde_json borrows
/// raw values from its input, so it does), else as a copy: never a panic.
fn share(body: &Bytes, item: &[u8]) -> Bytes {
    let start = body.as_ptr() as usize;
    let at = item.as_ptr() as usize;
    if at >= start && at + item.len() <= start + body.len() {
        body.slice_ref(item)
    } else {
        Bytes::copy_from_slice(item)
    }
}

enum BodyError {
    /// More than the limit arrived (at least this many bytes).
    TooLarge(usize),
    /// The connection failed mid-body.
    Read(warp::Error),
}

/// Reads the whole body, refusing more than `max` bytes even when no
/// content-length was sent (chunked).
async fn read_limited<S, B>(body: S, max: usize, length: Option<u64>) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let hint = length.map_or(0, |n| usize::try_from(n).unwrap_or(max).min(max));
    let mut buf = BytesMut::with_capacity(hint);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        let size = buf.len() + chunk.remaining();
        if size > max {
            return Err(BodyError::TooLarge(size));
        }
        buf.put(chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_each_item_verbatim() {
        let body = Bytes::from_static(b" [ {\"a\": 1} , {\"b\" : [2]} ] ");
        let items = split(&body, 10).unwrap();
        assert_eq!(items, vec![&b"{\"a\": 1}"[..], &b"{\"b\" : [2]}"[..]]);
        let single = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(split(&single, 10).unwrap(), vec![single.clone()]);
        assert_eq!(split(&Bytes::new(), 10).unwrap(), vec![Bytes::new()]);
    }

    #[test]
    fn split_rejects_a_broken_array_as_a_whole() {
        let error = split(&Bytes::from_static(b"[{\"a\":1},"), 10).unwrap_err();
        assert_eq!(error.code, "not_json");
        let error = split(&Bytes::from_static(b"[\xff]"), 10).unwrap_err();
        assert_eq!(error.code, "not_utf8");
        let error = split(&Bytes::from_static(b"[1] [2]"), 10).unwrap_err();
        assert_eq!(error.code, "not_json");
    }

    #[test]
    fn split_refuses_arrays_over_the_item_limit() {
        let three = Bytes::from_static(b"[1, {\"a\":[2]}, 3]");
        assert_eq!(split(&three, 3).unwrap().len(), 3);
        let error = split(&three, 2).unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error.code, "too_many_items");
    }
}
