//! [`FirstBytes`]: the first bytes of a connection, read to tell a
//! `GET /sse` request from anything else; [`Replay`]: a socket that gives
//! back what was read of it, for the server that takes it from there.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What a connection for the lean path starts with; a space or `?`
/// follows.
const PREFIX: &[u8] = b"GET /sse";
/// Bytes read to decide.
const NEEDED: usize = PREFIX.len() + 1;

/// Up to the first 9 bytes of a connection: enough to know whether its
/// first request is `GET /sse` (then a space or a `?`), as the lean path
/// serves it. Anything else (another path, another method, an absolute
/// URI, `/sse/`, the HTTP/2 preface) is left to the HTTP server, with
/// these bytes given back through [`Replay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstBytes {
    bytes: [u8; NEEDED],
    len: usize,
}

impl FirstBytes {
    /// Reads until the bytes decide, the client stops sending (end of
    /// file), or reading fails. Reads no byte beyond the 9th. Waits as
    /// long as the client sends a prefix of `GET /sse ` and nothing more:
    /// callers put their own deadline on it.
    pub async fn read<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<Self> {
        let mut first = Self {
            bytes: [0; NEEDED],
            len: 0,
        };
        while first.len < NEEDED && first.may_be_sse() {
            let n = io.read(&mut first.bytes[first.len..]).await?;
            if n == 0 {
                break;
            }
            first.len += n;
        }
        Ok(first)
    }

    /// The bytes seen so far agree with `GET /sse` and a space or `?`.
    fn may_be_sse(&self) -> bool {
        let seen = self.as_bytes();
        let common = seen.len().min(PREFIX.len());
        seen[..common] == PREFIX[..common]
            && seen
                .get(PREFIX.len())
                .is_none_or(|next| matches!(next, b' ' | b'?'))
    }

    /// True when the first request is `GET /sse` or `GET /sse?...`.
    pub fn is_sse(&self) -> bool {
        self.len == NEEDED && self.may_be_sse()
    }

    /// The bytes read.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A socket that yields `prefix` before what it reads itself: how
/// [`FirstBytes`] (or the bytes a client sent after a request the lean
/// path answered, see [`Served::KeepAlive`](crate::Served::KeepAlive)) go
/// back to the HTTP server. Writes go straight through.
#[derive(Debug)]
pub struct Replay<S> {
    prefix: Bytes,
    io: S,
}

impl<S> Replay<S> {
    /// `io`, whose next reads yield `prefix` first.
    pub fn new(prefix: Bytes, io: S) -> Self {
        Self { prefix, io }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        if self.prefix.is_empty() {
            // Nothing kept for the rest of the connection.
            self.prefix = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn first_of(chunks: &[&[u8]]) -> FirstBytes {
        let (mut client, mut server) = tokio::io::duplex(64);
        for chunk in chunks {
            client.write_all(chunk).await.unwrap();
        }
        drop(client);
        FirstBytes::read(&mut server).await.unwrap()
    }

    #[tokio::test]
    async fn only_get_sse_with_a_space_or_query_is_lean() {
        assert!(first_of(&[b"GET /sse HTTP/1.1\r\n"]).await.is_sse());
        assert!(first_of(&[b"GET /sse?symbols=A HTTP/1.1\r\n"])
            .await
            .is_sse());
        // Byte by byte.
        let trickled: Vec<&[u8]> = b"GET /sse?x".chunks(1).collect();
        assert!(first_of(&trickled).await.is_sse());
        for other in [
            &b"GET /sse/ HTTP/1.1\r\n"[..],
            b"GET /ssex HTTP/1.1\r\n",
            b"GET /health HTTP/1.1\r\n",
            b"POST /sse HTTP/1.1\r\n",
            b"GET http://h/sse HTTP/1.1\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /ss",
            b"",
        ] {
            let first = first_of(&[other]).await;
            assert!(!first.is_sse(), "{:?}", String::from_utf8_lossy(other));
            let expected = &other[..other.len().min(first.as_bytes().len())];
            assert_eq!(first.as_bytes(), expected);
        }
    }

    #[tokio::test]
    async fn no_byte_beyond_the_ninth_is_read() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET /sse?abc HTTP/1.1").await.unwrap();
        let first = FirstBytes::read(&mut server).await.unwrap();
        assert_eq!(first.as_bytes(), b"GET /sse?");
        let mut rest = [0u8; 3];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"abc");
    }

    #[tokio::test]
    async fn replay_yields_the_prefix_then_the_socket() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.unwrap();
        drop(client);
        let mut replay = Replay::new(Bytes::from_static(b"hello"), server);
        let mut out = String::new();
        replay.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
