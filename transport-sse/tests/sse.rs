//! The SSE endpoint through real sockets, served both ways: by the warp
//! filter in a warp server, and on the lean path (`LeanSse` in an accept
//! loop of its own); a plain HTTP/1.1 client reads the chunked event
//! stream. Every test runs against both (modules `filter` and `lean`).

mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};
use tickcast_core::auth::{AllowedOrigins, Authenticator};
use tickcast_core::broadcast::{EventFrame, PreparedEvent};
use tickcast_core::model::{Event, Offset, SubId};
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_sse::{sse_route, LeanSse, SseConfig};

use client::{get, Response, PATIENCE};

const SECRET: &[u8] = b"sse-test-secret";

/// Which server answers `GET /sse`.
#[derive(Debug, Clone, Copy)]
enum Mount {
    /// `sse_route` in `warp::serve`.
    Filter,
    /// `LeanSse` on every accepted socket.
    Lean,
}

async fn server(mount: Mount, hub: Hub, config: SseConfig) -> SocketAddr {
    match mount {
        Mount::Filter => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(warp::serve(sse_route(hub, config)).incoming(listener).run());
            addr
        }
        Mount::Lean => client::lean_server(LeanSse::new(hub, config)).await,
    }
}

/// Runs each test against both servers.
macro_rules! both_ways {
    ($($name:ident),* $(,)?) => {
        mod filter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Mount::Filter).await
                }
            )*
        }
        mod lean {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Mount::Lean).await
                }
            )*
        }
    };
}

both_ways!(
    events_arrive_filtered_as_the_websocket_event_object,
    the_subscription_id_comes_from_the_query,
    encoded_commas_separate_list_items,
    bad_queries_get_400_json,
    auth_refuses_missing_bad_and_expired_tokens_and_forbidden_tiers,
    tokens_are_read_like_on_every_transport,
    times_beyond_the_clock_get_401_not_a_dropped_connection,
    too_many_connections_get_429,
    the_stream_closes_with_4002_when_the_token_expires,
    resume_replays_what_was_missed_with_no_gap_and_no_duplicate,
    a_stale_last_event_id_gets_history_gone_then_live_events,
    a_batch_is_written_as_several_events_in_one_chunk,
    pings_are_comments_and_retry_is_announced,
    disconnecting_releases_the_hub_connection,
    shutdown_sends_queued_events_then_close_1001,
    origins_outside_the_allow_list_get_403_before_the_stream,
    by_default_every_origin_is_allowed,
);

fn hub_config() -> HubConfig {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config
}

fn event(body: &str) -> Event {
    Event::from_json(
        Bytes::copy_from_slice(body.as_bytes()),
        Some("tickstock.events.patterns"),
        1 << 20,
    )
    .unwrap()
}

/// `{"symbol":..,"pattern":"BreakoutBO","tier":..,"confidence":..}`
fn pattern(symbol: &str, tier: &str, confidence: f64) -> String {
    json!({"symbol": symbol, "pattern": "BreakoutBO", "tier": tier, "confidence": confidence})
        .to_string()
}

/// The event object a WebSocket client gets for `body` at `offset`, as
/// core encodes it for a connection whose matching subscription is `sub`.
/// The WebSocket `event` object of an event that the connection received
/// in offset order (its resume offset is its own).
fn websocket_object(body: &str, offset: Offset, sub: &str) -> String {
    websocket_object_resuming(body, offset, sub, offset)
}

/// The WebSocket `event` object of an event with resume offset `resume`.
fn websocket_object_resuming(body: &str, offset: Offset, sub: &str, resume: Offset) -> String {
    let prepared = Arc::new(PreparedEvent::new(event(body), offset));
    let subs: Vec<SubId> = vec![sub.into()];
    let mut frame = EventFrame::new(prepared, &subs);
    frame.resume = resume;
    String::from_utf8(frame.to_json().to_vec()).unwrap()
}

fn token(claims: Value) -> String {
    tickcast_testkit::jwt::hs256(SECRET, &claims)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn auth_config() -> SseConfig {
    let mut config = SseConfig::default();
    config.session.auth = Some(Arc::new(Authenticator::hs256(SECRET)));
    config
}

/// Opens a stream and reads `welcome` and `subscribed`; returns the
/// response and `recovered`.
async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (Response, u64) {
    let mut response = get(addr, path, headers).await;
    assert_eq!(response.status, 200, "{path}");
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("cache-control"), Some("no-cache"));
    response.expect("welcome").await;
    let subscribed = response.expect("subscribed").await.json();
    assert_eq!(subscribed["type"], "subscribed");
    let recovered = subscribed["recovered"].as_u64().unwrap();
    (response, recovered)
}

