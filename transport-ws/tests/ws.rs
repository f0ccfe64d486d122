//! The WebSocket endpoint through real sockets: a warp server on an
//! ephemeral port, tokio-tungstenite clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tickcast_core::auth::{AllowedOrigins, Authenticator};
use tickcast_core::model::Event;
use tickcast_core::session::SessionConfig;
use tickcast_core::{Hub, HubConfig};
use tickcast_testkit::ws::{close_code, next_json, raw_handshake, send_raw_text};
use tickcast_transport_ws::{ws_route, WsConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use warp::Filter;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &[u8] = b"test-secret";

/// The endpoint on the crate's own accept loop (the lean upgrade path, as
/// the binary serves it).
async fn server(hub: Hub, config: WsConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = ws_route(hub, config)
        .map(warp::Reply::into_response)
        .boxed();
    tokio::spawn(tickcast_transport_ws::serve(
        listener,
        routes,
        std::future::pending(),
    ));
    addr
}

/// The endpoint mounted in a plain `warp::serve` (warp's WebSocket).
async fn warp_server(hub: Hub, config: WsConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(ws_route(hub, config)).incoming(listener).run());
    addr
}

fn hub_config() -> HubConfig {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config
}

async fn connect(addr: SocketAddr, query: &str) -> Client {
    connect_with(addr, query, &[]).await
}

/// Connects with extra request headers.
async fn connect_with(addr: SocketAddr, query: &str, headers: &[(&'static str, &str)]) -> Client {
    let url = format!("ws://{addr}/ws{query}");
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "tickcast.v1.json".parse().unwrap(),
    );
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let (client, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "tickcast.v1.json"
    );
    client
}

/// Reads until the close frame; returns its code and the text frames before it.
async fn until_close(client: &mut Client) -> (Option<u16>, Vec<Value>) {
    let mut texts = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), client.next())
            .await
            .expect("no close");
        match next {
            Some(Ok(Message::Text(t))) => texts.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return (frame.map(|f| u16::from(f.code)), texts),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (None, texts),
        }
    }
}

async fn send(client: &mut Client, v: Value) {
    client.send(Message::text(v.to_string())).await.unwrap();
}

fn event(json: Value) -> Event {
    Event::from_json(
        Bytes::from(json.to_string()),
        Some("tickstock.events.patterns"),
        1 << 20,
    )
    .unwrap()
}

fn pattern(symbol: &str, confidence: f64) -> Event {
    event(json!({"symbol": symbol, "pattern": "Doji", "tier": "daily", "confidence": confidence}))
}

async fn subscribed(client: &mut Client, id: &str, filter: Value) {
    send(client, json!({"op":"subscribe","id":id,"filter":filter})).await;
    let reply = next_json(client).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
}

