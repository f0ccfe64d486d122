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

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tickcast_core::hub::PublishError;
use tickcast_core::ingest::{BrokerError, BrokerPublisher, SourceCounters};
use tickcast_core::model::{channel_for_event_type, DecodeError, Event, KNOWN_CHANNELS};
use tickcast_core::Hub;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::{json, ApiError};
use super::{auth, AppState};

/// The name of the hub source HTTP publishes are counted under.
pub const SOURCE: &str = "http";

/// Query of `POST /api/publish`.
#[derive(Debug, Deserialize)]
struct PublishQuery {
    /// The channel the events are published on; gives the event type of
    /// items without `event_type`.
    channel: Option<String>,
}

/// The route.
pub fn route(state: &AppState) -> BoxedFilter<(Response,)> {
    let publisher = Publisher {
        hub: state.hub.clone(),
        broker: state.broker.clone(),
        counters: state.hub.source(SOURCE),
        max_bytes: state.config.limits.max_publish_bytes,
    };
    warp::path!("api" / "publish")
        .and(warp::post())
        .and(auth::bearer(state.api_key.clone()))
        .and(warp::query::<PublishQuery>())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(move |query: PublishQuery, length: Option<u64>, body| {
            let publisher = publisher.clone();
            async move { publisher.handle(query.channel, length, body).await }
        })
        .boxed()
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
}

/// The answer to a publish whose events could be told apart.
#[derive(Debug, Default, Serialize)]
struct Outcome {
    accepted: usize,
    offsets: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ItemError>,
    /// Some event met a hub that is shutting down or a broker that is
    /// unreachable (503).
    #[serde(skip)]
    unavailable: bool,
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
    reason: &'static str,
}

impl Publisher {
    async fn handle<S, B>(self, channel: Option<String>, length: Option<u64>, body: S) -> Response
    where
        S: Stream<Item = Result<B, warp::Error>>,
        B: Buf,
    {
        if let Some(length) = length.filter(|&n| n > self.max_bytes as u64) {
            return self.too_large(length).into_response();
        }
        let body = match read_limited(body, self.max_bytes, length).await {
            Ok(body) => body,
            Err(BodyError::TooLarge(seen)) => return self.too_large(seen as u64).into_response(),
            Err(BodyError::Read(e)) => {
                return ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string())
                    .into_response()
            }
        };
        match self.publish(body, channel).await {
            Ok(outcome) => json(outcome.status(), &outcome),
            Err(error) => error.into_response(),
        }
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
    async fn publish(&self, body: Bytes, channel: Option<String>) -> Result<Outcome, ApiError> {
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
                    good.push(event);
                    items.push(None);
                }
                Err(e) => items.push(Some((e.to_string(), e.reason()))),
            }
        }
        let published = match &self.broker {
            Some(broker) => forward(broker.as_ref(), good, channel.as_deref()).await,
            None => self.publish_here(good).await?,
        };
        Ok(self.account(items, published))
    }

    /// Splits the body into events and decodes each.
    fn decode(
        &self,
        body: &Bytes,
        channel: Option<&str>,
    ) -> Result<Vec<Result<Event, DecodeError>>, ApiError> {
        let items = split(body).inspect_err(|error| {
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
            .map(|raw| Event::from_json(raw, channel, self.max_bytes))
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
            .map(|r| r.map(|offset| Some(offset.to_string())).map_err(hub_error))
            .collect())
    }

    /// Merges decode errors (`items`, `Some` where malformed) with the
    /// results of the good ones, in request order, and counts them.
    fn account(
        &self,
        items: Vec<Option<(String, &'static str)>>,
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
                Ok(offset) => {
                    self.counters.accepted();
                    outcome.accepted += 1;
                    outcome.offsets.extend(offset);
                }
                Err((error, reason)) => {
                    if UNAVAILABLE.contains(&reason) {
                        outcome.unavailable = true;
                    } else {
                        self.counters.rejected(reason);
                    }
                    outcome.errors.push(ItemError {
                        index,
                        error,
                        reason,
                    });
                }
            }
        }
        if let Some(first) = outcome.errors.first() {
            tracing::warn!(
                source = SOURCE,
                rejected = outcome.errors.len(),
                accepted = outcome.accepted,
                reason = first.reason,
                "rejected published event(s); first at index {}: {}",
                first.index,
                first.error
            );
        }
        outcome
    }
}

/// The result of publishing one good event: its offset where one is known
/// now, or the error text and reason code.
type Published = Result<Option<String>, (String, &'static str)>;

const SHUTTING_DOWN: &str = "shutting_down";
const BROKER_UNAVAILABLE: &str = "broker_unavailable";
/// Reasons that are the server's state, not the item's fault (503).
const UNAVAILABLE: [&str; 2] = [SHUTTING_DOWN, BROKER_UNAVAILABLE];

fn hub_error(error: PublishError) -> (String, &'static str) {
    let reason = match error {
        PublishError::ShuttingDown => SHUTTING_DOWN,
        // The server runs its hub with node offsets when it publishes
        // straight to it, so the others cannot happen; say what they are if
        // they ever do.
        PublishError::OffsetRequired => "offset_required",
        PublishError::OffsetNotAccepted => "offset_not_accepted",
        PublishError::Stale { .. } => "stale",
    };
    (error.to_string(), reason)
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
            let channel = channel
                .or_else(|| channel_for_event_type(event.event_type()))
                .unwrap_or(KNOWN_CHANNELS[0].0);
            (channel.to_owned(), event.body().clone())
        })
        .collect();
    broker
        .publish_all(items)
        .await
        .into_iter()
        .map(|result| {
            result
                .map(|offset| offset.map(|o| o.to_string()))
                .map_err(|error| {
                    let reason = match error {
                        BrokerError::Unavailable(_) => BROKER_UNAVAILABLE,
                        BrokerError::Refused(_) => "broker_refused",
                    };
                    (format!("{}: {error}", broker.name()), reason)
                })
        })
        .collect()
}

/// The raw bytes of each event: the items of a top-level array, else the
/// whole body (which [`Event::from_json`] then judges, so a body that is
/// not JSON, not UTF-8 or too deep is a rejected item 0 with its reason).
fn split(body: &Bytes) -> Result<Vec<Bytes>, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Ok(vec![body.clone()]);
    }
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            DecodeError::NotUtf8.reason(),
            DecodeError::NotUtf8.to_string(),
        ));
    }
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        let error = DecodeError::NotJson(e.to_string());
        ApiError::new(StatusCode::BAD_REQUEST, error.reason(), error.to_string())
    })?;
    Ok(items
        .into_iter()
        .map(|raw| share(body, raw.get().as_bytes()))
        .collect())
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
        let items = split(&body).unwrap();
        assert_eq!(items, vec![&b"{\"a\": 1}"[..], &b"{\"b\" : [2]}"[..]]);
        let single = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(split(&single).unwrap(), vec![single.clone()]);
        assert_eq!(split(&Bytes::new()).unwrap(), vec![Bytes::new()]);
    }

    #[test]
    fn split_rejects_a_broken_array_as_a_whole() {
        let error = split(&Bytes::from_static(b"[{\"a\":1},")).unwrap_err();
        assert_eq!(error.code, "not_json");
        let error = split(&Bytes::from_static(b"[\xff]")).unwrap_err();
        assert_eq!(error.code, "not_utf8");
    }
}