/// Reads the next event and checks it is `body` at `offset`, byte for byte
/// the WebSocket event object, with an `id:` (its resume offset) at or
/// after its offset; returns that id.
async fn expect_event(response: &mut Response, body: &str, offset: Offset, sub: &str) -> Offset {
    let block = response.next().await;
    let id: Offset = block
        .id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{block:?}"));
    assert!(id >= offset, "{block:?}");
    assert_eq!(block.event.as_deref(), Some("pattern_detected"));
    assert_eq!(
        block.data.as_deref(),
        Some(websocket_object_resuming(body, offset, sub, id).as_str())
    );
    id
}

/// Waits (bounded) until the hub holds `n` connections.
async fn wait_for_connections(hub: &Hub, n: usize) {
    tokio::time::timeout(PATIENCE, async {
        while hub.connection_count() != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} connections, expected {n}", hub.connection_count()));
}

async fn expect_error(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    status: u16,
    code: &str,
) {
    let mut response = get(addr, path, headers).await;
    assert_eq!(response.status, status, "{path} {headers:?}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json().await;
    assert_eq!(body["error"], code, "{path}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn events_arrive_filtered_as_the_websocket_event_object(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    let (mut sse, recovered) = open(
        addr,
        "/sse?symbols=aapl,NVDA&tiers=daily&tiers=combo&min_confidence=0.8&min_priority=high",
        &[],
    )
    .await;
    assert_eq!(recovered, 0);

    let first = pattern("AAPL", "daily", 0.85);
    let second = pattern("NVDA", "combo", 0.88);
    let a = hub.publish(event(&first)).unwrap();
    for other in [
        pattern("MSFT", "daily", 0.85),
        pattern("AAPL", "intraday", 0.85),
        pattern("AAPL", "daily", 0.7),
    ] {
        hub.publish(event(&other)).unwrap();
    }
    let b = hub.publish(event(&second)).unwrap();
    expect_event(&mut sse, &first, a, "sse").await;
    expect_event(&mut sse, &second, b, "sse").await;

    // A pretty-printed body is split over several `data:` lines and joins
    // back into the same object.
    let pretty = "{\n  \"symbol\": \"AAPL\",\n  \"pattern\": \"Doji\",\n  \"tier\": \"daily\",\n  \"confidence\": 0.81\n}";
    let c = hub.publish(event(pretty)).unwrap();
    let block = sse.next().await;
    assert_eq!(block.id, Some(c.to_string()));
    let expected: Value = serde_json::from_str(&websocket_object(pretty, c, "sse")).unwrap();
    assert_eq!(block.json(), expected);
    assert_eq!(block.json()["data"]["pattern"], "Doji");
}

async fn the_subscription_id_comes_from_the_query(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    let (mut sse, _) = open(addr, "/sse?id=mine&event_types=pattern_detected", &[]).await;
    let body = pattern("AAPL", "daily", 0.85);
    let offset = hub.publish(event(&body)).unwrap();
    expect_event(&mut sse, &body, offset, "mine").await;
}

async fn encoded_commas_separate_list_items(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    // What `new URLSearchParams({symbols: "AAPL,MSFT", tiers: "daily,combo"})`
    // writes.
    let (mut sse, _) = open(addr, "/sse?symbols=AAPL%2CMSFT&tiers=daily%2Ccombo", &[]).await;
    let aapl = pattern("AAPL", "daily", 0.85);
    let tsla = pattern("TSLA", "daily", 0.85);
    let intraday = pattern("MSFT", "intraday", 0.85);
    let msft = pattern("MSFT", "combo", 0.85);
    let aapl_at = hub.publish(event(&aapl)).unwrap();
    hub.publish(event(&tsla)).unwrap();
    hub.publish(event(&intraday)).unwrap();
    let msft_at = hub.publish(event(&msft)).unwrap();
    // In order, with nothing between: TSLA and the intraday tier do not match.
    expect_event(&mut sse, &aapl, aapl_at, "sse").await;
    expect_event(&mut sse, &msft, msft_at, "sse").await;
}

async fn bad_queries_get_400_json(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    for path in [
        "/sse?symbol=AAPL",
        "/sse?tiers=weekly",
        "/sse?min_priority=urgent",
        "/sse?min_confidence=1.5",
        "/sse?min_confidence=lots",
        "/sse?last_event_id=yesterday",
        "/sse?symbols=%ZZ",
        "/sse?id=a&id=b",
    ] {
        expect_error(addr, path, &[], 400, "bad_request").await;
    }
    expect_error(
        addr,
        "/sse",
        &[("Last-Event-ID", "not-an-offset")],
        400,
        "bad_request",
    )
    .await;
    assert_eq!(hub.connection_count(), 0);
}

async fn auth_refuses_missing_bad_and_expired_tokens_and_forbidden_tiers(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), auth_config()).await;
    expect_error(addr, "/sse", &[], 401, "unauthorized").await;
    expect_error(addr, "/sse?token=garbage", &[], 401, "unauthorized").await;
    let expired = token(json!({"sub": "u1", "exp": now() - 10}));
    expect_error(
        addr,
        &format!("/sse?token={expired}"),
        &[],
        401,
        "token_expired",
    )
    .await;
    let daily_only = token(json!({"sub": "u1", "exp": now() + 600, "tiers": ["daily"]}));
    expect_error(
        addr,
        &format!("/sse?tiers=intraday&token={daily_only}"),
        &[],
        403,
        "forbidden",
    )
    .await;
    assert_eq!(hub.connection_count(), 0);

    // A good token, in the query or in the header.
    let mut sse = get(addr, &format!("/sse?tiers=daily&token={daily_only}"), &[]).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.expect("welcome").await.json()["user"], "u1");
    let bearer = format!("Bearer {daily_only}");
    let (mut by_header, _) = open(addr, "/sse", &[("Authorization", &bearer)]).await;
    // Entitlements hold for filters that name no tier, too.
    hub.publish(event(&pattern("AAPL", "intraday", 0.85)))
        .unwrap();
    let body = pattern("AAPL", "daily", 0.85);
    let offset = hub.publish(event(&body)).unwrap();
    expect_event(&mut by_header, &body, offset, "sse").await;
}

