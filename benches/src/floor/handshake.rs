//! The least a server must do to let a WebSocket client in: read the
//! upgrade request (`GET /floor?conn=N`), answer `101` with the accept key
//! and the subprotocol the client offered. The connection number in the
//! path is how the floor knows which socket is which (tickcast knows it
//! from the subscriptions; the floor has none).

use std::io::{self, ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Longest request head accepted.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// How long a client may take to send its request, and the floor to write
/// a frame to a client that does not read.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the kernel may queue before they are accepted (capped by
/// net.core.somaxconn).
const BACKLOG: i32 = 4096;

/// Raises the listen backlog of `listener` to `BACKLOG`: a ramp opens
/// thousands of connections a second and the floor reads handshakes one
/// at a time, so std's 128 would drop SYNs (clients then wait seconds for
/// a retry and time out).
pub fn deepen_backlog(listener: &TcpListener) -> io::Result<()> {
    // SAFETY: `listen` on a socket this process owns and keeps open; on a
    // socket already listening it only changes the backlog.
    let result = unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An accepted upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The connection's number (`?conn=`).
    pub conn: u32,
    /// The `101 Switching Protocols` answer to write.
    pub response: Vec<u8>,
}

/// Reads an upgrade request head from `stream` and makes its answer.
pub fn read_upgrade(stream: &mut impl Read) -> io::Result<Upgrade> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    // The client sends nothing after its request until it has the answer,
    // so reading up to the blank line never takes a frame's bytes.
    while !head_done(&head)? {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    answer(&head)
}

/// [`read_upgrade`] on a tokio stream.
pub async fn read_upgrade_async(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Upgrade> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head_done(&head)? {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    answer(&head)
}

/// Whether `head` holds the whole request head (an error once it is too
/// long to be one).
fn head_done(head: &[u8]) -> io::Result<bool> {
    if head.ends_with(b"\r\n\r\n") {
        return Ok(true);
    }
    if head.len() >= MAX_HEAD_BYTES {
        return Err(invalid("request head too long"));
    }
    Ok(false)
}

/// The answer to a complete request head.
fn answer(head: &[u8]) -> io::Result<Upgrade> {
    let head = std::str::from_utf8(head).map_err(|_| invalid("request head is not UTF-8"))?;
    parse_upgrade(head).map_err(invalid)
}

/// The answer to a request head (the text up to the blank line).
pub fn parse_upgrade(head: &str) -> Result<Upgrade, &'static str> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    if parts.next() != Some("GET") {
        return Err("not a GET");
    }
    let target = parts.next().ok_or("no request target")?;
    let conn = target
        .strip_prefix("/floor?conn=")
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or("the target is not /floor?conn=N")?;
    let (mut key, mut protocol) = (None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            // The client offers one; answering with the first is enough.
            protocol = value.split(',').next().map(str::trim);
        }
    }
    let key = key.ok_or("no Sec-WebSocket-Key")?;
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(protocol) = protocol {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(protocol);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    Ok(Upgrade {
        conn,
        response: response.into_bytes(),
    })
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what)
}

/// Accepts connections for ever, one handshake at a time: for each valid
/// upgrade, `register` gets the socket (blocking, `TCP_NODELAY`, write
/// timeout [`IO_TIMEOUT`]) and the answer, and must make the socket known
/// to the writer *before* it writes the answer: the generator publishes
/// only once every client has its answer, so the writer then knows every
/// socket. A failed handshake (the generator's reachability probe, a
/// stranger) closes that socket and goes on.
pub fn accept_loop(listener: TcpListener, mut register: impl FnMut(u32, TcpStream, Vec<u8>)) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else {
            // EMFILE and the like: wait rather than spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let prepared = stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| read_upgrade(&mut stream));
        if let Ok(upgrade) = prepared {
            register(upgrade.conn, stream, upgrade.response);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_request_gets_its_accept_key_and_subprotocol() {
        // The example of RFC 6455 section 1.3.
        let head = "GET /floor?conn=42 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: tickcast.v1.json\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let upgrade = read_upgrade(&mut head.as_bytes()).unwrap();
        assert_eq!(upgrade.conn, 42);
        let response = String::from_utf8(upgrade.response).unwrap();
        assert!(response.starts_with("HTTP/1.1 101 "));
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("Sec-WebSocket-Protocol: tickcast.v1.json\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn the_backlog_of_a_listener_can_be_deepened() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        deepen_backlog(&listener).unwrap();
        let addr = listener.local_addr().unwrap();
        // Still listening: a connection is accepted.
        let _client = TcpStream::connect(addr).unwrap();
        assert!(listener.accept().is_ok());
    }

    #[test]
    fn other_requests_are_refused() {
        assert!(parse_upgrade("GET /ws HTTP/1.1\r\nSec-WebSocket-Key: a\r\n\r\n").is_err());
        assert!(
            parse_upgrade("GET /floor?conn=x HTTP/1.1\r\nSec-WebSocket-Key: a\r\n\r\n").is_err()
        );
        assert!(parse_upgrade("POST /floor?conn=1 HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_upgrade("GET /floor?conn=1 HTTP/1.1\r\nHost: x\r\n\r\n").is_err());
        assert!(read_upgrade(&mut &b"GET /floor?conn=1 HTTP/1.1\r\n"[..]).is_err());
        let long = format!("GET /{} HTTP/1.1", "a".repeat(MAX_HEAD_BYTES));
        assert!(read_upgrade(&mut long.as_bytes()).is_err());
    }

    #[tokio::test]
    async fn the_async_reader_agrees() {
        let head =
            b"GET /floor?conn=7 HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let sync = read_upgrade(&mut &head[..]).unwrap();
        let async_ = read_upgrade_async(&mut &head[..]).await.unwrap();
        assert_eq!(sync, async_);
        assert_eq!(async_.conn, 7);
        assert!(
            read_upgrade_async(&mut &b"GET /floor?conn=7 HTTP/1.1\r\n"[..])
                .await
                .is_err()
        );
    }
}
