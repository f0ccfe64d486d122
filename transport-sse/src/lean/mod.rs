//! The lean path: `GET /sse` served straight on the socket, outside any
//! HTTP server.
//!
//! hyper keeps, for the whole life of a connection, its 8 KiB read buffer,
//! its write buffer and its body machinery; an SSE response lives as long
//! as the connection, so through hyper every idle stream holds all of it.
//! A server that runs its own accept loop can instead give connections
//! whose first request is `GET /sse` to [`LeanSse`]:
//!
//! 1. [`FirstBytes::read`] reads up to 9 bytes: `GET /sse` and a space or
//!    `?` means the lean path; anything else goes to the HTTP server with
//!    those bytes given back ([`Replay`]).
//! 2. [`LeanSse::read_head`] reads the request head with `httparse` (the
//!    parser hyper uses) within [`HeadLimits`] (hyper's limits); the
//!    caller puts its own deadline on it.
//! 3. [`LeanSse::serve`] runs the same checks and answers as
//!    [`sse_route`](crate::sse_route) (one shared function decides both),
//!    writes the response head and hands the socket to core's session:
//!    its chunks go straight to the socket ([`BodySink`](sink::BodySink)),
//!    and its reader drops whatever the client sends and reports when it
//!    leaves. The session owns the socket, so the write deadline frees it
//!    without any help from the server.
//!
//! # Framing
//!
//! An HTTP/1.1 stream is `Transfer-Encoding: chunked`, as hyper frames the
//! filter's stream: the same bytes on the wire for clients and proxies, a
//! client can tell a stream that ended (the last chunk after `event:
//! close`) from a cut connection, and the framing costs a size line built
//! on the stack and a static CRLF per write, in the same vectored write
//! as the chunk. An HTTP/1.0 request (which has no chunked coding) gets a
//! body delimited by the connection's end, as from hyper.
//!
//! When the stream ends the connection is closed (hyper would keep it open
//! for another request). An error answer (400, 401, 403, 414, 429, 503)
//! is written with a `Content-Length`; when the connection may carry
//! another request ([`Served::KeepAlive`]) it goes back to the caller, with
//! what the client already sent after the head, for its HTTP server.

mod first;
mod head;
mod inbound;
mod response;
mod sink;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tickcast_core::session::{self, Opened, Transport};
use tickcast_core::Hub;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use warp::http::{HeaderMap, StatusCode};

pub use first::{FirstBytes, Replay};
pub use head::{HeadError, HeadLimits, RequestHead};

use crate::answer::{self, Answer, HttpError};
use crate::session::SseCodec;
use crate::SseConfig;
use inbound::Discard;
use response::Framing;
use sink::{BodyFraming, BodySink};

/// The SSE endpoint outside any HTTP server: serves connections whose
/// first request is `GET /sse` on the socket itself (see the module
/// docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct LeanSse {
    hub: Hub,
    config: Arc<SseConfig>,
    limits: HeadLimits,
    head_timeout: Duration,
}

/// What became of a connection [`LeanSse`] served.
#[derive(Debug)]
pub enum Served<S> {
    /// The stream ended, or the connection could not carry another
    /// request: it is closed.
    Closed,
    /// An error was answered on a keep-alive connection: the caller's HTTP
    /// server takes it from here, reading `leftover` (what the client sent
    /// after the head) first, e.g. through [`Replay`].
    KeepAlive {
        /// The socket.
        io: S,
        /// Bytes read after the head.
        leftover: Bytes,
    },
}

impl LeanSse {
    /// The endpoint for `hub` under `config`, with hyper's head limits and
    /// a 10 s deadline for [`serve_connection`](Self::serve_connection).
    pub fn new(hub: Hub, config: SseConfig) -> Self {
        Self {
            hub,
            config: Arc::new(config),
            limits: HeadLimits::default(),
            head_timeout: Duration::from_secs(10),
        }
    }

    /// The same with other head limits.
    pub fn with_head_limits(mut self, limits: HeadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same with another deadline for the head in
    /// [`serve_connection`](Self::serve_connection).
    pub fn with_head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// Reads the rest of a request head that began with `first` (a
    /// [`FirstBytes::is_sse`] one). Takes as long as the client does: the
    /// caller bounds it.
    pub async fn read_head<S: AsyncRead + Unpin>(
        &self,
        io: &mut S,
        first: &FirstBytes,
    ) -> Result<RequestHead, HeadError> {
        head::read(io, first.as_bytes(), &self.limits).await
    }

    /// Answers the request `head` read from `io`: the stream until it
    /// ends, or an error. The request is checked and the client registered
    /// with the hub when this is called; the future writes the answer.
    pub fn serve<S>(&self, io: S, head: RequestHead) -> impl Future<Output = Served<S>> + Send + '_
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        // Decided before the future is made, so that nothing of the request
        // is kept in it while the stream lasts.
        let prepared = self.prepare(head);
        async move {
            match prepared {
                Prepared::Stream(stream) => {
                    stream.run(io, &self.config).await;
                    Served::Closed
                }
                Prepared::Refused { answer, keep } => self.finish(io, &answer, keep).await,
            }
        }
    }

