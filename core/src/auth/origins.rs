//! [`AllowedOrigins`]: which web pages may open `/ws` and `/sse` (and, in
//! the binary, call the HTTP API cross-origin).
//!
//! Browsers send `Origin` on WebSocket handshakes and cross-origin
//! requests, and let any page open a WebSocket to any server: without a
//! check, a page on any site can connect with a visitor's cookies or a
//! token it learned. Clients that are not browsers send no `Origin`; they
//! could write any value anyway, so a request without one is allowed.
//!
//! Origins compare as `scheme://host[:port]` after the URL standard's
//! normalization (WHATWG, via the `url` crate): scheme and host are
//! case-insensitive, a default port is the same as none
//! (`https://a.example:443` is `https://a.example`), international names
//! compare in their punycode form.

use std::fmt;
use std::str::FromStr;

/// One web origin, `scheme://host[:port]`, normalized (see the module
/// docs). Parsed from configuration or from an `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

/// A configured origin that is not `*` nor `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid origin {0:?}: expected \"*\" or scheme://host[:port], e.g. https://app.example.com"
)]
pub struct InvalidOrigin(pub String);

impl Origin {
    /// The normalized text, `https://app.example.com` or
    /// `http://localhost:8080`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Origin {
    type Err = InvalidOrigin;

    /// Accepts exactly an origin: a URL with a scheme and a host, and no
    /// user, path (other than `/`), query or fragment. `null` (the origin
    /// of sandboxed pages and local files) is not one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidOrigin(s.chars().take(128).collect());
        let url = url::Url::parse(s.trim()).map_err(|_| bad())?;
        let only_an_origin = url.username().is_empty()
            && url.password().is_none()
            && matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none();
        if !only_an_origin {
            return Err(bad());
        }
        match url.origin() {
            origin @ url::Origin::Tuple(..) => Ok(Self(origin.ascii_serialization())),
            url::Origin::Opaque(_) => Err(bad()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The origins a browser request may come from.
///
/// ```
/// use tickcast_core::auth::AllowedOrigins;
///
/// let list = AllowedOrigins::parse(["https://app.example.com"]).unwrap();
/// assert!(list.allows(Some("HTTPS://APP.example.com:443")));
/// assert!(!list.allows(Some("https://evil.example")));
/// assert!(list.allows(None)); // not a browser
/// assert!(AllowedOrigins::parse(["*"]).unwrap().allows(Some("https://evil.example")));
/// ```
///
/// In configuration it is a list of strings (`["*"]`, or
/// `["https://app.example.com"]`); it deserializes through
/// [`AllowedOrigins::parse`] and serializes back to such a list.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub enum AllowedOrigins {
    /// Every origin (`*`): the default of `/ws` and `/sse`.
    #[default]
    Any,
    /// Only these; an empty list allows no browser origin at all (requests
    /// without `Origin` still pass).
    List(Vec<Origin>),
}

impl AllowedOrigins {
    /// No browser origin (an empty list).
    pub fn none() -> Self {
        Self::List(Vec::new())
    }

    /// From configuration: `*` (anywhere in the list) means any origin,
    /// every other entry must be `scheme://host[:port]`.
    pub fn parse<I, S>(entries: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        let mut any = false;
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry == "*" {
                any = true;
            } else {
                let origin: Origin = entry.parse()?;
                if !list.contains(&origin) {
                    list.push(origin);
                }
            }
        }
        Ok(if any { Self::Any } else { Self::List(list) })
    }

    /// True for [`AllowedOrigins::Any`].
    pub fn is_any(&self) -> bool {
        matches!(self, Self::Any)
    }

    /// Whether a request with this `Origin` header value (`None`: no
    /// header) may be served. A value that is not an origin (`null`,
    /// garbage) is allowed only by [`AllowedOrigins::Any`].
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (self, origin) {
            (Self::Any, _) | (_, None) => true,
            (Self::List(list), Some(origin)) => origin
                .parse::<Origin>()
                .is_ok_and(|origin| list.contains(&origin)),
        }
    }

    /// Why a request with this `Origin` is refused (the message every
    /// transport's 403 carries, the origin cut to 128 characters); `None`
    /// when it may be served.
    pub fn refusal(&self, origin: Option<&str>) -> Option<String> {
        if self.allows(origin) {
            return None;
        }
        let shown: String = origin.unwrap_or_default().chars().take(128).collect();
        Some(format!("origin {shown} is not allowed"))
    }

