//! Hostile and careless HTTP clients against the real listener: who may
//! publish, cross-origin pages, slow and lying clients, oversized heads,
//! error amplification, and `/ready` during a drain.

mod common;

use std::time::Duration;

use common::{raw_exchange, raw_json, request, test_config, TestServer, STEP};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AAPL: &str = r#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily"}"#;
const PRIVATE_CRITICAL: &str = r#"{"pattern":"Doji","symbol":"AAPL","confidence":0.99,"tier":"daily","user_id":"alice","priority":"critical"}"#;

async fn publish(server: &TestServer, headers: &[(&str, &str)], body: &str) -> common::Answer {
    request(server.addr(), "POST", "/api/publish", headers, body.into()).await
}

/// Waits until the server closes `stream` (read gives end of file or an
/// error); fails the test after [`STEP`].
async fn closed_by_server(mut stream: TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection in time");
    seen
}

#[tokio::test]
async fn with_auth_on_publishing_needs_a_credential_unless_anonymous_is_configured() {
    let mut config = test_config();
    config.auth.jwt_secret = Some("jwt-secret".to_owned());
    let server = TestServer::start(config.clone()).await;
    // Not even a private critical event into someone's stream.
    for body in [AAPL, PRIVATE_CRITICAL] {
        let answer = publish(&server, &[], body).await;
        assert_eq!(answer.status, 403, "{}", answer.text());
        assert_eq!(answer.json()["error"], "publish_disabled");
    }
    assert_eq!(server.stats().await["published"], 0);
    server.stop().await;

    config.api.key = Some("api-key".to_owned());
    let server = TestServer::start(config.clone()).await;
    assert_eq!(publish(&server, &[], AAPL).await.status, 401);
    let answer = publish(&server, &[("authorization", "bearer api-key")], AAPL).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    server.stop().await;

    config.api.key = None;
    config.api.allow_anonymous_publish = true;
    let server = TestServer::start(config).await;
    assert_eq!(publish(&server, &[], AAPL).await.status, 202);
    server.stop().await;
}

#[tokio::test]
async fn publishing_needs_a_json_content_type() {
    let server = TestServer::start(test_config()).await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let answer = publish(&server, &[("content-type", content_type)], AAPL).await;
        assert_eq!(answer.status, 415, "{content_type}: {}", answer.text());
        assert_eq!(answer.json()["error"], "unsupported_media_type");
    }
    let no_type =
        "POST /api/publish HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}";
    let response = raw_exchange(server.addr(), no_type.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 415"), "{response}");
    let typed = publish(
        &server,
        &[("content-type", "Application/JSON; charset=utf-8")],
        AAPL,
    )
    .await;
    assert_eq!(typed.status, 202, "{}", typed.text());
    assert_eq!(server.stats().await["published"], 1);
    server.stop().await;
}

#[tokio::test]
async fn cross_origin_pages_are_refused_unless_listed() {
    let mut config = test_config();
    config.api.cors_origins = vec!["https://app.example".to_owned()];
    let server = TestServer::start(config).await;
    let addr = server.addr();
    let preflight = |origin: &'static str| async move {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, authorization",
            ),
        ];
        request(addr, "OPTIONS", "/api/publish", &headers, Vec::new()).await
    };

    let answer = preflight("https://app.example").await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(answer
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));

    let answer = preflight("https://evil.example").await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["error"], "cors_forbidden");
    assert_eq!(answer.header("access-control-allow-origin"), None);

    let answer = publish(&server, &[("origin", "https://evil.example")], AAPL).await;
    assert_eq!(answer.status, 403);
    let answer = publish(&server, &[("origin", "https://app.example")], AAPL).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(server.stats().await["published"], 1);
    server.stop().await;
}

