//! `--via redis` into a stream, lean: each sender keeps its own
//! connection to Redis, writes a batch as one pipeline of `XADD` commands
//! encoded straight into a buffer it reuses (the stamps spliced into the
//! bodies as they are written), and reads the replies with a parser that
//! only tells an entry id from an error.
//!
//! The commands are the ones the server's own publisher
//! (`tickcast_ingest_redis::RedisPublisher`, Streams mode) sends,
//! `XADD <stream> MAXLEN ~ <n> * channel <c> body <b>`, so the server
//! reads them the same way. Why not that publisher: at 80,000 events/s
//! its redis-rs pipelines (a `Cmd` per event, a `redis::Value` tree per
//! reply, the connection driver on another task) were a third of the
//! generator's CPU, and every body crossed threads to be freed.
//!
//! Only plain TCP URLs (`redis://[user:password@]host:port[/db]`); for
//! anything else (TLS, a Unix socket) [`XaddTarget::for_url`] answers
//! `None` and the generator uses the server's publisher.

use std::time::Duration;

use bytes::Bytes;
use redis::{ConnectionAddr, IntoConnectionInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stamp::{push_number, write_stamp};

/// The stream fields the server's Streams source reads (ingest-redis's
/// `CHANNEL_FIELD`, `BODY_FIELD`).
const CHANNEL_FIELD: &str = "channel";
const BODY_FIELD: &str = "body";
/// Longest a reply line (an entry id or an error) may be.
const MAX_LINE: usize = 64 << 10;

/// Where to XADD, and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XaddTarget {
    /// `host:port`.
    addr: String,
    /// `AUTH` (user, password) when the URL has a password.
    auth: Option<(Option<String>, String)>,
    /// `SELECT` when not 0.
    db: i64,
    /// Trims with `MAXLEN ~ n` (the server publisher's default).
    maxlen: Option<u64>,
    /// Longest a connection or one batch may take.
    timeout: Duration,
    /// The stream key.
    stream: String,
}

impl XaddTarget {
    /// The target for `url` and `stream`, or `None` when `url` is not
    /// plain TCP; an error for a URL that does not parse.
    pub fn for_url(
        url: &str,
        stream: &str,
        maxlen: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<Self>, String> {
        let info = url.into_connection_info().map_err(|e| e.to_string())?;
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Ok(None);
        };
        let settings = info.redis_settings();
        Ok(Some(Self {
            addr: format!("{host}:{port}"),
            auth: settings
                .password()
                .map(|p| (settings.username().map(str::to_owned), p.to_owned())),
            db: settings.db(),
            maxlen,
            timeout,
            stream: stream.to_owned(),
        }))
    }

    /// The part of each command before the body's length, for `channel`.
    fn prefix(&self, channel: &str) -> Vec<u8> {
        let mut args: Vec<&[u8]> = vec![b"XADD", self.stream.as_bytes()];
        let maxlen = self.maxlen.map(|n| n.to_string());
        if let Some(n) = &maxlen {
            args.extend([&b"MAXLEN"[..], b"~", n.as_bytes()]);
        }
        args.extend([
            &b"*"[..],
            CHANNEL_FIELD.as_bytes(),
            channel.as_bytes(),
            BODY_FIELD.as_bytes(),
        ]);
        // The body is the last argument.
        let mut out = format!("*{}\r\n", args.len() + 1).into_bytes();
        for arg in args {
            bulk(&mut out, arg);
        }
        out
    }
}

/// One sender's connection, with the buffers it reuses.
#[derive(Debug)]
pub struct XaddConn {
    stream: TcpStream,
    /// The pipeline being written.
    out: Vec<u8>,
    /// Replies read; `input[pos..]` not parsed yet.
    input: Vec<u8>,
    pos: usize,
    /// The commands' prefix, and the stream and channel it is for.
    prefix: Vec<u8>,
    prefix_stream: String,
    channel: String,
}

