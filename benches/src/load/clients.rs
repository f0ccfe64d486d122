//! The clients: one task per connection that connects from its loopback
//! source address, over WebSocket (welcome, one subscribe per filter) or
//! SSE (its first filter in the query), reports ready, then counts what it
//! receives until the run stops it. Against the floor server
//! (`tickcast-load floor`) a connection only upgrades to WebSocket (the
//! floor has no subscriptions) and then reads and checks the same way.
//! [`churn_once`] is one short-lived connection of the churn scenario.
//!
//! A connection's state is small: the socket and its read buffer, and a
//! Roaring bitmap of the event numbers it received (a duplicate is an
//! insert that finds the number already there).
//!
//! Receiving works per wake-up, not per frame: each read is followed by
//! `receive`, which counts every complete frame the read completed into
//! a `Counts` on the stack, then adds it to the run's shared counters
//! once, with one latency timestamp (the time of the read) and one lookup
//! of the thread's histogram. Every delivery is still checked on its own.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use roaring::RoaringBitmap;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use super::filters::Filters;
use super::frame::{self, Frame, Scanned, Stamp};
use super::sse::SseStream;
use super::stats::{epoch_ns, record_latency, Shared};
use super::ws::WsClient;

/// The subprotocol the clients offer.
const SUBPROTOCOL: &str = "tickcast.v1.json";

/// What every client of a run shares.
#[derive(Debug)]
pub struct ClientContext {
    /// The server.
    pub server: SocketAddr,
    /// Source addresses to spread the sockets over (empty: the kernel
    /// picks).
    pub sources: Vec<Ipv4Addr>,
    /// Everyone's subscriptions.
    pub filters: Arc<Filters>,
    /// The run's counters.
    pub shared: Arc<Shared>,
    /// Longest connect + welcome + subscribe.
    pub connect_timeout: Duration,
    /// Initial read buffer per WebSocket connection: small, for many
    /// mostly idle connections; a busy one grows its own
    /// (up to [`ws::MAX_READ_BUFFER`](super::ws::MAX_READ_BUFFER)).
    pub read_buffer: usize,
    /// Share of the connections (0..=1) that use SSE instead of WebSocket.
    pub sse_share: f64,
    /// The server is the floor server: upgrade to `/floor?conn=N`, no
    /// welcome, no subscribe; every filter counts as acknowledged.
    pub floor: bool,
}

impl ClientContext {
    /// Subscriptions connection `conn` asks for: all its filters over
    /// WebSocket, the first over SSE.
    pub fn requested(&self, conn: u32) -> usize {
        let filters = self.filters.of(conn as usize).len();
        match self.uses_sse(conn) {
            true => filters.min(1),
            false => filters,
        }
    }

    /// Whether connection `conn` uses SSE: spread evenly over the ramp.
    pub fn uses_sse(&self, conn: u32) -> bool {
        let share = self.sse_share.clamp(0.0, 1.0);
        let before = (f64::from(conn) * share).floor();
        let after = (f64::from(conn + 1) * share).floor();
        after > before
    }
}

/// A connection over either transport.
enum Link {
    Ws(Box<WsClient>),
    /// The SSE stream, and the event data read but not yet counted.
    Sse(Box<SseStream>, Option<String>),
}

impl Link {
    /// Waits for more input (WebSocket bytes, or the next SSE event);
    /// an error says why the connection ended.
    async fn fill(&mut self) -> Result<(), String> {
        match self {
            Self::Ws(ws) => ws.fill().await,
            Self::Sse(sse, pending) => {
                *pending = Some(sse.next_data().await?);
                Ok(())
            }
        }
    }

    /// Hands every complete text received so far to `on_text`.
    fn drain(&mut self, mut on_text: impl FnMut(&str)) -> Result<(), String> {
        match self {
            Self::Ws(ws) => ws.drain(|text| {
                on_text(text);
                true
            }),
            Self::Sse(_, pending) => {
                if let Some(text) = pending.take() {
                    on_text(&text);
                }
                Ok(())
            }
        }
    }

    async fn close(self) {
        if let Self::Ws(mut ws) = self {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close()).await;
        }
    }
}

/// A connection's answer to the ramp: the mask of its acknowledged
/// subscriptions (bit `k` for `s{k}`), or why it failed.
#[derive(Debug)]
pub struct Ready {
    /// Connection number.
    pub conn: u32,
    /// Acknowledged subscriptions, or the failure.
    pub result: Result<u64, String>,
}

