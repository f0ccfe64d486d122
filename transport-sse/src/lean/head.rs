//! Reading a `GET /sse` request head on the lean path: [`httparse`] (the
//! parser hyper uses) with hyper's limits, so that a head is refused here
//! exactly when hyper would refuse it.

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use warp::http::header::{HeaderMap, HeaderName, HeaderValue};
use warp::http::{StatusCode, Uri};

/// The bounds of a request head read by the lean path. The defaults are
/// hyper's, which the binary's HTTP server applies to every other request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes of a head (request line and headers) before it ends:
    /// 431 beyond. hyper's read buffer: 8 KiB + 100 x 4 KiB.
    pub max_head_bytes: usize,
    /// Longest request target (path and query): 414 beyond. hyper: 65,534.
    pub max_uri_bytes: usize,
    /// Most header lines: 431 beyond. hyper: 100.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 8192 + 4096 * 100,
            max_uri_bytes: u16::MAX as usize - 1,
            max_headers: 100,
        }
    }
}

/// Why a request head was not read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The request line or a header cannot be parsed (400).
    #[error("the request line or headers cannot be parsed")]
    Malformed,
    /// The request target is over [`HeadLimits::max_uri_bytes`] (414).
    #[error("the request URI is too long")]
    UriTooLong,
    /// The head is over [`HeadLimits::max_head_bytes`], or has more than
    /// [`HeadLimits::max_headers`] headers (431).
    #[error("the request headers are too large or too many")]
    TooLarge,
    /// The client closed the connection before the head ended (no answer).
    #[error("the client left before its request head ended")]
    Incomplete,
    /// Reading failed (no answer).
    #[error("reading the request head failed: {0}")]
    Io(#[from] io::Error),
}

impl HeadError {
    /// The status to answer with; `None` when the client cannot be
    /// answered (it left, or its socket failed).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Malformed => Some(StatusCode::BAD_REQUEST),
            Self::UriTooLong => Some(StatusCode::URI_TOO_LONG),
            Self::TooLarge => Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            Self::Incomplete | Self::Io(_) => None,
        }
    }
}

/// A `GET /sse` request head read by the lean path, for
/// [`LeanSse::serve`](crate::LeanSse::serve).
#[derive(Debug)]
pub struct RequestHead {
    /// HTTP/1.0 (else 1.1).
    pub(crate) http10: bool,
    /// The query string without the `?`, still percent-encoded.
    pub(crate) raw_query: String,
    /// `Origin`, `Authorization` and `Last-Event-ID` (the first of each).
    pub(crate) headers: HeaderMap,
    /// `Connection: close` was asked for.
    pub(crate) close: bool,
    /// The connection may carry another request after an error answer.
    pub(crate) keep_alive: bool,
    /// The request announces a body (`Content-Length` > 0 or
    /// `Transfer-Encoding`).
    pub(crate) has_body: bool,
    /// What the client sent after the head.
    pub(crate) leftover: Bytes,
}

/// The headers the endpoint reads.
const KEPT: [&str; 3] = ["origin", "authorization", "last-event-id"];
/// First allocation of the head buffer: most heads fit.
const INITIAL_BUFFER: usize = 1024;
/// Most bytes read at a time.
const READ_CHUNK: usize = 4096;

/// Reads a request head that starts with `first` from `io`. Reads from the
/// socket in chunks, so some bytes after the head may be read too: they
/// are in [`RequestHead::leftover`].
///
/// The head is parsed after the first read, whenever a line has ended
/// since the last parse, and at the size limit or the end of the stream:
/// an error shows by the end of its line (hyper, which parses after every
/// read, may see it a few reads earlier), but a trickled head is not
/// re-parsed after every byte. Each parse that does not end the head has
/// found only good header lines, so there are at most
/// [`HeadLimits::max_headers`] + 3 of them.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    first: &[u8],
    limits: &HeadLimits,
) -> Result<RequestHead, HeadError> {
    let mut buf = Vec::with_capacity(INITIAL_BUFFER.max(first.len()));
    buf.extend_from_slice(first);
    // Bytes already looked at for a line end; `None` before the first parse.
    let mut searched = None;
    loop {
        if line_ended(&buf, &mut searched) {
            if let Some(head) = RequestHead::parse(&buf, limits)? {
                return Ok(head);
            }
        }
        let room = limits.max_head_bytes.saturating_sub(buf.len());
        if room == 0 {
            // An error in the unfinished last line outranks the size.
            RequestHead::parse(&buf, limits)?;
            return Err(HeadError::TooLarge);
        }
        let start = buf.len();
        buf.resize(start + room.min(READ_CHUNK), 0);
        let read = io.read(&mut buf[start..]).await;
        buf.truncate(start + *read.as_ref().unwrap_or(&0));
        if read? == 0 {
            RequestHead::parse(&buf, limits)?;
            return Err(HeadError::Incomplete);
        }
    }
}

