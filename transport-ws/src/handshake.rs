//! Who the client is: the token of the upgrade request, verified once the
//! socket is open (so a refusal can be a close code the browser sees).

use tickcast_core::auth::{presented_token, AuthError, Authenticator, Identity};
use warp::http::HeaderValue;
use warp::Filter;

/// The token of the request as every transport reads it
/// ([`presented_token`]: `?token=`, else `Authorization: Bearer`).
pub(crate) fn credentials(
) -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    query.and(optional_header("authorization")).map(
        |query: Option<String>, authorization: Option<HeaderValue>| {
            presented_token(
                query.as_deref(),
                authorization.as_ref().map(HeaderValue::as_bytes),
            )
        },
    )
}

/// A header's raw value, if present; never rejects (a value that is not
/// text is the caller's to judge).
pub(crate) fn optional_header(
    name: &'static str,
) -> impl Filter<Extract = (Option<HeaderValue>,), Error = std::convert::Infallible> + Clone {
    warp::header::value(name)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// The connection's identity: anonymous when auth is off, else the
/// verified token's.
pub(crate) fn identify(
    auth: Option<&Authenticator>,
    token: Option<&str>,
) -> Result<Option<Identity>, AuthError> {
    let Some(auth) = auth else { return Ok(None) };
    let token = token.ok_or(AuthError::Missing)?;
    auth.verify(token).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_when_auth_is_off() {
        assert_eq!(identify(None, Some("whatever")), Ok(None));
        let auth = Authenticator::hs256(b"k");
        assert_eq!(identify(Some(&auth), None), Err(AuthError::Missing));
    }
}