async fn tokens_are_read_like_on_every_transport(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), auth_config()).await;
    let good = token(json!({"sub": "alice", "exp": now() + 600}));
    // A URL library writes the dots of a JWT as %2E.
    let encoded = good.replace('.', "%2E");
    let mut sse = get(addr, &format!("/sse?token={encoded}"), &[]).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.expect("welcome").await.json()["user"], "alice");
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let header = format!("{scheme}  {good} ");
        let mut response = get(addr, "/sse", &[("Authorization", &header)]).await;
        assert_eq!(response.status, 200, "{scheme}");
        assert_eq!(response.expect("welcome").await.json()["user"], "alice");
    }
    // The query wins over the header, even when the header is good.
    let header = format!("Bearer {good}");
    expect_error(
        addr,
        "/sse?token=garbage",
        &[("Authorization", &header)],
        401,
        "unauthorized",
    )
    .await;
    // Another scheme, or an empty bearer token, is no token.
    for header in ["Basic dXNlcjpwdw==", "Bearer  "] {
        expect_error(
            addr,
            "/sse",
            &[("Authorization", header)],
            401,
            "unauthorized",
        )
        .await;
    }
}

async fn times_beyond_the_clock_get_401_not_a_dropped_connection(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), auth_config()).await;
    for claims in [
        json!({"sub": "u1", "exp": 1u64 << 63}),
        json!({"sub": "u1", "exp": u64::MAX}),
        json!({"sub": "u1", "exp": now() + 600, "nbf": u64::MAX}),
        json!({"sub": "u1", "exp": now() + 600, "nbf": now() + 300}),
    ] {
        let path = format!("/sse?token={}", token(claims));
        expect_error(addr, &path, &[], 401, "unauthorized").await;
    }
    for good in [
        token(json!({"sub": "u1", "exp": now() + 600, "nbf": now() - 1})),
        token(json!({"sub": "u1", "exp": 1u64 << 62})),
    ] {
        open(addr, &format!("/sse?token={good}"), &[]).await;
    }
}

async fn too_many_connections_get_429(mount: Mount) {
    let mut config = hub_config();
    config.limits.max_connections_per_user = 1;
    let hub = Hub::new(config);
    let addr = server(mount, hub.clone(), auth_config()).await;
    let t = token(json!({"sub": "u1", "exp": now() + 600}));
    let (_first, _) = open(addr, &format!("/sse?token={t}"), &[]).await;
    expect_error(addr, &format!("/sse?token={t}"), &[], 429, "limit_exceeded").await;
    assert_eq!(hub.connection_count(), 1);
}

