//! The response head the lean path writes: the same status line and
//! headers, in the same order, as hyper writes for the filter's response.

use std::fmt::Write as _;
use std::time::SystemTime;

use warp::http::{HeaderMap, StatusCode};

/// How the body after the head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Transfer-Encoding: chunked` (HTTP/1.1 streams).
    Chunked,
    /// Until the connection closes (HTTP/1.0 streams, which have no
    /// chunked coding).
    UntilClose,
    /// `Content-Length` (error answers).
    Length(usize),
}

/// The response head: status line, `headers` in their order, then the
/// `Connection` header when given, the body's framing and `Date`, as hyper
/// orders them.
pub(crate) fn head(
    http10: bool,
    status: StatusCode,
    headers: &HeaderMap,
    connection: Option<&str>,
    framing: Framing,
) -> Vec<u8> {
    let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let reason = status.canonical_reason().unwrap_or_default();
    let mut text = format!("{version} {} {reason}\r\n", status.as_u16());
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(text.as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    text.clear();
    // Writing to a `String` cannot fail.
    if let Some(connection) = connection {
        let _ = write!(text, "connection: {connection}\r\n");
    }
    match framing {
        Framing::Chunked => text.push_str("transfer-encoding: chunked\r\n"),
        Framing::UntilClose => {}
        Framing::Length(n) => {
            let _ = write!(text, "content-length: {n}\r\n");
        }
    }
    let now = httpdate::fmt_http_date(SystemTime::now());
    let _ = write!(text, "date: {now}\r\n\r\n");
    out.extend_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    #[test]
    fn headers_come_in_hypers_order() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        headers.append("vary", HeaderValue::from_static("origin"));
        let text = String::from_utf8(head(
            false,
            StatusCode::OK,
            &headers,
            Some("close"),
            Framing::Chunked,
        ))
        .unwrap();
        let (before_date, date) = text.split_once("date: ").unwrap();
        assert_eq!(
            before_date,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nvary: origin\r\n\
             connection: close\r\ntransfer-encoding: chunked\r\n"
        );
        assert!(date.ends_with(" GMT\r\n\r\n"), "{date}");
        let refused = String::from_utf8(head(
            true,
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            None,
            Framing::Length(12),
        ))
        .unwrap();
        assert!(
            refused.starts_with("HTTP/1.0 401 Unauthorized\r\ncontent-length: 12\r\ndate: "),
            "{refused}"
        );
    }
}
