//! The clients' WebSocket side, lean: the upgrade written and read over
//! the raw TCP stream, then the server's frames parsed in place in one
//! read buffer per connection.
//!
//! Why not tungstenite: at 80,000 events/s its reading was a third of the
//! generator's CPU. It zeroes its read buffer before every read, makes a
//! `Bytes` per frame (freed on whichever thread the task runs next), and
//! its stream always reads until the socket answers `EAGAIN`, one wasted
//! `recvfrom` per wake-up. Here a wake-up reads once into the spare room
//! of the buffer (grown for a busy connection, small for an idle one),
//! [`WsClient::drain`] hands every complete text frame to the caller as a
//! `&str` borrowed from the buffer, and the buffer lives as long as the
//! connection.
//!
//! It is a client of tickcast (and of the floor server) only, but a
//! strict one: server frames must be unmasked, without reserved bits,
//! control frames short and final; text must be UTF-8. Fragmented
//! messages are put together; pings are answered; a close frame ends the
//! connection with its code and reason.

use std::io;
use std::ops::Range;

use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::floor::wire::frame_header;

/// Longest frame accepted (tungstenite's default).
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// Longest message, its fragments together (tungstenite's default).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Longest upgrade response head.
const MAX_HEAD_BYTES: usize = 16 << 10;
/// The most the read buffer grows to when reads keep filling it: one read
/// then takes everything a busy connection got since the last.
pub const MAX_READ_BUFFER: usize = 256 << 10;
/// The least spare room a read is given.
const MIN_READ: usize = 1024;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// An upgraded connection to the server.
#[derive(Debug)]
pub struct WsClient {
    stream: TcpStream,
    /// What was read; `buf[pos..]` is not handled yet.
    buf: Vec<u8>,
    pos: usize,
    /// The message being put together from fragments: whether it is
    /// text, and its bytes so far.
    partial: Option<(bool, Vec<u8>)>,
    /// A ping's payload, answered before the next read.
    pong: Option<Vec<u8>>,
    /// Why the connection ended, once a close frame came.
    closed: Option<String>,
}

/// A frame header: its length, and what the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    /// Bytes of the header itself.
    len: usize,
    /// Bytes of the payload after it.
    payload: usize,
}

impl WsClient {
    /// Upgrades `stream` to WebSocket at `path` on `host`, offering the
    /// subprotocol `protocol` (the answer must not name another). The
    /// read buffer starts at `read_buffer` bytes.
    pub async fn connect(
        mut stream: TcpStream,
        host: &str,
        path: &str,
        protocol: &str,
        read_buffer: usize,
    ) -> Result<Self, String> {
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let mut buf = Vec::with_capacity(read_buffer.max(MIN_READ));
        // The server may send frames right behind its answer: they stay
        // in the buffer, after the head.
        let head = loop {
            if let Some(at) = memmem::find(&buf, b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() >= MAX_HEAD_BYTES {
                return Err("handshake: response head too long".to_owned());
            }
            buf.reserve(MIN_READ);
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err("handshake: connection closed".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("handshake: {e}")),
            }
        };
        let expected = derive_accept_key(key.as_bytes());
        check_answer(&buf[..head], &expected, protocol).map_err(|e| format!("handshake: {e}"))?;
        Ok(Self {
            stream,
            buf,
            pos: head,
            partial: None,
            pong: None,
            closed: None,
        })
    }

    /// Writes `text` frames, masked, in one write.
    pub async fn send_texts(&mut self, texts: &[String]) -> Result<(), String> {
        let mut out = Vec::new();
        for text in texts {
            client_frame(&mut out, OP_TEXT, text.as_bytes());
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| format!("write error: {e}"))
    }

    /// Waits until more input has arrived (answering a pending ping
    /// first). An error says why the connection ended.
    pub async fn fill(&mut self) -> Result<(), String> {
        if let Some(reason) = &self.closed {
            return Err(reason.clone());
        }
        if let Some(payload) = self.pong.take() {
            let mut out = Vec::with_capacity(payload.len() + 6);
            client_frame(&mut out, OP_PONG, &payload);
            self.stream
                .write_all(&out)
                .await
                .map_err(|e| format!("write error: {e}"))?;
        }
        self.make_room()?;
        let spare = self.buf.capacity() - self.buf.len();
        let n = self.read().await.map_err(|e| format!("read error: {e}"))?;
        if n == 0 {
            return Err("connection closed".to_owned());
        }
        // Reads that fill the buffer: a busy connection, give it room.
        if n == spare && self.buf.capacity() < MAX_READ_BUFFER {
            self.buf.reserve(self.buf.capacity());
        }
        Ok(())
    }

