//! Bearer-token check of the HTTP API (`[api] key`).

use std::sync::Arc;

use warp::http::{header, HeaderMap};
use warp::{Filter, Rejection};

use super::error::ApiError;

/// Passes when `key` is `None`, or when the request carries
/// `Authorization: Bearer <key>`; rejects with 401 otherwise.
pub fn bearer(key: Option<Arc<str>>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let key = key.clone();
            async move {
                match key {
                    None => Ok(()),
                    Some(key) if authorized(&headers, key.as_bytes()) => Ok(()),
                    Some(_) => Err(warp::reject::custom(ApiError::unauthorized())),
                }
            }
        })
        .untuple_one()
}

/// True when the `Authorization` header is `Bearer <key>` (scheme
/// case-insensitive).
fn authorized(headers: &HeaderMap, key: &[u8]) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    const SCHEME: &[u8] = b"bearer ";
    if value.len() < SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return false;
    }
    let token = value[SCHEME.len()..].trim_ascii();
    constant_time_eq(token, key)
}

/// Compares without an early exit, so the time taken does not tell how
/// much of a guessed key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn accepts_only_the_exact_key() {
        assert!(authorized(&with("Bearer s3cret"), b"s3cret"));
        assert!(authorized(&with("bearer s3cret"), b"s3cret"));
        assert!(!authorized(&with("Bearer s3cre"), b"s3cret"));
        assert!(!authorized(&with("Bearer s3cretx"), b"s3cret"));
        assert!(!authorized(&with("Basic s3cret"), b"s3cret"));
        assert!(!authorized(&with("Bearer"), b"s3cret"));
        assert!(!authorized(&HeaderMap::new(), b"s3cret"));
    }
}
