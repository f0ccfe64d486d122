//! JSON errors: [`ApiError`] and [`recover`], which turns every rejection
//! (ours and warp's) into a `{"error":"<code>","message":"..."}` body, so no
//! client ever sees warp's plain-text defaults.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reject::{
    InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader, PayloadTooLarge,
    Reject, UnsupportedMediaType,
};
use warp::reply::Response;
use warp::{Rejection, Reply};

/// An error answered as JSON; also a warp rejection, so filters (ours and
/// the transports') can reject with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code for programs (`unauthorized`, `not_json`, ...).
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

impl Reject for ApiError {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 401: a bearer token is required and was missing or wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <api key>` header is required",
        )
    }

    /// 500: something on our side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        let mut response = json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `value` as a JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

/// Answers any rejection with a JSON error.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(from_rejection(&rejection).into_response())
}

fn from_rejection(rejection: &Rejection) -> ApiError {
    if let Some(error) = rejection.find::<ApiError>() {
        return error.clone();
    }
    if rejection.is_not_found() {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    }
    if rejection.find::<MethodNotAllowed>().is_some() {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that HTTP method",
        );
    }
    if rejection.find::<InvalidQuery>().is_some() {
        return ApiError::new(StatusCode::BAD_REQUEST, "bad_query", "invalid query string");
    }
    if let Some(missing) = rejection.find::<MissingHeader>() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("missing header {}", missing.name()),
        );
    }
    if let Some(invalid) = rejection.find::<InvalidHeader>() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid header {}", invalid.name()),
        );
    }
    if rejection.find::<PayloadTooLarge>().is_some() {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        );
    }
    if rejection.find::<LengthRequired>().is_some() {
        return ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a content-length header is required",
        );
    }
    if rejection.find::<UnsupportedMediaType>().is_some() {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "unsupported content-type",
        );
    }
    if rejection
        .find::<warp::filters::body::BodyDeserializeError>()
        .is_some()
    {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "invalid request body",
        );
    }
    if rejection
        .find::<warp::ws::MissingConnectionUpgrade>()
        .is_some()
    {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "this endpoint needs a WebSocket upgrade",
        );
    }
    tracing::warn!(?rejection, "unhandled rejection");
    ApiError::internal("the request could not be handled")
}
