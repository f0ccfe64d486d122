//! CORS for the HTTP API (`[api] cors_origins`, none by default).
//!
//! Browsers may send a cross-origin `POST` with a "simple" content type
//! without asking; `/api/publish` refuses those types (415), so a page can
//! publish only after a preflight this module answers. Listed origins get
//! the `Access-Control-*` headers; any other origin gets a 403 on the
//! preflight and on `POST /api/publish` itself. Requests without `Origin`
//! (curl, producers, anything not a browser) are not CORS and pass.
//!
//! warp's own `cors()` allows every origin when none is configured, the
//! opposite of the default wanted here, hence this small policy.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::header::{self, HeaderValue};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use tickcast_core::auth::AllowedOrigins;

use super::error::ApiError;

/// Methods a preflight may ask for.
const METHODS: &str = "GET, POST";
/// Request headers a preflight may ask for.
const HEADERS: [&str; 2] = ["authorization", "content-type"];
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE_S: &str = "600";

/// The origins whose pages may call the API: [`AllowedOrigins`], with none
/// as the default.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: AllowedOrigins,
}

impl Default for CorsPolicy {
    fn default() -> Self {
        Self {
            origins: AllowedOrigins::none(),
        }
    }
}

impl CorsPolicy {
    /// The policy of validated `[api] cors_origins`; an entry that does not
    /// parse (validation refuses those) allows nothing.
    pub fn new(origins: &[String]) -> Self {
        Self {
            origins: AllowedOrigins::parse(origins).unwrap_or_else(|_| AllowedOrigins::none()),
        }
    }

    /// Passes requests without `Origin` or from a listed one; 403 else.
    fn check(&self, origin: Option<&HeaderValue>) -> Result<(), ApiError> {
        match origin {
            None => Ok(()),
            Some(origin) if origin.to_str().is_ok_and(|o| self.origins.allows(Some(o))) => Ok(()),
            Some(origin) => Err(forbidden(origin)),
        }
    }
}

fn forbidden(origin: &HeaderValue) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cors_forbidden",
        format!(
            "origin {} may not call this API (api.cors_origins)",
            String::from_utf8_lossy(origin.as_bytes())
        ),
    )
}

/// Rejects a browser request from an origin the policy does not list; for
/// routes with effects (`POST /api/publish`), before they run.
pub fn guard(policy: Arc<CorsPolicy>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let checked = policy
                .check(headers.get(header::ORIGIN))
                .map_err(warp::reject::custom);
            async move { checked }
        })
        .untuple_one()
}

/// `routes` with CORS: preflights (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) answered, and the allow headers added to
/// the answers of listed origins.
pub fn wrap(policy: Arc<CorsPolicy>, routes: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    let decorate = policy.clone();
    let answered = warp::header::headers_cloned().and(routes).map(
        move |headers: HeaderMap, response: Response| {
            with_allow_origin(&decorate, headers.get(header::ORIGIN), response)
        },
    );
    preflight(policy).or(answered).unify().boxed()
}

fn with_allow_origin(
    policy: &CorsPolicy,
    origin: Option<&HeaderValue>,
    mut response: Response,
) -> Response {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin.filter(|o| policy.check(Some(o)).is_ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    response
}

/// Answers preflight requests: 204 with the allow headers for a listed
/// origin asking for an allowed method and headers, 403 JSON otherwise.
fn preflight(policy: Arc<CorsPolicy>) -> BoxedFilter<(Response,)> {
    // Not `warp::options()`: its 405 for other methods would outrank the
    // 404 of a request that matches no route at all.
    warp::method()
        .and(warp::header::headers_cloned())
        .and_then(move |method: Method, headers: HeaderMap| {
            let answer = match method == Method::OPTIONS && is_preflight(&headers) {
                true => Ok(answer_preflight(&policy, &headers)),
                false => Err(warp::reject::not_found()),
            };
            async move { answer }
        })
        .boxed()
}

fn is_preflight(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn answer_preflight(policy: &CorsPolicy, headers: &HeaderMap) -> Response {
    let origin = headers.get(header::ORIGIN);
    if let Err(error) = policy.check(origin) {
        return error.into_response();
    }
    let method_ok = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .is_some_and(|m| m == Method::GET || m == Method::POST);
    let headers_ok = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .map(|h| h.to_str().unwrap_or("\u{0}"))
        .is_none_or(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .all(|h| HEADERS.iter().any(|a| a.eq_ignore_ascii_case(h)))
        });
    if !method_ok || !headers_ok {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cors_forbidden",
            format!(
                "preflight may ask for {METHODS} with headers {}",
                HEADERS.join(", ")
            ),
        )
        .into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    if let Some(origin) = origin {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE_S),
    );
    out.insert(header::VARY, HeaderValue::from_static("origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(policy: &CorsPolicy, origin: &'static str) -> bool {
        policy
            .check(Some(&HeaderValue::from_static(origin)))
            .is_ok()
    }

    #[test]
    fn lists_origins_case_insensitively_and_none_by_default() {
        let none = CorsPolicy::default();
        assert!(!allows(&none, "https://a.example"));
        assert!(none.check(None).is_ok());
        let listed = CorsPolicy::new(&["https://App.example".into()]);
        assert!(allows(&listed, "https://app.example"));
        assert!(!allows(&listed, "https://app.example:8443"));
        assert!(!allows(&listed, "http://app.example"));
        let any = CorsPolicy::new(&["*".into()]);
        assert!(allows(&any, "https://whatever.example"));
    }
}