async fn the_stream_closes_with_4002_when_the_token_expires(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), auth_config()).await;
    let t = token(json!({"sub": "u1", "exp": now() + 2}));
    let (mut sse, _) = open(addr, &format!("/sse?token={t}"), &[]).await;
    let error = sse.expect("error").await.json();
    assert_eq!(error["code"], "token_expired");
    let close = sse.expect("close").await.json();
    assert_eq!(close, json!({"code": 4002, "reason": "token expired"}));
    assert!(sse.block().await.is_none(), "the stream ends after close");
    wait_for_connections(&hub, 0).await;
}

async fn resume_replays_what_was_missed_with_no_gap_and_no_duplicate(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    let (mut sse, _) = open(addr, "/sse?symbols=AAPL", &[]).await;
    let seen: Vec<(String, Offset)> = (0..2)
        .map(|i| pattern("AAPL", "daily", 0.8 + f64::from(i) / 100.0))
        .map(|b| {
            let o = hub.publish(event(&b)).unwrap();
            (b, o)
        })
        .collect();
    let mut last = None;
    for (body, offset) in &seen {
        last = Some(expect_event(&mut sse, body, *offset, "sse").await);
    }
    // What EventSource sends back: the last `id:` it received.
    let last = last.unwrap().to_string();
    drop(sse);
    wait_for_connections(&hub, 0).await;

    // Published while nobody listens.
    let mut missed = Vec::new();
    for i in 0..3 {
        let body = pattern("AAPL", "intraday", 0.81 + f64::from(i) / 100.0);
        missed.push((body.clone(), hub.publish(event(&body)).unwrap()));
        hub.publish(event(&pattern("MSFT", "daily", 0.85))).unwrap();
    }

    // The header (as EventSource sends it) wins over the query.
    let resume = format!("/sse?symbols=AAPL&last_event_id={}", missed[2].1);
    let (mut sse, recovered) = open(addr, &resume, &[("Last-Event-ID", &last)]).await;
    assert_eq!(recovered, 3);
    let mut ids = Vec::new();
    for (body, offset) in &missed {
        ids.push(expect_event(&mut sse, body, *offset, "sse").await);
    }
    // The MSFT events between the missed ones do not match: each id
    // reaches up to just before the next missed event.
    assert_eq!(ids[0], missed[1].1.predecessor());
    let live = pattern("AAPL", "combo", 0.85);
    let live_offset = hub.publish(event(&live)).unwrap();
    expect_event(&mut sse, &live, live_offset, "sse").await;
    drop(sse);

    // The same through the query alone, from the first missed event's id.
    let resume = format!("/sse?symbols=AAPL&last_event_id={}", ids[0]);
    let (mut sse, recovered) = open(addr, &resume, &[]).await;
    assert_eq!(recovered, 3);
    for (body, offset) in missed[1..].iter().chain([(live, live_offset)].iter()) {
        expect_event(&mut sse, body, *offset, "sse").await;
    }
}

async fn a_stale_last_event_id_gets_history_gone_then_live_events(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    hub.publish(event(&pattern("AAPL", "daily", 0.85))).unwrap();
    // An offset of an earlier run of the node.
    let (mut sse, recovered) = open(addr, "/sse", &[("Last-Event-ID", "1-1")]).await;
    assert_eq!(recovered, 0);
    let gone = sse.expect("history_gone").await;
    assert_eq!(gone.id, None);
    let gone = gone.json();
    assert_eq!(gone["type"], "error");
    assert_eq!(gone["code"], "history_gone");
    let body = pattern("TSLA", "daily", 0.85);
    let offset = hub.publish(event(&body)).unwrap();
    expect_event(&mut sse, &body, offset, "sse").await;
}

async fn a_batch_is_written_as_several_events_in_one_chunk(mount: Mount) {
    let mut config = hub_config();
    // A batch goes out when it holds three events (the window never ends
    // within the test), so its content is deterministic.
    config.queue.batch_window = Duration::from_secs(3600);
    config.queue.max_batch = 3;
    let hub = Hub::new(config);
    let mut sse_config = SseConfig::default();
    sse_config.session.ping_interval = Duration::from_secs(3600);
    let addr = server(mount, hub.clone(), sse_config).await;
    let (mut sse, _) = open(addr, "/sse?symbols=AAPL,MSFT,NVDA", &[]).await;
    assert!(sse.nothing_pending());
    let batches_before = hub.stats().delivery.batches;

    let bodies: Vec<String> = ["AAPL", "MSFT", "NVDA"]
        .iter()
        .map(|s| pattern(s, "daily", 0.85))
        .collect();
    let offsets: Vec<Offset> = bodies
        .iter()
        .map(|b| hub.publish(event(b)).unwrap())
        .collect();

    let chunk = String::from_utf8(sse.chunk().await.expect("a chunk")).unwrap();
    let expected: String = bodies
        .iter()
        .zip(&offsets)
        .map(|(b, o)| {
            format!(
                "id: {o}\nevent: pattern_detected\ndata: {}\n\n",
                websocket_object(b, *o, "sse")
            )
        })
        .collect();
    assert_eq!(chunk, expected);
    assert_eq!(hub.stats().delivery.batches, batches_before + 1);
}

