//! A raw HTTP/1.1 request head over a fresh socket, and the answer's
//! status line and headers read back, for tests that must see exactly what
//! the server wrote (refusals, streams) rather than what a client library
//! makes of it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest wait for one line of the answer: a hang guard, not a timing
/// assertion.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// Connects to `addr` and writes `first_lines` (request line and the
/// headers the caller always sends, each ending in CRLF), then `headers`,
/// then the blank line. Returns the socket, buffered for reading.
pub async fn send_head(
    addr: SocketAddr,
    first_lines: &str,
    headers: &[(&str, &str)],
) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = first_lines.to_owned();
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    BufReader::new(stream)
}

/// Reads the status line and the headers (names lower-cased) of an answer.
pub async fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let status_line = read_line(reader).await;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader).await;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    (status, headers)
}

/// One line of the answer without its line ending; fails the test when the
/// connection closes first or nothing comes within [`LINE_TIMEOUT`].
pub async fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let n = tokio::time::timeout(LINE_TIMEOUT, reader.read_line(&mut line))
        .await
        .expect("a line in time")
        .expect("read a line");
    assert!(n > 0, "connection closed while reading the answer");
    line.trim_end_matches(['\r', '\n']).to_owned()
}
