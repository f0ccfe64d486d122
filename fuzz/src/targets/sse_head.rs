//! Target `sse_head`: a connection's first bytes through the lean `/sse`
//! path, exactly as the binary reads them: [`FirstBytes::read`] (is this
//! `GET /sse`?), then [`LeanSse::read_head`] (httparse, hyper's rules),
//! from a socket that hands over the bytes a few at a time.
//!
//! Input: the first byte sets how many bytes each read returns (1 to 64);
//! the rest is what the client sends, then it closes. The head limits are
//! small (1 KiB, a 256-byte URI, 8 headers) so inputs reach them.
//! Properties: the lean path is taken exactly for `GET /sse ` and
//! `GET /sse?`, and no byte beyond the ninth is read to decide; reading in
//! pieces agrees with [`RequestHead::parse`] of everything the client sent
//! (up to the size limit): the same query and headers for a head that
//! parses, the same status for one that is refused, 431 for one still
//! incomplete at the limit, and "incomplete" only short of it; a parsed
//! head's query is the request target's text after `?` (up to `#`) and
//! what it read past the head is what the client sent next.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use arbitrary::{Result, Unstructured};
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_sse::{FirstBytes, HeadError, HeadLimits, LeanSse, RequestHead, SseConfig};
use tokio::io::{AsyncRead, ReadBuf};

use crate::gen;
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "sse_head",
    about: "the lean /sse path's request head: FirstBytes::read, LeanSse::read_head (httparse) in pieces",
    run,
    generate,
    built_seeds: Vec::new,
    dictionary: &[
        "GET /sse",
        "GET /sse?",
        "GET /sse ",
        " HTTP/1.1\r\n",
        " HTTP/1.0\r\n",
        " HTTP/2.0\r\n",
        "\r\n",
        "\n",
        "\r\n\r\n",
        ": ",
        "Origin: ",
        "Authorization: Bearer ",
        "Last-Event-ID: ",
        "Connection: close",
        "Connection: keep-alive",
        "Content-Length: ",
        "Transfer-Encoding: chunked",
        "#",
        "%",
        "\t",
        "\u{0}",
        "\u{7f}",
    ],
};

/// Small, so that inputs reach every limit.
const LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 1024,
    max_uri_bytes: 256,
    max_headers: 8,
};

/// The endpoint (its hub is never reached: only heads are read).
fn lean() -> &'static LeanSse {
    static LEAN: OnceLock<LeanSse> = OnceLock::new();
    LEAN.get_or_init(|| {
        LeanSse::new(Hub::new(HubConfig::immediate()), SseConfig::default())
            .with_head_limits(LIMITS)
    })
}

/// A client socket that hands over at most `step` bytes per read, then
/// the end of the stream.
struct Pieces<'a> {
    data: &'a [u8],
    step: usize,
    taken: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.data.len().min(self.step).min(buf.remaining());
        let (piece, rest) = self.data.split_at(n);
        buf.put_slice(piece);
        self.data = rest;
        self.taken += n;
        Poll::Ready(Ok(()))
    }
}

/// Runs a future whose reads are always ready to its end.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("waited on a socket that is always ready"),
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&step, sent)) = data.split_first() else {
        return;
    };
    let mut socket = Pieces {
        data: sent,
        step: usize::from(step % 64) + 1,
        taken: 0,
    };
    let first = now(FirstBytes::read(&mut socket)).expect("memory cannot fail");
    let lean_path = sent.starts_with(b"GET /sse ") || sent.starts_with(b"GET /sse?");
    assert_eq!(first.is_sse(), lean_path, "{:?}", first.as_bytes());
    assert!(sent.starts_with(first.as_bytes()));
    assert!(socket.taken <= 9, "read {} bytes to decide", socket.taken);
    if !lean_path {
        return;
    }
    let read = now(lean().read_head(&mut socket, &first));
    let whole = RequestHead::parse(&sent[..sent.len().min(LIMITS.max_head_bytes)], &LIMITS);
    match (&read, &whole) {
        (Ok(head), Ok(Some(expected))) => {
            assert_eq!(head.raw_query(), expected.raw_query());
            assert_eq!(head.headers(), expected.headers());
            assert!(expected.leftover().starts_with(head.leftover()));
            check_parsed(sent, head);
        }
        (Ok(_), _) => panic!("read a head that does not parse whole: {whole:?}"),
        (Err(error), Ok(Some(_))) => panic!("refused ({error}) a head that parses whole"),
        (Err(HeadError::TooLarge), Ok(None)) => {
            assert!(
                sent.len() >= LIMITS.max_head_bytes,
                "431 short of the limit"
            );
        }
        (Err(HeadError::Incomplete), Ok(None)) => {
            assert!(
                sent.len() < LIMITS.max_head_bytes,
                "incomplete at the limit"
            );
        }
        (Err(error), Err(expected)) => {
            assert_eq!(error.status(), expected.status(), "{error} / {expected}");
        }
        (Err(error), Ok(None)) => panic!("refused ({error}) a head still incomplete"),
    }
}

