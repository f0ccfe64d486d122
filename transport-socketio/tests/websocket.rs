//! Socket.IO over WebSocket through real sockets: raw Engine.IO frames
//! from a tokio-tungstenite client.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tickcast_core::auth::Authenticator;
use tickcast_core::Hub;
use tickcast_testkit::jwt::user_token;
use tickcast_transport_socketio::SocketIoConfig;

use common::{hub_config, pattern, server, Eio, SECRET};

#[tokio::test]
async fn handshake_subscribe_with_ack_and_events_named_by_type() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), SocketIoConfig::default()).await;
    let (mut eio, open) = Eio::open(addr).await;
    assert!(open["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
    assert_eq!(open["maxPayload"], 65_536);

    let (answer, offset) = eio.welcomed(json!({})).await;
    assert!(
        answer["sid"].is_string() && answer["pid"].is_string(),
        "{answer}"
    );
    assert_eq!(
        Some(offset.as_str()),
        hub.latest_offset().map(|o| o.to_string()).as_deref()
    );

    let ack = eio
        .subscribe(1, json!({"id":"s1","filter":{"symbols":["AAPL"]}}))
        .await;
    assert_eq!(ack, json!({"type":"subscribed","id":"s1","recovered":0}));

    hub.publish(pattern("MSFT", 0.85)).unwrap();
    let offset = hub.publish(pattern("AAPL", 0.85)).unwrap();
    let args = eio.event().await;
    assert_eq!(args.len(), 3, "{args:?}");
    assert_eq!(args[0], "pattern_detected");
    assert_eq!(args[1]["type"], "event");
    assert_eq!(args[1]["offset"], offset.to_string());
    assert_eq!(args[1]["subs"], json!(["s1"]));
    assert_eq!(args[1]["priority"], "high");
    assert_eq!(args[1]["event_type"], "pattern_detected");
    assert_eq!(args[1]["data"]["symbol"], "AAPL");
    assert_eq!(args[2], offset.to_string());

    let ack = eio
        .subscribe(2, json!({"id":"s1","filter":{"tiers":["weekly"]}}))
        .await;
    assert_eq!(ack["type"], "error");
    assert_eq!(ack["code"], "bad_request");
    assert_eq!(ack["id"], "s1");

    eio.send(r#"423["unsubscribe",{"id":"nope"}]"#).await;
    let ack = eio.ack(3).await;
    assert_eq!(ack["code"], "unknown_subscription");
    eio.send(r#"424["unsubscribe",{"id":"s1"}]"#).await;
    assert_eq!(eio.ack(4).await, json!({"type":"unsubscribed","id":"s1"}));

    eio.send(r#"425["dance",{}]"#).await;
    let ack = eio.ack(5).await;
    assert_eq!(ack["code"], "bad_request");
    // Without an ack, a refusal is an `error` event.
    eio.send(r#"42["subscribe","s1"]"#).await;
    let args = eio.event().await;
    assert_eq!(args[0], "error");
    assert_eq!(args[1]["code"], "bad_request");
}

#[tokio::test]
async fn a_batch_is_emitted_as_its_events_each_with_its_resume() {
    let mut config = hub_config();
    config.queue.batch_window = Duration::from_millis(200);
    let hub = Hub::new(config);
    let addr = server(hub.clone(), SocketIoConfig::default()).await;
    let (mut eio, _) = Eio::open(addr).await;
    eio.welcomed(json!({})).await;
    eio.subscribe(1, json!({"id":"all","filter":{}})).await;
    let sent: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|s| hub.publish(pattern(s, 0.5)).unwrap().to_string())
        .collect();
    let mut got = Vec::new();
    for _ in 0..3 {
        let args = eio.event().await;
        assert_eq!(args[0], "pattern_detected");
        got.push((args[1]["offset"].clone(), args[2].clone()));
    }
    let expected: Vec<(Value, Value)> = sent.iter().map(|o| (json!(o), json!(o))).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn other_namespaces_get_connect_error_and_binary_closes() {
    let hub = Hub::new(hub_config());
    let addr = server(hub, SocketIoConfig::default()).await;
    let (mut eio, _) = Eio::open(addr).await;
    eio.send("40/admin,").await;
    assert_eq!(
        eio.next().await,
        r#"44/admin,{"message":"Invalid namespace"}"#
    );
    // The connection stays: `/` still connects.
    eio.welcomed(json!({})).await;
    eio.send("40/admin,").await;
    assert_eq!(
        eio.next().await,
        r#"44/admin,{"message":"Invalid namespace"}"#
    );
    eio.send(r#"451-["x",{"_placeholder":true,"num":0}]"#).await;
    assert_eq!(
        eio.next().await,
        r#"42["close",{"code":1003,"reason":"binary frames are not supported"}]"#
    );
    assert_eq!(eio.next().await, "close 1003");
}

fn auth_config() -> SocketIoConfig {
    let mut config = SocketIoConfig::default();
    config.session.auth = Some(Arc::new(Authenticator::hs256(SECRET)));
    config
}

#[tokio::test]
async fn the_token_is_auth_token_and_a_refusal_is_connect_error() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), auth_config()).await;
    for auth in [json!({}), json!({"token":"not-a-jwt"})] {
        let (mut eio, _) = Eio::open(addr).await;
        eio.send(&format!("40{auth}")).await;
        let refusal = eio.next().await;
        let json: Value = serde_json::from_str(refusal.strip_prefix("44").unwrap()).unwrap();
        assert_eq!(json["data"]["code"], "unauthorized", "{refusal}");
        assert!(json["message"].is_string());
        assert_eq!(eio.next().await, "close 4001");
    }
    let (mut eio, _) = Eio::open(addr).await;
    let token = user_token(SECRET, "u1");
    eio.welcomed(json!({ "token": token })).await;
    assert_eq!(hub.connection_count(), 1);
    // The handshake's query token serves when `auth` has none.
    let mut eio = Eio::connect(addr, &format!("&token={token}")).await;
    eio.next().await;
    eio.welcomed(json!({})).await;
}

/// Reads events until `n` `pattern_detected` ones came; returns their
/// offsets and the last resume offset.
async fn patterns(eio: &mut Eio, n: usize) -> (Vec<String>, String) {
    let mut offsets = Vec::new();
    let mut resume = String::new();
    while offsets.len() < n {
        let args = eio.event().await;
        if args[0] == "pattern_detected" {
            offsets.push(args[1]["offset"].as_str().unwrap().to_owned());
            resume = args[2].as_str().unwrap().to_owned();
        }
    }
    (offsets, resume)
}

#[tokio::test]
async fn recovery_replays_exactly_what_was_missed() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), auth_config()).await;
    let token = user_token(SECRET, "u1");
    let (mut eio, _) = Eio::open(addr).await;
    let (answer, _) = eio.welcomed(json!({ "token": token })).await;
    let pid = answer["pid"].as_str().unwrap().to_owned();
    eio.subscribe(1, json!({"id":"a","filter":{"symbols":["AAPL"]}}))
        .await;
    eio.subscribe(2, json!({"id":"b","filter":{"symbols":["TSLA"]}}))
        .await;
    let before: Vec<String> = ["AAPL", "TSLA", "AAPL"]
        .iter()
        .map(|s| hub.publish(pattern(s, 0.9)).unwrap().to_string())
        .collect();
    let (seen, resume) = patterns(&mut eio, 3).await;
    assert_eq!(seen, before);
    drop(eio);
    for _ in 0..100 {
        if hub.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missed: Vec<String> = ["MSFT", "TSLA", "AAPL", "NVDA"]
        .iter()
        .map(|s| (s, hub.publish(pattern(s, 0.9)).unwrap().to_string()))
        .filter(|(s, _)| **s == "AAPL" || **s == "TSLA")
        .map(|(_, o)| o)
        .collect();

    // Another user cannot take it, and leaves it to its owner.
    let (mut thief, _) = Eio::open(addr).await;
    let other = user_token(SECRET, "u2");
    let (answer, _) = thief
        .welcomed(json!({"token": other, "pid": pid, "offset": resume}))
        .await;
    assert_ne!(answer["pid"], pid);

    let (mut eio, _) = Eio::open(addr).await;
    let (answer, _) = eio
        .welcomed(json!({"token": token, "pid": pid, "offset": resume}))
        .await;
    assert_eq!(answer["pid"], pid, "recovered: the same pid");
    let mut recovered = 0;
    for _ in 0..2 {
        let args = eio.event().await;
        assert_eq!(args[0], "subscribed", "{args:?}");
        recovered += args[1]["recovered"].as_u64().unwrap();
    }
    assert_eq!(recovered, 2);
    let (replayed, _) = patterns(&mut eio, 2).await;
    assert_eq!(replayed, missed);
    // Live again, both subscriptions kept.
    let live = hub.publish(pattern("TSLA", 0.9)).unwrap().to_string();
    let (next, _) = patterns(&mut eio, 1).await;
    assert_eq!(next, [live]);

    // An offset the hub does not know is no recovery: a fresh pid.
    drop(eio);
    for _ in 0..100 {
        if hub.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut eio, _) = Eio::open(addr).await;
    let (answer, _) = eio
        .welcomed(json!({"token": token, "pid": pid, "offset": "1-1"}))
        .await;
    assert_ne!(answer["pid"], pid);
}

#[tokio::test]
async fn a_client_that_says_goodbye_leaves_nothing_to_recover() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), SocketIoConfig::default()).await;
    let (mut eio, _) = Eio::open(addr).await;
    let (answer, offset) = eio.welcomed(json!({})).await;
    eio.send("41").await;
    for _ in 0..100 {
        if hub.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut eio, _) = Eio::open(addr).await;
    let (again, _) = eio
        .welcomed(json!({"pid": answer["pid"], "offset": offset}))
        .await;
    assert_ne!(again["pid"], answer["pid"]);
}