/// How a connection ended.
#[derive(Debug)]
pub struct Outcome {
    /// Connection number.
    pub conn: u32,
    /// Event numbers received.
    pub received: RoaringBitmap,
    /// Why it ended before the run stopped it (`None`: it lasted).
    pub ended_early: Option<String>,
}

thread_local! {
    /// Stamps of the frame being handled: one buffer per thread, not per
    /// connection.
    static STAMPS: RefCell<Vec<Option<Stamp>>> = const { RefCell::new(Vec::new()) };
}

/// Runs connection `conn` until `stop` turns true (or the connection
/// ends), reporting once on `ready` when it is subscribed or has failed.
pub async fn run(
    ctx: Arc<ClientContext>,
    conn: u32,
    ready: mpsc::UnboundedSender<Ready>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut received = RoaringBitmap::new();
    let shared = &ctx.shared;
    let setup = tokio::time::timeout(ctx.connect_timeout, open(&ctx, conn, &mut received)).await;
    let (mut link, mask) = match setup {
        Ok(Ok(open)) => open,
        Ok(Err(reason)) => return failed(&ctx, conn, &ready, received, reason),
        Err(_) => return failed(&ctx, conn, &ready, received, "timeout".to_owned()),
    };
    let subs = ctx.requested(conn) as u64;
    Shared::add(&shared.established, 1);
    Shared::add(&shared.subscribed, u64::from(mask.count_ones()));
    Shared::add(&shared.refused, subs - u64::from(mask.count_ones()));
    let _ = ready.send(Ready {
        conn,
        result: Ok(mask),
    });
    drop(ready);

    // One future for the whole loop: registering a new one per frame costs.
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
    };
    tokio::pin!(stopped);
    let ended_early = loop {
        // First what the setup's last read brought behind its answers.
        if let Err(reason) = receive(shared, &mut link, &mut received) {
            break Some(reason);
        }
        tokio::select! {
            biased;
            () = &mut stopped => break None,
            filled = link.fill() => if let Err(reason) = filled {
                break Some(reason);
            },
        }
    };
    match ended_early {
        Some(_) => Shared::add(&shared.closed_early, 1),
        // The floor server never reads: a close handshake would only wait.
        None if ctx.floor => {}
        None => link.close().await,
    }
    Outcome {
        conn,
        received,
        ended_early,
    }
}

fn failed(
    ctx: &ClientContext,
    conn: u32,
    ready: &mpsc::UnboundedSender<Ready>,
    received: RoaringBitmap,
    reason: String,
) -> Outcome {
    Shared::add(&ctx.shared.failed, 1);
    let _ = ready.send(Ready {
        conn,
        result: Err(reason.clone()),
    });
    Outcome {
        conn,
        received,
        ended_early: Some(reason),
    }
}

/// Connects from the connection's source address, then subscribes over
/// its transport.
async fn open(
    ctx: &ClientContext,
    conn: u32,
    received: &mut RoaringBitmap,
) -> Result<(Link, u64), String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {}", io_reason(&e)))?;
    if !ctx.sources.is_empty() {
        let source = ctx.sources[conn as usize % ctx.sources.len()];
        socket
            .bind(SocketAddr::from((source, 0)))
            .map_err(|e| format!("bind: {}", io_reason(&e)))?;
    }
    let stream = socket
        .connect(ctx.server)
        .await
        .map_err(|e| format!("connect: {}", io_reason(&e)))?;
    let _ = stream.set_nodelay(true);
    if ctx.floor {
        return open_floor(ctx, conn, stream).await;
    }
    if ctx.uses_sse(conn) {
        return open_sse(ctx, conn, stream, received).await;
    }
    let (ws, mask) = open_ws(ctx, conn, stream, received).await?;
    Ok((Link::Ws(Box::new(ws)), mask))
}

/// The floor server: the WebSocket upgrade only; every filter of the
/// connection counts as acknowledged (the floor is sent the deliveries of
/// all of them).
async fn open_floor(
    ctx: &ClientContext,
    conn: u32,
    stream: TcpStream,
) -> Result<(Link, u64), String> {
    let ws = handshake(ctx, &format!("/floor?conn={conn}"), stream).await?;
    let count = ctx.filters.of(conn as usize).len();
    Ok((Link::Ws(Box::new(ws)), all_bits(count)))
}