#[tokio::test]
async fn by_default_no_origin_may_call_the_api_and_non_browsers_are_not_affected() {
    let server = TestServer::start(test_config()).await;
    let answer = request(
        server.addr(),
        "OPTIONS",
        "/api/publish",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    // A page's simple cross-origin request (no preflight) is refused too.
    let answer = publish(
        &server,
        &[
            ("origin", "https://app.example"),
            ("content-type", "text/plain"),
        ],
        AAPL,
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(publish(&server, &[], AAPL).await.status, 202);
    assert_eq!(server.stats().await["published"], 1);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_closed() {
    let mut config = test_config();
    config.http.header_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let mut slow = TcpStream::connect(server.addr()).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: t\r\n")
        .await
        .unwrap();
    let silent = TcpStream::connect(server.addr()).await.unwrap();
    let seen = closed_by_server(slow).await;
    assert!(!String::from_utf8_lossy(&seen).contains("200 OK"));
    closed_by_server(silent).await;
    assert_eq!(server.get("/health").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_new_connection_evicts_the_oldest_one_waiting_for_a_request() {
    let mut config = test_config();
    config.http.max_pending_connections = Some(2);
    // Long enough that only eviction can close the silent sockets here.
    config.http.header_timeout_ms = 600_000;
    let server = TestServer::start(config).await;
    let addr = server.addr();
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(addr).await.unwrap());
        // Accepted in this order.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only a connection that has waited past the eviction age may go.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    silent.push(TcpStream::connect(addr).await.unwrap());
    // The third evicted the first; the second and third still wait.
    let first = silent.remove(0);
    closed_by_server(first).await;

    // Every new client is served even while silent sockets fill the queue.
    for _ in 0..5 {
        let response = raw_exchange(
            addr,
            b"GET /health HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    let mut config = test_config();
    config.http.body_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let head = "POST /api/publish HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n0123456789";
    let response = raw_exchange(server.addr(), head.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(raw_json(&response)["error"], "body_timeout");
    assert_eq!(
        common::http_source(&server.stats().await)["rejected"]["body_timeout"],
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_heads_get_json_errors() {
    let server = TestServer::start(test_config()).await;
    let long_uri = format!(
        "GET /health?{} HTTP/1.1\r\nhost: t\r\n\r\n",
        "a".repeat(70_000)
    );
    let response = raw_exchange(server.addr(), long_uri.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 414"), "{response:.200}");
    assert_eq!(raw_json(&response)["error"], "uri_too_long");

    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many_headers = format!("GET /health HTTP/1.1\r\nhost: t\r\n{many}\r\n");
    let response = raw_exchange(server.addr(), many_headers.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response:.200}");
    assert_eq!(raw_json(&response)["error"], "headers_too_large");

    let huge_header = format!(
        "GET /health HTTP/1.1\r\nhost: t\r\nx-big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    let response = raw_exchange(server.addr(), huge_header.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response:.200}");
    assert_eq!(raw_json(&response)["error"], "headers_too_large");

    let garbage = raw_exchange(server.addr(), b"\x01\x02 nonsense\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:.200}");
    assert_eq!(raw_json(&garbage)["error"], "bad_request");
    assert_eq!(server.get("/health").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn errors_of_a_huge_bad_array_are_bounded() {
    let server = TestServer::start(test_config()).await;
    let bad: Vec<&str> = vec!["1"; 5_000];
    let body = format!("[{}]", bad.join(","));
    let answer = publish(&server, &[], &body).await;
    assert_eq!(answer.status, 400);
    let json: Value = answer.json();
    assert_eq!(json["errors"].as_array().unwrap().len(), 100);
    assert_eq!(json["errors_omitted"], 4_900);
    assert!(
        answer.body.len() < 20_000,
        "{} bytes answered",
        answer.body.len()
    );
    let rejected = &common::http_source(&server.stats().await)["rejected"];
    assert_eq!(
        rejected
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_u64)
            .sum::<u64>(),
        5_000
    );

    let many: Vec<&str> = vec![AAPL; 10_001];
    let answer = publish(&server, &[], &format!("[{}]", many.join(","))).await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert_eq!(answer.json()["error"], "too_many_items");
    assert_eq!(server.stats().await["published"], 0);
    server.stop().await;
}

#[tokio::test]
async fn ready_answers_503_promptly_during_the_drain() {
    let server = TestServer::start(test_config()).await;
    let addr = server.addr();
    let hub = server.server.hub().clone();
    // A client connection that keeps the drain going until dropped.
    let conn = hub.connect(None, hub.default_limits()).expect("connect");
    assert_eq!(server.get("/ready").await.status, 200);
    let stop = tokio::spawn(server.stop());
    tokio::time::timeout(STEP, async {
        while !hub.is_shut_down() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("shutdown starts");

    let answer = request(addr, "GET", "/ready", &[], Vec::new()).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.json()["shutting_down"], true);

    drop(conn);
    tokio::time::timeout(STEP, stop)
        .await
        .expect("stops")
        .expect("join");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after the drain"
    );
}

#[tokio::test]
async fn http_allowed_origins_reach_both_transports() {
    let mut config = test_config();
    config.http.allowed_origins = vec!["https://app.example".to_owned()];
    let server = TestServer::start(config).await;
    let addr = server.addr();
    let evil = [("origin", "https://evil.example")];

    let ws = tickcast_testkit::ws::raw_handshake(addr, "/ws", &evil).await;
    assert_eq!(ws.status, 403);
    let ws = tickcast_testkit::ws::raw_handshake(addr, "/ws", &[("origin", "https://app.example")])
        .await;
    assert_eq!(ws.status, 101);
    let ws = tickcast_testkit::ws::raw_handshake(addr, "/ws", &[]).await;
    assert_eq!(ws.status, 101, "clients without Origin are served");

    let sse = request(addr, "GET", "/sse", &evil, Vec::new()).await;
    assert_eq!(sse.status, 403, "{}", sse.text());
    assert_eq!(sse.json()["error"], "forbidden");
    server.stop().await;
}
