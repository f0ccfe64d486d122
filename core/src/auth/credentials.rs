//! The token a request carries, found the same way by every transport
//! (`/ws`, `/sse`) and by the HTTP API:
//!
//! 1. the query string's `token` parameter, decoded as
//!    `application/x-www-form-urlencoded` (so `%2E` and `+` mean `.` and a
//!    space, as any URL library writes them); the first one that is not
//!    empty after trimming wins;
//! 2. otherwise the `Authorization` header, scheme `Bearer` in any case
//!    (`bearer`, `BEARER`), the token trimmed; an empty token or another
//!    scheme counts as no token.
//!
//! The query wins because browsers cannot set headers on a WebSocket or an
//! `EventSource` request: a page passing `?token=` means it.

/// The token of a request: [`query_token`] of `raw_query`, else
/// [`bearer_token`] of the `Authorization` header value. `raw_query` is the
/// still-encoded query string without the `?`.
pub fn presented_token(raw_query: Option<&str>, authorization: Option<&[u8]>) -> Option<String> {
    raw_query
        .and_then(query_token)
        .or_else(|| authorization.and_then(bearer_token).map(str::to_owned))
}

/// The first non-empty `token` parameter of a raw (still percent-encoded)
/// query string, decoded and trimmed. Bytes that do not decode to UTF-8
/// are replaced (U+FFFD), so such a token is refused by verification as
/// invalid rather than mistaken for no token.
pub fn query_token(raw_query: &str) -> Option<String> {
    form_urlencoded::parse(raw_query.as_bytes()).find_map(|(key, value)| {
        let value = value.trim();
        (key == "token" && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The token of an `Authorization` header value when its scheme is
/// `Bearer` (case-insensitive, RFC 7235), trimmed; `None` for another
/// scheme, an empty token or a value that is not UTF-8.
pub fn bearer_token(header_value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(header_value).ok()?.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_trimmed() {
        for value in [
            "Bearer abc.def",
            "bearer abc.def",
            "BEARER abc.def",
            "  bEaReR \t abc.def  ",
            "Bearer\tabc.def",
        ] {
            assert_eq!(bearer_token(value.as_bytes()), Some("abc.def"), "{value:?}");
        }
        for value in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Bearerabc.def",
            "Basic dXNlcjpwdw==",
            "Token abc.def",
        ] {
            assert_eq!(bearer_token(value.as_bytes()), None, "{value:?}");
        }
        assert_eq!(bearer_token(b"Bearer \xff\xfe"), None);
    }

    #[test]
    fn the_query_token_is_percent_decoded_and_the_first_non_empty_wins() {
        assert_eq!(query_token("token=abc.def").as_deref(), Some("abc.def"));
        assert_eq!(
            query_token("a=1&token=abc%2Edef").as_deref(),
            Some("abc.def")
        );
        assert_eq!(query_token("%74oken=abc").as_deref(), Some("abc"));
        assert_eq!(
            query_token("token=&token=+&token=second&token=third").as_deref(),
            Some("second")
        );
        assert_eq!(query_token("token=+abc+").as_deref(), Some("abc"));
        for none in ["", "token=", "token", "tokens=abc", "x=token%3Dabc", "&&="] {
            assert_eq!(query_token(none), None, "{none:?}");
        }
        // Undecodable bytes stay a (bad) token, not "no token".
        let bad = query_token("token=%FF%FE").unwrap();
        assert!(bad.contains('\u{FFFD}'));
        // Malformed escapes are kept as written (and fail verification).
        assert_eq!(query_token("token=%ZZ").as_deref(), Some("%ZZ"));
    }

    #[test]
    fn the_query_wins_over_the_header() {
        let header: &[u8] = b"bearer from-header";
        assert_eq!(
            presented_token(Some("token=from-query"), Some(header)).as_deref(),
            Some("from-query")
        );
        assert_eq!(
            presented_token(Some("token="), Some(header)).as_deref(),
            Some("from-header")
        );
        assert_eq!(
            presented_token(None, Some(header)).as_deref(),
            Some("from-header")
        );
        assert_eq!(presented_token(Some("a=b"), Some(b"Basic x")), None);
        assert_eq!(presented_token(None, None), None);
    }
}
