//! `GET /`: the demo page, one HTML file built into the binary with no
//! external resources (it must work on machines without internet). Its
//! script runs on the JavaScript client the server also serves
//! ([`super::client_js`], `/client/tickcast.js`).

use warp::filters::BoxedFilter;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::reply::Response;
use warp::{Filter, Reply};

/// The page: a filter form, a live table, WebSocket or SSE through the
/// JavaScript client (reconnect, resume, SSE fallback).
pub const PAGE: &str = include_str!("demo/index.html");

/// The route.
pub fn route() -> BoxedFilter<(Response,)> {
    warp::path::end()
        .and(warp::get())
        .map(|| {
            let mut response = PAGE.into_response();
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                warp::http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                CACHE_CONTROL,
                warp::http::HeaderValue::from_static("no-cache"),
            );
            response
        })
        .boxed()
}
