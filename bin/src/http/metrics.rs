//! `GET /metrics`: Prometheus text exposition (see [`crate::metrics`]).

use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::AppState;

/// Content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route.
pub fn route(state: &AppState) -> BoxedFilter<(Response,)> {
    let hub = state.hub.clone();
    let exporter = state.metrics.clone();
    warp::path!("metrics")
        .and(warp::get())
        .map(move || {
            let mut response = exporter.render(&hub).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        })
        .boxed()
}
