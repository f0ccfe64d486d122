//! Who the client is and where it comes from: the `Origin` of the upgrade
//! request, checked before the upgrade (a refused page gets a plain 403),
//! and its token, verified once the socket is open (so a refusal can be a
//! close code the browser sees).

use tickcast_core::auth::{presented_token, AllowedOrigins};
use tickcast_core::protocol::ErrorCode;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

/// The token of the request as every transport reads it
/// ([`presented_token`]: `?token=`, else `Authorization: Bearer`).
pub(crate) fn credentials(
) -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    query.and(optional_header("authorization")).map(
        |query: Option<String>, authorization: Option<HeaderValue>| {
            presented_token(
                query.as_deref(),
                authorization.as_ref().map(HeaderValue::as_bytes),
            )
        },
    )
}

/// A header's raw value, if present; never rejects (a value that is not
/// text is the caller's to judge).
pub(crate) fn optional_header(
    name: &'static str,
) -> impl Filter<Extract = (Option<HeaderValue>,), Error = std::convert::Infallible> + Clone {
    warp::header::value(name)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// The 403 answer for a request whose `Origin` is not allowed; `None` when
/// it may proceed. A value that is not text is judged as the replacement
/// characters it decodes to (refused by any list).
pub(crate) fn origin_refusal(
    allowed: &AllowedOrigins,
    origin: Option<&HeaderValue>,
) -> Option<Response> {
    let origin = origin.map(|v| String::from_utf8_lossy(v.as_bytes()));
    let message = allowed.refusal(origin.as_deref())?;
    let body = serde_json::json!({
        "error": ErrorCode::Forbidden.as_str(),
        "message": message,
    });
    Some(warp::reply::with_status(warp::reply::json(&body), StatusCode::FORBIDDEN).into_response())
}
