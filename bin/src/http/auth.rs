//! Who may call `POST /api/publish`: [`PublishAccess`], decided once from
//! the configuration, and the [`publisher`] filter that enforces it.

use std::sync::Arc;

use tickcast_core::auth::bearer_token;
use warp::http::{header, HeaderMap, StatusCode};
use warp::{Filter, Rejection};

use super::error::ApiError;
use crate::config::Config;

/// Who may publish over HTTP.
#[derive(Clone, PartialEq, Eq)]
pub enum PublishAccess {
    /// Requests must carry `Authorization: Bearer <api.key>`.
    Key(Arc<str>),
    /// Anyone who reaches the port: no `[auth]` (every client is anonymous
    /// anyway), or `api.allow_anonymous_publish = true`.
    Anonymous,
    /// Nobody: `[auth]` is on, no `api.key` is set and anonymous publishing
    /// was not asked for. Publishing then needs a configuration change, so
    /// that turning auth on never leaves an open door beside it.
    Refused,
}

impl std::fmt::Debug for PublishAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str(self.describe())
    }
}

impl PublishAccess {
    /// The access `config` asks for.
    pub fn of(config: &Config) -> Self {
        let auth_on = config.auth.jwt_secret.is_some() || config.auth.jwt_public_key_file.is_some();
        match &config.api.key {
            Some(key) => Self::Key(Arc::from(key.as_str())),
            None if !auth_on || config.api.allow_anonymous_publish => Self::Anonymous,
            None => Self::Refused,
        }
    }

    /// One line for the startup log and `check-config`.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Key(_) => "api key required (Authorization: Bearer <api.key>)",
            Self::Anonymous => "anonymous: anyone who reaches the port may publish",
            Self::Refused => {
                "refused: [auth] is on and no api.key is set (set api.key, or api.allow_anonymous_publish = true)"
            }
        }
    }

    /// Checks one request's headers.
    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self {
            Self::Anonymous => Ok(()),
            Self::Key(key) if authorized(headers, key.as_bytes()) => Ok(()),
            Self::Key(_) => Err(ApiError::unauthorized()),
            Self::Refused => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "publish_disabled",
                "publishing over HTTP is off: [auth] is on and no api.key is configured",
            )),
        }
    }
}

/// Passes requests that `access` lets publish; rejects the others with 401
/// (missing or wrong key) or 403 (publishing refused).
pub fn publisher(access: PublishAccess) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let checked = access.check(&headers).map_err(warp::reject::custom);
            async move { checked }
        })
        .untuple_one()
}

/// True when the `Authorization` header is `Bearer <key>`, read as every
/// transport reads its tokens ([`bearer_token`]: scheme in any case, token
/// trimmed).
fn authorized(headers: &HeaderMap, key: &[u8]) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer_token(value.as_bytes()))
        .is_some_and(|token| constant_time_eq(token.as_bytes(), key))
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
        assert!(authorized(&with("BEARER \t s3cret "), b"s3cret"));
        assert!(!authorized(&with("Bearer s3cre"), b"s3cret"));
        assert!(!authorized(&with("Bearer s3cretx"), b"s3cret"));
        assert!(!authorized(&with("Basic s3cret"), b"s3cret"));
        assert!(!authorized(&with("Bearer"), b"s3cret"));
        assert!(!authorized(&HeaderMap::new(), b"s3cret"));
    }

    #[test]
    fn auth_without_a_key_refuses_publishing_unless_anonymous_is_asked_for() {
        let mut config = Config::default();
        assert_eq!(PublishAccess::of(&config), PublishAccess::Anonymous);
        config.auth.jwt_secret = Some("s".into());
        assert_eq!(PublishAccess::of(&config), PublishAccess::Refused);
        config.api.allow_anonymous_publish = true;
        assert_eq!(PublishAccess::of(&config), PublishAccess::Anonymous);
        config.api.key = Some("k".into());
        assert_eq!(
            PublishAccess::of(&config),
            PublishAccess::Key(Arc::from("k"))
        );
    }
}