impl XaddConn {
    /// Connects to `target` and logs in.
    pub async fn open(target: &XaddTarget) -> Result<Self, String> {
        let connect = async {
            let stream = TcpStream::connect(&target.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let mut conn = Self {
                stream,
                out: Vec::new(),
                input: Vec::with_capacity(16 << 10),
                pos: 0,
                prefix: Vec::new(),
                prefix_stream: String::new(),
                channel: String::new(),
            };
            if let Some((user, password)) = &target.auth {
                let mut args: Vec<&[u8]> = vec![b"AUTH"];
                args.extend(user.as_deref().map(str::as_bytes));
                args.push(password.as_bytes());
                conn.command(&args, "AUTH").await?;
            }
            if target.db != 0 {
                let db = target.db.to_string();
                conn.command(&[b"SELECT", db.as_bytes()], "SELECT").await?;
            }
            Ok(conn)
        };
        tokio::time::timeout(target.timeout, connect)
            .await
            .unwrap_or_else(|_| Err(format!("no connection within {:?}", target.timeout)))
    }

    /// XADDs `templates`, stamped as events `first_seq..` sent at
    /// `sent_ns`, to `channel` in one pipeline. `results` gets one entry
    /// per event (`Err`: Redis refused it); an error fails the whole
    /// batch (the connection is then no good).
    pub async fn publish(
        &mut self,
        target: &XaddTarget,
        channel: &str,
        first_seq: u32,
        templates: &[Bytes],
        sent_ns: u64,
        results: &mut Vec<Result<(), String>>,
    ) -> Result<(), String> {
        if self.channel != channel || self.prefix_stream != target.stream || self.prefix.is_empty()
        {
            self.prefix = target.prefix(channel);
            channel.clone_into(&mut self.channel);
            target.stream.clone_into(&mut self.prefix_stream);
        }
        self.encode(first_seq, templates, sent_ns);
        let exchange = async {
            self.stream
                .write_all(&self.out)
                .await
                .map_err(|e| format!("write: {e}"))?;
            results.clear();
            for _ in templates {
                let reply = self.reply().await?;
                results.push(reply.and_then(|reply| check_id(&reply)));
            }
            Ok(())
        };
        tokio::time::timeout(target.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", target.timeout)))
    }

    /// The pipeline of one batch into `out`.
    fn encode(&mut self, first_seq: u32, templates: &[Bytes], sent_ns: u64) {
        let size: usize = templates
            .iter()
            .map(|t| self.prefix.len() + t.len() + 64)
            .sum();
        self.out.clear();
        self.out.reserve(size);
        let mut stamp = Vec::with_capacity(64);
        for (i, template) in templates.iter().enumerate() {
            stamp.clear();
            write_stamp(&mut stamp, first_seq + i as u32, sent_ns);
            // Templates are JSON objects with fields: their `{` makes way
            // for the stamp's.
            let body = template.get(1..).unwrap_or_default();
            self.out.extend_from_slice(&self.prefix);
            self.out.push(b'$');
            push_number(&mut self.out, (stamp.len() + body.len()) as u64);
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&stamp);
            self.out.extend_from_slice(body);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Sends one command and expects `+OK`.
    async fn command(&mut self, args: &[&[u8]], what: &str) -> Result<(), String> {
        self.out.clear();
        self.out
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            bulk(&mut self.out, arg);
        }
        self.stream
            .write_all(&self.out)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        match self.reply().await? {
            Err(error) => Err(format!("{what}: {error}")),
            Ok(Reply::Ok) => Ok(()),
            Ok(other) => Err(format!("{what}: unexpected answer {other:?}")),
        }
    }

    /// The next reply: a bulk string or `+` status as `Ok`, an error
    /// reply as `Err` (an item refused); anything else, or a broken
    /// connection, is an error of the whole exchange.
    async fn reply(&mut self) -> Result<Result<Reply, String>, String> {
        loop {
            match parse_reply(&self.input[self.pos..])? {
                Some((reply, used)) => {
                    self.pos += used;
                    return Ok(reply);
                }
                None => self.read_more().await?,
            }
        }
    }

    /// Reads more replies, after moving the unparsed rest to the front.
    async fn read_more(&mut self) -> Result<(), String> {
        self.input.drain(..self.pos);
        self.pos = 0;
        if self.input.len() >= MAX_LINE {
            return Err("a reply too long".to_owned());
        }
        self.input.reserve(16 << 10);
        match self.stream.read_buf(&mut self.input).await {
            Ok(0) => Err("connection closed".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

/// One parsed reply (an error reply as `Err`) and the bytes it took.
type Parsed = (Result<Reply, String>, usize);

/// A reply that is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// `+OK`.
    Ok,
    /// A bulk string (an entry id).
    Id(String),
}

/// The reply at the start of `input` and the bytes it takes, `None` while
/// incomplete. `Err` outside: not a reply XADD, AUTH or SELECT gives.
fn parse_reply(input: &[u8]) -> Result<Option<Parsed>, String> {
    // memchr, not memmem::find: that builds a searcher per call.
    let Some(newline) = memchr::memchr(b'\n', input) else {
        return match input.len() < MAX_LINE {
            true => Ok(None),
            false => Err("a reply line too long".to_owned()),
        };
    };
    let end = newline.saturating_sub(1);
    if newline == 0 || input[end] != b'\r' {
        return Err("a reply line without its CR".to_owned());
    }
    let line = &input[1..end];
    let text = || String::from_utf8_lossy(line).into_owned();
    match input[0] {
        b'+' if line == b"OK" => Ok(Some((Ok(Reply::Ok), end + 2))),
        b'-' => Ok(Some((Err(text()), end + 2))),
        b'$' => {
            let len: usize = std::str::from_utf8(line)
                .ok()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n < MAX_LINE)
                .ok_or_else(|| format!("a bulk reply of length {:?}", text()))?;
            let start = end + 2;
            match input.get(start..start + len + 2) {
                Some(data) if data.ends_with(b"\r\n") => {
                    let id = String::from_utf8_lossy(&data[..len]).into_owned();
                    Ok(Some((Ok(Reply::Id(id)), start + len + 2)))
                }
                Some(_) => Err("a bulk reply without its CRLF".to_owned()),
                None => Ok(None),
            }
        }
        _ => Err(format!("an unexpected reply {:?}", text())),
    }
}

/// An XADD reply must be an entry id, `<ms>-<seq>`.
fn check_id(reply: &Reply) -> Result<(), String> {
    let Reply::Id(id) = reply else {
        return Err(format!("XADD answered {reply:?}"));
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match id.split_once('-') {
        Some((ms, seq)) if digits(ms) && digits(seq) => Ok(()),
        _ => Err(format!("XADD answered {id:?}, not an entry id")),
    }
}

/// Appends `arg` as a RESP bulk string.
fn bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    push_number(out, arg.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
