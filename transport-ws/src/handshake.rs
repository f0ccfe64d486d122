//! Who the client is: the token of the upgrade request, verified once the
//! socket is open (so a refusal can be a close code the browser sees).

use tickcast_core::auth::{AuthError, Authenticator, Identity};
use warp::{Filter, Rejection};

/// The token from `?token=` or `Authorization: Bearer`, if any.
pub(crate) fn credentials() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    let query = warp::query::raw()
        .map(|q: String| token_from_query(&q))
        .or(warp::any().map(|| None))
        .unify();
    let header = warp::header::optional::<String>("authorization").map(|h: Option<String>| {
        h.and_then(|h| h.strip_prefix("Bearer ").map(|t| t.trim().to_owned()))
    });
    query
        .and(header)
        .map(|q: Option<String>, h: Option<String>| q.or(h))
}

fn token_from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token" && !value.is_empty()).then(|| value.to_owned())
    })
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
    fn finds_the_token_in_the_query() {
        assert_eq!(
            token_from_query("a=1&token=abc.def"),
            Some("abc.def".into())
        );
        assert_eq!(token_from_query("token="), None);
        assert_eq!(token_from_query(""), None);
    }

    #[test]
    fn anonymous_when_auth_is_off() {
        assert_eq!(identify(None, Some("whatever")), Ok(None));
        let auth = Authenticator::hs256(b"k");
        assert_eq!(identify(Some(&auth), None), Err(AuthError::Missing));
    }
}