    /// The origin to echo in `Access-Control-Allow-Origin`: the request's
    /// normalized origin when it is listed; `None` for [`AllowedOrigins::Any`]
    /// (which grants no cross-origin reads by itself), a missing header or
    /// an origin not listed.
    pub fn cors_origin(&self, origin: Option<&str>) -> Option<Origin> {
        let Self::List(list) = self else { return None };
        let origin = origin?.parse::<Origin>().ok()?;
        list.contains(&origin).then_some(origin)
    }
}

impl TryFrom<Vec<String>> for AllowedOrigins {
    type Error = InvalidOrigin;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(entries)
    }
}

impl From<AllowedOrigins> for Vec<String> {
    fn from(allowed: AllowedOrigins) -> Self {
        match allowed {
            AllowedOrigins::Any => vec!["*".to_owned()],
            AllowedOrigins::List(list) => list.into_iter().map(|o| o.0).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_origin_cut_to_128_characters() {
        let list = AllowedOrigins::List(vec!["https://a.example".parse().unwrap()]);
        assert_eq!(list.refusal(Some("https://a.example")), None);
        assert_eq!(list.refusal(None), None);
        assert_eq!(
            list.refusal(Some("https://b.example")).as_deref(),
            Some("origin https://b.example is not allowed")
        );
        let long = "x".repeat(300);
        let message = list.refusal(Some(&long)).unwrap();
        assert_eq!(
            message,
            format!("origin {} is not allowed", "x".repeat(128))
        );
        assert_eq!(AllowedOrigins::Any.refusal(Some("null")), None);
    }

    #[test]
    fn origins_normalize_scheme_host_and_default_ports() {
        let norm = |s: &str| s.parse::<Origin>().map(|o| o.to_string());
        assert_eq!(
            norm("https://App.Example.COM").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(norm("HTTPS://a.example:443").unwrap(), "https://a.example");
        assert_eq!(
            norm("http://localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(norm("https://a.example/").unwrap(), "https://a.example");
        assert_eq!(norm("http://[::1]:3000").unwrap(), "http://[::1]:3000");
        for bad in [
            "",
            "null",
            "*",
            "app.example.com",
            "https://",
            "https://a.example/path",
            "https://a.example?x=1",
            "https://a.example#f",
            "https://user@a.example",
            "file:///etc/passwd",
            "data:text/plain,hi",
            "https://a.example:99999",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_list_allows_exactly_its_origins_and_requests_without_origin() {
        let list =
            AllowedOrigins::parse(["https://app.example.com", " http://localhost:8080 "]).unwrap();
        assert!(!list.is_any());
        assert!(list.allows(None));
        assert!(list.allows(Some("https://app.example.com")));
        assert!(list.allows(Some("https://APP.example.com:443")));
        assert!(list.allows(Some("http://localhost:8080")));
        for refused in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://evil.example",
            "https://app.example.com.evil.example",
            "http://localhost",
            "null",
            "",
            "garbage",
        ] {
            assert!(!list.allows(Some(refused)), "{refused:?}");
        }
        assert_eq!(
            list.cors_origin(Some("https://APP.example.com"))
                .map(|o| o.to_string()),
            Some("https://app.example.com".to_owned())
        );
        assert_eq!(list.cors_origin(Some("https://evil.example")), None);
        assert_eq!(list.cors_origin(None), None);
    }

    #[test]
    fn star_means_any_and_the_default_is_any() {
        assert_eq!(AllowedOrigins::default(), AllowedOrigins::Any);
        let any = AllowedOrigins::parse(["https://a.example", "*"]).unwrap();
        assert!(any.is_any());
        for origin in [
            None,
            Some("null"),
            Some("https://evil.example"),
            Some("\u{FFFD}"),
        ] {
            assert!(any.allows(origin));
        }
        assert_eq!(any.cors_origin(Some("https://a.example")), None);
        let none = AllowedOrigins::none();
        assert!(none.allows(None));
        assert!(!none.allows(Some("https://a.example")));
        assert_eq!(AllowedOrigins::parse(Vec::<String>::new()).unwrap(), none);
        assert!(AllowedOrigins::parse(["example.com"]).is_err());
    }

    #[test]
    fn configuration_is_a_list_of_strings() {
        let list: AllowedOrigins =
            serde_json::from_str(r#"["HTTPS://App.example.com:443"]"#).unwrap();
        assert!(list.allows(Some("https://app.example.com")));
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["https://app.example.com"]"#
        );
        let any: AllowedOrigins = serde_json::from_str(r#"["*"]"#).unwrap();
        assert_eq!(any, AllowedOrigins::Any);
        assert_eq!(serde_json::to_string(&any).unwrap(), r#"["*"]"#);
        let err = serde_json::from_str::<AllowedOrigins>(r#"["app.example.com"]"#).unwrap_err();
        assert!(err.to_string().contains("invalid origin"), "{err}");
    }
}