/// Mask of `count` subscriptions.
fn all_bits(count: usize) -> u64 {
    if count >= 64 {
        u64::MAX
    } else {
        (1u64 << count) - 1
    }
}

/// The client side of the WebSocket upgrade to `path`, offering the
/// subprotocol.
async fn handshake(ctx: &ClientContext, path: &str, stream: TcpStream) -> Result<WsClient, String> {
    let host = ctx.server.to_string();
    WsClient::connect(stream, &host, path, SUBPROTOCOL, ctx.read_buffer).await
}

/// SSE: the connection's first filter only (one per SSE connection); ready
/// once `subscribed` (mask 1) or refused (mask 0).
async fn open_sse(
    ctx: &ClientContext,
    conn: u32,
    stream: TcpStream,
    received: &mut RoaringBitmap,
) -> Result<(Link, u64), String> {
    let filter = ctx.filters.of(conn as usize).first().ok_or("no filter")?;
    let mut sse = SseStream::open(stream, &ctx.server.to_string(), "s0", filter).await?;
    loop {
        let text = sse.next_data().await?;
        let Some(frame) = on_text(&ctx.shared, received, &text, false) else {
            continue;
        };
        match frame.kind {
            "subscribed" => return Ok((Link::Sse(Box::new(sse), None), 1)),
            "error" => return Ok((Link::Sse(Box::new(sse), None), 0)),
            _ => {}
        }
    }
}

/// WebSocket: reads the welcome, subscribes every filter and waits for
/// every answer.
async fn open_ws(
    ctx: &ClientContext,
    conn: u32,
    stream: TcpStream,
    received: &mut RoaringBitmap,
) -> Result<(WsClient, u64), String> {
    let mut ws = handshake(ctx, "/ws", stream).await?;

    match ws.next_text().await? {
        text if text.contains(r#""type":"welcome""#) => {}
        text => return Err(format!("expected a welcome, got {}", shorten(&text))),
    }
    let filters = &ctx.filters;
    let count = filters.of(conn as usize).len();
    let ops: Vec<String> = (0..count)
        .map(|k| filters.subscribe_op(conn as usize, k))
        .collect();
    ws.send_texts(&ops)
        .await
        .map_err(|e| format!("subscribe: {e}"))?;

    let mut answered = 0u64;
    let mut mask = 0u64;
    let all = all_bits(count);
    while answered != all {
        let text = ws.next_text().await?;
        let Some(frame) = on_text(&ctx.shared, received, &text, false) else {
            continue;
        };
        let bit = frame
            .id
            .and_then(|id| id.strip_prefix('s'))
            .and_then(|k| k.parse::<u32>().ok())
            .filter(|&k| (k as usize) < count)
            .map(|k| 1u64 << k);
        match (frame.kind, bit) {
            ("subscribed", Some(bit)) => {
                answered |= bit;
                mask |= bit;
            }
            ("error", Some(bit)) => answered |= bit,
            _ => {}
        }
    }
    Ok((ws, mask))
}

/// How a churn cycle left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// WebSocket close handshake (SSE: the socket is closed).
    Clean,
    /// The socket is dropped without a word.
    Abrupt,
}

/// One cycle of the churn scenario: connects and subscribes like any
/// connection (number `conn`: its filters and source address), reads and
/// counts what arrives for `hold`, then leaves as `leave` says. Errors say
/// why the cycle failed.
pub async fn churn_once(
    ctx: &ClientContext,
    conn: u32,
    hold: Duration,
    leave: Leave,
) -> Result<(), String> {
    let mut received = RoaringBitmap::new();
    let (mut link, _) = tokio::time::timeout(ctx.connect_timeout, open(ctx, conn, &mut received))
        .await
        .map_err(|_| "timeout".to_owned())??;
    let held = tokio::time::sleep(hold);
    tokio::pin!(held);
    loop {
        if let Err(reason) = receive(&ctx.shared, &mut link, &mut received) {
            return Err(format!("ended while held: {reason}"));
        }
        tokio::select! {
            biased;
            () = &mut held => break,
            filled = link.fill() => if let Err(reason) = filled {
                return Err(format!("ended while held: {reason}"));
            },
        }
    }
    match leave {
        Leave::Clean => link.close().await,
        Leave::Abrupt => drop(link),
    }
    Ok(())
}

