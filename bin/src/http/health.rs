//! `GET /health` (the process is alive) and `GET /ready` (it can do its
//! job: every ingest source is connected and it is not shutting down).

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::json;
use super::AppState;

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    node_id: &'a str,
    version: &'static str,
}

/// One ingest source, as `/ready` lists it.
#[derive(Serialize)]
struct SourceState {
    name: String,
    connected: bool,
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    shutting_down: bool,
    sources: Vec<SourceState>,
}

/// `GET /health`: 200 while the process answers.
pub fn health(state: &AppState) -> BoxedFilter<(Response,)> {
    let node_id = state.config.node_id.clone();
    warp::path!("health")
        .and(warp::get())
        .map(move || {
            let body = Health {
                status: "ok",
                node_id: &node_id,
                version: env!("CARGO_PKG_VERSION"),
            };
            json(StatusCode::OK, &body)
        })
        .boxed()
}

/// `GET /ready`: 200 when every ingest source is connected, else 503; the
/// body lists the sources either way.
pub fn ready(state: &AppState) -> BoxedFilter<(Response,)> {
    let hub = state.hub.clone();
    warp::path!("ready")
        .and(warp::get())
        .map(move || {
            let shutting_down = hub.is_shut_down();
            let ready = !shutting_down && hub.sources_ready();
            let body = Readiness {
                ready,
                shutting_down,
                sources: hub
                    .source_stats()
                    .into_iter()
                    .map(|s| SourceState {
                        name: s.name,
                        connected: s.connected,
                    })
                    .collect(),
            };
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &body)
        })
        .boxed()
}
