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
use tickcast_core::ingest::SourceCounters;
use tickcast_core::model::{DecodeError, Event};
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
    /// Some event met a hub that is shutting down (503).
    #[serde(skip)]
    shutting_down: bool,
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
        // Decoding and publishing are CPU work under the hub's publish lock:
        // keep them off the async workers.
        let outcome =
            tokio::task::spawn_blocking(move || self.publish(body, channel.as_deref())).await;
        match outcome {
            Ok(Ok(outcome)) => {
                let status = if outcome.errors.is_empty() {
                    StatusCode::ACCEPTED
                } else if outcome.shutting_down {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_REQUEST
                };
                json(status, &outcome)
            }
            Ok(Err(error)) => error.into_response(),
            Err(join) => {
                tracing::error!("publish task failed: {join}");
                ApiError::internal("publish failed").into_response()
            }
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

    /// Splits the body into events, decodes and publishes each.
    fn publish(&self, body: Bytes, channel: Option<&str>) -> Result<Outcome, ApiError> {
        let items = match split(&body) {
            Ok(items) => items,
            Err(error) => {
                self.counters.rejected(error.code);
                tracing::warn!(
                    source = SOURCE,
                    reason = error.code,
                    "rejected publish body: {}",
                    error.message
                );
                return Err(error);
            }
        };
        // Decode everything, then publish the good ones as one burst so
        // each subscriber's writer is woken once for the whole body.
        let mut good = Vec::with_capacity(items.len());
        let mut malformed: Vec<Option<DecodeError>> = Vec::with_capacity(items.len());
        for raw in items {
            match Event::from_json(raw, channel, self.max_bytes) {
                Ok(event) => {
                    good.push(event);
                    malformed.push(None);
                }
                Err(e) => malformed.push(Some(e)),
            }
        }
        let mut published_good = self.hub.publish_all(good).into_iter();
        let mut outcome = Outcome::default();
        for (index, item) in malformed.into_iter().enumerate() {
            let published = match item {
                None => match published_good.next() {
                    Some(result) => result.map_err(publish_error),
                    None => Err(publish_error(PublishError::ShuttingDown)),
                },
                Some(e) => Err((e.to_string(), e.reason())),
            };
            match published {
                Ok(offset) => {
                    self.counters.accepted();
                    outcome.accepted += 1;
                    outcome.offsets.push(offset.to_string());
                }
                Err((error, reason)) => {
                    if reason == SHUTTING_DOWN {
                        outcome.shutting_down = true;
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
        Ok(outcome)
    }
}

const SHUTTING_DOWN: &str = "shutting_down";

fn publish_error(error: PublishError) -> (String, &'static str) {
    let reason = match error {
        PublishError::ShuttingDown => SHUTTING_DOWN,
        // The server runs its hub with node offsets, so the others cannot
        // happen; say what they are if they ever do.
        PublishError::OffsetRequired => "offset_required",
        PublishError::OffsetNotAccepted => "offset_not_accepted",
        PublishError::Stale { .. } => "stale",
    };
    (error.to_string(), reason)
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