/// Counts every complete text the link holds, then reports them to
/// `shared` at once; an error says why the connection ended (what came
/// before it is counted).
fn receive(shared: &Shared, link: &mut Link, received: &mut RoaringBitmap) -> Result<(), String> {
    let mut counts = Counts::default();
    let mut drained = Ok(());
    shared.delivered(|histogram| {
        // One clock read per read of the socket: every frame it completed
        // arrived then.
        let now = epoch_ns();
        STAMPS.with(|stamps| {
            let stamps = &mut stamps.borrow_mut();
            drained = link.drain(|text| {
                counts.on_text(text, stamps, received, histogram, now, true);
            });
        });
        counts.new
    });
    counts.report(shared);
    drained
}

/// Handles one text frame on its own (the setup's): counts its
/// deliveries and notices. Returns the frame's top-level fields (`None`
/// if it did not parse). `error` frames are counted only when
/// `count_errors` (not those that answer subscribes: they are counted as
/// refused subscriptions).
fn on_text<'t>(
    shared: &Shared,
    received: &mut RoaringBitmap,
    text: &'t str,
    count_errors: bool,
) -> Option<Frame<'t>> {
    let mut counts = Counts::default();
    let mut frame = None;
    shared.delivered(|histogram| {
        STAMPS.with(|stamps| {
            let stamps = &mut stamps.borrow_mut();
            frame = counts.on_text(text, stamps, received, histogram, epoch_ns(), count_errors);
        });
        counts.new
    });
    counts.report(shared);
    frame
}

/// What a connection counted since it last reported to the run's
/// [`Shared`] counters (first deliveries go through
/// [`Shared::delivered`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    frames: u64,
    bad_frames: u64,
    event_frames: u64,
    event_bytes: u64,
    /// First deliveries of this run's events.
    new: u64,
    duplicates: u64,
    foreign: u64,
    dropped_notices: u64,
    dropped_events: u64,
    error_frames: u64,
}

impl Counts {
    /// Counts one text frame that arrived at `now` (ns since the epoch):
    /// each of its events is a first delivery (into `received`, its
    /// latency into `histogram`), a duplicate or someone else's. Returns
    /// the frame's top-level fields (`None` if it did not parse).
    fn on_text<'t>(
        &mut self,
        text: &'t str,
        stamps: &mut Vec<Option<Stamp>>,
        received: &mut RoaringBitmap,
        histogram: &mut Histogram<u64>,
        now: u64,
        count_errors: bool,
    ) -> Option<Frame<'t>> {
        self.frames += 1;
        stamps.clear();
        let frame = if frame::scan(text, stamps) == Scanned::Events {
            Frame {
                kind: "event",
                ..Frame::default()
            }
        } else {
            match frame::parse(text, stamps) {
                Ok(frame) => frame,
                Err(_) => {
                    self.bad_frames += 1;
                    return None;
                }
            }
        };
        match frame.kind {
            "event" | "batch" => {
                self.event_frames += 1;
                self.event_bytes += text.len() as u64;
                for stamp in stamps.iter() {
                    match stamp {
                        Some(s) if s.seq <= u64::from(u32::MAX) => {
                            if received.insert(s.seq as u32) {
                                self.new += 1;
                                record_latency(histogram, now, s.sent_ns);
                            } else {
                                self.duplicates += 1;
                            }
                        }
                        _ => self.foreign += 1,
                    }
                }
            }
            "dropped" => {
                self.dropped_notices += 1;
                self.dropped_events += frame.count.unwrap_or(0);
            }
            "error" if count_errors => self.error_frames += 1,
            _ => {}
        }
        Some(frame)
    }

    /// Adds what was counted to `shared` (but `new`, which
    /// [`Shared::delivered`] adds).
    fn report(&self, shared: &Shared) {
        Shared::add(&shared.frames, self.frames);
        Shared::add(&shared.bad_frames, self.bad_frames);
        Shared::add(&shared.event_frames, self.event_frames);
        Shared::add(&shared.event_bytes, self.event_bytes);
        Shared::add(&shared.duplicates, self.duplicates);
        Shared::add(&shared.foreign, self.foreign);
        Shared::add(&shared.dropped_notices, self.dropped_notices);
        Shared::add(&shared.dropped_events, self.dropped_events);
        Shared::add(&shared.error_frames, self.error_frames);
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("{:?} (os error {code})", e.kind()),
        None => format!("{:?}", e.kind()),
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(120).collect()
}
