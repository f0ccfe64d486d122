//! [`WireReader`]: the connection a stream consumer's live reads block on,
//! speaking RESP through `redis-protocol` rather than through redis-rs.
//!
//! At 100,000 entries a second, redis-rs's reply parser (combine, building
//! a `Value` tree with a `Vec` per string) was a fifth of the server's CPU.
//! `redis-protocol` parses with nom and hands out slices of the read buffer
//! (`Bytes`), so an entry's body reaches the hub without a copy. Only this
//! one connection, which carries a pipeline per batch (the cursor's SET,
//! XREADGROUP and a sharded stream's TIME/XLEN), is ours; every other
//! command of the consumer stays on redis-rs.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, RedisError, RedisResult};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::link::LinkError;

/// Bytes asked of the socket per read while a reply is incomplete.
const READ_CHUNK: usize = 64 * 1024;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection, one pipeline at a time: write it, read its replies.
pub(crate) struct WireReader {
    io: Box<dyn Io>,
    buf: BytesMut,
    /// How long one pipeline may take to be answered (BLOCK included).
    response: Duration,
    /// The largest reply buffered before the connection gives up on it
    /// (Redis allows 512 MB strings; a publisher must not make us hold
    /// them).
    max_reply: usize,
}

impl std::fmt::Debug for WireReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireReader")
            .field("buffered", &self.buf.len())
            .field("response", &self.response)
            .finish()
    }
}

impl WireReader {
    /// Connects to `info`'s server within `connect`, authenticates and
    /// selects its database as redis-rs would.
    pub(crate) async fn open(
        info: &ConnectionInfo,
        connect: Duration,
        response: Duration,
        max_reply: usize,
    ) -> Result<Self, LinkError> {
        let io = within(connect, "connect", dial(info.addr())).await??;
        let mut reader = Self {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
            response: connect,
            max_reply,
        };
        let settings = info.redis_settings();
        let mut hello = redis::pipe();
        if let Some(password) = settings.password() {
            let auth = hello.cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
        }
        if settings.db() != 0 {
            hello.cmd("SELECT").arg(settings.db());
        }
        if !hello.is_empty() {
            for reply in reader.query(&hello).await? {
                check(reply)?;
            }
        }
        reader.response = response;
        Ok(reader)
    }

    /// Sends `pipe` and returns one reply per command, in order (error
    /// replies included, as [`BytesFrame::Error`]).
    pub(crate) async fn query(&mut self, pipe: &Pipeline) -> Result<Vec<BytesFrame>, LinkError> {
        let packed = pipe.get_packed_pipeline();
        within(
            self.response,
            "a stream read",
            self.exchange(&packed, pipe.len()),
        )
        .await?
    }

    async fn exchange(
        &mut self,
        packed: &[u8],
        replies: usize,
    ) -> Result<Vec<BytesFrame>, LinkError> {
        self.io.write_all(packed).await.map_err(io_error)?;
        let mut out = Vec::with_capacity(replies);
        while out.len() < replies {
            match decode_bytes_mut(&mut self.buf).map_err(|e| parse_error(&e.to_string()))? {
                Some((frame, _, _)) => out.push(frame),
                None => self.fill().await?,
            }
        }
        Ok(out)
    }

    /// Reads more of an incomplete reply: at least one read, then whatever
    /// else has already arrived. The parser starts over on every attempt,
    /// so parsing after each chunk of a large reply would parse it several
    /// times over.
    async fn fill(&mut self) -> Result<(), LinkError> {
        self.check_size()?;
        self.buf.reserve(READ_CHUNK);
        if self.io.read_buf(&mut self.buf).await.map_err(io_error)? == 0 {
            return Err(LinkError::Closed);
        }
        while self.buf.len() < self.max_reply {
            self.buf.reserve(READ_CHUNK);
            // `read_buf` is cancel safe: a read that would wait is dropped
            // with nothing lost. A closed peer is seen on the next fill,
            // after what it sent before closing has been parsed.
            match self.io.read_buf(&mut self.buf).now_or_never() {
                Some(Ok(n)) if n > 0 => continue,
                Some(Err(error)) => return Err(io_error(error)),
                _ => break,
            }
        }
        Ok(())
    }

    fn check_size(&self) -> Result<(), LinkError> {
        match self.buf.len() >= self.max_reply {
            true => Err(parse_error(&format!(
                "a reply is larger than {} bytes",
                self.max_reply
            ))),
            false => Ok(()),
        }
    }
}

async fn dial(addr: &ConnectionAddr) -> Result<Box<dyn Io>, LinkError> {
    match addr {
        ConnectionAddr::Tcp(host, port) => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(io_error)?;
            stream.set_nodelay(true).map_err(io_error)?;
            Ok(Box::new(stream))
        }
        ConnectionAddr::Unix(path) => Ok(Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .map_err(io_error)?,
        )),
        other => Err(LinkError::Redis(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "unsupported address for a stream reader",
            format!("{other}"),
        )))),
    }
}

