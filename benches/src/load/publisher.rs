//! The publisher: events from the fixtures' distribution, paced to the
//! scenario's rate, stamped and POSTed to `/api/publish` in batches.
//!
//! Before the phase, [`Prepared`] draws all its events and works out each
//! one's recipients (into the [`Ledger`]), so that the phase itself costs
//! the generator little. During it, one pacer hands batches to
//! `publishers` senders, each with its own HTTP/1.1 connection. A sender stamps the batch (`load_seq`,
//! `load_sent_ns`, as the first fields of each body) just before writing
//! the request, so the latency clock starts when the event leaves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use roaring::RoaringBitmap;
use serde::Deserialize;
use tickcast_core::ingest::BrokerPublisher;
use tickcast_core::model::{Event, DEFAULT_MAX_BODY_BYTES};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

use super::broker::Broker;
use super::expect::{Audience, Ledger};
use super::floor::FloorSend;
use super::scenario::PublishSection;
use super::stamp::{stamp_one, stamped, Batch};
use super::stats::{epoch_ns, Shared};
use super::xadd::{XaddConn, XaddTarget};
use crate::events::DetectionStream;

/// Where and how to publish.
#[derive(Clone)]
pub struct Target {
    /// The server.
    pub server: SocketAddr,
    /// `Authorization: Bearer` of the publishes (the server's `api.key`).
    pub api_key: Option<String>,
    /// Publish into this broker instead of `POST /api/publish`.
    pub broker: Option<Broker>,
    /// Hand the events to the floor server instead (`tickcast-load floor`).
    pub floor: Option<FloorSend>,
}

/// What the publish phase did.
#[derive(Debug)]
pub struct Published {
    /// Expected deliveries of the events that were accepted.
    pub ledger: Ledger,
    /// Events drawn and sent.
    pub sent: u64,
    /// Events the server accepted.
    pub accepted: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed whole (connection error, non-2xx without
    /// per-event errors).
    pub failed_requests: u64,
    /// Events the server refused one by one (400 with `errors`).
    pub rejected: u64,
    /// Failures by reason.
    pub errors: BTreeMap<String, u64>,
    /// When the first batch was due.
    pub started: Instant,
    /// When the last answer arrived.
    pub finished: Instant,
}

/// What one sender did.
#[derive(Default)]
struct SenderTally {
    accepted: u64,
    requests: u64,
    failed_requests: u64,
    rejected: u64,
    failed_seqs: RoaringBitmap,
    errors: BTreeMap<String, u64>,
}

/// The events of a publish phase, drawn and matched before it starts so
/// that the phase itself only stamps and sends.
#[derive(Debug)]
pub struct Prepared {
    /// The bodies, `load_seq` order, without stamps.
    templates: Vec<Bytes>,
    /// Who must receive each.
    ledger: Ledger,
}

impl Prepared {
    /// Draws the `plan.total_events()` events of `stream` and works out
    /// their recipients with `audience`.
    pub fn new(plan: &PublishSection, audience: Audience, stream: DetectionStream) -> Self {
        Self::observed(plan, audience, stream, |_, _| {})
    }

    /// [`new`](Self::new), showing `observe` each event and its recipients
    /// (a floor run groups them into frames).
    pub fn observed(
        plan: &PublishSection,
        mut audience: Audience,
        stream: DetectionStream,
        mut observe: impl FnMut(&Event, &[u32]),
    ) -> Self {
        let total = plan.total_events();
        let mut templates = Vec::with_capacity(total as usize);
        let mut ledger = Ledger::new();
        let mut recipients = Vec::new();
        for (seq, detection) in stream.take(total as usize).enumerate() {
            let body = Bytes::from(detection.to_json());
            let event = Event::from_json(body, Some(&plan.channel), DEFAULT_MAX_BODY_BYTES)
                .expect("generated detections are valid events");
            audience.recipients(&event, &mut recipients);
            observe(&event, &recipients);
            ledger.expect(seq as u32, &mut recipients);
            templates.push(event.body().clone());
        }
        Self { templates, ledger }
    }

