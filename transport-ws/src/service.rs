//! [`ws_service`]: the endpoint as a tower [`Service`], for hyper and axum
//! apps that do not run warp.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Empty;
use tickcast_core::Hub;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::http::Request;
use warp::reply::Response;
use warp::Filter;

use crate::{prepare_upgrade, ws_route, WsConfig};

/// `GET /ws` as a tower [`Service`]; see [`ws_service`].
#[derive(Clone)]
pub struct WsService {
    route: BoxedFilter<(Response,)>,
}

impl std::fmt::Debug for WsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsService").finish_non_exhaustive()
    }
}

/// The WebSocket endpoint as a tower [`Service`] taking any request body:
/// mount it where the app routes `GET /ws` (axum:
/// `Router::new().route_service("/ws", ws_service(hub, config))`; hyper:
/// through `hyper_util::service::TowerToHyperService`). It takes the lean
/// upgrade path (small buffers) when the server supports upgrades, as
/// hyper and axum do. Other requests get 404.
pub fn ws_service(hub: Hub, config: WsConfig) -> WsService {
    let route = ws_route(hub, config)
        .map(warp::Reply::into_response)
        .boxed();
    WsService { route }
}

impl<B> Service<Request<B>> for WsService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        prepare_upgrade(&mut request);
        // A handshake has no body: the app's body type need not be one
        // warp takes.
        let request = request.map(|_| Empty::<Bytes>::new());
        Box::pin(warp::service(self.route.clone()).call(request))
    }
}