/// True on the first call with some bytes, and then when a line feed came
/// after what `searched` says was looked at (which moves on).
fn line_ended(buf: &[u8], searched: &mut Option<usize>) -> bool {
    let ended = match *searched {
        None => !buf.is_empty(),
        Some(from) => buf[from.min(buf.len())..].contains(&b'\n'),
    };
    if !buf.is_empty() {
        *searched = Some(buf.len());
    }
    ended
}

impl RequestHead {
    /// Parses `buf`, the bytes a client sent, as a `GET /sse` request head
    /// within `limits`, exactly as [`LeanSse::read_head`](crate::LeanSse::read_head)
    /// does once it has read them: `None` while the head is incomplete.
    /// Never panics, whatever the input.
    pub fn parse(buf: &[u8], limits: &HeadLimits) -> Result<Option<Self>, HeadError> {
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut request = httparse::Request::new(&mut headers);
        let len = match request.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        };
        let target = request.path.ok_or(HeadError::Malformed)?;
        if target.len() > limits.max_uri_bytes {
            return Err(HeadError::UriTooLong);
        }
        // What hyper gives warp: a target that is not a URI is a 400, and the
        // query is what `Uri` says it is (no fragment).
        let uri = Uri::try_from(target).map_err(|_| HeadError::Malformed)?;
        if request.method != Some("GET") || uri.path() != "/sse" {
            return Err(HeadError::Malformed);
        }
        let http10 = request.version == Some(0);
        let mut head = RequestHead {
            http10,
            raw_query: uri.query().unwrap_or_default().to_owned(),
            headers: HeaderMap::new(),
            close: false,
            keep_alive: !http10,
            has_body: false,
            leftover: Bytes::copy_from_slice(&buf[len..]),
        };
        let mut framing = Framing::default();
        for header in request.headers.iter() {
            head.read_header(header.name, header.value, &mut framing)?;
        }
        head.has_body = framing.chunked || framing.length.is_some_and(|n| n > 0);
        Ok(Some(head))
    }

    /// The query string without the `?`, still percent-encoded (empty
    /// without one).
    pub fn raw_query(&self) -> &str {
        &self.raw_query
    }

    /// The headers the endpoint reads (`Origin`, `Authorization`,
    /// `Last-Event-ID`), the first of each.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// What the client sent after the head (as far as it was read).
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }
}

/// How the request says its body is framed.
#[derive(Debug, Default)]
struct Framing {
    chunked: bool,
    length: Option<u64>,
}

impl RequestHead {
    /// Takes in one header line, as hyper would.
    fn read_header(
        &mut self,
        name: &str,
        value: &[u8],
        framing: &mut Framing,
    ) -> Result<(), HeadError> {
        if let Some(kept) = KEPT.iter().find(|k| k.eq_ignore_ascii_case(name)) {
            if !self.headers.contains_key(*kept) {
                let value = HeaderValue::from_bytes(value).map_err(|_| HeadError::Malformed)?;
                self.headers.insert(HeaderName::from_static(kept), value);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(value) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                    self.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !self.close {
                    self.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // As hyper: HTTP/1.0 has no transfer codings.
            if self.http10 {
                return Err(HeadError::Malformed);
            }
            framing.chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            // Several values (lines, or a list) must agree.
            for token in tokens(value) {
                let length = std::str::from_utf8(token)
                    .ok()
                    .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or(HeadError::Malformed)?;
                if framing.length.is_some_and(|seen| seen != length) {
                    return Err(HeadError::Malformed);
                }
                framing.length = Some(length);
            }
        }
        Ok(())
    }
}

/// The comma-separated items of a header value, trimmed, empty ones
/// skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn read_all(bytes: &[u8], limits: HeadLimits) -> Result<RequestHead, HeadError> {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        client.write_all(bytes).await.unwrap();
        drop(client);
        read(&mut server, &[], &limits).await
    }

    async fn head(bytes: &str) -> RequestHead {
        read_all(bytes.as_bytes(), HeadLimits::default())
            .await
            .unwrap()
    }

    async fn status(bytes: &[u8]) -> Option<StatusCode> {
        read_all(bytes, HeadLimits::default())
            .await
            .err()
            .and_then(|e| e.status())
    }

    #[tokio::test]
    async fn reads_the_query_and_the_headers_the_endpoint_needs() {
        let h = head(
            "GET /sse?symbols=AAPL%2CMSFT#frag HTTP/1.1\r\nHost: t\r\nORIGIN: https://a.example\r\n\
             Origin: https://b.example\r\nAuthorization: Bearer x\r\nLast-Event-ID: 1-2\r\n\r\nextra",
        )
        .await;
        assert_eq!(h.raw_query, "symbols=AAPL%2CMSFT");
        assert_eq!(h.headers.len(), 3);
        assert_eq!(h.headers["origin"], "https://a.example");
        assert_eq!(h.headers["authorization"], "Bearer x");
        assert_eq!(h.headers["last-event-id"], "1-2");
        assert!(h.keep_alive && !h.close && !h.has_body && !h.http10);
        assert_eq!(h.leftover, Bytes::from_static(b"extra"));
        // Bare line feeds end lines too, as in hyper.
        let lf = head("GET /sse HTTP/1.0\nHost: t\n\n").await;
        assert!(lf.http10 && !lf.keep_alive);
        assert_eq!(lf.raw_query, "");
    }