#[tokio::test]
async fn a_silent_client_is_gone_after_ping_interval_plus_timeout() {
    let hub = Hub::new(hub_config());
    let mut config = SocketIoConfig::default();
    config.session.ping_interval = Duration::from_millis(100);
    config.ping_timeout = Duration::from_millis(100);
    let addr = server(hub.clone(), config).await;
    let (mut eio, open) = Eio::open(addr).await;
    assert_eq!(open["pingInterval"], 100);
    eio.send("40").await;
    // Reads without answering pings.
    let mut pings = 0;
    loop {
        let next = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut eio.ws),
        )
        .await
        .expect("closed in time");
        match next {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) if t.as_str() == "2" => {
                pings += 1
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                break;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    assert!(pings >= 1);
}

/// The filter mounted in a plain `warp::serve`: warp's WebSocket, no lean
/// path.
#[tokio::test]
async fn the_filter_serves_in_any_warp_app_too() {
    let hub = Hub::new(hub_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let route = tickcast_transport_socketio::socketio_route(hub.clone(), SocketIoConfig::default());
    tokio::spawn(warp::serve(route).incoming(listener).run());
    let (mut eio, _) = Eio::open(addr).await;
    eio.welcomed(json!({})).await;
    eio.subscribe(1, json!({"id":"s1","filter":{}})).await;
    let offset = hub.publish(pattern("AAPL", 0.85)).unwrap();
    let args = eio.event().await;
    assert_eq!(args[1]["offset"], offset.to_string());
    assert_eq!(args[2], offset.to_string());
}

/// A client may come back before the server noticed it left (a network
/// cut): its old connection is ended and its session recovered.
#[tokio::test]
async fn a_client_back_before_its_old_connection_ended_takes_it_over() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), auth_config()).await;
    let token = user_token(SECRET, "u1");
    let (mut old, _) = Eio::open(addr).await;
    let (answer, _) = old.welcomed(json!({ "token": token })).await;
    let pid = answer["pid"].as_str().unwrap().to_owned();
    old.subscribe(1, json!({"id":"a","filter":{"symbols":["AAPL"]}}))
        .await;
    hub.publish(pattern("AAPL", 0.85)).unwrap();
    let (_, resume) = patterns(&mut old, 1).await;
    // Delivered to the old socket, never read: lost with it.
    let unread: Vec<String> = (0..2)
        .map(|_| hub.publish(pattern("AAPL", 0.85)).unwrap().to_string())
        .collect();

    let (mut eio, _) = Eio::open(addr).await;
    let (answer, _) = eio
        .welcomed(json!({"token": token, "pid": pid, "offset": resume}))
        .await;
    assert_eq!(answer["pid"], pid);
    let args = eio.event().await;
    assert_eq!(args[0], "subscribed");
    assert_eq!(args[1]["recovered"], 2);
    let (replayed, _) = patterns(&mut eio, 2).await;
    assert_eq!(replayed, unread);
    assert_eq!(hub.connection_count(), 1, "the old connection is gone");
}