/// A parsed head against an independent reading of what was sent.
fn check_parsed(sent: &[u8], head: &RequestHead) {
    let line_end = sent.iter().position(|b| *b == b'\n').expect("a whole line");
    let line = &sent[..line_end];
    let target = line.split(|b| *b == b' ').nth(1).expect("a target");
    let query = match target.iter().position(|b| *b == b'?') {
        Some(at) => {
            let rest = &target[at + 1..];
            rest.split(|b| *b == b'#').next().unwrap_or_default()
        }
        None => b"",
    };
    assert_eq!(head.raw_query().as_bytes(), query, "{target:?}");
    assert!(head.headers().len() <= 3);
    // The head ends at the first blank line; what was read past it is what
    // the client sent next.
    let blank = (0..sent.len())
        .find_map(|i| {
            let rest = &sent[i..];
            if rest.starts_with(b"\n\n") {
                Some(i + 2)
            } else if rest.starts_with(b"\n\r\n") {
                Some(i + 3)
            } else {
                None
            }
        })
        .expect("a blank line");
    assert!(
        sent[blank..].starts_with(head.leftover()),
        "head of {blank} bytes"
    );
}

/// Heads of the right shape: `GET /sse` with a query, a version, the
/// headers the endpoint reads and the framing ones, odd line endings and
/// hostile values, a blank line, then what a pipelining client sends next.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut out = vec![u.arbitrary::<u8>()?];
    out.extend_from_slice(b"GET /sse");
    if u.ratio(3, 4)? {
        out.push(b'?');
        let query = match u.int_in_range(0..=3)? {
            0 => format!("symbols={}", gen::string(u)?),
            1 => "a".repeat(u.int_in_range(200..=300)?),
            2 => format!("id=x#{}", gen::string(u)?),
            _ => format!("token={}&last_event_id=1-2", gen::string(u)?),
        };
        out.extend_from_slice(query.as_bytes());
    }
    let version = *u.choose(&[" HTTP/1.1", " HTTP/1.0", " HTTP/2.0", " HTTP/1.1 ", ""])?;
    out.extend_from_slice(version.as_bytes());
    let eol: &[u8] = if u.ratio(1, 4)? { b"\n" } else { b"\r\n" };
    out.extend_from_slice(eol);
    for _ in 0..u.int_in_range(0..=10)? {
        let name = *u.choose(&[
            "Host",
            "Origin",
            "ORIGIN",
            "Authorization",
            "Last-Event-ID",
            "Connection",
            "Content-Length",
            "Transfer-Encoding",
            "X-Pad",
            "Bad Name",
            "",
        ])?;
        let value = match name {
            "Connection" => {
                (*u.choose(&["close", "keep-alive", "Keep-Alive, close", "upgrade"])?).to_owned()
            }
            "Content-Length" => {
                (*u.choose(&["0", "3", "3, 3", "3, 4", "-1", "18446744073709551616", ""])?)
                    .to_owned()
            }
            "X-Pad" => "p".repeat(u.int_in_range(0..=400)?),
            _ => gen::string(u)?,
        };
        out.extend_from_slice(format!("{name}: {value}").as_bytes());
        out.extend_from_slice(eol);
    }
    if u.ratio(7, 8)? {
        out.extend_from_slice(eol);
    }
    if u.ratio(1, 2)? {
        out.extend_from_slice(b"GET /health HTTP/1.1\r\n\r\n");
    }
    Ok(out)
}