    #[tokio::test]
    async fn connection_and_body_headers_are_read_as_hyper_reads_them() {
        let close = head("GET /sse HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").await;
        assert!(close.close && !close.keep_alive);
        let kept = head("GET /sse HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
        assert!(kept.keep_alive && !kept.close);
        let body = head("GET /sse HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").await;
        assert!(body.has_body);
        let empty = head("GET /sse HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
        assert!(!empty.has_body);
        let chunked = head("GET /sse HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").await;
        assert!(chunked.has_body);
    }

    #[tokio::test]
    async fn refusals_have_hypers_statuses() {
        let bad = Some(StatusCode::BAD_REQUEST);
        assert_eq!(status(b"GET /sse HTTP/2.0\r\n\r\n").await, bad);
        assert_eq!(
            status(b"GET /sse HTTP/1.1\r\nbad header\r\n\r\n").await,
            bad
        );
        assert_eq!(
            status(b"GET /sse HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n").await,
            bad
        );
        assert_eq!(
            status(b"GET /sse HTTP/1.1\r\nContent-Length: -1\r\n\r\n").await,
            bad
        );
        assert_eq!(
            status(b"GET /sse HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").await,
            bad
        );
        let long = format!("GET /sse?{} HTTP/1.1\r\n\r\n", "a".repeat(70_000));
        assert_eq!(
            status(long.as_bytes()).await,
            Some(StatusCode::URI_TOO_LONG)
        );
        let many: String = (0..101).map(|i| format!("x-h{i}: v\r\n")).collect();
        let many = format!("GET /sse HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            status(many.as_bytes()).await,
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let huge = format!(
            "GET /sse HTTP/1.1\r\nx-big: {}\r\n\r\n",
            "b".repeat(600_000)
        );
        assert_eq!(
            status(huge.as_bytes()).await,
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        // A head cut short is not answered.
        let cut = read_all(b"GET /sse HTTP/1.1\r\nHost: t\r\n", HeadLimits::default()).await;
        assert!(matches!(cut, Err(HeadError::Incomplete)), "{cut:?}");
    }

    #[tokio::test]
    async fn a_bad_line_is_refused_without_waiting_for_the_end_of_the_head() {
        for sent in [
            &b"GET /sse HTTP/2.0\r\n"[..],
            b"GET /sse HTTP/1.1\r\nno colon\r\n",
            b"GET /sse?\x01 HTTP/1.1",
        ] {
            let (mut client, mut server) = tokio::io::duplex(1024);
            client.write_all(sent).await.unwrap();
            // The client stays, silent: only the bytes sent can decide.
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                read(&mut server, &[], &HeadLimits::default()),
            )
            .await
            .expect("decided without more bytes");
            assert!(matches!(read, Err(HeadError::Malformed)), "{read:?}");
            drop(client);
        }
    }

    #[tokio::test]
    async fn a_head_at_the_size_limit_is_read_one_byte_over_is_refused() {
        let limits = HeadLimits {
            max_head_bytes: 64,
            ..HeadLimits::default()
        };
        let exact = format!("GET /sse HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(64 - 26));
        assert_eq!(exact.len(), 64);
        assert!(read_all(exact.as_bytes(), limits).await.is_ok());
        let over = format!("GET /sse HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(64 - 25));
        assert!(matches!(
            read_all(over.as_bytes(), limits).await,
            Err(HeadError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn a_head_trickled_byte_by_byte_is_read() {
        let (mut client, mut server) = tokio::io::duplex(16);
        let writer = tokio::spawn(async move {
            for b in b"GET /sse?id=a HTTP/1.1\r\nHost: t\r\n\r\n" {
                client.write_all(&[*b]).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let head = read(&mut server, &[], &HeadLimits::default())
            .await
            .unwrap();
        assert_eq!(head.raw_query, "id=a");
        drop(writer.await.unwrap());
    }

    #[test]
    fn a_head_is_parsed_first_then_after_each_line() {
        let mut searched = None;
        assert!(line_ended(b"GET", &mut searched));
        assert!(!line_ended(b"GET / HT", &mut searched));
        assert!(line_ended(b"GET / HTTP/1.1\r\n", &mut searched));
        assert!(!line_ended(b"GET / HTTP/1.1\r\nHost: t", &mut searched));
        assert!(line_ended(b"GET / HTTP/1.1\r\nHost: t\r\n", &mut searched));
    }
}