#[tokio::test]
async fn welcome_subscribe_and_filtered_events() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), WsConfig::default()).await;
    let mut client = connect(addr, "").await;
    let welcome = next_json(&mut client).await;
    assert_eq!(welcome["type"], "welcome");
    assert!(welcome["conn"].as_str().unwrap().starts_with("c-"));
    assert_eq!(
        welcome["server"],
        format!("tickcast/{}", env!("CARGO_PKG_VERSION"))
    );
    subscribed(&mut client, "s1", json!({"symbols":["aapl"]})).await;

    hub.publish(pattern("MSFT", 0.7)).unwrap();
    let offset = hub.publish(pattern("AAPL", 0.7)).unwrap();
    let frame = next_json(&mut client).await;
    assert_eq!(frame["type"], "event");
    assert_eq!(frame["offset"], offset.to_string());
    assert_eq!(frame["subs"], json!(["s1"]));
    assert_eq!(frame["priority"], "medium");
    assert_eq!(frame["event_type"], "pattern_detected");
    assert_eq!(frame["data"]["symbol"], "AAPL");

    send(&mut client, json!({"op":"ping","ts":42})).await;
    assert_eq!(next_json(&mut client).await, json!({"type":"pong","ts":42}));
    send(&mut client, json!({"op":"unsubscribe","id":"s1"})).await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"type":"unsubscribed","id":"s1"})
    );
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_stays() {
    let hub = Hub::new(hub_config());
    let config =
        WsConfig::default().with_session(SessionConfig::default().with_max_frame_bytes(1024));
    let addr = server(hub.clone(), config).await;
    let mut client = connect(addr, "").await;
    next_json(&mut client).await;
    let cases = [
        (Message::text("not json"), "bad_request"),
        (Message::text(r#"{"op":"dance"}"#), "bad_request"),
        (
            Message::text(r#"{"op":"subscribe","id":"s1","filter":{"tiers":["weekly"]}}"#),
            "bad_request",
        ),
        (
            Message::text(r#"{"op":"subscribe","id":"s1","filter":{"min_confidence":2}}"#),
            "bad_request",
        ),
        (
            Message::text(r#"{"op":"unsubscribe","id":"nope"}"#),
            "unknown_subscription",
        ),
        (
            Message::text(format!(r#"{{"op":"ping","ts":"{}"}}"#, "x".repeat(2000))),
            "frame_too_large",
        ),
    ];
    for (message, code) in cases {
        client.send(message).await.unwrap();
        let reply = next_json(&mut client).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
    }
    // Still open and serving.
    send(&mut client, json!({"op":"ping","ts":1})).await;
    assert_eq!(next_json(&mut client).await["type"], "pong");

    // Far over the limit: closed with 1009.
    client
        .send(Message::text("y".repeat(64 * 1024)))
        .await
        .unwrap();
    assert_eq!(until_close(&mut client).await.0, Some(1009));

    // Binary frames: closed with 1003.
    let mut client = connect(addr, "").await;
    next_json(&mut client).await;
    client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(until_close(&mut client).await.0, Some(1003));
}

fn offsets_of(batch: &Value) -> Vec<String> {
    batch["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn critical_takes_older_batched_events_along_and_resume_never_skips() {
    let mut config = hub_config();
    config.queue.batch_window = Duration::from_millis(300);
    let hub = Hub::new(config);
    let addr = server(hub.clone(), WsConfig::default()).await;
    let mut client = connect(addr, "").await;
    next_json(&mut client).await;
    subscribed(&mut client, "all", json!({})).await;
    let low = hub.publish(pattern("A", 0.3)).unwrap();
    let high = hub.publish(pattern("B", 0.85)).unwrap();
    let critical = hub.publish(pattern("C", 0.95)).unwrap();
    // At once, not after the window; in offset order, so the last offset
    // received is a safe point to resume from.
    let batch = next_json(&mut client).await;
    assert_eq!(batch["type"], "batch");
    let sent = [low, high, critical].map(|o| o.to_string());
    assert_eq!(offsets_of(&batch), sent);
    assert_eq!(batch["resume"], critical.to_string());

    // Batched events still in their window when the client goes away are
    // exactly what a resume from the last `resume` replays.
    let queued = [pattern("D", 0.85), pattern("E", 0.5)].map(|e| hub.publish(e).unwrap());
    drop(client);
    let mut client = connect(addr, "").await;
    next_json(&mut client).await;
    let since = batch["resume"].as_str().unwrap();
    send(
        &mut client,
        json!({"op":"subscribe","id":"all","filter":{},"since":since}),
    )
    .await;
    assert_eq!(next_json(&mut client).await["recovered"], 2);
    let replay = next_json(&mut client).await;
    assert_eq!(offsets_of(&replay), queued.map(|o| o.to_string()));
    assert_eq!(replay["resume"], queued[1].to_string());
}

#[tokio::test]
async fn over_the_rate_limit_events_conflate_and_others_are_reported_dropped() {
    let mut config = hub_config();
    config.rate_limit_per_user = 2;
    let hub = Hub::new(config);
    let addr = server(hub.clone(), WsConfig::default()).await;
    let mut client = connect(addr, "").await;
    next_json(&mut client).await;
    subscribed(&mut client, "all", json!({})).await;
    // Hold the writer back so everything below is queued at once.
    let first = hub.publish(pattern("A", 0.5)).unwrap();
    hub.publish(pattern("B", 0.5)).unwrap();
    hub.publish(pattern("A", 0.5)).unwrap(); // over the limit: held for key A
    let latest_a = hub.publish(pattern("A", 0.5)).unwrap(); // replaces it
    hub.publish(event(
        json!({"event_type":"system_health","status":"ok","priority":"low"}),
    ))
    .unwrap();
    let mut seen = Vec::new();
    let mut dropped = None;
    while seen.len() < 3 {
        let frame = next_json(&mut client).await;
        match frame["type"].as_str().unwrap() {
            "event" => seen.push(frame["offset"].as_str().unwrap().to_owned()),
            "batch" => seen.extend(
                frame["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["offset"].as_str().unwrap().to_owned()),
            ),
            "dropped" => dropped = Some(frame),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(seen[0], first.to_string());
    assert_eq!(
        seen.last().unwrap(),
        &latest_a.to_string(),
        "latest wins for the held key"
    );
    let dropped = dropped.expect("a dropped notice");
    assert_eq!(dropped["count"], 1);
    let stats = hub.stats();
    assert_eq!(stats.delivery.conflated, 1);
    assert_eq!(stats.delivery.dropped_rate_limit, 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_4008_while_others_keep_receiving() {
    let mut config = hub_config();
    config.queue.capacity = 64;
    let hub = Hub::new(config);
    let addr = server(hub.clone(), WsConfig::default()).await;
    let mut stalled = connect(addr, "").await;
    next_json(&mut stalled).await;
    subscribed(&mut stalled, "all", json!({})).await;
    let mut reader = connect(addr, "").await;
    next_json(&mut reader).await;
    subscribed(&mut reader, "all", json!({})).await;

    let reading = tokio::spawn(async move {
        let mut events = 0usize;
        while events < 2000 {
            let frame = next_json(&mut reader).await;
            events += match frame["type"].as_str() {
                Some("event") => 1,
                Some("batch") => frame["events"].as_array().unwrap().len(),
                _ => 0,
            };
        }
        events
    });
    // High-priority events with a large body fill the socket buffers, then
    // the stalled client's queue.
    let padding = "x".repeat(16 * 1024);
    for i in 0..2000u32 {
        hub.publish(event(
            json!({"symbol":"A","pattern":"P","confidence":0.85,"pad":padding,"i":i}),
        ))
        .unwrap();
        // Paced so that a client that reads keeps up.
        if i.is_multiple_of(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), reading)
            .await
            .unwrap()
            .unwrap(),
        2000
    );
    assert_eq!(hub.stats().delivery.slow_consumer_closes, 1);
    let (code, texts) = until_close(&mut stalled).await;
    assert_eq!(code, Some(4008));
    assert_eq!(texts.last().unwrap()["code"], "slow_consumer");
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

fn auth_config() -> WsConfig {
    WsConfig::default().with_session(
        SessionConfig::default().with_auth(Some(Arc::new(Authenticator::hs256(SECRET)))),
    )
}

#[tokio::test]
async fn jwt_identifies_users_refuses_bad_tokens_and_enforces_entitlements() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), auth_config()).await;

    for query in ["", "?token=garbage"] {
        let mut client = connect(addr, query).await;
        let (code, texts) = until_close(&mut client).await;
        assert_eq!(code, Some(4001), "{query}");
        assert_eq!(texts[0]["code"], "unauthorized");
    }
    let expired = token(json!({"sub":"u1","exp":now() - 10}));
    let mut client = connect(addr, &format!("?token={expired}")).await;
    assert_eq!(until_close(&mut client).await.0, Some(4002));

    let good = token(json!({"sub":"alice","exp":now() + 600,"tiers":["daily"]}));
    let mut alice = connect(addr, &format!("?token={good}")).await;
    let welcome = next_json(&mut alice).await;
    assert_eq!(welcome["user"], "alice");
    send(
        &mut alice,
        json!({"op":"subscribe","id":"x","filter":{"tiers":["intraday"]}}),
    )
    .await;
    assert_eq!(next_json(&mut alice).await["code"], "forbidden");
    subscribed(&mut alice, "all", json!({})).await;
    hub.publish(event(json!({"symbol":"A","pattern":"P","tier":"intraday"})))
        .unwrap();
    hub.publish(event(
        json!({"symbol":"A","pattern":"P","tier":"daily","user_id":"bob"}),
    ))
    .unwrap();
    let mine = hub
        .publish(event(
            json!({"symbol":"A","pattern":"P","tier":"daily","user_id":"alice"}),
        ))
        .unwrap();
    let frame = next_json(&mut alice).await;
    assert_eq!(
        frame["offset"],
        mine.to_string(),
        "only the entitled, own private event"
    );
}

#[tokio::test]
async fn tokens_are_read_like_on_every_transport() {
    let hub = Hub::new(hub_config());
    for addr in [
        server(hub.clone(), auth_config()).await,
        warp_server(hub.clone(), auth_config()).await,
    ] {
        let good = token(json!({"sub":"alice","exp":now() + 600}));
        // A URL library writes the dots of a JWT as %2E.
        let encoded = good.replace('.', "%2E");
        let mut client = connect(addr, &format!("?token={encoded}")).await;
        assert_eq!(next_json(&mut client).await["user"], "alice");
        for scheme in ["bearer", "BEARER", "Bearer"] {
            let header = format!("{scheme}  {good} ");
            let mut client = connect_with(addr, "", &[("authorization", &header)]).await;
            assert_eq!(next_json(&mut client).await["user"], "alice", "{scheme}");
        }
        // The query wins over the header, even when the header is good.
        let header = format!("Bearer {good}");
        let mut client = connect_with(addr, "?token=garbage", &[("authorization", &header)]).await;
        assert_eq!(until_close(&mut client).await.0, Some(4001));
        // Another scheme is no token.
        let mut client = connect_with(addr, "", &[("authorization", "Basic dXNlcjpwdw==")]).await;
        let (code, texts) = until_close(&mut client).await;
        assert_eq!(code, Some(4001));
        assert_eq!(texts[0]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn times_beyond_the_clock_are_refused_with_4001_not_a_dropped_socket() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), auth_config()).await;
    for claims in [
        json!({"sub":"u1","exp":1u64 << 63}),
        json!({"sub":"u1","exp":u64::MAX}),
        json!({"sub":"u1","exp":now() + 600,"nbf":u64::MAX}),
        json!({"sub":"u1","exp":now() + 600,"nbf":now() + 300}),
    ] {
        let mut client = connect(addr, &format!("?token={}", token(claims.clone()))).await;
        let (code, texts) = until_close(&mut client).await;
        assert_eq!(code, Some(4001), "{claims}");
        assert_eq!(texts[0]["code"], "unauthorized", "{claims}");
    }
    // The server is still serving, far-future tokens included.
    for good in [
        token(json!({"sub":"u1","exp":now() + 600,"nbf":now() - 1})),
        token(json!({"sub":"u1","exp":1u64 << 62})),
    ] {
        let mut client = connect(addr, &format!("?token={good}")).await;
        assert_eq!(next_json(&mut client).await["user"], "u1");
        send(&mut client, json!({"op":"ping","ts":7})).await;
        assert_eq!(next_json(&mut client).await["type"], "pong");
    }
}

#[tokio::test]
async fn the_connection_closes_with_4002_when_the_token_expires() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), auth_config()).await;
    let short = token(json!({"sub":"u1","exp":now() + 2}));
    let mut client = connect(addr, &format!("?token={short}")).await;
    assert_eq!(next_json(&mut client).await["type"], "welcome");
    let (code, texts) = until_close(&mut client).await;
    assert_eq!(code, Some(4002));
    assert_eq!(texts.last().unwrap()["code"], "token_expired");
}

#[tokio::test]
async fn resume_with_since_and_graceful_shutdown() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), WsConfig::default()).await;
    let mut client = connect(addr, "").await;
    next_json(&mut client).await;
    subscribed(&mut client, "s", json!({"symbols":["A"]})).await;
    let seen = hub.publish(pattern("A", 0.5)).unwrap();
    assert_eq!(next_json(&mut client).await["offset"], seen.to_string());
    client.close(None).await.unwrap();
    let missed = hub.publish(pattern("A", 0.5)).unwrap();

    let mut client = connect(addr, "").await;
    next_json(&mut client).await;
    send(
        &mut client,
        json!({"op":"subscribe","id":"s","filter":{"symbols":["A"]},"since":seen.to_string()}),
    )
    .await;
    assert_eq!(
        next_json(&mut client).await,
        json!({"type":"subscribed","id":"s","recovered":1})
    );
    assert_eq!(next_json(&mut client).await["offset"], missed.to_string());

    let last = hub.publish(pattern("A", 0.5)).unwrap();
    hub.shutdown();
    let (code, texts) = until_close(&mut client).await;
    assert_eq!(code, Some(1001));
    assert_eq!(
        texts.last().unwrap()["offset"],
        last.to_string(),
        "queued events are flushed first"
    );
}

#[tokio::test]
async fn a_user_over_the_connection_limit_is_closed_with_4009() {
    let mut config = hub_config();
    config.limits.max_connections_per_user = 1;
    let hub = Hub::new(config);
    let addr = server(hub.clone(), auth_config()).await;
    let alice = token(json!({"sub":"alice","exp":now() + 600}));
    let mut first = connect(addr, &format!("?token={alice}")).await;
    assert_eq!(next_json(&mut first).await["type"], "welcome");
    let mut second = connect(addr, &format!("?token={alice}")).await;
    let (code, texts) = until_close(&mut second).await;
    assert_eq!(code, Some(4009));
    assert_eq!(texts[0]["code"], "limit_exceeded");
}

/// A welcomed client of a server that pings every 100 ms and drops peers
/// silent for 300 ms.
async fn quick_idle_client() -> (Hub, Client) {
    let hub = Hub::new(hub_config());
    let config = WsConfig::default().with_session(
        SessionConfig::default()
            .with_ping_interval(Duration::from_millis(100))
            .with_idle_timeout(Some(Duration::from_millis(300))),
    );
    let addr = server(hub.clone(), config).await;
    let mut client = connect(addr, "").await;
    assert_eq!(next_json(&mut client).await["type"], "welcome");
    (hub, client)
}

#[tokio::test]
async fn a_silent_peer_is_closed_after_the_idle_timeout() {
    let (hub, mut client) = quick_idle_client().await;
    // Not reading means not answering the server's pings either.
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The server closed with 1000 and dropped the socket; the client may see
    // the close frame or, answering the buffered pings, a reset first.
    let (code, _) = until_close(&mut client).await;
    assert!(matches!(code, Some(1000) | None), "{code:?}");
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while hub.stats().connections > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the server let the connection go");
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays_open() {
    let (hub, mut client) = quick_idle_client().await;
    // Reading lets the client answer pings.
    let quiet = tokio::time::timeout(Duration::from_millis(800), client.next()).await;
    assert!(quiet.is_err() || matches!(quiet, Ok(Some(Ok(Message::Ping(_))))));
    let reading = tokio::time::timeout(Duration::from_millis(800), async {
        while let Some(Ok(message)) = client.next().await {
            assert!(!message.is_close(), "closed while answering pings");
        }
    })
    .await;
    assert!(reading.is_err(), "still open");
    assert_eq!(hub.stats().connections, 1);
}

#[tokio::test]
async fn mounted_in_plain_warp_the_endpoint_serves_the_same_protocol() {
    let hub = Hub::new(hub_config());
    let config =
        WsConfig::default().with_session(SessionConfig::default().with_max_frame_bytes(1024));
    let addr = warp_server(hub.clone(), config).await;
    let mut client = connect(addr, "").await;
    assert_eq!(next_json(&mut client).await["type"], "welcome");
    subscribed(&mut client, "s1", json!({"symbols":["AAPL"]})).await;
    let offset = hub.publish(pattern("AAPL", 0.7)).unwrap();
    assert_eq!(next_json(&mut client).await["offset"], offset.to_string());
    client.send(Message::text("not json")).await.unwrap();
    assert_eq!(next_json(&mut client).await["code"], "bad_request");
    client
        .send(Message::text("y".repeat(64 * 1024)))
        .await
        .unwrap();
    assert_eq!(until_close(&mut client).await.0, Some(1009));
}

#[tokio::test]
async fn origins_outside_the_allow_list_get_403_before_the_upgrade() {
    let hub = Hub::new(hub_config());
    let config = WsConfig::default()
        .with_allowed_origins(AllowedOrigins::parse(["https://app.example.com"]).unwrap());
    for addr in [
        server(hub.clone(), config.clone()).await,
        warp_server(hub.clone(), config.clone()).await,
    ] {
        for origin in [
            "https://evil.example",
            "http://app.example.com",
            "https://app.example.com.evil.example",
            "null",
        ] {
            let answer = raw_handshake(addr, "/ws", &[("Origin", origin)]).await;
            assert_eq!(answer.status, 403, "{origin}");
            assert_eq!(answer.header("content-type"), Some("application/json"));
            assert_eq!(
                answer.json(),
                json!({"error":"forbidden","message":format!("origin {origin} is not allowed")})
            );
        }
        // The listed origin (in any case, with its default port) and
        // clients that send no Origin are served.
        for origin in ["https://app.example.com", "HTTPS://App.Example.com:443"] {
            let answer = raw_handshake(addr, "/ws", &[("Origin", origin)]).await;
            assert_eq!(answer.status, 101, "{origin}");
            let mut client = connect_with(addr, "", &[("origin", origin)]).await;
            assert_eq!(next_json(&mut client).await["type"], "welcome");
        }
        assert_eq!(raw_handshake(addr, "/ws", &[]).await.status, 101);
        let mut client = connect(addr, "").await;
        assert_eq!(next_json(&mut client).await["type"], "welcome");
    }
}

#[tokio::test]
async fn by_default_every_origin_is_allowed() {
    let hub = Hub::new(hub_config());
    assert!(WsConfig::default().allowed_origins.is_any());
    let addr = server(hub.clone(), WsConfig::default()).await;
    for origin in ["https://evil.example", "null"] {
        assert_eq!(
            raw_handshake(addr, "/ws", &[("Origin", origin)])
                .await
                .status,
            101
        );
        let mut client = connect_with(addr, "", &[("origin", origin)]).await;
        assert_eq!(next_json(&mut client).await["type"], "welcome");
    }
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_is_closed_with_1007() {
    let hub = Hub::new(hub_config());
    for addr in [
        server(hub.clone(), WsConfig::default()).await,
        warp_server(hub.clone(), WsConfig::default()).await,
    ] {
        for payload in [
            vec![0xff, 0xfe],
            b"{\"op\":\"ping\",\"ts\":\"\xc3\x28\"}".to_vec(),
            // A surrogate half, valid in CESU-8 but not UTF-8.
            vec![0xed, 0xa0, 0x80],
        ] {
            let mut client = connect(addr, "").await;
            assert_eq!(next_json(&mut client).await["type"], "welcome");
            send_raw_text(&mut client, payload.clone()).await;
            assert_eq!(close_code(&mut client).await, Some(1007), "{payload:x?}");
        }
        // A close frame whose reason is not UTF-8.
        let mut client = connect(addr, "").await;
        assert_eq!(next_json(&mut client).await["type"], "welcome");
        let mut close = Frame::ping(vec![0x03, 0xe8, 0xff]);
        close.header_mut().opcode = OpCode::Control(Control::Close);
        client.send(Message::Frame(close)).await.unwrap();
        assert_eq!(close_code(&mut client).await, Some(1007));
    }
    // The connections are released.
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        while hub.stats().connections > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the server let the connections go");
}

#[tokio::test]
async fn client_pings_get_pongs_and_a_client_close_gets_a_close_back() {
    let hub = Hub::new(hub_config());
    for addr in [
        server(hub.clone(), WsConfig::default()).await,
        warp_server(hub.clone(), WsConfig::default()).await,
    ] {
        let mut client = connect(addr, "").await;
        assert_eq!(next_json(&mut client).await["type"], "welcome");
        client
            .send(Message::Ping(Bytes::from_static(b"are you there")))
            .await
            .unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match client.next().await {
                    Some(Ok(Message::Pong(payload))) => return payload,
                    Some(Ok(_)) => {}
                    other => panic!("no pong: {other:?}"),
                }
            }
        })
        .await
        .expect("a pong in time");
        assert_eq!(pong, Bytes::from_static(b"are you there"));

        client.close(None).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match client.next().await {
                    Some(Ok(Message::Close(_))) | None => return true,
                    Some(Ok(_)) => {}
                    Some(Err(_)) => return false,
                }
            }
        })
        .await
        .expect("the close handshake ends in time");
        assert!(echoed, "the server answered the close with an error");
    }
}
