//! A plain HTTP/1.1 client for the tests: writes a GET, reads the status
//! and headers, then the body chunk by chunk (as the server sent them) and
//! as `text/event-stream` blocks.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tickcast_testkit::http;
use tickcast_transport_sse::{FirstBytes, LeanSse};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Longest wait for anything the server should send: a hang guard, not a
/// timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Serves `lean` on an ephemeral port: every connection that starts with
/// `GET /sse` goes to [`LeanSse::serve_connection`]; others are closed.
pub async fn lean_server(lean: LeanSse) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let lean = lean.clone();
            tokio::spawn(async move {
                let Ok(first) = FirstBytes::read(&mut socket).await else {
                    return;
                };
                if first.is_sse() {
                    lean.serve_connection(socket, &first).await;
                }
            });
        }
    });
    addr
}

/// One `text/event-stream` block (the lines up to a blank line).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    /// Comment lines (`: ping` gives `ping`).
    pub comments: Vec<String>,
    /// `id:`
    pub id: Option<String>,
    /// `event:`
    pub event: Option<String>,
    /// `data:` lines joined with `\n`, as a browser would.
    pub data: Option<String>,
    /// `retry:`
    pub retry: Option<String>,
}

impl Block {
    /// The data parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.data.as_deref().expect("a block with data"))
            .expect("data is JSON")
    }

    fn parse(text: &str) -> Self {
        let mut block = Block::default();
        let mut data: Vec<&str> = Vec::new();
        for line in text.split('\n') {
            if let Some(comment) = line.strip_prefix(':') {
                block.comments.push(comment.trim_start().to_owned());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => block.id = Some(value.to_owned()),
                "event" => block.event = Some(value.to_owned()),
                "data" => data.push(value),
                "retry" => block.retry = Some(value.to_owned()),
                other => panic!("unexpected field {other:?} in {text:?}"),
            }
        }
        if !data.is_empty() {
            block.data = Some(data.join("\n"));
        }
        block
    }
}

/// A response being read.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
    content_length: Option<usize>,
    ended: bool,
    /// Body text read but not yet returned as blocks.
    pending: String,
}

/// Sends `GET path` with `headers` and reads the response head.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let first_lines =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    let reader = http::send_head(addr, &first_lines, headers).await;
    Response::read(reader).await
}

/// Writes `request` as is on a new connection and reads the response head.
pub async fn send_raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    Response::read(BufReader::new(stream)).await
}

impl Response {
    /// Reads the status and headers of the answer on `reader`.
    async fn read(mut reader: BufReader<TcpStream>) -> Self {
        let (status, headers) = http::read_head(&mut reader).await;
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let content_length = header("content-length").and_then(|v| v.parse().ok());
        Self {
            status,
            headers,
            reader,
            chunked,
            content_length,
            ended: false,
            pending: String::new(),
        }
    }

    /// The socket, to write more on it.
    pub fn socket(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Reads what the server still sends until it closes the connection
    /// (end of file or a reset); fails the test after [`PATIENCE`]. Returns
    /// what it read.
    pub async fn until_closed(mut self) -> Vec<u8> {
        let mut seen = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            let mut buf = [0u8; 4096];
            loop {
                match self.reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .expect("the server closes the connection");
        seen
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next body chunk exactly as sent; `None` at the end of the body.
    pub async fn chunk(&mut self) -> Option<Vec<u8>> {
        if self.ended {
            return None;
        }
        if !self.chunked {
            // A body with a length: all of it at once.
            self.ended = true;
            let mut body = vec![0; self.content_length.unwrap_or(0)];
            tokio::time::timeout(PATIENCE, self.reader.read_exact(&mut body))
                .await
                .expect("timed out reading the body")
                .expect("read error");
            return Some(body);
        }
        let size_line = http::read_line(&mut self.reader).await;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
        let mut chunk = vec![0; size + 2];
        tokio::time::timeout(PATIENCE, self.reader.read_exact(&mut chunk))
            .await
            .expect("timed out reading a chunk")
            .expect("read error");
        assert_eq!(&chunk[size..], b"\r\n", "chunk not followed by CRLF");
        chunk.truncate(size);
        if size == 0 {
            self.ended = true;
            return None;
        }
        Some(chunk)
    }

    /// The whole (non-streaming) body as JSON.
    pub async fn json(&mut self) -> serde_json::Value {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await {
            body.extend(chunk);
        }
        serde_json::from_slice(&body).expect("a JSON body")
    }

    /// True when no body text is waiting to be returned as blocks.
    pub fn nothing_pending(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next event-stream block; `None` when the body ended.
    pub async fn block(&mut self) -> Option<Block> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let text = self.pending[..end].to_owned();
                self.pending.drain(..end + 2);
                return Some(Block::parse(&text));
            }
            let chunk = self.chunk().await?;
            self.pending
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8 body"));
        }
    }

    /// The next block that is not a ping comment.
    pub async fn next(&mut self) -> Block {
        loop {
            let block = self.block().await.expect("the stream ended");
            if block.comments.iter().any(|c| c == "ping") && block.event.is_none() {
                continue;
            }
            return block;
        }
    }

    /// The next block, which must be the named event `name`.
    pub async fn expect(&mut self, name: &str) -> Block {
        let block = self.next().await;
        assert_eq!(block.event.as_deref(), Some(name), "{block:?}");
        block
    }
}