async fn pings_are_comments_and_retry_is_announced(mount: Mount) {
    let hub = Hub::new(hub_config());
    let mut config = SseConfig::default().with_retry(Some(Duration::from_millis(2500)));
    config.session.ping_interval = Duration::from_millis(50);
    let addr = server(mount, hub.clone(), config).await;
    let mut sse = get(addr, "/sse", &[]).await;
    assert_eq!(sse.status, 200);
    let first = sse.block().await.unwrap();
    assert_eq!(first.retry.as_deref(), Some("2500"));
    let mut pings = 0;
    while pings < 2 {
        let block = sse.block().await.expect("the stream ended");
        if block.comments == ["ping"] {
            assert_eq!((block.id, block.event, block.data), (None, None, None));
            pings += 1;
        }
    }
}

async fn disconnecting_releases_the_hub_connection(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(open(addr, "/sse?symbols=AAPL", &[]).await.0);
    }
    assert_eq!(hub.connection_count(), 3);
    assert_eq!(hub.stats().subscriptions, 3);
    clients.truncate(1);
    wait_for_connections(&hub, 1).await;
    // Events still flow to the one left.
    let body = pattern("AAPL", "daily", 0.85);
    let offset = hub.publish(event(&body)).unwrap();
    expect_event(&mut clients[0], &body, offset, "sse").await;
    clients.clear();
    wait_for_connections(&hub, 0).await;
    assert_eq!(hub.stats().subscriptions, 0);
}

async fn shutdown_sends_queued_events_then_close_1001(mount: Mount) {
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    let (mut sse, _) = open(addr, "/sse", &[]).await;
    let body = pattern("AAPL", "daily", 0.85);
    let offset = hub.publish(event(&body)).unwrap();
    hub.shutdown();
    expect_event(&mut sse, &body, offset, "sse").await;
    let close = sse.expect("close").await.json();
    assert_eq!(close["code"], 1001);
    assert!(sse.block().await.is_none());
    wait_for_connections(&hub, 0).await;
    expect_error(addr, "/sse", &[], 503, "shutting_down").await;
}

async fn origins_outside_the_allow_list_get_403_before_the_stream(mount: Mount) {
    let hub = Hub::new(hub_config());
    let config = auth_config()
        .with_allowed_origins(AllowedOrigins::parse(["https://app.example.com"]).unwrap());
    let addr = server(mount, hub.clone(), config).await;
    let good = token(json!({"sub": "u1", "exp": now() + 600}));
    let path = format!("/sse?token={good}");
    for origin in [
        "https://evil.example",
        "http://app.example.com",
        "https://app.example.com:8443",
        "null",
    ] {
        let mut response = get(addr, &path, &[("Origin", origin)]).await;
        assert_eq!(response.status, 403, "{origin}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.header("access-control-allow-origin"), None);
        assert_eq!(
            response.json().await,
            json!({"error": "forbidden", "message": format!("origin {origin} is not allowed")})
        );
    }
    // Checked before anything else: even a request without a token.
    let mut response = get(addr, "/sse?bogus=1", &[("Origin", "https://evil.example")]).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json().await["error"], "forbidden");
    assert_eq!(hub.connection_count(), 0);

    // The listed origin may read the stream cross-origin.
    let (listed, _) = open(addr, &path, &[("Origin", "https://APP.example.com")]).await;
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(listed.header("vary"), Some("origin"));
    // ... and its errors too.
    let mut refused = get(addr, "/sse", &[("Origin", "https://app.example.com")]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(refused.json().await["error"], "unauthorized");
    // Clients that send no Origin are served, without CORS headers.
    let (plain, _) = open(addr, &path, &[]).await;
    assert_eq!(plain.header("access-control-allow-origin"), None);
}

async fn by_default_every_origin_is_allowed(mount: Mount) {
    assert!(SseConfig::default().allowed_origins.is_any());
    let hub = Hub::new(hub_config());
    let addr = server(mount, hub.clone(), SseConfig::default()).await;
    for origin in ["https://evil.example", "null"] {
        let (response, _) = open(addr, "/sse", &[("Origin", origin)]).await;
        // Any origin is served, but none is granted cross-origin reads.
        assert_eq!(response.header("access-control-allow-origin"), None);
    }
}