    /// Events prepared.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The expected deliveries of all prepared events.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

/// Publishes the `prepared` events of `plan` against `target`. Returns
/// when the phase is over and every request has been answered, with the
/// ledger cut to the events that were sent and accepted.
pub async fn run(
    plan: &PublishSection,
    target: &Target,
    prepared: Prepared,
    shared: Arc<Shared>,
) -> Published {
    let Prepared {
        templates,
        mut ledger,
    } = prepared;
    let templates: Arc<[Bytes]> = templates.into();
    let (tx, rx) = mpsc::channel::<Batch>(plan.publishers * 2);
    let rx = Arc::new(Mutex::new(rx));
    let path = format!("/api/publish?channel={}", encode_query(&plan.channel));
    let senders: Vec<_> = (0..plan.publishers)
        .map(|_| {
            let rx = rx.clone();
            let target = target.clone();
            let path = path.clone();
            let shared = shared.clone();
            let single = plan.batch == 1;
            tokio::spawn(async move { send_loop(&target, &path, single, rx, &shared).await })
        })
        .collect();

    let total = templates.len() as u64;
    let batch = plan.batch as u64;
    let started = Instant::now();
    // A batch due at the very end may be picked up a little late.
    let deadline = started + Duration::from_secs_f64(plan.duration_s) + Duration::from_millis(250);
    let mut seq: u64 = 0;
    let mut expected: u64 = 0;
    while seq < total {
        let next = (seq + batch).min(total);
        let due_at = started + Duration::from_secs_f64(time_of(plan, next as f64));
        tokio::time::sleep_until(due_at.into()).await;
        if Instant::now() > deadline {
            break;
        }
        if plan.max_outstanding > 0 {
            while expected.saturating_sub(Shared::get(&shared.received)) > plan.max_outstanding
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        expected += (seq..next)
            .map(|s| ledger.deliveries_of(s as u32))
            .sum::<u64>();
        shared.expected.store(expected, Ordering::Relaxed);
        let batch = Batch::of(&templates, seq as usize..next as usize);
        seq = next;
        if tx.send(batch).await.is_err() {
            break;
        }
    }
    drop(tx);

    let mut tally = SenderTally::default();
    for sender in senders {
        let one = sender.await.unwrap_or_else(|e| {
            let mut failed = SenderTally::default();
            failed.errors.insert(format!("sender task: {e}"), 1);
            failed
        });
        tally.accepted += one.accepted;
        tally.requests += one.requests;
        tally.failed_requests += one.failed_requests;
        tally.rejected += one.rejected;
        tally.failed_seqs |= one.failed_seqs;
        for (reason, n) in one.errors {
            *tally.errors.entry(reason).or_default() += n;
        }
    }
    ledger.truncate(seq as usize);
    ledger.retract(&tally.failed_seqs);
    shared.expected.store(ledger.total(), Ordering::Relaxed);
    Published {
        ledger,
        sent: seq,
        accepted: tally.accepted,
        requests: tally.requests,
        failed_requests: tally.failed_requests,
        rejected: tally.rejected,
        errors: tally.errors,
        started,
        finished: Instant::now(),
    }
}

/// When (seconds into the phase) `n` events are due: the inverse of
/// [`PublishSection::due_at`], by bisection.
fn time_of(plan: &PublishSection, n: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, plan.duration_s);
    if plan.due_at(hi) <= n {
        return hi;
    }
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if plan.due_at(mid) < n {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// One sender: takes batches until the pacer is done.
async fn send_loop(
    target: &Target,
    path: &str,
    single: bool,
    rx: Arc<Mutex<mpsc::Receiver<Batch>>>,
    shared: &Shared,
) -> SenderTally {
    let mut tally = SenderTally::default();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let mut xadd = XaddSender::default();
    let channel = channel_of(path);
    loop {
        let Some(batch) = rx.lock().await.recv().await else {
            break;
        };
        let n = batch.templates().len() as u32;
        let seqs = batch.first_seq..batch.first_seq + n;
        tally.requests += 1;
        if let Some(floor) = &target.floor {
            match floor.publish(batch.first_seq, batch.templates()).await {
                Ok(()) => {
                    tally.accepted += u64::from(n);
                    Shared::add(&shared.published, u64::from(n));
                }
                Err(reason) => {
                    tally.failed_requests += 1;
                    tally.failed_seqs.insert_range(seqs);
                    *tally.errors.entry(reason).or_default() += 1;
                }
            }
            continue;
        }
        match &target.broker {
            Some(Broker::Publisher(broker)) => {
                via_broker(broker.as_ref(), &channel, &batch, &mut tally, shared).await;
                continue;
            }
            Some(Broker::Xadd(xadd_target)) => {
                xadd.send(xadd_target, &channel, &batch, &mut tally, shared)
                    .await;
                continue;
            }
            None => {}
        }
        let answer = match post(target, path, &mut connection, &batch, single).await {
            Ok(answer) => answer,
            Err(reason) => {
                connection = None;
                tally.failed_requests += 1;
                tally.failed_seqs.insert_range(seqs);
                *tally.errors.entry(reason).or_default() += 1;
                continue;
            }
        };
        let (status, parsed) = answer;
        match parsed {
            Some(answer) if status == 202 || (status == 400 && !answer.errors.is_empty()) => {
                tally.accepted += answer.accepted;
                Shared::add(&shared.published, answer.accepted);
                for error in answer.errors {
                    tally.rejected += 1;
                    tally.failed_seqs.insert(batch.first_seq + error.index);
                    *tally
                        .errors
                        .entry(format!("rejected: {}", error.reason))
                        .or_default() += 1;
                }
            }
            other => {
                tally.failed_requests += 1;
                tally.failed_seqs.insert_range(seqs);
                let code = other.and_then(|a| a.error).unwrap_or_default();
                *tally
                    .errors
                    .entry(format!("HTTP {status} {code}"))
                    .or_default() += 1;
            }
        }
    }
    tally
}

/// The channel of the publish path's `?channel=`.
fn channel_of(path: &str) -> String {
    let encoded = path.split_once("channel=").map_or("", |(_, c)| c);
    decode_query(encoded)
}

/// Publishes one batch into the broker, each event stamped on its own.
async fn via_broker(
    broker: &dyn BrokerPublisher,
    channel: &str,
    batch: &Batch,
    tally: &mut SenderTally,
    shared: &Shared,
) {
    let sent_ns = epoch_ns();
    let items = batch
        .templates()
        .iter()
        .enumerate()
        .map(|(i, template)| {
            let seq = batch.first_seq + i as u32;
            (
                channel.to_owned(),
                Bytes::from(stamp_one(seq, template, sent_ns)),
            )
        })
        .collect();
    for (i, result) in broker.publish_all(items).await.into_iter().enumerate() {
        match result {
            Ok(_) => {
                tally.accepted += 1;
                Shared::add(&shared.published, 1);
            }
            Err(error) => {
                tally.rejected += 1;
                tally.failed_seqs.insert(batch.first_seq + i as u32);
                *tally
                    .errors
                    .entry(format!("{}: {error}", broker.name()))
                    .or_default() += 1;
            }
        }
    }
}

/// A sender's own Redis connection for [`Broker::Xadd`], made on its
/// first batch and again after a failure, with the results buffer it
/// reuses.
#[derive(Default)]
struct XaddSender {
    conn: Option<XaddConn>,
    results: Vec<Result<(), String>>,
}

impl XaddSender {
    /// XADDs one batch, each event stamped, in one pipeline.
    async fn send(
        &mut self,
        target: &XaddTarget,
        channel: &str,
        batch: &Batch,
        tally: &mut SenderTally,
        shared: &Shared,
    ) {
        let templates = batch.templates();
        let n = templates.len() as u32;
        let sent = match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => XaddConn::open(target)
                .await
                .map(|conn| self.conn.insert(conn)),
        };
        let sent = match sent {
            Ok(conn) => {
                let sent_ns = epoch_ns();
                let results = &mut self.results;
                conn.publish(
                    target,
                    channel,
                    batch.first_seq,
                    templates,
                    sent_ns,
                    results,
                )
                .await
            }
            Err(reason) => Err(reason),
        };
        if let Err(reason) = sent {
            // Whatever the connection did with this batch is unknown: it
            // counts as failed, and the next batch connects again.
            self.conn = None;
            tally.failed_requests += 1;
            tally
                .failed_seqs
                .insert_range(batch.first_seq..batch.first_seq + n);
            *tally.errors.entry(format!("redis: {reason}")).or_default() += 1;
            return;
        }
        let mut accepted = 0;
        for (i, result) in self.results.drain(..).enumerate() {
            match result {
                Ok(()) => accepted += 1,
                Err(error) => {
                    tally.rejected += 1;
                    tally.failed_seqs.insert(batch.first_seq + i as u32);
                    *tally.errors.entry(format!("redis: {error}")).or_default() += 1;
                }
            }
        }
        tally.accepted += accepted;
        Shared::add(&shared.published, accepted);
    }
}

/// The answer of `POST /api/publish`.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    accepted: u64,
    #[serde(default)]
    errors: Vec<ItemError>,
    /// Code of an error about the request as a whole.
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ItemError {
    index: u32,
    #[serde(default)]
    reason: String,
}

/// Stamps and sends one batch; the status and the parsed answer, or why
/// the exchange failed.
async fn post(
    target: &Target,
    path: &str,
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    batch: &Batch,
    single: bool,
) -> Result<(u16, Option<Answer>), String> {
    if connection.as_ref().is_none_or(|c| c.is_closed()) {
        *connection = Some(connect(target.server).await?);
    }
    let sender = connection.as_mut().expect("connected above");
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let body = stamped(batch, epoch_ns(), single);
    let mut request = Request::post(path)
        .header("host", target.server.to_string())
        .header("content-type", "application/json");
    if let Some(key) = &target.api_key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("answer: {e}"))?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).ok()))
}