/// A server close is an `error` and a `close` event, then the WebSocket
/// close with the code, and no Socket.IO DISCONNECT (the client reconnects
/// by itself, here with a fresh token, and recovers).
#[tokio::test]
async fn an_expired_token_closes_with_events_then_4002_and_the_session_recovers() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), auth_config()).await;
    let short = tickcast_testkit::jwt::hs256(
        SECRET,
        &json!({"sub":"u1","exp": tickcast_testkit::jwt::now_s() + 2}),
    );
    let (mut eio, _) = Eio::open(addr).await;
    let (answer, offset) = eio.welcomed(json!({ "token": short })).await;
    eio.subscribe(1, json!({"id":"a","filter":{}})).await;
    let error = eio.event().await;
    assert_eq!(error[0], "error");
    assert_eq!(error[1]["code"], "token_expired");
    let close = eio.event().await;
    assert_eq!(close[0], "close");
    assert_eq!(close[1], json!({"code":4002,"reason":"token expired"}));
    assert_eq!(eio.next().await, "close 4002");

    for _ in 0..100 {
        if hub.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missed = hub.publish(pattern("AAPL", 0.85)).unwrap().to_string();
    let fresh = user_token(SECRET, "u1");
    let (mut eio, _) = Eio::open(addr).await;
    let (again, _) = eio
        .welcomed(json!({"token": fresh, "pid": answer["pid"], "offset": offset}))
        .await;
    assert_eq!(again["pid"], answer["pid"]);
    assert_eq!(eio.event().await[0], "subscribed");
    let (replayed, _) = patterns(&mut eio, 1).await;
    assert_eq!(replayed, [missed]);
}
