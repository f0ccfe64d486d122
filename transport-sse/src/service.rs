//! [`sse_service`]: the endpoint as a tower [`Service`], for hyper and
//! axum apps that do not run warp.

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

use crate::{sse_route, SseConfig};

/// `GET /sse` as a tower [`Service`]; see [`sse_service`].
#[derive(Clone)]
pub struct SseService {
    route: BoxedFilter<(Response,)>,
}

impl std::fmt::Debug for SseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseService").finish_non_exhaustive()
    }
}

/// The SSE endpoint as a tower [`Service`] taking any request body: mount
/// it where the app routes `GET /sse` (axum:
/// `Router::new().route_service("/sse", sse_service(hub, config))`;
/// hyper: through `hyper_util::service::TowerToHyperService`). A
/// [`SocketAbort`](tickcast_core::session::SocketAbort) in the request's
/// extensions is honoured as on warp. Other requests get 404.
pub fn sse_service(hub: Hub, config: SseConfig) -> SseService {
    SseService {
        route: sse_route(hub, config).boxed(),
    }
}

impl<B> Service<Request<B>> for SseService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // `GET /sse` has no body: the app's body type need not be one warp
        // takes.
        let request = request.map(|_| Empty::<Bytes>::new());
        Box::pin(warp::service(self.route.clone()).call(request))
    }
}
