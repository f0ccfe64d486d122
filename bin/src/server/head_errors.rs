//! [`JsonHeadErrors`]: JSON bodies for the answers hyper writes on its own.
//!
//! When a request head cannot be parsed (a URI over hyper's 64 KiB, headers
//! over the configured size or count, a malformed line), hyper answers 400,
//! 414 or 431 itself, with an empty body, and closes the connection: no
//! service ever sees the request. operations.md promises a JSON error for
//! every answer, so this socket adapter recognises exactly those answers
//! (status 400/414/431 with `content-length: 0`; the server's own error
//! answers always carry a JSON body) and writes a JSON answer in their place.
//! Everything else passes through untouched, upgraded WebSocket traffic
//! included (its frames never start with `HTTP/1.1 4`). The lean `/sse`
//! path, which reads its request heads without hyper, answers the heads it
//! cannot read with the same [`answer`]s.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose hyper-made error answers get JSON bodies.
#[derive(Debug)]
pub(crate) struct JsonHeadErrors<S> {
    inner: S,
    /// A replacement being written: the bytes and how many went out.
    replacing: Option<(Vec<u8>, usize)>,
}

impl<S> JsonHeadErrors<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// The answer that replaces hyper's empty one for `head`, if `head` is one.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    const PREFIX: &[u8] = b"HTTP/1.1 ";
    const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";
    let status = head.strip_prefix(PREFIX)?.get(..4)?;
    let empty = head.ends_with(b"\r\n\r\n")
        && head
            .windows(EMPTY.len())
            .any(|w| w.eq_ignore_ascii_case(EMPTY));
    if !empty {
        return None;
    }
    let status = std::str::from_utf8(status).ok()?.trim_end().parse().ok()?;
    answer(status)
}

/// The JSON answer, closing the connection, to a request head that cannot
/// be read: for 400, 414 and 431 (hyper's answers, and the lean `/sse`
/// path's); `None` for other statuses.
pub(crate) fn answer(status: u16) -> Option<Vec<u8>> {
    let (line, code, message) = match status {
        400 => (
            "400 Bad Request",
            "bad_request",
            "the request line or headers cannot be parsed",
        ),
        414 => (
            "414 URI Too Long",
            "uri_too_long",
            "the request URI is too long",
        ),
        431 => (
            "431 Request Header Fields Too Large",
            "headers_too_large",
            "the request headers are too large or too many",
        ),
        _ => return None,
    };
    let body = format!(r#"{{"error":"{code}","message":"{message}"}}"#);
    let answer = format!(
        "HTTP/1.1 {line}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    Some(answer.into_bytes())
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonHeadErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> JsonHeadErrors<S> {
    /// Writes the rest of a replacement; ready when it is all out.
    fn poll_replace(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, sent)) = &mut self.replacing {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
            if *sent == answer.len() {
                self.replacing = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonHeadErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            match replacement(buf) {
                Some(answer) => self.replacing = Some((answer, 0)),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        // hyper calls again with the same head until it is taken whole.
        ready!(self.poll_replace(cx))?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        let is_error_head =
            self.replacing.is_some() || first.is_some_and(|b| replacement(b).is_some());
        match (is_error_head, first) {
            (true, Some(head)) => self.poll_write(cx, head),
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replace(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replace(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(head: &[u8]) -> String {
        String::from_utf8(replacement(head).expect("replaced")).unwrap()
    }

    #[test]
    fn answers_are_well_formed_json() {
        for status in ["400 Bad Request", "414 URI Too Long", "431 Too Large"] {
            let head = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            let text = answer(head.as_bytes());
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(length, body.len(), "{head}");
            serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
    }

    #[test]
    fn only_hypers_empty_error_heads_are_replaced() {
        let hyper =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert!(answer(hyper).contains(r#""error":"headers_too_large""#));
        let uri = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(answer(uri).starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 52\r\n\r\n";
        assert_eq!(replacement(ours), None);
        assert_eq!(
            replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(replacement(&[0x81, 0x05, b'h']), None);
    }
}
