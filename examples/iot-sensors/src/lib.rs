//! A service that is not about stocks embeds tickcast: sensors publish
//! readings, dashboards subscribe over WebSocket or SSE to the sensors,
//! sites and temperature bands they watch.
//!
//! Everything TickStock-specific is replaced by one declaration,
//! [`schema`]: the dimensions `sensor` (text), `site` (a closed vocabulary),
//! `celsius` and `humidity` (numbers with ranges). Filters, the index, the
//! route cache and the SSE query follow from it:
//!
//! ```text
//! WS:  {"op":"subscribe","id":"hot","filter":{"sites":["north"],"min_celsius":30}}
//! SSE: GET /sse?sensors=t-1,t-2&max_humidity=40
//! ```

use std::sync::Arc;

use bytes::Bytes;
use tickcast_core::model::schema::{Case, DimensionDecl, Schema, SchemaDecl, SchemaError};
use tickcast_core::model::DEFAULT_MAX_BODY_BYTES;
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_sse::{sse_route, SseConfig};
use tickcast_transport_ws::{ws_route, WsConfig};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// The sites a sensor can be at.
pub const SITES: [&str; 3] = ["north", "south", "lab"];

/// The sensors' schema. A reading such as
/// `{"sensor":"T-1","site":"north","celsius":31.5,"humidity":40}` gets
/// priority from its temperature (hot readings are critical and skip
/// batching), and readings without `event_type` are `reading`s.
pub fn schema() -> Result<Arc<Schema>, SchemaError> {
    SchemaDecl::new("iot")
        .default_event_type("reading")
        .dimension(
            DimensionDecl::text("sensor")
                .case(Case::Lower)
                .max_chars(64)
                .required_for(["reading"]),
        )
        .dimension(DimensionDecl::choice("site", SITES))
        .dimension(DimensionDecl::number("celsius", -60.0, 200.0))
        .dimension(DimensionDecl::number("humidity", 0.0, 100.0))
        .priority_from("celsius", 25.0, 35.0, 45.0)
        .conflate(["sensor"])
        .build()
}

/// A hub serving [`schema`], batching nothing.
pub fn hub() -> Result<Hub, SchemaError> {
    let mut config = HubConfig::immediate();
    config.schema = schema()?;
    Ok(Hub::new(config))
}

/// `GET /ws`, `GET /sse` and `POST /readings` over `hub`.
pub fn routes(hub: Hub) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let publisher = hub.clone();
    let readings = warp::path!("readings")
        .and(warp::post())
        .and(warp::body::bytes())
        .map(move |body: Bytes| publish(&publisher, body));
    ws_route(hub.clone(), WsConfig::default())
        .or(sse_route(hub, SseConfig::default()))
        .or(readings)
}

/// Decodes a reading with the hub's schema and publishes it.
fn publish(hub: &Hub, body: Bytes) -> warp::reply::WithStatus<String> {
    let decoded = hub
        .config()
        .schema
        .decode(body, None, DEFAULT_MAX_BODY_BYTES);
    match decoded.map(|event| hub.publish(event)) {
        Ok(Ok(offset)) => reply(StatusCode::ACCEPTED, format!("{offset}\n")),
        Ok(Err(error)) => reply(StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")),
        Err(error) => reply(StatusCode::BAD_REQUEST, format!("{error}\n")),
    }
}

fn reply(status: StatusCode, text: String) -> warp::reply::WithStatus<String> {
    warp::reply::with_status(text, status)
}