    /// Checks `head`, registers the client, and builds what is written.
    fn prepare(&self, head: RequestHead) -> Prepared {
        match answer::answer(&self.hub, &self.config, &head.raw_query, &head.headers) {
            Answer::Stream { headers, opened } => {
                let (framing, body) = if head.http10 {
                    (Framing::UntilClose, BodyFraming::UntilClose)
                } else {
                    (Framing::Chunked, BodyFraming::Chunked)
                };
                let connection = (head.close && !head.http10).then_some("close");
                let response =
                    response::head(head.http10, StatusCode::OK, &headers, connection, framing);
                Prepared::Stream(Admitted {
                    opened,
                    response: response.into(),
                    framing: body,
                    already: head.leftover.len(),
                })
            }
            Answer::Refused {
                status,
                headers,
                body,
            } => {
                // A body the request announced would have to be read past;
                // closing is simpler.
                let keep_alive = head.keep_alive && !head.has_body;
                Prepared::Refused {
                    answer: error_response(head.http10, keep_alive, status, &headers, &body),
                    keep: keep_alive.then_some(head.leftover),
                }
            }
        }
    }

    /// Reads the request head of a connection that began with `first` (a
    /// [`FirstBytes::is_sse`] one) within the head deadline, answers a
    /// head it cannot read (400, 414 or 431, JSON, as the crate's other
    /// errors), then [`serve`](Self::serve)s it: the whole lean path for a
    /// caller without deadlines or answers of its own.
    pub async fn serve_connection<S>(&self, mut io: S, first: &FirstBytes) -> Served<S>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let read = tokio::time::timeout(self.head_timeout, self.read_head(&mut io, first)).await;
        let error = match read {
            Ok(Ok(head)) => return self.serve(io, head).await,
            Ok(Err(error)) => error,
            // The deadline closes the connection without an answer.
            Err(_) => return Served::Closed,
        };
        let Some(status) = error.status() else {
            return Served::Closed;
        };
        let error = HttpError::new(status, "bad_request", error.to_string());
        let (status, headers, body) = error.into_parts();
        let response = error_response(false, false, status, &headers, &body);
        self.finish(io, &response, None).await
    }

    /// Writes a whole answer within the write deadline; hands the
    /// connection back when `keep` holds the bytes read after the head.
    async fn finish<S>(&self, mut io: S, answer: &[u8], keep: Option<Bytes>) -> Served<S>
    where
        S: AsyncWrite + Unpin,
    {
        let write = async {
            io.write_all(answer).await?;
            io.flush().await
        };
        let written = tokio::time::timeout(self.config.session.write_timeout, write).await;
        match (written, keep) {
            (Ok(Ok(())), Some(leftover)) => Served::KeepAlive { io, leftover },
            (Ok(Ok(())), None) => {
                let _ =
                    tokio::time::timeout(self.config.session.write_timeout, io.shutdown()).await;
                Served::Closed
            }
            _ => Served::Closed,
        }
    }
}

/// What [`LeanSse::serve`] decided.
enum Prepared {
    /// 200: stream.
    Stream(Admitted),
    /// An error: this answer, then the connection back when `keep` holds
    /// the bytes read after the head.
    Refused {
        answer: Vec<u8>,
        keep: Option<Bytes>,
    },
}

/// An admitted stream, ready to run on its socket.
struct Admitted {
    opened: Opened,
    /// The response head, written with the first chunk.
    response: Bytes,
    framing: BodyFraming,
    /// Bytes the client sent after the head.
    already: usize,
}

impl Admitted {
    /// Runs core's session on `io` until the stream ends; the socket is
    /// closed then.
    async fn run<S>(self, io: S, config: &SseConfig)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let transport = Transport {
            codec: SseCodec::new(config),
            sink: BodySink::new(write, self.framing, self.response),
            inbound: Some(Discard::new(read, self.already)),
            // The session owns the socket: dropping it frees it.
            abort: None,
        };
        session::serve(self.opened, transport, &config.session).await;
    }
}

/// A whole error answer. The `Connection` header says what hyper would
/// say: `keep-alive` on an HTTP/1.0 connection kept open, `close` on an
/// HTTP/1.1 one about to close.
fn error_response(
    http10: bool,
    keep_alive: bool,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Vec<u8> {
    let connection = match (http10, keep_alive) {
        (true, true) => Some("keep-alive"),
        (false, false) => Some("close"),
        _ => None,
    };
    let mut response = response::head(
        http10,
        status,
        headers,
        connection,
        Framing::Length(body.len()),
    );
    response.extend_from_slice(body);
    response
}
