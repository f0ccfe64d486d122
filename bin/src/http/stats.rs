//! `GET /api/stats`: the hub's [`HubStats`](tickcast_core::hub::HubStats)
//! snapshot as JSON.

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::json;
use super::AppState;

/// The route.
pub fn route(state: &AppState) -> BoxedFilter<(Response,)> {
    let hub = state.hub.clone();
    warp::path!("api" / "stats")
        .and(warp::get())
        .map(move || json(StatusCode::OK, &hub.stats()))
        .boxed()
}