    /// Hands each complete text message in the buffer to `on_text`, in
    /// order, until it answers `false` (the rest stays for the next
    /// call). Binary messages and pongs are skipped, pings noted for
    /// [`fill`](Self::fill) to answer; a close frame or a protocol error
    /// ends the connection (the error says why).
    pub fn drain(&mut self, mut on_text: impl FnMut(&str) -> bool) -> Result<(), String> {
        while let Some(header) = parse_header(&self.buf[self.pos..])? {
            let start = self.pos + header.len;
            let end = start + header.payload;
            if end > self.buf.len() {
                break;
            }
            self.pos = end;
            let text = match self.on_frame(header, start..end)? {
                Some(Message::Here(range)) => utf8(&self.buf[range])?,
                Some(Message::Assembled(bytes)) => {
                    // Rare (tickcast does not fragment): keep it simple.
                    let text = utf8(&bytes)?.to_owned();
                    if !on_text(&text) {
                        return Ok(());
                    }
                    continue;
                }
                None => continue,
            };
            if !on_text(text) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The next text message, owned (the setup's frames).
    pub async fn next_text(&mut self) -> Result<String, String> {
        loop {
            let mut next = None;
            self.drain(|text| {
                next = Some(text.to_owned());
                false
            })?;
            if let Some(text) = next {
                return Ok(text);
            }
            self.fill().await?;
        }
    }

    /// The close handshake: a close frame (normal closure), then reads
    /// until the server's close frame or the end of the stream.
    pub async fn close(&mut self) {
        let mut out = Vec::with_capacity(8);
        client_frame(&mut out, OP_CLOSE, &1000u16.to_be_bytes());
        if self.stream.write_all(&out).await.is_err() {
            return;
        }
        loop {
            if self.drain(|_| true).is_err() || self.fill().await.is_err() {
                return;
            }
        }
    }

    /// What one frame means: a text message whose bytes are in the buffer
    /// or were put together, or nothing to hand on.
    fn on_frame(
        &mut self,
        header: Header,
        payload: Range<usize>,
    ) -> Result<Option<Message>, String> {
        let bytes = &self.buf[payload.clone()];
        match (header.opcode, header.fin) {
            (OP_TEXT | OP_BINARY, _) if self.partial.is_some() => {
                Err("protocol error: a new message before the fragmented one ended".to_owned())
            }
            (OP_TEXT, true) => Ok(Some(Message::Here(payload))),
            (OP_BINARY, true) => Ok(None),
            (OP_TEXT | OP_BINARY, false) => {
                self.partial = Some((header.opcode == OP_TEXT, bytes.to_vec()));
                Ok(None)
            }
            (OP_CONTINUATION, fin) => {
                let Some((_, so_far)) = &mut self.partial else {
                    return Err("protocol error: a continuation frame outside a message".to_owned());
                };
                if so_far.len() + bytes.len() > MAX_MESSAGE_BYTES {
                    return Err("protocol error: message too long".to_owned());
                }
                so_far.extend_from_slice(bytes);
                match fin {
                    true => Ok(self
                        .partial
                        .take()
                        .and_then(|(text, bytes)| text.then_some(Message::Assembled(bytes)))),
                    false => Ok(None),
                }
            }
            (OP_CLOSE, _) => {
                let reason = close_reason(bytes);
                self.closed = Some(reason.clone());
                Err(reason)
            }
            (OP_PING, _) => {
                self.pong = Some(bytes.to_vec());
                Ok(None)
            }
            (OP_PONG, _) => Ok(None),
            (opcode, _) => Err(format!("protocol error: unknown opcode {opcode}")),
        }
    }

    /// Moves what is not handled yet to the front of the buffer, and makes
    /// sure the next read has room (for the whole of a frame that is
    /// bigger than the buffer).
    fn make_room(&mut self) -> Result<(), String> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
            self.pos = 0;
        }
        let needed = parse_header(&self.buf)?.map_or(0, |h| h.len + h.payload);
        let room = needed.saturating_sub(self.buf.len()).max(MIN_READ);
        if self.buf.capacity() - self.buf.len() < room {
            self.buf.reserve(room);
        }
        Ok(())
    }

    /// One read into the buffer's spare room, once the socket is
    /// readable. A short read took everything the socket held, so the
    /// readiness is cleared at once instead of by a read that finds
    /// nothing: one `recvfrom` per wake-up instead of two.
    async fn read(&mut self) -> io::Result<usize> {
        let spare = self.buf.capacity() - self.buf.len();
        loop {
            self.stream.readable().await?;
            let mut got = None;
            // try_io clears the readiness it saw before the closure ran
            // when the closure answers WouldBlock: data that arrives
            // during the read brings a newer readiness that stays.
            let outcome = self.stream.try_io(Interest::READABLE, || {
                let n = self.stream.try_read_buf(&mut self.buf)?;
                got = Some(n);
                match n < spare {
                    true => Err(io::ErrorKind::WouldBlock.into()),
                    false => Ok(()),
                }
            });
            match (outcome, got) {
                (_, Some(n)) => return Ok(n),
                (Err(e), None) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                // Spurious readiness (the read found nothing): wait again.
                (_, None) => continue,
            }
        }
    }
}

/// A text message: where it is in the buffer, or put together from
/// fragments.
enum Message {
    Here(Range<usize>),
    Assembled(Vec<u8>),
}

/// The header at the start of `bytes`, `None` while incomplete; an error
/// for what a server must not send.
fn parse_header(bytes: &[u8]) -> Result<Option<Header>, String> {
    let (Some(&b0), Some(&b1)) = (bytes.first(), bytes.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err("protocol error: reserved bits set".to_owned());
    }
    if b1 & 0x80 != 0 {
        return Err("protocol error: a masked frame from the server".to_owned());
    }
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
    let (len, payload) = match b1 & 0x7F {
        126 => match bytes.get(2..4) {
            Some(n) => (4, u64::from(u16::from_be_bytes([n[0], n[1]]))),
            None => return Ok(None),
        },
        127 => match bytes.get(2..10).and_then(|n| <[u8; 8]>::try_from(n).ok()) {
            Some(n) => (10, u64::from_be_bytes(n)),
            None => return Ok(None),
        },
        n => (2, u64::from(n)),
    };
    if payload > MAX_FRAME_BYTES as u64 {
        return Err(format!("protocol error: a frame of {payload} bytes"));
    }
    if opcode >= OP_CLOSE && (!fin || payload > 125) {
        return Err("protocol error: a fragmented or long control frame".to_owned());
    }
    Ok(Some(Header {
        fin,
        opcode,
        len,
        payload: payload as usize,
    }))
}

/// Appends a client frame (final, masked, as RFC 6455 requires of
/// clients) of `opcode` carrying `payload`.
fn client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    frame_header(out, 0x80 | opcode, true, payload.len());
    let mask: [u8; 4] = rand::random();
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// The ending of a close frame's payload: its code and reason.
fn close_reason(payload: &[u8]) -> String {
    match payload {
        [hi, lo, reason @ ..] => format!(
            "closed by the server: {} {}",
            u16::from_be_bytes([*hi, *lo]),
            String::from_utf8_lossy(reason)
        ),
        _ => "closed by the server".to_owned(),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "read error: a text frame is not UTF-8".to_owned())
}

/// Checks the upgrade answer `head` (up to the blank line): `101`, the
/// accept key, and no subprotocol other than `protocol`.
fn check_answer(head: &[u8], accept: &str, protocol: &str) -> Result<(), String> {
    let head = std::str::from_utf8(head).map_err(|_| "the answer is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("HTTP error: {status}"));
    }
    let (mut accepted, mut upgraded) = (false, false);
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let value = value.trim();
        if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accepted = value == accept;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgraded = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") && value != protocol {
            return Err(format!("the server chose subprotocol {value:?}"));
        }
    }
    match (upgraded, accepted) {
        (false, _) => Err("no `Upgrade: websocket` in the answer".to_owned()),
        (true, false) => Err("wrong or missing Sec-WebSocket-Accept".to_owned()),
        (true, true) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