pub(crate) async fn connect(server: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Undoes [`encode_query`].
fn decode_query(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes what is not unreserved in a query value.
fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::PatternDetection;

    #[test]
    fn stamps_go_first_and_keep_the_body_valid() {
        let templates = vec![
            Bytes::from(PatternDetection::new("AAA", "Doji").to_json()),
            Bytes::from(PatternDetection::new("BBB", "GapUp").to_json()),
        ];
        let batch = Batch::new(41, templates);
        let body = stamped(&batch, 99, false);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value[1]["load_seq"], 42);
        assert_eq!(value[1]["load_sent_ns"], 99);
        assert_eq!(value[1]["symbol"], "BBB");
        assert!(body.starts_with(br#"[{"load_seq":41,"load_sent_ns":99,"#));
        let one = Batch::new(0, batch.templates()[..1].to_vec());
        let single: serde_json::Value = serde_json::from_slice(&stamped(&one, 1, true)).unwrap();
        assert_eq!(single["symbol"], "AAA");
        // One event of a broker publish: the same object.
        let alone = stamp_one(0, &batch.templates()[0], 1);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&alone).unwrap(),
            single
        );
        // A range of the phase's templates is events of the same numbers.
        let all: Arc<[Bytes]> = batch.templates().to_vec().into();
        let second = Batch::of(&all, 1..2);
        assert_eq!(second.first_seq, 1);
        assert_eq!(second.templates(), &batch.templates()[1..]);
        assert_eq!(
            encode_query("tickstock.events.patterns"),
            "tickstock.events.patterns"
        );
        assert_eq!(encode_query("a b&c"), "a%20b%26c");
        assert_eq!(decode_query("a%20b%26c"), "a b&c");
        assert_eq!(
            channel_of("/api/publish?channel=tickstock.events.patterns"),
            "tickstock.events.patterns"
        );
    }

    #[test]
    fn pacing_inverts_the_rate() {
        let plan = PublishSection {
            rate: 100.0,
            rate_end: Some(300.0),
            duration_s: 10.0,
            ..PublishSection::default()
        };
        for n in [1.0, 10.0, 500.0, 1999.0] {
            assert!((plan.due_at(time_of(&plan, n)) - n).abs() < 1e-6, "{n}");
        }
        assert_eq!(time_of(&plan, 5000.0), 10.0);
    }
}
