//! The HTTP surface: the API (publish, health, ready, metrics, stats) and
//! the transports' endpoints, assembled into one warp filter by [`routes`].
//!
//! Every route yields a [`Response`], so routes compose with `.or()` and
//! `.unify()`; [`error::recover`] turns every rejection into a JSON error at
//! the very end, after the transports, so their rejections get JSON bodies
//! too.

pub mod auth;
pub mod client_js;
pub mod cors;
pub mod demo;
pub mod error;
pub mod health;
pub mod metrics;
pub mod publish;
pub mod state;
pub mod stats;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

pub use state::AppState;

/// Every endpoint of the server, with JSON errors for anything that does
/// not match.
pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let api = publish::route(state)
        .or(health::health(state))
        .unify()
        .or(health::ready(state))
        .unify()
        .or(metrics::route(state))
        .unify()
        .or(stats::route(state))
        .unify()
        .boxed();
    let pages = cors::wrap(state.cors.clone(), api)
        .or(demo::route())
        .unify()
        .or(client_js::route())
        .unify()
        .boxed();
    mount_transports(pages, state)
        .recover(error::recover)
        .unify()
        .boxed()
}

/// Where the transports join the routes: each of
/// [`transports::built`](crate::transports::built) exposes a warp filter
/// over the hub, `.or()`-ed in here. Transports answer their own errors
/// (bad query, auth) themselves; what they reject goes on to
/// [`error::recover`].
pub fn mount_transports(
    routes: BoxedFilter<(Response,)>,
    state: &AppState,
) -> BoxedFilter<(Response,)> {
    crate::transports::built()
        .iter()
        .fold(routes, |routes, transport| {
            routes.or((transport.route)(state)).unify().boxed()
        })
}