/// `future`, or [`LinkError::Timeout`] after `after`.
async fn within<T>(
    after: Duration,
    what: &'static str,
    future: impl std::future::Future<Output = T>,
) -> Result<T, LinkError> {
    tokio::time::timeout(after, future)
        .await
        .map_err(|_| LinkError::Timeout { what, after })
}

/// An error reply as the error redis-rs would give (its code first:
/// `NOGROUP`, `MOVED`, ...); any other reply as it is.
pub(crate) fn check(reply: BytesFrame) -> RedisResult<BytesFrame> {
    match reply {
        BytesFrame::Error(message) => {
            let (code, detail) = message.split_once(' ').unwrap_or((&message, ""));
            Err(redis::make_extension_error(
                code.to_owned(),
                Some(detail.to_owned()),
            ))
        }
        other => Ok(other),
    }
}

fn io_error(error: std::io::Error) -> LinkError {
    LinkError::Redis(RedisError::from(error))
}

fn parse_error(detail: &str) -> LinkError {
    LinkError::Redis(RedisError::from((
        ErrorKind::Parse,
        "bad reply on the stream reader",
        detail.to_owned(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that reads one request, then answers `reply` in chunks of
    /// `chunk` bytes and closes.
    async fn server(reply: &'static [u8], chunk: usize) -> ConnectionInfo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            for part in reply.chunks(chunk) {
                let _ = socket.write_all(part).await;
                let _ = socket.flush().await;
                tokio::task::yield_now().await;
            }
        });
        format!("redis://{addr}").parse::<ConnectionInfo>().unwrap()
    }

    async fn ask(info: &ConnectionInfo, max_reply: usize) -> Result<Vec<BytesFrame>, LinkError> {
        let second = Duration::from_secs(5);
        let mut reader = WireReader::open(info, second, second, max_reply).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg("s").arg("g").arg("1-1");
        pipe.cmd("XREADGROUP").arg("GROUP");
        reader.query(&pipe).await
    }

    const REPLIES: &[u8] =
        b":1\r\n*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$4\r\nbody\r\n$2\r\n{}\r\n";

    #[tokio::test]
    async fn replies_split_across_reads_come_back_whole_and_in_order() {
        let replies = ask(&server(REPLIES, 3).await, 1 << 20).await.unwrap();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0], BytesFrame::Integer(1));
        let entries = super::super::raw::entries_of_read(replies[1].clone()).unwrap();
        assert_eq!(entries[0].id, "1-1");
        assert_eq!(entries[0].body.as_deref(), Some(&b"{}"[..]));
    }

    #[tokio::test]
    async fn an_oversized_or_cut_reply_is_an_error_not_a_hang() {
        let too_big = ask(&server(REPLIES, 8).await, 16).await.unwrap_err();
        assert!(
            too_big.to_string().contains("larger than 16 bytes"),
            "{too_big}"
        );
        let cut = ask(&server(b":1\r\n*1\r\n", 64).await, 1 << 20).await;
        assert!(matches!(cut, Err(LinkError::Closed)), "{cut:?}");
        let garbage = ask(&server(b"?what\r\n", 64).await, 1 << 20).await;
        assert!(garbage.is_err());
    }

    /// A server that answers the connection's greeting with `greeting`
    /// and hands back what the greeting was.
    async fn greeter(
        greeting: &'static [u8],
    ) -> (ConnectionInfo, tokio::sync::oneshot::Receiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let n = socket.read(&mut request).await.unwrap_or(0);
            request.truncate(n);
            let _ = tx.send(request);
            let _ = socket.write_all(greeting).await;
            // Hold the connection until the client is done with it.
            let _ = socket.read(&mut [0u8; 64]).await;
        });
        let url = format!("redis://alice:s3cret@{addr}/3");
        (url.parse::<ConnectionInfo>().unwrap(), rx)
    }

    #[tokio::test]
    async fn credentials_and_database_of_the_url_are_sent_first() {
        let second = Duration::from_secs(5);
        let (info, greeting) = greeter(b"+OK\r\n+OK\r\n").await;
        WireReader::open(&info, second, second, 1024).await.unwrap();
        let sent = String::from_utf8(greeting.await.unwrap()).unwrap();
        let auth = "*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$6\r\ns3cret\r\n";
        assert!(sent.starts_with(auth), "{sent:?}");
        assert!(
            sent.ends_with("*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"),
            "{sent:?}"
        );

        let (info, _) = greeter(b"-WRONGPASS invalid username-password pair\r\n+OK\r\n").await;
        let refused = WireReader::open(&info, second, second, 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, LinkError::Redis(e) if e.code() == Some("WRONGPASS")),
            "{refused}"
        );
    }

    #[test]
    fn error_replies_keep_their_code() {
        let error = check(BytesFrame::Error("NOGROUP No such key".into())).unwrap_err();
        assert_eq!(error.code(), Some("NOGROUP"));
        assert!(check(BytesFrame::Integer(3)).is_ok());
    }
}
